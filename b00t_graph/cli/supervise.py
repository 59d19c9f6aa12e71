"""``supervise``: keep what is up running from a process of its own (see :mod:`b00t_graph.detached`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import EXIT_RUNTIME, SupervisorError
from ..locks import default_state_dir
from ._common import (
    _catalog,
    _graph,
    _interruptible,
    _run,
    _say,
    _state,
    complete_targets,
    datums_opt,
    err,
    project_opt,
    state_opt,
    use_opt,
)

if TYPE_CHECKING:
    from ..supervisor import Supervisor

#: Seconds ``supervise`` waits for the detached supervisor to say it is watching (it looks at every node first).
START_TIMEOUT = 120.0


@click.command()
@click.argument("targets", nargs=-1, shell_complete=complete_targets)
@datums_opt
@state_opt
@project_opt
@click.option("--stop", "stop_it", is_flag=True,
              help="End the supervisor that runs here (SIGTERM) and wait for it; the services keep running.")
@click.option("--foreground", is_flag=True,
              help="Supervise in this process (under systemd, in a container, in a terminal) instead of detaching.")
@click.option("-q", "--quiet", is_flag=True)
@use_opt
def supervise(targets: tuple[str, ...], datums: tuple[str, ...], state_dir: Path | None, project: str | None,
              stop_it: bool, foreground: bool, quiet: bool, use: tuple[str, ...]) -> None:
    """Keep what is up running, in the background: restart policies, liveness and restart_dependents,
    as `up --attach` does, without holding a terminal.

    It watches the nodes of TARGETS that run now (without a target: everything b00t-graph runs here
    whose datum is known) from a process of its own (a new session; its log is
    <state dir>/supervisor/log). One supervisor per state directory, so one per project: while one
    runs, another `supervise` says so and changes nothing (exit 0); `--stop` ends it first.
    `down` and `stop` of a supervised node are not undone: a node taken down is no longer watched.
    `--stop` (or SIGTERM) ends the supervisor and leaves the services running; `status` and `ps`
    show it (pid, since, what it watches, restarts so far).

    \b
    Example:
      b00t-graph up demo.stack && b00t-graph supervise demo.stack
      b00t-graph supervise                  # everything b00t-graph runs here
      b00t-graph status                     # … supervisor: pid 4242 since …, watching 3 node(s)
      b00t-graph supervise --stop
    """
    from .. import detached

    sd = _state(state_dir, project)
    if stop_it:
        if targets:
            raise click.UsageError("--stop takes no target")
        info = detached.stop(sd, project)
        if quiet:
            return
        if info is None:
            _say("no supervisor runs here")
        elif not info.running:
            _say(f"no supervisor runs here; removed the stale state of pid {info.pid} (it did not end cleanly)")
        else:
            _say(f"stopped the supervisor (pid {info.pid}); the services it watched keep running")
        return
    info = detached.read(sd, project)
    if info is not None and info.running:
        _say(f"already running, nothing changed: {info.text()}; `b00t-graph supervise --stop` ends it")
        return
    if foreground:
        _foreground(targets, datums, sd, project, quiet, use)
    else:
        _detach(targets, datums, state_dir, sd, project, quiet, use)


def _detach(targets: tuple[str, ...], datums: tuple[str, ...], state_dir: Path | None, sd: Path,
            project: str | None, quiet: bool, use: tuple[str, ...]) -> None:
    """Start ``supervise --foreground`` in a new session (no terminal, stdio to its log) and wait until it
    says what it watches, or ends (its error lines are repeated here, with its exit code)."""
    from .. import detached

    argv = [sys.executable, "-m", "b00t_graph", "supervise", "--foreground", *targets,
            "--state-dir", str((state_dir or default_state_dir()).absolute())]
    for d in datums:
        argv += ["-d", os.path.abspath(d)]
    for u in use:
        argv += ["--use", u]
    if project:
        argv += ["-p", project]
    log = detached.start_log(sd)
    with open(log, "ab") as fh:
        start = fh.tell()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        code = proc.poll()
        info = detached.read(sd, project)
        if info is not None and info.running and info.pid == proc.pid and info.nodes:
            break
        if code is not None:
            with open(log, "rb") as fh:
                fh.seek(start)
                said = fh.read().decode("utf-8", "replace").strip()
            if said:
                click.echo(said, err=True)
            sys.exit(code)
        if time.monotonic() > deadline:
            raise SupervisorError(f"the supervisor (pid {proc.pid}) did not start watching within "
                                  f"{START_TIMEOUT:g}s; see {log}")
        time.sleep(0.05)
    proc.returncode = 0  # it lives on, on its own: not a child to wait for
    if not quiet:
        _say(f"supervising {len(info.nodes)} node(s) in the background (pid {proc.pid}): {', '.join(info.nodes)}\n"
             f"log: {log}   ·   `b00t-graph supervise --stop` ends it, the services keep running")


def _foreground(targets: tuple[str, ...], datums: tuple[str, ...], sd: Path, project: str | None, quiet: bool,
                use: tuple[str, ...]) -> None:
    """The supervisor itself: hold the lock, pick what runs, supervise until SIGTERM or nothing is left."""
    from .. import detached
    from ..engine import Engine
    from ..events import Silent
    from ..progress import ProgressReporter
    from ..supervisor import Supervisor

    graph = _graph(datums, targets, use) if targets else None
    catalog = _catalog(datums)

    async def go() -> tuple[Supervisor, bool]:
        state = detached.StateFile(sd, Silent(), targets=targets, project=project)
        state.write()
        async with Engine(reporter=state, state_dir=sd, project=project) as engine:
            full, nodes = await detached.choose(engine, catalog, graph, sd, project)
            if not nodes:
                what = " ".join(targets) if targets else "what b00t-graph manages"
                raise SupervisorError(f"nothing of {what} runs here to supervise; `b00t-graph up` it first")
            state.inner = ProgressReporter(full, err, live=False, quiet=quiet, logs=True)
            sup = Supervisor(engine, full, nodes, reporter=state, finish_restarts=True)
            state.supervisor = sup
            state.write()
            if not quiet:
                _say(f"supervising {len(nodes)} node(s) (pid {os.getpid()}): {', '.join(nodes)}")
            _, interrupted = await _interruptible(sup.run)
        return sup, interrupted

    with detached.hold(sd) as mine:
        if not mine:
            info = detached.read(sd, project)
            _say("already running, nothing changed" + (f": {info.text()}" if info else ""))
            return
        try:
            sup, interrupted = _run(go)
        finally:
            detached.clear(sd)
    failed = [w.node for w in sup.watched.values() if w.status == "failed"]
    if not quiet:
        _say("stopped by a signal: the services keep running" if interrupted else "nothing left to supervise")
    if failed and not interrupted:
        _say(f"error: {len(failed)} node(s) failed under supervision: {', '.join(failed)}")
        sys.exit(EXIT_RUNTIME)
