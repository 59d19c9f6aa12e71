"""Turning graphs, plans and run results into text: rich for people, JSON/DOT/Mermaid for machines.

Pure functions of data; the CLI chooses where the output goes. Every text that comes from a datum
(names, commands, env values, hints, runtime details) goes through :func:`textsafe.escape`, so an escape
sequence in a datum is shown, never obeyed by the terminal. JSON needs no help: it escapes them itself.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported by the views that draw with it: JSON and plain text need none of it
    from rich.console import RenderableType
    from rich.text import Text

from . import safety
from .capabilities import Choice
from .engine import RunResult
from .errors import B00tGraphError
from .graph import Graph, Node
from .runtimes import Action, Observed, State
from .textsafe import escape

_ACTION_STYLE = {
    Action.NONE: "green", Action.CREATE: "yellow", Action.START: "yellow", Action.RECREATE: "magenta",
    Action.KEEP: "cyan", Action.CONFLICT: "red", Action.GROUP: "dim", Action.PASSIVE: "dim",
    Action.CHECK: "blue", Action.PROBE: "blue",
}


def _t(text: str, style: str = "") -> Text:
    """Rich text from datum content, control characters made visible."""
    from rich.text import Text

    return Text(escape(text), style=style)


def runtime_of(node: Node) -> str:
    """The runtime column: ``docker``, ``docker@gpu`` on a named engine, ``process``, …"""
    if node.runtime_key is not None:
        return node.runtime_key
    return "group" if not node.spec.passive else "not managed"


def what(node: Node) -> str:
    """The thing that runs: image or command line."""
    s = node.spec
    if node.runtime == "presence" and s.presence is not None:
        return "check " + shlex.join(s.presence.command) + (f"  (install: {s.install or s.presence.install})"
                                                            if (s.install or s.presence.install) else "")
    if node.runtime in ("docker", "swarm"):
        from .runtimes.dockerargs import image_of

        image = image_of(s)
        if s.build is not None:
            image = f"{image} (built from {s.build.context})"
        extra = [*s.docker_args, *(f"-p {p}" for p in s.ports), *(f"-v {v}" for v in s.volumes)]
        if s.network:
            extra.append(f"--network {s.network}")
        if s.resources and s.resources.memory_limit:
            extra.append(f"memory {s.resources.memory_limit}")
        if s.resources and s.resources.cpu_limit:
            extra.append(f"cpus {s.resources.cpu_limit}")
        cmd = f"  command {shlex.join(s.command)}" if s.command else ""
        return f"image {image}" + (f"  {' '.join(extra)}" if extra else "") + cmd
    if node.runtime == "process":
        return "command " + shlex.join([*(s.command or ()), *s.args])  # quoted: copy-pasteable
    if s.type == "stack" and (s.members or s.optional):
        return "members " + ", ".join([*s.members, *(f"{m} (optional)" for m in s.optional if m not in s.members)])
    return ""


def choice_text(c: Choice) -> str:
    """``embeddings → ollama-embeddings.api (preferred 1 of 2)``, then what was passed over and why."""
    text = str(c)
    if c.passed_over:
        text += "; passed over " + "; ".join(f"{i}: {why}" for i, why in c.passed_over)
    return text


def readiness(node: Node) -> str:
    if not node.spec.managed:
        return "ready when its dependencies are"
    if node.runtime == "presence" and node.spec.presence is not None:
        p = node.spec.presence
        return f"presence: `{shlex.join(p.command)}`" + (f" matches /{p.regex}/" if p.regex else " exits 0")
    if node.health and node.health.probes():
        return "; ".join(node.health.probes())
    return "ready when started (no readiness probe)"


def _obs_text(obs: Observed | None, unavailable: str | None) -> str:
    if unavailable:
        return f"unknown ({unavailable})"
    if obs is None:
        return ""
    return obs.state.value + (f" — {obs.detail}" if obs.detail else "")


def plan_view(graph: Graph, actions: Mapping[str, Action], observed: Mapping[str, Observed],
              unavailable: Mapping[str, str]) -> RenderableType:
    """The graph as a tree from the targets, then the numbered actions and the waves."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text
    from rich.tree import Tree

    order = {ident: i + 1 for i, ident in enumerate(graph.nodes)}
    shown: set[str] = set()

    def label(node: Node) -> Text:
        t = Text()
        t.append(escape(node.id), style="bold")
        t.append(f"  [{runtime_of(node)}]", style="cyan")
        t.append(f"  #{order[node.id]}", style="dim")
        if safety.privileged(node):
            t.append("  privileged", style="bold red")
        return t

    def add(tree: Tree, ident: str) -> None:
        node = graph.nodes[ident]
        branch = tree.add(label(node))
        if ident in shown:
            branch.label.append("  (see above)", style="dim")  # type: ignore[union-attr]
            return
        shown.add(ident)
        if what(node):
            branch.add(_t(what(node)))
        concerns = safety.privileged(node)
        if concerns:
            branch.add(_t("privileged: " + "; ".join(c.what for c in concerns), style="red"))
        where = safety.cwd(node)
        if where is not None:
            outside = "  (outside the datum's folder)" if safety.cwd_outside(node) else ""
            branch.add(_t("cwd: " + where) + Text(outside, style="yellow"))
        branch.add(_t("ready: " + readiness(node)))
        for c in node.choices:
            branch.add(_t("needs " + choice_text(c)))
        state = _obs_text(observed.get(ident), unavailable.get(node.runtime_key or "")) if node.runtime else ""
        if state:
            branch.add(_t("now: " + state))
        if node.spec.hint:
            branch.add(_t("hint: " + node.spec.hint, style="italic"))
        if node.env:
            env = branch.add(Text("env", style="dim"))
            for k, v in sorted(node.env.items()):
                src = "" if k in node.exports else (
                    f"  (from {node.from_stack[k]})" if k in node.from_stack else "  (from a dependency)")
                env.add(_t(f"{k}={v}") + Text(src, style="dim"))
        for dep in node.deps:
            add(branch, dep)
            if dep in node.soft:
                branch.children[-1].label.append("  (optional)", style="dim")  # type: ignore[union-attr]

    root = Tree(Text("plan", style="bold"), guide_style="dim")
    for target in graph.targets:
        add(root, target)

    table = Table(title="what `up` would do", title_justify="left", box=None, pad_edge=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("node")
    table.add_column("action")
    table.add_column("why / after")
    for ident, node in graph.nodes.items():
        act = actions[ident]
        why = _obs_text(observed.get(ident), unavailable.get(node.runtime_key or "")) if node.runtime else ""
        if act is Action.CREATE and not why.startswith("unknown"):
            why = "nothing exists yet"
        after = ", ".join(f"#{order[d]}" for d in node.deps)
        table.add_row(str(order[ident]), escape(ident), Text(act.value, style=_ACTION_STYLE[act]),
                      escape(why + (f"; after {after}" if after and why else after and f"after {after}")))
    waves = Text("waves (for reading only; up starts each node as soon as its own dependencies are ready): ",
                 style="dim")
    waves.append(escape("  ".join(f"{i + 1}: {', '.join(w)}" for i, w in enumerate(graph.waves()))))
    parts: list[RenderableType] = [root, Text(""), table, Text(""), waves]
    for problem in graph.notes:
        parts.append(_t(f"note: {problem}", style="yellow"))
    for kind, why in unavailable.items():
        parts.append(_t(f"note: cannot ask the {kind} runtime what runs ({why}); "
                        "planned as if nothing runs", style="yellow"))
    return Group(*parts)


def plan_json(graph: Graph, actions: Mapping[str, Action], observed: Mapping[str, Observed],
              unavailable: Mapping[str, str]) -> dict[str, Any]:
    nodes = []
    for ident, node in graph.nodes.items():
        obs = observed.get(ident)
        nodes.append({
            "id": ident, "name": node.spec.name, "type": node.type, "runtime": runtime_of(node),
            "path": node.spec.path, "image": node.spec.image,
            "command": [*(node.spec.command or ()), *node.spec.args] if node.spec.command else None,
            "readiness": node.health.probes() if node.health else [],
            "depends_on": list(node.deps), "optional": list(node.soft),
            "choices": [c.as_json() for c in node.choices], "env": node.env, "exports": node.exports,
            "from_stack": node.from_stack,
            "hint": node.spec.hint, "config_hash": node.config_hash,
            "privileged": [c.what for c in safety.privileged(node)],
            "cwd": safety.cwd(node), "cwd_outside_folder": safety.cwd_outside(node),
            # unavailable is keyed by runtime type: every node of an unreachable runtime is "unknown"
            "state": (obs.state.value if obs else None) if (node.runtime_key or "") not in unavailable else "unknown",
            "action": actions[ident].name.lower(),
        })
    env: dict[str, str] = {}
    for t in graph.targets:
        env.update(graph.env_of(t))
    return {
        "targets": list(graph.targets),
        "nodes": nodes,
        "edges": [[ident, dep] for ident, node in graph.nodes.items() for dep in node.deps],
        "actions": [{"step": i + 1, "node": ident, "action": actions[ident].name.lower(),
                     "description": actions[ident].value}
                    for i, ident in enumerate(graph.nodes)],
        "waves": graph.waves(),
        "env": env,
        "runtime_unavailable": dict(unavailable),
        "notes": [{"path": p.path, "key": p.key, "message": p.message} for p in graph.notes],
    }


def dot(graph: Graph) -> str:
    lines = ["digraph b00t {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    for ident, node in graph.nodes.items():
        lines.append(f'  "{escape(ident)}" [label="{escape(ident)}\\n{runtime_of(node)}"];')
    for ident, node in graph.nodes.items():
        for dep in node.deps:
            lines.append(f'  "{escape(dep)}" -> "{escape(ident)}";')
    lines.append("}")
    return "\n".join(lines)


def mermaid(graph: Graph) -> str:
    ids = {ident: f"n{i}" for i, ident in enumerate(graph.nodes)}
    lines = ["graph LR"]
    for ident, node in graph.nodes.items():
        lines.append(f'  {ids[ident]}["{escape(ident)} ({runtime_of(node)})"]')
    for ident, node in graph.nodes.items():
        for dep in node.deps:
            lines.append(f"  {ids[dep]} --> {ids[ident]}")
    return "\n".join(lines)


def _s(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}s"


def timings_view(res: RunResult) -> RenderableType:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"timings (wall {res.wall:.2f}s)", title_justify="left", box=None, pad_edge=False)
    for col in ("node", "action", "status", "waited", "start", "ready", "own", "at"):
        table.add_column(col, justify="right" if col in ("waited", "start", "ready", "own", "at") else "left")
    for ident, tm in res.timings.items():
        style = {"failed": "red", "skipped": "yellow", "cancelled": "yellow"}.get(tm.status, "")
        table.add_row(escape(ident), tm.action.value, Text(tm.status, style=style), _s(tm.wait), _s(tm.start),
                      _s(tm.readiness), _s(tm.own), _s(tm.ready))
    if not res.critical:  # nothing became ready: a bare heading would read as a rendering bug
        return table
    crit = Text("critical path:", style="bold")
    for hop in res.critical:
        crit.append(f"\n  {escape(hop.node)} @{hop.offset:.2f}s +{hop.duration:.2f}s")
    return Group(table, Text(""), crit)


def timings_json(res: RunResult) -> dict[str, Any]:
    return {
        "wall": res.wall,
        "nodes": {i: {"action": t.action.name.lower(), "status": t.status, "runnable": t.runnable,
                      "started": t.started, "launched": t.launched, "ready": t.ready, "wait": t.wait,
                      "start": t.start, "readiness": t.readiness, "own": t.own, "detail": t.detail}
                  for i, t in res.timings.items()},
        "critical_path": [{"node": h.node, "offset": h.offset, "duration": h.duration} for h in res.critical],
        "failed": {i: str(e) for i, e in res.failures.items()},
        "skipped": res.skipped,
        "notes": res.notes,
    }


def failures_text(res: RunResult) -> str:
    lines = []
    for err in res.failures.values():
        lines.append(f"✗ {err}")
    for ident, why in res.skipped.items():
        lines.append(f"- {ident}: skipped ({why})")
    return "\n".join(lines)


def status_view(graph: Graph, observed: Mapping[str, Observed], actions: Mapping[str, Action],
                unavailable: Mapping[str, str]) -> RenderableType:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False)
    for col in ("node", "runtime", "state", "detail"):
        table.add_column(col)
    for ident, node in graph.nodes.items():
        if not node.spec.managed:
            table.add_row(escape(ident), runtime_of(node), Text("-", style="dim"), "")
            continue
        if node.runtime_key is not None and node.runtime_key in unavailable:
            table.add_row(escape(ident), runtime_of(node), Text("unknown", style="yellow"),
                          _t(unavailable[node.runtime_key]))
            continue
        obs = observed.get(ident)
        state = obs.state if obs else State.ABSENT
        style = {State.RUNNING: "green", State.STOPPED: "yellow", State.FOREIGN: "red"}.get(state, "dim")
        label = state.value
        if state is State.RUNNING and actions.get(ident) is Action.RECREATE:
            label += " (config changed)"
        table.add_row(escape(ident), runtime_of(node), Text(label, style=style), _t(obs.detail if obs else ""))
    return table


def error_text(err: B00tGraphError) -> str:
    return str(err)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False)
