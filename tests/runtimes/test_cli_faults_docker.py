"""Bad options with a real engine: a state dir under a file is refused before the engine is asked to do
anything, so no container, network or volume is left behind (it used to leave a Created container),
and ``down`` afterwards says the same one line instead of printing an exception group."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.dockerutil import Engine
from tests.procutil import cli, free_port

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
