"""``plan``: the graph, each node's resolved env and the numbered actions — as text, JSON, DOT and Mermaid.

The packaged ``grok`` stack is planned ``--offline`` (nothing is asked), and once more with a Docker
host that cannot answer, which plan must say and still plan. Plan never changes anything.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from b00t_graph.cli import main

QDRANT_ENV = {"QDRANT_URL": "http://localhost:6333", "QDRANT_GRPC_URL": "http://localhost:6334"}
OLLAMA_ENV = {"OLLAMA_API_URL": "http://localhost:11434", "OLLAMA_HOST": "localhost:11434"}
GURU_OWN = {"GROK_QDRANT_URL": "http://localhost:6333",
            "GROK_EMBEDDINGS_URL": "http://localhost:11434/api/embeddings",
            "GROK_COLLECTION": "grok"}
GROK_OWN = {"QDRANT_URL": "http://localhost:6333", "EXTERNAL_API": "http://localhost:11434"}


@pytest.fixture(autouse=True)
def _clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> None:
    """Packaged datums, a wide console, and none of the variables the datums read."""
    for var in ("_B00T_Path", "B00T_DEBUG", "GROK_COLLECTION", "QDRANT_URL", "OLLAMA_API_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def plan_json(*args: str) -> dict[str, Any]:
    result = invoke("plan", "--json", *args)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


_GUIDES = re.compile(r"^[\s│├└─]*")


def tree_lines(text: str) -> list[str]:
    """The plan's lines without tree guides and with runs of spaces collapsed."""
    return [" ".join(_GUIDES.sub("", line).split()) for line in text.splitlines()]


def assert_block(lines: list[str], block: list[str]) -> None:
    """``block`` appears as consecutive lines."""
    for i in range(len(lines) - len(block) + 1):
        if lines[i:i + len(block)] == block:
            return
    raise AssertionError("block not found:\n  " + "\n  ".join(block) + "\nin:\n  " + "\n  ".join(lines))


# --- the packaged grok stack ------------------------------------------------------------------------


def test_plan_grok_stack_text_shows_each_node_with_its_resolved_env() -> None:
    result = invoke("plan", "--offline", "grok.stack")
    assert result.exit_code == 0, result.output
    lines = tree_lines(result.stdout)
    assert lines[0] == "plan"
    assert lines[1] == "grok.stack [group] #4"
    assert_block(lines, [
        "qdrant.docker [docker] #1",
        "image qdrant/qdrant:latest -p 6333:6333 -p 6334:6334 -v qdrant_data:/qdrant/storage memory 1G",
        "ready: http http://localhost:6333/healthz → 200",
        "now: unknown (--offline)",
        "hint: Vector database for embeddings; REST on 6333, gRPC on 6334.",
        "env",
        "QDRANT_GRPC_URL=http://localhost:6334",
        "QDRANT_URL=http://localhost:6333",
    ])
    assert_block(lines, [
        "ollama.docker [docker] #2",
        "image ollama/ollama:latest -p 11434:11434 -v ollama_models:/root/.ollama",
        "ready: http http://localhost:11434/api/tags → 200",
        "now: unknown (--offline)",
        "hint: Local model server; pull models with `docker exec ollama ollama pull <model>`.",
        "env",
        "OLLAMA_API_URL=http://localhost:11434",
        "OLLAMA_HOST=localhost:11434",
    ])
    assert_block(lines, [
        "grok-guru.mcp [group] #3",
        "ready: ready when its dependencies are",
        "hint: MCP server for knowledge retrieval over qdrant, with embeddings from ollama.",
        "env",
        "GROK_COLLECTION=grok",
        "GROK_EMBEDDINGS_URL=http://localhost:11434/api/embeddings",
        "GROK_QDRANT_URL=http://localhost:6333",
        "OLLAMA_API_URL=http://localhost:11434 (from a dependency)",
        "OLLAMA_HOST=localhost:11434 (from a dependency)",
        "QDRANT_GRPC_URL=http://localhost:6334 (from a dependency)",
        "QDRANT_URL=http://localhost:6333 (from a dependency)",
        "qdrant.docker [docker] #1 (see above)",
        "ollama.docker [docker] #2 (see above)",
    ])
    # the stack's own renames are its own exports, not "from a dependency"
    assert "EXTERNAL_API=http://localhost:11434" in lines
    assert_block(lines, [
        "1 qdrant.docker create and start unknown (--offline)",
        "2 ollama.docker create and start unknown (--offline)",
        "3 grok-guru.mcp nothing to start (ready when dependencies are) after #1, #2",
        "4 grok.stack nothing to start (ready when dependencies are) after #1, #2, #3",
    ])
    assert ("waves (for reading only; up starts each node as soon as its own dependencies are ready): "
            "1: qdrant.docker, ollama.docker 2: grok-guru.mcp 3: grok.stack") in lines
    assert lines[-1] == "note: cannot ask the docker runtime what runs (--offline); planned as if nothing runs"
    assert result.stderr == ""


def test_plan_grok_json() -> None:
    data = plan_json("--offline", "grok.stack")
    assert data["targets"] == ["grok.stack"]
    nodes = {n["id"]: n for n in data["nodes"]}
    assert list(nodes) == ["qdrant.docker", "ollama.docker", "grok-guru.mcp", "grok.stack"]
    assert nodes["qdrant.docker"]["env"] == QDRANT_ENV
    assert nodes["ollama.docker"]["env"] == OLLAMA_ENV
    assert nodes["grok-guru.mcp"]["exports"] == GURU_OWN
    assert nodes["grok-guru.mcp"]["env"] == {**QDRANT_ENV, **OLLAMA_ENV, **GURU_OWN}
    assert nodes["grok.stack"]["exports"] == GROK_OWN
    assert nodes["grok.stack"]["env"] == {**QDRANT_ENV, **OLLAMA_ENV, **GURU_OWN, **GROK_OWN}
    assert data["env"] == nodes["grok.stack"]["env"]

    q = nodes["qdrant.docker"]
    assert (q["name"], q["type"], q["runtime"], q["image"], q["command"]) == (
        "qdrant", "docker", "docker", "qdrant/qdrant:latest", None)
    assert q["readiness"] == ["http http://localhost:6333/healthz → 200"]
    assert q["path"].endswith("datums/qdrant.docker.toml")
    assert re.fullmatch(r"[0-9a-f]{16}", q["config_hash"])
    assert [(n["state"], n["action"], n["runtime"]) for n in nodes.values()] == [
        ("unknown", "create", "docker"), ("unknown", "create", "docker"),
        (None, "group", "group"), (None, "group", "group")]
    assert nodes["grok-guru.mcp"]["depends_on"] == ["qdrant.docker", "ollama.docker"]
    assert nodes["grok.stack"]["depends_on"] == ["qdrant.docker", "ollama.docker", "grok-guru.mcp"]
    assert sorted(map(tuple, data["edges"])) == sorted([
        ("grok-guru.mcp", "qdrant.docker"), ("grok-guru.mcp", "ollama.docker"),
        ("grok.stack", "qdrant.docker"), ("grok.stack", "ollama.docker"), ("grok.stack", "grok-guru.mcp")])
    assert data["actions"] == [
        {"step": 1, "node": "qdrant.docker", "action": "create", "description": "create and start"},
        {"step": 2, "node": "ollama.docker", "action": "create", "description": "create and start"},
        {"step": 3, "node": "grok-guru.mcp", "action": "group",
         "description": "nothing to start (ready when dependencies are)"},
        {"step": 4, "node": "grok.stack", "action": "group",
         "description": "nothing to start (ready when dependencies are)"},
    ]
    assert data["waves"] == [["qdrant.docker", "ollama.docker"], ["grok-guru.mcp"], ["grok.stack"]]
    assert data["runtime_unavailable"] == {"docker": "--offline"}


def test_bare_name_plans_the_same_as_the_full_identity() -> None:
    assert plan_json("--offline", "grok") == plan_json("--offline", "grok.stack")


def test_process_env_is_the_fallback_the_datums_ask_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROK_COLLECTION", "papers")
    monkeypatch.setenv("QDRANT_URL", "http://elsewhere:6333")  # a dependency exports it: that one wins
    nodes = {n["id"]: n for n in plan_json("--offline", "grok")["nodes"]}
    assert nodes["grok-guru.mcp"]["exports"]["GROK_COLLECTION"] == "papers"
    assert nodes["grok-guru.mcp"]["exports"]["GROK_QDRANT_URL"] == "http://localhost:6333"
    assert nodes["grok.stack"]["exports"]["QDRANT_URL"] == "http://localhost:6333"


def test_plan_with_an_unreachable_docker_says_so_and_still_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/b00t-graph-test/docker.sock")
    result = invoke("plan", "grok")
    assert result.exit_code == 0, result.output
    lines = tree_lines(result.stdout)
    assert "1 qdrant.docker create and start" in " | ".join(lines)
    note = " ".join(lines[lines.index(next(x for x in lines if x.startswith("note: "))):])
    assert note.startswith("note: cannot ask the docker runtime what runs (")
    assert "/nonexistent/b00t-graph-test/docker.sock" in note
    assert note.endswith("planned as if nothing runs")
    data = plan_json("grok")
    assert set(data["runtime_unavailable"]) == {"docker"}
    assert [n["state"] for n in data["nodes"][:2]] == ["unknown", "unknown"]
    assert [a["action"] for a in data["actions"]] == ["create", "create", "group", "group"]


def test_plan_dot() -> None:
    result = invoke("plan", "--format", "dot", "grok")
    assert result.exit_code == 0
    assert result.stdout == "\n".join([
        "digraph b00t {",
        "  rankdir=LR;",
        "  node [shape=box, style=rounded];",
        '  "qdrant.docker" [label="qdrant.docker\\ndocker"];',
        '  "ollama.docker" [label="ollama.docker\\ndocker"];',
        '  "grok-guru.mcp" [label="grok-guru.mcp\\ngroup"];',
        '  "grok.stack" [label="grok.stack\\ngroup"];',
        '  "qdrant.docker" -> "grok-guru.mcp";',
        '  "ollama.docker" -> "grok-guru.mcp";',
        '  "qdrant.docker" -> "grok.stack";',
        '  "ollama.docker" -> "grok.stack";',
        '  "grok-guru.mcp" -> "grok.stack";',
        "}",
    ]) + "\n"


def test_plan_mermaid() -> None:
    result = invoke("plan", "--format", "mermaid", "grok")
    assert result.exit_code == 0
    assert result.stdout == "\n".join([
        "graph LR",
        '  n0["qdrant.docker (docker)"]',
        '  n1["ollama.docker (docker)"]',
        '  n2["grok-guru.mcp (group)"]',
        '  n3["grok.stack (group)"]',
        "  n0 --> n2",
        "  n1 --> n2",
        "  n0 --> n3",
        "  n1 --> n3",
        "  n2 --> n3",
    ]) + "\n"


def test_the_packaged_datums_validate_cleanly() -> None:
    result = invoke("validate")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert re.fullmatch(r"\d+ datum\(s\) ok, 0 with problems, in .*datums", result.stdout.splitlines()[-1])


# --- folders of our own -----------------------------------------------------------------------------


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for ident, text in files.items():
        (folder / f"{ident}.toml").write_text(text)
    return folder


PASSIVE = {
    "gh.cli": """
[b00t]
hint = "GitHub CLI, installed by b00t"
desires = "2.40"
install = "sudo apt install gh"
[[b00t.usage]]
command = "gh auth login"
[b00t.orchestration]
priority = 1
[[b00t.mcp.stdio]]
command = "npx"
[env]
GH_HOST = "github.com"
""",
    "redis.process": """
[b00t]
command = "redis-server"
args = ["--port", "6379", "--save", ""]
depends_on = ["gh.cli"]
[[b00t.requirements]]
kind = "tcp_port"
host = "localhost"
port = 6379
""",
}


def test_passive_node_is_not_managed_in_plan(tmp_path: Path) -> None:
    d = _write(tmp_path / "datums", PASSIVE)
    result = invoke("plan", "--offline", "-d", str(d), "redis")
    assert result.exit_code == 0, result.output
    lines = tree_lines(result.stdout)
    assert_block(lines, [
        "redis.process [process] #2",
        "command redis-server --port 6379 --save ''",
        f"cwd: {d}",  # a process runs in its datum's folder, and plan says where
        "ready: tcp localhost:6379",
        "now: unknown (--offline)",
        "env",
        "GH_HOST=github.com (from a dependency)",
        "gh.cli [not managed] #1",
        "ready: ready when its dependencies are",
        "hint: GitHub CLI, installed by b00t",
        "env",
        "GH_HOST=github.com",
    ])
    assert "1 gh.cli not managed (type not run by b00t-graph)" in lines
    data = plan_json("--offline", "-d", str(d), "redis")
    gh, redis = data["nodes"]
    assert (gh["id"], gh["runtime"], gh["action"], gh["state"], gh["hint"]) == (
        "gh.cli", "not managed", "passive", None, "GitHub CLI, installed by b00t")
    assert redis["readiness"] == ["tcp localhost:6379"]
    assert redis["command"] == ["redis-server", "--port", "6379", "--save", ""]
    assert (redis["state"], redis["action"]) == ("unknown", "create")
    assert data["runtime_unavailable"] == {"process": "--offline"}


def test_plan_online_asks_the_process_runtime(tmp_path: Path) -> None:
    d = _write(tmp_path / "datums", PASSIVE)
    data = plan_json("-d", str(d), "redis")
    assert data["runtime_unavailable"] == {}
    assert [(n["id"], n["state"], n["action"]) for n in data["nodes"]] == [
        ("gh.cli", None, "passive"), ("redis.process", "absent", "create")]


def test_plan_changes_nothing(tmp_path: Path, state_dir: Path) -> None:
    marker = tmp_path / "started"
    d = _write(tmp_path / "datums", {"touch.process": f"[b00t]\ncommand = 'touch'\n"
                                                     f"args = [{json.dumps(str(marker))}]\n"})
    before = sorted(p.relative_to(state_dir) for p in state_dir.rglob("*")) if state_dir.exists() else []
    for args in (["plan", "touch"], ["plan", "--json", "touch"], ["plan", "--format", "dot", "touch"]):
        assert invoke(*args, "-d", str(d)).exit_code == 0
    assert not marker.exists()
    after = sorted(p.relative_to(state_dir) for p in state_dir.rglob("*")) if state_dir.exists() else []
    assert [p for p in after if "lock" not in p.name] == [p for p in before if "lock" not in p.name]


def test_long_values_are_wrapped_never_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    tail = "and/on/" * 40 + "until/the/very/end-of-the-line"  # longer than any console is wide
    d = _write(tmp_path / "datums", {"long.process": f"[b00t]\ncommand = 'serve'\n"
                                                    f"[b00t.env]\nLONG_URL = 'http://example.invalid/{tail}'\n"})
    result = invoke("plan", "--offline", "-d", str(d), "long")
    assert result.exit_code == 0
    joined = "".join("".join(tree_lines(result.stdout)).split())
    assert f"LONG_URL=http://example.invalid/{tail}" in joined


def test_plan_shows_dependencies_and_actions_in_order(tmp_path: Path) -> None:
    d = _write(tmp_path / "datums", {
        "db.process": "[b00t]\ncommand = 'db'\n[b00t.env]\nDB_URL = 'postgres://localhost:5432'\n",
        "api.process": "[b00t]\ncommand = 'api'\nargs = ['--db', '${DB_URL}']\ndepends_on = ['db.process']\n"
                       "[b00t.health_check]\ntcp = '127.0.0.1:8080'\n",
    })
    result = invoke("plan", "--offline", "-d", str(d), "api")
    assert result.exit_code == 0
    lines = tree_lines(result.stdout)
    assert_block(lines, [
        "api.process [process] #2",
        "command api --db postgres://localhost:5432",
        f"cwd: {d}",
        "ready: tcp 127.0.0.1:8080",
    ])
    assert_block(lines, [
        "1 db.process create and start unknown (--offline)",
        "2 api.process create and start unknown (--offline); after #1",
    ])
    assert "ready: ready when started (no readiness probe)" in lines  # db has no probe


# --- capabilities, stacks, host ports (issue 11) ----------------------------------------------------

SHAPES = Path(__file__).parent / "datums" / "shapes"

RAG = {
    "model-server.docker": "[b00t]\nimage = 'example/models:1'\ndocker_args = ['-p', '18001:8000']\n"
                           "[b00t.env]\nMODEL_URL = 'http://localhost:18001'\n",
    "local-emb.api": "[b00t]\nprotocol = 'emb-v1'\ndepends_on = ['model-server.docker']\n"
                     "[b00t.provides]\ncapability = 'embeddings'\n"
                     "[b00t.env]\nEMB_URL = '${MODEL_URL}/v1'\n",
    "cloud-emb.api": "[b00t]\nprotocol = 'emb-v1'\n[b00t.provides]\ncapability = 'embeddings'\n"
                     "[env]\nrequired = ['CLOUD_KEY']\n[b00t.env]\nEMB_URL = 'https://emb.example.invalid/v1'\n",
    "rag.api": "[b00t]\n[b00t.requires.embeddings]\ncapability = 'embeddings'\nprotocol = 'emb-v1'\n"
               "prefer = ['local-emb', 'cloud-emb']\nfallback = 'cloud-emb'\n"
               "[b00t.env]\nRAG_EMB = '${EMB_URL}'\n",
}


def test_plan_shows_the_capability_choice_and_the_edge_it_makes(tmp_path: Path) -> None:
    d = _write(tmp_path / "rag", RAG)
    result = invoke("plan", "--offline", "-d", str(d), "rag.api")
    assert result.exit_code == 0, result.output
    lines = tree_lines(result.stdout)
    assert_block(lines, ["rag.api [not managed] #3", "ready: ready when its dependencies are",
                         "needs embeddings → local-emb.api (preferred 1 of 2)"])
    assert "RAG_EMB=http://localhost:18001/v1" in lines
    data = plan_json("--offline", "-d", str(d), "rag.api")
    rag = {n["id"]: n for n in data["nodes"]}["rag.api"]
    assert rag["depends_on"] == ["local-emb.api"]
    assert rag["choices"] == [{"slot": "embeddings", "capability": "embeddings", "protocol": "emb-v1",
                               "chosen": "local-emb.api", "how": "preferred 1 of 2", "passed_over": []}]


def test_plan_honours_use_and_refuses_a_non_provider(tmp_path: Path) -> None:
    d = _write(tmp_path / "rag", RAG)
    for name in ("cloud-emb", "cloud-emb.api"):
        result = invoke("plan", "--offline", "-d", str(d), "--use", f"embeddings={name}", "rag.api")
        assert result.exit_code == 2  # cloud-emb's required CLOUD_KEY is not set: the user's choice, its error
        assert "cloud-emb.api.toml: env.required: CLOUD_KEY must be set for cloud-emb.api" in result.stderr
    data = CliRunner(env={"CLOUD_KEY": "k"}).invoke(
        main, ["plan", "--json", "--offline", "-d", str(d), "--use", "embeddings=cloud-emb", "rag.api"])
    assert data.exit_code == 0, data.output
    nodes = {n["id"]: n for n in json.loads(data.stdout)["nodes"]}
    assert nodes["rag.api"]["choices"][0]["how"] == "--use"
    assert "local-emb.api" not in nodes and "model-server.docker" not in nodes

    result = invoke("plan", "--offline", "-d", str(d), "--use", "embeddings=model-server", "rag.api")
    assert result.exit_code == 2
    assert "model-server: model-server.docker does not provide 'embeddings'" in result.stderr
    result = invoke("plan", "--offline", "-d", str(d), "--use", "embeddings", "rag.api")
    assert result.exit_code == 2
    assert "expected SLOT=NAME" in result.stderr


def test_plan_falls_back_when_the_preferred_providers_env_or_runtime_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rag = dict(RAG)
    rag["local-emb.api"] += "[b00t.env.defaults]\nUNUSED = 'x'\n"
    rag["local-emb.api"] = rag["local-emb.api"].replace("[b00t.provides]", "[env]\nrequired = ['LOCAL_TOKEN']\n"
                                                        "[b00t.provides]")
    d = _write(tmp_path / "rag", rag)
    monkeypatch.setenv("CLOUD_KEY", "k")
    lines = tree_lines(invoke("plan", "--offline", "-d", str(d), "rag.api").stdout)
    assert ("needs embeddings → cloud-emb.api (preferred 2 of 2); passed over local-emb.api: "
            "LOCAL_TOKEN is not set") in lines

    # online, a provider whose runtime cannot be reached is passed over too
    d = _write(tmp_path / "rag2", RAG)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    result = invoke("plan", "-d", str(d), "rag.api")
    assert result.exit_code == 0, result.output
    line = next(x for x in tree_lines(result.stdout) if x.startswith("needs embeddings"))
    assert line.startswith("needs embeddings → cloud-emb.api (preferred 2 of 2); passed over local-emb.api: "
                           "the docker runtime is unreachable (no Docker engine answers")
    # offline, loads + env set is enough: the preferred one
    lines = tree_lines(invoke("plan", "--offline", "-d", str(d), "rag.api").stdout)
    assert "needs embeddings → local-emb.api (preferred 1 of 2)" in lines


def test_no_usable_provider_lists_every_candidate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = _write(tmp_path / "rag", RAG)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    result = invoke("up", "-d", str(d), "rag.api")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[:4] == [
        f"error: {d}/rag.api.toml: b00t.requires.embeddings: rag.api needs 'embeddings' (protocol emb-v1), "
        "and no candidate is usable:",
        f"    local-emb.api: the docker runtime is unreachable (no Docker engine answers "
        f"(unix://{tmp_path}/no-docker.sock: No such file or directory))",
        "    cloud-emb.api: CLOUD_KEY is not set",
        "    choose one with --use embeddings=NAME, or fix one of them",
    ]


def test_two_services_on_one_host_port_is_exit_2_before_anything_starts(tmp_path: Path, state_dir: Path) -> None:
    d = _write(tmp_path / "ports", {
        "redis.docker": "[b00t]\nimage = 'redis:7'\ndocker_args = ['-p', '6379:6379']\n",
        "valkey.docker": "[b00t]\nimage = 'valkey/valkey:8'\nports = ['6379:6379']\n",
        "web.process": "[b00t]\ncommand = ['python3', '-m', 'http.server', '18080']\n"
                       "depends_on = ['redis.docker', 'valkey.docker']\n",
        "kv.stack": "[b00t]\nmembers = ['redis.docker', 'valkey.docker', 'web.process']\n",
    })
    want = (f"error: host port 6379/tcp is claimed by both redis.docker ({d}/redis.docker.toml: publishes "
            f"6379:6379/tcp) and valkey.docker ({d}/valkey.docker.toml: publishes 6379:6379/tcp)")
    for cmd in (["plan", "--offline"], ["up"], ["plan"]):
        result = invoke(*cmd, "-d", str(d), "kv")
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(want), result.stderr
    assert not state_dir.exists()  # up never got as far as the engine: nothing started, nothing recorded
    # validate says the same about the stack
    result = invoke("validate", str(d))
    assert result.exit_code == 2
    assert "host port 6379/tcp is claimed by both redis.docker" in result.stderr


def test_plan_notes_optional_members_and_stack_env_conflicts(tmp_path: Path) -> None:
    text = " ".join(invoke("plan", "--offline", "-d", str(SHAPES), "maybe.stack").stdout.split())
    assert (f"note: {SHAPES}/maybe.stack.toml: b00t.stack.components.ghost.datum: optional member 'ghost.cli' "
            "left out: no datum provides it") in text
    d = _write(tmp_path / "pg", {
        "pg.stack": "[b00t]\nmembers = ['db.docker', 'admin.process']\n"
                    "[env]\nPOSTGRES_PASSWORD = '${POSTGRES_PASSWORD:-devpassword}'\n",
        "db.docker": "[b00t]\nimage = 'postgres:16'\n[b00t.env]\nPOSTGRES_PASSWORD = 'password'\n",
        "admin.process": "[b00t]\ncommand = ['admin', '--password', '${POSTGRES_PASSWORD}']\n",
    })
    result = invoke("plan", "--offline", "-d", str(d), "pg")
    assert result.exit_code == 0, result.output
    lines = tree_lines(result.stdout)
    assert "command admin --password devpassword" in lines
    assert "POSTGRES_PASSWORD=devpassword (from pg.stack)" in lines
    assert_block(lines, ["pg.stack [group] #3", "members db.docker, admin.process",
                         "ready: ready when its dependencies are", "env", "POSTGRES_PASSWORD=devpassword"])
    assert (f"note: {d}/db.docker.toml: b00t.env.POSTGRES_PASSWORD: POSTGRES_PASSWORD='password' here, but "
            f"pg.stack sets POSTGRES_PASSWORD='devpassword' for its members ({d}/pg.stack.toml: "
            "env.POSTGRES_PASSWORD); db.docker uses its own value") in " ".join(result.stdout.split())
    notes = plan_json("--offline", "-d", str(d), "pg")["notes"]
    assert [(n["path"], n["key"]) for n in notes] == [(f"{d}/db.docker.toml", "b00t.env.POSTGRES_PASSWORD")]


def test_every_stack_of_the_shapes_folder_plans() -> None:
    for path in sorted(SHAPES.glob("*.stack.toml")):
        result = invoke("plan", "--offline", "-d", str(SHAPES), path.name.removesuffix(".toml"))
        assert result.exit_code == 0, (path.name, result.output)
