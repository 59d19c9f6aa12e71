"""``b00t-graph mcp serve``: the same API functions as the CLI, offered to agents as MCP tools.

A thin front-end on the official MCP SDK's ``MCPServer``: every tool compiles the datums as the
CLI does and calls the API (``ensure``, ``down_graph``, the engine's ``plan``/``observe``) or a
node's runtime (``logs``). Failures the user can fix come back as MCP tool errors carrying the
CLI's one-line message (``ToolError``), never as a crash.

Each request runs in its own task (the SDK spawns one per request), so a long ``ensure`` never
blocks a ``status`` or another ``ensure``; the node locks keep two of them from starting a node
twice. While ``ensure``/``restart``/``down`` run, engine events become MCP progress notifications:
one unit per node that is done, the message saying what happens to which node.

Safety: ``read_only`` refuses everything that starts or stops; ``allow`` patterns (fnmatch) limit
which targets may be started or stopped; ``down_on_exit`` takes down, when the server is told to
stop (stdin closed, SIGTERM, SIGINT), what this server started — and only that.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import math
import signal
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import anyio
import attrs
import psutil
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.server.mcpserver.resources import FileResource
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from . import api, render
from .engine import Engine
from .envtext import SECRET_NAME, URL_PASSWORD
from .errors import B00tGraphError
from .graph import Graph
from .loader import Catalog, datum_dirs, load_catalog
from .locks import default_state_dir, safe_name
from .ops import RestartOutcome

#: Phases after which a node is done for this run (one unit of progress each).
_DONE = frozenset({"ready", "running", "failed", "skipped", "cancelled", "stopped", "absent", "group"})
#: Phases that mean the engine acted on a node: it may need taking down.
_ACTED = frozenset({"preparing", "pulling", "starting"})

MASK = "****"
T = TypeVar("T")


def mask(name: str, value: str) -> str:
    """The value ``plan`` shows: secret-looking names masked whole, passwords in URLs masked."""
    if value and SECRET_NAME.search(name):
        return MASK
    return URL_PASSWORD.sub(rf"\g<1>{MASK}@", value)


def parse_http(value: str) -> tuple[str, int]:
    """``PORT``, ``:PORT`` or ``HOST:PORT`` (``[::1]:PORT`` too) → (host, port); loopback by default."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "", value
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r}: expected [HOST:]PORT with a port between 1 and 65535")
    return host, int(port)


@attrs.frozen
class ServeOptions:
    """What ``b00t-graph mcp serve`` was started with."""

    datums: tuple[str, ...] = ()
    state_dir: Path | None = None
    read_only: bool = False
    allow: tuple[str, ...] = ()
    down_on_exit: bool = False
    http: tuple[str, int] | None = None


# --- structured output ---------------------------------------------------------------------------


class DatumInfo(BaseModel):
    id: str = Field(description="The datum's identity, name.type: what `target` takes")
    type: str
    runtime: str = Field(description="docker, process, … or `group` (stack, mcp) or `not managed`")
    path: str = Field(description="The TOML file; also readable as the resource datum://ID")
    hint: str | None = None


class DatumList(BaseModel):
    datums: list[DatumInfo]
    broken: dict[str, list[str]] = Field(description="Datums that cannot be read: identity → problems")


class PlanNode(BaseModel):
    id: str
    type: str
    runtime: str
    depends_on: list[str]
    readiness: list[str] = Field(description="The probes that must pass; empty: ready once started")
    state: str | None = Field(description="What runs now (absent, running, stopped, foreign, unknown)")
    action: str = Field(description="What ensure would do: none, create, start, recreate, keep, conflict, …")
    description: str
    env_names: list[str] = Field(description="Names of the environment the node sees")


class Plan(BaseModel):
    targets: list[str]
    order: list[str] = Field(description="Every node after its dependencies")
    waves: list[list[str]] = Field(description="Levels, for reading only")
    nodes: list[PlanNode]
    env: dict[str, str] = Field(description="The targets' environment; secret-looking values masked")
    runtime_unavailable: dict[str, str] = Field(description="Runtimes that could not be asked what runs, and why")


class GraphPicture(BaseModel):
    targets: list[str]
    mermaid: str


class Ensured(BaseModel):
    targets: list[str]
    env: dict[str, str] = Field(description="The targets' resolved environment (what a client connects with)")
    mcp_servers: dict[str, dict[str, Any]] = Field(
        description="For mcp targets: their `mcpServers` entries (command/args/env or url), when known")
    started: list[str] = Field(description="Nodes this call started, recreated or restarted")
    seconds: float


class NodeStatus(BaseModel):
    id: str
    runtime: str
    state: str = Field(description="absent, running, stopped, foreign (not ours), unknown, or - (not managed)")
    detail: str
    action: str = Field(description="What ensure would do now")


class ProcessRecord(BaseModel):
    node: str
    pid: int
    alive: bool
    log: str


class Status(BaseModel):
    targets: list[str]
    nodes: list[NodeStatus]
    processes: list[ProcessRecord] = Field(description="Without a target: the process runtime's records")
    started_here: list[str] = Field(description="Nodes this server started that still count as its own")
    runtime_unavailable: dict[str, str]


class Logs(BaseModel):
    node: str
    lines: str


class Restarted(BaseModel):
    node: str
    stopped: bool = Field(description="Whether something ran and was stopped first")
    status: str
    restarted: list[str] = Field(description="The node, then the dependents restarted with it, in start order")
    reprobed: list[str] = Field(description="Running dependents left running and probed again")
    seconds: float


class Downed(BaseModel):
    targets: list[str]
    stopped: list[str]
    seconds: float


# --- progress ------------------------------------------------------------------------------------


class ProgressReporter:
    """A :class:`~b00t_graph.events.Reporter` whose events become MCP progress notifications.

    Progress counts finished nodes out of the graph's; an intermediate event (pulling,
    starting, probing) moves it halfway to the next unit, so it always increases, as MCP requires.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.acted: set[str] = set()
        self._send, self._receive = anyio.create_memory_object_stream[tuple[str, str, str]](math.inf)

    def event(self, node: str, phase: str, detail: str = "") -> None:
        if phase in _ACTED:
            self.acted.add(node)
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._send.send_nowait((node, phase, detail))

    def close(self) -> None:
        self._send.close()

    async def forward(self, ctx: Context) -> None:
        done, value = 0, 0.0
        async with self._receive:
            async for node, phase, detail in self._receive:
                if phase in _DONE:
                    done += 1
                    new = float(done)
                else:
                    new = value + (done + 1 - value) / 2
                if new <= value:
                    continue
                value = new
                with contextlib.suppress(Exception):  # a client gone mid-run must not fail the run
                    await ctx.report_progress(value, self.total, f"{node} {phase}" + (f": {detail}" if detail else ""))


# --- the server ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _tool_errors() -> Iterator[None]:
    """Our errors become tool errors with the CLI's message; anything else is a crash the SDK reports."""
    try:
        yield
    except B00tGraphError as exc:
        raise ToolError(str(exc)) from exc


class B00tMcp:
    """The server's state: options, and what it started (taken down on exit with ``down_on_exit``)."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        #: node → the graph it was started in, for nodes this server started and has not stopped
        self.started: dict[str, Graph] = {}
        self.mcp = self._build()
        self._http: Any = None  # the uvicorn server, with --http

    @property
    def state_dir(self) -> Path:
        return self.options.state_dir or default_state_dir()

    def _catalog(self) -> Catalog:
        return load_catalog(datum_dirs(self.options.datums))

    def _graph(self, target: str) -> Graph:
        return api.load_graph([target], list(self.options.datums) or None)

    def _may_change(self, verb: str, given: str, resolved: Sequence[str] = ()) -> None:
        """Refuse ``verb`` on ``given`` under ``--read-only``, or when no ``--allow`` pattern matches."""
        if self.options.read_only:
            raise ToolError(f"{verb} refused: this server is read-only (--read-only); "
                            "it lists, plans and shows status and logs")
        patterns = self.options.allow
        if patterns and not any(fnmatch.fnmatchcase(n, p) for p in patterns for n in (given, *resolved)):
            if not resolved:
                return  # checked again once the target is resolved (a short name may match as name.type)
            raise ToolError(f"{verb} {given} refused: not matched by --allow {' '.join(patterns)}")

    def _checked_graph(self, verb: str, target: str) -> Graph:
        self._may_change(verb, target)
        with _tool_errors():
            graph = self._graph(target)
        self._may_change(verb, target, graph.targets)
        return graph

    async def _with_progress(self, ctx: Context, reporter: ProgressReporter, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work()`` while forwarding the reporter's events; our errors come out bare, as tool errors."""
        result: list[T] = []
        failure: list[B00tGraphError] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(reporter.forward, ctx)
            try:
                result.append(await work())
            except B00tGraphError as exc:
                failure.append(exc)
            finally:
                reporter.close()
        if failure:
            raise ToolError(str(failure[0])) from failure[0]
        return result[0]

    def _remember(self, graph: Graph, nodes: set[str]) -> None:
        for node in nodes:
            self.started[node] = graph

    def _forget(self, nodes: set[str]) -> None:
        for node in nodes:
            self.started.pop(node, None)

    # --- tools ------------------------------------------------------------------------------------

    def list_datums(self, type: str | None = None) -> DatumList:
        """Datums the server can bring up (optionally of one type: docker, process, mcp, stack, …)."""
        with _tool_errors():
            cat = self._catalog()
        rows = [DatumInfo(id=ident, type=d.type, runtime=d.runtime or ("group" if not d.passive else "not managed"),
                          path=d.path, hint=d.hint)
                for ident, d in sorted(cat.datums.items()) if type is None or d.type == type]
        return DatumList(datums=rows, broken={i: [str(p) for p in ps] for i, ps in sorted(cat.broken.items())})

    async def plan(self, target: str) -> Plan:
        """What `ensure` would do, changing nothing: nodes in order, each one's state and action, the env."""
        with _tool_errors():
            graph = self._graph(target)
            unavailable: dict[str, str] = {}
            async with Engine(state_dir=self.state_dir) as engine:
                actions, observed = await engine.plan(graph, unavailable)
        data = render.plan_json(graph, actions, observed, unavailable)
        nodes = [PlanNode(id=n["id"], type=n["type"], runtime=n["runtime"], depends_on=n["depends_on"],
                          readiness=n["readiness"], state=n["state"], action=n["action"],
                          description=actions[n["id"]].value, env_names=sorted(n["env"]))
                 for n in data["nodes"]]
        return Plan(targets=data["targets"], order=list(graph.nodes), waves=data["waves"], nodes=nodes,
                    env={k: mask(k, v) for k, v in sorted(data["env"].items())},
                    runtime_unavailable=data["runtime_unavailable"])

    def graph(self, target: str) -> GraphPicture:
        """The dependency graph of a target as a Mermaid flowchart (dependencies point to dependents)."""
        with _tool_errors():
            graph = self._graph(target)
        return GraphPicture(targets=list(graph.targets), mermaid=render.mermaid(graph))

    async def ensure(self, target: str, ctx: Context) -> Ensured:
        """Bring a target and its dependencies up (what runs is left alone) and return its environment.

        Progress notifications report each node as it becomes ready.
        """
        graph = self._checked_graph("ensure", target)
        reporter = ProgressReporter(len(graph.nodes))
        t0 = time.monotonic()

        async def work() -> dict[str, str]:
            try:
                return await api.ensure_graph(graph, state_dir=self.state_dir, reporter=reporter)
            finally:
                self._remember(graph, reporter.acted)

        env = await self._with_progress(ctx, reporter, work)
        # The launch specs of mcp targets, when this version's ensure() returns them (env.mcp).
        specs = getattr(env, "mcp", None) or {}
        servers = {str(getattr(s, "server", k)): s.client_entry() for k, s in specs.items()
                   if hasattr(s, "client_entry")}
        return Ensured(targets=list(graph.targets), env=dict(env), mcp_servers=servers,
                       started=sorted(reporter.acted), seconds=round(time.monotonic() - t0, 3))

    async def status(self, target: str | None = None) -> Status:
        """Each node's state, changing nothing. Without a target: the process records and what this server started."""
        if target is None:
            return Status(targets=[], nodes=[], processes=self._process_records(), started_here=sorted(self.started),
                          runtime_unavailable={})
        with _tool_errors():
            graph = self._graph(target)
            unavailable: dict[str, str] = {}
            async with Engine(state_dir=self.state_dir) as engine:
                actions, observed = await engine.plan(graph, unavailable)
        nodes = []
        for ident, node in graph.nodes.items():
            obs = observed.get(ident)
            if not node.spec.managed:
                state, detail = "-", ""
            elif node.runtime_key in unavailable:
                state, detail = "unknown", unavailable[node.runtime_key or ""]
            else:
                state, detail = (obs.state.value, obs.detail) if obs else ("absent", "")
            nodes.append(NodeStatus(id=ident, runtime=render.runtime_of(node), state=state, detail=detail,
                                    action=actions[ident].name.lower()))
        return Status(targets=list(graph.targets), nodes=nodes, processes=[],
                      started_here=sorted(i for i in self.started if i in graph.nodes),
                      runtime_unavailable=unavailable)

    def _process_records(self) -> list[ProcessRecord]:
        out = []
        for path in sorted((self.state_dir / "process").glob("*.json")):
            try:
                rec = json.loads(path.read_text())
                pid, created = int(rec["pid"]), float(rec["create_time"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            try:
                proc = psutil.Process(pid)
                alive = abs(proc.create_time() - created) <= 0.05 and proc.status() != psutil.STATUS_ZOMBIE
            except psutil.Error:
                alive = False
            node = str(rec.get("node", path.stem))
            out.append(ProcessRecord(node=node, pid=pid, alive=alive,
                                     log=str(path.with_name(f"{safe_name(node)}.log"))))
        return out

    async def logs(self, node: str, tail: int = 50) -> Logs:
        """The last `tail` lines of a node's output (process log or container log)."""
        with _tool_errors():
            graph = self._graph(node)
            ident = graph.targets[0]
            n = graph.nodes[ident]
            if n.runtime is None:
                managed = [i for i, m in graph.nodes.items() if m.runtime is not None]
                raise ToolError(f"{ident}: a {n.type} runs nothing of its own, so it has no logs"
                                + (f"; ask for one of: {', '.join(managed)}" if managed else ""))
            async with Engine(state_dir=self.state_dir) as engine:
                rt = engine.runtimes.for_node(n)
                text = await rt.logs(n, tail) if rt is not None else ""
        return Logs(node=ident, lines=text)

    async def restart(self, node: str, ctx: Context, cascade: bool = False) -> Restarted:
        """Stop one node, start it and wait until it is ready; then restart, in dependency order, its running
        dependents that declare `restart_dependents = true` (every one with `cascade`) and probe the others again."""
        graph = self._checked_graph("restart", node)
        ident = graph.targets[0]
        if graph.nodes[ident].runtime is None:
            raise ToolError(f"{ident}: a {graph.nodes[ident].type} runs nothing of its own to restart; "
                            "restart its members")
        reporter = ProgressReporter(2 * len(graph.nodes))  # every node is seen by the down, then by the up
        t0 = time.monotonic()

        async def work() -> RestartOutcome:
            try:
                return await api.restart(ident, cascade=cascade, datums=list(self.options.datums) or None,
                                         state_dir=self.state_dir, reporter=reporter)
            finally:
                self._remember(graph, reporter.acted & graph.nodes.keys())

        out = await self._with_progress(ctx, reporter, work)
        up = out.up or out.down  # api.restart raised unless the node came up again
        return Restarted(node=ident, stopped=out.down.timings[ident].status == "stopped",
                         status=up.timings[ident].status, restarted=out.restarted, reprobed=out.reprobed,
                         seconds=round(time.monotonic() - t0, 3))

    async def down(self, target: str, ctx: Context) -> Downed:
        """Stop what b00t-graph started for a target, dependents first; never what it did not create."""
        graph = self._checked_graph("down", target)
        reporter = ProgressReporter(len(graph.nodes))
        t0 = time.monotonic()

        async def work() -> list[str]:
            res = await api.down_graph(graph, state_dir=self.state_dir, reporter=reporter)
            stopped = [i for i, t in res.timings.items() if t.status == "stopped"]
            self._forget(set(stopped))
            if res.failures:
                raise _DownFailed(render.failures_text(res))
            return stopped

        stopped = await self._with_progress(ctx, reporter, work)
        return Downed(targets=list(graph.targets), stopped=stopped, seconds=round(time.monotonic() - t0, 3))

    # --- resources --------------------------------------------------------------------------------

    def datum_toml(self, name: str) -> str:
        """A datum's TOML, by identity (name.type) or a bare name when only one datum has it."""
        try:
            cat = self._catalog()
            ident = cat.resolve_target(name)
        except B00tGraphError as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        datum = cat.datums.get(ident)
        path = Path(datum.path) if datum is not None else None
        if path is None:
            raise ResourceNotFoundError(f"{ident} cannot be read: {'; '.join(map(str, cat.broken.get(ident, [])))}")
        return path.read_text()

    # --- assembly ---------------------------------------------------------------------------------

    def _build(self) -> MCPServer:
        opts = self.options
        rules = []
        if opts.read_only:
            rules.append("This server is read-only: ensure, restart and down are refused.")
        if opts.allow:
            rules.append(f"Only targets matching {', '.join(opts.allow)} may be started or stopped.")
        server: MCPServer = MCPServer(
            "b00t-graph", version=_version(), log_level="WARNING",
            instructions="Bring up the services an agent needs from b00t datums, each as soon as its own "
                         "dependencies are ready. `target` is a datum identity (name.type) or a bare name; "
                         "list_datums shows them, plan shows what ensure would do, ensure returns the env "
                         "to connect with. " + " ".join(rules))
        ro = ToolAnnotations(read_only_hint=True, open_world_hint=False)
        server.add_tool(self.list_datums, name="list_datums", annotations=ro)
        server.add_tool(self.plan, name="plan", annotations=ro)
        server.add_tool(self.graph, name="graph", annotations=ro)
        server.add_tool(self.status, name="status", annotations=ro)
        server.add_tool(self.logs, name="logs", annotations=ro)
        server.add_tool(self.ensure, name="ensure",
                        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True))
        server.add_tool(self.restart, name="restart",
                        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
        server.add_tool(self.down, name="down",
                        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True))
        server.resource("datum://{name}", name="datum", mime_type="application/toml",
                        description="A datum's TOML, by identity (name.type)")(self.datum_toml)
        with contextlib.suppress(B00tGraphError, OSError):  # a bad folder shows up in the tools' answers
            for ident, datum in sorted(self._catalog().datums.items()):
                server.add_resource(FileResource(uri=f"datum://{ident}", name=ident, path=Path(datum.path).resolve(),
                                                 mime_type="application/toml", encoding="utf-8",
                                                 description=datum.hint or f"{datum.type} datum {datum.name}"))
        return server

    # --- running ----------------------------------------------------------------------------------

    async def take_down(self) -> list[str]:
        """Take down what this server started (``--down-on-exit``); returns problems, one line each."""
        by_graph: dict[int, tuple[Graph, set[str]]] = {}
        for node, graph in self.started.items():
            by_graph.setdefault(id(graph), (graph, set()))[1].add(node)
        problems: list[str] = []
        with anyio.CancelScope(shield=True):
            for graph, nodes in by_graph.values():
                try:
                    res = await api.down_graph(graph, state_dir=self.state_dir, only=nodes)
                except B00tGraphError as exc:
                    problems.append(str(exc))
                    continue
                if res.failures:
                    problems.append(render.failures_text(res))
                self._forget(nodes - set(res.failures))
        return problems

    async def serve(self) -> None:
        """Serve on stdio (or streamable HTTP) until the client goes or a signal comes; then clean up."""
        try:
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                        async for _ in signals:
                            if self._http is not None:
                                self._http.should_exit = True  # uvicorn closes its connections, then returns
                            else:
                                tg.cancel_scope.cancel()
                            return

                async def run() -> None:
                    if self.options.http is None:
                        await self.mcp.run_stdio_async()
                    else:
                        await self._serve_http(*self.options.http)
                    tg.cancel_scope.cancel()

                tg.start_soon(watch)
                tg.start_soon(run)
        finally:
            if self.options.down_on_exit and self.started:
                for line in await self.take_down():
                    _stderr(f"error: {line}")

    async def _serve_http(self, host: str, port: int) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield  # ours: serve() handles SIGINT/SIGTERM so --down-on-exit runs before the process ends

        app = self.mcp.streamable_http_app(host=host)
        self._http = Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
        await self._http.serve()


class _DownFailed(B00tGraphError):
    """``down`` could not stop some nodes; the message lists each."""


def _stderr(line: str) -> None:
    import sys

    print(line, file=sys.stderr, flush=True)


def _version() -> str:
    try:
        return metadata.version("b00t-graph")
    except metadata.PackageNotFoundError:
        return "0"


async def serve(options: ServeOptions) -> None:
    """Build the server and serve until told to stop (see :meth:`B00tMcp.serve`)."""
    await B00tMcp(options).serve()
