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

from .errors import LockTimeout

LOCK_TIMEOUT = 600.0


def default_state_dir() -> Path:
    """``$B00T_GRAPH_STATE_DIR``, else ``$XDG_STATE_HOME/b00t-graph``, else ``~/.local/state/b00t-graph``."""
    if os.environ.get("B00T_GRAPH_STATE_DIR"):
        return Path(os.environ["B00T_GRAPH_STATE_DIR"]).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "b00t-graph"


def safe_name(ident: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", ident)


@asynccontextmanager
async def node_lock(state_dir: Path | None, ident: str, timeout: float = LOCK_TIMEOUT) -> AsyncIterator[None]:
    """Hold ``<state_dir>/locks/<ident>.lock``; a no-op when ``state_dir`` is ``None``."""
    if state_dir is None:
        yield
        return
    lock_dir = state_dir / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_dir / f"{safe_name(ident)}.lock", os.O_RDWR | os.O_CREAT, 0o644)
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
