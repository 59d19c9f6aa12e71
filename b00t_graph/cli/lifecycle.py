"""``up``, ``down``, ``status``: bringing targets up and down, and looking at them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import click

if TYPE_CHECKING:
    from ..engine import Engine, RunResult

from ..errors import (
    EXIT_RUNTIME,
)
from ._common import (
    _deny_privileged,
    _graph,
    _interrupted,
    _interruptible,
    _run,
    _say,
    _state,
    complete_targets,
    datums_opt,
    engine_opt,
    err,
    on_opt,
    out,
    project_opt,
    state_opt,
    use_opt,
)


@click.command()
@click.argument("targets", nargs=-1, required=True, shell_complete=complete_targets)
@datums_opt
@state_opt
@project_opt
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--no-recreate", is_flag=True, help="Leave running nodes whose configuration changed as they are.")
@click.option("--fail-fast", is_flag=True, help="Cancel everything at the first failure.")
@click.option("--timings-json", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write per-node timings and the critical path to this file.")
@click.option("--env", "print_env", is_flag=True,
              help="Print the targets' resolved environment on stdout (see --env-format).")
@click.option("--env-format", type=click.Choice(["shell", "dotenv", "json"]), default=None,
              help="shell (default): export K='v' lines for eval; dotenv: K=\"v\" lines; json: one object. "
                   "Implies --env.")
@click.option("--install-missing", is_flag=True,
              help="When a presence check fails, run the datum's install command, then check again.")
@click.option("--logs", "show_logs", is_flag=True,
              help="When a node fails, print its last log lines at once (the live view shows the last 3).")
@click.option("--deny-privileged", is_flag=True, help="Refuse (exit 2) if a node runs privileged (see `plan`).")
@click.option("--keep-failed", is_flag=True,
              help="Leave a node this run started running when it fails its readiness (to look at it); "
                   "`status` shows it as not ready.")
@click.option("--attach", is_flag=True,
              help="Stay in the foreground and supervise (restart policies, liveness) until Ctrl-C or SIGTERM, "
                   "then take down what this run started (exit 0 when that went cleanly).")
@use_opt
@engine_opt
@on_opt
def up(targets: tuple[str, ...], datums: tuple[str, ...], state_dir: Path | None, project: str | None, quiet: bool,
       no_recreate: bool, fail_fast: bool, timings_json: Path | None, print_env: bool, env_format: str | None,
       install_missing: bool, deny_privileged: bool, keep_failed: bool, show_logs: bool, attach: bool,
       use: tuple[str, ...], engine: tuple[str, ...], on: str | None) -> None:
    """Bring targets up: every node starts as soon as its own dependencies are ready.

    \b
    Example:
      b00t-graph up demo.stack
      b00t-graph up grok -q --timings-json t.json
      eval "$(b00t-graph up grok -q --env)"      # export the targets' env into this shell
      b00t-graph up demo.stack -p ci-42          # in a project of its own
      b00t-graph up grok --logs                  # a failing node's last log lines at once
      b00t-graph up demo.stack --attach          # supervise in the foreground; Ctrl-C takes it down
      b00t-graph up demo.stack --on swarm        # every docker datum as a Swarm service
    """
    from ..engine import Engine
    from ..progress import make_reporter

    graph = _graph(datums, targets, use, engine=engine, on=on)
    if deny_privileged:
        _deny_privileged(graph)
    if not quiet:
        for problem in graph.notes:
            _say(f"note: {problem}")
    reporter = make_reporter(graph, quiet=quiet, console=err, logs=show_logs)

    async def go() -> tuple[RunResult | None, bool]:
        async with Engine(reporter=reporter, state_dir=_state(state_dir, project), project=project,
                          no_recreate=no_recreate, fail_fast=fail_fast, install_missing=install_missing,
                          keep_failed=keep_failed) as engine:
            with reporter:
                res, interrupted = await _interruptible(lambda: engine.up(graph))
            if attach and res is not None and not interrupted:
                await _attach(engine, res, quiet)
            return res, interrupted

    res, interrupted = _run(go)
    if res is None:  # cancelled before the run returned its result
        _interrupted(targets, datums, state_dir, project)
    from .. import render

    if timings_json:
        timings_json.write_text(json.dumps(render.timings_json(res), indent=2))
    if not quiet:
        err.print(render.timings_view(res))
        for ident, why in res.notes.items():
            _say(f"note: {ident}: {why}")
        if res.ok:
            _after_up(res, targets)
    if (print_env or env_format) and not res.failures:
        from ..envtext import env_text

        env: dict[str, str] = {}
        for t in graph.targets:
            env.update(graph.env_of(t))
        click.echo(env_text(env, env_format or "shell"), nl=False)
    if interrupted or (res.cancelled and not res.failures):  # --fail-fast cancels too: that is a failure
        _interrupted(targets, datums, state_dir, project)
    if res.failures or res.skipped:
        _say(f"error: {len(res.failures)} node(s) failed, {len(res.skipped)} skipped\n" + render.failures_text(res))
        sys.exit(EXIT_RUNTIME)


async def _attach(engine: Engine, res: RunResult, quiet: bool) -> None:
    """``up --attach``: supervise until a signal (or until nothing is left to watch), then take down what
    this run started (the nodes it created or started, and every node a restart started); exits here."""
    from .. import render
    from ..progress import ProgressReporter
    from ..supervisor import Supervisor, supervisable

    if not res.ok:
        return  # the usual failure report follows; nothing is supervised
    if not quiet:
        err.print(render.timings_view(res))
        _after_up(res, ())
    lines = ProgressReporter(res.graph, err, live=False, quiet=quiet, logs=True)
    engine.reporter = lines
    sup = Supervisor(engine, res.graph, supervisable(res), reporter=lines)
    if not quiet:
        _say(f"supervising {len(sup.watched)} node(s); Ctrl-C stops what this run started")
    _, interrupted = await _interruptible(sup.run)
    ours = {i for i, t in res.timings.items() if t.started is not None and t.status == "ready"}
    ours |= set(sup.restarted)
    with anyio.CancelScope(shield=True):
        down = await engine.down(res.graph, only=ours) if ours else None
    failed = [w.node for w in sup.watched.values() if w.status == "failed"]
    if down is not None and down.failures:
        _say("error: could not stop " + ", ".join(down.failures) + "\n" + render.failures_text(down))
        sys.exit(EXIT_RUNTIME)
    if failed:
        _say(f"error: {len(failed)} node(s) failed under supervision: {', '.join(failed)}")
        sys.exit(EXIT_RUNTIME)
    if not quiet:
        _say(f"{'interrupted' if interrupted else 'nothing left to supervise'}: stopped {len(ours)} node(s) "
             "this run started")
    sys.exit(0)


def _after_up(res: RunResult, targets: tuple[str, ...]) -> None:
    """Where to reach what runs now, and the next useful command."""
    import shlex

    from ..progress import endpoints

    up_now = [i for i, t in res.timings.items() if t.status in ("ready", "running")]
    width = max((len(i) for i in up_now), default=0)
    for ident, where in endpoints(res.graph, up_now).items():
        err.print(f"{ident:<{width}}  {'  '.join(where)}", markup=False, highlight=False, soft_wrap=True)
    if not targets:
        return
    what = shlex.join(targets)
    err.print(f"next: b00t-graph logs {what} -f   ·   b00t-graph down {what}", markup=False, highlight=False,
              style="dim", soft_wrap=True)


@click.command()
@click.argument("targets", nargs=-1, shell_complete=complete_targets)
@datums_opt
@state_opt
@project_opt
@click.option("-q", "--quiet", is_flag=True)
@click.option("--volumes", is_flag=True, help="Also remove named volumes b00t-graph created.")
@click.option("--force", is_flag=True, help="Also stop, first, running nodes outside the targets that depend on them.")
@click.option("--orphans", is_flag=True, help="Remove what b00t-graph runs for datums that are gone or renamed "
              "(TARGETS, if given, are patterns of node names: 'old-*').")
@click.option("--all", "everything", is_flag=True, help="Remove everything b00t-graph manages here "
              "(TARGETS, if given, are patterns of node names).")
@use_opt
@engine_opt
@on_opt
def down(targets: tuple[str, ...], datums: tuple[str, ...], state_dir: Path | None, project: str | None, quiet: bool,
         volumes: bool, force: bool, orphans: bool, everything: bool, use: tuple[str, ...],
         engine: tuple[str, ...], on: str | None) -> None:
    """Stop and remove what b00t-graph started, dependents first; never what it did not create.

    A node that a running node outside the targets still depends on is kept (and said so);
    --force stops that dependent first instead.

    \b
    Example:
      b00t-graph down demo.stack
      b00t-graph down grok --volumes            # also its named volumes
      b00t-graph down demo.stack -p ci-42       # only project ci-42's
      b00t-graph down --orphans 'old-*'         # what runs for datums that are gone
      b00t-graph down --all                     # everything b00t-graph manages here
    """
    from .ops import down_managed, down_targets

    if orphans or everything:
        if orphans and everything:
            raise click.UsageError("give --orphans or --all, not both")
        down_managed(datums, state_dir, quiet, volumes, everything, targets, project=project)
        return
    if not targets:
        raise click.UsageError("name a target, or give --orphans or --all")
    down_targets(targets, datums, state_dir, quiet, volumes, use, force, project=project, engine=engine, on=on)


@click.command()
@click.argument("targets", nargs=-1, shell_complete=complete_targets)
@datums_opt
@state_opt
@project_opt
@click.option("--json", "as_json", is_flag=True)
@use_opt
@engine_opt
@on_opt
def status(targets: tuple[str, ...], datums: tuple[str, ...], state_dir: Path | None, project: str | None,
           as_json: bool,
           use: tuple[str, ...], engine: tuple[str, ...], on: str | None) -> None:
    """Each node's state, changing nothing (and the supervisor's, when one runs); without a target, what `ps` shows.

    \b
    Example:
      b00t-graph status demo.stack
      b00t-graph status grok --json -p ci-42
      b00t-graph status                         # everything b00t-graph manages (= ps)
    """
    if not targets:
        from .ops import ps_view

        ps_view(datums, state_dir, as_json)
        return
    from .. import render
    from ..engine import Engine

    graph = _graph(datums, targets, use, engine=engine, on=on)
    unavailable: dict[str, str] = {}

    async def go() -> tuple[Any, Any]:
        async with Engine(state_dir=_state(state_dir, project), project=project) as engine:
            return await engine.plan(graph, unavailable)

    actions, observed = _run(go)
    if as_json:
        click.echo(render.to_json({i: {"state": (observed[i].state.value if i in observed else None),
                                       "detail": observed[i].detail if i in observed else "",
                                       "action": actions[i].name.lower()} for i in graph.nodes}))
    else:
        from ..detached import read

        out.print(render.status_view(graph, observed, actions, unavailable))
        sup = read(_state(state_dir, project), project)
        if sup is not None:
            click.echo(sup.text())
    if unavailable:
        for why in unavailable.values():
            _say(f"error: {why}")
        sys.exit(EXIT_RUNTIME)


# --- mcp-config ----------------------------------------------------------------------------------
