"""``validate`` and ``ls``: the datum folders as a whole."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import attrs
import click

from .. import safety, textsafe
from ..errors import (
    EXIT_INPUT,
    B00tGraphError,
    CycleError,
    MissingDependencyError,
    Problem,
)
from ..loader import Catalog
from ._common import (
    _catalog,
    _say,
    datums_opt,
    out,
)


@attrs.define
class _Check:
    """What is wrong in a catalog, by file: the one answer ``validate`` and ``ls`` both give."""

    #: every message once, in the order found
    errors: list[str] = attrs.field(factory=list)
    #: file → its own problems (it fails to load, or its graph has a problem it causes)
    broken: dict[str, list[str]] = attrs.field(factory=dict)
    #: identity → why it loads but cannot be planned (a dependency is broken)
    blocked: dict[str, str] = attrs.field(factory=dict)
    #: what planned datums may do to the host (privileged, a cwd outside their folder): notes, not errors
    safety: list[Problem] = attrs.field(factory=list)


def _check(cat: Catalog) -> _Check:
    """Load problems plus what compiling each datum finds (cycles, missing dependencies, ``${VAR}``)."""
    from ..graph import compile_graph

    res = _Check()
    seen: set[str] = set()

    def add(path: str, msg: str, key: str | None = None) -> None:
        res.broken.setdefault(path, [])
        if msg not in res.broken[path]:
            res.broken[path].append(msg)
        if (key or msg) not in seen:
            seen.add(key or msg)
            res.errors.append(msg)

    folders = {str(src.path) for src in cat.sources}
    for problem in cat.problems:
        if problem.path in folders:  # a missing folder: an error, not a datum with problems
            res.errors.append(str(problem))
        else:
            add(problem.path, str(problem))
    path_of = {ident: d.path for ident, d in cat.datums.items()}
    for ident in sorted(cat.datums):
        try:
            res.safety += safety.notes(compile_graph(cat, [ident]).nodes[ident])
        except B00tGraphError as exc:
            # One line per problem, each once: a broken dependency or a loop is met from every datum near it.
            own = False
            problems = getattr(exc, "problems", None)
            if isinstance(problems, list) and problems:
                for p in problems:
                    where = getattr(p, "path", None) or path_of[ident]
                    add(where, str(p))
                    own = own or where == path_of[ident]
            elif isinstance(exc, CycleError):
                for member in set(exc.cycle):
                    if member in path_of:
                        add(path_of[member], str(exc), " → ".join(sorted(set(exc.cycle))))
                own = True
            elif isinstance(exc, MissingDependencyError) and exc.wanted_by in path_of:
                add(path_of[exc.wanted_by], str(exc))
                own = exc.wanted_by == ident
            else:
                add(path_of[ident], str(exc))
                own = True
            if not own and path_of[ident] not in res.broken:
                res.blocked[ident] = str(exc).splitlines()[0]
    return res


def _grouped_notes(notes: Sequence[Problem]) -> list[str]:
    """One line per (key, message) with the number of files, so notes do not drown the errors."""
    groups: dict[tuple[str, str], list[str]] = {}
    for n in notes:
        groups.setdefault((n.key, n.message), []).append(n.path)
    lines = []
    for (key, message), paths in sorted(groups.items(), key=lambda kv: (-len(set(kv[1])), kv[0])):
        files = sorted(set(paths))
        if len(files) == 1:
            lines.append(f"note: {Problem(files[0], key, message)}")
        else:
            lines.append(f"note: {key}: {message} (in {len(files)} files)")
    return lines


@click.command()
@click.argument("dirs", nargs=-1, type=click.Path(file_okay=False, exists=True))
@datums_opt
@click.option("--strict", is_flag=True, help="Also fail on notes (keys kept but not acted on).")
@click.option("-v", "--verbose", is_flag=True, help="Every note of every file, not grouped by key.")
def validate(dirs: tuple[str, ...], datums: tuple[str, ...], strict: bool, verbose: bool) -> None:
    """Check every datum of the folders (DIRS and --datums) and report every problem at once (exit 2 if any).

    \b
    Example:
      b00t-graph validate                       # the folders b00t-graph would use
      b00t-graph validate ./_b00t_ --strict     # notes fail too
      b00t-graph -d ~/.dotfiles/_b00t_ validate
    """
    cat = _catalog([*dirs, *datums])
    res = _check(cat)
    if verbose:
        for note in cat.notes:
            click.echo(textsafe.escape(f"note: {note}"))
    else:
        for line in _grouped_notes(cat.notes):
            click.echo(textsafe.escape(line))
    for note in res.safety:
        click.echo(textsafe.escape(f"note: {note}"))
    bad = len(res.broken)
    ok = len(cat.files) - bad - len(res.blocked)
    summary = f"{ok} datum(s) ok, {bad} with problems"
    if res.blocked:
        summary += f", {len(res.blocked)} blocked by a dependency's problems"
    click.echo(textsafe.escape(summary + ", in " + ", ".join(str(s.path) for s in cat.sources)))
    for p in res.errors:
        _say(f"error: {p}")
    if res.errors or (strict and cat.notes):
        sys.exit(EXIT_INPUT)


@click.command(name="ls")
@datums_opt
@click.option("--json", "as_json", is_flag=True)
def ls_cmd(datums: tuple[str, ...], as_json: bool) -> None:
    """Datums found, by type, and where each came from.

    \b
    Example:
      b00t-graph ls
      b00t-graph ls -d ./_b00t_ --json
    """
    from .. import render

    cat = _catalog(datums)
    res = _check(cat)
    origin = {str(s.path): s.origin for s in cat.sources}
    rows = []
    for ident, d in sorted(cat.datums.items(), key=lambda kv: (kv[1].type, kv[0])):
        folder = str(Path(d.path).parent)
        state = "broken" if d.path in res.broken else "blocked" if ident in res.blocked else "ok"
        rows.append({"id": ident, "type": d.type, "path": d.path, "origin": origin.get(folder, folder),
                     "managed": d.managed, "runtime": d.runtime, "hint": d.hint, "state": state})
    broken = sorted(_ident_or_file(p) for p in res.broken)
    if as_json:
        click.echo(render.to_json({"sources": [{"path": str(s.path), "origin": s.origin} for s in cat.sources],
                                   "datums": rows, "broken": broken, "blocked": sorted(res.blocked)}))
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("type", "datum", "runtime", "from", "file"):
        table.add_column(col, overflow="fold")  # a path cut short with "…" is useless
    for r in rows:
        runs = str(r["runtime"] or "-") + ("" if r["state"] == "ok" else f" ({r['state']})")
        table.add_row(*(textsafe.escape(str(x)) for x in (r["type"], r["id"], runs, r["origin"], r["path"])))
    out.print(table)
    for s in cat.sources:
        if not s.path.is_dir():  # a stale $_B00T_Path entry must not look like an empty folder
            _say(f"warning: {s.path}: datum folder not found (from {s.origin})")
    if broken:
        _say(f"{len(broken)} datum(s) with problems: {', '.join(broken)} (`b00t-graph validate` says why)")


def _ident_or_file(path: str) -> str:
    stem = Path(path).name.removesuffix(".toml")
    return stem if "." in stem else Path(path).name
