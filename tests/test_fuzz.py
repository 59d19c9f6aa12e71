"""Hostile and random datums: the loader and the CLI answer exit 0 or 2 with a message, never a traceback,
in bounded time, and one broken file never breaks the other datums of its folder.

Three kinds of input: random TOML trees under ``[b00t]``, real-shaped datums (the packaged ones) with
random mutations, and strings full of ``${``. Plus the extremes found by fault injection: nesting that
used to exhaust Python's stack, a file over the size limit, a 1 MB command, a byte-order mark.
Example counts are modest so the suite stays fast; ``HYPOTHESIS_PROFILE``-style tuning is not needed
to find the classes of bug these guard against (each was found in well under 100 examples).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b00t_graph.cli import main
from b00t_graph.loader import MAX_DEPTH, MAX_FILE_BYTES, PACKAGED_DATUMS

#: seconds one CLI call may take on any generated input (a loaded CI machine included)
BOUND = 10.0
FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> None:
    for var in ("_B00T_Path", "B00T_DEBUG"):
        monkeypatch.delenv(var, raising=False)


def run(*args: str) -> Result:
    """One CLI call in-process: exit 0 or 2, a message when 2, no exception, no traceback, bounded time."""
    t0 = time.process_time()  # CPU time: other processes on a loaded machine do not count against us
    result = CliRunner().invoke(main, list(args))
    took = time.process_time() - t0
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 2), (result.exit_code, result.output[-2000:])
    if result.exit_code == 2:
        assert "error:" in result.stderr, result.output[-2000:]
    assert took < BOUND, f"{args[0]} took {took:.1f}s of CPU"
    return result


def check_folder(folder: Path, ident: str) -> None:
    """What a user would run on a folder holding a strange datum (plus a good one beside it)."""
    run("validate", str(folder))
    run("ls", "-d", str(folder))
    run("plan", ident, "-d", str(folder), "--offline")
    run("plan", ident, "-d", str(folder), "--offline", "--json")
    # the good datum beside it still plans, whatever the other file holds
    good = run("plan", "good.process", "-d", str(folder), "--offline")
    assert good.exit_code == 0, good.output


@pytest.fixture
def folder() -> Iterator[Path]:
    """Not tmp_path: hypothesis calls the test many times with one fixture value."""
    with tempfile.TemporaryDirectory(prefix="b00tg-fuzz-") as d:
        yield Path(d)


def write(folder: Path, name: str, content: str | bytes) -> Path:
    for old in folder.glob("*.toml"):
        old.unlink()
    (folder / "good.process.toml").write_text("[b00t]\ncommand = ['true']\n")
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    return path


# --- random TOML trees -----------------------------------------------------------------------------

_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20)
_KEYS = st.one_of(st.sampled_from(["name", "type", "image", "command", "args", "docker_args", "depends_on",
                                   "members", "env", "health_check", "resources", "cwd", "ports", "volumes",
                                   "http_url", "timeout_ms", "tcp", "exec", "memory_limit", "hint", "mcp",
                                   "stdio", "container", "docker", "run", "requires", "lifecycle"]),
                  _TEXT)
_SCALARS = st.one_of(_TEXT, st.integers(min_value=-(2**63), max_value=2**63 - 1), st.booleans(),
                     st.floats(allow_nan=False, allow_infinity=False),
                     st.sampled_from(["${X}", "${X:-${Y:-z}}", "$${", "${", "}", "'", '"', "a b 'c", "-p 80:80"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(_KEYS, inner, max_size=4)),
                       max_leaves=20)


def toml_value(value: Any) -> str:
    """A TOML inline value (JSON's string escapes are TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) and "e" not in repr(value) else "0.5"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_doc(tables: dict[str, dict[str, Any]]) -> str:
    lines = []
    for table, items in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in items.items()]
    return "\n".join(lines) + "\n"


@FUZZ
@given(b00t=st.dictionaries(_KEYS, _VALUES, max_size=8),
       sub=st.sampled_from(["b00t.health_check", "b00t.env", "b00t.resources", "b00t.docker", "env", "stack"]),
       sub_items=st.dictionaries(_KEYS, _VALUES, max_size=4),
       typ=st.sampled_from(["process", "docker", "stack", "mcp", "cli"]))
def test_random_toml_trees(folder: Path, b00t: dict[str, Any], sub: str, sub_items: dict[str, Any],
                           typ: str) -> None:
    write(folder, f"fuzz.{typ}.toml", toml_doc({"b00t": b00t, sub: sub_items}))
    check_folder(folder, f"fuzz.{typ}")


# --- real-shaped datums, mutated -------------------------------------------------------------------

_REAL = sorted(p for p in PACKAGED_DATUMS.glob("*.toml"))
_INSERTS = st.sampled_from(["${", "${A:-", "}", "[", "]", "{", "=", "\"", "'", "\\", "\n", "[[b00t.x]]\n",
                            "\x1b[2J", "\ufeff", "\x00", "../../..", "--privileged", "$$", "#", "\r"])


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str]:
    path = draw(st.sampled_from(_REAL))
    text = path.read_text()
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:at] + draw(_INSERTS) * draw(st.integers(1, 3)) + text[at:]
        else:
            text = text[:at] + text[at + draw(st.integers(1, 20)):]
    return path.name, text


@FUZZ
@given(mutated())
def test_mutated_real_datums(folder: Path, case: tuple[str, str]) -> None:
    name, text = case
    write(folder, name, text)
    check_folder(folder, name.removesuffix(".toml"))


# --- ${ strings --------------------------------------------------------------------------------------

_PIECES = st.sampled_from(["${", "}", "A", "B_1", ":-", "-", ":?", "?", "$$", "$", "{", "x", " ", "${A}", "${B:-"])


@FUZZ
@given(env=st.lists(_PIECES, max_size=30).map("".join), cmd=st.lists(_PIECES, max_size=30).map("".join),
       depth=st.integers(0, 80))
def test_substitution_strings(folder: Path, env: str, cmd: str, depth: int) -> None:
    nested = "${A:-" * depth + "x" + "}" * depth
    write(folder, "subst.process.toml",
          toml_doc({"b00t": {"command": ["echo", cmd, nested], "cwd": env}, "b00t.env": {"A": env, "N": nested}}))
    check_folder(folder, "subst.process")


# --- the extremes ------------------------------------------------------------------------------------

def _problem(folder: Path, ident: str) -> str:
    res = run("plan", ident, "-d", str(folder), "--offline")
    assert res.exit_code == 2
    assert str(folder / f"{ident}.toml") in res.stderr
    line: str = res.stderr.strip()
    assert "\n" not in line  # one line
    return line


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 600, 5000])
def test_deep_arrays_are_a_datum_error(folder: Path, depth: int) -> None:
    write(folder, "deep.process.toml", "[b00t]\ncommand = ['true']\nx = " + "[" * depth + "]" * depth + "\n")
    line = _problem(folder, "deep.process")
    assert f"b00t.x: arrays or tables nested more than {MAX_DEPTH} levels deep" in line
    check_folder(folder, "deep.process")


def test_deep_inline_tables_are_a_datum_error(folder: Path) -> None:
    write(folder, "deep.process.toml", "[b00t]\ncommand = ['true']\nt = " + "{a = " * 700 + "1" + "}" * 700 + "\n")
    assert "b00t.t: arrays or tables nested more than" in _problem(folder, "deep.process")


def test_deep_dotted_tables_are_a_datum_error(folder: Path) -> None:
    write(folder, "deep.process.toml", "[b00t]\ncommand = ['true']\n[b00t." + ".".join(["k"] * 500) + "]\nv = 1\n")
    assert "b00t.k.k.k.k.k.…: arrays or tables nested more than" in _problem(folder, "deep.process")


def test_nesting_at_the_limit_is_fine(folder: Path) -> None:
    depth = MAX_DEPTH - 2  # [b00t] and the key itself are two levels
    write(folder, "ok.process.toml", "[b00t]\ncommand = ['true']\nx = " + "[" * depth + "]" * depth + "\n")
    assert run("plan", "ok.process", "-d", str(folder), "--offline").exit_code == 0


@pytest.mark.parametrize("depth", [40, 330, 2000])
def test_deep_substitution_is_an_env_error(folder: Path, depth: int) -> None:
    nested = "${A:-" * depth + "x" + "}" * depth
    write(folder, "deep.process.toml", f"[b00t]\ncommand = ['true']\n[b00t.env]\nA = '{nested}'\n")
    line = _problem(folder, "deep.process")
    assert "b00t.env.A: ${…} references nested more than 32 deep" in line
    assert len(line) < 500  # the value is clipped, not echoed whole
    check_folder(folder, "deep.process")


def test_substitution_nesting_within_the_limit_resolves(folder: Path) -> None:
    nested = "${A:-" * 30 + "x" + "}" * 30
    write(folder, "ok.process.toml", f"[b00t]\ncommand = ['true']\n[b00t.env]\nB = '{nested}'\n")
    data = json.loads(run("plan", "ok.process", "-d", str(folder), "--offline", "--json").stdout)
    assert data["env"]["B"] == "x"


def test_file_over_the_size_limit_is_refused_unread(folder: Path) -> None:
    write(folder, "big.process.toml", "[b00t]\ncommand = 'true'\nhint = '" + "x" * MAX_FILE_BYTES + "'\n")
    line = _problem(folder, "big.process")
    assert "larger than 1,000,000 bytes" in line
    check_folder(folder, "big.process")


def test_a_1mb_command_loads_in_linear_time(folder: Path) -> None:
    """Just under the file limit: shlex.split took ~10 s on such a command; now well under a second."""
    write(folder, "long.process.toml", "[b00t]\ncommand = 'echo " + "a" * (MAX_FILE_BYTES - 100) + "'\n")
    t0 = time.process_time()
    res = run("plan", "long.process", "-d", str(folder), "--offline", "--json")
    assert res.exit_code == 0
    assert time.process_time() - t0 < 5.0
    assert len(json.loads(res.stdout)["nodes"][0]["command"][1]) == MAX_FILE_BYTES - 100


def test_unbalanced_quote_in_a_huge_command_is_one_short_line(folder: Path) -> None:
    write(folder, "q.process.toml", "[b00t]\ncommand = \"echo '" + "a" * 500_000 + "\"\n")
    line = _problem(folder, "q.process")
    assert "b00t.command: cannot split into arguments: No closing quotation" in line
    assert len(line) < 500


def test_utf8_bom_is_accepted_with_a_note(folder: Path) -> None:
    write(folder, "bom.process.toml", b"\xef\xbb\xbf[b00t]\ncommand = ['true']\n")
    assert run("plan", "bom.process", "-d", str(folder), "--offline").exit_code == 0
    res = run("validate", str(folder))
    assert res.exit_code == 0
    assert "bom.process.toml: starts with a UTF-8 byte-order mark (BOM); read without it" in res.stdout
