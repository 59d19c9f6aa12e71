"""What a node may do to the host, said before it runs.

A datum is as powerful as the flags it carries: ``--privileged``, added
capabilities, the host's namespaces or the Docker socket each give a
container the host. :func:`privileged` names those powers from the parsed
``docker_args`` (the same parse ``up`` uses, so nothing is missed because it
was spelled ``--pid=host`` or came from a dialect), ``plan`` and ``validate``
show them, and ``up --deny-privileged`` refuses such nodes.

A process datum's ``cwd`` is resolved against the datum's folder, as the
process runtime does; :func:`cwd_outside` tells when a relative ``cwd`` climbs
out of that folder (still allowed: it is shown, not refused).

Pure functions of a compiled node; no I/O.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs

from .errors import DatumError, Problem
from .graph import Graph, Node
from .model import DOCKER_RUNTIMES

#: host namespaces a container can share (``--pid host`` …): flag → HostConfig field
_NAMESPACES = {"pid": "PidMode", "network": "NetworkMode", "ipc": "IpcMode", "userns": "UsernsMode",
               "uts": "UTSMode"}
#: sockets through which a container drives the container engine, hence the host
_ENGINE_SOCKETS = ("docker.sock", "podman.sock", "containerd.sock")
#: folders that hold those sockets
_SOCKET_DIRS = frozenset({"/run", "/var/run", "/run/docker", "/var/run/docker", "/run/podman", "/run/containerd",
                          "/var/lib/docker"})
#: host folders whose mount gives a container the host's processes, devices, kernel knobs or configuration
_HOST_DIRS = frozenset({"/proc", "/sys", "/dev", "/etc", "/boot", "/root"})
#: programs that run the rest of a command line as another user (root)
_ELEVATE = frozenset({"sudo", "doas", "pkexec", "su"})


@attrs.frozen
class Concern:
    """One power a node takes over the host: where the datum asks for it, and what it is."""

    key: str
    what: str


def privileged(node: Node) -> list[Concern]:
    """What makes ``node`` privileged (empty: nothing): flags, shared namespaces, host mounts, sudo."""
    if node.runtime in DOCKER_RUNTIMES:
        return _docker(node)
    if node.runtime == "process" and node.spec.command:
        prog = os.path.basename(node.spec.command[0])
        if prog in _ELEVATE:
            return [Concern("b00t.command", f"runs as another user (root) through {prog}")]
    return []


def _docker(node: Node) -> list[Concern]:
    from .runtimes import dockerargs

    try:
        host: dict[str, Any] = dockerargs.plan(node).config.get("HostConfig", {})
    except DatumError:  # a bad flag: compile reports it, nothing will run
        return []
    key = dockerargs.KEY
    out: list[Concern] = []
    if host.get("Privileged"):
        out.append(Concern(key, "--privileged"))
    out += [Concern(key, f"--cap-add {cap}") for cap in host.get("CapAdd") or ()]
    for flag, field in _NAMESPACES.items():
        if host.get(field) == "host":
            out.append(Concern("b00t.network" if flag == "network" and node.spec.network == "host" else key,
                               f"--{flag} host"))
    for opt in host.get("SecurityOpt") or ():
        if "unconfined" in opt or opt.replace(":", "=") == "label=disable":
            out.append(Concern(key, f"--security-opt {opt}"))
    sources = [b.split(":", 1)[0] for b in host.get("Binds") or ()]
    sources += [m.get("Source", "") for m in host.get("Mounts") or () if m.get("Type") == "bind"]
    from_volumes = {os.path.normpath(os.path.expanduser(v.split(":", 1)[0])) for v in node.spec.volumes}
    for src in sources:
        why = _host_path(src)
        if why:
            norm = os.path.normpath(src)
            out.append(Concern("b00t.volumes" if norm in from_volumes else key, why))
    return out


def _host_path(src: str) -> str | None:
    """Why mounting host path ``src`` into a container hands it the host, or ``None``."""
    if not src.startswith("/"):
        return None  # a named volume
    norm = os.path.normpath(src)
    if norm == "/" or norm == "//":
        return "mounts the host's root filesystem (/)"
    if os.path.basename(norm) in _ENGINE_SOCKETS:
        return f"mounts the container engine's socket {norm}"
    if norm in _SOCKET_DIRS:
        return f"mounts {norm}, which holds the container engine's socket"
    if norm in _HOST_DIRS:
        return f"mounts the host's {norm}"
    return None


def cwd(node: Node) -> str | None:
    """Where a process node runs: its ``cwd`` against the datum's folder (default: the folder itself)."""
    if node.runtime != "process":
        return None
    base = Path(node.spec.path).parent
    where = base / Path(node.spec.cwd).expanduser() if node.spec.cwd else base
    return os.path.normpath(where)


def cwd_outside(node: Node) -> bool:
    """A relative ``cwd`` (``../../x``) that lands outside the datum's folder.

    An absolute or ``~`` path says where it goes and is not flagged; only a relative one can
    climb out unnoticed. Lexical, like the runtime's own resolution (no symlinks followed).
    """
    where = cwd(node)
    raw = node.spec.cwd
    if where is None or not raw or os.path.isabs(os.path.expanduser(raw)):
        return False
    base = os.path.normpath(Path(node.spec.path).parent)
    return os.path.commonpath([base, where]) != base


def notes(node: Node) -> list[Problem]:
    """``validate``'s notes for one node: each privilege it takes, and a ``cwd`` outside its folder."""
    out = [Problem(node.spec.path, c.key, f"runs privileged: {c.what}") for c in privileged(node)]
    if cwd_outside(node):
        out.append(Problem(node.spec.path, "b00t.cwd", f"{node.spec.cwd!r} resolves to {cwd(node)}, outside the "
                                                       "datum's folder (allowed; say so if it is meant)"))
    return out


def privileged_nodes(graph: Graph) -> dict[str, list[Concern]]:
    """Every privileged node of ``graph`` with its concerns, in graph order (for ``up --deny-privileged``)."""
    out: dict[str, list[Concern]] = {}
    for ident, node in graph.nodes.items():
        concerns = privileged(node)
        if concerns:
            out[ident] = concerns
    return out
