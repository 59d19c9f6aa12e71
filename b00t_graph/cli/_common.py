"""What every command shares: consoles, running on the chosen backend, errors to exit codes, options."""

from __future__ import annotations

import os
import shlex
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import NoReturn, TypeVar

import anyio
import click
from rich.console import Console

from ..errors import (
    EXIT_INTERRUPTED,
    B00tGraphError,
)
from ..graph import Graph
from ..loader import Catalog, datum_dirs, load_catalog

T = TypeVar("T")

# Off a terminal rich would wrap at 80 columns; logs and pipes read better unwrapped.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


def _debug() -> bool:
    return os.environ.get("B00T_DEBUG", "") not in ("", "0")


def _backend() -> str:
    return os.environ.get("B00T_BACKEND", "asyncio")


def _fail(exc: B00tGraphError) -> NoReturn:
    if _debug():
        traceback.print_exception(exc)
    click.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)


def _run(fn: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on the chosen backend, turning our errors into messages and exit codes."""
    try:
        return anyio.run(fn, backend=_backend())
    except B00tGraphError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)


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
    click.echo(f"interrupted: what was started is recorded; `{shlex.join(argv)}` removes it", err=True)
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
                click.echo(f"warning: {problem} (not needed here)", err=True)
    return graph
