"""Faults through the CLI with a real engine. A state dir under a file is refused before the engine is
asked to do anything, so no container, network or volume is left behind (it used to leave a Created
container), and ``down`` afterwards says the same one line instead of printing an exception group. A
start failed on a taken port, then ``down --volumes``. kill -9 of ``up`` on containers and processes."""

from __future__ import annotations

import random
import signal
import socket
import time
from collections import Counter
from pathlib import Path

import pytest

from b00t_graph.runtimes.docker import NODE
from tests.dockerutil import Engine
from tests.procutil import Reaper, cli, cli_popen, free_port, process_datum, records, stack_datum, wait_for
from tests.test_faults import gates, ours

pytestmark = pytest.mark.docker


def test_bad_state_dir_creates_nothing_in_the_engine(engine: Engine, test_image: str, prefix: str,
                                                     tmp_path: Path) -> None:
    folder = tmp_path / "datums"
    folder.mkdir()
    (folder / f"{prefix}-box.docker.toml").write_text(
        f"[b00t]\nimage = '{test_image}'\ncommand = ['sleep', '30']\n"
        f"docker_args = ['--network', '{prefix}-net', '-v', '{prefix}-vol:/data']\n")
    afile = tmp_path / "afile"
    afile.write_text("")
    bad = afile / "x"
    state = tmp_path / "state"
    for command in ("up", "down"):
        proc = cli(command, f"{prefix}-box", "-d", str(folder), "--state-dir", str(bad), state_dir=state,
                   timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip() == f"error: bad option --state-dir {bad}: {afile} is not a directory"
    assert engine.filtered("containers/json", {"name": [f"^/{prefix}"]}) == []
    assert engine.network(f"{prefix}-net") is None
    assert engine.volume(f"{prefix}-vol") is None


def test_a_start_failed_on_a_taken_port_leaves_nothing_that_down_volumes_does_not_remove(
        engine: Engine, test_image: str, prefix: str, tmp_path: Path) -> None:
    folder = tmp_path / "datums"
    folder.mkdir()
    name, net, vol = f"{prefix}-web", f"{prefix}-net", f"{prefix}-vol"
    port = free_port()
    (folder / f"{name}.docker.toml").write_text(
        f"[b00t]\nimage = '{test_image}'\ncommand = ['httpd', '-f', '-p', '8080', '-h', '/www']\n"
        f"ports = ['127.0.0.1:{port}:8080']\ndocker_args = ['--network', '{net}', '-v', '{vol}:/data']\n"
        f"stop_grace_ms = 0\n[b00t.health_check]\nhttp_url = 'http://127.0.0.1:{port}/'\ntimeout_ms = 15000\n")
    state = tmp_path / "state"
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("127.0.0.1", port))
        held.listen(1)
        up = cli("up", name, "-q", "-d", str(folder), state_dir=state, timeout=120)
    assert up.returncode == 1, up.stderr
    assert "Traceback" not in up.stderr and f"{port}" in up.stderr, up.stderr
    assert engine.filtered("containers/json", {"name": [f"^/{prefix}"]}) == [], "the failed container was removed"
    assert engine.network(net) is None, "and the network made for it"
    assert engine.volume(vol) is not None, "a named volume may hold data of an earlier run: kept"
    # The named volume may hold data of an earlier run, so a failed start keeps it; `down --volumes` removes
    # it even though no container is left, and says the node was absent.
    down = cli("down", name, "--volumes", "-d", str(folder), state_dir=state, timeout=120)
    assert down.returncode == 0, down.stderr
    assert engine.volume(vol) is None, down.stderr
    assert f"its container was gone; removed volume {vol}" in down.stderr
    assert engine.network(net) is None
    assert engine.filtered("containers/json", {"name": [f"^/{prefix}"]}) == []


def test_kill_9_of_up_on_containers_and_processes_never_leaves_an_unrecorded_or_duplicate_service(
        engine: Engine, test_image: str, prefix: str, tmp_path: Path, state_dir: Path, svc: Path,
        reaper: Reaper) -> None:
    """kill -9 of `up` at random points of a graph mixing containers and processes: after each kill every
    process runs at most once and is recorded, every container at most once (by label); an `up` after
    them brings each node up exactly once, and `down --volumes` leaves nothing."""
    folder = tmp_path / "datums"
    folder.mkdir()
    mark = tmp_path / "marks"
    reaper.mark_files.append(mark)
    web_port, api_port = free_port(), free_port()
    net, vol = f"{prefix}-net", f"{prefix}-vol"
    procs = {
        f"{prefix}-db.process": process_datum(f"{prefix}-db", svc, f"--mark={mark}", port=free_port()),
        f"{prefix}-api.process": process_datum(f"{prefix}-api", svc, f"--mark={mark}", "--boot=0.1", port=api_port,
                                               deps=[f"{prefix}-web.docker"]),
    }
    boxes = {
        f"{prefix}-web.docker": (
            f"[b00t]\nname = '{prefix}-web'\ntype = 'docker'\nimage = '{test_image}'\nstop_grace_ms = 0\n"
            f"command = ['httpd', '-f', '-p', '8080', '-h', '/www']\nports = ['127.0.0.1:{web_port}:8080']\n"
            f"[b00t.health_check]\nhttp_url = 'http://127.0.0.1:{web_port}/'\ntimeout_ms = 30000\n"),
        f"{prefix}-store.docker": (
            f"[b00t]\nname = '{prefix}-store'\ntype = 'docker'\nimage = '{test_image}'\nstop_grace_ms = 0\n"
            f"command = ['sleep', '600']\ndocker_args = ['--network', '{net}', '-v', '{vol}:/data']\n"
            f"depends_on = ['{prefix}-db.process']\n"
            "[b00t.health_check]\nexec = ['test', '-d', '/data']\ntimeout_ms = 30000\n"),
    }
    for ident, text in {**procs, **boxes}.items():
        (folder / f"{ident}.toml").write_text(text)
    (folder / f"{prefix}-all.stack.toml").write_text(stack_datum(f"{prefix}-all", [*procs, *boxes]))
    target = f"{prefix}-all.stack"
    reaper.down_on_exit([target], folder)

    def containers() -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for c in engine.filtered("containers/json", {"label": [NODE], "name": [f"^/{prefix}"]}):
            out.setdefault(c["Labels"][NODE], []).append(c["Id"])
        return out

    rng = random.Random(11)
    t0 = time.monotonic()
    assert cli("--help", state_dir=state_dir).returncode == 0
    boot = time.monotonic() - t0
    seen: Counter[int] = Counter()
    for attempt in range(12):
        up = cli_popen("up", target, "-q", "-d", str(folder), state_dir=state_dir)
        time.sleep(boot * 0.7 + rng.uniform(0.0, 3.0))
        up.send_signal(signal.SIGKILL)
        up.communicate(timeout=10)
        wait_for(lambda: not gates(state_dir), timeout=10, what="gates of the killed run to end")
        running, recs = ours(state_dir), records(state_dir)
        for node, found in running.items():
            assert len(found) == 1, f"try {attempt}: {node} runs {len(found)} times"
            assert node in recs and int(recs[node]["pid"]) == found[0].pid, f"try {attempt}: {node} unrecorded"
        for node, ids in containers().items():
            assert len(ids) == 1, f"try {attempt}: {node} has {len(ids)} containers"
        seen[len(running) + len(containers())] += 1
        if attempt % 2:  # half the kills hit a run that starts everything, not one that finds it running
            clean = cli("down", target, "-q", "--volumes", "-d", str(folder), state_dir=state_dir, timeout=180)
            assert clean.returncode == 0, clean.stderr
            assert containers() == {} and records(state_dir) == {}, f"try {attempt}: down left something"
    done = cli("up", target, "-q", "-d", str(folder), state_dir=state_dir, timeout=180)
    assert done.returncode == 0, done.stderr
    assert {n: len(p) for n, p in ours(state_dir).items()} == {ident: 1 for ident in procs}
    now = containers()
    assert {n: len(i) for n, i in now.items()} == {ident: 1 for ident in boxes}
    assert all(engine.container(ids[0])["State"]["Running"] for ids in now.values())
    gone = cli("down", target, "-q", "--volumes", "-d", str(folder), state_dir=state_dir, timeout=180)
    assert gone.returncode == 0, gone.stderr
    wait_for(lambda: not ours(state_dir), timeout=15, what="down to leave no process")
    assert records(state_dir) == {}
    assert engine.filtered("containers/json", {"name": [f"^/{prefix}"]}) == []
    assert engine.network(net) is None and engine.volume(vol) is None
    print("services running after each kill (count → tries):", dict(sorted(seen.items())))
