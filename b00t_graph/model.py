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
#: Runtimes that run a docker datum: a container on the local engine, or a Swarm service.
DOCKER_RUNTIMES = frozenset({"docker", "swarm"})
#: ``[b00t] on`` values (``up --on``): where a docker datum runs instead of the local engine.
PLACES = ("swarm",)
#: Types with nothing to start of their own: ready once their dependencies are.
GROUP_TYPES = frozenset({"mcp", "stack"})
#: Types found in real b00t folders. A type outside this set is most likely a typo.
KNOWN_TYPES = MANAGED_TYPES | GROUP_TYPES | frozenset(
    {
        "cli", "api", "ai", "ai_model", "k8s", "hive", "skill", "agent", "apt", "bash", "nix",
        "vscode", "config", "env", "job", "lfmf", "prompt", "template", "python", "npm", "cargo",
        "rust", "go", "node", "uv", "pip", "brew", "service", "tool", "dataset", "model", "compose",
        "container",
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
            out.append(f"http {self.http_url} → {self.expected_status or 'any response'}")
        if self.tcp:
            out.append(f"tcp {self.tcp}")
        if self.exec:
            out.append("exec " + " ".join(self.exec))
        if self.log_regex:
            out.append(f"log /{self.log_regex}/")
        return out


@attrs.frozen
class RestartPolicy:
    """``[b00t.restart]``: what ``up --attach`` does when a node it supervises dies or fails its liveness checks.

    ``policy``: ``"no"`` (report it, leave it), ``"on-failure"`` (restart when it exits with a non-zero code
    or fails liveness), ``"always"`` (restart whenever it stops). After ``max_restarts`` restarts in a row
    the node ends "failed". Restarts wait ``backoff_ms`` doubled each time up to ``max_backoff_ms``, with
    jitter. Liveness runs the datum's readiness probes every ``interval_ms`` (default: the health check's
    ``interval_ms``); ``failure_threshold`` misses in a row are a failure. A node that stays up
    ``reset_after_ms`` starts counting its restarts again from zero.
    """

    policy: str = "no"
    max_restarts: int = 5
    backoff_ms: int = 500
    max_backoff_ms: int = 30_000
    interval_ms: int | None = None
    failure_threshold: int = 3
    reset_after_ms: int = 60_000


#: ``[b00t.restart] policy`` values
RESTART_POLICIES = ("no", "on-failure", "always")


@attrs.frozen
class Resources:
    """``[b00t.resources]``: limits passed to the runtime (``memory_limit = "1G"``, ``cpu_limit = "2"``)."""

    memory_limit: str | None = None
    cpu_limit: str | None = None


@attrs.frozen
class Swarm:
    """``[b00t.swarm]``: a docker datum run as a Swarm service (``[b00t] on = "swarm"`` or ``up --on swarm``).

    ``constraints`` are placement constraints (``node.role == manager``); the reservations are what
    the scheduler sets aside on a node (limits come from ``[b00t.resources]`` and ``docker_args``).
    """

    replicas: int = 1
    constraints: tuple[str, ...] = ()
    memory_reservation: str | None = None
    cpu_reservation: str | None = None


@attrs.frozen
class Requirement:
    """One ``[[b00t.requirements]]`` entry; ``kind = "tcp_port"`` doubles as a readiness check."""

    kind: str
    host: str | None = None
    port: int | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Presence:
    """A presence check (b00t's ``version``/``version_regex``, ``[validate] command/regex``).

    ``command`` is the argv to run (``("sh", "-c", text)`` only when the text needs a shell);
    its output must match ``regex`` when one is given. ``install`` is b00t's install command,
    shown as the fix and run only when the user asks (``up --install-missing``).
    ``source`` is the key the check came from, for messages.
    """

    command: tuple[str, ...]
    regex: str | None = None
    install: str | None = None
    source: str = "b00t.version"
    timeout_ms: int = 10_000


@attrs.frozen
class Build:
    """``[b00t.docker.build]``: an image built through the Engine API before create.

    ``context`` is a folder (relative to the datum's folder) or a git URL; ``file`` the
    Dockerfile/Containerfile inside it; the built image is tagged with the datum's ``image``.
    """

    context: str
    file: str | None = None
    args: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class McpLaunch:
    """One way an MCP client reaches the server: ``[[b00t.mcp.stdio]]`` or ``[[b00t.mcp.httpstream]]``.

    The lowest ``priority`` wins unless a transport is asked for.
    """

    transport: str  # "stdio" | "httpstream"
    priority: int = 0
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = attrs.field(factory=dict)
    url: str | None = None


@attrs.frozen
class Need:
    """``[b00t.requires.<slot>]``: a capability another datum must provide.

    Resolution (a pure function of the catalogue) takes the first usable name in
    ``prefer``, else ``fallback``, else the only provider.
    """

    slot: str
    capability: str
    protocol: str | None = None
    prefer: tuple[str, ...] = ()
    fallback: str | None = None


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
    #: ``[b00t] engine``: the named Docker engine a docker datum runs on (``None``: the default one)
    engine: str | None = None
    stop_grace_ms: int = 10_000
    health_check: HealthCheck | None = None
    resources: Resources | None = None
    requirements: tuple[Requirement, ...] = ()
    #: The runtime chosen by a dialect when it is not the type's own (``"presence"`` for a cli
    #: check, ``"process"``/``"docker"`` for an mcp lifecycle server, ``"probe"`` for a loopback
    #: httpstream URL); ``None``: by type (``docker``, ``process``) or none at all.
    kind: str | None = None
    #: ``--name`` of ``docker_args`` or ``[[b00t.docker.run]] name``; default: the datum's name.
    container_name: str | None = None
    #: The container's restart policy (``no``, ``always``, ``on-failure[:N]``, ``unless-stopped``).
    restart: str | None = None
    #: ``[b00t.restart]``: supervision by ``up --attach`` (``restart`` above maps onto it when this is unset).
    restart_policy: RestartPolicy | None = None
    build: Build | None = None
    #: ``[b00t] on``: ``"swarm"`` runs a docker datum as a Swarm service (``None``: the local engine).
    on: str | None = None
    swarm: Swarm | None = None
    presence: Presence | None = None
    mcp: tuple[McpLaunch, ...] = ()
    #: Environment set for the service only (e.g. an mcp lifecycle server's ``env``), not exported.
    run_env: dict[str, str] = attrs.field(factory=dict)
    #: ``[b00t.provides] capability`` and ``[b00t] protocol``.
    provides: str | None = None
    protocol: str | None = None
    needs: tuple[Need, ...] = ()
    #: Stack components with ``required = false``: a missing or failed one is skipped with a note.
    optional: tuple[str, ...] = ()
    #: ``[env] required``: names that must be set before anything starts.
    env_required: tuple[str, ...] = ()
    #: ``[b00t.env.defaults]``: exported unless the name is set elsewhere.
    env_defaults: dict[str, str] = attrs.field(factory=dict)
    install: str | None = None
    #: Where an edge is written when not in ``depends_on``/``members`` as such (a ``requires`` list
    #: entry, a ``[b00t.stack.components]`` entry, a top-level ``[stack] members`` entry): ref → key.
    edge_keys: dict[str, str] = attrs.field(factory=dict)
    extra: dict[str, Any] = attrs.field(factory=dict)

    @property
    def id(self) -> str:
        """The identity other datums refer to: ``name.type``."""
        return f"{self.name}.{self.type}"

    @property
    def runtime(self) -> str | None:
        """The runtime that acts for this datum (a key of ``runtimes.RUNTIMES``), or ``None``."""
        kind = self.kind if self.kind is not None else self.type if self.type in MANAGED_TYPES else None
        return "swarm" if kind == "docker" and self.on == "swarm" else kind

    @property
    def managed(self) -> bool:
        """Whether a runtime acts for this datum (starts it, or checks it)."""
        return self.runtime is not None

    @property
    def passive(self) -> bool:
        """Nothing acts for it and it is not a grouping type: shown as "not managed"."""
        return not self.managed and self.type not in GROUP_TYPES

    @property
    def edges(self) -> tuple[str, ...]:
        """Everything this datum waits for: its dependencies, and a stack's members (optional ones too)."""
        seen: dict[str, None] = dict.fromkeys(self.depends_on)
        seen.update(dict.fromkeys(self.members))
        seen.update(dict.fromkeys(self.optional))
        return tuple(seen)
