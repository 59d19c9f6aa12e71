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

from .errors import (
    B00tGraphError,
    ConflictError,
    NodeError,
    NodeExited,
    RuntimeUnavailable,
    StartError,
    StateDirError,
    StopError,
)
from .events import Logged, Reporter, Silent
from .graph import Graph, Node
from .locks import node_lock, state_dir_problem
from .runtimes import ABSENT, Action, Observed, Runtime, RuntimeSet, State, decide
from .scheduler import Hop, Scheduler, chain_heights, critical_path

#: observed states ``down`` stops
STOPPABLE = (State.RUNNING, State.STOPPED, State.UNREADY, State.PAUSED)


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
    run a datum's ``install`` command when its tool is missing. ``project`` namespaces
    what the runtimes make (docker names and labels); the caller passes the project's
    own ``state_dir`` (:func:`~b00t_graph.projects.project_state_dir`). A node this run started
    that then fails (never ready, exited) is stopped again unless ``keep_failed``.
    """

    def __init__(self, runtimes: RuntimeSet | Mapping[str, Runtime] | None = None, *,
                 reporter: Reporter | None = None, state_dir: Path | None = None,
                 no_recreate: bool = False, fail_fast: bool = False, install_missing: bool = False,
                 project: str | None = None, keep_failed: bool = False) -> None:
        self.reporter: Reporter = reporter or Silent()
        if logging.getLogger("b00t_graph").isEnabledFor(logging.DEBUG):
            self.reporter = Logged(self.reporter)
        self.state_dir = state_dir
        if isinstance(runtimes, RuntimeSet):
            self.runtimes = runtimes
        else:
            self.runtimes = RuntimeSet(runtimes, state_dir=state_dir, reporter=self.reporter,
                                       **({"install_missing": True} if install_missing else {}),
                                       **({"project": project} if project else {}))
        #: ``docker@NAME`` → why that named engine could not be reached when it was observed
        self.unreachable: dict[str, RuntimeUnavailable] = {}
        self.no_recreate = no_recreate
        self.fail_fast = fail_fast
        self.keep_failed = keep_failed

    async def aclose(self) -> None:
        await self.runtimes.aclose()

    def _check_state_dir(self) -> None:
        """Refuse an unusable state dir before any work: a lock failing later would leave made things behind."""
        why = None if self.state_dir is None else state_dir_problem(self.state_dir)
        if why is not None:
            raise StateDirError(f"state dir {self.state_dir}: {why}")

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with anyio.CancelScope(shield=True):
            await self.aclose()

    # --- observation ------------------------------------------------------------------------------

    def _runtime(self, node: Node) -> Runtime | None:
        return self.runtimes.for_node(node)

    async def observe(self, graph: Graph, unavailable: dict[str, str] | None = None) -> dict[str, Observed]:
        """Every managed node's state: one batched call per runtime, runtimes concurrently.

        With ``unavailable`` given, a runtime that cannot be reached is recorded there
        (type → why) instead of raising, so ``plan`` and ``status`` still answer.
        """
        groups: dict[str, list[Node]] = {}
        for node in graph.nodes.values():
            if node.runtime_key is not None:
                groups.setdefault(node.runtime_key, []).append(node)
        out: dict[str, Observed] = {}
        failures: list[B00tGraphError] = []

        async def one(kind: str, nodes: list[Node]) -> None:
            try:
                rt = self.runtimes.for_node(nodes[0])
                if rt is not None:
                    out.update(await rt.observe(nodes))
            except B00tGraphError as exc:
                if isinstance(exc, RuntimeUnavailable) and nodes[0].engine is not None:
                    # a named engine that cannot be reached fails its own nodes only (see ``up``)
                    self.unreachable[kind] = exc
                if unavailable is None and kind in self.unreachable:
                    return
                if unavailable is None or not isinstance(exc, RuntimeUnavailable):
                    # kept, and raised bare below: the caller never sees an exception group
                    failures.append(exc)
                    return
                unavailable[kind] = str(exc)

        if len(groups) == 1:
            ((kind, nodes),) = groups.items()
            await one(kind, nodes)
        elif groups:
            async with anyio.create_task_group() as tg:
                for kind, nodes in groups.items():
                    tg.start_soon(one, kind, nodes)
        if failures:
            raise failures[0]
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
        self._check_state_dir()
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
                await self._bring_up(node, tm, observed.get(ident, ABSENT), prepared, prep_errors, now, graph)
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
                            and getattr(rt, "prepares", True) and node.runtime_key not in self.unreachable):
                        prepared[ident] = anyio.Event()
                        tg.start_soon(prepare, node, rt, action)
                launch(sched.initial())
            # A node that was ready may have died since (its probe answered by someone else, a crash
            # right after): the run is only a success if all it brought up still runs at its end.
            await self._recheck(graph, res, failed)
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

    async def _recheck(self, graph: Graph, res: RunResult, failed: Callable[[str, B00tGraphError], None]) -> None:
        for ident, tm in res.timings.items():
            if tm.status not in ("ready", "running") or tm.action.checks:
                continue
            node = graph.nodes[ident]
            rt = self._runtime(node)
            alive = getattr(rt, "alive", None)
            if alive is None:
                continue
            try:
                await alive(node)
            except NodeError as exc:
                failed(ident, NodeExited(ident, f"{exc.reason} (after it was ready, before up finished)",
                                         exc.log_tail))

    def _runtime_deps(self, graph: Graph, node: Node) -> list[Node]:
        """The nodes with a runtime that ``node`` needs directly, looking through stacks and groups."""
        out: dict[str, Node] = {}
        todo = list(node.deps)
        seen: set[str] = set()
        while todo:
            ident = todo.pop()
            if ident in seen or ident not in graph.nodes:
                continue
            seen.add(ident)
            dep = graph.nodes[ident]
            rt = self._runtime(dep)
            if rt is None:
                todo.extend(dep.deps)
            elif getattr(rt, "starts", True) and dep.spec.managed:
                out[ident] = dep
        return list(out.values())

    async def _deps_alive(self, graph: Graph, node: Node, stack: contextlib.AsyncExitStack) -> None:
        """Hold each dependency's lock shared (a ``down`` of it waits) and check it still runs."""
        for dep in sorted(self._runtime_deps(graph, node), key=lambda d: d.id):
            await stack.enter_async_context(node_lock(self.state_dir, dep.id, shared=True))
            alive = getattr(self._runtime(dep), "alive", None)
            if alive is None:
                continue
            try:
                await alive(dep)
            except NodeError:
                raise StartError(node.id, f"dependency {dep.id} was stopped by another command "
                                 "(or died) before this node could start") from None

    async def _start(self, rt: Runtime, node: Node, obs: Observed, action: Action) -> None:
        try:
            await rt.start(node, obs, action)
        except B00tGraphError:
            if not self.keep_failed:
                # A start that failed half way (a container created, its port taken) removes what it made.
                with anyio.CancelScope(shield=True), contextlib.suppress(B00tGraphError):
                    await rt.stop(node, (await rt.observe([node])).get(node.id, ABSENT))
            raise

    async def _bring_up(self, node: Node, tm: NodeTiming, obs: Observed, prepared: dict[str, anyio.Event],
                        prep_errors: dict[str, B00tGraphError], clock: Callable[[], float],
                        graph: Graph | None = None) -> None:
        rt = self._runtime(node)
        if rt is None:
            tm.ready, tm.status = clock(), "ready"
            self.reporter.event(node.id, "ready", tm.action.value)
            return
        if node.runtime_key in self.unreachable:
            raise self.unreachable[node.runtime_key]
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
        async with contextlib.AsyncExitStack() as stack:
            if self.state_dir is not None:
                await stack.enter_async_context(node_lock(self.state_dir, node.id))
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
                if self.state_dir is not None and graph is not None:
                    async with contextlib.AsyncExitStack() as deps:
                        await self._deps_alive(graph, node, deps)
                        tm.started, tm.status = clock(), "starting"
                        self.reporter.event(node.id, "starting", action.value)
                        await self._start(rt, node, obs, action)
                else:
                    tm.started, tm.status = clock(), "starting"
                    self.reporter.event(node.id, "starting", action.value)
                    await self._start(rt, node, obs, action)
                tm.launched = clock()
            elif action is Action.CONFLICT:
                raise ConflictError(node.id, obs.detail or "the name is taken by something b00t-graph did not create")
            tm.status = "probing"
            self.reporter.event(node.id, "probing", ", ".join(node.health.probes()) if node.health else "")
            try:
                how = await rt.wait_ready(node)
            except B00tGraphError:
                if action.changes and not self.keep_failed:
                    # Never leave a service this run started that is not ready (and so not "running").
                    with anyio.CancelScope(shield=True), contextlib.suppress(B00tGraphError):
                        await rt.stop(node, (await rt.observe([node])).get(node.id, ABSENT))
                raise
        tm.ready, tm.status, tm.detail = clock(), "ready", action.value if not action.changes else how
        self.reporter.event(node.id, "ready", how)

    # --- down -------------------------------------------------------------------------------------

    async def down(self, graph: Graph, *, remove_volumes: bool = False, only: set[str] | None = None) -> RunResult:
        """Stop what b00t-graph started, dependents before their dependencies, independent ones at once.

        ``only`` limits stopping to those nodes (the others keep running), still in dependency order.
        """
        self._check_state_dir()
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
                if rt is not None and node.runtime_key in self.unreachable:
                    raise self.unreachable[node.runtime_key]
                stopped = False
                if rt is not None and obs.state is not State.FOREIGN and (only is None or ident in only):
                    async with node_lock(self.state_dir, ident, remove=True):
                        if self.state_dir is not None:
                            # An `up` may have started it since the batched look (it held the lock): look again.
                            obs = (await rt.observe([node])).get(ident, ABSENT)
                        if obs.state in STOPPABLE:
                            self.reporter.event(ident, "stopping", obs.detail)
                            tm.started = tm.runnable
                            await rt.stop(node, obs, remove_volumes=remove_volumes)
                            stopped = True
                        elif remove_volumes or obs.state is State.ABSENT:
                            # Nothing runs, but what was made for it (a network, a volume) may remain.
                            await rt.stop(node, obs, remove_volumes=remove_volumes)
                if stopped:
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

    # --- stop, restart ------------------------------------------------------------------------------

    async def stop(self, graph: Graph, nodes: set[str], *, remove_volumes: bool = False) -> RunResult:
        """Stop exactly ``nodes`` (the caller includes their running dependents), dependents first."""
        return await self.down(graph, remove_volumes=remove_volumes, only=nodes)

    async def restart(self, graph: Graph, nodes: set[str]) -> tuple[RunResult, RunResult | None]:
        """Stop ``nodes`` dependents first, then bring ``graph`` up: they start again in dependency order
        and every other node of ``graph`` (running) is probed again once its dependencies are ready.

        The up result is ``None`` when a node could not be stopped (nothing is started then).
        """
        down = await self.down(graph, only=nodes)
        if down.failures:
            return down, None
        return down, await self.up(graph)
