"""Compile the datums reachable from some targets into a DAG of resolved nodes.

Compiling is where bad input is caught before anything starts: missing
dependencies (with suggestions), cycles (printed), unresolved ``${VAR}``
references and runtime-specific checks (e.g. unsupported ``docker_args``).

Also decided here, all pure: which provider fills each capability need
(:mod:`.capabilities`), which optional stack members are left out, the env a
stack sets for its members, required env names, and host ports claimed twice.

Environment rule (what wins when a name comes from several places):
a datum's own ``[b00t.env]`` (then its ``[b00t.env.defaults]``) > the env of
the stacks it is a member of (the nearest stack first) > its dependencies'
exports (nearer ones over farther ones) > the process environment. The
process environment is only a fallback for ``${VAR}`` lookups; it is not
exported to services as a whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs

from .capabilities import Choice, Reachable, Resolver, Unresolved
from .engines import ENGINE_HOST_VAR, LOCAL_HOST, Engines, EngineSpec, load_engines
from .envsubst import SubstitutionError, references, substitute
from .errors import (
    CapabilityError,
    CycleError,
    DatumError,
    EnvError,
    InputError,
    MissingDependencies,
    MissingDependencyError,
    PortConflictError,
    Problem,
)
from .loader import Catalog
from .model import DOCKER_RUNTIMES, Datum, HealthCheck
from .runtimes import check_nodes


@attrs.frozen
class Node:
    """A datum with every ``${VAR}`` resolved and its place in the graph.

    ``spec`` is the datum with every string that reaches a runtime substituted;
    ``env`` is what the service sees (its dependencies' exports, the env of the stacks it
    belongs to, then its own); ``exports`` is its own resolved ``[b00t.env]``.
    ``deps`` are the nodes it waits for (chosen capability providers included); the ``soft``
    ones among them are optional stack members whose failure does not hold it back.
    """

    spec: Datum
    deps: tuple[str, ...]
    env: dict[str, str]
    exports: dict[str, str]
    health: HealthCheck | None
    config_hash: str
    soft: tuple[str, ...] = ()
    choices: tuple[Choice, ...] = ()
    #: names of ``env`` set by a stack the node is a member of → that stack
    from_stack: dict[str, str] = attrs.field(factory=dict)
    #: the named Docker engine a docker node runs on; ``None``: the default engine
    engine: EngineSpec | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def runtime(self) -> str | None:
        """The runtime kind that acts for this node (``docker``, ``process``, …) or ``None``."""
        return self.spec.runtime

    @property
    def runtime_key(self) -> str | None:
        """Which runtime instance acts for it: the kind, with ``@engine`` for a named Docker engine."""
        if self.engine is not None and self.runtime is not None:
            return f"{self.runtime}@{self.engine.name}"
        return self.runtime


@attrs.frozen
class Graph:
    """Nodes in a topological order (every node after its dependencies).

    ``notes`` are what compiling decided on the user's behalf and wants them to know (an optional
    stack member left out, a member that overrides its stack's env); they never stop a run.
    """

    nodes: dict[str, Node]
    targets: tuple[str, ...]
    notes: tuple[Problem, ...] = ()

    def deps(self) -> dict[str, tuple[str, ...]]:
        return {i: n.deps for i, n in self.nodes.items()}

    def soft(self) -> dict[str, tuple[str, ...]]:
        """node → the dependencies it does not need to be ready (optional stack members)."""
        return {i: n.soft for i, n in self.nodes.items() if n.soft}

    def required(self) -> set[str]:
        """Nodes the targets need: reachable from them without passing an optional member's edge.

        A failure outside this set (an optional member, or something only it needs) is not a failure
        of the run.
        """
        seen: set[str] = set()
        stack = list(self.targets)
        while stack:
            cur = stack.pop()
            if cur in seen or cur not in self.nodes:
                continue
            seen.add(cur)
            node = self.nodes[cur]
            stack.extend(d for d in node.deps if d not in node.soft)
        return seen

    def choices(self) -> list[Choice]:
        return [c for n in self.nodes.values() for c in n.choices]

    def dependents(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {i: [] for i in self.nodes}
        for i, n in self.nodes.items():
            for d in n.deps:
                out[d].append(i)
        return out

    def waves(self) -> list[list[str]]:
        """Levels by longest distance from a root; shown by ``plan`` only (``up`` does not wait on levels)."""
        level: dict[str, int] = {}
        for i, n in self.nodes.items():
            level[i] = 1 + max((level[d] for d in n.deps), default=-1)
        out: list[list[str]] = [[] for _ in range(1 + max(level.values(), default=-1))]
        for i, lv in level.items():
            out[lv].append(i)
        return out

    def env_of(self, ident: str) -> dict[str, str]:
        """The resolved environment a caller of ``ident`` needs: its dependencies' exports plus its own."""
        return dict(self.nodes[ident].env)


# --- the closure: which datums, which edges ---------------------------------------------------------


@attrs.define
class _Walk:
    """What walking the catalogue from the targets found: an order, each datum's edges, notes, errors."""

    order: list[str] = attrs.field(factory=list)
    edges: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    soft: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    choices: dict[str, tuple[Choice, ...]] = attrs.field(factory=dict)
    notes: list[Problem] = attrs.field(factory=list)
    broken: list[Problem] = attrs.field(factory=list)
    missing: list[MissingDependencyError] = attrs.field(factory=list)
    unresolved: list[Unresolved] = attrs.field(factory=list)

    def raise_errors(self) -> None:
        """Every problem of one kind at once: broken files, then missing datums, then unfilled needs."""
        if self.broken:
            raise DatumError(self.broken)
        if len(self.missing) == 1:
            raise self.missing[0]
        if self.missing:
            raise MissingDependencies(self.missing)
        if self.unresolved:
            raise CapabilityError([str(u) for u in self.unresolved])


def suggest(catalog: Catalog, ref: str) -> list[str]:
    """Typed datums for an untyped name (``node`` → ``node.cli``), else close names."""
    if "." not in ref:
        typed = sorted(i for i in catalog.datums if i.rpartition(".")[0] == ref)
        if typed:
            return typed[:3]
    return catalog.suggest(ref)


def _edge_keys(datum: Datum) -> dict[str, str]:
    """Where each edge of a datum is written, for messages (``b00t.depends_on[2]``)."""
    keys: dict[str, str] = dict(datum.edge_keys)
    for field, refs in (("depends_on", datum.depends_on), ("members", datum.members),
                        ("stack.components", datum.optional)):
        for i, ref in enumerate(refs):
            keys.setdefault(ref, f"b00t.{field}[{i}]" if field != "stack.components" else f"b00t.{field}")
    return keys


def _edges(catalog: Catalog, datum: Datum, resolver: Resolver | None, walk: _Walk) -> tuple[str, ...]:
    """A datum's edges in this graph: its written ones (missing optional members dropped with a note)
    and the providers chosen for its needs."""
    hard_refs = set(datum.depends_on) | set(datum.members)
    keys = _edge_keys(datum)
    out: dict[str, None] = {}
    soft: list[str] = []
    for ref in datum.edges:
        optional = ref not in hard_refs
        if ref not in catalog.datums and optional:
            if ref in catalog.broken:
                first = catalog.broken[ref][0]
                why = f"it does not load ({first})"
            else:
                close = suggest(catalog, ref)
                why = "no datum provides it" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else "")
            walk.notes.append(Problem(datum.path, keys[ref], f"optional member {ref!r} left out: {why}"))
            continue
        if ref not in catalog.datums and ref not in catalog.broken:
            walk.missing.append(MissingDependencyError(ref, datum.id, suggest(catalog, ref),
                                                       path=datum.path, key=keys[ref]))
            continue
        out[ref] = None
        if optional:
            soft.append(ref)
    chosen: list[Choice] = []
    if resolver is not None:
        for need in datum.needs:
            got = resolver.resolve(datum, need)
            if isinstance(got, Unresolved):
                walk.unresolved.append(got)
                continue
            chosen.append(got)
            out[got.chosen] = None
            if got.chosen in soft:
                soft.remove(got.chosen)
    walk.soft[datum.id] = tuple(soft)
    walk.choices[datum.id] = tuple(chosen)
    return tuple(out)


def _walk(catalog: Catalog, targets: Sequence[str], resolver: Resolver | None) -> _Walk:
    walk = _Walk()
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    # Iterative DFS (deep chains must not hit the recursion limit); the stack holds
    # (identity, iterator over its edges) and doubles as the current path for cycle reports.
    stack: list[tuple[str, Iterator[str]]] = []

    def enter(ident: str) -> None:
        if ident in catalog.broken:
            walk.broken.extend(catalog.broken[ident])
            state[ident] = 2  # reported; nothing to walk through
            return
        datum = catalog.datums[ident]
        state[ident] = 1
        edges = walk.edges[ident] = _edges(catalog, datum, resolver, walk)
        stack.append((ident, iter(edges)))

    for target in targets:
        if state.get(target) == 2:
            continue
        if target not in catalog.datums and target not in catalog.broken:
            walk.missing.append(MissingDependencyError(target, None, suggest(catalog, target)))
            continue
        enter(target)
        while stack:
            ident, edges = stack[-1]
            nxt = next(edges, None)
            if nxt is None:
                stack.pop()
                state[ident] = 2
                walk.order.append(ident)
                continue
            st = state.get(nxt)
            if st == 1:
                path = [i for i, _ in stack]
                raise CycleError([*path[path.index(nxt):], nxt])
            if st is None:
                enter(nxt)
    return walk


def closure(catalog: Catalog, targets: Sequence[str], resolver: Resolver | None = None) -> list[str]:
    """Identities reachable from the targets, checked for missing datums and cycles, in topological order."""
    walk = _walk(catalog, targets, resolver)
    walk.raise_errors()
    return walk.order


# --- compiling ---------------------------------------------------------------------------------------


def compile_graph(catalog: Catalog, targets: Sequence[str], environ: Mapping[str, str] | None = None, *,
                  use: Mapping[str, str] | None = None, reachable: Reachable | None = None,
                  engines: Engines | None = None, engine_of: Mapping[str, str] | None = None) -> Graph:
    """Resolve targets (``grok`` or ``grok.stack``) and compile their closure into a :class:`Graph`.

    ``use`` (``--use SLOT=NAME``) chooses capability providers; ``reachable`` says whether a
    runtime can be reached (``None``: do not ask, as ``plan --offline``), which decides whether a
    provider is usable. ``engines`` are the named Docker engines (default: those configured beside
    the catalogue's folders, :func:`~b00t_graph.engines.load_engines`); ``engine_of``
    (``--engine NODE=NAME``) moves a docker node to another engine than its datum says.
    """
    env0 = dict(os.environ if environ is None else environ)
    if engines is None:
        engines = load_engines([s.path for s in catalog.sources], env0)
    if reachable is not None:
        reachable = _on_engines(reachable, engines)
    resolved_targets = tuple(dict.fromkeys(catalog.resolve_target(t) for t in targets))
    resolver = Resolver(catalog, env0, reachable, use)
    walk = _walk(catalog, resolved_targets, resolver)
    walk.raise_errors()
    unused = resolver.unused()
    if unused:
        needed = sorted({n.slot for i in walk.order for n in catalog.datums[i].needs})
        raise CapabilityError([f"--use {s}={resolver.use[s]}: no datum of this graph needs a slot {s!r}"
                               + (f" (slots: {', '.join(needed)})" if needed else "") for s in unused])
    order = walk.order
    placed = _place(catalog, order, engines, engine_of or {})
    notes = list(walk.notes)
    stack_env, stack_own = _stack_env(catalog, walk, env0)
    nodes: dict[str, Node] = {}
    problems: list[Problem] = []
    for ident in order:
        datum = catalog.datums[ident]
        ctx = _Context(deps=walk.edges[ident], soft=walk.soft.get(ident, ()), choices=walk.choices.get(ident, ()),
                       stack=stack_env.get(ident, {}), shared=stack_own.get(ident, {}),
                       engine=placed.get(ident),
                       engine_host=(placed[ident] if ident in placed else engines.default).address)
        try:
            nodes[ident] = _resolve(datum, nodes, env0, ctx)
        except EnvError as exc:
            problems.extend(exc.problems)
            # Keep going with the unresolved text in place, so dependents report their own problems
            # (not a cascade of "not set" for what this one failed to export).
            nodes[ident] = _resolve(datum, nodes, env0, ctx, strict=False)
        notes.extend(_stack_conflicts(catalog, datum, nodes[ident], ctx.stack))
    if problems:
        raise EnvError(problems)
    problems.extend(check_nodes(nodes.values()))
    if problems:
        raise DatumError(problems)
    conflicts = port_conflicts(nodes.values())
    if conflicts:
        raise PortConflictError(conflicts)
    return Graph(nodes=nodes, targets=resolved_targets, notes=tuple(dict.fromkeys(notes)))


def _on_engines(reachable: Reachable, engines: Engines) -> Reachable:
    """``reachable`` that asks a named engine's own address for ``docker@NAME``."""
    from .reachability import engine_reachable

    def check(kind: str) -> str | None:
        runtime, _, name = kind.partition("@")
        try:
            spec = engines.get(name) if name else None
        except ValueError:  # a broken Docker context: compiling reports it where the engine is used
            spec = None
        if spec is None or spec.url is None:
            return reachable(runtime)
        return engine_reachable(spec.url)

    return check


def _place(catalog: Catalog, order: Sequence[str], engines: Engines, engine_of: Mapping[str, str]
           ) -> dict[str, EngineSpec]:
    """The named engine of each docker node not on the default one (``--engine`` over ``[b00t] engine``);
    an unknown engine, or one given to a node that runs no container, is bad input."""
    problems: list[str] = []
    wanted: dict[str, tuple[str, str, str]] = {}  # ident → (engine, path, key)
    for ident in order:
        d = catalog.datums[ident]
        if d.engine is not None:
            wanted[ident] = (d.engine, d.path, "b00t.engine")
    for ref, name in engine_of.items():
        found = catalog.find(ref)
        if found is None:
            matches = [i for i in order if i.rsplit(".", 1)[0] == ref]
            found = matches[0] if len(matches) == 1 else None
        if found is None or found not in order:
            problems.append(f"--engine {ref}={name}: no node {ref!r} in this graph")
        elif catalog.datums[found].runtime != "docker":
            problems.append(f"--engine {ref}={name}: {found} runs no container")
        else:
            wanted[found] = (name, f"--engine {ref}={name}", "")
    out: dict[str, EngineSpec] = {}
    datum_problems: list[Problem] = []
    for ident, (name, path, key) in wanted.items():
        why = engines.problem(name, path, key)
        if why is not None:
            datum_problems.append(why)
            continue
        spec = engines.get(name)
        if spec is not None and spec is not engines.default:
            out[ident] = spec
    if problems:
        raise InputError("; ".join(problems))
    if datum_problems:
        raise DatumError(list(dict.fromkeys(datum_problems)))
    return out


@attrs.frozen
class _Context:
    """What compiling decided about one datum before resolving it."""

    deps: tuple[str, ...]
    soft: tuple[str, ...]
    choices: tuple[Choice, ...]
    #: name → (value, stack identity): env of the stacks the datum is a member of
    stack: dict[str, tuple[str, str]]
    #: a stack's own entries that it sets for its members, already resolved
    shared: dict[str, str] = attrs.field(factory=dict)
    engine: EngineSpec | None = None
    #: ``${B00T_ENGINE_HOST}``: where the node's published ports are reached
    engine_host: str = LOCAL_HOST


# --- stack env -------------------------------------------------------------------------------------


def _reach(edges: Mapping[str, Sequence[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(edges.get(start, ()))
    while todo:
        cur = todo.pop()
        if cur not in seen:
            seen.add(cur)
            todo.extend(edges.get(cur, ()))
    return seen


def _shared(key: str, value: str, exported: set[str]) -> bool:
    """Whether a stack's env entry is for its members, rather than a rename of what a member exports.

    ``POSTGRES_PASSWORD = "${POSTGRES_PASSWORD:-devpassword}"`` is for the members (a self-reference
    with a default is the "let the shell override it" idiom); ``EXTERNAL_API = "${OLLAMA_API_URL}"``
    passes on a member's export and cannot reach the member it comes from.
    """
    try:
        refs = references(value)
    except SubstitutionError:
        return False
    for ref in refs:
        if ref in exported and not (ref == key and re.search(r"\$\{" + re.escape(key) + r":?-", value)):
            return False
    return True


def _stack_env(catalog: Catalog, walk: _Walk, env0: Mapping[str, str]
               ) -> tuple[dict[str, dict[str, tuple[str, str]]], dict[str, dict[str, str]]]:
    """member → the env its stacks set for it (nearest stack wins), each value with the stack it came from;
    and stack → those of its own entries it sets for its members, resolved (the stack exports the same)."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    own_shared: dict[str, dict[str, str]] = {}
    in_graph = set(walk.order)
    for ident in reversed(walk.order):  # a stack before its members, an outer stack before an inner one
        datum = catalog.datums[ident]
        members = [m for m in (*datum.members, *datum.optional) if m in in_graph]
        if not members:
            continue
        exported = {k for d in _reach(walk.edges, ident) for k in (*catalog.datums[d].env,
                                                                    *catalog.datums[d].env_defaults)}
        shared = dict(out.get(ident, {}))
        for key, value in datum.env.items():
            if not _shared(key, value, exported):
                continue
            # Earlier keys of this stack, then its parent stacks' (a self-reference reads those), then the shell.
            scope = {**env0, **{k: v for k, (v, _) in out.get(ident, {}).items()},
                     **{k: v for k, (v, src) in shared.items() if k != key and src == ident}}
            try:
                resolved = substitute(value, scope)
            except SubstitutionError:
                continue  # the stack's own node reports it
            shared[key] = (resolved, ident)
            own_shared.setdefault(ident, {})[key] = resolved
        for m in members:
            out.setdefault(m, {}).update(shared)
    return out, own_shared


def _stack_conflicts(catalog: Catalog, datum: Datum, node: Node, stack: Mapping[str, tuple[str, str]]
                     ) -> list[Problem]:
    """A member that sets, as a literal, a name its stack sets to something else."""
    notes = []
    for key, (value, src) in stack.items():
        raw = datum.env.get(key)
        if raw is None or "$" in raw or node.exports.get(key) == value:
            continue
        owner = catalog.datums[src]
        notes.append(Problem(datum.path, f"{datum.env_table}.{key}",
                             f"{key}={node.exports[key]!r} here, but {src} sets {key}={value!r} for its members "
                             f"({owner.path}: {owner.env_table}.{key}); {datum.id} uses its own value"))
    return notes


# --- one node --------------------------------------------------------------------------------------


def _ancestors(deps: Sequence[str], nodes: Mapping[str, Node]) -> list[str]:
    """Transitive dependencies, farther ones first so nearer exports override them."""
    seen: dict[str, None] = {}

    def visit(ident: str) -> None:
        for dep in nodes[ident].deps:
            if dep not in seen:
                visit(dep)
        seen.setdefault(ident, None)

    for dep in deps:
        visit(dep)
    # visit() is post-order: dependencies of a dependency come before it.
    return list(seen)


def _resolve(datum: Datum, nodes: Mapping[str, Node], env0: Mapping[str, str], ctx: _Context | None = None,
             strict: bool = True) -> Node:
    if ctx is None:
        ctx = _Context(deps=datum.edges, soft=(), choices=(), stack={})
    inherited: dict[str, str] = {}
    ancestors = _ancestors(ctx.deps, nodes)
    for dep in ancestors:
        inherited.update(nodes[dep].exports)
    # Direct dependencies win over farther ones; taken in dependency order so that when one direct
    # dependency depends on another, its (overriding) export wins whatever the depends_on order.
    direct = set(ctx.deps)
    for dep in ancestors:
        if dep in direct:
            inherited.update(nodes[dep].exports)
    from_stack = {k: v for k, (v, _) in ctx.stack.items()}

    problems: list[Problem] = []
    own: dict[str, str] = {}

    def sub(text: str, key: str, scope: Mapping[str, str]) -> str:
        def look(name: str) -> str | None:
            if name == ENGINE_HOST_VAR:
                return ctx.engine_host
            for layer in (scope, from_stack, inherited, env0):
                if name in layer:
                    return layer[name]
            return None

        try:
            return substitute(text, look)
        except SubstitutionError as exc:
            why = str(exc)
            if why.endswith("is not set"):
                why += " (not exported by any dependency, not in the environment)"
            problems.append(Problem(datum.path, key, why))
            return text

    table = datum.env_table
    # [b00t.env.defaults]: exported unless the datum, a dependency, a stack or the shell sets the name.
    for key, value in datum.env_defaults.items():
        if key in datum.env or key in inherited or key in from_stack:
            continue
        own[key] = env0[key] if key in env0 else sub(value, f"b00t.env.defaults.{key}", dict(own))
    for key, value in datum.env.items():
        # A key may use the ones before it; a self-reference reads the inherited value (renaming).
        if key in ctx.shared:  # a stack exports what it gives its members, not a member's value of it
            own[key] = ctx.shared[key]
            continue
        own[key] = sub(value, f"{table}.{key}", {k: v for k, v in own.items() if k != key})
    visible = {**inherited, **from_stack, **own}
    required_key = "env.required"  # b00t's AI datums write the schema as [env] required = [...]
    for name in datum.env_required:
        if name not in visible and name not in env0:
            problems.append(Problem(datum.path, required_key,
                                    f"{name} must be set for {datum.id}: set it in the environment "
                                    "or have a dependency export it"))

    def s(text: str | None, key: str) -> str | None:
        return None if text is None else sub(text, f"b00t.{key}", visible)

    def many(items: Sequence[str] | None, key: str) -> tuple[str, ...] | None:
        if items is None:
            return None
        return tuple(sub(x, f"b00t.{key}[{i}]", visible) for i, x in enumerate(items))

    hc = datum.health_check
    away = ctx.engine is not None and ctx.engine_host not in _LOOPBACK  # a probe of localhost misses it
    if hc is not None:
        http_url, tcp = s(hc.http_url, "health_check.http_url"), s(hc.tcp, "health_check.tcp")
        if away:
            http_url, tcp = _to_host(http_url, ctx.engine_host), _to_host(tcp, ctx.engine_host)
        hc = attrs.evolve(hc, http_url=http_url, tcp=tcp,
                          exec=list(many(hc.exec, "health_check.exec") or []) or None)
    build = datum.build
    if build is not None:
        build = attrs.evolve(build, context=sub(build.context, "b00t.docker.build.context", visible),
                             file=s(build.file, "docker.build.file"),
                             args={k: sub(v, f"b00t.docker.build.args.{k}", visible) for k, v in build.args.items()})
    presence = datum.presence
    if presence is not None:
        presence = attrs.evolve(presence, command=many(presence.command, "presence") or ())
    mcp = tuple(attrs.evolve(m, command=s(m.command, f"mcp.{m.transport}.command"),
                             args=many(m.args, f"mcp.{m.transport}.args") or (),
                             env={k: sub(v, f"b00t.mcp.{m.transport}.env.{k}", visible) for k, v in m.env.items()},
                             url=s(m.url, f"mcp.{m.transport}.url"))
                for m in datum.mcp)
    spec = attrs.evolve(
        datum,
        env=own,
        run_env={k: sub(v, f"b00t.run_env.{k}", visible) for k, v in datum.run_env.items()},
        container_name=s(datum.container_name, "container_name"),
        build=build,
        presence=presence,
        mcp=mcp,
        image=s(datum.image, "image"),
        docker_args=many(datum.docker_args, "docker_args") or (),
        command=many(datum.command, "command"),
        args=many(datum.args, "args") or (),
        cwd=s(datum.cwd, "cwd"),
        ports=many(datum.ports, "ports") or (),
        volumes=many(datum.volumes, "volumes") or (),
        network=s(datum.network, "network"),
        health_check=hc,
    )
    if problems and strict:
        raise EnvError(problems)
    health = hc
    if health is None:
        reqs = [r for r in datum.requirements if r.kind == "tcp_port" and r.port]
        if reqs:
            req = reqs[0]
            host = req.host or "127.0.0.1"
            health = HealthCheck(tcp=f"{ctx.engine_host if away and host in _LOOPBACK else host}:{req.port}")
    return Node(spec=spec, deps=ctx.deps, env=visible, exports=own, health=health,
                config_hash=config_hash(spec, visible), soft=ctx.soft, choices=ctx.choices,
                from_stack={k: src for k, (_, src) in ctx.stack.items() if k not in own}, engine=ctx.engine)


def _to_host(probe: str | None, host: str) -> str | None:
    """A probe address (``http://localhost:8080/x``, ``127.0.0.1:5432``) with a loopback host replaced by ``host``."""
    if not probe:
        return probe
    if "://" in probe:
        parts = urlsplit(probe)
        name = parts.hostname or ""
        if name in _LOOPBACK or f"[{name}]" in _LOOPBACK:
            netloc = parts.netloc.rpartition("@")
            hostport = netloc[2]
            port = f":{parts.port}" if parts.port is not None else ""
            return parts._replace(netloc=f"{netloc[0]}{netloc[1]}{host}{port}").geturl() if hostport else probe
        return probe
    name, sep, port = probe.rpartition(":")
    return f"{host}{sep}{port}" if sep and name in _LOOPBACK else probe


# --- host ports --------------------------------------------------------------------------------------

_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}
_ANY = {"", "0.0.0.0", "::"}


@attrs.frozen
class PortClaim:
    """One host port a node will hold: ``how`` says where it comes from, for messages."""

    node: str
    path: str
    proto: str
    port: int
    ip: str
    how: str
    engine: str = ""


def host_ports(node: Node) -> list[PortClaim]:
    """Host ports a node publishes (docker ``-p``/``ports``) or serves (a process's loopback probe)."""
    spec = node.spec
    out: list[PortClaim] = []
    if node.runtime in DOCKER_RUNTIMES:
        from .runtimes import dockerargs

        try:
            plan = dockerargs.plan(node)
        except DatumError:
            return []  # reported by check_node
        host = plan.config.get("HostConfig", {})
        if host.get("NetworkMode") == "host":
            return []
        for port, binds in host.get("PortBindings", {}).items():
            cport, _, proto = port.partition("/")
            for b in binds:
                hp = b.get("HostPort", "")
                if hp.isdigit():  # "" = any free port; "8000-8010" = any of a range: no fixed claim
                    ip = b.get("HostIp", "")
                    out.append(PortClaim(node.id, spec.path, proto, int(hp), ip,
                                         f"publishes {ip + ':' if ip else ''}{hp}:{cport}/{proto}",
                                         node.engine.name if node.engine else ""))
    elif node.runtime == "process" and node.health is not None:
        hc = node.health
        if hc.tcp:
            host_, _, port_ = hc.tcp.rpartition(":")
            if host_ in _LOOPBACK and port_.isdigit():
                out.append(PortClaim(node.id, spec.path, "tcp", int(port_), "127.0.0.1",
                                     f"serves {hc.tcp} (its tcp probe)"))
        if hc.http_url:
            try:
                url = urlsplit(hc.http_url)
                port = url.port
            except ValueError:
                port = None
            if port is not None and (url.hostname or "") in _LOOPBACK:
                out.append(PortClaim(node.id, spec.path, "tcp", port, "127.0.0.1",
                                     f"serves {hc.http_url} (its http probe)"))
    return out


def placed_on(graph: Graph, where: str | None, only: Iterable[str] | None = None) -> Graph:
    """``up --on swarm``: every docker node of ``graph`` (of ``only``, when given) runs there; ``None``
    leaves each datum's own ``on``.

    The config hash stays: where a service runs is not part of its configuration.
    """
    if where is None:
        return graph
    chosen = set(graph.nodes if only is None else only)
    nodes = {i: attrs.evolve(n, spec=attrs.evolve(n.spec, on=where))
             if n.runtime in DOCKER_RUNTIMES and i in chosen else n
             for i, n in graph.nodes.items()}
    problems = [p for n in nodes.values() if n.runtime != graph.nodes[n.id].runtime for p in check_nodes([n])]
    if problems:
        raise DatumError(problems)
    return attrs.evolve(graph, nodes=nodes)


def _overlap(a: str, b: str) -> bool:
    norm = {"localhost": "127.0.0.1", "[::1]": "::1"}
    a, b = norm.get(a, a), norm.get(b, b)
    return a == b or a in _ANY or b in _ANY


def port_conflicts(nodes: Iterable[Node]) -> list[str]:
    """Every pair of different nodes claiming one host port, as messages naming both datums and files."""
    by_port: dict[tuple[str, int], list[PortClaim]] = {}
    out: list[str] = []
    for node in nodes:
        for claim in host_ports(node):
            for other in by_port.get((claim.proto, claim.port), []):
                if other.node != claim.node and other.engine == claim.engine and _overlap(other.ip, claim.ip):
                    out.append(f"host port {claim.port}/{claim.proto} is claimed by both {other.node} "
                               f"({other.path}: {other.how}) and {claim.node} ({claim.path}: {claim.how}); "
                               "change one of the ports, or leave one of them out of the graph")
                    break
            by_port.setdefault((claim.proto, claim.port), []).append(claim)
    return list(dict.fromkeys(out))


def config_hash(spec: Datum, env: Mapping[str, str]) -> str:
    """A short hash of everything that, when changed, means the running service must be recreated."""
    payload: dict[str, Any] = {
        "type": spec.type,
        "image": spec.image,
        "docker_args": spec.docker_args,
        "command": spec.command,
        "args": spec.args,
        "cwd": spec.cwd,
        "ports": spec.ports,
        "volumes": spec.volumes,
        "network": spec.network,
        "resources": attrs.asdict(spec.resources) if spec.resources else None,
        "env": sorted(env.items()),
        # Fields added by the dialects, only when set: a hash of a datum written as before stays the same.
        **{k: v for k, v in {
            "kind": spec.kind, "container_name": spec.container_name, "restart": spec.restart,
            "build": attrs.asdict(spec.build) if spec.build else None,
            "run_env": sorted(spec.run_env.items()) or None,
            "swarm": attrs.asdict(spec.swarm) if spec.swarm else None,
        }.items() if v is not None},
    }
    blob = json.dumps(payload, sort_keys=True, default=list).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
