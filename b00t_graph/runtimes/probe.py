"""The ``probe`` runtime kind: something b00t-graph does not run, but waits on.

An mcp datum whose chosen entry is an httpstream server on a loopback URL (and that has no
lifecycle server of its own) is such a node: nothing is started, ``wait_ready`` runs its health
check (``HealthCheck(http_url=url, expected_status=0)``: any HTTP answer means the server is
there). An exec probe runs locally.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import anyio

from ..graph import Node
from ..readiness import wait_ready
from . import Action, Observed


class ProbeRuntime:
    """Waits on a node's health check; starts, stops and observes nothing."""

    name = "probe"
    prepares = False
    starts = False

    def __init__(self, **_: object) -> None:
        pass

    async def observe(self, nodes: Sequence[Node]) -> dict[str, Observed]:
        return {}  # probing is the only way to know, and observe must stay cheap

    async def prepare(self, node: Node, action: Action) -> None:
        return None

    async def start(self, node: Node, observed: Observed, action: Action) -> Observed:
        return observed

    async def wait_ready(self, node: Node) -> str:
        if node.health is None or not node.health.probes():
            return "nothing to probe"
        return await wait_ready(node, self)

    # --- ProbeHost --------------------------------------------------------------------------------

    async def alive(self, node: Node) -> None:
        return None  # not ours: only the probe can tell

    async def exec(self, node: Node, argv: list[str], timeout: float) -> int:
        try:
            with anyio.fail_after(timeout):
                proc = await anyio.run_process(argv, cwd=Path(node.spec.path).parent,
                                               env={**os.environ, **node.env}, check=False,
                                               stdin=subprocess.DEVNULL)
        except OSError:
            return 127
        return proc.returncode

    async def logs(self, node: Node, lines: int = 20) -> str:
        return ""

    async def stop(self, node: Node, observed: Observed, *, remove_volumes: bool = False) -> None:
        return None

    async def aclose(self) -> None:
        return None
