"""``logs`` and ``exec``: what the services say, and a command inside a container."""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import click

from ..engine import Engine
from ..errors import EXIT_INPUT, EXIT_RUNTIME, B00tGraphError, RuntimeUnavailable
from ..locks import default_state_dir
from ..logstream import ContainerLog, Line, ProcessLog, Source, merge, parse_duration
from ._common import _fail, _graph, _interruptible, _run, datums_opt, out, state_opt

#: how often ``-f`` looks for new lines; new nodes (without a target) are looked for every RESCAN polls
POLL = 0.2
RESCAN = 5
_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "bright_red", "bright_cyan", "bright_magenta")


class _Printer:
    """``node | line``, the node padded to the longest name and coloured on a terminal."""

    def __init__(self, timestamps: bool) -> None:
        self.width = 0
        self.colours: dict[str, str] = {}
        self.timestamps = timestamps
        self.tty = out.is_terminal

    def add(self, node: str) -> None:
        self.width = max(self.width, len(node))
        self.colours.setdefault(node, _COLOURS[len(self.colours) % len(_COLOURS)])

    def emit(self, lines: list[Line]) -> None:
        import time

        for ln in lines:
            self.add(ln.node)
            stamp = ""
            if self.timestamps:
                frac = f"{ln.ts % 1:.3f}"[1:]
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ln.ts)) + frac + " "
            if self.tty:
                from rich.text import Text

                text = Text(f"{ln.node:<{self.width}} | ", style=self.colours[ln.node])
                text.append(stamp + ln.text)
                out.print(text, soft_wrap=True, markup=False, highlight=False)
            else:
                sys.stdout.write(f"{ln.node:<{self.width}} | {stamp}{ln.text}\n")
        sys.stdout.flush()


def _process_sources(proc_rt: Any, known: set[str]) -> list[Source]:
    """Every process record in the state dir whose node is not followed yet."""
    found: list[Source] = []
    for rec_path in sorted(proc_rt.dir.glob("*.json")) if proc_rt.dir.is_dir() else ():
        try:
            rec = json.loads(rec_path.read_text())
            node = str(rec["node"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if node not in known:
            found.append(ProcessLog(node, Path(rec.get("log") or proc_rt.log_path(node)), rec_path))
    return found


def _named_engines(datums: Sequence[str]) -> list[Any]:
    from ..engines import load_engines
    from ..loader import datum_dirs

    try:
        return list(load_engines([src.path for src in datum_dirs(datums)]).named.values())
    except B00tGraphError as exc:
        _fail(exc)


@click.command(name="logs")
@click.argument("targets", nargs=-1)
@datums_opt
@state_opt
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (and nodes that start later) "
              "until Ctrl-C, which ends with exit 0.")
@click.option("--since", "since", metavar="DURATION", default=None,
              help="Only lines from the last DURATION (30s, 5m, 1h30m).")
@click.option("--tail", "tail", type=click.IntRange(min=0), default=None, metavar="N",
              help="Only the last N lines of each node (then follow, with -f).")
@click.option("-t", "--timestamps", is_flag=True, help="Show each line's time.")
def logs(targets: tuple[str, ...], datums: tuple[str, ...], state_dir: Path | None, follow: bool,
         since: str | None, tail: int | None, timestamps: bool) -> None:
    """The output of the targets' containers and processes, one stream ordered by time.

    \b
    Each line is prefixed by its node. Without a target: every process recorded in the state
    dir and every container b00t-graph manages, on every engine.
    Examples:
      b00t-graph logs grok.stack --tail 20
      b00t-graph logs qdrant.docker -f --since 5m
    """
    import time

    try:
        cutoff = time.time() - parse_duration(since) if since is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    graph = _graph(datums, targets) if targets else None
    if graph is not None:
        wanted = [n for n in graph.nodes.values() if n.runtime in ("process", "docker")]
        if not wanted:
            click.echo(f"error: {', '.join(graph.targets)} run(s) nothing of their own, so there are no logs",
                       err=True)
            sys.exit(EXIT_INPUT)
    printer = _Printer(timestamps)
    # Without a target, the named engines (b00t-graph.toml beside the datums, the user's config) are read too.
    named = [] if graph is not None else sorted(_named_engines(datums), key=lambda e: e.name)

    async def go() -> bool:
        async with Engine(state_dir=state_dir or default_state_dir()) as engine:
            sources: list[Source] = []
            proc_rt: Any = engine.runtimes.for_type("process")
            docker_rt: Any = None

            def docker() -> Any:
                nonlocal docker_rt
                if docker_rt is None:
                    docker_rt = engine.runtimes.for_type("docker")
                return docker_rt

            async def scan() -> list[Source]:
                """Without a target: what runs now that is not followed yet, on every engine."""
                known = {s.node for s in sources}
                found = _process_sources(proc_rt, known)
                rts: list[Callable[[], Any]] = [
                    docker, *(functools.partial(engine.runtimes.for_engine, "docker", spec) for spec in named)]
                for get in rts:
                    try:
                        rt = get()
                        for node, name in sorted((await rt.managed_containers()).items()):
                            if node not in known:
                                known.add(node)
                                found.append(ContainerLog(node, name, rt))
                    except RuntimeUnavailable:
                        pass  # an engine away: the others and the processes, as `logs` promises nothing more
                return found

            if graph is not None:
                for node in graph.nodes.values():
                    if node.runtime == "process":
                        log = proc_rt.log_path(node.id)
                        sources.append(ProcessLog(node.id, log, log.with_suffix(".json")))
                    elif node.runtime == "docker":
                        rt: Any = docker() if node.engine is None else engine.runtimes.for_node(node)
                        sources.append(ContainerLog(node.id, rt.container_name(node), rt))
            else:
                sources.extend(await scan())
            for s in sources:
                printer.add(s.node)
            printer.emit(merge([await s.history(cutoff, tail) for s in sources]))
            if not follow:
                return False
            started = time.time()

            async def follow_loop() -> None:
                polls = 0
                while True:
                    await anyio.sleep(POLL)
                    polls += 1
                    batch = [await s.poll() for s in sources]
                    if graph is None and polls % RESCAN == 0:
                        for s in await scan():
                            sources.append(s)
                            # a process found now started after the first scan: its whole current run is
                            # new (its lines carry no write time to cut by); a container's lines do
                            batch.append(await s.history(None if isinstance(s, ProcessLog) else started, None))
                    printer.emit(merge(batch))

            _, interrupted = await _interruptible(follow_loop)
            return interrupted

    _run(go)
    # Ctrl-C ends following, as it does for `docker compose logs -f`: the user stopped watching,
    # nothing failed, so the exit code is 0.


@click.command(name="exec")
@datums_opt
@state_opt
@click.argument("node")
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_cmd(datums: tuple[str, ...], state_dir: Path | None, node: str, cmd: tuple[str, ...]) -> None:
    """Run CMD inside NODE's container; its exit code is ours. Interactive (a TTY) when stdin is one.

    \b
    With the docker CLI installed this becomes `docker exec [-it] CONTAINER CMD...`; without
    it the Engine API runs CMD with its output attached (no stdin, no TTY).
    Examples:
      b00t-graph exec postgres.docker -- psql -U postgres
      b00t-graph exec qdrant -- ls /qdrant/storage
    """
    from ..runtimes import State

    graph = _graph(datums, [node])
    ident = graph.targets[0]
    n = graph.nodes[ident]
    if n.runtime != "docker":
        kind = f"a {n.runtime} node" if n.runtime else f"a {n.type} runs nothing of its own"
        click.echo(f"error: {ident}: exec is for containers ({kind})", err=True)
        sys.exit(EXIT_INPUT)
    cli = shutil.which("docker")

    async def go() -> tuple[str, str, int | None]:
        async with Engine(state_dir=state_dir or default_state_dir()) as engine:
            rt: Any = engine.runtimes.for_type("docker")
            obs = (await rt.observe([n])).get(ident)
            if obs is None or obs.state is not State.RUNNING:
                why = obs.detail if obs is not None and obs.detail else "not running"
                raise B00tGraphError(f"{ident}: {why}; `b00t-graph up {ident}` starts it")
            if cli is not None:
                return rt.container_name(n), rt._where, None
            return "", "", await rt.exec_attached(n, list(cmd))

    name, where, code = _run(go)
    if code is not None:
        sys.exit(code)
    assert cli is not None
    argv = ["docker", "exec", "-it" if sys.stdin.isatty() and sys.stdout.isatty() else "-i", name, *cmd]
    if not where.startswith("DOCKER_HOST=") and where.startswith("/"):
        os.environ["DOCKER_HOST"] = f"unix://{where}"  # the engine the runtime found, not the CLI's default
    sys.stdout.flush()
    try:
        os.execvp(cli, argv)
    except OSError as exc:
        click.echo(f"error: cannot run {cli}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_RUNTIME)
