"""The README's public API and error tree, pinned: names importable from ``b00t_graph``, every edge of
the hierarchy, every class's exit code, and the errors a user meets without Docker."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import b00t_graph
from b00t_graph import errors
from b00t_graph.errors import (
    AmbiguousTargetError,
    B00tGraphError,
    CapabilityError,
    ConflictError,
    CycleError,
    DatumError,
    EngineUnavailable,
    EnvError,
    GraphError,
    InputError,
    LockTimeout,
    MissingDependencyError,
    NodeError,
    NodeExited,
    NodePaused,
    PortConflictError,
    PortInUse,
    PresenceError,
    ReadinessTimeout,
    RuntimeUnavailable,
    StartError,
    StateDirError,
    StopError,
    SupervisorError,
    UpFailed,
)
from b00t_graph.runtimes import Observed, State
from b00t_graph.runtimes.null import NullRuntime

#: Written out here on purpose, not read from ``b00t_graph.__all__``: removing a name must fail a test.
PUBLIC = [
    "B00tGraphError", "CapabilityError", "ConflictError", "CycleError", "DatumError", "Engine", "EngineUnavailable",
    "Env", "EnvError",
    "Graph", "GraphError", "InputError", "LaunchSpec", "MissingDependencyError", "Node", "NodeError", "NodeExited",
    "NodePaused", "PortConflictError", "PortInUse", "PresenceError", "ReadinessTimeout", "RunResult", "Runtime",
    "RuntimeUnavailable", "StartError", "StateDirError", "UpFailed",
    "down_graph", "ensure", "load_graph", "mcp_servers", "ps", "restart", "running", "stop", "up_graph",
]

#: The README's tree under ``b00t_graph.errors``, as (child, parent) edges.
TREE = [
    (InputError, B00tGraphError),
    (DatumError, InputError),
    (EnvError, DatumError),
    (GraphError, InputError),
    (CycleError, GraphError),
    (MissingDependencyError, GraphError),
    (AmbiguousTargetError, GraphError),
    (RuntimeUnavailable, B00tGraphError),
    (EngineUnavailable, RuntimeUnavailable),
    (NodeError, B00tGraphError),
    (StartError, NodeError),
    (ConflictError, StartError),
    (ReadinessTimeout, NodeError),
    (NodeExited, NodeError),
    (StopError, NodeError),
    (UpFailed, B00tGraphError),
    (LockTimeout, B00tGraphError),
    (StateDirError, InputError),
    (CapabilityError, GraphError),
    (PortConflictError, GraphError),
    (PortInUse, StartError),
    (PresenceError, NodeError),
    (NodePaused, NodeExited),
    (SupervisorError, B00tGraphError),
]


def test_public_names_are_importable_from_the_package() -> None:
    missing = [name for name in PUBLIC if not hasattr(b00t_graph, name)]
    assert missing == []
    assert sorted(b00t_graph.__all__) == sorted(PUBLIC), "a public name was added or removed: update the README"
    for name in PUBLIC:
        if name in TREE_NAMES:
            assert getattr(b00t_graph, name) is getattr(errors, name), name


TREE_NAMES = {cls.__name__ for edge in TREE for cls in edge}


def test_every_class_of_the_readme_tree_is_in_b00t_graph_errors() -> None:
    assert TREE_NAMES == {
        "B00tGraphError", "InputError", "DatumError", "EnvError", "GraphError", "CycleError",
        "MissingDependencyError", "AmbiguousTargetError", "RuntimeUnavailable", "EngineUnavailable", "NodeError",
        "StartError",
        "ConflictError", "ReadinessTimeout", "NodeExited", "StopError", "UpFailed", "LockTimeout",
        "StateDirError", "CapabilityError", "PortConflictError", "PortInUse", "PresenceError", "NodePaused",
        "SupervisorError"}
    for name in TREE_NAMES:
        assert getattr(errors, name).__module__ == "b00t_graph.errors", name


@pytest.mark.parametrize(("child", "parent"), TREE, ids=[f"{c.__name__}<{p.__name__}" for c, p in TREE])
def test_error_tree_edge(child: type[Exception], parent: type[Exception]) -> None:
    assert issubclass(child, parent)
    assert child.__mro__[1] is parent, "the direct parent is the README's"


def test_branches_do_not_cross() -> None:
    for cls in (RuntimeUnavailable, NodeError, UpFailed, LockTimeout):
        assert not issubclass(cls, InputError), cls
    for cls in (ReadinessTimeout, NodeExited, StopError):
        assert not issubclass(cls, StartError), cls


@pytest.mark.parametrize(("cls", "code"), [
    (InputError, 2), (DatumError, 2), (EnvError, 2), (GraphError, 2), (CycleError, 2),
    (MissingDependencyError, 2), (AmbiguousTargetError, 2),
    (RuntimeUnavailable, 1), (NodeError, 1), (StartError, 1), (ConflictError, 1), (ReadinessTimeout, 1),
    (NodeExited, 1), (StopError, 1), (UpFailed, 1), (LockTimeout, 1), (B00tGraphError, 1),
    (StateDirError, 2), (CapabilityError, 2), (PortConflictError, 2), (PortInUse, 1), (PresenceError, 1),
    (NodePaused, 1),
])
def test_exit_code_of_each_class(cls: type[B00tGraphError], code: int) -> None:
    assert cls.exit_code == code


def test_node_errors_carry_node_reason_and_log_tail() -> None:
    err = StopError("db.process", "cannot stop pid 7: Operation not permitted", "line one\nline two\n")
    assert (err.node, err.reason, err.log_tail) == ("db.process", "cannot stop pid 7: Operation not permitted",
                                                    "line one\nline two\n")
    assert str(err) == ("db.process: cannot stop pid 7: Operation not permitted\n"
                        "  last log lines:\n    line one\n    line two")
    assert str(StopError("db.process", "gone", "  \n")) == "db.process: gone"


def test_up_failed_lists_failures_and_skips() -> None:
    err = UpFailed({"a.process": StartError("a.process", "no such image")}, {"b.process": "dependency a failed"})
    assert str(err) == ("1 node(s) failed, 1 skipped\n  ✗ a.process: no such image\n"
                        "  - b.process: skipped (dependency a failed)")


def test_runtime_unavailable_says_what_was_tried() -> None:
    err = RuntimeUnavailable("docker", ["DOCKER_HOST=unix:///x (No such file)", "/var/run/docker.sock (gone)"],
                             "no engine answered")
    assert (err.runtime, err.tried) == ("docker", ["DOCKER_HOST=unix:///x (No such file)",
                                                   "/var/run/docker.sock (gone)"])
    assert str(err) == ("docker runtime unavailable: no engine answered; "
                        "tried DOCKER_HOST=unix:///x (No such file), /var/run/docker.sock (gone)")


class Foreign(NullRuntime):
    """A runtime (our own interface) that finds the node's name held by something b00t-graph did not create."""

    async def observe(self, nodes: Sequence[b00t_graph.Node]) -> dict[str, Observed]:
        return {n.id: Observed(State.FOREIGN, None, "c0ffee", "container web exists, not made by b00t-graph")
                for n in nodes}


@pytest.mark.anyio
async def test_a_foreign_holder_of_the_name_is_a_conflict_and_is_left_alone(
        write_datums: Callable[..., Path]) -> None:
    folder = write_datums({"web.process": "[b00t]\ncommand = ['true']\n",
                           "app.process": "[b00t]\ncommand = ['true']\ndepends_on = ['web.process']\n"})
    graph = b00t_graph.load_graph(["app.process"], folder, environ={})
    rt = Foreign()
    async with b00t_graph.Engine(runtimes={"*": rt}) as engine:
        res = await engine.up(graph)
        down = await engine.down(graph)
    err = res.failures["web.process"]
    assert isinstance(err, ConflictError) and err.node == "web.process"
    assert str(err) == ("web.process: container web exists, not made by b00t-graph; b00t-graph does not touch "
                        "what it did not create: remove or rename it, or rename the datum")
    assert res.skipped == {"app.process": "dependency web.process failed"}
    assert rt.order == [] and rt.stopped == [], "neither started over nor stopped"
    assert down.timings["web.process"].detail == "not ours, left alone"
