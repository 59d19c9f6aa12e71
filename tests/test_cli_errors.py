"""Every user error is exit 2 with one line, every runtime failure exit 1 with one line, through real
subprocesses: a state dir under a file, a mixed graph (process + docker) with no engine reachable. No
exception group and no traceback ever reaches the user; an error that is not ours is one "internal error"
line pointing at B00T_DEBUG=1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from b00t_graph.cli import main
from b00t_graph.engine import Engine
from b00t_graph.errors import InputError, RuntimeUnavailable, StateDirError
from b00t_graph.locks import node_lock, state_dir_problem
from tests.procutil import Reaper, cli, records

WriteDatums = Callable[..., Path]
NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent.sock"}


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def one_line(stderr: str) -> str:
    got = lines(stderr)
    assert len(got) == 1, stderr
    assert "Traceback" not in stderr and "ExceptionGroup" not in stderr, stderr
    return got[0]


@pytest.fixture
def sleeper(write_datums: WriteDatums) -> Path:
    return write_datums({"sleeper.process": "[b00t]\ncommand = ['sleep', '30']\nstop_grace_ms = 500\n"})


@pytest.fixture
def mixed(write_datums: WriteDatums) -> Path:
    return write_datums({
        "sleeper.process": "[b00t]\ncommand = ['sleep', '30']\nstop_grace_ms = 500\n",
        "box.docker": "[b00t]\nimage = 'b00t-graph-test/busybox:1'\ncommand = ['sleep', '30']\n",
        "mixed.stack": "[b00t]\nmembers = ['sleeper.process', 'box.docker']\n",
    })


# --- a bad state dir: a bad option -------------------------------------------------------------------

@pytest.mark.parametrize("command", ["up", "down", "status", "plan"])
def test_state_dir_under_a_file_is_a_bad_option(sleeper: Path, state_dir: Path, tmp_path: Path,
                                                command: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a folder\n")
    proc = cli(command, "sleeper", "-d", str(sleeper), "--state-dir", str(afile / "x"), state_dir=state_dir)
    assert proc.returncode == 2, proc.stderr
    assert one_line(proc.stderr) == f"error: bad option --state-dir {afile / 'x'}: {afile} is not a directory"
    assert not records(state_dir)  # nothing was started anywhere else either
    assert afile.read_text() == "not a folder\n"


def test_state_dir_from_the_environment_is_checked_too(sleeper: Path, state_dir: Path, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    proc = cli("up", "sleeper", "-d", str(sleeper), state_dir=state_dir,
               env={"B00T_GRAPH_STATE_DIR": str(afile / "deeper" / "x")})
    assert proc.returncode == 2, proc.stderr
    assert one_line(proc.stderr) == (f"error: bad option $B00T_GRAPH_STATE_DIR {afile / 'deeper' / 'x'}: "
                                     f"{afile} is not a directory")


def test_state_dir_problem() -> None:
    assert state_dir_problem(Path("/etc/passwd/x")) == "/etc/passwd is not a directory"
    assert state_dir_problem(Path("/etc/passwd")) == "/etc/passwd is not a directory"
    assert state_dir_problem(Path("/tmp/b00tg-surely-absent/a/b")) is None  # created when needed


@pytest.mark.anyio
async def test_node_lock_under_a_file_is_a_state_dir_error(tmp_path: Path) -> None:
    """What ensure()/up_graph() callers get, instead of an OSError inside a task group."""
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(StateDirError, match="is not a directory"):
        async with node_lock(afile / "x", "a.process"):
            pass


@pytest.mark.anyio
async def test_engine_refuses_a_bad_state_dir_before_any_work(sleeper: Path, tmp_path: Path) -> None:
    """ensure()/up_graph() callers too: nothing is started, or made ahead, with a state dir that cannot lock."""
    from b00t_graph import down_graph, load_graph, up_graph

    afile = tmp_path / "afile"
    afile.write_text("")
    graph = load_graph(["sleeper"], sleeper)
    for call in (up_graph, down_graph):
        with pytest.raises(StateDirError, match="is not a directory"):
            await call(graph, state_dir=afile / "x")


# --- no engine, mixed graph: one line, exit 1 --------------------------------------------------------

@pytest.mark.parametrize("command", ["up", "down"])
def test_unreachable_engine_in_a_mixed_graph_is_one_line(mixed: Path, state_dir: Path, reaper: Reaper,
                                                         command: str) -> None:
    reaper.down_on_exit(["sleeper.process"], mixed)
    proc = cli(command, "mixed", "-d", str(mixed), state_dir=state_dir, env=NO_ENGINE)
    assert proc.returncode == 1, proc.stderr
    line = one_line(proc.stderr)
    assert line.startswith("error: docker runtime unavailable: ")
    assert "unix:///nonexistent.sock" in line
    assert not records(state_dir)  # the process node was not started half-way


def test_unreachable_engine_in_a_mixed_graph_status(mixed: Path, state_dir: Path) -> None:
    proc = cli("status", "mixed", "-d", str(mixed), state_dir=state_dir, env=NO_ENGINE)
    assert proc.returncode == 1, proc.stderr
    assert one_line(proc.stderr).startswith("error: docker runtime unavailable: ")
    assert "sleeper.process" in proc.stdout  # what can be seen is still shown


@pytest.mark.anyio
async def test_observe_raises_one_error_not_a_group(mixed: Path, monkeypatch: pytest.MonkeyPatch,
                                                    state_dir: Path) -> None:
    from b00t_graph import load_graph

    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE["DOCKER_HOST"])
    graph = load_graph(["mixed"], mixed)
    async with Engine(state_dir=state_dir) as engine:
        with pytest.raises(RuntimeUnavailable):
            await engine.observe(graph)


# --- the CLI boundary: groups unwrapped, bugs named --------------------------------------------------

def _raise_from_up(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    async def up(self: Engine, graph: object) -> None:
        raise exc

    monkeypatch.setattr(Engine, "up", up)


@pytest.mark.parametrize("exc, code, expected", [
    (ExceptionGroup("x", [ValueError("boom")]), 1,
     ["error: internal error: ValueError: boom (a bug in b00t-graph; B00T_DEBUG=1 shows the traceback)"]),
    (ExceptionGroup("x", [RuntimeUnavailable("docker", ["here"]), RuntimeUnavailable("docker", ["here"])]), 1,
     ["error: docker runtime unavailable; tried here"]),
    (ExceptionGroup("x", [InputError("one"), ExceptionGroup("y", [InputError("two")])]), 2,
     ["error: one", "error: two"]),
    (ExceptionGroup("x", [InputError("one"), RuntimeUnavailable("docker", [])]), 1,
     ["error: one", "error: docker runtime unavailable"]),
    (KeyError("surprise"), 1,
     ["error: internal error: KeyError: 'surprise' (a bug in b00t-graph; B00T_DEBUG=1 shows the traceback)"]),
], ids=["bug-in-group", "same-error-twice", "nested-input-errors", "mixed-errors", "bare-bug"])
def test_exception_groups_are_unwrapped_at_the_cli(sleeper: Path, monkeypatch: pytest.MonkeyPatch,
                                                   state_dir: Path, exc: BaseException, code: int,
                                                   expected: list[str]) -> None:
    monkeypatch.delenv("B00T_DEBUG", raising=False)
    _raise_from_up(monkeypatch, exc)
    res = CliRunner().invoke(main, ["up", "sleeper", "-d", str(sleeper), "-q"])
    assert isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == code
    assert lines(res.stderr) == expected
    assert "Traceback" not in res.output


def test_debug_shows_the_traceback_of_a_bug(sleeper: Path, monkeypatch: pytest.MonkeyPatch,
                                            state_dir: Path) -> None:
    monkeypatch.setenv("B00T_DEBUG", "1")
    _raise_from_up(monkeypatch, ExceptionGroup("x", [ValueError("boom")]))
    res = CliRunner().invoke(main, ["up", "sleeper", "-d", str(sleeper), "-q"])
    assert res.exit_code == 1
    assert "Traceback" in res.stderr and "ValueError: boom" in res.stderr
    assert lines(res.stderr)[-1].startswith("error: internal error: ValueError: boom")


def test_interrupt_inside_a_group_is_an_interruption(sleeper: Path, monkeypatch: pytest.MonkeyPatch,
                                                     state_dir: Path) -> None:
    monkeypatch.delenv("B00T_DEBUG", raising=False)
    _raise_from_up(monkeypatch, BaseExceptionGroup("x", [KeyboardInterrupt(), ValueError("later")]))
    res = CliRunner().invoke(main, ["up", "sleeper", "-d", str(sleeper), "-q"])
    assert res.exit_code == 130
    assert lines(res.stderr) == ["interrupted"]
