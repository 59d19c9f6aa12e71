"""Compile the datums reachable from some targets into a DAG of resolved nodes.

Compiling is where bad input is caught before anything starts: missing
dependencies (with suggestions), cycles (printed), unresolved ``${VAR}``
references and runtime-specific checks (e.g. unsupported ``docker_args``).

Environment rule (what wins when a name comes from several places):
a datum's own ``[b00t.env]`` > its dependencies' exports (nearer ones over
farther ones) > the process environment. The process environment is only a
fallback for ``${VAR}`` lookups; it is not exported to services as a whole.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs

from .envsubst import SubstitutionError, substitute
from .errors import CycleError, DatumError, EnvError, MissingDependencyError, Problem
from .loader import Catalog, require
from .model import Datum, HealthCheck
from .runtimes import check_nodes


@attrs.frozen
class Node:
    """A datum with every ``${VAR}`` resolved and its place in the graph.

    ``spec`` is the datum with every string that reaches a runtime substituted;
    ``env`` is what the service sees (its dependencies' exports plus its own);
    ``exports`` is its own resolved ``[b00t.env]``.
    """

    spec: Datum
    deps: tuple[str, ...]
    env: dict[str, str]
    exports: dict[str, str]
    health: HealthCheck | None
    config_hash: str

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


@attrs.frozen
class Graph:
    """Nodes in a topological order (every node after its dependencies)."""

    nodes: dict[str, Node]
    targets: tuple[str, ...]

    def deps(self) -> dict[str, tuple[str, ...]]:
        return {i: n.deps for i, n in self.nodes.items()}

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


def closure(catalog: Catalog, targets: Sequence[str]) -> list[str]:
    """Identities reachable from the targets, checked for missing datums and cycles, in topological order."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    # Iterative DFS (deep chains must not hit the recursion limit); the stack holds
    # (identity, iterator over its edges) and doubles as the current path for cycle reports.
    stack: list[tuple[str, Iterator[str]]] = []

    def enter(ident: str, wanted_by: str | None) -> None:
        require(catalog, [ident])
        datum = catalog.datums.get(ident)
        if datum is None:
            raise MissingDependencyError(ident, wanted_by, catalog.suggest(ident))
        state[ident] = 1
        stack.append((ident, iter(datum.edges)))

    for target in targets:
        if state.get(target) == 2:
            continue
        enter(target, None)
        while stack:
            ident, edges = stack[-1]
            nxt = next(edges, None)
            if nxt is None:
                stack.pop()
                state[ident] = 2
                order.append(ident)
                continue
            st = state.get(nxt)
            if st == 1:
                path = [i for i, _ in stack]
                raise CycleError([*path[path.index(nxt):], nxt])
            if st is None:
                enter(nxt, ident)
    return order


def compile_graph(catalog: Catalog, targets: Sequence[str], environ: Mapping[str, str] | None = None) -> Graph:
    """Resolve targets (``grok`` or ``grok.stack``) and compile their closure into a :class:`Graph`."""
    env0 = dict(os.environ if environ is None else environ)
    resolved_targets = tuple(dict.fromkeys(catalog.resolve_target(t) for t in targets))
    order = closure(catalog, resolved_targets)
    nodes: dict[str, Node] = {}
    problems: list[Problem] = []
    for ident in order:
        datum = catalog.datums[ident]
        try:
            nodes[ident] = _resolve(datum, nodes, env0)
        except EnvError as exc:
            problems.extend(exc.problems)
            # Keep going with the unresolved text in place, so dependents report their own problems
            # (not a cascade of "not set" for what this one failed to export).
            nodes[ident] = _resolve(datum, nodes, env0, strict=False)
    if problems:
        raise EnvError(problems)
    problems.extend(check_nodes(nodes.values()))
    if problems:
        raise DatumError(problems)
    return Graph(nodes=nodes, targets=resolved_targets)


def _ancestors(datum: Datum, nodes: Mapping[str, Node]) -> list[str]:
    """Transitive dependencies, farther ones first so nearer exports override them."""
    seen: dict[str, None] = {}

    def visit(ident: str) -> None:
        for dep in nodes[ident].deps:
            if dep not in seen:
                visit(dep)
        seen.setdefault(ident, None)

    for dep in datum.edges:
        visit(dep)
    # visit() is post-order: dependencies of a dependency come before it.
    return list(seen)


def _resolve(datum: Datum, nodes: Mapping[str, Node], env0: Mapping[str, str], strict: bool = True) -> Node:
    inherited: dict[str, str] = {}
    ancestors = _ancestors(datum, nodes)
    for dep in ancestors:
        inherited.update(nodes[dep].exports)
    # Direct dependencies win over farther ones; taken in dependency order so that when one direct
    # dependency depends on another, its (overriding) export wins whatever the depends_on order.
    direct = set(datum.edges)
    for dep in ancestors:
        if dep in direct:
            inherited.update(nodes[dep].exports)

    problems: list[Problem] = []
    own: dict[str, str] = {}

    def sub(text: str, key: str, scope: Mapping[str, str]) -> str:
        def look(name: str) -> str | None:
            for layer in (scope, inherited, env0):
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
    for key, value in datum.env.items():
        # A key may use the ones before it; a self-reference reads the inherited value (renaming).
        own[key] = sub(value, f"{table}.{key}", {k: v for k, v in own.items() if k != key})
    visible = {**inherited, **own}

    def s(text: str | None, key: str) -> str | None:
        return None if text is None else sub(text, f"b00t.{key}", visible)

    def many(items: Sequence[str] | None, key: str) -> tuple[str, ...] | None:
        if items is None:
            return None
        return tuple(sub(x, f"b00t.{key}[{i}]", visible) for i, x in enumerate(items))

    hc = datum.health_check
    if hc is not None:
        hc = attrs.evolve(hc, http_url=s(hc.http_url, "health_check.http_url"),
                          tcp=s(hc.tcp, "health_check.tcp"),
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
        tcp = [r for r in datum.requirements if r.kind == "tcp_port" and r.port]
        if tcp:
            req = tcp[0]
            health = HealthCheck(tcp=f"{req.host or '127.0.0.1'}:{req.port}")
    return Node(spec=spec, deps=datum.edges, env=visible, exports=own, health=health,
                config_hash=config_hash(spec, visible))


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
        }.items() if v is not None},
    }
    blob = json.dumps(payload, sort_keys=True, default=list).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
