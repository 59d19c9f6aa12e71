"""Which node may start now, which are skipped after a failure: a pure, synchronous state machine.

No event loop, no clock: the engine feeds it completions and failures and it
answers with the nodes that became runnable or must be skipped. This is what
makes "start each node the moment its own dependencies are ready" (no waves,
no level barriers) easy to test exhaustively.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs


class Scheduler:
    """Dependency bookkeeping for one run over a DAG given as node → its dependencies.

    ``soft`` edges (node → some of its dependencies) are waited for but not needed: when such a
    dependency fails or is skipped the node still runs once its other dependencies are ready
    (an optional stack member). Nodes released that way are collected by :meth:`released`.
    """

    def __init__(self, deps: Mapping[str, Sequence[str]], soft: Mapping[str, Sequence[str]] | None = None) -> None:
        self._soft: set[tuple[str, str]] = {(n, d) for n, ds in (soft or {}).items() for d in ds}
        self._released: list[str] = []
        self._waiting: dict[str, int] = {n: len(set(d)) for n, d in deps.items()}
        self._dependents: dict[str, list[str]] = {n: [] for n in deps}
        for n, ds in deps.items():
            for d in set(ds):
                self._dependents[d].append(n)
        self._pending = set(deps)
        self.done: set[str] = set()
        self.failed: set[str] = set()
        self.skipped: dict[str, str] = {}

    def initial(self) -> list[str]:
        """Nodes with no dependencies: runnable at once."""
        return [n for n, k in self._waiting.items() if k == 0]

    def complete(self, node: str) -> list[str]:
        """``node`` is ready; return the dependents that have just become runnable."""
        self._pending.discard(node)
        self.done.add(node)
        out = []
        for dep in self._dependents[node]:
            self._waiting[dep] -= 1
            if self._waiting[dep] == 0 and dep in self._pending and dep not in self.skipped:
                out.append(dep)
        return out

    def fail(self, node: str) -> list[str]:
        """``node`` failed; return every node that can no longer run (transitively), now skipped.

        A dependent that only softly depends on a failed or skipped node is not skipped: it stops
        waiting for it, and when that was the last thing it waited for it goes to :meth:`released`.
        """
        self._pending.discard(node)
        self.failed.add(node)
        out = []
        stack = [(node, node)]
        while stack:
            cur, root = stack.pop()
            for dep in self._dependents[cur]:
                if dep not in self._pending:
                    continue
                if (dep, cur) in self._soft:
                    self._waiting[dep] -= 1
                    if self._waiting[dep] == 0:
                        self._released.append(dep)
                    continue
                self._pending.discard(dep)
                self.skipped[dep] = f"dependency {cur} " + ("failed" if cur == root else "was skipped")
                out.append(dep)
                stack.append((dep, root))
        # a node released by a soft edge may have been skipped later through a hard one
        self._released = [n for n in self._released if n in self._pending]
        return out

    def released(self) -> list[str]:
        """Nodes made runnable by failures of soft dependencies since the last call."""
        out, self._released = self._released, []
        return out

    @property
    def finished(self) -> bool:
        return not self._pending


def chain_heights(deps: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """For each node, how many nodes the longest chain from it to the end of the graph holds.

    Used to start the node with the most work behind it first when several are runnable at once.
    ``deps`` must list dependencies before dependents (a topological order, as :class:`Graph` does).
    """
    height = dict.fromkeys(deps, 1)
    for node in reversed(list(deps)):
        for dep in deps[node]:
            if height[dep] < height[node] + 1:
                height[dep] = height[node] + 1
    return height


@attrs.frozen
class Hop:
    """One node on the critical path: ``offset`` from the run's start, ``duration`` of its own work."""

    node: str
    offset: float
    duration: float


def critical_path(deps: Mapping[str, Sequence[str]], began: Mapping[str, float],
                  ended: Mapping[str, float]) -> list[Hop]:
    """The chain of nodes that set the wall time.

    Start from the node that finished last and walk back, at each step, to the
    dependency that finished last (the one it was really waiting for).
    """
    if not ended:
        return []
    node: str | None = max(ended, key=lambda n: ended[n])
    chain: list[Hop] = []
    while node is not None:
        chain.append(Hop(node, began.get(node, 0.0), ended[node] - began.get(node, 0.0)))
        prev = [d for d in deps.get(node, ()) if d in ended]
        node = max(prev, key=lambda d: ended[d]) if prev else None
    chain.reverse()
    return chain
