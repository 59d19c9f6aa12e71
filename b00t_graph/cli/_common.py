"""What every command shares: consoles, running on the chosen backend, errors to exit codes, options."""

from __future__ import annotations

import os
import shlex
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import anyio
import click

from .. import safety, textsafe
from ..errors import (
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_RUNTIME,
    B00tGraphError,
    InputError,
    StateDirError,
)
from ..graph import Graph
from ..loader import Catalog, datum_dirs, load_catalog
from ..locks import default_state_dir, state_dir_problem
from ..model import PLACES

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem
    from rich.console import Console

T = TypeVar("T")



class _LazyConsole:
    """A rich Console made on first use: importing rich costs more than most commands' own work."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def _real(self) -> Console:
        if self._console is None:
            from rich.console import Console

            # Off a terminal rich would wrap at 80 columns; logs and pipes read better unwrapped.
            tty = (sys.stderr if self._stderr else sys.stdout).isatty()
            self._console = Console(stderr=self._stderr, highlight=False, width=None if tty else 160)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)

    def __enter__(self) -> Console:  # dunders bypass __getattr__; rich's Live enters its console
        return self._real().__enter__()

    def __exit__(self, *exc: object) -> None:
        self._real().__exit__(*exc)


out = cast("Console", _LazyConsole(stderr=False))
err = cast("Console", _LazyConsole(stderr=True))


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


def _state(state_dir: Path | None, project: str | None = None) -> Path:
    """The effective state dir: ``--state-dir`` (or the default), in a project ``<it>/projects/<NAME>``;
    refused up front (exit 2) when it cannot be one."""
    from ..projects import project_state_dir

    path = state_dir if state_dir is not None else default_state_dir()
    why = state_dir_problem(path)
    if why is not None:
        origin = "--state-dir" if state_dir is not None else (
            "$B00T_GRAPH_STATE_DIR" if os.environ.get("B00T_GRAPH_STATE_DIR") else "default state dir")
        raise StateDirError(f"bad option {origin} {path}: {why}")
    return project_state_dir(path, project)


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


def _interrupted(targets: Sequence[str], datums: Sequence[str], state_dir: Path | None,
                 project: str | None = None) -> NoReturn:
    """Say how to remove what an interrupted ``up`` started: the same targets, folders, state dir and project."""
    argv = ["b00t-graph", "down", *targets]
    for d in datums:
        argv += ["-d", d]
    if state_dir is not None:
        argv += ["--state-dir", str(state_dir)]
    if project:
        argv += ["-p", project]
    _say(f"interrupted: what was started is recorded; `{shlex.join(argv)}` removes it")
    sys.exit(EXIT_INTERRUPTED)


# --- shared options ------------------------------------------------------------------------------
#
# -d/--datums, --state-dir and -p/--project are accepted before the subcommand too (`b00t-graph -p ci up x`):
# the group keeps them in ctx.obj and each subcommand's own option, when given, wins.

DATUMS_HELP = "Datum folder (repeatable). Default: $_B00T_Path, a _b00t_ folder here or above, the packaged datums."
STATE_HELP = ("Where process records, logs and locks live. "
              "Default: $B00T_GRAPH_STATE_DIR or $XDG_STATE_HOME/b00t-graph.")
PROJECT_HELP = ("Project namespace (letters, digits, - and _): its own containers, networks, volumes, process "
                "records and locks. Default: $B00T_PROJECT, else none (shared).")


def _group_value(ctx: click.Context, name: str) -> object:
    """The value the group was given for ``name`` (before the subcommand, or from its env var)."""
    obj = ctx.find_root().obj
    if isinstance(obj, dict) and name in obj:
        return obj[name]
    return ctx.find_root().params.get(name)  # completion parses without running the group's callback


def _or_group(ctx: click.Context, param: click.Parameter, value: object) -> object:
    if value not in (None, ()) or param.name is None:
        return value
    found = _group_value(ctx, param.name)
    return value if found in (None, ()) else found


def _project_cb(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from ..projects import check_project

    value = _or_group(ctx, param, value)  # type: ignore[assignment]
    if ctx.resilient_parsing:
        return value
    try:
        return check_project(value)
    except B00tGraphError as exc:
        _fail(exc)


def _datum_paths(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    return _or_group(ctx, param, value)  # type: ignore[return-value]


datums_opt = click.option("--datums", "-d", "datums", multiple=True, type=click.Path(file_okay=False, exists=True),
                          callback=_datum_paths, help=DATUMS_HELP)
state_opt = click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                         callback=_or_group, help=STATE_HELP)
project_opt = click.option("--project", "-p", "project", default=None, metavar="NAME", callback=_project_cb,
                           help=PROJECT_HELP)


def complete_targets(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Shell completion of TARGETS: datum identities (``grok.stack``) and their bare names when unambiguous."""
    from click.shell_completion import CompletionItem

    try:
        datums = ctx.params.get("datums") or _group_value(ctx, "datums") or ()
        cat = load_catalog(datum_dirs(tuple(datums)))  # type: ignore[arg-type]
    except Exception:  # completion must never print a traceback into the user's shell
        return []
    idents = sorted(cat.datums)
    bare: dict[str, int] = {}
    for ident in idents:
        name = ident.rsplit(".", 1)[0]
        bare[name] = bare.get(name, 0) + 1
    words = [*idents, *(n for n, count in bare.items() if count == 1 and n not in cat.datums)]
    return [CompletionItem(w, help=cat.datums[w].type if w in cat.datums else None)
            for w in sorted(words) if w.startswith(incomplete)]


def _catalog(datums: Sequence[str]) -> Catalog:
    return load_catalog(datum_dirs(datums))


use_opt = click.option("--use", "use", multiple=True, metavar="SLOT=NAME",
                       help="Fill the capability slot SLOT ([b00t.requires.SLOT]) with the datum NAME, "
                            "whatever prefer/fallback say (repeatable).")


engine_opt = click.option("--engine", "engine", multiple=True, metavar="NODE=NAME",
                          help="Run the docker node NODE on the engine NAME (b00t-graph.toml [engines.NAME], "
                               "or a Docker context), whatever its datum says (repeatable).")


def parse_engine(items: Sequence[str]) -> dict[str, str]:
    """``["db=gpu"]`` → ``{"db": "gpu"}``; exit 2 when malformed."""
    out: dict[str, str] = {}
    for item in items:
        node, eq, name = item.partition("=")
        if not eq or not node.strip() or not name.strip():
            raise InputError(f"--engine {item!r}: expected NODE=NAME (e.g. --engine qdrant=gpu)")
        out[node.strip()] = name.strip()
    return out


on_opt = click.option("--on", "on", type=click.Choice(PLACES), default=None,
                      help="Run every docker datum there instead of on the local engine (swarm: as Swarm services; "
                           "a datum's own `[b00t] on` does this for one datum). Give it to `down` too.")


def _graph(datums: Sequence[str], targets: Sequence[str], use: Sequence[str] = (), offline: bool = False,
           engine: Sequence[str] = (), on: str | None = None, catalog: Catalog | None = None) -> Graph:
    """Compile ``targets`` (from ``catalog`` when the caller has loaded it already); exit 2 on bad input."""
    from ..capabilities import parse_use
    from ..graph import compile_graph, placed_on
    from ..reachability import runtime_reachable

    cat = catalog if catalog is not None else _catalog(datums)
    try:
        # Offline, a capability provider is usable when it loads and its env is set; otherwise its
        # runtime must also be reachable (one socket connect, remembered).
        graph = placed_on(compile_graph(cat, targets, use=parse_use(use),
                                        reachable=None if offline else runtime_reachable,
                                        engine_of=parse_engine(engine)), on)
    except B00tGraphError as exc:
        _fail(exc)
    if _debug():  # broken datums the request does not need do not stop it; say so only when asked
        used = {n.spec.path for n in graph.nodes.values()}
        for problem in cat.problems:
            if problem.path not in used:
                _say(f"warning: {problem} (not needed here)")
    return graph

def _deny_privileged(graph: Graph) -> None:
    """``up --deny-privileged``: refuse, before anything starts, a graph with a privileged node."""
    found = safety.privileged_nodes(graph)
    if found:
        which = ", ".join(f"{ident} ({'; '.join(c.what for c in concerns)})" for ident, concerns in found.items())
        raise InputError(f"--deny-privileged: refusing {len(found)} privileged node(s): {which}")
