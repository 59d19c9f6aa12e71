"""pytest plugin: services from datums for a test session, taken down after it — even after a crash.

Registered through the ``pytest11`` entry point, so installing b00t-graph is enough::

    @pytest.mark.b00t("demo.stack")
    def test_api(b00t_env):
        urlopen(b00t_env["DEMO_API_URL"])

    qdrant = b00t_graph.pytest.services("qdrant.docker", scope="module")   # or as a fixture

Services come up once per scope (a session-wide cache keyed by target set) and go down after it;
only what this test run started goes down, what ran before stays. Under pytest-xdist every worker
shares one ``up`` (the node locks make that safe) and the controller, which outlives the workers,
takes down what the run started. A small reaper process started with the first ``up`` watches the
pytest process and takes those services down if it dies (SIGKILL, ``os._exit``, OOM): no privileged
container as with testcontainers' Ryuk.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from .errors import B00tGraphError, UpFailed
from .locks import default_state_dir

RUN_ENV = "B00T_PYTEST_RUN"
ROOT_ENV = "B00T_PYTEST_ROOT_PID"
_KEY = pytest.StashKey["_Session"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("b00t", "b00t-graph services")
    group.addoption("--b00t-datums", action="append", default=[], metavar="DIR",
                    help="Datum folder for @pytest.mark.b00t targets (repeatable). Default: ini b00t_datums, "
                         "then b00t-graph's own lookup ($_B00T_Path, ./_b00t_, packaged).")
    group.addoption("--b00t-keep", action="store_true",
                    help="Leave the services running after the session (the next run reuses them; "
                         "a changed datum is still recreated).")
    group.addoption("--b00t-state-dir", default=None, metavar="DIR",
                    help="b00t-graph's state directory (default: $B00T_GRAPH_STATE_DIR or the user's).")
    parser.addini("b00t_datums", "Datum folders for @pytest.mark.b00t targets", type="paths", default=[])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "b00t(*targets, use=None): bring these b00t-graph targets up for the test; "
                                       "their environment is the b00t_env fixture")
    if not hasattr(config, "workerinput"):
        # The controller (or a plain run) names the run; xdist workers inherit it through the environment.
        os.environ[RUN_ENV] = uuid.uuid4().hex[:12]
        os.environ[ROOT_ENV] = str(os.getpid())
    config.stash[_KEY] = _Session(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    sess = config.stash.get(_KEY, None)
    if sess is not None:
        sess.finish()


class _Session:
    """What one pytest process brought up, and the run's shared record of what the run started."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.worker = hasattr(config, "workerinput")
        opt_dir = config.getoption("b00t_state_dir")
        self.state_dir = Path(opt_dir) if opt_dir else default_state_dir()
        datums = list(config.getoption("b00t_datums")) or [str(p) for p in config.getini("b00t_datums")]
        self.datums: list[str] = [str(Path(d).resolve()) for d in datums]
        self.keep = bool(config.getoption("b00t_keep"))
        self.run_id = os.environ.get(RUN_ENV) or uuid.uuid4().hex[:12]
        self.run_dir = self.state_dir / "pytest" / self.run_id
        self.cache: dict[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], dict[str, str] | str] = {}

    # --- the run's record -------------------------------------------------------------------------

    @contextmanager
    def _record(self) -> Iterator[dict[str, Any]]:
        """The run's ``started.json`` under an exclusive lock, written back on exit."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / "started.json"
        fd = os.open(self.run_dir / "record.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                data: dict[str, Any] = json.loads(path.read_text())
            except (OSError, ValueError):
                data = {"entries": []}
            yield data
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1))
            tmp.replace(path)
        finally:
            os.close(fd)

    def _remember(self, targets: Sequence[str], use: dict[str, str], started: Sequence[str]) -> None:
        with self._record() as data:
            data["entries"].append({"targets": list(targets), "use": use, "datums": self.datums,
                                    "state_dir": str(self.state_dir), "started": sorted(started)})
        self._ensure_reaper()

    def _ensure_reaper(self) -> None:
        """One reaper per run, watching the process that outlives all others (controller or plain run)."""
        if self.keep:
            return
        try:
            fd = os.open(self.run_dir / "reaper.pid", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return
        root = os.environ.get(ROOT_ENV, str(os.getpid()))
        log = open(self.run_dir / "reaper.log", "ab")  # handed to the child, closed here after
        try:
            proc = subprocess.Popen([sys.executable, "-m", "b00t_graph.reaper", str(self.run_dir), root],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                    close_fds=True)
        finally:
            log.close()
        os.write(fd, str(proc.pid).encode())
        os.close(fd)

    # --- services ---------------------------------------------------------------------------------

    def env_for(self, targets: Sequence[str], use: dict[str, str] | None = None) -> dict[str, str]:
        """Bring ``targets`` up once for this process; their environment, or a test error with the CLI's message."""
        key = (tuple(targets), tuple(sorted((use or {}).items())))
        hit = self.cache.get(key)
        if isinstance(hit, str):
            pytest.fail(hit, pytrace=False)
        if hit is not None:
            return dict(hit)
        try:
            env, _ = anyio.run(self._up, list(targets), dict(use or {}))
        except B00tGraphError as exc:
            self.cache[key] = msg = f"b00t-graph: {exc}"
            pytest.fail(msg, pytrace=False)
        self.cache[key] = env
        return dict(env)

    async def _up(self, targets: list[str], use: dict[str, str]) -> tuple[dict[str, str], list[str]]:
        from .api import load_graph, up_graph

        graph = load_graph(targets, self.datums or None, **_use_kw(use))
        result = await up_graph(graph, state_dir=self.state_dir)
        started = [i for i, t in result.timings.items() if t.action.changes or t.status == "failed"]
        if started:
            self._remember(targets, use, started)
        if result.failures or result.skipped or result.cancelled:
            raise UpFailed(result.failures, result.skipped)
        env: dict[str, str] = {}
        for t in graph.targets:
            env.update(graph.env_of(t))
        return env, started

    def finish(self) -> None:
        """At the end of the process: the controller (or a plain run) takes down what the run started."""
        if self.worker or not self.run_dir.exists():
            return
        try:
            if not self.keep:
                take_down(self.run_dir)
        finally:
            (self.run_dir / "done").touch()


def _use_kw(use: dict[str, str]) -> dict[str, Any]:
    """``use=`` for load_graph only where it is given (capability overrides)."""
    return {"use": use} if use else {}


def take_down(run_dir: Path) -> list[str]:
    """Take down what a run recorded as started, newest first; returns what failed (one line each)."""
    try:
        data = json.loads((run_dir / "started.json").read_text())
    except (OSError, ValueError):
        return []
    problems: list[str] = []
    for entry in reversed(data.get("entries", [])):
        try:
            _down_entry(entry)
        except B00tGraphError as exc:
            problems.append(str(exc))
    (run_dir / "started.json").unlink(missing_ok=True)
    return problems


def _down_entry(entry: dict[str, Any]) -> None:
    """Take down exactly what one recorded ``up`` started."""
    from .api import down_graph, load_graph

    graph = load_graph(entry["targets"], entry["datums"] or None, **_use_kw(entry.get("use") or {}))

    async def down() -> None:
        await down_graph(graph, state_dir=Path(entry["state_dir"]), only=set(entry["started"]))

    anyio.run(down)


# --- fixtures -------------------------------------------------------------------------------------


def _session(config: pytest.Config) -> _Session:
    return config.stash[_KEY]


def _marked(item: pytest.Item) -> tuple[list[str], dict[str, str]]:
    targets: list[str] = []
    use: dict[str, str] = {}
    for mark in reversed(list(item.iter_markers("b00t"))):  # module, class, then function marks
        targets += [str(t) for t in mark.args]
        use.update(mark.kwargs.get("use") or {})
    return list(dict.fromkeys(targets)), use


@pytest.fixture
def b00t_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment of the targets of this test's ``@pytest.mark.b00t`` marks (brought up once per run)."""
    targets, use = _marked(request.node)
    if not targets:
        pytest.fail("b00t_env needs @pytest.mark.b00t(\"TARGET\") on the test, its class or module", pytrace=False)
    return _session(request.config).env_for(targets, use)


@pytest.fixture(autouse=True)
def _b00t_marked(request: pytest.FixtureRequest) -> None:
    """A marked test gets its services even when it does not ask for ``b00t_env``."""
    if request.node.get_closest_marker("b00t") is None:
        return
    targets, use = _marked(request.node)
    if targets:
        _session(request.config).env_for(targets, use)


def services(*targets: str, scope: str = "session", use: dict[str, str] | None = None) -> Callable[..., Any]:
    """A fixture bringing ``targets`` up for ``scope``; its value is their environment.

    ``qdrant = services("qdrant.docker", scope="module")`` in a conftest or test module. A session-scoped
    fixture's services go down at the end of the run; a narrower one's at the end of its scope (only what
    that ``up`` started, and not with ``--b00t-keep``).
    """

    def fixture(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
        sess = _session(request.config)
        if scope == "session":
            yield sess.env_for(targets, use)
            return
        before = _started_count(sess)
        env = sess.env_for(targets, use)
        yield env
        sess.cache.pop((tuple(targets), tuple(sorted((use or {}).items()))), None)
        if not sess.keep:
            _down_since(sess, before)

    fixture.__name__ = "b00t_services_" + "_".join(t.replace(".", "_").replace("-", "_") for t in targets)
    return pytest.fixture(scope=scope)(fixture)  # type: ignore[call-overload,no-any-return]


def _started_count(sess: _Session) -> int:
    if not (sess.run_dir / "started.json").exists():
        return 0
    with sess._record() as data:
        return len(data["entries"])


def _down_since(sess: _Session, first: int) -> None:
    """Take down the entries recorded since ``first`` (a narrower scope ends)."""
    with sess._record() as data:
        mine, data["entries"] = data["entries"][first:], data["entries"][:first]
    for entry in reversed(mine):
        _down_entry(entry)
