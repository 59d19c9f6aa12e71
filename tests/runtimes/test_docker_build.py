"""Images built through the Engine API, container names, restart policies and host-port checks,
against the real engine (no mocks), on asyncio and trio.

Datums are written in b00t's own shapes (``[[b00t.docker.build]]``, ``[[b00t.docker.run]]``,
``[b00t.docker] healthcheck_cmd``, ``[b00t.lifecycle] restart``) and read by the dialects. The
Containerfile builds ``FROM`` the local busybox test image, so nothing is pulled. Containers and
images are named ``b00tgt-<random>-…`` and removed afterwards, pass or fail.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from b00t_graph import down_graph, load_graph, up_graph
from b00t_graph.errors import PortInUse, StartError
from b00t_graph.runtimes import Action
from b00t_graph.runtimes.docker import CONTEXT_HASH, MANAGED, NODE
from tests.dockerutil import Engine
from tests.procutil import q

pytestmark = [pytest.mark.docker, pytest.mark.anyio]


class Events:
    """A reporter that keeps every event."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def event(self, node: str, phase: str, detail: str = "") -> None:
        self.seen.append((node, phase, detail))

    def text(self) -> str:
        return "\n".join(f"{n} {p}: {d}" for n, p, d in self.seen)


@pytest.fixture
def images(engine: Engine, prefix: str) -> Iterator[list[str]]:
    """Image tags a test builds; removed afterwards, pass or fail, with any image built for its datums."""
    tags: list[str] = []
    yield tags
    for tag in tags:
        engine.request("DELETE", f"/images/{quote(tag, safe='')}?force=1")
    for img in engine.filtered("images/json", {"label": [f"{NODE}={prefix}-built.docker"]}):
        engine.request("DELETE", f"/images/{img['Id']}?force=1")


def write_build_datum(folder: Path, prefix: str, base: str, *, run: str = "", marker: str = "one") -> str:
    """A docker datum built from ``ctx/Containerfile``; returns the image tag."""
    ctx = folder / "ctx"
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Containerfile").write_text(
        f"FROM {base}\n"
        "ARG GREETING=none\n"
        'RUN echo "$GREETING" > /greeting\n'
        f"{run}"
        "COPY marker.txt /marker.txt\n"
        'CMD ["sh", "-c", "sleep 0.3; touch /tmp/ready; exec sleep 3600"]\n')
    (ctx / "marker.txt").write_text(marker)
    (ctx / ".dockerignore").write_text("scratch/\n")
    (ctx / "scratch").mkdir(exist_ok=True)
    (ctx / "scratch" / "big.bin").write_bytes(b"x" * 1024)  # ignored: never sent, never hashed
    image = f"{prefix}-img:1"
    (folder / f"{prefix}-built.docker.toml").write_text(f"""[b00t]
name = "{prefix}-built"
type = "docker"
stop_grace_ms = 1000

[b00t.docker]
healthcheck_cmd = "test -f /tmp/ready && grep -q hello /greeting"
healthcheck_interval = "1s"

[[b00t.docker.build]]
context = "ctx"
file = "ctx/Containerfile"

[b00t.docker.build.args]
GREETING = "hello"

[[b00t.docker.run]]
image = {q(image)}
name = {q(prefix + "-box")}

[b00t.lifecycle]
restart = "unless-stopped"
""")
    return image


async def test_a_built_image_starts_passes_its_probe_and_is_not_built_again(
        engine: Engine, test_image: str, prefix: str, images: list[str], tmp_path: Path) -> None:
    folder = tmp_path / "datums"
    image = write_build_datum(folder, prefix, test_image)
    images.append(image)
    state = tmp_path / "state"
    graph = load_graph([f"{prefix}-built.docker"], folder, environ={})
    node = graph.nodes[f"{prefix}-built.docker"]
    assert node.health is not None and node.health.exec == ["sh", "-c", "test -f /tmp/ready && grep -q hello /greeting"]
    try:
        ev = Events()
        t0 = time.monotonic()
        res = await up_graph(graph, state_dir=state, reporter=ev)
        first = time.monotonic() - t0
        assert res.ok, res.failures
        assert "Step" in ev.text() or "building" in ev.text()  # build output reached the reporter
        info = engine.container(f"{prefix}-box")  # named by [[b00t.docker.run]] name, not the datum
        assert info is not None and info["State"]["Running"]
        labels = info["Config"]["Labels"]
        assert labels[MANAGED] == "1" and labels[NODE] == f"{prefix}-built.docker"
        assert info["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        status, img = engine.request("GET", f"/images/{quote(image, safe='')}/json")
        assert status == 200 and img["Config"]["Labels"][CONTEXT_HASH]
        assert "exec sh -c" in res.timings[f"{prefix}-built.docker"].detail  # ready by the healthcheck_cmd probe

        # a second up with the container running: nothing to do
        res2 = await up_graph(graph, state_dir=state)
        assert res2.timings[f"{prefix}-built.docker"].action is Action.NONE

        # removed, then up again: the image with the same context hash is reused, not rebuilt
        await down_graph(graph, state_dir=state)
        ev2 = Events()
        t0 = time.monotonic()
        res3 = await up_graph(graph, state_dir=state, reporter=ev2)
        again = time.monotonic() - t0
        assert res3.ok, res3.failures
        assert "is up to date" in ev2.text() and "Step" not in ev2.text(), ev2.text()
        skipped = next(d for _, p, d in ev2.seen if "up to date" in d)
        print(f"\nfirst up with build {first:.2f}s; up again without build {again:.2f}s; {skipped}")

        # a changed context is built again at the next create
        await down_graph(graph, state_dir=state)
        (folder / "ctx" / "marker.txt").write_text("two")
        ev3 = Events()
        res4 = await up_graph(graph, state_dir=state, reporter=ev3)
        assert res4.ok, res4.failures
        assert "built " in ev3.text() and "up to date" not in ev3.text()
        status, img2 = engine.request("GET", f"/images/{quote(image, safe='')}/json")
        assert img2["Config"]["Labels"][CONTEXT_HASH] != img["Config"]["Labels"][CONTEXT_HASH]
    finally:
        await down_graph(graph, state_dir=state)


async def test_a_failing_build_fails_the_node_with_the_build_output(
        engine: Engine, test_image: str, prefix: str, images: list[str], tmp_path: Path) -> None:
    folder = tmp_path / "datums"
    image = write_build_datum(folder, prefix, test_image, run="RUN echo about-to-fail && false\n")
    images.append(image)
    graph = load_graph([f"{prefix}-built.docker"], folder, environ={})
    res = await up_graph(graph, state_dir=tmp_path / "state")
    err = res.failures[f"{prefix}-built.docker"]
    assert isinstance(err, StartError)
    assert f"image build of {image!r} failed" in str(err)
    assert "about-to-fail" in err.log_tail, str(err)
    assert engine.container(f"{prefix}-box") is None


@pytest.fixture
def foreign_port() -> Iterator[int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


async def test_a_published_port_held_by_another_program_fails_at_once(
        engine: Engine, test_image: str, prefix: str, tmp_path: Path, foreign_port: int) -> None:
    folder = tmp_path / "datums"
    folder.mkdir()
    (folder / "web.docker.toml").write_text(f"""[b00t]
name = "web"
type = "docker"
image = {q(test_image)}
command = ["httpd", "-f", "-p", "80", "-h", "/www"]
docker_args = ["--name", {q(prefix + "-web")}, "-p", "{foreign_port}:80", "--init"]
stop_grace_ms = 1000
[b00t.health_check]
http_url = "http://127.0.0.1:{foreign_port}/"
timeout_ms = 60000
""")
    graph = load_graph(["web.docker"], folder, environ={})
    t0 = time.monotonic()
    try:
        res = await up_graph(graph, state_dir=tmp_path / "state")
        spent = time.monotonic() - t0
        err = res.failures["web.docker"]
        assert isinstance(err, PortInUse), err
        assert f"port {foreign_port} is in use by another program" in str(err)
        assert "pid" in str(err)
        assert spent < 10  # at once: not the probe's 60 s
        info = engine.container(f"{prefix}-web")
        assert info is None or not info["State"]["Running"]
    finally:
        await down_graph(graph, state_dir=tmp_path / "state")


async def test_idempotent_up_is_not_tripped_by_its_own_published_port(
        engine: Engine, test_image: str, prefix: str, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tmp_path / "datums"
    folder.mkdir()
    text = f"""[b00t]
name = "web"
type = "docker"
image = {q(test_image)}
command = ["httpd", "-f", "-p", "80", "-h", "/www"]
docker_args = ["--name", {q(prefix + "-web")}, "-p", "{port}:80", "--init"]
stop_grace_ms = 1000
[b00t.health_check]
http_url = "http://127.0.0.1:{port}/"
[b00t.env]
TAG = "TAGVALUE"
"""
    (folder / "web.docker.toml").write_text(text.replace("TAGVALUE", "1"))
    graph = load_graph(["web.docker"], folder, environ={})
    state = tmp_path / "state"
    try:
        assert (await up_graph(graph, state_dir=state)).ok
        again = await up_graph(graph, state_dir=state)
        assert again.ok and again.timings["web.docker"].action is Action.NONE
        # a changed config recreates: the old container (holding the port) goes first, so no conflict
        (folder / "web.docker.toml").write_text(text.replace("TAGVALUE", "2"))
        graph2 = load_graph(["web.docker"], folder, environ={})
        changed = await up_graph(graph2, state_dir=state)
        assert changed.ok, changed.failures
        assert changed.timings["web.docker"].action is Action.RECREATE
    finally:
        await down_graph(load_graph(["web.docker"], folder, environ={}), state_dir=state)
