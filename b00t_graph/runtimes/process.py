"""Local processes as services: started detached so they outlive the CLI, like containers.

Each node has a record ``<state>/process/<id>.json`` (pid, the process's start
time, config hash, argv, readiness) and a log ``<id>.log`` (the two runs before it
are kept as ``<id>.log.1`` and ``<id>.log.2``). The start time makes pid reuse
harmless: a pid whose process started at another time is not ours, and a record
whose pid is gone is stale.

The record is written *ahead*: the service is spawned behind a gate (``sh`` blocked
on a pipe on its stdin), its pid and start time are recorded, and only then is the gate
opened and the real command exec'd in the same process. A CLI killed at any point
leaves either a record of the service or no service: a gate whose pipe closes unopened
exits without running anything.

Every service also carries markers in its environment (``B00T_GRAPH_NODE``,
``B00T_GRAPH_PROJECT``, ``B00T_GRAPH_STATE``: a hash of the state directory's path,
``B00T_GRAPH_CONFIG``), so a service whose record is gone (a deleted state directory)
is still found — by a scan of the processes — and adopted when its command matches.

``down`` signals the service's whole process group and waits for all of it, then
SIGKILLs what is left after ``stop_grace_ms``. A process that leaves the group
(``setsid``, a daemon that double-forks into a new session) escapes it.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
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
from . import Action, Observed, State, logpump
from .ports import check_free, holder_pids, probe_ports

if TYPE_CHECKING:
    from ..inventory import Managed

#: How long a process without a readiness probe must stay up to count as started.
SETTLE = 0.2
#: Logs kept per node: the current run's and the runs before it.
KEEP_LOGS = 3
#: The gate: wait for one line on stdin (the parent's go-ahead, sent once the record is written);
#: end of input without it means the parent died first, so run nothing.
GATE = 'read -r _ || exit 125; exec "$@" </dev/null'
GATE_ARGV0 = "b00t-graph-gate"
#: How long to wait for a SIGKILLed group to disappear before giving up on it.
KILL_WAIT = 2.0

MARK_NODE, MARK_PROJECT, MARK_STATE, MARK_CONFIG = (
    "B00T_GRAPH_NODE", "B00T_GRAPH_PROJECT", "B00T_GRAPH_STATE", "B00T_GRAPH_CONFIG")


def state_id(state_dir: Path) -> str:
    """The id a state directory gives its processes (``B00T_GRAPH_STATE``): a hash of its absolute path."""
    return hashlib.sha256(str(state_dir.expanduser().absolute()).encode()).hexdigest()[:16]


class ProcessRuntime:
    """The ``process`` datum type: ``command`` + ``args`` in ``cwd`` (default: the datum's folder)."""

    name = "process"
    prepares = False  # nothing to fetch ahead: a command starts as it is

    def __init__(self, *, state_dir: Path | None = None, reporter: Reporter | None = None,
                 project: str | None = None, **_: object) -> None:
        base = state_dir or default_state_dir()
        self.dir = base / "process"
        self.state_id = state_id(base)
        self.project = project or ""
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

    def _write(self, ident: str, rec: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self._record_path(ident).with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(rec))
        tmp.replace(self._record_path(ident))

    def _drop_stale_tmp(self, ident: str) -> None:
        """Remove half-written records (``<node>.<pid>.tmp``) whose writer is gone: a writer killed
        between writing and renaming leaves one, and nothing else would ever remove it. Looked for where
        a record is missing or stale (the scan) and after a stop, not on every write."""
        base = self._record_path(ident).stem
        for path in self.dir.glob(f"{glob.escape(base)}.*.tmp") if self.dir.is_dir() else ():
            pid = path.name[len(base) + 1:-len(".tmp")]
            if pid.isdigit() and int(pid) != os.getpid() and not psutil.pid_exists(int(pid)):
                path.unlink(missing_ok=True)

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

    def _marked(self, env: dict[str, str], ident: str | None = None) -> bool:
        return (env.get(MARK_STATE) == self.state_id and env.get(MARK_PROJECT, "") == self.project
                and (ident is None or env.get(MARK_NODE) == ident))

    def _scan(self, nodes: Sequence[Node]) -> dict[str, dict[str, Any]]:
        """Records rebuilt from the running processes that carry this state directory's markers.

        Only a process whose command line is the node's command (or the gate in front of it) is
        adopted: a service's own children inherit the markers but are not the service.
        """
        want = {n.id: n for n in nodes}
        found: dict[str, dict[str, Any]] = {}
        me = os.getpid()
        for proc in psutil.process_iter():
            try:
                if proc.pid == me:
                    continue
                env = proc.environ()
                ident = env.get(MARK_NODE)
                if ident not in want or not self._marked(env, ident):
                    continue
                argv = self._argv(want[ident])
                cmd = proc.cmdline()
                if cmd != argv and cmd[-len(argv):] != argv:
                    continue
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                created = proc.create_time()
            except psutil.Error:
                continue
            prev = found.get(ident)
            if prev is None or created < float(prev["create_time"]):  # the oldest one is the leader
                found[ident] = {"pid": proc.pid, "create_time": created, "config_hash": env.get(MARK_CONFIG),
                                "argv": argv, "node": ident, "adopted": True, "ready": True}
        return found

    def _records(self, nodes: Sequence[Node]) -> dict[str, dict[str, Any]]:
        """Each node's record whose process runs; a node without one is looked for among the processes."""
        out: dict[str, dict[str, Any]] = {}
        missing: list[Node] = []
        for node in nodes:
            rec = self._read(node.id)
            if rec is not None and self._live(rec) is not None:
                out[node.id] = rec
            else:
                missing.append(node)
                self._drop_stale_tmp(node.id)
                if rec is not None:
                    out[node.id] = rec  # stale, unless a scan finds the service after all
        if missing:
            out.update(self._scan(missing))
        return out

    def _record(self, node: Node) -> dict[str, Any] | None:
        return self._records([node]).get(node.id)

    async def observe(self, nodes: Sequence[Node]) -> dict[str, Observed]:
        recs = self._records(nodes)
        out: dict[str, Observed] = {}
        for node in nodes:
            rec = recs.get(node.id)
            if rec is None:
                out[node.id] = Observed(State.ABSENT)
                continue
            h = rec.get("config_hash")
            if self._live(rec) is not None:
                since = time.strftime("%H:%M:%S", time.localtime(float(rec["create_time"])))
                what = f"pid {rec['pid']} since {since}" + (" (found by its markers: no record)"
                                                            if rec.get("adopted") else "")
                if rec.get("ready", True):
                    out[node.id] = Observed(State.RUNNING, h, str(rec["pid"]), what)
                else:
                    out[node.id] = Observed(State.UNREADY, h, str(rec["pid"]), what + ", never became ready")
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
        return {**os.environ, **node.env, **node.spec.run_env, "B00T_NODE": node.id,
                MARK_NODE: node.id, MARK_PROJECT: self.project, MARK_STATE: self.state_id,
                MARK_CONFIG: node.config_hash}

    def _rotate_logs(self, ident: str) -> Path:
        """Keep the last :data:`KEEP_LOGS` runs' logs: ``<id>.log`` is the newest, ``.1``, ``.2`` older;
        each with its stamps (``<log>.idx``)."""
        log = self.log_path(ident)
        for n in range(KEEP_LOGS - 1, 0, -1):
            src = log if n == 1 else log.with_name(f"{log.name}.{n - 1}")
            dst = log.with_name(f"{log.name}.{n}")
            for a, b in ((src, dst), (logpump.index_path(src), logpump.index_path(dst))):
                with contextlib.suppress(OSError):
                    a.replace(b)
        return log

    def _check_runnable(self, node: Node, argv: list[str], env: dict[str, str]) -> None:
        """The gate's ``exec`` would fail after the record is written: say it before, as ``Popen`` would."""
        if not argv:
            raise StartError(node.id, "no command to run")
        exe, cwd = argv[0], self._cwd(node)
        if not cwd.is_dir():
            raise StartError(node.id, f"cannot run {exe!r}: its cwd {str(cwd)!r} is not a directory")
        if "/" in exe:
            path = exe if os.path.isabs(exe) else str(cwd / exe)
            if not os.path.isfile(path):
                raise StartError(node.id, f"cannot run {exe!r}: No such file or directory")
            if not os.access(path, os.X_OK):
                raise StartError(node.id, f"cannot run {exe!r}: Permission denied")
        elif shutil.which(exe, path=env.get("PATH", os.defpath)) is None:
            raise StartError(node.id, f"cannot run {exe!r}: No such file or directory (not on PATH)")

    async def start(self, node: Node, observed: Observed, action: Action) -> Observed:
        if observed.state in (State.RUNNING, State.UNREADY) or self._record(node) is not None:
            await self.stop(node, observed)
        # Its own process is stopped by now: whatever holds a port its probes name is another program.
        check_free(node.id, probe_ports(node.health))
        self.dir.mkdir(parents=True, exist_ok=True)
        argv = self._argv(node)
        env = self._env(node)
        self._check_runnable(node, argv, env)
        log = self._rotate_logs(node.id)
        log.write_bytes(b"")
        logpump.index_path(log).write_bytes(b"")
        gate_r, gate_w = os.pipe()
        out_r, out_w = os.pipe()
        try:
            # start_new_session: the service gets its own process group, so Ctrl-C in the
            # terminal that ran `up` does not reach it, and `down` can signal the whole group.
            # The gate starts the stamping pump (see logpump) in the same group, then waits.
            child = subprocess.Popen(["/bin/sh", "-c", logpump.PUMP_GATE + GATE, GATE_ARGV0,
                                      *logpump.gate_argv(log), *argv], cwd=self._cwd(node),
                                     env=env, stdin=gate_r, stdout=out_w, stderr=out_r, start_new_session=True)
        except OSError as exc:
            os.close(gate_w)  # a gate whose pipe closes unopened runs nothing
            raise StartError(node.id, f"cannot run {argv[0]!r}: {exc.strerror or exc}") from None
        finally:
            for fd in (gate_r, out_r, out_w):
                os.close(fd)
        self._children[node.id] = child
        # Reap the child when it ends (no zombie in a long-lived host) without holding the CLI open.
        threading.Thread(target=child.wait, name=f"reap-{child.pid}", daemon=True).start()
        try:
            try:
                created = psutil.Process(child.pid).create_time()
            except psutil.Error:
                created = 0.0  # already gone; alive() reports it with the log tail
            self._write(node.id, {"pid": child.pid, "create_time": created, "config_hash": node.config_hash,
                                  "argv": argv, "cwd": str(self._cwd(node)), "log": str(log), "node": node.id,
                                  "ready": False})
            with contextlib.suppress(OSError):  # BrokenPipe: the gate is gone; alive() says so
                os.write(gate_w, b"go\n")
        finally:
            os.close(gate_w)
        return Observed(State.UNREADY, node.config_hash, str(child.pid), f"pid {child.pid}")

    # --- readiness (ProbeHost) -------------------------------------------------------------------

    async def wait_ready(self, node: Node) -> str:
        child = self._children.get(node.id)
        if child is not None and (node.health is None or not node.health.probes()):
            # Without a probe, "started" is all there is to wait for; a short settle time still
            # catches the common failure of a command that exits at once (bad flag, missing file).
            deadline = anyio.current_time() + SETTLE
            while child.returncode is None and anyio.current_time() < deadline:
                await anyio.sleep(0.01)
        how = await wait_ready(node, self)
        self._own_ports(node)
        rec = self._record(node)
        if rec is not None and (not rec.get("ready", True) or rec.get("adopted")):
            # ready now; a service found by its markers gets its record back
            rec = {k: v for k, v in rec.items() if k != "adopted"}
            self._write(node.id, {**rec, "ready": True, "ready_at": time.time(),
                                  "log": rec.get("log") or str(self.log_path(node.id))})
        return how

    def _own_ports(self, node: Node) -> None:
        """A probe answered by another program does not count: the ports it names must be held by this
        node's own processes (its session) whenever the OS says who holds them."""
        rec = self._record(node)
        if rec is None:
            return
        sid = int(rec["pid"])
        for port, proto, _ in probe_ports(node.health):
            pids = holder_pids(port, proto)
            if not pids:
                continue  # cannot tell (no listener visible, or not allowed to look)
            sessions: dict[int, int] = {}
            for pid in pids:
                with contextlib.suppress(OSError):
                    sessions[pid] = os.getsid(pid)
            if not sessions:
                continue  # every holder is gone (the node itself may just have exited): alive() tells
            if sid not in sessions.values():
                who = ", ".join(f"pid {p}" for p in sorted(sessions))
                raise NodeExited(node.id, f"port {port} is answered by another program ({who}), not by this "
                                 "node's process", self._tail(node))

    async def alive(self, node: Node) -> None:
        child = self._children.get(node.id)
        if child is not None:
            code = child.returncode  # set by the reaper thread; poll() would race with its wait()
            if code is None:
                return
            self._drained(node)
            if code == 125 and not self.log_path(node.id).stat().st_size:
                raise NodeExited(node.id, "process was never released by its gate (the starting command died)")
            raise NodeExited(node.id, f"process exited with code {code}", self._tail(node))
        rec = self._record(node)
        if rec is None or self._live(rec) is None:
            raise NodeExited(node.id, "process is not running", self._tail(node))

    async def exec(self, node: Node, argv: list[str], timeout: float) -> int:
        try:
            with anyio.fail_after(timeout):
                proc = await anyio.run_process(argv, cwd=self._cwd(node), env=self._env(node), check=False)
        except OSError:
            return 127
        return proc.returncode

    def _drained(self, node: Node) -> None:
        """Once the service has ended, give its pump a moment (≤ 1 s) to write the last lines it read."""
        child = self._children.get(node.id)
        if child is None or child.returncode is None:
            return
        deadline = time.monotonic() + 1.0
        log = self.log_path(node.id)
        while time.monotonic() < deadline and not logpump.drained(log):
            time.sleep(0.005)

    def _tail(self, node: Node, lines: int = 20) -> str:
        self._drained(node)
        try:
            with open(self.log_path(node.id), "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 64 * 1024))
                data = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(data.splitlines()[-lines:])

    async def logs(self, node: Node, lines: int = 20) -> str:
        return self._tail(node, lines)

    # --- stop -------------------------------------------------------------------------------------

    def _group(self, rec: dict[str, Any], node: Node) -> list[psutil.Process]:
        """The live processes of the service's group: the recorded leader (same start time) and every
        other member that carries this node's markers (so a reused pid or group id is never ours)."""
        pgid = int(rec["pid"])
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []  # nothing at all in the group
        except PermissionError:
            pass
        members: list[psutil.Process] = []
        leader = self._live(rec)
        if leader is not None:
            members.append(leader)
        for proc in psutil.process_iter():
            try:
                if proc.pid == pgid or os.getpgid(proc.pid) != pgid:
                    continue
                if proc.status() == psutil.STATUS_ZOMBIE or not self._marked(proc.environ(), node.id):
                    continue
                members.append(proc)
            except (psutil.Error, OSError):
                continue
        return members

    def _kill(self, rec: dict[str, Any], members: list[psutil.Process], sig: int) -> None:
        pgid = int(rec["pid"])
        if any(p.pid == pgid for p in members):
            self._signal(pgid, sig)  # the leader is ours and alive: the group id cannot be reused
            return
        for proc in members:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)

    async def stop(self, node: Node, observed: Observed, *, remove_volumes: bool = False) -> None:
        rec = self._record(node)
        if rec is None:
            return
        grace = node.spec.stop_grace_ms / 1000
        try:
            members = self._group(rec, node)
            if members:
                self._kill(rec, members, signal.SIGTERM)
                deadline = anyio.current_time() + grace
                killed_at: float | None = None
                while members := self._group(rec, node):
                    now = anyio.current_time()
                    if killed_at is None and now > deadline:
                        self._kill(rec, members, signal.SIGKILL)
                        killed_at = now
                    elif killed_at is not None and now > killed_at + KILL_WAIT:
                        raise StopError(node.id, "still running after SIGKILL: "
                                        + ", ".join(f"pid {p.pid}" for p in members))
                    await anyio.sleep(0.02)
        except OSError as exc:
            raise StopError(node.id, f"cannot stop pid {rec['pid']}: {exc}") from None
        child = self._children.pop(node.id, None)
        if child is not None:
            with anyio.CancelScope(shield=True):
                for _ in range(100):
                    if child.returncode is not None:
                        break
                    await anyio.sleep(0.01)
        self._record_path(node.id).unlink(missing_ok=True)
        self._drop_stale_tmp(node.id)

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
