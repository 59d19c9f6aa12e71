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


class EventWatch:
    """When each container whose name starts with ``prefix`` started and turned healthy, from the event stream.

    The one ruler both tools' cold ``up`` is timed with: a container is ready
    at its ``health_status: healthy`` event when it has a HEALTHCHECK, else at
    its ``start`` event (the stream knows nothing later about it). Times are the
    engine's own event timestamps (``timeNano``), so a reader thread delayed by
    a busy machine adds no error; :meth:`since` turns them into seconds after a
    ``time.time()`` taken when the timed command started. The stream is opened
    before the command runs and filtered on the engine's side to these two
    events, so it costs the engine nothing while waiting.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.started_at: dict[str, float] = {}  # container name → epoch seconds of its first start event
        self.healthy_at: dict[str, float] = {}  # container name → epoch seconds of its first healthy event
        self._cond = threading.Condition()
        self._stop = False
        self._conn: _UnixConnection | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._filters = {"type": ["container"], "event": ["start", "health_status"]}
        self._thread = threading.Thread(target=self._run, name="b00tbench-events", daemon=True)

    def __enter__(self) -> EventWatch:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the docker event stream did not open")
        if self._error is not None:
            raise RuntimeError(f"the docker event stream failed: {self._error}")
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
        try:
            conn.request("GET", "/events" + _query({"since": f"{time.time():.6f}", "filters": self._filters}))
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            self._error = exc
            self._ready.set()
            conn.close()
            return
        self._ready.set()
        try:
            while not self._stop:
                line = resp.readline()
                if not line:
                    break
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                name = str((ev.get("Actor") or {}).get("Attributes", {}).get("name", ""))
                if not name.startswith(self.prefix):
                    continue
                at = int(ev.get("timeNano") or 0) / 1e9 or time.time()
                action = str(ev.get("Action") or ev.get("status") or "").strip()
                with self._cond:
                    if action == "start":
                        self.started_at.setdefault(name, at)
                    elif action == "health_status: healthy":
                        self.healthy_at.setdefault(name, at)
                    else:
                        continue
                    self._cond.notify_all()
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()

    def ready_at(self, name: str, healthcheck: bool) -> float | None:
        """Epoch seconds ``name`` became ready per the stream (healthy, or started when it has no HEALTHCHECK)."""
        return (self.healthy_at if healthcheck else self.started_at).get(name)

    def wait_ready(self, names: Iterable[str], healthcheck: bool, deadline: float) -> bool:
        """Wait (until ``time.perf_counter()`` passes ``deadline``) for every container in ``names`` to be ready."""
        want = set(names)
        seen = self.healthy_at if healthcheck else self.started_at
        with self._cond:
            while not want <= seen.keys():
                left = deadline - time.perf_counter()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
        return True


def healthchecks(names: Iterable[str]) -> dict[str, bool]:
    """Whether each container runs a HEALTHCHECK (its own or its image's; ``NONE`` counts as none)."""
    images: dict[str, list[str]] = {}
    out = {}
    for name in names:
        info = call("GET", f"/containers/{name}/json")
        test = ((info.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
        if not test:
            if info["Image"] not in images:
                image = call("GET", f"/images/{info['Image']}/json")
                images[info["Image"]] = ((image.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
            test = images[info["Image"]]
        out[name] = bool(test) and test[0] != "NONE"
    return out
