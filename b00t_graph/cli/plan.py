"""``plan``: what ``up`` would do, changing nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._common import (
    _graph,
    _run,
    _state,
    complete_targets,
    datums_opt,
    engine_opt,
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
@click.option("--json", "as_json", is_flag=True, help="Machine-readable plan: nodes, edges, actions, env.")
@click.option("--format", "fmt", type=click.Choice(["text", "dot", "mermaid"]), default="text",
              help="dot/mermaid: a picture of the graph.")
@click.option("--offline", is_flag=True, help="Do not ask any runtime what already runs.")
@click.option("--no-recreate", is_flag=True, help="Plan as `up --no-recreate` would.")
@use_opt
@engine_opt
@on_opt
def plan(targets: tuple[str, ...], datums: tuple[str, ...], state_dir: Path | None, project: str | None,
         as_json: bool, fmt: str,
         offline: bool, no_recreate: bool, use: tuple[str, ...], engine: tuple[str, ...], on: str | None) -> None:
    """Show what `up` would do, changing nothing: the graph, each node's env and the actions.

    \b
    Example:
      b00t-graph plan grok.stack
      b00t-graph plan grok --json               # nodes, edges, actions, env
      b00t-graph plan grok --format mermaid     # a picture of the graph
      b00t-graph plan rag --offline --use embeddings=ollama-embeddings
    """
    from .. import render
    from ..engine import Engine

    graph = _graph(datums, targets, use, offline=offline, engine=engine, on=on)
    if fmt == "dot":
        click.echo(render.dot(graph))
        return
    if fmt == "mermaid":
        click.echo(render.mermaid(graph))
        return
    unavailable: dict[str, str] = {}

    async def go() -> tuple[Any, Any]:
        async with Engine(state_dir=_state(state_dir, project), project=project, no_recreate=no_recreate) as engine:
            if offline:
                from ..runtimes import decide

                unavailable.update({n.runtime_key: "--offline" for n in graph.nodes.values() if n.runtime_key})
                return {i: decide(n, None, no_recreate=no_recreate) for i, n in graph.nodes.items()}, {}
            return await engine.plan(graph, unavailable)

    actions, observed = _run(go)
    if as_json:
        click.echo(render.to_json(render.plan_json(graph, actions, observed, unavailable)))
    else:
        out.print(render.plan_view(graph, actions, observed, unavailable), soft_wrap=False)  # wrap, never crop


# --- up / down / status --------------------------------------------------------------------------
