"""Presence checks (cli datums' ``version``/``version_regex``), for real: the commands run.

Through the CLI as a real subprocess (datums written in b00t's own shape, read by the dialects),
and through the runtime directly on asyncio and trio.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from b00t_graph.errors import PresenceError
from b00t_graph.graph import Node
from b00t_graph.model import Datum, Presence
from b00t_graph.runtimes import Action, decide
from b00t_graph.runtimes.presence import PresenceRuntime
from tests.procutil import cli, q

WriteDatums = Callable[..., Path]
BACKENDS = ["asyncio", "trio"]
PY = sys.executable


def cli_datum(name: str, version: str, regex: str | None = None, install: str | None = None) -> str:
    lines = ["[b00t]", f"name = {q(name)}", 'type = "cli"', f"version = {q(version)}"]
    if regex is not None:
        lines.append(f"version_regex = {q(regex)}")
    if install is not None:
        lines.append(f"install = {q(install)}")
    return "\n".join(lines) + "\n"


def node(command: tuple[str, ...], regex: str | None = None, install: str | None = None,
         path: str = "/tmp/x.cli.toml", timeout_ms: int = 10_000) -> Node:
    datum = Datum(name="x", type="cli", path=path, kind="presence", install=install,
                  presence=Presence(command=command, regex=regex, install=install, timeout_ms=timeout_ms))
    return Node(spec=datum, deps=(), env={}, exports={}, health=None, config_hash="h")


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_presence_passes_for_an_installed_command(write_datums: WriteDatums, state_dir: Path,
                                                      backend: str) -> None:
    folder = write_datums({"python.cli": cli_datum("python", f"{shlex.quote(PY)} --version",
                                                   r"Python (\d+\.\d+\.\d+)", "apt-get install -y python3")})
    plan = cli("plan", "python.cli", "-d", str(folder), "--json", state_dir=state_dir, backend=backend)
    assert plan.returncode == 0, plan.stderr
    (n,) = json.loads(plan.stdout)["nodes"]
    assert n["runtime"] == "presence" and n["action"] == "check"
    t0 = time.monotonic()
    up = cli("up", "python.cli", "-d", str(folder), "--timings-json", str(state_dir.parent / "t.json"),
             state_dir=state_dir, backend=backend)
    spent = time.monotonic() - t0
    assert up.returncode == 0, up.stderr
    version = ".".join(map(str, sys.version_info[:3]))
    timings = json.loads((state_dir.parent / "t.json").read_text())
    text = json.dumps(timings)
    assert f"present, version {version}" in text, text
    assert spent < 60  # bounded: a presence check never waits on a prompt or a pager
    status = cli("status", "python.cli", "-d", str(folder), "--json", state_dir=state_dir, backend=backend)
    assert status.returncode == 0, status.stderr
    assert f"version {version}" in json.loads(status.stdout)["python.cli"]["detail"]
    down = cli("down", "python.cli", "-d", str(folder), state_dir=state_dir, backend=backend)
    assert down.returncode == 0 and "stopped 0 node(s)" in down.stderr, down.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_presence_fails_with_the_install_hint(write_datums: WriteDatums, state_dir: Path, backend: str) -> None:
    folder = write_datums({
        "nosuch.cli": cli_datum("nosuch", "b00tgt-no-such-tool --version", r"(\d+\.\d+)",
                                "cargo install b00tgt-no-such-tool"),
        "app.stack": '[b00t]\nname = "app"\ntype = "stack"\nmembers = ["nosuch.cli"]\n',
    })
    up = cli("up", "app", "-d", str(folder), state_dir=state_dir, backend=backend)
    assert up.returncode == 1, up.stderr
    assert "Traceback" not in up.stderr
    assert "nosuch.cli" in up.stderr and "b00tgt-no-such-tool" in up.stderr
    assert "not installed" in up.stderr
    assert "install it with: cargo install b00tgt-no-such-tool" in up.stderr
    assert "app.stack" in up.stderr  # skipped: its member failed


def test_install_missing_runs_the_install_command_then_checks_again(write_datums: WriteDatums,
                                                                    state_dir: Path) -> None:
    # the "install" writes the tool into the datum's folder; the check runs it from there
    install = "mkdir -p bin && printf '#!/bin/sh\\necho mytool version 4.5.6\\n' > bin/mytool && chmod +x bin/mytool"
    folder = write_datums({"mytool.cli": cli_datum("mytool", "./bin/mytool --version", r"version (\S+)", install)})
    first = cli("up", "mytool.cli", "-d", str(folder), state_dir=state_dir)
    assert first.returncode == 1 and "install it with: mkdir -p bin" in first.stderr, first.stderr
    assert not (folder / "bin").exists()  # never installed unless asked
    second = cli("up", "mytool.cli", "-d", str(folder), "--install-missing", state_dir=state_dir)
    assert second.returncode == 0, second.stderr
    assert (folder / "bin" / "mytool").exists()
    assert "present, version 4.5.6" in second.stderr
    log = (state_dir / "presence" / "mytool.cli.log").read_text()
    assert "$ mkdir -p bin" in log


def test_install_that_fails_shows_its_output(write_datums: WriteDatums, state_dir: Path) -> None:
    folder = write_datums({"bad.cli": cli_datum("bad", "b00tgt-missing-tool", None,
                                                "echo cannot reach the mirror >&2; exit 3")})
    up = cli("up", "bad.cli", "-d", str(folder), "--install-missing", state_dir=state_dir)
    assert up.returncode == 1
    assert "exited 3" in up.stderr and "cannot reach the mirror" in up.stderr, up.stderr


# --- the runtime directly, both backends -----------------------------------------------------------


@pytest.mark.anyio
async def test_match_mismatch_timeout_and_shell(tmp_path: Path) -> None:
    rt = PresenceRuntime(state_dir=tmp_path)
    path = str(tmp_path / "x.cli.toml")
    ok = node((PY, "-c", "import sys; print('tool 1.2.3', file=sys.stderr)"), r"tool (\d+\.\d+\.\d+)", path=path)
    assert decide(ok, None) is Action.CHECK
    assert (await rt.wait_ready(ok)).startswith("present, version 1.2.3")
    observed = await rt.observe([ok])
    assert "version 1.2.3" in observed[ok.id].detail

    mismatch = node((PY, "-c", "print('tool 0.9')"), r"tool (2\.\d+)", install="pip install tool", path=path)
    with pytest.raises(PresenceError) as info:
        await rt.wait_ready(mismatch)
    msg = str(info.value)
    assert "no match for /tool (2\\.\\d+)/" in msg and "'tool 0.9'" in msg and "pip install tool" in msg

    slow = node((PY, "-c", "import time; time.sleep(30)"), None, path=path, timeout_ms=300)
    t0 = time.monotonic()
    with pytest.raises(PresenceError, match=r"did not finish within 0\.3s"):
        await rt.wait_ready(slow)
    assert time.monotonic() - t0 < 20  # stopped at its 0.3 s timeout, not after its 30 s

    shell = node(("sh", "-c", "echo abc | tr a-c x-z"), "xyz", path=path)
    assert (await rt.wait_ready(shell)).startswith("present, version xyz")
    gone = node(("sh", "-c", "b00tgt-not-a-command | cat"), r"version \d", install="make install", path=path)
    with pytest.raises(PresenceError, match="make install"):
        await rt.wait_ready(gone)
    failing = node((PY, "-c", "import sys; sys.exit(2)"), None, path=path)
    with pytest.raises(PresenceError, match="exited 2"):
        await rt.wait_ready(failing)
