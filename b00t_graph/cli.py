"""The ``b00t-graph`` command: a thin layer over the typed core.

Exit codes: 0 ok; 1 a runtime failure (a node failed, an engine is
unreachable); 2 bad input (a datum, a target, an option); 130 interrupted.
User errors print one message on stderr, never a traceback; ``B00T_DEBUG=1``
adds the traceback and debug logs.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import anyio
import attrs
import click
from rich.console import Console

from . import render, safety, textsafe
from .engine import Engine, RunResult
from .errors import (
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_RUNTIME,
    B00tGraphError,
    CycleError,
    InputError,
    MissingDependencyError,
    Problem,
    StateDirError,
)
from .graph import Graph
from .loader import Catalog, datum_dirs, load_catalog
from .locks import default_state_dir, state_dir_problem
from .progress import make_reporter

T = TypeVar("T")

# Off a terminal rich would wrap at 80 columns; logs and pipes read better unwrapped.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


def _debug() -> bool:
    return os.environ.get("B00T_DEBUG", "") not in ("", "0")


def _backend() -> str:
    return os.environ.get("B00T_BACKEND", "asyncio")


def _say(text: str) -> None:
    """One message on stderr; control characters from datum content made visible (see ``textsafe``)."""
    click.echo(textsafe.escape_lines(text), err=True)


def _fail(exc: B00tGraphError) -> NoReturn:
    if _debug():
        traceback.print_exception(exc)
    _say(f"error: {exc}")
    sys.exit(exc.exit_code)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    todo: list[BaseException] = [group]
    while todo:
        exc = todo.pop()
        if isinstance(exc, BaseExceptionGroup):
            todo.extend(reversed(exc.exceptions))
        else:
            out.append(exc)
    return out


def _fail_unexpected(exc: BaseException) -> NoReturn:
    """Whatever is not one of our errors is a bug: one line, the traceback only with ``B00T_DEBUG=1``."""
    leaves = _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    if any(isinstance(e, KeyboardInterrupt) for e in leaves):
        _say("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    ours = [e for e in leaves if isinstance(e, B00tGraphError)]
    if _debug():
        traceback.print_exception(exc)
    if len(ours) == len(leaves):  # several failures of ours at once (tasks of one group): each once
        for msg in dict.fromkeys(str(e) for e in ours):
            _say(f"error: {msg}")
        sys.exit(EXIT_INPUT if all(e.exit_code == EXIT_INPUT for e in ours) else EXIT_RUNTIME)
    bug = next(e for e in leaves if not isinstance(e, B00tGraphError))
    _say(f"error: internal error: {type(bug).__name__}: {textsafe.clip(str(bug))} "
         "(a bug in b00t-graph; B00T_DEBUG=1 shows the traceback)")
    sys.exit(EXIT_RUNTIME)


def _run(fn: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on the chosen backend, turning our errors into messages and exit codes."""
    try:
        return anyio.run(fn, backend=_backend())
    except B00tGraphError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        _say("interrupted")
        sys.exit(EXIT_INTERRUPTED)


def _state(state_dir: Path | None) -> Path:
    """The state directory to use, refused up front (exit 2) when it cannot be one."""
    path = state_dir if state_dir is not None else default_state_dir()
    why = state_dir_problem(path)
    if why is not None:
        origin = "--state-dir" if state_dir is not None else (
            "$B00T_GRAPH_STATE_DIR" if os.environ.get("B00T_GRAPH_STATE_DIR") else "default state dir")
        raise StateDirError(f"bad option {origin} {path}: {why}")
    return path


class _Group(click.Group):
    """The command group; no exception reaches the user as a traceback, whatever a command raised."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except B00tGraphError as exc:
            _fail(exc)
        except Exception as exc:  # the one place every other error is turned into a line
            _fail_unexpected(exc)
        except BaseExceptionGroup as exc:  # a KeyboardInterrupt among task failures
            _fail_unexpected(exc)


async def _interruptible(fn: Callable[[], Awaitable[T]]) -> tuple[T | None, bool]:
    """Run ``fn`` until it ends or SIGINT/SIGTERM arrives; on a signal it is cancelled cleanly."""
    result: list[T] = []
    failure: list[B00tGraphError] = []
    interrupted = False
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            nonlocal interrupted
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    interrupted = True
                    tg.cancel_scope.cancel()
                    return

        async def work() -> None:
            try:
                result.append(await fn())
            except B00tGraphError as exc:  # raised bare below, not wrapped in an exception group
                failure.append(exc)
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        tg.start_soon(work)
    if failure:
        raise failure[0]
    return (result[0] if result else None), interrupted


def _interrupted(targets: Sequence[str], datums: Sequence[str], state_dir: Path | None) -> NoReturn:
    """Say how to remove what an interrupted ``up`` started: the same targets, folders and state dir."""
    argv = ["b00t-graph", "down", *targets]
    for d in datums:
        argv += ["-d", d]
    if state_dir is not None:
        argv += ["--state-dir", str(state_dir)]
    _say(f"interrupted: what was started is recorded; `{shlex.join(argv)}` removes it")
    sys.exit(EXIT_INTERRUPTED)


# --- shared options ------------------------------------------------------------------------------

datums_opt = click.option("--datums", "-d", "datums", multiple=True, type=click.Path(file_okay=False, exists=True),
                          help="Datum folder (repeatable). Default: $_B00T_Path, ./_b00t_, the packaged datums.")
state_opt = click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                         help="Where process records, logs and locks live. "
                              "Default: $B00T_GRAPH_STATE_DIR or $XDG_STATE_HOME/b00t-graph.")


def _catalog(datums: Sequence[str]) -> Catalog:
    return load_catalog(datum_dirs(datums))


def _graph(datums: Sequence[str], targets: Sequence[str]) -> Graph:
    from .graph import compile_graph

    cat = _catalog(datums)
    try:
        graph = compile_graph(cat, targets)
    except B00tGraphError as exc:
        _fail(exc)
    if _debug():  # broken datums the request does not need do not stop it; say so only when asked
        used = {n.spec.path for n in graph.nodes.values()}
        for problem in cat.problems:
            if problem.path not in used:
                _say(f"warning: {problem} (not needed here)")
    return graph


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="b00t-graph")
def main() -> None:
    """Start services from b00t datums, each the moment its own dependencies are ready.

    \b
    Exit codes: 0 ok, 1 runtime failure, 2 bad input, 130 interrupted.
    Set B00T_DEBUG=1 for tracebacks and debug logs.
    """
    if _debug():
        logging.basicConfig(level=logging.DEBUG, format="%(relativeCreated)8.1fms %(name)s %(message)s")


# --- plan ----------------------------------------------------------------------------------------


@main.command()
@click.argument("targets", nargs=-1, required=True)
@datums_opt
@state_opt
@click.option("--json", "as_json", is_flag=True, help="Machine-readable plan: nodes, edges, actions, env.")
@click.option("--format", "fmt", type=click.Choice(["text", "dot", "mermaid"]), default="text",
              help="dot/mermaid: a picture of the graph.")
@click.option("--offline", is_flag=True, help="Do not ask any runtime what already runs.")
@click.option("--no-recreate", is_flag=True, help="Plan as `up --no-recreate` would.")
def plan(targets: tuple[str, ...], datums: tuple[str, ...], state_dir: Path | None, as_json: bool, fmt: str,
         offline: bool, no_recreate: bool) -> None:
    """Show what `up` would do, changing nothing: the graph, each node's env and the actions."""
    graph = _graph(datums, targets)
    if fmt == "dot":
        click.echo(render.dot(graph))
        return
    if fmt == "mermaid":
        click.echo(render.mermaid(graph))
        return
    unavailable: dict[str, str] = {}

    async def go() -> tuple[Any, Any]:
        async with Engine(state_dir=_state(state_dir), no_recreate=no_recreate) as engine:
            if offline:
                from .runtimes import decide

                unavailable.update({n.runtime: "--offline" for n in graph.nodes.values() if n.runtime})
                return {i: decide(n, None, no_recreate=no_recreate) for i, n in graph.nodes.items()}, {}
            return await engine.plan(graph, unavailable)

    actions, observed = _run(go)
    if as_json:
        click.echo(render.to_json(render.plan_json(graph, actions, observed, unavailable)))
    else:
        out.print(render.plan_view(graph, actions, observed, unavailable), soft_wrap=False)  # wrap, never crop


# --- up / down / status --------------------------------------------------------------------------


@main.command()
@click.argument("targets", nargs=-1, required=True)
@datums_opt
@state_opt
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--no-recreate", is_flag=True, help="Leave running nodes whose configuration changed as they are.")
@click.option("--fail-fast", is_flag=True, help="Cancel everything at the first failure.")
@click.option("--timings-json", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write per-node timings and the critical path to this file.")
@click.option("--env", "print_env", is_flag=True, help="Print the targets' resolved environment (KEY=value).")
@click.option("--deny-privileged", is_flag=True, help="Refuse (exit 2) if a node runs privileged (see `plan`).")
def up(targets: tuple[str, ...], datums: tuple[str, ...], state_dir: Path | None, quiet: bool, no_recreate: bool,
       fail_fast: bool, timings_json: Path | None, print_env: bool, deny_privileged: bool) -> None:
    """Bring targets up: every node starts as soon as its own dependencies are ready."""
    graph = _graph(datums, targets)
    if deny_privileged:
        _deny_privileged(graph)
    reporter = make_reporter(graph, quiet=quiet, console=err)

    async def go() -> tuple[RunResult | None, bool]:
        async with Engine(reporter=reporter, state_dir=_state(state_dir),
                          no_recreate=no_recreate, fail_fast=fail_fast) as engine:
            with reporter:
                return await _interruptible(lambda: engine.up(graph))

    res, interrupted = _run(go)
    if res is None:  # cancelled before the run returned its result
        _interrupted(targets, datums, state_dir)
    if timings_json:
        timings_json.write_text(json.dumps(render.timings_json(res), indent=2))
    if not quiet:
        err.print(render.timings_view(res))
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


def _deny_privileged(graph: Graph) -> None:
    """``up --deny-privileged``: refuse, before anything starts, a graph with a privileged node."""
    found = safety.privileged_nodes(graph)
    if found:
        which = ", ".join(f"{ident} ({'; '.join(c.what for c in concerns)})" for ident, concerns in found.items())
        raise InputError(f"--deny-privileged: refusing {len(found)} privileged node(s): {which}")


@main.command()
@click.argument("targets", nargs=-1, required=True)
@datums_opt
@state_opt
@click.option("-q", "--quiet", is_flag=True)
@click.option("--volumes", is_flag=True, help="Also remove named volumes b00t-graph created.")
def down(targets: tuple[str, ...], datums: tuple[str, ...], state_dir: Path | None, quiet: bool,
         volumes: bool) -> None:
    """Stop and remove what b00t-graph started, dependents first; never what it did not create."""
    graph = _graph(datums, targets)
    reporter = make_reporter(graph, quiet=quiet, console=err, verb="down")

    async def go() -> RunResult:
        async with Engine(reporter=reporter, state_dir=_state(state_dir)) as engine:
            with reporter:
                return await engine.down(graph, remove_volumes=volumes)

    res = _run(go)
    if not quiet:
        stopped = [i for i, t in res.timings.items() if t.status == "stopped"]
        err.print(textsafe.escape(f"stopped {len(stopped)} node(s) in {res.wall:.2f}s"
                                  + (f": {', '.join(stopped)}" if stopped else "")), markup=False)
    if res.failures:
        _say("error: " + render.failures_text(res))
        sys.exit(EXIT_RUNTIME)


@main.command()
@click.argument("targets", nargs=-1, required=True)
@datums_opt
@state_opt
@click.option("--json", "as_json", is_flag=True)
def status(targets: tuple[str, ...], datums: tuple[str, ...], state_dir: Path | None, as_json: bool) -> None:
    """Each node's state, changing nothing."""
    graph = _graph(datums, targets)
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


# --- validate / ls -------------------------------------------------------------------------------


@attrs.define
class _Check:
    """What is wrong in a catalog, by file: the one answer ``validate`` and ``ls`` both give."""

    #: every message once, in the order found
    errors: list[str] = attrs.field(factory=list)
    #: file → its own problems (it fails to load, or its graph has a problem it causes)
    broken: dict[str, list[str]] = attrs.field(factory=dict)
    #: identity → why it loads but cannot be planned (a dependency is broken)
    blocked: dict[str, str] = attrs.field(factory=dict)
    #: what planned datums may do to the host (privileged, a cwd outside their folder): notes, not errors
    safety: list[Problem] = attrs.field(factory=list)


def _check(cat: Catalog) -> _Check:
    """Load problems plus what compiling each datum finds (cycles, missing dependencies, ``${VAR}``)."""
    from .graph import compile_graph

    res = _Check()
    seen: set[str] = set()

    def add(path: str, msg: str, key: str | None = None) -> None:
        res.broken.setdefault(path, [])
        if msg not in res.broken[path]:
            res.broken[path].append(msg)
        if (key or msg) not in seen:
            seen.add(key or msg)
            res.errors.append(msg)

    folders = {str(src.path) for src in cat.sources}
    for problem in cat.problems:
        if problem.path in folders:  # a missing folder: an error, not a datum with problems
            res.errors.append(str(problem))
        else:
            add(problem.path, str(problem))
    path_of = {ident: d.path for ident, d in cat.datums.items()}
    for ident in sorted(cat.datums):
        try:
            res.safety += safety.notes(compile_graph(cat, [ident]).nodes[ident])
        except B00tGraphError as exc:
            # One line per problem, each once: a broken dependency or a loop is met from every datum near it.
            own = False
            problems = getattr(exc, "problems", None)
            if isinstance(problems, list) and problems:
                for p in problems:
                    where = getattr(p, "path", None) or path_of[ident]
                    add(where, str(p))
                    own = own or where == path_of[ident]
            elif isinstance(exc, CycleError):
                for member in set(exc.cycle):
                    if member in path_of:
                        add(path_of[member], str(exc), " → ".join(sorted(set(exc.cycle))))
                own = True
            elif isinstance(exc, MissingDependencyError) and exc.wanted_by in path_of:
                add(path_of[exc.wanted_by], str(exc))
                own = exc.wanted_by == ident
            else:
                add(path_of[ident], str(exc))
                own = True
            if not own and path_of[ident] not in res.broken:
                res.blocked[ident] = str(exc).splitlines()[0]
    return res


def _grouped_notes(notes: Sequence[Problem]) -> list[str]:
    """One line per (key, message) with the number of files, so notes do not drown the errors."""
    groups: dict[tuple[str, str], list[str]] = {}
    for n in notes:
        groups.setdefault((n.key, n.message), []).append(n.path)
    lines = []
    for (key, message), paths in sorted(groups.items(), key=lambda kv: (-len(set(kv[1])), kv[0])):
        files = sorted(set(paths))
        if len(files) == 1:
            lines.append(f"note: {Problem(files[0], key, message)}")
        else:
            lines.append(f"note: {key}: {message} (in {len(files)} files)")
    return lines


@main.command()
@click.argument("dirs", nargs=-1, type=click.Path(file_okay=False, exists=True))
@datums_opt
@click.option("--strict", is_flag=True, help="Also fail on notes (keys kept but not acted on).")
@click.option("-v", "--verbose", is_flag=True, help="Every note of every file, not grouped by key.")
def validate(dirs: tuple[str, ...], datums: tuple[str, ...], strict: bool, verbose: bool) -> None:
    """Check every datum of the folders (DIRS and --datums) and report every problem at once (exit 2 if any)."""
    cat = _catalog([*dirs, *datums])
    res = _check(cat)
    if verbose:
        for note in cat.notes:
            click.echo(textsafe.escape(f"note: {note}"))
    else:
        for line in _grouped_notes(cat.notes):
            click.echo(textsafe.escape(line))
    for note in res.safety:
        click.echo(textsafe.escape(f"note: {note}"))
    bad = len(res.broken)
    ok = len(cat.files) - bad - len(res.blocked)
    summary = f"{ok} datum(s) ok, {bad} with problems"
    if res.blocked:
        summary += f", {len(res.blocked)} blocked by a dependency's problems"
    click.echo(textsafe.escape(summary + ", in " + ", ".join(str(s.path) for s in cat.sources)))
    for p in res.errors:
        _say(f"error: {p}")
    if res.errors or (strict and cat.notes):
        sys.exit(EXIT_INPUT)


@main.command(name="ls")
@datums_opt
@click.option("--json", "as_json", is_flag=True)
def ls_cmd(datums: tuple[str, ...], as_json: bool) -> None:
    """Datums found, by type, and where each came from."""
    cat = _catalog(datums)
    res = _check(cat)
    origin = {str(s.path): s.origin for s in cat.sources}
    rows = []
    for ident, d in sorted(cat.datums.items(), key=lambda kv: (kv[1].type, kv[0])):
        folder = str(Path(d.path).parent)
        state = "broken" if d.path in res.broken else "blocked" if ident in res.blocked else "ok"
        rows.append({"id": ident, "type": d.type, "path": d.path, "origin": origin.get(folder, folder),
                     "managed": d.managed, "runtime": d.runtime, "hint": d.hint, "state": state})
    broken = sorted(_ident_or_file(p) for p in res.broken)
    if as_json:
        click.echo(render.to_json({"sources": [{"path": str(s.path), "origin": s.origin} for s in cat.sources],
                                   "datums": rows, "broken": broken, "blocked": sorted(res.blocked)}))
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("type", "datum", "runtime", "from", "file"):
        table.add_column(col, overflow="fold")  # a path cut short with "…" is useless
    for r in rows:
        runs = str(r["runtime"] or "-") + ("" if r["state"] == "ok" else f" ({r['state']})")
        table.add_row(*(textsafe.escape(str(x)) for x in (r["type"], r["id"], runs, r["origin"], r["path"])))
    out.print(table)
    for s in cat.sources:
        if not s.path.is_dir():  # a stale $_B00T_Path entry must not look like an empty folder
            _say(f"warning: {s.path}: datum folder not found (from {s.origin})")
    if broken:
        _say(f"{len(broken)} datum(s) with problems: {', '.join(broken)} (`b00t-graph validate` says why)")


def _ident_or_file(path: str) -> str:
    stem = Path(path).name.removesuffix(".toml")
    return stem if "." in stem else Path(path).name


def run() -> None:  # pragma: no cover - alias for `python -m b00t_graph`
    main()

