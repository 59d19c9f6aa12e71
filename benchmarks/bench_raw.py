"""b00t-graph's cold ``up`` against a minimal script doing the same work straight through the Engine API.

How close b00t-graph comes to the floor: the same scenarios as ``bench_compose.py`` (default ``deep`` and
``layered``), the same image, command, published ports and user-defined bridge network, brought up by

* **b00t-graph**: its CLI ``up`` of the generated datum folder, exactly as ``bench_compose.py`` runs it;
* **raw API**: ``raw_up.py``, a stdlib-only script (threads and ``dockerapi.py``): the network, then per
  service, as soon as its own dependencies are ready, ``POST /containers/create``, ``POST
  /containers/{id}/start`` and ``GET /`` on the published port every 5 ms until it answers 200.

Both run as a subprocess (each pays an interpreter's start) with bytecode caches on, as in a person's shell
(a sandbox's ``PYTHONDONTWRITEBYTECODE`` would make b00t-graph, with far more modules, compile its sources at
every start), and are timed by the one event-stream watcher of ``bench_compose.timed_cold_up``: from spawning
the command until it has exited and every container has started. Within each run the two alternate (A B, then
B A), each from a clean state: after each cold ``up``, b00t-graph's ``down`` or a sweep of the raw script's
containers and network, untimed. Everything made is named ``b00tbench-b-rw*`` / ``b00tbench-raw-*`` and is
removed at the end, also on Ctrl-C or an error.

    python benchmarks/bench_raw.py [--quick] [--runs N] [--scenarios deep,layered]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_compose as bc
import benchlib as bl
import dockerapi as api

RAW_UP = bl.HERE / "raw_up.py"
RAW_PREFIX = bc.PREFIX + "raw-"
RW = "rw"  # b00t-graph's scenarios get this prefix: its containers cannot meet bench_compose's
POLL_S = 0.005
TIMEOUT_S = 60.0  # per service, as the datums' timeout_ms
DEFAULT_SCENARIOS = ("deep", "layered")


def raw_spec(gen: bc.Generated, name: str) -> dict[str, Any]:
    """What ``raw_up.py`` makes for scenario ``name``: the very containers b00t-graph's datums describe."""
    prefix = f"{RAW_PREFIX}{name}"
    return {"prefix": prefix, "network": prefix, "image": bc.IMAGE, "poll_s": POLL_S, "timeout_s": TIMEOUT_S,
            "services": [{"name": f"{prefix}-{s.name}", "cmd": bc.command(s.delay), "port": gen.ports[s.name],
                          "deps": [f"{prefix}-{d}" for d in s.deps]} for s in gen.scenario.services]}


class Raw:
    """The raw Engine API script as a tool beside ``bench_compose.B00t``: ``cold_up``, ``down``, ``leftovers``."""

    key = "raw"

    def __init__(self, gen: bc.Generated, name: str, root: Path, env: dict[str, str]) -> None:
        self.gen = gen
        self.spec = raw_spec(gen, name)
        self.sweep_prefix: str = self.spec["prefix"]
        self.names = [s["name"] for s in self.spec["services"]]
        self.spec_path = root / f"{name}.raw.json"
        self.spec_path.write_text(json.dumps(self.spec, indent=1))
        self.env = env

    def cold_up(self) -> bc.ColdUp:
        res = bc.timed_cold_up("raw API", [sys.executable, str(RAW_UP), str(self.spec_path)], self.names,
                               healthcheck=False, env=self.env)
        states = bc._running(self.sweep_prefix + "-")
        if len(states) != len(self.names) or set(states.values()) != {"running"}:
            raise bc.RunFailed(f"after the raw up: {states}")
        bc._check_serving(self.gen)
        return res

    def down(self) -> None:
        api.sweep(self.sweep_prefix)

    def leftovers(self) -> list[str]:
        return [n for kind in ("containers", "networks") for _, n in api.names_with_prefix(kind, self.sweep_prefix)]


def user_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a person's shell has: bytecode caches on. A CI or sandbox may switch them off with
    ``PYTHONDONTWRITEBYTECODE``; b00t-graph, with far more modules of its own than the raw script, would then
    compile its sources at every start. (The standard library and the installed packages have theirs.)"""
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def precompile() -> None:
    """Write the bytecode of b00t-graph's sources and of ``dockerapi.py``, where a first run in a person's shell
    would, so that no timed run pays for compiling (the scripts run as ``__main__`` are compiled at every
    start, by either tool)."""
    import b00t_graph

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(b00t_graph.__file__).parent),
                    str(bl.HERE / "dockerapi.py")], env=user_env(), check=True, capture_output=True)


def _summarise(sc: bc.Scenario, measures: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    cp, chain = sc.critical_path()
    out: dict[str, Any] = {"n": len(sc.services), "depth": bl.depth(sc.dag), "description": sc.description,
                           "critical_path_s": cp, "critical_chain": chain}
    for tool, m in measures.items():
        out[tool] = {k: bl.summary(v) for k, v in m.items() if k != "run"}
        out[tool]["runs"] = list(m["run"])
    paired = bc.paired_ratios(measures["b00t"], measures["raw"], "cold")
    out["paired_b00t_over_raw"] = bl.summary(paired)
    out["ratio_b00t_over_raw"] = bl.ratio(out["b00t"]["cold"]["median"], out["raw"]["cold"]["median"])
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None, help="runs per tool and scenario (default 5; --quick 2)")
    ap.add_argument("--quick", action="store_true", help="the small scenario, 2 runs")
    ap.add_argument("--scenarios", default=None,
                    help=f"comma-separated (default {','.join(DEFAULT_SCENARIOS)}; --quick: small); "
                         f"known: {', '.join(bc.SCENARIOS)}")
    ap.add_argument("--port-base", type=int, default=47400)
    ap.add_argument("--result-name", default="raw", help="results/<name>.json")
    args = ap.parse_args(argv)
    runs = args.runs or (2 if args.quick else 5)
    names = [n.strip() for n in (args.scenarios or ("small" if args.quick else ",".join(DEFAULT_SCENARIOS)))
             .split(",") if n.strip()]
    for n in names:
        if n not in bc.SCENARIOS:
            ap.error(f"unknown scenario {n!r}; known: {', '.join(bc.SCENARIOS)}")

    def log(msg: str) -> None:
        print(msg, flush=True)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    started = time.perf_counter()
    prefixes = [f"{bc.PREFIX}b-{RW}{n}" for n in names] + [RAW_PREFIX]
    for p in prefixes:  # what an earlier, killed run may have left
        api.sweep(p, log)
    total_ports = sum(len(bc.SCENARIOS[n].services) for n in names)
    if not bc._ports_free(args.port_base, total_ports):
        ap.error(f"ports {args.port_base}–{args.port_base + total_ports - 1} are not all free; use --port-base")
    tmp = Path(tempfile.mkdtemp(prefix=bc.PREFIX + "raw-"))
    env = user_env()
    data: dict[str, Any] = {
        "settings": {"runs": runs, "quick": args.quick, "scenarios": names, "image": bc.IMAGE,
                     "raw_poll_ms": POLL_S * 1e3,
                     "b00t_health": {"probe": "http", "interval_ms": 1000, "probe_timeout_ms": 1000,
                                     "timeout_ms": 60000},
                     "bytecode_cache": True},
        "machine": bl.machine(),  # its loadavg is the load at the start
        "failures": [],
        "scenarios": {},
    }
    try:
        bc.ensure_image(log)
        precompile()
        tools: dict[str, tuple[bc.B00t, Raw]] = {}
        port = args.port_base
        for n in names:
            sc = bc.SCENARIOS[n]
            gen = bc.generate(bc.Scenario(RW + n, sc.description, sc.services), tmp, port, "http")
            port += len(sc.services)
            b00t = bc.B00t(gen, tmp / f"state-{n}")
            b00t.env = user_env(b00t.env)
            tools[n] = (b00t, Raw(gen, n, tmp, env))
        measures: dict[str, dict[str, dict[str, list[float]]]] = {
            n: {k: {"run": [], "cold": [], "cold_exit": []} for k in ("b00t", "raw")} for n in names}
        for r in range(runs):
            for n in names:
                for tool in bc._order(tools[n], r):
                    m = measures[n][tool.key]
                    try:
                        cold = tool.cold_up()
                        tool.down()
                    except (bc.RunFailed, api.DockerAPIError, subprocess.SubprocessError) as exc:
                        bc.failed_run(tool, f"run {r + 1} {n} {tool.key}: {exc}", data["failures"], log)
                        continue
                    m["run"].append(r)
                    m["cold"].append(cold.done)
                    m["cold_exit"].append(cold.exit)
                    left = tool.leftovers()
                    if left:
                        msg = f"run {r + 1} {n} {tool.key}: down left {left} behind"
                        log("LEAK " + msg)
                        data["failures"].append(msg)
                        api.sweep(tool.sweep_prefix, log)
                    log(f"run {r + 1}/{runs} {n:8} {tool.key:5} cold {cold.done:6.2f} s (exit {cold.exit:5.2f}, "
                        f"last start {cold.last_start:5.2f})")
                    time.sleep(0.5)  # let the engine finish tearing down (proxies, namespaces)
            data["scenarios"] = {n: _summarise(bc.SCENARIOS[n], measures[n]) for n in names}
            data["duration_s"] = time.perf_counter() - started
            bl.write_result(args.result_name, data)
        for n, s in data["scenarios"].items():
            pr = s["paired_b00t_over_raw"]
            log(f"{n}: b00t-graph {bl.fmt_s(s['b00t']['cold']['median'])} s, raw API "
                f"{bl.fmt_s(s['raw']['cold']['median'])} s, ratio {bl.fmt_x(s['ratio_b00t_over_raw'])} "
                f"(per run: {', '.join(f'{x:.2f}' for x in pr['values'])})")
    finally:
        try:
            data["final_sweep"] = [x for p in prefixes for x in api.sweep(p, log)]
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            data["duration_s"] = time.perf_counter() - started
            path = bl.write_result(args.result_name, data)
            log(f"wrote {path} in {data['duration_s']:.0f} s")
    return data


# --- rendering (called by run.py) -------------------------------------------------------------------


def _range(s: dict[str, Any] | None) -> str:
    if not s or s.get("median") is None:
        return "–"
    return f"{s['median']:.2f} ({s['min']:.2f}–{s['max']:.2f})"


def render_section(w: Any) -> None:
    """The table of b00t-graph against the raw script, from ``results/raw.json``; nothing when it is absent."""
    d = bl.read_result("raw")
    if not d or not d.get("scenarios"):
        return
    st = d["settings"]
    m = d.get("machine") or {}
    w("## b00t-graph against a raw Engine API script\n")
    w("`benchmarks/bench_raw.py`: b00t-graph's cold `up` against `benchmarks/raw_up.py`, a script of the "
      "standard library alone (threads and the benchmarks' small Engine API client over the unix socket) that "
      "does the same work on the same engine: it creates the scenario's user-defined bridge network, then, for "
      "every service as soon as its own dependencies are ready (concurrently, like b00t-graph), `POST "
      "/containers/create`, `POST /containers/{id}/start` and `GET /` on the published port every "
      f"{st.get('raw_poll_ms', 5):g} ms until it answers 200 — the same image, command, published port and "
      "network as b00t-graph's datums of that scenario. No datums to read, no state, no labels, no checks of "
      "what already runs: it is the floor for doing this work through the Engine API from Python. (One thing "
      "b00t-graph does that it does not: b00t-graph creates each container while its dependencies come up, so "
      "only the start call sits on the chain; the script creates it once they are ready.)\n")
    quick = " (--quick)" if st.get("quick") else ""
    w(f"Run of {m.get('date', '?')}{quick}, load average {m.get('loadavg', '?')} at the start (1/5/15 min) on "
      f"{m.get('nproc', '?')} cores. Both tools run as a subprocess (each pays an interpreter's start), with "
      "bytecode caches on, alternating within each run (A B, then B A), each from a clean state; timed as in "
      "the compose comparison: from spawning the command until it has exited and the event stream has seen "
      f"every container start. {st['runs']} runs; seconds, medians with min–max; ratio = b00t-graph ÷ raw "
      "script from the medians, then each run's b00t-graph ÷ the same run's raw script.\n")
    w("| scenario | services | depth | critical path | b00t-graph cold `up` | raw API cold `up` | ratio | "
      "per-run ratios |")
    w("|---|---|---|---|---|---|---|---|")
    for name, s in d["scenarios"].items():
        pr = (s.get("paired_b00t_over_raw") or {}).get("values") or []
        w(f"| {name} | {s['n']} | {s['depth']} | {bl.fmt_s(s['critical_path_s'])} | "
          f"{_range((s.get('b00t') or {}).get('cold'))} | {_range((s.get('raw') or {}).get('cold'))} | "
          f"{bl.fmt_x(s.get('ratio_b00t_over_raw'))} | {', '.join(f'{x:.2f}' for x in pr) or '–'} |")
    if d.get("failures"):
        w("\nFailed runs (excluded from the medians): " + "; ".join(f.splitlines()[0] for f in d["failures"]))
    w("")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted; everything made was removed", file=sys.stderr)
        sys.exit(130)
