"""MCP datums for real: a lifecycle server started as a managed process and waited on by TCP, a
loopback httpstream server probed, ``mcp-config`` JSON parsed and its stdio command started, and a
port held by a foreign listener failing the node at once. Datums are written in b00t's own shape.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from b00t_graph import ensure, load_graph
from b00t_graph.errors import PortInUse, UpFailed
from b00t_graph.mcpconfig import McpConfigError, launch_specs, mcp_servers
from tests.procutil import Reaper, cli, free_port, q, wait_for

WriteDatums = Callable[..., Path]
PY = sys.executable

#: A TCP server: after --boot seconds it listens on --port, writes its env's MCP_TOKEN to --out, answers "ok".
TCP_SERVER = r'''
import argparse, os, socket, time
ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--boot", type=float, default=0.0)
ap.add_argument("--out", required=True)
o = ap.parse_args()
time.sleep(o.boot)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", o.port))
s.listen()
with open(o.out, "w") as fh:
    fh.write(os.environ.get("MCP_TOKEN", "<unset>"))
while True:
    c, _ = s.accept()
    c.sendall(b"ok\n")
    c.close()
'''

#: A stdio server: answers one JSON-RPC request per line, echoing the env a client must have passed.
STDIO_SERVER = r'''
import json, os, sys
for line in sys.stdin:
    req = json.loads(line)
    res = {"protocolVersion": "2025-06-18", "serverInfo": {"name": "tools", "version": "1"},
           "capabilities": {}, "env": {k: os.environ.get(k) for k in ("BASE_URL", "TOOLS_MODE", "MCP_TOKEN")}}
    print(json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": res}), flush=True)
'''


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    d = tmp_path / "bin"
    d.mkdir()
    (d / "tcp_server.py").write_text(TCP_SERVER)
    (d / "stdio_server.py").write_text(STDIO_SERVER)
    return d


def mcp_datums(scripts: Path, port: int, out: Path, boot: float = 0.3) -> dict[str, str]:
    return {
        "base.api": '[b00t]\nname = "base"\ntype = "api"\n[b00t.env]\nBASE_URL = "http://127.0.0.1:9/base"\n',
        "tools.mcp": f"""[b00t]
name = "tools"
type = "mcp"
depends_on = ["base.api"]

[[b00t.mcp.stdio]]
command = {q(PY)}
args = [{q(scripts / "stdio_server.py")}]
env = {{ TOOLS_MODE = "test" }}
priority = 0

[[b00t.mcp.httpstream]]
url = "http://127.0.0.1:{port}/mcp"
priority = 10

[b00t.mcp.lifecycle]
idle_timeout_secs = 600

[[b00t.mcp.lifecycle.servers]]
command = {q(PY)}
args = [{q(scripts / "tcp_server.py")}, "--port", "{port}", "--boot", "{boot}", "--out", {q(out)}]
env = {{ MCP_TOKEN = "s3cret" }}
health_check = {{ type = "tcp_port", port = {port} }}
""",
    }


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture
def foreign_listener() -> Iterator[tuple[int, socket.socket]]:
    """A port held by something that is not b00t-graph's: this test process."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    try:
        yield s.getsockname()[1], s
    finally:
        s.close()


@pytest.mark.anyio
async def test_lifecycle_server_starts_waits_on_its_port_and_ensure_gives_the_launch_spec(
        write_datums: WriteDatums, scripts: Path, state_dir: Path, reaper: Reaper, tmp_path: Path) -> None:
    port, out = free_port(), tmp_path / "token.txt"
    folder = write_datums(mcp_datums(scripts, port, out))
    reaper.down_on_exit(["tools.mcp"], folder)
    graph = load_graph(["tools.mcp"], folder)
    assert graph.nodes["tools.mcp"].runtime == "process"
    t0 = time.monotonic()
    env = await ensure("tools.mcp", datums=folder, state_dir=state_dir)
    spent = time.monotonic() - t0
    assert port_open(port)  # ensure returned only once the TCP probe passed, after the 0.3 s boot
    assert spent >= 0.3
    assert out.read_text() == "s3cret"  # run_env reached the server
    # still a plain env dict
    assert isinstance(env, dict) and env["BASE_URL"] == "http://127.0.0.1:9/base"
    assert "MCP_TOKEN" not in env  # run_env is the server's, never exported
    spec = env.mcp["tools.mcp"]
    assert spec.transport == "stdio" and spec.command == PY
    assert spec.env["BASE_URL"] == "http://127.0.0.1:9/base" and spec.env["TOOLS_MODE"] == "test"
    # idempotent: the port is held by the node's own process, which is left alone
    again = await ensure("tools.mcp", datums=folder, state_dir=state_dir, transport="httpstream")
    assert again.mcp["tools.mcp"].url == f"http://127.0.0.1:{port}/mcp"
    assert again.mcp["tools.mcp"].client_entry() == {"type": "http", "url": f"http://127.0.0.1:{port}/mcp"}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_mcp_config_up_prints_json_whose_stdio_command_serves(write_datums: WriteDatums, scripts: Path,
                                                               state_dir: Path, reaper: Reaper, tmp_path: Path,
                                                               backend: str) -> None:
    port, out = free_port(), tmp_path / "token.txt"
    folder = write_datums(mcp_datums(scripts, port, out, boot=0.0))
    reaper.down_on_exit(["tools.mcp"], folder)
    proc = cli("mcp-config", "tools", "--up", "-d", str(folder), state_dir=state_dir, backend=backend)
    assert proc.returncode == 0, proc.stderr
    assert port_open(port)  # --up brought the lifecycle server up first
    config = json.loads(proc.stdout)
    entry = config["mcpServers"]["tools"]
    assert entry["command"] == PY and entry["args"] == [str(scripts / "stdio_server.py")]
    assert entry["env"]["BASE_URL"] == "http://127.0.0.1:9/base"  # the dependency's export
    # start the server the way an MCP client does, and talk to it
    server = subprocess.Popen([entry["command"], *entry["args"]], env={"PATH": "/usr/bin:/bin", **entry["env"]},
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdin is not None and server.stdout is not None
        server.stdin.write(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}})
            + "\n")
        server.stdin.flush()
        reply = json.loads(server.stdout.readline())
    finally:
        server.kill()
        server.communicate(timeout=120)
    assert reply["id"] == 1
    assert reply["result"]["env"] == {"BASE_URL": "http://127.0.0.1:9/base", "TOOLS_MODE": "test",
                                      "MCP_TOKEN": None}
    # --transport, and without --up: the same servers, nothing started
    http = cli("mcp-config", "tools", "--transport", "httpstream", "-d", str(folder), state_dir=state_dir)
    assert json.loads(http.stdout) == {"mcpServers": {"tools": {"type": "http",
                                                                "url": f"http://127.0.0.1:{port}/mcp"}}}
    bad = cli("mcp-config", "base", "-d", str(folder), state_dir=state_dir)
    assert bad.returncode == 2 and "base.api" in bad.stderr and "not an MCP server" in bad.stderr


@pytest.mark.anyio
async def test_a_port_held_by_another_program_fails_the_node_at_once(
        write_datums: WriteDatums, scripts: Path, state_dir: Path, reaper: Reaper, tmp_path: Path,
        foreign_listener: tuple[int, socket.socket]) -> None:
    port, _ = foreign_listener
    folder = write_datums(mcp_datums(scripts, port, tmp_path / "token.txt"))
    reaper.down_on_exit(["tools.mcp"], folder)
    t0 = time.monotonic()
    with pytest.raises(UpFailed) as info:
        await ensure("tools.mcp", datums=folder, state_dir=state_dir)
    spent = time.monotonic() - t0
    err = info.value.failures["tools.mcp"]
    assert isinstance(err, PortInUse)
    assert f"port {port} is in use by another program" in str(err)
    assert "pid" in str(err)  # this test process, named
    assert spent < 30  # at once, not after the probe's 60 s
    assert not (tmp_path / "token.txt").exists()  # nothing was started


def test_a_loopback_httpstream_server_is_probed_any_answer_counts(write_datums: WriteDatums, svc: Path,
                                                                  state_dir: Path, reaper: Reaper) -> None:
    port = free_port()
    folder = write_datums({"remote-ish.mcp": f"""[b00t]
name = "remote-ish"
type = "mcp"
[[b00t.mcp.httpstream]]
url = "http://127.0.0.1:{port}/mcp"
"""})
    graph = load_graph(["remote-ish.mcp"], folder)
    assert graph.nodes["remote-ish.mcp"].runtime == "probe"
    # something not ours serves it, answering 404 to everything: an HTTP answer is all a probe needs
    server = subprocess.Popen([PY, str(svc), "other", f"--port={port}", "--status=404"])
    reaper.pids.append(server.pid)
    try:
        wait_for(lambda: port_open(port), what="the foreign server")
        plan = cli("plan", "remote-ish", "-d", str(folder), "--json", state_dir=state_dir)
        (node,) = json.loads(plan.stdout)["nodes"]
        assert node["action"] == "probe" and node["readiness"] == [f"http http://127.0.0.1:{port}/mcp → any response"]
        up = cli("up", "remote-ish", "-d", str(folder), state_dir=state_dir)
        assert up.returncode == 0, up.stderr
        down = cli("down", "remote-ish", "-d", str(folder), state_dir=state_dir)
        assert down.returncode == 0
        assert server.poll() is None  # a probe stops nothing
    finally:
        server.kill()
        server.wait(timeout=30)


def test_launch_specs_pick_the_lowest_priority_and_explain_a_missing_transport(write_datums: WriteDatums,
                                                                              scripts: Path, tmp_path: Path) -> None:
    folder = write_datums(mcp_datums(scripts, 1, tmp_path / "o"))
    (folder / "only.mcp.toml").write_text('[b00t]\nname = "only"\ntype = "mcp"\n[[b00t.mcp.stdio]]\n'
                                          'command = "x"\npriority = 3\n[[b00t.mcp.stdio]]\ncommand = "y"\n'
                                          'priority = 1\n')
    (folder / "both.stack.toml").write_text('[b00t]\nname = "both"\ntype = "stack"\n'
                                            'members = ["tools.mcp", "only.mcp", "base.api"]\n')
    graph = load_graph(["both.stack"], folder, environ={})
    specs = launch_specs(graph)
    assert list(specs) == ["tools.mcp", "only.mcp"]  # the stack's mcp members
    assert specs["only.mcp"].command == "y"
    assert set(mcp_servers(specs)["mcpServers"]) == {"tools", "only"}
    with pytest.raises(McpConfigError, match=r"only.mcp .* has no httpstream entry \(it has: stdio\)"):
        launch_specs(graph, "httpstream")
