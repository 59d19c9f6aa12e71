"""The pure scheduler and the critical path: no event loop, no clock, random DAGs from hypothesis."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b00t_graph.scheduler import Hop, Scheduler, critical_path

Deps = dict[str, list[str]]


@st.composite
def dags(draw: st.DrawFn, max_nodes: int = 14) -> Deps:
    """A random DAG: node i may only depend on nodes before it (so no cycle), duplicates allowed."""
    n = draw(st.integers(min_value=1, max_value=max_nodes))
    names = [f"n{i}" for i in range(n)]
    deps: Deps = {}
    for i, name in enumerate(names):
        deps[name] = draw(st.lists(st.sampled_from(names[:i]), max_size=4)) if i else []
    # present them in a shuffled order: the scheduler must not rely on a topological input order
    order = draw(st.permutations(names))
    return {name: deps[name] for name in order}


def _dependents_closure(deps: Deps, roots: set[str]) -> set[str]:
    out: set[str] = set()
    frontier = set(roots)
    while frontier:
        frontier = {n for n, ds in deps.items() if set(ds) & frontier} - out
        out |= frontier
    return out


@settings(max_examples=150, deadline=None)
@given(deps=dags(), seed=st.integers(0, 2**32 - 1))
def test_every_node_runs_exactly_once_after_all_its_deps(deps: Deps, seed: int) -> None:
    rng = random.Random(seed)
    sched = Scheduler(deps)
    runnable = list(sched.initial())
    released: list[str] = list(runnable)
    completed: set[str] = set()
    while runnable:
        # complete any runnable node, in a random order (as concurrent work would finish)
        node = runnable.pop(rng.randrange(len(runnable)))
        assert set(deps[node]) <= completed, f"{node} ran before its dependencies"
        completed.add(node)
        new = sched.complete(node)
        for m in new:
            assert set(deps[m]) <= completed, f"{m} released before all its dependencies completed"
        released += new
        runnable += new
    assert sorted(released) == sorted(deps), "every node released exactly once"
    assert completed == set(deps)
    assert sched.finished
    assert sched.done == set(deps)
    assert not sched.failed and not sched.skipped


@settings(max_examples=150, deadline=None)
@given(deps=dags(), seed=st.integers(0, 2**32 - 1), fail_ratio=st.floats(0.0, 1.0))
def test_failure_skips_exactly_the_transitive_dependents(deps: Deps, seed: int, fail_ratio: float) -> None:
    rng = random.Random(seed)
    sched = Scheduler(deps)
    runnable = list(sched.initial())
    released: list[str] = list(runnable)
    completed: set[str] = set()
    failed: set[str] = set()
    skipped_returned: list[str] = []
    while runnable:
        node = runnable.pop(rng.randrange(len(runnable)))
        assert set(deps[node]) <= completed
        if rng.random() < fail_ratio:
            failed.add(node)
            newly = sched.fail(node)
            skipped_returned += newly
            for s in newly:
                assert s not in completed and s not in released, f"{s} skipped after it was released"
        else:
            completed.add(node)
            new = sched.complete(node)
            released += new
            runnable += new
    expected_skips = _dependents_closure(deps, failed)
    assert len(skipped_returned) == len(set(skipped_returned)), "a node skipped twice"
    assert set(skipped_returned) == expected_skips
    assert set(sched.skipped) == expected_skips
    assert sched.failed == failed
    assert sched.done == completed
    # every node ends in exactly one of: completed, failed, skipped
    assert completed | failed | expected_skips == set(deps)
    assert not (completed & failed) and not (completed & expected_skips) and not (failed & expected_skips)
    assert sched.finished
    assert len(released) == len(set(released))


def test_skip_reasons_name_the_failed_or_skipped_dependency() -> None:
    deps = {"db": [], "api": ["db"], "web": ["api"], "other": []}
    sched = Scheduler(deps)
    assert sorted(sched.initial()) == ["db", "other"]
    assert sorted(sched.fail("db")) == ["api", "web"]
    assert sched.skipped == {"api": "dependency db failed", "web": "dependency api was skipped"}
    assert not sched.finished  # "other" still pending
    assert sched.complete("other") == []
    assert sched.finished


def test_diamond_releases_the_join_once_when_the_last_dep_completes() -> None:
    deps = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c", "b"]}
    sched = Scheduler(deps)
    assert sched.initial() == ["a"]
    assert sorted(sched.complete("a")) == ["b", "c"]
    assert sched.complete("b") == []
    assert sched.complete("c") == ["d"]
    assert sched.complete("d") == []
    assert sched.finished


def test_no_waves_a_fast_branch_does_not_wait_for_a_slow_one() -> None:
    # fast2 depends only on fast1; it must become runnable while slow is still running.
    deps = {"slow": [], "fast1": [], "fast2": ["fast1"], "join": ["slow", "fast2"]}
    sched = Scheduler(deps)
    assert sorted(sched.initial()) == ["fast1", "slow"]
    assert sched.complete("fast1") == ["fast2"]
    assert sched.complete("fast2") == []
    assert sched.complete("slow") == ["join"]


def test_a_dependency_failing_after_a_sibling_skipped_the_join_skips_nothing_twice() -> None:
    deps = {"a": [], "b": [], "j": ["a", "b"]}
    sched = Scheduler(deps)
    assert sched.fail("a") == ["j"]
    assert sched.fail("b") == []
    assert sched.skipped == {"j": "dependency a failed"}


# --- critical path --------------------------------------------------------------------------------


def test_critical_path_walks_back_through_the_last_finishing_dependency() -> None:
    deps = {"db": [], "cache": [], "api": ["db", "cache"], "web": ["api"], "docs": []}
    began = {"db": 0.0, "cache": 0.0, "api": 2.0, "web": 2.5, "docs": 0.0}
    ended = {"db": 2.0, "cache": 0.5, "api": 2.5, "web": 3.0, "docs": 1.0}
    path = critical_path(deps, began, ended)
    assert [h.node for h in path] == ["db", "api", "web"]
    assert path[0] == Hop("db", 0.0, 2.0)
    assert path[1] == Hop("api", 2.0, pytest.approx(0.5))
    assert path[-1].offset == 2.5


def test_critical_path_ignores_dependencies_that_never_ended() -> None:
    deps = {"a": [], "b": [], "c": ["a", "b"]}
    path = critical_path(deps, {"a": 0.0, "c": 1.0}, {"a": 1.0, "c": 2.0})
    assert [h.node for h in path] == ["a", "c"]


def test_critical_path_of_nothing_is_empty() -> None:
    assert critical_path({"a": []}, {}, {}) == []


@settings(max_examples=100, deadline=None)
@given(deps=dags(), seed=st.integers(0, 2**32 - 1))
def test_critical_path_is_a_dependency_chain_ending_last(deps: Deps, seed: int) -> None:
    # Simulate a run: each node starts when its last dependency ended and lasts a random time.
    rng = random.Random(seed)
    began: dict[str, float] = {}
    ended: dict[str, float] = {}
    remaining = dict(deps)
    while remaining:
        for n, ds in list(remaining.items()):
            if all(d in ended for d in ds):
                began[n] = max((ended[d] for d in ds), default=0.0)
                ended[n] = began[n] + rng.uniform(0.01, 1.0)
                del remaining[n]
    path = critical_path(deps, began, ended)
    assert path[-1].node == max(ended, key=lambda n: ended[n])
    assert not deps[path[0].node], "the path starts at a node with no dependencies"
    for prev, hop in itertools.pairwise(path):
        assert prev.node in deps[hop.node]
        assert prev.offset + prev.duration == pytest.approx(hop.offset), "no gap on the critical path"
    assert sum(h.duration for h in path) == pytest.approx(max(ended.values()))


# --- soft edges (optional stack members) --------------------------------------------------------------


def test_a_failed_soft_dependency_releases_its_dependent_instead_of_skipping_it() -> None:
    s = Scheduler({"a": [], "m": [], "stack": ["a", "m"], "top": ["stack"]}, soft={"stack": ["m"]})
    assert sorted(s.initial()) == ["a", "m"]
    assert s.fail("m") == []
    assert s.released() == []  # still waits for a
    assert s.complete("a") == ["stack"]
    assert s.complete("stack") == ["top"]
    assert s.skipped == {}


def test_the_last_soft_failure_releases_at_once_and_only_once() -> None:
    s = Scheduler({"a": [], "x": [], "m": ["x"], "stack": ["a", "m"]}, soft={"stack": ["m"]})
    assert s.complete("a") == []
    assert s.fail("x") == ["m"]  # m needs x for real: skipped; the stack only softly needs m
    assert s.skipped == {"m": "dependency x failed"}
    assert s.released() == ["stack"]
    assert s.released() == []


def test_a_node_released_softly_but_skipped_through_a_hard_edge_stays_skipped() -> None:
    s = Scheduler({"h": [], "m": [], "stack": ["h", "m"]}, soft={"stack": ["m"]})
    s.fail("h")
    assert s.skipped == {"stack": "dependency h failed"}
    assert s.fail("m") == []
    assert s.released() == []


# --- edges found by mutation testing --------------------------------------------------------------


def test_chain_height_counts_the_nodes_on_the_longest_chain_behind_each_node() -> None:
    from b00t_graph.scheduler import chain_heights

    # db ← api ← web, db ← worker; cache alone (lists dependencies before dependents)
    deps = {"db": [], "cache": [], "api": ["db"], "worker": ["db"], "web": ["api", "cache"]}
    assert chain_heights(deps) == {"db": 3, "api": 2, "worker": 1, "web": 1, "cache": 2}
    assert chain_heights({}) == {}


def test_critical_path_takes_missing_start_times_as_the_run_start() -> None:
    # a node that ended without a recorded start (e.g. already running) counts from 0
    assert critical_path({"a": [], "b": ["a"]}, {"b": 2.0}, {"a": 1.5, "b": 3.0}) == \
        [Hop("a", 0.0, 1.5), Hop("b", 2.0, 1.0)]


def test_critical_path_of_a_node_outside_the_graph_is_that_node() -> None:
    assert critical_path({}, {"x": 1.0}, {"x": 4.0}) == [Hop("x", 1.0, 3.0)]


def test_a_failure_goes_on_past_a_soft_dependent_and_one_already_skipped() -> None:
    # m's dependents, in this order: stack (soft), x (skipped already), h (hard): h is skipped all the same
    s = Scheduler({"a": [], "m": [], "stack": ["m"], "x": ["a", "m"], "h": ["m"]}, soft={"stack": ["m"]})
    assert s.fail("a") == ["x"]
    assert s.fail("m") == ["h"]
    assert s.released() == ["stack"]
    assert s.skipped == {"x": "dependency a failed", "h": "dependency m failed"}
