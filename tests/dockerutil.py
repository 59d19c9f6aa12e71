"""A tiny synchronous Docker Engine API client for tests: the fixtures' view of the engine,
independent of the runtime under test (no mocks, no aiodocker)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
from typing import Any
from urllib.parse import quote, urlparse


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


class RecordingProxy:
    """A unix socket that forwards every byte to the real engine and keeps each request's first line.

    Lets a test see which Engine API requests a client made, in order, against the real engine.
    """

    def __init__(self, path: str, engine: str | None = None) -> None:
        self.path = path
        self.engine = (engine or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock").removeprefix(
            "unix://")
        self.requests: list[str] = []
        self._socks: list[socket.socket] = []  # every connection's pair: closed by close(), never left to the GC
        self._srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._srv.bind(path)
        self._srv.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._srv.close()
        os.unlink(self.path)
        for sock in self._socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._srv.accept()
            except OSError:
                return
            up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._socks += [client, up]
            up.connect(self.engine)
            threading.Thread(target=self._pipe, args=(up, client, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(client, up, True), daemon=True).start()

    def _pipe(self, src: Any, dst: Any, record: bool) -> None:
        try:
            while data := src.recv(65536):
                if record:
                    for line in data.split(b"\r\n"):
                        if line.split(b" ", 1)[0] in (b"GET", b"POST", b"DELETE", b"PUT", b"HEAD"):
                            self.requests.append(line.decode(errors="replace"))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
