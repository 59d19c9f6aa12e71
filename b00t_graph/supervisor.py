"""Supervision: keeping what ``up`` brought up running (``up --attach``).

It sits on top of the :class:`~b00t_graph.engine.Engine` and acts only through it: after ``up``,
each node it started or found running is watched. A crash is seen through the runtime's
``alive`` (polled every ``poll`` seconds); liveness runs the datum's readiness probes every
``interval`` after ready (a container's own HEALTHCHECK when it has no probe), and
``failure_threshold`` misses in a row are a failure. What happens then is the node's
:class:`~b00t_graph.model.RestartPolicy` (``[b00t.restart]``, or b00t's ``[b00t.lifecycle] restart``
mapped onto it): a restart is :meth:`Engine.restart` on the node and its running dependents — the
ones declaring ``[b00t] restart_dependents = true`` are restarted with it in dependency order,
the others probed again — after a backoff with jitter (:func:`next_delay`). A node that fails
``max_restarts`` restarts in a row ends "failed", is stopped, and its log tail is reported.

A node that is gone altogether (no process record, no container) was taken away on purpose by a
``down`` or ``stop``: a crash leaves its record or its exited container behind. Its supervision ends
("stopped") instead of fighting the ``down``; the look is taken under the node's lock, so a
``down`` half way is waited for, not raced. (A container run with ``--rm`` leaves nothing when it
crashes: it is seen as taken down.)

The decisions (:func:`policy_of`, :func:`verdict`, :func:`next_delay`) are pure functions.
Supervision runs in ``up --attach`` and in the detached ``supervise`` (:mod:`b00t_graph.detached`).
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Iterable
from typing import Protocol

import anyio
import attrs

from .engine import Engine, RunResult
from .errors import B00tGraphError, NodeError
from .events import Reporter
from .graph import Graph, Node
from .locks import node_lock
from .model import Datum, RestartPolicy
from .readiness import _Http, probe_once
from .runtimes import ABSENT, Runtime, State

#: States a node does not leave: supervision of it is over.
TERMINAL = frozenset({"exited", "failed", "stopped"})
#: How often ``alive`` is asked by default (seconds).
POLL = 0.5

_CODE = re.compile(r"exited with code (-?\d+)")


class _Random(Protocol):
    def random(self) -> float: ...


def next_delay(attempt: int, base: float, cap: float, rng: _Random) -> float:
    """Seconds to wait before restart number ``attempt`` (1, 2, …): ``base`` doubled each attempt,
    at most ``cap``, half of it fixed and half random ("equal jitter"), so restarts of many nodes
    that failed together spread out while each still waits at least half its step."""
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    step = min(cap, base * 2 ** min(attempt - 1, 62))
    return float(step / 2 + rng.random() * step / 2)


def policy_of(datum: Datum) -> RestartPolicy:
    """The datum's restart policy: ``[b00t.restart]``, else b00t's (docker's) ``restart`` string mapped
    onto it (``always``/``unless-stopped`` → always, ``on-failure[:N]`` → on-failure with N restarts),
    else ``"no"``."""
    if datum.restart_policy is not None:
        return datum.restart_policy
    name, _, count = (datum.restart or "no").partition(":")
    if name in ("always", "unless-stopped"):
        return RestartPolicy(policy="always")
    if name == "on-failure":
        return RestartPolicy(policy="on-failure", **({"max_restarts": int(count)} if count.isdigit() else {}))
    return RestartPolicy()


@attrs.frozen
class Failure:
    """Why a supervised node needs attention: it ``exited`` (``code`` when known) or is ``unhealthy``."""

    kind: str
    reason: str
    code: int | None = None
    log_tail: str = ""


def verdict(policy: RestartPolicy, restarts: int, failure: Failure) -> str:
    """``"restart"``, ``"failed"`` (restarts used up), or ``"leave"`` (the policy does not restart it)."""
    if policy.policy == "no":
        return "leave"
    if policy.policy == "on-failure" and failure.kind == "exited" and failure.code == 0:
        return "leave"
    return "failed" if restarts >= policy.max_restarts else "restart"


@attrs.define
class Watched:
    """One supervised node: ``status`` is running | unhealthy | restarting | exited | failed | stopped
    (taken down by a ``down`` or ``stop``)."""

    node: str
    policy: RestartPolicy
    status: str = "running"
    restarts: int = 0  # in a row (reset after the node stays up ``reset_after_ms``)
    total_restarts: int = 0
    misses: int = 0
    since: float = 0.0
    reason: str = ""
    log_tail: str = ""


def supervisable(res: RunResult) -> list[str]:
    """The nodes of ``res`` worth watching: ready or running, started by a runtime that starts things."""
    out = []
    for ident, tm in res.timings.items():
        node = res.graph.nodes[ident]
        if tm.status not in ("ready", "running") or tm.action.checks or not node.spec.managed:
            continue
        if node.runtime == "swarm":
            continue  # Swarm restarts its tasks itself
        if node.runtime in ("docker", "process") or node.spec.kind in ("docker", "process"):
            out.append(ident)
    return out


class Supervisor:
    """Watches ``nodes`` of ``graph`` (default: every managed node) and applies their restart policies.

    Events go to ``reporter`` (default: the engine's): ``exited``, ``unhealthy``, ``healthy``,
    ``restarting``, ``restarted``, ``failed`` (terminal, followed by ``log`` with the tail), and
    ``probe`` for a liveness miss. :meth:`run` returns once no node is left to watch.
    ``finish_restarts``: a cancel (SIGTERM of the detached supervisor, which leaves the services running)
    waits for a restart under way to end, so no node is left half way between stopped and started.
    """

    def __init__(self, engine: Engine, graph: Graph, nodes: Iterable[str] | None = None, *,
                 poll: float = POLL, rng: _Random | None = None, reporter: Reporter | None = None,
                 finish_restarts: bool = False) -> None:
        self.engine = engine
        self.finish_restarts = finish_restarts
        self.graph = graph
        self.poll = poll
        self.rng: _Random = rng or random.Random()
        self.reporter: Reporter = reporter or engine.reporter
        idents = list(nodes) if nodes is not None else [
            i for i, n in graph.nodes.items() if n.runtime in ("docker", "process")]
        self.watched = {i: Watched(i, policy_of(graph.nodes[i].spec)) for i in idents}
        self.restarted: list[str] = []  # every node a restart started, in order (for `down` at the end)
        self._restarting: set[str] = set()
        self._begun = 0  # restarts begun so far: a look that spans one cannot be trusted
        self._lock = anyio.Lock()
        self._deps = {i: self._closure_of([i]) - {i} for i in self.watched}

    # --- graph helpers ----------------------------------------------------------------------------

    def _closure_of(self, idents: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        todo = list(idents)
        while todo:
            cur = todo.pop()
            if cur in seen or cur not in self.graph.nodes:
                continue
            seen.add(cur)
            todo.extend(self.graph.nodes[cur].deps)
        return seen

    def _subgraph(self, idents: list[str]) -> Graph:
        keep = self._closure_of(idents)
        return Graph(nodes={i: n for i, n in self.graph.nodes.items() if i in keep}, targets=tuple(idents))

    def dependents(self, ident: str) -> list[str]:
        """Watched nodes that need ``ident`` (directly or not), still supervised, in graph order."""
        return [i for i, deps in self._deps.items()
                if ident in deps and self.watched[i].status not in TERMINAL]

    def _runtime(self, node: Node) -> Runtime | None:
        return self.engine.runtimes.for_node(node)

    # --- the loop ---------------------------------------------------------------------------------

    async def run(self) -> dict[str, Watched]:
        """Supervise until cancelled, or until every watched node has exited or failed."""
        now = anyio.current_time()
        for w in self.watched.values():
            w.since = now
        async with anyio.create_task_group() as tg:
            for w in self.watched.values():
                tg.start_soon(self._watch, w)
        return self.watched

    def _paused(self, ident: str) -> bool:
        return ident in self._restarting or bool(self._restarting & self._deps[ident])

    async def _watch(self, w: Watched) -> None:
        node = self.graph.nodes[w.node]
        rt = self._runtime(node)
        alive = getattr(rt, "alive", None)
        if rt is None or alive is None:
            return
        hc = node.health
        interval = (w.policy.interval_ms or (hc.interval_ms if hc else 1000)) / 1000
        next_probe = anyio.current_time() + interval
        http = _Http()
        while w.status not in TERMINAL:
            await anyio.sleep(min(self.poll, interval))
            if self._paused(w.node):
                next_probe = anyio.current_time() + interval
                continue
            failure: Failure | None = None
            try:
                await alive(node)
            except NodeError as exc:
                m = _CODE.search(exc.reason)
                failure = Failure("exited", exc.reason, int(m.group(1)) if m else None, exc.log_tail)
            except B00tGraphError as exc:  # the runtime could not answer (an engine restarting): ask again later
                self.reporter.event(w.node, "probe", f"cannot check: {exc}")
                continue
            if failure is None and anyio.current_time() >= next_probe:
                next_probe = anyio.current_time() + interval
                failure = await self._liveness(w, node, rt, http)
            if failure is not None and not self._paused(w.node):
                if failure.kind == "exited":
                    begun = self._begun
                    gone = await self._taken_down(node, rt)
                    if self._begun != begun or self._paused(w.node):
                        continue  # a restart of ours began meanwhile: what was seen may be its doing
                    if gone:
                        w.status, w.reason = "stopped", "taken down by a `down` or `stop`: no longer supervised"
                        self.reporter.event(w.node, "stopped", w.reason)
                        return
                await self._handle(w, node, rt, failure)
                next_probe = anyio.current_time() + interval

    async def _taken_down(self, node: Node, rt: Runtime) -> bool:
        """The node is gone altogether (no record, no container): a ``down`` or ``stop`` removed it."""
        try:
            async with node_lock(self.engine.state_dir, node.id, remove=True):
                obs = (await rt.observe([node])).get(node.id, ABSENT)
        except B00tGraphError:
            return False  # cannot tell: the policy decides, as for any exit
        return obs.state is State.ABSENT

    async def _liveness(self, w: Watched, node: Node, rt: Runtime, http: _Http) -> Failure | None:
        why = await self._probe(node, rt, http)
        if why is None:
            if w.status == "unhealthy":
                w.status = "running"
                self.reporter.event(w.node, "healthy", "liveness probe passes again")
            w.misses = 0
            return None
        w.misses += 1
        self.reporter.event(w.node, "probe", f"liveness miss {w.misses}/{w.policy.failure_threshold}: {why}")
        if w.misses < w.policy.failure_threshold:
            return None
        w.misses = 0
        return Failure("unhealthy", f"liveness failed {w.policy.failure_threshold} times in a row; last: {why}")

    async def _probe(self, node: Node, rt: Runtime, http: _Http) -> str | None:
        """Why the node is not live, or ``None``: its probes, else a container's own HEALTHCHECK."""
        hc = node.health
        try:
            if hc is not None and hc.probes():
                return await probe_once(node, hc, rt, http)  # type: ignore[arg-type]  # runtimes are ProbeHosts
            if node.runtime == "docker":
                obs = (await rt.observe([node])).get(node.id, ABSENT)
                if obs.state is State.UNREADY and "unhealthy" in obs.detail:
                    return "docker HEALTHCHECK reports unhealthy"
        except NodeError as exc:
            return exc.reason
        except B00tGraphError as exc:  # the runtime could not answer: not the node's fault, not a miss
            self.reporter.event(node.id, "probe", f"cannot check: {exc}")
        return None

    async def _handle(self, w: Watched, node: Node, rt: Runtime, failure: Failure) -> None:
        """Apply the policy to one failure; restart (with backoff) until ready or out of restarts."""
        while True:
            self.reporter.event(w.node, failure.kind, failure.reason)
            w.reason, w.log_tail = failure.reason, failure.log_tail
            now = anyio.current_time()
            if w.status == "running" and now - w.since >= w.policy.reset_after_ms / 1000:
                w.restarts = 0  # it stayed up long enough: an old run of failures is forgiven
            what = verdict(w.policy, w.restarts, failure)
            if what == "leave":
                w.status = "exited" if failure.kind == "exited" else "unhealthy"
                if failure.kind == "exited":
                    await self._report_tail(w, node, rt, f"{failure.reason} (restart policy "
                                            f"{w.policy.policy!r}: not restarted)", phase="exited")
                return
            if what == "failed":
                await self._give_up(w, node, rt, failure)
                return
            w.restarts += 1
            w.total_restarts += 1
            delay = next_delay(w.restarts, w.policy.backoff_ms / 1000, w.policy.max_backoff_ms / 1000, self.rng)
            w.status = "restarting"
            self.reporter.event(w.node, "restarting", f"restart {w.restarts}/{w.policy.max_restarts} "
                                f"in {delay:.2f}s ({failure.reason})")
            self._restarting.add(w.node)
            self._begun += 1
            try:
                await anyio.sleep(delay)
                with anyio.CancelScope(shield=self.finish_restarts):
                    problem = await self._restart(w)
            finally:
                self._restarting.discard(w.node)
            if problem is None:
                return
            failure = problem

    async def _restart(self, w: Watched) -> Failure | None:
        """Stop and start the node (and its ``restart_dependents``) through the engine; ``None`` when ready."""
        async with self._lock:
            deps = self.dependents(w.node)
            again = [d for d in deps if self.graph.nodes[d].spec.extra.get("restart_dependents") is True]
            for d in deps:
                self.watched[d].misses = 0
            try:
                down, up = await self.engine.restart(self._subgraph([w.node, *deps]), {w.node, *again})
            except B00tGraphError as exc:
                return Failure("exited", f"restart failed: {exc}")
        err = down.failures.get(w.node) or (up.failures.get(w.node) if up is not None else None)
        if up is None or err is not None or w.node in up.skipped:
            why = getattr(err, "reason", str(err)) if err is not None else "its restart did not complete"
            return Failure("exited", f"restart failed: {why}", None, getattr(err, "log_tail", ""))
        now = anyio.current_time()
        for ident in [w.node, *again]:
            if ident not in self.restarted:
                self.restarted.append(ident)
            if ident in up.timings and up.timings[ident].status == "ready":
                other = self.watched[ident]
                other.status, other.misses, other.since = "running", 0, now
                self.reporter.event(ident, "restarted", "ready again" if ident == w.node
                                    else f"restarted with its dependency {w.node}")
        w.status, w.misses, w.since = "running", 0, now
        return None

    async def _give_up(self, w: Watched, node: Node, rt: Runtime, failure: Failure) -> None:
        w.status = "failed"
        with anyio.CancelScope(shield=True), contextlib.suppress(B00tGraphError):
            obs = (await rt.observe([node])).get(node.id, ABSENT)
            if obs.state is not State.ABSENT:
                w.log_tail = w.log_tail or await rt.logs(node, 20)
                await self.engine.stop(self._subgraph([w.node]), {w.node})  # never leave it half-alive
        await self._report_tail(w, node, rt, f"gave up after {w.restarts} restart(s): {failure.reason}",
                                phase="failed")

    async def _report_tail(self, w: Watched, node: Node, rt: Runtime, reason: str, *, phase: str) -> None:
        if not w.log_tail:
            with contextlib.suppress(B00tGraphError):
                w.log_tail = await rt.logs(node, 20)
        w.reason = reason
        self.reporter.event(w.node, phase, reason)
        if w.log_tail:
            self.reporter.event(w.node, "log", w.log_tail)
