"""Projects on the real Docker engine: one datum folder brought up in two projects side by side.

Project names start with the test's ``b00tgt-<random>`` prefix, so every container, network and
volume a project makes (``<project>_<name>``) is swept afterwards, pass or fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from b00t_graph import api
from b00t_graph.runtimes import State
from b00t_graph.runtimes.docker import MANAGED, NODE, PROJECT, DockerRuntime
from tests.dockerutil import Engine

pytestmark = [pytest.mark.docker, pytest.mark.anyio]


def _datums(folder: Path, image: str) -> Path:
    """``db`` (a named volume, a user network, no published port) and ``app`` that reaches ``db`` by its name."""
    folder.mkdir(parents=True)
    common = ["--init", "--network", "net"]
    (folder / "db.docker.toml").write_text("\n".join([
        "[b00t]", 'name = "db"', 'type = "docker"', f"image = {json.dumps(image)}", "stop_grace_ms = 1000",
        'command = ["sh", "-c", "echo data > /data/x; exec httpd -f -p 80 -h /data"]',
        f"docker_args = {json.dumps([*common, '-v', 'dbdata:/data'])}",
        "[b00t.health_check]", 'exec = ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1/x"]', "timeout_ms = 15000",
    ]) + "\n")
    (folder / "app.docker.toml").write_text("\n".join([
        "[b00t]", 'name = "app"', 'type = "docker"', f"image = {json.dumps(image)}", "stop_grace_ms = 1000",
        'depends_on = ["db.docker"]',
        'command = ["sh", "-c", "wget -q -O /tmp/x http://db/x && exec sleep 3600"]',
        f"docker_args = {json.dumps(common)}",
        "[b00t.health_check]", 'exec = ["test", "-s", "/tmp/x"]', "timeout_ms = 15000",
    ]) + "\n")
    return folder


async def test_two_projects_side_by_side_on_one_engine(prefix: str, test_image: str, engine: Engine,
                                                       tmp_path: Path) -> None:
    folder = _datums(tmp_path / "datums", test_image)
    state = tmp_path / "state"
    a, b = f"{prefix}-a", f"{prefix}-b"
    for p in (a, b):
        await api.ensure("app", datums=folder, state_dir=state, project=p)

    for p in (a, b):
        for short in ("db", "app"):
            info = engine.container(f"{p}_{short}")
            assert info is not None and info["State"]["Running"], (p, short)
            labels = info["Config"]["Labels"]
            assert (labels[MANAGED], labels[NODE], labels[PROJECT]) == ("1", f"{short}.docker", p)
            # on the project's own network, reachable by the datum's name (app fetched http://db/x)
            nets = info["NetworkSettings"]["Networks"]
            assert list(nets) == [f"{p}_net"] and short in (nets[f"{p}_net"]["Aliases"] or [])
        net, vol = engine.network(f"{p}_net"), engine.volume(f"{p}_dbdata")
        assert net is not None and net["Labels"][PROJECT] == p
        assert vol is not None and vol["Labels"][PROJECT] == p

    # Each project observes only its own containers; without a project, neither.
    graph = api.load_graph(["app"], folder)
    for p, expect in ((a, State.RUNNING), (b, State.RUNNING), (None, State.ABSENT)):
        rt = DockerRuntime(project=p)
        try:
            seen = await rt.observe([graph.nodes["db.docker"], graph.nodes["app.docker"]])
        finally:
            await rt.aclose()
        assert {o.state for o in seen.values()} == {expect}, (p, seen)

    # A name that happens to be another project's container is foreign, never adopted or removed.
    clash = tmp_path / "clash"
    clash.mkdir()
    (clash / "xx.docker.toml").write_text(f'[b00t]\nname = "xx"\ntype = "docker"\nimage = {json.dumps(test_image)}\n'
                                         f'docker_args = ["--name", "{a}_db"]\n')
    rt = DockerRuntime()
    try:
        (seen,) = (await rt.observe([api.load_graph(["xx"], clash).nodes["xx.docker"]])).values()
    finally:
        await rt.aclose()
    assert seen.state is State.FOREIGN and f"in project {a!r}" in seen.detail, seen

    # down in a (with its volumes) leaves b's containers, network and volume alone.
    res = await api.down_graph(graph, state_dir=state, project=a, remove_volumes=True)
    assert not res.failures
    assert engine.container(f"{a}_db") is None and engine.container(f"{a}_app") is None
    assert engine.network(f"{a}_net") is None and engine.volume(f"{a}_dbdata") is None
    for short in ("db", "app"):
        info = engine.container(f"{b}_{short}")
        assert info is not None and info["State"]["Running"]
    assert engine.volume(f"{b}_dbdata") is not None
    res = await api.down_graph(graph, state_dir=state, project=b, remove_volumes=True)
    assert not res.failures and engine.container(f"{b}_db") is None
