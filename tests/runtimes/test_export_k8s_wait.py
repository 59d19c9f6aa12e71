"""The exported init containers' wait loops, run for real in busybox on a Docker network.

No cluster here, so the Service is stood in for by a network alias: the waiter runs the exact
command the exporter wrote, keeps waiting while its dependency is absent, and ends (exit 0) once
the dependency listens. The same loop, in the same image family, is what the pod runs.

Only the TCP loop runs here: the static busybox of the test image crashes in ``wget`` (a static
glibc build), so the http loop's text is checked in tests/test_export_k8s.py instead.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from b00t_graph.export.k8s import to_manifests
from b00t_graph.graph import compile_graph
from b00t_graph.loader import datum_dirs, load_catalog
from tests.dockerutil import Engine

pytestmark = pytest.mark.docker

DATUMS = {
    "dep.docker": '[b00t]\nname = "dep"\ntype = "docker"\nimage = "x:1"\ndocker_args = ["-p", "5433:5432"]\n',
    "web.docker": '[b00t]\nname = "web"\ntype = "docker"\nimage = "x:1"\ndocker_args = ["-p", "8081:8080"]\n'
                  '[b00t.health_check]\nhttp_url = "http://localhost:8081/health"\n',
    "app.docker": '[b00t]\nname = "app"\ntype = "docker"\nimage = "y:1"\ndepends_on = ["dep.docker", "web.docker"]\n',
}


def _run(engine: Engine, name: str, image: str, cmd: list[str], net: str, alias: str | None = None) -> str:
    body: dict[str, Any] = {"Image": image, "Cmd": cmd, "HostConfig": {"NetworkMode": net},
                            "NetworkingConfig": {"EndpointsConfig": {net: {"Aliases": [alias] if alias else []}}}}
    status, data = engine.request("POST", f"/containers/create?name={name}", body)
    assert status == 201, data
    status, data = engine.request("POST", f"/containers/{data['Id']}/start")
    assert status == 204, data
    return name


def _state(engine: Engine, name: str) -> dict[str, Any]:
    info = engine.container(name)
    assert info is not None
    state: dict[str, Any] = info["State"]
    return state


def _until_exited(engine: Engine, name: str, limit: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + limit  # a generous bound: the loop retries every second
    while time.monotonic() < deadline:
        state = _state(engine, name)
        if not state["Running"]:
            return state
        time.sleep(0.2)
    raise AssertionError(f"{name} still waiting after {limit} s")


def test_wait_loops_hold_until_each_dependency_answers(engine: Engine, test_image: str, prefix: str,
                                                       write_datums: Any) -> None:
    folder: Path = write_datums(DATUMS)
    graph = compile_graph(load_catalog(datum_dirs([folder], {})), ["app.docker"], {}, reachable=None)
    export = to_manifests(graph)
    app = next(m for m in export.manifests if m["kind"] == "Deployment" and m["metadata"]["name"] == "app")
    inits = {i["name"]: i["command"] for i in app["spec"]["template"]["spec"]["initContainers"]}
    assert set(inits) == {"wait-dep", "wait-web"}

    net = f"{prefix}-net"
    status, data = engine.request("POST", "/networks/create", {"Name": net})
    assert status == 201, data
    waiters = {name: _run(engine, f"{prefix}-{name}", test_image, cmd, net) for name, cmd in inits.items()}
    time.sleep(2)  # both loops have tried at least once and found nothing
    for name in waiters.values():
        assert _state(engine, name)["Running"], f"{name} stopped waiting before its dependency existed"

    # dep: a TCP listener on the Service port (5433, the published one) behind the alias "dep"
    _run(engine, f"{prefix}-dep", test_image, ["nc", "-l", "-p", "5433"], net, alias="dep")
    assert _until_exited(engine, waiters["wait-dep"])["ExitCode"] == 0
    assert _state(engine, waiters["wait-web"])["Running"]  # web never comes: its waiter still waits
