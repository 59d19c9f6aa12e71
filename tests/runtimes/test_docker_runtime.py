"""DockerRuntime against the real engine, on asyncio and trio (no mocks).

Nodes are built the way the CLI builds them: datum TOML files in a folder,
``load_catalog`` then ``compile_graph``. The test image is the local busybox
one (``tests/images/build.sh``), so nothing is pulled.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from b00t_graph.errors import (
    ConflictError,
    NodeExited,
    ReadinessTimeout,
    StartError,
)
from b00t_graph.graph import Graph, Node, compile_graph
from b00t_graph.loader import Source, load_catalog
from b00t_graph.runtimes import ABSENT, Action, Observed, State, decide
from b00t_graph.runtimes.docker import HASH, MANAGED, NODE, DockerRuntime

pytestmark = [pytest.mark.docker, pytest.mark.anyio]


# --- helpers -------------------------------------------------------------------------------------


def free_port() -> int:
    """A host port free right now (the engine cannot publish on port 0 and tell us which it took)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml(value: Any) -> str:
    return json.dumps(value)  # JSON strings, numbers and arrays of them are valid TOML


def write_datum(folder: Path, name: str, *, image: str, command: Sequence[str] | None = None,
                ports: Sequence[str] = (), docker_args: Sequence[str] = (), depends_on: Sequence[str] = (),
                health: dict[str, Any] | None = None, env: dict[str, str] | None = None,
                stop_grace_ms: int = 1000) -> None:
    lines = ["[b00t]", f"name = {_toml(name)}", 'type = "docker"', f"image = {_toml(image)}",
             f"stop_grace_ms = {stop_grace_ms}"]
    if command is not None:
        lines.append(f"command = {_toml(list(command))}")
    if ports:
        lines.append(f"ports = {_toml(list(ports))}")
    if docker_args:
        lines.append(f"docker_args = {_toml(list(docker_args))}")
    if depends_on:
        lines.append(f"depends_on = {_toml(list(depends_on))}")
    if health:
        lines.append("[b00t.health_check]")
        lines += [f"{k} = {_toml(v)}" for k, v in health.items()]
    if env:
        lines.append("[b00t.env]")
        lines += [f"{k} = {_toml(v)}" for k, v in env.items()]
    (folder / f"{name}.docker.toml").write_text("\n".join(lines) + "\n")


def compile_in(folder: Path, *targets: str) -> Graph:
    cat = load_catalog([Source(folder, "test")])
    return compile_graph(cat, list(targets), environ={})


def node_of(folder: Path, name: str) -> Node:
    return compile_in(folder, name).nodes[f"{name}.docker"]


async def observe1(rt: DockerRuntime, node: Node) -> Observed:
    return (await rt.observe([node]))[node.id]


async def up(rt: DockerRuntime, node: Node) -> tuple[Observed, str]:
    """What the engine does for one node: observe, decide, prepare, start, wait."""
    obs = await observe1(rt, node)
    action = decide(node, obs)
    await rt.prepare(node, action)
    started = await rt.start(node, obs, action)
    return started, await rt.wait_ready(node)


@pytest.fixture
async def runtime() -> AsyncIterator[DockerRuntime]:
    rt = DockerRuntime()
    try:
        yield rt
    finally:
        with anyio.CancelScope(shield=True):
            await rt.aclose()


def httpd(port: int) -> dict[str, Any]:
    return {"command": ["httpd", "-f", "-p", "8080", "-h", "/www"], "ports": [f"127.0.0.1:{port}:8080"],
            "health": {"http_url": f"http://127.0.0.1:{port}/", "timeout_ms": 15000}}


# --- lifecycle -----------------------------------------------------------------------------------


async def test_create_ready_observe_recreate_stop(tmp_path: Path, prefix: str, test_image: str, engine: Any,
                                                   runtime: DockerRuntime) -> None:
    name = f"{prefix}-web"
    port = free_port()
    write_datum(tmp_path, name, image=test_image, env={"GREETING": "one"}, **httpd(port))
    node = node_of(tmp_path, name)

    assert await observe1(runtime, node) == ABSENT
    started, how = await up(runtime, node)
    assert started.state is State.RUNNING and started.config_hash == node.config_hash
    assert "http" in how and str(port) in how

    obs = await observe1(runtime, node)
    assert obs.state is State.RUNNING
    assert obs.config_hash == node.config_hash
    assert obs.ref == started.ref
    assert decide(node, obs) is Action.NONE
    info = engine.container(name)
    assert info is not None
    assert info["Name"] == f"/{name}"
    labels = info["Config"]["Labels"]
    assert labels[MANAGED] == "1" and labels[NODE] == node.id and labels[HASH] == node.config_hash
    assert "GREETING=one" in info["Config"]["Env"]
    # the node is ready in the sense that matters: the service answers on the published port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as resp:
        assert resp.status == 200
        assert b"<h1>b00t-graph-test ok</h1>" in resp.read()

    # a config change means a new container
    write_datum(tmp_path, name, image=test_image, env={"GREETING": "two"}, **httpd(port))
    node2 = node_of(tmp_path, name)
    assert node2.config_hash != node.config_hash
    assert decide(node2, obs) is Action.RECREATE
    await runtime.prepare(node2, Action.RECREATE)
    again = await runtime.start(node2, obs, Action.RECREATE)
    assert again.ref != obs.ref
    assert engine.container(str(obs.ref)) is None
    await runtime.wait_ready(node2)
    obs2 = await observe1(runtime, node2)
    assert (obs2.state, obs2.config_hash, obs2.ref) == (State.RUNNING, node2.config_hash, again.ref)
    assert decide(node2, obs2) is Action.NONE

    await runtime.stop(node2, obs2)
    assert engine.container(name) is None
    assert await observe1(runtime, node2) == ABSENT


async def test_prepare_creates_ahead_then_start(tmp_path: Path, prefix: str, test_image: str, engine: Any,
                                                runtime: DockerRuntime) -> None:
    name = f"{prefix}-early"
    write_datum(tmp_path, name, image=test_image, command=["sleep", "300"], stop_grace_ms=0)
    node = node_of(tmp_path, name)
    await runtime.prepare(node, Action.CREATE)
    obs = await observe1(runtime, node)
    # created while dependencies come up, not started yet
    assert obs.state is State.STOPPED and obs.config_hash == node.config_hash
    assert decide(node, obs) is Action.START
    started = await runtime.start(node, obs, Action.START)
    assert started.ref == obs.ref
    assert await runtime.wait_ready(node) == "started (no readiness probe)"
    assert (await observe1(runtime, node)).state is State.RUNNING


async def test_exit_at_once_is_node_exited_with_log_tail(tmp_path: Path, prefix: str, test_image: str,
                                                         runtime: DockerRuntime) -> None:
    name = f"{prefix}-crash"
    write_datum(tmp_path, name, image=test_image, command=["sh", "-c", "echo starting; echo doom-$$ >&2; exit 3"],
                health={"tcp": f"127.0.0.1:{free_port()}", "timeout_ms": 30000})
    node = node_of(tmp_path, name)
    t0 = time.monotonic()
    with pytest.raises(NodeExited) as info:
        await up(runtime, node)
    assert time.monotonic() - t0 < 10
    assert "code 3" in str(info.value)
    assert "doom-" in info.value.log_tail and "starting" in info.value.log_tail


async def test_exit_while_probing_fails_at_once(tmp_path: Path, prefix: str, test_image: str,
                                                runtime: DockerRuntime) -> None:
    name = f"{prefix}-late"
    write_datum(tmp_path, name, image=test_image, command=["sh", "-c", "sleep 1; echo giving-up; exit 4"],
                health={"tcp": f"127.0.0.1:{free_port()}", "timeout_ms": 60000, "interval_ms": 60000})
    node = node_of(tmp_path, name)
    t0 = time.monotonic()
    with pytest.raises(NodeExited) as info:
        await up(runtime, node)
    # the probe pace is one try a minute: only the exit watcher can notice this fast
    assert time.monotonic() - t0 < 10
    assert "code 4" in str(info.value)
    assert "giving-up" in info.value.log_tail


async def test_probe_that_never_passes_times_out_naming_it(tmp_path: Path, prefix: str, test_image: str,
                                                           runtime: DockerRuntime) -> None:
    name = f"{prefix}-deaf"
    port = free_port()
    write_datum(tmp_path, name, image=test_image, command=["sleep", "300"], stop_grace_ms=0,
                health={"tcp": f"127.0.0.1:{port}", "timeout_ms": 1500})
    node = node_of(tmp_path, name)
    t0 = time.monotonic()
    with pytest.raises(ReadinessTimeout) as info:
        await up(runtime, node)
    assert time.monotonic() - t0 < 10
    assert f"tcp 127.0.0.1:{port}" in str(info.value)


async def test_exec_probe_runs_inside_the_container(tmp_path: Path, prefix: str, test_image: str,
                                                    runtime: DockerRuntime) -> None:
    name = f"{prefix}-exec"
    write_datum(tmp_path, name, image=test_image, stop_grace_ms=0,
                command=["sh", "-c", "sleep 0.5; touch /tmp/ready; exec sleep 300"],
                health={"exec": ["test", "-f", "/tmp/ready"], "timeout_ms": 15000})
    node = node_of(tmp_path, name)
    _, how = await up(runtime, node)
    assert "exec test -f /tmp/ready" in how
    assert await runtime.exec(node, ["sh", "-c", "exit 7"], 5.0) == 7
    assert await runtime.exec(node, ["true"], 5.0) == 0


async def test_docker_healthcheck_followed_through_events(tmp_path: Path, prefix: str, test_image: str,
                                                          runtime: DockerRuntime) -> None:
    good, bad = f"{prefix}-hc-ok", f"{prefix}-hc-bad"
    write_datum(tmp_path, good, image=test_image, stop_grace_ms=0,
                command=["sh", "-c", "sleep 0.5; touch /tmp/ok; exec sleep 300"],
                docker_args=["--health-cmd", "test -f /tmp/ok", "--health-interval", "100ms",
                             "--health-start-period", "10s"])
    write_datum(tmp_path, bad, image=test_image, stop_grace_ms=0, command=["sleep", "300"],
                docker_args=["--health-cmd=echo sick-$HOSTNAME; false", "--health-interval=100ms",
                             "--health-retries=2"])
    _, how = await up(runtime, node_of(tmp_path, good))
    assert how == "docker HEALTHCHECK healthy"
    t0 = time.monotonic()
    with pytest.raises(ReadinessTimeout) as info:
        await up(runtime, node_of(tmp_path, bad))
    assert time.monotonic() - t0 < 10
    assert "unhealthy" in str(info.value) and "sick-" in str(info.value)


# --- refusing what is not ours ---------------------------------------------------------------------


async def test_foreign_container_is_refused_and_untouched(tmp_path: Path, prefix: str, test_image: str,
                                                          engine: Any, runtime: DockerRuntime) -> None:
    name = f"{prefix}-taken"
    status, created = engine.request("POST", f"/containers/create?name={name}",
                                     {"Image": test_image, "Cmd": ["sleep", "300"]})
    assert status == 201, created
    fid = created["Id"]
    assert engine.request("POST", f"/containers/{fid}/start")[0] == 204
    before = engine.container(fid)
    assert before is not None

    write_datum(tmp_path, name, image=test_image, command=["sleep", "300"])
    node = node_of(tmp_path, name)
    obs = await observe1(runtime, node)
    assert obs.state is State.FOREIGN and obs.ref == fid
    assert decide(node, obs) is Action.CONFLICT
    with pytest.raises(ConflictError):
        await runtime.start(node, obs, Action.CREATE)
    # a stale observation (it appeared after we looked): the engine's name conflict is caught too
    await runtime.prepare(node, Action.CREATE)
    with pytest.raises(ConflictError) as info:
        await runtime.start(node, ABSENT, Action.CREATE)
    assert "not created by b00t-graph" in str(info.value)
    # stop never touches it either
    await runtime.stop(node, Observed(State.RUNNING, None, fid), remove_volumes=True)

    after = engine.container(fid)
    assert after is not None
    assert after["State"]["Running"] is True
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"]
    assert not (after["Config"]["Labels"] or {}).get(MANAGED)


async def test_concurrent_creates_adopt_one_container(tmp_path: Path, prefix: str, test_image: str,
                                                      engine: Any, runtime: DockerRuntime) -> None:
    name = f"{prefix}-race"
    write_datum(tmp_path, name, image=test_image, command=["sleep", "300"], stop_grace_ms=0)
    node = node_of(tmp_path, name)
    other = DockerRuntime()  # another process, as far as the engine can tell
    refs: list[str | None] = []
    try:
        async def go(rt: DockerRuntime) -> None:
            refs.append((await rt.start(node, ABSENT, Action.CREATE)).ref)

        async with anyio.create_task_group() as tg:
            tg.start_soon(go, runtime)
            tg.start_soon(go, other)
    finally:
        await other.aclose()
    assert len(refs) == 2 and refs[0] == refs[1]
    assert len(engine.filtered("containers/json", {"name": [f"^/{name}$"]})) == 1


# --- failures of the engine and the image ------------------------------------------------------------


async def test_missing_image_fails_fast_naming_image_and_datum(tmp_path: Path, prefix: str, engine: Any) -> None:
    name = f"{prefix}-ghost"
    image = f"{prefix}/does-not-exist:404"
    write_datum(tmp_path, name, image=image)
    node = node_of(tmp_path, name)
    events: list[tuple[str, str, str]] = []

    class Record:
        def event(self, node: str, phase: str, detail: str = "") -> None:
            events.append((node, phase, detail))

    rt = DockerRuntime(reporter=Record(), pull_stall=5.0)  # bounded even if the network black-holes
    t0 = time.monotonic()
    try:
        with pytest.raises(StartError) as info:
            await rt.prepare(node, Action.CREATE)
    finally:
        await rt.aclose()
    assert time.monotonic() - t0 < 10
    assert image in str(info.value) and name in str(info.value)
    assert (node.id, "pulling", image) in events
    assert engine.container(name) is None


# --- volumes and networks --------------------------------------------------------------------------


async def test_stop_removes_volumes_only_when_asked(tmp_path: Path, prefix: str, test_image: str,
                                                    engine: Any, runtime: DockerRuntime) -> None:
    name, net, vol, theirs = f"{prefix}-store", f"{prefix}-net", f"{prefix}-data", f"{prefix}-theirs"
    assert engine.request("POST", "/volumes/create", {"Name": theirs})[0] == 201
    write_datum(tmp_path, name, image=test_image, stop_grace_ms=0,
                command=["sh", "-c", "test -f /data/first && touch /data/again; touch /data/first; exec sleep 300"],
                docker_args=["--network", net, "-v", f"{vol}:/data", "--volume", f"{theirs}:/theirs:ro"],
                health={"exec": ["test", "-f", "/data/first"], "timeout_ms": 15000})
    node = node_of(tmp_path, name)
    await up(runtime, node)
    for obj in (engine.volume(vol), engine.network(net)):
        assert obj is not None
        assert obj["Labels"][MANAGED] == "1" and obj["Labels"][NODE] == node.id

    await runtime.stop(node, await observe1(runtime, node))
    assert engine.container(name) is None
    assert engine.volume(vol) is not None  # kept: remove_volumes was not asked for
    assert engine.network(net) is None  # ours and empty: removed

    await up(runtime, node)
    assert await runtime.exec(node, ["test", "-f", "/data/again"], 5.0) == 0  # the data survived
    await runtime.stop(node, await observe1(runtime, node), remove_volumes=True)
    assert engine.volume(vol) is None
    assert engine.volume(theirs) is not None  # not ours: never removed


async def test_stop_timeout_in_docker_args_is_the_grace_period(tmp_path: Path, prefix: str, test_image: str,
                                                               engine: Any, runtime: DockerRuntime) -> None:
    # `sleep` as PID 1 ignores SIGTERM: stopping takes the whole grace period, here --stop-timeout's 0 s,
    # not stop_grace_ms' 20 s.
    name = f"{prefix}-quickstop"
    write_datum(tmp_path, name, image=test_image, command=["sleep", "300"], stop_grace_ms=20_000,
                docker_args=["--stop-timeout", "0"])
    node = node_of(tmp_path, name)
    await up(runtime, node)
    t0 = time.monotonic()
    await runtime.stop(node, await observe1(runtime, node))
    assert time.monotonic() - t0 < 8
    assert engine.container(name) is None


async def test_network_shared_with_a_running_node_is_kept(tmp_path: Path, prefix: str, test_image: str,
                                                          engine: Any, runtime: DockerRuntime) -> None:
    net = f"{prefix}-shared"
    for n in ("a", "b"):
        write_datum(tmp_path, f"{prefix}-{n}", image=test_image, command=["sleep", "300"], stop_grace_ms=0,
                    docker_args=[f"--network={net}", f"--network-alias={n}"])
    a, b = node_of(tmp_path, f"{prefix}-a"), node_of(tmp_path, f"{prefix}-b")
    await up(runtime, a)
    await up(runtime, b)
    # the alias resolves on the shared network
    assert await runtime.exec(a, ["sh", "-c", "ping -c1 -W2 b >/dev/null"], 10.0) == 0
    await runtime.stop(a, await observe1(runtime, a))
    assert engine.network(net) is not None  # b still uses it
    await runtime.stop(b, await observe1(runtime, b))
    assert engine.network(net) is None


async def test_network_removed_between_create_and_start_is_made_again(
        tmp_path: Path, prefix: str, test_image: str, engine: Any, runtime: DockerRuntime) -> None:
    # another run's `down` (or its settling of a duplicate) removes the network while this run's
    # container is made but not started: the start makes the network again
    net = f"{prefix}-net"
    name = f"{prefix}-late"
    write_datum(tmp_path, name, image=test_image, command=["sleep", "300"], stop_grace_ms=0,
                docker_args=[f"--network={net}"])
    node = node_of(tmp_path, name)
    await runtime.prepare(node, Action.CREATE)
    gone = engine.network(net)
    assert gone is not None
    assert engine.request("DELETE", f"/networks/{gone['Id']}")[0] == 204
    obs = await observe1(runtime, node)
    assert obs.state is State.STOPPED
    await runtime.start(node, obs, Action.START)
    info = engine.container(name)
    assert info is not None and info["State"]["Running"] is True
    made = engine.network(net)
    assert made is not None and made["Id"] != gone["Id"] and made["Labels"].get(MANAGED) == "1"
    assert list(made["Containers"]) == [info["Id"]]


async def test_network_kept_while_a_created_container_needs_it(
        tmp_path: Path, prefix: str, test_image: str, engine: Any, runtime: DockerRuntime) -> None:
    # a container made but not started is not among a network's Containers; stopping another
    # node of the network must not remove it from under that container
    net = f"{prefix}-net"
    for n in ("a", "b"):
        write_datum(tmp_path, f"{prefix}-{n}", image=test_image, command=["sleep", "300"], stop_grace_ms=0,
                    docker_args=[f"--network={net}"])
    a, b = node_of(tmp_path, f"{prefix}-a"), node_of(tmp_path, f"{prefix}-b")
    await up(runtime, a)
    other = DockerRuntime()  # another run, which made b ahead of its start
    try:
        await other.prepare(b, Action.CREATE)
        before = engine.network(net)
        assert before is not None and len(before["Containers"]) == 1
        await runtime.stop(a, await observe1(runtime, a))
        after = engine.network(net)
        assert after is not None and after["Id"] == before["Id"]
        obs = await observe1(other, b)
        await other.start(b, obs, Action.START)
        assert list(engine.network(net)["Containers"]) == [obs.ref]
        await other.stop(b, await observe1(other, b))
    finally:
        await other.aclose()
    assert engine.network(net) is None  # the last one out removes it


async def test_two_runs_settling_one_duplicated_network_both_start(
        tmp_path: Path, prefix: str, test_image: str, engine: Any, runtime: DockerRuntime) -> None:
    # Two processes that create one network at once make two of that name; both then settle the
    # pair at the same moment, and one removes a network the other is still looking at. (On trio each
    # runtime has an event loop of its own, as two processes do; on asyncio they share one.)
    for round_ in range(6):
        net = f"{prefix}-net{round_}"
        names = [f"{prefix}-r{round_}{n}" for n in ("a", "b")]
        for name in names:
            write_datum(tmp_path, name, image=test_image, command=["sleep", "300"], stop_grace_ms=0,
                        docker_args=[f"--network={net}"])
        nodes = [node_of(tmp_path, name) for name in names]
        for _ in range(2):
            status, made = engine.request("POST", "/networks/create", {
                "Name": net, "CheckDuplicate": False, "Labels": {MANAGED: "1"}})
            assert status == 201, made
        other = DockerRuntime()
        try:
            async def go(rt: DockerRuntime, node: Node) -> None:
                await rt.start(node, ABSENT, Action.CREATE)

            async with anyio.create_task_group() as tg:
                tg.start_soon(go, runtime, nodes[0])
                tg.start_soon(go, other, nodes[1])
        finally:
            await other.aclose()
        nets = [n for n in engine.filtered("networks", {"name": [net]}) if n["Name"] == net]
        assert len(nets) == 1, nets
        joined = engine.network(net)
        assert joined is not None and len(joined["Containers"]) == 2


# --- through the engine --------------------------------------------------------------------------


async def test_engine_up_and_down(tmp_path: Path, prefix: str, test_image: str, engine: Any,
                                  runtime: DockerRuntime) -> None:
    from b00t_graph.engine import Engine as Orchestrator

    port = free_port()
    write_datum(tmp_path, f"{prefix}-db", image=test_image, command=["sleep", "300"], stop_grace_ms=0,
                env={"DB_URL": f"db://{prefix}-db"})
    write_datum(tmp_path, f"{prefix}-app", image=test_image, depends_on=[f"{prefix}-db.docker"], stop_grace_ms=0,
                **httpd(port))
    graph = compile_in(tmp_path, f"{prefix}-app")
    orch = Orchestrator(runtimes={"docker": runtime})
    res = await orch.up(graph)
    assert res.ok, res.failures
    app = engine.container(f"{prefix}-app")
    assert app is not None and f"DB_URL=db://{prefix}-db" in app["Config"]["Env"]
    down = await orch.down(graph)
    assert not down.failures
    assert engine.filtered("containers/json", {"name": [f"^/{prefix}"]}) == []


# --- the first requests ----------------------------------------------------------------------------


async def test_one_ping_finds_the_engine_and_its_api_version(tmp_path: Path, prefix: str, test_image: str,
                                                             engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``GET /version`` round trip before the first real request: ``/_ping`` tells the version."""
    from tests.dockerutil import RecordingProxy

    status, version = engine.request("GET", "/version")
    assert status == 200
    proxy = RecordingProxy(str(tmp_path / "engine.sock"))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{proxy.path}")
    write_datum(tmp_path, f"{prefix}-absent", image=test_image)
    rt = DockerRuntime()
    try:
        assert await observe1(rt, node_of(tmp_path, f"{prefix}-absent")) == ABSENT
    finally:
        await rt.aclose()
        proxy.close()
    assert proxy.requests[0].startswith("GET /_ping "), proxy.requests
    assert not [r for r in proxy.requests if "/version" in r], proxy.requests
    assert all(r.split(" ")[1].startswith(f"/v{version['ApiVersion']}/") for r in proxy.requests[1:]), proxy.requests


async def test_a_container_found_running_is_probed_without_an_exit_watch(
        tmp_path: Path, prefix: str, test_image: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A warm ``up``/``ensure`` probes a running container once; only a container it started (or one
    whose first probe fails) is watched for an exit with the engine's ``wait`` long-poll."""
    from tests.dockerutil import RecordingProxy

    name = f"{prefix}-warm"
    write_datum(tmp_path, name, image=test_image, **httpd(free_port()))
    node = node_of(tmp_path, name)
    proxy = RecordingProxy(str(tmp_path / "engine.sock"))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{proxy.path}")
    try:
        cold = DockerRuntime()
        try:
            await up(cold, node)
        finally:
            await cold.aclose()
        started = list(proxy.requests)
        del proxy.requests[:]
        warm = DockerRuntime()
        try:
            obs = await observe1(warm, node)
            assert decide(node, obs) is Action.NONE  # the engine then only waits for it to be ready
            how = await warm.wait_ready(node)
            assert node.health is not None and how == f"http {node.health.http_url} → 200"
        finally:
            await warm.aclose()
    finally:
        proxy.close()
    assert [r for r in started if "/wait" in r], started  # the start watched for an exit
    assert not [r for r in proxy.requests if "/wait" in r], proxy.requests
    assert not [r for r in proxy.requests if r.startswith("POST")], proxy.requests  # nothing changed
