"""One time-ordered stream of log lines from containers and processes (``b00t-graph logs``).

Container lines carry the engine's own timestamps (``timestamps=1``). A process's output goes
through a pump (``runtimes/logpump.py``) into ``<state>/process/<id>.log``, which notes when
each line was written in ``<id>.log.idx``: its lines carry that write time. A log written
before there were stamps (no index) gets estimates: lines are spread between the process's
start (its record) and the file's last write (its mtime) by their offset in the file, the last
line on the mtime; lines that appear while following get the time they were read. Lines of one
node are never reordered; across nodes, lines are ordered by their times.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs

from .runtimes.logpump import Stamps

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"5m"``, ``"1h30m"`` → seconds; ``ValueError`` otherwise."""
    text = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"{text!r} is not a duration (like 30s, 5m, 1h30m)")
    return total


@attrs.frozen(order=True)
class Line:
    """One line of output: when, whose, what (ordered by time, then by node)."""

    ts: float
    node: str
    text: str


class Source(Protocol):
    node: str

    async def history(self, since: float | None, tail: int | None) -> list[Line]:
        """Lines so far (newest ``tail`` of them, none older than ``since``)."""
        ...

    async def poll(self) -> list[Line]:
        """Lines that appeared since the last call (or since :meth:`history`)."""
        ...


class ProcessLog:
    """A process node's log file, read from the start of its current run, followed by offset."""

    def __init__(self, node: str, log: Path, record: Path) -> None:
        self.node = node
        self.log = log
        self.record = record
        self._offset = 0
        self._ino: int | None = None
        self._partial = b""
        self._stamps = Stamps(log)

    def _started(self, st: os.stat_result) -> float:
        try:
            rec: dict[str, Any] = json.loads(self.record.read_text())
            created = float(rec.get("create_time") or 0.0)
            if created:
                return created
        except (OSError, ValueError, TypeError):
            pass
        return min(st.st_ctime, st.st_mtime)

    async def history(self, since: float | None, tail: int | None) -> list[Line]:
        try:
            with open(self.log, "rb") as fh:
                st = os.fstat(fh.fileno())
                data = fh.read()
        except OSError:
            return []
        self._ino, self._offset = st.st_ino, len(data)
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        data = data[:cut]
        self._stamps.reset()
        stamped = self._stamps.refresh()  # read after the log: every line read has its stamp
        if not data:
            return []
        start = min(self._started(st), st.st_mtime)
        span, size = st.st_mtime - start, len(data)
        out: list[Line] = []
        pos = 0
        raws = data.splitlines(keepends=True)
        for i, raw in enumerate(raws):
            ts = self._stamps.at(pos) if stamped else None
            if ts is None:
                # no stamp: by how far into the file the line starts; the last line was the last write
                ts = st.st_mtime if i == len(raws) - 1 else start + span * (pos / size)
            pos += len(raw)
            out.append(Line(ts, self.node, raw.rstrip(b"\r\n").decode("utf-8", "replace")))
        if since is not None:
            out = [ln for ln in out if ln.ts >= since]
        if tail is not None:
            out = out[-tail:] if tail else []
        return out

    async def poll(self) -> list[Line]:
        try:
            with open(self.log, "rb") as fh:
                st = os.fstat(fh.fileno())
                if st.st_ino != self._ino or st.st_size < self._offset:
                    # a restart truncates (or replaces) the file: read the new run from its start
                    self._ino, self._offset, self._partial = st.st_ino, 0, b""
                    self._stamps.reset()
                fh.seek(self._offset)
                data = fh.read()
        except OSError:
            return []
        if not data:
            return []
        start = self._offset - len(self._partial)  # where the first line of this batch begins
        self._offset += len(data)
        data = self._partial + data
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        stamped = self._stamps.refresh()
        now = time.time()
        out: list[Line] = []
        for raw in data[:cut].splitlines(keepends=True):
            ts = self._stamps.at(start) if stamped else None
            out.append(Line(now if ts is None else ts, self.node, raw.rstrip(b"\r\n").decode("utf-8", "replace")))
            start += len(raw)
        return out


class ContainerLogs(Protocol):
    async def log_lines(self, ref: str, since: float | None, tail: int | None) -> list[tuple[float, str]]:
        ...


class ContainerLog:
    """A container's log through the engine (``timestamps=1``), followed by polling with ``since``.

    Polling, not the engine's follow stream, so a container that does not exist yet (or is
    recreated) is picked up by the next poll like any other.
    """

    def __init__(self, node: str, ref: str, engine: ContainerLogs) -> None:
        self.node = node
        self.ref = ref
        self.engine = engine
        self._last = 0.0
        self._seen: set[str] = set()  # lines stamped exactly _last, already shown

    def _fresh(self, lines: list[tuple[float, str]]) -> list[Line]:
        out = []
        for ts, text in lines:
            if ts < self._last or (ts == self._last and text in self._seen):
                continue
            if ts > self._last:
                self._last, self._seen = ts, set()
            self._seen.add(text)
            out.append(Line(ts, self.node, text))
        return out

    async def history(self, since: float | None, tail: int | None) -> list[Line]:
        if tail == 0:
            self._last = time.time()
            return []
        return self._fresh(await self.engine.log_lines(self.ref, since, tail))

    async def poll(self) -> list[Line]:
        return self._fresh(await self.engine.log_lines(self.ref, self._last or None, None))


def merge(batches: Sequence[Sequence[Line]]) -> list[Line]:
    """Lines of several nodes in time order; each node's own order is kept (the sort is stable)."""
    return sorted((ln for b in batches for ln in b), key=lambda ln: ln.ts)


def parse_docker_line(raw: str) -> tuple[float, str] | None:
    """``2024-05-01T10:00:00.123456789Z text`` (the engine's ``timestamps=1``) → (epoch seconds, text)."""
    stamp, _, text = raw.partition(" ")
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", stamp)
    if m is None:
        return None
    from datetime import datetime

    base = datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    frac = float("0." + m.group(2)) if m.group(2) else 0.0
    return base.timestamp() + frac, text
