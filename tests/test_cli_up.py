"""`b00t-graph up/down/status` as real subprocesses (`python -m b00t_graph`): exit codes, summaries,
Ctrl-C, concurrent runs. Never a terminal here, so progress comes as plain lines on stderr."""

from __future__ import annotations

import itertools
import json
import shlex
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.procutil import (
    Reaper,
    alive,
    cli,
    cli_popen,
    free_port,
    marks,
    process_datum,
    records,
    stack_datum,
    wait_for,
    wait_gone,
)

WriteDatums = Callable[..., Path]
BACKENDS = ["asyncio", "trio"]


def pids(state_dir: Path) -> dict[str, int]:
    return {i: int(r["pid"]) for i, r in records(state_dir).items()}


def status_json(folder: Path, target: str, state_dir: Path) -> dict[str, dict[str, str]]:
    proc = cli("status", target, "-d", str(folder), "--json", state_dir=state_dir)
    assert proc.returncode == 0, proc.stderr
    data: dict[str, dict[str, str]] = json.loads(proc.stdout)
    return data


def no_traceback(proc: object) -> None:
    stderr = getattr(proc, "stderr", "")
    assert "Traceback" not in stderr, stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_up_status_up_again_recreate_down(write_datums: WriteDatums, svc: Path, state_dir: Path, tmp_path: Path,
                                          reaper: Reaper, backend: str) -> None:
    base_port, web_port = free_port(), free_port()

    def datums(tag: str) -> dict[str, str]:
        return {
            "base.process": process_datum("base", svc, "--boot=0.2", port=base_port,
                                          env={"BASE_URL": f"http://127.0.0.1:{base_port}"}),
            "web.process": process_datum("web", svc, f"--tag={tag}", deps=["base.process"], port=web_port,
                                         env={"WEB_URL": f"http://127.0.0.1:{web_port}"}),
            "app.stack": stack_datum("app", ["web.process"]),
        }

    folder = write_datums(datums("v1"))
    reaper.down_on_exit(["app.stack"], folder)
    d = ("-d", str(folder))
    t1, t2 = tmp_path / "t1.json", tmp_path / "t2.json"

    # First up, quiet: nothing printed, timings for machines.
    proc = cli("up", "app.stack", *d, "-q", "--timings-json", str(t1), state_dir=state_dir, backend=backend)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout == ""
    timings = json.loads(t1.read_text())
    assert {n: v["status"] for n, v in timings["nodes"].items()} == {
        "base.process": "ready", "web.process": "ready", "app.stack": "ready"}
    assert [h["node"] for h in timings["critical_path"]] == ["base.process", "web.process", "app.stack"]
    assert timings["nodes"]["base.process"]["own"] >= 0.2
    path = timings["critical_path"]
    for prev, hop in itertools.pairwise(path):
        assert hop["offset"] >= prev["offset"] + prev["duration"] - 1e-6, "each hop waited for the one before"
    assert path[-1]["offset"] + path[-1]["duration"] <= timings["wall"] + 1e-6
    first = pids(state_dir)
    assert set(first) == {"base.process", "web.process"}
    st = status_json(folder, "app.stack", state_dir)
    assert st["base.process"]["state"] == st["web.process"]["state"] == "running"
    assert st["web.process"]["action"] == "none"

    # Second up: same pids, reported as already running; --env prints the targets' environment.
    proc = cli("up", "app.stack", *d, "--env", "--timings-json", str(t2), state_dir=state_dir, backend=backend)
    assert proc.returncode == 0, proc.stderr
    assert pids(state_dir) == first
    again = json.loads(t2.read_text())["nodes"]
    for ident in first:
        assert (again[ident]["action"], again[ident]["detail"]) == ("none", "already running")
    assert "already running" in proc.stderr and "critical path" in proc.stderr
    assert f"export BASE_URL=http://127.0.0.1:{base_port}" in proc.stdout.splitlines()
    assert f"export WEB_URL=http://127.0.0.1:{web_port}" in proc.stdout.splitlines()

    # Config change: --no-recreate keeps the old process, a plain up restarts it with a new pid.
    write_datums(datums("v2"), folder)
    assert status_json(folder, "app.stack", state_dir)["web.process"]["action"] == "recreate"
    proc = cli("up", "app.stack", *d, "--no-recreate", state_dir=state_dir, backend=backend)
    assert proc.returncode == 0, proc.stderr
    assert pids(state_dir) == first
    proc = cli("up", "app.stack", *d, "--timings-json", str(t2), state_dir=state_dir, backend=backend)
    assert proc.returncode == 0, proc.stderr
    now = pids(state_dir)
    assert now["base.process"] == first["base.process"]
    assert now["web.process"] != first["web.process"]
    assert wait_gone(first["web.process"])
    assert json.loads(t2.read_text())["nodes"]["web.process"]["action"] == "recreate"

    # Down: dependents first, nothing left.
    proc = cli("down", "app.stack", *d, state_dir=state_dir, backend=backend)
    assert proc.returncode == 0, proc.stderr
    assert "stopped 2 node(s)" in proc.stderr
    lines = proc.stderr.splitlines()
    web_stopped = next(i for i, line in enumerate(lines) if "web.process stopped" in line)
    base_stopping = next(i for i, line in enumerate(lines) if "base.process stopping" in line)
    assert web_stopped < base_stopping
    assert all(wait_gone(p) for p in now.values())
    assert records(state_dir) == {}
    st = status_json(folder, "app.stack", state_dir)
    assert st["base.process"]["state"] == st["web.process"]["state"] == "absent"
    no_traceback(proc)


@pytest.fixture
def failing(write_datums: WriteDatums, svc: Path, reaper: Reaper, tmp_path: Path) -> Path:
    """bad (prints "boom", exits 3) ← dep; slow is an independent branch; all.stack holds both.

    slow boots until ``slow-may-finish-booting`` exists in the datum folder: a test that wants it ready
    creates the file, one that needs it still booting when bad fails does not."""
    folder = tmp_path / "failing"
    write_datums({
        "bad.process": process_datum("bad", svc, "--exit=3", port=free_port()),
        "dep.process": process_datum("dep", svc, deps=["bad.process"]),
        "slow.process": process_datum("slow", svc, "--boot=0.5", f"--wait-for={folder / 'slow-may-finish-booting'}",
                                      port=free_port()),
        "all.stack": stack_datum("all", ["dep.process", "slow.process"]),
    }, folder)
    reaper.down_on_exit(["all.stack"], folder)
    return folder


@pytest.mark.parametrize("backend", BACKENDS)
def test_up_failure_exits_1_naming_the_node_and_its_log_tail(failing: Path, state_dir: Path, backend: str) -> None:
    (failing / "slow-may-finish-booting").touch()
    proc = cli("up", "all.stack", "-d", str(failing), state_dir=state_dir, backend=backend)
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr
    assert "error: 1 node(s) failed, 2 skipped" in err
    assert "✗ bad.process: process exited with code 3" in err and "after it was ready" not in err
    summary = err[err.index("error: 1 node(s) failed"):]
    assert "boom" in summary and "bad: starting" in summary
    assert "- dep.process: skipped (dependency bad.process failed)" in summary
    assert "- all.stack: skipped (dependency dep.process was skipped)" in summary
    no_traceback(proc)
    # The independent branch still came up.
    assert status_json(failing, "all.stack", state_dir)["slow.process"]["state"] == "running"


def test_a_run_where_nothing_became_ready_prints_no_empty_critical_path(
        write_datums: WriteDatums, state_dir: Path) -> None:
    folder = write_datums({"gone.process": '[b00t]\ncommand = ["b00t-graph-test-no-such-command"]\n'})
    proc = cli("up", "gone.process", "-d", str(folder), state_dir=state_dir)
    assert proc.returncode == 1, proc.stderr
    assert "cannot run 'b00t-graph-test-no-such-command'" in proc.stderr
    assert "critical path" not in proc.stderr, proc.stderr
    no_traceback(proc)


def test_fail_fast_exits_1_and_cancels_the_rest(failing: Path, state_dir: Path, tmp_path: Path) -> None:
    t0 = time.monotonic()
    proc = cli("up", "all.stack", "-d", str(failing), "--fail-fast", "--timings-json", str(tmp_path / "t.json"),
               state_dir=state_dir)
    # slow never finishes booting here (its probe would wait 60 s): only cancelling it ends the run this soon
    assert time.monotonic() - t0 < 45
    assert proc.returncode == 1, proc.stderr
    assert "✗ bad.process: process exited with code 3" in proc.stderr and "boom" in proc.stderr
    assert "interrupted" not in proc.stderr
    nodes = json.loads((tmp_path / "t.json").read_text())["nodes"]
    assert nodes["slow.process"]["status"] == "cancelled"
    no_traceback(proc)


def test_bad_input_exits_2_with_one_message_and_b00t_debug_adds_the_traceback(
        write_datums: WriteDatums, state_dir: Path) -> None:
    folder = write_datums({"app.stack": stack_datum("app", ["nowhere.process"])})
    proc = cli("up", "app.stack", "-d", str(folder), state_dir=state_dir)
    assert proc.returncode == 2
    assert ("app.stack.toml: b00t.members[0]: app.stack depends on 'nowhere.process', which no datum provides"
            in proc.stderr)
    no_traceback(proc)
    debug = cli("up", "app.stack", "-d", str(folder), state_dir=state_dir, env={"B00T_DEBUG": "1"})
    assert debug.returncode == 2 and "Traceback" in debug.stderr


@pytest.mark.parametrize(("backend", "sig"), [("asyncio", signal.SIGINT), ("trio", signal.SIGINT),
                                              ("asyncio", signal.SIGTERM), ("trio", signal.SIGTERM)],
                         ids=["asyncio-SIGINT", "trio-SIGINT", "asyncio-SIGTERM", "trio-SIGTERM"])
def test_interrupt_during_up_then_down_leaves_no_process(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reaper: Reaper, backend: str, sig: int) -> None:
    folder = write_datums({
        "quick.process": process_datum("quick", svc, port=free_port()),
        "booting.process": process_datum("booting", svc, "--boot=30", port=free_port(), timeout_ms=60_000),
        "after.process": process_datum("after", svc, deps=["booting.process"]),
        "all.stack": stack_datum("all", ["quick.process", "after.process"]),
    })
    reaper.down_on_exit(["all.stack"], folder)
    up = cli_popen("up", "all.stack", "-d", str(folder), state_dir=state_dir, backend=backend)
    reaper.popens.append(up)
    wait_for(lambda: {"quick.process", "booting.process"} <= set(records(state_dir)), what="both to start")
    time.sleep(0.3)  # booting is now being probed; quick is ready
    assert up.poll() is None, up.communicate()
    up.send_signal(sig)
    _, stderr = up.communicate(timeout=120)
    assert up.returncode == 130, stderr
    assert "interrupted" in stderr
    # the hint works as printed: the same folders (a datum folder given with -d must be given again)
    assert f"`b00t-graph down all.stack -d {shlex.quote(str(folder))}` removes it" in stderr
    assert "Traceback" not in stderr
    started = pids(state_dir)
    assert set(started) == {"quick.process", "booting.process"}, "all that started is recorded"
    assert all(alive(p) for p in started.values()), "services outlive the interrupted CLI, like containers"

    proc = cli("down", "all.stack", "-d", str(folder), state_dir=state_dir, backend=backend)
    assert proc.returncode == 0, proc.stderr
    assert all(wait_gone(p) for p in started.values()), "down left a process behind"
    assert records(state_dir) == {}


@pytest.mark.parametrize("backends", [("asyncio", "trio"), ("trio", "asyncio")], ids=["asyncio+trio", "trio+asyncio"])
def test_two_concurrent_ups_on_overlapping_graphs_start_each_node_once(
        write_datums: WriteDatums, svc: Path, state_dir: Path, tmp_path: Path, reaper: Reaper,
        backends: tuple[str, str]) -> None:
    mark = tmp_path / "marks"
    reaper.mark_files.append(mark)
    m = f"--mark={mark}"
    folder = write_datums({
        "base.process": process_datum("base", svc, m, "--boot=0.3", port=free_port()),
        "shared.process": process_datum("shared", svc, m, "--boot=0.2", deps=["base.process"], port=free_port()),
        "left.process": process_datum("left", svc, m, deps=["base.process"], port=free_port()),
        "right.process": process_datum("right", svc, m, deps=["shared.process"], port=free_port()),
        "one.stack": stack_datum("one", ["left.process", "shared.process"]),
        "two.stack": stack_datum("two", ["right.process", "shared.process"]),
    })
    reaper.down_on_exit(["one.stack", "two.stack"], folder)
    runs = [cli_popen("up", target, "-d", str(folder), state_dir=state_dir, backend=b)
            for target, b in zip(("one.stack", "two.stack"), backends, strict=True)]
    reaper.popens += runs
    for run in runs:
        _, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr
        assert "Traceback" not in stderr
    started = Counter(name for what, name, _ in marks(mark) if what == "start")
    assert started == {"base": 1, "shared": 1, "left": 1, "right": 1}
    recorded = pids(state_dir)
    assert {f"{name}.process": pid for what, name, pid in marks(mark) if what == "start"} == recorded
    dead = {n: (state_dir / "process" / f"{n}.log").read_text() for n, p in recorded.items() if not alive(p)}
    assert not dead, dead


def test_readiness_timeout_exits_1_naming_the_node_and_the_probe(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reaper: Reaper) -> None:
    port = free_port()  # nothing listens here: the service sleeps without serving
    folder = write_datums({
        "deaf.process": process_datum("deaf", svc) + (
            "[b00t.health_check]\n"
            f'http_url = "http://127.0.0.1:{port}/health"\ntimeout_ms = 3000\ninterval_ms = 50\n'),
    })  # 3 s: long enough for the service's first log line even on a loaded machine
    reaper.down_on_exit(["deaf.process"], folder)
    proc = cli("up", "deaf.process", "-d", str(folder), state_dir=state_dir)
    assert proc.returncode == 1, proc.stderr
    no_traceback(proc)
    err = proc.stderr
    summary = err[err.index("error: 1 node(s) failed, 0 skipped"):]
    assert summary.startswith(f"error: 1 node(s) failed, 0 skipped\n✗ deaf.process: readiness probe "
                              f"http http://127.0.0.1:{port}/health → 200 did not pass within 3s (")
    assert "; last: connection refused\n" in summary, summary
    assert "last log lines:\n    deaf: starting" in summary


# --- what a run imports ------------------------------------------------------------------------------

_IMPORTED = ("import sys\nfrom b00t_graph.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
             "    code = e.code\nprint('IMPORTED', *(sorted({m for m in sys.modules if m.split('.')[0] in {'rich', "
             "'aiodocker', 'aiohttp', 'psutil', 'yaml', 'mcp'} or m.startswith(('b00t_graph.export', "
             "'b00t_graph.runtimes.docker'))})), file=sys.stderr)\nsys.exit(code)\n")


def _heavy_imports(state_dir: Path, *args: str) -> set[str]:
    import subprocess
    import sys

    from tests.procutil import cli_env

    proc = subprocess.run([sys.executable, "-c", _IMPORTED, *args], capture_output=True, text=True,
                          env=cli_env(state_dir), timeout=60, check=False, cwd=state_dir.parent)
    assert proc.returncode == 0, proc.stderr
    last = proc.stderr.splitlines()[-1].split()
    assert last[0] == "IMPORTED", proc.stderr
    return {m.split(".")[0] if not m.startswith("b00t_graph") else m for m in last[1:]}


def test_a_quiet_up_of_processes_imports_no_docker_client_and_no_rich(
        write_datums: WriteDatums, state_dir: Path, reaper: Reaper) -> None:
    folder = write_datums({"sleeper.process": '[b00t]\ntype = "process"\ncommand = ["sleep", "30"]\n'})
    reaper.down_on_exit(["sleeper.process"], folder)
    loaded = _heavy_imports(state_dir, "up", "-q", "-d", str(folder), "sleeper.process")
    assert loaded == {"psutil"}  # the process runtime's; nothing a process-only run does not use
    assert _heavy_imports(state_dir, "validate", str(folder)) == set()
    assert "rich" in _heavy_imports(state_dir, "ls", "-d", str(folder))  # a table: rich when drawn
    proc = cli("down", "sleeper.process", "-d", str(folder), "-q", state_dir=state_dir)
    assert proc.returncode == 0, proc.stderr
