"""``up``, ``down``, ``status``: bringing targets up and down, and looking at them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from .. import render
from ..engine import Engine, RunResult
from ..errors import (
    EXIT_RUNTIME,
)
from ..locks import default_state_dir
from ..progress import make_reporter
from ._common import _graph, _interrupted, _interruptible, _run, datums_opt, err, out, state_opt, use_opt


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
@click.option("--logs", "show_logs", is_flag=True,
              help="When a node fails, print its last log lines at once (the live view shows the last 3).")
@use_opt
def up(targets: tuple[str, ...], datums: tuple[str, ...], state_dir: Path | None, quiet: bool, no_recreate: bool,
       fail_fast: bool, timings_json: Path | None, print_env: bool, install_missing: bool,
       show_logs: bool, use: tuple[str, ...]) -> None:
    """Bring targets up: every node starts as soon as its own dependencies are ready."""
    graph = _graph(datums, targets, use)
    if not quiet:
        for problem in graph.notes:
            click.echo(f"note: {problem}", err=True)
    reporter = make_reporter(graph, quiet=quiet, console=err, logs=show_logs)

    async def go() -> tuple[RunResult | None, bool]:
        async with Engine(reporter=reporter, state_dir=state_dir or default_state_dir(),
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
            click.echo(f"note: {ident}: {why}", err=True)
        if res.ok:
            _after_up(res, targets)
    if print_env and not res.failures:
        env: dict[str, str] = {}
        for t in graph.targets:
            env.update(graph.env_of(t))
        for k, v in sorted(env.items()):
            click.echo(f"{k}={v}")
    if interrupted or (res.cancelled and not res.failures):  # --fail-fast cancels too: that is a failure
        _interrupted(targets, datums, state_dir)
    if res.failures or res.skipped:
        click.echo(f"error: {len(res.failures)} node(s) failed, {len(res.skipped)} skipped\n"
                   + render.failures_text(res), err=True)
        sys.exit(EXIT_RUNTIME)


def _after_up(res: RunResult, targets: tuple[str, ...]) -> None:
    """Where to reach what runs now, and the next useful command."""
    import shlex

    from ..progress import endpoints

    up_now = [i for i, t in res.timings.items() if t.status in ("ready", "running")]
    width = max((len(i) for i in up_now), default=0)
    for ident, where in endpoints(res.graph, up_now).items():
        err.print(f"{ident:<{width}}  {'  '.join(where)}", markup=False, highlight=False, soft_wrap=True)
    what = shlex.join(targets)
    err.print(f"next: b00t-graph logs {what} -f   ·   b00t-graph down {what}", markup=False, highlight=False,
              style="dim", soft_wrap=True)


@click.command()
@click.argument("targets", nargs=-1, required=True)
@datums_opt
@state_opt
@click.option("-q", "--quiet", is_flag=True)
@click.option("--volumes", is_flag=True, help="Also remove named volumes b00t-graph created.")
@use_opt
def down(targets: tuple[str, ...], datums: tuple[str, ...], state_dir: Path | None, quiet: bool,
         volumes: bool, use: tuple[str, ...]) -> None:
    """Stop and remove what b00t-graph started, dependents first; never what it did not create."""
    graph = _graph(datums, targets, use)
    reporter = make_reporter(graph, quiet=quiet, console=err, verb="down")

    async def go() -> RunResult:
        async with Engine(reporter=reporter, state_dir=state_dir or default_state_dir()) as engine:
            with reporter:
                return await engine.down(graph, remove_volumes=volumes)

    res = _run(go)
    if not quiet:
        stopped = [i for i, t in res.timings.items() if t.status == "stopped"]
        err.print(f"stopped {len(stopped)} node(s) in {res.wall:.2f}s" + (f": {', '.join(stopped)}" if stopped else ""))
    if res.failures:
        click.echo("error: " + render.failures_text(res), err=True)
        sys.exit(EXIT_RUNTIME)


@click.command()
@click.argument("targets", nargs=-1, required=True)
@datums_opt
@state_opt
@click.option("--json", "as_json", is_flag=True)
@use_opt
def status(targets: tuple[str, ...], datums: tuple[str, ...], state_dir: Path | None, as_json: bool,
           use: tuple[str, ...]) -> None:
    """Each node's state, changing nothing."""
    graph = _graph(datums, targets, use)
    unavailable: dict[str, str] = {}

    async def go() -> tuple[Any, Any]:
        async with Engine(state_dir=state_dir or default_state_dir()) as engine:
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
            click.echo(f"error: {why}", err=True)
        sys.exit(EXIT_RUNTIME)


# --- mcp-config ----------------------------------------------------------------------------------
