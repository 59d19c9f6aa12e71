"""b00t-graph ``up --on swarm`` against ``docker stack deploy`` on one single-node swarm, same image, same checks.

The stack: 6 services in 3 layers of 2, each service depending on both of the layer below
(``l0-a l0-b → l1-a l1-b → l2-a l2-b``). Every service runs the local busybox test image::

    sh -c "sleep 1; mkdir -p /w; echo ok > /w/index.html; exec httpd -f -p 80 -h /w"

under ``--init``, with the same HEALTHCHECK for both tools (``wget -q -O /dev/null http://127.0.0.1/``,
interval 1 s, timeout 1 s, 60 retries). b00t-graph gets a folder of docker datums (``depends_on``)
and runs ``up --on swarm``; ``docker stack deploy`` gets the equivalent compose file (version 3.8,
``depends_on`` and ``healthcheck``; ``--resolve-image never``: there is no registry here).

One ruler for both: the engine's own times. A service is healthy when its task turned
``running`` (Swarm holds a task with a HEALTHCHECK in ``starting`` until it is healthy:
``Status.Timestamp``); it started at its container's ``State.StartedAt``. "Time until every service
is healthy" is the latest of those healthy times, after a ``time.time()`` taken just before the
command. For the stack deploy it also records, for every dependent, whether its container started
before each of its dependencies was healthy: ``docker stack deploy`` ignores ``depends_on``.

The tools alternate (A B, then B A…); between runs each tool removes what it made (``down --on
swarm``; ``docker stack rm`` and a wait until the containers and network are gone). The engine is
made a swarm (``docker swarm init --advertise-addr 127.0.0.1``) only when it is in none, and left
again at the end only then. Everything is named ``b00tbench-sw…`` and swept at the end.

    python benchmarks/bench_swarm.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import benchlib as bl
import dockerapi as api

IMAGE = "b00t-graph-test/busybox:1"
PREFIX = "b00tbench-sw"
B00T_PROJECT = f"{PREFIX}b"
STACK = f"{PREFIX}s"
BUILD_SH = bl.HERE.parent / "tests" / "images" / "build.sh"
HEALTH = "wget -q -O /dev/null http://127.0.0.1/"
DELAY = 1
LAYERS = 3
WIDTH = 2
RUN_TIMEOUT = 180.0


def services() -> dict[str, list[str]]:
    """name → the names it depends on: every service of the layer below."""
    out: dict[str, list[str]] = {}
    for layer in range(LAYERS):
        for i in range(WIDTH):
            out[f"l{layer}-{'ab'[i]}"] = [f"l{layer - 1}-{'ab'[j]}" for j in range(WIDTH)] if layer else []
    return out


def command() -> list[str]:
    return ["sh", "-c", f"sleep {DELAY}; mkdir -p /w; echo ok > /w/index.html; exec httpd -f -p 80 -h /w"]


def write_datums(folder: Path) -> None:
    for name, deps in services().items():
        lines = ["[b00t]", f'name = "{name}"', 'type = "docker"', f'image = "{IMAGE}"', "stop_grace_ms = 2000",
                 f"command = {json.dumps(command())}",
                 "docker_args = " + json.dumps(["--init", "--health-cmd", HEALTH, "--health-interval", "1s",
                                                "--health-timeout", "1s", "--health-retries", "60"]),
                 f"depends_on = {json.dumps([f'{d}.docker' for d in deps])}",
                 "[b00t.health_check]", "timeout_ms = 120000"]
        (folder / f"{name}.docker.toml").write_text("\n".join(lines) + "\n")
    top = "\n".join(['[b00t]', 'name = "swarmbench"', 'type = "stack"',
                     f"members = {json.dumps([f'{n}.docker' for n in services()])}"])
    (folder / "swarmbench.stack.toml").write_text(top + "\n")


def compose_text() -> str:
    out = ['version: "3.8"', "services:"]
    for name, deps in services().items():
        out += [f"  {name}:", f"    image: {IMAGE}", "    init: true", f"    command: {json.dumps(command())}",
                "    stop_grace_period: 2s",
                "    healthcheck:", f"      test: {json.dumps(['CMD-SHELL', HEALTH])}", "      interval: 1s",
                "      timeout: 1s", "      retries: 60"]
        if deps:
            out.append("    depends_on:")
            out += [f"      - {d}" for d in deps]
    return "\n".join(out) + "\n"


# --- the engine's times --------------------------------------------------------------------------


def _ts(text: str) -> float:
    whole, _, frac = text.replace("Z", "").partition(".")
    return datetime.fromisoformat(f"{whole}.{(frac + '000000')[:6]}+00:00").timestamp()


def _tasks(service: str) -> list[dict[str, Any]]:
    try:
        return list(api.call("GET", "/tasks", {"filters": {"service": [service]}}))
    except api.DockerAPIError as exc:
        if exc.status == 404:
            return []
        raise


def observe(prefix: str) -> dict[str, dict[str, float]] | None:
    """service → {started, healthy} once every service of the stack has a running (healthy) task, else None."""
    out: dict[str, dict[str, float]] = {}
    for name in services():
        running = [t for t in _tasks(f"{prefix}_{name}") if t["Status"]["State"] == "running"
                   and t.get("DesiredState") == "running"]
        if not running:
            return None
        t = running[0]
        cid = t["Status"]["ContainerStatus"]["ContainerID"]
        info = api.call("GET", f"/containers/{cid}/json")
        svc = api.call("GET", f"/services/{prefix}_{name}")
        out[name] = {"created": _ts(svc["CreatedAt"]), "started": _ts(info["State"]["StartedAt"]),
                     "healthy": _ts(t["Status"]["Timestamp"])}
    return out


def latencies(seen: dict[str, dict[str, float]], t0: float) -> dict[str, float]:
    """Where the time goes: the command's own start (until its first service exists), Swarm's own
    (service created → its task healthy, median over services), and the hand-over (a dependent's
    service created after its last dependency turned healthy, median)."""
    own = statistics.median(s["healthy"] - s["created"] for s in seen.values())
    gaps = [seen[n]["created"] - max(seen[d]["healthy"] for d in deps) for n, deps in services().items() if deps]
    return {"first_service_s": min(s["created"] for s in seen.values()) - t0,
            "swarm_service_to_healthy_s": own, "handover_s": statistics.median(gaps)}


def wait_all_healthy(prefix: str, timeout: float = RUN_TIMEOUT) -> dict[str, dict[str, float]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = observe(prefix)
        if seen is not None:
            return seen
        time.sleep(0.1)
    raise RuntimeError(f"{prefix}: not every service was healthy within {timeout:g}s")


def order_report(seen: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """For each dependency edge: did the dependent's container start after the dependency was healthy?"""
    rows = []
    for name, deps in services().items():
        for dep in deps:
            gap = seen[name]["started"] - seen[dep]["healthy"]
            rows.append({"dependent": name, "dependency": dep, "started_minus_dep_healthy_s": round(gap, 3),
                         "respected": gap >= 0})
    return rows


def wait_gone(prefix: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [s for s in api.call("GET", "/services", {"filters": {"name": [prefix]}})
                if s["Spec"]["Name"].startswith(prefix)]
        if not left and not api.names_with_prefix("containers", prefix) and \
                not api.names_with_prefix("networks", prefix):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{prefix}: services, containers or networks still there after {timeout:g}s")


# --- the two tools -------------------------------------------------------------------------------


def _run(argv: list[str], timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}… exited {res.returncode}: {res.stderr[-2000:]}")
    return res


def b00t_run(folder: Path, state: Path) -> dict[str, Any]:
    base = [sys.executable, "-m", "b00t_graph"]
    common = ["--datums", str(folder), "--state-dir", str(state), "--project", B00T_PROJECT, "--on", "swarm"]
    t0 = time.time()
    _run([*base, "up", "swarmbench.stack", "-q", *common])
    returned = time.time() - t0
    seen = wait_all_healthy(B00T_PROJECT)
    _run([*base, "down", "swarmbench.stack", "-q", *common])
    wait_gone(B00T_PROJECT)
    return {"all_healthy_s": max(s["healthy"] for s in seen.values()) - t0, "returned_s": returned,
            "order": order_report(seen), **latencies(seen, t0)}


def stack_run(compose: Path) -> dict[str, Any]:
    t0 = time.time()
    _run(["docker", "stack", "deploy", "--resolve-image", "never", "-c", str(compose), STACK])
    returned = time.time() - t0
    seen = wait_all_healthy(STACK)
    _run(["docker", "stack", "rm", STACK])
    wait_gone(STACK)
    return {"all_healthy_s": max(s["healthy"] for s in seen.values()) - t0, "returned_s": returned,
            "order": order_report(seen), **latencies(seen, t0)}


# --- swarm and cleanup ---------------------------------------------------------------------------


def swarm_state() -> tuple[str, bool]:
    info = api.call("GET", "/info")
    return str(info["Swarm"]["LocalNodeState"]), bool(info["Swarm"].get("ControlAvailable"))


def sweep(log: Callable[[str], None]) -> None:
    for s in api.call("GET", "/services", {"filters": {"name": [PREFIX]}}):
        if s["Spec"]["Name"].startswith(PREFIX):
            api.call("DELETE", f"/services/{s['ID']}")
            log(f"swept service {s['Spec']['Name']}")
    deadline = time.monotonic() + 60
    while api.names_with_prefix("containers", PREFIX) and time.monotonic() < deadline:
        time.sleep(0.2)
    api.sweep(PREFIX, log)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per tool (default 5)")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    # a TERM (or Ctrl-C) still sweeps and leaves the swarm (the `finally` below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    subprocess.run(["bash", str(BUILD_SH)], check=True, capture_output=True, timeout=600)
    state, manager = swarm_state()
    made = False
    if state == "inactive":
        _run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"])
        made = True
        log("swarm initialised (left again at the end)")
    elif state != "active" or not manager:
        raise SystemExit(f"the engine is in a swarm it does not manage ({state}): not benchmarking")
    runs: dict[str, list[dict[str, Any]]] = {"b00t": [], "stack": []}
    failures: list[str] = []
    try:
        sweep(log)
        with tempfile.TemporaryDirectory(prefix="b00tbench-swarm-") as tmp:
            root = Path(tmp)
            folder, st = root / "datums", root / "state"
            folder.mkdir()
            st.mkdir()
            write_datums(folder)
            compose = root / "compose.yml"
            compose.write_text(compose_text())
            for r in range(args.runs):
                order = ["b00t", "stack"] if r % 2 == 0 else ["stack", "b00t"]
                for tool in order:
                    try:
                        res = b00t_run(folder, st) if tool == "b00t" else stack_run(compose)
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        failures.append(f"{tool} run {r + 1}: {exc}")
                        log(failures[-1])
                        sweep(log)
                        continue
                    runs[tool].append(res)
                    broken = sum(not o["respected"] for o in res["order"])
                    extra = (f"; first service after {res['first_service_s']:.2f}s, Swarm's own service→healthy "
                             f"{res['swarm_service_to_healthy_s']:.2f}s"
                             + (f", hand-over {res['handover_s']:.3f}s" if tool == "b00t" else ""))
                    log(f"run {r + 1} {tool}: every service healthy after {res['all_healthy_s']:.2f}s "
                        f"(command returned after {res['returned_s']:.2f}s{extra}); "
                        f"{broken}/{len(res['order'])} dependencies started before healthy")
    finally:
        sweep(log)
        if made:
            subprocess.run(["docker", "swarm", "leave", "--force"], capture_output=True, timeout=60, check=False)
            log("swarm left")

    def med(tool: str, key: str) -> float | None:
        vals = [r[key] for r in runs[tool]]
        return statistics.median(vals) if vals else None

    result: dict[str, Any] = {
        "machine": bl.machine(), "runs": args.runs, "services": services(), "delay_s": DELAY,
        "healthcheck": {"test": HEALTH, "interval": "1s", "timeout": "1s", "retries": 60},
        "tools": {tool: {"all_healthy": bl.summary([r["all_healthy_s"] for r in rs]),
                         "returned": bl.summary([r["returned_s"] for r in rs]),
                         "first_service": bl.summary([r["first_service_s"] for r in rs]),
                         "swarm_service_to_healthy": bl.summary([r["swarm_service_to_healthy_s"] for r in rs]),
                         **({"handover": bl.summary([r["handover_s"] for r in rs])} if tool == "b00t" else {}),
                         "order_violations": [sum(not o["respected"] for o in r["order"]) for r in rs],
                         "edges": len(rs[0]["order"]) if rs else 0,
                         "last_order": rs[-1]["order"] if rs else []}
                  for tool, rs in runs.items()},
        "ratio_b00t_over_stack": bl.ratio(med("b00t", "all_healthy_s"), med("stack", "all_healthy_s")),
        "failures": failures,
    }
    path = bl.write_result("swarm", result)
    log(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
