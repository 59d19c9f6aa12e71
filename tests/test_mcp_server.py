"""The MCP server driven as a client drives it: the SDK's client starts ``python -m b00t_graph mcp serve``.

Stdio tests run on asyncio and trio (the SDK's stdio client is anyio-only). Every service a test
starts is registered with the ``reaper`` fixture, so a failing test leaves no process behind.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult

from b00t_graph.mcpserver import mask, parse_http
from tests.procutil import (
    Reaper,
    alive,
    cli_env,
    free_port,
    process_datum,
    records,
    stack_datum,
    wait_for,
)

WriteDatums = Callable[..., Path]
pytestmark = pytest.mark.anyio
TOOLS = {"list_datums", "plan", "graph", "ensure", "status", "logs", "restart", "down"}


@pytest.fixture
def app(write_datums: WriteDatums, svc: Path, reaper: Reaper) -> Path:
    """db ← api ← app.stack, local processes serving HTTP with health checks."""
    db, api = free_port(), free_port()
    folder = write_datums({
        "db.process": process_datum("db", svc, port=db, env={"DB_URL": f"http://127.0.0.1:{db}"}),
        "api.process": process_datum("api", svc, "--boot=0.3", deps=["db.process"], port=api,
                                     env={"API_URL": f"http://127.0.0.1:{api}", "API_TOKEN": "s3cret"}),
        "app.stack": stack_datum("app", ["api.process"]),
    })
    reaper.down_on_exit(["app.stack"], folder)
    return folder


@asynccontextmanager
async def server(datums: Path, state_dir: Path, *options: str) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "b00t_graph", "mcp", "serve", "-d", str(datums), *options],
                                   env=cli_env(state_dir), cwd=str(state_dir.parent))
    with anyio.fail_after(90):
        async with Client(params) as client:
            yield client


def data(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def error(result: CallToolResult) -> str:
    assert result.is_error, result.structured_content
    return " ".join(getattr(c, "text", "") for c in result.content)


def get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return int(resp.status)


async def test_ensure_status_logs_down_over_stdio(app: Path, state_dir: Path) -> None:
    async with server(app, state_dir) as client:
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS
        progress: list[tuple[float, float | None, str | None]] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append((value, total, message))

        ensured = data(await client.call_tool("ensure", {"target": "app"}, progress_callback=on_progress))
        assert ensured["targets"] == ["app.stack"]
        assert set(ensured["started"]) == {"db.process", "api.process"}
        assert await anyio.to_thread.run_sync(get, ensured["env"]["API_URL"] + "/health") == 200
        assert ensured["env"]["API_TOKEN"] == "s3cret"  # ensure gives what a client connects with
        values = [v for v, _, _ in progress]
        assert values == sorted(values) and len(set(values)) == len(values)  # MCP: strictly increasing
        assert values[-1] == progress[-1][1] == 3  # every node done
        assert any(m and m.startswith("api.process ready") for _, _, m in progress)

        status = data(await client.call_tool("status", {"target": "app.stack"}))
        assert {n["id"]: n["state"] for n in status["nodes"]} == {
            "db.process": "running", "api.process": "running", "app.stack": "-"}
        assert sorted(status["started_here"]) == ["api.process", "db.process"]
        everything = data(await client.call_tool("status", {}))
        assert {p["node"] for p in everything["processes"] if p["alive"]} == {"db.process", "api.process"}

        logs = data(await client.call_tool("logs", {"node": "api.process", "tail": 5}))
        assert "api: serving on" in logs["lines"]

        plan = data(await client.call_tool("plan", {"target": "app"}))
        assert plan["env"]["API_TOKEN"] == "****"  # plan masks secrets
        assert [n["action"] for n in plan["nodes"]] == ["none", "none", "group"]

        # A second ensure leaves what runs alone.
        pids = {i: r["pid"] for i, r in records(state_dir).items()}
        again = data(await client.call_tool("ensure", {"target": "app.stack"}))
        assert again["started"] == [] and {i: r["pid"] for i, r in records(state_dir).items()} == pids

        downed = data(await client.call_tool("down", {"target": "app.stack"}))
        assert sorted(downed["stopped"]) == ["api.process", "db.process"]
    assert records(state_dir) == {}
    assert not any(alive(p) for p in pids.values())


async def test_restart_stops_one_node_and_brings_it_back(app: Path, state_dir: Path) -> None:
    async with server(app, state_dir) as client:
        data(await client.call_tool("ensure", {"target": "app"}))
        before = {i: r["pid"] for i, r in records(state_dir).items()}
        restarted = data(await client.call_tool("restart", {"node": "api"}))
        assert restarted["node"] == "api.process" and restarted["stopped"] and restarted["status"] == "ready"
        assert restarted["restarted"] == ["api.process"] and restarted["reprobed"] == []
        after = {i: r["pid"] for i, r in records(state_dir).items()}
        assert after["db.process"] == before["db.process"] and after["api.process"] != before["api.process"]
        # A dependency: its running dependent is probed again; with cascade, restarted after it.
        restarted = data(await client.call_tool("restart", {"node": "db"}))
        assert restarted["restarted"] == ["db.process"] and restarted["reprobed"] == ["api.process"]
        again = {i: r["pid"] for i, r in records(state_dir).items()}
        assert again["api.process"] == after["api.process"] and again["db.process"] != after["db.process"]
        restarted = data(await client.call_tool("restart", {"node": "db", "cascade": True}))
        assert restarted["restarted"] == ["db.process", "api.process"] and restarted["reprobed"] == []
        last = {i: r["pid"] for i, r in records(state_dir).items()}
        assert all(last[i] != again[i] for i in again)
        assert "restart" in error(await client.call_tool("restart", {"node": "app.stack"}))
        data(await client.call_tool("down", {"target": "app"}))


async def test_a_long_ensure_does_not_block_other_calls(write_datums: WriteDatums, svc: Path, state_dir: Path,
                                                          reaper: Reaper, tmp_path: Path) -> None:
    booted = tmp_path / "slow-may-finish-booting"  # slow boots until the test has made its other call
    slow = write_datums({"slow.process": process_datum("slow", svc, f"--wait-for={booted}", port=free_port(),
                                                       timeout_ms=120_000)})
    reaper.down_on_exit(["slow.process"], slow)
    async with server(slow, state_dir) as client:
        probing = anyio.Event()
        done = anyio.Event()

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            if message and "probing" in message:
                probing.set()

        async def ensure() -> None:
            data(await client.call_tool("ensure", {"target": "slow"}, progress_callback=on_progress))
            done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(ensure)
            await probing.wait()
            status = data(await client.call_tool("status", {"target": "slow"}))
            assert not done.is_set(), "status waited for the ensure"
            assert status["nodes"][0]["state"] == "not ready"  # started, not yet ready
            booted.touch()
        data(await client.call_tool("down", {"target": "slow"}))


async def test_read_only_refuses_what_changes(app: Path, state_dir: Path) -> None:
    async with server(app, state_dir, "--read-only") as client:
        for tool, args in (("ensure", {"target": "app"}), ("down", {"target": "app"}),
                           ("restart", {"node": "api"})):
            assert "read-only" in error(await client.call_tool(tool, args))
        assert data(await client.call_tool("plan", {"target": "app"}))["targets"] == ["app.stack"]
        assert data(await client.call_tool("status", {"target": "app"}))["nodes"][0]["state"] == "absent"
    assert records(state_dir) == {}


async def test_allow_limits_what_may_be_started(app: Path, state_dir: Path) -> None:
    async with server(app, state_dir, "--allow", "db.*") as client:
        msg = error(await client.call_tool("ensure", {"target": "app.stack"}))
        assert "app.stack refused: not matched by --allow db.*" in msg
        assert records(state_dir) == {}
        ensured = data(await client.call_tool("ensure", {"target": "db"}))  # a bare name, resolved to db.process
        assert ensured["started"] == ["db.process"]
        assert "refused" in error(await client.call_tool("down", {"target": "api"}))
        data(await client.call_tool("down", {"target": "db"}))


async def test_bad_datums_come_back_as_tool_errors(write_datums: WriteDatums, svc: Path, state_dir: Path) -> None:
    folder = write_datums({"ok.process": process_datum("ok", svc),
                           "broken.process": '[b00t]\nname = "broken"\ntype = "process"\nstop_grace_ms = "soon"\n',
                           "loop.stack": stack_datum("loop", ["loop.stack"]),
                           "grp.stack": stack_datum("grp", ["ok.process"])})
    async with server(folder, state_dir) as client:
        msg = error(await client.call_tool("ensure", {"target": "broken"}))
        assert "broken.process.toml: b00t.stop_grace_ms" in msg  # the CLI's message: file and key
        assert "a datum cannot depend on itself" in error(await client.call_tool("plan", {"target": "loop"}))
        assert "which no datum provides" in error(await client.call_tool("graph", {"target": "nope"}))
        assert "no logs; ask for one of: ok.process" in error(await client.call_tool("logs", {"node": "grp"}))
        listed = data(await client.call_tool("list_datums", {"type": "process"}))  # still serving
        assert [d["id"] for d in listed["datums"]] == ["ok.process"] and "broken.process" in listed["broken"]
        toml = await client.read_resource("datum://ok.process")
        assert 'name = "ok"' in getattr(toml.contents[0], "text", "")
        picture = data(await client.call_tool("graph", {"target": "ok"}))
        assert picture["mermaid"].startswith("graph LR")


async def test_down_on_exit_takes_down_what_the_server_started(app: Path, state_dir: Path, svc: Path,
                                                                write_datums: WriteDatums, reaper: Reaper) -> None:
    other_port = free_port()
    other = write_datums({"other.process": process_datum("other", svc, port=other_port)}, folder=app)
    reaper.down_on_exit(["other.process"], other)
    async with server(app, state_dir) as client:  # started before, by someone else: it stays
        data(await client.call_tool("ensure", {"target": "other"}))
    async with server(app, state_dir, "--down-on-exit") as client:
        data(await client.call_tool("ensure", {"target": "app"}))
        pids = {i: r["pid"] for i, r in records(state_dir).items()}
        assert set(pids) == {"db.process", "api.process", "other.process"}
    assert set(records(state_dir)) == {"other.process"}
    assert alive(pids["other.process"])
    assert not alive(pids["api.process"]) and not alive(pids["db.process"])


async def test_streamable_http(app: Path, state_dir: Path, reaper: Reaper) -> None:
    """The server runs on asyncio (uvicorn); the client on either backend."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "b00t_graph", "mcp", "serve", "-d", str(app), "--http",
                             str(port), "--down-on-exit"], env=cli_env(state_dir), cwd=state_dir.parent,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reaper.popens.append(proc)
    wait_for(lambda: _listening(port) or proc.poll() is not None, timeout=60, what="the HTTP server")
    assert proc.poll() is None, proc.communicate()
    with anyio.fail_after(60):
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            ensured = data(await client.call_tool("ensure", {"target": "app"}))
            assert await anyio.to_thread.run_sync(get, ensured["env"]["DB_URL"] + "/health") == 200
    proc.terminate()  # SIGTERM: --down-on-exit takes the stack down before the server exits
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, -15), err
    assert records(state_dir) == {}, err


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_mask_and_http_address() -> None:
    assert mask("OPENAI_API_KEY", "sk-1") == "****"
    assert mask("DB_PASSWORD", "x") == "****"
    assert mask("DB_URL", "postgres://me:pw@db:5432/x") == "postgres://me:****@db:5432/x"
    assert mask("QDRANT_URL", "http://localhost:6333") == "http://localhost:6333"
    assert parse_http("8080") == ("127.0.0.1", 8080)
    assert parse_http(":8080") == ("127.0.0.1", 8080)
    assert parse_http("0.0.0.0:9") == ("0.0.0.0", 9)
    assert parse_http("[::1]:9") == ("::1", 9)
    with pytest.raises(ValueError):
        parse_http("host:http")


def test_cli_rejects_a_bad_http_address(state_dir: Path) -> None:
    from tests.procutil import cli

    res = cli("mcp", "serve", "--http", "localhost:99999", state_dir=state_dir)
    assert res.returncode == 2 and "--http" in res.stderr and "Traceback" not in res.stderr

