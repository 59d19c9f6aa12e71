"""Compiling datums into a DAG: order, waves, cycles, missing and duplicate datums, targets, readiness."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from b00t_graph.errors import (
    AmbiguousTargetError,
    CycleError,
    DatumError,
    EnvError,
    MissingDependencyError,
)
from b00t_graph.graph import Graph, closure, compile_graph
from b00t_graph.loader import Source, load_catalog
from b00t_graph.model import HealthCheck

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
    assert str(err) == ("app.process depends on 'qdrant.docker', which no datum provides "
                        "(did you mean 'qdrant.process'?)")


def test_missing_dependency_without_a_close_name(write_datums: Write) -> None:
    d = write_datums({"app.process": proc("zzz.mcp")})
    with pytest.raises(MissingDependencyError) as info:
        _graph(d, "app")
    assert str(info.value) == "app.process depends on 'zzz.mcp', which no datum provides"


def test_missing_stack_member_names_the_stack(write_datums: Write) -> None:
    d = write_datums({"s.stack": "[b00t]\nmembers = ['a.mcp', 'b.mcp']\n", "a.mcp": mcp()})
    with pytest.raises(MissingDependencyError, match=r"^s\.stack depends on 'b\.mcp', which no datum provides"):
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

    t0 = time.perf_counter()
    cat = load_catalog([Source(tmp_path, "bench")])
    graph = compile_graph(cat, ["all"], environ={})
    elapsed = time.perf_counter() - t0

    assert cat.problems == []
    assert len(graph.nodes) == n + 1
    _assert_topological(graph)
    assert graph.nodes["svc999.process"].spec.args == ("-m", "http.server", "20999")
    assert elapsed < 3.0, f"1,000 datums took {elapsed:.2f}s to load and compile"


def test_a_failed_export_does_not_cascade_into_its_dependents(write_datums: Write) -> None:
    d = write_datums({
        "a.mcp": mcp(env='X = "${NOPE_A}"'),
        "b.mcp": mcp("a.mcp", env='Y = "${X}/path"'),
    })
    with pytest.raises(EnvError) as info:
        _graph(d, "b")
    assert [(Path(p.path).name, p.key) for p in info.value.problems] == [("a.mcp.toml", "b00t.env.X")]


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
