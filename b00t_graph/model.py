"""The datum model: frozen attrs classes, pure data, no I/O.

A datum is one TOML file ``<name>.<type>.toml`` whose ``[b00t]`` table says how
to run a service, what it depends on and what environment it exports. Keys we
do not act on are kept in ``extra`` so nothing a user wrote is lost.
"""

from __future__ import annotations

from typing import Any

import attrs

#: Types b00t-graph runs itself; every other known type is a passive node.
MANAGED_TYPES = frozenset({"docker", "process"})
#: Types with nothing to start of their own: ready once their dependencies are.
GROUP_TYPES = frozenset({"mcp", "stack"})
#: Types found in real b00t folders. A type outside this set is most likely a typo.
KNOWN_TYPES = MANAGED_TYPES | GROUP_TYPES | frozenset(
    {
        "cli", "api", "ai", "ai_model", "k8s", "hive", "skill", "agent", "apt", "bash", "nix",
        "vscode", "config", "env", "job", "lfmf", "prompt", "template", "python", "npm", "cargo",
        "rust", "go", "node", "uv", "pip", "brew", "service", "tool", "dataset", "model", "compose",
    }
)


@attrs.frozen
class HealthCheck:
    """``[b00t.health_check]``: how to tell the service is ready, not just started.

    Exactly the probes that are set run, all must pass. Times are milliseconds:
    ``timeout_ms`` bounds the whole wait, ``probe_timeout_ms`` one try,
    ``interval_ms`` is the slowest retry pace (the first retries come much sooner).
    """

    http_url: str | None = None
    expected_status: int = 200
    tcp: str | None = None
    exec: list[str] | None = None
    log_regex: str | None = None
    timeout_ms: int = 60_000
    probe_timeout_ms: int = 2_000
    interval_ms: int = 1_000
    start_period_ms: int = 0
    retries: int | None = None
    docker: bool = True

    def probes(self) -> list[str]:
        """Short names of the probes that are set, for display."""
        out = []
        if self.http_url:
            out.append(f"http {self.http_url} → {self.expected_status}")
        if self.tcp:
            out.append(f"tcp {self.tcp}")
        if self.exec:
            out.append("exec " + " ".join(self.exec))
        if self.log_regex:
            out.append(f"log /{self.log_regex}/")
        return out


@attrs.frozen
class Resources:
    """``[b00t.resources]``: limits passed to the runtime (``memory_limit = "1G"``, ``cpu_limit = "2"``)."""

    memory_limit: str | None = None
    cpu_limit: str | None = None


@attrs.frozen
class Requirement:
    """One ``[[b00t.requirements]]`` entry; ``kind = "tcp_port"`` doubles as a readiness check."""

    kind: str
    host: str | None = None
    port: int | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Datum:
    """One service description, as written (``${VAR}`` references still unresolved)."""

    name: str
    type: str
    path: str
    depends_on: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    env: dict[str, str] = attrs.field(factory=dict)
    env_table: str = "b00t.env"
    hint: str | None = None
    image: str | None = None
    docker_args: tuple[str, ...] = ()
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] = ()
    cwd: str | None = None
    ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    network: str | None = None
    stop_grace_ms: int = 10_000
    health_check: HealthCheck | None = None
    resources: Resources | None = None
    requirements: tuple[Requirement, ...] = ()
    extra: dict[str, Any] = attrs.field(factory=dict)

    @property
    def id(self) -> str:
        """The identity other datums refer to: ``name.type``."""
        return f"{self.name}.{self.type}"

    @property
    def managed(self) -> bool:
        """Whether b00t-graph starts something for this datum."""
        return self.type in MANAGED_TYPES

    @property
    def passive(self) -> bool:
        """A type b00t-graph does not run and that is not a grouping type: shown as "not managed"."""
        return self.type not in MANAGED_TYPES and self.type not in GROUP_TYPES

    @property
    def edges(self) -> tuple[str, ...]:
        """Everything this datum waits for: its dependencies, and a stack's members."""
        seen: dict[str, None] = dict.fromkeys(self.depends_on)
        seen.update(dict.fromkeys(self.members))
        return tuple(seen)
