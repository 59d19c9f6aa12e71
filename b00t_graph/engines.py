"""Named Docker engines: where a docker node runs when its datum says ``[b00t] engine = "gpu"``.

Engines are named in ``b00t-graph.toml`` beside the datums (each datum folder) or in
``$XDG_CONFIG_HOME/b00t-graph/config.toml``; the datum folder's file wins for a name both
define. A name no file defines may be a Docker context (``docker context create NAME``)::

    [engines.gpu]
    host = "tcp://gpu-box:2376"        # unix:///path, tcp://host:port
    tls_ca = "certs/ca.pem"            # TLS: paths relative to the file; tls_verify = false skips the check
    tls_cert = "certs/cert.pem"
    tls_key = "certs/key.pem"
    address = "10.0.0.7"               # where its published ports are reached (default: the host part)

    [engines.laptop]
    context = "laptop"                 # a Docker context's endpoint and TLS files

The default engine (no ``engine``) is found as before: ``DOCKER_HOST``, else the current Docker
context (``DOCKER_CONTEXT``, ``currentContext`` of ``~/.docker/config.json``), else the usual
sockets. Each engine has a host address, which datums read as ``${B00T_ENGINE_HOST}``: ``127.0.0.1``
for a unix socket, the host part of a tcp address. Loading is the only I/O here (small files);
the result is plain data the graph and the docker runtime read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from .errors import DatumError, Problem

CONFIG_NAME = "b00t-graph.toml"
#: the name of the engine a datum without ``engine`` runs on; ``engine = "default"`` means it too
DEFAULT = "default"
LOCAL_HOST = "127.0.0.1"
#: the variable every datum may read: the host address of the engine its node runs on
ENGINE_HOST_VAR = "B00T_ENGINE_HOST"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_KEYS = {"host", "context", "address", "tls_ca", "tls_cert", "tls_key", "tls_verify"}


@attrs.frozen
class EngineSpec:
    """One Docker engine: how to reach it and where its published ports are.

    ``url`` is ``None`` for the default engine found by discovery; ``origin`` says where the
    engine was defined, for messages (``b00t-graph.toml: engines.gpu``).
    """

    name: str
    url: str | None
    address: str = LOCAL_HOST
    origin: str = ""
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_verify: bool = True

    @property
    def tls(self) -> bool:
        return bool(self.tls_ca or self.tls_cert or self.tls_key)

    @property
    def label(self) -> str:
        """How messages name it: ``engine gpu (tcp://gpu-box:2376)``."""
        return f"engine {self.name}" + (f" ({self.url})" if self.url else "")


def address_of(url: str | None) -> str:
    """The host address of an engine URL: ``127.0.0.1`` for a unix socket, else the URL's host part."""
    if not url or url.startswith("unix://"):
        return LOCAL_HOST
    host = urlsplit(url).hostname or LOCAL_HOST
    return f"[{host}]" if ":" in host else host


@attrs.frozen
class Engines:
    """The engines a run may use: the configured ones by name, and the default one."""

    default: EngineSpec
    named: dict[str, EngineSpec] = attrs.field(factory=dict)
    #: config files read, for messages
    files: tuple[str, ...] = ()
    #: name → problem of an engine a file defines badly (reported only when a datum uses it)
    broken: dict[str, Problem] = attrs.field(factory=dict)
    #: where Docker contexts live (``~/.docker``); None: contexts are not looked up
    docker_config: Path | None = None

    def get(self, name: str | None) -> EngineSpec | None:
        """The engine called ``name`` (``None``/``"default"``: the default one), or ``None`` if unknown."""
        if name is None or name == DEFAULT:
            return self.default
        if name in self.named:
            return self.named[name]
        if self.docker_config is not None:
            return _context_engine(self.docker_config, name, f"docker context {name}")
        return None

    def problem(self, name: str, path: str, key: str = "b00t.engine") -> Problem | None:
        """Why the datum at ``path`` cannot run on the engine ``name``, or ``None``."""
        if name in self.broken:
            return self.broken[name]
        try:
            spec = self.get(name)
        except _ContextError as exc:
            return Problem(path, key, str(exc))
        if spec is None:
            known = sorted(self.named)
            where = ", ".join(self.files) if self.files else f"no {CONFIG_NAME} beside the datums, no user config"
            return Problem(path, key, f"engine {name!r} is not configured ({where}"
                           + (f"; known: {', '.join(known)}" if known else "") + ") and is no Docker context")
        return None


class _ContextError(ValueError):
    pass


def user_config(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".config")
    return Path(base) / "b00t-graph" / "config.toml"


def _docker_dir(environ: Mapping[str, str]) -> Path:
    if environ.get("DOCKER_CONFIG"):
        return Path(environ["DOCKER_CONFIG"])
    return Path(environ.get("HOME") or Path.home()) / ".docker"


def _context_engine(docker_dir: Path, name: str, origin: str) -> EngineSpec | None:
    """The engine of the Docker context ``name`` (``docker context create``), or ``None`` when there is none."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = docker_dir / "contexts" / "meta" / digest / "meta.json"
    try:
        data = json.loads(meta.read_text())
        endpoint = data["Endpoints"]["docker"]
        host = str(endpoint["Host"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _ContextError(f"docker context {name!r}: cannot read {meta}: {exc}") from None
    tls = docker_dir / "contexts" / "tls" / digest / "docker"
    files = {f: str(tls / f"{f}.pem") for f in ("ca", "cert", "key") if (tls / f"{f}.pem").is_file()}
    return EngineSpec(name, host, address_of(host), origin, files.get("ca"), files.get("cert"), files.get("key"),
                      not endpoint.get("SkipTLSVerify", False))


def _default(environ: Mapping[str, str], docker_dir: Path) -> EngineSpec:
    host = environ.get("DOCKER_HOST", "").strip()
    if host:
        return EngineSpec(DEFAULT, None, address_of(host), f"DOCKER_HOST={host}")
    name = environ.get("DOCKER_CONTEXT", "").strip()
    if not name:
        try:
            name = str(json.loads((docker_dir / "config.json").read_text()).get("currentContext") or "")
        except (OSError, ValueError, AttributeError):
            name = ""
    if name and name != DEFAULT:
        try:
            spec = _context_engine(docker_dir, name, f"docker context {name}")
        except _ContextError:
            spec = None
        if spec is not None:
            return attrs.evolve(spec, name=DEFAULT)
    return EngineSpec(DEFAULT, None, LOCAL_HOST, "discovery")


def default_engine(environ: Mapping[str, str] | None = None) -> EngineSpec:
    """The engine a node without ``engine`` runs on (``DOCKER_HOST``, the current context, else discovery)."""
    env = os.environ if environ is None else environ
    return _default(env, _docker_dir(env))


def _parse(path: Path, data: dict[str, Any], problems: list[Problem], broken: dict[str, Problem],
           docker_dir: Path) -> dict[str, EngineSpec]:
    out: dict[str, EngineSpec] = {}
    engines = data.get("engines", {})
    if not isinstance(engines, dict):
        problems.append(Problem(str(path), "engines", "expected a table of engines ([engines.NAME])"))
        return out
    for name, table in engines.items():
        key = f"engines.{name}"
        before = len(problems)

        def bad(sub: str, why: str, name: str = name, key: str = key) -> None:
            broken.setdefault(name, Problem(str(path), f"{key}.{sub}" if sub else key, why))

        if not _NAME.match(name) or name == DEFAULT:
            problems.append(Problem(str(path), key, "expected an engine name of letters, digits, '.', '_' and '-'"
                                    + (" (not 'default')" if name == DEFAULT else "")))
            continue
        if not isinstance(table, dict):
            problems.append(Problem(str(path), key, "expected a table (host = \"tcp://…\")"))
            continue
        unknown = sorted(set(table) - _KEYS)
        if unknown:
            problems.append(Problem(str(path), f"{key}.{unknown[0]}",
                                    f"unknown key (expected one of: {', '.join(sorted(_KEYS))})"))
            continue
        for k in _KEYS - {"tls_verify"}:
            if k in table and not isinstance(table[k], str):
                problems.append(Problem(str(path), f"{key}.{k}", "expected a string"))
        if "tls_verify" in table and not isinstance(table["tls_verify"], bool):
            problems.append(Problem(str(path), f"{key}.tls_verify", "expected true or false"))
        if len(problems) > before:
            continue
        origin = f"{path}: {key}"
        if "context" in table:
            try:
                spec = _context_engine(docker_dir, table["context"], origin)
            except _ContextError as exc:
                bad("context", str(exc))
                continue
            if spec is None:
                bad("context", f"no docker context {table['context']!r} (see `docker context ls`)")
                continue
            out[name] = attrs.evolve(spec, name=name, address=table.get("address", spec.address))
            continue
        url = table.get("host")
        if not url:
            problems.append(Problem(str(path), key,
                                    "expected host = \"unix://…\" or \"tcp://…\", or context = \"NAME\""))
            continue
        scheme = urlsplit(url).scheme
        if scheme == "ssh":
            bad("host", f"ssh:// engines are not supported: forward the engine's socket "
                        f"(ssh -nNT -L /tmp/{name}.sock:/var/run/docker.sock {url.removeprefix('ssh://')}) "
                        f"and write host = \"unix:///tmp/{name}.sock\", address = \"<its host>\"")
            continue
        if scheme not in ("unix", "tcp", "http", "https") or (scheme != "unix" and not urlsplit(url).hostname):
            problems.append(Problem(str(path), f"{key}.host",
                                    f"expected unix:///path or tcp://host:port, got {url!r}"))
            continue

        def rel(p: str | None) -> str | None:
            return None if p is None else str(path.parent / Path(p).expanduser())

        out[name] = EngineSpec(name, url, table.get("address") or address_of(url), origin,
                               rel(table.get("tls_ca")), rel(table.get("tls_cert")), rel(table.get("tls_key")),
                               table.get("tls_verify", True))
    return out


def load_engines(folders: Sequence[Path], environ: Mapping[str, str] | None = None) -> Engines:
    """Read ``b00t-graph.toml`` of each datum folder, then the user's config; raise :class:`DatumError`
    (exit 2, naming the file and the key) for a file that is not valid."""
    env = os.environ if environ is None else environ
    docker_dir = _docker_dir(env)
    named: dict[str, EngineSpec] = {}
    broken: dict[str, Problem] = {}
    files: list[str] = []
    problems: list[Problem] = []
    for path in [*(Path(f) / CONFIG_NAME for f in folders), user_config(env)]:
        if not path.is_file():
            continue
        files.append(str(path))
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            problems.append(Problem(str(path), "", f"cannot read: {exc}"))
            continue
        for name, spec in _parse(path, data, problems, broken, docker_dir).items():
            named.setdefault(name, spec)  # a datum folder's file wins over the user's
    if problems:
        raise DatumError(problems)
    return Engines(_default(env, docker_dir), named, tuple(files), broken, docker_dir)
