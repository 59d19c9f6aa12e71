"""Day-to-day operations over what runs: ``ps``, a safe ``down``, ``stop``, ``restart``, orphans.

Each looks first at what b00t-graph manages now (:mod:`b00t_graph.inventory`), compiles the
closures of the running nodes whose datums are known (so a node *outside* the target that still
depends on it is seen), decides with the pure functions of the inventory module, and acts through
the :class:`~b00t_graph.engine.Engine`. The CLI and :mod:`b00t_graph.api` call these.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from .engine import Engine, RunResult
from .engines import Engines, load_engines
from .errors import B00tGraphError, InputError
from .events import Reporter
from .graph import Graph, Node, compile_graph, placed_on
from .inventory import (
    ALL_PROJECTS,
    DownPlan,
    Inventory,
    Managed,
    compile_known,
    docker_runtime,
    enrich,
    plan_down,
    running_dependents,
    scan,
)
from .loader import Catalog
from .model import DOCKER_RUNTIMES
from .reachability import runtime_reachable


@attrs.define
class DownOutcome:
    """A safe ``down``: the engine's result and what was kept (and why) or forced."""

    result: RunResult
    plan: DownPlan


@attrs.define
class StopOutcome:
    node: str
    result: RunResult
    dependents: list[str]  # running dependents stopped first


@attrs.define
class RestartOutcome:
    """``restart``: the node and the dependents restarted with it (in start order), the ones re-probed."""

    node: str
    restarted: list[str]
    reprobed: list[str]
    down: RunResult
    up: RunResult | None

    @property
    def ok(self) -> bool:
        return not self.down.failures and self.up is not None and not self.up.failures and not self.up.skipped


@attrs.define
class Removed:
    items: list[Managed]
    failures: dict[str, str] = attrs.field(factory=dict)


def _merge(*graphs: Graph) -> Graph:
    nodes: dict[str, Node] = {}
    for g in graphs:
        for k, n in g.nodes.items():
            nodes.setdefault(k, n)
    return Graph(nodes=nodes, targets=graphs[0].targets if graphs else ())


def _one_node(catalog: Catalog, node: str, verb: str, use: Mapping[str, str] | None,
              environ: Mapping[str, str] | None) -> Graph:
    graph = compile_graph(catalog, [node], environ, use=use, reachable=runtime_reachable)
    ident = graph.targets[0]
    n = graph.nodes[ident]
    if n.runtime is None or n.runtime in ("presence", "probe"):
        raise InputError(f"{ident}: a {n.type} runs nothing of its own to {verb}"
                         + ("; name one of its members" if n.spec.members or n.spec.optional else ""))
    return graph


async def _running_known(engine: Engine, catalog: Catalog, state_dir: Path, project: str | None) -> list[str]:
    inv = await scan(engine.runtimes, state_dir, project=project, engines=_engines(catalog))
    return [m.node for m in inv.running() if m.node in catalog.datums]


async def ps(catalog: Catalog, state_dir: Path, *, project: str | None = ALL_PROJECTS, probe: bool = True,
             environ: Mapping[str, str] | None = None) -> Inventory:
    """Everything b00t-graph manages here (containers of every project, process records), held
    against the current datums: orphans, drift, URLs, health."""
    async with Engine(state_dir=state_dir) as engine:
        inv = await scan(engine.runtimes, state_dir, project=project, engines=_engines(catalog))
        await enrich(inv, catalog, engine.runtimes, environ=environ, probe=probe)
    return inv


async def down(catalog: Catalog, graph: Graph, state_dir: Path, *, force: bool = False,
               remove_volumes: bool = False, reporter: Reporter | None = None,
               project: str | None = None) -> DownOutcome:
    """``down TARGET`` that keeps what a running node outside the target still depends on;
    ``force`` stops those outside dependents first instead."""
    async with Engine(reporter=reporter, state_dir=state_dir, project=project) as engine:
        inv = await scan(engine.runtimes, state_dir, project=project, engines=_engines(catalog))
        graph = where_found(graph, inv)
        outside = [m.node for m in inv.running() if m.node in catalog.datums and m.node not in graph.nodes]
        full = _merge(graph, compile_known(catalog, outside)) if outside else graph
        plan = plan_down(full.deps(), graph.nodes, outside, force=force)
        res = await engine.down(full, remove_volumes=remove_volumes, only=set(plan.stop))
    return DownOutcome(res, plan)


async def stop(catalog: Catalog, node: str, state_dir: Path, *, reporter: Reporter | None = None,
               use: Mapping[str, str] | None = None, project: str | None = None,
               environ: Mapping[str, str] | None = None) -> StopOutcome:
    """Stop exactly ``node`` and, first, the running nodes that depend on it."""
    graph = _one_node(catalog, node, "stop", use, environ)
    ident = graph.targets[0]
    async with Engine(reporter=reporter, state_dir=state_dir, project=project) as engine:
        running = await _running_known(engine, catalog, state_dir, project)
        full = _merge(graph, compile_known(catalog, [i for i in running if i not in graph.nodes], environ))
        deps = running_dependents(full.deps(), ident, running)
        res = await engine.stop(full, {ident, *deps})
    order = [i for i in reversed(list(full.nodes)) if i in deps]
    return StopOutcome(ident, res, order)


async def restart(catalog: Catalog, node: str, state_dir: Path, *, cascade: bool = False,
                  reporter: Reporter | None = None, use: Mapping[str, str] | None = None,
                  project: str | None = None, environ: Mapping[str, str] | None = None) -> RestartOutcome:
    """Stop ``node``, start it, wait until it is ready; then the running dependents that declare
    ``[b00t] restart_dependents = true`` (all of them with ``cascade``) are restarted in dependency
    order, and the others probed again."""
    graph = _one_node(catalog, node, "restart", use, environ)
    ident = graph.targets[0]
    async with Engine(reporter=reporter, state_dir=state_dir, project=project) as engine:
        running = await _running_known(engine, catalog, state_dir, project)
        known = compile_known(catalog, [i for i in running if i not in graph.nodes], environ)
        deps = running_dependents(_merge(graph, known).deps(), ident, running)
        again = {d for d in deps if cascade or catalog.datums[d].extra.get("restart_dependents") is True}
        try:
            full = compile_graph(catalog, [ident, *sorted(deps)], environ, use=use, reachable=runtime_reachable)
        except InputError:  # a dependent that does not compile now: restart what does
            full = _merge(graph, compile_known(catalog, sorted(again), environ))
            deps = {d for d in deps if d in full.nodes}
            again &= deps
        down_res, up_res = await engine.restart(full, {ident, *again})
    order = [i for i in full.nodes if i == ident or i in again]
    if up_res is not None:
        order.sort(key=lambda i: (up_res.timings[i].started is None, up_res.timings[i].started or 0.0))
    return RestartOutcome(ident, order, sorted(deps - again), down_res, up_res)


def where_found(graph: Graph, inv: Inventory) -> Graph:
    """Docker nodes found running as Swarm services (``up --on swarm``), and not as containers, are
    taken down there: ``down`` needs no ``--on swarm`` to find them."""
    kinds: dict[str, set[str]] = {}
    for m in inv.items:
        kinds.setdefault(m.node, set()).add(m.runtime)
    swarm = [i for i, n in graph.nodes.items() if n.runtime == "docker" and kinds.get(i) == {"swarm"}]
    return placed_on(graph, "swarm", swarm) if swarm else graph


def _engines(catalog: Catalog) -> Engines:
    """The named engines configured beside the catalogue's folders (and the user's), for ps and down."""
    return load_engines([s.path for s in catalog.sources])


async def remove(items: list[Managed], state_dir: Path, engines: Engines | None = None) -> Removed:
    """Stop and remove managed things with no datum to go by (orphans): containers by id, processes by record."""
    from .runtimes.process import ProcessRuntime

    out = Removed([])
    async with Engine(state_dir=state_dir) as engine:
        for m in items:
            try:
                if m.runtime in DOCKER_RUNTIMES:
                    rt = (docker_runtime(engine.runtimes, m, engines) if m.runtime == "docker"
                          else engine.runtimes.for_type(m.runtime))
                    if rt is not None:
                        await rt.remove_managed(m.ref)  # type: ignore[attr-defined]  # DockerRuntime
                else:
                    await ProcessRuntime(state_dir=Path(m.where) if m.where else state_dir).remove_record(m.node)
            except B00tGraphError as exc:
                out.failures[m.node] = str(exc)
                continue
            out.items.append(m)
    return out


def _matches(node: str, patterns: Sequence[str]) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(node, p) for p in patterns)


async def remove_orphans(catalog: Catalog, state_dir: Path, *, project: str | None = None,
                         patterns: Sequence[str] = ()) -> Removed:
    """``down --orphans``: what b00t-graph made (in the project) for datums no current folder has
    (deleted, renamed); only node names matching ``patterns`` (fnmatch) when given."""
    async with Engine(state_dir=state_dir) as engine:
        inv = await scan(engine.runtimes, state_dir, project=project, engines=_engines(catalog))
    return await remove([m for m in inv.items if m.node not in catalog.datums and _matches(m.node, patterns)],
                        state_dir, _engines(catalog))


async def down_all(catalog: Catalog, state_dir: Path, *, project: str | None = None,
                   remove_volumes: bool = False, reporter: Reporter | None = None, patterns: Sequence[str] = ()
                   ) -> tuple[RunResult | None, Removed, Inventory]:
    """``down --all``: everything b00t-graph manages (in the project; matching ``patterns`` when given):
    known nodes dependents first, then the orphans."""
    async with Engine(reporter=reporter, state_dir=state_dir) as engine:
        inv = await scan(engine.runtimes, state_dir, project=project, engines=_engines(catalog))
        inv.items = [m for m in inv.items if _matches(m.node, patterns)]
        known = [m.node for m in inv.items if m.node in catalog.datums]
        graph = compile_known(catalog, known)
        res = await engine.down(graph, remove_volumes=remove_volumes, only=set(known)) if graph.nodes else None
    left = [m for m in inv.items if m.node not in (graph.nodes if graph.nodes else {})]
    return res, await remove(left, state_dir, _engines(catalog)), inv
