"""Container faults on the real engine: a paused container, a start that fails half way (its port
taken), and what `down` removes when the container itself is already gone."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from b00t_graph import Engine, NodePaused, PortInUse
from b00t_graph.runtimes import State
from tests.runtimes.test_docker_runtime import compile_in, free_port, httpd, write_datum

pytestmark = [pytest.mark.anyio, pytest.mark.docker]


async def test_a_paused_container_is_paused_and_up_fails_at_once(
        tmp_path: Path, prefix: str, test_image: str, engine: Any) -> None:
    name = f"{prefix}-web"
    port = free_port()
    spec = httpd(port)
    spec["health"]["timeout_ms"] = 600_000  # waiting it out would take ten minutes
    write_datum(tmp_path, name, image=test_image, stop_grace_ms=0, **spec)
    graph = compile_in(tmp_path, name)
    async with Engine() as eng:
        assert (await eng.up(graph)).ok
        assert engine.request("POST", f"/containers/{name}/pause")[0] == 204
        _, observed = await eng.plan(graph)
        assert observed[f"{name}.docker"].state is State.PAUSED
        res = await eng.up(graph)
        err = res.failures[f"{name}.docker"]
        assert isinstance(err, NodePaused) and "is paused" in str(err)
        assert not (await eng.down(graph)).failures
    assert engine.container(name) is None


async def test_a_start_that_fails_on_a_taken_port_removes_what_it_made(
        tmp_path: Path, prefix: str, test_image: str, engine: Any) -> None:
    name, net = f"{prefix}-web", f"{prefix}-net"
    port = free_port()
    spec = httpd(port)
    write_datum(tmp_path, name, image=test_image, stop_grace_ms=0, docker_args=["--network", net], **spec)
    graph = compile_in(tmp_path, name)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(1)
        async with Engine() as eng:
            res = await eng.up(graph)
    assert isinstance(res.failures[f"{name}.docker"], PortInUse)
    assert engine.container(name) is None, "the container created for the failed start was removed"
    assert engine.network(net) is None, "and so was its network"


async def test_down_removes_a_nodes_network_and_volume_when_its_container_is_gone(
        tmp_path: Path, prefix: str, test_image: str, engine: Any) -> None:
    name, net, vol = f"{prefix}-store", f"{prefix}-net", f"{prefix}-data"
    write_datum(tmp_path, name, image=test_image, stop_grace_ms=0, command=["sleep", "300"],
                docker_args=["--network", net, "-v", f"{vol}:/data"])
    graph = compile_in(tmp_path, name)
    async with Engine() as eng:
        assert (await eng.up(graph)).ok
        # the container goes behind b00t-graph's back; what was made for it stays
        assert engine.request("DELETE", f"/containers/{name}?force=1")[0] == 204
        assert engine.network(net) is not None and engine.volume(vol) is not None
        assert not (await eng.down(graph, remove_volumes=True)).failures
    assert engine.network(net) is None
    assert engine.volume(vol) is None
