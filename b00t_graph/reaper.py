"""The test-run reaper: ``python -m b00t_graph.reaper RUN_DIR PID``.

Started (detached) by the pytest plugin with a run's first ``up``. It watches the pytest process
``PID``; when that process is gone without having marked the run ``done`` (killed, ``os._exit``,
out of memory), it takes down what the run recorded as started and removes the run's folder.
A plain process with a poll, not a privileged container: it needs nothing but the state directory.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import psutil

POLL = 0.25


def _alive(pid: int, created: float | None) -> bool:
    try:
        proc = psutil.Process(pid)
        if created is not None and abs(proc.create_time() - created) > 0.05:
            return False  # the pid was reused
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def watch(run_dir: Path, pid: int) -> int:
    try:
        created: float | None = psutil.Process(pid).create_time()
    except psutil.Error:
        created = None
    while True:
        if (run_dir / "done").exists():
            shutil.rmtree(run_dir, ignore_errors=True)
            return 0
        if not _alive(pid, created):
            break
        time.sleep(POLL)
    if (run_dir / "done").exists():  # it finished normally while we slept
        shutil.rmtree(run_dir, ignore_errors=True)
        return 0
    from .pytest_plugin import take_down

    problems = take_down(run_dir)
    for line in problems:
        print(f"reaper: {line}", file=sys.stderr)
    if not problems:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or not args[1].isdigit():
        print("usage: python -m b00t_graph.reaper RUN_DIR PID", file=sys.stderr)
        return 2
    return watch(Path(args[0]), int(args[1]))


if __name__ == "__main__":
    sys.exit(main())
