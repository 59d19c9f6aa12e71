"""Per-node file locks in the state directory, so concurrent ``up`` runs never start a node twice.

``flock`` locks belong to an open file description, so two tasks in one
process conflict just like two processes do: a second ``ensure("x")`` waits
for the first, then finds ``x`` running and leaves it alone.

A shared lock on a node is held by an ``up`` while it starts one of that node's
dependents: a ``down`` of the node (exclusive) waits until the dependent has started,
and an ``up`` that comes after the ``down`` finds its dependency gone and says so.

``down`` removes a node's lock file while holding it; whoever locked the old file
meanwhile sees that the path now names another file (or none) and locks again.
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


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


@asynccontextmanager
async def node_lock(state_dir: Path | None, ident: str, timeout: float = LOCK_TIMEOUT, *,
                    shared: bool = False, remove: bool = False) -> AsyncIterator[None]:
    """Hold ``<state_dir>/locks/<ident>.lock`` (exclusive, or ``shared``); a no-op when ``state_dir`` is ``None``.

    ``remove`` deletes the lock file before releasing it (an exclusive lock only): nothing is left
    behind for a node that is gone.
    """
    if state_dir is None:
        yield
        return
    lock_dir = state_dir / "locks"
    path = lock_dir / f"{safe_name(ident)}.lock"
    delay = 0.005
    deadline = anyio.current_time() + timeout
    while True:
        try:
            lock_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateDirError(f"state dir {state_dir}: cannot create {lock_dir}: "
                                f"{state_dir_problem(state_dir) or exc.strerror}") from None
        try:
            while True:
                try:
                    fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if anyio.current_time() > deadline:
                        raise LockTimeout(f"{ident}: another b00t-graph process held its lock for {timeout:g}s "
                                          f"({path})") from None
                    # Polling (not a blocking flock in a thread) keeps the wait cancellable.
                    await anyio.sleep(delay)
                    delay = min(delay * 2, 0.1)
        except BaseException:
            os.close(fd)
            raise
        if not _same_file(fd, path):
            os.close(fd)  # removed (or replaced) by a `down` while we waited: lock the current one
            continue
        try:
            yield
            if remove and not shared:
                path.unlink(missing_ok=True)
        finally:
            os.close(fd)  # closing releases the lock
        return
