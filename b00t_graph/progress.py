"""Showing a run as it happens: a live view on a terminal, plain timestamped lines elsewhere, or nothing.

The live view is one row per node — state, time in that state (ticking, 4 refreshes a second),
and a detail: what a waiting node waits on, a probing node's tries and last result, an image
pull's progress, a failed node's last log lines. It always fits the terminal: on a short one,
finished rows collapse into one line first so active, failed and pending rows stay visible; on a
narrow one the detail is cut first, node names last. It is transient (nothing left in the
scrollback); the caller prints the final timings afterwards.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:  # rich is imported where a view is drawn: a quiet run never pays for it
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.text import Text

from .graph import Graph
from .model import DOCKER_RUNTIMES
from .textsafe import escape

_STYLE = {"ready": "green", "running": "green", "failed": "red", "skipped": "yellow", "cancelled": "yellow",
          "starting": "cyan", "probing": "cyan", "pulling": "blue", "preparing": "blue", "stopping": "cyan",
          "stopped": "green"}
#: phases after which a node does nothing more in this run
FINISHED = frozenset({"ready", "running", "stopped", "skipped", "cancelled", "absent", "group", "failed"})
#: finished and fine: these rows are the first to collapse on a short terminal
_DONE_OK = frozenset({"ready", "running", "stopped", "absent", "group"})
_TRY = re.compile(r"try (\d+): (.*)", re.DOTALL)
_STATE_W = 9  # "cancelled", "preparing"
_TIME_W = 6


@attrs.define
class Row:
    phase: str = "waiting"
    detail: str = ""
    since: float = 0.0  # monotonic time the node entered ``phase``
    at: float = 0.0  # seconds from the run's start when it did
    tries: int = 0
    last: str = ""  # the last probe result
    tail: list[str] = attrs.field(factory=list)  # last log lines of a failed node
    printed: str = ""  # the last probe result printed as a plain line


class ProgressReporter:
    """A :class:`~b00t_graph.events.Reporter` that is also a context manager around the run.

    ``logs``: print a failed node's last log lines as soon as it fails (``up --logs``).
    """

    def __init__(self, graph: Graph, console: Console, *, live: bool, quiet: bool, verb: str = "up",
                 logs: bool = False) -> None:
        self.graph = graph
        self.console = console
        self.quiet = quiet
        self.verb = verb
        self.logs = logs
        self.t0 = time.monotonic()
        self.rows: dict[str, Row] = {i: Row(since=self.t0) for i in graph.nodes}
        self.deps = {i: tuple(n.deps) for i, n in graph.nodes.items()}
        self._lock = threading.Lock()  # events come from the run; renders from rich's refresh thread
        self._live = None
        if live and not quiet:
            from rich.live import Live

            self._live = Live(console=console, refresh_per_second=4, transient=True,
                              get_renderable=lambda: _View(self))

    # --- events -----------------------------------------------------------------------------------

    def event(self, node: str, phase: str, detail: str = "") -> None:
        now = time.monotonic()
        at = now - self.t0
        with self._lock:
            row = self.rows.setdefault(node, Row(since=now))
            if phase == "probe":
                m = _TRY.match(detail)
                if m is not None:
                    row.tries, row.last = int(m.group(1)), m.group(2)
                else:
                    row.last = detail
            elif phase == "log":
                row.tail = detail.rstrip().splitlines()[-3:]
            else:
                if phase != row.phase:
                    row.since, row.at = now, at
                row.phase, row.detail = phase, detail
        if self.quiet:
            return
        if phase == "log":
            if self.logs:
                self._print_tail(node, detail)
            return
        if self._live is not None:
            return  # the view ticks by itself
        if phase == "probe":
            # Off a terminal, one line per try would drown the rest: only when the result changes.
            if row.last == row.printed:
                return
            row.printed = row.last
            line = f"{at:7.2f}s {node} probe: {detail}"
        else:
            line = f"{at:7.2f}s {node} {phase}" + (f": {detail}" if detail else "")
        self.console.print(escape(line), markup=False, highlight=False, soft_wrap=True)

    def _print_tail(self, node: str, tail: str) -> None:
        lines = tail.rstrip().splitlines()[-20:]
        if not lines:
            return
        self.console.print(f"{node}: last {len(lines)} log line(s):", markup=False, highlight=False, style="red")
        for ln in lines:
            self.console.print(escape(f"  {node} | {ln}"), markup=False, highlight=False, soft_wrap=True)

    def __enter__(self) -> ProgressReporter:
        self.t0 = time.monotonic()
        for row in self.rows.values():
            row.since = self.t0
        if self._live is not None:
            self._live.__enter__()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.__exit__(et, ev, tb)

    # --- rendering --------------------------------------------------------------------------------

    def waiting_on(self, ident: str) -> list[str]:
        return [d for d in self.deps.get(ident, ()) if self.rows.get(d, Row()).phase not in _DONE_OK]

    def lines(self, width: int, height: int) -> list[Text]:
        """The view as lines that fit ``width`` × ``height`` (see the module docstring for what goes first)."""
        from rich.text import Text

        now = time.monotonic()
        with self._lock:
            rows = [(i, attrs.evolve(r, tail=list(r.tail))) for i, r in self.rows.items()]
        total = len(rows)
        ok = sum(1 for _, r in rows if r.phase in _DONE_OK)
        failed = sum(1 for _, r in rows if r.phase == "failed")
        name_w = min(max((len(i) for i, _ in rows), default=4), max(8, width - _STATE_W - _TIME_W - 6))
        summary = Text(f"b00t-graph {self.verb}: {'ready' if self.verb == 'up' else 'done'} {ok}/{total}",
                       style="bold")
        if failed:
            summary.append(f", failed {failed}", style="red")
        summary.append(f" · {now - self.t0:.1f}s", style="dim")

        def row_line(ident: str, r: Row) -> list[Text]:
            text = Text(no_wrap=True, overflow="ellipsis")
            text.append(f"{ident:<{name_w}}  ")
            text.append(f"{r.phase:<{_STATE_W}}", style=_STYLE.get(r.phase, "dim"))
            text.append(f"  {_elapsed(now - r.since):>{_TIME_W}}  ", style="dim")
            text.append(escape(self._detail(ident, r)))
            text.truncate(width, overflow="ellipsis")
            out = [text]
            if r.phase == "failed":
                for ln in r.tail:
                    t = Text(f"{'':<{name_w}}  | {escape(ln)}", style="dim", no_wrap=True, overflow="ellipsis")
                    t.truncate(width, overflow="ellipsis")
                    out.append(t)
            return out

        active = [(i, r) for i, r in rows if r.phase not in FINISHED and r.phase != "waiting"]
        bad = [(i, r) for i, r in rows if r.phase in ("failed", "skipped", "cancelled")]
        pending = [(i, r) for i, r in rows if r.phase == "waiting"]
        done = [(i, r) for i, r in rows if r.phase in _DONE_OK]
        room = max(1, height - 2)  # the summary, and the line rich's live display keeps for the cursor
        body: list[Text] = []
        order = {i: n for n, (i, _) in enumerate(rows)}
        if sum(len(row_line(i, r)) for i, r in rows) <= room:
            for i, r in rows:
                body += row_line(i, r)
            summary.truncate(width, overflow="ellipsis")
            return [summary, *body]
        # Too short: finished rows collapse into one line; what still moves keeps its place.
        keep = sorted(active + bad, key=lambda ir: order[ir[0]]) + pending
        lines: list[Text] = []
        for i, r in keep:
            lines += row_line(i, r)
        if done:  # said on the summary line, which is there anyway: one more row stays visible
            summary.append(f" · {len(done)} finished row(s) hidden", style="green")
        if len(lines) > room:
            lines = lines[:max(0, room - 1)]
            cut = len(keep) - sum(1 for ln in lines if not ln.plain.lstrip().startswith("|"))
            lines.append(Text(f"… {cut} more row(s) not shown (terminal too short)", style="dim"))
        summary.truncate(width, overflow="ellipsis")
        return [summary, *lines]

    def _detail(self, ident: str, r: Row) -> str:
        if r.phase == "waiting":
            on = self.waiting_on(ident)
            return f"waiting on {_names(on)}" if on else ""
        if r.phase == "probing" and r.tries:
            return f"try {r.tries}: {r.last}" + (f" · {r.detail}" if r.detail else "")
        return r.detail


def _names(idents: Iterable[str], most: int = 3) -> str:
    names = list(idents)
    return ", ".join(names[:most]) + (f" +{len(names) - most}" if len(names) > most else "")


def _elapsed(s: float) -> str:
    if s < 60:
        return f"{s:.1f}s"
    return f"{int(s // 60)}m{int(s % 60):02d}s"


class _View:
    """What rich's live display renders each refresh, sized to the console at that moment."""

    def __init__(self, rep: ProgressReporter) -> None:
        self.rep = rep

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.console import Group

        height = options.height or console.size.height
        with contextlib.suppress(OSError, ValueError, AttributeError):
            # the terminal itself over a stale $LINES (rich prefers the variable): a view taller than
            # the terminal cannot be erased and would leave frames in the scrollback
            height = min(height, os.get_terminal_size(console.file.fileno()).lines) or height
        yield Group(*self.rep.lines(options.max_width, height))


def make_reporter(graph: Graph, *, quiet: bool, console: Console, verb: str = "up",
                  logs: bool = False) -> ProgressReporter:
    # quiet: no view at all, so the console (and rich) is never touched
    return ProgressReporter(graph, console, live=not quiet and console.is_terminal, quiet=quiet, verb=verb,
                            logs=logs)


# --- after up ------------------------------------------------------------------------------------

_URL = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$", re.IGNORECASE)


def endpoints(graph: Graph, idents: Iterable[str]) -> dict[str, list[str]]:
    """node → its URLs (exports that look like one) and published host ports, for the given nodes."""
    out: dict[str, list[str]] = {}
    for ident in idents:
        node = graph.nodes[ident]
        found = [v for v in node.exports.values() if _URL.match(v)]
        if node.runtime in DOCKER_RUNTIMES:
            try:
                from .runtimes.dockerargs import plan
                from .runtimes.ports import published

                for port, proto, host in published(plan(node, {}).config):
                    found.append(f"{host or '0.0.0.0'}:{port}" + ("" if proto == "tcp" else f"/{proto}"))
            except Exception:  # a courtesy line must never fail a run that succeeded
                pass
        if found:
            out[ident] = list(dict.fromkeys(found))
    return out
