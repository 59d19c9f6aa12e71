"""Bad input through the CLI: one clear message, exit code 2, never a traceback.

Most cases run in-process through ``click.testing.CliRunner``; a few run the installed entry
point in a real subprocess, as a user would.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from b00t_graph.cli import main
from b00t_graph.loader import PACKAGED_DATUMS

Write = Callable[..., Path]

UNSET = "B00T_TEST_SURELY_UNSET"


@pytest.fixture(autouse=True)
def _clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> None:
    """No datum folder from the developer's shell, no debug mode, a cwd without ./_b00t_."""
    for var in ("_B00T_Path", "B00T_DEBUG", UNSET):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    # our errors end in sys.exit, never in an exception escaping to click
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def _write(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for ident, text in files.items():
        path = folder / f"{ident}.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return folder


GOOD = {"ok.process": "[b00t]\ncommand = 'true'\n", "qdrant.process": "[b00t]\ncommand = 'true'\n"}

#: (case id, files, target, the whole message after "error: " — {d} is the datum folder)
BAD_INPUTS: list[tuple[str, dict[str, str | bytes], str, str]] = [
    ("toml-syntax", {"a.process": "[b00t]\ncommand = 'x'\nfoo = = 1\n"}, "a",
     "{d}/a.process.toml: TOML syntax error: Invalid value (at line 3, column 7)"),
    ("toml-unclosed-table", {"a.process": "[b00t\ncommand = 'x'\n"}, "a.process",
     "{d}/a.process.toml: TOML syntax error: Expected ']' at the end of a table declaration (at line 1, column 6)"),
    ("wrong-type", {"a.process": "[b00t]\ncommand = 'x'\n[b00t.health_check]\ntimeout_ms = 'abc'\n"}, "a",
     "{d}/a.process.toml: b00t.health_check.timeout_ms: expected an integer, got string 'abc'"),
    ("typo-key", {"a.process": "[b00t]\ncommand = 'x'\n[b00t.health_check]\ntimout_ms = 5\n"}, "a",
     "{d}/a.process.toml: b00t.health_check: unknown key(s): timout_ms (timout_ms → timeout_ms?)"),
    ("missing-b00t", {"a.process": "[service]\ncommand = 'x'\n"}, "a",
     "{d}/a.process.toml: b00t: missing; a datum keeps everything under [b00t]"),
    ("unknown-type", {"a.dokcer": "[b00t]\nimage = 'x'\n"}, "a",
     "{d}/a.dokcer.toml: b00t.type: unknown type 'dokcer' (did you mean 'docker'?); known: agent, ai, "),
    ("cycle", {"a.process": "[b00t]\ncommand = 'x'\ndepends_on = ['b.mcp']\n",
               "b.mcp": "[b00t]\ndepends_on = ['a.process']\n"}, "a.process",
     "dependency cycle: a.process → b.mcp → a.process"),
    ("missing-dependency", {"a.process": "[b00t]\ncommand = 'x'\ndepends_on = ['qdrnt.process']\n"}, "a",
     "{d}/a.process.toml: b00t.depends_on[0]: a.process depends on 'qdrnt.process', which no datum provides "
     "(did you mean 'qdrant.process'?)"),
    ("missing-target", {}, "qdrnt",
     "target 'qdrnt', which no datum provides (did you mean 'qdrant.process'?)"),
    ("ambiguous-target", {"ok.mcp": "[b00t]\n"}, "ok",
     "target 'ok' is ambiguous: ok.mcp, ok.process"),
    ("unresolved-var", {"a.process": f"[b00t]\ncommand = 'x'\n[b00t.env]\nX = '${{{UNSET}}}'\n"}, "a",
     f"{{d}}/a.process.toml: b00t.env.X: ${{{UNSET}}} is not set "
     "(not exported by any dependency, not in the environment)"),
    ("required-var", {"a.process": f"[b00t]\ncommand = 'x'\nargs = ['${{{UNSET}:?give me a port}}']\n"}, "a",
     f"{{d}}/a.process.toml: b00t.args[0]: ${{{UNSET}}}: give me a port"),
    ("malformed-ref", {"a.process": "[b00t]\ncommand = 'x'\nargs = ['${PORT']\n"}, "a",
     "{d}/a.process.toml: b00t.args[0]: malformed reference '${PORT' (no closing brace)"),
    ("non-utf8", {"a.process": b"[b00t]\ncommand = 'caf\xe9'\n"}, "a",
     "{d}/a.process.toml: not UTF-8 text (bad byte at offset 21); save it as UTF-8"),
    ("empty", {"a.process": ""}, "a",
     "{d}/a.process.toml: empty file; a datum needs a [b00t] table with name and type"),
    ("unbalanced-quote", {"a.process": "[b00t]\ncommand = \"python3 -c 'print(1)\"\n"}, "a",
     "{d}/a.process.toml: b00t.command: cannot split into arguments: No closing quotation "
     "(in \"python3 -c 'print(1)\")"),
    ("no-command", {"a.process": "[b00t]\nhint = 'forgot the command'\n"}, "a",
     '{d}/a.process.toml: b00t.command: required for a process datum (e.g. command = "python3")'),
]


@pytest.mark.parametrize(("files", "target", "message"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_plan(tmp_path: Path, files: dict[str, str | bytes], target: str, message: str) -> None:
    d = _write(tmp_path / "datums", {**GOOD, **files})
    result = invoke("plan", "--offline", "-d", str(d), target)
    assert result.exit_code == 2, result.output
    expected = "error: " + message.replace("{d}", str(d))
    assert result.stderr.startswith(expected), f"\n{result.stderr}\n!=\n{expected}"
    assert result.stdout == ""
    # one message: a single line, except for the "N problems" form which lists each below
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["up", "down", "status"])
def test_bad_input_is_caught_before_any_command_acts(tmp_path: Path, command: str) -> None:
    d = _write(tmp_path / "datums", {"a.process": "[b00t]\ncommand = 'x'\nfoo = = 1\n"})
    result = invoke(command, "-d", str(d), "a")
    assert result.exit_code == 2
    assert result.stderr == f"error: {d}/a.process.toml: TOML syntax error: Invalid value (at line 3, column 7)\n"


def test_several_problems_in_one_file_are_listed_together(tmp_path: Path) -> None:
    d = _write(tmp_path / "datums", {"a.process": "[b00t]\ncommand = 5\n[b00t.health_check]\ntimeout_ms = 'abc'\n"})
    result = invoke("plan", "--offline", "-d", str(d), "a")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: 2 problems in datums:",
        f"  {d}/a.process.toml: b00t.command: expected an array of strings, got integer 5",
        f"  {d}/a.process.toml: b00t.health_check.timeout_ms: expected an integer, got string 'abc'",
    ]


def test_duplicate_identity_across_two_folders(tmp_path: Path) -> None:
    one = _write(tmp_path / "one", {"db.mcp": "[b00t]\n"})
    two = _write(tmp_path / "two", {"db.mcp": "[b00t]\n"})
    result = invoke("plan", "--offline", "-d", str(one), "-d", str(two), "db")
    assert result.exit_code == 2
    assert result.stderr == f"error: {two}/db.mcp.toml: duplicate datum 'db.mcp', also in {one}/db.mcp.toml\n"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["plan"], "Missing argument 'TARGETS...'"),
        (["plan", "--format", "png", "x"], "Invalid value for '--format'"),
        (["plan", "-d", "/nonexistent/b00t", "x"], "Directory '/nonexistent/b00t' does not exist"),
        (["validate", "/nonexistent/b00t"], "Directory '/nonexistent/b00t' does not exist"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_usage_errors_exit_2(args: list[str], fragment: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert fragment in result.stderr


# --- validate ---------------------------------------------------------------------------------------


def test_validate_reports_every_error_of_a_folder_at_once(tmp_path: Path) -> None:
    d = _write(tmp_path / "datums", {
        **GOOD,
        "syntax.process": "[b00t]\ncommand = 'x'\nfoo = = 1\n",
        "typed.process": "[b00t]\ncommand = 'x'\n[b00t.health_check]\ntimeout_ms = 'abc'\n",
        "nob00t.process": "[service]\n",
        "latin.process": b"[b00t]\ncommand = '\xff'\n",
        "empty.process": "",
        "renamed.process": "[b00t]\nname = 'other'\ncommand = 'x'\n",
        "c1.mcp": "[b00t]\ndepends_on = ['c2.mcp']\n",
        "c2.mcp": "[b00t]\ndepends_on = ['c1.mcp']\n",
        "lost.mcp": "[b00t]\ndepends_on = ['qdrnt.process']\n",
        "envy.mcp": f"[b00t]\n[b00t.env]\nX = '${{{UNSET}}}'\nY = '${{{UNSET}:?say why}}'\n",
        "uses-broken.mcp": "[b00t]\ndepends_on = ['typed.process', 'ok.process']\n",
        "a.dokcer": "[b00t]\nimage = 'x'\n",
        "b.mcp": "[b00t]\ndepends_on = ['a.process']\n",
    })
    result = invoke("validate", str(d))
    assert result.exit_code == 2
    errors = [line.removeprefix("error: ") for line in result.stderr.splitlines()]
    assert all(line.startswith("error: ") for line in result.stderr.splitlines())
    expected = [
        f"{d}/a.dokcer.toml: b00t.type: unknown type 'dokcer' (did you mean 'docker'?)",
        f"{d}/empty.process.toml: empty file",
        f"{d}/latin.process.toml: not UTF-8 text",
        f"{d}/nob00t.process.toml: b00t: missing",
        f"{d}/syntax.process.toml: TOML syntax error: Invalid value (at line 3, column 7)",
        f"{d}/typed.process.toml: b00t.health_check.timeout_ms: expected an integer, got string 'abc'",
        "dependency cycle: c1.mcp → c2.mcp → c1.mcp",
        f"{d}/envy.mcp.toml: b00t.env.X: ${{{UNSET}}} is not set",
        f"{d}/envy.mcp.toml: b00t.env.Y: ${{{UNSET}}}: say why",
        f"{d}/lost.mcp.toml: b00t.depends_on[0]: lost.mcp depends on 'qdrnt.process', which no datum provides "
        "(did you mean 'qdrant.process'?)",
    ]
    for want in expected:
        assert sum(e.startswith(want) for e in errors) == 1, f"{want!r} not reported exactly once in:\n{errors}"
    # b.mcp depends on a.process, which is missing from this folder
    assert f"{d}/b.mcp.toml: b00t.depends_on[0]: b.mcp depends on 'a.process', which no datum provides" in errors
    assert len(errors) == len(expected) + 1, "\n".join(errors)
    # uses-broken.mcp is fine itself: it waits for typed.process, whose file has the problem
    assert result.stdout.splitlines()[-1] == (f"3 datum(s) ok, 11 with problems, "
                                              f"1 blocked by a dependency's problems, in {d}")


def test_validate_clean_folder_exits_0_and_reports_kept_keys_as_notes(tmp_path: Path) -> None:
    d = _write(tmp_path / "datums", {
        "gh.cli": """
[b00t]
hint = "GitHub CLI"
desires = "2.40"
install = "sudo apt install gh"

[[b00t.usage]]
command = "gh auth login"

[b00t.orchestration]
priority = 3

[[b00t.mcp.stdio]]
command = "npx"

[env]
GH_HOST = "github.com"
""",
        "bot.process": "[b00t]\ncommand = 'bot'\ndepends_on = ['gh.cli']\n"
                       "[[b00t.requirements]]\nkind = 'tcp_port'\nport = 8080\n",
    })
    result = invoke("validate", str(d))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert sorted(result.stdout.splitlines()) == sorted([
        f"note: {d}/gh.cli.toml: env: top-level [env] read as [b00t.env]; prefer [b00t.env]",
        f"note: {d}/gh.cli.toml: b00t.desires: not acted on (b00t's version wish)",
        f"note: {d}/gh.cli.toml: b00t.usage: documentation, not acted on",
        f"note: {d}/gh.cli.toml: b00t.orchestration: b00t's own scheduling, not acted on",
        f"2 datum(s) ok, 0 with problems, in {d}",
    ])
    strict = invoke("validate", "--strict", str(d))
    assert strict.exit_code == 2
    # the same report; under --strict the notes it lists are what fails the run
    assert strict.stdout == result.stdout and strict.stderr == ""


# --- ls and where datums come from ------------------------------------------------------------------


def test_ls_lists_by_type_with_origin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    d = _write(tmp_path / "datums", {"web.process": "[b00t]\ncommand = 'x'\nhint = 'the web'\n",
                                     "gh.cli": "[b00t]\n", "all.stack": "[b00t]\nmembers = ['web.process']\n",
                                     "bad.mcp": "[b00t\n"})
    result = invoke("ls", "-d", str(d))
    assert result.exit_code == 0
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["type", "datum", "runtime", "from", "file"]
    assert rows[1:] == [["cli", "gh.cli", "-", "--datums", f"{d}/gh.cli.toml"],
                        ["process", "web.process", "process", "--datums", f"{d}/web.process.toml"],
                        ["stack", "all.stack", "-", "--datums", f"{d}/all.stack.toml"]]
    assert result.stderr == "1 datum(s) with problems: bad.mcp (`b00t-graph validate` says why)\n"
    data = json.loads(invoke("ls", "--json", "-d", str(d)).stdout)
    assert data["sources"] == [{"path": str(d), "origin": "--datums"}]
    assert data["broken"] == ["bad.mcp"]
    assert [(r["id"], r["type"], r["managed"], r["hint"]) for r in data["datums"]] == [
        ("gh.cli", "cli", False, None), ("web.process", "process", True, "the web"),
        ("all.stack", "stack", False, None)]


def test_ls_never_cuts_a_path_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    d = _write(tmp_path / ("a-rather-long-folder-name-for-datums-" * 6) / "and-deeper-still",
               {"web.process": "[b00t]\ncommand='x'\n"})
    out = invoke("ls", "-d", str(d)).stdout
    assert "…" not in out
    assert "".join(out.split()).count(f"{d}/web.process.toml".replace(" ", "")) == 1


def test_ls_says_when_a_datum_folder_does_not_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = _write(tmp_path / "here", {"web.process": "[b00t]\ncommand = 'x'\n"})
    monkeypatch.setenv("_B00T_Path", f"{tmp_path / 'gone'}{os.pathsep}{here}")
    result = invoke("ls")
    assert result.exit_code == 0
    assert "web.process" in result.stdout
    assert result.stderr == f"warning: {tmp_path / 'gone'}: datum folder not found (from $_B00T_Path)\n"


def _ls_sources() -> list[dict[str, str]]:
    result = invoke("ls", "--json")
    assert result.exit_code == 0
    sources: list[dict[str, str]] = json.loads(result.stdout)["sources"]
    return sources


def test_datum_folder_precedence_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _ls_sources() == [{"path": str(PACKAGED_DATUMS), "origin": "packaged"}]
    local = _write(tmp_path / "_b00t_", {"local.mcp": "[b00t]\n"})
    assert _ls_sources() == [{"path": str(local), "origin": "./_b00t_"}]
    env_a = _write(tmp_path / "env_a", {"from-env.mcp": "[b00t]\n"})
    env_b = _write(tmp_path / "env_b", {"from-env-b.mcp": "[b00t]\n"})
    monkeypatch.setenv("_B00T_Path", f"{env_a}{os.pathsep}{env_b}")
    assert _ls_sources() == [{"path": str(env_a), "origin": "$_B00T_Path"},
                             {"path": str(env_b), "origin": "$_B00T_Path"}]
    explicit = _write(tmp_path / "explicit", {"mine.mcp": "[b00t]\n"})
    result = invoke("ls", "--json", "-d", str(explicit))
    data = json.loads(result.stdout)
    assert data["sources"] == [{"path": str(explicit), "origin": "--datums"}]
    assert [r["id"] for r in data["datums"]] == ["mine.mcp"]
    # the chosen folder is what plan reads too
    planned = invoke("plan", "--offline", "--json", "from-env-b")
    assert planned.exit_code == 0, planned.output
    assert [n["id"] for n in json.loads(planned.stdout)["nodes"]] == ["from-env-b.mcp"]
    ignored = invoke("plan", "--offline", "local")  # ./_b00t_ is not read when $_B00T_Path is set
    assert ignored.exit_code == 2
    assert ignored.stderr == "error: target 'local', which no datum provides\n"


# --- the installed entry point, in real subprocesses ------------------------------------------------


def _run(*args: str, cwd: Path, script: bool = False, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("_B00T_Path", "B00T_DEBUG", UNSET)}
    environ.update(env)
    if script:
        exe = Path(sys.executable).parent / "b00t-graph"
        assert exe.exists(), f"entry point not installed next to {sys.executable}"
        cmd = [str(exe), *args]
    else:
        cmd = [sys.executable, "-m", "b00t_graph", *args]
    return subprocess.run(cmd, cwd=cwd, env=environ, capture_output=True, text=True, timeout=60, check=False)


def test_subprocess_bad_input_exits_2_with_one_message(tmp_path: Path) -> None:
    d = _write(tmp_path / "datums", {"a.process": "[b00t]\ncommand = 'x'\n[b00t.health_check]\ntimeout_ms = 'abc'\n"})
    proc = _run("plan", "-d", str(d), "a", cwd=tmp_path, script=True)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == f"error: {d}/a.process.toml: b00t.health_check.timeout_ms: expected an integer, " \
                          "got string 'abc'\n"


def test_subprocess_validate_folder_exits_2(tmp_path: Path) -> None:
    d = _write(tmp_path / "datums", {"a.process": "", "b.process": "[b00t\n", "ok.mcp": "[b00t]\n"})
    proc = _run("validate", str(d), cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: {d}/a.process.toml: empty file; a datum needs a [b00t] table with name and type",
        f"error: {d}/b.process.toml: TOML syntax error: Expected ']' at the end of a table declaration "
        "(at line 1, column 6)",
    ]


def test_subprocess_debug_shows_the_traceback(tmp_path: Path) -> None:
    d = _write(tmp_path / "datums", {"a.process": "[b00t]\ncommand = 'x'\ndepends_on = ['b.mcp']\n",
                                     "b.mcp": "[b00t]\ndepends_on = ['a.process']\n"})
    proc = _run("plan", "-d", str(d), "a", cwd=tmp_path, B00T_DEBUG="1")
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr
    assert proc.stderr.rstrip().endswith("error: dependency cycle: a.process → b.mcp → a.process")


def test_subprocess_plan_json_of_a_process_folder(tmp_path: Path) -> None:
    d = _write(tmp_path / "datums", {"web.process": "[b00t]\ncommand = 'python3'\nargs = ['-m', 'http.server', "
                                                    "'${WEB_PORT:-8000}']\n"})
    proc = _run("plan", "--json", "-d", str(d), "web", cwd=tmp_path, WEB_PORT="8123",
                B00T_GRAPH_STATE_DIR=str(tmp_path / "state"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["nodes"][0]["command"] == ["python3", "-m", "http.server", "8123"]
    assert data["actions"] == [{"step": 1, "node": "web.process", "action": "create",
                                "description": "create and start"}]


@pytest.mark.parametrize("script", [True, False], ids=["b00t-graph", "python -m b00t_graph"])
def test_subprocess_version(tmp_path: Path, script: bool) -> None:
    proc = _run("--version", cwd=tmp_path, script=script)
    assert proc.returncode == 0, proc.stderr
    prog = "b00t-graph" if script else "python -m b00t_graph"
    assert proc.stdout == f"{prog}, version {importlib.metadata.version('b00t-graph')}\n"
