"""Progress events from the engine and runtimes to whoever shows them (live view, plain lines, nothing).

Runtimes and the engine only call :meth:`Reporter.event`; the CLI decides how
(and whether) to show it, which keeps ``ensure()`` silent by default.
"""

from __future__ import annotations

import logging
from typing import Protocol

_log = logging.getLogger("b00t_graph")


class Reporter(Protocol):
    def event(self, node: str, phase: str, detail: str = "") -> None:
        """``phase`` is one of: waiting, preparing, pulling, starting, probing, ready, running,
        failed, skipped, stopping, stopped, cancelled; ``detail`` is free text for people.

        ``probe`` is not a phase but a try of a readiness probe that failed (the node stays
        ``probing``): ``detail`` is ``"try N: <why>"``, e.g. ``"try 3: connection refused"``;
        ``log`` carries a failed node's last log lines."""
        ...


class Silent:
    """The default: embedded use prints nothing."""

    def event(self, node: str, phase: str, detail: str = "") -> None:
        pass


class Logged:
    """Passes events on and logs each at debug level (``B00T_DEBUG=1``): a record of every transition."""

    def __init__(self, inner: Reporter) -> None:
        self.inner = inner

    def event(self, node: str, phase: str, detail: str = "") -> None:
        _log.debug("%s %s%s", node, phase, f": {detail}" if detail else "")
        self.inner.event(node, phase, detail)
