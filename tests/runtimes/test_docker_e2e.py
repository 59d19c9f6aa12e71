"""The Docker runtime end to end: the real CLI (``python -m b00t_graph`` subprocesses) and ``ensure()``
against the real engine, one test per acceptance point of issue 4.

Every stack is a folder of datums named ``b00tgt-<random>-…`` (the ``prefix`` fixture), served by the
local busybox test image (``tests/images/build.sh``, no registry). Containers run under ``--init`` so
``httpd`` gets SIGTERM from a real PID 1 and stops at once. Teardown runs ``down --volumes`` through
the CLI on every stack a test made, then the prefix sweep removes whatever is left, pass or fail.
"""

from __future__ import annotations

import asyncio
import functools
import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import trio

from b00t_graph import ensure
from b00t_graph.runtimes.docker import HASH, MANAGED, NODE
from tests.dockerutil import Engine
from tests.procutil import cli, cli_popen, free_port, stack_datum, wait_for

pytestmark = pytest.mark.docker

IMAGE_MISSING = "b00tgt-nonexistent/image:never"


def _toml(value: Any) -> str:
    return json.dumps(value)  # JSON strings and arrays of them are valid TOML


def started_at(info: dict[str, Any]) -> float:
    """A container's State.StartedAt (RFC 3339 with nanoseconds) as a POSIX timestamp."""
    text = str(info["State"]["StartedAt"]).replace("Z", "")
    whole, _, frac = text.partition(".")
    return datetime.fromisoformat(f"{whole}.{(frac + '000000')[:6]}+00:00").timestamp()


def http_ok(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as resp:
        return int(resp.status) == 200


def answers(port: int) -> bool:
    """http_ok for polling: before the service listens, the engine's proxy accepts and then resets."""
    try:
        return http_ok(port)
    except OSError:
        return False


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr


class Stack:
    """One test's datum folder and state directory, and the CLI pointed at them."""

    def __init__(self, prefix: str, image: str, root: Path, engine: Engine) -> None:
        self.prefix, self.image, self.engine = prefix, image, engine
        self.folder = root / "datums"
        self.state_dir = root / "state"
        self.folder.mkdir(parents=True)
        self.state_dir.mkdir(parents=True)
        self.net = f"{prefix}-net"
        self.targets: list[str] = []
        self.popens: list[subprocess.Popen[str]] = []
        self.ports: dict[str, int] = {}

    # --- names ---

    def name(self, short: str) -> str:
        return f"{self.prefix}-{short}"

    def ident(self, short: str) -> str:
        return f"{self.prefix}-{short}.docker"

    @property
    def target(self) -> str:
        return f"{self.prefix}-all.stack"

    # --- datums ---

    def docker(self, short: str, *, command: Sequence[str], deps: Sequence[str] = (),
               docker_args: Sequence[str] = (), port: int | None = None, timeout_ms: int = 15_000,
               image: str | None = None, env: dict[str, str] | None = None) -> None:
        """``<prefix>-<short>.docker`` under ``--init`` on the stack's network; with a port, an HTTP probe."""
        lines = ["[b00t]", f"name = {_toml(self.name(short))}", 'type = "docker"',
                 f"image = {_toml(image or self.image)}", "stop_grace_ms = 2000",
                 f"command = {_toml(list(command))}",
                 f"docker_args = {_toml(['--init', '--network', self.net, *docker_args])}"]
        if port is not None:
            lines.append(f"ports = {_toml([f'127.0.0.1:{port}:80'])}")
        if deps:
            lines.append(f"depends_on = {_toml([self.ident(d) for d in deps])}")
        if port is not None:
            lines += ["[b00t.health_check]", f"http_url = {_toml(f'http://127.0.0.1:{port}/')}",
                      f"timeout_ms = {timeout_ms}", "interval_ms = 100"]
        if env:
            lines.append("[b00t.env]")
            lines += [f"{k} = {_toml(v)}" for k, v in env.items()]
        (self.folder / f"{self.name(short)}.docker.toml").write_text("\n".join(lines) + "\n")

    def web(self, short: str, *, before: str = "", deps: Sequence[str] = (), docker_args: Sequence[str] = (),
            timeout_ms: int = 15_000) -> None:
        """busybox httpd on a published free port, exporting ``<SHORT>_URL``; ``before`` runs first."""
        port = self.ports.setdefault(short, free_port())
        self.docker(short, command=["sh", "-c", f"{before}exec httpd -f -p 80 -h /www"], deps=deps,
                    docker_args=docker_args, port=port, timeout_ms=timeout_ms,
                    env={f"{short.upper()}_URL": f"http://127.0.0.1:{port}"})

    def group(self, members: Sequence[str]) -> None:
        self.targets.append(self.target)
        (self.folder / f"{self.target}.toml").write_text(
            stack_datum(self.name("all"), [self.ident(m) for m in members]))

    def three_levels(self, *, a_before: str = "", b_before: str = "", a_args: Sequence[str] = ()) -> None:
        """a, b independent → c needs both (and checks both answer before it serves) → the stack."""
        self.web("a", before=a_before, docker_args=a_args)
        self.web("b", before=b_before)
        fetch = "".join(f"wget -q -O /dev/null http://{self.name(x)}/ && " for x in ("a", "b"))
        self.web("c", before=fetch, deps=["a", "b"])
        self.group(["c"])

    # --- the CLI ---

    def cli(self, cmd: str, *args: str, env: dict[str, str] | None = None,
            timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
        return cli(cmd, *args, "--datums", str(self.folder), "--state-dir", str(self.state_dir),
                   state_dir=self.state_dir, env=env, timeout=timeout)

    def up(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.cli("up", self.target, *args, **kw)

    def popen_up(self) -> subprocess.Popen[str]:
        p = cli_popen("up", self.target, "--datums", str(self.folder), "--state-dir", str(self.state_dir),
                      state_dir=self.state_dir)
        self.popens.append(p)
        return p

    def plan_json(self) -> dict[str, dict[str, Any]]:
        proc = self.cli("plan", self.target, "--json")
        assert proc.returncode == 0, proc.stderr
        return {n["id"]: n for n in json.loads(proc.stdout)["nodes"]}

    # --- the engine's view ---

    def info(self, short: str) -> dict[str, Any]:
        info = self.engine.container(self.name(short))
        assert info is not None, f"no container {self.name(short)}"
        return info

    def ids(self, *shorts: str) -> dict[str, str]:
        return {s: str(self.info(s)["Id"]) for s in shorts}

    def containers(self) -> list[dict[str, Any]]:
        return list(self.engine.filtered("containers/json", {"name": [f"^/{self.prefix}-"]}))

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, networks and volumes of this test still in the engine."""
        nets = [n["Name"] for n in self.engine.filtered("networks", {"name": [self.prefix]})
                if n["Name"].startswith(self.prefix)]
        vols = [v["Name"] for v in self.engine.filtered("volumes", {"name": [self.prefix]}).get("Volumes") or []
                if v["Name"].startswith(self.prefix)]
        return {"containers": [c["Names"][0] for c in self.containers()], "networks": nets, "volumes": vols}

    def assert_running_ours(self, *shorts: str) -> None:
        for s in shorts:
            info = self.info(s)
            assert info["State"]["Running"] is True, (s, info["State"])
            labels = info["Config"]["Labels"]
            assert labels[MANAGED] == "1" and labels[NODE] == self.ident(s) and labels[HASH], labels

    def teardown(self) -> None:
        for p in self.popens:
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=120)
        for target in dict.fromkeys(self.targets):
            try:
                self.cli("down", target, "--volumes", "-q", timeout=120)
            except subprocess.TimeoutExpired:
                pass  # the prefix sweep below still removes everything


@pytest.fixture
def stack(prefix: str, test_image: str, engine: Engine, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(prefix, test_image, tmp_path, engine)
    try:
        yield s
    finally:
        s.teardown()  # then the prefix fixture sweeps whatever carries the prefix


# --- 1–4: cold, warm, idempotent, one change ----------------------------------------------------------


def test_cold_start_of_a_three_level_stack(stack: Stack, tmp_path: Path) -> None:
    # a needs 1 s and b 0.5 s before they serve; c fetches both before it serves (fails otherwise)
    stack.three_levels(a_before="sleep 1; ", b_before="sleep 0.5; ")
    timings = tmp_path / "t.json"
    t0 = time.time()
    proc = stack.up("--timings-json", str(timings))
    assert proc.returncode == 0, proc.stderr
    no_traceback(proc.stderr)
    stack.assert_running_ours("a", "b", "c")
    for s in ("a", "b", "c"):
        assert http_ok(stack.ports[s])

    nodes = json.loads(timings.read_text())["nodes"]
    a, b, c = (nodes[stack.ident(s)] for s in ("a", "b", "c"))
    assert {n: v["status"] for n, v in nodes.items()} == {
        stack.ident("a"): "ready", stack.ident("b"): "ready", stack.ident("c"): "ready", stack.target: "ready"}
    # "start" when the engine looked again under the node's lock and found the container prepare made
    assert {a["action"], b["action"], c["action"]} <= {"create", "start"}
    # the engine's own clock: c was started only once both of its dependencies had answered
    assert c["started"] >= max(a["ready"], b["ready"])
    # a and b sleep 1 s and 0.5 s from their process's start, which cannot precede the start call's
    # beginning (``readiness`` counts from the call's return, after the process began, so it may be less)
    assert a["ready"] - a["started"] >= 1.0 and b["ready"] - b["started"] >= 0.5
    # the engine's clock (State.StartedAt): a cannot answer before 1 s after its start, so c, started
    # only when a was healthy, started at least 1 s after a; b and a started together, not in turn
    info = {s: stack.info(s) for s in ("a", "b", "c")}
    start = {s: started_at(i) for s, i in info.items()}
    assert start["c"] - start["a"] >= 0.9, start  # the engine stamps StartedAt a little after the exec
    assert start["c"] - start["b"] >= 0.4, start
    assert abs(start["a"] - start["b"]) < 0.9, start
    assert min(start.values()) >= t0 - 1.0  # same host, same clock: these are this run's containers
    # c's own check of a and b passed (it would have exited otherwise) and it got its dependencies' env
    env = info["c"]["Config"]["Env"]
    assert f"A_URL=http://127.0.0.1:{stack.ports['a']}" in env
    assert f"B_URL=http://127.0.0.1:{stack.ports['b']}" in env


def test_warm_up_changes_nothing(stack: Stack, tmp_path: Path) -> None:
    stack.three_levels()
    assert (proc := stack.up("-q")).returncode == 0, proc.stderr
    first = stack.ids("a", "b", "c")
    starts = {s: stack.info(s)["State"]["StartedAt"] for s in first}

    timings = tmp_path / "t.json"
    proc = stack.up("--timings-json", str(timings))
    assert proc.returncode == 0, proc.stderr
    assert "already running" in proc.stderr
    assert stack.ids("a", "b", "c") == first
    assert {s: stack.info(s)["State"]["StartedAt"] for s in first} == starts  # not even restarted
    nodes = json.loads(timings.read_text())["nodes"]
    for s in ("a", "b", "c"):
        assert (nodes[stack.ident(s)]["action"], nodes[stack.ident(s)]["detail"]) == ("none", "already running")
    assert len(stack.containers()) == 3


def test_three_ups_in_a_row_keep_the_same_containers_and_plan_shows_them_running(stack: Stack) -> None:
    stack.three_levels()
    seen = []
    for _ in range(3):
        proc = stack.up("-q")
        assert proc.returncode == 0, proc.stderr
        seen.append(stack.ids("a", "b", "c"))
    assert seen[0] == seen[1] == seen[2]
    stack.assert_running_ours("a", "b", "c")

    plan = stack.plan_json()
    for s in ("a", "b", "c"):
        assert (plan[stack.ident(s)]["state"], plan[stack.ident(s)]["action"]) == ("running", "none")
    text = stack.cli("plan", stack.target)
    assert text.returncode == 0, text.stderr
    for s in ("a", "b", "c"):
        assert f"container {seen[0][s][:12]}" in text.stdout, text.stdout
    actions = [line for line in text.stdout.splitlines() if "already running" in line]
    assert {s for s in ("a", "b", "c") if any(stack.ident(s) in line for line in actions)} == {"a", "b", "c"}


def test_a_config_change_recreates_only_that_container(stack: Stack) -> None:
    # a's LOCAL_TAG is a container setting of a alone (not exported): c's resolved env does not change
    stack.three_levels(a_args=["-e", "LOCAL_TAG=one"])
    assert (proc := stack.up("-q")).returncode == 0, proc.stderr
    before = stack.ids("a", "b", "c")
    hashes = {s: stack.info(s)["Config"]["Labels"][HASH] for s in before}

    stack.web("a", docker_args=["-e", "LOCAL_TAG=two"])
    plan = stack.plan_json()
    assert {s: plan[stack.ident(s)]["action"] for s in before} == {"a": "recreate", "b": "none", "c": "none"}
    proc = stack.up()
    assert proc.returncode == 0, proc.stderr
    after = stack.ids("a", "b", "c")
    assert after["a"] != before["a"]
    assert (after["b"], after["c"]) == (before["b"], before["c"])
    assert stack.engine.container(before["a"]) is None  # the old one is gone, not just renamed
    assert "LOCAL_TAG=two" in stack.info("a")["Config"]["Env"]
    assert stack.info("a")["Config"]["Labels"][HASH] != hashes["a"]
    assert {s: stack.info(s)["Config"]["Labels"][HASH] for s in ("b", "c")} == {s: hashes[s] for s in ("b", "c")}
    stack.assert_running_ours("a", "b", "c")
    assert len(stack.containers()) == 3


# --- 5–7: failures -------------------------------------------------------------------------------


def test_a_container_that_exits_on_start_fails_with_its_log_tail(stack: Stack) -> None:
    stack.docker("a", command=["sh", "-c", "echo boom-xyz; exit 3"], port=free_port())
    stack.web("b")
    stack.web("c", deps=["a", "b"])
    stack.group(["c"])
    t0 = time.monotonic()
    proc = stack.up()
    assert time.monotonic() - t0 < 30
    assert proc.returncode == 1, proc.stderr
    no_traceback(proc.stderr)
    summary = proc.stderr[proc.stderr.index("error: 1 node(s) failed"):]
    assert f"✗ {stack.ident('a')}: container exited with code 3" in summary
    assert "boom-xyz" in summary
    assert f"- {stack.ident('c')}: skipped (dependency {stack.ident('a')} failed)" in summary
    assert f"- {stack.target}: skipped" in summary
    stack.assert_running_ours("b")  # the independent branch still came up
    assert http_ok(stack.ports["b"])
    assert stack.info("c")["State"]["Running"] is False  # created ahead, never started


def test_a_health_check_that_never_passes_times_out_naming_node_and_probe(stack: Stack) -> None:
    port = free_port()
    stack.docker("a", command=["sleep", "300"], port=port, timeout_ms=1500)  # published, nothing listens
    stack.group(["a"])
    t0 = time.monotonic()
    proc = stack.up()
    assert time.monotonic() - t0 < 30
    assert proc.returncode == 1, proc.stderr
    no_traceback(proc.stderr)
    failure = next(line for line in proc.stderr.splitlines() if line.startswith(f"✗ {stack.ident('a')}:"))
    assert f"readiness probe http http://127.0.0.1:{port}/" in failure, failure
    assert "did not pass within 1.5s" in failure, failure
    assert stack.engine.container(stack.name("a")) is None  # a node this run started that failed is removed
    kept = stack.up("--keep-failed")
    assert kept.returncode == 1, kept.stderr
    assert stack.info("a")["State"]["Running"] is True  # --keep-failed leaves it, for inspection


def test_a_foreign_container_holding_a_name_is_refused_and_untouched(stack: Stack) -> None:
    stack.three_levels()
    status, created = stack.engine.request("POST", f"/containers/create?name={stack.name('a')}",
                                           {"Image": stack.image, "Cmd": ["sleep", "300"]})
    assert status == 201, created
    fid = created["Id"]
    assert stack.engine.request("POST", f"/containers/{fid}/start")[0] == 204
    before = stack.info("a")

    proc = stack.up()
    assert proc.returncode == 1, proc.stderr
    no_traceback(proc.stderr)
    failure = next(line for line in proc.stderr.splitlines() if line.startswith(f"✗ {stack.ident('a')}:"))
    assert "not created by b00t-graph" in failure and stack.name("a") in failure, failure
    assert f"- {stack.ident('c')}: skipped" in proc.stderr
    stack.assert_running_ours("b")
    # down leaves it alone too
    assert (down := stack.cli("down", stack.target, "--volumes")).returncode == 0, down.stderr

    after = stack.engine.container(fid)
    assert after is not None and after["Id"] == fid
    assert after["State"]["Running"] is True
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"]
    assert not (after["Config"]["Labels"] or {}).get(MANAGED)
    assert [c["Names"][0] for c in stack.containers()] == [f"/{stack.name('a')}"]


# --- 8–9: concurrency and Ctrl-C -----------------------------------------------------------------------


def test_two_ups_at_once_make_one_container_per_datum(stack: Stack) -> None:
    stack.three_levels(a_before="sleep 0.3; ")
    runs = [stack.popen_up(), stack.popen_up()]
    for run in runs:
        _, stderr = run.communicate(timeout=90)
        assert run.returncode == 0, stderr
        no_traceback(stderr)
    names = sorted(c["Names"][0] for c in stack.containers())
    assert names == [f"/{stack.name(s)}" for s in ("a", "b", "c")]
    assert stack.leftovers()["networks"] == [stack.net]  # one network too, though both made it at once
    stack.assert_running_ours("a", "b", "c")
    assert (proc := stack.up()).returncode == 0, proc.stderr
    assert proc.stderr.count("already running") >= 3, proc.stderr


def test_sigint_during_up_then_down_leaves_nothing_behind(stack: Stack) -> None:
    vol = f"{stack.prefix}-data"
    stack.web("quick")
    stack.web("slow", before="touch /data/x; sleep 60; ", docker_args=["-v", f"{vol}:/data"], timeout_ms=120_000)
    stack.web("after", deps=["slow"])
    stack.group(["quick", "after"])
    up = stack.popen_up()

    def probing() -> bool:
        slow = stack.engine.container(stack.name("slow"))
        quick = stack.engine.container(stack.name("quick"))
        return bool(slow and slow["State"]["Running"] and quick and quick["State"]["Running"])

    wait_for(probing, timeout=60, what="slow and quick to run")
    wait_for(lambda: answers(stack.ports["quick"]), timeout=60, what="quick to serve")
    time.sleep(0.5)  # slow is being probed now, and will not answer for a minute
    assert up.poll() is None, up.communicate()
    up.send_signal(signal.SIGINT)
    _, stderr = up.communicate(timeout=120)
    assert up.returncode == 130, stderr
    assert "interrupted" in stderr
    no_traceback(stderr)
    left = stack.leftovers()
    assert f"/{stack.name('slow')}" in left["containers"] and left["networks"] == [stack.net]
    assert left["volumes"] == [vol]
    after = stack.engine.container(stack.name("after"))
    assert after is None or after["State"]["Running"] is False  # its dependency never got ready

    t0 = time.monotonic()
    proc = stack.cli("down", stack.target, "--volumes")
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - t0 < 30
    assert stack.leftovers() == {"containers": [], "networks": [], "volumes": []}


# --- 10–12: the engine, the API, the image --------------------------------------------------------


def test_docker_host_pointing_nowhere_is_a_clear_error_and_plan_still_plans(stack: Stack) -> None:
    stack.three_levels()
    nowhere = {"DOCKER_HOST": "unix:///nonexistent"}
    t0 = time.monotonic()
    proc = stack.up(env=nowhere)
    assert time.monotonic() - t0 < 20
    assert proc.returncode == 1, proc.stderr
    no_traceback(proc.stderr)
    assert "error: docker runtime unavailable" in proc.stderr
    assert "tried DOCKER_HOST=unix:///nonexistent" in proc.stderr
    assert stack.containers() == []

    plan = stack.cli("plan", stack.target, env=nowhere)
    assert plan.returncode == 0, plan.stderr
    no_traceback(plan.stderr)
    text = " ".join(plan.stdout.split())  # undo rich's wrapping
    assert "now: unknown (docker runtime unavailable" in text, plan.stdout
    assert "tried DOCKER_HOST=unix:///nonexistent" in text
    as_json = stack.cli("plan", stack.target, "--json", env=nowhere)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert "DOCKER_HOST=unix:///nonexistent" in data["runtime_unavailable"]["docker"]
    assert {n["id"]: n["state"] for n in data["nodes"] if n["type"] == "docker"} == {
        stack.ident(s): "unknown" for s in ("a", "b", "c")}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_ensure_returns_the_env_and_the_containers_run(stack: Stack, backend: str) -> None:
    stack.three_levels()
    call = functools.partial(ensure, stack.target, datums=stack.folder, state_dir=stack.state_dir)
    env = asyncio.run(call()) if backend == "asyncio" else trio.run(call)
    assert {k: env[k] for k in ("A_URL", "B_URL", "C_URL")} == {
        f"{s.upper()}_URL": f"http://127.0.0.1:{stack.ports[s]}" for s in ("a", "b", "c")}
    stack.assert_running_ours("a", "b", "c")
    for s in ("a", "b", "c"):
        assert http_ok(stack.ports[s])
    # and again, on the same backend: nothing changes, same env
    ids = stack.ids("a", "b", "c")
    assert (asyncio.run(call()) if backend == "asyncio" else trio.run(call)) == env
    assert stack.ids("a", "b", "c") == ids


def test_a_missing_image_without_a_registry_fails_within_seconds(stack: Stack) -> None:
    stack.docker("ghost", command=["true"], image=IMAGE_MISSING)
    stack.group(["ghost"])
    t0 = time.monotonic()
    proc = stack.up()
    elapsed = time.monotonic() - t0
    assert proc.returncode == 1, proc.stderr
    assert elapsed < 30, elapsed
    no_traceback(proc.stderr)
    failure = next(line for line in proc.stderr.splitlines() if line.startswith(f"✗ {stack.ident('ghost')}:"))
    assert f"image {IMAGE_MISSING!r} for {stack.name('ghost')!r}" in failure, failure
    assert "cannot pull" in failure, failure
    assert stack.containers() == []
