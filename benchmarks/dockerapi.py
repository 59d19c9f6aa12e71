"""A tiny synchronous Docker Engine API client over the unix socket, for the benchmark's own bookkeeping.

The benchmark must not lean on the code it measures (b00t-graph's docker
runtime) to decide when compose is done or to clean up, and spawning the
``docker`` CLI for every poll would cost tens of milliseconds and CPU the two
tools under test need. So: plain HTTP/1.1 over ``/var/run/docker.sock``.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

SOCKET = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class DockerAPIError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"docker API {status}: {message}")
        self.status = status


def _query(params: dict[str, Any] | None) -> str:
    if not params:
        return ""
    out = {}
    for k, v in params.items():
        out[k] = json.dumps(v) if isinstance(v, (dict, list)) else str(v).lower() if isinstance(v, bool) else str(v)
    return "?" + urllib.parse.urlencode(out)


def call(method: str, path: str, params: dict[str, Any] | None = None, body: Any = None,
         timeout: float = 60.0) -> Any:
    conn = _UnixConnection(SOCKET, timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, path + _query(params), body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        if resp.status >= 400:
            try:
                msg = json.loads(raw).get("message", raw.decode())
            except ValueError:
                msg = raw.decode(errors="replace")
            raise DockerAPIError(resp.status, msg)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")
    finally:
        conn.close()


def containers(filters: dict[str, list[str]], all: bool = True) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = call("GET", "/containers/json", {"all": all, "filters": filters})
    return result


def names_with_prefix(kind: str, prefix: str) -> list[tuple[str, str]]:
    """(id, name) of containers / networks / volumes whose name starts with ``prefix``."""
    if kind == "containers":
        out = []
        for c in containers({"name": [prefix]}):
            for n in c.get("Names") or ():
                if n.lstrip("/").startswith(prefix):
                    out.append((c["Id"], n.lstrip("/")))
                    break
        return out
    if kind == "networks":
        return [(n["Id"], n["Name"]) for n in call("GET", "/networks", {"filters": {"name": [prefix]}})
                if n["Name"].startswith(prefix)]
    vols = (call("GET", "/volumes", {"filters": {"name": [prefix]}}) or {}).get("Volumes") or []
    return [(v["Name"], v["Name"]) for v in vols if v["Name"].startswith(prefix)]


def sweep(prefix: str, log: Callable[[str], None] | None = None) -> list[str]:
    """Force-remove every container, then network, then volume whose name starts with ``prefix``."""
    removed = []
    for cid, name in names_with_prefix("containers", prefix):
        try:
            call("DELETE", f"/containers/{cid}", {"force": True, "v": True})
            removed.append(f"container {name}")
        except DockerAPIError as exc:
            if exc.status not in (404, 409):
                raise
    for nid, name in names_with_prefix("networks", prefix):
        try:
            call("DELETE", f"/networks/{nid}")
            removed.append(f"network {name}")
        except DockerAPIError as exc:
            if exc.status != 404:
                raise
    for vid, name in names_with_prefix("volumes", prefix):
        try:
            call("DELETE", f"/volumes/{vid}", {"force": True})
            removed.append(f"volume {name}")
        except DockerAPIError as exc:
            if exc.status != 404:
                raise
    if removed and log:
        log("swept: " + ", ".join(removed))
    return removed


class HealthWatch:
    """Records, from the engine's event stream, when each container of a compose project turns healthy.

    Events carry no polling error and cost the engine nothing while waiting, so
    compose is timed as precisely as b00t-graph (whose CLI exits the moment it
    sees the last node ready).
    """

    def __init__(self, label_filter: str) -> None:
        self.healthy_at: dict[str, float] = {}  # container name → perf_counter when its healthy event arrived
        self._cond = threading.Condition()
        self._stop = False
        self._conn: _UnixConnection | None = None
        self._ready = threading.Event()
        self._filters = {"type": ["container"], "event": ["health_status"], "label": [label_filter]}
        self._thread = threading.Thread(target=self._run, name="b00tbench-events", daemon=True)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the docker event stream did not open")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        if self._conn is not None and self._conn.sock is not None:
            try:
                self._conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)

    def _run(self) -> None:
        conn = _UnixConnection(SOCKET, timeout=3600)
        self._conn = conn
        since = f"{time.time():.6f}"
        conn.request("GET", "/events" + _query({"since": since, "filters": self._filters}))
        resp = conn.getresponse()
        self._ready.set()
        try:
            while not self._stop:
                line = resp.readline()
                if not line:
                    break
                now = time.perf_counter()
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                action = str(ev.get("Action") or ev.get("status") or "")
                if action.strip() == "health_status: healthy":
                    name = str((ev.get("Actor") or {}).get("Attributes", {}).get("name", ev.get("id", "")))
                    with self._cond:
                        self.healthy_at.setdefault(name, now)
                        self._cond.notify_all()
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()

    def wait_for(self, names: Iterable[str], deadline: float) -> bool:
        want = set(names)
        with self._cond:
            while not want <= self.healthy_at.keys():
                left = deadline - time.perf_counter()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
        return True
