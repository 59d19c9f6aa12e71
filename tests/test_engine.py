"""The engine over the null runtime, on asyncio and trio: ordering without waves, failures and skips,
--fail-fast, idempotence, recreate/keep, critical path, down order and the per-node locks."""

from __future__ import annotations

import fcntl
import itertools
import os
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import anyio
import pytest
import trio.testing

from b00t_graph import Engine, Graph, Node, StartError, load_graph
from b00t_graph.errors import LockTimeout, StopError
from b00t_graph.runtimes import Action, Observed, State
from b00t_graph.runtimes.null import NullRuntime

pytestmark = pytest.mark.anyio

WriteDatums = Callable[..., Path]


def P(name: str) -> str:
    return f"{name}.process"


def make_graph(write_datums: WriteDatums, deps: Mapping[str, Sequence[str]],
               stacks: Mapping[str, Sequence[str]] | None = None, targets: Sequence[str] | None = None) -> Graph:
    """Process datums named by ``deps`` (name → names it depends on), stacks over them; targets default
    to every datum."""
    files = {}
    for name, ds in deps.items():
        dep_list = ", ".join(f'"{P(d)}"' for d in ds)
        files[P(name)] = (f'[b00t]\nname = "{name}"\ntype = "process"\ncommand = ["true"]\n'
                          f"depends_on = [{dep_list}]\n")
    for name, members in (stacks or {}).items():
        member_list = ", ".join(f'"{P(m)}"' for m in members)
        files[f"{name}.stack"] = f'[b00t]\nname = "{name}"\ntype = "stack"\nmembers = [{member_list}]\n'
    folder = write_datums(files)
    wanted = list(targets) if targets else [*map(P, deps), *(f"{s}.stack" for s in stacks or {})]
    return load_graph(wanted, folder, environ={})


class Events:
    """A reporter that keeps every event in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def event(self, node: str, phase: str, detail: str = "") -> None:
        self.seen.append((node, phase, detail))

    def index(self, node: str, phase: str) -> int:
        return next(i for i, (n, p, _) in enumerate(self.seen) if n == node and p == phase)


async def test_node_starts_when_its_own_dependencies_are_ready(write_datums: WriteDatums) -> None:
    # A is slow, B fast, C needs only B, D needs A and C. With waves or level barriers C would wait for A.
    graph = make_graph(write_datums, {"a": [], "b": [], "c": ["b"], "d": ["a", "c"]})
    rt = NullRuntime({P("a"): 0.4, P("b"): 0.01, P("c"): 0.01})
    events = Events()
    async with Engine(runtimes={"*": rt}, reporter=events) as engine:
        res = await engine.up(graph)
    assert res.ok, res.failures
    t = res.timings
    a_ready, c_ready, c_runnable, d_runnable = (
        t[P("a")].ready, t[P("c")].ready, t[P("c")].runnable, t[P("d")].runnable)
    assert a_ready is not None and c_ready is not None and c_runnable is not None and d_runnable is not None
    assert c_ready < a_ready, "C must not wait for the unrelated slow A"
    assert c_runnable < a_ready
    assert d_runnable >= a_ready
    assert sorted(rt.order[:2]) == [P("a"), P("b")]
    assert rt.order[2:] == [P("c"), P("d")]
    assert events.index(P("c"), "ready") < events.index(P("a"), "ready")
    assert all(tm.status == "ready" for tm in t.values())
    assert res.wall >= 0.4  # the exact times are checked on a virtual clock below


async def test_no_waves_on_a_random_dag(write_datums: WriteDatums) -> None:
    # Every node becomes runnable right when its last dependency is ready, never later.
    rnd = random.Random(7)
    names = [f"n{i}" for i in range(25)]
    deps = {n: rnd.sample(names[:i], k=min(i, rnd.randint(0, 3))) for i, n in enumerate(names)}
    delays = {P(n): rnd.choice([0.0, 0.02, 0.05, 0.1]) for n in names}
    graph = make_graph(write_datums, deps)
    async with Engine(runtimes={"*": NullRuntime(delays)}) as engine:
        res = await engine.up(graph)
    assert res.ok
    for n, ds in deps.items():
        tm = res.timings[P(n)]
        assert tm.runnable is not None and tm.ready is not None
        last = max((res.timings[P(d)].ready or 0.0 for d in ds), default=0.0)
        assert last <= tm.runnable, (n, ds, last, tm.runnable)  # "no later" is exact on the virtual clock
        assert tm.ready >= tm.runnable


async def test_failure_skips_dependents_while_an_independent_branch_completes(write_datums: WriteDatums) -> None:
    graph = make_graph(write_datums, {"a": [], "b": ["a"], "c": ["b"], "d": [], "e": ["d"]},
                       stacks={"all": ["c", "e"]})
    rt = NullRuntime({P("a"): 0.02, P("d"): 0.15, P("e"): 0.05}, fail=[P("a")])
    events = Events()
    async with Engine(runtimes={"*": rt}, reporter=events) as engine:
        res = await engine.up(graph)
    assert not res.ok and not res.cancelled
    assert list(res.failures) == [P("a")]
    err = res.failures[P("a")]
    assert isinstance(err, StartError) and err.node == P("a") and "failed on purpose" in str(err)
    assert res.skipped == {P("b"): f"dependency {P('a')} failed", P("c"): f"dependency {P('b')} was skipped",
                           "all.stack": f"dependency {P('c')} was skipped"}
    t = res.timings
    assert t[P("a")].status == "failed"
    assert {t[i].status for i in (P("b"), P("c"), "all.stack")} == {"skipped"}
    assert t[P("b")].detail == f"dependency {P('a')} failed"
    # The independent branch went on after the failure and finished.
    assert t[P("d")].status == t[P("e")].status == "ready"
    assert (t[P("e")].ready or 0) > 0.15
    assert P("b") not in rt.order and P("c") not in rt.order
    assert events.index(P("a"), "failed") < events.index(P("e"), "ready")
    assert (P("b"), "skipped", f"dependency {P('a')} failed") in events.seen


async def test_fail_fast_cancels_everything_at_the_first_failure(write_datums: WriteDatums) -> None:
    graph = make_graph(write_datums, {"a": [], "b": ["a"], "slow": [], "after": ["slow"]})
    rt = NullRuntime({P("a"): 0.02, P("slow"): 60.0}, fail=[P("a")])
    with anyio.fail_after(30):  # slow would take 60 s: only cancelling it ends the run before
        async with Engine(runtimes={"*": rt}, fail_fast=True) as engine:
            res = await engine.up(graph)
    assert res.wall < 30
    assert res.cancelled and not res.ok
    assert list(res.failures) == [P("a")]
    assert res.skipped == {P("b"): f"dependency {P('a')} failed"}
    assert res.timings[P("slow")].status == "cancelled"
    assert res.timings[P("after")].status == "cancelled"
    assert P("after") not in rt.order


async def test_without_fail_fast_the_slow_branch_is_awaited(write_datums: WriteDatums) -> None:
    graph = make_graph(write_datums, {"a": [], "slow": []})
    rt = NullRuntime({P("slow"): 0.3}, fail=[P("a")])
    async with Engine(runtimes={"*": rt}) as engine:
        res = await engine.up(graph)
    assert not res.cancelled and res.timings[P("slow")].status == "ready" and res.wall >= 0.3


async def test_critical_path_is_the_chain_that_set_the_wall_time(write_datums: WriteDatums) -> None:
    # a(0.1) → b(0.15) → c(0.05) is the long chain; x → y is short and joins c.
    graph = make_graph(write_datums, {"a": [], "b": ["a"], "x": [], "y": ["x"], "c": ["b", "y"]})
    delays = {P("a"): 0.1, P("b"): 0.15, P("c"): 0.05, P("x"): 0.02, P("y"): 0.02}
    async with Engine(runtimes={"*": NullRuntime(delays)}) as engine:
        res = await engine.up(graph)
    assert [h.node for h in res.critical] == [P("a"), P("b"), P("c")]
    for prev, hop in itertools.pairwise(res.critical):
        assert hop.offset >= prev.offset + prev.duration  # each hop began once the one before it ended
    for hop in res.critical:
        assert hop.duration >= delays[hop.node]
    assert res.critical[-1].offset + res.critical[-1].duration <= res.wall
    # durations and offsets to the instant: TestOnAVirtualClock


async def test_already_running_nodes_are_left_alone(write_datums: WriteDatums) -> None:
    graph = make_graph(write_datums, {"a": [], "b": ["a"], "c": ["b"]})
    rt = NullRuntime(running=[P("a"), P("b")])
    events = Events()
    async with Engine(runtimes={"*": rt}, reporter=events) as engine:
        res = await engine.up(graph)
    assert res.ok
    assert rt.order == [P("c")]
    for ident in (P("a"), P("b")):
        tm = res.timings[ident]
        assert tm.action is Action.NONE
        assert (tm.status, tm.detail) == ("running", "already running")
        assert tm.started is None
    assert res.timings[P("c")].action is Action.CREATE and res.timings[P("c")].status == "ready"


class ChangedConfig(NullRuntime):
    """Sees every node running, but with another configuration than the datum's."""

    async def observe(self, nodes: Sequence[Node]) -> dict[str, Observed]:
        return {n.id: Observed(State.RUNNING, "0ld-hash", "null", "running an old config") for n in nodes}


@pytest.mark.parametrize("no_recreate", [False, True])
async def test_config_change_recreates_unless_no_recreate(write_datums: WriteDatums, no_recreate: bool) -> None:
    graph = make_graph(write_datums, {"a": [], "b": ["a"]})
    rt = ChangedConfig()
    async with Engine(runtimes={"*": rt}, no_recreate=no_recreate) as engine:
        actions, _ = await engine.plan(graph)
        res = await engine.up(graph)
    assert res.ok
    expected = Action.KEEP if no_recreate else Action.RECREATE
    assert set(actions.values()) == {expected}
    assert {t.action for t in res.timings.values()} == {expected}
    if no_recreate:
        assert rt.order == []
        assert {(t.status, t.detail) for t in res.timings.values()} == {("running", Action.KEEP.value)}
    else:
        assert rt.order == [P("a"), P("b")]
        assert {t.status for t in res.timings.values()} == {"ready"}


async def test_stack_is_ready_when_its_members_are_and_starts_nothing(write_datums: WriteDatums) -> None:
    graph = make_graph(write_datums, {"a": [], "b": []}, stacks={"s": ["a", "b"]}, targets=["s.stack"])
    rt = NullRuntime({P("a"): 0.1})
    async with Engine(runtimes={"*": rt}) as engine:
        res = await engine.up(graph)
    tm = res.timings["s.stack"]
    assert tm.action is Action.GROUP and tm.status == "ready"
    assert tm.ready is not None and tm.ready >= (res.timings[P("a")].ready or 1e9)
    assert "s.stack" not in rt.order


class BuggyRuntime(NullRuntime):
    async def start(self, node: Node, observed: Observed, action: Action) -> Observed:
        raise RuntimeError("a bug in a runtime")


async def test_a_bug_in_a_runtime_fails_the_node_not_the_run(write_datums: WriteDatums) -> None:
    graph = make_graph(write_datums, {"a": [], "b": ["a"]})
    async with Engine(runtimes={"*": BuggyRuntime()}) as engine:
        res = await engine.up(graph)
    err = res.failures[P("a")]
    assert isinstance(err, StartError) and "unexpected RuntimeError: a bug in a runtime" in str(err)
    assert res.skipped == {P("b"): f"dependency {P('a')} failed"}


async def test_cancelling_up_from_outside_returns_promptly(write_datums: WriteDatums) -> None:
    graph = make_graph(write_datums, {"a": [], "b": ["a"]})
    t0 = anyio.current_time()
    with anyio.move_on_after(0.1) as scope:
        async with Engine(runtimes={"*": NullRuntime({P("a"): 10.0})}) as engine:
            await engine.up(graph)
    assert scope.cancelled_caught
    assert anyio.current_time() - t0 < 5.0  # a would take 10 s


class SlowStop(NullRuntime):
    def __init__(self, *, running: Sequence[str]) -> None:
        super().__init__(running=running)
        self.stop_began: dict[str, float] = {}

    async def stop(self, node: Node, observed: Observed, *, remove_volumes: bool = False) -> None:
        self.stop_began[node.id] = anyio.current_time()
        await anyio.sleep(0.15)
        await super().stop(node, observed)


async def test_down_stops_dependents_first_and_independent_nodes_at_once(write_datums: WriteDatums) -> None:
    graph = make_graph(write_datums, {"a": [], "b": ["a"], "c": ["b"], "x": [], "idle": []},
                       stacks={"s": ["c", "x", "idle"]})
    rt = SlowStop(running=[P("a"), P("b"), P("c"), P("x")])
    async with Engine(runtimes={"*": rt}) as engine:
        res = await engine.down(graph)
    assert not res.failures
    assert rt.stopped.index(P("c")) < rt.stopped.index(P("b")) < rt.stopped.index(P("a"))
    b = rt.stop_began
    assert b[P("c")] + 0.14 <= b[P("b")] and b[P("b")] + 0.14 <= b[P("a")], "each waits for its dependents"
    # that x stops alongside c, and the wall time, to the instant: TestOnAVirtualClock
    assert res.timings[P("idle")].status == "absent" and res.timings[P("idle")].detail == "not running"
    assert res.timings["s.stack"].status == "group"
    assert res.timings["s.stack"].detail == "nothing to stop"  # a stack has nothing that could run
    assert {res.timings[P(n)].status for n in "abcx"} == {"stopped"}


async def test_two_concurrent_ups_with_locks_start_each_node_once(write_datums: WriteDatums, tmp_path: Path) -> None:
    # Two engines (as two `ensure()` calls would make) share the state directory's per-node locks.
    graph = make_graph(write_datums, {"a": [], "b": ["a"], "c": ["a"]})
    rt = NullRuntime({P("a"): 0.1, P("b"): 0.05, P("c"): 0.05})
    results = []

    async def one() -> None:
        async with Engine(runtimes={"*": rt}, state_dir=tmp_path / "state") as engine:
            results.append(await engine.up(graph))

    async with anyio.create_task_group() as tg:
        tg.start_soon(one)
        tg.start_soon(one)
    assert sorted(rt.order) == [P("a"), P("b"), P("c")]
    assert all(r.ok for r in results)
    actions = sorted((r.timings[P("a")].action for r in results), key=lambda a: a.name)
    assert actions == [Action.CREATE, Action.NONE]


async def test_two_concurrent_ups_without_state_dir_do_start_twice(write_datums: WriteDatums) -> None:
    # The control for the test above: it is the state directory's locks that prevent the double start.
    # (Drop this if engines ever share starts in memory too.)
    graph = make_graph(write_datums, {"a": []})
    rt = NullRuntime({P("a"): 0.05})

    async def one() -> None:
        async with Engine(runtimes={"*": rt}) as engine:
            await engine.up(graph)

    async with anyio.create_task_group() as tg:
        tg.start_soon(one)
        tg.start_soon(one)
    assert rt.order == [P("a"), P("a")]


# --- optional stack members -------------------------------------------------------------------------


def _optional_graph(*, also_needed: bool = False) -> Graph:
    from b00t_graph.graph import compile_graph
    from b00t_graph.loader import Catalog
    from b00t_graph.model import Datum

    def d(ident: str, **kw: object) -> Datum:
        name, _, typ = ident.rpartition(".")
        return Datum(name=name, type=typ, path=f"/d/{ident}.toml", **kw)  # type: ignore[arg-type]

    datums = [d("a.process", command=("true",)), d("x.process", command=("true",)),
              d("m.process", command=("true",), depends_on=("x.process",)),
              d("s.stack", members=("a.process",), optional=("m.process",))]
    if also_needed:
        datums.append(d("app.process", command=("true",), depends_on=("m.process",)))
    targets = ["s.stack", "app.process"] if also_needed else ["s.stack"]
    return compile_graph(Catalog(sources=[], datums={x.id: x for x in datums}), targets, environ={})


@pytest.mark.parametrize("fails", ["m.process", "x.process"])
async def test_a_failed_optional_member_does_not_fail_its_stack(fails: str) -> None:
    graph = _optional_graph()
    async with Engine(runtimes={"*": NullRuntime(fail=[fails])}) as engine:
        res = await engine.up(graph)
    assert res.ok, (res.failures, res.skipped)
    assert res.timings["s.stack"].status == "ready"
    why = "failed" if fails == "m.process" else "skipped"
    assert res.notes["s.stack"] == f"ready without optional member(s) m.process ({why})"
    assert res.notes[fails].startswith("optional, failed: ")


async def test_an_optional_member_another_node_needs_is_a_real_failure() -> None:
    graph = _optional_graph(also_needed=True)
    async with Engine(runtimes={"*": NullRuntime(fail=["m.process"])}) as engine:
        res = await engine.up(graph)
    assert set(res.failures) == {"m.process"}
    assert res.skipped == {"app.process": "dependency m.process failed"}
    assert res.timings["s.stack"].status == "ready"  # the stack itself still does not wait on it


# --- time, on a virtual clock ---------------------------------------------------------------------


class TestOnAVirtualClock:
    """The engine's timing to the instant, on trio's MockClock (trio only, by nature: MockClock is trio's).

    ``autojump_threshold=0`` jumps the clock to the next deadline whenever every task waits, so the null
    runtime's delays take no real time and every offset is exact, however loaded the machine is.
    """

    @pytest.fixture
    def anyio_backend(self) -> tuple[str, dict[str, object]]:
        return "trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}

    async def test_each_node_starts_the_instant_its_dependencies_are_ready(self, write_datums: WriteDatums) -> None:
        graph = make_graph(write_datums, {"a": [], "b": [], "c": ["b"], "d": ["a", "c"]})
        async with Engine(runtimes={"*": NullRuntime({P("a"): 0.4, P("b"): 0.01, P("c"): 0.01})}) as engine:
            res = await engine.up(graph)
        assert res.ok
        at = {n: (res.timings[P(n)].runnable, res.timings[P(n)].ready) for n in "abcd"}
        assert at == {"a": (0.0, pytest.approx(0.4)), "b": (0.0, pytest.approx(0.01)),
                      "c": (pytest.approx(0.01), pytest.approx(0.02)),
                      "d": (pytest.approx(0.4), pytest.approx(0.4))}
        assert res.wall == pytest.approx(0.4)

    async def test_no_waves_on_a_random_dag(self, write_datums: WriteDatums) -> None:
        rnd = random.Random(7)
        names = [f"n{i}" for i in range(25)]
        deps = {n: rnd.sample(names[:i], k=min(i, rnd.randint(0, 3))) for i, n in enumerate(names)}
        delays = {P(n): rnd.choice([0.0, 0.02, 0.05, 0.1]) for n in names}
        graph = make_graph(write_datums, deps)
        async with Engine(runtimes={"*": NullRuntime(delays)}) as engine:
            res = await engine.up(graph)
        assert res.ok
        ready: dict[str, float] = {}
        for n in names:  # names are in dependency order
            ready[n] = max((ready[d] for d in deps[n]), default=0.0) + delays[P(n)]
        for n, ds in deps.items():
            tm = res.timings[P(n)]
            last = max((ready[d] for d in ds), default=0.0)
            assert tm.runnable == pytest.approx(last), (n, ds)
            assert tm.ready == pytest.approx(ready[n]), n
        assert res.wall == pytest.approx(max(ready.values()))

    async def test_critical_path_is_the_chain_that_set_the_wall_time(self, write_datums: WriteDatums) -> None:
        # a(0.1) → b(0.15) → c(0.05) is the long chain; x → y is short and joins c.
        graph = make_graph(write_datums, {"a": [], "b": ["a"], "x": [], "y": ["x"], "c": ["b", "y"]})
        delays = {P("a"): 0.1, P("b"): 0.15, P("c"): 0.05, P("x"): 0.02, P("y"): 0.02}
        async with Engine(runtimes={"*": NullRuntime(delays)}) as engine:
            res = await engine.up(graph)
        assert [(h.node, h.offset, h.duration) for h in res.critical] == [
            (P("a"), 0.0, pytest.approx(0.1)), (P("b"), pytest.approx(0.1), pytest.approx(0.15)),
            (P("c"), pytest.approx(0.25), pytest.approx(0.05))]
        assert res.wall == pytest.approx(0.3)

    async def test_down_stops_a_chain_in_order_and_independent_nodes_at_once(self, write_datums: WriteDatums) -> None:
        graph = make_graph(write_datums, {"a": [], "b": ["a"], "c": ["b"], "x": []})
        rt = SlowStop(running=[P("a"), P("b"), P("c"), P("x")])
        t0 = anyio.current_time()
        async with Engine(runtimes={"*": rt}) as engine:
            res = await engine.down(graph)
        assert not res.failures
        began = {i: t - t0 for i, t in rt.stop_began.items()}
        assert began == {P("c"): 0.0, P("x"): 0.0, P("b"): pytest.approx(0.15), P("a"): pytest.approx(0.3)}
        assert res.wall == pytest.approx(0.45), "the chain of three sets the time, not the sum of four stops"

    async def test_fail_fast_cancels_at_the_instant_of_the_failure(self, write_datums: WriteDatums) -> None:
        graph = make_graph(write_datums, {"a": [], "slow": []})
        async with Engine(runtimes={"*": NullRuntime({P("a"): 0.02, P("slow"): 5.0}, fail=[P("a")])},
                          fail_fast=True) as engine:
            res = await engine.up(graph)
        assert res.cancelled and res.wall == pytest.approx(0.02)
        assert res.timings[P("slow")].status == "cancelled"

    async def test_a_held_node_lock_times_out_as_lock_timeout_and_down_reports_stop_error(
            self, write_datums: WriteDatums, tmp_path: Path) -> None:
        # Another b00t-graph process holds a.process's lock (a real flock on the real lock file) for longer
        # than LOCK_TIMEOUT (600 s): on the virtual clock the wait passes at once.
        graph = make_graph(write_datums, {"a": [], "b": ["a"]})
        state = tmp_path / "state"
        (state / "locks").mkdir(parents=True)
        fd = os.open(state / "locks" / "a.process.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            t0 = anyio.current_time()
            async with Engine(runtimes={"*": NullRuntime()}, state_dir=state) as engine:
                res = await engine.up(graph)
            err = res.failures[P("a")]
            assert isinstance(err, LockTimeout) and err.exit_code == 1
            assert str(err) == (f"{P('a')}: another b00t-graph process held its lock for 600s "
                                f"({state / 'locks' / 'a.process'}.lock)")
            assert anyio.current_time() - t0 == pytest.approx(600, abs=0.2)
            assert res.skipped == {P("b"): f"dependency {P('a')} failed"}

            async with Engine(runtimes={"*": NullRuntime(running=[P("a")])}, state_dir=state) as engine:
                down = await engine.down(graph)
            stop_err = down.failures[P("a")]
            assert isinstance(stop_err, StopError) and stop_err.node == P("a")
            assert str(stop_err) == f"{P('a')}: {err}"
            assert down.timings[P("a")].status == "failed"
        finally:
            os.close(fd)


class TestStartPriority:
    """When several nodes become runnable at once, the one with the longest chain ahead starts first.

    asyncio only: asyncio runs tasks in the order they were spawned, which is what the engine's sort
    sets. trio deliberately shuffles the order of tasks that are ready together, so there the sort does
    not decide who reaches the runtime first.
    """

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    async def test_longest_chain_first_at_the_start(self, write_datums: WriteDatums) -> None:
        # Roots in name order a, m, z; the chains ahead of them hold 1, 2 and 3 nodes.
        graph = make_graph(write_datums, {"a": [], "m": [], "m2": ["m"], "z": [], "z2": ["z"], "z3": ["z2"]})
        rt = NullRuntime()
        async with Engine(runtimes={"*": rt}) as engine:
            assert (await engine.up(graph)).ok
        assert rt.order[:3] == [P("z"), P("m"), P("a")]

    async def test_longest_chain_first_when_a_dependency_becomes_ready(self, write_datums: WriteDatums) -> None:
        # Once r is ready, b, k and q are runnable together; q has the longest chain ahead, then k.
        graph = make_graph(write_datums, {"r": [], "b": ["r"], "k": ["r"], "k2": ["k"], "q": ["r"],
                                          "q2": ["q"], "q3": ["q2"]})
        rt = NullRuntime()
        async with Engine(runtimes={"*": rt}) as engine:
            assert (await engine.up(graph)).ok
        assert rt.order[:4] == [P("r"), P("q"), P("k"), P("b")]

    async def test_longest_chain_first_for_work_ahead_of_dependencies(self, write_datums: WriteDatums) -> None:
        # prepare (pulling an image) starts for every node at once; the node with the longest chain ahead first.
        graph = make_graph(write_datums, {"a": [], "m": [], "m2": ["m"], "z": [], "z2": ["z"], "z3": ["z2"]})
        rt = RecordsPrepare()
        async with Engine(runtimes={"*": rt}) as engine:
            assert (await engine.up(graph)).ok
        chain_ahead = {"z": 3, "m": 2, "z2": 2, "a": 1, "m2": 1, "z3": 1}
        assert sorted(rt.prepared) == sorted(map(P, chain_ahead))
        heights = [chain_ahead[i.removesuffix(".process")] for i in rt.prepared]
        assert heights == sorted(heights, reverse=True), rt.prepared


class RecordsPrepare(NullRuntime):
    prepares = True

    def __init__(self) -> None:
        super().__init__()
        self.prepared: list[str] = []

    async def prepare(self, node: Node, action: Action) -> None:
        self.prepared.append(node.id)
