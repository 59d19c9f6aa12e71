"""Embedding: ``ensure()`` and ``running()`` with real local processes, under asyncio and trio."""

from __future__ import annotations

import asyncio
import functools
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
import trio

from b00t_graph import (
    B00tGraphError,
    MissingDependencyError,
    NodeExited,
    UpFailed,
    ensure,
    running,
)
from tests.procutil import (
    Reaper,
    alive,
    cancel_once_recorded,
    free_port,
    marks,
    process_datum,
    records,
    stack_datum,
    wait_for,
    wait_gone,
)

WriteDatums = Callable[..., Path]


@pytest.fixture
def app(write_datums: WriteDatums, svc: Path, tmp_path: Path, reaper: Reaper) -> Path:
    """db ← app ← app.stack; each service appends to ``tmp_path/marks`` when it starts."""
    mark = tmp_path / "marks"
    reaper.mark_files.append(mark)
    db, web = free_port(), free_port()
    folder = write_datums({
        "db.process": process_datum("db", svc, f"--mark={mark}", "--boot=0.2", port=db,
                                    env={"DB_URL": f"http://127.0.0.1:{db}"}),
        "app.process": process_datum("app", svc, f"--mark={mark}", deps=["db.process"], port=web,
                                     env={"APP_URL": f"http://127.0.0.1:{web}", "APP_DB": "${DB_URL}/data"}),
        "app.stack": stack_datum("app", ["app.process"]) + '[b00t.env]\nAPP_HOME = "${APP_URL}/home"\n',
    })
    reaper.down_on_exit(["app.stack"], folder)
    return folder


def check_env(env: dict[str, str]) -> None:
    db = env["DB_URL"]
    assert db.startswith("http://127.0.0.1:")
    assert env["APP_DB"] == db + "/data"  # a dependency's export, substituted
    assert env["APP_HOME"] == env["APP_URL"] + "/home"  # the target's own
    with urllib.request.urlopen(env["APP_URL"] + "/env", timeout=30) as resp:
        seen = json.loads(resp.read())
    assert seen["DB_URL"] == db and seen["APP_DB"] == db + "/data"


def test_ensure_under_asyncio_run_returns_the_env(app: Path, state_dir: Path) -> None:
    env = asyncio.run(ensure("app.stack", datums=app, state_dir=state_dir))
    check_env(env)
    assert set(records(state_dir)) == {"db.process", "app.process"}


def test_ensure_under_trio_run_returns_the_env(app: Path, state_dir: Path) -> None:
    env = trio.run(functools.partial(ensure, "app.stack", datums=[app], state_dir=state_dir))
    check_env(env)
    # A second ensure leaves what runs alone.
    pids = {i: r["pid"] for i, r in records(state_dir).items()}
    assert trio.run(functools.partial(ensure, "app.stack", datums=app, state_dir=state_dir)) == env
    assert {i: r["pid"] for i, r in records(state_dir).items()} == pids


def test_ensure_uses_the_default_state_dir(app: Path, state_dir: Path) -> None:
    # The `state_dir` fixture sets $B00T_GRAPH_STATE_DIR; ensure() without state_dir= must honour it.
    asyncio.run(ensure("app.stack", datums=app))
    assert set(records(state_dir)) == {"db.process", "app.process"}


@pytest.mark.anyio
async def test_two_concurrent_ensures_start_each_node_once(app: Path, state_dir: Path, tmp_path: Path) -> None:
    envs: list[dict[str, str]] = []

    async def one() -> None:
        envs.append(await ensure("app.stack", datums=app, state_dir=state_dir))

    async with anyio.create_task_group() as tg:
        tg.start_soon(one)
        tg.start_soon(one)
    assert len(envs) == 2 and envs[0] == envs[1]
    check_env(envs[0])
    started = sorted(name for what, name, _ in marks(tmp_path / "marks") if what == "start")
    assert started == ["app", "db"]


@pytest.mark.anyio
async def test_ensure_raises_a_typed_error_naming_the_failed_node(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reaper: Reaper) -> None:
    folder = write_datums({
        "bad.process": process_datum("bad", svc, "--exit=3", port=free_port()),
        "top.stack": stack_datum("top", ["bad.process"]),
    })
    reaper.down_on_exit(["top.stack"], folder)
    with pytest.raises(UpFailed) as info:
        await ensure("top.stack", datums=folder, state_dir=state_dir)
    err = info.value
    assert isinstance(err, B00tGraphError) and err.exit_code == 1
    assert isinstance(err.failures["bad.process"], NodeExited)
    assert err.skipped == {"top.stack": "dependency bad.process failed"}
    assert "bad.process" in str(err) and "boom" in str(err)


@pytest.mark.anyio
async def test_ensure_raises_input_error_for_an_unknown_target(write_datums: WriteDatums, state_dir: Path) -> None:
    folder = write_datums({"app.stack": stack_datum("app", [])})
    with pytest.raises(MissingDependencyError) as info:
        await ensure("ap.stack", datums=folder, state_dir=state_dir)
    assert info.value.exit_code == 2 and "'ap.stack'" in str(info.value)


@pytest.mark.anyio
async def test_running_brings_up_and_takes_down(app: Path, state_dir: Path) -> None:
    async with running("app.stack", datums=app, state_dir=state_dir) as env:
        check_env(env)
        recs = records(state_dir)
        pids = [int(r["pid"]) for r in recs.values()]
        assert len(pids) == 2 and all(alive(p) for p in pids)
    assert all(wait_gone(p) for p in pids)
    assert records(state_dir) == {}


@pytest.mark.anyio
async def test_running_takes_down_when_the_body_raises(app: Path, state_dir: Path) -> None:
    pids: list[int] = []
    with pytest.raises(ZeroDivisionError):
        async with running("app.stack", datums=app, state_dir=state_dir):
            pids += [int(r["pid"]) for r in records(state_dir).values()]
            1 / 0  # noqa: B018
    assert len(pids) == 2 and all(wait_gone(p) for p in pids)
    assert records(state_dir) == {}


@pytest.mark.anyio
async def test_running_takes_down_what_started_when_up_fails(
        write_datums: WriteDatums, svc: Path, state_dir: Path, tmp_path: Path, reaper: Reaper) -> None:
    mark = tmp_path / "marks"
    reaper.mark_files.append(mark)
    folder = write_datums({
        "ok.process": process_datum("ok", svc, f"--mark={mark}", port=free_port()),
        "bad.process": process_datum("bad", svc, "--exit=3", deps=["ok.process"], port=free_port()),
    })
    reaper.down_on_exit(["bad.process"], folder)
    with pytest.raises(UpFailed):
        async with running("bad.process", datums=folder, state_dir=state_dir):
            pytest.fail("the body must not run when up failed")
    wait_for(lambda: marks(mark), what="ok to have started")
    ((_, _, pid),) = [m for m in marks(mark) if m[0] == "start"]
    assert wait_gone(pid)
    assert records(state_dir) == {}


@pytest.mark.anyio
async def test_ensure_is_cancellable_and_leaves_a_record(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reaper: Reaper) -> None:
    folder = write_datums({"slow.process": process_datum("slow", svc, "--boot=30", port=free_port())})
    reaper.down_on_exit(["slow.process"], folder)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_once_recorded, scope, state_dir, "slow.process")
            await ensure("slow.process", datums=folder, state_dir=state_dir)
    assert scope.cancelled_caught
    assert set(records(state_dir)) == {"slow.process"}

