"""Presence checks: is a command installed, and at which version (b00t's ``version``/``version_regex``,
``[validate] command/regex``).

Nothing is started. ``wait_ready`` runs the check's argv (never through a shell unless the dialect
made it ``sh -c``, when the text needs one), bounded by ``Presence.timeout_ms``, and matches the
regex against stdout + stderr. A missing command, a time-out or output that does not match fails
the node with :class:`~b00t_graph.errors.PresenceError`, whose message shows the datum's
``install`` command. That command is run only when the user asks (``up --install-missing``):
through ``sh -c``, bounded by :data:`INSTALL_TIMEOUT`, its output in ``<state>/presence/<id>.log``;
then the check runs again.

The last result is kept in ``<state>/presence/<id>.json`` so ``status``/``plan`` can show it
without running anything.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs

from ..errors import PresenceError
from ..events import Reporter, Silent
from ..graph import Node
from ..locks import default_state_dir, safe_name
from ..model import Presence
from . import Action, Observed, State

#: seconds an ``install`` command may take (``up --install-missing``)
INSTALL_TIMEOUT = 900.0
#: characters of output kept in a message
SHOWN = 300


@attrs.frozen
class Result:
    """One run of a presence check."""

    ok: bool
    version: str | None
    why: str
    seconds: float


def _env(node: Node) -> dict[str, str]:
    return {**os.environ, **node.env, **node.spec.run_env}


def _version(check: Presence, text: str) -> tuple[bool, str | None]:
    """Whether the output passes and the version it shows: the regex's first group, else its match."""
    if check.regex is None:
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        return True, first[:80] or None
    m = re.search(check.regex, text, re.MULTILINE)
    if m is None:
        return False, None
    group = next((g for g in m.groups() if g), None)
    return True, (group or m.group(0)).strip()[:80]


async def run_check(node: Node, check: Presence, cwd: Path) -> Result:
    """Run the check once; never raises for what the command does, only reports it."""
    argv = list(check.command)
    shown = shlex.join(argv)
    t0 = time.monotonic()
    limit = check.timeout_ms / 1000
    try:
        with anyio.fail_after(limit):
            proc = await anyio.run_process(argv, cwd=cwd, env=_env(node), check=False, stdin=subprocess.DEVNULL)
    except TimeoutError:
        return Result(False, None, f"`{shown}` did not finish within {limit:g}s", time.monotonic() - t0)
    except FileNotFoundError:
        return Result(False, None, f"`{argv[0]}` is not installed (not found on PATH)", time.monotonic() - t0)
    except PermissionError:
        return Result(False, None, f"`{argv[0]}` cannot be run (permission denied)", time.monotonic() - t0)
    except OSError as exc:
        return Result(False, None, f"`{shown}` cannot be run: {exc.strerror or exc}", time.monotonic() - t0)
    spent = time.monotonic() - t0
    text = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
    if check.regex is None and proc.returncode != 0:
        if proc.returncode == 127 and argv[:2] == ["sh", "-c"]:
            return Result(False, None, f"`{check.command[2]}`: command not found", spent)
        return Result(False, None, f"`{shown}` exited {proc.returncode}" + _quote(text), spent)
    ok, version = _version(check, text)
    if not ok:
        exited = f" and exited {proc.returncode}" if proc.returncode else ""
        if proc.returncode == 127 and argv[:2] == ["sh", "-c"]:
            return Result(False, None, f"`{check.command[2]}`: command not found", spent)
        return Result(False, None, f"`{shown}` printed no match for /{check.regex}/ ({check.source}){exited}"
                      + _quote(text), spent)
    return Result(True, version, "", spent)


def _quote(text: str) -> str:
    text = text.strip()
    if not text:
        return "; it printed nothing"
    if len(text) > SHOWN:
        text = text[:SHOWN] + "…"
    return f"; it printed: {text!r}"


class PresenceRuntime:
    """The ``presence`` runtime kind: a cli datum's check that its command is installed."""

    name = "presence"
    prepares = False
    starts = False

    def __init__(self, *, state_dir: Path | None = None, reporter: Reporter | None = None,
                 install_missing: bool = False, **_: object) -> None:
        self.dir = (state_dir or default_state_dir()) / "presence"
        self.reporter: Reporter = reporter or Silent()
        self.install_missing = install_missing
        self._install_lock = anyio.Lock()  # package managers hold their own locks: one install at a time

    def _record_path(self, ident: str) -> Path:
        return self.dir / f"{safe_name(ident)}.json"

    def log_path(self, ident: str) -> Path:
        return self.dir / f"{safe_name(ident)}.log"

    def _save(self, node: Node, res: Result) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            rec = {"ok": res.ok, "version": res.version, "why": res.why, "at": time.time(),
                   "command": list(node.spec.presence.command) if node.spec.presence else []}
            tmp = self._record_path(node.id).with_suffix(".tmp")
            tmp.write_text(json.dumps(rec))
            tmp.replace(self._record_path(node.id))
        except OSError:
            pass  # the record is a convenience for status; the check's result stands without it

    async def observe(self, nodes: Sequence[Node]) -> dict[str, Observed]:
        """The last result of each check, read from its record; nothing is run."""
        out: dict[str, Observed] = {}
        for node in nodes:
            try:
                rec: dict[str, Any] = json.loads(self._record_path(node.id).read_text())
            except (OSError, ValueError):
                continue
            at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(rec.get("at", 0))))
            if rec.get("ok"):
                out[node.id] = Observed(State.RUNNING, None, None,
                                        f"present{', version ' + rec['version'] if rec.get('version') else ''} "
                                        f"(checked {at})")
            else:
                out[node.id] = Observed(State.ABSENT, None, None, f"missing: {rec.get('why', '')} (checked {at})")
        return out

    async def prepare(self, node: Node, action: Action) -> None:
        return None

    async def start(self, node: Node, observed: Observed, action: Action) -> Observed:
        return observed  # a check starts nothing; the engine calls wait_ready only

    def _cwd(self, node: Node) -> Path:
        return Path(node.spec.path).parent

    async def wait_ready(self, node: Node) -> str:
        check = node.spec.presence
        if check is None or not check.command:
            return "nothing to check"
        if check.install is None and node.spec.install:
            check = attrs.evolve(check, install=node.spec.install)
        res = await run_check(node, check, self._cwd(node))
        if not res.ok and self.install_missing and check.install:
            await self._install(node, check, res)
            res = await run_check(node, check, self._cwd(node))
            if not res.ok:
                self._save(node, res)
                raise PresenceError(node.id, f"still missing after `{check.install}` ran: {res.why}",
                                    await self.logs(node))
        self._save(node, res)
        if not res.ok:
            raise PresenceError(node.id, res.why + _fix(check))
        shown = shlex.join(check.command)
        return (f"present, version {res.version}" if res.version else "present") + f" (`{shown}`, {res.seconds:.2f}s)"

    async def _install(self, node: Node, check: Presence, before: Result) -> None:
        assert check.install is not None
        self.dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path(node.id)
        async with self._install_lock:
            self.reporter.event(node.id, "starting", f"installing: {check.install}")
            with open(log, "ab") as out:
                out.write(f"$ {check.install}\n".encode())
                out.flush()
                try:
                    with anyio.fail_after(INSTALL_TIMEOUT):
                        proc = await anyio.run_process(["sh", "-c", check.install], cwd=self._cwd(node),
                                                       env=_env(node), check=False, stdin=subprocess.DEVNULL,
                                                       stdout=out, stderr=subprocess.STDOUT)
                except TimeoutError:
                    raise PresenceError(node.id, f"{before.why}; `{check.install}` did not finish within "
                                        f"{INSTALL_TIMEOUT:g}s (output in {log})", await self.logs(node)) from None
                except OSError as exc:
                    raise PresenceError(node.id, f"{before.why}; cannot run `{check.install}`: {exc}") from None
        if proc.returncode != 0:
            raise PresenceError(node.id, f"{before.why}; `{check.install}` exited {proc.returncode} "
                                f"(output in {log})", await self.logs(node))

    async def logs(self, node: Node, lines: int = 20) -> str:
        try:
            data = self.log_path(node.id).read_bytes()[-64 * 1024:].decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(data.splitlines()[-lines:])

    async def stop(self, node: Node, observed: Observed, *, remove_volumes: bool = False) -> None:
        return None  # nothing was started

    async def aclose(self) -> None:
        return None


def _fix(check: Presence) -> str:
    if check.install:
        return f"; install it with: {check.install} (or run `up --install-missing`)"
    return "; the datum gives no install command"
