"""``docker run`` flags, as b00t users write them in ``docker_args``, turned into an Engine API body.

Pure: no I/O beyond ``~`` expansion, no aiodocker. :func:`check` runs when a
graph is compiled, so ``plan``/``validate`` report a bad flag before anything
starts; :func:`plan` gives the runtime the ``POST /containers/create`` body and
the networks and named volumes it must create (with labels) first.

The structured keys ``ports``, ``volumes``, ``network``, ``command``/``args``
and ``resources`` use the same syntax as the matching flags and are merged
with them. Flags follow the docker CLI (``-p 80``, ``-p=80``, ``-p80``,
``--publish=80``, ``-dit``) with these deliberate differences:

* ``--name`` (or the datum's ``container_name``) names the container; without
  it the container is named after the datum. Ownership is by label either way,
  and two datums of one graph naming the same container are an error.
* ``restart`` (``[b00t.lifecycle] restart``) is the same as ``--restart``.
* A datum with a ``build`` and no ``image`` gets a local image name of its own
  (``b00t-graph/<name>:latest``).
* ``-d``/``--detach`` and ``--rm`` are accepted and ignored. Containers always
  run detached; ``--rm`` (engine-side auto-removal) would delete a container
  that exits during start-up before its log tail can be shown, and ``down``
  removes containers anyway.
* ``-e KEY`` without a value takes ``KEY`` from the node's environment (its
  dependencies' exports and its own ``[b00t.env]``), not from the shell: the
  container must get the same environment whoever runs ``up``.
* Relative bind-mount sources (``./data:/data``) are relative to the datum's
  folder, like a process datum's ``cwd``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import DatumError, Problem

if TYPE_CHECKING:
    from ..graph import Node
    from ..model import Datum

KEY = "b00t.docker_args"

#: Network modes the engine provides itself; anything else is a user-defined network we may create.
BUILTIN_NETWORKS = frozenset({"bridge", "host", "none", "default"})
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]+$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RAM_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)(b?)$", re.IGNORECASE)
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_ULIMITS = frozenset({"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
                      "rss", "rtprio", "rttime", "sigpending", "stack"})
_VOLUME_OPTS = frozenset({"ro", "rw", "z", "Z", "nocopy", "shared", "slave", "private", "rshared", "rslave",
                          "rprivate", "delegated", "cached", "consistent"})
_RESTART = frozenset({"no", "always", "unless-stopped", "on-failure"})
_PULL = frozenset({"missing", "never", "always"})


class _Bad(ValueError):
    """A flag value that cannot be used; the message is shown to the user as is."""


@attrs.frozen
class ContainerPlan:
    """Everything the runtime needs to create one node's container."""

    name: str
    image: str
    #: body of ``POST /containers/create``
    config: dict[str, Any]
    #: user-defined networks the container joins (created with our labels when absent)
    networks: tuple[str, ...] = ()
    #: named volumes it mounts (created with our labels when absent)
    volumes: tuple[str, ...] = ()
    #: ``--pull``: missing (default), never or always
    pull: str = "missing"
    #: ``--platform``, passed to create and pull
    platform: str | None = None


# --- value parsers (each raises _Bad with a message for people) ---------------------------------


def parse_bytes(text: str) -> int:
    """``512m``, ``1G``, ``4Gi``, ``1.5gb`` → bytes; units are powers of 1024 as in the docker CLI."""
    m = _RAM_RE.match(text.strip())
    if not m:
        raise _Bad(f"{text!r} is not a size (e.g. 512m, 1g, 4Gi)")
    power = "bkmgtp".index(m.group(2).lower() or "b")
    return int(float(m.group(1)) * 1024**power)


def parse_cpus(text: str) -> int:
    """``2``, ``0.5`` or ``500m`` (millicpus) → NanoCpus."""
    t = text.strip()
    try:
        value = float(t[:-1]) / 1000 if t.endswith("m") else float(t)
    except ValueError:
        raise _Bad(f"{text!r} is not a number of CPUs (e.g. 2, 0.5, 500m)") from None
    if value <= 0:
        raise _Bad(f"{text!r}: the number of CPUs must be positive")
    return round(value * 1e9)


def parse_duration(text: str) -> int:
    """A Go duration (``1m30s``, ``500ms``) → nanoseconds."""
    t = text.strip()
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(t):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_NS[m.group(2)]
        pos = m.end()
    if pos != len(t) or not t:
        raise _Bad(f"{text!r} is not a duration (e.g. 500ms, 10s, 1m30s)")
    return int(total)


def _port_range(text: str, what: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    try:
        a = int(lo)
        b = int(hi) if sep else a
    except ValueError:
        raise _Bad(f"{what} {text!r} is not a port number or range") from None
    if not (1 <= a <= 65535 and 1 <= b <= 65535) or b < a:
        raise _Bad(f"{what} {text!r} is out of range (1-65535)")
    return a, b


def parse_publish(spec: str) -> list[tuple[str, str, str]]:
    """``[ip:][host:]container[/proto]`` (ports may be ranges) → ``(container/proto, host_ip, host_port)``."""
    rest, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp", "sctp"):
        raise _Bad(f"{spec!r}: unknown protocol {proto!r} (tcp, udp or sctp)")
    ip = ""
    if rest.startswith("["):
        ip, sep, rest = rest[1:].partition("]:")
        if not sep:
            raise _Bad(f"{spec!r}: an IPv6 address is written [addr]:host:container")
        parts = rest.split(":")
        if len(parts) != 2:
            raise _Bad(f"{spec!r}: expected [ip]:host:container")
        host, ctr = parts
    else:
        parts = rest.split(":")
        if len(parts) == 1:
            host, ctr = "", parts[0]
        elif len(parts) == 2:
            host, ctr = parts
        elif len(parts) == 3:
            ip, host, ctr = parts
        else:
            raise _Bad(f"{spec!r}: expected [ip:][host:]container[/proto] (write IPv6 addresses in [])")
    c_lo, c_hi = _port_range(ctr, "container port")
    if not host:
        return [(f"{p}/{proto}", ip, "") for p in range(c_lo, c_hi + 1)]
    h_lo, h_hi = _port_range(host, "host port")
    if c_lo == c_hi and h_lo != h_hi:
        # docker: a host range for one container port means "any free port of the range"
        return [(f"{c_lo}/{proto}", ip, host)]
    if h_hi - h_lo != c_hi - c_lo:
        raise _Bad(f"{spec!r}: host and container port ranges differ in size")
    return [(f"{c}/{proto}", ip, str(h_lo + i)) for i, c in enumerate(range(c_lo, c_hi + 1))]


def _expand_source(src: str, base: Path) -> str:
    """``~/x`` → the home folder; ``./x`` → relative to the datum's folder."""
    path = Path(src).expanduser()
    if not path.is_absolute():
        path = base / path
    return str(path)


def _is_path(src: str) -> bool:
    return src.startswith(("/", "~", "."))


def _csv_fields(text: str) -> list[str]:
    import csv

    return next(csv.reader([text]), [])


def _bool_text(text: str, flag: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "t", "yes"):
        return True
    if low in ("0", "false", "f", "no"):
        return False
    raise _Bad(f"{flag}: {text!r} is not true or false")


# --- the flags -----------------------------------------------------------------------------------


@attrs.define
class _Builder:
    """Accumulates one container's settings while the flags are read."""

    node: Node
    base: Path
    config: dict[str, Any] = attrs.field(factory=dict)
    host: dict[str, Any] = attrs.field(factory=dict)
    env: dict[str, str] = attrs.field(factory=dict)
    labels: dict[str, str] = attrs.field(factory=dict)
    exposed: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    bindings: dict[str, list[dict[str, str]]] = attrs.field(factory=dict)
    binds: list[str] = attrs.field(factory=list)
    mounts: list[dict[str, Any]] = attrs.field(factory=list)
    anon: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    networks: list[str] = attrs.field(factory=list)
    aliases: list[str] = attrs.field(factory=list)
    volumes: list[str] = attrs.field(factory=list)
    health: dict[str, Any] = attrs.field(factory=dict)
    pull: str = "missing"
    platform: str | None = None
    container_name: str | None = None

    def append(self, key: str, value: Any, *, host: bool = True) -> None:
        target = self.host if host else self.config
        target.setdefault(key, []).append(value)

    # each handler takes the flag's value (str for value flags, bool for switches)

    def publish(self, v: str) -> None:
        try:
            ports = parse_publish(v)
        except _Bad as exc:
            raise exc if repr(v) in str(exc) else _Bad(f"{v!r}: {exc}") from None
        for port, ip, hp in ports:
            self.exposed[port] = {}
            self.bindings.setdefault(port, []).append({"HostIp": ip, "HostPort": hp})

    def expose(self, v: str) -> None:
        rest, _, proto = v.partition("/")
        lo, hi = _port_range(rest, "port")
        for p in range(lo, hi + 1):
            self.exposed[f"{p}/{proto or 'tcp'}"] = {}

    def volume(self, v: str) -> None:
        parts = v.split(":")
        if len(parts) == 1:
            if not v.startswith("/"):
                raise _Bad(f"{v!r}: an anonymous volume needs an absolute container path")
            self.anon[v] = {}
            return
        if len(parts) > 3:
            raise _Bad(f"{v!r}: expected source:destination[:options]")
        src, dst = parts[0], parts[1]
        opts = parts[2] if len(parts) == 3 else ""
        if not dst.startswith("/"):
            raise _Bad(f"{v!r}: the container path {dst!r} must be absolute")
        bad = [o for o in opts.split(",") if o and o not in _VOLUME_OPTS]
        if bad:
            raise _Bad(f"{v!r}: unknown volume option(s) {', '.join(bad)} (known: {', '.join(sorted(_VOLUME_OPTS))})")
        if _is_path(src):
            src = _expand_source(src, self.base)
        elif _NAME_RE.match(src):
            self._named(src)
        else:
            raise _Bad(f"{v!r}: {src!r} is neither a path (/…, ./…, ~/…) nor a volume name")
        self.binds.append(f"{src}:{dst}" + (f":{opts}" if opts else ""))

    def _named(self, name: str) -> None:
        if name not in self.volumes:
            self.volumes.append(name)

    def mount(self, v: str) -> None:
        fields: dict[str, str] = {}
        for item in _csv_fields(v):
            key, sep, val = item.partition("=")
            fields[key.strip().lower()] = val if sep else "true"
        kind = fields.pop("type", "volume")
        src = fields.pop("source", None) or fields.pop("src", None) or ""
        dst = fields.pop("target", None) or fields.pop("destination", None) or fields.pop("dst", None)
        if not dst or not dst.startswith("/"):
            raise _Bad(f"{v!r}: needs target=/absolute/path")
        ro = False
        for key in ("readonly", "ro"):
            if key in fields:
                ro = _bool_text(fields.pop(key), "--mount readonly")
        m: dict[str, Any] = {"Type": kind, "Target": dst, "ReadOnly": ro}
        if kind == "bind":
            if not src:
                raise _Bad(f"{v!r}: a bind mount needs source=")
            m["Source"] = _expand_source(src, self.base)
            if "bind-propagation" in fields:
                m["BindOptions"] = {"Propagation": fields.pop("bind-propagation")}
        elif kind == "volume":
            if src:
                if not _NAME_RE.match(src):
                    raise _Bad(f"{v!r}: {src!r} is not a volume name")
                self._named(src)
                m["Source"] = src
            if "volume-nocopy" in fields:
                m["VolumeOptions"] = {"NoCopy": _bool_text(fields.pop("volume-nocopy"), "volume-nocopy")}
        elif kind == "tmpfs":
            opts: dict[str, Any] = {}
            if "tmpfs-size" in fields:
                opts["SizeBytes"] = parse_bytes(fields.pop("tmpfs-size"))
            if "tmpfs-mode" in fields:
                try:
                    opts["Mode"] = int(fields.pop("tmpfs-mode"), 8)
                except ValueError:
                    raise _Bad(f"{v!r}: tmpfs-mode must be octal (e.g. 1777)") from None
            if opts:
                m["TmpfsOptions"] = opts
        else:
            raise _Bad(f"{v!r}: type must be bind, volume or tmpfs")
        fields.pop("consistency", None)  # macOS-only hint, meaningless to the engine
        if fields:
            raise _Bad(f"{v!r}: unsupported --mount key(s) {', '.join(sorted(fields))}")
        self.mounts.append(m)

    def tmpfs(self, v: str) -> None:
        path, _, opts = v.partition(":")
        if not path.startswith("/"):
            raise _Bad(f"{v!r}: the tmpfs path must be absolute")
        self.host.setdefault("Tmpfs", {})[path] = opts

    def env_flag(self, v: str) -> None:
        key, sep, val = v.partition("=")
        if not _ENV_RE.match(key):
            raise _Bad(f"-e {v!r}: {key!r} is not a valid variable name")
        if not sep:
            if key not in self.node.env:
                raise _Bad(f"-e {key}: {key} is not in the node's environment (its [b00t.env] or a "
                           f"dependency's exports); write -e {key}=value or -e {key}=${{{key}}}")
            val = self.node.env[key]
        self.env[key] = val

    def label(self, v: str) -> None:
        key, _, val = v.partition("=")
        if key.startswith("org.b00t-graph."):
            raise _Bad(f"-l {v!r}: labels under org.b00t-graph. are b00t-graph's own")
        self.labels[key] = val

    def name(self, v: str) -> None:
        if not _NAME_RE.match(v):
            raise _Bad(f"--name {v!r} is not a container name (letters, digits, _ . -; at least 2 characters)")
        wanted = self.node.spec.container_name
        if wanted is not None and v != wanted:
            raise _Bad(f"--name {v!r} differs from the datum's container name {wanted!r}")
        if self.container_name is not None and v != self.container_name:
            raise _Bad(f"--name {v!r}: the container is already named {self.container_name!r}")
        self.container_name = v

    def network(self, v: str) -> None:
        if self.networks and self.networks[0] != v:
            raise _Bad(f"--network {v!r}: only one network can be joined at creation "
                       f"(already {self.networks[0]!r})")
        if not self.networks:
            self.networks.append(v)

    def alias(self, v: str) -> None:
        self.aliases.append(v)

    def restart(self, v: str) -> None:
        policy, _, count = v.partition(":")
        if policy not in _RESTART:
            raise _Bad(f"--restart {v!r}: expected no, always, unless-stopped or on-failure[:N]")
        rp: dict[str, Any] = {"Name": "" if policy == "no" else policy}
        if count:
            if policy != "on-failure" or not count.isdigit():
                raise _Bad(f"--restart {v!r}: a retry count is only allowed as on-failure:N")
            rp["MaximumRetryCount"] = int(count)
        self.host["RestartPolicy"] = rp

    def gpus(self, v: str) -> None:
        req: dict[str, Any] = {"Driver": "", "Count": 0, "DeviceIDs": None, "Capabilities": [["gpu"]],
                               "Options": {}}
        fields = _csv_fields(v)
        if len(fields) == 1 and "=" not in fields[0]:
            fields = [f"count={fields[0]}"]
        device_ids: list[str] = []
        current: str | None = None
        for item in fields:
            key, sep, val = item.partition("=")
            if not sep and current == "device":  # device=0,1 split by the csv reader
                device_ids.append(item)
                continue
            current = key
            if key == "count":
                if val == "all":
                    req["Count"] = -1
                elif val.isdigit():
                    req["Count"] = int(val)
                else:
                    raise _Bad(f"--gpus {v!r}: count must be a number or all")
            elif key == "device":
                device_ids.extend(x for x in val.split(",") if x)
            elif key == "driver":
                req["Driver"] = val
            elif key == "capabilities":
                req["Capabilities"] = [[c for c in val.split(",") if c]]
            elif key == "options":
                k2, _, v2 = val.partition("=")
                req["Options"][k2] = v2
            else:
                raise _Bad(f"--gpus {v!r}: unknown field {key!r} (all, N, device=…, count=…, capabilities=…)")
        if device_ids:
            if req["Count"]:
                raise _Bad(f"--gpus {v!r}: use either count or device, not both")
            req["DeviceIDs"] = device_ids
        elif not req["Count"]:
            raise _Bad(f"--gpus {v!r}: no GPUs requested")
        self.append("DeviceRequests", req)

    def ulimit(self, v: str) -> None:
        name, sep, limits = v.partition("=")
        if not sep or name not in _ULIMITS:
            raise _Bad(f"--ulimit {v!r}: expected NAME=SOFT[:HARD] with NAME one of {', '.join(sorted(_ULIMITS))}")
        soft_s, _, hard_s = limits.partition(":")

        def num(x: str) -> int:
            if x == "unlimited":
                return -1
            try:
                return int(x)
            except ValueError:
                raise _Bad(f"--ulimit {v!r}: {x!r} is not a number") from None

        soft = num(soft_s)
        hard = num(hard_s) if hard_s else soft
        if hard != -1 and (soft == -1 or soft > hard):
            raise _Bad(f"--ulimit {v!r}: the soft limit exceeds the hard one")
        self.append("Ulimits", {"Name": name, "Soft": soft, "Hard": hard})

    def add_host(self, v: str) -> None:
        host, sep, ip = v.partition(":")
        if not sep or not host or not ip:
            raise _Bad(f"--add-host {v!r}: expected host:ip")
        self.append("ExtraHosts", f"{host}:{ip}")

    def entrypoint(self, v: str) -> None:
        self.config["Entrypoint"] = [v]

    def healthcheck(self, key: str) -> Callable[[str], None]:
        def set_(v: str) -> None:
            if key == "Test":
                self.health["Test"] = ["CMD-SHELL", v]
            elif key == "Retries":
                if not v.isdigit():
                    raise _Bad(f"--health-retries {v!r} is not a number")
                self.health["Retries"] = int(v)
            else:
                self.health[key] = parse_duration(v)

        return set_

    def pull_policy(self, v: str) -> None:
        if v not in _PULL:
            raise _Bad(f"--pull {v!r}: expected missing, never or always")
        self.pull = v

    def set_platform(self, v: str) -> None:
        self.platform = v

    def log_opt(self, v: str) -> None:
        key, sep, val = v.partition("=")
        if not sep:
            raise _Bad(f"--log-opt {v!r}: expected key=value")
        self.host.setdefault("LogConfig", {"Type": "", "Config": {}})["Config"][key] = val

    def sysctl(self, v: str) -> None:
        key, sep, val = v.partition("=")
        if not sep:
            raise _Bad(f"--sysctl {v!r}: expected key=value")
        self.host.setdefault("Sysctls", {})[key] = val

    def stop_timeout(self, v: str) -> None:
        if not v.lstrip("-").isdigit():
            raise _Bad(f"--stop-timeout {v!r} is not a number of seconds")
        self.config["StopTimeout"] = int(v)


def _setter(target: str, key: str, convert: Callable[[str], Any] = str) -> Callable[[_Builder, str], None]:
    def set_(b: _Builder, v: str) -> None:
        (b.host if target == "host" else b.config)[key] = convert(v)

    return set_


def _appender(key: str) -> Callable[[_Builder, str], None]:
    def add(b: _Builder, v: str) -> None:
        b.append(key, v)

    return add


def _switch(target: str, key: str) -> Callable[[_Builder, bool], None]:
    def set_(b: _Builder, v: bool) -> None:
        (b.host if target == "host" else b.config)[key] = v

    return set_


def _ignored(_: _Builder, __: Any) -> None:
    pass


def _log_driver(b: _Builder, v: str) -> None:
    b.host.setdefault("LogConfig", {"Type": "", "Config": {}})["Type"] = v


def _device(b: _Builder, v: str) -> None:
    if not v.startswith("/") and "=" in v:  # a CDI device name: nvidia.com/gpu=all
        b.append("DeviceRequests", {"Driver": "cdi", "Count": 0, "DeviceIDs": [v], "Capabilities": None,
                                    "Options": {}})
        return
    parts = v.split(":")
    host_path = parts[0]
    ctr = parts[1] if len(parts) > 1 and parts[1] else host_path
    perms = parts[2] if len(parts) > 2 else "rwm"
    b.append("Devices", {"PathOnHost": host_path, "PathInContainer": ctr, "CgroupPermissions": perms})


def _no_healthcheck(b: _Builder, v: bool) -> None:
    if v:
        b.health["Test"] = ["NONE"]


def _memory(b: _Builder, v: str) -> None:
    b.host["Memory"] = parse_bytes(v)


def _memory_swap(b: _Builder, v: str) -> None:
    b.host["MemorySwap"] = -1 if v.strip() == "-1" else parse_bytes(v)


#: long name → (short name or "", takes a value, handler)
_Handler = Callable[[_Builder, Any], None]
_FLAGS: dict[str, tuple[str, bool, _Handler]] = {
    "publish": ("p", True, _Builder.publish),
    "publish-all": ("P", False, _switch("host", "PublishAllPorts")),
    "expose": ("", True, _Builder.expose),
    "volume": ("v", True, _Builder.volume),
    "mount": ("", True, _Builder.mount),
    "tmpfs": ("", True, _Builder.tmpfs),
    "env": ("e", True, _Builder.env_flag),
    "label": ("l", True, _Builder.label),
    "name": ("", True, _Builder.name),
    "network": ("", True, _Builder.network),
    "net": ("", True, _Builder.network),
    "network-alias": ("", True, _Builder.alias),
    "net-alias": ("", True, _Builder.alias),
    "hostname": ("h", True, _setter("config", "Hostname")),
    "domainname": ("", True, _setter("config", "Domainname")),
    "restart": ("", True, _Builder.restart),
    "gpus": ("", True, _Builder.gpus),
    "runtime": ("", True, _setter("host", "Runtime")),
    "memory": ("m", True, _memory),
    "memory-swap": ("", True, _memory_swap),
    "memory-reservation": ("", True, _setter("host", "MemoryReservation", parse_bytes)),
    "cpus": ("", True, _setter("host", "NanoCpus", parse_cpus)),
    "cpu-shares": ("c", True, _setter("host", "CpuShares", int)),
    "shm-size": ("", True, _setter("host", "ShmSize", parse_bytes)),
    "ulimit": ("", True, _Builder.ulimit),
    "add-host": ("", True, _Builder.add_host),
    "dns": ("", True, _appender("Dns")),
    "dns-search": ("", True, _appender("DnsSearch")),
    "dns-option": ("", True, _appender("DnsOptions")),
    "entrypoint": ("", True, _Builder.entrypoint),
    "user": ("u", True, _setter("config", "User")),
    "workdir": ("w", True, _setter("config", "WorkingDir")),
    "cap-add": ("", True, _appender("CapAdd")),
    "cap-drop": ("", True, _appender("CapDrop")),
    "security-opt": ("", True, _appender("SecurityOpt")),
    "group-add": ("", True, _appender("GroupAdd")),
    "device": ("", True, _device),
    "sysctl": ("", True, _Builder.sysctl),
    "pid": ("", True, _setter("host", "PidMode")),
    "ipc": ("", True, _setter("host", "IpcMode")),
    "uts": ("", True, _setter("host", "UTSMode")),
    "userns": ("", True, _setter("host", "UsernsMode")),
    "stop-signal": ("", True, _setter("config", "StopSignal")),
    "stop-timeout": ("", True, _Builder.stop_timeout),
    "log-driver": ("", True, _log_driver),
    "log-opt": ("", True, _Builder.log_opt),
    "health-cmd": ("", True, lambda b, v: b.healthcheck("Test")(v)),
    "health-interval": ("", True, lambda b, v: b.healthcheck("Interval")(v)),
    "health-timeout": ("", True, lambda b, v: b.healthcheck("Timeout")(v)),
    "health-start-period": ("", True, lambda b, v: b.healthcheck("StartPeriod")(v)),
    "health-retries": ("", True, lambda b, v: b.healthcheck("Retries")(v)),
    "no-healthcheck": ("", False, _no_healthcheck),
    "pull": ("", True, _Builder.pull_policy),
    "platform": ("", True, _Builder.set_platform),
    "privileged": ("", False, _switch("host", "Privileged")),
    "init": ("", False, _switch("host", "Init")),
    "read-only": ("", False, _switch("host", "ReadonlyRootfs")),
    "interactive": ("i", False, _switch("config", "OpenStdin")),
    "tty": ("t", False, _switch("config", "Tty")),
    # accepted, no effect (see the module docstring)
    "detach": ("d", False, _ignored),
    "rm": ("", False, _ignored),
    "sig-proxy": ("", False, _ignored),
}
_SHORT = {short: long for long, (short, _, _) in _FLAGS.items() if short}

#: flags users may copy from a ``docker run`` line, with why they are refused
_REFUSED = {
    "env-file": "its contents would not be part of the config hash; put the variables in [b00t.env]",
    "cidfile": "b00t-graph tracks containers by name and labels",
    "attach": "containers always run detached", "a": "containers always run detached",
    "detach-keys": "containers always run detached",
}


def _tokens(node: Node) -> Iterable[tuple[str, Any]]:
    """``(long flag name, value)`` pairs from ``docker_args``; raises _Bad on the first bad token."""
    args = list(node.spec.docker_args)
    i = 0
    while i < len(args):
        tok = args[i]
        i += 1
        if tok.startswith("--") and len(tok) > 2:
            name, eq, inline = tok[2:].partition("=")
            names = [(name, f"--{name}", eq, inline)]
        elif tok.startswith("-") and len(tok) > 1 and tok != "--":
            # -p 80, -p80, -p=80, -dit (switches may be grouped; a value flag ends the group)
            body = tok[1:]
            names = []
            for j, ch in enumerate(body):
                long = _SHORT.get(ch)
                if long is None:
                    raise _Bad(f"unsupported flag -{ch}" + (f" (in {tok!r})" if len(body) > 1 else "")
                               + _why(ch))
                if _FLAGS[long][1]:
                    rest = body[j + 1:]
                    names.append((long, f"-{ch}", "=" if rest else "", rest.removeprefix("=")))
                    break
                if body[j + 1:j + 2] == "=":
                    names.append((long, f"-{ch}", "=", body[j + 2:]))
                    break
                names.append((long, f"-{ch}", "", ""))
        else:
            raise _Bad(f"unexpected argument {tok!r}: docker_args holds flags only; the image goes in "
                       "b00t.image and the command in b00t.command/b00t.args")
        for name, shown, eq, inline in names:
            if name not in _FLAGS:
                raise _Bad(f"unsupported flag {shown}{_why(name)}")
            _, takes_value, _ = _FLAGS[name]
            if takes_value:
                if eq:
                    value: Any = inline
                elif i < len(args):
                    value = args[i]
                    i += 1
                else:
                    raise _Bad(f"{shown} needs a value")
            else:
                value = _bool_text(inline, shown) if eq else True
            yield name, value


def _why(name: str) -> str:
    if name in _REFUSED:
        return f": {_REFUSED[name]}"
    return " (b00t-graph supports: " + ", ".join(f"--{n}" for n in sorted(_FLAGS)) + ")"


def _build(node: Node, labels: Mapping[str, str]) -> tuple[ContainerPlan | None, list[Problem]]:
    spec = node.spec
    base = Path(spec.path).parent
    b = _Builder(node=node, base=base)
    problems: list[Problem] = []

    def bad(key: str, msg: str) -> None:
        problems.append(Problem(spec.path, key, msg))

    if spec.container_name is not None:
        if not _NAME_RE.match(spec.container_name):
            bad("b00t.container_name", f"{spec.container_name!r} is not a container name "
                "(letters, digits, _ . -; at least 2 characters)")
    b.env.update(node.env)
    b.env.update(spec.run_env)
    try:
        for name, value in _tokens(node):
            try:
                _FLAGS[name][2](b, value)
            except _Bad as exc:
                bad(KEY, str(exc))
            except ValueError as exc:  # int() of a numeric flag
                bad(KEY, f"--{name} {value!r}: {exc}")
    except _Bad as exc:
        bad(KEY, str(exc))

    if spec.container_name is None and b.container_name is None and len(spec.name) < 2:
        bad("b00t.name", f"{spec.name!r} is too short for a container name (at least 2 characters)")
    for i, port in enumerate(spec.ports):
        try:
            b.publish(port)
        except _Bad as exc:
            bad(f"b00t.ports[{i}]", str(exc))
    for i, vol in enumerate(spec.volumes):
        try:
            b.volume(vol)
        except _Bad as exc:
            bad(f"b00t.volumes[{i}]", str(exc))
    if spec.network:
        if b.networks and b.networks[0] != spec.network:
            bad("b00t.network", f"{spec.network!r} differs from --network {b.networks[0]!r} in docker_args")
        elif not b.networks:
            b.networks.append(spec.network)
    res = spec.resources
    if res is not None:
        for key, field, parse in (("memory_limit", "Memory", parse_bytes), ("cpu_limit", "NanoCpus", parse_cpus)):
            text = getattr(res, key)
            if text is None:
                continue
            try:
                value = parse(text)
            except _Bad as exc:
                bad(f"b00t.resources.{key}", str(exc))
                continue
            if field in b.host and b.host[field] != value:
                bad(f"b00t.resources.{key}", f"{text!r} contradicts the limit given in docker_args")
            b.host[field] = value
    if spec.restart is not None:
        before = b.host.get("RestartPolicy")
        try:
            b.restart(spec.restart)
        except _Bad as exc:
            bad("b00t.restart", str(exc).replace("--restart ", "", 1))
        else:
            if before is not None and before != b.host["RestartPolicy"]:
                bad("b00t.restart", f"{spec.restart!r} contradicts --restart in docker_args")
    if b.health and "Test" not in b.health:
        bad(KEY, "--health-interval/--health-timeout/--health-retries need --health-cmd")
    if problems:
        return None, problems

    image = image_of(spec)
    if not image:
        return None, [Problem(spec.path, "b00t.image", "required for a docker datum")]
    cfg: dict[str, Any] = {"Image": image, **b.config}
    cmd = [*(spec.command or ()), *spec.args]
    if cmd:
        cfg["Cmd"] = cmd
    cfg["Env"] = [f"{k}={v}" for k, v in b.env.items()]
    cfg["Labels"] = {**b.labels, **labels}
    if b.exposed:
        cfg["ExposedPorts"] = b.exposed
    if b.anon:
        cfg["Volumes"] = b.anon
    if b.health:
        cfg["Healthcheck"] = b.health
    host = dict(b.host)
    if b.bindings:
        host["PortBindings"] = b.bindings
    if b.binds:
        host["Binds"] = b.binds
    if b.mounts:
        host["Mounts"] = b.mounts
    user_networks: tuple[str, ...] = ()
    if b.networks:
        net = b.networks[0]
        host["NetworkMode"] = net
        if net not in BUILTIN_NETWORKS and not net.startswith("container:"):
            user_networks = (net,)
            if b.aliases:
                cfg["NetworkingConfig"] = {"EndpointsConfig": {net: {"Aliases": b.aliases}}}
    if b.aliases and not user_networks:
        return None, [Problem(spec.path, KEY, "--network-alias needs a user-defined --network")]
    cfg["HostConfig"] = host
    name = spec.container_name or b.container_name or spec.name
    return ContainerPlan(name=name, image=image, config=cfg, networks=user_networks,
                         volumes=tuple(b.volumes), pull=b.pull, platform=b.platform), []


def image_of(spec: Datum) -> str | None:
    """The image a docker datum runs: its ``image``, else the local name its ``build`` is tagged with."""
    if spec.image:
        return spec.image
    if spec.build is not None:
        return f"b00t-graph/{spec.name.lower()}:latest"
    return None


def check(node: Node) -> Iterable[Problem]:
    """Everything wrong with a docker node's run options, found at compile time.

    A build context is looked at only when the image is built (``up``): ``plan`` and ``validate``
    of a folder whose build contexts live elsewhere still work.
    """
    _, problems = _build(node, {})
    return problems


def check_names(nodes: Sequence[Node]) -> Iterable[Problem]:
    """Two docker nodes of one graph may not name the same container (``--name``, ``container_name``)
    on one engine; on two engines they are two containers."""
    by_name: dict[tuple[str, str], list[Node]] = {}
    for node in nodes:
        result, _ = _build(node, {})
        if result is not None:
            by_name.setdefault((node.engine.name if node.engine else "", result.name), []).append(node)
    for (_, name), holders in by_name.items():
        if len(holders) > 1:
            first, *rest = holders
            for other in rest:
                yield Problem(other.spec.path, "b00t.container_name",
                              f"the container name {name!r} is also the container of {first.id} ({first.spec.path}); "
                              "two datums cannot share one container: rename one (--name)")


def plan(node: Node, labels: Mapping[str, str] | None = None) -> ContainerPlan:
    """The container to create for ``node``; raises :class:`DatumError` if :func:`check` would complain."""
    result, problems = _build(node, labels or {})
    if result is None:
        raise DatumError(problems)
    return result


def container_config(node: Node, labels: Mapping[str, str]) -> dict[str, Any]:
    """The ``POST /containers/create`` body for ``node``, with ``labels`` added (ours win)."""
    return plan(node, labels).config


def supported_flags() -> Sequence[str]:
    """Long names of the accepted flags, for docs and error messages."""
    return sorted(_FLAGS)
