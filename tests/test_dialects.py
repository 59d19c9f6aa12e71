"""b00t's many ways of writing a datum land in the one model (``tests/datums/shapes`` has every shape)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from b00t_graph.cli import main
from b00t_graph.dialects import KEYS, argv_of, duration_ms, is_loopback, needs_shell, split_docker_run
from b00t_graph.errors import DatumError, MissingDependencyError
from b00t_graph.graph import compile_graph
from b00t_graph.loader import Catalog, Source, load_catalog, load_file, require, structure_datum
from b00t_graph.model import Build, HealthCheck, McpLaunch, Need, Presence

SHAPES = Path(__file__).parent / "datums" / "shapes"


@pytest.fixture(scope="module")
def cat() -> Catalog:
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
