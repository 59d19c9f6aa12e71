"""A tiny synchronous Docker Engine API client for tests: the fixtures' view of the engine,
independent of the runtime under test (no mocks, no aiodocker)."""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Any
from urllib.parse import quote, urlparse

from benchmarks.benchlib import ForwardingSocket


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()  # a failed connect must not leave the socket to the garbage collector
            raise
        self.sock = sock


class Engine:
    """Just enough of the Engine API for fixtures: JSON in, JSON out."""

    def __init__(self, host: str | None = None) -> None:
        host = host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        self.host = host

    def _conn(self, timeout: float) -> http.client.HTTPConnection:
        if self.host.startswith("unix://"):
            return _UnixConnection(self.host.removeprefix("unix://"), timeout)
        u = urlparse(self.host)
        return http.client.HTTPConnection(u.hostname or "localhost", u.port or 2375, timeout=timeout)

    def request(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
        conn = self._conn(timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, raw.decode(errors="replace")

    def ping(self) -> bool:
        try:
            status, _ = self.request("GET", "/_ping", timeout=3.0)
        except OSError:
            return False
        return status == 200

    def filtered(self, kind: str, filters: dict[str, list[str]]) -> Any:
        q = quote(json.dumps(filters))
        status, data = self.request("GET", f"/{kind}?all=1&filters={q}")
        assert status == 200, data
        return data

    def container(self, ref: str) -> dict[str, Any] | None:
        status, data = self.request("GET", f"/containers/{quote(ref)}/json")
        return data if status == 200 else None

    def volume(self, name: str) -> dict[str, Any] | None:
        status, data = self.request("GET", f"/volumes/{quote(name)}")
        return data if status == 200 else None

    def network(self, name: str) -> dict[str, Any] | None:
        status, data = self.request("GET", f"/networks/{quote(name)}")
        return data if status == 200 else None

    def purge(self, prefix: str) -> None:
        """Remove every container, network and volume whose name starts with ``prefix``."""
        for c in self.filtered("containers/json", {"name": [f"^/{prefix}"]}):
            self.request("DELETE", f"/containers/{c['Id']}?force=1&v=1")
        for n in self.filtered("networks", {"name": [prefix]}):
            if n["Name"].startswith(prefix):
                self.request("DELETE", f"/networks/{n['Id']}")
        vols = self.filtered("volumes", {"name": [prefix]}).get("Volumes") or []
        for v in vols:
            if v["Name"].startswith(prefix):
                self.request("DELETE", f"/volumes/{quote(v['Name'])}?force=1")


def engine_reachable() -> bool:
    """True when the Docker engine answers on DOCKER_HOST or the default socket."""
    return Engine().ping()


class RecordingProxy(ForwardingSocket):
    """A forwarding socket to the real engine that keeps each request's first line, in order.

    Lets a test see which Engine API requests a client made against the real engine.
    """

    def __init__(self, path: str, engine: str | None = None) -> None:
        self.requests: list[str] = []
        super().__init__(path, engine, lambda line, when: self.requests.append(line))
