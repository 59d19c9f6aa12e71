"""Fixtures for tests against real runtimes.

Docker tests talk to the real engine (no mocks). They are skipped when no
engine answers, unless ``B00T_REQUIRE_DOCKER=1`` (CI), which turns that into a
failure. Everything a test creates is named ``b00tgt-<random>-…`` and removed
afterwards, pass or fail, through the engine API directly (not the code under
test). The ``anyio_backend`` fixture (asyncio and trio, by name) comes from
``tests/conftest.py``.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.dockerutil import Engine
from tests.second_engine import SecondEngine, second_engine
from tests.second_engine import missing as second_engine_missing

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "tests" / "images" / "build.sh"
TEST_IMAGE = os.environ.get("B00TG_TEST_IMAGE", "b00t-graph-test/busybox:1")


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



@pytest.fixture(scope="session")
def second(test_image: str) -> Iterator[SecondEngine]:
    """A second real dockerd with the test image (see ``tests/second_engine.py``), shared by the session;
    skipped where none can be started, a failure with ``B00T_REQUIRE_DOCKER=1``."""
    why = second_engine_missing()
    if why is not None:
        if os.environ.get("B00T_REQUIRE_DOCKER") == "1":
            pytest.fail(f"no second Docker engine: {why} (B00T_REQUIRE_DOCKER=1)", pytrace=False)
        pytest.skip(f"no second Docker engine: {why}")
    with second_engine(test_image) as eng:
        yield eng


@pytest.fixture
def second_prefix(second: SecondEngine, prefix: str) -> Iterator[str]:
    """``prefix``, also purged from the second engine afterwards, pass or fail."""
    try:
        yield prefix
    finally:
        if second.api.ping():
            second.api.purge(prefix)
