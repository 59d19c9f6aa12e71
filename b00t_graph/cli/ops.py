"""``ps``, ``stop``, ``restart``, and the parts of ``down`` that look at what runs (orphans, --all, safe down)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import render
from ..errors import EXIT_RUNTIME
from ..progress import make_reporter

if TYPE_CHECKING:
    from ..ops import DownOutcome, RestartOutcome, StopOutcome

from ._common import _catalog, _graph, _run, _say, _state, datums_opt, err, out, project_opt, state_opt, use_opt


def _use(use: Sequence[str]) -> dict[str, str]:
    from ..capabilities import parse_use

    return dict(parse_use(use))


def ps_view(datums: Sequence[str], state_dir: Path | None, as_json: bool) -> None:
    """Print the inventory (shared by ``ps`` and ``status`` without a target)."""
    from ..detached import find_all
    from ..inventory import uptime_text
    from ..ops import ps as do_ps

    cat = _catalog(datums)
    inv = _run(lambda: do_ps(cat, _state(state_dir)))
    supervisors = find_all(_state(state_dir))
    if as_json:
        click.echo(render.to_json({"items": [m.as_json() for m in inv.items], "unavailable": inv.unavailable,
                                   "supervisors": [s.as_json() for s in supervisors]}))
    else:
        from rich.table import Table

        table = Table(box=None, pad_edge=False)
        for col in ("node", "project", "runtime", "state", "health", "uptime", "ports", "urls", "config"):
            table.add_column(col, overflow="fold")
        for m in sorted(inv.items, key=lambda m: (m.project or "", m.node)):
            config = "orphan: no datum" if m.orphan else ("changed" if m.drift else "" if m.drift is None else "same")
            runtime = m.runtime + (f"@{m.engine}" if m.engine else "")
            table.add_row(m.node, m.project or "-", runtime, m.state, m.health or "-", uptime_text(m.uptime()),
                          " ".join(m.ports) or "-", " ".join(m.urls) or "-", config)
        if inv.items:
            out.print(table)
        else:
            click.echo("nothing managed by b00t-graph runs here")
        for sup in supervisors:
            click.echo(sup.text())
    orphans = inv.orphans()
    if orphans:
        click.echo(f"{len(orphans)} orphan(s) ({', '.join(sorted({m.node for m in orphans}))}): "
                   "`b00t-graph down --orphans` removes them", err=True)
    for kind, why in inv.unavailable.items():
        _say(f"warning: {kind} is unavailable, its containers are not listed: {why}")
    if inv.unavailable and not inv.items and not supervisors:
        sys.exit(EXIT_RUNTIME)  # nothing could be listed, and the engine may hold what runs


@click.command()
@datums_opt
@state_opt
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: one object per managed thing.")
def ps(datums: tuple[str, ...], state_dir: Path | None, as_json: bool) -> None:
    """Everything b00t-graph manages here: containers and Swarm services (all projects) and processes, with
    health (a service's running/desired tasks), uptime, ports, URLs, config drift and orphans (whose datum
    is gone or renamed).

    \b
    Example: b00t-graph ps --json
    """
    ps_view(datums, state_dir, as_json)


@click.command()
@click.argument("node")
@datums_opt
@state_opt
@project_opt
@click.option("-q", "--quiet", is_flag=True)
@use_opt
def stop(node: str, datums: tuple[str, ...], state_dir: Path | None, project: str | None, quiet: bool,
         use: tuple[str, ...]) -> None:
    """Stop exactly NODE, and first the running nodes that depend on it.

    \b
    Example: b00t-graph stop cache.docker
             b00t-graph stop cache.docker -p ci-42     # project ci-42's
    """
    from ..ops import stop as do_stop

    cat = _catalog(datums)
    graph = _graph(datums, [node], use, catalog=cat)
    reporter = make_reporter(graph, quiet=quiet, console=err, verb="stop")

    async def go() -> StopOutcome:
        with reporter:
            return await do_stop(cat, node, _state(state_dir, project), reporter=reporter, use=_use(use),
                                 project=project)

    res = _run(go)
    if not quiet:
        stopped = [i for i, t in res.result.timings.items() if t.status == "stopped"]
        err.print(f"stopped {len(stopped)} node(s) in {res.result.wall:.2f}s"
                  + (f": {', '.join(stopped)}" if stopped else "")
                  + (f" (running dependents first: {', '.join(res.dependents)})" if res.dependents else ""))
    if res.result.failures:
        _say("error: " + render.failures_text(res.result))
        sys.exit(EXIT_RUNTIME)


@click.command()
@click.argument("node")
@datums_opt
@state_opt
@project_opt
@click.option("-q", "--quiet", is_flag=True)
@click.option("--cascade", is_flag=True, help="Restart every running dependent too (in dependency order), "
              "not only those that declare [b00t] restart_dependents = true.")
@use_opt
def restart(node: str, datums: tuple[str, ...], state_dir: Path | None, project: str | None, quiet: bool,
            cascade: bool, use: tuple[str, ...]) -> None:
    """Stop NODE, start it, wait until it is ready; restart the dependents that ask for it (or all with
    --cascade), in order, and probe the others again.

    \b
    Example: b00t-graph restart qdrant.docker --cascade
             b00t-graph restart qdrant.docker -p ci-42  # project ci-42's
    """
    from ..ops import restart as do_restart

    cat = _catalog(datums)
    graph = _graph(datums, [node], use, catalog=cat)
    reporter = make_reporter(graph, quiet=quiet, console=err, verb="restart")

    async def go() -> RestartOutcome:
        with reporter:
            return await do_restart(cat, node, _state(state_dir, project), cascade=cascade,
                                    reporter=reporter, use=_use(use), project=project)

    res = _run(go)
    if res.up is None:
        _say("error: " + render.failures_text(res.down))
        sys.exit(EXIT_RUNTIME)
    if not quiet:
        err.print(f"restarted {', '.join(res.restarted)} in {res.down.wall + res.up.wall:.2f}s"
                  + (f"; probed again: {', '.join(res.reprobed)}" if res.reprobed else ""))
    if res.up.failures or res.up.skipped:
        click.echo(f"error: {len(res.up.failures)} node(s) failed, {len(res.up.skipped)} skipped\n"
                   + render.failures_text(res.up), err=True)
        sys.exit(EXIT_RUNTIME)


def down_targets(targets: Sequence[str], datums: Sequence[str], state_dir: Path | None, quiet: bool, volumes: bool,
                 use: Sequence[str], force: bool, project: str | None = None, engine: Sequence[str] = (),
                 on: str | None = None) -> None:
    """``down TARGET``: keeps what a running node outside TARGET needs (``--force``: stops those first)."""
    from ..ops import down as do_down

    cat = _catalog(datums)
    graph = _graph(datums, targets, use, engine=engine, on=on, catalog=cat)
    reporter = make_reporter(graph, quiet=quiet, console=err, verb="down")

    async def go() -> DownOutcome:
        with reporter:
            return await do_down(cat, graph, _state(state_dir, project), force=force, remove_volumes=volumes,
                                 reporter=reporter, project=project)

    res = _run(go)
    if not quiet:
        for ident, why in res.plan.forced.items():
            err.print(f"stopped first {ident}: {why} (--force)", markup=False)
        stopped = [i for i, t in res.result.timings.items() if t.status == "stopped"]
        err.print(f"stopped {len(stopped)} node(s) in {res.result.wall:.2f}s"
                  + (f": {', '.join(stopped)}" if stopped else ""), markup=False)
    for ident, why in res.plan.kept.items():  # said even with -q: something the user asked to stop runs on
        _say(f"kept {ident}: {why} (--force stops it too)")
    if res.result.failures:
        _say("error: " + render.failures_text(res.result))
        sys.exit(EXIT_RUNTIME)


def down_managed(datums: Sequence[str], state_dir: Path | None, quiet: bool, volumes: bool, everything: bool,
                 patterns: Sequence[str] = (), project: str | None = None) -> None:
    """``down --orphans`` / ``down --all``, limited to node names matching ``patterns`` when given."""
    from ..ops import down_all, remove_orphans

    cat = _catalog(datums)
    sd = _state(state_dir)
    failures: dict[str, str] = {}
    names: list[str] = []
    if everything:
        res, removed, _ = _run(lambda: down_all(cat, sd, remove_volumes=volumes, patterns=patterns, project=project))
        if res is not None:
            names += [i for i, t in res.timings.items() if t.status == "stopped"]
            failures.update({i: str(e) for i, e in res.failures.items()})
    else:
        removed = _run(lambda: remove_orphans(cat, sd, patterns=patterns, project=project))
    names += [f"{m.node} ({m.runtime} {m.name if m.runtime in ('docker', 'swarm') else 'pid ' + m.ref}"
              + (", orphan)" if m.orphan or m.node not in cat.datums else ")") for m in removed.items]
    failures.update(removed.failures)
    if not quiet:
        what = "managed thing(s)" if everything else "orphan(s)"
        err.print(f"removed {len(names)} {what}" + (f": {', '.join(names)}" if names else ""), markup=False)
    for ident, why in failures.items():
        _say(f"error: {ident}: {why}")
    if failures:
        sys.exit(EXIT_RUNTIME)
