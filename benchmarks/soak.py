"""A bounded soak: N up/down cycles of a mixed 20-node stack with random faults, then a leak count.

    python benchmarks/soak.py                 # 100 cycles
    python benchmarks/soak.py --cycles 30 --seed 7

The stack: 12 local processes (a stdlib HTTP service this script writes into a temp dir; two of
them start a child of their own) and 8 containers of the local test image
``b00t-graph-test/busybox:1`` (built by ``tests/images/build.sh`` when missing; two of them on a
network and a volume of their own), in four layers with random dependencies on the layer above;
readiness by HTTP (processes, half the containers through a published port) or by an ``exec`` in
the container. Everything goes through the real CLI (``python -m b00t_graph``).

Each cycle, with a seeded RNG, injects faults: kill -9 of an ``up`` at a random moment, kill -9 of
a random service process, ``docker kill`` of a random container, ``docker pause`` of another (then
``status``, then unpause), an ``up`` that must bring everything back, and a ``down`` racing an ``up``;
then a final ``down --volumes``. After it, leaks are counted: processes carrying this state directory's
markers (``B00T_GRAPH_STATE`` in their environment) or whose pids are in records; containers,
networks and volumes with the soak's name prefix; records, lock files and logs beyond the kept
runs left in the state directory. What leaked in a cycle is listed, then swept, so every cycle
starts clean. Every name starts ``b00tsoak-<random>-``; everything is removed at the end, even on
failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

import benchlib as bl
import dockerapi

REPO = bl.HERE.parent
sys.path.insert(0, str(REPO))
from b00t_graph.runtimes.process import KEEP_LOGS, MARK_NODE, MARK_STATE, state_id  # noqa: E402

IMAGE = "b00t-graph-test/busybox:1"
CMD_TIMEOUT = 240.0
LEAK_KINDS = ("processes", "containers", "networks", "volumes", "records", "locks", "logs", "other files")

#: The service: ``/health`` after ``--boot`` seconds; ``--child`` starts a child that outlives SIGTERM
#: of its parent only if nothing signals the group. SIGTERM exits at once.
SERVICE = r'''
import argparse, signal, subprocess, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("name")
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--boot", type=float, default=0.0)
ap.add_argument("--child", action="store_true")
o = ap.parse_args()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
if o.child:
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
time.sleep(o.boot)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", o.port), Handler).serve_forever()
'''


def engine(fn: Any, *args: Any, tries: int = 4) -> Any:
    """``fn(*args)`` against the engine, retried: a busy shared engine can take over a minute to answer."""
    for i in range(tries):
        try:
            return fn(*args)
        except (TimeoutError, OSError):
            if i == tries - 1:
                raise
            time.sleep(5)
    raise AssertionError("unreachable")


def q(v: Any) -> str:
    return json.dumps(v)  # JSON strings and arrays of strings are valid TOML


class Soak:
    def __init__(self, seed: int, log: bool = True) -> None:
        self.rng = random.Random(seed)
        self.prefix = f"b00tsoak-{secrets.token_hex(3)}-"
        self.tmp = Path(tempfile.mkdtemp(prefix=self.prefix))
        self.folder = self.tmp / "datums"
        self.state = self.tmp / "state"
        self.sid = state_id(self.state)
        self.target = f"{self.prefix}all.stack"
        self.procs: list[str] = []
        self.containers: list[str] = []
        self.verbose = log

    # --- the stack -------------------------------------------------------------------------------

    def write_stack(self) -> None:
        self.folder.mkdir(parents=True)
        svc = self.tmp / "svc.py"
        svc.write_text(SERVICE)
        rng = random.Random(self.rng.random())
        taken: set[int] = set()
        layers: list[list[str]] = []
        pi = ci = 0
        for li, (np_, nc) in enumerate(((3, 2), (3, 2), (3, 2), (3, 2))):
            layer: list[str] = []
            for k in range(np_ + nc):
                is_proc = k < np_
                short = f"p{pi:02d}" if is_proc else f"c{ci:02d}"
                name = self.prefix + short
                deps = sorted(rng.sample(layers[-1], rng.randint(1, 2))) if li else []
                depl = [f"{d}.{'process' if d[len(self.prefix)] == 'p' else 'docker'}" for d in deps]
                port = bl.free_port(taken)
                lines = ["[b00t]", f"name = {q(name)}"]
                if is_proc:
                    args = [str(svc), short, f"--port={port}", f"--boot={rng.choice((0.0, 0.1, 0.3))}"]
                    if pi in (4, 9):
                        args.append("--child")
                    lines += ['type = "process"', f"command = {q(sys.executable)}", f"args = {q(args)}",
                              "stop_grace_ms = 2000"]
                    check = [f"http_url = {q(f'http://127.0.0.1:{port}/health')}"]
                    self.procs.append(name)
                    pi += 1
                else:
                    dargs = ["--init"]
                    if ci in (0, 1):
                        dargs += ["--network", f"{name}-net", "-v", f"{name}-vol:/data"]
                    lines += ['type = "docker"', f"image = {q(IMAGE)}", "stop_grace_ms = 2000",
                              f"command = {q(['httpd', '-f', '-p', '80', '-h', '/www'])}",
                              f"docker_args = {q(dargs)}"]
                    if ci % 2 == 0:
                        lines.append(f"ports = {q([f'127.0.0.1:{port}:80'])}")
                        check = [f"http_url = {q(f'http://127.0.0.1:{port}/')}"]
                    else:
                        check = [f"exec = {q(['wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:80/'])}"]
                    self.containers.append(name)
                    ci += 1
                if depl:
                    lines.append(f"depends_on = {q(depl)}")
                lines += ["[b00t.health_check]", *check, "timeout_ms = 30000", "interval_ms = 200"]
                kind = "process" if is_proc else "docker"
                (self.folder / f"{name}.{kind}.toml").write_text("\n".join(lines) + "\n")
                layer.append(name)
            layers.append(layer)
        members = [f"{n}.process" for n in self.procs] + [f"{n}.docker" for n in self.containers]
        (self.folder / f"{self.target}.toml").write_text(
            f'[b00t]\nname = {q(self.prefix + "all")}\ntype = "stack"\nmembers = {q(members)}\n')

    # --- the CLI ---------------------------------------------------------------------------------

    def argv(self, command: str, *extra: str) -> list[str]:
        quiet = ["-q"] if command in ("up", "down") else []
        return [sys.executable, "-m", "b00t_graph", command, self.target, *quiet, "-d", str(self.folder),
                "--state-dir", str(self.state), *extra]

    def popen(self, command: str, *extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(command, *extra), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)

    @staticmethod
    def finish(p: subprocess.Popen[str]) -> tuple[int, str]:
        try:
            _, err = p.communicate(timeout=CMD_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            _, err = p.communicate()
            return -999, f"timed out after {CMD_TIMEOUT:g}s; {err.strip()}"
        return p.returncode, err.strip()

    def run(self, command: str, *extra: str) -> tuple[int, str, float]:
        t0 = time.perf_counter()
        rc, err = self.finish(self.popen(command, *extra))
        return rc, err, time.perf_counter() - t0

    # --- what runs -------------------------------------------------------------------------------

    def records(self) -> dict[str, dict[str, Any]]:
        out = {}
        for f in (self.state / "process").glob("*.json"):
            try:
                out[f.stem] = json.loads(f.read_text())
            except (OSError, ValueError):
                out[f.stem] = {}
        return out

    def marked(self) -> list[psutil.Process]:
        """Live processes carrying this state directory's markers, or whose pid is in a record."""
        pids = {int(r["pid"]) for r in self.records().values() if str(r.get("pid", "")).isdigit()}
        out = []
        for proc in psutil.process_iter():
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                if proc.pid in pids or proc.environ().get(MARK_STATE) == self.sid:
                    out.append(proc)
            except (psutil.Error, OSError):
                continue
        return out

    def running_containers(self) -> list[str]:
        return [c["Names"][0].lstrip("/") for c in engine(dockerapi.containers,
                                                            {"name": [self.prefix], "status": ["running"]})]

    # --- leaks -----------------------------------------------------------------------------------

    def leaks(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {k: [] for k in LEAK_KINDS}
        for proc in self.marked():
            try:
                out["processes"].append(f"pid {proc.pid} {proc.environ().get(MARK_NODE, '?')} "
                                        f"{' '.join(proc.cmdline())[:120]}")
            except (psutil.Error, OSError):
                out["processes"].append(f"pid {proc.pid}")
        managed = {c["Id"] for c in engine(dockerapi.containers, {"label": ["org.b00t-graph.managed"]})}
        for kind in ("containers", "networks", "volumes"):
            for oid, name in engine(dockerapi.names_with_prefix, kind, self.prefix):
                tag = " (managed)" if kind != "containers" or oid in managed else " (unlabelled)"
                out[kind].append(name + tag)
        logs: Counter[str] = Counter()
        for f in sorted(self.state.rglob("*")) if self.state.exists() else ():
            if f.is_dir():
                continue
            rel = str(f.relative_to(self.state))
            if f.parent.name == "process" and f.suffix == ".json":
                out["records"].append(rel)
            elif f.parent.name == "locks":
                out["locks"].append(rel)
            elif f.parent.name == "process" and ".log" in f.name:
                logs[f.name.split(".log")[0]] += 1
            else:
                out["other files"].append(rel)
        for node, n in logs.items():
            if n > KEEP_LOGS:
                out["logs"].append(f"{node}: {n} logs (keeps {KEEP_LOGS})")
        return out

    def sweep(self) -> None:
        """Remove whatever is left: marked processes (their groups), containers/networks/volumes, records."""
        for proc in self.marked():
            for kill in (lambda p=proc: os.killpg(p.pid, signal.SIGKILL), proc.kill):
                try:
                    kill()
                except (psutil.Error, OSError):
                    pass
        try:
            engine(dockerapi.sweep, self.prefix)
        except Exception as exc:  # the engine may be gone; report and go on
            print(f"sweep: {exc}", file=sys.stderr)
        for sub in ("locks",):
            shutil.rmtree(self.state / sub, ignore_errors=True)
        for f in (self.state / "process").glob("*.json"):
            f.unlink(missing_ok=True)

    # --- one cycle -------------------------------------------------------------------------------

    def cycle(self, est_up: float) -> dict[str, Any]:
        rng = self.rng
        t0 = time.perf_counter()
        rec: dict[str, Any] = {"faults": [], "kinds": [], "unexpected": []}

        def expect_ok(step: str, rc: int, err: str) -> None:
            if rc != 0:
                rec["unexpected"].append(f"{step}: exit {rc}: {err.splitlines()[-1] if err else ''}")

        # 1. an `up` killed -9 at a random moment
        if rng.random() < 0.8:
            at = rng.uniform(0.0, est_up)
            p = self.popen("up")
            time.sleep(at)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.communicate()
            rec["faults"].append(f"kill -9 up at {at:.2f}s")
            rec["kinds"].append("kill -9 of up")
        rc, err, took = self.run("up")
        rec["up_s"] = took
        expect_ok("up", rc, err)
        # 2. a service process killed -9, a container killed, another paused
        if rng.random() < 0.8:
            recs = self.records()
            if recs:
                node = rng.choice(sorted(recs))
                try:
                    os.kill(int(recs[node]["pid"]), signal.SIGKILL)
                    rec["faults"].append(f"kill -9 {node}")
                    rec["kinds"].append("kill -9 of a service")
                except (OSError, KeyError, ValueError):
                    pass
        running = self.running_containers()
        if running and rng.random() < 0.8:
            victim = rng.choice(running)
            subprocess.run(["docker", "kill", victim], capture_output=True, timeout=60)
            running.remove(victim)
            rec["faults"].append(f"docker kill {victim}")
            rec["kinds"].append("docker kill")
        paused = None
        if running and rng.random() < 0.6:
            paused = rng.choice(running)
            subprocess.run(["docker", "pause", paused], capture_output=True, timeout=60)
            rec["faults"].append(f"docker pause {paused}")
            rec["kinds"].append("docker pause")
            st = subprocess.run([*self.argv("status"), "--json"], cwd=REPO,
                                capture_output=True, text=True, timeout=CMD_TIMEOUT)
            try:
                rec["status_sees_paused"] = json.loads(st.stdout)[f"{paused}.docker"]["state"] == "paused"
            except (ValueError, KeyError, TypeError):
                rec["status_sees_paused"] = False
                rec["unexpected"].append(f"status --json: exit {st.returncode}: {st.stderr.strip()[-200:]}")
            subprocess.run(["docker", "unpause", paused], capture_output=True, timeout=60)
        # 3. an `up` brings everything back
        rc, err, _ = self.run("up")
        expect_ok("up after faults", rc, err)
        # 4. a `down` racing an `up`
        if rng.random() < 0.7:
            self.run("down")  # so the racing `up` has work to do
            up = self.popen("up")
            delay = rng.uniform(0.0, est_up)
            time.sleep(delay)
            down = self.popen("down")
            rc_up, _ = self.finish(up)
            rc_down, err = self.finish(down)
            expect_ok("racing down", rc_down, err)
            rec["faults"].append(f"down {delay:.2f}s into an up (up exit {rc_up})")
            rec["kinds"].append("down racing up")
        # 5. the final down (with the named volumes: what the stack made, all of it)
        rc, err, took = self.run("down", "--volumes")
        rec["down_s"] = took
        expect_ok("final down", rc, err)
        rec["cycle_s"] = time.perf_counter() - t0
        leaks = self.leaks()
        rec["leaks"] = {k: v for k, v in leaks.items() if v}
        if rec["leaks"]:
            self.sweep()
        return rec

    def cleanup(self) -> None:
        try:
            self.finish(self.popen("down", "--volumes"))
        except Exception as exc:
            print(f"cleanup down: {exc}", file=sys.stderr)
        self.sweep()
        shutil.rmtree(self.tmp, ignore_errors=True)


def ensure_image() -> None:
    try:
        dockerapi.call("GET", f"/images/{IMAGE}/json")
    except dockerapi.DockerAPIError:
        subprocess.run(["bash", str(REPO / "tests" / "images" / "build.sh")], check=True, stdout=subprocess.DEVNULL)


def table(result: dict[str, Any]) -> str:
    lines = ["| leaked | count |", "|---|---|"]
    lines += [f"| {k} | {result['leaks'][k]} |" for k in LEAK_KINDS]
    c = result["cycle_s"]
    lines += ["", "| | median | min | max |", "|---|---|---|---|",
              f"| cycle (s) | {bl.fmt_s(c['median'])} | {bl.fmt_s(c['min'])} | {bl.fmt_s(c['max'])} |"]
    for key, label in (("up_s", "full `up` (s)"), ("down_s", "final `down` (s)")):
        s = result[key]
        lines.append(f"| {label} | {bl.fmt_s(s['median'])} | {bl.fmt_s(s['min'])} | {bl.fmt_s(s['max'])} |")
    return "\n".join(lines)


def summarise(soak: Soak, cycles: list[dict[str, Any]], args: argparse.Namespace, started: float,
              stopped: str | None) -> dict[str, Any]:
    total: Counter[str] = Counter()
    faults: Counter[str] = Counter()
    for c in cycles:
        for k, v in c["leaks"].items():
            total[k] += len(v)
        faults.update(c["kinds"])
    return {
        "machine": bl.machine(), "seed": args.seed, "cycles": len(cycles), "requested_cycles": args.cycles,
        "interrupted": stopped is not None, "stopped_by": stopped,
        "nodes": {"processes": len(soak.procs), "containers": len(soak.containers)},
        "leaks": {k: total[k] for k in LEAK_KINDS},
        "leak_details": [{"cycle": i + 1, **c["leaks"]} for i, c in enumerate(cycles) if c["leaks"]],
        "unexpected_exits": [{"cycle": i + 1, "what": c["unexpected"]} for i, c in enumerate(cycles)
                             if c["unexpected"]],
        "faults": dict(faults),
        "status_saw_paused": [c["status_sees_paused"] for c in cycles if "status_sees_paused" in c],
        "cycle_s": bl.summary([c["cycle_s"] for c in cycles]),
        "up_s": bl.summary([c["up_s"] for c in cycles]),
        "down_s": bl.summary([c["down_s"] for c in cycles]),
        "duration_s": time.perf_counter() - started,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--minutes", type=float, default=None, help="stop starting cycles after this long")
    args = ap.parse_args(argv)
    dockerapi.call("GET", "/_ping", timeout=5)
    ensure_image()
    soak = Soak(args.seed)
    cycles: list[dict[str, Any]] = []
    started = time.perf_counter()

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    stopped: str | None = None
    try:
        soak.write_stack()
        est_up = 3.0
        for i in range(args.cycles):
            if args.minutes and time.perf_counter() - started > args.minutes * 60:
                break
            rec = soak.cycle(est_up)
            cycles.append(rec)
            ups = [c["up_s"] for c in cycles if "up_s" in c]
            est_up = statistics.median(ups) if ups else est_up
            print(f"cycle {i + 1}: {rec['cycle_s']:.1f}s  faults: {'; '.join(rec['faults']) or '-'}"
                  + (f"  LEAKS: {rec['leaks']}" if rec["leaks"] else "")
                  + (f"  unexpected: {rec['unexpected']}" if rec["unexpected"] else ""), flush=True)
            bl.write_result("soak", summarise(soak, cycles, args, started, "still running"))
    except KeyboardInterrupt:
        stopped = "interrupted"
    except Exception as exc:  # the cycles so far still count; say what stopped the run
        stopped = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    finally:
        soak.cleanup()
    result = summarise(soak, cycles, args, started, stopped)
    if cycles:
        print(f"\n{len(cycles)} cycles of {len(soak.procs)} processes + {len(soak.containers)} containers, "
              f"{result['duration_s'] / 60:.1f} min; faults: {result['faults']}"
              + (f"; stopped: {stopped}" if stopped else ""))
        print(table(result))
        if result["unexpected_exits"]:
            print(f"unexpected exit codes in {len(result['unexpected_exits'])} cycles (see the JSON)")
        bl.write_result("soak", result)
    return 1 if stopped or any(result["leaks"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
