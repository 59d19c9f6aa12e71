"""Write-time stamps for a process's output: a tiny pump between the service and its log file.

The service writes into a pipe; the pump copies every byte, unchanged, into ``<id>.log`` and
notes in the sidecar ``<id>.log.idx`` one ``<offset> <epoch seconds>`` line per line start,
stamped when the pump read it, which is when the service wrote it (the pump blocks on the pipe).
The log itself stays plain text, so everything that reads it (tails in error messages, rotation,
``up --attach``) is unchanged; ``logs`` reads the index to put each line at its true time.

The pump joins the service's process group and carries its markers, so ``down`` finds, signals
and waits for it like any member. It ignores SIGTERM and SIGINT: it ends when the last writer
of the pipe is gone, after the service's final lines are on disk, so no line is lost when the
service dies; a SIGKILL (``down`` after the grace period) still ends it. It writes the index
entry before the bytes, so a reader that sees a line also finds its stamp, and ``end`` last.

It is a separate interpreter (``python -I -S``: no site, no user paths, a few milliseconds),
not a thread of the CLI: services outlive the command that started them. It boots while the
record is written, in parallel with the gate; a line the service writes before the pump's
first read (its first few milliseconds) is stamped at that read.
"""

from __future__ import annotations

import bisect
import os
import sys
from pathlib import Path

PUMP = r"""
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
log = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
idx = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
off = os.fstat(log).st_size
bol = True
def put(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
while True:
    try:
        data = os.read(0, 65536)
    except InterruptedError:
        continue
    if not data:
        break
    now = time.time()
    marks = [off] if bol else []
    i = data.find(b"\n")
    while i != -1 and i + 1 < len(data):
        marks.append(off + i + 1)
        i = data.find(b"\n", i + 1)
    bol = data.endswith(b"\n")
    if marks:
        put(idx, "".join("%d %.6f\n" % (m, now) for m in marks).encode())
    put(log, data)
    off += len(data)
put(idx, b"end\n")
"""


def index_path(log: Path) -> Path:
    """The stamps of ``log``: ``<log>.idx`` beside it (rotated with it)."""
    return log.with_name(f"{log.name}.idx")


def gate_argv(log: Path) -> list[str]:
    """The arguments :data:`PUMP_GATE` takes before the service's argv."""
    return [sys.executable, PUMP, str(log), str(index_path(log))]


#: The gate's prologue. The gate is started with the pipe's read end as its stderr (fd 2, so
#: plain ``sh`` can name it); it starts the pump in the background on that end, inside the
#: service's new session and group (a process can only join a group of its own session, so the
#: gate, not the CLI, starts it), then points its stderr at the pipe's write end like its stdout:
#: the service never holds the read end. Its four arguments come from :func:`gate_argv`.
PUMP_GATE = 'p=$1 s=$2 l=$3 i=$4; shift 4; "$p" -I -S -c "$s" "$l" "$i" <&2 >/dev/null 2>&1 & exec 2>&1; '


def drained(log: Path) -> bool:
    """Whether the pump of ``log`` has ended (and so written all it read); ``True`` without an index."""
    try:
        with open(index_path(log), "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - 4))
            return fh.read() == b"end\n"
    except OSError:
        return True


def parse_index(data: bytes) -> list[tuple[int, float]]:
    """``(offset, epoch)`` of each complete index line; a torn or foreign line is skipped."""
    out: list[tuple[int, float]] = []
    for raw in data.split(b"\n"):
        parts = raw.split(b" ")
        if len(parts) != 2:
            continue
        try:
            out.append((int(parts[0]), float(parts[1])))
        except ValueError:
            continue
    return out


class Stamps:
    """A log's index, read incrementally: the write time of the line starting at an offset."""

    def __init__(self, log: Path) -> None:
        self.path = index_path(log)
        self._read = 0
        self._offsets: list[int] = []
        self._times: list[float] = []

    def reset(self) -> None:
        self._read, self._offsets, self._times = 0, [], []

    def refresh(self) -> bool:
        """Read what the pump appended; ``False`` when the log has no index (written before stamps)."""
        try:
            with open(self.path, "rb") as fh:
                if os.fstat(fh.fileno()).st_size < self._read:
                    self.reset()  # a new run replaced it
                fh.seek(self._read)
                data = fh.read()
        except OSError:
            return False
        cut = data.rfind(b"\n") + 1
        self._read += cut
        for off, ts in parse_index(data[:cut]):
            if self._offsets and off <= self._offsets[-1]:
                continue
            self._offsets.append(off)
            self._times.append(ts)
        return True

    def at(self, offset: int) -> float | None:
        """The stamp of the line starting at ``offset`` (the latest mark at or before it)."""
        i = bisect.bisect_right(self._offsets, offset) - 1
        return self._times[i] if i >= 0 else None
