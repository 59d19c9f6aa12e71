"""The engine's own cost, with the null runtime: how it grows with the graph, and how close to the limit it gets.

Three measures, each on asyncio and trio:

* **overhead** — ``Engine(runtimes={"*": NullRuntime()}).up(graph)`` on generated DAGs
  (chain, wide, layered random) of 100 / 1,000 / 10,000 nodes whose nodes start
  instantly: the whole time is the engine's (plan, scheduling, bookkeeping,
  critical path). Reported as the total and per node.
* **limit** — the same with nodes that each sleep a known time: wall ÷ critical path
  (the heaviest chain of sleeps, which nothing can beat). Target ≤ 1.05.
* **plan** — 1,000 generated datum files: load (TOML → model) and compile (closure,
  ``${VAR}`` resolution, hashes), in-process and through ``b00t-graph plan --offline --json``.

Graphs for the first two are built from ``Datum``/``Node`` objects directly, so the
loader is measured only by the third. Results go to ``results/scheduler.json`` and
the plot to ``scheduler_scaling.png``.

    python benchmarks/bench_scheduler.py [--quick] [--repeat N] [--no-plot]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

import benchlib as bl
from b00t_graph.engine import Engine
from b00t_graph.graph import Graph, Node, compile_graph
from b00t_graph.loader import Source, load_catalog
from b00t_graph.model import Datum
from b00t_graph.runtimes.null import NullRuntime

BACKENDS = ("asyncio", "trio")
SHAPES = ("chain", "wide", "layered")
SIZES = (100, 1_000, 10_000)
PNG = bl.HERE / "scheduler_scaling.png"


def make_dag(shape: str, n: int, seed: int = 1) -> bl.Dag:
    if shape == "chain":
        return bl.chain(n)
    if shape == "wide":
        return bl.wide(n)
    return bl.layered_random(n, seed=seed)


def build_graph(dag: bl.Dag) -> Graph:
    """A compiled-looking graph of ``process`` nodes (routed to the ``"*"`` runtime), no loader involved."""
    nodes: dict[str, Node] = {}
    for name, deps in dag.items():
        spec = Datum(name=name, type="process", path=f"<generated>/{name}.process.toml",
                     depends_on=tuple(f"{d}.process" for d in deps), command=("true",))
        nodes[spec.id] = Node(spec=spec, deps=spec.depends_on, env={}, exports={}, health=None,
                              config_hash=name)
    return Graph(nodes=nodes, targets=tuple(nodes))


async def _up(graph: Graph, runtime: NullRuntime) -> tuple[float, Any]:
    engine = Engine(runtimes={"*": runtime})
    t = time.perf_counter()
    res = await engine.up(graph)
    wall = time.perf_counter() - t
    await engine.aclose()
    return wall, res


def run_up(graph: Graph, backend: str, delays: Mapping[str, float] | None = None) -> tuple[float, Any]:
    """One ``up`` on a fresh engine and runtime; the event loop's own start-up is not timed."""
    runtime = NullRuntime(delays)
    gc.collect()
    wall, res = anyio.run(_up, graph, runtime, backend=backend)
    if not res.ok or len(runtime.order) != len(graph.nodes):
        raise SystemExit(f"null-runtime up did not bring every node up ({backend}): "
                         f"{len(res.failures)} failed, {len(res.skipped)} skipped, cancelled={res.cancelled}")
    return wall, res


# --- floors: what anyio alone costs, for context ------------------------------------------------


async def _noop() -> None:
    return None


def engine_tasks_per_node(runtime: object) -> int:
    """Tasks the engine spawns per node to bring it up: a run task, plus a prepare task when the runtime
    prepares (``Engine.up``: ``getattr(rt, "prepares", True)``). The null runtime does not prepare."""
    return 1 + int(bool(getattr(runtime, "prepares", True)))


async def _spawn_floor(tasks: int) -> float:
    t = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(tasks):
            tg.start_soon(_noop)
    return time.perf_counter() - t


def spawn_floor(n: int, backend: str, per_node: int) -> float:
    """Seconds to spawn and finish ``per_node`` no-op anyio tasks per node in one task group: the same task
    count the engine spawns for ``n`` nodes, so the floor and the engine are compared like for like."""
    gc.collect()
    result: float = anyio.run(_spawn_floor, n * per_node, backend=backend)
    return result


async def _ideal(dag: Mapping[str, tuple[str, ...]], delays: Mapping[str, float]) -> float:
    """The least any anyio scheduler can do: one task per node, waiting on its dependencies' events, then sleeping."""
    done = {k: anyio.Event() for k in dag}

    async def node(k: str) -> None:
        for d in dag[k]:
            await done[d].wait()
        await anyio.sleep(delays[k])
        done[k].set()

    t = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for k in dag:
            tg.start_soon(node, k)
    return time.perf_counter() - t


def ideal_wall(dag: Mapping[str, tuple[str, ...]], delays: Mapping[str, float], backend: str) -> float:
    gc.collect()
    result: float = anyio.run(_ideal, dag, delays, backend=backend)
    return result


# --- measures ------------------------------------------------------------------------------------


def measure_overhead(sizes: tuple[int, ...], repeat: int, log: Any) -> list[dict[str, Any]]:
    rows = []
    per_node = engine_tasks_per_node(NullRuntime())
    for n in sizes:
        for shape in SHAPES:
            dag = make_dag(shape, n)
            t = time.perf_counter()
            graph = build_graph(dag)
            build = time.perf_counter() - t
            for backend in BACKENDS:
                reps = repeat if n < 10_000 else max(1, min(repeat, 3))
                walls = [run_up(graph, backend)[0] for _ in range(reps)]
                med = statistics.median(walls)
                floor = statistics.median(spawn_floor(n, backend, per_node) for _ in range(reps))
                row = {"shape": shape, "n": n, "edges": sum(len(d) for d in dag.values()), "depth": bl.depth(dag),
                       "backend": backend, "build_s": build, "up": bl.summary(walls),
                       "per_node_us": med / n * 1e6, "spawn_floor_us": floor / n * 1e6,
                       "floor_tasks_per_node": per_node}
                rows.append(row)
                log(f"overhead {shape:8} n={n:6} {backend:7} up {med * 1e3:9.1f} ms  "
                    f"{row['per_node_us']:7.1f} µs/node  (min {min(walls) * 1e3:.1f}, max {max(walls) * 1e3:.1f}; "
                    f"anyio floor {row['spawn_floor_us']:.1f} µs/node)")
    return rows


LIMIT_CASES = (
    # shape, n, delay range (s). Sized so the critical path is 1.3–4.5 s, as a real stack's would be: the
    # ratio is (the engine's fixed cost + its cost per hop) ÷ the path, so tiny delays measure timers, not us.
    ("chain", 100, (0.01, 0.04)),
    ("wide", 1_000, (0.2, 2.0)),
    ("layered", 1_000, (0.02, 0.1)),
    ("layered", 10_000, (0.02, 0.1)),
)


def measure_limit(repeat: int, quick: bool, log: Any) -> list[dict[str, Any]]:
    rows = []
    for shape, n, (lo, hi) in LIMIT_CASES:
        if quick and n > 1_000:
            continue
        dag = make_dag(shape, n, seed=2)
        rnd = random.Random(3)
        delays = {f"{k}.process": rnd.uniform(lo, hi) for k in dag}
        pdag = {f"{k}.process": tuple(f"{d}.process" for d in v) for k, v in dag.items()}
        cp, path = bl.longest_path(pdag, delays)
        graph = build_graph(dag)
        for backend in BACKENDS:
            reps = repeat if n < 10_000 else 1
            walls = []
            engine_cp = []
            for _ in range(reps):
                wall, res = run_up(graph, backend, delays)
                walls.append(wall)
                engine_cp.append(len(res.critical))
            med = statistics.median(walls)
            ideal = statistics.median(ideal_wall(pdag, delays, backend) for _ in range(reps))
            row = {"shape": shape, "n": n, "depth": bl.depth(dag), "backend": backend,
                   "delay_range_s": [lo, hi], "critical_path_s": cp, "critical_path_nodes": len(path),
                   "wall": bl.summary(walls), "ratio": med / cp, "ratio_max": max(walls) / cp,
                   "ideal_wall_s": ideal, "ideal_ratio": ideal / cp,
                   "engine_reported_critical_hops": engine_cp[0]}
            rows.append(row)
            log(f"limit    {shape:8} n={n:6} {backend:7} wall {med:7.3f} s  critical path {cp:7.3f} s  "
                f"ratio {med / cp:.3f} (worst {max(walls) / cp:.3f}; bare anyio {ideal / cp:.3f})")
    return rows


def write_datums(folder: Path, dag: bl.Dag) -> str:
    """Process datums with ``${VAR}`` references to their dependencies' exports, plus one stack over all."""
    for name, deps in dag.items():
        var = name.upper()
        lines = ["[b00t]", f'name = "{name}"', 'type = "process"',
                 f"depends_on = [{', '.join(repr(d + '.process').replace(chr(39), chr(34)) for d in deps)}]",
                 'command = "true"',
                 f'args = ["--port", "${{{var}_PORT:-8000}}"'
                 + (f', "--upstream", "${{{deps[0].upper()}_URL}}"' if deps else "") + "]",
                 "", "[b00t.health_check]", f'http_url = "http://127.0.0.1:${{{var}_PORT:-8000}}/health"',
                 "", "[b00t.env]", f'{var}_URL = "http://127.0.0.1:${{{var}_PORT:-8000}}"', ""]
        (folder / f"{name}.process.toml").write_text("\n".join(lines))
    members = ", ".join(f'"{k}.process"' for k in dag)
    (folder / "all.stack.toml").write_text(f'[b00t]\nname = "all"\ntype = "stack"\nmembers = [{members}]\n')
    return "all.stack"


def measure_plan(n: int, repeat: int, log: Any) -> dict[str, Any]:
    dag = bl.layered_random(n, seed=4)
    with tempfile.TemporaryDirectory(prefix="b00tbench-plan-") as tmp:
        folder = Path(tmp)
        target = write_datums(folder, dag)
        loads, compiles = [], []
        for _ in range(repeat):
            gc.collect()
            t0 = time.perf_counter()
            cat = load_catalog([Source(folder, "--datums")])
            t1 = time.perf_counter()
            graph = compile_graph(cat, [target], environ={})
            t2 = time.perf_counter()
            if cat.problems or len(graph.nodes) != n + 1:
                raise SystemExit(f"plan bench: generated datums do not load cleanly: {cat.problems[:3]}")
            loads.append(t1 - t0)
            compiles.append(t2 - t1)
        clis = []
        env = {**os.environ, "B00T_GRAPH_STATE_DIR": str(folder / "state")}
        for _ in range(max(1, min(repeat, 3))):
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "b00t_graph", "plan", "--datums", str(folder), "--offline",
                                   "--json", target], capture_output=True, env=env)
            clis.append(time.perf_counter() - t)
            if proc.returncode != 0:
                raise SystemExit(f"b00t-graph plan failed: {proc.stderr.decode()[-2000:]}")
        # The CLI's fixed cost: interpreter start and imports, on a one-datum folder.
        (one := folder / "one").mkdir()
        (one / "x.process.toml").write_text('[b00t]\nname = "x"\ntype = "process"\ncommand = "true"\n')
        bases = []
        for _ in range(max(1, min(repeat, 3))):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "b00t_graph", "plan", "--datums", str(one), "--offline",
                            "--json", "x.process"], capture_output=True, env=env, check=True)
            bases.append(time.perf_counter() - t)
    row = {"n": n, "load": bl.summary(loads), "compile": bl.summary(compiles),
           "total_median_s": statistics.median(loads) + statistics.median(compiles),
           "cli_plan_offline": bl.summary(clis), "cli_plan_one_datum": bl.summary(bases)}
    log(f"plan     {n} datums: load {row['load']['median'] * 1e3:.0f} ms, compile "
        f"{row['compile']['median'] * 1e3:.0f} ms; CLI plan --offline {row['cli_plan_offline']['median']:.2f} s "
        f"(one datum: {row['cli_plan_one_datum']['median']:.2f} s)")
    return row


# --- plot ----------------------------------------------------------------------------------------


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {"chain": "tab:blue", "wide": "tab:orange", "layered": "tab:green"}
    styles = {"asyncio": "-o", "trio": "--s"}
    for shape in SHAPES:
        for backend in BACKENDS:
            pts = sorted((r["n"], r["per_node_us"], r["up"]["median"]) for r in rows
                         if r["shape"] == shape and r["backend"] == backend)
            if not pts:
                continue
            xs = [p[0] for p in pts]
            ax1.plot(xs, [p[1] for p in pts], styles[backend], color=colors[shape], label=f"{shape}, {backend}")
            ax2.plot(xs, [p[2] for p in pts], styles[backend], color=colors[shape], label=f"{shape}, {backend}")
    ax1.axhline(100, color="red", lw=0.8, ls=":", label="target 100 µs/node")
    ax1.set(xscale="log", xlabel="nodes", ylabel="µs per node", title="Engine overhead per node (null runtime)")
    ax1.set_ylim(bottom=0)
    ax2.set(xscale="log", yscale="log", xlabel="nodes", ylabel="seconds", title="Total `up` time (null runtime)")
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 repeat, skip the 10,000-node limit case")
    ap.add_argument("--repeat", type=int, default=None, help="repeats per measure (default 5, quick 1)")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 5)

    def log(msg: str) -> None:
        print(msg, flush=True)

    started = time.perf_counter()
    overhead = measure_overhead(SIZES, repeat, log)
    limit = measure_limit(max(1, min(repeat, 3)), args.quick, log)
    plan = measure_plan(1_000, repeat, log)
    data = {"settings": {"repeat": repeat, "quick": args.quick, "sizes": SIZES, "backends": BACKENDS,
                         "limit_cases": LIMIT_CASES},
            "overhead": overhead, "limit": limit, "plan": plan,
            "duration_s": time.perf_counter() - started}
    if not args.no_plot:
        plot(overhead, PNG)
        data["plot"] = str(PNG.relative_to(bl.HERE))
    path = bl.write_result("scheduler", data)
    log(f"wrote {path} in {data['duration_s']:.0f} s")
    return data


if __name__ == "__main__":
    main()
