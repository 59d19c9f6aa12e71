"""Docker containers as services, through the Engine API (aiodocker), on asyncio and trio.

What b00t-graph creates carries three labels: ``org.b00t-graph.managed=1``,
``org.b00t-graph.node=<id>`` and ``org.b00t-graph.config-hash=<hash>``. The
container is named after the datum (or its ``--name``/``container_name``); a
container of that name without our label, or made by b00t-graph for another
datum, is *foreign*: it is reported, refused and never touched. In a project
(``project=NAME``) container, network and volume names are prefixed ``NAME_``,
everything also carries ``org.b00t-graph.project=NAME``, and only that project's
containers are seen (:func:`in_project`).

A datum with ``build`` has its image built here (``prepare``) from a tar of its
context folder, or by the engine from a git URL; the image carries our labels
and ``org.b00t-graph.context-hash``, and is not built again while an image with
that hash exists. Before a container that publishes fixed host ports starts,
each port is checked: one held by another program fails the node with
:class:`~b00t_graph.errors.PortInUse`, naming the program (or container). Networks and
named volumes are created with the same labels when absent and are removed
only if they carry them.

aiodocker runs on asyncio only. Every engine call is an asyncio coroutine that
:class:`~b00t_graph.runtimes._bridge.AsyncioBridge` awaits directly under
asyncio, or on a helper loop under trio; aiodocker's and the OS's errors are
translated into b00t-graph's in one place, :func:`_translate`.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import io
import math
import os
import re
import ssl
import stat
import time
import weakref
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiodocker
import aiohttp
import anyio
import attrs
from aiodocker.events import DockerEvents
from aiodocker.exceptions import DockerError
from aiodocker.networks import DockerNetwork

from ..engines import DEFAULT, EngineSpec, default_engine
from ..errors import (
    B00tGraphError,
    ConflictError,
    EngineUnavailable,
    NodeExited,
    NodePaused,
    PortInUse,
    ReadinessTimeout,
    RuntimeUnavailable,
    StartError,
    StopError,
)
from ..events import Reporter, Silent
from ..graph import Node
from ..model import HealthCheck
from ..readiness import probe_now
from ..readiness import wait_ready as probe_loop
from . import Action, Observed, State, dockerbuild
from ._bridge import AsyncioBridge
from .dockerargs import ContainerPlan
from .dockerargs import plan as make_plan
from .ports import holder, is_free, published

if TYPE_CHECKING:
    from ..inventory import Managed

T = TypeVar("T")
Docker = aiodocker.Docker
Fail = Callable[[str], B00tGraphError]

MANAGED = "org.b00t-graph.managed"
NODE = "org.b00t-graph.node"
HASH = "org.b00t-graph.config-hash"
CONTEXT_HASH = "org.b00t-graph.context-hash"
#: the project namespace a container belongs to (absent or "": none)
PROJECT = "org.b00t-graph.project"

#: seconds to wait for an engine to answer a ping during discovery
PING_TIMEOUT = 3.0
#: seconds for an ordinary engine call (not pull, stop, wait or the event stream)
API_TIMEOUT = 30.0
#: a pull that reports nothing for this long is abandoned (no registry, a black-holed network)
PULL_STALL = 20.0
#: extra seconds a stop call may take beyond the node's grace period (the kill, the removal)
STOP_SLACK = 30.0


def labels_for(node: Node, project: str | None = None) -> dict[str, str]:
    """The labels every object created for ``node`` carries (in ``project``, when given)."""
    labels = {MANAGED: "1", NODE: node.id, HASH: node.config_hash}
    if project:
        labels[PROJECT] = project
    return labels


def _is_ours(labels: dict[str, str] | None) -> bool:
    return (labels or {}).get(MANAGED) == "1"


def _project_of(labels: dict[str, str] | None) -> str:
    """The project a managed object belongs to; "" for none."""
    return (labels or {}).get(PROJECT) or ""


def in_project(plan: ContainerPlan, project: str | None) -> ContainerPlan:
    """``plan`` with its container, user networks and named volumes renamed ``<project>_…``.

    On its network the container keeps the datum's own name as an alias, so the project's
    containers still reach each other by the names their datums use. No project: ``plan`` itself.
    """
    if not project:
        return plan
    pre = f"{project}_"
    nets = {n: pre + n for n in plan.networks}
    vols = {v: pre + v for v in plan.volumes}
    cfg = copy.deepcopy(plan.config)
    host = cfg.setdefault("HostConfig", {})
    if host.get("NetworkMode") in nets:
        host["NetworkMode"] = nets[host["NetworkMode"]]
    if "Binds" in host:
        binds = []
        for bind in host["Binds"]:
            src, sep, rest = bind.partition(":")
            binds.append(vols[src] + sep + rest if src in vols else bind)
        host["Binds"] = binds
    for mount in host.get("Mounts", ()):
        if mount.get("Type") == "volume" and mount.get("Source") in vols:
            mount["Source"] = vols[mount["Source"]]
    if nets:
        endpoints = cfg.setdefault("NetworkingConfig", {}).setdefault("EndpointsConfig", {})
        for old, new in nets.items():
            ep = endpoints.pop(old, {})
            ep["Aliases"] = list(dict.fromkeys([*ep.get("Aliases", ()), plan.name]))
            endpoints[new] = ep
    return attrs.evolve(plan, name=pre + plan.name, config=cfg, networks=tuple(nets.values()),
                        volumes=tuple(vols.values()))


def _unreachable(engine: EngineSpec | None, tried: Sequence[str], reason: str) -> RuntimeUnavailable:
    """The error of an engine that does not answer: the default one's, or a named one's naming it."""
    if engine is None or engine.name == DEFAULT:
        return RuntimeUnavailable("docker", tried, reason)
    return EngineUnavailable(engine.name, tried, reason)


@contextmanager
def _translate(what: str, fail: Fail, where: str, engine: EngineSpec | None = None) -> Iterator[None]:
    """The one place where aiodocker's, aiohttp's and the OS's errors become b00t-graph's."""
    try:
        yield
    except DockerError as exc:
        if exc.status == 900:  # aiodocker's code for "cannot connect"
            raise _unreachable(engine, [where], f"lost the engine while trying to {what}") from None
        raise fail(f"cannot {what}: {exc.message}") from None
    except TimeoutError:
        raise fail(f"cannot {what}: the engine did not answer in time") from None
    except (OSError, aiohttp.ClientError) as exc:
        raise _unreachable(engine, [where], f"{what}: {type(exc).__name__}: {exc}") from None


# --- engine discovery ----------------------------------------------------------------------------


def candidates(environ: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """``(url, how it was found)`` in the order tried. ``DOCKER_HOST``, when set, is the only one."""
    env = dict(os.environ if environ is None else environ)
    host = env.get("DOCKER_HOST", "").strip()
    if host:
        return [(host, f"DOCKER_HOST={host}")]
    out = [("unix:///var/run/docker.sock", "/var/run/docker.sock"),
           ("unix:///run/podman/podman.sock", "/run/podman/podman.sock")]
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg:
        path = f"{xdg.rstrip('/')}/podman/podman.sock"
        out.append((f"unix://{path}", path))
    return out


def _ssl(engine: EngineSpec) -> ssl.SSLContext | None:
    """The TLS context of an engine with TLS files (``tls_ca``, ``tls_cert``/``tls_key``), else ``None``."""
    if not engine.tls:
        return None
    try:
        ctx = ssl.create_default_context(cafile=engine.tls_ca)
        if engine.tls_cert:
            ctx.load_cert_chain(engine.tls_cert, engine.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise EngineUnavailable(engine.name, [f"{engine.url} ({engine.origin})"],
                                f"cannot load its TLS files: {exc}") from None
    if not engine.tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _discover(engine: EngineSpec | None = None) -> tuple[Docker, str]:
    """The first engine that answers a ping (asyncio side): ``engine``'s address alone when it has one."""
    tried: list[str] = []
    context = None if engine is None or engine.url is None else _ssl(engine)
    found = candidates() if engine is None or engine.url is None else [(engine.url, f"{engine.url} ({engine.origin})")]
    for url, label in found:
        if url.startswith("unix://"):
            try:
                mode = os.stat(url.removeprefix("unix://")).st_mode
            except OSError as exc:
                tried.append(f"{label} ({exc.strerror or 'cannot stat'})")
                continue
            if not stat.S_ISSOCK(mode):
                tried.append(f"{label} (not a socket)")
                continue
        elif not re.match(r"^(tcp|http|https)://", url):
            tried.append(f"{label} (unsupported scheme: use unix:// or tcp://)")
            continue
        if context is not None:
            url = re.sub(r"^(tcp|http)://", "https://", url)
        try:
            client = aiodocker.Docker(url=url, ssl_context=context)
        except ValueError as exc:
            tried.append(f"{label} ({exc})")
            continue
        try:
            async with asyncio.timeout(PING_TIMEOUT):
                await _ping(client)
        except DockerError as exc:
            await client.close()
            tried.append(f"{label} ({exc.message})")
            continue
        except (OSError, TimeoutError, aiohttp.ClientError) as exc:
            await client.close()
            why = f"no answer within {PING_TIMEOUT:g}s" if isinstance(exc, TimeoutError) else str(exc)
            tried.append(f"{label} ({why})")
            continue
        except BaseException:
            await client.close()
            raise
        return client, label
    if engine is not None and engine.name != DEFAULT:
        raise EngineUnavailable(engine.name, tried, "it does not answer")
    raise RuntimeUnavailable("docker", tried, "no Docker or Podman engine answered")


async def _ping(client: Docker) -> None:
    """Check the engine answers and learn its API version from the same answer.

    aiodocker's ``"auto"`` version asks ``GET /version`` before the first real request; ``/_ping``
    carries the version in its ``Api-Version`` header, so one round trip both finds the engine and
    negotiates, and every later request goes straight to it. An engine that sends no header keeps
    ``"auto"`` (negotiated on first use, as before).
    """
    # aiodocker has no public unversioned request; _query is what its own version() uses
    async with client._query("_ping", versioned_api=False) as resp:
        api = resp.headers.get("Api-Version", "")
        await resp.read()
    if _API_VERSION.match(api):
        client.api_version = f"v{api}"


_API_VERSION = re.compile(r"^1\.\d+$")


# --- asyncio-side helpers (they receive the client, run on the bridge's loop) ---------------------


async def _inspect(d: Docker, ref: str) -> dict[str, Any] | None:
    """A container's inspect data, or None when it does not exist."""
    try:
        info: dict[str, Any] = await d.containers.container(ref).show()
    except DockerError as exc:
        if exc.status == 404:
            return None
        raise
    return info


async def _tail(d: Docker, ref: str, lines: int) -> str:
    try:
        chunks = await d.containers.container(ref).log(stdout=True, stderr=True, tail=lines)
    except DockerError:
        return ""
    return "\n".join("".join(chunks).splitlines()[-lines:])


def _foreign_text(info: dict[str, Any]) -> str:
    name = info.get("Name", "").lstrip("/")
    image = info.get("Config", {}).get("Image", "?")
    return (f"a container named {name!r} ({info.get('Id', '')[:12]}, image {image}) exists and was not "
            "created by b00t-graph")


def _network(d: Docker, ref: str) -> DockerNetwork:
    """A network by name or id, without the inspect that ``d.networks.get`` makes before any call."""
    return DockerNetwork(d, ref)  # type: ignore[no-untyped-call]  # aiodocker's networks are untyped


#: per event loop, one lock per network name: the engine's CheckDuplicate is not atomic, so two
#: concurrent creates of one name make two networks, and no container on that name can start then
_net_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary())


async def _ensure_network(d: Docker, name: str, labels: dict[str, str]) -> None:
    locks = _net_locks.setdefault(asyncio.get_running_loop(), {})
    async with locks.setdefault(name, asyncio.Lock()):  # nodes of one run share networks
        try:
            await d.networks.get(name)
            return
        except DockerError as exc:
            if exc.status == 400 and "ambiguous" in exc.message:  # two processes raced: see below
                await _dedupe_network(d, name)
                return
            if exc.status != 404:
                raise
        try:
            await d.networks.create({"Name": name, "CheckDuplicate": True, "Labels": labels})
        except DockerError as exc:
            if exc.status != 409:  # created meanwhile by a concurrent node or process: fine
                raise
        await _dedupe_network(d, name)


async def _dedupe_network(d: Docker, name: str) -> None:
    """Two processes that create one network at once make two of that name, and the engine then
    refuses every container on it as ambiguous. Keep one (one in use, else the lowest id: the same
    choice in every process) and remove the other, empty ones that are ours."""
    nets = [n for n in await d.networks.list(filters={"name": [name]}) if n.get("Name") == name]
    if len(nets) < 2:
        return
    shown = []
    for n in nets:
        try:
            shown.append(await _network(d, n["Id"]).show())
        except DockerError as exc:
            if exc.status != 404:  # 404: the other process, settling the same pair, removed it first
                raise
    if len(shown) < 2:
        return
    keep = min(shown, key=lambda n: (not n.get("Containers"), n["Id"]))
    for n in shown:
        if n["Id"] != keep["Id"] and _is_ours(n.get("Labels")) and not n.get("Containers"):
            try:
                await _network(d, n["Id"]).delete()
            except DockerError as exc:
                if exc.status not in (403, 404, 409):  # joined or removed meanwhile
                    raise


async def _remove_unused_network(d: Docker, name: str) -> bool:
    """Remove a network of ours that no container uses; False if it is absent, not ours or in use."""
    for attempt in (1, 2):
        try:
            data = await _network(d, name).show()
            # a container made but not started yet (another run's) is not among its Containers,
            # but could not start without the network
            if (not _is_ours(data.get("Labels")) or data.get("Containers")
                    or await d.containers.list(all=True, filters={"network": [name]})):
                return False
            await _network(d, data["Id"]).delete()
            return True
        except DockerError as exc:
            if attempt == 1 and "ambiguous" in exc.message:  # made twice by two processes at once
                await _dedupe_network(d, name)
                continue
            if exc.status not in (403, 404, 409):  # gone, or joined meanwhile: leave it
                raise
            return False
    return False


def _network_raced(exc: DockerError) -> bool:
    """A start or create refused over a network another process is making, settling or removing."""
    return "ambiguous" in exc.message or bool(re.search(r"\bnetwork \S+ not found", exc.message))


async def _start_container(d: Docker, cid: str, networks: Sequence[str], labels: dict[str, str]) -> None:
    """Start a container; while a network of its is ambiguous (another process made it at the same
    moment), or was removed since the container was made (the duplicate another process settled
    away, or a `down` elsewhere), make or settle that network and try again."""
    for attempt in range(10):
        try:
            await d.containers.container(cid).start()
            return
        except DockerError as exc:
            if attempt == 9 or not networks or not _network_raced(exc):
                raise
        for net in networks:
            await _ensure_network(d, net, labels)
        await asyncio.sleep(0.05)


async def _image_id(d: Docker, ref: str) -> tuple[str, dict[str, str]] | None:
    """An image's id and labels, or None when absent."""
    try:
        info = await d.images.inspect(ref)
    except DockerError as exc:
        if exc.status == 404:
            return None
        raise
    return str(info["Id"]), dict((info.get("Config") or {}).get("Labels") or {})


async def _port_holder(d: Docker, port: int, proto: str) -> str:
    """`` (who)`` for a port message: a container publishing it, else the listening program, else ``""``."""
    try:
        for c in await d.containers.list(filters={"publish": [f"{port}/{proto}"]}):
            name = (c["Names"] or ["?"])[0].lstrip("/")
            whose = f"b00t-graph node {c['Labels'][NODE]}" if _is_ours(c["Labels"]) and NODE in c["Labels"] else (
                "not created by b00t-graph")
            return f" (container {name!r}, {whose})"
    except DockerError:
        pass
    who = holder(port, proto)
    return f" ({who})" if who else ""


async def _volume_labels(d: Docker, name: str) -> dict[str, str] | None:
    """A volume's labels ({} if none), or None when it does not exist."""
    try:
        vol = await d.volumes.get(name)  # type: ignore[no-untyped-call]  # aiodocker's volumes are untyped
        data: dict[str, Any] = await vol.show()
    except DockerError as exc:
        if exc.status == 404:
            return None
        raise
    return dict(data.get("Labels") or {})


async def _ensure_volume(d: Docker, name: str, labels: dict[str, str]) -> None:
    if await _volume_labels(d, name) is None:
        # creating an existing volume is a no-op, so a concurrent creation is harmless
        await d.volumes.create({"Name": name, "Labels": labels})  # type: ignore[no-untyped-call]


async def _create(d: Docker, plan: ContainerPlan, labels: dict[str, str]) -> str:
    """Networks, volumes, then the container (not started); the container's id."""
    for attempt in (1, 2):
        shared = {**labels}
        for net in plan.networks:
            await _ensure_network(d, net, shared)
        for vol in plan.volumes:
            await _ensure_volume(d, vol, shared)
        try:
            container = await d.containers.create(plan.config, name=plan.name)
        except DockerError as exc:
            # a network removed by a node stopping at the same moment: make it again, once;
            # or made twice by two processes at once: _ensure_network settles it, once
            if attempt == 1 and _network_raced(exc):
                continue
            raise
        return container.id
    raise AssertionError("unreachable")


def _grace_s(node: Node, plan: ContainerPlan) -> int:
    """Seconds a container gets between SIGTERM and SIGKILL: ``--stop-timeout`` if given, else ``stop_grace_ms``."""
    configured = plan.config.get("StopTimeout")
    if isinstance(configured, int) and configured >= 0:
        return configured
    return math.ceil(node.spec.stop_grace_ms / 1000)


async def _remove_container(d: Docker, ref: str, grace_s: int, project: str | None = None) -> bool:
    """Stop (with grace) and remove one of our containers (of ``project``, "" for none, when given);
    False if it is absent or not ours."""
    info = await _inspect(d, ref)
    if info is None or not _is_ours(info["Config"].get("Labels")):
        return False
    if project is not None and _project_of(info["Config"].get("Labels")) != project:
        return False
    c = d.containers.container(info["Id"])
    try:
        if info["State"].get("Running"):
            async with asyncio.timeout(grace_s + STOP_SLACK):
                await c.stop(t=grace_s)
        await c.delete(force=True)
    except DockerError as exc:
        if exc.status not in (404, 409):  # 409: removal already in progress
            raise
    return True


def _event_since(ev: dict[str, Any], fallback: str) -> str:
    nano = ev.get("timeNano")
    if isinstance(nano, int):
        return f"{nano // 10**9}.{nano % 10**9:09d}"
    return fallback


def _started_since(state: dict[str, Any]) -> str:
    """The container's start time as an events ``since`` value (its current run only)."""
    text = str(state.get("StartedAt") or "")
    try:
        return f"{datetime.fromisoformat(text.replace('Z', '+00:00')).timestamp():.6f}"
    except ValueError:
        return f"{time.time() - 1:.6f}"


def _health_output(state: dict[str, Any]) -> str:
    log = (state.get("Health") or {}).get("Log") or []
    if not log:
        return ""
    last = log[-1]
    out = str(last.get("Output", "")).strip()
    return f"exit {last.get('ExitCode')}" + (f": {out}" if out else "")


async def _follow_health(d: Docker, cid: str, state: dict[str, Any]) -> tuple[str, str]:
    """Follow a container's HEALTHCHECK through the event stream: ``(healthy|unhealthy|exited, detail)``.

    The stream is opened from the container's start, so nothing between the
    inspect and the subscription is missed; if the engine drops the stream it
    is opened again from the last event seen.
    """
    since = _started_since(state)
    filters = {"type": ["container"], "container": [cid], "event": ["health_status", "die", "destroy"]}
    while True:
        events = DockerEvents(d)  # type: ignore[no-untyped-call]  # one stream per wait, its own channel
        sub = events.subscribe(filters=filters, since=since)  # type: ignore[no-untyped-call]
        try:
            info = await _inspect(d, cid)
            if info is None:
                return "exited", "container removed"
            cur = info["State"]
            status = (cur.get("Health") or {}).get("Status")
            if status == "healthy":
                return "healthy", ""
            if status == "unhealthy":
                return "unhealthy", _health_output(cur)
            if not cur.get("Running"):
                return "exited", ""
            while True:
                ev = await sub.get()
                if ev is None:
                    break  # the stream ended: resubscribe from the last event seen
                since = _event_since(ev, since)
                action = str(ev.get("Action") or ev.get("status") or "")
                if action.startswith("health_status"):
                    verdict = action.partition(":")[2].strip()
                    if verdict == "healthy":
                        return "healthy", ""
                    if verdict == "unhealthy":
                        again = await _inspect(d, cid)
                        return "unhealthy", _health_output(again["State"]) if again else ""
                elif action in ("die", "destroy"):
                    return "exited", ""
        finally:
            await events.stop()  # type: ignore[no-untyped-call]
        await asyncio.sleep(0.2)  # do not spin if the engine keeps closing the stream


# --- the runtime ---------------------------------------------------------------------------------


class DockerRuntime:
    """The ``docker`` datum type: one container per datum, named after it."""

    name = "docker"

    def __init__(self, *, state_dir: Path | None = None, reporter: Reporter | None = None,
                 pull_stall: float = PULL_STALL, project: str | None = None,
                 engine: EngineSpec | None = None, **_: object) -> None:
        self.reporter: Reporter = reporter or Silent()
        #: the engine this runtime talks to; ``None``: the default one (``DOCKER_HOST``, context, sockets)
        self.engine = engine if engine is not None else default_engine()
        self.project = project or None
        self.pull_stall = pull_stall
        self._bridge = AsyncioBridge("b00t-graph-docker")
        self._docker: Docker | None = None
        self._where = "docker"
        self._lock: anyio.Lock | None = None
        self._plans: dict[str, tuple[str, ContainerPlan]] = {}
        self._precreated: dict[str, str] = {}  # node → container created by prepare(), not started yet
        self._ids: dict[str, str] = {}  # node → the container id we last started or inspected
        self._started: set[str] = set()  # nodes whose container this runtime started (not found running)

    # --- plumbing -------------------------------------------------------------------------------

    async def _client(self) -> Docker:
        if self._docker is not None:
            return self._docker
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self._docker is None:  # another task may have connected while we waited
                docker, self._where = await self._bridge.run(functools.partial(_discover, self.engine))
                self._docker = docker
            return self._docker

    async def _call(self, what: str, fail: Fail, fn: Callable[[Docker], Coroutine[Any, Any, T]], *,
                    timeout: float | None = API_TIMEOUT) -> T:
        """Run ``fn(client)`` on the engine's loop, bounded by ``timeout``, errors translated."""
        docker = await self._client()

        async def guarded() -> T:
            if timeout is None:
                return await fn(docker)
            async with asyncio.timeout(timeout):
                return await fn(docker)

        with _translate(what, fail, self._where, self.engine):
            return await self._bridge.run(guarded)

    def _local_engine(self) -> bool:
        """Whether the engine publishes ports on this host (a unix socket), so a local port check means something."""
        if self.engine.url is not None:
            return self.engine.url.startswith("unix://")
        return not self._where.startswith("DOCKER_HOST=") or "unix://" in self._where

    def _unavailable(self, msg: str) -> B00tGraphError:
        return _unreachable(self.engine, [self._where], msg)

    def _plan(self, node: Node) -> ContainerPlan:
        cached = self._plans.get(node.id)
        if cached is None or cached[0] != node.config_hash:
            cached = (node.config_hash, in_project(make_plan(node, self._labels(node)), self.project))
            self._plans[node.id] = cached
        return cached[1]

    def _labels(self, node: Node) -> dict[str, str]:
        return labels_for(node, self.project)

    def _mine(self, labels: dict[str, str] | None) -> bool:
        """Made by b00t-graph in this runtime's project (or, without one, in no project)."""
        return _is_ours(labels) and _project_of(labels) == (self.project or "")

    async def aclose(self) -> None:
        docker, self._docker = self._docker, None

        async def close() -> None:
            if docker is not None:
                await docker.close()

        await self._bridge.aclose(close)

    # --- observe ----------------------------------------------------------------------------------

    async def observe(self, nodes: Sequence[Node]) -> dict[str, Observed]:
        """One list call for all our containers, one more for foreign name-holders if any is missing."""
        if not nodes:
            return {}
        names = [self._plan(n).name for n in nodes]

        async def look(d: Docker) -> tuple[dict[str, Any], dict[str, Any]]:
            ours: dict[str, Any] = {}
            foreign: dict[str, Any] = {}
            for c in await d.containers.list(all=True, filters={"label": [f"{MANAGED}=1"]}):
                # another project's container is not ours to see, only to avoid (a name both would use)
                where = ours if self._mine(c["Labels"]) else foreign
                for nm in c["Names"] or ():
                    where[nm.lstrip("/")] = c
            missing = [nm for nm in names if nm not in ours and nm not in foreign]
            if missing:
                # the engine matches names by regular expression against "/name"
                pattern = [f"^/{re.escape(nm)}$" for nm in missing]
                for c in await d.containers.list(all=True, filters={"name": pattern}):
                    if _is_ours(c["Labels"]):
                        continue
                    for nm in c["Names"] or ():
                        if nm.lstrip("/") in missing:
                            foreign[nm.lstrip("/")] = c
            return ours, foreign

        ours, foreign = await self._call("list containers", self._unavailable, look)
        out: dict[str, Observed] = {}
        for node in nodes:
            nm = self._plan(node).name
            if nm in ours and (ours[nm]["Labels"] or {}).get(NODE, node.id) != node.id:
                other = ours[nm]["Labels"][NODE]
                out[node.id] = Observed(State.FOREIGN, None, ours[nm].id,
                                        f"a container named {nm!r} ({ours[nm].id[:12]}) was created by b00t-graph "
                                        f"for another datum, {other} (`b00t-graph down {other}` removes it)")
            elif nm in ours:
                c = ours[nm]
                state = str(c["State"])
                running = state in ("running", "restarting")
                status = str(c["Status"] or state) if state != "created" else "created, not started"
                # a container whose own HEALTHCHECK says it is not (yet) healthy is not "running"
                unready = running and ("(unhealthy)" in status or "(health: starting)" in status)
                out[node.id] = Observed(State.PAUSED if state == "paused" else State.UNREADY if unready
                                        else State.RUNNING if running else State.STOPPED,
                                        (c["Labels"] or {}).get(HASH), c.id, f"container {c.id[:12]}: {status}")
            elif nm in foreign and _is_ours(foreign[nm]["Labels"]):
                c = foreign[nm]
                other = _project_of(c["Labels"])
                out[node.id] = Observed(State.FOREIGN, None, c.id,
                                        f"a container named {nm!r} ({c.id[:12]}) was created by b00t-graph "
                                        + (f"in project {other!r}" if other else "outside any project"))
            elif nm in foreign:
                c = foreign[nm]
                out[node.id] = Observed(State.FOREIGN, None, c.id,
                                        f"a container named {nm!r} ({c.id[:12]}, image {c['Image']}) exists and "
                                        "was not created by b00t-graph")
            else:
                out[node.id] = Observed(State.ABSENT)
        return out

    # --- prepare ----------------------------------------------------------------------------------

    async def prepare(self, node: Node, action: Action) -> None:
        """Make sure the image is here (pulling it if needed); for CREATE, create the container ahead."""
        if action not in (Action.CREATE, Action.RECREATE):
            return
        plan = self._plan(node)
        if node.spec.build is not None:
            await self._build_image(node, plan)
        else:
            await self._ensure_image(node, plan)
        if action is Action.CREATE:
            try:
                cid = await self._call("create the container", lambda m: StartError(node.id, m),
                                       lambda d: _create(d, plan, self._labels(node)))
            except B00tGraphError:
                return  # start() tries again and reports the error there, where the engine expects it
            self._precreated[node.id] = cid
            self.reporter.event(node.id, "preparing", f"container {cid[:12]} created ahead of its start")

    async def _ensure_image(self, node: Node, plan: ContainerPlan) -> None:
        def fail(msg: str) -> B00tGraphError:
            return StartError(node.id, f"image {plan.image!r} for {node.spec.name!r}: {msg}")

        async def present(d: Docker) -> bool:
            try:
                await d.images.inspect(plan.image)
            except DockerError as exc:
                if exc.status == 404:
                    return False
                raise
            return True

        if await self._call("inspect the image", fail, present) and plan.pull != "always":
            return
        if plan.pull == "never":
            raise StartError(node.id, f"image {plan.image!r} for {node.spec.name!r} is not present locally "
                             "and docker_args say --pull=never")
        await self._pull(node, plan, fail)

    async def _build_image(self, node: Node, plan: ContainerPlan) -> None:
        """Build the node's image unless one built from the same context (same hash) exists."""
        build = node.spec.build
        assert build is not None
        report = self._bridge.caller_callback(self.reporter.event)
        try:
            ctx = dockerbuild.resolve(node.spec)
        except ValueError as exc:
            raise StartError(node.id, f"cannot build {plan.image!r}: {node.spec.path}: {dockerbuild.KEY}: {exc}"
                             ) from None
        t0 = time.monotonic()
        digest = await anyio.to_thread.run_sync(dockerbuild.context_hash, ctx, build)
        labels = {MANAGED: "1", NODE: node.id, CONTEXT_HASH: digest}
        output: list[str] = []

        def fail(msg: str) -> B00tGraphError:
            return StartError(node.id, f"image build of {plan.image!r} failed: {msg}", "\n".join(output[-20:]))

        async def existing(d: Docker) -> str | None:
            found = await d.images.list(filters={"label": [f"{CONTEXT_HASH}={digest}", f"{NODE}={node.id}"]})
            for img in found:
                if plan.image in (img.get("RepoTags") or ()):
                    return str(img["Id"])
            if found:  # built before under another tag: give it this one too
                repo, _, tag = plan.image.rpartition(":") if ":" in plan.image.rpartition("/")[2] else (
                    plan.image, "", "latest")
                await d.images.tag(found[0]["Id"], repo=repo, tag=tag)
                return str(found[0]["Id"])
            return None

        have = await self._call("look for a built image", fail, existing)
        if have is not None:
            self.reporter.event(node.id, "preparing", f"image {plan.image} is up to date (context hash {digest[:12]}, "
                                f"checked in {time.monotonic() - t0:.2f}s)")
            return
        body = None if ctx.folder is None else await anyio.to_thread.run_sync(dockerbuild.context_tar, ctx)

        async def run(d: Docker) -> None:
            report(node.id, "pulling", f"building {plan.image}"
                   + (f" from {ctx.remote}" if ctx.remote else f" ({len(body or b'') // 1024} KiB context)"))
            kwargs: dict[str, Any] = {"tag": plan.image, "labels": labels, "stream": True, "rm": True,
                                      "forcerm": True, "path_dockerfile": ctx.dockerfile,
                                      "buildargs": dict(build.args) or None, "platform": plan.platform}
            if ctx.remote is not None:
                kwargs["remote"] = ctx.remote
            else:
                kwargs["fileobj"] = io.BytesIO(body or b"")
                kwargs["encoding"] = "gzip"
            old = await _image_id(d, plan.image)
            stream: Any = d.images.build(**kwargs)
            async for msg in stream:
                if "error" in msg or "errorDetail" in msg:
                    why = str(msg.get("error") or (msg.get("errorDetail") or {}).get("message") or msg)
                    raise DockerError(500, why.strip())
                text = str(msg.get("stream") or msg.get("status") or "")
                for line in text.splitlines():
                    if line.strip():
                        output.append(line.rstrip())
                        report(node.id, "pulling", line.strip()[:200])
            if old is not None and old[1].get(NODE) == node.id and await _image_id(d, plan.image) != old:
                # the image this node built before lost its tag to the new one: do not leave it dangling
                try:
                    await d.images.delete(old[0])
                except DockerError:
                    pass  # still used by a container, or tagged elsewhere meanwhile: keep it

        await self._call("build", fail, run, timeout=None)
        self.reporter.event(node.id, "preparing", f"built {plan.image} in {time.monotonic() - t0:.2f}s")

    async def _pull(self, node: Node, plan: ContainerPlan, fail: Fail) -> None:
        report = self._bridge.caller_callback(self.reporter.event)
        stall = self.pull_stall

        async def pull(d: Docker) -> None:
            report(node.id, "pulling", plan.image)
            stream: Any = d.images.pull(plan.image, stream=True, platform=plan.platform).__aiter__()
            layers: dict[str, str] = {}
            last = 0.0
            while True:
                try:
                    async with asyncio.timeout(stall):
                        msg = await stream.__anext__()
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    await stream.aclose()
                    raise DockerError(504, f"the pull reported nothing for {stall:g}s; is a registry reachable?"
                                      ) from None
                layer, status = str(msg.get("id", "")), str(msg.get("status", ""))
                now = time.monotonic()
                changed = layers.get(layer) != status
                layers[layer] = status
                if changed or now - last > 0.5:
                    last = now
                    text = f"{layer}: {status}" if layer else status
                    if msg.get("progress"):
                        text += f" {msg['progress']}"
                    report(node.id, "pulling", text)
            report(node.id, "pulling", f"{plan.image}: done")

        await self._call("pull", fail, pull, timeout=None)

    # --- start ------------------------------------------------------------------------------------

    @staticmethod
    def _refuse_foreign(node: Node, observed: Observed) -> None:
        """b00t-graph never touches what it did not create: a name held by another owner fails the node."""
        if observed.state is State.FOREIGN:
            raise ConflictError(node.id, f"{observed.detail or 'the name is taken'}; it is left untouched: "
                                "remove or rename it, or rename the datum")

    async def start(self, node: Node, observed: Observed, action: Action) -> Observed:
        self._refuse_foreign(node, observed)
        plan = self._plan(node)
        labels = self._labels(node)
        grace = _grace_s(node, plan)
        pre = self._precreated.pop(node.id, None)
        host_ports = published(plan.config) if self._local_engine() else []

        def fail(msg: str) -> B00tGraphError:
            return StartError(node.id, msg)

        async def _start(d: Docker, cid: str, networks: Sequence[str]) -> None:
            # The container does not run now, so a fixed host port held now is held by something else.
            for port, proto, ip in host_ports:
                if not is_free(port, proto, ip):
                    raise PortInUse(node.id, f"port {port} is in use by another program"
                                    + await _port_holder(d, port, proto) + ": stop it or change the port")
            await _start_container(d, cid, networks, labels)

        async def bring_up(d: Docker) -> str:
            if action is Action.START:
                info = await _inspect(d, observed.ref or plan.name)
                if info is None:
                    info = await _inspect(d, plan.name)
                if info is None:
                    return await fresh(d)
                if not self._mine(info["Config"].get("Labels")):
                    raise ConflictError(node.id, f"{_foreign_text(info)}; it is left untouched")
                await _start(d, str(info["Id"]), plan.networks)
                return str(info["Id"])
            if action is Action.RECREATE:
                for ref in dict.fromkeys(r for r in (observed.ref, plan.name) if r):
                    info = await _inspect(d, ref)
                    if info is not None and not self._mine(info["Config"].get("Labels")):
                        raise ConflictError(node.id, f"{_foreign_text(info)}; it is left untouched")
                    await _remove_container(d, ref, grace, self.project or "")
            elif pre is not None:
                info = await _inspect(d, pre)
                if info is not None and (info["Config"].get("Labels") or {}).get(HASH) == node.config_hash:
                    return await start_new(d, pre)
            return await fresh(d)

        async def fresh(d: Docker) -> str:
            try:
                cid = await _create(d, plan, labels)
            except DockerError as exc:
                if exc.status != 409:
                    raise
                return await adopt(d)
            return await start_new(d, cid)

        async def adopt(d: Docker) -> str:
            # Another process created the name between our look and our create. The engine reserves
            # a name before the container can be inspected, so look again for a moment.
            for _ in range(100):
                info = await _inspect(d, plan.name)
                if info is not None:
                    break
                try:
                    return await start_new(d, await _create(d, plan, labels))
                except DockerError as exc:
                    if exc.status != 409:
                        raise
                await asyncio.sleep(0.05)
            else:
                raise StartError(node.id, f"the name {plan.name!r} stays reserved by the engine but no "
                                 "container of that name can be inspected")
            theirs = info["Config"].get("Labels") or {}
            if not self._mine(theirs):
                raise ConflictError(node.id, f"{_foreign_text(info)}; it is left untouched: remove or rename "
                                    "it, or rename the datum")
            if theirs.get(HASH) != node.config_hash:
                raise StartError(node.id, f"another b00t-graph run created {plan.name!r} at the same time with "
                                 f"a different configuration (hash {theirs.get(HASH)}); run up again")
            if not info["State"].get("Running"):
                await _start(d, str(info["Id"]), plan.networks)
            return str(info["Id"])

        async def start_new(d: Docker, cid: str) -> str:
            try:
                await _start(d, cid, plan.networks)
            except DockerError:
                # never leave a half-made container holding the name: the next `up` starts clean
                try:
                    await d.containers.container(cid).delete(force=True)
                except DockerError:
                    pass
                raise
            return cid

        try:
            cid = await self._call("start the container", fail, bring_up,
                                   timeout=API_TIMEOUT + grace + STOP_SLACK)
        except StartError as exc:
            # taken between the check and the start, or a port the check cannot see (another address)
            m = re.search(r":(\d+)(?: failed: port is already allocated|: bind: address already in use)", exc.reason)
            if m and not isinstance(exc, PortInUse):
                raise PortInUse(node.id, f"port {m.group(1)} is in use by another program ({exc.reason})") from None
            raise
        self._ids[node.id] = cid
        self._started.add(node.id)
        return Observed(State.RUNNING, node.config_hash, cid, f"container {cid[:12]}")

    # --- readiness (ProbeHost) -------------------------------------------------------------------

    async def _container(self, node: Node) -> dict[str, Any]:
        """Inspect data of the node's container, which must exist and be ours."""
        def fail(msg: str) -> B00tGraphError:
            return NodeExited(node.id, msg)

        name = self._plan(node).name
        ref = self._ids.get(node.id) or name

        async def look(d: Docker) -> dict[str, Any] | None:
            info = await _inspect(d, ref)
            if info is None and ref != name:
                info = await _inspect(d, name)
            return info

        info = await self._call("inspect the container", fail, look)
        if info is None:
            raise NodeExited(node.id, f"container {name!r} does not exist (removed?)")
        if not self._mine(info["Config"].get("Labels")):
            raise ConflictError(node.id, f"{_foreign_text(info)}; it is left untouched")
        self._ids[node.id] = str(info["Id"])
        return info

    async def _exited(self, node: Node, info: dict[str, Any] | None = None) -> NodeExited:
        """A NodeExited describing how the container ended, with its log tail."""
        if info is None:
            try:
                info = await self._container(node)
            except NodeExited as exc:
                return exc
        st = info["State"]
        code = st.get("ExitCode")
        why = f"container exited with code {code}"
        if st.get("OOMKilled"):
            why += " (killed: out of memory)"
        if st.get("Error"):
            why += f": {st['Error']}"
        if st.get("Restarting"):
            why += " and is restarting (restart policy)"
        return NodeExited(node.id, why, await self.logs(node))

    async def alive(self, node: Node) -> None:
        info = await self._container(node)
        st = info["State"]
        if not st.get("Running") or st.get("Restarting"):
            raise await self._exited(node, info)
        self._not_paused(node, info)

    def _not_paused(self, node: Node, info: dict[str, Any]) -> None:
        if info["State"].get("Paused"):
            name = str(info.get("Name") or self._plan(node).name).lstrip("/")
            raise NodePaused(node.id, f"container {name} is paused: no probe can pass "
                             f"(`docker unpause {name}` resumes it)")

    async def exec(self, node: Node, argv: list[str], timeout: float) -> int:
        ref = self._ids.get(node.id) or self._plan(node).name

        async def run(d: Docker) -> int:
            return await _exec(d, ref, argv)

        def fail(msg: str) -> B00tGraphError:
            return StartError(node.id, msg)

        with anyio.fail_after(timeout):
            try:
                return await self._call("exec in the container", fail, run, timeout=None)
            except StartError as exc:
                if "not running" in exc.reason or "No such container" in exc.reason:
                    raise await self._exited(node) from None
                # a probe failure, not a node failure: readiness retries it
                raise OSError(exc.reason) from None

    async def logs(self, node: Node, lines: int = 20) -> str:
        ref = self._ids.get(node.id) or self._plan(node).name
        try:
            return await self._call("read the log", self._unavailable, lambda d: _tail(d, ref, lines))
        except B00tGraphError:
            return ""

    async def wait_ready(self, node: Node) -> str:
        """Probes if the datum has any; else the image's HEALTHCHECK via engine events; an exit fails at once."""
        info = await self._container(node)
        st = info["State"]
        if not st.get("Running") or st.get("Restarting"):
            raise await self._exited(node, info)
        self._not_paused(node, info)
        cid = str(info["Id"])
        hc = node.health
        if hc is not None and hc.probes():
            # A container found running (a warm `up` or `ensure`) nearly always answers at once: one
            # probe first saves the exit watch's own connection and long-poll.
            if node.id not in self._started and await probe_now(node, hc, self) is None:
                return "; ".join(hc.probes())
            return await self._until_exit(node, cid, lambda: probe_loop(node, self))
        if st.get("Health") is not None and (hc is None or hc.docker):
            return await self._until_exit(node, cid, lambda: self._docker_health(node, cid, st, hc))
        return await self._until_exit(node, cid, lambda: probe_loop(node, self))

    async def _docker_health(self, node: Node, cid: str, state: dict[str, Any], hc: HealthCheck | None) -> str:
        limit = (hc or HealthCheck()).timeout_ms / 1000

        def fail(msg: str) -> B00tGraphError:
            return ReadinessTimeout(node.id, msg)

        try:
            with anyio.fail_after(limit):
                verdict, detail = await self._call("follow the container's health", fail,
                                                   lambda d: _follow_health(d, cid, state), timeout=None)
        except TimeoutError:
            raise ReadinessTimeout(node.id, f"docker HEALTHCHECK did not report healthy within {limit:g}s",
                                   await self.logs(node)) from None
        if verdict == "healthy":
            return "docker HEALTHCHECK healthy"
        if verdict == "unhealthy":
            raise ReadinessTimeout(node.id, "docker HEALTHCHECK reported unhealthy"
                                   + (f" (last check: {detail})" if detail else ""), await self.logs(node))
        raise await self._exited(node)

    async def _until_exit(self, node: Node, cid: str, main: Callable[[], Coroutine[Any, Any, str]]) -> str:
        """Run ``main`` while watching the container: if it exits first, fail at once with NodeExited."""
        outcome: list[str | B00tGraphError] = []

        async def run_main() -> None:
            try:
                outcome.append(await main())
            except B00tGraphError as exc:
                outcome.append(exc)
            tg.cancel_scope.cancel()

        async def watch() -> None:
            def fail(msg: str) -> B00tGraphError:
                return NodeExited(node.id, msg)

            async def wait(d: Docker) -> None:
                try:
                    await d.containers.container(cid).wait(condition="not-running")
                except DockerError as exc:
                    if exc.status != 404:
                        raise

            try:
                await self._call("wait for the container", fail, wait, timeout=None)
                outcome.append(await self._exited(node))
            except B00tGraphError as exc:
                outcome.append(exc)
            tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            tg.start_soon(run_main)
        result = outcome[0]
        if isinstance(result, B00tGraphError):
            raise result
        return result

    # --- stop -------------------------------------------------------------------------------------

    async def stop(self, node: Node, observed: Observed, *, remove_volumes: bool = False) -> None:
        plan = self._plan(node)
        grace = _grace_s(node, plan)
        kept: list[str] = []
        removed: list[str] = []

        def fail(msg: str) -> B00tGraphError:
            return StopError(node.id, msg)

        async def down(d: Docker) -> None:
            for ref in dict.fromkeys(r for r in (observed.ref, plan.name) if r):
                await _remove_container(d, ref, grace, self.project or "")
            for net in plan.networks:
                if await _remove_unused_network(d, net):
                    removed.append(f"network {net}")
            if remove_volumes:
                for vol in plan.volumes:
                    labels = await _volume_labels(d, vol)
                    if labels is None or not self._mine(labels) or labels.get(NODE) != node.id:
                        continue  # not made for this node: never ours to remove
                    try:
                        v = await d.volumes.get(vol)  # type: ignore[no-untyped-call]
                        await v.delete()
                        removed.append(f"volume {vol}")
                    except DockerError as exc:
                        if exc.status == 409:
                            kept.append(vol)
                        elif exc.status != 404:
                            raise

        await self._call("stop the container", fail, down, timeout=API_TIMEOUT + grace + STOP_SLACK)
        self._ids.pop(node.id, None)
        self._precreated.pop(node.id, None)
        for vol in kept:
            self.reporter.event(node.id, "stopped", f"volume {vol} kept: still in use by another container")
        if removed and observed.state is State.ABSENT:  # `down` would otherwise only say "absent"
            self.reporter.event(node.id, "stopping", f"its container was gone; removed {', '.join(removed)}")

    # --- inventory (ps, orphans) ------------------------------------------------------------------

    async def inventory(self) -> list[Managed]:
        """Every container b00t-graph made on this engine (all projects), whatever datum it was for."""
        from ..inventory import Managed

        async def look(d: Docker) -> list[dict[str, Any]]:
            listed = await d.containers.list(all=True, filters={"label": [f"{MANAGED}=1"]})
            shown = await asyncio.gather(*(_inspect(d, c.id) for c in listed))
            return [info for info in shown if info is not None]

        out: list[Managed] = []
        for info in await self._call("list containers", self._unavailable, look):
            labels = info["Config"].get("Labels") or {}
            st = info.get("State") or {}
            running = bool(st.get("Running"))
            health = str((st.get("Health") or {}).get("Status") or "")
            if not running:
                state, health = str(st.get("Status") or "exited"), f"exited {st.get('ExitCode', '?')}"
            else:
                state = "restarting" if st.get("Restarting") else "running"
                health = {"healthy": "ready", "starting": "starting", "unhealthy": "unhealthy"}.get(health, "")
            started: float | None = None
            try:
                started = datetime.fromisoformat(str(st.get("StartedAt")).replace("Z", "+00:00")).timestamp()
            except ValueError:
                pass
            ports = []
            for spec, binds in sorted(((info.get("NetworkSettings") or {}).get("Ports") or {}).items()):
                for b in binds or ():
                    ports.append(f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}->{spec}")
            out.append(Managed(node=str(labels.get(NODE, "?")), runtime="docker",
                               project=labels.get(PROJECT) or None, name=str(info.get("Name", "")).lstrip("/"),
                               ref=str(info["Id"]), state=state if running else "exited", health=health,
                               started=started if running else None, ports=tuple(ports),
                               config_hash=labels.get(HASH)))
        return out

    async def remove_managed(self, ref: str, grace_s: int = 10) -> bool:
        """Stop and remove one container b00t-graph made (by id or name); False when absent or not ours."""
        return await self._call("remove the container", self._unavailable,
                                lambda d: _remove_container(d, ref, grace_s),
                                timeout=API_TIMEOUT + grace_s + STOP_SLACK)

    # --- logs and exec for the CLI (``b00t-graph logs`` / ``exec``) ----------------------------------

    def container_name(self, node: Node) -> str:
        return self._plan(node).name

    async def log_lines(self, ref: str, since: float | None, tail: int | None) -> list[tuple[float, str]]:
        """A container's log lines with the engine's timestamps; ``[]`` when it does not exist (yet)."""
        from ..logstream import parse_docker_line

        params: dict[str, Any] = {"timestamps": True, "tail": "all" if tail is None else str(tail)}
        if since is not None:
            params["since"] = f"{since:.9f}"

        async def read(d: Docker) -> list[str]:
            try:
                chunks = await d.containers.container(ref).log(stdout=True, stderr=True, **params)
            except DockerError as exc:
                if exc.status in (404, 409):
                    return []
                raise
            return "".join(chunks).splitlines()

        out: list[tuple[float, str]] = []
        for raw in await self._call("read the log", self._unavailable, read):
            parsed = parse_docker_line(raw)
            if parsed is not None:
                out.append(parsed)
        return out

    async def managed_containers(self) -> dict[str, str]:
        """node id → container name of every container b00t-graph manages on this engine."""
        async def look(d: Docker) -> dict[str, str]:
            found: dict[str, str] = {}
            for c in await d.containers.list(all=True, filters={"label": [f"{MANAGED}=1"]}):
                node = (c["Labels"] or {}).get(NODE)
                if node and c["Names"]:
                    found[str(node)] = str(c["Names"][0]).lstrip("/")
            return found

        return await self._call("list containers", self._unavailable, look)

    async def exec_attached(self, node: Node, argv: list[str]) -> int:
        """Run ``argv`` in the node's running container, its output on ours; return its exit code.

        The route when no ``docker`` CLI is installed: no TTY and no stdin (the CLI's ``exec -it``
        is the interactive one).
        """
        import sys

        info = await self._container(node)
        if not info["State"].get("Running"):
            raise await self._exited(node, info)
        cid = str(info["Id"])
        streams = {1: sys.stdout.buffer, 2: sys.stderr.buffer}

        def show(msg: Any) -> None:
            out = streams.get(msg.stream, sys.stdout.buffer)
            out.write(msg.data)
            out.flush()

        async def run(d: Docker) -> int:
            return await _exec(d, cid, argv, show)

        def fail(msg: str) -> B00tGraphError:
            return StartError(node.id, msg)

        return await self._call("exec in the container", fail, run, timeout=None)


async def _exec(d: Docker, ref: str, argv: list[str], sink: Callable[[Any], None] | None = None) -> int:
    """Run ``argv`` in the container ``ref``, each output message to ``sink``; its exit code."""
    ex = await d.containers.container(ref).exec(argv, stdout=True, stderr=True)
    async with ex.start(detach=False) as stream:
        while (msg := await stream.read_out()) is not None:
            if sink is not None:
                sink(msg)
    while True:  # the exit code lands shortly after the output ends
        data = await ex.inspect()
        if not data.get("Running"):
            return int(data.get("ExitCode") or 0)
        await asyncio.sleep(0.005)
