"""b00t-graph against docker-compose on the same engine, the same image and the same readiness definition.

Each scenario is one spec (services, their dependencies, their start delays)
generated into both forms: a folder of ``docker`` datums and a compose file
(format 2.4, ``depends_on: condition: service_healthy``, a ``healthcheck`` on
every service). Every container, from either tool, runs the locally built
``b00t-graph-test/busybox:1`` with the same command, publishes the same port
and sits on a user-defined bridge network of its tool's own::

    sh -c "trap 'exit 0' TERM; sleep D & wait; httpd -f -p 80 -h /www & wait"

(the ``trap``/``wait`` is there so the shell, as PID 1, stops at once on
``docker stop`` for both tools, instead of each paying a 10 s kill timeout).

Ready means "``GET /`` on the service's httpd answers 200" for both tools,
each checking it the way its users would:

* compose: the container's HEALTHCHECK ``wget -q -O /dev/null http://127.0.0.1/``
  (interval 1 s, timeout 1 s, retries 60 — a careful user's settings; Engine
  20.10 has no ``start_interval``, which needs Engine 25);
* b00t-graph: its own HTTP probe of the published port (``http_url``), or with
  ``--b00t-probe exec`` the very same ``wget`` run inside the container.

Measures, per scenario, the tools alternating (A B, then B A, …):
cold ``up`` until every service is ready, warm ``up`` when all already run,
``down``; and, for b00t-graph, in-process ``ensure()`` on asyncio and trio
when all run. compose is "done" when ``docker-compose up -d`` has returned
*and* every container is healthy, taken from the engine's event stream (no
polling error). Every container, network and volume made is removed at the
end, also on Ctrl-C or an error (a sweep of the ``b00tbench-`` prefix).

    python benchmarks/bench_compose.py [--quick] [--runs N] [--scenarios small,deep]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchlib as bl
import dockerapi as api

IMAGE = "b00t-graph-test/busybox:1"
PREFIX = "b00tbench-"
BUILD_SH = bl.HERE.parent / "tests" / "images" / "build.sh"
WGET = ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
RUN_TIMEOUT = 180.0


# --- scenarios -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    name: str
    delay: float
    deps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    services: tuple[Service, ...]  # topological order

    @property
    def dag(self) -> bl.Dag:
        return {s.name: s.deps for s in self.services}

    @property
    def delays(self) -> dict[str, float]:
        return {s.name: s.delay for s in self.services}

    def critical_path(self, per_hop: float = 0.0) -> tuple[float, list[str]]:
        """The heaviest chain of delays (+ ``per_hop`` per service): nothing can be ready sooner."""
        return bl.longest_path(self.dag, {k: v + per_hop for k, v in self.delays.items()})


def _layered(seed: int = 5) -> Scenario:
    rnd = random.Random(seed)
    sizes = (6, 10, 8, 6)
    levels: list[list[str]] = []
    services = []
    for li, size in enumerate(sizes):
        level = []
        for j in range(size):
            name = f"l{li}-{j:02d}"
            # uneven: most services are quick, about one in four is slow
            delay = rnd.uniform(1.2, 2.4) if rnd.random() < 0.25 else rnd.uniform(0.1, 0.6)
            deps: list[str] = []
            if li:
                deps = rnd.sample(levels[li - 1], rnd.randint(1, 3))  # mixed fan-in
                if li > 1 and rnd.random() < 0.3:
                    deps.append(rnd.choice(levels[li - 2]))
            services.append(Service(name, round(delay, 2), tuple(dict.fromkeys(deps))))
            level.append(name)
        levels.append(level)
    return Scenario("layered", "30 services in 4 layers (6/10/8/6), 1–4 dependencies each, uneven delays",
                    tuple(services))


SCENARIOS: dict[str, Scenario] = {
    "small": Scenario("small", "2 services + 1 dependent (the seed's qdrant, ollama → grok-guru)", (
        Service("store", 1.0), Service("models", 1.5), Service("api", 0.5, ("store", "models")))),
    "wide": Scenario("wide", "20 independent services", tuple(
        Service(f"w{i:02d}", round(0.2 + (i * 7 % 20) * 0.1, 2)) for i in range(20))),
    "deep": Scenario("deep", "a chain of 8", tuple(
        Service(f"d{i}", d, (f"d{i - 1}",) if i else ())
        for i, d in enumerate((0.3, 0.5, 0.2, 0.4, 0.3, 0.2, 0.5, 0.3)))),
    "layered": _layered(),
}


# --- generation ----------------------------------------------------------------------------------


def command(delay: float) -> list[str]:
    return ["sh", "-c", f"trap 'exit 0' TERM; sleep {delay:g} & wait; httpd -f -p 80 -h /www & wait"]


def interval_ms(interval: str) -> int:
    """``"1s"`` → 1000, ``"250ms"`` → 250 (the two forms compose files use here)."""
    iv = interval.strip()
    if iv.endswith("ms"):
        return int(float(iv[:-2]))
    if iv.endswith("s"):
        return int(float(iv[:-1]) * 1000)
    raise ValueError(f"interval {interval!r}: use e.g. 1s or 250ms")


def interval_str(ms: int) -> str:
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


@dataclass
class Generated:
    scenario: Scenario
    root: Path
    datums: Path
    target: str
    b00t_prefix: str
    ports: dict[str, int]
    compose_files: dict[int, Path] = field(default_factory=dict)  # healthcheck interval (ms) → compose file

    def b00t_name(self, svc: str) -> str:
        return f"{self.b00t_prefix}{svc}"

    def project(self, ms: int) -> str:
        """The compose project of one healthcheck interval: its own name, so runs can never mix."""
        return f"{PREFIX}c{ms}-{self.scenario.name}"

    def compose_file(self, ms: int) -> Path:
        """The scenario's compose file with this healthcheck interval (written on first use)."""
        if ms not in self.compose_files:
            path = self.root / f"{self.scenario.name}.{ms}ms.compose.yml"
            path.write_text(compose_text(self.scenario, self.ports, interval_str(ms)))
            self.compose_files[ms] = path
        return self.compose_files[ms]


def _toml_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(x) for x in items) + "]"


def generate(sc: Scenario, root: Path, port_base: int, probe: str, b00t_interval_ms: int = 1000) -> Generated:
    """Write the datum folder of one scenario under ``root``; its compose files come with ``compose_file()``."""
    b00t_prefix = f"{PREFIX}b-{sc.name}-"
    network = f"{PREFIX}b-{sc.name}"
    gen = Generated(sc, root, root / f"{sc.name}-datums", f"{PREFIX}b-{sc.name}.stack", b00t_prefix,
                    {s.name: port_base + i for i, s in enumerate(sc.services)})
    gen.datums.mkdir(parents=True, exist_ok=True)
    for s in sc.services:
        port = gen.ports[s.name]
        probe_line = (f'http_url = "http://127.0.0.1:{port}/"' if probe == "http"
                      else f"exec = {_toml_list(WGET)}")
        text = "\n".join([
            "# generated by benchmarks/bench_compose.py",
            "[b00t]",
            f'name = "{gen.b00t_name(s.name)}"',
            'type = "docker"',
            f'image = "{IMAGE}"',
            f"command = {_toml_list(command(s.delay))}",
            f'ports = ["127.0.0.1:{port}:80"]',
            f'network = "{network}"',
            f"depends_on = {_toml_list([gen.b00t_name(d) + '.docker' for d in s.deps])}",
            "",
            "[b00t.health_check]",
            probe_line,
            f"interval_ms = {b00t_interval_ms}",
            "probe_timeout_ms = 1000",
            "timeout_ms = 60000",
            "",
        ])
        (gen.datums / f"{gen.b00t_name(s.name)}.docker.toml").write_text(text)
    members = _toml_list([gen.b00t_name(s.name) + ".docker" for s in sc.services])
    (gen.datums / f"{gen.target}.toml").write_text(
        f'[b00t]\nname = "{PREFIX}b-{sc.name}"\ntype = "stack"\nmembers = {members}\n')
    return gen


def compose_text(sc: Scenario, ports: dict[str, int], interval: str) -> str:
    """The scenario as a compose file (format 2.4) whose healthchecks run every ``interval``."""
    lines = ["# generated by benchmarks/bench_compose.py", 'version: "2.4"', "services:"]
    for s in sc.services:
        lines += [
            f"  {s.name}:",
            f"    image: {IMAGE}",
            f"    command: {json.dumps(command(s.delay))}",
            f'    ports: ["127.0.0.1:{ports[s.name]}:80"]',
            "    healthcheck:",
            f"      test: {json.dumps(['CMD', *WGET])}",
            f"      interval: {interval}",
            "      timeout: 1s",
            "      retries: 60",
        ]
        if s.deps:
            lines.append("    depends_on:")
            for d in s.deps:
                lines += [f"      {d}:", "        condition: service_healthy"]
    return "\n".join(lines) + "\n"


# --- running the tools ---------------------------------------------------------------------------


class RunFailed(RuntimeError):
    pass


def _run(argv: list[str], env: dict[str, str] | None = None, timeout: float = RUN_TIMEOUT
         ) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    t = time.perf_counter()
    try:
        proc = subprocess.run(argv, capture_output=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise RunFailed(f"{' '.join(argv[:6])}… timed out after {timeout:g}s") from exc
    return time.perf_counter() - t, proc


def _tail(b: bytes, n: int = 15) -> str:
    return "\n".join(b.decode(errors="replace").splitlines()[-n:])


def _running(prefix: str) -> dict[str, str]:
    return {name: c["State"] for c in api.containers({"name": [prefix]})
            for name in [(c.get("Names") or ["?"])[0].lstrip("/")] if name.startswith(prefix)}


def _check_serving(gen: Generated) -> None:
    for svc, port in gen.ports.items():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                if r.status != 200:
                    raise RunFailed(f"{svc}: HTTP {r.status} after up")
        except (OSError, urllib.error.URLError) as exc:
            raise RunFailed(f"{svc} (port {port}) does not answer after up: {exc}") from exc


@dataclass(frozen=True)
class ColdUp:
    """One cold ``up``; every field is seconds after the command was started."""

    done: float  # the command has exited and every container is ready per the event stream: what is compared
    exit: float  # the command exited
    last_ready: float  # the last container turned healthy (or, without a HEALTHCHECK, started) per the stream
    last_start: float  # the last container started per the stream


def timed_cold_up(tool: str, argv: list[str], names: Sequence[str], healthcheck: bool,
                  env: dict[str, str] | None = None, timeout: float = RUN_TIMEOUT) -> ColdUp:
    """Run a cold ``up`` command and time it with the one event-stream watcher both tools share.

    *Done* is the later of the command's exit and the moment the last of
    ``names`` was ready per the engine's event stream: ``health_status:
    healthy`` for containers with a HEALTHCHECK (compose's), the ``start``
    event for containers without one (b00t-graph's: it probes from outside,
    which the engine never sees, so for it the stream only confirms that
    every container was started before its command exited, and *done* is the
    exit). Afterwards, untimed, every container is checked to have (or not) a
    HEALTHCHECK as ``healthcheck`` says, so the rule that was applied is the
    rule that fits.
    """
    with api.EventWatch(PREFIX) as watch:
        w0 = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.communicate()
            raise RunFailed(f"{tool} up timed out after {timeout:g}s") from exc
        t_exit = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RunFailed(f"{tool} up exited {proc.returncode}:\n{_tail(err)}")
        if not watch.wait_ready(names, healthcheck, t0 + timeout):
            missing = [n for n in names if watch.ready_at(n, healthcheck) is None]
            raise RunFailed(f"{tool}: not {'healthy' if healthcheck else 'started'} within {timeout:g}s "
                            f"per the event stream: {missing}")
        ready = [(watch.ready_at(n, healthcheck) or w0) - w0 for n in names]
        starts = [watch.started_at[n] - w0 for n in names if n in watch.started_at]
    wrong = [n for n, hc in api.healthchecks(names).items() if hc != healthcheck]
    if wrong:
        raise RunFailed(f"{tool}: expected {'a' if healthcheck else 'no'} HEALTHCHECK, not so on {wrong}")
    last = max(ready)
    return ColdUp(done=max(t_exit, last), exit=t_exit, last_ready=last,
                  last_start=max(starts) if starts else float("nan"))


class B00t:
    key = "b00t"
    healthcheck = False  # b00t-graph probes from outside; its containers carry no HEALTHCHECK

    def __init__(self, gen: Generated, state_dir: Path, network: str = "own") -> None:
        self.gen = gen
        self.state_dir = state_dir
        self.network_mode = network
        self.network = f"{PREFIX}b-{gen.scenario.name}"
        self.sweep_prefix = self.network
        self.names = [gen.b00t_name(s.name) for s in gen.scenario.services]
        self.env = {**os.environ, "B00T_GRAPH_STATE_DIR": str(state_dir)}
        self.env.pop("B00T_DEBUG", None)
        self.last_timings: dict[str, Any] | None = None

    def before(self) -> None:
        """Untimed: with ``--b00t-network precreated`` the bench makes the network b00t-graph's nodes join."""
        if self.network_mode == "precreated" and not api.names_with_prefix("networks", self.network):
            api.call("POST", "/networks/create", body={"Name": self.network, "CheckDuplicate": True})

    def after(self) -> None:
        if self.network_mode == "precreated":
            for nid, name in api.names_with_prefix("networks", self.network):
                if name == self.network:
                    api.call("DELETE", f"/networks/{nid}")

    def _argv(self, verb: str, *extra: str) -> list[str]:
        return [sys.executable, "-m", "b00t_graph", verb, "--datums", str(self.gen.datums),
                "--state-dir", str(self.state_dir), "-q", *extra, self.gen.target]

    def _check_up(self) -> None:
        states = _running(self.gen.b00t_prefix)
        if len(states) != len(self.gen.ports) or set(states.values()) != {"running"}:
            raise RunFailed(f"after b00t-graph up: {states}")
        _check_serving(self.gen)

    def cold_up(self) -> ColdUp:
        tj = self.state_dir / "timings.json"
        tj.unlink(missing_ok=True)
        res = timed_cold_up("b00t-graph", self._argv("up", "--timings-json", str(tj)), self.names,
                            self.healthcheck, self.env)
        self.last_timings = json.loads(tj.read_text()) if tj.exists() else None
        if self.last_timings is not None:
            self.last_timings["cli_wall"] = res.exit
        self._check_up()
        return res

    def warm_up(self) -> float:
        wall, proc = _run(self._argv("up"), self.env)
        if proc.returncode != 0:
            raise RunFailed(f"b00t-graph up exited {proc.returncode}:\n{_tail(proc.stderr)}")
        self._check_up()
        return wall

    def down(self) -> float:
        wall, proc = _run(self._argv("down"), self.env)
        if proc.returncode != 0:
            raise RunFailed(f"b00t-graph down exited {proc.returncode}:\n{_tail(proc.stderr)}")
        return wall

    def leftovers(self) -> list[str]:
        return ([n for _, n in api.names_with_prefix("containers", self.gen.b00t_prefix)]
                + [n for _, n in api.names_with_prefix("networks", f"{PREFIX}b-{self.gen.scenario.name}")])

    def ensure(self, backend: str, times: int) -> list[float]:
        """In-process ``ensure()`` latency, ``times`` calls on one event loop, everything already running."""
        import anyio

        from b00t_graph import ensure

        async def go() -> list[float]:
            out = []
            for _ in range(times):
                t = time.perf_counter()
                await ensure(self.gen.target, datums=self.gen.datums, state_dir=self.state_dir)
                out.append(time.perf_counter() - t)
            return out

        result: list[float] = anyio.run(go, backend=backend)
        return result


class Compose:
    healthcheck = True  # every service has the wget HEALTHCHECK

    def __init__(self, gen: Generated, interval_ms: int, key: str = "compose") -> None:
        self.gen = gen
        self.key = key
        self.interval_ms = interval_ms
        self.project = gen.project(interval_ms)
        self.sweep_prefix = self.project
        self.base = ["docker-compose", "--no-ansi", "-p", self.project, "-f", str(gen.compose_file(interval_ms))]
        self.names = [f"{self.project}_{s.name}_1" for s in gen.scenario.services]

    def before(self) -> None:
        return None

    def after(self) -> None:
        return None

    def cold_up(self, timeout: float = RUN_TIMEOUT) -> ColdUp:
        res = timed_cold_up("docker-compose", [*self.base, "up", "-d"], self.names, self.healthcheck,
                            timeout=timeout)
        _check_serving(self.gen)
        return res

    def warm_up(self, timeout: float = RUN_TIMEOUT) -> float:
        wall, proc = _run([*self.base, "up", "-d"], timeout=timeout)
        if proc.returncode != 0:
            raise RunFailed(f"docker-compose up -d exited {proc.returncode}:\n{_tail(proc.stderr)}")
        return wall

    def down(self) -> float:
        wall, proc = _run([*self.base, "down"])
        if proc.returncode != 0:
            raise RunFailed(f"docker-compose down exited {proc.returncode}:\n{_tail(proc.stderr)}")
        return wall

    def leftovers(self) -> list[str]:
        return ([n for _, n in api.names_with_prefix("containers", self.project)]
                + [n for _, n in api.names_with_prefix("networks", self.project)])


# --- the engine's CPU -----------------------------------------------------------------------------


def _engine_pids() -> list[int]:
    """dockerd and containerd: the daemons both tools make work (per-container shims come and go)."""
    pids = []
    for name in ("dockerd", "containerd"):
        try:
            out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout.split()
        except OSError:
            return []
        pids += [int(p) for p in out]
    return pids


def engine_cpu(pids: Sequence[int]) -> float:
    """CPU seconds (user + system) dockerd and containerd have used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


# --- fixed costs ---------------------------------------------------------------------------------


def engine_start_cost(port: int, times: int, log: Callable[[str], None]) -> dict[str, Any]:
    """What the Docker engine itself takes to start one pre-created container like ours, and until it serves.

    b00t-graph creates containers while their dependencies come up, so only the
    start call sits on the critical path; ``start→serving`` adds the time until
    httpd answers (a zero-delay container) as seen from the host.
    """
    net = f"{PREFIX}startcost"
    nets = []
    for _ in range(3):
        t = time.perf_counter()
        api.call("POST", "/networks/create", body={"Name": net, "CheckDuplicate": True})
        t1 = time.perf_counter()
        api.call("DELETE", f"/networks/{net}")
        nets.append((t1 - t, time.perf_counter() - t1))
    api.call("POST", "/networks/create", body={"Name": net, "CheckDuplicate": True})
    starts, serving, creates = [], [], []
    try:
        for i in range(times):
            body = {"Image": IMAGE, "Cmd": command(0), "ExposedPorts": {"80/tcp": {}},
                    "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]},
                                   "NetworkMode": net}}
            t = time.perf_counter()
            cid = api.call("POST", "/containers/create", {"name": f"{PREFIX}startcost-{i}"}, body=body)["Id"]
            creates.append(time.perf_counter() - t)
            try:
                t = time.perf_counter()
                api.call("POST", f"/containers/{cid}/start")
                starts.append(time.perf_counter() - t)
                while time.perf_counter() - t < 10:
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                            if r.status == 200:
                                break
                    except (OSError, urllib.error.URLError):
                        time.sleep(0.002)
                serving.append(time.perf_counter() - t)
            finally:
                api.call("DELETE", f"/containers/{cid}", {"force": True})
    except BaseException:
        api.call("DELETE", f"/networks/{net}")
        raise
    # Throughput: the wide scenario's count of containers started at once (the engine serialises much of it).
    burst = len(SCENARIOS["wide"].services)
    ids = []
    try:
        for i in range(burst):
            body = {"Image": IMAGE, "Cmd": command(0), "ExposedPorts": {"80/tcp": {}},
                    "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port + 1 + i)}]},
                                   "NetworkMode": net}}
            ids.append(api.call("POST", "/containers/create", {"name": f"{PREFIX}startcost-b{i}"}, body=body)["Id"])
        t = time.perf_counter()
        with ThreadPoolExecutor(burst) as pool:
            list(pool.map(lambda cid: api.call("POST", f"/containers/{cid}/start"), ids))
        burst_s = time.perf_counter() - t
    finally:
        for cid in ids:
            api.call("DELETE", f"/containers/{cid}", {"force": True})
        api.call("DELETE", f"/networks/{net}")
    res = {"create": bl.summary(creates), "start": bl.summary(starts), "start_to_serving": bl.summary(serving),
           "burst_n": burst, "burst_start_s": burst_s,
           "network_create": bl.summary([a for a, _ in nets]), "network_delete": bl.summary([b for _, b in nets])}
    log(f"engine: create {res['create']['median'] * 1e3:.0f} ms, start {res['start']['median'] * 1e3:.0f} ms, "
        f"start→serving {res['start_to_serving']['median'] * 1e3:.0f} ms (median of {times}); network create "
        f"{res['network_create']['median'] * 1e3:.0f} ms, delete {res['network_delete']['median'] * 1e3:.0f} ms; "
        f"{burst} starts at once {burst_s:.2f} s")
    return res


def process_costs(times: int = 3) -> dict[str, Any]:
    """Each tool's fixed cost of starting its process (interpreter and imports), for context."""
    b, c = [], []
    for _ in range(times):
        b.append(_run([sys.executable, "-m", "b00t_graph", "--version"])[0])
        c.append(_run(["docker-compose", "version", "--short"])[0])
    return {"b00t_version": bl.summary(b), "compose_version": bl.summary(c)}


# --- compose's best practical healthcheck interval ---------------------------------------------------------

SWEEP_INTERVALS_MS = (1000, 500, 250, 100, 50)
SWEEP_SCENARIO = "layered"
SWEEP_WINDOW_S = 5.0
#: when a smaller interval counts as overloading this machine (see ``judge_interval``)
SWEEP_LIMITS = {"check_x": 2.0, "warm_x": 2.0}


def _shim_pids(ids: set[str]) -> list[int]:
    """The containerd shims of these containers: they reap every health check's ``runc exec``."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and b"containerd-shim" in argv[0]:
            for i, a in enumerate(argv[:-1]):
                if a == b"-id" and argv[i + 1].decode(errors="replace") in ids:
                    out.append(int(d.name))
    return out


def _proc_cpu(pids: Sequence[int], children: bool) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if children else 0)
    return total / tick


def _cgroup_cpu(ids: set[str]) -> float:
    """CPU seconds the containers' own processes used (the exec'd health checks run in the container's cgroup)."""
    total = 0
    for cid in ids:
        for path in (f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage", f"/sys/fs/cgroup/docker/{cid}/cpu.stat",
                     f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat"):
            try:
                text = Path(path).read_text()
            except OSError:
                continue
            if path.endswith("cpuacct.usage"):
                total += int(text.strip()) // 1000
            else:
                total += int(dict(line.split() for line in text.splitlines()).get("usage_usec", 0))
            break
    return total / 1e6


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine so far."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)


def _ts(text: str) -> float:
    """An engine timestamp (RFC 3339 with nanoseconds) as epoch seconds."""
    import datetime as dt
    import re

    m = re.match(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text)
    if not m:
        raise ValueError(text)
    base = dt.datetime.fromisoformat(m[1] + ("+00:00" if m[3] == "Z" else m[3]))
    return base.timestamp() + (float("0." + m[2]) if m[2] else 0.0)


def _health_log_stats(names: Sequence[str]) -> dict[str, Any]:
    """From each container's last health checks (the engine keeps 5): how long one took, how far apart they ran."""
    durations, gaps, failed = [], [], 0
    for name in names:
        log = ((api.call("GET", f"/containers/{name}/json").get("State") or {}).get("Health") or {}).get("Log") or []
        starts = []
        for e in log:
            s0, s1 = _ts(e["Start"]), _ts(e["End"])
            durations.append(s1 - s0)
            starts.append(s0)
            failed += e.get("ExitCode") != 0
        gaps += [b - a for a, b in itertools.pairwise(starts)]
    return {"check_s": bl.summary(durations), "gap_s": bl.summary(gaps), "failed_checks": failed}


def _probe_engine(net: str, port: int, times: int) -> dict[str, Any]:
    """How responsive the engine is: a container list call, and creating + starting one container like ours."""
    lists = []
    for _ in range(10):
        t = time.perf_counter()
        api.containers({"name": [PREFIX]})
        lists.append(time.perf_counter() - t)
    starts = []
    for i in range(times):
        body = {"Image": IMAGE, "Cmd": command(0), "ExposedPorts": {"80/tcp": {}},
                "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]},
                               "NetworkMode": net}}
        cid = api.call("POST", "/containers/create", {"name": f"{PREFIX}sweep-probe-{i}"}, body=body)["Id"]
        try:
            t = time.perf_counter()
            api.call("POST", f"/containers/{cid}/start")
            starts.append(time.perf_counter() - t)
        finally:
            api.call("DELETE", f"/containers/{cid}", {"force": True})
    return {"list_s": bl.summary(lists), "start_s": bl.summary(starts)}


def judge_interval(row: dict[str, Any], first: dict[str, Any] | None, prev: dict[str, Any] | None) -> list[str]:
    """Why an interval overloads this machine (empty: it does not).

    Other people's work shares the machine, so every test is relative to what
    the same sweep measured at a larger interval, never to an absolute number:
    (1) the cold ``up`` is not slower than at the next larger interval (a
    smaller interval that stops paying off is not worth its cost); (2) with
    the stack up and idle, one health check takes no more than ``check_x`` ×
    what it took at the largest interval (the engine keeps up with the execs);
    (3) the warm ``up`` takes no more than ``warm_x`` × its time at the largest
    interval (compose's own calls still get answers). The health checks' CPU
    and the engine's start latency are measured and shown, not judged: they
    swing with the other users' load more than with ours.
    """
    lim = SWEEP_LIMITS
    why = []
    if row.get("error"):
        return [row["error"]]
    if prev and row["cold"] > prev["cold"]:
        why.append(f"cold up {row['cold']:.2f} s, slower than {prev['cold']:.2f} s at {prev['interval']}")
    if first:
        chk, chk0 = row["checks"]["check_s"]["median"], first["checks"]["check_s"]["median"]
        if chk > lim["check_x"] * chk0:
            why.append(f"a check takes {chk * 1e3:.0f} ms (> {lim['check_x']:g} × {chk0 * 1e3:.0f} ms at "
                       f"{first['interval']})")
        if row["warm"] > lim["warm_x"] * first["warm"]:
            why.append(f"warm up {row['warm']:.2f} s (> {lim['warm_x']:g} × {first['warm']:.2f} s at "
                       f"{first['interval']})")
    return why


def interval_sweep(gen: Generated, intervals: Sequence[int], pids: Sequence[int], port: int,
                   log: Callable[[str], None]) -> dict[str, Any]:
    """Compose on one scenario at shrinking healthcheck intervals; the smallest that does not overload wins.

    Per interval: the engine's responsiveness and CPU rate with nothing of
    ours running (``SWEEP_WINDOW_S``); one cold ``up`` (timed like the main
    runs); the same window with the stack idle, to measure the health checks'
    steady cost and the engine's responsiveness under them; one warm ``up``
    and ``down``. Stops at the first interval that overloads (see
    :func:`judge_interval`): the one before it is chosen.
    """
    net = f"{PREFIX}sweep"
    api.call("POST", "/networks/create", body={"Name": net, "CheckDuplicate": True})
    rows: list[dict[str, Any]] = []
    chosen = intervals[0]
    try:
        for ms in intervals:
            tool = Compose(gen, ms, key=f"sweep{ms}")
            row: dict[str, Any] = {"interval_ms": ms, "interval": interval_str(ms)}
            try:
                row["before"] = _probe_engine(net, port, 3)
                e0, (b0, t0), w0 = engine_cpu(pids), _machine_busy(), time.perf_counter()
                time.sleep(SWEEP_WINDOW_S)
                rest_rate = (engine_cpu(pids) - e0) / (time.perf_counter() - w0)
                (b1, t1) = _machine_busy()
                row["machine_busy_before"] = (b1 - b0) / max(1, t1 - t0)
                row["engine_cores_before"] = rest_rate
                cpu0 = engine_cpu(pids)
                cold = tool.cold_up(timeout=90.0)
                row["cold"], row["cold_exit"] = cold.done, cold.exit
                row["cold_engine_cpu"] = engine_cpu(pids) - cpu0
                ids = {c["Id"] for c in api.containers({"label": [f"com.docker.compose.project={tool.project}"]})}
                time.sleep(1.0)
                shims = _shim_pids(ids)
                o0, e0 = _proc_cpu(shims, True) + _cgroup_cpu(ids), engine_cpu(pids)
                (b0, t0), w0 = _machine_busy(), time.perf_counter()
                time.sleep(SWEEP_WINDOW_S)
                window = time.perf_counter() - w0
                ours = (_proc_cpu(shims, True) + _cgroup_cpu(ids) - o0) / window
                engine = (engine_cpu(pids) - e0) / window
                b1, t1 = _machine_busy()
                row["ours_cores"] = ours
                row["engine_cores"] = engine
                row["idle_cpu_cores"] = ours + max(0.0, engine - rest_rate)
                row["machine_busy"] = (b1 - b0) / max(1, t1 - t0)
                row["checks"] = _health_log_stats(tool.names)
                row["engine"] = _probe_engine(net, port, 3)
                row["start_x"] = row["engine"]["start_s"]["median"] / row["before"]["start_s"]["median"]
                row["warm"] = tool.warm_up(timeout=90.0)
            except (RunFailed, api.DockerAPIError, subprocess.SubprocessError) as exc:
                row["error"] = str(exc).splitlines()[0]
            finally:
                try:
                    row["down"] = tool.down()
                except (RunFailed, api.DockerAPIError, subprocess.SubprocessError):
                    pass
                api.sweep(tool.sweep_prefix, log)
            ok_rows = [r for r in rows if not r.get("error")]
            row["overload"] = judge_interval(row, ok_rows[0] if ok_rows else None, ok_rows[-1] if ok_rows else None)
            rows.append(row)
            if row.get("error"):
                log(f"sweep {row['interval']:>6}: {row['error']}")
            else:
                log(f"sweep {row['interval']:>6}: cold {row['cold']:5.2f} s, warm {row['warm']:5.2f} s; at rest: "
                    f"health checks {row['idle_cpu_cores']:.2f} cores (containers + shims {row['ours_cores']:.2f}, "
                    f"engine {row['engine_cores']:.2f} vs {row['engine_cores_before']:.2f} before; machine "
                    f"{row['machine_busy']:.0%} busy), check {row['checks']['check_s']['median'] * 1e3:.0f} ms, "
                    f"gap {row['checks']['gap_s']['median'] * 1e3:.0f} ms, start "
                    f"{row['engine']['start_s']['median'] * 1e3:.0f} ms ({row['start_x']:.2f}× before)"
                    + (f" — overloads: {'; '.join(row['overload'])}" if row["overload"] else ""))
            if row["overload"]:
                break
            chosen = ms
            time.sleep(0.5)
    finally:
        api.call("DELETE", f"/networks/{net}")
    return {"scenario": gen.scenario.name, "containers": len(gen.scenario.services), "window_s": SWEEP_WINDOW_S,
            "limits": SWEEP_LIMITS, "rows": rows, "chosen_ms": chosen,
            "capacity_checks_per_s": len(gen.scenario.services) * 1000 / chosen}


# --- main loop -----------------------------------------------------------------------------------


def _ports_free(base: int, count: int) -> bool:
    for p in range(base, base + count):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT from earlier runs is fine
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                return False
    return True


def ensure_image(log: Callable[[str], None]) -> None:
    try:
        api.call("GET", f"/images/{IMAGE}/json")
        return
    except api.DockerAPIError as exc:
        if exc.status != 404:
            raise
    log(f"building {IMAGE} with {BUILD_SH}")
    subprocess.run(["bash", str(BUILD_SH)], check=True, capture_output=True)


def breakdown(gen: Generated, t: dict[str, Any]) -> dict[str, Any]:
    """Where a cold b00t-graph run's time went, along the critical path the engine reported.

    ``cli`` is the process around the engine (interpreter, imports, loading and
    compiling the datums); ``plan`` the engine's first look at the containers;
    then per hop: waiting for the container made ahead (``prepare``), the start
    call (``start``), the service's own delay, and the readiness ``lag`` (from
    the moment httpd could answer to the probe that saw it).
    """
    delays = {f"{gen.b00t_name(s.name)}.docker": s.delay for s in gen.scenario.services}
    nodes = t["nodes"]
    hops = [h["node"] for h in t.get("critical_path", []) if h["node"] in delays]
    out = {"cli_wall": t.get("cli_wall"), "engine_wall": t["wall"],
           "cli": (t.get("cli_wall") or t["wall"]) - t["wall"],
           "plan": min((v["runnable"] for v in nodes.values() if v.get("runnable") is not None), default=0.0),
           "hops": [h.removeprefix(gen.b00t_prefix).removesuffix(".docker") for h in hops],
           "prepare": 0.0, "start": 0.0, "delay": 0.0, "lag": 0.0, "between": 0.0}
    prev_ready = None
    for h in hops:
        v = nodes[h]
        if prev_ready is not None:
            out["between"] += v["runnable"] - prev_ready
        out["prepare"] += (v["started"] or v["runnable"]) - v["runnable"]
        out["start"] += (v["launched"] or v["started"] or v["runnable"]) - (v["started"] or v["runnable"])
        out["delay"] += delays[h]
        out["lag"] += v["ready"] - (v["launched"] or v["runnable"]) - delays[h]
        prev_ready = v["ready"]
    return out


def engine_bound(sc: Scenario, latency: float, service: float, order: str = "critical", seed: int = 0) -> float:
    """When could a perfect tool have every service ready, on an engine that serialises starts?

    A model of the engine as one server: a start requested at ``r`` begins at
    ``max(r, server free)``, keeps the server busy ``service`` seconds (the
    measured burst throughput) and returns ``latency`` seconds after it began
    (a lone start's measured time). The perfect tool asks for each start the
    instant its dependencies are ready, with no process or probe overhead. When
    several starts wait, ``order="critical"`` sends the one with the heaviest
    remaining chain first (the best a tool can do by pacing its requests);
    ``order="random"`` lets the engine pick (seeded), as when every start is sent at once.
    """
    import heapq

    rnd = random.Random(seed)
    deps = {s.name: s.deps for s in sc.services}
    dependents: dict[str, list[str]] = {s.name: [] for s in sc.services}
    for s in sc.services:
        for d in s.deps:
            dependents[d].append(s.name)
    tail: dict[str, float] = {}  # heaviest chain from each service to the end, itself included
    for s in reversed(sc.services):
        tail[s.name] = s.delay + latency + max((tail[x] for x in dependents[s.name]), default=0.0)

    def prio(n: str) -> float:
        return -tail[n] if order == "critical" else rnd.random()

    waiting = {s.name: len(s.deps) for s in sc.services}
    arrivals = [(0.0, n) for n, ds in deps.items() if not ds]  # (request time, service)
    heapq.heapify(arrivals)
    queue: list[tuple[float, float, str]] = []  # requests already made, by priority
    free = 0.0
    ready: dict[str, float] = {}
    while arrivals or queue:
        now = free if queue else max(free, arrivals[0][0])
        while arrivals and arrivals[0][0] <= now:
            r, n = heapq.heappop(arrivals)
            heapq.heappush(queue, (prio(n), r, n))
        _, r, n = heapq.heappop(queue)
        begin = max(r, free)
        free = begin + service
        ready[n] = begin + latency + sc.delays[n]
        for x in dependents[n]:
            waiting[x] -= 1
            if waiting[x] == 0:
                heapq.heappush(arrivals, (max(ready[d] for d in deps[x]), x))
    return max(ready.values())


def engine_bound_random(sc: Scenario, latency: float, service: float, draws: int = 201) -> float:
    """The median of :func:`engine_bound` over random engine orders."""
    return statistics.median(engine_bound(sc, latency, service, "random", seed) for seed in range(draws))


def _summarise(sc: Scenario, runs: dict[str, dict[str, list[float]]], start_cost: float,
               cold: Sequence[dict[str, Any]] = (), service: float | None = None) -> dict[str, Any]:
    cp, chain = sc.critical_path()
    lim, _ = sc.critical_path(start_cost)
    out: dict[str, Any] = {"n": len(sc.services), "depth": bl.depth(sc.dag), "description": sc.description,
                           "critical_path_s": cp, "critical_chain": chain,
                           "critical_path_with_start_s": lim, "chain_start_cost_s": lim - cp,
                           "engine_bound_s": engine_bound(sc, start_cost, service) if service else None,
                           "engine_bound_random_s": engine_bound_random(sc, start_cost, service) if service else None,
                           "engine_service_s": service,
                           "services": [{"name": s.name, "delay": s.delay, "deps": list(s.deps)}
                                        for s in sc.services]}
    runs = {tool: measures for tool, measures in runs.items() if measures.get("run")}
    for tool, measures in runs.items():
        out[tool] = {m: bl.summary(v) for m, v in measures.items() if m != "run"}
        out[tool]["runs"] = list(measures.get("run", []))
    for tool in runs:
        if tool != "b00t" and "b00t" in runs:
            out[f"paired_b00t_over_{tool}"] = {
                m: bl.summary(paired_ratios(runs["b00t"], runs[tool], m))
                for m in ("cold", "cold_exit", "warm", "down", "cold_engine_cpu")}
    if cold:
        keys = ("cli", "plan", "prepare", "start", "delay", "lag", "between")
        out["b00t_cold_breakdown"] = {k: statistics.median(c[k] for c in cold) for k in keys}
        out["b00t_cold_breakdown"]["hops"] = statistics.median(len(c["hops"]) for c in cold)
        out["b00t_cold_runs"] = list(cold)
    return out


def best_interval(containers: int, rate: float, grid: Sequence[int]) -> int:
    """The smallest interval of ``grid`` at which ``containers`` health checks stay within ``rate`` checks/s.

    A check's cost is per check (a ``runc exec`` into the container), so a
    stack's health-check load is its containers ÷ the interval: a 3-service
    stack sustains a far shorter interval than a 30-service one.
    """
    ok = [ms for ms in grid if containers * 1000 / ms <= rate + 1e-9]
    return min(ok) if ok else max(grid)


def parse_best(text: str, names: Sequence[str]) -> dict[str, int]:
    """``500ms`` (every scenario) or ``small=100ms,deep=500ms`` (the scenarios not named: none)."""
    if "=" not in text:
        return dict.fromkeys(names, interval_ms(text))
    out = {}
    for part in text.split(","):
        k, _, v = part.partition("=")
        if k.strip() in names:
            out[k.strip()] = interval_ms(v)
    return out


#: the order the tools run in, run after run: the first three rotate, the next three rotate backwards, so each
#: tool takes each place and follows each other tool equally often over six runs
ORDERS = ((0, 1, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0), (1, 0, 2), (0, 2, 1))


def failed_run(tool: Any, msg: str, failures: list[str], log: Callable[[str], None]) -> None:
    """Record a failed run and leave nothing of it behind: ``down``, then a sweep of its prefix."""
    log("FAILED " + msg)
    failures.append(msg)
    try:
        tool.down()
    except Exception:  # the sweep below removes what down could not
        pass
    api.sweep(tool.sweep_prefix, log)


def _order(tools: Sequence[Any], r: int) -> list[Any]:
    if len(tools) == 2:
        return list(tools) if r % 2 == 0 else list(reversed(tools))
    return [tools[i] for i in ORDERS[r % len(ORDERS)]] if len(tools) == 3 else list(tools)


def paired_ratios(a: dict[str, list[float]], b: dict[str, list[float]], measure: str) -> list[float]:
    """b00t-graph ÷ compose run by run (the two ran back to back in the same run, under the same load)."""
    bv = dict(zip(b.get("run", []), b.get(measure, []), strict=False))
    return [x / bv[r] for r, x in zip(a.get("run", []), a.get(measure, []), strict=False) if bv.get(r)]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None, help="runs per tool and scenario (default 5; --quick 2)")
    ap.add_argument("--quick", action="store_true", help="2 runs each, a shorter interval sweep")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset")
    ap.add_argument("--b00t-probe", choices=("http", "exec"), default="http",
                    help="b00t-graph's readiness: HTTP to the published port (default) or the same wget as "
                         "compose, exec'd in the container")
    ap.add_argument("--b00t-network", choices=("own", "precreated"), default="own",
                    help="own (default): b00t-graph creates and removes its network itself, inside the timed "
                         "up/down, like compose; precreated: the bench makes it before the timed up and removes "
                         "it after the timed down")
    ap.add_argument("--b00t-interval-ms", type=int, default=1000,
                    help="b00t-graph's interval_ms (the cap of its probe backoff; default 1000, like compose's 1s)")
    ap.add_argument("--compose-interval", default="1s", help="compose healthcheck interval (default 1s)")
    ap.add_argument("--compose-best-interval", default="auto",
                    help="a second compose, measured beside the first: 'auto' (default) = per scenario, the "
                         "smallest interval of --sweep-intervals whose check rate (containers ÷ interval) stays "
                         f"within what a sweep on '{SWEEP_SCENARIO}' found this machine sustains; a value such as "
                         "500ms; per scenario, as small=100ms,deep=500ms; or 'none'")
    ap.add_argument("--sweep-intervals", default=",".join(map(str, SWEEP_INTERVALS_MS)),
                    help="the sweep's healthcheck intervals in ms, largest first")
    ap.add_argument("--sweep-only", action="store_true", help="only run the interval sweep")
    ap.add_argument("--ensure-calls", type=int, default=3, help="ensure() calls per backend per run")
    ap.add_argument("--port-base", type=int, default=47100)
    ap.add_argument("--keep-files", type=Path, default=None, help="also write the generated files here")
    ap.add_argument("--result-name", default="compose", help="results/<name>.json")
    args = ap.parse_args(argv)
    runs = args.runs or (2 if args.quick else 5)
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    for n in names:
        if n not in SCENARIOS:
            ap.error(f"unknown scenario {n!r}; known: {', '.join(SCENARIOS)}")
    base_ms = interval_ms(args.compose_interval)
    sweep_ms = [int(x) for x in args.sweep_intervals.split(",") if x.strip()]
    best = args.compose_best_interval.strip().lower()
    if args.sweep_only:
        best = "auto"
    if best not in ("auto", "none"):
        parse_best(best, names)  # fail early on a typo

    def log(msg: str) -> None:
        print(msg, flush=True)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    started = time.perf_counter()
    all_names = list(dict.fromkeys([*names, SWEEP_SCENARIO] if best == "auto" else names))
    scenario_ports = sum(len(SCENARIOS[n].services) for n in all_names)
    total_ports = scenario_ports + 1 + len(SCENARIOS["wide"].services)  # + the engine-cost measures' ports
    api.sweep(PREFIX, log)  # what an earlier, killed run may have left
    if not _ports_free(args.port_base, total_ports):
        ap.error(f"ports {args.port_base}–{args.port_base + total_ports - 1} are not all free; use --port-base")
    tmp = Path(tempfile.mkdtemp(prefix=PREFIX))
    data: dict[str, Any] = {
        "settings": {"runs": runs, "scenarios": names, "b00t_probe": args.b00t_probe,
                     "b00t_network": args.b00t_network, "compose_interval": interval_str(base_ms),
                     "compose_best_interval": None, "compose_best_intervals": {},
                     "compose_best_how": best if best in ("auto", "none") else "given",
                     "compose_timeout": "1s", "compose_retries": 60,
                     "b00t_health": {"interval_ms": args.b00t_interval_ms, "probe_timeout_ms": 1000,
                                     "timeout_ms": 60000},
                     "ensure_calls": args.ensure_calls, "image": IMAGE},
        "machine": bl.machine(),
        "failures": [],
        "scenarios": {},
    }
    try:
        api.sweep(PREFIX, log)
        ensure_image(log)
        pids = _engine_pids()
        gens: dict[str, Generated] = {}
        port = args.port_base
        for n in all_names:
            gens[n] = generate(SCENARIOS[n], tmp, port, args.b00t_probe, args.b00t_interval_ms)
            port += len(SCENARIOS[n].services)
        engine_port = port
        if best == "auto":
            data["sweep"] = interval_sweep(gens[SWEEP_SCENARIO], sweep_ms[:3] if args.quick else sweep_ms, pids,
                                           engine_port, log)
            rate = data["sweep"]["capacity_checks_per_s"]
            best_by = {n: best_interval(len(SCENARIOS[n].services), rate, sweep_ms) for n in names}
            log(f"compose's best practical healthcheck interval on {SWEEP_SCENARIO}: "
                f"{interval_str(data['sweep']['chosen_ms'])}, i.e. {rate:g} checks/s; per scenario: "
                + ", ".join(f"{n} {interval_str(ms)}" for n, ms in best_by.items()))
        else:
            best_by = {} if best == "none" else parse_best(best, names)
        data["settings"]["compose_best_intervals"] = {n: interval_str(ms) for n, ms in best_by.items()}
        if best_by and len(set(best_by.values())) == 1:
            data["settings"]["compose_best_interval"] = interval_str(next(iter(best_by.values())))
        if args.sweep_only:
            return data
        data["start_cost"] = engine_start_cost(engine_port, 5, log)
        data["process_cost"] = process_costs()
        start_cost = data["start_cost"]["start"]["median"]
        service = data["start_cost"]["burst_start_s"] / data["start_cost"]["burst_n"]
        for n in names:
            if args.keep_files:
                dest = args.keep_files / n
                shutil.rmtree(dest, ignore_errors=True)
                shutil.copytree(gens[n].datums, dest / "datums")
                for ms in (base_ms, best_by.get(n)):
                    if ms is not None:
                        shutil.copy(gens[n].compose_file(ms), dest / f"docker-compose.{ms}ms.yml")
        keys = ["b00t", "compose"] + (["compose_best"] if any(ms != base_ms for ms in best_by.values()) else [])
        cold_keys = ["run", "cold", "cold_exit", "cold_last_ready", "cold_last_start", "warm", "down",
                     "cold_engine_cpu"]
        measures: dict[str, dict[str, dict[str, list[float]]]] = {
            n: {k: {m: [] for m in cold_keys + (["ensure_asyncio", "ensure_trio"] if k == "b00t" else [])}
                for k in keys} for n in names}
        warmed_ensure: set[str] = set()
        b00t_cold: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        for r in range(runs):
            for n in names:
                gen = gens[n]
                b00t = B00t(gen, tmp / f"state-{n}", args.b00t_network)
                tools: list[Any] = [b00t, Compose(gen, base_ms, "compose")]
                if best_by.get(n, base_ms) != base_ms:  # when it is the same interval, it is the same measure
                    tools.append(Compose(gen, best_by[n], "compose_best"))
                for tool in _order(tools, r):
                    key = tool.key
                    m = measures[n][key]
                    try:
                        tool.before()
                        cpu0 = engine_cpu(pids)
                        cold = tool.cold_up()
                        cold_cpu = engine_cpu(pids) - cpu0
                        cold_timings = b00t.last_timings if tool is b00t else None
                        warm = tool.warm_up()
                        extra = ""
                        if tool is b00t and args.ensure_calls:
                            for backend in ("asyncio", "trio"):
                                if backend not in warmed_ensure:  # first call imports aiodocker: not timed
                                    b00t.ensure(backend, 1)
                                    warmed_ensure.add(backend)
                                lat = b00t.ensure(backend, args.ensure_calls)
                                m[f"ensure_{backend}"].extend(lat)
                                extra += f", ensure/{backend} {statistics.median(lat) * 1e3:.0f} ms"
                        down = tool.down()
                        tool.after()
                    except (RunFailed, api.DockerAPIError, subprocess.SubprocessError) as exc:
                        failed_run(tool, f"run {r + 1} {n} {key}: {exc}", data["failures"], log)
                        continue
                    m["run"].append(r)
                    m["cold"].append(cold.done)
                    m["cold_exit"].append(cold.exit)
                    m["cold_last_ready"].append(cold.last_ready)
                    m["cold_last_start"].append(cold.last_start)
                    m["cold_engine_cpu"].append(cold_cpu)
                    m["warm"].append(warm)
                    m["down"].append(down)
                    if cold_timings is not None:
                        b00t_cold[n].append(breakdown(gen, cold_timings))
                    left = tool.leftovers()
                    if left:
                        msg = f"run {r + 1} {n} {key}: down left {left} behind"
                        log("LEAK " + msg)
                        data["failures"].append(msg)
                        api.sweep(tool.sweep_prefix, log)
                    log(f"run {r + 1}/{runs} {n:8} {key:12} cold {cold.done:6.2f} s (exit {cold.exit:5.2f}, "
                        f"last ready {cold.last_ready:5.2f}; engine CPU {cold_cpu:4.1f} s), warm {warm:5.2f} s, "
                        f"down {down:5.2f} s{extra}")
                    time.sleep(0.5)  # let the engine finish tearing down (proxies, namespaces)
            data["scenarios"] = {n: _summarise(SCENARIOS[n], measures[n], start_cost, b00t_cold[n], service)
                                 for n in names}
            data["duration_s"] = time.perf_counter() - started
            bl.write_result(args.result_name, data)
    finally:
        try:
            left = api.sweep(PREFIX, log)
            data["final_sweep"] = left
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            data["duration_s"] = time.perf_counter() - started
            path = bl.write_result(args.result_name, data)
            log(f"wrote {path} in {data['duration_s']:.0f} s")
    return data


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted; everything made was removed", file=sys.stderr)
        sys.exit(130)
