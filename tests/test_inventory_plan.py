"""The pure parts of safe ``down`` and ``stop``: who depends on whom, and what a down keeps."""

from __future__ import annotations

from b00t_graph.inventory import ancestors, descendants, plan_down, running_dependents

#: api → cache ← other; web → api; job (alone); a diamond: top → (l, r) → base
DEPS = {"api": ["cache"], "other": ["cache"], "web": ["api"], "cache": [], "job": [],
        "top": ["l", "r"], "l": ["base"], "r": ["base"], "base": []}


def test_ancestors_include_the_start_and_every_dependency_transitively() -> None:
    assert ancestors(DEPS, ["web"]) == {"web", "api", "cache"}
    assert ancestors(DEPS, ["top"]) == {"top", "l", "r", "base"}
    assert ancestors(DEPS, ["job", "other"]) == {"job", "other", "cache"}


def test_descendants_are_every_transitive_dependent_without_the_start() -> None:
    assert descendants(DEPS, "cache") == {"api", "other", "web"}
    assert descendants(DEPS, "api") == {"web"}
    assert descendants(DEPS, "base") == {"l", "r", "top"}
    assert descendants(DEPS, "web") == set()
    assert descendants(DEPS, "unknown") == set()


def test_running_dependents_are_only_those_that_run() -> None:
    assert running_dependents(DEPS, "cache", ["web", "cache", "job"]) == {"web"}
    assert running_dependents(DEPS, "cache", []) == set()


def test_down_keeps_what_a_running_node_outside_still_needs() -> None:
    plan = plan_down(DEPS, ["other", "cache"], ["api", "web", "job"])
    assert plan.stop == {"other"}
    assert plan.kept == {"cache": "api (running, not in this down) depends on it"}
    assert plan.forced == {}


def test_a_dependency_kept_through_others_says_so() -> None:
    plan = plan_down(DEPS, ["cache", "api"], ["web"])
    assert plan.stop == frozenset()
    assert plan.kept == {"api": "web (running, not in this down) depends on it",
                         "cache": "web (running, not in this down) depends on it (through others)"}


def test_force_stops_the_outside_dependents_too_and_says_why() -> None:
    plan = plan_down(DEPS, ["cache"], ["api", "web", "job"], force=True)
    assert plan.stop == {"cache", "api", "web"}
    assert plan.kept == {}
    assert plan.forced == {"api": "depends on cache", "web": "depends on cache"}


def test_an_outside_node_that_needs_nothing_of_the_target_changes_nothing() -> None:
    plan = plan_down(DEPS, ["top", "l", "r", "base"], ["job", "cache"])
    assert plan.stop == {"top", "l", "r", "base"} and not plan.kept and not plan.forced
