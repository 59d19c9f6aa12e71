"""The detached supervisor on real processes, through the real CLI: a crash is restarted, `status` and
`ps --json` show it, a second one is refused, `down` is not undone, `--stop` leaves the services
running, and a supervisor killed with -9 is seen as not running."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from b00t_graph.detached import LOG_LIMIT, StateFile, find_all, folder, hold, read, start_log, stop
from b00t_graph.events import Silent
from b00t_graph.projects import project_state_dir
from tests.procutil import Reaper, alive, cli, free_port, marks, records, wait_for, wait_gone
from tests.test_supervisor import datum, script  # noqa: F401  # the crashy service and its fixture

WriteDatums = Callable[..., Path]


def supervisors(state_dir: Path) -> list[dict[str, Any]]:
    ps = cli("ps", "--json", state_dir=state_dir)
    # exit 1 only when nothing at all is listed and the Docker engine is not there to ask
    assert ps.returncode == 0 or (ps.returncode == 1 and "docker is unavailable" in ps.stderr), ps.stderr
    found: list[dict[str, Any]] = json.loads(ps.stdout)["supervisors"]
    return found


def starts(mark: Path, name: str) -> list[int]:
    return [pid for what, n, pid in marks(mark) if what == "start" and n == name]


def up_and_supervise(folder_: Path, state_dir: Path, reaper: Reaper, backend: str, *targets: str) -> int:
    """``up app.process``, then ``supervise TARGETS``; returns the supervisor's pid (reaped at teardown)."""
    reaper.down_on_exit(["app.process"], folder_)
    up = cli("up", "app.process", "-q", "-d", str(folder_), state_dir=state_dir, backend=backend)
    assert up.returncode == 0, up.stderr
    sup = cli("supervise", *targets, "-d", str(folder_), state_dir=state_dir, backend=backend, timeout=120)
    assert sup.returncode == 0, sup.stderr
    found = supervisors(state_dir)
    assert len(found) == 1 and found[0]["running"], found
    pid = int(found[0]["pid"])
    reaper.pids.append(pid)
    assert f"(pid {pid})" in sup.stderr
    return pid


@pytest.fixture
def stack(write_datums: WriteDatums, script: Path, tmp_path: Path) -> tuple[Path, Path]:  # noqa: F811
    mark = tmp_path / "mark"
    folder_ = write_datums({
        "db.process": datum("db", script, mark, port=free_port()),
        "app.process": datum("app", script, mark, port=free_port(), deps=("db.process",),
                             restart='policy = "always"\nbackoff_ms = 50'),
    })
    return folder_, mark


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_detached_supervisor_restarts_a_crash_and_stop_leaves_the_services_running(
        stack: tuple[Path, Path], state_dir: Path, reaper: Reaper, backend: str) -> None:
    folder_, mark = stack
    pid = up_and_supervise(folder_, state_dir, reaper, backend, "app.process")
    assert os.getsid(pid) == pid, "the supervisor runs in a session of its own"
    first = starts(mark, "app")
    assert len(first) == 1
    os.kill(first[0], signal.SIGKILL)
    wait_for(lambda: len(starts(mark, "app")) == 2, timeout=30, what="app restarted by the detached supervisor")
    state = folder(state_dir) / "state.json"  # what `ps` reads; polled here without a `ps` each time
    wait_for(lambda: json.loads(state.read_text())["watching"]["app.process"]["restarts"] == 1, timeout=30,
             what="the restart to be counted")
    [info] = supervisors(state_dir)
    assert info["pid"] == pid and info["targets"] == ["app.process"]
    assert info["watching"]["app.process"]["status"] == "running", info
    status = cli("status", state_dir=state_dir)
    assert f"supervisor: pid {pid} since" in status.stdout and "1 restart(s) so far" in status.stdout, status.stdout
    of_target = cli("status", "app.process", "-d", str(folder_), state_dir=state_dir)
    assert f"supervisor: pid {pid} since" in of_target.stdout, of_target.stdout

    stop = cli("supervise", "--stop", state_dir=state_dir, backend=backend)
    assert stop.returncode == 0, stop.stderr
    assert f"stopped the supervisor (pid {pid})" in stop.stderr
    assert wait_gone(pid, 10)
    assert supervisors(state_dir) == []
    assert not (folder(state_dir) / "state.json").exists()
    assert alive(starts(mark, "app")[-1]) and alive(starts(mark, "db")[0]), "--stop must leave the services running"
    again = cli("supervise", "--stop", state_dir=state_dir)
    assert again.returncode == 0 and "no supervisor runs here" in again.stderr


def test_only_one_supervisor_runs_per_state_dir(stack: tuple[Path, Path], state_dir: Path, reaper: Reaper) -> None:
    folder_, _ = stack
    pid = up_and_supervise(folder_, state_dir, reaper, "asyncio")
    second = cli("supervise", "-d", str(folder_), state_dir=state_dir, timeout=120)
    assert second.returncode == 0, second.stderr
    assert f"already running, nothing changed: supervisor: pid {pid}" in second.stderr
    # Even one started past the check (in the foreground, racing) finds the lock taken and leaves.
    racer = cli("supervise", "--foreground", "-d", str(folder_), state_dir=state_dir, timeout=120)
    assert racer.returncode == 0 and "already running" in racer.stderr, racer.stderr
    [info] = supervisors(state_dir)
    assert info["pid"] == pid and info["running"]
    assert cli("supervise", "--stop", state_dir=state_dir).returncode == 0
    assert wait_gone(pid, 10)


def test_down_of_supervised_nodes_is_not_undone(stack: tuple[Path, Path], state_dir: Path, reaper: Reaper) -> None:
    folder_, mark = stack
    pid = up_and_supervise(folder_, state_dir, reaper, "asyncio")
    [info] = supervisors(state_dir)
    assert set(info["watching"]) == {"db.process", "app.process"}
    down = cli("down", "app.process", "-q", "-d", str(folder_), state_dir=state_dir)
    assert down.returncode == 0, down.stderr
    # With nothing left to watch the supervisor ends by itself, having restarted nothing.
    assert wait_gone(pid, 30), (folder(state_dir) / "log").read_text()
    log = (folder(state_dir) / "log").read_text()
    assert "app.process stopped: taken down by a `down` or `stop`" in log, log
    assert "restarting" not in log, log
    assert len(starts(mark, "app")) == 1 and len(starts(mark, "db")) == 1
    assert records(state_dir) == {}
    assert supervisors(state_dir) == []


def test_a_supervisor_killed_with_9_is_not_believed(stack: tuple[Path, Path], state_dir: Path,
                                                   reaper: Reaper) -> None:
    folder_, _ = stack
    pid = up_and_supervise(folder_, state_dir, reaper, "asyncio")
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid, 10)
    [info] = supervisors(state_dir)
    assert info["pid"] == pid and not info["running"] and info["stale"]
    status = cli("status", state_dir=state_dir)
    assert f"supervisor: not running (pid {pid} did not end cleanly" in status.stdout, status.stdout
    # A new one starts in its place; the stale state does not stop it.
    sup = cli("supervise", "-d", str(folder_), state_dir=state_dir, timeout=120)
    assert sup.returncode == 0, sup.stderr
    [info] = supervisors(state_dir)
    assert info["running"] and info["pid"] != pid
    reaper.pids.append(int(info["pid"]))
    assert cli("supervise", "--stop", state_dir=state_dir).returncode == 0
    assert wait_gone(int(info["pid"]), 10)


def test_supervise_with_nothing_running_says_so(stack: tuple[Path, Path], state_dir: Path) -> None:
    folder_, _ = stack
    res = cli("supervise", "app.process", "-d", str(folder_), state_dir=state_dir, timeout=120)
    assert res.returncode == 1, res.stderr
    assert "error: nothing of app.process runs here to supervise; `b00t-graph up` it first" in res.stderr
    assert "Traceback" not in res.stderr
    assert supervisors(state_dir) == []


def test_the_lock_not_the_state_file_says_whether_a_supervisor_runs(tmp_path: Path) -> None:
    sd = tmp_path / "state"
    assert read(sd) is None and find_all(sd) == []
    with hold(sd) as mine:
        assert mine
        with hold(sd) as second:  # another open file description: as another process would see it
            assert not second
        StateFile(sd, Silent(), targets=["x.process"], project=None).write()
        info = read(sd)
        assert info is not None and info.running and not info.stale and info.pid == os.getpid()
        with hold(project_state_dir(sd, "p1")) as theirs:  # a project has a supervisor of its own
            assert theirs
            StateFile(project_state_dir(sd, "p1"), Silent(), targets=[], project="p1").write()
            assert [(i.project, i.running) for i in find_all(sd)] == [(None, True), ("p1", True)]
    stale = read(sd)  # the holder is gone (as after kill -9), its state file is left
    assert stale is not None and not stale.running and stale.stale and stale.targets == ("x.process",)
    assert "not running" in stale.text()
    assert stop(sd) == stale and read(sd) is None, "--stop clears a stale state file"


def test_a_new_supervisor_starts_a_fresh_log_past_the_limit(tmp_path: Path) -> None:
    sd = tmp_path / "state"
    log = start_log(sd)
    log.write_bytes(b"x" * 100)
    assert start_log(sd) == log and log.stat().st_size == 100  # small: appended to
    log.write_bytes(b"x" * (LOG_LIMIT + 1))
    assert start_log(sd) == log and not log.exists()
    assert (log.parent / "log.1").stat().st_size == LOG_LIMIT + 1
