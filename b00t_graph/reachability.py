"""Whether a runtime can be reached at all: the cheap check capability resolution asks.

Compiling stays pure: :func:`~b00t_graph.graph.compile_graph` takes this as an injected
predicate (``reachable=``), and ``plan --offline`` passes none. The check only opens a
connection to the Docker engine's socket (no API call, no aiodocker), bounded to half a
second; a resolver asks once per runtime kind per compile.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Mapping
from urllib.parse import urlsplit

from .model import DOCKER_RUNTIMES

_TIMEOUT = 0.5


def docker_hosts(environ: Mapping[str, str]) -> list[str]:
    """Where the docker runtime looks for an engine, in order (``DOCKER_HOST`` alone when set)."""
    host = environ.get("DOCKER_HOST", "").strip()
    if host:
        return [host]
    out = ["unix:///var/run/docker.sock", "unix:///run/podman/podman.sock"]
    if environ.get("XDG_RUNTIME_DIR"):
        out.append(f"unix://{environ['XDG_RUNTIME_DIR'].rstrip('/')}/podman/podman.sock")
    return out


def _connects(url: str) -> str | None:
    """``None`` when something accepts a connection at ``url``; else why not."""
    try:
        if url.startswith("unix://"):
            path = url.removeprefix("unix://")
            if not stat.S_ISSOCK(os.stat(path).st_mode):
                return f"{path} is not a socket"
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(_TIMEOUT)
                sock.connect(path)
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("tcp", "http", "https") or not parts.hostname:
            return f"{url}: unsupported address"
        with socket.create_connection((parts.hostname, parts.port or 2375), timeout=_TIMEOUT):
            return None
    except OSError as exc:
        return f"{url}: {exc.strerror or exc}"


def _docker(hosts: tuple[str, ...]) -> str | None:
    tried = []
    for url in hosts:
        why = _connects(url)
        if why is None:
            return None
        tried.append(why)
    return "no Docker engine answers (" + "; ".join(tried) + ")"


def engine_reachable(url: str) -> str | None:
    """``None`` when something accepts a connection at a named engine's address, else why not."""
    return _docker((url,))


def runtime_reachable(kind: str, environ: Mapping[str, str] | None = None) -> str | None:
    """``None`` when the runtime ``kind`` can be reached, else why not (for capability choices).

    ``docker@NAME`` (a named engine) is answered by :func:`~b00t_graph.graph.compile_graph`, which
    knows the engines; here it is the default engine's answer.
    """
    if kind in DOCKER_RUNTIMES or kind.startswith("docker@"):  # a swarm manager is a docker engine first
        return _docker(tuple(docker_hosts(os.environ if environ is None else environ)))
    return None  # local processes, presence checks and probes need nothing to be reachable
