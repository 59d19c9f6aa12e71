"""Docker datums as Swarm services (``[b00t] on = "swarm"``, ``up --on swarm``), through the Engine API.

The engine must be a Swarm manager. Each docker datum becomes one service named like its
container would be (``<project>_`` prefixed in a project), built from the same container plan
(:mod:`.swarmspec`), carrying the same ownership labels and config hash; a service without our
labels, or made for another datum or project, is *foreign* and never touched. Every service of a
run joins one overlay network of its project (``<project>_swarm``, else ``b00t-graph_swarm``).

A service is ready when as many of its current tasks run as it has replicas (a task whose
container has a HEALTHCHECK counts as running only once healthy: Swarm holds it in ``starting``
until then), and then the datum's own probes pass against the task's container (exec, logs) and
its host-mode published ports. A task that fails before that fails the node with its error and
log tail; after that, Swarm replaces failed tasks itself. A changed configuration is a
``service update`` (the old task stops first); ``down`` removes the service, waits until its
containers are gone, then removes the overlay network once no service of ours is left on it.

The plumbing (engine discovery, the asyncio bridge, error translation, images and builds) is the
docker runtime's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio
from aiodocker.exceptions import DockerError

from ..errors import (
    B00tGraphError,
    ConflictError,
    NodeExited,
    ReadinessTimeout,
    RuntimeUnavailable,
    StartError,
    StopError,
)
from ..graph import Node
from ..model import HealthCheck
from ..readiness import wait_ready as probe_loop
from . import Action, Observed, State
from .docker import (
    API_TIMEOUT,
    HASH,
    MANAGED,
    NODE,
    STOP_SLACK,
    Docker,
    DockerRuntime,
    _ensure_volume,
    _grace_s,
    _inspect,
    _is_ours,
    _net_locks,
    _network,
    _project_of,
    _tail,
    _translate,
)
from .swarmspec import TASK_NODE, service_spec

if TYPE_CHECKING:
    from ..inventory import Managed

#: on a task's container spec: the config hash it was made from, so readiness waits for the new task
TASK_HASH = "org.b00t-graph.swarm-config-hash"
#: task states after which a task never runs again
_ENDED = frozenset({"complete", "failed", "shutdown", "rejected", "orphaned", "remove"})
#: seconds between looks at a service's tasks (the first looks come sooner)
_POLL_MAX = 0.1


def _newest_first(task: dict[str, Any]) -> int:
    """Sort key: the swarm's version index grows with every change, so the newest task sorts first."""
    return -int((task.get("Version") or {}).get("Index") or 0)


def _timestamp(text: str) -> float | None:
    """An engine timestamp (RFC 3339 with nanoseconds) as POSIX seconds; None when unreadable."""
    whole, _, frac = text.replace("Z", "").partition(".")
    try:
        return datetime.fromisoformat(f"{whole}.{(frac + '000000')[:6]}+00:00").timestamp()
    except ValueError:
        return None


class SwarmRuntime(DockerRuntime):
    """The ``swarm`` runtime: one replicated Swarm service per docker datum."""

    name = "swarm"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._not_manager: str | None = None  # why the engine cannot run services, once asked
        self._asked = False

    # --- plumbing ---------------------------------------------------------------------------------

    @property
    def network(self) -> str:
        """The overlay network every service of this project joins."""
        return f"{self.project or 'b00t-graph'}_swarm"

    async def _manager(self) -> tuple[Docker, str | None]:
        """The engine's client, and why it cannot run services (``None``: it is a Swarm manager)."""
        docker = await super()._client()
        if not self._asked:
            with _translate("ask the engine about its swarm", self._unavailable, self._where):
                info = await self._bridge.run(lambda: docker.system.info())
            swarm = info.get("Swarm") or {}
            if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
                self._not_manager = (f"the engine is not a Swarm manager (swarm state: "
                                     f"{swarm.get('LocalNodeState') or 'unknown'}); `docker swarm init` makes it one")
            self._asked = True
        return docker, self._not_manager

    async def _client(self) -> Docker:
        docker, why = await self._manager()
        if why is not None:
            raise self._unavailable(why)
        return docker

    def _unavailable(self, msg: str) -> B00tGraphError:
        return RuntimeUnavailable("swarm", [self._where], msg)

    def _spec(self, node: Node) -> dict[str, Any]:
        plan = self._plan(node)
        spec = service_spec(node, plan, self._labels(node), self.network, _grace_s(node, plan))
        spec["TaskTemplate"]["ContainerSpec"]["Labels"][TASK_HASH] = node.config_hash
        return spec

    # --- observe ----------------------------------------------------------------------------------

    async def observe(self, nodes: Sequence[Node]) -> dict[str, Observed]:
        """One list call for the services of these names, one for their running tasks."""
        if not nodes:
            return {}
        names = {self._plan(n).name: n for n in nodes}

        async def look(d: Docker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            services = [dict(s) for s in await d.services.list(filters={"name": list(names)})
                        if s["Spec"]["Name"] in names]
            tasks = await d.tasks.list(filters={"desired-state": ["running"]}) if services else []
            return services, [dict(t) for t in tasks]

        services, tasks = await self._call("list services", self._unavailable, look)
        running: dict[str, int] = {}
        for t in tasks:
            if (t.get("Status") or {}).get("State") == "running":
                running[t["ServiceID"]] = running.get(t["ServiceID"], 0) + 1
        out = {n.id: Observed(State.ABSENT) for n in nodes}
        for s in services:
            name = s["Spec"]["Name"]
            node = names[name]
            labels = s["Spec"].get("Labels") or {}
            sid = str(s["ID"])
            if not _is_ours(labels):
                out[node.id] = Observed(State.FOREIGN, None, sid, f"a service named {name!r} ({sid[:12]}) exists and "
                                        "was not created by b00t-graph")
            elif not self._mine(labels) or labels.get(NODE) != node.id:
                other = labels.get(NODE) or "?"
                out[node.id] = Observed(State.FOREIGN, None, sid, f"a service named {name!r} ({sid[:12]}) was "
                                        f"created by b00t-graph for {other}"
                                        + (f" in project {_project_of(labels)!r}" if _project_of(labels) else ""))
            else:
                want = int(((s["Spec"].get("Mode") or {}).get("Replicated") or {}).get("Replicas", 1))
                have = running.get(sid, 0)
                out[node.id] = Observed(State.RUNNING if have >= want else State.UNREADY, labels.get(HASH), sid,
                                        f"service {sid[:12]}: {have}/{want} running")
        return out

    # --- prepare and start ------------------------------------------------------------------------

    async def prepare(self, node: Node, action: Action) -> None:
        """Only the image (built or pulled; a single-node swarm runs local images): a service is never
        made ahead of its dependencies, and for RECREATE the docker runtime makes no container ahead."""
        if action in (Action.CREATE, Action.RECREATE):
            await super().prepare(node, Action.RECREATE)

    async def start(self, node: Node, observed: Observed, action: Action) -> Observed:
        self._refuse_foreign(node, observed)
        plan = self._plan(node)
        spec = self._spec(node)
        labels = self._labels(node)

        def fail(msg: str) -> B00tGraphError:
            return StartError(node.id, msg)

        async def bring_up(d: Docker) -> str:
            for net in dict.fromkeys([self.network, *plan.networks]):
                await self._ensure_overlay(d, node, net, labels)
            for vol in plan.volumes:
                await _ensure_volume(d, vol, labels)
            try:
                current = await d.services.inspect(plan.name)
            except DockerError as exc:
                if exc.status != 404:
                    raise
                current = None
            if current is None:
                try:
                    made = await d._query_json("services/create", method="POST",  # aiodocker's create
                                               data=json.dumps(spec))  # cannot take a whole spec
                    return str(made["ID"])  # "Warnings" (an image digest not resolved): a local image is fine
                except DockerError as exc:
                    if exc.status != 409:
                        raise
                    current = await d.services.inspect(plan.name)  # made meanwhile by another run
            theirs = current["Spec"].get("Labels") or {}
            if not self._mine(theirs) or theirs.get(NODE) != node.id:
                raise ConflictError(node.id, f"a service named {plan.name!r} exists and was not created by "
                                    "b00t-graph for this datum; it is left untouched")
            if theirs.get(HASH) != node.config_hash or action is not Action.CREATE:
                await d._query_json(f"services/{current['ID']}/update", method="POST",
                                    params={"version": str(current["Version"]["Index"])}, data=json.dumps(spec))
            return str(current["ID"])

        sid = await self._call("create the service", fail, bring_up)
        self._ids.pop(node.id, None)
        self.reporter.event(node.id, "starting", f"service {sid[:12]}")
        return Observed(State.RUNNING, node.config_hash, sid, f"service {sid[:12]}")

    async def _ensure_overlay(self, d: Docker, node: Node, name: str, labels: dict[str, str]) -> None:
        """The overlay network ``name``, made with our labels when absent (the nodes of a run share it)."""
        locks = _net_locks.setdefault(asyncio.get_running_loop(), {})
        async with locks.setdefault(name, asyncio.Lock()):
            for attempt in (1, 2):
                try:
                    net = await _network(d, name).show()
                except DockerError as exc:
                    if exc.status != 404:
                        raise
                else:
                    if net.get("Scope") != "swarm":
                        raise StartError(node.id, f"network {name!r} exists on this engine as a {net.get('Driver')} "
                                         "network: a Swarm service joins overlay networks only; rename the "
                                         "datum's network")
                    return
                try:
                    await d.networks.create({"Name": name, "Driver": "overlay", "Attachable": True,
                                             "CheckDuplicate": True,
                                             "Labels": {k: v for k, v in labels.items() if k != HASH}})
                    return
                except DockerError as exc:
                    # made meanwhile by another run: the swarm says "name conflicts with an existing object"
                    if attempt == 2 or (exc.status != 409 and "conflicts" not in exc.message):
                        raise

    # --- tasks and their containers ---------------------------------------------------------------

    async def _tasks(self, node: Node) -> list[dict[str, Any]]:
        """The service's tasks made from the node's current configuration, newest first."""
        name = self._plan(node).name

        async def look(d: Docker) -> list[dict[str, Any]]:
            try:
                tasks = await d.tasks.list(filters={"service": [name]})
            except DockerError as exc:
                if exc.status == 404:
                    return []
                raise
            return [dict(t) for t in tasks]

        tasks = await self._call("list the service's tasks", self._unavailable, look)
        ours = [t for t in tasks if ((t.get("Spec") or {}).get("ContainerSpec") or {}).get("Labels", {}).get(
            TASK_HASH) == node.config_hash]
        return sorted(ours, key=_newest_first)

    async def _task_container(self, node: Node) -> str | None:
        """The container of the service's newest running task, else of its newest task of all."""
        tasks = await self._tasks(node)
        for t in [t for t in tasks if (t.get("Status") or {}).get("State") == "running"] + tasks:
            cid = ((t.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")
            if cid:
                return str(cid)
        return None

    async def _container(self, node: Node) -> dict[str, Any]:
        """Inspect data of the container of the node's current task, which must be one of ours."""
        cid = self._ids.get(node.id) or await self._task_container(node)
        if cid is None:
            raise NodeExited(node.id, f"service {self._plan(node).name!r} has no task with a container")

        def fail(msg: str) -> B00tGraphError:
            return NodeExited(node.id, msg)

        info = await self._call("inspect the container", fail, lambda d: _inspect(d, cid))
        if info is None:
            raise NodeExited(node.id, f"the container of service {self._plan(node).name!r} does not exist (removed?)")
        if (info["Config"].get("Labels") or {}).get(TASK_NODE) != node.id:
            raise ConflictError(node.id, f"container {cid[:12]} is not a task of this datum's service")
        self._ids[node.id] = str(info["Id"])
        return info

    async def exec(self, node: Node, argv: list[str], timeout: float) -> int:
        if node.id not in self._ids:
            await self._container(node)
        return await super().exec(node, argv, timeout)

    async def logs(self, node: Node, lines: int = 20) -> str:
        try:
            cid = self._ids.get(node.id) or await self._task_container(node)
        except B00tGraphError:
            return ""
        if cid is None:
            return ""
        try:
            return await self._call("read the log", self._unavailable, lambda d: _tail(d, cid, lines))
        except B00tGraphError:
            return ""

    # --- readiness --------------------------------------------------------------------------------

    async def wait_ready(self, node: Node) -> str:
        """Tasks running (healthy, when they have a HEALTHCHECK), then the datum's probes."""
        hc = node.health or HealthCheck()
        limit = hc.timeout_ms / 1000
        try:
            with anyio.fail_after(limit):
                cid = await self._running_task(node)
        except TimeoutError:
            raise ReadinessTimeout(node.id, f"no task of the service was running within {limit:g}s"
                                   + await self._task_errors(node), await self.logs(node)) from None
        self._ids[node.id] = cid
        info = await self._container(node)
        st = info["State"]
        how = "task running"
        if st.get("Health") is not None and (st["Health"].get("Status") != "healthy") and hc.docker:
            await self._until_exit(node, cid, lambda: self._docker_health(node, cid, st, node.health))
            how = "task running, HEALTHCHECK healthy"
        elif st.get("Health") is not None:
            how = "task running, HEALTHCHECK healthy"
        if node.health is not None and node.health.probes():
            probed = await self._until_exit(node, cid, lambda: probe_loop(node, self))
            how = f"{how}; {probed}"
        return how

    async def _running_task(self, node: Node) -> str:
        """Wait until as many current tasks run as the service has replicas; the newest one's container.

        A current task that ends before (failed, rejected) fails the node: it never came up.
        """
        want = node.spec.swarm.replicas if node.spec.swarm is not None else 1
        delay = 0.02
        while True:
            tasks = await self._tasks(node)
            running = [t for t in tasks if (t.get("Status") or {}).get("State") == "running"
                       and t.get("DesiredState") == "running"]
            if len(running) >= max(want, 1) or (want == 0 and not tasks):
                cid = ((running[0].get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID") if running \
                    else None
                if cid or want == 0:
                    return str(cid or "")
            ended = [t for t in tasks if (t.get("Status") or {}).get("State") in _ENDED - {"shutdown", "remove"}]
            if ended and not running:
                t = ended[0]
                st = t.get("Status") or {}
                code = (st.get("ContainerStatus") or {}).get("ExitCode")
                why = f"the service's task {st.get('State')}: {st.get('Err') or st.get('Message') or '?'}"
                if code is not None:
                    why += f" (exit code {code})"
                cid = (st.get("ContainerStatus") or {}).get("ContainerID")
                if cid:
                    self._ids[node.id] = str(cid)
                raise NodeExited(node.id, why, await self.logs(node))
            await anyio.sleep(delay)
            delay = min(delay * 1.5, _POLL_MAX)

    async def _task_errors(self, node: Node) -> str:
        try:
            tasks = await self._tasks(node)
        except B00tGraphError:
            return ""
        if not tasks:
            return " (no task was made: is the image on the node, do the placement constraints match a node?)"
        st = tasks[0].get("Status") or {}
        return f" (newest task: {st.get('State')}: {st.get('Err') or st.get('Message') or ''})"

    # --- stop -------------------------------------------------------------------------------------

    async def stop(self, node: Node, observed: Observed, *, remove_volumes: bool = False) -> None:
        plan = self._plan(node)
        grace = _grace_s(node, plan)

        def fail(msg: str) -> B00tGraphError:
            return StopError(node.id, msg)

        await self._call("remove the service", fail, lambda d: self._remove_service(d, plan.name, node.id),
                         timeout=API_TIMEOUT + grace + STOP_SLACK)
        await self._call("remove the network", fail, lambda d: self._remove_networks(d, [self.network,
                                                                                           *plan.networks]))
        self._ids.pop(node.id, None)

    async def _remove_service(self, d: Docker, ref: str, node_id: str | None) -> bool:
        """Remove one of our services and wait until its containers are gone; False when absent or not ours.

        With ``node_id``: only the service of this project made for that node (``down``); without: any
        service b00t-graph made, by id or name (an orphan)."""
        try:
            info = await d.services.inspect(ref)
        except DockerError as exc:
            if exc.status == 404:
                return False
            raise
        labels = info["Spec"].get("Labels") or {}
        if not _is_ours(labels) or (node_id is not None and (not self._mine(labels) or labels.get(NODE) != node_id)):
            return False
        sid = str(info["ID"])
        try:
            await d.services.delete(sid)
        except DockerError as exc:
            if exc.status != 404:
                raise
        # the tasks' containers stop with their grace period after the service is gone: wait for them,
        # so a dependency is stopped only once its dependents really are
        delay = 0.05
        while await d.containers.list(all=True, filters={"label": [f"com.docker.swarm.service.id={sid}"]}):
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        return True

    async def _remove_networks(self, d: Docker, names: list[str]) -> None:
        """Remove our overlay networks that no service of ours uses any more."""
        services = await d.services.list(filters={"label": [f"{MANAGED}=1"]})
        for name in dict.fromkeys(names):
            try:
                net = await _network(d, name).show()
            except DockerError as exc:
                if exc.status == 404:
                    continue
                raise
            if not _is_ours(net.get("Labels")) or net.get("Scope") != "swarm":
                continue
            used = any(n.get("Target") in (name, net["Id"])
                       for s in services for n in (s["Spec"].get("TaskTemplate") or {}).get("Networks") or ())
            if used:
                continue
            for _ in range(40):  # the engine lets go of the removed tasks' endpoints shortly after
                try:
                    await _network(d, net["Id"]).delete()
                    break
                except DockerError as exc:
                    if exc.status == 404:
                        break
                    if exc.status not in (403, 409):
                        raise
                await asyncio.sleep(0.25)

    # --- inventory (ps, orphans) ------------------------------------------------------------------

    async def inventory(self) -> list[Managed]:
        """Every service b00t-graph made on this swarm (all projects); none when the engine is no manager."""
        from ..inventory import Managed

        if (await self._manager())[1] is not None:
            return []  # an engine that answers but is no swarm manager has no services to list

        async def look(d: Docker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            services = await d.services.list(filters={"label": [f"{MANAGED}=1"]})
            tasks = await d.tasks.list(filters={"desired-state": ["running"]}) if services else []
            return [dict(s) for s in services], [dict(t) for t in tasks]

        services, tasks = await self._call("list services", self._unavailable, look)
        out: list[Managed] = []
        for s in services:
            sid, spec = str(s["ID"]), s["Spec"]
            labels = spec.get("Labels") or {}
            mine = [t for t in tasks if t.get("ServiceID") == sid]
            up = [t for t in mine if (t.get("Status") or {}).get("State") == "running"]
            want = int(((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 1))
            nodes = sorted({str(t.get("NodeID", ""))[:12] for t in up})
            ports = [f"{p.get('PublishedPort')}->{p.get('TargetPort')}/{p.get('Protocol')}"
                     for p in (s.get("Endpoint") or {}).get("Ports") or () if p.get("PublishedPort")]
            since = [_timestamp(str((t.get("Status") or {}).get("Timestamp") or "")) for t in up]
            out.append(Managed(node=str(labels.get(NODE, "?")), runtime="swarm", project=_project_of(labels) or None,
                               name=str(spec.get("Name", "")), ref=sid,
                               state="running" if up or want == 0 else "starting",
                               health=f"{len(up)}/{want} running" + (f" on node {', '.join(nodes)}" if nodes else ""),
                               started=min((t for t in since if t is not None), default=None),
                               ports=tuple(ports), config_hash=labels.get(HASH)))
        return out

    async def remove_managed(self, ref: str, grace_s: int = 10) -> bool:
        """Remove one service b00t-graph made (by id or name); False when absent or not ours."""
        return await self._call("remove the service", self._unavailable,
                                lambda d: self._remove_service(d, ref, None),
                                timeout=API_TIMEOUT + grace_s + STOP_SLACK)
