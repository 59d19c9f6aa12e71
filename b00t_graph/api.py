"""Embedding: ``await ensure("grok-guru.mcp")`` from any asyncio or trio program.

Silent by default; raises from :mod:`b00t_graph.errors` on failure and
returns the resolved environment the caller needs: an :class:`Env`, a plain
``dict[str, str]`` that also carries, in ``.mcp``, how to launch each mcp
target's server.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from .engine import Engine, RunResult
from .errors import UpFailed
from .events import Reporter
from .graph import Graph, compile_graph
from .loader import Catalog, datum_dirs, load_catalog
from .locks import default_state_dir
from .mcpconfig import LaunchSpec, launch_specs
from .projects import check_project, project_state_dir
from .reachability import runtime_reachable

if TYPE_CHECKING:
    from .inventory import Inventory
    from .ops import RestartOutcome, StopOutcome

PathLike = str | os.PathLike[str]


class Env(dict[str, str]):
    """What ``ensure()`` returns: the targets' environment (a ``dict[str, str]``, usable as one everywhere).

    ``mcp`` maps each mcp target (or mcp member of a target stack) to its resolved
    :class:`~b00t_graph.mcpconfig.LaunchSpec`: ``command``/``args``/``env`` for a stdio
    server, ``url`` for an httpstream one; ``spec.client_entry()`` is its ``mcpServers`` entry.
    Empty when no target is an MCP server.
    """

    mcp: dict[str, LaunchSpec]

    def __init__(self, env: Mapping[str, str] | None = None, mcp: Mapping[str, LaunchSpec] | None = None) -> None:
        super().__init__(env or {})
        self.mcp = dict(mcp or {})


def load_graph(targets: Sequence[str], datums: PathLike | Sequence[PathLike] | None = None,
               environ: Mapping[str, str] | None = None, *, use: Mapping[str, str] | None = None,
               offline: bool = False, engine: Mapping[str, str] | None = None) -> Graph:
    """Find the datums (``--datums``, ``$_B00T_Path``, ``./_b00t_``, packaged) and compile the targets.

    ``use`` fills capability slots by name (``{"embeddings": "openai-embeddings"}``), as ``--use``;
    ``offline`` chooses capability providers without asking whether their runtime is reachable;
    ``engine`` moves docker nodes to named engines (``{"qdrant": "gpu"}``), as ``--engine``.
    """
    dirs: Sequence[PathLike] = () if datums is None else (
        [datums] if isinstance(datums, (str, os.PathLike)) else list(datums))
    catalog = load_catalog(datum_dirs(dirs, environ))
    return compile_graph(catalog, targets, environ, use=use, reachable=None if offline else runtime_reachable,
                         engine_of=engine)


def _env(graph: Graph, transport: str | None = None) -> Env:
    env: dict[str, str] = {}
    for t in graph.targets:
        env.update(graph.env_of(t))
    return Env(env, launch_specs(graph, transport, strict=transport is not None))


async def ensure(*targets: str, datums: PathLike | Sequence[PathLike] | None = None,
                 environ: Mapping[str, str] | None = None, state_dir: Path | None = None,
                 reporter: Reporter | None = None, no_recreate: bool = False,
                 use: Mapping[str, str] | None = None, transport: str | None = None,
                 project: str | None = None, engine: Mapping[str, str] | None = None) -> Env:
    """Bring ``targets`` and their dependencies up (what runs is left alone); return their environment.

    The result is a ``dict[str, str]`` (an :class:`Env`) whose ``.mcp`` gives, for each mcp target,
    the resolved launch spec of its server (the entry with the lowest priority, or of ``transport``).
    ``use`` fills capability slots by name, as ``--use SLOT=NAME`` does; ``engine`` places docker
    nodes on named engines, as ``--engine NODE=NAME`` does. ``project`` namespaces
    what is started (``--project``): containers, networks, volumes, process records and locks.
    Raises :class:`~b00t_graph.errors.InputError` for bad datums (and for ``transport`` when a target
    has no such entry) and :class:`~b00t_graph.errors.UpFailed` (carrying each node's error) when a
    node fails.
    """
    graph = load_graph(targets, datums, environ, use=use, engine=engine)
    return await ensure_graph(graph, state_dir=state_dir, reporter=reporter, no_recreate=no_recreate,
                              transport=transport, project=project)


async def ensure_graph(graph: Graph, *, state_dir: Path | None = None, reporter: Reporter | None = None,
                       no_recreate: bool = False, transport: str | None = None, project: str | None = None) -> Env:
    """:func:`ensure` of a graph compiled already (a front-end that checked it first compiles it once)."""
    env = _env(graph, transport)  # a bad transport is bad input: say so before anything starts
    result = await up_graph(graph, state_dir=state_dir, reporter=reporter, no_recreate=no_recreate, project=project)
    if result.failures or result.skipped:
        raise UpFailed(result.failures, result.skipped)
    return env


def _state(state_dir: Path | None, project: str | None) -> Path:
    """The effective state dir: ``<state_dir>/projects/<project>`` in a project."""
    return project_state_dir(state_dir or default_state_dir(), project)


async def up_graph(graph: Graph, *, state_dir: Path | None = None, reporter: Reporter | None = None,
                   no_recreate: bool = False, fail_fast: bool = False, install_missing: bool = False,
                   project: str | None = None, keep_failed: bool = False) -> RunResult:
    project = check_project(project)
    async with Engine(reporter=reporter, state_dir=_state(state_dir, project), project=project,
                      no_recreate=no_recreate, fail_fast=fail_fast, install_missing=install_missing,
                      keep_failed=keep_failed) as engine:
        return await engine.up(graph)


async def down_graph(graph: Graph, *, state_dir: Path | None = None, reporter: Reporter | None = None,
                     remove_volumes: bool = False, only: set[str] | None = None,
                     project: str | None = None) -> RunResult:
    project = check_project(project)
    async with Engine(reporter=reporter, state_dir=_state(state_dir, project), project=project) as engine:
        return await engine.down(graph, remove_volumes=remove_volumes, only=only)


@asynccontextmanager
async def running(*targets: str, datums: PathLike | Sequence[PathLike] | None = None,
                  environ: Mapping[str, str] | None = None, state_dir: Path | None = None,
                  remove_volumes: bool = False, use: Mapping[str, str] | None = None,
                  project: str | None = None, engine: Mapping[str, str] | None = None) -> AsyncIterator[Env]:
    """Bring ``targets`` up for the body of an ``async with`` and take down, after, what it started.

    For tests and scripts: ``async with running("demo.stack") as env: ...``. Nodes that
    already ran before are left running: they belong to whoever started them.
    """
    project = check_project(project)  # bad input before anything starts
    graph = load_graph(targets, datums, environ, use=use, engine=engine)
    started: set[str] = set(graph.nodes)  # if up is interrupted, sweep all that may have started
    try:
        result = await up_graph(graph, state_dir=state_dir, project=project)
        started = {i for i, t in result.timings.items() if t.action.changes or t.status == "failed"}
        if result.failures or result.skipped or result.cancelled:
            raise UpFailed(result.failures, result.skipped)
        yield _env(graph)
    finally:
        with anyio.CancelScope(shield=True):
            await down_graph(graph, state_dir=state_dir, remove_volumes=remove_volumes, only=started,
                             project=project)


def _catalog(datums: PathLike | Sequence[PathLike] | None, environ: Mapping[str, str] | None) -> Catalog:
    dirs: Sequence[PathLike] = () if datums is None else (
        [datums] if isinstance(datums, (str, os.PathLike)) else list(datums))
    return load_catalog(datum_dirs(dirs, environ))


async def restart(node: str, *, cascade: bool = False, datums: PathLike | Sequence[PathLike] | None = None,
                  environ: Mapping[str, str] | None = None, state_dir: Path | None = None,
                  reporter: Reporter | None = None, use: Mapping[str, str] | None = None,
                  project: str | None = None) -> RestartOutcome:
    """Stop ``node``, start it and wait until it is ready; then restart, in dependency order, its running
    dependents that declare ``[b00t] restart_dependents = true`` (all of them with ``cascade``) and probe
    the others again. Raises :class:`~b00t_graph.errors.UpFailed` when something does not come back.
    ``project``: the node of that project (``--project``), else the shared one."""
    from .ops import restart as do_restart

    project = check_project(project)
    out = await do_restart(_catalog(datums, environ), node, _state(state_dir, project), cascade=cascade,
                           reporter=reporter, use=use, project=project, environ=environ)
    if out.up is None:
        raise UpFailed(out.down.failures, {})
    if out.up.failures or out.up.skipped:
        raise UpFailed(out.up.failures, out.up.skipped)
    return out


async def stop(node: str, *, datums: PathLike | Sequence[PathLike] | None = None,
               environ: Mapping[str, str] | None = None, state_dir: Path | None = None,
               reporter: Reporter | None = None, use: Mapping[str, str] | None = None,
               project: str | None = None) -> StopOutcome:
    """Stop exactly ``node`` and, first, the running nodes that depend on it (of ``project`` when given)."""
    from .ops import stop as do_stop

    project = check_project(project)
    return await do_stop(_catalog(datums, environ), node, _state(state_dir, project), reporter=reporter, use=use,
                         project=project, environ=environ)


async def ps(*, datums: PathLike | Sequence[PathLike] | None = None, environ: Mapping[str, str] | None = None,
             state_dir: Path | None = None, probe: bool = True, project: str | None = None) -> Inventory:
    """Everything b00t-graph manages on this engine and in this state directory, with orphans and drift:
    of every project, or only of ``project`` when given."""
    from .ops import ps as do_ps

    if project is None:
        return await do_ps(_catalog(datums, environ), state_dir or default_state_dir(), probe=probe,
                           environ=environ)
    project = check_project(project)
    return await do_ps(_catalog(datums, environ), _state(state_dir, project), probe=probe, environ=environ,
                       project=project)
