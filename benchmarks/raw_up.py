"""A cold ``up`` of one scenario straight through the Engine API: the floor ``bench_raw.py`` measures against.

Nothing but the standard library and ``dockerapi.py`` (no b00t-graph import), so it does only the work itself:
create the scenario's network, then one thread per service that waits until every dependency of its service is
ready, then ``POST /containers/create``, ``POST /containers/{id}/start`` and ``GET /`` on the published port
every ``poll_s`` (5 ms) until it answers 200. No datums to parse, no state, no labels, no checks of what
already runs. It exits 0 once every service answers; on a failure, a timeout or Ctrl-C it removes everything
named with the spec's prefix and exits non-zero, so a failed run leaves nothing behind.

``bench_raw.py`` runs it as a subprocess, as it runs b00t-graph's CLI, so both pay an interpreter's start:

    python benchmarks/raw_up.py SPEC.json

SPEC.json: ``{"prefix", "network", "image", "poll_s", "timeout_s", "services": [{"name", "cmd", "port",
"deps"}]}``, services in dependency order, ``deps`` naming other services' ``name``.
"""

from __future__ import annotations

import http.client
import json
import signal
import sys
import threading
import time
from typing import Any

import dockerapi as api


def serving(port: int, poll_s: float, deadline: float) -> bool:
    """Poll ``GET /`` on the published port until it answers 200 (True) or ``deadline`` passes (False)."""
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.request("GET", "/")
            if conn.getresponse().status == 200:
                return True
        except (OSError, http.client.HTTPException):
            pass  # docker-proxy accepts and drops the connection until httpd listens
        finally:
            conn.close()
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def bring_up(spec: dict[str, Any], svc: dict[str, Any], ready: dict[str, threading.Event], errors: list[str]) -> None:
    """One service: wait for its dependencies, create, start, poll until it serves."""
    try:
        for dep in svc["deps"]:
            while not ready[dep].wait(0.05):  # returns at once when set; the timeout only checks for failures
                if errors:
                    return
        body = {"Image": spec["image"], "Cmd": svc["cmd"], "ExposedPorts": {"80/tcp": {}},
                "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(svc["port"])}]},
                               "NetworkMode": spec["network"]}}
        cid = api.call("POST", "/containers/create", {"name": svc["name"]}, body=body)["Id"]
        api.call("POST", f"/containers/{cid}/start")
        if not serving(svc["port"], spec["poll_s"], time.monotonic() + spec["timeout_s"]):
            raise TimeoutError(f"not serving on port {svc['port']} within {spec['timeout_s']:g} s")
        ready[svc["name"]].set()
    except Exception as exc:
        errors.append(f"{svc['name']}: {exc}")


def main(argv: list[str]) -> int:
    with open(argv[0]) as f:
        spec: dict[str, Any] = json.load(f)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    errors: list[str] = []
    ready = {svc["name"]: threading.Event() for svc in spec["services"]}
    try:
        api.call("POST", "/networks/create", body={"Name": spec["network"], "CheckDuplicate": True})
        threads = [threading.Thread(target=bring_up, args=(spec, svc, ready, errors), daemon=True)
                   for svc in spec["services"]]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive() and not errors:
                t.join(0.1)  # returns as soon as the thread ends; the timeout keeps Ctrl-C and failures prompt
        if errors:
            raise RuntimeError("; ".join(errors))
    except BaseException as exc:  # also Ctrl-C / SIGTERM: remove what was made, then fail
        errors.append("stopped")  # the threads still waiting for a dependency give up
        api.sweep(spec["prefix"])
        print(f"raw up failed: {exc}", file=sys.stderr)
        return 130 if isinstance(exc, KeyboardInterrupt) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
