"""What b00t-graph manages right now, whatever the datums say: containers by label, processes by record.

``scan`` asks the runtimes (``DockerRuntime.inventory``, ``ProcessRuntime.inventory``); ``enrich``
holds each thing found against the current catalogue — its datum (or none: an *orphan*), config
drift, URLs, one readiness probe. The decisions of a safe ``down``, ``stop`` and ``restart`` (what
to keep because a running node outside the target still needs it, which dependents go first) are
pure functions over dependency maps, at the end of this module.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import anyio
import attrs

from .engines import Engines, EngineSpec
from .errors import B00tGraphError, RuntimeUnavailable
from .graph import Graph, Node, compile_graph
from .loader import Catalog
from .runtimes import Runtime, RuntimeSet

_URL = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$", re.IGNORECASE)


@attrs.frozen
class Managed:
    """One thing b00t-graph made: a container (by its labels) or a process (by its record).

    ``datum`` is ``None`` until :func:`enrich` looked; ``orphan`` then says that no datum of the
    current folders has the identity it was made for (deleted or renamed). ``drift``: its config
    hash differs from what the current datum compiles to (``up`` would recreate it).
    """

    node: str
    runtime: str  # docker | swarm | process
    project: str | None
    name: str  # container or service name, or the record's file stem
    ref: str  # container or service id, or pid
    state: str  # running | restarting | exited
    health: str = ""  # ready | unhealthy (why) | starting | exited N | "" (not looked)
    started: float | None = None  # epoch seconds of the current run
    ports: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    config_hash: str | None = None
    drift: bool | None = None
    orphan: bool = False
    datum: str | None = None  # the datum's file, when found
    where: str = ""  # a process record's state directory
    engine: str = ""  # the named Docker engine a container runs on ("": the default one)

    @property
    def running(self) -> bool:
        return self.state in ("running", "restarting")

    def uptime(self, now: float | None = None) -> float | None:
        if self.started is None or not self.running:
            return None
        return max(0.0, (now if now is not None else time.time()) - self.started)

    def as_json(self) -> dict[str, object]:
        data = attrs.asdict(self)
        data["uptime_s"] = None if (up := self.uptime()) is None else round(up, 1)
        return data


@attrs.define
class Inventory:
    """What :func:`scan` found, and the runtimes it could not ask (kind → why)."""

    items: list[Managed] = attrs.field(factory=list)
    unavailable: dict[str, str] = attrs.field(factory=dict)

    def running(self) -> list[Managed]:
        return [m for m in self.items if m.running]

    def orphans(self) -> list[Managed]:
        return [m for m in self.items if m.orphan]


ALL_PROJECTS = "*"


def process_dirs(state_dir: Path, project: str | None) -> list[tuple[str | None, Path]]:
    """State directories holding process records: this one, plus every project's with ``ALL_PROJECTS``."""
    out: list[tuple[str | None, Path]] = [(None if project in (None, ALL_PROJECTS) else project, state_dir)]
    projects = state_dir / "projects"
    if project == ALL_PROJECTS and projects.is_dir():
        out += [(p.name, p) for p in sorted(projects.iterdir()) if (p / "process").is_dir()]
    return out


async def scan(runtimes: RuntimeSet, state_dir: Path, *, project: str | None = ALL_PROJECTS,
               docker: bool = True, engines: Engines | None = None) -> Inventory:
    """Containers with our label (of ``project``, or all with ``ALL_PROJECTS``) on the default engine and
    every named one in ``engines``, and process records.

    An unreachable engine is recorded in ``unavailable`` (``docker``, ``docker@NAME``), never raised: the
    other engines and the processes still count.
    """
    from .runtimes.process import ProcessRuntime

    inv = Inventory()
    for proj, folder in process_dirs(state_dir, project):
        inv.items += await ProcessRuntime(state_dir=folder).inventory(proj)
    if not docker:
        return inv
    named = sorted((engines.named if engines is not None else {}).values(), key=lambda e: e.name)

    async def one(spec: EngineSpec | None, kind: str = "docker") -> None:
        key = kind if spec is None else f"{kind}@{spec.name}"
        try:
            rt = runtimes.for_type(kind) if spec is None else runtimes.for_engine(kind, spec)
            found = await rt.inventory() if rt is not None and hasattr(rt, "inventory") else []
        except RuntimeUnavailable as exc:
            inv.unavailable[key] = str(exc)
        else:
            inv.items.extend(attrs.evolve(m, engine=spec.name) if spec is not None else m
                             for m in found if project == ALL_PROJECTS or m.project == project)

    async with anyio.create_task_group() as tg:
        for spec in [None, *named]:
            tg.start_soon(one, spec)
    if "docker" not in inv.unavailable:  # Swarm services of the default engine (none unless a manager)
        await one(None, "swarm")
    inv.items.sort(key=lambda m: (m.engine, m.node))
    return inv


def docker_runtime(runtimes: RuntimeSet, m: Managed, engines: Engines | None) -> Runtime | None:
    """The docker runtime of the engine a managed container runs on."""
    spec = engines.named.get(m.engine) if engines is not None and m.engine else None
    return runtimes.for_type("docker") if spec is None else runtimes.for_engine("docker", spec)


def compile_known(catalog: Catalog, idents: Iterable[str], environ: Mapping[str, str] | None = None) -> Graph:
    """One graph holding each known identity's closure; a datum that does not compile is left out.

    Tried as one compile first (the cheap, usual case), then one by one, so a single broken datum
    does not hide the others.
    """
    idents = [i for i in dict.fromkeys(idents) if i in catalog.datums]
    if not idents:
        return Graph(nodes={}, targets=())
    try:
        return compile_graph(catalog, idents, environ, reachable=None)
    except B00tGraphError:
        pass
    nodes: dict[str, Node] = {}
    targets: list[str] = []
    for ident in idents:
        try:
            g = compile_graph(catalog, [ident], environ, reachable=None)
        except B00tGraphError:
            continue
        targets.append(ident)
        for k, n in g.nodes.items():
            nodes.setdefault(k, n)
    return Graph(nodes=nodes, targets=tuple(targets))


def _urls(node: Node) -> tuple[str, ...]:
    found = [v for v in node.exports.values() if _URL.match(v)]
    if node.health is not None and node.health.http_url:
        found.append(node.health.http_url)
    return tuple(dict.fromkeys(found))


async def enrich(inv: Inventory, catalog: Catalog, runtimes: RuntimeSet, *,
                 environ: Mapping[str, str] | None = None, probe: bool = True) -> Graph:
    """Hold each item against the catalogue: orphan, drift, URLs, and (``probe``) one readiness try.

    Returns the graph compiled for the known items, for callers that go on to act on them.
    """
    graph = compile_known(catalog, (m.node for m in inv.items), environ)
    out: list[Managed | None] = [None] * len(inv.items)

    async def one(i: int, m: Managed) -> None:
        node = graph.nodes.get(m.node)
        if m.node not in catalog.datums:
            out[i] = attrs.evolve(m, orphan=True, health=m.health or ("running" if m.running else m.health))
            return
        if node is None:  # the datum exists but does not compile now
            out[i] = attrs.evolve(m, datum=catalog.datums[m.node].path, health=m.health or "running")
            return
        ports = m.ports
        if m.runtime == "process" and node.health is not None:
            from .runtimes.ports import probe_ports

            ports = tuple(f"{ip or '127.0.0.1'}:{p}/{proto}" for p, proto, ip in probe_ports(node.health))
        health = m.health
        if m.running and probe and health in ("", "ready"):
            health = await _probe(m, node, runtimes)
        out[i] = attrs.evolve(m, datum=node.spec.path, drift=m.config_hash != node.config_hash,
                              urls=_urls(node), ports=ports, health=health)

    async with anyio.create_task_group() as tg:
        for i, m in enumerate(inv.items):
            tg.start_soon(one, i, m)
    inv.items = [m for m in out if m is not None]
    return graph


async def _probe(m: Managed, node: Node, runtimes: RuntimeSet) -> str:
    """One try of the datum's probes (each bounded to a second): ready, starting or unhealthy (why)."""
    from .readiness import _Http, probe_once

    hc = node.health
    if hc is None or not hc.probes():
        return "ready"
    if m.runtime == "process":
        from .runtimes.process import ProcessRuntime

        host: object = ProcessRuntime(state_dir=Path(m.where)) if m.where else runtimes.for_type("process")
    else:
        host = runtimes.for_node(node)
    quick = attrs.evolve(hc, probe_timeout_ms=min(hc.probe_timeout_ms, 1000))
    try:
        why = await probe_once(node, quick, host, _Http())  # type: ignore[arg-type]  # a runtime is a ProbeHost
    except B00tGraphError as exc:
        why = getattr(exc, "reason", str(exc))
    if why is None:
        return "ready"
    up = m.uptime()
    if up is not None and up * 1000 < max(hc.start_period_ms, 0) + hc.timeout_ms:
        return f"starting ({why})"
    return f"unhealthy ({why})"


# --- pure decisions: safe down, stop, restart -------------------------------------------------------


def ancestors(deps: Mapping[str, Sequence[str]], start: Iterable[str]) -> set[str]:
    """``start`` and everything it depends on, transitively."""
    seen: set[str] = set()
    stack = list(start)
    while stack:
        cur = stack.pop()
        if cur in seen:
            continue
        seen.add(cur)
        stack.extend(deps.get(cur, ()))
    return seen


def descendants(deps: Mapping[str, Sequence[str]], start: str) -> set[str]:
    """Everything that depends on ``start``, transitively (``start`` itself excluded): the ancestors
    of ``start``'s dependents in the reversed graph."""
    rev: dict[str, list[str]] = {}
    for n, ds in deps.items():
        for d in ds:
            rev.setdefault(d, []).append(n)
    return ancestors(rev, rev.get(start, ()))


@attrs.frozen
class DownPlan:
    """What a safe ``down`` stops, what it keeps and why, and what ``--force`` adds (outside dependents)."""

    stop: frozenset[str]
    kept: dict[str, str]  # node → why
    forced: dict[str, str]  # outside node stopped first → why


def plan_down(deps: Mapping[str, Sequence[str]], target: Iterable[str], running_outside: Iterable[str], *,
              force: bool = False) -> DownPlan:
    """Stop ``target`` but keep what a running node outside it still needs (closure), or, with
    ``force``, stop those outside dependents too (they then go first: they depend on the target).
    """
    target = set(target)
    kept: dict[str, str] = {}
    forced: dict[str, str] = {}
    for x in sorted(set(running_outside) - target):
        needs = ancestors(deps, [x]) & target
        if not needs:
            continue
        if force:
            forced[x] = f"depends on {', '.join(sorted(needs))}"
            continue
        for k in sorted(needs):
            if k not in kept:
                direct = k in deps.get(x, ())
                kept[k] = f"{x} (running, not in this down) depends on it" + ("" if direct else " (through others)")
    return DownPlan(stop=frozenset((target - set(kept)) | set(forced)), kept=kept, forced=forced)


def running_dependents(deps: Mapping[str, Sequence[str]], node: str, running: Iterable[str]) -> set[str]:
    """The running nodes that depend on ``node``, transitively."""
    return descendants(deps, node) & set(running)


def uptime_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"
