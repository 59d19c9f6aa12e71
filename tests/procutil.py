"""Helpers for tests that run real local processes: a tiny service, datum text, free ports, cleanup.

Every test that starts a process takes a :class:`Reaper` (see the ``reaper`` fixtures): at teardown
it runs ``down`` on the graphs the test registered, then kills whatever pid is still recorded under
the test's state directory, and any pid the test handed it, so a failing test leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import anyio
import psutil

from b00t_graph import down_graph, load_graph
from benchmarks.benchlib import free_port as _free_port

#: A service on the standard library only. ``--mark FILE`` appends ``start NAME PID`` when it starts and
#: ``term NAME PID`` on SIGTERM; ``--exit N`` prints "boom" and exits N at once; ``--port`` serves
#: ``/health`` (``--status``) and ``/env`` after ``--boot`` seconds (and once ``--wait-for FILE`` exists:
#: a boot a test ends when it chooses, whatever the machine's load); without ``--port`` it just sleeps.
SERVICE = r'''
import argparse, json, os, signal, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("name")
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--boot", type=float, default=0.0)
ap.add_argument("--mark")
ap.add_argument("--ignore-term", action="store_true")
ap.add_argument("--exit", type=int)
ap.add_argument("--status", type=int, default=200)
ap.add_argument("--tag", default="")
ap.add_argument("--wait-for")
o = ap.parse_args()


def mark(what):
    if o.mark:
        with open(o.mark, "a") as fh:
            fh.write(f"{what} {o.name} {os.getpid()}\n")


def on_term(signum, frame):
    mark("term")
    if not o.ignore_term:
        sys.exit(0)


signal.signal(signal.SIGTERM, on_term)
mark("start")
print(f"{o.name}: starting", flush=True)
if o.exit is not None:
    print("boom", flush=True)
    sys.exit(o.exit)
time.sleep(o.boot)
while o.wait_for and not os.path.exists(o.wait_for):
    time.sleep(0.02)
if not o.port:
    while True:
        time.sleep(1)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/env":
            code, body = 200, json.dumps(dict(os.environ)).encode()
        else:
            code, body = o.status, b"ok\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", o.port), Handler)
print(f"{o.name}: serving on {o.port}", flush=True)
server.serve_forever()
'''


def write_service(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "svc.py"
    path.write_text(SERVICE)
    return path


_handed_out: set[int] = set()


def free_port() -> int:
    """A port free now and never handed out before in this test session (see ``benchlib.free_port``)."""
    return _free_port(_handed_out)


def q(text: str | Path) -> str:
    """A TOML basic string (JSON escapes are valid TOML)."""
    return json.dumps(str(text))


def process_datum(name: str, script: Path, *args: str, deps: Sequence[str] = (), port: int | None = None,
                  env: dict[str, str] | None = None, timeout_ms: int = 60_000, stop_grace_ms: int = 2_000,
                  probe: bool = True) -> str:
    """TOML for ``<name>.process`` running ``script name [--port P] args...``.

    With a port (and ``probe``), readiness is an HTTP probe of ``/health`` on it.
    """
    argv = [str(script), name, *([f"--port={port}"] if port else []), *args]
    lines = ["[b00t]", f"name = {q(name)}", 'type = "process"',
             f"command = [{q(sys.executable)}]", "args = [" + ", ".join(q(a) for a in argv) + "]",
             f"stop_grace_ms = {stop_grace_ms}"]
    if deps:
        lines.append("depends_on = [" + ", ".join(q(d) for d in deps) + "]")
    if port and probe:
        lines += ["[b00t.health_check]", f'http_url = "http://127.0.0.1:{port}/health"',
                  f"timeout_ms = {timeout_ms}", "interval_ms = 100"]
    if env:
        lines.append("[b00t.env]")
        lines += [f"{k} = {q(v)}" for k, v in env.items()]
    return "\n".join(lines) + "\n"


def stack_datum(name: str, members: Iterable[str]) -> str:
    return f'[b00t]\nname = {q(name)}\ntype = "stack"\nmembers = [' + ", ".join(q(m) for m in members) + "]\n"


def records(state_dir: Path) -> dict[str, dict[str, Any]]:
    """node id → its process record, as the process runtime wrote it."""
    out = {}
    for path in sorted((state_dir / "process").glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            rec = json.loads(path.read_text())
            out[str(rec["node"])] = rec
    return out


def marks(path: Path) -> list[tuple[str, str, int]]:
    """The ``(what, name, pid)`` lines services appended to a mark file."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        what, name, pid = line.split()
        out.append((what, name, int(pid)))
    return out


def alive(pid: int, create_time: float | None = None) -> bool:
    """The process runs (a zombie does not count); with ``create_time``, it is that very process."""
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 0.05:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.01)
    return not alive(pid)


async def cancel_once_recorded(scope: anyio.CancelScope, state_dir: Path, node: str) -> None:
    """Cancel ``scope`` as soon as ``node``'s process record exists (its service started), however long
    that takes on this machine: a fixed delay is either too short under load or wastes time."""
    with anyio.fail_after(60):
        while node not in records(state_dir):
            await anyio.sleep(0.01)
    scope.cancel()


# Waits are generous: they bound a failure, and a loaded 2-core machine can take seconds to start a Python.
def wait_for(predicate: Callable[[], object], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def kill(pid: int, create_time: float | None = None) -> None:
    """SIGKILL ``pid``'s process group (or the pid alone) if it is still the process we mean."""
    if not alive(pid, create_time):
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    wait_gone(pid, 2.0)


def cli(*args: str, state_dir: Path, env: dict[str, str] | None = None, backend: str = "asyncio",
        timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run ``python -m b00t_graph ARGS`` in a real subprocess (never a terminal), B00T_DEBUG unset."""
    return subprocess.run([sys.executable, "-m", "b00t_graph", *args], capture_output=True, text=True,
                          env=cli_env(state_dir, backend, env), timeout=timeout, check=False,
                          cwd=state_dir.parent)


def cli_popen(*args: str, state_dir: Path, backend: str = "asyncio") -> subprocess.Popen[str]:
    """Start ``python -m b00t_graph ARGS`` without waiting (for signals and concurrency)."""
    return subprocess.Popen([sys.executable, "-m", "b00t_graph", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env(state_dir, backend),
                            cwd=state_dir.parent)


def cli_env(state_dir: Path, backend: str = "asyncio", extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("B00T_DEBUG", "_B00T_Path")}
    env.update({"B00T_GRAPH_STATE_DIR": str(state_dir), "B00T_BACKEND": backend, "COLUMNS": "200"})
    env.update(extra or {})
    return env


def _argv_has(pid: int, needle: str) -> bool:
    try:
        return any(needle in arg for arg in psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


class Reaper:
    """Leaves no process behind: ``down`` on every registered graph, then SIGKILL to what remains."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.downs: list[tuple[tuple[str, ...], tuple[Path, ...]]] = []
        self.pids: list[int] = []
        self.popens: list[subprocess.Popen[str]] = []
        self.mark_files: list[Path] = []

    def down_on_exit(self, targets: Sequence[str], datums: Path | Sequence[Path]) -> None:
        folders = (datums,) if isinstance(datums, Path) else tuple(datums)
        self.downs.append((tuple(targets), folders))

    def cleanup(self) -> list[int]:
        """Return the pids that were still alive after ``down`` (a test may assert there are none)."""
        for popen in self.popens:
            if popen.poll() is None:
                popen.kill()
            popen.communicate(timeout=120)
        before = records(self.state_dir)
        for targets, folders in self.downs:
            with contextlib.suppress(Exception):  # a broken down must not stop the killing below
                graph = load_graph(targets, list(folders))
                anyio.run(functools.partial(down_graph, graph, state_dir=self.state_dir), backend="asyncio")
        leaked = []
        recs = {**before, **records(self.state_dir)}
        for rec in recs.values():
            pid, created = int(rec["pid"]), float(rec["create_time"])
            if alive(pid, created):
                leaked.append(pid)
                kill(pid, created)
        for mark_file in self.mark_files:
            for _, _, pid in marks(mark_file):
                if alive(pid) and _argv_has(pid, str(mark_file)):  # not a reused pid
                    leaked.append(pid)
                    kill(pid)
        for pid in self.pids:
            kill(pid)
        return leaked
