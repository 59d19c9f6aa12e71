"""What every command shares: consoles, running on the chosen backend, errors to exit codes, options."""

from __future__ import annotations

import os
import shlex
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import anyio
import click
from rich.console import Console

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


use_opt = click.option("--use", "use", multiple=True, metavar="SLOT=NAME",
                       help="Fill the capability slot SLOT ([b00t.requires.SLOT]) with the datum NAME, "
                            "whatever prefer/fallback say (repeatable).")


def _graph(datums: Sequence[str], targets: Sequence[str], use: Sequence[str] = (), offline: bool = False) -> Graph:
    from ..capabilities import parse_use
    from ..graph import compile_graph
    from ..reachability import runtime_reachable

    cat = _catalog(datums)
    try:
        # Offline, a capability provider is usable when it loads and its env is set; otherwise its
        # runtime must also be reachable (one socket connect, remembered).
        graph = compile_graph(cat, targets, use=parse_use(use), reachable=None if offline else runtime_reachable)
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
