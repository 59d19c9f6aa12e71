"""Docker datums as Swarm services (``up --on swarm``, ``[b00t] on = "swarm"``) on the real engine.

The ``swarm`` fixture makes the engine a single-node swarm (``docker swarm init --advertise-addr
127.0.0.1``) only when it is in none, and leaves it again at the end of this module only if it made
it. Every stack runs in a project named after the test's ``b00tgt-<random>`` prefix, so services,
their overlay network and task containers all carry that prefix; teardown removes the services
(through the Engine API, not the code under test), waits for their containers, then sweeps the
prefix, pass or fail. Ports are published in host mode (the ingress mesh does not answer here) and
probed from the host.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from b00t_graph.runtimes.docker import HASH, MANAGED, NODE
from b00t_graph.runtimes.swarmspec import TASK_NODE
from tests.dockerutil import Engine
from tests.procutil import cli, free_port, wait_for
from tests.runtimes.test_docker_e2e import Stack, _toml

pytestmark = pytest.mark.docker


def _time(text: str) -> float:
    """An engine timestamp (RFC 3339, nanoseconds) as POSIX seconds."""
    whole, _, frac = text.replace("Z", "").partition(".")
    return datetime.fromisoformat(f"{whole}.{(frac + '000000')[:6]}+00:00").timestamp()


@pytest.fixture(scope="module")
def swarm(engine: Engine) -> Iterator[None]:
    """The engine as a Swarm manager for this module; left as it was found afterwards."""
    status, info = engine.request("GET", "/info")
    assert status == 200, info
    state = info["Swarm"]["LocalNodeState"]
    had_gwbridge = engine.request("GET", "/networks/docker_gwbridge")[0] == 200
    made = False
    if state == "inactive":
        status, data = engine.request("POST", "/swarm/init", {"ListenAddr": "127.0.0.1:2377",
                                                               "AdvertiseAddr": "127.0.0.1"}, timeout=60)
        assert status == 200, data
        made = True
    elif state != "active" or not info["Swarm"].get("ControlAvailable"):
        pytest.fail(f"the engine is in a swarm it does not manage (state {state})", pytrace=False)
    try:
        yield
    finally:
        if made:
            engine.request("POST", "/swarm/leave?force=1", timeout=60)
            if not had_gwbridge:  # the bridge the engine made for the swarm stays after leaving
                engine.request("DELETE", "/networks/docker_gwbridge")


def _services(engine: Engine, prefix: str) -> list[dict[str, Any]]:
    q = quote(json.dumps({"name": [prefix]}))
    status, data = engine.request("GET", f"/services?filters={q}")
    assert status == 200, data
    return [s for s in data if s["Spec"]["Name"].startswith(prefix)]


def _purge_services(engine: Engine, prefix: str) -> None:
    for s in _services(engine, prefix):
        engine.request("DELETE", f"/services/{s['ID']}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and engine.filtered("containers/json", {"name": [f"^/{prefix}"]}):
        time.sleep(0.2)


class SwarmStack(Stack):
    """One test's datum folder, state directory and project (= the prefix), and the CLI pointed at them;
    its services publish their ports on the node and need no network of the test's own."""

    def service_name(self, short: str) -> str:
        return f"{self.prefix}_{self.name(short)}"  # the project's prefix, then the datum's name

    def docker(self, short: str, *, command: Sequence[str], deps: Sequence[str] = (), docker_args: Sequence[str] = (),
               port: int | None = None, env: dict[str, str] | None = None, extra: str = "") -> Path:
        lines = ["[b00t]", f"name = {_toml(self.name(short))}", 'type = "docker"', f"image = {_toml(self.image)}",
                 "stop_grace_ms = 2000", f"command = {_toml(list(command))}",
                 f"docker_args = {_toml(['--init', *docker_args])}"]
        if port is not None:
            lines.append(f"ports = {_toml([f'{port}:80'])}")
        if deps:
            lines.append(f"depends_on = {_toml([self.ident(d) for d in deps])}")
        lines.append(extra)
        if port is not None:
            lines += ["[b00t.health_check]", f"http_url = {_toml(f'http://127.0.0.1:{port}/')}", "timeout_ms = 60000"]
        else:
            lines += ["[b00t.health_check]", "timeout_ms = 60000"]
        if env:
            lines.append("[b00t.env]")
            lines += [f"{k} = {_toml(v)}" for k, v in env.items()]
        path = self.folder / f"{self.name(short)}.docker.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def web(self, short: str, *, before: str = "", deps: Sequence[str] = (), port: int | None = None,
            health: str | None = None, env: dict[str, str] | None = None, extra: str = "") -> Path:
        """busybox httpd serving ``<short>``; ``before`` runs first; ``health`` becomes its HEALTHCHECK."""
        args = ["--health-cmd", health, "--health-interval", "1s"] if health else []
        return self.docker(short, command=["sh", "-c", f"{before}mkdir -p /w && echo {short} > /w/index.html && "
                                           "exec httpd -f -p 80 -h /w"],
                           deps=deps, docker_args=args, port=port, env=env, extra=extra)

    def cli(self, cmd: str, *args: str, backend: str = "asyncio", timeout: float = 180.0
            ) -> subprocess.CompletedProcess[str]:
        project = ("--project", self.prefix) if cmd != "ps" else ()  # ps lists every project
        return cli(cmd, *args, "--datums", str(self.folder), "--state-dir", str(self.state_dir), *project,
                   state_dir=self.state_dir, backend=backend, timeout=timeout)

    def service(self, short: str) -> dict[str, Any] | None:
        status, data = self.engine.request("GET", f"/services/{quote(self.service_name(short))}")
        return data if status == 200 else None

    def tasks(self, short: str) -> list[dict[str, Any]]:
        q = quote(json.dumps({"service": [self.service_name(short)]}))
        status, data = self.engine.request("GET", f"/tasks?filters={q}")
        assert status == 200, data
        return list(data)

    def running_task(self, short: str) -> dict[str, Any]:
        running = [t for t in self.tasks(short) if t["Status"]["State"] == "running"]
        assert running, self.tasks(short)
        return running[0]

    def task_container(self, short: str) -> dict[str, Any]:
        info = self.engine.container(self.running_task(short)["Status"]["ContainerStatus"]["ContainerID"])
        assert info is not None
        return info


@pytest.fixture
def stack(swarm: None, prefix: str, test_image: str, tmp_path: Path, engine: Engine) -> Iterator[SwarmStack]:
    _purge_services(engine, prefix)
    try:
        yield SwarmStack(prefix, test_image, tmp_path, engine)
    finally:
        _purge_services(engine, prefix)
        engine.purge(prefix)  # the overlay network (<prefix>_swarm) and anything left


def _ok(res: subprocess.CompletedProcess[str]) -> None:
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        return str(resp.read().decode().strip())


def test_up_creates_services_in_graph_order_once_dependencies_are_healthy(stack: SwarmStack) -> None:
    port = free_port()
    # a is healthy only ~3 s after it starts: a service created before that would show in the times
    stack.web("a", before="sleep 3 && ", port=port, health="test -f /w/index.html")
    stack.web("b", deps=["a"], health=f"wget -q -O /dev/null http://{stack.name('a')}/")
    stack.web("c", deps=["b"], before=f"wget -q -O /dev/null http://{stack.name('b')}/ && ")
    res = stack.cli("up", stack.ident("c"), "--on", "swarm")
    _ok(res)

    a, b, c = (stack.service(x) for x in "abc")
    assert a is not None and b is not None and c is not None
    # each service was created only once its dependency's task ran and was healthy (Swarm holds a task
    # with a HEALTHCHECK in "starting" until it is), and after our own probe of it
    a_ready = _time(stack.running_task("a")["Status"]["Timestamp"])
    b_ready = _time(stack.running_task("b")["Status"]["Timestamp"])
    assert _time(a["CreatedAt"]) < a_ready <= _time(b["CreatedAt"])
    assert b_ready <= _time(c["CreatedAt"])
    assert stack.task_container("a")["State"]["Health"]["Status"] == "healthy"
    # the datum's own probe went to the host-mode published port
    assert _get(port) == "a"
    # ownership labels and the config hash on the service; none on its tasks' containers
    plan = json.loads(stack.cli("plan", stack.ident("c"), "--on", "swarm", "--json").stdout)
    hashes = {n["id"]: n["config_hash"] for n in plan["nodes"]}
    for short, svc in zip("abc", (a, b, c), strict=True):
        assert svc["Spec"]["Labels"] == {MANAGED: "1", NODE: stack.ident(short), HASH: hashes[stack.ident(short)],
                                         "org.b00t-graph.project": stack.prefix}
        labels = stack.task_container(short)["Config"]["Labels"]
        assert MANAGED not in labels
        assert labels[TASK_NODE] == stack.ident(short)
    assert a["Spec"]["EndpointSpec"]["Ports"][0]["PublishMode"] == "host"
    # one overlay network for the project, every service on it
    net = stack.engine.network(f"{stack.prefix}_swarm")
    assert net is not None and net["Driver"] == "overlay" and net["Labels"][MANAGED] == "1"
    # plan and status see the running services; up again leaves them alone
    again = stack.cli("up", stack.ident("c"), "--on", "swarm")
    _ok(again)
    assert "already running" in again.stderr
    assert stack.service("a")["Version"]["Index"] == a["Version"]["Index"]  # type: ignore[index]


def test_config_change_is_a_service_update_and_down_goes_dependents_first(stack: SwarmStack) -> None:
    port = free_port()
    stack.web("a", port=port, env={"GREETING": "one"})
    stack.web("b", deps=["a"])
    _ok(stack.cli("up", stack.ident("b"), "--on", "swarm", backend="trio"))
    before = stack.service("a")
    assert before is not None
    old_task = stack.running_task("a")["ID"]

    stack.web("a", port=port, env={"GREETING": "two"})
    res = stack.cli("up", stack.ident("b"), "--on", "swarm", backend="trio")
    _ok(res)
    after = stack.service("a")
    assert after is not None
    assert after["ID"] == before["ID"]  # updated, not removed and made again
    assert after["Version"]["Index"] > before["Version"]["Index"]
    assert after["Spec"]["Labels"][HASH] != before["Spec"]["Labels"][HASH]
    assert stack.running_task("a")["ID"] != old_task
    assert "GREETING=two" in stack.task_container("a")["Config"]["Env"]
    assert _get(port) == "a"

    down = stack.cli("down", stack.ident("b"), backend="trio")  # found as services: no --on needed
    _ok(down)
    lines = down.stderr.splitlines()
    b_stopped = next(i for i, line in enumerate(lines) if f"{stack.ident('b')} stopped" in line)
    a_stopping = next(i for i, line in enumerate(lines) if f"{stack.ident('a')} stopping" in line)
    assert b_stopped < a_stopping, down.stderr
    assert stack.service("a") is None and stack.service("b") is None
    assert stack.engine.filtered("containers/json", {"name": [f"^/{stack.prefix}"]}) == []
    assert stack.engine.network(f"{stack.prefix}_swarm") is None


def test_datum_on_swarm_with_replicas_and_ps(stack: SwarmStack) -> None:
    stack.web("r", extra='on = "swarm"\n[b00t.swarm]\nreplicas = 2\nconstraints = ["node.role == manager"]\n'
              'memory_reservation = "8m"\n[b00t.resources]\nmemory_limit = "64m"')
    _ok(stack.cli("up", stack.ident("r")))  # no --on: the datum says where it runs
    svc = stack.service("r")
    assert svc is not None
    assert svc["Spec"]["Mode"]["Replicated"]["Replicas"] == 2
    assert len([t for t in stack.tasks("r") if t["Status"]["State"] == "running"]) == 2
    assert svc["Spec"]["TaskTemplate"]["Placement"]["Constraints"] == ["node.role == manager"]
    assert svc["Spec"]["TaskTemplate"]["Resources"] == {"Limits": {"MemoryBytes": 64 * 2**20},
                                                        "Reservations": {"MemoryBytes": 8 * 2**20}}
    ps = stack.cli("ps", "--json")
    _ok(ps)
    items = [m for m in json.loads(ps.stdout)["items"] if m["node"] == stack.ident("r")]
    assert len(items) == 1, ps.stdout
    assert items[0]["runtime"] == "swarm"
    assert items[0]["name"] == stack.service_name("r")
    assert items[0]["health"].startswith("2/2 running on node ")
    assert items[0]["drift"] is False and items[0]["orphan"] is False
    _ok(stack.cli("down", stack.ident("r")))
    assert stack.service("r") is None


def test_a_service_it_did_not_create_is_left_untouched(stack: SwarmStack) -> None:
    spec = {"Name": stack.service_name("x"), "Labels": {"someone": "else"},
            "TaskTemplate": {"ContainerSpec": {"Image": stack.image, "Args": ["sleep", "3600"]}}}
    status, made = stack.engine.request("POST", "/services/create", spec)
    assert status == 201, made
    version = stack.service("x")["Version"]["Index"]  # type: ignore[index]
    stack.web("x")
    res = stack.cli("up", stack.ident("x"), "--on", "swarm")
    assert res.returncode == 1, res.stderr
    assert f"a service named {stack.service_name('x')!r}" in res.stderr
    assert "was not created by b00t-graph" in res.stderr
    assert "Traceback" not in res.stderr
    _ok(stack.cli("down", stack.ident("x"), "--on", "swarm"))
    svc = stack.service("x")
    assert svc is not None and svc["ID"] == made["ID"]
    assert svc["Version"]["Index"] == version  # never updated
    assert svc["Spec"]["Labels"] == {"someone": "else"}
    assert svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Args"] == ["sleep", "3600"]


def test_a_service_made_for_another_project_is_left_untouched(stack: SwarmStack) -> None:
    labels = {MANAGED: "1", NODE: stack.ident("y"), HASH: "0" * 16, "org.b00t-graph.project": "someone-else"}
    spec = {"Name": stack.service_name("y"), "Labels": labels,
            "TaskTemplate": {"ContainerSpec": {"Image": stack.image, "Args": ["sleep", "3600"]}}}
    status, made = stack.engine.request("POST", "/services/create", spec)
    assert status == 201, made
    stack.web("y")
    res = stack.cli("up", stack.ident("y"), "--on", "swarm")
    assert res.returncode == 1, res.stderr
    assert f"created by b00t-graph for {stack.ident('y')} in project 'someone-else'" in res.stderr
    _ok(stack.cli("down", stack.ident("y"), "--on", "swarm"))
    svc = stack.service("y")
    assert svc is not None and svc["ID"] == made["ID"]
    assert svc["Spec"]["Labels"] == labels


def test_a_task_that_fails_before_it_is_ready_fails_the_node_with_its_log(stack: SwarmStack) -> None:
    # a HEALTHCHECK that never passes: Swarm never calls the task running, so it fails before it is ready
    stack.docker("f", command=["sh", "-c", "echo boom-from-the-task; sleep 1; exit 3"],
                 docker_args=["--health-cmd", "false", "--health-interval", "1s"])
    stack.web("g", deps=["f"])
    res = stack.cli("up", stack.ident("g"), "--on", "swarm")
    assert res.returncode == 1, res.stderr
    assert "the service's task failed" in res.stderr
    assert "(exit code 3)" in res.stderr
    assert "boom-from-the-task" in res.stderr
    assert "Traceback" not in res.stderr
    assert stack.service("g") is None  # its dependency never became ready: never created
    assert stack.service("f") is None  # what this run started and failed is removed again


def test_swarm_replaces_a_task_whose_container_dies(stack: SwarmStack) -> None:
    port = free_port()
    stack.web("s", port=port)
    _ok(stack.cli("up", stack.ident("s"), "--on", "swarm"))
    first = stack.running_task("s")
    cid = first["Status"]["ContainerStatus"]["ContainerID"]
    status, _ = stack.engine.request("POST", f"/containers/{cid}/kill")
    assert status == 204

    def replaced() -> bool:
        running = [t for t in stack.tasks("s") if t["Status"]["State"] == "running"]
        return bool(running) and running[0]["ID"] != first["ID"]

    wait_for(replaced, timeout=60, what="Swarm to start a new task")
    wait_for(lambda: _answers(port), timeout=30, what="the new task to answer")
    assert _get(port) == "s"


def _answers(port: int) -> bool:
    try:
        return _get(port) == "s"
    except OSError:
        return False
