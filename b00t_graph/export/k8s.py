"""Kubernetes manifests from a compiled graph, with the start order kept.

Pure: :func:`to_manifests` is a function of a :class:`~b00t_graph.graph.Graph` (no I/O, no
cluster). Per docker node it makes

* a ``Deployment`` — a ``StatefulSet`` with ``volumeClaimTemplates`` when it mounts named volumes;
* a ``Service`` for its ports (published and exposed). A published port keeps its *host* number as
  the Service port (``-p 8080:80`` → port 8080, targetPort 80), so a URL a dependent was given
  (``http://localhost:8080``) keeps its port and only changes its host;
* a ``ConfigMap`` ``<name>-env`` with the environment the container gets (its dependencies'
  exports, its stacks' env, its own), and a ``Secret`` ``<name>-env-secret`` for secret-looking
  names and for URLs that carry a password. A loopback address with a port (``localhost:6333``,
  ``127.0.0.1:6333``, ``[::1]:6333``) is rewritten to the Service of the dependency that serves
  that port (``qdrant:6333``);
* ``startupProbe``/``readinessProbe`` from ``[b00t.health_check]``;
* an init container per dependency that waits until that dependency's Service answers, so the
  order ``up`` keeps survives (a Service routes only to ready pods: its readiness probe gates it).

Process nodes have no image: they are left out with a note. Groups (stacks, mcp), passive nodes
and presence checks have nothing to run: no manifest, but their env flows through, and a node
that depends on a group waits for the group's workloads.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs

from ..envtext import looks_secret
from ..graph import Graph, Node
from ..model import DOCKER_RUNTIMES
from ..runtimes import dockerargs

#: The image of the wait init containers: busybox has ``sh``, ``wget`` and ``nc``, and is ~2 MB.
WAIT_IMAGE = "busybox:1.36"
#: Storage requested by each volume claim: Docker volumes have no size; edit it per volume.
VOLUME_SIZE = "1Gi"

_LOOPBACK = ("localhost", "127.0.0.1", "[::1]")
_LOCAL_RE = re.compile(r"(?<![\w.-])(localhost|127\.0\.0\.1|\[::1\])(?::(\d{1,5}))?(?![\w.-])")
# The same names mcpserver.mask() hides: such values go into a Secret, not a ConfigMap.
#: HostConfig keys this exporter maps; any other one set by docker_args is named in a note.
_HOST_MAPPED = frozenset({"PortBindings", "Binds", "Mounts", "Memory", "NanoCpus", "MemoryReservation",
                          "NetworkMode", "Privileged", "CapAdd", "CapDrop", "ReadonlyRootfs", "Tmpfs",
                          "RestartPolicy", "LogConfig"})
_PROTO = {"tcp": "TCP", "udp": "UDP", "sctp": "SCTP"}


@attrs.frozen
class Port:
    """One port of a workload's Service: ``port`` is what clients dial, ``target`` the container's."""

    port: int
    target: int
    proto: str = "tcp"

    @property
    def name(self) -> str:
        return f"{self.proto}-{self.port}"


@attrs.frozen
class Workload:
    """What the exporter decided for one docker node before writing its manifests."""

    node: Node
    name: str
    plan: dockerargs.ContainerPlan
    ports: tuple[Port, ...]


@attrs.frozen
class K8sExport:
    """The manifests of a graph, in graph order (every workload after what it waits for).

    ``files`` groups them by workload (``<name>.yaml``); ``waits`` says, per exported node, which
    nodes its init containers wait for; ``notes`` is what could not be carried, for the user.
    """

    manifests: tuple[dict[str, Any], ...]
    files: dict[str, tuple[dict[str, Any], ...]]
    waits: dict[str, tuple[str, ...]]
    notes: tuple[str, ...]
    part_of: str

    def kustomization(self) -> dict[str, Any]:
        return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                "resources": [f"{name}.yaml" for name in self.files]}


def dns_name(text: str, limit: int = 63) -> str:
    """A DNS-1035 label (Service and container names): lower case, ``-`` for anything else, a letter first."""
    out = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    if not out or not out[0].isalpha():
        out = "x-" + out
    return out[:limit].rstrip("-")


def quantity_bytes(n: int) -> str:
    """Bytes as a Kubernetes quantity, in the largest binary unit that divides them (``1Gi``, ``512Mi``)."""
    for unit, size in (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def quantity_cpus(nano: int) -> str:
    """NanoCpus as a Kubernetes CPU quantity: whole CPUs (``2``) or millicpus (``500m``)."""
    milli = max(1, round(nano / 1_000_000))
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def _seconds(ms: int, floor: int = 1) -> int:
    return max(floor, math.ceil(ms / 1000))


# --- the graph: which nodes become workloads, and what each waits for --------------------------------


def _ports(plan: dockerargs.ContainerPlan) -> tuple[Port, ...]:
    cfg = plan.config
    bindings: Mapping[str, Sequence[Mapping[str, str]]] = cfg.get("HostConfig", {}).get("PortBindings", {})
    out: dict[tuple[int, str], Port] = {}
    for key in cfg.get("ExposedPorts", {}):
        cport, _, proto = key.partition("/")
        proto = proto or "tcp"
        hosts = [int(b["HostPort"]) for b in bindings.get(key, ()) if b.get("HostPort", "").isdigit()]
        for hp in hosts or [int(cport)]:
            out.setdefault((hp, proto), Port(hp, int(cport), proto))
    return tuple(out.values())


def workload_deps(graph: Graph, ident: str, exported: Mapping[str, object]) -> tuple[str, ...]:
    """The exported nodes ``ident`` waits for: its dependencies, seen through groups, passive and skipped nodes.

    A dependency that is exported is waited for (and not looked past: it waits for its own); any
    other (a stack, an mcp group, a process node left out) is looked through to what it waits for.
    Optional stack members are not waited for: ``up`` does not hold a stack back for them either.
    """
    out: dict[str, None] = {}
    seen: set[str] = set()

    def visit(cur: str) -> None:
        node = graph.nodes[cur]
        for dep in node.deps:
            if dep in node.soft or dep in seen:
                continue
            seen.add(dep)
            if dep in exported:
                out.setdefault(dep, None)
            else:
                visit(dep)

    visit(ident)
    order = list(graph.nodes)
    return tuple(sorted(out, key=order.index))


def _ancestors(graph: Graph, ident: str) -> list[str]:
    seen: dict[str, None] = {}
    todo = list(graph.nodes[ident].deps)
    while todo:
        cur = todo.pop()
        if cur not in seen:
            seen[cur] = None
            todo.extend(graph.nodes[cur].deps)
    return list(seen)


# --- env ---------------------------------------------------------------------------------------------


def rewrite_env(env: Mapping[str, str], by_port: Mapping[int, Sequence[str]], own: set[int],
                who: str) -> tuple[dict[str, str], list[str]]:
    """Loopback addresses in ``env`` rewritten to the Service that serves their port.

    A value is rewritten where it names a loopback host (``localhost``, ``127.0.0.1``, ``[::1]``)
    *with a port*, and exactly one dependency's Service has that port (its published host port, or
    its container port when it publishes none). The node's own ports are left alone (its own exports
    are for its dependents). Anything else loopback is left as written, with a note.
    """
    out: dict[str, str] = {}
    notes: list[str] = []
    for key, value in env.items():
        def sub(m: re.Match[str], key: str = key, value: str = value) -> str:
            port = m.group(2)
            if port is None:
                notes.append(f"{who}: {key}={value!r} names {m.group(1)} without a port: left as written "
                             "(set it to a Service name)")
                return m.group(0)
            owners = by_port.get(int(port), ())
            if len(owners) == 1:
                return f"{owners[0]}:{port}"
            if int(port) in own and not owners:
                return m.group(0)
            why = (f"several dependencies serve port {port} ({', '.join(owners)})" if owners
                   else f"no dependency serves port {port}")
            notes.append(f"{who}: {key}={value!r}: {why}: left as written")
            return m.group(0)

        out[key] = _LOCAL_RE.sub(sub, value)
    return out, notes


# --- probes and waits --------------------------------------------------------------------------------


def _container_port(w: Workload, port: int) -> int:
    """The container port behind a port the datum's probe names from the host (``-p 8080:80``: 8080 → 80)."""
    for p in w.ports:
        if p.port == port:
            return p.target
    return port


def _handler(w: Workload, notes: list[str]) -> dict[str, Any] | None:
    """The probe handler for a workload's health check: http, else tcp, else exec (one per probe in Kubernetes)."""
    hc = w.node.health
    if hc is None:
        return None
    handlers: list[tuple[str, dict[str, Any]]] = []
    if hc.http_url:
        url = urlsplit(hc.http_url)
        if url.hostname in ("localhost", "127.0.0.1", "::1", "0.0.0.0"):
            port = url.port or (443 if url.scheme == "https" else 80)
            get: dict[str, Any] = {"path": (url.path or "/") + (f"?{url.query}" if url.query else ""),
                                   "port": _container_port(w, port)}
            if url.scheme == "https":
                get["scheme"] = "HTTPS"
            handlers.append(("http", {"httpGet": get}))
            if hc.expected_status and not 200 <= hc.expected_status < 400:
                notes.append(f"{w.node.id}: expects HTTP {hc.expected_status}; a Kubernetes httpGet probe "
                             "passes on 200-399 only")
        else:
            notes.append(f"{w.node.id}: the http probe {hc.http_url} is not on this container: not mapped")
    if hc.tcp:
        _, _, port_text = hc.tcp.rpartition(":")
        if port_text.isdigit():
            handlers.append(("tcp", {"tcpSocket": {"port": _container_port(w, int(port_text))}}))
    if hc.exec:
        handlers.append(("exec", {"exec": {"command": list(hc.exec)}}))
    if hc.log_regex:
        notes.append(f"{w.node.id}: the log probe /{hc.log_regex}/ has no Kubernetes equivalent: left out")
    if not handlers:
        return None
    if len(handlers) > 1:
        notes.append(f"{w.node.id}: Kubernetes takes one probe per check: {handlers[0][0]} is used, "
                     + ", ".join(h for h, _ in handlers[1:]) + " left out")
    return handlers[0][1]


def probes(w: Workload, notes: list[str]) -> dict[str, dict[str, Any]]:
    """``startupProbe`` (the whole wait: ``timeout_ms``, after ``start_period_ms``) and ``readinessProbe``.

    ``interval_ms`` is the period and ``probe_timeout_ms`` one try's timeout (whole seconds, at least 1:
    Kubernetes cannot probe faster); ``retries`` (failures allowed) gives the readiness failure threshold.
    """
    handler = _handler(w, notes)
    hc = w.node.health
    if handler is None or hc is None:
        return {}
    period = _seconds(hc.interval_ms)
    timeout = _seconds(hc.probe_timeout_ms)
    startup = {**handler, "initialDelaySeconds": hc.start_period_ms // 1000, "periodSeconds": period,
               "timeoutSeconds": timeout, "failureThreshold": max(1, math.ceil(hc.timeout_ms / (period * 1000)))}
    readiness = {**handler, "periodSeconds": period, "timeoutSeconds": timeout,
                 "failureThreshold": hc.retries + 1 if hc.retries is not None else 3}
    return {"startupProbe": startup, "readinessProbe": readiness}


def wait_command(dep: Workload) -> list[str] | None:
    """A shell loop that ends when ``dep``'s Service answers: its http probe when it has one, else a TCP connect.

    A Service sends traffic only to ready pods, so a TCP connect through it already means ready
    when the dependency has a readiness probe; an http probe is followed by wget (busybox's exits
    non-zero on an error status).
    """
    if not dep.ports:
        return None
    hc = dep.node.health
    host = dep.name
    check: str | None = None
    if hc is not None and hc.http_url:
        url = urlsplit(hc.http_url)
        if url.scheme == "http" and url.hostname in ("localhost", "127.0.0.1", "::1", "0.0.0.0"):
            target = _container_port(dep, url.port or 80)
            port = next((p.port for p in dep.ports if p.target == target), dep.ports[0].port)
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            check = f"wget -q -T 2 -O /dev/null {shlex.quote(f'http://{host}:{port}{path}')}"
    if check is None:
        port = dep.ports[0].port
        if hc is not None and hc.tcp and hc.tcp.rpartition(":")[2].isdigit():
            target = _container_port(dep, int(hc.tcp.rpartition(":")[2]))
            port = next((p.port for p in dep.ports if p.target == target), port)
        # Not ``nc -z``: busybox builds without NC_EXTRA (Debian's) lack it; a connect with stdin
        # closed works on every busybox nc.
        check = f"nc -w 2 {host} {port} </dev/null"
    return ["sh", "-c", f"until {check}; do echo waiting for {host}; sleep 1; done"]


# --- one workload ------------------------------------------------------------------------------------


def _volumes(w: Workload, notes: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """(container volumeMounts, pod volumes, claim names): named volumes → claims, anonymous and tmpfs → emptyDir."""
    mounts: list[dict[str, Any]] = []
    pod: list[dict[str, Any]] = []
    claims: list[str] = []
    host = w.plan.config.get("HostConfig", {})
    named = set(w.plan.volumes)

    def claim(src: str, dst: str, ro: bool) -> None:
        name = dns_name(src)
        if name not in claims:
            claims.append(name)
        mounts.append({"name": name, "mountPath": dst, **({"readOnly": True} if ro else {})})

    def empty(dst: str, memory: bool = False) -> None:
        name = f"scratch-{len(pod)}"
        pod.append({"name": name, "emptyDir": {"medium": "Memory"} if memory else {}})
        mounts.append({"name": name, "mountPath": dst})

    for bind in host.get("Binds", []):
        src, dst, *rest = bind.split(":")
        if src in named:
            claim(src, dst, "ro" in (rest[0].split(",") if rest else []))
        else:
            notes.append(f"{w.node.id}: the host folder {src} (mounted at {dst}) cannot be carried to a cluster: "
                         "left out (use a volume, or a ConfigMap for configuration files)")
    for m in host.get("Mounts", []):
        if m["Type"] == "volume" and m.get("Source"):
            claim(m["Source"], m["Target"], bool(m.get("ReadOnly")))
        elif m["Type"] in ("volume", "tmpfs"):
            empty(m["Target"], memory=m["Type"] == "tmpfs")
        else:
            notes.append(f"{w.node.id}: the host folder {m.get('Source')} (mounted at {m['Target']}) "
                         "cannot be carried to a cluster: left out")
    for dst in w.plan.config.get("Volumes", {}):
        empty(dst)
    for dst in host.get("Tmpfs", {}):
        empty(dst, memory=True)
    return mounts, pod, claims


def _container(w: Workload, env_refs: list[dict[str, Any]], notes: list[str]) -> dict[str, Any]:
    cfg = w.plan.config
    host = cfg.get("HostConfig", {})
    c: dict[str, Any] = {"name": w.name, "image": w.plan.image,
                         "imagePullPolicy": {"always": "Always", "never": "Never"}.get(w.plan.pull, "IfNotPresent")}
    if cfg.get("Entrypoint"):
        c["command"] = list(cfg["Entrypoint"])
    if cfg.get("Cmd"):
        c["args"] = list(cfg["Cmd"])
    if cfg.get("WorkingDir"):
        c["workingDir"] = cfg["WorkingDir"]
    if w.ports:
        c["ports"] = [{"name": f"{p.proto}-{p.target}", "containerPort": p.target, "protocol": _PROTO[p.proto]}
                      for p in {(p.target, p.proto): p for p in w.ports}.values()]
    if env_refs:
        c["envFrom"] = env_refs
    limits: dict[str, str] = {}
    requests: dict[str, str] = {}
    if host.get("Memory"):
        limits["memory"] = quantity_bytes(host["Memory"])
    if host.get("NanoCpus"):
        limits["cpu"] = quantity_cpus(host["NanoCpus"])
    if host.get("MemoryReservation"):
        requests["memory"] = quantity_bytes(host["MemoryReservation"])
    if limits or requests:
        c["resources"] = {**({"limits": limits} if limits else {}), **({"requests": requests} if requests else {})}
    sec: dict[str, Any] = {}
    if host.get("Privileged"):
        sec["privileged"] = True
    if host.get("ReadonlyRootfs"):
        sec["readOnlyRootFilesystem"] = True
    caps = {k: list(host[v]) for k, v in (("add", "CapAdd"), ("drop", "CapDrop")) if host.get(v)}
    if caps:
        sec["capabilities"] = caps
    user = cfg.get("User")
    if user:
        uid, _, gid = str(user).partition(":")
        if uid.isdigit() and (not gid or gid.isdigit()):
            sec["runAsUser"] = int(uid)
            if gid:
                sec["runAsGroup"] = int(gid)
        else:
            notes.append(f"{w.node.id}: --user {user}: Kubernetes takes a numeric uid: left out")
    if sec:
        c["securityContext"] = sec
    if cfg.get("Tty"):
        c["tty"] = True
    if cfg.get("OpenStdin"):
        c["stdin"] = True
    return c


def _workload(w: Workload, deps: Sequence[Workload], env: dict[str, str], part_of: str, wait_image: str,
              notes: list[str]) -> list[dict[str, Any]]:
    node = w.node
    labels = {"app.kubernetes.io/name": w.name, "app.kubernetes.io/part-of": part_of,
              "app.kubernetes.io/managed-by": "b00t-graph", "org.b00t-graph/config-hash": node.config_hash}
    selector = {"app.kubernetes.io/name": w.name, "app.kubernetes.io/part-of": part_of}
    meta = {"labels": labels, "annotations": {"org.b00t-graph/node": node.id}}
    out: list[dict[str, Any]] = []

    plain = {k: v for k, v in env.items() if not looks_secret(k, v)}
    secret = {k: v for k, v in env.items() if looks_secret(k, v)}
    env_refs: list[dict[str, Any]] = []
    if plain:
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{w.name}-env", **meta},
                    "data": plain})
        env_refs.append({"configMapRef": {"name": f"{w.name}-env"}})
    if secret:
        out.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{w.name}-env-secret", **meta},
                    "type": "Opaque", "stringData": secret})
        env_refs.append({"secretRef": {"name": f"{w.name}-env-secret"}})

    mounts, volumes, claims = _volumes(w, notes)
    container = _container(w, env_refs, notes)
    container.update(probes(w, notes))
    if mounts:
        container["volumeMounts"] = mounts
    pod: dict[str, Any] = {}
    host = w.plan.config.get("HostConfig", {})
    if host.get("NetworkMode") == "host":
        pod["hostNetwork"] = True
        notes.append(f"{node.id}: --network host becomes hostNetwork: true (the pod shares its node's network)")
    inits = []
    for dep in deps:
        cmd = wait_command(dep)
        if cmd is None:
            notes.append(f"{node.id} depends on {dep.node.id}, which has no port to wait on: "
                         "this order is not kept (give it a port or a health check)")
            continue
        inits.append({"name": f"wait-{dep.name}"[:63].rstrip("-"), "image": wait_image, "command": cmd})
    if inits:
        pod["initContainers"] = inits
    pod["containers"] = [container]
    if volumes:
        pod["volumes"] = volumes
    grace = w.plan.config.get("StopTimeout")
    pod["terminationGracePeriodSeconds"] = grace if grace is not None else _seconds(node.spec.stop_grace_ms, 0)
    template = {"metadata": {"labels": labels, "annotations": {"org.b00t-graph/node": node.id}}, "spec": pod}

    if w.ports or claims:
        svc_spec: dict[str, Any] = {"selector": selector}
        if w.ports:
            svc_spec["ports"] = [{"name": p.name, "port": p.port, "targetPort": p.target,
                                  "protocol": _PROTO[p.proto]} for p in w.ports]
        else:
            svc_spec["clusterIP"] = "None"  # the StatefulSet's governing Service needs no port
        out.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": w.name, **meta}, "spec": svc_spec})
    spec: dict[str, Any] = {"replicas": 1, "selector": {"matchLabels": selector}, "template": template}
    if claims:
        spec["serviceName"] = w.name
        spec["volumeClaimTemplates"] = [
            {"metadata": {"name": c, "labels": selector},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": VOLUME_SIZE}}}}
            for c in claims]
        out.append({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": w.name, **meta},
                    "spec": spec})
    else:
        out.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": w.name, **meta},
                    "spec": spec})
    unmapped = sorted(k for k, v in host.items() if k not in _HOST_MAPPED and v not in (None, "", [], {}, 0, False))
    if unmapped:
        notes.append(f"{node.id}: docker settings with no counterpart here, left out: {', '.join(unmapped)}")
    if w.plan.platform:
        notes.append(f"{node.id}: --platform {w.plan.platform}: use a nodeSelector on kubernetes.io/arch")
    if node.spec.build is not None and not node.spec.image:
        notes.append(f"{node.id}: its image {w.plan.image} is built locally: push it to a registry the cluster "
                     "pulls from and set the image")
    return out


# --- the whole graph ---------------------------------------------------------------------------------


def to_manifests(graph: Graph, *, wait_image: str = WAIT_IMAGE) -> K8sExport:
    """The Kubernetes objects for every docker node of ``graph``, each after what it waits for."""
    notes: list[str] = [*(str(n) for n in graph.notes)]
    part_of = dns_name(graph.targets[0].rpartition(".")[0] or graph.targets[0]) if graph.targets else "b00t-graph"
    workloads: dict[str, Workload] = {}
    used: set[str] = set()
    for ident, node in graph.nodes.items():
        if node.runtime == "process":
            notes.append(f"{ident}: a process node has no image: left out of the export "
                         "(run it as a docker datum to deploy it)")
            continue
        if node.runtime not in DOCKER_RUNTIMES:
            continue
        name = dns_name(node.spec.name)
        if name in used:
            name = dns_name(f"{node.spec.name}-{node.type}")
        used.add(name)
        plan = dockerargs.plan(node)
        workloads[ident] = Workload(node=node, name=name, plan=plan, ports=_ports(plan))

    files: dict[str, tuple[dict[str, Any], ...]] = {}
    waits: dict[str, tuple[str, ...]] = {}
    for ident, w in workloads.items():
        deps = workload_deps(graph, ident, workloads)
        waits[ident] = deps
        by_port: dict[int, list[str]] = {}
        for anc in _ancestors(graph, ident):
            if anc in workloads:
                for p in workloads[anc].ports:
                    if workloads[anc].name not in by_port.setdefault(p.port, []):
                        by_port[p.port].append(workloads[anc].name)
        for anc in _ancestors(graph, ident):
            if graph.nodes[anc].runtime == "process":
                notes.append(f"{ident} depends on {anc}, a process node that is not exported: "
                             "it is neither waited for nor reachable in the cluster")
        env: dict[str, str] = {}
        for item in w.plan.config.get("Env", []):
            key, _, value = item.partition("=")
            env[key] = value
        env, env_notes = rewrite_env(env, by_port, {p.port for p in w.ports}, ident)
        notes.extend(env_notes)
        files[w.name] = tuple(_workload(w, [workloads[d] for d in deps], env, part_of, wait_image, notes))
    manifests = tuple(m for ms in files.values() for m in ms)
    return K8sExport(manifests=manifests, files=files, waits=waits, notes=tuple(dict.fromkeys(notes)),
                     part_of=part_of)
