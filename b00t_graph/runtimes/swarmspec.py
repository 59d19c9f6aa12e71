"""A docker datum as a Swarm service: the ``POST /services/create`` body, built from its container plan.

Pure: the container translation (:mod:`.dockerargs`) is the one reading of ``docker_args``,
``ports``, ``volumes`` and ``resources``; this module only moves that container body into a
service spec. Differences from a container, on purpose:

* Ports are published in ``host`` mode on the node that runs the task: Swarm's ingress routing
  mesh is not needed for one replica and does not answer on every machine. A host IP in a
  ``-p IP:HOST:CONTAINER`` is dropped (Swarm binds every address).
* Every service joins the stack's overlay network under its datum's name, so services reach each
  other by the names their datums use, as containers do on a user network. Names resolve to the
  tasks' own addresses (``dnsrr``), not to a virtual IP behind IPVS.
* The restart policy is Swarm's: ``any`` unless the datum says ``--restart no``/``on-failure``;
  Swarm itself replaces a task that exits.
* Resource limits come from ``[b00t.resources]`` and ``docker_args``; ``[b00t.swarm]`` adds
  reservations, placement constraints and the number of replicas.

Container options Swarm services do not have (``--privileged``, ``--pid``, devices…) are refused
at compile time by :func:`check`, naming the datum's file and key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import DatumError, Problem
from ..model import DOCKER_RUNTIMES, PLACES
from .dockerargs import KEY, ContainerPlan, _Bad, parse_bytes, parse_cpus

if TYPE_CHECKING:
    from ..graph import Node

#: HostConfig keys a service spec carries (every other one is refused on Swarm)
_HOST_KEYS = frozenset({"Memory", "NanoCpus", "MemoryReservation", "RestartPolicy", "PortBindings", "Binds",
                        "Mounts", "NetworkMode", "Init", "CapAdd", "CapDrop", "Dns", "DnsSearch", "DnsOptions",
                        "ReadonlyRootfs", "GroupAdd", "ExtraHosts", "Sysctls", "Ulimits", "LogConfig"})
#: top-level container keys a service spec carries or does not need (ExposedPorts: published ones are listed)
_CONFIG_KEYS = frozenset({"Image", "Cmd", "Entrypoint", "Env", "Labels", "ExposedPorts", "Healthcheck", "User",
                          "WorkingDir", "Hostname", "Tty", "OpenStdin", "StopSignal", "StopTimeout", "HostConfig",
                          "NetworkingConfig"})
#: labels that mark what b00t-graph owns: on the service only, never on its tasks' containers (the
#: docker runtime would take them for containers of its own)
_OWN = ("org.b00t-graph.managed", "org.b00t-graph.node", "org.b00t-graph.config-hash", "org.b00t-graph.project")
#: the label a service's task containers carry instead: which node they run
TASK_NODE = "org.b00t-graph.swarm-node"


def check(node: Node) -> Iterable[Problem]:
    """``[b00t] on`` and ``[b00t.swarm]`` make sense for this datum; on Swarm, its container options too."""
    spec = node.spec
    if spec.on is not None and spec.on not in PLACES:
        yield Problem(spec.path, "b00t.on", f"{spec.on!r}: expected one of {', '.join(map(repr, PLACES))} "
                      "(leave it out to run on the local engine)")
        return
    if spec.on is not None and node.runtime not in DOCKER_RUNTIMES:
        yield Problem(spec.path, "b00t.on", f"only a docker datum runs on {spec.on}, not a {spec.type} datum")
        return
    sw = spec.swarm
    if sw is not None:
        if sw.replicas < 0:
            yield Problem(spec.path, "b00t.swarm.replicas", f"{sw.replicas}: expected a non-negative integer")
        for key, parse in (("memory_reservation", parse_bytes), ("cpu_reservation", parse_cpus)):
            text = getattr(sw, key)
            if text is not None:
                try:
                    parse(text)
                except _Bad as exc:
                    yield Problem(spec.path, f"b00t.swarm.{key}", str(exc))
    if node.runtime == "swarm":
        from .dockerargs import _build

        plan, _ = _build(node, {})
        if plan is not None:
            yield from (Problem(spec.path, KEY, why) for why in unsupported(plan))


def unsupported(plan: ContainerPlan) -> list[str]:
    """What of a container plan a Swarm service cannot do, one sentence each."""
    cfg = plan.config
    host = cfg.get("HostConfig", {})
    out = [f"{key} (a container option) has no Swarm service equivalent"
           for key in sorted(set(host) - _HOST_KEYS) if host[key] not in (None, False, "", [], {})]
    out += [f"{key} (a container option) has no Swarm service equivalent" for key in sorted(set(cfg) - _CONFIG_KEYS)]
    mode = host.get("NetworkMode")
    if mode and (mode in ("host", "none") or str(mode).startswith("container:")):
        out.append(f"--network {mode}: a Swarm service joins overlay networks only")
    return out


def _mounts(host: Mapping[str, Any], volumes: Iterable[str]) -> list[dict[str, Any]]:
    named = set(volumes)
    out = [dict(m) for m in host.get("Mounts", ())]
    for bind in host.get("Binds", ()):
        src, _, rest = bind.partition(":")
        target, _, opts = rest.partition(":")
        mount: dict[str, Any] = {"Type": "volume" if src in named else "bind", "Source": src, "Target": target}
        if "ro" in opts.split(","):
            mount["ReadOnly"] = True
        out.append(mount)
    return out


def _ports(host: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for spec, binds in sorted((host.get("PortBindings") or {}).items()):
        target, _, proto = spec.partition("/")
        for b in binds or ():
            port: dict[str, Any] = {"Protocol": proto or "tcp", "TargetPort": int(target), "PublishMode": "host"}
            if str(b.get("HostPort") or "").isdigit():
                port["PublishedPort"] = int(b["HostPort"])
            if port not in out:  # one port bound on two host IPs is one port for Swarm
                out.append(port)
    return out


def _restart(host: Mapping[str, Any]) -> dict[str, Any]:
    if "RestartPolicy" not in host:
        return {"Condition": "any"}  # Swarm's own default: a service is meant to keep running
    rp = host["RestartPolicy"]
    name = rp.get("Name") or "no"  # the engine's "" is --restart no
    if name == "no":
        return {"Condition": "none"}
    if name == "on-failure":
        out: dict[str, Any] = {"Condition": "on-failure"}
        if rp.get("MaximumRetryCount"):
            out["MaxAttempts"] = int(rp["MaximumRetryCount"])
        return out
    return {"Condition": "any"}


def service_spec(node: Node, plan: ContainerPlan, labels: Mapping[str, str], network: str,
                 grace_s: int) -> dict[str, Any]:
    """The service spec for ``node``: its container plan as a task template, ``labels`` on the service."""
    why = unsupported(plan)
    if why:
        raise DatumError([Problem(node.spec.path, KEY, w) for w in why])
    cfg = plan.config
    host = cfg.get("HostConfig", {})
    own = {k: v for k, v in (cfg.get("Labels") or {}).items() if k not in _OWN}
    container: dict[str, Any] = {"Image": plan.image, "Env": list(cfg.get("Env") or ()),
                                 "Labels": {**own, TASK_NODE: node.id}, "StopGracePeriod": grace_s * 10**9}
    if cfg.get("Entrypoint"):
        container["Command"] = list(cfg["Entrypoint"])
    if cfg.get("Cmd"):
        container["Args"] = list(cfg["Cmd"])
    for src, dst in (("User", "User"), ("WorkingDir", "Dir"), ("Hostname", "Hostname"), ("Tty", "TTY"),
                     ("OpenStdin", "OpenStdin"), ("StopSignal", "StopSignal"), ("Healthcheck", "HealthCheck")):
        if cfg.get(src):
            container[dst] = cfg[src]
    for src, dst in (("Init", "Init"), ("ReadonlyRootfs", "ReadOnly"), ("CapAdd", "CapabilityAdd"),
                     ("CapDrop", "CapabilityDrop"), ("GroupAdd", "Groups"), ("Sysctls", "Sysctls"),
                     ("Ulimits", "Ulimits")):
        if host.get(src):
            container[dst] = host[src]
    if host.get("ExtraHosts"):  # "name:ip" → "ip name"
        container["Hosts"] = [" ".join(reversed(h.split(":", 1))) for h in host["ExtraHosts"]]
    dns = {k: host[v] for k, v in (("Nameservers", "Dns"), ("Search", "DnsSearch"), ("Options", "DnsOptions"))
           if host.get(v)}
    if dns:
        container["DNSConfig"] = dns
    mounts = _mounts(host, plan.volumes)
    if mounts:
        container["Mounts"] = mounts

    limits = {k: host[v] for k, v in (("MemoryBytes", "Memory"), ("NanoCPUs", "NanoCpus")) if host.get(v)}
    reserve: dict[str, int] = {}
    if host.get("MemoryReservation"):
        reserve["MemoryBytes"] = int(host["MemoryReservation"])
    sw = node.spec.swarm
    if sw is not None and sw.memory_reservation:
        reserve["MemoryBytes"] = parse_bytes(sw.memory_reservation)
    if sw is not None and sw.cpu_reservation:
        reserve["NanoCPUs"] = parse_cpus(sw.cpu_reservation)

    aliases = dict.fromkeys([node.spec.name, plan.name])
    endpoints = (cfg.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    networks = [{"Target": network, "Aliases": list(aliases)}]
    networks += [{"Target": n, "Aliases": list(dict.fromkeys([*aliases, *endpoints.get(n, {}).get("Aliases", ())]))}
                 for n in plan.networks if n != network]
    task: dict[str, Any] = {"ContainerSpec": container, "RestartPolicy": _restart(host), "Networks": networks,
                            "Resources": {"Limits": limits, "Reservations": reserve}}
    if sw is not None and sw.constraints:
        task["Placement"] = {"Constraints": list(sw.constraints)}
    if host.get("LogConfig"):
        task["LogDriver"] = {"Name": host["LogConfig"].get("Type"), "Options": host["LogConfig"].get("Config") or {}}
    out: dict[str, Any] = {"Name": plan.name, "Labels": dict(labels), "TaskTemplate": task,
                           "Mode": {"Replicated": {"Replicas": sw.replicas if sw is not None else 1}},
                           # a changed service stops its old task before the new one starts: a fixed host
                           # port cannot be held by both
                           "UpdateConfig": {"Parallelism": 1, "Order": "stop-first"}}
    # dnsrr: a service's name resolves to its tasks' own addresses; a virtual IP needs the kernel's IPVS,
    # which not every host gives the engine (the name then resolves, and nothing answers)
    out["EndpointSpec"] = {"Mode": "dnsrr", "Ports": _ports(host)}
    return out
