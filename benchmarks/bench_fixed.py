"""The fixed costs a person feels: start-up, a warm ``up``, ``ps``, a warm ``ensure()``, import time.

    python benchmarks/bench_fixed.py [--runs 7] [--ensure-calls 20] [--result-name fixed]

Measured in one run, beside docker-compose doing the same on the same engine:

* **first request**: from the moment the command is spawned until its first Engine API request
  reaches a forwarding unix socket (``DOCKER_HOST=unix://…/proxy.sock``) that timestamps it and
  passes every byte on to the real engine;
* **warm up / ps**: the whole process's wall time of ``up`` of an already-running 30-container
  stack and of ``ps``, against ``docker-compose up -d`` / ``ps`` of the same running project;
* **ensure()**: in-process, an already-running graph of 20 (``wide``) and of 30 (``layered``),
  median of many calls on asyncio and trio;
* **import time**: ``python -X importtime -c "import b00t_graph.cli"``, total and top offenders.

Results go to ``benchmarks/results/<name>.json``; ``run.py`` renders them into RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import bench_compose as bc
import benchlib as bl
import dockerapi as api

ENGINE_SOCKET = api.SOCKET
FX = "fx"  # scenario names get this prefix: their containers and projects cannot meet bench_compose's


class Proxy:
    """Notes when the first Engine API request of a run arrives (wall clock), through a forwarding socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.first: float | None = None
        self.first_line = ""
        self._lock = threading.Lock()
        self._sock = bl.ForwardingSocket(path, ENGINE_SOCKET, self._seen)

    def _seen(self, line: str, when: float) -> None:
        with self._lock:
            if self.first is None:
                self.first, self.first_line = when, line

    def reset(self) -> None:
        with self._lock:
            self.first, self.first_line = None, ""

    def close(self) -> None:
        self._sock.close()


def _scenario(name: str) -> bc.Scenario:
    sc = bc.SCENARIOS[name]
    return bc.Scenario(FX + name, sc.description, sc.services)


def first_request(proxy: Proxy, argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Seconds from spawning ``argv`` to its first Engine API request through ``proxy``."""
    proxy.reset()
    t0 = time.time()
    proc = subprocess.run(argv, capture_output=True, env=env, timeout=bc.RUN_TIMEOUT)
    if proc.returncode != 0:
        raise bc.RunFailed(f"{' '.join(argv[:4])}… exited {proc.returncode}:\n{bc._tail(proc.stderr)}")
    if proxy.first is None:
        raise bc.RunFailed(f"{' '.join(argv[:4])}… made no Engine API request")
    return proxy.first - t0, proxy.first_line


def user_env(base: dict[str, str] | None, pycache: Path) -> dict[str, str]:
    """The environment a person's shell has: bytecode caches on (a CI or sandbox may switch them off;
    every tool would then compile its sources at every start), kept in our own folder."""
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def wall(argv: list[str], env: dict[str, str] | None = None) -> float:
    took, proc = bc._run(argv, env)
    if proc.returncode != 0:
        raise bc.RunFailed(f"{' '.join(argv[:4])}… exited {proc.returncode}:\n{bc._tail(proc.stderr)}")
    return took


_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def import_profile(runs: int, env: dict[str, str], top: int = 12) -> dict[str, Any]:
    """``-X importtime`` of ``b00t_graph.cli``: total (µs → s), and the modules costing most themselves."""
    totals: list[float] = []
    selfs: dict[str, list[int]] = {}
    cumul: dict[str, list[int]] = {}
    for _ in range(runs):
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import b00t_graph.cli"],
                             capture_output=True, text=True, check=True, env=env).stderr
        total = 0
        for line in err.splitlines():
            m = _IMPORT_LINE.match(line)
            if not m:
                continue
            own, cum, indent, mod = int(m[1]), int(m[2]), m[3], m[4]
            selfs.setdefault(mod, []).append(own)
            cumul.setdefault(mod, []).append(cum)
            if len(indent) == 1:
                total += cum
        totals.append(total / 1e6)
    loaded = sorted(selfs)
    worst = sorted(loaded, key=lambda k: -statistics.median(cumul[k]))
    heavy_roots = ("aiodocker", "aiohttp", "rich", "yaml", "psutil", "mcp", "pydantic", "b00t_graph.export")
    return {
        "total": bl.summary(totals),
        "modules": len(loaded),
        "top_cumulative": [(k, statistics.median(cumul[k]) / 1e6, statistics.median(selfs[k]) / 1e6)
                           for k in worst[:top]],
        "heavy_loaded": sorted({m.split(".")[0] if not m.startswith("b00t_graph") else m
                                for m in loaded if m.startswith(heavy_roots)}),
    }


def python_floor(runs: int, env: dict[str, str]) -> dict[str, Any]:
    """A bare interpreter's start and exit: the part no Python tool can save."""
    return bl.summary([wall([sys.executable, "-c", "pass"], env) for _ in range(runs)])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="runs of each process measure (default 7)")
    ap.add_argument("--ensure-calls", type=int, default=20, help="ensure() calls per graph and backend")
    ap.add_argument("--port-base", type=int, default=47300)
    ap.add_argument("--quick", action="store_true", help="5 runs, 8 ensure() calls")
    ap.add_argument("--result-name", default="fixed")
    args = ap.parse_args(argv)
    runs = 5 if args.quick else max(5, args.runs)
    calls = 8 if args.quick else args.ensure_calls

    def log(msg: str) -> None:
        print(msg, flush=True)

    gens_prefixes = [bc.PREFIX + f"b-{FX}", bc.PREFIX + f"c1000-{FX}"]
    for p in gens_prefixes:
        api.sweep(p, log)
    tmp = Path(tempfile.mkdtemp(prefix=bc.PREFIX + "fx-"))
    import b00t_graph

    data: dict[str, Any] = {"settings": {"runs": runs, "ensure_calls": calls,
                                         "code": str(Path(b00t_graph.__file__).parent.parent)},
                            "machine": bl.machine(), "failures": []}
    layered = bc.generate(_scenario("layered"), tmp, args.port_base, "http")
    wide = bc.generate(_scenario("wide"), tmp, args.port_base + 30, "http")
    b_layered = bc.B00t(layered, tmp / "state-layered")
    b_wide = bc.B00t(wide, tmp / "state-wide")
    (tmp / "compose").mkdir()
    compose = bc.Compose(bc.generate(_scenario("layered"), tmp / "compose", args.port_base + 50, "http"), 1000)
    proxy = Proxy(tmp / "proxy.sock")
    pycache = tmp / "pycache"
    b_env = user_env(b_layered.env, pycache)
    c_env = user_env(None, pycache)
    via_proxy = {**b_env, "DOCKER_HOST": f"unix://{proxy.path}"}
    res: dict[str, list[float]] = {k: [] for k in (
        "b00t_first_up", "b00t_first_ps", "compose_first_up", "compose_first_ps",
        "b00t_warm_up", "compose_warm_up", "b00t_ps", "compose_ps")}
    first_lines: dict[str, str] = {}
    try:
        bc.ensure_image(log)
        log("bringing the stacks up (untimed)")
        b_layered.cold_up()
        b_wide.cold_up()
        compose.cold_up()
        b_up = b_layered._argv("up")
        b_ps = [sys.executable, "-m", "b00t_graph", "ps", "--state-dir", str(b_layered.state_dir)]
        c_up = [*compose.base, "up", "-d"]
        c_ps = [*compose.base, "ps"]
        # one untimed round: the page cache and any per-engine cache are warm for every tool alike
        for cmd in (b_up, b_ps, c_up, c_ps):
            wall(cmd, via_proxy)
        for r in range(runs):
            steps = [("b00t_first_up", b_up), ("b00t_first_ps", b_ps), ("compose_first_up", c_up),
                     ("compose_first_ps", c_ps)]
            for key, cmd in steps[r % 4:] + steps[:r % 4]:
                took, line = first_request(proxy, cmd, via_proxy)
                res[key].append(took)
                first_lines[key] = line
            walls = [("b00t_warm_up", b_up, b_env), ("compose_warm_up", c_up, c_env),
                     ("b00t_ps", b_ps, b_env), ("compose_ps", c_ps, c_env)]
            for key, cmd, env in walls[r % 4:] + walls[:r % 4]:
                res[key].append(wall(cmd, env))
            log(f"run {r + 1}/{runs}: " + ", ".join(f"{k} {v[-1] * 1e3:.0f} ms" for k, v in res.items()))
        data["process"] = {k: bl.summary(v) for k, v in res.items()}
        data["first_request_line"] = first_lines
        data["python_floor"] = python_floor(runs, c_env)
        ens: dict[str, Any] = {}
        for label, tool in (("wide20", b_wide), ("layered30", b_layered)):
            for backend in ("asyncio", "trio"):
                tool.ensure(backend, 1)  # the first call imports the runtimes: not timed
                lat = tool.ensure(backend, calls)
                ens[f"{label}_{backend}"] = bl.summary(lat)
                log(f"ensure() {label} on {backend}: median {statistics.median(lat) * 1e3:.1f} ms")
        data["ensure"] = ens
        data["imports"] = import_profile(runs, b_env)
        log(f"import b00t_graph.cli: {data['imports']['total']['median'] * 1e3:.0f} ms; heavy modules loaded: "
            f"{', '.join(data['imports']['heavy_loaded']) or 'none'}")
    except bc.RunFailed as exc:
        data["failures"].append(str(exc))
        log(f"FAILED: {exc}")
    finally:
        proxy.close()
        for tool in (b_layered, b_wide):
            try:
                tool.down()
            except bc.RunFailed as exc:
                log(f"cleanup: {exc}")
        try:
            compose.down()
        except bc.RunFailed as exc:
            log(f"cleanup: {exc}")
        for p in gens_prefixes:
            api.sweep(p, log)
    bl.write_result(args.result_name, data)
    return data


# --- rendering (called by run.py) -------------------------------------------------------------------

TARGETS = {"first_request": 0.15, "warm_up": 0.2, "ensure_wide20": 0.040}


def _ms(s: dict[str, Any] | None) -> str:
    if not s or s.get("median") is None:
        return "–"
    return f"{s['median'] * 1e3:.0f} ({s['min'] * 1e3:.0f}–{s['max'] * 1e3:.0f})"


def _x(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    r = bl.ratio((a or {}).get("median"), (b or {}).get("median"))
    return "–" if r is None else f"{r:.2f}×"


def render_section(w: Any, targets: list[tuple[str, str, bool | None, str]]) -> None:
    """The fixed costs, before (main when the change was made) and after, each run with its own compose."""
    runs = [(label, bl.read_result(name)) for label, name in (("before", "fixed-before"), ("after", "fixed"))]
    runs = [(label, d) for label, d in runs if d and d.get("process")]
    if not runs:
        return
    w("## Fixed costs a person feels\n")
    w("`benchmarks/bench_fixed.py`: a 30-container stack (`layered`) already running, for b00t-graph and as the "
      "same compose project; each command's whole process, bytecode caches on (as in a person's shell). "
      "*First request*: from spawning the command to its first Engine API request arriving at a forwarding "
      "socket (`DOCKER_HOST=unix://…`) that timestamps it. Milliseconds, medians with min–max; ratio = "
      "b00t-graph ÷ docker-compose in the same run. *before* is the code before this work, *after* the "
      "current code; each with its own compose runs (the machine's load differs between the two).\n")
    w("| measure | " + " | ".join(f"{label}: b00t-graph | {label}: compose | {label}: ratio"
                                      for label, _ in runs) + " |")
    w("|---|" + "---|---|---|" * len(runs))
    rows = [("first request, `up`", "b00t_first_up", "compose_first_up"),
            ("first request, `ps`", "b00t_first_ps", "compose_first_ps"),
            ("warm `up` (whole process)", "b00t_warm_up", "compose_warm_up"),
            ("`ps` (whole process)", "b00t_ps", "compose_ps")]
    for label, bk, ck in rows:
        cells = []
        for _, d in runs:
            p = d["process"]
            cells.append(f"{_ms(p.get(bk))} | {_ms(p.get(ck))} | {_x(p.get(bk), p.get(ck))}")
        w(f"| {label} | " + " | ".join(cells) + " |")
    w("| `python -c pass` (the floor) | " + " | ".join(f"{_ms(d.get('python_floor'))} | | " for _, d in runs) + " |")
    w("")
    w("In-process `ensure()` of the running graph (ms, median of "
      + ", ".join(f"{d['settings']['ensure_calls']} calls {label}" for label, d in runs) + "):\n")
    w("| graph | backend | " + " | ".join(label for label, _ in runs) + " |")
    w("|---|---|" + "---|" * len(runs))
    for g, gl in (("wide20", "20 independent"), ("layered30", "30 in 4 layers")):
        for backend in ("asyncio", "trio"):
            w(f"| {gl} | {backend} | "
              + " | ".join(_ms((d.get("ensure") or {}).get(f"{g}_{backend}")) for _, d in runs) + " |")
    w("")
    w("`python -X importtime -c \"import b00t_graph.cli\"`: total and the costliest imports (cumulative ms):\n")
    for label, d in runs:
        imp = d.get("imports") or {}
        top = ", ".join(f"`{m}` {c * 1e3:.0f}" for m, c, _ in (imp.get("top_cumulative") or [])[:8])
        w(f"- **{label}**: {_ms(imp.get('total'))} ms over {imp.get('modules', '?')} modules; heavy ones loaded: "
          f"{', '.join(imp.get('heavy_loaded') or []) or 'none'}. Top: {top}")
    w("")
    label, d = runs[-1]
    p = d["process"]
    first = (p.get("b00t_first_up") or {}).get("median")
    warm = (p.get("b00t_warm_up") or {}).get("median")
    ens = ((d.get("ensure") or {}).get("wide20_asyncio") or {}).get("median")
    floor = (d.get("python_floor") or {}).get("median")
    busy = (f"a shared, overloaded machine: load {d['machine'].get('loadavg', '?')} at the start, a bare "
            f"`python -c pass` took {floor * 1e3:.0f} ms (CPython 3.11 usually starts in 10–20 ms); "
            "compare the ratios to compose"
            if floor else "see the ratios to compose")
    if first is not None:
        targets.append(("process start → first engine request ≤ 0.15 s", f"{first:.3f} s ({label})",
                        first <= TARGETS["first_request"], "" if first <= TARGETS["first_request"] else busy))
    if warm is not None:
        targets.append(("warm `up` of a running 30-container stack ≤ 0.2 s", f"{warm:.3f} s "
                        f"({_x(p.get('b00t_warm_up'), p.get('compose_warm_up'))} compose)",
                        warm <= TARGETS["warm_up"], "" if warm <= TARGETS["warm_up"] else busy))
    if ens is not None:
        targets.append(("`ensure()` of a running 20-node graph ≤ 40 ms", f"{ens * 1e3:.0f} ms",
                        ens <= TARGETS["ensure_wide20"], "" if ens <= TARGETS["ensure_wide20"] else busy))


if __name__ == "__main__":
    main()
    sys.exit(0)
