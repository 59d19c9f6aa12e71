"""One graph across two real Docker engines: the machine's and a second dockerd the suite starts
(``tests/second_engine.py``), named ``b`` in a ``b00t-graph.toml`` beside the datums.

A service on engine ``b`` publishes its port on the second engine's bridge address; it reaches
its dependents as ``${B00T_ENGINE_HOST}``. Everything is named ``b00tgt-<random>-…`` and swept
from both engines afterwards, pass or fail.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from b00t_graph import down_graph, load_graph, running, up_graph
from b00t_graph.errors import EngineUnavailable
from b00t_graph.runtimes.docker import MANAGED, NODE
from tests.dockerutil import Engine
from tests.procutil import cli, free_port, stack_datum
from tests.second_engine import SecondEngine, second_engine

pytestmark = pytest.mark.docker


def _q(value: Any) -> str:
    return json.dumps(value)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


def never_started(info: dict[str, Any] | None) -> bool:
    """Absent, or only created ahead of its start (``prepare``) and never started."""
    return info is None or (not info["State"]["Running"] and info["State"]["StartedAt"].startswith("0001-"))


def web(name: str, image: str, port: int, *, engine: str | None = None, deps: tuple[str, ...] = (),
        before: str = "", bind: str = "", probe_host: str = "${B00T_ENGINE_HOST}", exports: bool = False) -> str:
    """A busybox httpd datum serving ``name`` (or what ``before`` wrote) on ``port`` of its engine's host."""
    page = f"echo {name} > /www/index.html && echo serving-{name} && "
    lines = ["[b00t]", f"name = {_q(name)}", 'type = "docker"', f"image = {_q(image)}", "stop_grace_ms = 1000",
             f"command = {_q(['sh', '-c', f'mkdir -p /www && {before or page}exec httpd -f -p 80 -h /www'])}",
             f"ports = {_q([f'{bind}{port}:80'])}", 'docker_args = ["--init"]']
    if engine:
        lines.append(f"engine = {_q(engine)}")
    if deps:
        lines.append(f"depends_on = {_q(list(deps))}")
    lines += ["[b00t.health_check]", f"http_url = {_q(f'http://{probe_host}:{port}/')}", "timeout_ms = 60000",
              "interval_ms = 200"]
    if exports:
        lines += ["[b00t.env]", f"{name.rsplit('-', 1)[1].upper()}_URL = {_q(f'http://${{B00T_ENGINE_HOST}}:{port}')}"]
    return "\n".join(lines) + "\n"


class TwoEngines:
    """One test's datum folder (with its ``b00t-graph.toml``), state dir and the CLI pointed at them."""

    def __init__(self, prefix: str, root: Path, second: SecondEngine, first: Engine) -> None:
        self.prefix, self.second, self.first = prefix, second, first
        self.folder = root / "datums"
        self.state_dir = root / "state"
        self.config_home = root / "config"  # no user config of the machine's leaks in
        for d in (self.folder, self.state_dir, self.config_home):
            d.mkdir(parents=True)
        self.targets: list[str] = []

    def name(self, short: str) -> str:
        return f"{self.prefix}-{short}"

    def engines(self, text: str) -> None:
        (self.folder / "b00t-graph.toml").write_text(text)

    def tls_engine(self, name: str, **keys: str) -> str:
        """``[engines.NAME]``: the second engine's TLS listener, its client files, its bridge address."""
        tls = self.second.tls
        table = {"host": self.second.tcp, "address": self.second.address, "tls_ca": tls["ca"],
                 "tls_cert": tls["cert"], "tls_key": tls["key"], **keys}
        return f"[engines.{name}]\n" + "".join(f"{k} = {_q(v)}\n" for k, v in table.items())

    def datum(self, short: str, text: str, typ: str = "docker") -> None:
        (self.folder / f"{self.name(short)}.{typ}.toml").write_text(text)

    def group(self, members: list[str]) -> str:
        target = f"{self.name('all')}.stack"
        self.datum("all", stack_datum(self.name("all"), [f"{self.name(m)}.docker" for m in members]), "stack")
        self.targets.append(target)
        return target

    def cli(self, *args: str, timeout: float = 180.0, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        proc = cli(*args, "--datums", str(self.folder), "--state-dir", str(self.state_dir),
                   state_dir=self.state_dir, env={"XDG_CONFIG_HOME": str(self.config_home), **(env or {})},
                   timeout=timeout)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def on(self, engine: Engine, short: str) -> dict[str, Any] | None:
        return engine.container(self.name(short))


@pytest.fixture
def two(second_prefix: str, second: SecondEngine, engine: Engine, tmp_path: Path) -> Iterator[TwoEngines]:
    t = TwoEngines(second_prefix, tmp_path, second, engine)
    try:
        yield t
    finally:
        for target in t.targets:
            try:
                t.cli("down", target, "-q", timeout=120)
            except (subprocess.TimeoutExpired, AssertionError):
                pass  # the prefix sweeps of both engines still remove everything


def test_a_dependency_on_engine_b_comes_up_before_its_dependent_on_engine_a_and_down_removes_both(
        two: TwoEngines, test_image: str) -> None:
    db_port, app_port = free_port(), free_port()
    two.engines(two.tls_engine("b"))
    two.datum("db", web(two.name("db"), test_image, db_port, engine="b", exports=True))
    # the app copies the db's page when it starts: it serves "db" only if the db was ready first and
    # reachable from the app's engine at ${B00T_ENGINE_HOST} of the db's
    two.datum("app", web(two.name("app"), test_image, app_port, deps=(f"{two.name('db')}.docker",),
                         before='wget -q -O /www/index.html "$DB_URL/" && ', bind="127.0.0.1:",
                         probe_host="127.0.0.1"))
    target = two.group(["app"])

    proc = two.cli("up", target)
    assert proc.returncode == 0, proc.stderr
    assert fetch(f"http://127.0.0.1:{app_port}/").strip() == two.name("db")
    db, app = two.on(two.second.api, "db"), two.on(two.first, "app")
    assert db is not None and db["State"]["Running"] and db["Config"]["Labels"][MANAGED] == "1"
    assert db["Config"]["Labels"][NODE] == f"{two.name('db')}.docker"
    assert app is not None and app["State"]["Running"]
    assert two.on(two.first, "db") is None and two.on(two.second.api, "app") is None
    assert f"DB_URL=http://{two.second.address}:{db_port}" in app["Config"]["Env"]

    down = two.cli("down", target)
    assert down.returncode == 0, down.stderr
    assert two.on(two.second.api, "db") is None and two.on(two.first, "app") is None


def test_plan_shows_each_nodes_engine_and_its_host_address(two: TwoEngines, test_image: str) -> None:
    port = free_port()
    two.engines(f"[engines.b]\nhost = {_q(two.second.unix)}\n")
    two.datum("db", web(two.name("db"), test_image, port, engine="b", exports=True))
    two.datum("app", web(two.name("app"), test_image, free_port(), deps=(f"{two.name('db')}.docker",)))
    target = two.group(["app"])
    proc = two.cli("plan", target, "--json")
    assert proc.returncode == 0, proc.stderr
    nodes = {n["id"]: n for n in json.loads(proc.stdout)["nodes"]}
    assert nodes[f"{two.name('db')}.docker"]["runtime"] == "docker@b"
    assert nodes[f"{two.name('app')}.docker"]["runtime"] == "docker"
    # a unix socket's engine publishes on this host
    assert nodes[f"{two.name('db')}.docker"]["exports"] == {"DB_URL": f"http://127.0.0.1:{port}"}
    assert nodes[f"{two.name('db')}.docker"]["state"] == "absent"  # asked engine b, which has no such container
    text = two.cli("plan", target)
    assert text.returncode == 0, text.stderr
    line = next(x for x in text.stdout.splitlines() if two.name("db") in x and "docker" in x)
    assert "docker@b" in line
    status = two.cli("status", target, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)[f"{two.name('db')}.docker"]["state"] == "absent"
    moved = two.cli("plan", target, "--json", "--engine", f"{two.name('app')}=b")
    assert {n["id"]: n["runtime"] for n in json.loads(moved.stdout)["nodes"]}[f"{two.name('app')}.docker"] == "docker@b"


def test_ps_lists_the_containers_of_every_engine_and_down_orphans_reaches_them(
        two: TwoEngines, test_image: str) -> None:
    two.engines(two.tls_engine("b"))
    two.datum("db", web(two.name("db"), test_image, free_port(), engine="b"))
    two.datum("app", web(two.name("app"), test_image, free_port(), bind="127.0.0.1:", probe_host="127.0.0.1"))
    target = two.group(["db", "app"])
    proc = two.cli("up", target, "-q")
    assert proc.returncode == 0, proc.stderr
    ps = two.cli("ps", "--json")
    assert ps.returncode == 0, ps.stderr
    items = {m["node"]: m for m in json.loads(ps.stdout)["items"] if m["node"].startswith(two.prefix)}
    assert items[f"{two.name('db')}.docker"]["engine"] == "b"
    assert items[f"{two.name('app')}.docker"]["engine"] == ""
    assert all(m["health"] == "ready" for m in items.values()), items
    table = two.cli("ps")
    assert any(two.name("db") in x and "docker@b" in x for x in table.stdout.splitlines()), table.stdout
    logs = two.cli("logs", f"{two.name('db')}.docker")
    assert logs.returncode == 0 and f"serving-{two.name('db')}" in logs.stdout, (logs.stdout, logs.stderr)
    every = two.cli("logs")  # no target: every engine's containers
    assert every.returncode == 0, every.stderr
    for short in ("db", "app"):
        assert f"serving-{two.name(short)}" in every.stdout, every.stdout
    # the db's datum is gone: what runs for it on engine b is an orphan, removed there
    (two.folder / f"{two.name('db')}.docker.toml").unlink()
    (two.folder / f"{two.name('all')}.stack.toml").write_text(
        stack_datum(two.name("all"), [f"{two.name('app')}.docker"]))
    gone = two.cli("down", "--orphans", f"{two.prefix}-*")
    assert gone.returncode == 0, gone.stderr
    assert two.on(two.second.api, "db") is None
    assert two.on(two.first, "app") is not None


def test_docker_contexts_name_an_engine_and_docker_context_moves_the_default_one(
        two: TwoEngines, test_image: str, tmp_path: Path) -> None:
    docker_config = tmp_path / "docker-config"  # what `docker context create side --docker host=…` writes
    meta = docker_config / "contexts" / "meta" / hashlib.sha256(b"side").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": "side", "Metadata": {},
                                                "Endpoints": {"docker": {"Host": two.second.unix}}}))
    env = {"DOCKER_CONFIG": str(docker_config), "DOCKER_HOST": ""}
    two.datum("ctx", web(two.name("ctx"), test_image, free_port(), engine="side"))
    two.datum("plain", web(two.name("plain"), test_image, free_port(), bind="127.0.0.1:"))
    target = two.group(["ctx", "plain"])
    proc = two.cli("up", target, "-q", env=env)
    assert proc.returncode == 0, proc.stderr
    assert two.on(two.second.api, "ctx") is not None and two.on(two.first, "ctx") is None
    assert two.on(two.first, "plain") is not None and two.on(two.second.api, "plain") is None
    assert two.cli("down", target, "-q", env=env).returncode == 0
    assert two.on(two.second.api, "ctx") is None and two.on(two.first, "plain") is None
    # with DOCKER_CONTEXT=side, a datum without an engine runs there too
    proc = two.cli("up", target, "-q", env={**env, "DOCKER_CONTEXT": "side"})
    assert proc.returncode == 0, proc.stderr
    assert two.on(two.second.api, "plain") is not None and two.on(two.first, "plain") is None
    assert two.cli("down", target, "-q", env={**env, "DOCKER_CONTEXT": "side"}).returncode == 0
    assert two.on(two.second.api, "plain") is None and two.on(two.second.api, "ctx") is None


def test_engine_option_moves_a_node_for_a_run_and_down_needs_it_to_find_it_there(
        two: TwoEngines, test_image: str) -> None:
    two.engines(f"[engines.b]\nhost = {_q(two.second.unix)}\n")
    two.datum("x", web(two.name("x"), test_image, free_port()))
    x = f"{two.name('x')}.docker"
    two.targets.append(x)
    assert two.cli("up", x, "-q", "--engine", f"{two.name('x')}=b").returncode == 0
    assert two.on(two.second.api, "x") is not None and two.on(two.first, "x") is None
    assert two.cli("down", x, "-q").returncode == 0  # looks on the datum's engine: nothing there
    assert two.on(two.second.api, "x") is not None
    assert two.cli("down", x, "-q", "--engine", f"{x}=b").returncode == 0
    assert two.on(two.second.api, "x") is None


def test_a_project_namespaces_its_containers_on_a_named_engine(two: TwoEngines, test_image: str) -> None:
    project = f"{two.prefix}p"
    two.engines(f"[engines.b]\nhost = {_q(two.second.unix)}\n")
    two.datum("x", web(two.name("x"), test_image, free_port(), engine="b"))
    x = f"{two.name('x')}.docker"
    assert two.cli("up", x, "-q", "-p", project).returncode == 0
    info = two.second.api.container(f"{project}_{two.name('x')}")
    assert info is not None and info["Config"]["Labels"]["org.b00t-graph.project"] == project
    assert two.on(two.second.api, "x") is None  # the project's name, not the datum's
    ps = two.cli("ps", "--json")
    item = next(m for m in json.loads(ps.stdout)["items"] if m["node"] == x)
    assert (item["engine"], item["project"]) == ("b", project)
    assert two.cli("down", x, "-q").returncode == 0  # outside the project: not its container
    assert two.second.api.container(f"{project}_{two.name('x')}") is not None
    assert two.cli("down", x, "-q", "-p", project).returncode == 0
    assert two.second.api.container(f"{project}_{two.name('x')}") is None


def test_an_unreachable_engine_fails_only_its_nodes_and_their_dependents_naming_what_was_tried(
        two: TwoEngines, test_image: str, tmp_path: Path) -> None:
    sock = tmp_path / "no-engine.sock"
    two.engines(f"[engines.gone]\nhost = {_q(f'unix://{sock}')}\n")
    two.datum("x", web(two.name("x"), test_image, free_port(), engine="gone"))
    two.datum("y", web(two.name("y"), test_image, free_port(), deps=(f"{two.name('x')}.docker",)))
    two.datum("z", web(two.name("z"), test_image, free_port(), bind="127.0.0.1:", probe_host="127.0.0.1"))
    target = two.group(["y", "z"])
    proc = two.cli("up", target)
    assert proc.returncode == 1, proc.stderr
    assert "engine gone unavailable" in proc.stderr
    assert str(sock) in proc.stderr and "b00t-graph.toml: engines.gone" in proc.stderr
    assert "1 node(s) failed, 2 skipped" in proc.stderr  # x; y and the stack
    z = two.on(two.first, "z")
    assert z is not None and z["State"]["Running"]
    assert never_started(two.on(two.first, "y"))
    # ps still lists the other engines, with a warning naming the one that is gone
    ps = two.cli("ps", "--json")
    assert ps.returncode == 0, ps.stderr
    assert f"{two.name('z')}.docker" in {m["node"] for m in json.loads(ps.stdout)["items"]}
    assert json.loads(ps.stdout)["unavailable"]["docker@gone"].startswith("engine gone unavailable")
    # down removes what it can reach, and says which engine it could not
    down = two.cli("down", target)
    assert down.returncode == 1 and "engine gone unavailable" in down.stderr, down.stderr
    assert two.on(two.first, "z") is None and two.on(two.first, "y") is None


def test_an_engine_whose_tls_certificate_is_not_trusted_fails_naming_it(two: TwoEngines, test_image: str,
                                                                        tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "k.pem"),
                    "-out", str(other_ca), "-days", "1", "-subj", "/CN=not-the-engines-ca"],
                   check=True, capture_output=True, timeout=60)
    two.engines(two.tls_engine("b", tls_ca=str(other_ca)))
    two.datum("db", web(two.name("db"), test_image, free_port(), engine="b"))
    target = two.group(["db"])
    proc = two.cli("up", target)
    assert proc.returncode == 1, proc.stderr
    assert "engine b unavailable" in proc.stderr and two.second.tcp.replace("tcp://", "https://") in proc.stderr, (
        proc.stderr)
    assert "CERTIFICATE_VERIFY_FAILED" in proc.stderr or "certificate verify failed" in proc.stderr, proc.stderr
    assert two.on(two.second.api, "db") is None


@pytest.mark.anyio
async def test_killing_engine_b_mid_up_fails_only_its_branch(test_image: str, engine: Engine, prefix: str,
                                                            write_datums: Any, state_dir: Path,
                                                            tmp_path: Path) -> None:
    with second_engine(test_image) as doomed:
        slow_port, solo_port = free_port(), free_port()
        folder = write_datums({
            "b00t-graph.toml": f"[engines.k]\nhost = {_q(doomed.unix)}\n",
            # never ready on its own: it is probing when its engine dies
            f"{prefix}-slow.docker": web(f"{prefix}-slow", test_image, slow_port, engine="k",
                                         before="sleep 3600 && "),
            f"{prefix}-dep.docker": web(f"{prefix}-dep", test_image, free_port(),
                                        deps=(f"{prefix}-slow.docker",)),
            f"{prefix}-solo.docker": web(f"{prefix}-solo", test_image, solo_port, bind="127.0.0.1:",
                                         probe_host="127.0.0.1"),
            f"{prefix}-all.stack": stack_datum(f"{prefix}-all", [f"{prefix}-dep.docker", f"{prefix}-solo.docker"]),
        })
        graph = load_graph([f"{prefix}-all.stack"], folder, environ={"XDG_CONFIG_HOME": str(tmp_path / "cfg")})
        probing = anyio.Event()

        class Watch:
            def event(self, node: str, phase: str, detail: str = "") -> None:
                if node == f"{prefix}-slow.docker" and phase == "probing":
                    probing.set()

        try:
            async with anyio.create_task_group() as tg:
                result: list[Any] = []

                async def run() -> None:
                    result.append(await up_graph(graph, state_dir=state_dir, reporter=Watch()))

                tg.start_soon(run)
                with anyio.fail_after(120):
                    await probing.wait()
                assert doomed.api.container(f"{prefix}-slow") is not None
                doomed.kill()
            res = result[0]
            assert set(res.failures) == {f"{prefix}-slow.docker"}, res.failures
            err = res.failures[f"{prefix}-slow.docker"]
            assert isinstance(err, EngineUnavailable) and err.engine == "k", err
            assert doomed.unix.removeprefix("unix://") in str(err)
            assert set(res.skipped) == {f"{prefix}-dep.docker", f"{prefix}-all.stack"}
            assert res.timings[f"{prefix}-solo.docker"].status == "ready"
            assert fetch(f"http://127.0.0.1:{solo_port}/").strip() == f"{prefix}-solo"
            assert never_started(engine.container(f"{prefix}-dep"))
        finally:
            with anyio.CancelScope(shield=True):
                solo = load_graph([f"{prefix}-solo.docker"], folder)
                await down_graph(solo, state_dir=state_dir)


@pytest.mark.anyio
async def test_running_places_a_node_on_an_engine_by_name(second: SecondEngine, second_prefix: str, test_image: str,
                                                         engine: Engine, write_datums: Any, state_dir: Path,
                                                         tmp_path: Path) -> None:
    name, port = f"{second_prefix}-api", free_port()
    folder = write_datums({"b00t-graph.toml": f"[engines.b]\nhost = {_q(second.unix)}\n",
                           f"{name}.docker": web(name, test_image, port, exports=True)})
    environ = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    async with running(f"{name}.docker", datums=folder, environ=environ, state_dir=state_dir,
                       engine={name: "b"}) as env:
        assert env["API_URL"] == f"http://127.0.0.1:{port}"
        assert second.api.container(name) is not None and engine.container(name) is None
    assert second.api.container(name) is None
