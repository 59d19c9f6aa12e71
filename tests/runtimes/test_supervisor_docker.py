"""Supervision of a real container: one whose liveness check starts failing is recreated (Docker itself
never restarts an unhealthy container), in the engine and by the detached supervisor (`supervise`), which
then leaves a `down` of it alone."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import anyio
import pytest

from b00t_graph import Engine, load_graph
from b00t_graph.detached import folder as folder_of
from b00t_graph.supervisor import Supervisor, supervisable
from benchmarks.benchlib import ForwardingSocket
from tests.procutil import Reaper, cli, kill, wait_for, wait_gone
from tests.runtimes.test_docker_runtime import write_datum

pytestmark = [pytest.mark.docker]


class Events:
    """A reporter that keeps each event's ``(phase, detail)``."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def event(self, node: str, phase: str, detail: str = "") -> None:
        self.seen.append((phase, detail))


def sick_datum(folder: Path, name: str, image: str, policy: str) -> str:
    """A container that turns unhealthy once ``/tmp/sick`` exists in it, restarted by ``policy``."""
    folder.mkdir()
    write_datum(folder, name, image=image, command=["sleep", "300"],
                health={"exec": ["sh", "-c", "test ! -e /tmp/sick"], "timeout_ms": 15000, "interval_ms": 100})
    path = folder / f"{name}.docker.toml"
    path.write_text(path.read_text() + f'[b00t.restart]\npolicy = "{policy}"\ninterval_ms = 100\n'
                    "failure_threshold = 2\nbackoff_ms = 50\n")
    return f"{name}.docker"


@pytest.mark.anyio
async def test_an_unhealthy_container_is_recreated_by_liveness(tmp_path: Path, prefix: str, test_image: str,
                                                               engine: Any) -> None:
    folder, name = tmp_path / "datums", f"{prefix}-sick"
    ident = sick_datum(folder, name, test_image, "on-failure")
    graph = load_graph([ident], folder)
    events = Events()
    seen = events.seen

    async with Engine(state_dir=tmp_path / "state", reporter=events) as eng:
        try:
            res = await eng.up(graph)
            assert res.ok, res.failures
            first = engine.container(name)["Id"]
            sup = Supervisor(eng, graph, supervisable(res), poll=0.05, rng=random.Random(3))
            rt = eng.runtimes.for_type("docker")
            assert rt is not None
            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(sup.run)
                    await anyio.sleep(0.3)
                    assert await rt.exec(graph.nodes[ident], ["touch", "/tmp/sick"], 10.0) == 0  # type: ignore[attr-defined]
                    while sup.watched[ident].total_restarts < 1 or sup.watched[ident].status != "running":
                        await anyio.sleep(0.05)
                    tg.cancel_scope.cancel()
            assert ("unhealthy", "liveness failed 2 times in a row; last: exec exited 1") in seen
            now = engine.container(name)
            assert now is not None and now["Id"] != first and now["State"]["Running"]
        finally:
            with anyio.CancelScope(shield=True):
                await eng.down(graph)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_detached_supervisor_recreates_an_unhealthy_container_and_down_is_not_undone(
        tmp_path: Path, prefix: str, test_image: str, engine: Any, reaper: Reaper, state_dir: Path,
        backend: str) -> None:
    folder, name = tmp_path / "datums", f"{prefix}-sick"
    ident = sick_datum(folder, name, test_image, "always")
    reaper.down_on_exit([ident], folder)
    assert cli("up", ident, "-q", "-d", str(folder), state_dir=state_dir, backend=backend).returncode == 0
    first = engine.container(name)["Id"]
    sup = cli("supervise", ident, "-d", str(folder), state_dir=state_dir, backend=backend, timeout=120)
    assert sup.returncode == 0, sup.stderr
    state = folder_of(state_dir) / "state.json"
    pid = int(json.loads(state.read_text())["pid"])
    reaper.pids.append(pid)
    try:
        sick = cli("exec", ident, "-d", str(folder), "touch", "/tmp/sick", state_dir=state_dir)
        assert sick.returncode == 0, sick.stderr
        wait_for(lambda: json.loads(state.read_text())["watching"][ident]["restarts"] == 1
                 and json.loads(state.read_text())["watching"][ident]["status"] == "running",
                 timeout=90, what="the unhealthy container to be recreated")
        now = engine.container(name)
        assert now is not None and now["Id"] != first and now["State"]["Running"]
        down = cli("down", ident, "-q", "-d", str(folder), state_dir=state_dir, backend=backend)
        assert down.returncode == 0, down.stderr
        assert wait_gone(pid, 60), "the supervisor ends once what it watched was taken down"
        log = (folder_of(state_dir) / "log").read_text()
        assert f"{ident} stopped: taken down by a `down` or `stop`" in log, log
        assert engine.container(name) is None, "down must not be undone"
    finally:
        kill(pid)


class SocketProxy:
    """A forwarding socket to the engine's that can be taken away (``cut``) and put back (``start``):
    an engine that stops answering for a while (restarting), as a client sees it."""

    def __init__(self, path: Path, target: str) -> None:
        self.path, self.target = path, target
        self.listener: ForwardingSocket | None = None

    def start(self) -> None:
        self.listener = ForwardingSocket(self.path, self.target)

    def cut(self) -> None:
        if self.listener is not None:
            self.listener.close()  # with every connection through it
            self.listener = None


@pytest.mark.anyio
async def test_supervision_rides_out_an_engine_that_does_not_answer_for_a_while(
        tmp_path: Path, prefix: str, test_image: str, engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    if not engine.host.startswith("unix://"):
        pytest.skip("the proxy forwards a unix socket")
    proxy = SocketProxy(tmp_path / "engine.sock", engine.host.removeprefix("unix://"))
    proxy.start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{proxy.path}")
    folder, name = tmp_path / "datums", f"{prefix}-steady"
    ident = sick_datum(folder, name, test_image, "always")
    graph = load_graph([ident], folder)
    events = Events()
    seen = events.seen

    try:
        async with Engine(state_dir=tmp_path / "state", reporter=events) as eng:
            try:
                res = await eng.up(graph)
                assert res.ok, res.failures
                first = engine.container(name)["Id"]
                sup = Supervisor(eng, graph, supervisable(res), poll=0.05, rng=random.Random(5))
                with anyio.fail_after(90):
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(sup.run)
                        await anyio.sleep(0.3)
                        proxy.cut()
                        while not any(p == "probe" and "cannot check" in d for p, d in seen):
                            await anyio.sleep(0.05)
                        await anyio.sleep(1.0)  # a while without an engine: no restart, no end
                        assert sup.watched[ident].status == "running" and sup.watched[ident].total_restarts == 0
                        proxy.start()
                        assert engine.request("POST", f"/containers/{name}/kill")[0] == 204  # then a real crash
                        while sup.watched[ident].total_restarts < 1 or sup.watched[ident].status != "running":
                            await anyio.sleep(0.05)
                        tg.cancel_scope.cancel()
                now = engine.container(name)
                assert now is not None and now["Id"] != first and now["State"]["Running"]
            finally:
                with anyio.CancelScope(shield=True):
                    if proxy.listener is None:
                        proxy.start()
                    await eng.down(graph)
    finally:
        proxy.cut()
