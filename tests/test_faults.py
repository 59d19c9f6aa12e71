"""Faults the way they happen to users, on real processes: kill -9 of `up`, a lost state directory,
a foreign listener on a node's port, a node dying after its probe passed, `down` during `up`, a
grandchild that ignores SIGTERM, and what the state directory keeps over many runs."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import anyio
import psutil
import pytest

from b00t_graph import Engine, load_graph
from b00t_graph.runtimes.process import GATE_ARGV0, MARK_NODE, MARK_STATE, state_id
from tests.procutil import (
    Reaper,
    alive,
    cli,
    cli_popen,
    free_port,
    marks,
    process_datum,
    q,
    records,
    stack_datum,
    wait_for,
    wait_gone,
)

WriteDatums = Callable[..., Path]


def ours(state_dir: Path) -> dict[str, list[psutil.Process]]:
    """node → the live service leaders (their own session) that carry this state directory's markers."""
    sid = state_id(state_dir)
    out: dict[str, list[psutil.Process]] = {}
    for proc in psutil.process_iter():
        try:
            env = proc.environ()
            if env.get(MARK_STATE) != sid or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if os.getsid(proc.pid) != proc.pid:
                continue  # a child of a service, not a service
            out.setdefault(env[MARK_NODE], []).append(proc)
        except (psutil.Error, OSError, KeyError):
            continue
    return out


def gates(state_dir: Path) -> list[psutil.Process]:
    return [p for procs in ours(state_dir).values() for p in procs if GATE_ARGV0 in _cmdline(p)]


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def stack(write_datums: WriteDatums, svc: Path, mark: Path) -> Path:
    m = f"--mark={mark}"
    return write_datums({
        "db.process": process_datum("db", svc, m, port=free_port()),
        "cache.process": process_datum("cache", svc, m, "--boot=0.1", port=free_port()),
        "api.process": process_datum("api", svc, m, deps=["db.process", "cache.process"], port=free_port()),
        "worker.process": process_datum("worker", svc, m, deps=["db.process"]),
        "all.stack": stack_datum("all", ["api.process", "worker.process"]),
    })


# --- 1. write-ahead records ----------------------------------------------------------------------


def test_kill_9_of_up_at_random_points_never_leaves_an_unrecorded_or_duplicate_service(
        write_datums: WriteDatums, svc: Path, state_dir: Path, tmp_path: Path, reaper: Reaper) -> None:
    mark = tmp_path / "marks"
    reaper.mark_files.append(mark)
    folder = stack(write_datums, svc, mark)
    reaper.down_on_exit(["all.stack"], folder)
    rng = random.Random(9)
    kinds: Counter[int] = Counter()
    t0 = time.monotonic()
    assert cli("--help", state_dir=state_dir).returncode == 0
    boot = time.monotonic() - t0  # what the CLI takes before it can start anything, on this machine now
    for attempt in range(15):
        up = cli_popen("up", "all.stack", "-q", "-d", str(folder), state_dir=state_dir)
        time.sleep(boot * 0.7 + rng.uniform(0.0, 0.5))
        up.send_signal(signal.SIGKILL)
        up.communicate(timeout=120)
        wait_for(lambda: not gates(state_dir), timeout=60, what="gates of the killed run to end")
        running = ours(state_dir)
        recs = records(state_dir)
        for node, procs in running.items():
            assert len(procs) == 1, f"try {attempt}: {node} runs {len(procs)} times"
            assert node in recs and int(recs[node]["pid"]) == procs[0].pid, (
                f"try {attempt}: {node} (pid {procs[0].pid}) runs without a record")
        kinds[len(running)] += 1
    # A full run afterwards completes what the killed ones began, starting nothing twice.
    done = cli("up", "all.stack", "-q", "-d", str(folder), state_dir=state_dir)
    assert done.returncode == 0, done.stderr
    running = ours(state_dir)
    assert {n: len(p) for n, p in running.items()} == {
        "db.process": 1, "cache.process": 1, "api.process": 1, "worker.process": 1}
    gone = cli("down", "all.stack", "-q", "-d", str(folder), state_dir=state_dir)
    assert gone.returncode == 0, gone.stderr
    wait_for(lambda: not ours(state_dir), timeout=60, what="down to leave nothing")
    assert records(state_dir) == {}
    print("services running after each kill (count → tries):", dict(sorted(kinds.items())))


def test_a_lost_state_dir_still_sees_stops_and_never_duplicates(
        write_datums: WriteDatums, svc: Path, state_dir: Path, tmp_path: Path, reaper: Reaper) -> None:
    mark = tmp_path / "marks"
    reaper.mark_files.append(mark)
    folder = stack(write_datums, svc, mark)
    reaper.down_on_exit(["all.stack"], folder)
    assert cli("up", "all.stack", "-q", "-d", str(folder), state_dir=state_dir).returncode == 0
    first = {n: p[0].pid for n, p in ours(state_dir).items()}
    assert len(first) == 4
    shutil.rmtree(state_dir)

    status = cli("status", "all.stack", "--json", "-d", str(folder), state_dir=state_dir)
    assert status.returncode == 0, status.stderr
    states = {n: v["state"] for n, v in json.loads(status.stdout).items() if n.endswith(".process")}
    assert states == dict.fromkeys(first, "running")

    again = cli("up", "all.stack", "-q", "-d", str(folder), state_dir=state_dir)
    assert again.returncode == 0, again.stderr
    assert {n: [p.pid for p in ps] for n, ps in ours(state_dir).items()} == {n: [p] for n, p in first.items()}
    assert Counter(n for w, n, _ in marks(mark) if w == "start") == dict.fromkeys(
        ("db", "cache", "api", "worker"), 1), "nothing started twice"
    assert set(records(state_dir)) == set(first), "the services found by their markers have records again"

    shutil.rmtree(state_dir)
    gone = cli("down", "all.stack", "-d", str(folder), state_dir=state_dir)
    assert gone.returncode == 0, gone.stderr
    assert "stopped 4 node(s)" in gone.stderr
    assert all(wait_gone(p) for p in first.values()), "down stopped what runs, records or not"
    assert not ours(state_dir)


# --- 2. readiness that cannot be fooled ----------------------------------------------------------


def listener(port: int) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    return s


def tcp_datum(name: str, svc: Path, port: int, *args: str, timeout_ms: int = 5000) -> str:
    return process_datum(name, svc, *args) + (
        f'[b00t.health_check]\ntcp = "127.0.0.1:{port}"\ntimeout_ms = {timeout_ms}\ninterval_ms = 50\n')


def test_a_port_held_by_another_program_fails_the_node_at_once(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reaper: Reaper) -> None:
    port = free_port()
    folder = write_datums({"web.process": process_datum("web", svc, port=port)})
    reaper.down_on_exit(["web.process"], folder)
    with listener(port):
        proc = cli("up", "web.process", "-q", "-d", str(folder), state_dir=state_dir)
    assert proc.returncode == 1
    assert f"port {port} is in use by another program" in proc.stderr
    assert f"pid {os.getpid()}" in proc.stderr
    assert records(state_dir) == {} and not ours(state_dir), "nothing was started"


def test_a_probe_answered_by_another_program_does_not_count(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reaper: Reaper, tmp_path: Path) -> None:
    # The port is free when the node starts; another program takes it while the service boots.
    port = free_port()
    booted = tmp_path / "slow-may-finish-booting"  # slow binds only once the other program listens
    folder = write_datums({"slow.process": tcp_datum("slow", svc, port, f"--wait-for={booted}", f"--port={port}")})
    reaper.down_on_exit(["slow.process"], folder)
    up = cli_popen("up", "slow.process", "-q", "-d", str(folder), state_dir=state_dir)
    reaper.popens.append(up)
    wait_for(lambda: "slow.process" in records(state_dir), what="the record")
    pid = int(records(state_dir)["slow.process"]["pid"])
    with listener(port):
        booted.touch()
        _, stderr = up.communicate(timeout=120)
    assert up.returncode == 1, stderr
    assert f"port {port} is answered by another program (pid {os.getpid()})" in stderr
    assert wait_gone(pid), "a node that failed readiness is stopped"
    assert records(state_dir) == {}


def test_a_node_that_dies_after_its_probe_passed_fails_the_run(
        write_datums: WriteDatums, svc: Path, state_dir: Path, tmp_path: Path, reaper: Reaper) -> None:
    port = free_port()
    started = tmp_path / "slow-started"  # slow starts only once `once` was declared ready
    gone = tmp_path / "once-gone"  # slow becomes ready only after `once` has exited
    once = tmp_path / "once.py"
    # Serves the probe, waits until the run has moved past its readiness, then exits.
    once.write_text(f"import os, socket, time\ns = socket.socket()\n"
                    f"s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                    f"s.bind(('127.0.0.1', {port}))\ns.listen(8)\n"
                    f"while not os.path.exists({str(started)!r}):\n    time.sleep(0.01)\n"
                    f"print('bye', flush=True)\n")
    folder = write_datums({
        "once.process": f'[b00t]\nname = "once"\ntype = "process"\ncommand = [{q(sys.executable)}, {q(once)}]\n'
                        f'[b00t.health_check]\ntcp = "127.0.0.1:{port}"\ntimeout_ms = 60000\ninterval_ms = 50\n',
        "slow.process": process_datum("slow", svc, f"--mark={started}", f"--wait-for={gone}",
                                      deps=["once.process"], port=free_port()),
        "both.stack": stack_datum("both", ["once.process", "slow.process"]),
    })
    reaper.down_on_exit(["both.stack"], folder)
    up = cli_popen("up", "both.stack", "-q", "-d", str(folder), state_dir=state_dir)
    reaper.popens.append(up)
    wait_for(started.exists, what="slow's start")
    assert wait_gone(int(records(state_dir)["once.process"]["pid"])), "once exits once slow has started"
    gone.touch()
    _, stderr = up.communicate(timeout=120)
    assert up.returncode == 1, stderr
    assert "once.process: process exited with code 0 (after it was ready, before up finished)" in stderr
    assert "bye" in stderr  # its last log lines
    assert "Traceback" not in stderr


@pytest.mark.parametrize("keep", [False, True], ids=["stopped", "keep-failed"])
def test_a_node_that_failed_readiness_is_stopped_unless_keep_failed(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reaper: Reaper, keep: bool) -> None:
    port = free_port()  # nothing ever listens here
    folder = write_datums({"deaf.process": tcp_datum("deaf", svc, port, timeout_ms=300)})
    reaper.down_on_exit(["deaf.process"], folder)
    proc = cli("up", "deaf.process", "-q", "-d", str(folder), *(["--keep-failed"] if keep else []),
               state_dir=state_dir)
    assert proc.returncode == 1 and "did not pass within 0.3s" in proc.stderr
    status = cli("status", "deaf.process", "--json", "-d", str(folder), state_dir=state_dir)
    state = json.loads(status.stdout)["deaf.process"]["state"]
    if keep:
        pid = int(records(state_dir)["deaf.process"]["pid"])
        assert alive(pid)
        assert state == "not ready", "status never calls a node that is not ready running"
        assert cli("down", "deaf.process", "-q", "-d", str(folder), state_dir=state_dir).returncode == 0
        assert wait_gone(pid)
    else:
        assert state == "absent"
        assert not ours(state_dir)


# --- 3. up and down exclude each other -----------------------------------------------------------


def test_down_of_a_dependency_during_up_fails_its_dependents_instead_of_starting_them(
        write_datums: WriteDatums, svc: Path, state_dir: Path, tmp_path: Path, reaper: Reaper) -> None:
    mark = tmp_path / "marks"
    reaper.mark_files.append(mark)
    m = f"--mark={mark}"
    booted = tmp_path / "w-may-finish-booting"
    folder = write_datums({
        "x.process": process_datum("x", svc, m, port=free_port()),
        # w boots until the test lets it: y's start waits on w, so the down of x comes first however slow
        "w.process": process_datum("w", svc, m, f"--wait-for={booted}", port=free_port(), timeout_ms=120_000),
        "y.process": process_datum("y", svc, m, deps=["x.process", "w.process"], port=free_port()),
    })
    reaper.down_on_exit(["y.process"], folder)
    up = cli_popen("up", "y.process", "-q", "-d", str(folder), state_dir=state_dir)
    reaper.popens.append(up)
    wait_for(lambda: records(state_dir).get("x.process", {}).get("ready"), what="x to be ready")
    assert up.poll() is None, "w still boots"
    gone = cli("down", "x.process", "-q", "-d", str(folder), state_dir=state_dir)
    assert gone.returncode == 0, gone.stderr
    booted.touch()
    _, stderr = up.communicate(timeout=120)
    assert up.returncode == 1, stderr
    assert "y.process: dependency x.process was stopped by another command" in stderr
    assert "y" not in {n for w, n, _ in marks(mark) if w == "start"}, "the dependent never started"


# --- 4. whole process groups ---------------------------------------------------------------------

GROUP = r'''
import os, signal, subprocess, sys, time
pidfile = sys.argv[1]
kid = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
open(pidfile, "w").write(str(kid.pid))
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
while True:
    time.sleep(1)
'''


@pytest.mark.anyio
async def test_down_kills_a_grandchild_that_ignores_sigterm(
        write_datums: WriteDatums, state_dir: Path, tmp_path: Path, reaper: Reaper) -> None:
    script, pidfile = tmp_path / "group.py", tmp_path / "kid.pid"
    script.write_text(GROUP)
    folder = write_datums({"fam.process": f'[b00t]\nname = "fam"\ntype = "process"\nstop_grace_ms = 300\n'
                                          f"command = [{q(sys.executable)}, {q(script)}, {q(pidfile)}]\n"})
    reaper.down_on_exit(["fam.process"], folder)
    graph = load_graph(["fam.process"], folder)
    async with Engine(state_dir=state_dir) as engine:
        assert (await engine.up(graph)).ok
    wait_for(pidfile.exists, what="the grandchild")
    kid = int(pidfile.read_text())
    reaper.pids.append(kid)
    leader = int(records(state_dir)["fam.process"]["pid"])
    assert alive(kid) and os.getpgid(kid) == leader
    async with Engine(state_dir=state_dir) as engine:
        res = await engine.down(graph)
    assert not res.failures and res.timings["fam.process"].status == "stopped"
    # down returns only once the whole group is gone: no waiting here
    assert not alive(kid), "the TERM-ignoring grandchild was SIGKILLed after the grace period"
    assert not alive(leader)


# --- 5. what the state directory keeps -----------------------------------------------------------


@pytest.mark.anyio
async def test_logs_keep_the_last_three_runs_and_down_removes_lock_files(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reaper: Reaper) -> None:
    folder = write_datums({"w.process": process_datum("w", svc, port=free_port())})
    reaper.down_on_exit(["w.process"], folder)
    graph = load_graph(["w.process"], folder)
    for _ in range(5):
        async with Engine(state_dir=state_dir) as engine:
            assert (await engine.up(graph)).ok
            assert not (await engine.down(graph)).failures
    logs = sorted(p.name for p in (state_dir / "process").iterdir())
    assert logs == ["w.process.log", "w.process.log.1", "w.process.log.1.idx", "w.process.log.2",
                    "w.process.log.2.idx", "w.process.log.idx"]  # each log with its write-time stamps
    assert list((state_dir / "locks").iterdir()) == []


@pytest.mark.anyio
async def test_a_half_written_record_of_a_killed_writer_is_removed(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reaper: Reaper) -> None:
    # kill -9 between writing a record's temporary file and renaming it leaves <node>.<pid>.tmp
    folder = write_datums({"w.process": process_datum("w", svc, port=free_port())})
    reaper.down_on_exit(["w.process"], folder)
    graph = load_graph(["w.process"], folder)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    folder_of_records = state_dir / "process"
    folder_of_records.mkdir(parents=True, exist_ok=True)
    stale = folder_of_records / f"w.process.{dead.pid}.tmp"
    live = folder_of_records / f"w.process.{os.getppid()}.tmp"  # a writer that still runs keeps its file
    other = folder_of_records / f"w.process.x.{dead.pid}.tmp"  # not this node's
    for path in (stale, live, other):
        path.write_text("{")
    async with Engine(state_dir=state_dir) as engine:
        assert (await engine.up(graph)).ok
        assert not stale.exists(), "looking for a missing record removes a dead writer's leftover"
        stale.write_text("{")
        assert not (await engine.down(graph)).failures
    assert not stale.exists(), "down removes a dead writer's leftover"
    assert live.exists() and other.exists()
    live.unlink()
    other.unlink()


@pytest.mark.anyio
async def test_services_carry_the_markers(write_datums: WriteDatums, svc: Path, state_dir: Path,
                                          reaper: Reaper) -> None:
    folder = write_datums({"w.process": process_datum("w", svc, port=free_port())})
    reaper.down_on_exit(["w.process"], folder)
    graph = load_graph(["w.process"], folder)
    async with Engine(state_dir=state_dir) as engine:
        assert (await engine.up(graph)).ok
    env = psutil.Process(int(records(state_dir)["w.process"]["pid"])).environ()
    assert env["B00T_GRAPH_NODE"] == "w.process"
    assert env["B00T_GRAPH_STATE"] == state_id(state_dir)
    assert env["B00T_GRAPH_PROJECT"] == ""
    assert records(state_dir)["w.process"]["ready"] is True
    _ = anyio  # the anyio plugin runs the async tests on both backends
