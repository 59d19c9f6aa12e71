"""Fixtures for tests against real runtimes.

Docker tests talk to the real engine (no mocks). They are skipped when no
engine answers, unless ``B00T_REQUIRE_DOCKER=1`` (CI), which turns that into a
failure. Everything a test creates is named ``b00tgt-<random>-…`` and removed
afterwards, pass or fail, through the engine API directly (not the code under
test). The ``anyio_backend`` fixture (asyncio and trio, by name) comes from
``tests/conftest.py``.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "tests" / "images" / "build.sh"
TEST_IMAGE = os.environ.get("B00TG_TEST_IMAGE", "b00t-graph-test/busybox:1")


# --- a tiny synchronous Engine API client (independent of the runtime under test) ---------------


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
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


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The Docker engine, or a skip (a failure with ``B00T_REQUIRE_DOCKER=1``)."""
    eng = Engine()
    if not eng.ping():
        msg = f"no Docker engine answers at {eng.host}"
        if os.environ.get("B00T_REQUIRE_DOCKER") == "1":
            pytest.fail(msg + " (B00T_REQUIRE_DOCKER=1)", pytrace=False)
        pytest.skip(msg)
    return eng


@pytest.fixture(scope="session")
def test_image(engine: Engine) -> str:
    """The local busybox test image, built by tests/images/build.sh when present (no registry needed)."""
    if BUILD_SCRIPT.exists():
        proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=600,
                              env={**os.environ, "B00TG_TEST_IMAGE": TEST_IMAGE}, check=False)
        if proc.returncode != 0:
            pytest.fail(f"tests/images/build.sh failed:\n{proc.stderr[-3000:]}", pytrace=False)
    status, _ = engine.request("GET", f"/images/{quote(TEST_IMAGE, safe='')}/json")
    if status != 200:
        pytest.fail(f"test image {TEST_IMAGE} is missing and could not be built", pytrace=False)
    return TEST_IMAGE


@pytest.fixture
def prefix(engine: Engine) -> Iterator[str]:
    """A unique ``b00tgt-<random>`` name prefix; whatever carries it is removed afterwards, pass or fail."""
    p = f"b00tgt-{secrets.token_hex(4)}"
    engine.purge(p)
    try:
        yield p
    finally:
        engine.purge(p)

