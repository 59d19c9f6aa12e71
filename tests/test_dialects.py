"""b00t's many ways of writing a datum land in the one model (``tests/datums/shapes`` has every shape)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from b00t_graph.cli import main
from b00t_graph.dialects import (
    KEYS,
    argv_of,
    describe,
    duration_ms,
    is_loopback,
    needs_shell,
    normalise,
    quiet_reason,
    split_docker_run,
)
from b00t_graph.errors import DatumError, MissingDependencyError
from b00t_graph.graph import compile_graph
from b00t_graph.loader import Catalog, Source, load_catalog, load_file, require, structure_datum
from b00t_graph.model import Build, HealthCheck, McpLaunch, Need, Presence, RestartPolicy

SHAPES = Path(__file__).parent / "datums" / "shapes"


@pytest.fixture
def cat() -> Catalog:
    # Loaded for each test, not once per module: mutation testing runs, for a mutant, the tests that
    # reached its code, and a shared fixture would count the loading for the first test only.
    return load_catalog([Source(SHAPES, "test")])


def _problems(doc: dict[str, Any], path: str) -> list[str]:
    datum, problems, _ = structure_datum(doc, path)
    assert datum is None
    return [f"{p.key}: {p.message}" for p in problems]


# --- the folder ---------------------------------------------------------------------------------------


def test_every_shape_loads(cat: Catalog) -> None:
    assert cat.problems == []
    assert len(cat.datums) == len(list(SHAPES.glob("*.toml")))


# maybe.stack's missing optional component is skipped once optional members are planned (graph)
PENDING = {"maybe.stack"}


@pytest.mark.parametrize("stack", sorted(p.name.removesuffix(".toml") for p in SHAPES.glob("*.stack.toml")))
def test_every_stack_plans(cat: Catalog, stack: str) -> None:
    if stack in PENDING:
        try:
            compile_graph(cat, [stack])
        except MissingDependencyError:
            pytest.xfail("optional members are skipped by the graph")
        return
    graph = compile_graph(cat, [stack])
    assert stack in graph.nodes


# --- stacks -------------------------------------------------------------------------------------------


def test_stacks(cat: Catalog) -> None:
    assert cat.datums["empty.stack"].members == ()
    umbrella = cat.datums["umbrella.stack"]
    assert umbrella.members == () and umbrella.depends_on == ("tools.stack", "empty.stack")
    tools = cat.datums["tools.stack"]
    assert tools.members == ("jq.cli", "git.cli")  # `required` defaults to true
    assert tools.optional == ("pipey.cli",)
    assert set(tools.edges) == {"jq.cli", "git.cli", "pipey.cli"}
    assert cat.datums["maybe.stack"].optional == ("ghost.cli",)
    assert cat.datums["toplevel.stack"].members == ("tool-stdio.mcp", "renderer.docker")
    services = cat.datums["services.stack"]
    assert services.members == ("kv.docker", "searchdb.docker", "ragger.api", "helper.api")
    assert services.env == {"SHAPES_MODE": "${SHAPES_MODE:-dev}"}


# --- capabilities -------------------------------------------------------------------------------------


def test_capabilities(cat: Catalog) -> None:
    local = cat.datums["embed-local.api"]
    assert (local.provides, local.protocol) == ("embeddings", "embed-v1")
    assert cat.datums["vectors.api"].provides == "vector-db"
    ragger = cat.datums["ragger.api"]
    assert (ragger.provides, ragger.protocol) == ("rag", "rag-v1")
    assert ragger.needs == (
        Need(slot="embeddings", capability="embeddings", protocol="embed-v1",
             prefer=("embed-local", "embed-cloud"), fallback="embed-cloud"),
        Need(slot="vector_db", capability="vector-db"),
    )
    assert cat.datums["helper.api"].depends_on == ("jq.cli", "git.cli")


# --- readiness ----------------------------------------------------------------------------------------


def test_presence_checks(cat: Catalog) -> None:
    jq = cat.datums["jq.cli"]
    assert jq.runtime == "presence"
    assert jq.presence == Presence(command=("jq", "--version"), regex=r"jq-(\d+\.\d+)",
                                   install="sudo apt-get install -y jq", source="b00t.version")
    git = cat.datums["git.cli"]
    assert git.presence == Presence(command=("git", "--version"), regex=r"git version \d+",
                                    install="sudo apt-get install -y git", source="validate.command")
    assert git.install == "sudo apt-get install -y git"  # [b00t.install] command
    pipey = cat.datums["pipey.cli"]
    assert pipey.presence is not None
    assert pipey.presence.command == ("sh", "-c", "pipey --version 2>&1 | head -n 1")


def test_docker_healthcheck_and_lifecycle(cat: Catalog) -> None:
    kv = cat.datums["kv.docker"]
    assert kv.health_check == HealthCheck(exec=["sh", "-c", "kv-cli ping | grep -q PONG"], interval_ms=5000,
                                          probe_timeout_ms=2000)
    assert kv.restart == "unless-stopped"
    renderer = cat.datums["renderer.docker"]
    assert renderer.health_check is not None and renderer.health_check.interval_ms == 90_000


# --- containers ---------------------------------------------------------------------------------------


def test_containers(cat: Catalog) -> None:
    kv = cat.datums["kv.docker"]
    assert kv.container_name == "kv-main" and "--name" not in kv.docker_args
    assert kv.docker_args == ("-p", "16379:6379")

    search = cat.datums["searchdb.docker"]
    assert search.runtime == "docker"
    assert search.image == "searchdb-local:dev"
    assert search.container_name == "searchdb-1"
    assert search.network == "shapes-net"
    assert search.args == ("serve", "--port", "7700")
    assert search.docker_args == ("-e", "SEARCH_TOKEN=${SEARCH_TOKEN:-dev}", "-p", "17700:7700")
    # the file is written from the datum's folder; the engine wants it inside the context
    assert search.build == Build(context="images/searchdb", file="Containerfile", args={"FLAVOUR": "small"})

    renderer = cat.datums["renderer.docker"]
    assert renderer.image == "ghcr.io/example/renderer"
    assert renderer.build == Build(context="https://example.invalid/renderer.git", file="Dockerfile",
                                   args={"RENDER_VERSION": "2"})

    infer = cat.datums["infer.container"]
    assert (infer.type, infer.kind, infer.runtime) == ("container", "docker", "docker")
    assert infer.image == "example/infer:cpu"
    assert infer.docker_args == ("-p", "127.0.0.1:18001:18001", "--device", "nvidia.com/gpu=all")
    assert infer.volumes == ("infer_models:/models",)


# --- names --------------------------------------------------------------------------------------------


def test_names(cat: Catalog) -> None:
    assert "plugin.mcp" in cat.datums
    assert cat.resolve_target("plugin-renamed.mcp") == "plugin.mcp"
    assert cat.resolve_target("plugin-renamed") == "plugin.mcp"
    notes = [str(n) for n in cat.notes if n.key in ("b00t.name", "b00t.type")]
    assert f"{SHAPES / 'plugin.mcp.toml'}: b00t.name: 'plugin-renamed' differs from the file name; the file " \
           "name decides: this datum is plugin.mcp (asking for 'plugin-renamed' finds it)" in notes
    assert any("infer.container" in n and "runs as docker" in n for n in notes)


def test_a_broken_file_asked_for_by_its_declared_name_is_named(tmp_path: Path) -> None:
    (tmp_path / "claude.mcp.toml").write_text("[b00t]\nname = 'claude-plugin'\ndepends_on = 'x'\n")
    cat = load_catalog([Source(tmp_path, "test")])
    ident = cat.resolve_target("claude-plugin")
    with pytest.raises(DatumError) as info:
        require(cat, [ident])
    assert str(info.value) == (f"{tmp_path / 'claude.mcp.toml'}: b00t.depends_on: expected an array of strings, "
                               "got string 'x'")


# --- mcp ----------------------------------------------------------------------------------------------


def test_mcp(cat: Catalog) -> None:
    stdio = cat.datums["tool-stdio.mcp"]
    assert stdio.runtime is None  # ready when its dependencies are; the launch spec is for the client
    assert stdio.mcp == (
        McpLaunch(transport="stdio", priority=0, command="example-tool", args=("--stdio",),
                  env={"TOOL_KV": "${KV_URL}", "TOOL_LEVEL": "2"}),
        McpLaunch(transport="stdio", priority=10, command="npx", args=("-y", "example-tool@1")),
    )
    http = cat.datums["tool-http.mcp"]
    assert http.runtime == "probe"
    assert http.health_check == HealthCheck(http_url="http://127.0.0.1:18555/mcp", expected_status=0)
    assert http.mcp[0] == McpLaunch(transport="httpstream", url="http://127.0.0.1:18555/mcp",
                                    env={"TOOL_HTTP_MODE": "fast"})
    remote = cat.datums["tool-remote.mcp"]
    assert remote.runtime is None and remote.health_check is None
    assert remote.mcp == (McpLaunch(transport="httpstream", url="https://tools.example.invalid/mcp"),)

    life = cat.datums["tool-life.mcp"]
    assert life.runtime == "process"
    assert (life.command, life.args) == (("tool-life-server",), ("--port", "18556"))
    assert life.run_env == {"TOOL_LIFE_LOG": "info"} and life.env == {}
    assert life.health_check == HealthCheck(tcp="127.0.0.1:18556")

    boxed = cat.datums["tool-boxed.mcp"]
    assert boxed.runtime == "docker"
    assert boxed.image == "example/boxed:2"
    assert boxed.docker_args == ("-d", "--rm", "-p", "18557:8080", "-e", "MODE=mcp", "-e", "BOXED_TOKEN=t")
    assert boxed.args == ("serve", "--http")
    assert boxed.health_check is None  # process_alive: running is ready


def test_expected_status_0_only_from_the_httpstream_dialect() -> None:
    assert _problems({"b00t": {"command": "x", "health_check": {"http_url": "http://x", "expected_status": 0}}},
                     "/d/a.process.toml") == ["b00t.health_check.expected_status: expected an HTTP status (100-599)"]


# --- env schema ---------------------------------------------------------------------------------------


def test_env_schema(cat: Catalog) -> None:
    gate = cat.datums["llmgate.ai"]
    assert gate.env_required == ("LLMGATE_KEY",)
    assert gate.env_defaults == {"LLMGATE_BASE": "http://localhost:14000"}
    assert gate.env == {}


# --- precise errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ident", "b00t", "top", "expected"),
    [
        ("s.stack", {"stack": {"components": {"a": {"datum": "a.cli", "required": "yes"}}}}, {},
         "b00t.stack.components.a.required: expected true or false, got string 'yes'"),
        ("s.stack", {"stack": {"components": {"a": {"required": True}}}}, {},
         'b00t.stack.components.a.datum: required: the component\'s datum (e.g. datum = "uv.cli")'),
        ("s.stack", {}, {"stack": {"members": "a.cli"}}, "stack.members: expected an array of strings, got string "
         "'a.cli'"),
        ("r.api", {"requires": {"emb": {"prefer": ["x"]}}}, {},
         'b00t.requires.emb.capability: required: the capability a provider must declare in [b00t.provides] '
         '(e.g. capability = "embeddings")'),
        ("r.api", {"requires": {"emb": {"capability": "e", "prefer": "x"}}}, {},
         "b00t.requires.emb.prefer: expected an array of strings, got string 'x'"),
        ("k.docker", {"image": "i", "docker": {"healthcheck_cmd": "true", "healthcheck_interval": "soon"}}, {},
         "b00t.docker.healthcheck_interval: expected a duration like \"10s\", got string 'soon'"),
        ("m.mcp", {"mcp": {"stdio": [{"args": ["x"]}]}}, {},
         "b00t.mcp.stdio[0].command: required: the program an MCP client starts"),
        ("m.mcp", {"mcp": {"httpstream": {"url": 5}}}, {}, "b00t.mcp.httpstream.url: expected a string, got integer 5"),
        ("m.mcp", {"mcp": {"lifecycle": {"servers": [{"command": "x", "health_check": {"type": "tcp_port"}}]}}}, {},
         'b00t.mcp.lifecycle.servers[0].health_check.port: required for type = "tcp_port"'),
        ("a.ai", {}, {"env": {"required": ["A", 3]}}, "env.required[1]: expected a string, got integer 3"),
        ("a.ai", {"env": {"defaults": {"A": ["x"]}}}, {}, "b00t.env.defaults.A: expected a string, got array"),
        ("c.cli", {"version": "x --version", "version_regex": "(("}, {},
         "b00t.version_regex: invalid regular expression: missing ), unterminated subpattern at position 1"),
        ("d.docker", {"docker": {"run": [{"image": "i", "ports": [8080]}]}}, {},
         "b00t.docker.run[0].ports[0]: expected a string, got integer 8080"),
    ],
)
def test_errors_name_file_key_and_expectation(ident: str, b00t: dict[str, Any], top: dict[str, Any],
                                              expected: str) -> None:
    assert expected in _problems({"b00t": b00t, **top}, f"/d/{ident}.toml")


def test_toml_duplicate_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "a.docker.toml"
    path.write_text("[b00t]\nimage = 'x'\n\n[b00t.env]\nA = '1'\nA = '2'\n")
    _, problems, _ = load_file(path)
    assert [f"{p.key}: {p.message}" for p in problems] == [
        "b00t.env.A: TOML error: duplicate key, set again at line 6 (first at line 5); TOML allows each key once"]
    path.write_text("[b00t]\nimage = 'x'\n[b00t]\nhint = 'y'\n")
    _, problems, _ = load_file(path)
    assert [f"{p.key}: {p.message}" for p in problems] == [
        "b00t: TOML error: table [b00t] declared twice (again at line 3); merge the two tables into one"]


# --- validate and ls ----------------------------------------------------------------------------------


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.toml").write_text(text)
    return folder


def test_validate_counts_files_and_agrees_with_ls(tmp_path: Path) -> None:
    d = _write(tmp_path / "d", {
        "base.mcp": "[b00t]\ndepends_on = 'oops'\n",        # its own problem
        "mid.mcp": "[b00t]\ndepends_on = ['base.mcp']\n",    # fine itself, blocked by base
        "top.mcp": "[b00t]\ndepends_on = ['mid.mcp']\n",
        "misnamed": "[b00t]\nname = 'x'\ntype = 'mcp'\n",    # no <name>.<type>: counted, not lost
        "fine.mcp": "[b00t]\n",
    })
    runner = CliRunner()
    res = runner.invoke(main, ["validate", "-d", str(d)])
    assert res.exit_code == 2
    assert res.stdout.splitlines()[-1] == (f"1 datum(s) ok, 2 with problems, "
                                           f"2 blocked by a dependency's problems, in {d}")
    ls = runner.invoke(main, ["ls", "--json", "-d", str(d)])
    data = json.loads(ls.stdout)
    assert data["broken"] == ["base.mcp", "misnamed.toml"]
    assert data["blocked"] == ["mid.mcp", "top.mcp"]


def test_validate_groups_notes_by_key_unless_verbose(tmp_path: Path) -> None:
    d = _write(tmp_path / "d", {f"s{i}.mcp": "[b00t]\n[[b00t.usage]]\ncommand = 'x'\n" for i in range(3)})
    runner = CliRunner()
    res = runner.invoke(main, ["validate", str(d)])
    assert res.exit_code == 0
    assert res.stdout.splitlines() == ["note: b00t.usage: documentation, not acted on (in 3 files)",
                                       f"3 datum(s) ok, 0 with problems, in {d}"]
    verbose = runner.invoke(main, ["validate", "--verbose", "-d", str(d)])
    assert len([line for line in verbose.stdout.splitlines() if line.startswith("note:")]) == 3


# --- helpers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "argv"),
    [
        ("node --version", ("node", "--version")),
        ("python -c 'import x; print(x.v)'", ("python", "-c", "import x; print(x.v)")),  # ; inside quotes
        ("a | b", ("sh", "-c", "a | b")),
        ("a && b", ("sh", "-c", "a && b")),
        ("a 2>/dev/null", ("sh", "-c", "a 2>/dev/null")),
        ("echo $(date)", ("sh", "-c", "echo $(date)")),
        ("echo `date`", ("sh", "-c", "echo `date`")),
        ("ls *.toml", ("sh", "-c", "ls *.toml")),
        ('echo "$HOME"', ("sh", "-c", 'echo "$HOME"')),
        ("echo '$HOME'", ("echo", "$HOME")),
    ],
)
def test_argv_of(text: str, argv: tuple[str, ...]) -> None:
    assert argv_of(text) == argv
    assert needs_shell(text) == (argv[:2] == ("sh", "-c"))


def test_small_helpers() -> None:
    assert [duration_ms(v) for v in ("10s", "1m30s", "500ms", 3, "1h", "soon", True)] == [
        10_000, 90_000, 500, 3000, 3_600_000, None, None]
    assert [is_loopback(u) for u in ("http://localhost:1/x", "http://127.0.0.2/", "http://[::1]:3/",
                                     "https://example.com/")] == [True, True, True, False]
    assert split_docker_run(["-d", "--name", "x", "-p=1:1", "-it", "img:1", "serve", "-v"]) == (
        "img:1", ["-d", "--name", "x", "-p=1:1", "-it"], ["serve", "-v"])
    assert split_docker_run(["--rm"]) == (None, ["--rm"], [])


def test_the_key_table_says_acted_and_not_acted() -> None:
    assert {k.acted for k in KEYS} == {True, False}
    assert any("b00t.mcp.stdio" in k.key for k in KEYS if k.acted)
    assert any("usage" in k.key for k in KEYS if not k.acted)


def test_packaged_model_servers_provide_capabilities() -> None:
    from b00t_graph.loader import PACKAGED_DATUMS

    cat = load_catalog([Source(PACKAGED_DATUMS, "packaged")])
    assert cat.problems == []
    vllm, litellm = cat.datums["vllm.docker"], cat.datums["litellm.docker"]
    assert vllm.health_check is not None and vllm.health_check.http_url == "http://localhost:8000/health"
    assert litellm.health_check is not None
    assert litellm.health_check.http_url == "http://localhost:4000/health/liveliness"
    assert vllm.env["VLLM_API_BASE"] == "http://localhost:8000/v1"
    assert litellm.env["LITELLM_API_BASE"] == "http://localhost:4000"
    assert {i: cat.datums[i].provides for i in ("vllm.docker", "litellm.docker", "ollama.docker", "qdrant.docker")} \
        == {"vllm.docker": "llm", "litellm.docker": "llm", "ollama.docker": "llm", "qdrant.docker": "vector-db"}


def test_flat_mcp_table(cat: Catalog) -> None:
    assert cat.datums["tool-flat.mcp"].mcp == (
        McpLaunch(transport="stdio", command="flat-tool", args=("mcp", "serve"), env={"FLAT_HOOKS": "1"}),)


def test_an_untyped_dependency_gets_the_typed_datum_suggested(tmp_path: Path) -> None:
    d = _write(tmp_path / "d", {"node.cli": "[b00t]\n", "srv.mcp": "[b00t]\ndepends_on = ['node']\n"})
    cat = load_catalog([Source(d, "test")])
    assert cat.problems == []  # written without a type: the graph says what it probably means
    with pytest.raises(MissingDependencyError) as info:
        compile_graph(cat, ["srv.mcp"])
    assert "(did you mean 'node.cli'?)" in str(info.value)


def test_depends_on_written_as_a_table(cat: Catalog) -> None:
    assert cat.datums["scraper.cli"].depends_on == ("jq.cli",)


# --- every dialect branch, exactly (written against the mutants mutation testing left alive) ------------


def _norm(ident: str, b00t: dict[str, Any], **top: Any) -> tuple[dict[str, Any], dict[str, Any], list[str], list[str]]:
    """normalise one document: (the rewritten [b00t] table, the dialect fields, problems, notes)."""
    out = normalise({"b00t": b00t, **top}, f"/d/{ident}.toml")
    return (out.doc["b00t"], out.fields, [f"{p.key}: {p.message}" for p in out.problems],
            [f"{p.key}: {p.message}" for p in out.notes])


def test_values_are_described_by_their_toml_names() -> None:
    values: tuple[Any, ...] = (1.5, True, 3, "x", [], {}, None, datetime.date(2026, 1, 2))
    assert [describe(v) for v in values] == [
        "float 1.5", "boolean True", "integer 3", "string 'x'", "array", "table", "NoneType None",
        "date datetime.date(2026, 1, 2)"]  # a TOML date


def test_the_file_name_decides_identity_over_a_wrong_name_or_type() -> None:
    b00t, fields, problems, notes = _norm("a.container", {"name": 3, "type": "cli"})
    assert (b00t, fields) == ({"name": "a", "type": "container"}, {"kind": "docker"})
    assert problems == ["b00t.name: expected a string, got integer 3"]
    assert notes == ["b00t.type: 'cli' differs from the file name's 'container'; the file name decides: "
                     "this datum is a.container and runs as docker"]
    b00t, fields, problems, notes = _norm("a.docker", {"type": "cli"})
    assert (b00t, fields, problems) == ({"type": "docker", "name": "a"}, {}, [])
    assert notes == ["b00t.type: 'cli' differs from the file name's 'docker'; the file name decides: this datum is "
                     "a.docker"]
    out = normalise({"b00t": {"name": "b"}}, "/d/nodots.toml")  # no <name>.<type>: the loader says so
    assert (out.doc, out.notes, out.declared_name) == ({"b00t": {"name": "b"}}, [], None)
    assert normalise({"b00t": {"name": "c"}}, "/d/a.mcp.toml").declared_name == "c"


def test_a_container_name_in_docker_args_is_taken_out_unless_it_is_the_datums() -> None:
    b00t, fields, _, _ = _norm("a.docker", {"docker_args": ["--name", "x", "-d", "--name=x2", "--name"]})
    assert (b00t["docker_args"], fields) == (["-d", "--name"], {"container_name": "x2"})
    b00t, fields, _, _ = _norm("a.docker", {"docker_args": ["--name", "a", "--name=a"]})
    assert (b00t["docker_args"], fields) == (["--name", "a", "--name", "a"], {})
    b00t, fields, _, _ = _norm("a.docker", {"docker_args": ["--name", 3]})
    assert (b00t["docker_args"], fields) == (["--name", 3], {})  # not all strings: the loader reports it


def test_stack_members_from_every_shape_with_their_keys() -> None:
    b00t, fields, problems, notes = _norm(
        "s.stack",
        {"members": ["a.cli"],
         "stack": {"components": {"b": "b.cli", "c": 5, "d": {"datum": 7},
                                  "e": {"datum": "e.cli", "required": False, "min_version": "1", "why": 2},
                                  "f": {"datum": "a.cli", "required": False},
                                  "h": {"datum": "h.cli"}},  # required unless it says otherwise
                   "description": "x"}},
        stack={"members": ["g.cli", "b.cli"], "category": "c"})
    assert b00t == {"members": ["a.cli", "b.cli", "h.cli", "g.cli"], "name": "s", "type": "stack"}
    assert fields == {"optional": ("e.cli",),  # a.cli is a required member too
                      "edge_keys": {"b.cli": "b00t.stack.components.b", "e.cli": "b00t.stack.components.e.datum",
                                    "a.cli": "b00t.stack.components.f.datum", "h.cli": "b00t.stack.components.h.datum",
                                    "g.cli": "stack.members[0]"}}
    assert problems == ["b00t.stack.components.c: expected a table, got integer 5",
                        "b00t.stack.components.d.datum: expected a string, got integer 7"]
    assert notes == ["b00t.stack.components.min_version: read, not acted on",
                     "b00t.stack.components.why: read, not acted on",
                     "b00t.stack.description: descriptive, not acted on", "stack.category: read, not acted on"]


@pytest.mark.parametrize(("b00t", "top", "members", "problems"), [
    ({"members": "x"}, {}, "x", []),  # a wrong shape is the converter's to report, untouched
    ({"members": []}, {}, [], []),
    ({"stack": {"components": 3}}, {}, None, ["b00t.stack.components: expected a table, got integer 3"]),
    ({"stack": 3}, {"stack": 4}, None, ["b00t.stack: expected a table, got integer 3",
                                        "stack: expected a table, got integer 4"]),
    ({"stack": {"components": {"o": {"datum": "o.cli", "required": False}}}}, {}, None, []),
])
def test_stack_shapes_that_give_no_members(b00t: dict[str, Any], top: dict[str, Any], members: Any,
                                           problems: list[str]) -> None:
    got, _, got_problems, _ = _norm("s.stack", b00t, **top)
    assert got.get("members") == members
    assert got_problems == problems


def test_capabilities_provided_and_required_in_every_shape() -> None:
    assert _norm("p.api", {"provides": "emb", "protocol": "v1"})[1] == {"provides": "emb", "protocol": "v1"}
    _, fields, problems, notes = _norm("p.api", {"provides": {"capability": "emb", "endpoints": ["x"]},
                                                 "protocol": 3})
    assert (fields, problems, notes) == ({"provides": "emb", "protocol": None},
                                         ["b00t.protocol: expected a string, got integer 3"],
                                         ["b00t.provides.endpoints: descriptive, not acted on"])
    assert _norm("p.api", {"provides": 5})[1:3] == ({}, ["b00t.provides: expected a table, got integer 5"])
    b00t, _, problems, notes = _norm("p.api", {"depends_on": {"requires": ["a.cli", 3], "why": "x"}})
    assert (b00t["depends_on"], problems, notes) == (
        ["a.cli"], ["b00t.depends_on.requires[1]: expected a string, got integer 3"],
        ["b00t.depends_on.why: not acted on"])
    b00t, fields, _, _ = _norm("p.api", {"depends_on": ["a.cli"], "requires": ["a.cli", "b.cli"]})
    assert (b00t["depends_on"], fields) == (["a.cli", "b.cli"], {"edge_keys": {"b.cli": "b00t.requires[1]"}})
    b00t, fields, _, _ = _norm("p.api", {"depends_on": "zz", "requires": ["b.cli"]})
    assert (b00t["depends_on"], fields) == ("zz", {})  # the converter reports depends_on


def test_capability_needs_with_their_problems() -> None:
    _, fields, problems, notes = _norm("p.api", {"requires": {
        "s1": 4, "s2": {"capability": 5},
        "s3": {"capability": "c", "protocol": "p", "prefer": ["a"], "fallback": "f", "extra": 1},
        "s4": {"capability": "d", "fallback": ""}}})
    assert fields == {"needs": (Need(slot="s3", capability="c", protocol="p", prefer=("a",), fallback="f"),
                                Need(slot="s4", capability="d"))}
    assert problems == ["b00t.requires.s1: expected a table, got integer 4",
                        "b00t.requires.s2.capability: expected a string, got integer 5"]
    assert notes == ["b00t.requires.s3.extra: read, not acted on"]
    assert _norm("p.api", {"requires": 7})[1:3] == ({"needs": ()}, ["b00t.requires: expected a table, got integer 7"])


def test_env_schema_from_both_env_tables() -> None:
    b00t, fields, problems, notes = _norm(
        "a.ai", {"env": {"required": ["A", "A", "B"], "optional": ["C"], "defaults": {"D": 1, "E": True, "F": False},
                         "X": "1"}},
        env={"required": ["B", "Z"], "defaults": {"D": "top"}, "optional": ["Q"]})
    assert b00t["env"] == {"X": "1"}
    assert fields == {"env_required": ("B", "Z", "A"), "env_defaults": {"D": "1", "E": "true", "F": "false"}}
    assert (problems, notes) == ([], ["env.optional: names that may be set: read, not acted on",
                                      "b00t.env.optional: names that may be set: read, not acted on"])
    out = normalise({"b00t": {"env": {"required": "A", "optional": "B", "defaults": "C"}}, "env": 5}, "/d/a.ai.toml")
    assert out.doc == {"b00t": {"env": {"required": "A", "optional": "B", "defaults": "C"}, "name": "a",
                                "type": "ai"}, "env": 5}  # not a schema: the converter reports the shapes
    assert (out.fields, out.problems, out.notes) == ({}, [], [])


def test_docker_run_tables() -> None:
    b00t, fields, problems, notes = _norm("a.docker", {
        "image": "i:1", "docker_args": "--init",
        "docker": {"run": [{"image": "other", "name": "a", "network": "n", "args": "serve --x 'a b'",
                            "command": "run.sh -v", "env": ["A=1"], "ports": ["1:1"], "volumes": ["v:/v"],
                            "platform": "x"}, {"image": "z"}]}})
    assert b00t == {"image": "i:1", "docker_args": ["--init", "-e", "A=1", "-p", "1:1", "-v", "v:/v"], "name": "a",
                    "type": "docker", "network": "n", "args": ["serve", "--x", "a b"], "command": ["run.sh", "-v"]}
    assert (fields, problems) == ({}, [])
    assert notes == ["b00t.docker.run[0].image: 'other' differs from b00t.image = 'i:1'; b00t.image is used",
                     "b00t.docker.run.platform: not acted on", "b00t.docker.run: 2 entries: the first is used"]
    b00t, fields, _, notes = _norm("a.docker", {
        "docker": {"run": {"image": "i", "name": "c1", "command": ["a", "b"], "env": {"A": 1, "B": True},
                           "args": ["x"]}}, "docker_args": ["-d"], "args": ["x", "y"]})
    assert b00t == {"docker_args": ["-d", "-e", "A=1", "-e", "B=true"], "args": ["x", "y"], "name": "a",
                    "type": "docker", "image": "i", "command": ["a", "b"]}
    assert (fields, notes) == ({"container_name": "c1"}, [])


def test_docker_build_tables() -> None:
    b00t, fields, problems, notes = _norm("a.docker", {"docker": {
        "run": [{"image": "i", "env": 5}],
        "build": [{"context": "ctx", "file": "ctx/Dockerfile", "args": {"V": 2}, "target": "t"}, {"context": "z"}]}})
    assert (b00t["image"], fields) == ("i", {"build": Build(context="ctx", file="Dockerfile", args={"V": "2"})})
    assert problems == ["b00t.docker.run[0].env: expected a table, got integer 5"]
    assert notes == ["b00t.docker.build.target: not acted on", "b00t.docker.build: 2 entries: the first is used"]
    b00t, fields, _, notes = _norm("a.docker", {"docker": {"build": {"dockerfile": "D"}}})
    assert (b00t["image"], fields["build"], notes) == ("a:latest", Build(context=".", file="D"), [])
    b00t, fields, problems, _ = _norm("a.docker", {"docker": {"build": {"args": {}}}})
    assert ("image" in b00t, fields, problems) == (
        False, {"build": None}, ["b00t.docker.build.context: required: a folder or a git URL to build from"])


@pytest.mark.parametrize(("context", "file", "kept"), [
    ("ctx/", "ctx/sub/F", "sub/F"),  # written from the datum folder
    ("https://x/y.git", "https://x/y.git/F", "https://x/y.git/F"),  # a URL context is not a folder
    (".", "./F", "./F"),
    ("", "/F", "/F"),
    ("ctx", "ctxF", "ctxF"),
    ("boX/", "boX/F", "F"),
    ("ctx", None, None),
])
def test_a_build_file_is_made_relative_to_a_folder_context(context: str, file: str | None, kept: str | None) -> None:
    assert _norm("a.docker", {"docker": {"build": {"context": context, "file": file}}})[1]["build"] == \
        Build(context=context, file=kept)


def test_an_image_from_repository_registry_and_tag() -> None:
    b00t, _, _, notes = _norm("a.docker", {"docker": {"repository": "org/app", "registry": "ghcr.io/", "tag": "2",
                                                      "platforms": ["x"]}})
    assert (b00t["image"], notes) == ("ghcr.io/org/app:2", ["b00t.docker.platforms: not acted on"])
    assert _norm("a.docker", {"docker": {"repository": "ghcr.io/org/app", "registry": "ghcr.io"}})[0]["image"] == \
        "ghcr.io/org/app"
    b00t, _, _, notes = _norm("a.docker", {"image": "set", "docker": {"repository": "org/app"}})
    assert (b00t["image"], notes) == (
        "set", ["b00t.docker.repository: 'org/app' differs from b00t.image = 'set'; b00t.image is used"])
    assert _norm("a.docker", {"docker": 3, "container": 4})[2] == [
        "b00t.docker: expected a table, got integer 3", "b00t.container: expected a table, got integer 4"]


def test_a_docker_healthcheck_becomes_an_exec_probe() -> None:
    b00t, _, problems, _ = _norm("a.docker", {"image": "i", "docker": {
        "healthcheck_cmd": "pg_isready -q", "healthcheck_interval": "1m30s", "healthcheck_timeout": 0,
        "healthcheck_start_period": "500ms", "healthcheck_retries": 3}})
    assert b00t["health_check"] == {"exec": ["pg_isready", "-q"], "interval_ms": 90000, "start_period_ms": 500,
                                    "retries": 3}
    assert problems == ['b00t.docker.healthcheck_timeout: expected a duration like "10s", got integer 0']
    b00t, _, problems, notes = _norm("a.docker", {"image": "i", "docker": {"healthcheck_cmd": "x",
                                                                           "healthcheck_retries": "3"},
                                                  "health_check": {"exec": ["y"], "interval_ms": 7}})
    assert b00t["health_check"] == {"exec": ["y"], "interval_ms": 7}
    assert problems == ["b00t.docker.healthcheck_retries: expected an integer, got string '3'"]
    assert notes == ["b00t.docker.healthcheck_cmd: [b00t.health_check] exec is used"]
    b00t, _, _, notes = _norm("a.docker", {"image": "i", "docker": {"healthcheck_cmd": "x", "healthcheck_timeout": 2},
                                           "health_check": {"http_url": "http://h/"}})
    assert (b00t["health_check"], notes) == ({"exec": ["x"], "probe_timeout_ms": 2000, "http_url": "http://h/"}, [])
    for cmd in ("", "x"):  # an empty command is none; a health_check of the wrong shape is the converter's
        assert _norm("a.docker", {"image": "i", "docker": {"healthcheck_cmd": cmd},
                                  "health_check": "str"})[0]["health_check"] == "str"


def test_the_container_table() -> None:
    b00t, fields, problems, notes = _norm("a.container", {"docker_args": ["-d"], "container": {
        "repo": "org/m", "registry": "reg.io", "tag": "t", "name": "a", "port": 80, "bind": "0.0.0.0",
        "gpu_device": "gpu0", "build_file": "Dockerfile", "runtime": "podman",
        "volumes": [{"host": "h", "container": "/c", "readonly": True}, {"host": "h2", "container": "/c2",
                                                                         "readonly": "yes"},
                    {"host": "only"}, 5, {"host": 1, "container": "/x"}]}})
    assert b00t == {"docker_args": ["-d", "-p", "0.0.0.0:80:80", "--device", "gpu0"], "name": "a",
                    "type": "container", "image": "reg.io/org/m:t", "volumes": ["h:/c:ro", "h2:/c2"]}
    assert fields == {"build": Build(context=".", file="Dockerfile"), "kind": "docker"}
    assert problems == ["b00t.container.volumes[3]: expected a table, got integer 5",
                        "b00t.container.volumes[2]: expected a table with host and container",
                        "b00t.container.volumes[4].host: expected a string, got integer 1"]
    assert notes == ["b00t.container.runtime: not acted on (containers run through the Docker Engine API)"]
    b00t, fields, problems, _ = _norm("a.container", {"volumes": ["x:/x"], "docker_args": "str", "container": {
        "repo": "org/m", "port": "80", "bind": 3, "gpu_device": "", "build_file": "a/b/F", "name": "other"}})
    assert b00t == {"volumes": ["x:/x"], "docker_args": "str", "name": "a", "type": "container", "image": "org/m"}
    assert fields == {"container_name": "other", "build": Build(context="a/b", file="F"), "kind": "docker"}
    assert problems == ["b00t.container.port: expected an integer, got string '80'",
                        "b00t.container.bind: expected a string, got integer 3"]
    b00t, _, problems, _ = _norm("a.container", {"container": {"image": 5, "repo": 6, "port": 81}})
    assert (b00t, problems) == ({"name": "a", "type": "container", "docker_args": ["-p", "81:81"]},
                                ["b00t.container.image: expected a string, got integer 5"])
    b00t, _, _, notes = _norm("a.container", {"container": {"image": "i", "volumes": {"host": "h", "container": "c"}},
                                              "volumes": ["h:c", "z:z"]})
    assert (b00t["volumes"], notes) == (["h:c", "z:z"], [])  # merged without repeating


def test_install_in_every_shape() -> None:
    assert _norm("x.cli", {"install": "  apt install x  "})[1] == {"install": "apt install x"}
    assert _norm("x.cli", {"install": {"cmd": " brew x "}})[1] == {"install": "brew x"}
    assert _norm("x.cli", {"install": {"command": ""}})[1] == {"install": None}
    assert _norm("x.cli", {"install": "   "})[1] == {"install": None}
    assert _norm("x.cli", {"install": {"brew": "x"}})[1:] == (
        {}, [], ["b00t.install: a package-manager table: read, not acted on"])
    assert _norm("x.cli", {"install": 5})[1:] == (
        {}, ["b00t.install: expected a string or a table with command, got integer 5"], [])


def test_presence_checks_in_every_shape() -> None:
    _, fields, _, _ = _norm("x.cli", {"install": "i", "version": "x --version", "version_regex": r"v(\d+)"})
    assert fields["presence"] == Presence(command=("x", "--version"), regex=r"v(\d+)", install="i",
                                          source="b00t.version")
    assert fields["kind"] == "presence"
    assert _norm("x.cli", {"version_regex": "v"})[1:] == (
        {}, [], ["b00t.version_regex: without b00t.version: not acted on"])
    _, fields, problems, notes = _norm("x.cli", {"version": "  "}, validate={"command": "x -v", "regex": "(", "why": 1},
                                       version={"cmd": "x --ver", "regex": "r", "extra": 2})
    assert fields["presence"] == Presence(command=("x", "--ver"), regex="r", source="version.cmd")
    assert problems == ["validate.regex: invalid regular expression: missing ), unterminated subpattern at position 0"]
    assert notes == ["validate.why: not acted on", "version.extra: not acted on"]
    out = normalise({"b00t": {"version": 5}, "validate": 3, "version": {"nocmd": 1}}, "/d/x.cli.toml")
    assert (out.fields, out.doc["version"]) == ({}, {"nocmd": 1})
    assert [str(p) for p in out.problems] == ["/d/x.cli.toml: validate: expected a table, got integer 3",
                                              "/d/x.cli.toml: b00t.version: expected a string, got integer 5"]
    _, fields, problems, _ = _norm("x.cli", {"version": "a 'b"}, validate={"command": "c"})
    assert fields["presence"] == Presence(command=("c",), source="validate.command")
    assert problems == ["b00t.version: cannot split into arguments: No closing quotation (in \"a 'b\")"]


@pytest.mark.parametrize(("ident", "b00t", "kind", "notes"), [
    ("x.docker", {}, "presence", ["b00t.image: not set: this docker datum runs as a presence check (b00t.version)"]),
    ("x.container", {}, "presence",
     ["b00t.image: not set: this container datum runs as a presence check (b00t.version)"]),
    ("x.docker", {"image": "i"}, None, []),
    ("x.process", {}, None, []),
    ("x.stack", {}, None, []),
    ("x.api", {}, "presence", []),
])
def test_which_datums_a_presence_check_runs_as(ident: str, b00t: dict[str, Any], kind: str | None,
                                               notes: list[str]) -> None:
    _, fields, _, got_notes = _norm(ident, {"version": "x -v", **b00t})
    assert (fields.get("kind"), got_notes) == (kind, notes)


def test_lifecycle_and_restart() -> None:
    b00t, fields, _, notes = _norm("x.process", {"lifecycle": {"health_check_cmd": "curl -f x", "restart": "always",
                                                               "idle": 1}})
    assert (b00t["health_check"], fields, notes) == ({"exec": ["curl", "-f", "x"]}, {"restart": "always"},
                                                     ["b00t.lifecycle.idle: not acted on"])
    assert _norm("x.process", {"lifecycle": {"health_check_cmd": "", "restart": ""}})[:2] == (
        {"name": "x", "type": "process"}, {})
    assert _norm("x.process", {"lifecycle": 5, "restart": "no"})[1:3] == (
        {"restart": "no"}, ["b00t.lifecycle: expected a table, got integer 5"])
    assert _norm("x.process", {"restart": 5})[1:3] == ({"restart": None}, ["b00t.restart: expected a string, got "
                                                                           "integer 5"])
    keys = {"max_restarts": 0, "backoff_ms": 1, "max_backoff_ms": 2, "interval_ms": 3, "failure_threshold": 4,
            "reset_after_ms": 5}
    assert _norm("x.process", {"restart": {"policy": "on-failure", **keys}})[1] == {
        "restart_policy": RestartPolicy(policy="on-failure", **keys)}
    assert _norm("x.process", {"restart": {}})[1] == {"restart_policy": RestartPolicy()}


@pytest.mark.parametrize(("table", "problem"), [
    ({"policy": "sometimes"}, "b00t.restart.policy: 'sometimes': expected one of no, on-failure, always"),
    ({"max_restarts": -1}, "b00t.restart.max_restarts: -1: expected a non-negative integer"),
    ({"backoff_ms": 0}, "b00t.restart.backoff_ms: 0: expected a positive integer"),
    ({"reset_after_ms": 0}, "b00t.restart.reset_after_ms: 0: expected a positive integer"),
    ({"zz": 1, "aa": 2}, "b00t.restart: unknown key(s): aa, zz (known: policy, max_restarts, backoff_ms, "
                         "max_backoff_ms, interval_ms, failure_threshold, reset_after_ms)"),
])
def test_a_bad_restart_policy_is_a_problem_naming_its_key(table: dict[str, Any], problem: str) -> None:
    assert _norm("x.process", {"restart": table})[1:3] == ({}, [problem])


def test_mcp_launch_specs_sorted_by_priority_with_their_problems() -> None:
    _, fields, problems, notes = _norm("x.mcp", {"mcp": {
        "stdio": [{"command": "a", "args": "x 'y z'", "priority": 5, "env": {"N": 1}, "requires": ["q"]},
                  {"command": "b", "priority": -1}, {"command": 3}, {"args": []}],
        "httpstream": {"url": "http://localhost:9/mcp", "priority": 1, "transport": "t", "env": {"T": 2}}}})
    assert fields == {"mcp": (McpLaunch(transport="stdio", priority=-1, command="b"),
                              McpLaunch(transport="httpstream", priority=1, url="http://localhost:9/mcp",
                                        env={"T": "2"}),
                              McpLaunch(transport="stdio", priority=5, command="a", args=("x", "y z"),
                                        env={"N": "1"}))}
    assert problems == ["b00t.mcp.stdio[2].command: expected a string, got integer 3",
                        "b00t.mcp.stdio[3].command: required: the program an MCP client starts"]
    assert notes == ["b00t.mcp.stdio.requires: b00t's launcher choice, not acted on",
                     "b00t.mcp.httpstream.transport: b00t's launcher choice, not acted on"]
    _, fields, problems, _ = _norm("x.mcp", {"mcp": {"httpstream": [{"url": "https://remote/mcp"}, {"url": 3},
                                                                    {"priority": 2}]}})
    assert fields == {"mcp": (McpLaunch(transport="httpstream", url="https://remote/mcp"),)}
    assert problems == ["b00t.mcp.httpstream[1].url: expected a string, got integer 3",
                        "b00t.mcp.httpstream[2].url: required: the server's URL"]
    _, fields, problems, notes = _norm("x.mcp", {"mcp": {"command": "flat", "args": ["a"], "env": {"E": "1"},
                                                         "priority": "hi", "idle_timeout_secs": 5}})
    assert fields == {"mcp": (McpLaunch(transport="stdio", command="flat", args=("a",), env={"E": "1"}),)}
    assert (problems, notes) == (["b00t.mcp.priority: expected an integer, got string 'hi'"],
                                 ["b00t.mcp.idle_timeout_secs: not acted on"])
    assert _norm("x.mcp", {"mcp": 5})[1:3] == ({}, ["b00t.mcp: expected a table, got integer 5"])
    _, fields, problems, _ = _norm("x.mcp", {"mcp": {"stdio": {"command": "s", "args": 5},
                                                     "httpstream": {"url": "http://localhost/x", "priority": 0}}})
    assert [m.priority for m in fields["mcp"]] == [0, 0] and fields["mcp"][0].transport == "stdio"  # file order
    assert problems == ["b00t.mcp.stdio.args: expected an array of strings, got integer 5"]


def test_a_loopback_httpstream_server_is_probed_unless_something_else_runs_it() -> None:
    b00t, fields, _, _ = _norm("x.mcp", {"mcp": {"httpstream": {"url": "http://127.0.0.1:9/mcp"}},
                                         "health_check": {"tcp": "127.0.0.1:9"}})
    assert fields["kind"] == "probe"
    assert b00t["health_check"] == {"http_url": "http://127.0.0.1:9/mcp", "expected_status": 0, "tcp": "127.0.0.1:9"}
    b00t, fields, _, _ = _norm("x.mcp", {"mcp": {"httpstream": {"url": "http://localhost:9/"},
                                                 "lifecycle": {"servers": [{"command": "srv"}]}}})
    assert fields["kind"] == "process" and "health_check" not in b00t
    for url in ("https://remote/mcp", ""):
        b00t, fields, _, _ = _norm("x.mcp", {"mcp": {"httpstream": {"url": url}}})
        assert "kind" not in fields and "health_check" not in b00t
    b00t, fields, _, _ = _norm("x.mcp", {"mcp": {"stdio": {"command": "s", "priority": 0},
                                                 "httpstream": {"url": "http://localhost/", "priority": 1}}})
    assert "kind" not in fields and "health_check" not in b00t  # the first launch is not the http one
    for ident, runs in (("x.docker", {"image": "i"}), ("x.process", {"command": "srv"})):  # they start it
        b00t, fields, _, _ = _norm(ident, {**runs, "mcp": {"httpstream": {"url": "http://localhost/"}}})
        assert "kind" not in fields and "health_check" not in b00t
    b00t, fields, _, _ = _norm("x.api", {"version": "x -v", "mcp": {"httpstream": {"url": "http://localhost/"}}})
    assert fields["kind"] == "presence" and "health_check" not in b00t  # a kind is already chosen


def test_a_lifecycle_server_runs_as_a_process() -> None:
    b00t, fields, problems, notes = _norm("x.mcp", {"mcp": {"lifecycle": {
        "servers": [{"command": "srv", "args": "--port 9", "env": {"L": "x"}, "name": "n", "cwd": "/",
                     "health_check": {"type": "tcp_port", "port": 9, "host": "0.0.0.0"}}, {"command": "two"}],
        "idle_timeout_secs": 3}}})
    assert b00t == {"name": "x", "type": "mcp", "command": ["srv"], "args": ["--port", "9"],
                    "health_check": {"tcp": "0.0.0.0:9"}}
    assert fields == {"mcp": (), "kind": "process", "run_env": {"L": "x"}}
    assert problems == []
    assert notes == ["b00t.mcp.lifecycle.servers.cwd: not acted on",
                     "b00t.mcp.lifecycle.servers: 2 servers: the first is started",
                     "b00t.mcp.lifecycle.idle_timeout_secs: b00t's idle reaping, not acted on"]


@pytest.mark.parametrize(("check", "health", "problems", "notes"), [
    ({"type": "tcp_port", "port": 9, "host": 5}, {"tcp": "127.0.0.1:9"},
     ["b00t.mcp.lifecycle.servers[0].health_check.host: expected a string, got integer 5"], []),
    ({"type": "tcp_port", "port": 9}, {"tcp": "127.0.0.1:9"}, [], []),
    ({"type": "tcp_port", "port": "9"}, None,
     ["b00t.mcp.lifecycle.servers[0].health_check.port: expected an integer, got string '9'"], []),
    ({"type": "http_get", "url": "http://localhost:1/h"}, {"http_url": "http://localhost:1/h"}, [], []),
    ({"type": "http", "url": "http://localhost:2/h"}, {"http_url": "http://localhost:2/h"}, [], []),
    ({"type": "http", "url": ""}, None, [], []),
    ({"type": "grpc"}, None, [], ["b00t.mcp.lifecycle.servers[0].health_check.type: 'grpc': not acted on "
                                  "(known: tcp_port, http_get, process_alive)"]),
    ({"type": "process_alive"}, None, [], []),
    (4, None, ["b00t.mcp.lifecycle.servers[0].health_check: expected a table, got integer 4"], []),
])
def test_a_lifecycle_servers_health_check(check: Any, health: dict[str, Any] | None, problems: list[str],
                                          notes: list[str]) -> None:
    b00t, _, got_problems, got_notes = _norm("x.mcp", {"mcp": {"lifecycle": {"servers": [
        {"command": "srv", "args": ["a"], "health_check": check}]}}})
    assert (b00t.get("health_check"), got_problems, got_notes) == (health, problems, notes)


def test_a_lifecycle_server_that_is_a_docker_run_runs_as_a_container() -> None:
    b00t, fields, problems, _ = _norm("x.mcp", {"mcp": {"lifecycle": {"servers": [{
        "command": "/usr/bin/podman", "args": ["run", "--rm", "-e", "A=1", "img", "go"], "env": {"B": 2},
        "health_check": {"type": "http", "url": "http://localhost:2/"}}]}}})
    assert b00t == {"name": "x", "type": "mcp", "image": "img", "docker_args": ["--rm", "-e", "A=1", "-e", "B=2"],
                    "args": ["go"], "health_check": {"http_url": "http://localhost:2/"}}
    assert (fields, problems) == ({"mcp": (), "kind": "docker"}, [])
    b00t, fields, _, _ = _norm("x.mcp", {"mcp": {"lifecycle": {"servers": [{"command": "docker",
                                                                            "args": "run img"}]}}})
    assert (b00t["image"], b00t["docker_args"], "args" in b00t) == ("img", [], False)
    assert _norm("x.mcp", {"mcp": {"lifecycle": {"servers": [{"command": "docker", "args": "run -d"}]}}})[1:3] == (
        {"mcp": ()}, ["b00t.mcp.lifecycle.servers[0].args: a `docker run` without an image"])
    b00t, fields, _, _ = _norm("x.mcp", {"mcp": {"lifecycle": {"servers": [{"command": "docker", "args": ["ps"]}]}}})
    assert (b00t["command"], b00t["args"], fields["kind"]) == (["docker"], ["ps"], "process")


def test_a_lifecycle_server_without_a_command() -> None:
    _, fields, problems, notes = _norm("x.mcp", {"mcp": {"lifecycle": {"servers": [{"command": 5}, {"args": []}]}}})
    assert (fields, problems, notes) == ({"mcp": ()},
                                         ["b00t.mcp.lifecycle.servers[0].command: expected a string, got integer 5"],
                                         ["b00t.mcp.lifecycle.servers: 2 servers: the first is started"])
    assert _norm("x.mcp", {"mcp": {"lifecycle": {"servers": [{"args": []}]}}})[2] == [
        "b00t.mcp.lifecycle.servers[0].command: required: the program that serves"]
    assert _norm("x.mcp", {"mcp": {"lifecycle": {"servers": []}}})[1:] == ({"mcp": ()}, [], [])


@pytest.mark.parametrize(("text", "shell"), [
    ('a "b\\" | c"', False),  # an escaped quote does not end the quoted text
    ('echo "`x`"', True), ('echo "$(x)"', True), ('echo "${X}"', True), ('echo "$_x"', True), ('echo "$X"', True),
    ('echo "a|b"', False), ("echo 'a|b' | c", True), ("echo 'a\"' x", False),
    ("~/bin/x", True), ("a ~", True), ("a~b", False),
    ("x $_", True), ("x $1", False), ("a$", False), ("x ${Y}", True),
    ('echo "$1"', False), ("echo f(x)", False),  # a digit after $ is no name; a parenthesis alone is no syntax
    ("echo x\ny", True), ("a;b", True), ("a<b", True), ("a?", True), ("a[1]", True), ("a&", True),
])
def test_what_needs_a_shell(text: str, shell: bool) -> None:
    assert needs_shell(text) is shell


def test_durations_loopback_urls_and_docker_run_flags() -> None:
    values: tuple[Any, ...] = (1.5, " 2s ", "1.5s", "10s junk", "", [], "2m", 0.0015)
    assert [duration_ms(v) for v in values] == [
        1500, 2000, 1500, None, None, None, 120_000, 1]
    assert [is_loopback(u) for u in ("http://[::1", "http://localhost", "http://127.0.0.1:1", "http://128.0.0.1",
                                     "http://localhost.example.com", "x")] == [False, True, True, False, False, False]
    assert split_docker_run(["-", "x"]) == ("-", [], ["x"])
    assert split_docker_run(["-e", "A", "-dit", "img"]) == ("img", ["-e", "A", "-dit"], [])
    assert split_docker_run(["-di", "-x", "v", "img"]) == ("img", ["-di", "-x", "v"], [])
    assert split_docker_run(["--publish-all", "img"]) == ("img", ["--publish-all"], [])
    assert split_docker_run(["-p"]) == (None, ["-p"], [])
    assert split_docker_run(["-du", "x", "img"]) == ("img", ["-du", "x"], [])
    assert split_docker_run(["-t", "img"]) == ("img", ["-t"], [])
    assert (quiet_reason("usage"), quiet_reason("nope")) == ("documentation, not acted on", None)


@pytest.mark.parametrize(("ident", "runs", "runtime"), [
    ("web.docker", {"image": "srv:1"}, "docker"), ("web.process", {"command": "srv"}, "process"),
    ("web.mcp", {}, "probe"),
])
def test_a_datum_that_serves_mcp_over_loopback_http_is_started_when_it_says_how(
        ident: str, runs: dict[str, Any], runtime: str) -> None:
    datum, problems, _ = structure_datum({"b00t": {**runs, "mcp": {"httpstream": {"url": "http://localhost:8080/mcp"}}}},
                                         f"/d/{ident}.toml")
    assert problems == [] and datum is not None
    assert datum.runtime == runtime


def test_values_of_the_wrong_shape_in_dialect_tables() -> None:
    assert _norm("a.docker", {"docker": {"run": 5, "build": "x"}})[2] == [
        "b00t.docker.run: expected a table or an array of tables, got integer 5",
        "b00t.docker.build: expected a table or an array of tables, got string 'x'"]
    assert _norm("a.container", {"container": {"port": True, "image": "i"}})[2] == [
        "b00t.container.port: expected an integer, got boolean True"]  # a boolean is no port


def test_build_and_container_values_of_the_wrong_type_are_named_by_their_keys() -> None:
    _, fields, problems, _ = _norm("a.docker", {"docker": {"build": {"context": 5, "file": 6, "dockerfile": 7,
                                                                     "args": {"V": [1]}}}})
    assert fields["build"] == Build(context=".")  # reported: the datum is not used
    assert problems == ["b00t.docker.build.context: expected a string, got integer 5",
                        "b00t.docker.build.file: expected a string, got integer 6",
                        "b00t.docker.build.dockerfile: expected a string, got integer 7",
                        "b00t.docker.build.args.V: expected a string, got array"]
    b00t, fields, problems, notes = _norm("a.container", {"volumes": "str", "image": "y", "container": {
        "image": "x", "name": 2, "gpu_device": 3, "build_file": 4,
        "volumes": [{"host": "h", "container": 5}, {"host": "h", "container": "/c"}]}})
    assert (b00t, fields) == ({"volumes": "str", "image": "y", "name": "a", "type": "container"}, {"kind": "docker"})
    assert problems == ["b00t.container.name: expected a string, got integer 2",
                        "b00t.container.gpu_device: expected a string, got integer 3",
                        "b00t.container.volumes[0].container: expected a string, got integer 5",
                        "b00t.container.build_file: expected a string, got integer 4"]
    assert notes == ["b00t.container.image: 'x' differs from b00t.image = 'y'; b00t.image is used",
                     "b00t.container.volumes: ['h:/c'] differs from b00t.volumes = 'str'; b00t.volumes is used"]
    assert _norm("a.container", {"container": {"volumes": 5, "image": "i"}})[1:3] == (
        {"kind": "docker"}, ["b00t.container.volumes: expected a table or an array of tables, got integer 5"])


def test_restart_values_of_the_wrong_type_are_named_by_their_keys() -> None:
    assert _norm("x.process", {"restart": {"policy": 3, "interval_ms": "x"}})[2] == [
        "b00t.restart.policy: expected a string, got integer 3",
        "b00t.restart.interval_ms: expected an integer, got string 'x'"]


def test_the_type_is_what_follows_the_last_dot_of_the_file_name() -> None:
    assert normalise({"b00t": {}}, "/d/node.x.cli.toml").doc["b00t"] == {"name": "node.x", "type": "cli"}


@pytest.mark.parametrize(("args", "kept", "name"), [
    (["-d", "--name", "x"], ["-d"], "x"),  # the pair at the very end
    (["--name=a=b", "-d"], ["-d"], "a=b"),  # only the first = separates
])
def test_a_container_name_anywhere_in_docker_args(args: list[str], kept: list[str], name: str) -> None:
    b00t, fields, _, _ = _norm("a.docker", {"docker_args": args})
    assert (b00t["docker_args"], fields) == (kept, {"container_name": name})


def test_a_bad_component_does_not_hide_the_ones_after_it() -> None:
    b00t, _, problems, _ = _norm("s.stack", {"stack": {"components": {"a": {"datum": "a.cli", "required": "yes"},
                                                                      "b": "b.cli"}}})
    assert (b00t["members"], problems) == (["b.cli"], ["b00t.stack.components.a.required: expected true or false, "
                                                       "got string 'yes'"])


def test_a_wrong_top_level_env_does_not_hide_the_b00t_env_schema() -> None:
    _, fields, _, _ = _norm("a.ai", {"env": {"required": ["A"]}}, env="x")
    assert fields == {"env_required": ("A",)}


def test_where_a_member_is_written_wins_over_where_it_is_required() -> None:
    _, fields, _, _ = _norm("s.stack", {"stack": {"components": {"b": "b.cli"}}, "requires": ["c.cli", "b.cli"]})
    assert fields == {"edge_keys": {"c.cli": "b00t.requires[0]", "b.cli": "b00t.stack.components.b"}}


def test_a_need_with_values_of_the_wrong_type_names_their_keys() -> None:
    assert _norm("p.api", {"requires": {"s": {"capability": "c", "protocol": 5, "fallback": 6}}})[2] == [
        "b00t.requires.s.protocol: expected a string, got integer 5",
        "b00t.requires.s.fallback: expected a string, got integer 6"]


def test_the_shortest_docker_healthcheck_duration_is_one_millisecond() -> None:
    b00t, _, problems, _ = _norm("a.docker", {"image": "i", "docker": {"healthcheck_cmd": "x",
                                                                       "healthcheck_interval": "1ms"}})
    assert (b00t["health_check"], problems) == ({"exec": ["x"], "interval_ms": 1}, [])


def test_the_first_presence_check_written_is_the_one_run() -> None:
    _, fields, _, _ = _norm("x.cli", {"version": "x -v"}, validate={"command": "y -v"}, version={"cmd": "z -v"})
    assert fields["presence"] == Presence(command=("x", "-v"), source="b00t.version")
    _, fields, _, _ = _norm("x.cli", {}, validate={"command": "y -v"}, version={"cmd": "z -v"})
    assert fields["presence"] == Presence(command=("y", "-v"), source="validate.command")


def test_which_short_docker_run_flags_take_a_value() -> None:
    assert split_docker_run(["-xd", "v", "img"]) == ("img", ["-xd", "v"], [])  # x takes one
    assert split_docker_run(["-tid", "img"]) == ("img", ["-tid"], [])  # d, i and t in any order take none
    assert split_docker_run(["-p", "8080"]) == (None, ["-p", "8080"], [])  # the value is no image


def test_a_broken_lifecycle_server_does_not_turn_the_datum_into_a_probe() -> None:
    b00t, fields, problems, _ = _norm("x.mcp", {"mcp": {"httpstream": {"url": "http://localhost:9/"},
                                                        "lifecycle": {"servers": [{"command": 5}]}}})
    assert ("kind" in fields, "health_check" in b00t) == (False, False)
    assert problems == ["b00t.mcp.lifecycle.servers[0].command: expected a string, got integer 5"]


def test_a_docker_build_table_wins_over_a_containers_build_file() -> None:
    _, fields, _, _ = _norm("a.container", {"docker": {"build": {"context": "ctx", "file": "F"}},
                                            "container": {"build_file": "other/G", "image": "i"}})
    assert fields["build"] == Build(context="ctx", file="F")


def test_a_docker_run_table_that_disagrees_or_is_malformed_is_named_by_its_keys() -> None:
    b00t, _, problems, notes = _norm("a.docker", {
        "docker_args": "a 'b", "network": "x", "args": "str", "command": "c",
        "docker": {"run": {"image": 5, "name": 6, "network": "y", "args": ["z"], "command": ["a"], "env": ["A=1"]}}})
    assert b00t["docker_args"] == ["-e", "A=1"]
    assert problems == ["b00t.docker.run.image: expected a string, got integer 5",
                        "b00t.docker.run.name: expected a string, got integer 6",
                        "b00t.docker_args: cannot split into arguments: No closing quotation (in \"a 'b\")"]
    assert notes == ["b00t.docker.run.network: 'y' differs from b00t.network = 'x'; b00t.network is used",
                     "b00t.docker.run.args: ['z'] differs from b00t.args = 'str'; b00t.args is used",
                     "b00t.docker.run.command: ['a'] differs from b00t.command = 'c'; b00t.command is used"]
    b00t, _, problems, _ = _norm("a.docker", {"docker": {"run": {"network": 7, "args": "a 'b", "command": "c 'd",
                                                                 "env": [1], "ports": ["1:1"]}}})
    assert b00t["docker_args"] == ["-p", "1:1"]  # no docker_args of its own: the run's flags are all
    assert problems == ["b00t.docker.run.network: expected a string, got integer 7",
                        "b00t.docker.run.args: cannot split into arguments: No closing quotation (in \"a 'b\")",
                        "b00t.docker.run.command: cannot split into arguments: No closing quotation (in \"c 'd\")",
                        "b00t.docker.run.env[0]: expected a string, got integer 1"]
    assert _norm("a.docker", {"docker": {"run": {"args": [1], "command": [2]}}})[2] == [
        "b00t.docker.run.args[0]: expected a string, got integer 1",
        "b00t.docker.run.command[0]: expected a string, got integer 2"]


def test_a_docker_run_flag_with_its_value_after_an_equals_sign_takes_no_other() -> None:
    assert split_docker_run(["-p=1:1", "img"]) == ("img", ["-p=1:1"], [])
    assert split_docker_run(["-dX", "v", "img"]) == ("img", ["-dX", "v"], [])  # X is no boolean letter


def test_malformed_health_commands_and_mcp_entries_are_named_by_their_keys() -> None:
    assert _norm("a.docker", {"image": "i", "docker": {"healthcheck_cmd": 5}})[2] == [
        "b00t.docker.healthcheck_cmd: expected a string, got integer 5"]
    assert _norm("a.docker", {"image": "i", "docker": {"healthcheck_cmd": "a 'b"}})[2] == [
        "b00t.docker.healthcheck_cmd: cannot split into arguments: No closing quotation (in \"a 'b\")"]
    _, _, problems, notes = _norm("x.mcp", {"mcp": {"httpstream": {"url": "https://r/", "env": {"N": [1]}},
                                                    "stdio": {"command": "c", "args": "a 'b"}}})
    assert (problems, notes) == (["b00t.mcp.stdio.args: cannot split into arguments: No closing quotation "
                                  "(in \"a 'b\")", "b00t.mcp.httpstream.env.N: expected a string, got array"], [])
    key = "b00t.mcp.lifecycle.servers[0]"
    _, _, problems, _ = _norm("x.mcp", {"mcp": {"lifecycle": {"servers": [
        {"command": "s", "args": "a 'b", "env": {"E": [1]}, "health_check": {"type": "http", "url": 5}}]}}})
    assert problems == [f"{key}.args: cannot split into arguments: No closing quotation (in \"a 'b\")",
                        f"{key}.env.E: expected a string, got array", f"{key}.health_check.url: expected a string, "
                                                                        "got integer 5"]
    b00t, _, problems, notes = _norm("x.mcp", {"health_check": {"exec": ["e"]}, "mcp": {"lifecycle": {"servers": [
        {"command": "s", "args": [3], "health_check": {"type": "http", "url": "http://h/"}}]}}})
    assert b00t["health_check"] == {"http_url": "http://h/", "exec": ["e"]}
    assert (problems, notes) == ([f"{key}.args[0]: expected a string, got integer 3"],
                                 [f"{key}.health_check: [b00t.health_check] exec is used"])


def test_a_quote_closes_and_a_dollar_name_outside_quotes_needs_a_shell() -> None:
    assert needs_shell('echo "a" | b') is True
    assert needs_shell("echo $X") is True


def test_a_dialect_note_names_the_file_it_is_about() -> None:
    out = normalise({"b00t": {"mcp": {"httpstream": {"url": "http://localhost:9/mcp", "transport": "t"}}}},
                    "/d/x.mcp.toml")
    assert [(n.path, n.key) for n in out.notes] == [("/d/x.mcp.toml", "b00t.mcp.httpstream.transport")]


def test_a_provides_capability_and_a_requires_list_of_the_wrong_type_are_named_by_their_keys() -> None:
    _, fields, problems, _ = _norm("p.api", {"provides": {"capability": 5}, "requires": ["a.cli", 3]})
    assert fields == {"provides": None, "edge_keys": {"a.cli": "b00t.requires[0]"}}
    assert problems == ["b00t.provides.capability: expected a string, got integer 5",
                        "b00t.requires[1]: expected a string, got integer 3"]


def test_repository_registry_and_tag_of_the_wrong_type_are_named_by_their_keys() -> None:
    assert _norm("a.docker", {"docker": {"repository": 5}})[:3] == (
        {"name": "a", "type": "docker"}, {}, ["b00t.docker.repository: expected a string, got integer 5"])
    b00t, _, problems, _ = _norm("a.docker", {"docker": {"repository": "app", "registry": 5, "tag": 6}})
    assert (b00t["image"], problems) == ("app", ["b00t.docker.registry: expected a string, got integer 5",
                                                 "b00t.docker.tag: expected a string, got integer 6"])


def test_only_the_registrys_trailing_slashes_are_dropped() -> None:
    # A registry host may be written in capitals (Docker's reference grammar allows them in the domain).
    assert _norm("a.docker", {"docker": {"repository": "org/app", "registry": "HUB.INBOX//"}})[0]["image"] == \
        "HUB.INBOX/org/app"


def test_every_docker_healthcheck_key_is_acted_on() -> None:
    b00t, _, problems, notes = _norm("a.docker", {"image": "i", "docker": {
        "healthcheck_cmd": "pg_isready", "healthcheck_interval": "10s", "healthcheck_timeout": "2s",
        "healthcheck_retries": 3, "healthcheck_start_period": "1m"}})
    assert b00t["health_check"] == {"exec": ["pg_isready"], "interval_ms": 10_000, "probe_timeout_ms": 2000,
                                    "start_period_ms": 60_000, "retries": 3}
    assert (problems, notes) == ([], [])


def test_a_loopback_probe_next_to_a_health_check_exec_says_which_is_used() -> None:
    b00t, fields, problems, notes = _norm("x.mcp", {"health_check": {"exec": ["e"]},
                                                    "mcp": {"httpstream": {"url": "http://localhost:9/"}}})
    assert fields["kind"] == "probe"
    assert b00t["health_check"] == {"http_url": "http://localhost:9/", "expected_status": 0, "exec": ["e"]}
    assert (problems, notes) == ([], ["b00t.mcp.httpstream: [b00t.health_check] exec is used"])


def test_an_mcp_lifecycle_of_the_wrong_type_is_named_by_its_key() -> None:
    _, fields, problems, _ = _norm("x.mcp", {"mcp": {"lifecycle": 5, "httpstream": {"url": "http://localhost:9/"}}})
    assert fields["kind"] == "probe"  # no server is started: the loopback URL is probed
    assert problems == ["b00t.mcp.lifecycle: expected a table, got integer 5"]


def test_a_presence_regex_of_the_wrong_type_is_named_by_its_key() -> None:
    _, fields, problems, _ = _norm("x.cli", {"version": "x -v", "version_regex": 5})
    assert fields["presence"] == Presence(command=("x", "-v"), source="b00t.version")
    assert problems == ["b00t.version_regex: expected a string, got integer 5"]
    _, fields, problems, _ = _norm("x.cli", {}, version={"cmd": "x -v", "regex": 5})
    assert fields["presence"] == Presence(command=("x", "-v"), source="version.cmd")
    assert problems == ["version.regex: expected a string, got integer 5"]


def test_a_container_with_an_image_and_a_version_check_runs_as_docker() -> None:
    _, fields, problems, notes = _norm("x.container", {"image": "i", "version": "x -v"})
    assert fields == {"presence": Presence(command=("x", "-v"), source="b00t.version"), "kind": "docker"}
    assert (problems, notes) == ([], [])


def test_lifecycle_values_of_the_wrong_type_are_named_by_their_keys() -> None:
    b00t, fields, problems, notes = _norm("x.process", {"health_check": {"exec": ["e"]},
                                                        "lifecycle": {"health_check_cmd": "c", "restart": 5}})
    assert (b00t["health_check"], fields) == ({"exec": ["e"]}, {})
    assert problems == ["b00t.lifecycle.restart: expected a string, got integer 5"]
    assert notes == ["b00t.lifecycle.health_check_cmd: [b00t.health_check] exec is used"]
    assert _norm("x.process", {"lifecycle": {"health_check_cmd": 5}})[2] == [
        "b00t.lifecycle.health_check_cmd: expected a string, got integer 5"]
    assert _norm("x.process", {"lifecycle": {"health_check_cmd": "a 'b"}})[2] == [
        "b00t.lifecycle.health_check_cmd: cannot split into arguments: No closing quotation (in \"a 'b\")"]
