"""The process runtime with real local processes, through the engine, on asyncio and trio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import anyio
import psutil
import pytest

from b00t_graph import Engine, NodeExited, ReadinessTimeout, RunResult, load_graph
from b00t_graph.runtimes import Action, State
from b00t_graph.runtimes.process import ProcessRuntime
from tests.procutil import (
    Reaper,
    alive,
    cancel_once_recorded,
    free_port,
    marks,
    process_datum,
    records,
    wait_for,
    wait_gone,
)

pytestmark = pytest.mark.anyio

WriteDatums = Callable[..., Path]


async def up(folder: Path, *targets: str, state_dir: Path) -> RunResult:
    graph = load_graph(targets, folder)
    async with Engine(state_dir=state_dir) as engine:
        return await engine.up(graph)


async def down(folder: Path, *targets: str, state_dir: Path) -> RunResult:
    graph = load_graph(targets, folder)
    async with Engine(state_dir=state_dir) as engine:
        return await engine.down(graph)


def pid_of(state_dir: Path, ident: str) -> int:
    return int(records(state_dir)[ident]["pid"])


async def test_starts_detached_records_pid_and_passes_env(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reaper: Reaper) -> None:
    db_port, app_port = free_port(), free_port()
    folder = write_datums({
        "db.process": process_datum("db", svc, port=db_port, env={"DB_URL": f"http://127.0.0.1:{db_port}"}),
        "app.process": process_datum("app", svc, deps=["db.process"], port=app_port,
                                     env={"APP_URL": "http://127.0.0.1:" + str(app_port)}),
    })
    reaper.down_on_exit(["app.process"], folder)
    res = await up(folder, "app.process", state_dir=state_dir)
    assert res.ok, res.failures
    recs = records(state_dir)
    assert set(recs) == {"db.process", "app.process"}
    for ident, rec in recs.items():
        assert alive(int(rec["pid"]), float(rec["create_time"])), ident
        assert rec["config_hash"] == load_graph([ident], folder).nodes[ident].config_hash
        assert Path(str(rec["log"])).exists()
        # Its own session: Ctrl-C in the terminal that ran `up` does not reach it.
        assert os.getsid(int(rec["pid"])) == int(rec["pid"])
    with urllib.request.urlopen(f"http://127.0.0.1:{app_port}/env", timeout=30) as resp:
        env = json.loads(resp.read())
    assert env["DB_URL"] == f"http://127.0.0.1:{db_port}"  # a dependency's export
    assert env["APP_URL"] == f"http://127.0.0.1:{app_port}"  # its own
    assert env["B00T_NODE"] == "app.process"
    assert res.timings["app.process"].detail.startswith("http http://127.0.0.1:")


async def test_ordering_with_real_processes(write_datums: WriteDatums, svc: Path, state_dir: Path,
                                            reaper: Reaper, tmp_path: Path) -> None:
    # A boots until C is ready, B fast, C needs only B: C is ready before A however slow the machine;
    # the exact instants are on a virtual clock in test_engine.
    ports = {n: free_port() for n in "abc"}
    booted = tmp_path / "a-may-finish-booting"
    folder = write_datums({
        "a.process": process_datum("a", svc, f"--wait-for={booted}", port=ports["a"], timeout_ms=120_000),
        "b.process": process_datum("b", svc, port=ports["b"]),
        "c.process": process_datum("c", svc, deps=["b.process"], port=ports["c"]),
    })
    reaper.down_on_exit(["a.process", "c.process"], folder)

    async def open_a_once_c_is_ready() -> None:
        while not records(state_dir).get("c.process", {}).get("ready"):
            await anyio.sleep(0.02)
        booted.touch()

    async with anyio.create_task_group() as tg:
        tg.start_soon(open_a_once_c_is_ready)
        res = await up(folder, "a.process", "c.process", state_dir=state_dir)
        tg.cancel_scope.cancel()  # c never ready (a failure): stop waiting for it
    assert res.ok, res.failures
    t = res.timings
    assert (t["c.process"].ready or 0) < (t["a.process"].ready or 0)
    # c becomes runnable when b is ready, while a still boots
    assert (t["b.process"].ready or 0) <= (t["c.process"].runnable or 0) < (t["a.process"].ready or 0)
    assert [h.node for h in res.critical] == ["a.process"]


async def test_readiness_timeout_names_the_node_and_the_probe(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reaper: Reaper) -> None:
    port = free_port()  # nothing will ever listen here: the service sleeps without serving
    folder = write_datums({
        "deaf.process": process_datum("deaf", svc) + (
            "[b00t.health_check]\n"
            f'http_url = "http://127.0.0.1:{port}/health"\ntimeout_ms = 3000\ninterval_ms = 50\n'),
        "user.process": process_datum("user", svc, deps=["deaf.process"]),
        "free.process": process_datum("free", svc),
    })
    reaper.down_on_exit(["user.process", "free.process"], folder)
    t0 = time.monotonic()
    res = await up(folder, "user.process", "free.process", state_dir=state_dir)
    assert time.monotonic() - t0 < 40  # the 3 s timeout holds (the others' would be 60 s)
    err = res.failures["deaf.process"]
    assert isinstance(err, ReadinessTimeout)
    assert err.node == "deaf.process"
    text = str(err)
    assert text.startswith("deaf.process: ")
    assert f"http http://127.0.0.1:{port}/health" in text and "did not pass within 3s" in text
    assert "deaf: starting" in err.log_tail
    assert res.skipped == {"user.process": "dependency deaf.process failed"}
    assert res.timings["free.process"].status == "ready"
    # The process that never became ready was stopped again (`up --keep-failed` leaves it running).
    assert "deaf.process" not in records(state_dir)
    assert not (await down(folder, "user.process", "free.process", state_dir=state_dir)).failures
    assert records(state_dir) == {}


async def test_process_that_exits_at_once_shows_its_log_tail(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reaper: Reaper) -> None:
    folder = write_datums({
        "crash.process": process_datum("crash", svc, "--exit=3", port=free_port()),
        "after.process": process_datum("after", svc, deps=["crash.process"]),
    })
    reaper.down_on_exit(["after.process"], folder)
    t0 = time.monotonic()
    res = await up(folder, "after.process", state_dir=state_dir)
    assert time.monotonic() - t0 < 30, "an exit is seen at once, not after the 60 s readiness timeout"
    err = res.failures["crash.process"]
    assert isinstance(err, NodeExited)
    assert "exited with code 3" in str(err)
    assert "boom" in err.log_tail and "boom" in str(err)
    assert res.skipped == {"after.process": "dependency crash.process failed"}


async def test_second_up_is_idempotent(write_datums: WriteDatums, svc: Path, state_dir: Path,
                                       reaper: Reaper) -> None:
    mark = state_dir.parent / "marks"
    reaper.mark_files.append(mark)
    folder = write_datums({
        "db.process": process_datum("db", svc, f"--mark={mark}", port=free_port()),
        "app.process": process_datum("app", svc, f"--mark={mark}", deps=["db.process"]),
    })
    reaper.down_on_exit(["app.process"], folder)
    assert (await up(folder, "app.process", state_dir=state_dir)).ok
    first = {i: r["pid"] for i, r in records(state_dir).items()}
    res = await up(folder, "app.process", state_dir=state_dir)
    assert res.ok
    assert {i: r["pid"] for i, r in records(state_dir).items()} == first
    for ident in first:
        tm = res.timings[ident]
        assert tm.action is Action.NONE and (tm.status, tm.detail) == ("running", "already running")
    wait_for(lambda: len(marks(mark)) >= 2, what="both services to start")  # app has no probe
    time.sleep(0.1)
    assert sorted(m[1] for m in marks(mark)) == ["app", "db"], "nothing started twice"


@pytest.mark.parametrize("no_recreate", [False, True])
async def test_config_change_restarts_unless_no_recreate(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reaper: Reaper, no_recreate: bool) -> None:
    port = free_port()
    folder = write_datums({"web.process": process_datum("web", svc, "--tag=v1", port=port)})
    reaper.down_on_exit(["web.process"], folder)
    assert (await up(folder, "web.process", state_dir=state_dir)).ok
    old = records(state_dir)["web.process"]
    write_datums({"web.process": process_datum("web", svc, "--tag=v2", port=port)}, folder)
    async with Engine(state_dir=state_dir, no_recreate=no_recreate) as engine:
        graph = load_graph(["web.process"], folder)
        actions, observed = await engine.plan(graph)
        assert observed["web.process"].state is State.RUNNING
        assert actions["web.process"] is (Action.KEEP if no_recreate else Action.RECREATE)
        res = await engine.up(graph)
    assert res.ok, res.failures
    new = records(state_dir)["web.process"]
    if no_recreate:
        assert new == old
        assert res.timings["web.process"].detail == Action.KEEP.value
    else:
        assert new["pid"] != old["pid"] and "--tag=v2" in new["argv"]
        assert new["config_hash"] != old["config_hash"]
        assert wait_gone(int(old["pid"]))
        assert alive(int(new["pid"]), float(new["create_time"]))
        assert res.timings["web.process"].action is Action.RECREATE


async def test_stale_record_of_a_dead_process_is_not_running(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reaper: Reaper) -> None:
    folder = write_datums({"w.process": process_datum("w", svc, port=free_port())})
    reaper.down_on_exit(["w.process"], folder)
    assert (await up(folder, "w.process", state_dir=state_dir)).ok
    old = pid_of(state_dir, "w.process")
    psutil.Process(old).kill()
    assert wait_gone(old)
    graph = load_graph(["w.process"], folder)
    obs = (await ProcessRuntime(state_dir=state_dir).observe(list(graph.nodes.values())))["w.process"]
    assert obs.state is State.STOPPED and "stale" in obs.detail
    res = await up(folder, "w.process", state_dir=state_dir)
    assert res.ok and res.timings["w.process"].action is Action.START
    new = pid_of(state_dir, "w.process")
    assert new != old and alive(new)


async def test_reused_pid_is_not_ours_and_is_never_signalled(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reaper: Reaper) -> None:
    folder = write_datums({"w.process": process_datum("w", svc)})
    graph = load_graph(["w.process"], folder)
    # Some other process now holds the pid the record names; only its start time tells them apart.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    reaper.pids.append(other.pid)
    try:
        created = psutil.Process(other.pid).create_time()
        (state_dir / "process").mkdir(parents=True)
        (state_dir / "process" / "w.process.json").write_text(json.dumps({
            "pid": other.pid, "create_time": created - 100.0, "config_hash": graph.nodes["w.process"].config_hash,
            "argv": [], "cwd": "/", "log": "", "node": "w.process"}))
        obs = (await ProcessRuntime(state_dir=state_dir).observe(list(graph.nodes.values())))["w.process"]
        assert obs.state is State.STOPPED
        res = await down(folder, "w.process", state_dir=state_dir)
        assert res.timings["w.process"].status == "stopped" and not res.failures
        assert records(state_dir) == {}
        time.sleep(0.05)
        assert other.poll() is None, "down must not signal a process b00t-graph did not start"
    finally:
        other.kill()
        other.wait()


async def test_down_stops_in_reverse_order(write_datums: WriteDatums, svc: Path, state_dir: Path,
                                           reaper: Reaper) -> None:
    mark = state_dir.parent / "marks"
    reaper.mark_files.append(mark)
    folder = write_datums({
        "a.process": process_datum("a", svc, f"--mark={mark}", port=free_port()),
        "b.process": process_datum("b", svc, f"--mark={mark}", deps=["a.process"], port=free_port()),
        "c.process": process_datum("c", svc, f"--mark={mark}", deps=["b.process"], port=free_port()),
    })
    reaper.down_on_exit(["c.process"], folder)
    assert (await up(folder, "c.process", state_dir=state_dir)).ok
    pids = {i: pid_of(state_dir, i) for i in ("a.process", "b.process", "c.process")}
    res = await down(folder, "c.process", state_dir=state_dir)
    assert not res.failures
    assert [(w, n) for w, n, _ in marks(mark) if w == "term"] == [("term", "c"), ("term", "b"), ("term", "a")]
    assert all(wait_gone(p) for p in pids.values())
    assert records(state_dir) == {}
    # A second down finds nothing to stop.
    again = await down(folder, "c.process", state_dir=state_dir)
    assert {t.status for t in again.timings.values()} == {"absent"}


async def test_down_kills_a_process_that_ignores_sigterm_after_the_grace_period(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reaper: Reaper) -> None:
    mark = state_dir.parent / "marks"
    reaper.mark_files.append(mark)
    folder = write_datums({
        "stubborn.process": process_datum("stubborn", svc, f"--mark={mark}", "--ignore-term", port=free_port(),
                                          stop_grace_ms=300),
    })
    reaper.down_on_exit(["stubborn.process"], folder)
    assert (await up(folder, "stubborn.process", state_dir=state_dir)).ok
    pid = pid_of(state_dir, "stubborn.process")
    t0 = time.monotonic()
    res = await down(folder, "stubborn.process", state_dir=state_dir)
    took = time.monotonic() - t0
    assert not res.failures
    assert wait_gone(pid), "SIGKILL follows the grace period"
    assert ("term", "stubborn", pid) in marks(mark), "SIGTERM came first"
    assert 0.3 <= took < 8.0  # the datum's 0.3 s grace, then SIGKILL; not the 10 s default


async def test_cancelled_up_leaves_the_started_process_recorded_for_down(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reaper: Reaper) -> None:
    folder = write_datums({
        "slow.process": process_datum("slow", svc, "--boot=30", port=free_port(), timeout_ms=60_000),
        "after.process": process_datum("after", svc, deps=["slow.process"]),
    })
    reaper.down_on_exit(["after.process"], folder)
    graph = load_graph(["after.process"], folder)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg, Engine(state_dir=state_dir) as engine:
            tg.start_soon(cancel_once_recorded, scope, state_dir, "slow.process")
            await engine.up(graph)
    assert scope.cancelled_caught
    recs = records(state_dir)
    assert set(recs) == {"slow.process"}
    pid = int(recs["slow.process"]["pid"])
    assert alive(pid), "a started service outlives the cancelled run, like a container"
    assert not (await down(folder, "after.process", state_dir=state_dir)).failures
    assert wait_gone(pid)


# --- the log's stamping pump -------------------------------------------------------------------------


def _pumps_of(log: Path) -> list[psutil.Process]:
    """Live stamping pumps writing ``log`` (their command line names it)."""
    out = []
    for proc in psutil.process_iter():
        try:
            if str(log) in proc.cmdline() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.Error:
            continue
    return out


def _sh(name: str, script: str) -> str:
    return (f'[b00t]\nname = "{name}"\ntype = "process"\ncommand = {json.dumps(["sh", "-c", script])}\n'
            "stop_grace_ms = 1000\n")


async def test_a_service_that_dies_at_once_loses_no_line(write_datums: WriteDatums, state_dir: Path,
                                                         reaper: Reaper) -> None:
    folder = write_datums({"burst.process": _sh("burst", "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); "
                                                "echo line$i; done; exit 3")})
    reaper.down_on_exit(["burst.process"], folder)
    res = await up(folder, "burst.process", state_dir=state_dir)
    err = res.failures["burst.process"]
    assert isinstance(err, NodeExited) and "code 3" in str(err)
    assert err.log_tail.splitlines()[-1] == "line3000"  # the pump had written it when the tail was read
    log = state_dir / "process" / "burst.process.log"
    assert log.read_text().splitlines() == [f"line{i}" for i in range(1, 3001)]
    index = (state_dir / "process" / "burst.process.log.idx").read_text().splitlines()
    assert index[-1] == "end" and len(index) == 3001  # a stamp per line, then the pump's end
    wait_for(lambda: not _pumps_of(log), what="the pump ended with its service")


async def test_down_leaves_no_pump_behind(write_datums: WriteDatums, state_dir: Path, reaper: Reaper) -> None:
    # the service ignores SIGTERM: down's SIGKILL after the grace period ends it; the pump goes with it
    folder = write_datums({"stubborn.process": _sh("stubborn", "trap '' TERM; echo up; while :; do sleep 1; done")})
    reaper.down_on_exit(["stubborn.process"], folder)
    assert (await up(folder, "stubborn.process", state_dir=state_dir)).ok
    log = state_dir / "process" / "stubborn.process.log"
    pid = pid_of(state_dir, "stubborn.process")
    pumps = _pumps_of(log)
    assert len(pumps) == 1 and os.getpgid(pumps[0].pid) == pid  # in the service's own group
    assert not (await down(folder, "stubborn.process", state_dir=state_dir)).failures
    assert wait_gone(pid)
    assert not _pumps_of(log)
    assert log.read_text() == "up\n"
