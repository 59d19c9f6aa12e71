"""Per-node file locks in the state directory, so concurrent ``up`` runs never start a node twice.

``flock`` locks belong to an open file description, so two tasks in one
process conflict just like two processes do: a second ``ensure("x")`` waits
for the first, then finds ``x`` running and leaves it alone.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from .errors import LockTimeout, StateDirError

LOCK_TIMEOUT = 600.0


def default_state_dir() -> Path:
    """``$B00T_GRAPH_STATE_DIR``, else ``$XDG_STATE_HOME/b00t-graph``, else ``~/.local/state/b00t-graph``."""
    if os.environ.get("B00T_GRAPH_STATE_DIR"):
        return Path(os.environ["B00T_GRAPH_STATE_DIR"]).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "b00t-graph"


def state_dir_problem(path: Path) -> str | None:
    """Why ``path`` cannot be the state directory (under a file, not writable), or ``None`` if it can.

    Checked before anything starts, so a bad ``--state-dir`` is a bad option, not a failure halfway.
    Nothing is created here.
    """
    for p in (path, *path.parents):
        try:
            exists = p.exists()
        except OSError as exc:  # e.g. a component that is not searchable
            return f"cannot look at {p}: {exc.strerror}"
        if not exists:
            continue
        if not p.is_dir():
            return f"{p} is not a directory"
        if not os.access(p, os.W_OK | os.X_OK):
            return f"{p} is not writable" if p == path else f"cannot create it: {p} is not writable"
        return None
    return None


def safe_name(ident: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", ident)


@asynccontextmanager
async def node_lock(state_dir: Path | None, ident: str, timeout: float = LOCK_TIMEOUT) -> AsyncIterator[None]:
    """Hold ``<state_dir>/locks/<ident>.lock``; a no-op when ``state_dir`` is ``None``."""
    if state_dir is None:
        yield
        return
    lock_dir = state_dir / "locks"
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_dir / f"{safe_name(ident)}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StateDirError(f"state dir {state_dir}: cannot create {lock_dir}: "
                            f"{state_dir_problem(state_dir) or exc.strerror}") from None
    try:
        delay = 0.005
        deadline = anyio.current_time() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if anyio.current_time() > deadline:
                    raise LockTimeout(f"{ident}: another b00t-graph process held its lock for {timeout:g}s "
                                      f"({lock_dir / safe_name(ident)}.lock)") from None
                # Polling (not a blocking flock in a thread) keeps the wait cancellable.
                await anyio.sleep(delay)
                delay = min(delay * 2, 0.1)
        yield
    finally:
        os.close(fd)  # closing releases the lock
