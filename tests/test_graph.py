"""Compiling datums into a DAG: order, waves, cycles, missing and duplicate datums, targets, readiness."""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from b00t_graph.capabilities import Resolver
from b00t_graph.errors import (
    AmbiguousTargetError,
    CapabilityError,
    CycleError,
    DatumError,
    EnvError,
    MissingDependencies,
    MissingDependencyError,
    PortConflictError,
    Problem,
)
from b00t_graph.graph import Graph, closure, compile_graph, config_hash, host_ports, placed_on, suggest
from b00t_graph.loader import Catalog, Source, load_catalog
from b00t_graph.model import Build, Datum, HealthCheck, McpLaunch, Need, Presence, Requirement, Swarm

Write = Callable[..., Path]


def mcp(*deps: str, env: str = "") -> str:
    return f"[b00t]\ndepends_on = {list(deps)!r}\n".replace("'", '"') + (f"[b00t.env]\n{env}\n" if env else "")


def proc(*deps: str, extra: str = "") -> str:
    return f"[b00t]\ncommand = 'true'\ndepends_on = {list(deps)!r}\n".replace("'", '"') + extra


def _graph(folder: Path | list[Path], *targets: str, environ: dict[str, str] | None = None) -> Graph:
    folders = folder if isinstance(folder, list) else [folder]
    cat = load_catalog([Source(f, "test") for f in folders])
    return compile_graph(cat, list(targets), environ=environ or {})


def _assert_topological(graph: Graph) -> None:
    seen: set[str] = set()
    for ident, node in graph.nodes.items():
        assert set(node.deps) <= seen, f"{ident} comes before one of its dependencies"
        seen.add(ident)


# --- order and waves --------------------------------------------------------------------------------


def test_topological_order_and_waves_of_a_diamond(write_datums: Write) -> None:
    d = write_datums({
        "db.process": proc(),
        "cache.process": proc(),
        "api.process": proc("db.process", "cache.process"),
        "worker.process": proc("db.process"),
        "web.process": proc("api.process", "worker.process"),
        "unrelated.process": proc(),
    })
    graph = _graph(d, "web")
    assert graph.targets == ("web.process",)
    assert set(graph.nodes) == {"db.process", "cache.process", "api.process", "worker.process", "web.process"}
    _assert_topological(graph)
    assert list(graph.nodes)[-1] == "web.process"
    waves = graph.waves()
    assert [sorted(w) for w in waves] == [["cache.process", "db.process"], ["api.process", "worker.process"],
                                          ["web.process"]]
    assert graph.deps()["api.process"] == ("db.process", "cache.process")
    assert sorted(graph.dependents()["db.process"]) == ["api.process", "worker.process"]
    assert graph.dependents()["web.process"] == []


def test_a_stack_depends_on_its_members(write_datums: Write) -> None:
    d = write_datums({
        "a.process": proc(),
        "b.process": proc("a.process"),
        "s.stack": "[b00t]\nmembers = ['b.process', 'a.process']\ndepends_on = ['x.mcp']\n",
        "x.mcp": mcp(),
    })
    graph = _graph(d, "s.stack")
    assert graph.nodes["s.stack"].deps == ("x.mcp", "b.process", "a.process")
    _assert_topological(graph)
    assert graph.waves()[-1] == ["s.stack"]


def test_several_targets_share_nodes_and_duplicates_collapse(write_datums: Write) -> None:
    d = write_datums({"a.process": proc(), "b.process": proc("a.process"), "c.process": proc("a.process")})
    graph = _graph(d, "b", "c.process", "b.process")
    assert graph.targets == ("b.process", "c.process")
    assert list(graph.nodes) == ["a.process", "b.process", "c.process"]


def test_empty_graph_has_no_waves() -> None:
    assert Graph(nodes={}, targets=()).waves() == []


# --- targets ----------------------------------------------------------------------------------------


def test_bare_name_target_when_unambiguous(write_datums: Write) -> None:
    d = write_datums({"grok.stack": "[b00t]\nmembers = ['guru.mcp']\n", "guru.mcp": mcp()})
    assert _graph(d, "grok").targets == ("grok.stack",)


def test_ambiguous_bare_name(write_datums: Write) -> None:
    d = write_datums({"grok.stack": "[b00t]\nmembers = ['grok.mcp']\n", "grok.mcp": mcp()})
    with pytest.raises(AmbiguousTargetError) as info:
        _graph(d, "grok")
    assert str(info.value) == "target 'grok' is ambiguous: grok.mcp, grok.stack"
    assert info.value.exit_code == 2


def test_missing_target_suggests(write_datums: Write) -> None:
    d = write_datums({"grok.stack": "[b00t]\nmembers = ['guru.mcp']\n", "guru.mcp": mcp()})
    with pytest.raises(MissingDependencyError) as info:
        _graph(d, "grk.stack")
    assert str(info.value) == "target 'grk.stack', which no datum provides (did you mean 'grok.stack'?)"
    assert info.value.wanted_by is None


# --- cycles, missing and broken dependencies ----------------------------------------------------------


def test_cycle_is_printed_as_the_loop(write_datums: Write) -> None:
    d = write_datums({"a.process": proc("b.mcp"), "b.mcp": mcp("a.process")})
    with pytest.raises(CycleError) as info:
        _graph(d, "a.process")
    assert str(info.value) == "dependency cycle: a.process → b.mcp → a.process"
    assert info.value.cycle == ["a.process", "b.mcp", "a.process"]
    assert info.value.exit_code == 2


def test_cycle_reached_through_a_tail_prints_only_the_loop(write_datums: Write) -> None:
    d = write_datums({
        "top.stack": "[b00t]\nmembers = ['entry.mcp']\n",
        "entry.mcp": mcp("x.mcp"),
        "x.mcp": mcp("y.mcp"),
        "y.mcp": mcp("z.mcp"),
        "z.mcp": mcp("x.mcp"),
    })
    with pytest.raises(CycleError) as info:
        _graph(d, "top")
    assert str(info.value) == "dependency cycle: x.mcp → y.mcp → z.mcp → x.mcp"


def test_missing_dependency_names_who_asked_and_suggests(write_datums: Write) -> None:
    d = write_datums({
        "app.process": proc("qdrant.docker"),
        "qdrant.process": proc(),
        "other.process": proc(),
    })
    with pytest.raises(MissingDependencyError) as info:
        _graph(d, "app")
    err = info.value
    assert (err.missing, err.wanted_by, err.suggestions) == ("qdrant.docker", "app.process", ["qdrant.process"])
    assert str(err) == (f"{d / 'app.process.toml'}: b00t.depends_on[0]: app.process depends on 'qdrant.docker', "
                        "which no datum provides (did you mean 'qdrant.process'?)")


def test_missing_dependency_without_a_close_name(write_datums: Write) -> None:
    d = write_datums({"app.process": proc("zzz.mcp")})
    with pytest.raises(MissingDependencyError) as info:
        _graph(d, "app")
    assert str(info.value) == (f"{d / 'app.process.toml'}: b00t.depends_on[0]: "
                               "app.process depends on 'zzz.mcp', which no datum provides")


def test_missing_stack_member_names_the_stack(write_datums: Write) -> None:
    d = write_datums({"s.stack": "[b00t]\nmembers = ['a.mcp', 'b.mcp']\n", "a.mcp": mcp()})
    with pytest.raises(MissingDependencyError, match=re.escape(
            "s.stack.toml: b00t.members[1]: s.stack depends on 'b.mcp', which no datum provides")):
        _graph(d, "s")


def test_a_broken_dependency_reports_its_own_problems(write_datums: Write) -> None:
    d = write_datums({"app.process": proc("db.process"),
                      "db.process": "[b00t]\ncommand = 'x'\n[b00t.health_check]\ntimeout_ms = 'abc'\n",
                      "elsewhere.mcp": "[b00t\n"})
    with pytest.raises(DatumError) as info:
        _graph(d, "app")
    assert str(info.value) == (f"{d / 'db.process.toml'}: b00t.health_check.timeout_ms: "
                               "expected an integer, got string 'abc'")

    # a broken file nobody needs does not stop other requests
    ok = write_datums({"a.mcp": mcp(), "broken.mcp": "[b00t\n"})
    assert list(_graph(ok, "a").nodes) == ["a.mcp"]


def test_duplicate_identity_across_folders_is_an_error_when_needed(write_datums: Write) -> None:
    one = write_datums({"db.mcp": mcp(env='URL = "one"'), "app.mcp": mcp("db.mcp")})
    two = write_datums({"db.mcp": mcp(env='URL = "two"')})
    with pytest.raises(DatumError) as info:
        _graph([one, two], "app")
    assert str(info.value) == f"{two / 'db.mcp.toml'}: duplicate datum 'db.mcp', also in {one / 'db.mcp.toml'}"
    assert info.value.exit_code == 2


def test_closure_is_topological_and_only_reachable(write_datums: Write) -> None:
    d = write_datums({"a.mcp": mcp(), "b.mcp": mcp("a.mcp"), "c.mcp": mcp("b.mcp", "a.mcp"), "z.mcp": mcp()})
    cat = load_catalog([Source(d, "t")])
    assert closure(cat, ["c.mcp"]) == ["a.mcp", "b.mcp", "c.mcp"]
    assert closure(cat, ["b.mcp", "z.mcp"]) == ["a.mcp", "b.mcp", "z.mcp"]


# --- env errors found at compile time ---------------------------------------------------------------


def test_env_errors_of_every_node_are_collected_before_anything_starts(write_datums: Write) -> None:
    d = write_datums({
        "a.mcp": mcp(env='X = "${NOPE_A}"'),
        "b.mcp": mcp("a.mcp", env='Y = "${NOPE_B:?set NOPE_B to the token}"'),
    })
    with pytest.raises(EnvError) as info:
        _graph(d, "b")
    assert [str(p) for p in info.value.problems] == [
        f"{d / 'a.mcp.toml'}: b00t.env.X: ${{NOPE_A}} is not set (not exported by any dependency, "
        "not in the environment)",
        f"{d / 'b.mcp.toml'}: b00t.env.Y: ${{NOPE_B}}: set NOPE_B to the token",
    ]
    assert info.value.exit_code == 2


def test_top_level_env_problems_name_the_env_table(write_datums: Write) -> None:
    d = write_datums({"t.cli": "[b00t]\n[env]\nX = '${NOPE}'\n"})
    with pytest.raises(EnvError) as info:
        _graph(d, "t")
    assert [p.key for p in info.value.problems] == ["env.X"]


# --- passive nodes and readiness --------------------------------------------------------------------


def test_passive_node_exports_env_and_has_no_readiness(write_datums: Write) -> None:
    d = write_datums({
        "gh.cli": "[b00t]\nhint = 'GitHub CLI'\ninstall = 'apt install gh'\n[[b00t.usage]]\ncommand = 'gh'\n"
                  "[env]\nGH_HOST = 'github.com'\n",
        "bot.process": proc("gh.cli", extra="[b00t.env]\nAPI = 'https://api.${GH_HOST}'\n"),
    })
    graph = _graph(d, "bot")
    gh = graph.nodes["gh.cli"]
    assert gh.spec.passive and gh.health is None
    assert gh.exports == {"GH_HOST": "github.com"}
    assert graph.nodes["bot.process"].env == {"GH_HOST": "github.com", "API": "https://api.github.com"}


def test_tcp_port_requirement_is_the_readiness_check_without_health_check(write_datums: Write) -> None:
    d = write_datums({
        "r.process": proc(extra="[[b00t.requirements]]\nkind = 'binary'\nname = 'redis-server'\n"
                                "[[b00t.requirements]]\nkind = 'tcp_port'\nhost = 'localhost'\nport = 6379\n"
                                "[[b00t.requirements]]\nkind = 'tcp_port'\nport = 6380\n"),
        "dflt.process": proc(extra="[[b00t.requirements]]\nkind = 'tcp_port'\nport = 7000\n"),
        "hc.process": proc(extra="[b00t.health_check]\nhttp_url = 'http://127.0.0.1:1/'\n"
                                 "[[b00t.requirements]]\nkind = 'tcp_port'\nport = 6379\n"),
        "none.process": proc(),
    })
    graph = _graph(d, "r", "dflt", "hc", "none")
    assert graph.nodes["r.process"].health == HealthCheck(tcp="localhost:6379")  # the first tcp_port
    assert graph.nodes["dflt.process"].health == HealthCheck(tcp="127.0.0.1:7000")
    hc = graph.nodes["hc.process"].health
    assert hc is not None and hc.http_url == "http://127.0.0.1:1/" and hc.tcp is None
    assert graph.nodes["none.process"].health is None
    assert graph.nodes["r.process"].spec.health_check is None  # the datum as written is unchanged


# --- config hash ------------------------------------------------------------------------------------


def test_config_hash_changes_with_what_a_runtime_sees(write_datums: Write) -> None:
    base = "[b00t]\ncommand = 'serve'\nargs = ['${PORT:-80}']\n"
    d = write_datums({"s.process": base})
    h1 = _graph(d, "s").nodes["s.process"].config_hash
    assert _graph(d, "s").nodes["s.process"].config_hash == h1, "stable across compiles"
    assert _graph(d, "s", environ={"PORT": "81"}).nodes["s.process"].config_hash != h1
    write_datums({"s.process": base + "hint = 'hints do not restart anything'\n"}, d)
    assert _graph(d, "s").nodes["s.process"].config_hash == h1
    write_datums({"s.process": base + "[b00t.env]\nX = '1'\n"}, d)
    assert _graph(d, "s").nodes["s.process"].config_hash != h1


# --- scale ------------------------------------------------------------------------------------------


def test_a_thousand_generated_datums_load_and_compile_fast(tmp_path: Path) -> None:
    rng = random.Random(1000)
    n = 1000
    for i in range(n):
        deps = sorted({f"svc{rng.randrange(i)}.process" for _ in range(min(i, 3))})
        lines = [
            "[b00t]", f'name = "svc{i}"', 'type = "process"', f"depends_on = {deps!r}".replace("'", '"'),
            'command = "python3"', f'args = ["-m", "http.server", "${{SVC{i}_PORT}}"]',
            "[b00t.health_check]", f'http_url = "http://127.0.0.1:${{SVC{i}_PORT}}/"',
            "[b00t.env]", f'SVC{i}_PORT = "{20000 + i}"',
            f'SVC{i}_URL = "http://127.0.0.1:${{SVC{i}_PORT}}"',
        ]
        (tmp_path / f"svc{i}.process.toml").write_text("\n".join(lines) + "\n")
    members = ", ".join(f'"svc{i}.process"' for i in range(n))
    (tmp_path / "all.stack.toml").write_text(f"[b00t]\nmembers = [{members}]\n")

    t0 = time.process_time()  # CPU time: other processes on a loaded machine do not count against us
    cat = load_catalog([Source(tmp_path, "bench")])
    graph = compile_graph(cat, ["all"], environ={})
    elapsed = time.process_time() - t0

    assert cat.problems == []
    assert len(graph.nodes) == n + 1
    _assert_topological(graph)
    assert graph.nodes["svc999.process"].spec.args == ("-m", "http.server", "20999")
    assert elapsed < 3.0, f"1,000 datums took {elapsed:.2f}s of CPU to load and compile"


def test_a_failed_export_does_not_cascade_into_its_dependents(write_datums: Write) -> None:
    d = write_datums({
        "a.mcp": mcp(env='X = "${NOPE_A}"'),
        "b.mcp": mcp("a.mcp", env='Y = "${X}/path"'),
    })
    with pytest.raises(EnvError) as info:
        _graph(d, "b")
    assert [(Path(p.path).name, p.key) for p in info.value.problems] == [("a.mcp.toml", "b00t.env.X")]


# --- built in code: stacks, optional members, env schema, host ports, missing dependencies ------------


def D(ident: str, **kw: Any) -> Datum:
    name, _, typ = ident.rpartition(".")
    return Datum(name=name, type=typ, path=f"/datums/{ident}.toml", **kw)


def cat_of(*datums: Datum, broken: dict[str, list[Problem]] | None = None) -> Catalog:
    return Catalog(sources=[], datums={d.id: d for d in datums}, broken=broken or {})


def pg_stack(**member_env: str) -> Catalog:
    return cat_of(
        D("pg.stack", members=("postgres.docker", "admin.mcp"), env_table="env",
          env={"POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:-devpassword}", "POSTGRES_USER": "postgres",
               "ADMIN_URL": "${ADMIN_URL}"}),
        D("postgres.docker", image="postgres:16", env=dict(member_env)),
        D("admin.mcp", env={"ADMIN_URL": "http://localhost:5050", "DSN": "postgres://${POSTGRES_USER}@db"}),
    )


def test_a_stacks_env_reaches_its_members() -> None:
    graph = compile_graph(pg_stack(), ["pg.stack"], environ={})
    pg, admin = graph.nodes["postgres.docker"], graph.nodes["admin.mcp"]
    # set in the members' environment, not exported by them
    assert pg.env == {"POSTGRES_PASSWORD": "devpassword", "POSTGRES_USER": "postgres"}
    assert pg.exports == {}
    # usable in members' ${VAR}
    assert admin.exports["DSN"] == "postgres://postgres@db"
    # a rename of a member's export (ADMIN_URL = "${ADMIN_URL}") cannot reach the member it comes from
    assert admin.exports["ADMIN_URL"] == "http://localhost:5050"
    assert graph.nodes["pg.stack"].exports["ADMIN_URL"] == "http://localhost:5050"
    assert graph.notes == ()
    # the shell overrides the stack's default, as the stack says
    graph = compile_graph(pg_stack(), ["pg.stack"], environ={"POSTGRES_PASSWORD": "s3cret"})
    assert graph.nodes["postgres.docker"].env["POSTGRES_PASSWORD"] == "s3cret"
    # and the member alone is not affected by a stack that is not in the request
    assert compile_graph(pg_stack(), ["postgres.docker"], environ={}).nodes["postgres.docker"].env == {}


def test_a_member_that_sets_another_literal_keeps_it_and_plan_says_so() -> None:
    graph = compile_graph(pg_stack(POSTGRES_PASSWORD="password"), ["pg.stack"], environ={})
    assert graph.nodes["postgres.docker"].env["POSTGRES_PASSWORD"] == "password"
    assert [str(n) for n in graph.notes] == [
        "/datums/postgres.docker.toml: b00t.env.POSTGRES_PASSWORD: POSTGRES_PASSWORD='password' here, but pg.stack "
        "sets POSTGRES_PASSWORD='devpassword' for its members (/datums/pg.stack.toml: env.POSTGRES_PASSWORD); "
        "postgres.docker uses its own value"]
    # the same value, or a reference: no note
    assert compile_graph(pg_stack(POSTGRES_PASSWORD="devpassword"), ["pg.stack"], environ={}).notes == ()
    assert compile_graph(pg_stack(POSTGRES_PASSWORD="${X:-y}"), ["pg.stack"], environ={}).notes == ()


def test_nested_stacks_pass_env_down_and_the_nearest_wins() -> None:
    cat = cat_of(D("outer.stack", members=("inner.stack",), env={"A": "outer", "B": "outer"}),
                 D("inner.stack", members=("svc.mcp",), env={"B": "inner"}),
                 D("svc.mcp", env={"C": "${A}-${B}"}))
    graph = compile_graph(cat, ["outer.stack"], environ={})
    assert graph.nodes["svc.mcp"].exports == {"C": "outer-inner"}


def test_a_stack_without_members_is_ready_when_its_dependencies_are() -> None:
    cat = cat_of(D("all.stack", depends_on=("a.stack", "b.mcp")), D("a.stack", members=("b.mcp",)), D("b.mcp"))
    graph = compile_graph(cat, ["all.stack"], environ={})
    assert graph.nodes["all.stack"].deps == ("a.stack", "b.mcp")
    assert list(graph.nodes) == ["b.mcp", "a.stack", "all.stack"]


def test_optional_members_missing_are_left_out_with_a_note_present_are_soft() -> None:
    broken = {"gone.mcp": [Problem("/datums/gone.mcp.toml", "b00t.env", "expected a table")]}
    cat = cat_of(D("s.stack", members=("a.mcp",), optional=("b.mcp", "nowhere.mcp", "gone.mcp")),
                 D("a.mcp"), D("b.mcp"), D("nowhere2.mcp"), broken=broken)
    graph = compile_graph(cat, ["s.stack"], environ={})
    node = graph.nodes["s.stack"]
    assert node.deps == ("a.mcp", "b.mcp")
    assert node.soft == ("b.mcp",)
    assert graph.soft() == {"s.stack": ("b.mcp",)}
    assert graph.required() == {"s.stack", "a.mcp"}
    assert [str(n) for n in graph.notes] == [
        "/datums/s.stack.toml: b00t.stack.components: optional member 'nowhere.mcp' left out: no datum provides it "
        "(did you mean 'nowhere2.mcp'?)",
        "/datums/s.stack.toml: b00t.stack.components: optional member 'gone.mcp' left out: it does not load "
        "(/datums/gone.mcp.toml: b00t.env: expected a table)",
    ]


def test_required_env_missing_is_an_error_naming_the_datum_and_file() -> None:
    cat = cat_of(D("llm.ai", env_table="env", env_required=("OPENAI_API_KEY", "BASE")),
                 D("app.mcp", depends_on=("llm.ai", "base.mcp")), D("base.mcp", env={"BASE": "b"}))
    with pytest.raises(EnvError) as info:
        compile_graph(cat, ["app.mcp"], environ={})
    # BASE is exported by base.mcp, but llm.ai does not depend on it: missing there too
    why = "must be set for llm.ai: set it in the environment or have a dependency export it"
    assert [str(p) for p in info.value.problems] == [f"/datums/llm.ai.toml: env.required: OPENAI_API_KEY {why}",
                                                     f"/datums/llm.ai.toml: env.required: BASE {why}"]
    assert info.value.exit_code == 2
    assert compile_graph(cat, ["app.mcp"], environ={"OPENAI_API_KEY": "k", "BASE": "x"}).nodes
    ok = cat_of(D("llm.ai", depends_on=("base.mcp",), env_required=("BASE",)), D("base.mcp", env={"BASE": "b"}))
    assert compile_graph(ok, ["llm.ai"], environ={}).nodes["llm.ai"].env == {"BASE": "b"}


def test_env_defaults_are_exported_unless_set_elsewhere() -> None:
    cat = cat_of(D("llm.ai", depends_on=("dep.mcp",),
                   env_defaults={"MODEL": "small", "OWN": "default", "FROM_DEP": "default", "SHELL": "default",
                                 "URL": "http://${HOST:-localhost}"},
                   env={"OWN": "own", "USES": "${MODEL}"}),
                 D("dep.mcp", env={"FROM_DEP": "dep"}))
    node = compile_graph(cat, ["llm.ai"], environ={"SHELL": "from-shell"}).nodes["llm.ai"]
    assert node.exports == {"MODEL": "small", "SHELL": "from-shell", "URL": "http://localhost",
                            "OWN": "own", "USES": "small"}
    assert node.env["FROM_DEP"] == "dep"


def _redis(name: str, *args: str, **kw: Any) -> Datum:
    return D(f"{name}.docker", image="redis:7", docker_args=args, **kw)


def test_two_services_publishing_one_host_port_is_bad_input_naming_both() -> None:
    cat = cat_of(D("s.stack", members=("redis.docker", "valkey.docker")),
                 _redis("redis", "-p", "6379:6379"), _redis("valkey", "--publish=6379:6379"))
    with pytest.raises(PortConflictError) as info:
        compile_graph(cat, ["s.stack"], environ={})
    assert info.value.exit_code == 2
    assert str(info.value) == (
        "host port 6379/tcp is claimed by both redis.docker (/datums/redis.docker.toml: publishes 6379:6379/tcp) "
        "and valkey.docker (/datums/valkey.docker.toml: publishes 6379:6379/tcp); change one of the ports, "
        "or leave one of them out of the graph")


@pytest.mark.parametrize(("a", "b"), [
    (("-p", "6379:6379"), ("-p", "6380:6379")),                   # different host ports
    (("-p", "127.0.0.1:6379:6379"), ("-p", "127.0.0.2:6379:6379")),  # different addresses
    (("-p", "6379:6379/udp"), ("-p", "6379:6379")),               # different protocols
    (("-p", "6379"), ("-p", "6379")),                             # any free host port
])
def test_ports_that_do_not_clash(a: tuple[str, ...], b: tuple[str, ...]) -> None:
    cat = cat_of(D("s.stack", members=("redis.docker", "valkey.docker")), _redis("redis", *a), _redis("valkey", *b))
    assert len(compile_graph(cat, ["s.stack"], environ={}).nodes) == 3


def test_ports_key_wildcard_address_and_process_probes_clash() -> None:
    cat = cat_of(D("s.stack", members=("redis.docker", "valkey.docker")),
                 _redis("redis", ports=("6379:6379",)), _redis("valkey", "-p", "127.0.0.1:6379:6379"))
    with pytest.raises(PortConflictError, match=r"redis\.docker .* and valkey\.docker"):
        compile_graph(cat, ["s.stack"], environ={})
    cat = cat_of(D("s.stack", members=("api.process", "web.process")),
                 D("api.process", command=("api",), health_check=HealthCheck(tcp="127.0.0.1:8080")),
                 D("web.process", command=("web",), health_check=HealthCheck(http_url="http://localhost:8080/")))
    with pytest.raises(PortConflictError, match=re.escape(
            "api.process (/datums/api.process.toml: serves 127.0.0.1:8080 (its tcp probe)) and web.process "
            "(/datums/web.process.toml: serves http://localhost:8080/ (its http probe))")):
        compile_graph(cat, ["s.stack"], environ={})
    # one node claiming a port twice (publishes it and probes it) is no conflict
    one = cat_of(_redis("redis", "-p", "6379:6379", "-p", "0.0.0.0:6379:6379/udp",
                        health_check=HealthCheck(tcp="127.0.0.1:6379")))
    assert list(compile_graph(one, ["redis.docker"], environ={}).nodes) == ["redis.docker"]


def test_every_missing_dependency_at_once_with_file_and_key() -> None:
    cat = cat_of(D("app.mcp", depends_on=("db.mcp", "node", "qdrnt.docker")),
                 D("s.stack", members=("app.mcp", "gone.mcp")),
                 D("node.cli"), D("qdrant.docker", image="q"))
    with pytest.raises(MissingDependencyError) as info:
        compile_graph(cat, ["s.stack"], environ={})
    assert str(info.value).splitlines() == [
        "4 missing dependencies:",
        "  /datums/s.stack.toml: b00t.members[1]: s.stack depends on 'gone.mcp', which no datum provides",
        "  /datums/app.mcp.toml: b00t.depends_on[0]: app.mcp depends on 'db.mcp', which no datum provides",
        "  /datums/app.mcp.toml: b00t.depends_on[1]: app.mcp depends on 'node', written without its type "
        "(did you mean 'node.cli'?)",
        "  /datums/app.mcp.toml: b00t.depends_on[2]: app.mcp depends on 'qdrnt.docker', which no datum provides "
        "(did you mean 'qdrant.docker'?)",
    ]
    assert info.value.exit_code == 2


def test_untyped_and_requires_list_entries_are_reported_where_written(write_datums: Write) -> None:
    d = write_datums({
        "node.cli": "[b00t]\n",
        "jq.cli": "[b00t]\n",
        "app.mcp": "[b00t]\ndepends_on = ['node']\nrequires = ['jq.cli', 'yq.cli']\n",
        "s.stack": "[b00t.stack.components]\napp = { datum = 'app.mcp', required = true }\n"
                   "ui = { datum = 'ui.mcp', required = true }\n",
        "t.stack": "[b00t]\n[stack]\nmembers = ['nothing']\n",
    })
    with pytest.raises(MissingDependencyError) as info:
        _graph(d, "s.stack", "t.stack")
    assert [line.removeprefix(f"  {d}/") for line in str(info.value).splitlines()] == [
        "4 missing dependencies:",
        "s.stack.toml: b00t.stack.components.ui.datum: s.stack depends on 'ui.mcp', which no datum provides",
        "app.mcp.toml: b00t.depends_on[0]: app.mcp depends on 'node', written without its type "
        "(did you mean 'node.cli'?)",
        "app.mcp.toml: b00t.requires[1]: app.mcp depends on 'yq.cli', which no datum provides",
        "t.stack.toml: stack.members[0]: t.stack depends on 'nothing', which no datum provides "
        "(write name.type, e.g. qdrant.docker)",
    ]


# --- edges found by mutation testing --------------------------------------------------------------


def test_closure_lists_a_target_reached_earlier_once_and_goes_on(write_datums: Write) -> None:
    d = write_datums({"a.mcp": mcp(), "b.mcp": mcp("a.mcp"), "z.mcp": mcp()})
    cat = load_catalog([Source(d, "t")])
    assert closure(cat, ["b.mcp", "a.mcp", "z.mcp"]) == ["a.mcp", "b.mcp", "z.mcp"]


DOCKER_REFS = """
[b00t]
name = "web"
type = "docker"
image = "${IMG}"
docker_args = ["--init", "${DA}"]
ports = ["${P}"]
volumes = ["${V}"]
network = "${N}"
[b00t.health_check]
http_url = "${U}"
tcp = "${T}"
exec = ["test", "${E}"]
[b00t.env]
MODE = "${M}"
"""


def test_every_runtime_string_of_a_docker_datum_is_substituted(write_datums: Write) -> None:
    d = write_datums({"web.docker": DOCKER_REFS})
    environ = {"IMG": "nginx:1", "DA": "--read-only", "P": "8080:80", "V": "data:/data", "N": "backend",
               "U": "http://127.0.0.1:8080/", "T": "127.0.0.1:8080", "E": "/ready", "M": "prod"}
    node = _graph(d, "web", environ=environ).nodes["web.docker"]
    spec = node.spec
    assert (spec.image, spec.docker_args, spec.ports, spec.volumes, spec.network) == \
        ("nginx:1", ("--init", "--read-only"), ("8080:80",), ("data:/data",), "backend")
    assert spec.env == {"MODE": "prod"} == node.exports
    assert spec.health_check == HealthCheck(http_url="http://127.0.0.1:8080/", tcp="127.0.0.1:8080",
                                            exec=["test", "/ready"])
    assert node.health == spec.health_check


def test_an_unresolved_reference_names_the_key_it_is_in(write_datums: Write) -> None:
    d = write_datums({"web.docker": DOCKER_REFS})
    with pytest.raises(EnvError) as info:
        _graph(d, "web")
    assert sorted(p.key for p in info.value.problems) == sorted([
        "b00t.env.MODE", "b00t.image", "b00t.docker_args[1]", "b00t.ports[0]", "b00t.volumes[0]", "b00t.network",
        "b00t.health_check.http_url", "b00t.health_check.tcp", "b00t.health_check.exec[1]"])


def test_only_a_tcp_port_requirement_becomes_a_readiness_check(write_datums: Write) -> None:
    d = write_datums({"r.process": proc(extra="[[b00t.requirements]]\nkind = 'http'\nport = 8080\n")})
    assert _graph(d, "r").nodes["r.process"].health is None


def test_an_unresolved_working_directory_is_named_by_its_key(write_datums: Write) -> None:
    d = write_datums({"w.process": proc(extra="cwd = '${WORKDIR}/app'\n")})
    with pytest.raises(EnvError) as info:
        _graph(d, "w")
    assert [p.key for p in info.value.problems] == ["b00t.cwd"]


def test_config_hash_changes_with_resource_limits(write_datums: Write) -> None:
    base = "[b00t]\nimage = 'redis:7'\n[b00t.resources]\nmemory_limit = '{}'\n"
    d = write_datums({"cache.docker": base.format("1g")})
    h1 = _graph(d, "cache").nodes["cache.docker"].config_hash
    write_datums({"cache.docker": base.format("2g")}, d)
    assert _graph(d, "cache").nodes["cache.docker"].config_hash != h1


def test_required_walks_every_dependency_past_one_already_seen() -> None:
    # t needs x, c and b; b needs c too: c is met a second time before x
    cat = cat_of(D("t.stack", depends_on=("x.mcp", "c.mcp", "b.mcp")), D("x.mcp"), D("c.mcp"),
                 D("b.mcp", depends_on=("c.mcp",)))
    graph = compile_graph(cat, ["t.stack"], environ={})
    assert graph.required() == {"t.stack", "x.mcp", "c.mcp", "b.mcp"}


def test_closure_with_a_resolver_takes_the_chosen_providers_in() -> None:
    cat = cat_of(D("app.mcp", needs=(Need("db", "vector-db"),)), D("qdrant.mcp", provides="vector-db"))
    assert closure(cat, ["app.mcp"], Resolver(cat, {})) == ["qdrant.mcp", "app.mcp"]


def test_suggest_typed_names_for_an_untyped_one() -> None:
    cat = cat_of(*(D(f"node.{t}") for t in ("mcp", "cli", "api", "docker")), D("nod.cli"))
    assert suggest(cat, "node") == ["node.api", "node.cli", "node.docker"]  # the first three, sorted
    assert suggest(cat, "nod.cl") == cat.suggest("nod.cl")  # a typed name: close names only
    # the type is what follows the last dot: node.x.cli is the datum "node.x", not a "node"
    cat = cat_of(D("node.mcp"), D("node.cli"), D("node.x.cli"), D("nodes.mcp"))
    assert suggest(cat, "node") == ["node.cli", "node.mcp"]


@pytest.mark.parametrize("first, second", [("localhost", "127.0.0.1"), ("127.0.0.1", "localhost")])
def test_localhost_and_127_0_0_1_are_one_address(first: str, second: str) -> None:
    cat = cat_of(D("s.stack", members=("redis.docker", "valkey.docker")),
                 _redis("redis", "-p", f"{first}:6379:6379"), _redis("valkey", "-p", f"{second}:6379:6379"))
    with pytest.raises(PortConflictError, match=r"host port 6379/tcp is claimed by both"):
        compile_graph(cat, ["s.stack"], environ={})


def test_a_rename_of_an_export_of_a_members_dependency_is_no_shared_env() -> None:
    # X comes from b.mcp, which the stack reaches only through its member a.mcp
    cat = cat_of(D("s.stack", members=("a.mcp",), env={"Y": "${X}"}),
                 D("a.mcp", depends_on=("b.mcp",)), D("b.mcp", env={"X": "from-b"}))
    graph = compile_graph(cat, ["s.stack"], environ={"X": "from-the-shell"})
    assert "Y" not in graph.nodes["a.mcp"].env
    assert graph.nodes["s.stack"].exports["Y"] == "from-b"


def test_ports_published_on_the_host_network_claim_nothing() -> None:
    cat = cat_of(D("s.stack", members=("redis.docker", "valkey.docker")),
                 _redis("redis", "--network", "host", "-p", "6379:6379"), _redis("valkey", "-p", "6379:6379"))
    assert len(compile_graph(cat, ["s.stack"], environ={}).nodes) == 3


def test_a_stack_needed_by_a_datum_still_sets_its_members_env() -> None:
    cat = cat_of(D("app.mcp", depends_on=("s.stack",)), D("s.stack", members=("a.mcp",), env={"P": "v"}), D("a.mcp"))
    assert compile_graph(cat, ["app.mcp"], environ={}).nodes["a.mcp"].env == {"P": "v"}


def test_a_stacks_entry_reads_its_earlier_entries_and_its_parent_stacks() -> None:
    cat = cat_of(D("outer.stack", members=("inner.stack",), env={"X": "x"}),
                 D("inner.stack", members=("a.mcp",), env={"A": "1", "B": "${A}2", "Y": "${X}-y"}), D("a.mcp"))
    env = compile_graph(cat, ["outer.stack"], environ={}).nodes["a.mcp"].env
    assert env == {"X": "x", "A": "1", "B": "12", "Y": "x-y"}


def test_a_build_is_substituted_field_by_field() -> None:
    build = Build(context="${DIR}/ctx", file="${F}.Dockerfile", args={"V": "${VER}"})
    env = {"DIR": "/src", "F": "prod", "VER": "1.2"}
    cat = cat_of(D("web.docker", image="web:1", build=build))
    got = compile_graph(cat, ["web.docker"], environ=env).nodes["web.docker"].spec.build
    assert got == Build(context="/src/ctx", file="prod.Dockerfile", args={"V": "1.2"})
    for gone, key in (("DIR", "b00t.docker.build.context"), ("F", "b00t.docker.build.file"),
                      ("VER", "b00t.docker.build.args.V")):
        with pytest.raises(EnvError, match=re.escape(f"web.docker.toml: {key}: ${{{gone}}} is not set")):
            compile_graph(cat, ["web.docker"], environ={k: v for k, v in env.items() if k != gone})


def test_a_stack_entry_after_a_rename_still_reaches_the_members() -> None:
    cat = cat_of(D("s.stack", members=("a.mcp",), env={"R": "${X}", "P": "v"}), D("a.mcp", env={"X": "x"}))
    assert compile_graph(cat, ["s.stack"], environ={}).nodes["a.mcp"].env == {"X": "x", "P": "v"}


def test_config_hash_covers_the_dialect_fields_and_keeps_old_hashes() -> None:
    base = D("web.docker", image="web:1")
    h = config_hash(base, {})
    for change in ({"kind": "job"}, {"container_name": "web1"}, {"restart": "always"},
                   {"build": Build(context=".")}, {"run_env": {"A": "1"}}):
        assert config_hash(attrs.evolve(base, **change), {}) != h, change
    # a datum that sets none of them hashes as before they existed
    old: dict[str, Any] = {"type": "docker", "image": "web:1", "docker_args": base.docker_args, "command": base.command,
           "args": base.args, "cwd": base.cwd, "ports": base.ports, "volumes": base.volumes, "network": base.network,
           "resources": None, "env": []}
    assert h == hashlib.sha256(json.dumps(old, sort_keys=True, default=list).encode()).hexdigest()[:16]


def test_a_member_literal_is_noted_after_entries_it_does_not_set() -> None:
    cat = cat_of(D("s.stack", members=("a.mcp",), env={"A": "1", "B": "2"}), D("a.mcp", env={"B": "3"}))
    notes = [str(n) for n in compile_graph(cat, ["s.stack"], environ={}).notes]
    assert len(notes) == 1 and "B='3' here, but s.stack sets B='2'" in notes[0]


def test_the_dialect_fields_are_substituted() -> None:
    datum = D("srv.mcp", presence=Presence(command=("${BIN}", "--version")),
              mcp=(McpLaunch("stdio", command="${BIN}", args=("--port", "${PORT}"), env={"K": "${PORT}"}),
                   McpLaunch("httpstream", url="http://localhost:${PORT}/mcp")),
              run_env={"R": "${PORT}"}, container_name="srv-${PORT}")
    spec = compile_graph(cat_of(datum), ["srv.mcp"], environ={"BIN": "srv", "PORT": "81"}).nodes["srv.mcp"].spec
    assert spec.presence is not None and spec.presence.command == ("srv", "--version")
    assert [(m.command, m.args, m.env, m.url) for m in spec.mcp] == [
        ("srv", ("--port", "81"), {"K": "81"}, None), (None, (), {}, "http://localhost:81/mcp")]
    assert (spec.run_env, spec.container_name) == ({"R": "81"}, "srv-81")


def test_an_optional_member_left_out_is_noted_with_close_names_or_without() -> None:
    cat = cat_of(D("s.stack", optional=("ghost.cli", "xyzzy.cli")), D("ghst.cli"), D("ghosts.cli"))
    assert [str(n) for n in compile_graph(cat, ["s.stack"], environ={}).notes] == [
        "/datums/s.stack.toml: b00t.stack.components: optional member 'ghost.cli' left out: no datum provides it "
        "(did you mean 'ghosts.cli', 'ghst.cli'?)",
        "/datums/s.stack.toml: b00t.stack.components: optional member 'xyzzy.cli' left out: no datum provides it"]


def test_every_unfilled_need_of_a_datum_is_reported() -> None:
    cat = cat_of(D("app.mcp", needs=(Need("db", "vector-db"), Need("llm", "llm"))))
    with pytest.raises(CapabilityError) as info:
        compile_graph(cat, ["app.mcp"], environ={})
    assert len(info.value.messages) == 2
    assert "db" in info.value.messages[0] and "llm" in info.value.messages[1]


def test_an_optional_member_chosen_as_a_provider_is_needed() -> None:
    cat = cat_of(D("s.stack", optional=("qdrant.mcp",), needs=(Need("db", "vector-db"),)),
                 D("qdrant.mcp", provides="vector-db"))
    graph = compile_graph(cat, ["s.stack"], environ={})
    assert graph.nodes["s.stack"].deps == ("qdrant.mcp",) and graph.nodes["s.stack"].soft == ()
    assert graph.required() == {"s.stack", "qdrant.mcp"}


def test_an_unresolved_reference_in_a_dialect_field_names_its_key() -> None:
    datum = D("srv.mcp", presence=Presence(command=("${BIN}",)), env_defaults={"D": "${X1}"},
              mcp=(McpLaunch("stdio", command="${X2}", args=("a", "${X3}"), env={"K": "${X4}"}),
                   McpLaunch("httpstream", url="${X5}")),
              run_env={"R": "${X6}"}, container_name="${X7}")
    with pytest.raises(EnvError) as info:
        compile_graph(cat_of(datum), ["srv.mcp"], environ={})
    assert [p.key for p in info.value.problems] == [
        "b00t.env.defaults.D", "b00t.presence[0]", "b00t.mcp.stdio.command", "b00t.mcp.stdio.args[1]",
        "b00t.mcp.stdio.env.K", "b00t.mcp.httpstream.url", "b00t.run_env.R", "b00t.container_name"]


def test_a_use_for_a_slot_nobody_needs_lists_the_slots_there_are() -> None:
    cat = cat_of(D("app.mcp", needs=(Need("db", "vector-db"),)), D("qdrant.mcp", provides="vector-db"),
                 D("other.mcp"))
    with pytest.raises(CapabilityError) as info:
        compile_graph(cat, ["app.mcp"], environ={}, use={"llm": "qdrant.mcp"})
    assert str(info.value) == "--use llm=qdrant.mcp: no datum of this graph needs a slot 'llm' (slots: db)"
    with pytest.raises(CapabilityError) as info:
        compile_graph(cat, ["other.mcp"], environ={}, use={"llm": "qdrant.mcp"})
    assert str(info.value) == "--use llm=qdrant.mcp: no datum of this graph needs a slot 'llm'"


def test_an_unknown_target_of_closure_is_reported_with_suggestions_and_the_others_too() -> None:
    cat = cat_of(D("alpha.mcp"), D("beta.mcp"))
    with pytest.raises(MissingDependencyError) as info:
        closure(cat, ["alpah.mcp"])
    assert (info.value.missing, info.value.wanted_by, info.value.suggestions) == ("alpah.mcp", None, ["alpha.mcp"])
    with pytest.raises(MissingDependencies) as many:
        closure(cat, ["alpah.mcp", "bteta.mcp", "alpha.mcp"])
    assert [e.missing for e in many.value.errors] == ["alpah.mcp", "bteta.mcp"]
    broken = {"bad.mcp": [Problem("/datums/bad.mcp.toml", "b00t.x", "wrong")]}
    with pytest.raises(DatumError) as bad:  # a broken target is reported as broken, not missing
        closure(cat_of(D("alpha.mcp"), broken=broken), ["bad.mcp"])
    assert bad.value.problems == broken["bad.mcp"]


def test_a_broken_datum_reached_twice_is_reported_once() -> None:
    broken = {"bad.mcp": [Problem("/datums/bad.mcp.toml", "b00t.x", "wrong")]}
    cat = cat_of(D("a.mcp", depends_on=("bad.mcp",)), D("b.mcp", depends_on=("bad.mcp",)), broken=broken)
    for targets in (["a.mcp", "b.mcp"], ["bad.mcp", "bad.mcp"], ["bad.mcp", "a.mcp"]):
        with pytest.raises(DatumError) as info:
            closure(cat, targets)
        assert info.value.problems == broken["bad.mcp"], targets


def test_a_node_that_fails_to_resolve_still_passes_on_its_chosen_providers_exports() -> None:
    # a.mcp fails on its own; b.mcp reads V from the provider a.mcp was given: only a's problem is reported
    cat = cat_of(D("p.mcp", provides="cap", env={"V": "1"}),
                 D("a.mcp", needs=(Need("c", "cap"),), env={"BAD": "${UNSET}"}),
                 D("b.mcp", depends_on=("a.mcp",), env={"Z": "${V}"}))
    with pytest.raises(EnvError) as info:
        compile_graph(cat, ["b.mcp"], environ={})
    assert [(p.path, p.key) for p in info.value.problems] == [("/datums/a.mcp.toml", "b00t.env.BAD")]


def _served(name: str, **health: str) -> Datum:
    return D(f"{name}.process", command=("srv",), health_check=HealthCheck(**health))


def test_which_probes_of_a_process_claim_a_host_port() -> None:
    def claims(**health: str) -> list[tuple[str, int, str]]:
        graph = compile_graph(cat_of(_served("a", **health)), ["a.process"], environ={})
        return [(c.proto, c.port, c.how) for c in host_ports(graph.nodes["a.process"])]

    assert claims(tcp="[::1]:8080") == [("tcp", 8080, "serves [::1]:8080 (its tcp probe)")]
    assert claims(tcp="10.0.0.5:8080") == []
    assert claims(tcp="127.0.0.1:http") == []
    assert claims(http_url="http://example.com:8080/") == []
    assert claims(http_url="http://localhost:99999/") == []  # not a port: nothing claimed
    assert claims(http_url="http://localhost:8081/") == [
        ("tcp", 8081, "serves http://localhost:8081/ (its http probe)")]


def test_a_conflict_names_the_address_a_port_is_published_on() -> None:
    cat = cat_of(D("s.stack", members=("redis.docker", "valkey.docker")),
                 _redis("redis", "-p", "127.0.0.1:6379:6379"), _redis("valkey", "-p", "6379:6379"))
    with pytest.raises(PortConflictError) as info:
        compile_graph(cat, ["s.stack"], environ={})
    assert "(/datums/redis.docker.toml: publishes 127.0.0.1:6379:6379/tcp) and valkey.docker " \
           "(/datums/valkey.docker.toml: publishes 6379:6379/tcp)" in str(info.value)


def test_a_typed_name_gets_close_names_not_the_datums_under_it() -> None:
    # "web.x" is the datum "web" of type x: web.x.cli (the datum "web.x") is only a close name
    assert suggest(cat_of(D("web.x.cli"), D("web.y")), "web.x") == ["web.y", "web.x.cli"]


def test_the_config_hash_of_a_datum_with_every_dialect_field_is_the_same_from_release_to_release() -> None:
    """Running services are labelled with it: a new value recreates every one of them on upgrade."""
    datum = D("srv.mcp", kind="docker", image="srv:1", container_name="srv1", restart="always",
              build=Build(context=".", args={"V": "1"}), run_env={"A": "1"},
              swarm=Swarm(replicas=2, constraints=("node.role == manager",)))
    assert config_hash(datum, {"E": "e"}) == "f325ecc9138b7bdc"


def test_up_on_swarm_moves_only_the_docker_nodes_it_is_given() -> None:
    graph = compile_graph(cat_of(D("web.docker", image="web:1", depends_on=("db.docker", "tool.process")),
                                 D("db.docker", image="db:1"), D("tool.process", command=("true",))),
                          ["web.docker"], environ={})
    assert {i: n.runtime for i, n in placed_on(graph, "swarm", only=["web.docker"]).nodes.items()} == {
        "db.docker": "docker", "tool.process": "process", "web.docker": "swarm"}
    every = placed_on(graph, "swarm").nodes
    assert every["db.docker"].spec.on == "swarm"
    assert every["tool.process"] == graph.nodes["tool.process"]  # no container: left exactly as it was


def test_a_tcp_port_requirement_without_a_host_is_probed_on_the_loopback_address() -> None:
    cat = cat_of(D("r.process", command=("redis-server",), requirements=(Requirement("tcp_port", port=6379),)))
    assert compile_graph(cat, ["r.process"], environ={}).nodes["r.process"].health == HealthCheck(tcp="127.0.0.1:6379")


def test_a_process_and_a_container_of_the_local_engine_clash_on_one_host_port() -> None:
    cat = cat_of(D("s.stack", members=("api.process", "redis.docker")),
                 D("api.process", command=("api",), health_check=HealthCheck(tcp="127.0.0.1:6379")),
                 _redis("redis", "-p", "6379:6379"))
    with pytest.raises(PortConflictError, match=r"claimed by both api\.process .* and redis\.docker"):
        compile_graph(cat, ["s.stack"], environ={})


def test_a_stack_entry_its_members_cannot_have_does_not_hold_back_the_later_ones() -> None:
    # Q reads R, a rename of a member's export: the stack resolves it, its members cannot; P still reaches them
    cat = cat_of(D("s.stack", members=("a.mcp",), env={"R": "${X}", "Q": "${R}", "P": "v"}),
                 D("a.mcp", env={"X": "x"}))
    graph = compile_graph(cat, ["s.stack"], environ={})
    assert graph.nodes["a.mcp"].env == {"X": "x", "P": "v"}
    assert graph.nodes["s.stack"].exports == {"R": "x", "Q": "x", "P": "v"}
