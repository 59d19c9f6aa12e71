"""``up``, ``down``, ``status``: bringing targets up and down, and looking at them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from .. import render, textsafe
from ..engine import Engine, RunResult
from ..errors import (
    EXIT_RUNTIME,
)
from ..progress import make_reporter
from ._common import (
    _deny_privileged,
    _graph,
    _interrupted,
    _interruptible,
    _run,
    _say,
    _state,
    datums_opt,
    err,
    out,
    state_opt,
    use_opt,
)


@click.command()
@click.argument("targets", nargs=-1, required=True)
@datums_opt
@state_opt
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--no-recreate", is_flag=True, help="Leave running nodes whose configuration changed as they are.")
@click.option("--fail-fast", is_flag=True, help="Cancel everything at the first failure.")
@click.option("--timings-json", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write per-node timings and the critical path to this file.")
@click.option("--env", "print_env", is_flag=True, help="Print the targets' resolved environment (KEY=value).")
@click.option("--install-missing", is_flag=True,
              help="When a presence check fails, run the datum's install command, then check again.")
@click.option("--deny-privileged", is_flag=True, help="Refuse (exit 2) if a node runs privileged (see `plan`).")
@use_opt
def up(targets: tuple[str, ...], datums: tuple[str, ...], state_dir: Path | None, quiet: bool, no_recreate: bool,
       fail_fast: bool, timings_json: Path | None, print_env: bool, install_missing: bool, deny_privileged: bool,
       use: tuple[str, ...]) -> None:
    """Bring targets up: every node starts as soon as its own dependencies are ready."""
    graph = _graph(datums, targets, use)
    if deny_privileged:
        _deny_privileged(graph)
    if not quiet:
        for problem in graph.notes:
            _say(f"note: {problem}")
    reporter = make_reporter(graph, quiet=quiet, console=err)

    async def go() -> tuple[RunResult | None, bool]:
        async with Engine(reporter=reporter, state_dir=_state(state_dir),
                          no_recreate=no_recreate, fail_fast=fail_fast, install_missing=install_missing) as engine:
            with reporter:
                return await _interruptible(lambda: engine.up(graph))

    res, interrupted = _run(go)
    if res is None:  # cancelled before the run returned its result
        _interrupted(targets, datums, state_dir)
    if timings_json:
        timings_json.write_text(json.dumps(render.timings_json(res), indent=2))
    if not quiet:
        err.print(render.timings_view(res))
        for ident, why in res.notes.items():
            _say(f"note: {ident}: {why}")
    if print_env and not res.failures:
        env: dict[str, str] = {}
        for t in graph.targets:
            env.update(graph.env_of(t))
        for k, v in sorted(env.items()):
            click.echo(textsafe.escape(f"{k}={v}"))
    if interrupted or (res.cancelled and not res.failures):  # --fail-fast cancels too: that is a failure
        _interrupted(targets, datums, state_dir)
    if res.failures or res.skipped:
        _say(f"error: {len(res.failures)} node(s) failed, {len(res.skipped)} skipped\n" + render.failures_text(res))
        sys.exit(EXIT_RUNTIME)




@click.command()
@click.argument("targets", nargs=-1)
@datums_opt
@state_opt
@click.option("-q", "--quiet", is_flag=True)
@click.option("--volumes", is_flag=True, help="Also remove named volumes b00t-graph created.")
@click.option("--force", is_flag=True, help="Also stop, first, running nodes outside the targets that depend on them.")
@click.option("--orphans", is_flag=True, help="Remove what b00t-graph runs for datums that are gone or renamed "
              "(TARGETS, if given, are patterns of node names: 'old-*').")
@click.option("--all", "everything", is_flag=True, help="Remove everything b00t-graph manages here "
              "(TARGETS, if given, are patterns of node names).")
@use_opt
def down(targets: tuple[str, ...], datums: tuple[str, ...], state_dir: Path | None, quiet: bool,
         volumes: bool, force: bool, orphans: bool, everything: bool, use: tuple[str, ...]) -> None:
    """Stop and remove what b00t-graph started, dependents first; never what it did not create.

    A node that a running node outside the targets still depends on is kept (and said so);
    --force stops that dependent first instead.

    \b
    Examples: b00t-graph down grok.stack
              b00t-graph down --orphans
              b00t-graph down --all 'grok-*'
    """
    from .ops import down_managed, down_targets

    if orphans or everything:
        if orphans and everything:
            raise click.UsageError("give --orphans or --all, not both")
        down_managed(datums, state_dir, quiet, volumes, everything, targets)
        return
    if not targets:
        raise click.UsageError("name a target, or give --orphans or --all")
    down_targets(targets, datums, state_dir, quiet, volumes, use, force)


@click.command()
@click.argument("targets", nargs=-1)
@datums_opt
@state_opt
@click.option("--json", "as_json", is_flag=True)
@use_opt
def status(targets: tuple[str, ...], datums: tuple[str, ...], state_dir: Path | None, as_json: bool,
           use: tuple[str, ...]) -> None:
    """Each node's state, changing nothing; without a target, what `ps` shows."""
    if not targets:
        from .ops import ps_view

        ps_view(datums, state_dir, as_json)
        return
    graph = _graph(datums, targets, use)
    unavailable: dict[str, str] = {}

    async def go() -> tuple[Any, Any]:
        async with Engine(state_dir=_state(state_dir)) as engine:
            return await engine.plan(graph, unavailable)

    actions, observed = _run(go)
    if as_json:
        click.echo(render.to_json({i: {"state": (observed[i].state.value if i in observed else None),
                                       "detail": observed[i].detail if i in observed else "",
                                       "action": actions[i].name.lower()} for i in graph.nodes}))
    else:
        out.print(render.status_view(graph, observed, actions, unavailable))
    if unavailable:
        for why in unavailable.values():
            _say(f"error: {why}")
        sys.exit(EXIT_RUNTIME)


# --- mcp-config ----------------------------------------------------------------------------------
