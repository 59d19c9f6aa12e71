"""The detached supervisor (``b00t-graph supervise``): one per state directory, found by its lock.

It runs the :class:`~b00t_graph.supervisor.Supervisor` of ``up --attach`` over what is already up,
in a process of its own (``supervise`` starts ``supervise --foreground`` in a new session, stdio to
a log file), and leaves the services running when it ends. Its files, in ``<state_dir>/supervisor/``:

- ``lock``: held (``flock``, exclusive) by the running supervisor for its whole life. This is the one
  truth of whether it runs: a supervisor killed with ``-9`` releases the lock with its death, so the
  state file it leaves behind is seen as stale and never believed; a second supervisor cannot take it.
- ``state.json``: its pid, since when, the targets, what it watches (each node's status and restarts
  so far); rewritten on every event, removed when it ends cleanly.
- ``log``: the lines ``up --attach`` would print (restarts, failures with their log tails).

A project (``-p``) has a state directory of its own, so one supervisor per project.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from .errors import StateDirError, SupervisorError
from .events import Reporter

if TYPE_CHECKING:
    from .engine import Engine
    from .graph import Graph
    from .loader import Catalog
    from .supervisor import Supervisor

#: Bytes of log after which a new supervisor starts a fresh one (the old kept as ``log.1``).
LOG_LIMIT = 1 << 20
#: Seconds ``stop`` waits for a supervisor to end after SIGTERM (it may be half way through a restart).
STOP_TIMEOUT = 60.0


def folder(state_dir: Path) -> Path:
    return state_dir / "supervisor"


def log_path(state_dir: Path) -> Path:
    return folder(state_dir) / "log"


def start_log(state_dir: Path) -> Path:
    """The log a new supervisor appends to; one past ``LOG_LIMIT`` bytes is kept as ``log.1`` first."""
    path = log_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > LOG_LIMIT:
            os.replace(path, path.with_name("log.1"))
    return path


def _lock_path(state_dir: Path) -> Path:
    return folder(state_dir) / "lock"


def _state_path(state_dir: Path) -> Path:
    return folder(state_dir) / "state.json"


@attrs.frozen
class SupervisorInfo:
    """What ``status`` and ``ps`` say of a supervisor: ``running`` only while it holds its lock;
    ``stale`` when a state file is left by one that did not end cleanly (killed with -9)."""

    state_dir: str
    project: str | None
    pid: int
    running: bool
    since: float = 0.0
    targets: tuple[str, ...] = ()
    nodes: dict[str, dict[str, object]] = attrs.field(factory=dict)
    stale: bool = False

    @property
    def restarts(self) -> int:
        return sum(int(str(n.get("restarts", 0))) for n in self.nodes.values())

    def as_json(self) -> dict[str, object]:
        return {"state_dir": self.state_dir, "project": self.project, "pid": self.pid, "running": self.running,
                "stale": self.stale, "since": self.since, "targets": list(self.targets),
                "watching": self.nodes, "restarts": self.restarts}

    def text(self) -> str:
        where = f" (project {self.project})" if self.project else ""
        if not self.running:
            return (f"supervisor{where}: not running (pid {self.pid} did not end cleanly: its state file is stale; "
                    "`b00t-graph supervise --stop` clears it)")
        watched = [n for n, v in self.nodes.items() if v.get("status") not in ("exited", "failed", "stopped")]
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return (f"supervisor{where}: pid {self.pid} since {since}, watching {len(watched)} node(s)"
                + (f" ({', '.join(watched)})" if watched else "") + f", {self.restarts} restart(s) so far")


def _held(path: Path) -> bool:
    """Someone holds ``path``'s lock now (a shared lock cannot be had next to an exclusive one)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StateDirError(f"cannot look at {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def read(state_dir: Path, project: str | None = None) -> SupervisorInfo | None:
    """The supervisor of ``state_dir`` (running, or stale), or ``None`` when there is none."""
    try:
        data = json.loads(_state_path(state_dir).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        data = {}
    running = _held(_lock_path(state_dir))
    if not data and not running:
        return None
    return SupervisorInfo(str(state_dir), data.get("project", project), int(data.get("pid", 0)), running,
                          float(data.get("since", 0.0)), tuple(data.get("targets", ())),
                          dict(data.get("watching", {})), stale=not running)


def find_all(state_dir: Path) -> list[SupervisorInfo]:
    """The supervisors of ``state_dir`` and of each of its projects."""
    found = [read(state_dir)]
    projects = state_dir / "projects"
    if projects.is_dir():
        found += [read(p, p.name) for p in sorted(projects.iterdir()) if (p / "supervisor").is_dir()]
    return [f for f in found if f is not None]


@contextlib.contextmanager
def hold(state_dir: Path) -> Iterator[bool]:
    """Take the supervisor lock of ``state_dir`` for the body: ``True``, or ``False`` when another holds it."""
    path = _lock_path(state_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StateDirError(f"state dir {state_dir}: cannot create {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


class StateFile:
    """A :class:`~b00t_graph.events.Reporter` that passes events on and, after each, rewrites ``state.json``
    from the supervisor's nodes (atomically: a reader never sees half a file)."""

    def __init__(self, state_dir: Path, inner: Reporter, *, targets: Sequence[str], project: str | None) -> None:
        self.state_dir = state_dir
        self.inner = inner
        self.supervisor: Supervisor | None = None
        self.head = {"pid": os.getpid(), "since": time.time(), "targets": list(targets), "project": project}

    def event(self, node: str, phase: str, detail: str = "") -> None:
        self.inner.event(node, phase, detail)
        if phase != "probe":
            self.write()

    def write(self) -> None:
        nodes = {} if self.supervisor is None else {
            w.node: {"status": w.status, "restarts": w.total_restarts, "reason": w.reason}
            for w in self.supervisor.watched.values()}
        path = _state_path(self.state_dir)
        tmp = path.with_name(f".state.{os.getpid()}.json")
        tmp.write_text(json.dumps({**self.head, "watching": nodes}, indent=1))
        os.replace(tmp, path)


def clear(state_dir: Path) -> None:
    """Remove the state file: the supervisor ended cleanly (only its holder of the lock calls this)."""
    _state_path(state_dir).unlink(missing_ok=True)


def stop(state_dir: Path, project: str | None = None, timeout: float = STOP_TIMEOUT) -> SupervisorInfo | None:
    """End the supervisor of ``state_dir`` with SIGTERM and wait until it let go of its lock; the services
    it watched keep running. A stale state file is removed. Returns what ran (``None``: nothing)."""
    info = read(state_dir, project)
    if info is None:
        return None
    if not info.running:
        with hold(state_dir) as mine:
            if mine:  # not a supervisor that started just now
                clear(state_dir)
        return info
    if info.pid > 0:
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _held(_lock_path(state_dir)):
        if time.monotonic() > deadline:
            raise SupervisorError(f"the supervisor (pid {info.pid}) did not end within {timeout:g}s of SIGTERM; "
                                 f"see {log_path(state_dir)}")
        time.sleep(0.05)
    return info


async def choose(engine: Engine, catalog: Catalog, graph: Graph | None, state_dir: Path,
                 project: str | None) -> tuple[Graph, list[str]]:
    """What to supervise: the nodes of ``graph`` (default: every node b00t-graph runs here whose datum is
    known) that run now, started by a runtime that starts things."""
    from .inventory import compile_known, scan
    from .runtimes import ABSENT, State

    if graph is None:
        inv = await scan(engine.runtimes, state_dir, project=project)
        graph = compile_known(catalog, [m.node for m in inv.running() if m.node in catalog.datums])
    observed = await engine.observe(graph) if graph.nodes else {}
    nodes = [i for i, n in graph.nodes.items() if n.runtime in ("docker", "process") and n.spec.managed
             and observed.get(i, ABSENT).state in (State.RUNNING, State.UNREADY)]
    return graph, nodes
