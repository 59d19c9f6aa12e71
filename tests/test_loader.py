"""Reading datum files into the typed model: every problem named by file, key path and expectation."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from b00t_graph.errors import AmbiguousTargetError, DatumError, MissingDependencyError
from b00t_graph.loader import (
    PACKAGED_DATUMS,
    Source,
    datum_dirs,
    load_catalog,
    load_file,
    require,
    structure_datum,
)
from b00t_graph.model import HealthCheck, McpLaunch, Presence, Requirement, Resources

Write = Callable[..., Path]


def _problems(doc: dict[str, Any], path: str = "/d/svc.process.toml") -> list[str]:
    datum, problems, _ = structure_datum(doc, path)
    assert datum is None, "a datum with problems must not be returned"
    return [f"{p.key}: {p.message}" for p in problems]


def _load(folder: Path, name: str, text: str | bytes) -> tuple[Any, list[str], list[str]]:
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    datum, problems, notes = load_file(path)
    for p in [*problems, *notes]:
        assert p.path == str(path), "every problem names its file"
    return datum, [f"{p.key}: {p.message}" for p in problems], [f"{p.key}: {p.message}" for p in notes]


# --- the packaged datums ----------------------------------------------------------------------------


def test_packaged_datums_all_load_cleanly() -> None:
    cat = load_catalog([Source(PACKAGED_DATUMS, "packaged")])
    assert cat.problems == []
    assert {"qdrant.docker", "ollama.docker", "grok-guru.mcp", "grok.stack"} <= set(cat.datums)
    qdrant = cat.datums["qdrant.docker"]
    assert qdrant.image == "qdrant/qdrant:latest"
    assert qdrant.docker_args == ("-p", "6333:6333", "-p", "6334:6334", "-v", "qdrant_data:/qdrant/storage")
    assert qdrant.env["QDRANT_URL"] == "http://localhost:6333"
    assert qdrant.health_check == HealthCheck(http_url="http://localhost:6333/healthz", expected_status=200,
                                              timeout_ms=60000)
    assert qdrant.resources == Resources(memory_limit="1G")
    assert qdrant.managed and not qdrant.passive
    guru = cat.datums["grok-guru.mcp"]
    assert guru.depends_on == ("qdrant.docker", "ollama.docker")
    assert not guru.managed and not guru.passive  # a grouping type, not "not managed"
    grok = cat.datums["grok.stack"]
    assert grok.members == ("qdrant.docker", "ollama.docker", "grok-guru.mcp")
    assert grok.edges == grok.members


# --- one file: what loads ---------------------------------------------------------------------------


def test_full_process_datum(tmp_path: Path) -> None:
    datum, problems, notes = _load(tmp_path, "web.process.toml", """
[b00t]
name = "web"
type = "process"
hint = "a web server"
depends_on = ["db.docker"]
command = "python3 -m 'http.server'"
args = "8080 --bind 127.0.0.1"
cwd = "/srv"
stop_grace_ms = 3000
[b00t.health_check]
http_url = "http://127.0.0.1:8080/"
expected_status = 204
tcp = "127.0.0.1:8080"
exec = "test -f '/srv/ready file'"
log_regex = "Serving HTTP"
timeout_ms = 5000
probe_timeout_ms = 500
interval_ms = 100
start_period_ms = 200
retries = 7
[b00t.resources]
memory_limit = "512M"
cpu_limit = "0.5"
[b00t.env]
PORT = 8080
DEBUG = true
RATIO = 0.5
URL = "http://127.0.0.1:${PORT}"
""")
    assert problems == [] and notes == []
    assert datum.id == "web.process"
    assert datum.hint == "a web server"
    # shell-style strings become argv, honouring quotes
    assert datum.command == ("python3", "-m", "http.server")
    assert datum.args == ("8080", "--bind", "127.0.0.1")
    assert datum.cwd == "/srv" and datum.stop_grace_ms == 3000
    assert datum.health_check == HealthCheck(
        http_url="http://127.0.0.1:8080/", expected_status=204, tcp="127.0.0.1:8080",
        exec=["test", "-f", "/srv/ready file"], log_regex="Serving HTTP", timeout_ms=5000,
        probe_timeout_ms=500, interval_ms=100, start_period_ms=200, retries=7)
    assert datum.resources == Resources(memory_limit="512M", cpu_limit="0.5")
    # scalars in env become the strings a process would see; references stay unresolved until compile
    assert datum.env == {"PORT": "8080", "DEBUG": "true", "RATIO": "0.5", "URL": "http://127.0.0.1:${PORT}"}
    assert datum.env_table == "b00t.env"


def test_name_and_type_default_to_the_file_name(tmp_path: Path) -> None:
    datum, problems, _ = _load(tmp_path, "cache.mcp.toml", "[b00t]\n")
    assert problems == []
    assert (datum.name, datum.type, datum.id) == ("cache", "mcp", "cache.mcp")


def test_dotted_name_keeps_the_last_dot_for_the_type(tmp_path: Path) -> None:
    datum, problems, _ = _load(tmp_path, "grok.v2.mcp.toml", '[b00t]\nname = "grok.v2"\n')
    assert problems == []
    assert (datum.name, datum.type) == ("grok.v2", "mcp")


def test_passive_cli_datum_with_b00t_extras_loads_and_keeps_them(tmp_path: Path) -> None:
    datum, problems, notes = _load(tmp_path, "gh.cli.toml", """
[b00t]
name = "gh"
type = "cli"
hint = "GitHub CLI"
desires = "2.40"
install = "sudo apt install gh"
version = "gh --version"

[[b00t.usage]]
description = "log in"
command = "gh auth login"

[[b00t.usage]]
description = "list PRs"
command = "gh pr list"

[b00t.orchestration]
priority = 3

[[b00t.mcp.stdio]]
command = "npx"
args = ["-y", "@github/mcp"]

[b00t.env]
GH_HOST = "github.com"
""")
    assert problems == []
    # `version` makes it a presence check; `install` is its fix; the stdio entry a launch spec
    assert datum.runtime == "presence" and not datum.passive
    assert datum.presence == Presence(command=("gh", "--version"), install="sudo apt install gh")
    assert datum.install == "sudo apt install gh"
    assert datum.mcp == (McpLaunch(transport="stdio", command="npx", args=("-y", "@github/mcp")),)
    assert datum.hint == "GitHub CLI"
    assert datum.env == {"GH_HOST": "github.com"}
    assert datum.extra["desires"] == "2.40"
    assert [u["command"] for u in datum.extra["usage"]] == ["gh auth login", "gh pr list"]
    assert datum.extra["orchestration"] == {"priority": 3}
    assert sorted(n.split(":")[0] for n in notes) == ["b00t.desires", "b00t.orchestration", "b00t.usage"]


@pytest.mark.parametrize("kind", ["api", "k8s", "hive", "skill", "ai", "agent", "nix"])
def test_other_real_b00t_types_are_passive(tmp_path: Path, kind: str) -> None:
    datum, problems, _ = _load(tmp_path, f"x.{kind}.toml", "[b00t]\nhint = 'something'\n")
    assert problems == []
    assert datum.passive


def test_top_level_env_is_accepted_with_a_note(tmp_path: Path) -> None:
    datum, problems, notes = _load(tmp_path, "tool.cli.toml", '[b00t]\nname = "tool"\n[env]\nTOOL_HOME = "/opt"\n')
    assert problems == []
    assert datum.env == {"TOOL_HOME": "/opt"}
    assert datum.env_table == "env"
    assert notes == ["env: top-level [env] read as [b00t.env]; prefer [b00t.env]"]


def test_b00t_env_wins_over_top_level_env(tmp_path: Path) -> None:
    datum, problems, _ = _load(tmp_path, "t.cli.toml", '[b00t]\n[b00t.env]\nA = "new"\n[env]\nA = "old"\nB = "b"\n')
    assert problems == []
    assert datum.env == {"A": "new", "B": "b"}


def test_other_top_level_tables_are_kept_with_a_note(tmp_path: Path) -> None:
    datum, problems, notes = _load(tmp_path, "t.cli.toml", '[b00t]\n[meta]\nowner = "me"\n')
    assert problems == []
    assert datum.extra["^meta"] == {"owner": "me"}
    assert notes == ["meta: top-level table kept, not acted on by b00t-graph"]


def test_requirements_tcp_port_and_others(tmp_path: Path) -> None:
    datum, problems, notes = _load(tmp_path, "redis.docker.toml", """
[b00t]
image = "redis:7"
[[b00t.requirements]]
kind = "tcp_port"
host = "localhost"
port = 6379
[[b00t.requirements]]
kind = "tcp_port"
port = 6380
[[b00t.requirements]]
kind = "binary"
name = "docker"
""")
    assert problems == [] and notes == []
    assert datum.requirements == (
        Requirement(kind="tcp_port", host="localhost", port=6379),
        Requirement(kind="tcp_port", host="127.0.0.1", port=6380),
        Requirement(kind="binary", host="127.0.0.1", port=None, extra={"name": "docker"}),
    )


# --- one file: what fails, and how it says so --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.process.toml", "[b00t]\nname = 'a'\ncommand = 'x'\nfoo = = 1\n",
         ": TOML syntax error: Invalid value (at line 4, column 7)"),
        ("a.process.toml", b"[b00t]\ncommand = \"caf\xe9\"\n",
         ": not UTF-8 text (bad byte at offset 21); save it as UTF-8"),
        ("a.process.toml", "", ": empty file; a datum needs a [b00t] table with name and type"),
        ("a.process.toml", "  \n\t\n", ": empty file; a datum needs a [b00t] table with name and type"),
        ("a.process.toml", "[service]\nname = 'a'\n", "b00t: missing; a datum keeps everything under [b00t]"),
        ("a.process.toml", "b00t = 'a'\n", "b00t: not a table (got string 'a'); a datum keeps everything under [b00t]"),
        ("a.toml", "[b00t]\nname = 'a'\ntype = 'mcp'\n",
         ": file name must be <name>.<type>.toml (e.g. qdrant.docker.toml)"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: str | bytes, expected: str) -> None:
    datum, problems, _ = _load(tmp_path, name, content)
    assert datum is None
    assert problems == [expected]


def test_invalid_name_characters() -> None:
    assert _problems({"b00t": {"command": "x"}}, "/d/s v.process.toml") == [
        "b00t.name: 's v' is not a valid name (letters, digits, - _ .)"]


def test_comment_only_file_says_b00t_is_missing(tmp_path: Path) -> None:
    _, problems, _ = _load(tmp_path, "a.process.toml", "# nothing yet\n")
    assert problems == ["b00t: missing; a datum keeps everything under [b00t]"]


def test_unknown_type_suggests_the_close_one(tmp_path: Path) -> None:
    _, problems, _ = _load(tmp_path, "q.dokcer.toml", "[b00t]\nimage = 'x'\n")
    assert len(problems) == 1
    assert problems[0].startswith("b00t.type: unknown type 'dokcer' (did you mean 'docker'?); known: ")
    assert "process" in problems[0] and "stack" in problems[0]


def test_unknown_type_without_close_match_lists_known(tmp_path: Path) -> None:
    _, problems, _ = _load(tmp_path, "q.zzzzzz.toml", "[b00t]\n")
    assert problems[0].startswith("b00t.type: unknown type 'zzzzzz'; known: ")


@pytest.mark.parametrize(
    ("b00t", "expected"),
    [
        ({"health_check": {"timeout_ms": "abc"}},
         "b00t.health_check.timeout_ms: expected an integer, got string 'abc'"),
        ({"health_check": {"timeout_ms": True}}, "b00t.health_check.timeout_ms: expected an integer, got boolean True"),
        ({"health_check": {"timeout_ms": 1.5}}, "b00t.health_check.timeout_ms: expected an integer, got float 1.5"),
        ({"health_check": {"expected_status": "200"}},
         "b00t.health_check.expected_status: expected an integer, got string '200'"),
        ({"health_check": {"http_url": 80}}, "b00t.health_check.http_url: expected a string, got integer 80"),
        ({"health_check": {"docker": "yes"}}, "b00t.health_check.docker: expected true or false, got string 'yes'"),
        ({"health_check": {"timout_ms": 5}}, "b00t.health_check: unknown key(s): timout_ms (timout_ms → timeout_ms?)"),
        ({"health_check": {"htp_url": "x"}}, "b00t.health_check: unknown key(s): htp_url (htp_url → http_url?)"),
        ({"health_check": 5}, "b00t.health_check: expected a table, got integer 5"),
        ({"resources": {"memory": "1G"}}, "b00t.resources: unknown key(s): memory (memory → memory_limit?)"),
        ({"resources": "1G"}, "b00t.resources: expected a table, got string '1G'"),
        ({"resources": {"cpu_limit": 2}}, "b00t.resources.cpu_limit: expected a string, got integer 2"),
        ({"depends_on": "db.docker"}, "b00t.depends_on: expected an array of strings, got string 'db.docker'"),
        ({"depends_on": ["db.docker", 3]}, "b00t.depends_on: expected an array of strings, item 1 is integer 3"),
        ({"depends_on": ["svc.process"]}, "b00t.depends_on[0]: a datum cannot depend on itself"),
        ({"ports": [6333]}, "b00t.ports: expected an array of strings, item 0 is integer 6333"),
        ({"stop_grace_ms": "1s"}, "b00t.stop_grace_ms: expected an integer, got string '1s'"),
        ({"hint": 5}, "b00t.hint: expected a string, got integer 5"),
        ({"name": 5}, "b00t.name: expected a string, got integer 5"),
        ({"env": "A=1"}, "b00t.env: expected a table, got string 'A=1'"),
        ({"env": {"A": [1]}}, "b00t.env.A: expected a string, got array"),
        ({"env": {"A-B": "x"}}, "b00t.env.A-B: not a valid environment variable name"),
        ({"requirements": {"kind": "tcp_port"}}, "b00t.requirements: expected an array of tables, got table"),
        ({"requirements": [{"kind": "tcp_port", "port": "80"}]},
         "b00t.requirements[0].port: expected an integer, got string '80'"),
        ({"requirements": [{"port": 80}]}, "b00t.requirements[0]: expected a table with a string 'kind'"),
        ({"command": "python3 'x"},
         "b00t.command: cannot split into arguments: No closing quotation (in \"python3 'x\")"),
        ({"health_check": {"exec": "curl 'x"}},
         "b00t.health_check.exec: cannot split into arguments: No closing quotation (in \"curl 'x\")"),
        ({"health_check": {"timeout_ms": 0}}, "b00t.health_check.timeout_ms: expected a positive integer"),
        ({"health_check": {"expected_status": 999}},
         "b00t.health_check.expected_status: expected an HTTP status (100-599)"),
        ({"health_check": {"log_regex": "(("}}, "b00t.health_check.log_regex: invalid regular expression: "
         "missing ), unterminated subpattern at position 1"),
    ],
)
def test_one_bad_key(b00t: dict[str, Any], expected: str) -> None:
    doc = {"b00t": {"command": "svc", **b00t}}
    assert _problems(doc) == [expected]


def test_top_level_env_of_wrong_kind() -> None:
    assert _problems({"b00t": {"command": "x"}, "env": ["A=1"]}) == ["env: expected a table, got array"]


@pytest.mark.parametrize(
    ("ident", "b00t", "expected"),
    [
        ("q.docker", {}, 'b00t.image: required for a docker datum (e.g. image = "qdrant/qdrant:latest")'),
        ("q.process", {}, 'b00t.command: required for a process datum (e.g. command = "python3")'),
    ],
)
def test_what_each_type_needs(ident: str, b00t: dict[str, Any], expected: str) -> None:
    assert _problems({"b00t": b00t}, f"/d/{ident}.toml") == [expected]


def test_all_problems_of_one_file_are_collected() -> None:
    found = _problems({"b00t": {"name": "other", "command": 5, "image": 3,
                                "health_check": {"timeout_ms": "abc", "htp_url": "x"},
                                "env": {"OK": "1", "BAD": {}}}})
    assert sorted(found) == sorted([
        "b00t.env.BAD: expected a string, got table",
        "b00t.image: expected a string, got integer 3",
        "b00t.command: expected an array of strings, got integer 5",
        "b00t.health_check.timeout_ms: expected an integer, got string 'abc'",
        "b00t.health_check: unknown key(s): htp_url (htp_url → http_url?)",
    ])


# --- folders ----------------------------------------------------------------------------------------


def test_catalog_reports_every_broken_file_and_keeps_the_good_ones(write_datums: Write) -> None:
    d = write_datums({
        "good.mcp": "[b00t]\n",
        "syntax.mcp": "[b00t\n",
        "empty.mcp": "",
        "typed.process": "[b00t]\ncommand = 'x'\n[b00t.health_check]\ntimeout_ms = 'abc'\n",
        "notes.cli": "[b00t]\ndesires = 'x'\n",
    })
    (d / "readme.md").write_text("not a datum, not read")
    (d / "latin1.mcp.toml").write_bytes(b"[b00t]\nhint = '\xff'\n")
    cat = load_catalog([Source(d, "test")])
    assert sorted(cat.datums) == ["good.mcp", "notes.cli"]
    assert sorted(cat.broken) == ["empty.mcp", "latin1.mcp", "syntax.mcp", "typed.process"]
    assert sorted(Path(p.path).name for p in cat.problems) == [
        "empty.mcp.toml", "latin1.mcp.toml", "syntax.mcp.toml", "typed.process.toml"]
    assert [str(n) for n in cat.notes] == [f"{d / 'notes.cli.toml'}: b00t.desires: not acted on (b00t's version wish)"]
    with pytest.raises(DatumError) as info:
        require(cat, ["good.mcp", "typed.process"])
    assert str(info.value) == (f"{d / 'typed.process.toml'}: b00t.health_check.timeout_ms: "
                               "expected an integer, got string 'abc'")
    require(cat, ["good.mcp", "notes.cli"])  # nothing broken among these: no error


def test_duplicate_identity_across_two_folders(write_datums: Write) -> None:
    one = write_datums({"x.mcp": "[b00t]\n"})
    two = write_datums({"x.mcp": "[b00t]\nhint = 'second'\n", "y.mcp": "[b00t]\n"})
    cat = load_catalog([Source(one, "--datums"), Source(two, "--datums")])
    assert [str(p) for p in cat.problems] == [
        f"{two / 'x.mcp.toml'}: duplicate datum 'x.mcp', also in {one / 'x.mcp.toml'}"]
    assert cat.datums["x.mcp"].path == str(one / "x.mcp.toml")
    assert "x.mcp" in cat.broken  # so a request for it fails instead of silently picking one
    assert "y.mcp" in cat.datums


def test_missing_folder_is_a_problem(tmp_path: Path) -> None:
    cat = load_catalog([Source(tmp_path / "nope", "$_B00T_Path")])
    assert [str(p) for p in cat.problems] == [f"{tmp_path / 'nope'}: datum folder not found (from $_B00T_Path)"]


def test_folders_are_not_searched_recursively(write_datums: Write) -> None:
    d = write_datums({"top.mcp": "[b00t]\n"})
    write_datums({"deep.mcp": "[b00t]\n"}, d / "sub")
    assert list(load_catalog([Source(d, "t")]).datums) == ["top.mcp"]


# --- targets ----------------------------------------------------------------------------------------


def test_resolve_target_full_bare_ambiguous_missing(write_datums: Write) -> None:
    d = write_datums({"grok.stack": "[b00t]\nmembers = ['qdrant.docker']\n", "qdrant.docker": "[b00t]\nimage='q'\n",
                      "x.mcp": "[b00t]\n", "x.process": "[b00t]\ncommand='x'\n"})
    cat = load_catalog([Source(d, "t")])
    assert cat.resolve_target("grok.stack") == "grok.stack"
    assert cat.resolve_target("grok") == "grok.stack"
    with pytest.raises(AmbiguousTargetError, match=r"target 'x' is ambiguous: x\.mcp, x\.process"):
        cat.resolve_target("x")
    with pytest.raises(MissingDependencyError) as info:
        cat.resolve_target("qdrnt")
    assert info.value.suggestions == ["qdrant.docker"]
    assert str(info.value) == "target 'qdrnt', which no datum provides (did you mean 'qdrant.docker'?)"


def test_a_missing_target_says_when_a_folder_does_not_exist_or_holds_nothing(tmp_path: Path) -> None:
    # e.g. a stale $_B00T_Path: "no datum provides" alone sends people looking for a typo
    gone = load_catalog([Source(tmp_path / "nowhere", "$_B00T_Path")])
    with pytest.raises(MissingDependencyError) as info:
        gone.resolve_target("demo")
    assert str(info.value) == (f"target 'demo', which no datum provides; "
                               f"datum folder not found: {tmp_path / 'nowhere'} (from $_B00T_Path)")
    empty = load_catalog([Source(tmp_path, "--datums")])
    with pytest.raises(MissingDependencyError, match=r"; no datum \(\*\.toml\) in .* \(from --datums\)$"):
        empty.resolve_target("demo")


def test_suggestions_compare_names_not_the_shared_type_suffix(write_datums: Write) -> None:
    d = write_datums({"qdrant.process": "[b00t]\ncommand='x'\n", "qdrant.docker": "[b00t]\nimage='q'\n",
                      "j.process": "[b00t]\ncommand='x'\n", "i.process": "[b00t]\ncommand='x'\n"})
    cat = load_catalog([Source(d, "t")])
    assert cat.suggest("qdrnt.process") == ["qdrant.process", "qdrant.docker"]  # same type first
    assert cat.suggest("qdrant.dokcer") == ["qdrant.docker", "qdrant.process"]
    assert cat.suggest("k.process") == []
    assert cat.suggest("zzz") == []


# --- where datums come from -------------------------------------------------------------------------


def test_datum_dirs_precedence(tmp_path: Path) -> None:
    (tmp_path / "_b00t_").mkdir()
    env = {"_B00T_Path": f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}"}
    explicit = datum_dirs([tmp_path / "x", str(tmp_path / "y")], environ=env, cwd=tmp_path)
    assert explicit == [Source(tmp_path / "x", "--datums"), Source(tmp_path / "y", "--datums")]
    assert datum_dirs([], environ=env, cwd=tmp_path) == [Source(tmp_path / "a", "$_B00T_Path"),
                                                         Source(tmp_path / "b", "$_B00T_Path")]
    assert datum_dirs([], environ={"_B00T_Path": ""}, cwd=tmp_path) == [Source(tmp_path / "_b00t_", "./_b00t_")]
    # no _b00t_ in the directory or above it (a parent's is found: tests/test_projects.py)
    assert datum_dirs([], environ={}, cwd=Path(tmp_path.anchor)) == [Source(PACKAGED_DATUMS, "packaged")]


def test_datum_dirs_expand_the_home_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert datum_dirs([], environ={"_B00T_Path": "~/.dotfiles/_b00t_"}) == [
        Source(tmp_path / ".dotfiles" / "_b00t_", "$_B00T_Path")]
    assert datum_dirs(["~/mine"], environ={}) == [Source(tmp_path / "mine", "--datums")]


# --- the parse cache -------------------------------------------------------------------------------


def _age(path: Path, seconds_ago: float) -> None:
    """Date a file back, as an editor's save of a while ago would have: the cache trusts only those."""
    t = os.stat(path).st_mtime - seconds_ago
    os.utime(path, (t, t))


def test_an_unchanged_file_is_not_parsed_again(tmp_path: Path) -> None:
    (tmp_path / "a.process.toml").write_text("[b00t]\ncommand = 'sleep 1'\n")
    _age(tmp_path / "a.process.toml", 60)
    first = load_catalog([Source(tmp_path, "test")]).datums["a.process"]
    again = load_catalog([Source(tmp_path, "test")]).datums["a.process"]
    assert again is first  # the very object parsed the first time


def test_a_changed_file_is_read_again_even_at_the_same_size_and_time(tmp_path: Path) -> None:
    path = tmp_path / "a.process.toml"
    path.write_text("[b00t]\ncommand = 'sleep 1'\n")
    _age(path, 60)
    before = os.stat(path)
    assert load_catalog([Source(tmp_path, "test")]).datums["a.process"].command == ("sleep", "1")
    path.write_text("[b00t]\ncommand = 'sleep 2'\n")  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the same mtime: ctime still moved
    assert load_catalog([Source(tmp_path, "test")]).datums["a.process"].command == ("sleep", "2")
    path.write_text("[b00t]\ncommand = 'sleep 3'\n")  # just written: too fresh to trust any stat key
    assert load_catalog([Source(tmp_path, "test")]).datums["a.process"].command == ("sleep", "3")


def test_a_cached_file_still_reports_its_problems_every_time(tmp_path: Path) -> None:
    (tmp_path / "x.mcp.toml").write_text("[b00t]\nhint = 'x'\n")
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.mcp.toml").write_text("[b00t]\nhint = 'y'\n")
    for p in (tmp_path / "x.mcp.toml", other / "x.mcp.toml"):
        _age(p, 60)
    for _ in range(2):  # the duplicate's problem is added per catalog, never kept in the cache
        cat = load_catalog([Source(tmp_path, "a"), Source(other, "b")])
        assert [p.message for p in cat.problems] == [
            f"duplicate datum 'x.mcp', also in {tmp_path / 'x.mcp.toml'}"]
