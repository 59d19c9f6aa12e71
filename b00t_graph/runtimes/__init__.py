"""The one boundary to the outside world: the :class:`Runtime` protocol and its registry.

A runtime is chosen by the node's runtime kind (``Node.runtime``: the datum's ``kind``, else its
type when that is ``docker`` or ``process``) and imported lazily, so the core never imports
aiodocker unless a docker node is in the graph. Two kinds start nothing: ``presence`` checks
that a command is installed, ``probe`` waits on a health check of something b00t-graph does not
run. ``mcp``, ``stack`` and passive types without a kind have no runtime: they are ready when
their dependencies are.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

from ..errors import Problem
from ..model import DOCKER_RUNTIMES

if TYPE_CHECKING:
    from ..engines import EngineSpec
    from ..graph import Node


class State(enum.Enum):
    """What a runtime sees of a node, read-only."""

    ABSENT = "absent"
    RUNNING = "running"
    STOPPED = "stopped"
    FOREIGN = "foreign"  # something b00t-graph did not create holds the node's name
    UNREADY = "not ready"  # runs, but never passed its readiness probe (``up --keep-failed``)
    PAUSED = "paused"  # a paused container: neither running nor stopped, and probes cannot pass


@attrs.frozen
class Observed:
    """One node's current state as the runtime reports it.

    ``ref`` identifies the running thing (container id, pid); ``detail`` is for people.
    """

    state: State
    config_hash: str | None = None
    ref: str | None = None
    detail: str = ""


ABSENT = Observed(State.ABSENT)


class Action(enum.Enum):
    """What ``up`` does with a node, decided from the datum and the observation."""

    NONE = "already running"
    CREATE = "create and start"
    START = "start (stopped)"
    RECREATE = "recreate (config changed)"
    KEEP = "keep (config changed, --no-recreate)"
    CONFLICT = "refuse (name held by something b00t-graph did not create)"
    GROUP = "nothing to start (ready when dependencies are)"
    PASSIVE = "not managed (type not run by b00t-graph)"
    CHECK = "check presence"
    PROBE = "probe (nothing to start)"

    @property
    def changes(self) -> bool:
        return self in (Action.CREATE, Action.START, Action.RECREATE)

    @property
    def checks(self) -> bool:
        """Nothing is started: the runtime's ``wait_ready`` is the whole of the node's work."""
        return self in (Action.CHECK, Action.PROBE)


#: runtime kinds that start nothing, with the action ``up`` takes for them
CHECK_KINDS = {"presence": Action.CHECK, "probe": Action.PROBE}


def decide(node: Node, observed: Observed | None, *, no_recreate: bool = False) -> Action:
    """The single place that turns (datum, observation) into an action; ``plan`` and ``up`` share it."""
    if not node.spec.managed:
        return Action.PASSIVE if node.spec.passive else Action.GROUP
    if node.runtime in CHECK_KINDS:
        return CHECK_KINDS[node.runtime]
    obs = observed or ABSENT
    if obs.state is State.FOREIGN:
        return Action.CONFLICT
    if obs.state is State.ABSENT:
        return Action.CREATE
    same = obs.config_hash == node.config_hash
    if not same:
        return Action.KEEP if no_recreate else Action.RECREATE
    # left alone and probed: not ready (it may be now), paused (its readiness fails at once, saying so)
    return Action.NONE if obs.state in (State.RUNNING, State.UNREADY, State.PAUSED) else Action.START


@runtime_checkable
class Runtime(Protocol):
    """Everything b00t-graph does to the outside world goes through one of these.

    Methods raise :class:`~b00t_graph.errors.B00tGraphError` subclasses only: a
    runtime translates its library's errors at this boundary. A runtime whose
    ``prepare`` never does anything may set ``prepares = False`` so the engine
    does not spend a task per node on it. A runtime that starts nothing (a check:
    ``presence``, ``probe``) sets ``starts = False``: ``up`` only calls its
    ``wait_ready`` and ``down`` leaves it alone.
    """

    name: str

    async def observe(self, nodes: Sequence[Node]) -> dict[str, Observed]:
        """Current state of many nodes, read-only, in as few calls as the backend allows."""
        ...

    async def prepare(self, node: Node, action: Action) -> None:
        """Work that needs no dependency to be ready (pull an image): overlaps with waiting."""
        ...

    async def start(self, node: Node, observed: Observed, action: Action) -> Observed:
        """Create/recreate/start the node according to ``action``; return the new observation."""
        ...

    async def wait_ready(self, node: Node) -> str:
        """Return once the node is ready (probes, native health), raising on exit or timeout.

        The returned text says how readiness was established, for ``plan``/timings.
        """
        ...

    async def logs(self, node: Node, lines: int = 20) -> str:
        """The last lines of the node's output, for error messages."""
        ...

    async def stop(self, node: Node, observed: Observed, *, remove_volumes: bool = False) -> None:
        """Stop and remove what b00t-graph made for this node; never touches what it did not make."""
        ...

    async def aclose(self) -> None:
        """Release connections; called once when the engine is done."""
        ...


#: datum type → "module:factory"; imported only when a node of that type is in the graph.
RUNTIMES: dict[str, str] = {
    "docker": "b00t_graph.runtimes.docker:DockerRuntime",
    "process": "b00t_graph.runtimes.process:ProcessRuntime",
    "presence": "b00t_graph.runtimes.presence:PresenceRuntime",
    "probe": "b00t_graph.runtimes.probe:ProbeRuntime",
    "swarm": "b00t_graph.runtimes.swarm:SwarmRuntime",
}


def load_runtime(kind: str) -> type[Runtime]:
    """Import the runtime class for a datum type."""
    module, _, attr = RUNTIMES[kind].partition(":")
    cls: type[Runtime] = getattr(importlib.import_module(module), attr)
    return cls


def check_node(node: Node) -> Iterable[Problem]:
    """Runtime-specific validation before anything starts (e.g. unsupported ``docker_args``)."""
    if node.spec.on is not None or node.spec.swarm is not None:
        from .swarmspec import check as check_swarm

        yield from check_swarm(node)
    if node.runtime in DOCKER_RUNTIMES:
        from .dockerargs import check

        yield from check(node)


def check_nodes(nodes: Iterable[Node]) -> Iterable[Problem]:
    """:func:`check_node` for each node, then what only the whole graph shows (two datums naming one container)."""
    nodes = list(nodes)
    for node in nodes:
        yield from check_node(node)
    docker = [n for n in nodes if n.runtime in DOCKER_RUNTIMES]
    if len(docker) > 1:
        from .dockerargs import check_names

        yield from check_names(docker)


class RuntimeSet:
    """Runtimes by datum type: injected ones first, else the default ones, created on first use.

    A docker node on a named engine (``Node.engine``) has a runtime of its own, keyed ``docker@NAME``
    (``Node.runtime_key``), made with ``engine=`` its :class:`~b00t_graph.engines.EngineSpec`.
    """

    def __init__(self, injected: Mapping[str, Runtime] | None = None, **options: object) -> None:
        self._rt: dict[str, Runtime] = dict(injected or {})
        self._options = options

    def for_type(self, kind: str) -> Runtime | None:
        return self._get(kind, kind)

    def for_node(self, node: Node) -> Runtime | None:
        """The runtime that acts for ``node``: its kind's, on its engine when it names one."""
        if node.runtime is None:
            return None
        if node.engine is None:
            return self.for_type(node.runtime)
        return self.for_engine(node.runtime, node.engine)

    def for_engine(self, kind: str, engine: EngineSpec) -> Runtime | None:
        """The ``kind`` runtime (``docker``) talking to ``engine``, made on first use."""
        return self._get(f"{kind}@{engine.name}", kind, engine=engine)

    def _get(self, key: str, kind: str, **extra: object) -> Runtime | None:
        if key in self._rt:
            return self._rt[key]
        if "*" in self._rt:
            return self._rt["*"]
        if kind not in RUNTIMES:
            return None
        rt = load_runtime(kind)(**self._options, **extra)
        self._rt[key] = rt
        return rt

    def active(self) -> list[Runtime]:
        return list(dict.fromkeys(self._rt.values()))

    async def aclose(self) -> None:
        for rt in self.active():
            await rt.aclose()
