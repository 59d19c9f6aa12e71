"""Find datum folders, read TOML files, structure them into :class:`~b00t_graph.model.Datum`.

Every problem of every file is collected (never just the first), each naming
the file, the key path and what was expected. Files that fail are kept out of
the catalogue but remembered, so a request that needs one of them fails with
its problems while requests that don't still work.
"""

from __future__ import annotations

import difflib
import os
import re
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import cattrs
from cattrs.errors import ClassValidationError, IterableValidationError
from cattrs.v import format_exception, transform_error

from . import dialects, textsafe
from .engines import CONFIG_NAME
from .errors import AmbiguousTargetError, DatumError, MissingDependencyError, Problem
from .model import DOCKER_RUNTIMES, KNOWN_TYPES, Datum, HealthCheck, Requirement, Resources

#: A datum file larger than this is refused unread: real ones are a few kilobytes.
MAX_FILE_BYTES = 1_000_000
#: Arrays and tables nested deeper than this are refused (real datums nest about five deep; far deeper
#: nesting would exhaust Python's recursion in the TOML parser and in whatever walks the document).
MAX_DEPTH = 64

PACKAGED_DATUMS = Path(__file__).resolve().parent / "datums"
if not PACKAGED_DATUMS.is_dir():  # editable install: the folder sits beside the package
    PACKAGED_DATUMS = Path(__file__).resolve().parent.parent / "datums"


@attrs.frozen
class Source:
    """A datum folder and why it was chosen (shown by ``ls``)."""

    path: Path
    origin: str


@attrs.define
class Catalog:
    """All datums found, plus the problems and notes of the files that were read."""

    sources: list[Source]
    datums: dict[str, Datum] = attrs.field(factory=dict)
    problems: list[Problem] = attrs.field(factory=list)
    notes: list[Problem] = attrs.field(factory=list)
    #: identity (from the file name) → problems of that file
    broken: dict[str, list[Problem]] = attrs.field(factory=dict)
    #: ``name.type`` as declared inside a file whose file name differs → the file's identity
    aliases: dict[str, str] = attrs.field(factory=dict)
    #: file path → problems of that file (files without a usable identity too)
    files: dict[str, list[Problem]] = attrs.field(factory=dict)

    def find(self, ref: str) -> str | None:
        """The identity ``ref`` names: itself, or the file that declares it by its inner ``name``."""
        if ref in self.datums or ref in self.broken:
            return ref
        return self.aliases.get(ref)

    def resolve_target(self, target: str) -> str:
        """Accept ``name.type`` or a bare ``name`` when only one datum has it (file name or declared name)."""
        found = self.find(target)
        if found is not None:
            return found
        # a set: a duplicate identity is both loaded and broken, and must not look ambiguous with itself
        matches = sorted({i for i in (*self.datums, *self.broken) if i.rsplit(".", 1)[0] == target})
        if not matches:
            matches = sorted({i for a, i in self.aliases.items() if a.rsplit(".", 1)[0] == target})
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise AmbiguousTargetError(f"target {target!r} is ambiguous: {', '.join(matches)}")
        raise MissingDependencyError(target, None, self.suggest(target), self._empty_sources())

    def _empty_sources(self) -> str:
        """Why a target may be missing that is not a typo: folders that do not exist or hold no datum."""
        gone = [f"{s.path} (from {s.origin})" for s in self.sources if not s.path.is_dir()]
        if gone:
            return "datum folder not found: " + ", ".join(gone)
        if not self.datums and not self.broken:
            return "no datum (*.toml) in " + ", ".join(f"{s.path} (from {s.origin})" for s in self.sources)
        return ""

    def suggest(self, name: str) -> list[str]:
        """Close identities for a misspelt one, by the name part (same type first).

        Whole identities are not compared: a shared ``.process`` suffix would make
        every process datum look close to ``qdrnt.process``.
        """
        base, _, typ = name.rpartition(".") if "." in name else (name, "", "")
        by_name: dict[str, list[str]] = {}
        for ident in sorted(self.datums):
            by_name.setdefault(ident.rpartition(".")[0], []).append(ident)
        out: list[str] = []
        for hit in difflib.get_close_matches(base, list(by_name), n=3, cutoff=0.75):
            out += sorted(by_name[hit], key=lambda i: i.rpartition(".")[2] != typ)
        return out[:3]


def datum_dirs(explicit: Sequence[str | os.PathLike[str]] = (), environ: Mapping[str, str] | None = None,
               cwd: Path | None = None) -> list[Source]:
    """Where datums come from: ``--datums``, else ``$_B00T_Path``, else a ``_b00t_`` folder in the current
    directory or the nearest one above it (as git finds ``.git``), else the packaged ones."""
    env = os.environ if environ is None else environ
    if explicit:
        return [Source(Path(p).expanduser(), "--datums") for p in explicit]
    if env.get("_B00T_Path"):
        return [Source(Path(p).expanduser(), "$_B00T_Path") for p in env["_B00T_Path"].split(os.pathsep) if p]
    here = (cwd or Path.cwd()).absolute()
    for up, folder in enumerate((here, *here.parents)):
        local = folder / "_b00t_"
        if local.is_dir():
            return [Source(local, "./_b00t_" if up == 0 else "/".join([".."] * up) + "/_b00t_")]
    return [Source(PACKAGED_DATUMS, "packaged")]


def load_catalog(sources: Sequence[Source]) -> Catalog:
    """Read every ``*.toml`` below each source folder (not recursive: b00t folders are flat)."""
    cat = Catalog(sources=list(sources))
    first_seen: dict[str, str] = {}
    for src in sources:
        if not src.path.is_dir():
            cat.problems.append(Problem(str(src.path), "", f"datum folder not found (from {src.origin})"))
            continue
        for path in sorted(src.path.glob("*.toml")):
            if path.name == CONFIG_NAME:  # the folder's engine config, not a datum
                continue
            datum, problems, notes, declared = _load_file_cached(path)
            cat.notes.extend(notes)
            ident = datum.id if datum else _ident_from_filename(path)
            if declared and ident:
                cat.aliases.setdefault(f"{declared}.{ident.rsplit('.', 1)[1]}", ident)
            cat.files[str(path)] = problems
            if datum is not None and ident in first_seen:
                problems.append(Problem(str(path), "", f"duplicate datum {ident!r}, also in {first_seen[ident]}"))
            if problems:
                cat.problems.extend(problems)
                if ident:
                    cat.broken.setdefault(ident, []).extend(problems)
                continue
            assert datum is not None
            first_seen[ident] = str(path)
            cat.datums[ident] = datum
    return cat


def _ident_from_filename(path: Path) -> str:
    stem = path.name.removesuffix(".toml")
    return stem if "." in stem else ""


# --- one file ------------------------------------------------------------------------------------


class _Expected(ValueError):
    """A leaf value of the wrong kind; carries the human message cattrs will show."""


def _strict(kind: type, label: str) -> Any:
    def hook(value: Any, _: Any) -> Any:
        # bool is an int in Python; a TOML `true` is never a number here.
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise _Expected(f"expected {label}, got {_describe(value)}")
        return value

    return hook


def _describe(value: Any) -> str:
    names = {str: "string", bool: "boolean", int: "integer", float: "float", list: "array", dict: "table"}
    kind = names.get(type(value), type(value).__name__)
    if isinstance(value, (dict, list)):
        return kind
    return f"{kind} {value!r}"


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=True, forbid_extra_keys=True)
    conv.register_structure_hook(str, _strict(str, "a string"))
    conv.register_structure_hook(int, _strict(int, "an integer"))
    conv.register_structure_hook(bool, _strict(bool, "true or false"))
    conv.register_structure_hook_func(lambda t: t == tuple[str, ...], _argv)
    conv.register_structure_hook_func(lambda t: t == list[str], lambda v, t: list(_argv(v, t)))
    return conv


def _argv(value: Any, _: Any) -> tuple[str, ...]:
    # cattrs would happily iterate a string into characters; an array is required.
    if not isinstance(value, list):
        raise _Expected(f"expected an array of strings, got {_describe(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _Expected(f"expected an array of strings, item {i} is {_describe(item)}")
    return tuple(value)


_CONVERTER = _make_converter()
#: Fields filled by the dialects (b00t's other ways of writing things), never read as raw [b00t] keys.
_NORMALISED = {"kind", "container_name", "restart", "restart_policy", "build", "presence", "mcp", "run_env",
               "provides", "protocol", "needs", "optional", "env_required", "env_defaults", "install", "edge_keys"}
#: ``[b00t]`` keys acted on from ``Datum.extra`` (no note): ``restart_dependents`` (``restart``).
_READ_FROM_EXTRA = {"restart_dependents"}
_DATUM_KEYS = {f.name for f in attrs.fields(Datum)} - {"path", "extra", "env_table", "requirements"} - _NORMALISED
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def _format(exc: BaseException, typ: type | None) -> str:
    if isinstance(exc, _Expected):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required key missing"
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return "unknown key(s): " + ", ".join(sorted(exc.extra_fields))
    return format_exception(exc, typ)


def _paths(exc: BaseException, root: str) -> list[tuple[str, str]]:
    """cattrs' ``msg @ $.a.b`` → (``root.a.b``, msg) pairs."""
    out = []
    for line in transform_error(exc, format_exception=_format):
        msg, _, path = line.rpartition(" @ ")
        path = re.sub(r"\['([^']*)'\]", r".\1", path).replace("$", root, 1)
        out.append((path, msg))
    return out


def load_file(path: Path) -> tuple[Datum | None, list[Problem], list[Problem]]:
    """Parse and structure one datum file: ``(datum or None, problems, notes)``."""
    datum, problems, notes, _ = _load_file(path)
    return datum, problems, notes


_Loaded = tuple[Datum | None, list[Problem], list[Problem], str | None]
# path → (stat key, what _load_file made of it). A long-lived caller (``ensure()`` in a test
# session, the MCP server, the supervisor) reloads the same folders again and again; only a file
# whose stat changed is read and parsed again.
_PARSED: dict[str, tuple[tuple[int, ...], _Loaded]] = {}
_PARSED_MAX = 4096
# A file changed twice within one mtime tick keeps its stat key; like git's "racily clean" index
# entries, a file modified this recently is never served from the cache.
_RACY_NS = 1_000_000_000


def _load_file_cached(path: Path) -> _Loaded:
    p = str(path)
    try:
        st = path.stat()
    except OSError:
        return _load_file(path)
    key = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev)
    hit = _PARSED.get(p)
    if hit is not None and hit[0] == key:
        datum, problems, notes, declared = hit[1]
        return datum, list(problems), list(notes), declared  # callers extend the lists
    loaded = _load_file(path)
    if time.time_ns() - st.st_mtime_ns > _RACY_NS:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        datum, problems, notes, declared = loaded
        _PARSED[p] = (key, (datum, list(problems), list(notes), declared))
    else:
        _PARSED.pop(p, None)
    return loaded


def _load_file(path: Path) -> _Loaded:
    p = str(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)  # never more: a huge file is refused unread
    except OSError as exc:
        return None, [Problem(p, "", f"cannot read: {exc.strerror}")], [], None
    if len(raw) > MAX_FILE_BYTES:
        return None, [Problem(p, "", f"larger than {MAX_FILE_BYTES:,} bytes, the limit for a datum file "
                                     "(real datums are a few kilobytes)")], [], None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(p, "", f"not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8")], [], None
    bom: list[Problem] = []
    if text.startswith("\ufeff"):  # some Windows editors write one; TOML does not allow it
        text = text[1:]
        bom.append(Problem(p, "", "starts with a UTF-8 byte-order mark (BOM); read without it"))
    if not text.strip():
        return None, [Problem(p, "", "empty file; a datum needs a [b00t] table with name and type")], bom, None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [_toml_problem(p, text, exc)], bom, None
    except RecursionError:  # nesting deep enough to exhaust the parser's stack
        return None, [_too_deep(p, _deep_key_in_text(text))], bom, None
    deep = _deep_key(doc)
    if deep is not None:
        return None, [_too_deep(p, deep)], bom, None
    datum, problems, notes, declared = _structure(doc, p)
    return datum, problems, bom + notes, declared


def _too_deep(path: str, key: str) -> Problem:
    return Problem(path, key, f"arrays or tables nested more than {MAX_DEPTH} levels deep; "
                              "a datum needs only a few levels")


def _key_path(parts: Sequence[str]) -> str:
    shown = ".".join(parts[:6])
    return shown + (".…" if len(parts) > 6 else "")


def _deep_key(doc: dict[str, Any]) -> str | None:
    """The key under which ``doc`` nests deeper than :data:`MAX_DEPTH`, or ``None``; iterative, any depth."""
    stack: list[tuple[Any, int, tuple[str, ...]]] = [(doc, 0, ())]
    while stack:
        value, depth, keys = stack.pop()
        if depth > MAX_DEPTH:
            return _key_path(keys)
        if isinstance(value, dict):
            stack.extend((v, depth + 1, (*keys, str(k))) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, depth + 1, keys) for v in value)
    return None


def _deep_key_in_text(text: str) -> str:
    """Where the text nests too deep, when the parser itself gave up: the table and key of that value.

    A rough scan (strings and comments skipped, brackets counted); only a message depends on it.
    """
    table, key, depth, quote, i = "", "", 0, "", 0
    line_start = True
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif ch == "#":
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif ch in "'\"":
            quote = ch
        elif ch == "\n":
            line_start = True
            i += 1
            continue
        elif ch == "[" and depth == 0 and line_start:
            end = text.find("\n", i)
            head = _HEADER.match(text[i:end if end >= 0 else len(text)])
            table = ".".join(p.strip().strip("'\"") for p in head.group(1).split(".")) if head else table
            i = end if end >= 0 else len(text)
            continue
        elif ch == "=" and depth == 0:
            line = text[text.rfind("\n", 0, i) + 1:i]
            key = ".".join(p.strip().strip("'\"") for p in line.split("."))
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                break
        elif ch in "]}":
            depth = max(0, depth - 1)
        if not ch.isspace():
            line_start = False
        i += 1
    return ".".join(x for x in (table, key) if x)


_AT_LINE = re.compile(r"\(at line (\d+), column \d+\)")
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def _toml_problem(path: str, text: str, exc: tomllib.TOMLDecodeError) -> Problem:
    """A TOML error; a duplicate key or table is named (tomllib only gives the line)."""
    msg = str(exc)
    at = _AT_LINE.search(msg)
    declared = re.match(r"Cannot declare \((.*)\) twice", msg)
    if at is None or not (declared or msg.startswith("Cannot overwrite a value")):
        return Problem(path, "", f"TOML syntax error: {msg}")
    line_no = int(at.group(1))
    lines = text.splitlines()
    if declared:
        key = ".".join(part.strip().strip("'\"") for part in declared.group(1).split(",") if part.strip())
        return Problem(path, key, f"TOML error: table [{key}] declared twice (again at line {line_no}); "
                                  "merge the two tables into one")
    # the key written on that line, inside the table opened last above it
    table, first = "", None
    line = lines[line_no - 1] if 0 < line_no <= len(lines) else ""
    written = line.split("=", 1)[0].strip() if "=" in line else ""
    bare = ".".join(part.strip().strip("'\"") for part in written.split("."))
    for i in range(line_no - 2, -1, -1):
        head = _HEADER.match(lines[i])
        if head:
            table = ".".join(part.strip().strip("'\"") for part in head.group(1).split("."))
            break
        other = lines[i].split("=", 1)[0].strip() if "=" in lines[i] else ""
        if bare and ".".join(part.strip().strip("'\"") for part in other.split(".")) == bare:
            first = i + 1
    if not bare:
        return Problem(path, "", f"TOML syntax error: {msg}")
    key = f"{table}.{bare}" if table else bare
    where = f" (first at line {first})" if first else ""
    return Problem(path, key, f"TOML error: duplicate key, set again at line {line_no}{where}; "
                              "TOML allows each key once")


def structure_datum(doc: dict[str, Any], path: str) -> tuple[Datum | None, list[Problem], list[Problem]]:
    """Turn a parsed TOML document into a datum, collecting every problem."""
    datum, problems, notes, _ = _structure(doc, path)
    return datum, problems, notes


def _structure(doc: dict[str, Any], path: str) -> tuple[Datum | None, list[Problem], list[Problem], str | None]:
    problems: list[Problem] = []
    notes: list[Problem] = []
    table = doc.get("b00t")
    if not isinstance(table, dict):
        what = "missing" if table is None else f"not a table (got {_describe(table)})"
        return None, [Problem(path, "b00t", f"{what}; a datum keeps everything under [b00t]")], [], None
    norm = dialects.normalise(doc, path)
    problems += norm.problems
    notes += norm.notes
    doc = norm.doc
    b00t = dict(doc["b00t"])
    if not Path(path).name.removesuffix(".toml").rpartition(".")[0]:
        problems.append(Problem(path, "", "file name must be <name>.<type>.toml (e.g. qdrant.docker.toml)"))
    typ = b00t.get("type")
    if isinstance(typ, str) and typ not in KNOWN_TYPES:
        close = difflib.get_close_matches(typ, sorted(KNOWN_TYPES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(Problem(path, "b00t.type", f"unknown type {typ!r}{hint}; known: "
                                + ", ".join(sorted(KNOWN_TYPES))))
    name = b00t.get("name")
    if isinstance(name, str) and not _NAME_RE.match(name):
        problems.append(Problem(path, "b00t.name", f"{name!r} is not a valid name (letters, digits, - _ .)"))

    # Environment: [b00t.env] is canonical; a top-level [env] is accepted as older b00t files use it.
    env: dict[str, Any] = {}
    env_table = "b00t.env"
    if "env" in doc:
        if isinstance(doc["env"], dict):
            env.update(doc["env"])
            env_table = "env"
            if doc["env"]:  # only `required`/`defaults`: a schema, read by the dialects
                notes.append(Problem(path, "env", "top-level [env] read as [b00t.env]; prefer [b00t.env]"))
        else:
            problems.append(Problem(path, "env", f"expected a table, got {_describe(doc['env'])}"))
    if "env" in b00t:
        if isinstance(b00t["env"], dict):
            env.update(b00t.pop("env"))
            env_table = "b00t.env"
        else:
            problems.append(Problem(path, "b00t.env", f"expected a table, got {_describe(b00t.pop('env'))}"))
    for key, val in env.items():
        if isinstance(val, bool):
            env[key] = "true" if val else "false"
        elif isinstance(val, (int, float)):
            env[key] = str(val)
        elif not isinstance(val, str):
            problems.append(Problem(path, f"{env_table}.{key}", f"expected a string, got {_describe(val)}"))
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            problems.append(Problem(path, f"{env_table}.{key}", "not a valid environment variable name"))

    # Shell-style strings are accepted where an argv is expected.
    def split(text: str, key: str) -> list[str]:
        try:
            return textsafe.split(text)
        except ValueError as exc:  # an unbalanced quote
            problems.append(Problem(path, key, f"cannot split into arguments: {exc} "
                                               f"(in {textsafe.clip(repr(text))})"))
            return []

    for key in ("command", "args", "docker_args"):
        if isinstance(b00t.get(key), str):
            b00t[key] = split(b00t[key], f"b00t.{key}")
    for key in ("health_check", "resources", "swarm"):  # else cattrs says "expected HealthCheck | None"
        if key in b00t and not isinstance(b00t[key], dict):
            problems.append(Problem(path, f"b00t.{key}", f"expected a table, got {_describe(b00t.pop(key))}"))
    hc = b00t.get("health_check")
    if isinstance(hc, dict) and isinstance(hc.get("exec"), str):
        b00t["health_check"] = {**hc, "exec": split(hc["exec"], "b00t.health_check.exec")}

    requirements: list[Requirement] = []
    reqs = b00t.pop("requirements", [])
    kept: dict[str, Any] = {}
    if isinstance(reqs, dict) and "kind" not in reqs:  # b00t's descriptive [b00t.requirements] table
        kept["requirements"] = reqs
        notes.append(Problem(path, "b00t.requirements", "a table of descriptions (not [[b00t.requirements]] "
                                                        "entries): read, not acted on"))
        reqs = []
    if not isinstance(reqs, list):
        problems.append(Problem(path, "b00t.requirements", f"expected an array of tables, got {_describe(reqs)}"))
        reqs = []
    for i, req in enumerate(reqs):
        key = f"b00t.requirements[{i}]"
        if not isinstance(req, dict) or not isinstance(req.get("kind"), str):
            problems.append(Problem(path, key, "expected a table with a string 'kind'"))
            continue
        port = req.get("port")
        if req["kind"] == "tcp_port" and (not isinstance(port, int) or isinstance(port, bool)):
            problems.append(Problem(path, f"{key}.port", f"expected an integer, got {_describe(port)}"))
            continue
        host = req.get("host", "127.0.0.1")
        if not isinstance(host, str):
            problems.append(Problem(path, f"{key}.host", f"expected a string, got {_describe(host)}"))
            continue
        rest = {k: v for k, v in req.items() if k not in ("kind", "host", "port")}
        requirements.append(Requirement(kind=req["kind"], host=host, port=port, extra=rest))

    extra = {**kept, **{k: b00t.pop(k) for k in list(b00t) if k not in _DATUM_KEYS}}
    for key in extra:
        if key in _READ_FROM_EXTRA:
            continue
        notes.append(Problem(path, f"b00t.{key}", dialects.quiet_reason(key) or "kept, not acted on by b00t-graph"))
    for key in doc:
        if key not in ("b00t", "env"):
            extra[f"^{key}"] = doc[key]
            notes.append(Problem(path, key, dialects.quiet_reason(key)
                                 or "top-level table kept, not acted on by b00t-graph"))

    try:
        datum = _CONVERTER.structure({**b00t, "path": path, "env": {}}, Datum)
    except (ClassValidationError, IterableValidationError) as exc:
        for key, msg in _paths(exc, "b00t"):
            problems.append(Problem(path, key, msg + _suggest_key(key, msg)))
        return None, problems, notes, norm.declared_name
    if problems:
        return None, problems, notes, norm.declared_name
    datum = attrs.evolve(datum, env={k: str(v) for k, v in env.items()}, env_table=env_table,
                         requirements=tuple(requirements), extra=extra, **norm.fields)
    problems.extend(_check_kind(datum))
    return (None if problems else datum), problems, notes, norm.declared_name


def _suggest_key(key: str, msg: str) -> str:
    if not msg.startswith("unknown key(s): "):
        return ""
    table = {"b00t.health_check": HealthCheck, "b00t.resources": Resources}.get(key)
    if table is None:
        return ""
    known = [f.name for f in attrs.fields(table)]
    hints = []
    for bad in msg.removeprefix("unknown key(s): ").split(", "):
        close = difflib.get_close_matches(bad, known, n=1)
        if close:
            hints.append(f"{bad} → {close[0]}?")
    return f" ({'; '.join(hints)})" if hints else f" (known: {', '.join(known)})"


def _check_kind(d: Datum) -> Iterable[Problem]:
    """What each managed type needs to be runnable."""
    if d.runtime in DOCKER_RUNTIMES and not d.image:
        yield Problem(d.path, "b00t.image", "required for a docker datum (e.g. image = \"qdrant/qdrant:latest\")")
    if d.runtime == "process" and not d.command:
        yield Problem(d.path, "b00t.command", "required for a process datum (e.g. command = \"python3\")")
    if d.engine is not None and d.runtime != "docker":
        yield Problem(d.path, "b00t.engine", "only a docker datum runs on an engine (this one runs "
                      + (f"as {d.runtime})" if d.runtime else "nothing)"))
    for key, value in (("depends_on", d.depends_on), ("members", d.members), ("optional", d.optional)):
        for i, ref in enumerate(value):
            # An untyped ref ("node") is reported when a graph needs it, with the typed datum to write
            # ("node.cli"): only the whole catalogue knows that.
            if ref == d.id:
                yield Problem(d.path, f"b00t.{key}[{i}]", "a datum cannot depend on itself")
    hc = d.health_check
    if hc is not None:
        for key in ("timeout_ms", "probe_timeout_ms", "interval_ms"):
            if getattr(hc, key) <= 0:
                yield Problem(d.path, f"b00t.health_check.{key}", "expected a positive integer")
        if hc.log_regex:
            try:
                re.compile(hc.log_regex)
            except re.error as exc:
                yield Problem(d.path, "b00t.health_check.log_regex", f"invalid regular expression: {exc}")
        # 0 ("any HTTP response") only from the mcp httpstream dialect, never written by hand
        if not (100 <= hc.expected_status <= 599 or (hc.expected_status == 0 and d.kind == "probe")):
            yield Problem(d.path, "b00t.health_check.expected_status", "expected an HTTP status (100-599)")


def require(catalog: Catalog, identities: Iterable[str]) -> None:
    """Raise :class:`DatumError` with the problems of every broken datum among ``identities``."""
    problems = [p for i in identities for p in catalog.broken.get(i, [])]
    if problems:
        raise DatumError(problems)
