"""A runtime that starts nothing: for scheduler tests and benchmarks of the engine's own overhead."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import anyio

from ..errors import StartError
from ..graph import Node
from . import Action, Observed, State


class NullRuntime:
    """Every node is absent, "starts" after ``delays[id]`` seconds (0 by default) and is ready at once.

    ``fail`` names nodes whose start raises; ``running`` names nodes observed as already running.
    ``order`` records the order nodes were started, for tests.
    """

    name = "null"
    prepares = False

    def __init__(self, delays: Mapping[str, float] | None = None, *, fail: Sequence[str] = (),
                 running: Sequence[str] = ()) -> None:
        self.delays = dict(delays or {})
        self.fail = set(fail)
        self.running = set(running)
        self.order: list[str] = []
        self.stopped: list[str] = []

    async def observe(self, nodes: Sequence[Node]) -> dict[str, Observed]:
        return {n.id: Observed(State.RUNNING, n.config_hash, "null") if n.id in self.running
                else Observed(State.ABSENT) for n in nodes}

    async def prepare(self, node: Node, action: Action) -> None:
        return None

    async def start(self, node: Node, observed: Observed, action: Action) -> Observed:
        self.order.append(node.id)
        delay = self.delays.get(node.id, 0.0)
        if delay:
            await anyio.sleep(delay)
        if node.id in self.fail:
            raise StartError(node.id, "failed on purpose (null runtime)")
        self.running.add(node.id)
        return Observed(State.RUNNING, node.config_hash, "null")

    async def wait_ready(self, node: Node) -> str:
        return "null"

    async def logs(self, node: Node, lines: int = 20) -> str:
        return ""

    async def stop(self, node: Node, observed: Observed, *, remove_volumes: bool = False) -> None:
        self.stopped.append(node.id)
        self.running.discard(node.id)

    async def aclose(self) -> None:
        return None
