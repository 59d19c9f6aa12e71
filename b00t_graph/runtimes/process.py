"""Local processes as services: started detached so they outlive the CLI, like containers.

Each node has a record ``<state>/process/<id>.json`` (pid, the process's start
time, config hash, argv) and a log ``<id>.log``. The start time makes pid
reuse harmless: a pid whose process started at another time is not ours,
and a record whose pid is gone is stale.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import psutil

from ..errors import NodeExited, StartError, StopError
from ..events import Reporter, Silent
from ..graph import Node
from ..locks import default_state_dir, safe_name
from ..readiness import wait_ready
from . import Action, Observed, State
from .ports import check_free, probe_ports

if TYPE_CHECKING:
    from ..inventory import Managed

#: How long a process without a readiness probe must stay up to count as started.
SETTLE = 0.2


class ProcessRuntime:
    """The ``process`` datum type: ``command`` + ``args`` in ``cwd`` (default: the datum's folder)."""

    name = "process"
    prepares = False  # nothing to fetch ahead: a command starts as it is

    def __init__(self, *, state_dir: Path | None = None, reporter: Reporter | None = None, **_: object) -> None:
        self.dir = (state_dir or default_state_dir()) / "process"
        self.reporter = reporter or Silent()
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # --- records ----------------------------------------------------------------------------------

    def _record_path(self, ident: str) -> Path:
        return self.dir / f"{safe_name(ident)}.json"

    def log_path(self, ident: str) -> Path:
        return self.dir / f"{safe_name(ident)}.log"

    def _read(self, ident: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self._record_path(ident).read_text())
            return data
        except (OSError, ValueError):
            return None

    @staticmethod
    def _live(rec: dict[str, Any]) -> psutil.Process | None:
        """The recorded process if it still runs and is the same one (same start time)."""
        try:
            proc = psutil.Process(int(rec["pid"]))
            if abs(proc.create_time() - float(rec["create_time"])) > 0.05:
                return None  # the pid was reused by another process
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (psutil.Error, KeyError, ValueError, TypeError):
            return None

    async def observe(self, nodes: Sequence[Node]) -> dict[str, Observed]:
        out: dict[str, Observed] = {}
        for node in nodes:
            rec = self._read(node.id)
            if rec is None:
                out[node.id] = Observed(State.ABSENT)
                continue
            h = rec.get("config_hash")
            if self._live(rec) is not None:
                since = time.strftime("%H:%M:%S", time.localtime(float(rec["create_time"])))
                out[node.id] = Observed(State.RUNNING, h, str(rec["pid"]), f"pid {rec['pid']} since {since}")
            else:
                out[node.id] = Observed(State.STOPPED, h, str(rec.get("pid")),
                                        f"pid {rec.get('pid')} no longer runs (stale record)")
        return out

    async def prepare(self, node: Node, action: Action) -> None:
        return None

    # --- start ------------------------------------------------------------------------------------

    def _argv(self, node: Node) -> list[str]:
        return [*(node.spec.command or ()), *node.spec.args]

    def _cwd(self, node: Node) -> Path:
        base = Path(node.spec.path).parent
        return (base / Path(node.spec.cwd).expanduser()) if node.spec.cwd else base

    def _env(self, node: Node) -> dict[str, str]:
        # run_env (e.g. an mcp lifecycle server's env) is for the service only: set here, never exported
        return {**os.environ, **node.env, **node.spec.run_env, "B00T_NODE": node.id}

    async def start(self, node: Node, observed: Observed, action: Action) -> Observed:
        if observed.state is State.RUNNING:
            await self.stop(node, observed)
        # Its own process is stopped by now: whatever holds a port its probes name is another program.
        check_free(node.id, probe_ports(node.health))
        self.dir.mkdir(parents=True, exist_ok=True)
        argv = self._argv(node)
        log = self.log_path(node.id)
        try:
            with open(log, "wb") as out:
                # start_new_session: the service gets its own process group, so Ctrl-C in the
                # terminal that ran `up` does not reach it, and `down` can signal the whole group.
                child = subprocess.Popen(argv, cwd=self._cwd(node), env=self._env(node), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            raise StartError(node.id, f"cannot run {argv[0]!r}: {exc.strerror or exc}") from None
        self._children[node.id] = child
        # Reap the child when it ends (no zombie in a long-lived host) without holding the CLI open.
        threading.Thread(target=child.wait, name=f"reap-{child.pid}", daemon=True).start()
        try:
            created = psutil.Process(child.pid).create_time()
        except psutil.Error:
            created = 0.0  # already gone; alive() reports it with the log tail
        rec = {"pid": child.pid, "create_time": created, "config_hash": node.config_hash, "argv": argv,
               "cwd": str(self._cwd(node)), "log": str(log), "node": node.id}
        tmp = self._record_path(node.id).with_suffix(".tmp")
        tmp.write_text(json.dumps(rec))
        tmp.replace(self._record_path(node.id))
        return Observed(State.RUNNING, node.config_hash, str(child.pid), f"pid {child.pid}")

    # --- readiness (ProbeHost) -------------------------------------------------------------------

    async def wait_ready(self, node: Node) -> str:
        child = self._children.get(node.id)
        if child is not None and (node.health is None or not node.health.probes()):
            # Without a probe, "started" is all there is to wait for; a short settle time still
            # catches the common failure of a command that exits at once (bad flag, missing file).
            deadline = anyio.current_time() + SETTLE
            while child.returncode is None and anyio.current_time() < deadline:
                await anyio.sleep(0.01)
        return await wait_ready(node, self)

    async def alive(self, node: Node) -> None:
        child = self._children.get(node.id)
        if child is not None:
            code = child.returncode  # set by the reaper thread; poll() would race with its wait()
            if code is None:
                return
            raise NodeExited(node.id, f"process exited with code {code} while starting",
                             await self.logs(node))
        rec = self._read(node.id)
        if rec is None or self._live(rec) is None:
            raise NodeExited(node.id, "process is not running", await self.logs(node))

    async def exec(self, node: Node, argv: list[str], timeout: float) -> int:
        try:
            with anyio.fail_after(timeout):
                proc = await anyio.run_process(argv, cwd=self._cwd(node), env=self._env(node), check=False)
        except OSError:
            return 127
        return proc.returncode

    async def logs(self, node: Node, lines: int = 20) -> str:
        try:
            with open(self.log_path(node.id), "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 64 * 1024))
                data = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(data.splitlines()[-lines:])

    # --- stop -------------------------------------------------------------------------------------

    async def stop(self, node: Node, observed: Observed, *, remove_volumes: bool = False) -> None:
        rec = self._read(node.id)
        if rec is None:
            return
        proc = self._live(rec)
        if proc is not None:
            grace = node.spec.stop_grace_ms / 1000
            try:
                self._signal(proc.pid, signal.SIGTERM)
                deadline = anyio.current_time() + grace
                while proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    if anyio.current_time() > deadline:
                        self._signal(proc.pid, signal.SIGKILL)
                        break
                    await anyio.sleep(0.02)
            except psutil.NoSuchProcess:
                pass
            except OSError as exc:
                raise StopError(node.id, f"cannot stop pid {proc.pid}: {exc}") from None
        child = self._children.pop(node.id, None)
        if child is not None:
            with anyio.CancelScope(shield=True):
                for _ in range(100):
                    if child.returncode is not None:
                        break
                    await anyio.sleep(0.01)
        self._record_path(node.id).unlink(missing_ok=True)

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        try:
            os.killpg(pid, sig)  # the whole group: a shell wrapper's children go too
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(pid, sig)

    async def aclose(self) -> None:
        # Children are services: they keep running after the CLI exits; their reaper threads
        # are daemons, so nothing here waits for them.
        self._children.clear()

    # --- inventory (ps, orphans) ------------------------------------------------------------------

    async def inventory(self, project: str | None = None) -> list[Managed]:
        """Every process record in this state directory, live or stale, whatever datum it was for."""
        from ..inventory import Managed

        out: list[Managed] = []
        for path in sorted(self.dir.glob("*.json")) if self.dir.is_dir() else ():
            try:
                rec: dict[str, Any] = json.loads(path.read_text())
                ident = str(rec["node"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            live = self._live(rec) is not None
            out.append(Managed(node=ident, runtime="process", project=project, name=path.stem,
                               ref=str(rec.get("pid")), state="running" if live else "exited",
                               health="" if live else "exited",
                               started=float(rec.get("create_time") or 0) or None if live else None,
                               config_hash=rec.get("config_hash"), where=str(self.dir.parent)))
        return out

    async def remove_record(self, ident: str, grace: float = 10.0) -> bool:
        """Stop a recorded process (its whole group) with no datum to go by; False when nothing runs."""
        rec = self._read(ident)
        if rec is None:
            return False
        proc = self._live(rec)
        if proc is not None:
            try:
                self._signal(proc.pid, signal.SIGTERM)
                deadline = anyio.current_time() + grace
                while proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    if anyio.current_time() > deadline:
                        self._signal(proc.pid, signal.SIGKILL)
                        break
                    await anyio.sleep(0.02)
            except psutil.NoSuchProcess:
                pass
            except OSError as exc:
                raise StopError(ident, f"cannot stop pid {proc.pid}: {exc}") from None
        self._record_path(ident).unlink(missing_ok=True)
        return proc is not None
