"""Showing a run as it happens: a live table on a terminal, plain timestamped lines elsewhere, or nothing."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .graph import Graph
from .textsafe import escape

_STYLE = {"ready": "green", "running": "green", "failed": "red", "skipped": "yellow", "cancelled": "yellow",
          "starting": "cyan", "probing": "cyan", "pulling": "blue", "preparing": "blue", "stopping": "cyan",
          "stopped": "green"}


class ProgressReporter:
    """A :class:`~b00t_graph.events.Reporter` that is also a context manager around the run."""

    def __init__(self, graph: Graph, console: Console, *, live: bool, quiet: bool, verb: str = "up") -> None:
        self.graph = graph
        self.console = console
        self.quiet = quiet
        self.verb = verb
        self.t0 = time.monotonic()
        self.state: dict[str, tuple[str, str, float]] = {i: ("waiting", "", 0.0) for i in graph.nodes}
        self._live = Live(self._table(), console=console, refresh_per_second=12, transient=True) \
            if live and not quiet else None

    def _table(self) -> Table:
        table = Table(box=None, pad_edge=False, title=f"b00t-graph {self.verb}", title_justify="left")
        table.add_column("node")
        table.add_column("state")
        table.add_column("at", justify="right")
        table.add_column("detail", overflow="ellipsis", no_wrap=True, max_width=70)
        for ident, (phase, detail, at) in self.state.items():
            table.add_row(escape(ident), Text(phase, style=_STYLE.get(phase, "dim")), f"{at:.2f}s" if at else "",
                          escape(detail))
        return table

    def event(self, node: str, phase: str, detail: str = "") -> None:
        at = time.monotonic() - self.t0
        self.state[node] = (phase, detail, at)
        if self.quiet:
            return
        if self._live is not None:
            self._live.update(self._table())
        else:
            line = f"{at:7.2f}s {node} {phase}" + (f": {detail}" if detail else "")
            self.console.print(escape(line), markup=False, highlight=False)

    def __enter__(self) -> ProgressReporter:
        self.t0 = time.monotonic()
        if self._live is not None:
            self._live.__enter__()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.__exit__(et, ev, tb)


def make_reporter(graph: Graph, *, quiet: bool, console: Console, verb: str = "up") -> ProgressReporter:
    return ProgressReporter(graph, console, live=console.is_terminal, quiet=quiet, verb=verb)
