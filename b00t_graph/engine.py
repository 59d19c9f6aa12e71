"""The engine: carries events between the pure scheduler and the runtimes, and keeps the time.

Every node starts the moment its own dependencies are ready (no waves).
Work that needs no dependency (pulling an image) starts for every node at
once. Failures skip the failed node's dependents while independent branches
go on; ``fail_fast`` cancels everything at the first failure instead.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import anyio
import attrs

from .errors import B00tGraphError, ConflictError, NodeError, RuntimeUnavailable, StartError, StopError
from .events import Logged, Reporter, Silent
from .graph import Graph, Node
from .locks import node_lock
from .runtimes import ABSENT, Action, Observed, Runtime, RuntimeSet, State, decide
from .scheduler import Hop, Scheduler, chain_heights, critical_path

_NO_LOCK = contextlib.nullcontext()


@attrs.define
class NodeTiming:
    """Offsets (seconds from the run's start) of one node's phases."""

    node: str
    action: Action
    runnable: float | None = None  # all dependencies ready
    started: float | None = None  # runtime start call began
    launched: float | None = None  # runtime start call returned
    ready: float | None = None
    status: str = "pending"  # ready | running | failed | skipped | cancelled | stopped
    detail: str = ""

    @property
    def wait(self) -> float | None:
        return self.runnable

    @property
    def start(self) -> float | None:
        if self.started is None or self.launched is None:
            return None
        return self.launched - self.started

    @property
    def readiness(self) -> float | None:
        if self.ready is None:
            return None
        return self.ready - (self.launched if self.launched is not None else self.runnable or 0.0)

    @property
    def own(self) -> float | None:
        """Time spent on this node itself, from runnable to ready."""
        if self.ready is None or self.runnable is None:
            return None
        return self.ready - self.runnable


@attrs.define
class RunResult:
    """What a run did: per-node timings, failures, skips, the critical path and the wall time."""

    graph: Graph
    timings: dict[str, NodeTiming]
    wall: float = 0.0
    failures: dict[str, B00tGraphError] = attrs.field(factory=dict)
    skipped: dict[str, str] = attrs.field(factory=dict)
    critical: list[Hop] = attrs.field(factory=list)
    cancelled: bool = False
    #: node → what happened that is not a failure of the run (an optional stack member failed or
    #: was skipped; a stack became ready without it)
    notes: dict[str, str] = attrs.field(factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.skipped and not self.cancelled


class Engine:
    """Brings graphs up and down through injected runtimes.

    ``state_dir`` enables per-node file locks so that two processes running
    ``up`` on overlapping graphs never start anything twice; ``None`` disables
    them (benchmarks, scheduler tests). ``install_missing`` lets presence checks
    run a datum's ``install`` command when its tool is missing.
    """

    def __init__(self, runtimes: RuntimeSet | Mapping[str, Runtime] | None = None, *,
                 reporter: Reporter | None = None, state_dir: Path | None = None,
                 no_recreate: bool = False, fail_fast: bool = False, install_missing: bool = False) -> None:
        self.reporter: Reporter = reporter or Silent()
        if logging.getLogger("b00t_graph").isEnabledFor(logging.DEBUG):
            self.reporter = Logged(self.reporter)
        self.state_dir = state_dir
        if isinstance(runtimes, RuntimeSet):
            self.runtimes = runtimes
        else:
            self.runtimes = RuntimeSet(runtimes, state_dir=state_dir, reporter=self.reporter,
                                       **({"install_missing": True} if install_missing else {}))
        self.no_recreate = no_recreate
        self.fail_fast = fail_fast

    async def aclose(self) -> None:
        await self.runtimes.aclose()

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with anyio.CancelScope(shield=True):
            await self.aclose()

    # --- observation ------------------------------------------------------------------------------

    def _runtime(self, node: Node) -> Runtime | None:
        if node.runtime is None:
            return None
        return self.runtimes.for_type(node.runtime)

    async def observe(self, graph: Graph, unavailable: dict[str, str] | None = None) -> dict[str, Observed]:
        """Every managed node's state: one batched call per runtime, runtimes concurrently.

        With ``unavailable`` given, a runtime that cannot be reached is recorded there
        (type → why) instead of raising, so ``plan`` and ``status`` still answer.
        """
        groups: dict[str, list[Node]] = {}
        for node in graph.nodes.values():
            if node.runtime is not None:
                groups.setdefault(node.runtime, []).append(node)
        out: dict[str, Observed] = {}

        async def one(kind: str, nodes: list[Node]) -> None:
            try:
                rt = self.runtimes.for_type(kind)
                if rt is not None:
                    out.update(await rt.observe(nodes))
            except RuntimeUnavailable as exc:
                if unavailable is None:
                    raise
                unavailable[kind] = str(exc)

        if len(groups) == 1:
            ((kind, nodes),) = groups.items()
            await one(kind, nodes)
        elif groups:
            async with anyio.create_task_group() as tg:
                for kind, nodes in groups.items():
                    tg.start_soon(one, kind, nodes)
        return out

    async def plan(self, graph: Graph, unavailable: dict[str, str] | None = None
                   ) -> tuple[dict[str, Action], dict[str, Observed]]:
        """The actions ``up`` would take now; read-only."""
        observed = await self.observe(graph, unavailable)
        return ({i: decide(n, observed.get(i), no_recreate=self.no_recreate)
                 for i, n in graph.nodes.items()}, observed)

    # --- up ---------------------------------------------------------------------------------------

    async def up(self, graph: Graph) -> RunResult:
        """Bring every node of ``graph`` up; never raises for node failures (see ``RunResult``)."""
        t0 = anyio.current_time()
        actions, observed = await self.plan(graph)
        res = RunResult(graph=graph, timings={i: NodeTiming(i, a) for i, a in actions.items()})
        sched = Scheduler(graph.deps(), graph.soft())
        required = graph.required()
        prepared: dict[str, anyio.Event] = {}
        prep_errors: dict[str, B00tGraphError] = {}

        def now() -> float:
            return anyio.current_time() - t0

        def failed(ident: str, err: B00tGraphError) -> None:
            # Outside `required` (an optional stack member, or what only it needs) a failure is a note.
            if ident in required:
                res.failures[ident] = err
            else:
                res.notes[ident] = f"optional, failed: {err}"
            tm = res.timings[ident]
            tm.status, tm.detail = "failed", getattr(err, "reason", str(err))
            self.reporter.event(ident, "failed", tm.detail)
            tail = getattr(err, "log_tail", "")
            if tail:  # the live view shows a failed node's last lines; `up --logs` prints them at once
                self.reporter.event(ident, "log", tail)
            for skipped in sched.fail(ident):
                if skipped in required:
                    res.skipped[skipped] = sched.skipped[skipped]
                else:
                    res.notes[skipped] = f"optional, skipped: {sched.skipped[skipped]}"
                res.timings[skipped].status = "skipped"
                res.timings[skipped].detail = sched.skipped[skipped]
                self.reporter.event(skipped, "skipped", sched.skipped[skipped])
            if self.fail_fast and ident in required:
                tg.cancel_scope.cancel()
            launch(sched.released())

        async def prepare(node: Node, rt: Runtime, action: Action) -> None:
            try:
                await rt.prepare(node, action)
            except B00tGraphError as exc:
                prep_errors[node.id] = exc
            finally:
                prepared[node.id].set()

        async def run(ident: str) -> None:
            node = graph.nodes[ident]
            tm = res.timings[ident]
            tm.runnable = now()
            try:
                await self._bring_up(node, tm, observed.get(ident, ABSENT), prepared, prep_errors, now)
            except B00tGraphError as exc:
                failed(ident, exc)
                return
            except Exception as exc:  # a bug in a runtime must not take the whole run down silently
                failed(ident, StartError(ident, f"unexpected {type(exc).__name__}: {exc}"))
                return
            without = [d for d in node.soft if d in sched.failed or d in sched.skipped]
            if without:
                res.notes[ident] = "ready without optional member(s) " + ", ".join(
                    f"{d} ({'failed' if d in sched.failed else 'skipped'})" for d in without)
            launch(sched.complete(ident))

        def launch(idents: list[str]) -> None:
            # The engine behind a runtime often serialises starts (Docker does): when several nodes
            # become runnable at once, the one with the longest chain still ahead of it goes first.
            if len(idents) > 1:
                idents.sort(key=lambda i: -height[i])
            for ident in idents:
                tg.start_soon(run, ident)

        height = chain_heights(graph.deps())
        try:
            async with anyio.create_task_group() as tg:
                for ident in sorted(actions, key=lambda i: -height[i]):
                    action = actions[ident]
                    node = graph.nodes[ident]
                    rt = self._runtime(node)
                    if (rt is not None and action in (Action.CREATE, Action.RECREATE)
                            and getattr(rt, "prepares", True)):
                        prepared[ident] = anyio.Event()
                        tg.start_soon(prepare, node, rt, action)
                launch(sched.initial())
        finally:
            res.wall = now()
            for tm in res.timings.values():
                if tm.status == "pending" or (tm.status in ("starting", "probing")):
                    tm.status = "cancelled"
                    res.cancelled = True
            ready = {i: t for i, t in res.timings.items() if t.ready is not None}
            res.critical = critical_path(
                graph.deps(), {i: t.runnable or 0.0 for i, t in ready.items()},
                {i: t.ready for i, t in ready.items() if t.ready is not None})
        return res

    async def _bring_up(self, node: Node, tm: NodeTiming, obs: Observed, prepared: dict[str, anyio.Event],
                        prep_errors: dict[str, B00tGraphError], clock: Callable[[], float]) -> None:
        rt = self._runtime(node)
        if rt is None:
            tm.ready, tm.status = clock(), "ready"
            self.reporter.event(node.id, "ready", tm.action.value)
            return
        action = tm.action
        if action.checks:
            # A check (a presence check, a probe of something not ours) starts nothing: no lock, no start.
            tm.started = tm.launched = clock()
            tm.status = "probing"
            self.reporter.event(node.id, "probing", action.value)
            how = await rt.wait_ready(node)
            tm.ready, tm.status, tm.detail = clock(), "ready", how
            self.reporter.event(node.id, "ready", how)
            return
        if action is Action.CONFLICT:
            raise ConflictError(node.id, f"{obs.detail or 'the name is taken'}; b00t-graph does not touch "
                                "what it did not create: remove or rename it, or rename the datum")
        if action in (Action.NONE, Action.KEEP):
            self.reporter.event(node.id, "probing", action.value)
            tm.status = "probing"
            how = await rt.wait_ready(node)
            tm.ready, tm.status, tm.detail = clock(), "running", action.value
            self.reporter.event(node.id, "running", how)
            return
        async with node_lock(self.state_dir, node.id) if self.state_dir is not None else _NO_LOCK:
            if self.state_dir is not None:
                # Another process may have acted between our batched look and the lock: look again.
                fresh = (await rt.observe([node])).get(node.id, ABSENT)
                if fresh != obs:
                    obs, fresh_action = fresh, decide(node, fresh, no_recreate=self.no_recreate)
                    # A container made ahead by prepare() shows as stopped: still a create, for people.
                    if not (action is Action.CREATE and fresh_action is Action.START):
                        action = tm.action = fresh_action
            if node.id in prepared:
                await prepared[node.id].wait()
                if node.id in prep_errors and action.changes:
                    raise prep_errors[node.id]
            if action.changes:
                tm.started, tm.status = clock(), "starting"
                self.reporter.event(node.id, "starting", action.value)
                await rt.start(node, obs, action)
                tm.launched = clock()
            elif action is Action.CONFLICT:
                raise ConflictError(node.id, obs.detail or "the name is taken by something b00t-graph did not create")
            tm.status = "probing"
            self.reporter.event(node.id, "probing", ", ".join(node.health.probes()) if node.health else "")
            how = await rt.wait_ready(node)
        tm.ready, tm.status, tm.detail = clock(), "ready", action.value if not action.changes else how
        self.reporter.event(node.id, "ready", how)

    # --- down -------------------------------------------------------------------------------------

    async def down(self, graph: Graph, *, remove_volumes: bool = False, only: set[str] | None = None) -> RunResult:
        """Stop what b00t-graph started, dependents before their dependencies, independent ones at once.

        ``only`` limits stopping to those nodes (the others keep running), still in dependency order.
        """
        t0 = anyio.current_time()
        observed = await self.observe(graph)
        res = RunResult(graph=graph, timings={i: NodeTiming(i, Action.NONE) for i in graph.nodes})
        reverse = {i: tuple(d) for i, d in graph.dependents().items()}
        sched = Scheduler(reverse)

        async def run(ident: str) -> None:
            node = graph.nodes[ident]
            tm = res.timings[ident]
            tm.runnable = anyio.current_time() - t0
            obs = observed.get(ident, ABSENT)
            rt = self._runtime(node)
            try:
                if rt is not None and not getattr(rt, "starts", True):
                    rt = None  # a check started nothing: nothing to stop
                if rt is not None and obs.state in (State.RUNNING, State.STOPPED) and (only is None or ident in only):
                    self.reporter.event(ident, "stopping", obs.detail)
                    tm.started = tm.runnable
                    async with node_lock(self.state_dir, ident):
                        await rt.stop(node, obs, remove_volumes=remove_volumes)
                    tm.status, tm.detail = "stopped", obs.detail
                else:
                    tm.status = "absent" if rt is not None else "group"
                    tm.detail = "nothing to stop" if rt is None else (
                        "not running" if obs.state is State.ABSENT else (
                            "not ours, left alone" if obs.state is State.FOREIGN else "nothing to stop"))
                tm.ready = anyio.current_time() - t0
                self.reporter.event(ident, "stopped" if tm.status == "stopped" else tm.status, tm.detail)
            except B00tGraphError as exc:
                # A node that cannot be stopped must not keep its dependencies running forever:
                # record the failure and go on.
                err = exc if isinstance(exc, NodeError) else StopError(ident, str(exc))
                res.failures[ident] = err
                tm.status, tm.detail = "failed", str(exc)
            for nxt in sched.complete(ident):
                tg.start_soon(run, nxt)

        async with anyio.create_task_group() as tg:
            for ident in sched.initial():
                tg.start_soon(run, ident)
        res.wall = anyio.current_time() - t0
        return res
