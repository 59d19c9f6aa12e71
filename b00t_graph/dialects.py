"""b00t's many ways of writing a datum, normalised in one place into the one typed model.

Real b00t folders describe the same things in several shapes: a stack's members
as ``members``, ``[b00t.stack.components]`` or a top-level ``[stack]`` table; a
container as ``image`` + ``docker_args``, ``[[b00t.docker.run]]`` or
``[b00t.container]``; readiness as cli ``version``/``version_regex``, a
top-level ``[validate]`` table, ``[b00t.docker] healthcheck_cmd`` or an mcp
lifecycle server's ``health_check``. :func:`normalise` rewrites a parsed
document so the loader's converter sees only the canonical ``[b00t]`` keys, and
returns the fields the converter never reads (``kind``, ``presence``, ``mcp``,
``needs``…) ready for :func:`attrs.evolve`. Graph, engine and runtimes never see
the variants.

:data:`KEYS` is the one table of which b00t keys are acted on and which are read
but not acted on; ``validate`` notes and the README come from it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from . import textsafe
from .errors import Problem
from .model import MANAGED_TYPES, RESTART_POLICIES, Build, McpLaunch, Need, Presence, RestartPolicy

# --- the table ------------------------------------------------------------------------------------


@attrs.frozen
class KeyUse:
    """One b00t key (or shape): whether b00t-graph acts on it, and what it becomes."""

    key: str
    acted: bool
    becomes: str


KEYS: tuple[KeyUse, ...] = (
    # identity
    KeyUse("file name <name>.<type>.toml", True, "the datum's identity; `.container` runs as docker"),
    KeyUse("b00t.name, b00t.type", True, "checked against the file name; a difference is a note"),
    # stacks
    KeyUse("b00t.members", True, "members (optional: a stack may only `depends_on`)"),
    KeyUse("[b00t.stack.components] x = { datum, required }", True,
           "members; `required = false` → optional members"),
    KeyUse("[stack] members", True, "members"),
    # dependencies and capabilities
    KeyUse("b00t.depends_on", True, "dependencies"),
    KeyUse("b00t.requires = [\"x.cli\", …]; [b00t.depends_on] requires = [...]", True, "dependencies"),
    KeyUse("[b00t.provides] capability", True, "provides (indexed for `[b00t.requires.<slot>]`)"),
    KeyUse("b00t.protocol", True, "protocol of what the datum provides"),
    KeyUse("[b00t.requires.<slot>] capability, protocol, prefer, fallback", True, "needs: a resolved dependency"),
    # env
    KeyUse("[b00t.env], top-level [env]", True, "exported environment"),
    KeyUse("[env] required = [...]", True, "names that must be set before anything starts"),
    KeyUse("[b00t.env.defaults], [env.defaults]", True, "exported defaults, unless set elsewhere"),
    # containers
    KeyUse("b00t.image, docker_args, command, args, ports, volumes, network", True, "the container"),
    KeyUse("b00t.engine", True, "the named Docker engine a docker datum runs on (`b00t-graph.toml`)"),
    KeyUse("[[b00t.docker.run]] image, name, network, args, env, ports, volumes", True,
           "the container (`name` → container name, `env` → `-e`)"),
    KeyUse("[b00t.docker] registry, repository, tag", True, "the image name when `image` is not set"),
    KeyUse("[[b00t.docker.build]] context, file or dockerfile, args", True, "an image built before create"),
    KeyUse("[b00t.container] image, port, bind, name, volumes, gpu_device, build_file", True,
           "the container (`port` → `-p`, `gpu_device` → `--device`)"),
    KeyUse("--name in docker_args", True, "the container name when it differs from the datum name"),
    # readiness
    KeyUse("[b00t.health_check]", True, "readiness probes"),
    KeyUse("b00t.version, version_regex; [validate] command, regex; [version] cmd, regex", True,
           "a presence check (run, match, record the version)"),
    KeyUse("b00t.install (string or { command })", True, "shown as the fix of a failed presence check"),
    KeyUse("[b00t.docker] healthcheck_cmd, healthcheck_interval, healthcheck_timeout", True, "an exec probe"),
    KeyUse("[b00t.lifecycle] health_check_cmd, restart", True,
           "an exec probe; the restart policy (the container's, and `up --attach`'s unless [b00t.restart] is set)"),
    KeyUse("[b00t.restart] policy, max_restarts, backoff_ms, max_backoff_ms, interval_ms, failure_threshold, "
           "reset_after_ms", True, "supervision by `up --attach`: restarts, liveness"),
    KeyUse("b00t.restart_dependents", True, "`restart` of a dependency restarts this node too (kept in `extra`)"),
    KeyUse("[[b00t.requirements]] kind = \"tcp_port\"", True, "a TCP probe when no health check is set"),
    KeyUse("[b00t.resources] memory_limit, cpu_limit", True, "container limits"),
    KeyUse("b00t.on = \"swarm\"", True, "runs a docker datum as a Swarm service (as `up --on swarm`)"),
    KeyUse("[b00t.swarm] replicas, constraints, memory_reservation, cpu_reservation", True,
           "the Swarm service's replicas, placement and reservations"),
    # mcp
    KeyUse("[[b00t.mcp.stdio]] command, args, env, priority", True, "an MCP launch spec (`mcp-config`)"),
    KeyUse("[[b00t.mcp.httpstream]] url, priority, env", True,
           "an MCP launch spec; a loopback URL is probed for readiness"),
    KeyUse("[b00t.mcp.lifecycle] servers = [{ command, args, env, health_check }]", True,
           "a managed process (a container when its command is `docker run` or `podman run`)"),
    # read, not acted on
    KeyUse("hint", True, "shown by `plan`"),
    KeyUse("b00t.usage, b00t.learn, b00t.references, b00t.keywords, b00t.desires, b00t.lfmf_category", False,
           "documentation for people and agents"),
    KeyUse("b00t.orchestration, b00t.gate, b00t.roles, [roles], b00t.maintenance, b00t.setup", False,
           "b00t's own scheduling, gates and maintenance"),
    KeyUse("[b00t.provides] endpoints, operations, models; b00t.implements", False, "descriptive"),
    KeyUse("[b00t.stack] description, category, features; component min_version", False, "descriptive"),
    KeyUse("[b00t.container] runtime, api, model, server, discovery, entrypoint", False,
           "b00t-graph runs containers through the Docker Engine API"),
    KeyUse("[b00t.docker] platforms; oci_uri, resource_path", False, "b00t's image publishing"),
    KeyUse("mcp entries' requires, transport; [b00t.mcp.lifecycle] idle_timeout_secs", False,
           "b00t's own launcher choices"),
    KeyUse("b00t.update, b00t.source, b00t.docs, models tables, b00t.ai, b00t.python", False, "descriptive"),
)

#: Top-level tables and [b00t] keys read but not acted on, each with its one reason (notes are grouped by it).
_QUIET = {
    "usage": "documentation, not acted on", "learn": "documentation, not acted on",
    "references": "documentation, not acted on", "keywords": "documentation, not acted on",
    "desires": "not acted on (b00t's version wish)", "lfmf_category": "not acted on",
    "implements": "descriptive, not acted on", "models": "descriptive, not acted on",
    "orchestration": "b00t's own scheduling, not acted on",
    "gate": "b00t's own gates, not acted on", "roles": "not acted on", "maintenance": "not acted on",
    "update": "not acted on", "source": "descriptive, not acted on", "docs": "documentation, not acted on",
    "oci_uri": "not acted on", "resource_path": "not acted on",
}

_SHELL_CHARS = set("|&;<>*?[`\n")
_LOOPBACK = ("localhost", "::1")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
_DOCKER_BOOL_FLAGS = frozenset({"-d", "--detach", "--rm", "-i", "--interactive", "-t", "--tty", "-it", "-ti",
                                "--init", "--privileged", "-P", "--publish-all", "--read-only"})


@attrs.define
class Normalised:
    """A document rewritten to canonical keys, plus the fields only dialects fill."""

    doc: dict[str, Any]
    fields: dict[str, Any] = attrs.field(factory=dict)
    problems: list[Problem] = attrs.field(factory=list)
    notes: list[Problem] = attrs.field(factory=list)
    #: the ``name`` written inside the file when it differs from the file name
    declared_name: str | None = None


def describe(value: Any) -> str:
    """``string 'x'``, ``array``: how a TOML value is named in messages."""
    names = {str: "string", bool: "boolean", int: "integer", float: "float", list: "array", dict: "table"}
    kind = names.get(type(value), type(value).__name__)
    if isinstance(value, (dict, list)):
        return kind
    return f"{kind} {value!r}"


def needs_shell(text: str) -> bool:
    """Whether a command string uses shell syntax outside quotes (pipes, ``&&``, redirections, globs, ``$(``)."""
    quote = ""
    prev = ""
    for ch in text:
        if quote == "'":
            if ch == "'":
                quote = ""
        elif quote == '"':
            if ch == '"' and prev != "\\":
                quote = ""
            elif ch == "`" or (prev == "$" and (ch in "({_" or ch.isalpha())):
                return True
        elif ch in "'\"":
            quote = ch
        elif ch in _SHELL_CHARS or (prev == "$" and ch in "({") or (ch == "~" and prev in ("", " ")):
            return True
        elif prev == "$" and (ch.isalpha() or ch == "_"):
            return True  # $NAME: only a shell expands it
        prev = ch
    return False


def argv_of(text: str) -> tuple[str, ...]:
    """A command string as argv: split like a shell, or ``sh -c`` when it needs one. Raises ValueError."""
    if needs_shell(text):
        return ("sh", "-c", text)
    return tuple(textsafe.split(text))


def duration_ms(value: Any) -> int | None:
    """``"10s"``, ``"1m30s"``, ``"500ms"`` or a number of seconds → milliseconds; ``None`` if unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value * 1000)
    if not isinstance(value, str):
        return None
    text = value.strip()
    parts = _DURATION_RE.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return int(sum(float(n) * _DURATION_MS[u] for n, u in parts))


def is_loopback(url: str) -> bool:
    """``http://localhost:…``, ``127.x``, ``[::1]``: a server on this machine."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return host in _LOOPBACK or host.startswith("127.")


class _Reader:
    """Helpers that read one value of the document and record a problem when it has the wrong shape."""

    def __init__(self, path: str, out: Normalised) -> None:
        self.path = path
        self.out = out

    def problem(self, key: str, message: str) -> None:
        self.out.problems.append(Problem(self.path, key, message))

    def note(self, key: str, message: str) -> None:
        self.out.notes.append(Problem(self.path, key, message))

    def str_(self, value: Any, key: str) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            return value
        self.problem(key, f"expected a string, got {describe(value)}")
        return None

    def int_(self, value: Any, key: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        self.problem(key, f"expected an integer, got {describe(value)}")
        return None

    def strs(self, value: Any, key: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(key, f"expected an array of strings, got {describe(value)}")
            return []
        out = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append(item)
            else:
                self.problem(f"{key}[{i}]", f"expected a string, got {describe(item)}")
        return out

    def table(self, value: Any, key: str) -> dict[str, Any] | None:
        if value is None:
            return None
        if isinstance(value, dict):
            return value
        self.problem(key, f"expected a table, got {describe(value)}")
        return None

    def tables(self, value: Any, key: str) -> list[tuple[str, dict[str, Any]]]:
        """``[[x]]`` (an array of tables) or ``[x]`` (one table): each with its key path."""
        if value is None:
            return []
        if isinstance(value, dict):
            return [(key, value)]
        if isinstance(value, list):
            out = []
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    out.append((f"{key}[{i}]", item))
                else:
                    self.problem(f"{key}[{i}]", f"expected a table, got {describe(item)}")
            return out
        self.problem(key, f"expected a table or an array of tables, got {describe(value)}")
        return []

    def env(self, value: Any, key: str) -> dict[str, str]:
        """A table of environment values: strings, with numbers and booleans written as strings."""
        table = self.table(value, key)
        out: dict[str, str] = {}
        for name, val in (table or {}).items():
            if isinstance(val, bool):
                out[name] = "true" if val else "false"
            elif isinstance(val, (int, float, str)):
                out[name] = str(val)
            else:
                self.problem(f"{key}.{name}", f"expected a string, got {describe(val)}")
        return out

    def argv(self, text: str, key: str) -> tuple[str, ...]:
        try:
            return argv_of(text)
        except ValueError as exc:  # an unbalanced quote
            self.problem(key, f"cannot split into arguments: {exc} (in {textsafe.clip(repr(text))})")
            return ()

    def leftover(self, table: dict[str, Any], used: set[str], key: str, why: str) -> None:
        """Note each key of a dialect table that is read but not acted on (``[i]`` dropped, so notes group)."""
        where = re.sub(r"\[\d+\]", "", key)
        for rest in sorted(set(table) - used):
            self.note(f"{where}.{rest}", why)


# --- the entry point ------------------------------------------------------------------------------


def normalise(doc: dict[str, Any], path: str) -> Normalised:
    """Rewrite a parsed datum document into canonical ``[b00t]`` keys plus the dialect-only fields.

    ``doc`` is not modified. The caller has checked that ``doc["b00t"]`` is a table.
    """
    b00t = dict(doc["b00t"])
    top = {k: v for k, v in doc.items() if k != "b00t"}
    out = Normalised(doc={})
    r = _Reader(path, out)
    fields = out.fields

    _names(r, b00t, path)
    _stacks(r, b00t, top)
    _capabilities(r, b00t)
    _env_schema(r, b00t, top)
    _containers(r, b00t)
    _readiness(r, b00t, top)
    _mcp(r, b00t)

    if fields.get("kind") is None and b00t.get("type") == "container":
        fields["kind"] = "docker"
    _name_from_args(r, b00t)
    out.doc = {"b00t": b00t, **top}
    return out


# --- names ----------------------------------------------------------------------------------------


def _names(r: _Reader, b00t: dict[str, Any], path: str) -> None:
    """The file name decides the identity; a differing ``name``/``type`` inside is a note."""
    file_name, _, file_type = Path(path).name.removesuffix(".toml").rpartition(".")
    if not file_name:
        return  # the loader says the file name is wrong
    for key, from_file in (("name", file_name), ("type", file_type)):
        val = b00t.get(key)
        if val is None:
            b00t[key] = from_file
        elif not isinstance(val, str):
            r.problem(f"b00t.{key}", f"expected a string, got {describe(val)}")
            b00t[key] = from_file
        elif val != from_file:
            if key == "name":
                r.out.declared_name = val
                r.note("b00t.name", f"{val!r} differs from the file name; the file name decides: "
                                    f"this datum is {file_name}.{file_type} (asking for {val!r} finds it)")
            else:
                runs = " and runs as docker" if file_type == "container" else ""
                r.note("b00t.type", f"{val!r} differs from the file name's {file_type!r}; the file name "
                                    f"decides: this datum is {file_name}.{file_type}{runs}")
            b00t[key] = from_file


def _name_from_args(r: _Reader, b00t: dict[str, Any]) -> None:
    """``--name X`` in docker_args that differs from the datum name → the container name."""
    args = b00t.get("docker_args")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        return
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        value: str | None = None
        if arg == "--name" and i + 1 < len(args):
            value, i = args[i + 1], i + 2
        elif arg.startswith("--name="):
            value, i = arg.split("=", 1)[1], i + 1
        else:
            out.append(arg)
            i += 1
            continue
        if value == b00t.get("name"):
            out += ["--name", value]
        else:
            r.out.fields["container_name"] = value
    b00t["docker_args"] = out


# --- stacks ---------------------------------------------------------------------------------------


def _stacks(r: _Reader, b00t: dict[str, Any], top: dict[str, Any]) -> None:
    members: list[str] = []
    if isinstance(b00t.get("members"), list):
        members = list(b00t["members"])  # the converter checks the items
    elif "members" in b00t:
        return  # a wrong shape: the converter reports it with its key path
    optional: list[str] = []
    edge_keys: dict[str, str] = {}  # where each member is written, for messages about it
    stack = r.table(b00t.pop("stack", None), "b00t.stack")
    if stack is not None:
        comps = r.table(stack.get("components"), "b00t.stack.components") or {}
        extra_keys: set[str] = set()
        for slot, comp in comps.items():
            key = f"b00t.stack.components.{slot}"
            if isinstance(comp, str):
                members.append(comp)
                edge_keys.setdefault(comp, key)
                continue
            comp = r.table(comp, key)
            if comp is None:
                continue
            ref = r.str_(comp.get("datum"), f"{key}.datum")
            if ref is None:
                if "datum" not in comp:
                    r.problem(f"{key}.datum", "required: the component's datum (e.g. datum = \"uv.cli\")")
                continue
            required = comp.get("required", True)
            if not isinstance(required, bool):
                r.problem(f"{key}.required", f"expected true or false, got {describe(required)}")
                continue
            (members if required else optional).append(ref)
            edge_keys.setdefault(ref, f"{key}.datum")
            extra_keys |= set(comp) - {"datum", "required"}
        for extra_key in sorted(extra_keys):
            r.note(f"b00t.stack.components.{extra_key}", "read, not acted on")
        r.leftover(stack, {"components"}, "b00t.stack", "descriptive, not acted on")
    top_stack = r.table(top.pop("stack", None), "stack")
    if top_stack is not None:
        top_members = r.strs(top_stack.get("members"), "stack.members")
        for i, ref in enumerate(top_members):
            edge_keys.setdefault(ref, f"stack.members[{i}]")
        members += top_members
        r.leftover(top_stack, {"members"}, "stack", "read, not acted on")
    if members or "members" in b00t:
        b00t["members"] = list(dict.fromkeys(members))
    if optional:
        r.out.fields["optional"] = tuple(dict.fromkeys(o for o in optional if o not in members))
    if edge_keys:
        r.out.fields["edge_keys"] = {**r.out.fields.get("edge_keys", {}), **edge_keys}


# --- capabilities ---------------------------------------------------------------------------------


def _capabilities(r: _Reader, b00t: dict[str, Any]) -> None:
    fields = r.out.fields
    provides = b00t.pop("provides", None)
    if isinstance(provides, str):
        fields["provides"] = provides
    elif provides is not None:
        table = r.table(provides, "b00t.provides")
        if table is not None:
            fields["provides"] = r.str_(table.get("capability"), "b00t.provides.capability")
            r.leftover(table, {"capability"}, "b00t.provides", "descriptive, not acted on")
    if "protocol" in b00t:
        fields["protocol"] = r.str_(b00t.pop("protocol"), "b00t.protocol")

    deps_table = b00t.get("depends_on")
    if isinstance(deps_table, dict) and isinstance(deps_table.get("requires"), list):
        # [b00t.depends_on] requires = [...]: the same list, written as a table
        b00t["depends_on"] = r.strs(deps_table["requires"], "b00t.depends_on.requires")
        r.leftover(deps_table, {"requires"}, "b00t.depends_on", "not acted on")
    requires = b00t.pop("requires", None)
    if isinstance(requires, list):
        deps = b00t.get("depends_on", [])
        if isinstance(deps, list):
            listed = r.strs(requires, "b00t.requires")
            b00t["depends_on"] = list(dict.fromkeys([*deps, *listed]))
            r.out.fields["edge_keys"] = {**{ref: f"b00t.requires[{i}]" for i, ref in enumerate(listed)
                                            if ref not in deps},
                                         **r.out.fields.get("edge_keys", {})}
    elif requires is not None:
        table = r.table(requires, "b00t.requires") or {}
        needs = []
        for slot, spec in table.items():
            key = f"b00t.requires.{slot}"
            spec = r.table(spec, key)
            if spec is None:
                continue
            cap = r.str_(spec.get("capability"), f"{key}.capability")
            if cap is None:
                if "capability" not in spec:
                    r.problem(f"{key}.capability", "required: the capability a provider must declare "
                                                   "in [b00t.provides] (e.g. capability = \"embeddings\")")
                continue
            needs.append(Need(slot=slot, capability=cap, protocol=r.str_(spec.get("protocol"), f"{key}.protocol"),
                              prefer=tuple(r.strs(spec.get("prefer"), f"{key}.prefer")),
                              fallback=r.str_(spec.get("fallback"), f"{key}.fallback") or None))
            r.leftover(spec, {"capability", "protocol", "prefer", "fallback"}, key, "read, not acted on")
        fields["needs"] = tuple(needs)


# --- env schema -----------------------------------------------------------------------------------


def _env_schema(r: _Reader, b00t: dict[str, Any], top: dict[str, Any]) -> None:
    """``required = [...]`` and ``defaults = {...}`` inside an env table are a schema, not variables."""
    required: list[str] = []
    defaults: dict[str, str] = {}
    for key, holder in (("env", top), ("b00t.env", b00t)):
        table = holder.get("env")
        if not isinstance(table, dict):
            continue  # the loader reports a wrong shape
        table = dict(table)
        if isinstance(table.get("required"), list):
            required += r.strs(table.pop("required"), f"{key}.required")
        if isinstance(table.get("optional"), list):
            table.pop("optional")
            r.note(f"{key}.optional", "names that may be set: read, not acted on")
        if isinstance(table.get("defaults"), dict):
            defaults.update(r.env(table.pop("defaults"), f"{key}.defaults"))
        holder["env"] = table
    if required:
        r.out.fields["env_required"] = tuple(dict.fromkeys(required))
    if defaults:
        r.out.fields["env_defaults"] = defaults


# --- containers -----------------------------------------------------------------------------------


def _set(r: _Reader, b00t: dict[str, Any], key: str, value: Any, source: str) -> None:
    """Set a canonical key from a dialect unless the datum already sets it (then a differing value is a note)."""
    if value is None or value == [] or value == ():
        return
    if key not in b00t:
        b00t[key] = value
    elif isinstance(b00t[key], list) and isinstance(value, list):
        b00t[key] = [*b00t[key], *(v for v in value if v not in b00t[key])]
    elif b00t[key] != value:
        r.note(source, f"{value!r} differs from b00t.{key} = {b00t[key]!r}; b00t.{key} is used")


def _containers(r: _Reader, b00t: dict[str, Any]) -> None:
    fields = r.out.fields
    docker = r.table(b00t.pop("docker", None), "b00t.docker")
    if docker is not None:
        for key, entry in r.tables(docker.get("run"), "b00t.docker.run")[:1]:
            _docker_run(r, b00t, entry, key)
        runs = docker.get("run")
        if isinstance(runs, list) and len(runs) > 1:
            r.note("b00t.docker.run", f"{len(runs)} entries: the first is used")
        builds = r.tables(docker.get("build"), "b00t.docker.build")
        if builds:
            key, entry = builds[0]
            fields["build"] = _build(r, entry, key)
            if len(builds) > 1:
                r.note("b00t.docker.build", f"{len(builds)} entries: the first is used")
        repo = r.str_(docker.get("repository"), "b00t.docker.repository")
        if repo:
            registry = r.str_(docker.get("registry"), "b00t.docker.registry")
            tag = r.str_(docker.get("tag"), "b00t.docker.tag")
            image = f"{registry.rstrip('/')}/{repo}" if registry and not repo.startswith(registry) else repo
            _set(r, b00t, "image", f"{image}:{tag}" if tag else image, "b00t.docker.repository")
        _docker_health(r, b00t, docker)
        r.leftover(docker, {"run", "build", "repository", "registry", "tag", "healthcheck_cmd",
                            "healthcheck_interval", "healthcheck_timeout", "healthcheck_retries",
                            "healthcheck_start_period"}, "b00t.docker", "not acted on")
    container = r.table(b00t.pop("container", None), "b00t.container")
    if container is not None:
        _container(r, b00t, container)
    if fields.get("build") is not None and not b00t.get("image"):
        b00t["image"] = f"{b00t.get('name')}:latest"


def _docker_run(r: _Reader, b00t: dict[str, Any], run: dict[str, Any], key: str) -> None:
    _set(r, b00t, "image", r.str_(run.get("image"), f"{key}.image"), f"{key}.image")
    name = r.str_(run.get("name"), f"{key}.name")
    if name and name != b00t.get("name"):
        r.out.fields["container_name"] = name
    _set(r, b00t, "network", r.str_(run.get("network"), f"{key}.network"), f"{key}.network")
    args = run.get("args")
    if isinstance(args, str):
        args = list(r.argv(args, f"{key}.args"))
    _set(r, b00t, "args", r.strs(args, f"{key}.args"), f"{key}.args")
    if isinstance(run.get("command"), (str, list)):
        cmd = run["command"]
        _set(r, b00t, "command", list(r.argv(cmd, f"{key}.command")) if isinstance(cmd, str)
             else r.strs(cmd, f"{key}.command"), f"{key}.command")
    env = run.get("env")
    pairs = r.strs(env, f"{key}.env") if isinstance(env, list) else \
        [f"{k}={v}" for k, v in r.env(env, f"{key}.env").items()]
    extra_args: list[str] = []
    for pair in pairs:
        extra_args += ["-e", pair]
    for flag, field in (("-p", "ports"), ("-v", "volumes")):
        for item in r.strs(run.get(field), f"{key}.{field}"):
            extra_args += [flag, item]
    if extra_args:
        da = b00t.get("docker_args", [])
        if isinstance(da, str):
            da = list(r.argv(da, "b00t.docker_args"))
        if isinstance(da, list):
            b00t["docker_args"] = [*da, *extra_args]
    r.leftover(run, {"image", "name", "network", "args", "command", "env", "ports", "volumes"}, key, "not acted on")


def _build(r: _Reader, entry: dict[str, Any], key: str) -> Build | None:
    context = r.str_(entry.get("context"), f"{key}.context")
    file = r.str_(entry.get("file"), f"{key}.file") or r.str_(entry.get("dockerfile"), f"{key}.dockerfile")
    if context is None:
        if "context" not in entry and file is None:
            r.problem(f"{key}.context", "required: a folder or a git URL to build from")
            return None
        context = "."
    if file and context not in (".", "") and "://" not in context and file.startswith(context.rstrip("/") + "/"):
        file = file[len(context.rstrip("/")) + 1:]  # written from the datum folder; the engine wants it in context
    args = r.env(entry.get("args"), f"{key}.args")
    r.leftover(entry, {"context", "file", "dockerfile", "args"}, key, "not acted on")
    return Build(context=context, file=file, args=args)


def _docker_health(r: _Reader, b00t: dict[str, Any], docker: dict[str, Any]) -> None:
    cmd = r.str_(docker.get("healthcheck_cmd"), "b00t.docker.healthcheck_cmd")
    if not cmd:
        return
    hc: dict[str, Any] = {"exec": list(r.argv(cmd, "b00t.docker.healthcheck_cmd"))}
    for key, field in (("healthcheck_interval", "interval_ms"), ("healthcheck_timeout", "probe_timeout_ms"),
                       ("healthcheck_start_period", "start_period_ms")):
        if key in docker:
            ms = duration_ms(docker[key])
            if ms is None or ms <= 0:
                r.problem(f"b00t.docker.{key}", f"expected a duration like \"10s\", got {describe(docker[key])}")
            else:
                hc[field] = ms
    if "healthcheck_retries" in docker:
        retries = r.int_(docker["healthcheck_retries"], "b00t.docker.healthcheck_retries")
        if retries is not None:
            hc["retries"] = retries
    _merge_health(r, b00t, hc, "b00t.docker.healthcheck_cmd")


def _merge_health(r: _Reader, b00t: dict[str, Any], hc: dict[str, Any], source: str) -> None:
    current = b00t.get("health_check")
    if current is None:
        b00t["health_check"] = hc
    elif isinstance(current, dict):
        if "exec" in current:
            r.note(source, "[b00t.health_check] exec is used")
        b00t["health_check"] = {**hc, **current}


def _container(r: _Reader, b00t: dict[str, Any], c: dict[str, Any]) -> None:
    image = r.str_(c.get("image"), "b00t.container.image")
    if image is None and isinstance(c.get("repo"), str):
        registry, tag = c.get("registry"), c.get("tag")
        image = f"{registry}/{c['repo']}" if isinstance(registry, str) else c["repo"]
        image += f":{tag}" if isinstance(tag, str) else ""
    _set(r, b00t, "image", image, "b00t.container.image")
    name = r.str_(c.get("name"), "b00t.container.name")
    if name and name != b00t.get("name"):
        r.out.fields["container_name"] = name
    args: list[str] = []
    port = c.get("port")
    if port is not None:
        n = r.int_(port, "b00t.container.port")
        bind = r.str_(c.get("bind"), "b00t.container.bind")
        if n is not None:
            args += ["-p", f"{bind}:{n}:{n}" if bind else f"{n}:{n}"]
    gpu = r.str_(c.get("gpu_device"), "b00t.container.gpu_device")
    if gpu:
        args += ["--device", gpu]
    vols = []
    for key, v in r.tables(c.get("volumes"), "b00t.container.volumes"):
        host, inside = r.str_(v.get("host"), f"{key}.host"), r.str_(v.get("container"), f"{key}.container")
        if host and inside:
            vols.append(f"{host}:{inside}:ro" if v.get("readonly") is True else f"{host}:{inside}")
        elif "host" not in v or "container" not in v:
            r.problem(key, "expected a table with host and container")
    _set(r, b00t, "volumes", vols, "b00t.container.volumes")
    if args:
        da = b00t.get("docker_args", [])
        if isinstance(da, list):
            b00t["docker_args"] = [*da, *args]
    build_file = r.str_(c.get("build_file"), "b00t.container.build_file")
    if build_file and r.out.fields.get("build") is None:
        folder, _, file = build_file.rpartition("/")
        r.out.fields["build"] = Build(context=folder or ".", file=file)
    r.leftover(c, {"image", "repo", "registry", "tag", "name", "port", "bind", "gpu_device", "volumes", "build_file"},
               "b00t.container", "not acted on (containers run through the Docker Engine API)")


# --- readiness ------------------------------------------------------------------------------------


def _install(r: _Reader, b00t: dict[str, Any]) -> None:
    inst = b00t.pop("install", None)
    if isinstance(inst, str):
        r.out.fields["install"] = inst.strip() or None
    elif isinstance(inst, dict):
        cmd = inst.get("command", inst.get("cmd"))
        if isinstance(cmd, str):
            r.out.fields["install"] = cmd.strip() or None
        else:
            r.note("b00t.install", "a package-manager table: read, not acted on")
    elif inst is not None:
        r.problem("b00t.install", f"expected a string or a table with command, got {describe(inst)}")


def _readiness(r: _Reader, b00t: dict[str, Any], top: dict[str, Any]) -> None:
    fields = r.out.fields
    _install(r, b00t)
    # A presence check: b00t.version (+ version_regex), else [validate] command/regex, else [version] cmd/regex.
    candidates: list[tuple[str, Any, Any, str]] = []
    if "version" in b00t:
        candidates.append(("b00t.version", b00t.pop("version"), b00t.pop("version_regex", None),
                           "b00t.version_regex"))
    elif "version_regex" in b00t:
        r.note("b00t.version_regex", "without b00t.version: not acted on")
        b00t.pop("version_regex")
    validate = r.table(top.pop("validate", None), "validate")
    if validate is not None:
        candidates.append(("validate.command", validate.get("command"), validate.get("regex"), "validate.regex"))
        r.leftover(validate, {"command", "regex"}, "validate", "not acted on")
    version = top.get("version")
    if isinstance(version, dict) and "cmd" in version:
        top.pop("version")
        candidates.append(("version.cmd", version.get("cmd"), version.get("regex"), "version.regex"))
        r.leftover(version, {"cmd", "regex"}, "version", "not acted on")
    presence: Presence | None = None
    for source, cmd, regex, regex_key in candidates:
        text = r.str_(cmd, source)
        pattern = r.str_(regex, regex_key)
        if not text or not text.strip():
            continue
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                r.problem(regex_key, f"invalid regular expression: {exc}")
                continue
        argv = r.argv(text.strip(), source)
        if argv and presence is None:
            presence = Presence(command=argv, regex=pattern or None, install=fields.get("install"), source=source)
    if presence is not None:
        fields["presence"] = presence
        typ = b00t.get("type")
        if typ in ("docker", "container") and not b00t.get("image"):
            r.note("b00t.image", f"not set: this {typ} datum runs as a presence check ({presence.source})")
            fields["kind"] = "presence"
        elif typ not in ("docker", "process", "stack", "container"):
            fields["kind"] = "presence"

    lifecycle = r.table(b00t.pop("lifecycle", None), "b00t.lifecycle")
    if lifecycle is not None:
        cmd = r.str_(lifecycle.get("health_check_cmd"), "b00t.lifecycle.health_check_cmd")
        if cmd:
            _merge_health(r, b00t, {"exec": list(r.argv(cmd, "b00t.lifecycle.health_check_cmd"))},
                          "b00t.lifecycle.health_check_cmd")
        restart = r.str_(lifecycle.get("restart"), "b00t.lifecycle.restart")
        if restart:
            fields["restart"] = restart
        r.leftover(lifecycle, {"health_check_cmd", "restart"}, "b00t.lifecycle", "not acted on")
    if isinstance(b00t.get("restart"), dict):
        policy = _restart_policy(r, b00t.pop("restart"))
        if policy is not None:
            fields["restart_policy"] = policy
    elif "restart" in b00t:
        fields["restart"] = r.str_(b00t.pop("restart"), "b00t.restart")


def _restart_policy(r: _Reader, table: dict[str, Any]) -> RestartPolicy | None:
    """``[b00t.restart]`` → :class:`RestartPolicy`; a bad value is a problem naming its key."""
    values: dict[str, Any] = {}
    policy = r.str_(table.get("policy"), "b00t.restart.policy")
    if policy is not None:
        if policy not in RESTART_POLICIES:
            r.problem("b00t.restart.policy", f"{policy!r}: expected one of {', '.join(RESTART_POLICIES)}")
            return None
        values["policy"] = policy
    ints = ("max_restarts", "backoff_ms", "max_backoff_ms", "interval_ms", "failure_threshold", "reset_after_ms")
    for key in ints:
        value = r.int_(table.get(key), f"b00t.restart.{key}")
        if value is None:
            continue
        if value < (0 if key == "max_restarts" else 1):
            what = "non-negative" if key == "max_restarts" else "positive"
            r.problem(f"b00t.restart.{key}", f"{value}: expected a {what} integer")
            return None
        values[key] = value
    unknown = sorted(set(table) - {"policy", *ints})
    if unknown:
        r.problem("b00t.restart", f"unknown key(s): {', '.join(unknown)} (known: policy, {', '.join(ints)})")
        return None
    return RestartPolicy(**values)


# --- mcp ------------------------------------------------------------------------------------------


def _mcp(r: _Reader, b00t: dict[str, Any]) -> None:
    mcp = r.table(b00t.pop("mcp", None), "b00t.mcp")
    if mcp is None:
        return
    fields = r.out.fields
    launches: list[McpLaunch] = []
    for transport in ("stdio", "httpstream"):
        for key, entry in r.tables(mcp.get(transport), f"b00t.mcp.{transport}"):
            launch = _launch(r, transport, entry, key)
            if launch is not None:
                launches.append(launch)
    if "command" in mcp:  # the flat form: [b00t.mcp] command/args + [b00t.mcp.env]
        launch = _launch(r, "stdio", {k: v for k, v in mcp.items() if k in ("command", "args", "env", "priority")},
                         "b00t.mcp")
        if launch is not None:
            launches.append(launch)
    launches.sort(key=lambda m: m.priority)  # stable: file order among equal priorities
    fields["mcp"] = tuple(launches)
    lifecycle = r.table(mcp.get("lifecycle"), "b00t.mcp.lifecycle")
    server_key = None
    if lifecycle is not None:
        servers = r.tables(lifecycle.get("servers"), "b00t.mcp.lifecycle.servers")
        if servers:
            server_key, server = servers[0]
            _lifecycle_server(r, b00t, server, server_key)
            if len(servers) > 1:
                r.note("b00t.mcp.lifecycle.servers", f"{len(servers)} servers: the first is started")
        r.leftover(lifecycle, {"servers"}, "b00t.mcp.lifecycle", "b00t's idle reaping, not acted on")
    # A loopback server that nothing here starts is probed; a docker or process datum starts it itself.
    if server_key is None and launches and launches[0].transport == "httpstream" and launches[0].url \
            and is_loopback(launches[0].url) and fields.get("kind") is None \
            and b00t.get("type") not in MANAGED_TYPES:
        fields["kind"] = "probe"
        _merge_health(r, b00t, {"http_url": launches[0].url, "expected_status": 0}, "b00t.mcp.httpstream")
    r.leftover(mcp, {"stdio", "httpstream", "lifecycle", "command", "args", "env", "priority"}, "b00t.mcp",
               "not acted on")


def _launch(r: _Reader, transport: str, entry: dict[str, Any], key: str) -> McpLaunch | None:
    priority = r.int_(entry.get("priority", 0), f"{key}.priority")
    env = r.env(entry.get("env"), f"{key}.env")
    if transport == "stdio":
        command = r.str_(entry.get("command"), f"{key}.command")
        if command is None:
            if "command" not in entry:
                r.problem(f"{key}.command", "required: the program an MCP client starts")
            return None
        args = entry.get("args")
        argv = r.argv(args, f"{key}.args") if isinstance(args, str) else tuple(r.strs(args, f"{key}.args"))
        used = {"command", "args", "env", "priority"}
        r.leftover(entry, used, key, "b00t's launcher choice, not acted on")
        return McpLaunch(transport="stdio", priority=priority or 0, command=command, args=argv, env=env)
    url = r.str_(entry.get("url"), f"{key}.url")
    if url is None:
        if "url" not in entry:
            r.problem(f"{key}.url", "required: the server's URL")
        return None
    r.leftover(entry, {"url", "env", "priority"}, key, "b00t's launcher choice, not acted on")
    return McpLaunch(transport="httpstream", priority=priority or 0, url=url, env=env)


def _lifecycle_server(r: _Reader, b00t: dict[str, Any], server: dict[str, Any], key: str) -> None:
    fields = r.out.fields
    command = r.str_(server.get("command"), f"{key}.command")
    if command is None:
        if "command" not in server:
            r.problem(f"{key}.command", "required: the program that serves")
        return
    args = server.get("args")
    argv = list(r.argv(args, f"{key}.args")) if isinstance(args, str) else r.strs(args, f"{key}.args")
    env = r.env(server.get("env"), f"{key}.env")
    hc: dict[str, Any] | None = None
    check = r.table(server.get("health_check"), f"{key}.health_check")
    if check is not None:
        kind = check.get("type")
        if kind == "tcp_port":
            port = r.int_(check.get("port"), f"{key}.health_check.port")
            host = r.str_(check.get("host", "127.0.0.1"), f"{key}.health_check.host") or "127.0.0.1"
            if port is not None:
                hc = {"tcp": f"{host}:{port}"}
            elif "port" not in check:
                r.problem(f"{key}.health_check.port", "required for type = \"tcp_port\"")
        elif kind in ("http_get", "http"):
            url = r.str_(check.get("url"), f"{key}.health_check.url")
            if url:
                hc = {"http_url": url}
        elif kind != "process_alive":
            r.note(f"{key}.health_check.type", f"{kind!r}: not acted on (known: tcp_port, http_get, process_alive)")
    if Path(command).name in ("docker", "podman") and argv[:1] == ["run"]:
        image, docker_args, rest = split_docker_run(argv[1:])
        if image is None:
            r.problem(f"{key}.args", "a `docker run` without an image")
            return
        fields["kind"] = "docker"
        b00t["image"] = image
        b00t["docker_args"] = docker_args
        if rest:
            b00t["args"] = rest
        for k, v in env.items():
            b00t["docker_args"] += ["-e", f"{k}={v}"]
    else:
        fields["kind"] = "process"
        b00t["command"] = [command]
        b00t["args"] = argv
        fields["run_env"] = env
    if hc is not None:
        _merge_health(r, b00t, hc, f"{key}.health_check")
    r.leftover(server, {"command", "args", "env", "health_check", "name"}, key, "not acted on")


def split_docker_run(args: list[str]) -> tuple[str | None, list[str], list[str]]:
    """``docker run`` arguments → (image, flags, command after the image)."""
    flags: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") or arg == "-":
            return arg, flags, args[i + 1:]
        flags.append(arg)
        takes_value = "=" not in arg and arg not in _DOCKER_BOOL_FLAGS and not (
            len(arg) > 2 and arg[1] != "-" and set(arg[1:]) <= set("dit"))
        if takes_value and i + 1 < len(args):
            flags.append(args[i + 1])
            i += 1
        i += 1
    return None, flags, []


#: Reasons for keys that are read but not acted on, by top-level or [b00t] key (used by the loader's notes).
def quiet_reason(key: str) -> str | None:
    """Why a leftover key is not acted on, when the table above says so."""
    return _QUIET.get(key)


__all__ = ["KEYS", "KeyUse", "Normalised", "argv_of", "duration_ms", "is_loopback", "needs_shell", "normalise",
           "quiet_reason", "split_docker_run"]
