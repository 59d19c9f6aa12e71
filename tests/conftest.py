"""Shared fixtures: both anyio backends by name (a missing trio fails, it does not skip), a private
state directory per test, and datum folders written from dicts."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.procutil import Reaper, write_service


@pytest.fixture(scope="session", autouse=True)
def _parse_cache_of_this_session() -> None:
    """Start the session with the loader's parse cache empty (see ``_parse_cache_of_this_test``)."""
    from b00t_graph import loader

    loader._PARSED.clear()


@pytest.fixture(autouse=True)
def _parse_cache_of_this_test(_parse_cache_of_this_session: None) -> None:
    """Each test parses its datums itself. The loader keeps what it parsed per file for as long as the
    file is unchanged: one test would otherwise be served what an earlier one parsed, and mutation
    testing, which forks each mutant's run from a process that already ran the tests, would never
    run the mutated parsing code at all."""
    from b00t_graph import loader

    loader._PARSED.clear()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A state directory of the test's own; also what the CLI and ensure() use by default."""
    d = tmp_path / "state"
    monkeypatch.setenv("B00T_GRAPH_STATE_DIR", str(d))
    yield d


@pytest.fixture
def write_datums(tmp_path: Path) -> Callable[..., Path]:
    """Write ``{"a.process": "...toml..."}`` into a fresh folder and return it."""
    counter = iter(range(1000))

    def write(files: dict[str, str], folder: Path | None = None) -> Path:
        d = folder or tmp_path / f"datums{next(counter)}"
        d.mkdir(parents=True, exist_ok=True)
        for ident, text in files.items():
            name = ident if ident.endswith(".toml") else f"{ident}.toml"
            (d / name).write_text(text)
        return d

    return write


@pytest.fixture
def reaper(state_dir: Path) -> Iterator[Reaper]:
    """Runs ``down`` and kills whatever a test's processes left, then fails the test if anything was left."""
    r = Reaper(state_dir)
    yield r
    assert r.cleanup() == [], "processes were still alive after down"


@pytest.fixture
def svc(tmp_path: Path) -> Path:
    """A tiny HTTP service script for process datums."""
    return write_service(tmp_path / "bin")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Docker tests skip without an engine, except where B00T_REQUIRE_DOCKER=1 (CI) makes that a failure."""
    if not any(item.get_closest_marker("docker") for item in items):
        return
    if os.environ.get("B00T_REQUIRE_DOCKER") == "1":
        return
    from tests.dockerutil import engine_reachable

    if not engine_reachable():
        skip = pytest.mark.skip(reason="no Docker engine reachable (set B00T_REQUIRE_DOCKER=1 to fail instead)")
        for item in items:
            if item.get_closest_marker("docker"):
                item.add_marker(skip)


_skipped_docker: list[str] = []
_ran_docker: list[str] = []
_skipped_other: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "docker" in report.keywords:
        if report.skipped:
            _skipped_docker.append(report.nodeid)
        elif report.when == "call":
            _ran_docker.append(report.nodeid)
    elif report.skipped:
        _skipped_other.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under B00T_REQUIRE_DOCKER=1 a skipped docker test fails the run: CI must test the real engine.

    Under B00T_EXPECT_NO_DOCKER=1 (CI's run with the engine hidden) the run fails unless every docker
    test skipped and no other test did: the suite must hold up on a machine without Docker.
    """
    def fail(why: str, nodeids: list[str]) -> None:
        print(f"\n{why}:")
        for nodeid in nodeids:
            print(f"  {nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

    if os.environ.get("B00T_REQUIRE_DOCKER") == "1" and _skipped_docker:
        fail(f"B00T_REQUIRE_DOCKER=1 but {len(_skipped_docker)} docker test(s) skipped", _skipped_docker)
    if os.environ.get("B00T_EXPECT_NO_DOCKER") == "1":
        if _ran_docker:
            fail(f"B00T_EXPECT_NO_DOCKER=1 but {len(_ran_docker)} docker test(s) ran", _ran_docker)
        elif not _skipped_docker:
            fail("B00T_EXPECT_NO_DOCKER=1 but no docker test was collected", [])
        if _skipped_other:
            fail(f"B00T_EXPECT_NO_DOCKER=1 but {len(_skipped_other)} non-docker test(s) skipped", _skipped_other)
