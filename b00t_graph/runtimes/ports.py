"""Is a fixed host port free? Asked just before a node starts, so a port held by another program
fails the node at once with "port 6379 is in use by another program (redis-server, pid 812)"
instead of an engine error or a readiness time-out against the wrong service.

Asked only when nothing of the node's own holds the port (its container is not running, its
process was stopped), so an idempotent ``up`` never trips over its own service.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from ..errors import PortInUse
from ..model import HealthCheck

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "::", ""})


def is_free(port: int, proto: str = "tcp", ip: str = "") -> bool:
    """Whether ``port`` can be bound now (``SO_REUSEADDR``: a closing connection does not count)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    host = ip if ip not in ("", "localhost") else ("127.0.0.1" if ip == "localhost" else "")
    try:
        with socket.socket(family, kind) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return False
        return True  # not ours to judge (an address not on this host, no permission): let the start say
    return True


def holder(port: int, proto: str = "tcp") -> str:
    """``program (pid N)`` of the listener on ``port`` when the OS lets us see it, else ``""``."""
    import psutil  # only when a port is taken: psutil costs more to import than a warm `up` does

    kind = "udp" if proto == "udp" else "tcp"
    try:
        conns = psutil.net_connections(kind=kind)
    except (psutil.Error, OSError):
        return ""
    for c in conns:
        if not c.laddr or c.laddr.port != port:
            continue
        if kind == "tcp" and c.status != psutil.CONN_LISTEN:
            continue
        if c.pid is None:
            return ""
        try:
            return f"{psutil.Process(c.pid).name()}, pid {c.pid}"
        except psutil.Error:
            return f"pid {c.pid}"
    return ""


def holder_pids(port: int, proto: str = "tcp") -> set[int]:
    """The pids listening on ``port`` (any address) that the OS lets us see; empty when it cannot tell."""
    import psutil

    kind = "udp" if proto == "udp" else "tcp"
    try:
        conns = psutil.net_connections(kind=kind)
    except (psutil.Error, OSError):
        return set()
    return {c.pid for c in conns if c.laddr and c.laddr.port == port and c.pid is not None
            and (kind == "udp" or c.status == psutil.CONN_LISTEN)}


def check_free(node_id: str, ports: Iterable[tuple[int, str, str]], extra: str = "") -> None:
    """Raise :class:`PortInUse` for the first of ``(port, proto, ip)`` that another program holds."""
    for port, proto, ip in ports:
        if not is_free(port, proto, ip):
            who = holder(port, proto)
            raise PortInUse(node_id, f"port {port} is in use by another program"
                            + (f" ({who})" if who else "") + extra
                            + ": stop it or change the port")


def probe_ports(hc: HealthCheck | None) -> list[tuple[int, str, str]]:
    """Fixed loopback ports a process node's probes name (``tcp``, ``http_url``): its service will bind them."""
    if hc is None:
        return []
    out: list[tuple[int, str, str]] = []
    if hc.tcp:
        host, _, port = hc.tcp.rpartition(":")
        host = host.strip("[]")
        if port.isdigit() and host in LOOPBACK:
            out.append((int(port), "tcp", ""))
    if hc.http_url:
        try:
            parts = urlsplit(hc.http_url)
            port_n = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return out
        if (parts.hostname or "") in LOOPBACK and (port_n, "tcp", "") not in out:
            out.append((port_n, "tcp", ""))
    return out


def published(config: dict[str, object]) -> list[tuple[int, str, str]]:
    """Fixed host ports of a ``POST /containers/create`` body (``-p 6379:6379``; not ranges, not ``-p 6379``)."""
    host = config.get("HostConfig")
    if not isinstance(host, dict) or host.get("NetworkMode") == "host":
        return []
    out: list[tuple[int, str, str]] = []
    for ctr, binds in (host.get("PortBindings") or {}).items():
        proto = str(ctr).partition("/")[2] or "tcp"
        for b in binds or ():
            hp = str(b.get("HostPort") or "")
            if hp.isdigit():
                out.append((int(hp), proto, str(b.get("HostIp") or "")))
    return out
