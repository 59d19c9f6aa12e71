"""How an MCP client launches (or reaches) the server an mcp datum describes.

An mcp datum lists entries (``[[b00t.mcp.stdio]]``, ``[[b00t.mcp.httpstream]]``); the one with the
lowest ``priority`` is used unless a transport is asked for. Its :class:`LaunchSpec` is resolved
against the compiled graph: a stdio server gets ``command``, ``args`` and an ``env`` made of its
dependencies' exports, the datum's own ``[b00t.env]`` and the entry's ``env`` (that order, the last
wins); an httpstream server gets its ``url``.

:func:`mcp_servers` renders specs as the ``mcpServers`` JSON that MCP clients read (Claude Desktop,
Claude Code's ``.mcp.json``, Cursor, …)::

    {"mcpServers": {"grok-guru": {"command": "b00t-mcp", "args": ["grok"], "env": {...}},
                    "docs":      {"type": "http", "url": "http://127.0.0.1:8931/mcp"}}}

Pure: no I/O. ``b00t-graph mcp-config`` prints it; ``ensure()`` returns the specs as ``env.mcp``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .errors import InputError
from .graph import Graph
from .model import Datum, McpLaunch

TRANSPORTS = ("stdio", "httpstream")


@attrs.frozen
class LaunchSpec:
    """A resolved way to reach one MCP server: a command to launch (stdio) or a URL (httpstream)."""

    #: the key in ``mcpServers``: the datum's name
    server: str
    #: the datum's identity (``grok-guru.mcp``)
    node: str
    transport: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = attrs.field(factory=dict)
    url: str | None = None

    def client_entry(self) -> dict[str, Any]:
        """This server's entry in an ``mcpServers`` object."""
        if self.transport == "stdio":
            return {"command": self.command, "args": list(self.args), "env": dict(self.env)}
        return {"type": "http", "url": self.url}

    @property
    def argv(self) -> list[str]:
        """The stdio command line (empty for an httpstream server)."""
        return [self.command, *self.args] if self.command else []


class McpConfigError(InputError):
    """A target has no MCP entry to launch, or none over the transport asked for (exit 2)."""


def choose(datum: Datum, transport: str | None = None) -> McpLaunch | None:
    """The entry to use: the lowest ``priority`` (first written on a tie), of ``transport`` when given."""
    entries = [m for m in datum.mcp if transport is None or m.transport == transport]
    if not entries:
        return None
    return min(enumerate(entries), key=lambda im: (im[1].priority, im[0]))[1]


def launch_spec(graph: Graph, ident: str, transport: str | None = None) -> LaunchSpec:
    """The resolved launch spec of an mcp node of ``graph``; :class:`McpConfigError` when it has none."""
    node = graph.nodes[ident]
    entry = choose(node.spec, transport)
    if entry is None:
        have = sorted({m.transport for m in node.spec.mcp})
        if not have:
            raise McpConfigError(f"{ident} ({node.spec.path}) has no [[b00t.mcp.stdio]] or "
                                 "[[b00t.mcp.httpstream]] entry: nothing to launch")
        raise McpConfigError(f"{ident} ({node.spec.path}) has no {transport} entry (it has: {', '.join(have)})")
    if entry.transport == "stdio":
        if not entry.command:
            raise McpConfigError(f"{ident} ({node.spec.path}): b00t.mcp.stdio has no command")
        return LaunchSpec(server=node.spec.name, node=ident, transport="stdio", command=entry.command,
                          args=tuple(entry.args), env={**node.env, **entry.env})
    if not entry.url:
        raise McpConfigError(f"{ident} ({node.spec.path}): b00t.mcp.httpstream has no url")
    return LaunchSpec(server=node.spec.name, node=ident, transport=entry.transport, url=entry.url,
                      env={**entry.env})


def mcp_nodes(graph: Graph, targets: Iterable[str] | None = None) -> list[str]:
    """The mcp nodes a request is about: each target with MCP entries, else the mcp members of a target stack."""
    out: dict[str, None] = {}

    def visit(ident: str, seen: set[str]) -> None:
        if ident in seen or ident not in graph.nodes:
            return
        seen.add(ident)
        spec = graph.nodes[ident].spec
        if spec.mcp:
            out[ident] = None
            return
        for member in (*spec.members, *spec.optional):
            visit(member, seen)

    for target in graph.targets if targets is None else targets:
        visit(target, set())
    return list(out)


def launch_specs(graph: Graph, transport: str | None = None, *, strict: bool = True) -> dict[str, LaunchSpec]:
    """Launch specs of the targets' mcp nodes, by identity.

    ``strict``: a target that leads to no MCP entry (or none of ``transport``) is an error; otherwise
    such targets are left out (``ensure()`` of a non-mcp target).
    """
    specs: dict[str, LaunchSpec] = {}
    for target in graph.targets:
        found = mcp_nodes(graph, [target])
        if not found:
            if strict:
                node = graph.nodes[target]
                raise McpConfigError(f"{target} ({node.spec.path}) is not an MCP server and has no member that is "
                                     "one: no [[b00t.mcp.stdio]] or [[b00t.mcp.httpstream]] entry")
            continue
        for ident in found:
            if ident in specs:
                continue
            try:
                specs[ident] = launch_spec(graph, ident, transport)
            except McpConfigError:
                if strict:
                    raise
    return specs


def mcp_servers(specs: Mapping[str, LaunchSpec] | Iterable[LaunchSpec]) -> dict[str, Any]:
    """The ``{"mcpServers": {...}}`` object MCP clients read; keys are the datums' names."""
    items = specs.values() if isinstance(specs, Mapping) else specs
    servers: dict[str, Any] = {}
    for spec in items:
        key = spec.server if spec.server not in servers else spec.node
        servers[key] = spec.client_entry()
    return {"mcpServers": servers}
