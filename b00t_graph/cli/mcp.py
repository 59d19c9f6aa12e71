"""``mcp-config`` and ``mcp serve``: b00t-graph for MCP clients and agents."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import click

if TYPE_CHECKING:
    from ..engine import RunResult

from ..errors import (
    EXIT_INTERRUPTED,
    EXIT_RUNTIME,
    B00tGraphError,
    InputError,
)
from ._common import (
    _backend,
    _fail,
    _graph,
    _group_value,
    _interrupted,
    _interruptible,
    _run,
    _state,
    complete_targets,
    datums_opt,
    err,
    project_opt,
    state_opt,
)


@click.command(name="mcp-config")
@click.argument("targets", nargs=-1, required=True, shell_complete=complete_targets)
@datums_opt
@state_opt
@project_opt
@click.option("--up", "bring_up", is_flag=True, help="First bring the servers' dependencies (and lifecycle "
              "servers) up, as `up` does.")
@click.option("--transport", type=click.Choice(["stdio", "httpstream"]), default=None,
              help="Use this transport's entry instead of the one with the lowest priority.")
@click.option("-q", "--quiet", is_flag=True, help="With --up: no progress on stderr.")
def mcp_config(targets: tuple[str, ...], datums: tuple[str, ...], state_dir: Path | None, project: str | None,
               bring_up: bool,
               transport: str | None, quiet: bool) -> None:
    """Print the `mcpServers` JSON MCP clients read, for mcp targets (or the mcp members of a stack).

    \b
    stdio servers: {"command": ..., "args": [...], "env": {...}}, env resolved with the
    dependencies' exports; httpstream servers: {"type": "http", "url": ...}.

    \b
    Example:
      b00t-graph mcp-config grok-guru --up > .mcp.json
      b00t-graph mcp-config grok-guru --transport httpstream
    """
    from .. import render
    from ..engine import Engine
    from ..mcpconfig import launch_specs, mcp_servers
    from ..progress import make_reporter

    graph = _graph(datums, targets)
    try:
        specs = launch_specs(graph, transport)
    except B00tGraphError as exc:
        _fail(exc)
    if bring_up:
        reporter = make_reporter(graph, quiet=quiet, console=err)

        async def go() -> tuple[RunResult | None, bool]:
            async with Engine(reporter=reporter, state_dir=_state(state_dir, project), project=project) as engine:
                with reporter:
                    return await _interruptible(lambda: engine.up(graph))

        res, interrupted = _run(go)
        if res is None or interrupted or (res.cancelled and not res.failures):
            _interrupted(targets, datums, state_dir, project)
        if res.failures or res.skipped:
            click.echo(f"error: {len(res.failures)} node(s) failed, {len(res.skipped)} skipped\n"
                       + render.failures_text(res), err=True)
            sys.exit(EXIT_RUNTIME)
    click.echo(json.dumps(mcp_servers(specs), indent=2))


# --- validate / ls -------------------------------------------------------------------------------


@click.group(name="mcp")
def mcp_group() -> None:
    """Offer b00t-graph to agents over the Model Context Protocol.

    \b
    Example:
      b00t-graph mcp serve --allow 'grok*'
    """


@mcp_group.command(name="serve")
@datums_opt
@state_opt
@click.option("--http", "http", metavar="[HOST:]PORT", default=None,
              help="Serve streamable HTTP on HOST:PORT (host default 127.0.0.1) instead of stdio.")
@click.option("--read-only", is_flag=True,
              help="Only list, plan, graph, status and logs; refuse ensure, restart, down.")
@click.option("--allow", multiple=True, metavar="PATTERN",
              help="Targets (fnmatch, repeatable) that may be started or stopped; default: all.")
@click.option("--down-on-exit", is_flag=True,
              help="When told to stop (stdin closed, SIGTERM, SIGINT), take down what this server started.")
def mcp_serve(datums: tuple[str, ...], state_dir: Path | None, http: str | None, read_only: bool,
              allow: tuple[str, ...], down_on_exit: bool) -> None:
    """Serve the MCP tools list_datums, plan, graph, ensure, status, logs, restart, down (stdio by default).

    \b
    Example:
      b00t-graph mcp serve -d ./_b00t_ --allow 'grok*' --down-on-exit
      b00t-graph mcp serve --http 127.0.0.1:8765 --read-only
    """
    from ..mcpserver import ServeOptions, parse_http, serve

    if _group_value(click.get_current_context(), "project"):
        _fail(InputError("mcp serve does not take a project (-p/$B00T_PROJECT) yet: it serves the shared namespace"))

    try:
        where = parse_http(http) if http is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--http") from None
    opts = ServeOptions(datums=datums, state_dir=state_dir, read_only=read_only, allow=allow,
                        down_on_exit=down_on_exit, http=where)
    try:  # uvicorn, behind --http, runs on asyncio only
        anyio.run(serve, opts, backend="asyncio" if where else _backend())
    except B00tGraphError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
