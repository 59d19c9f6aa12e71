"""``${VAR}`` substitution as a pure function, and how the graph layers values (own > deps > process)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from b00t_graph.envsubst import MAX_NESTING, SubstitutionError, references, substitute
from b00t_graph.errors import EnvError
from b00t_graph.graph import compile_graph
from b00t_graph.loader import Source, load_catalog

ENV = {"A": "a", "EMPTY": "", "DOLLAR": "$X", "PORT": "6333"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "a"),
        ("pre-${A}-post", "pre-a-post"),
        ("${A}${A}", "aa"),
        ("http://localhost:${PORT}/healthz", "http://localhost:6333/healthz"),
        # :- default when unset or empty; - default only when unset
        ("${UNSET:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${A:-dflt}", "a"),
        ("${UNSET-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("${UNSET:-}", ""),
        # defaults may themselves hold references
        ("${UNSET:-${A}}", "a"),
        ("${UNSET:-x${A}y}", "xay"),
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("${U1:-${U2:-${U3:-${A}-x}}}", "a-x"),
        ("${U1:-{${U2:-{${A}}}}}", "{{a}}"),
        ("${UNSET-${A}}", "a"),
        # :? passes a set value through
        ("${A:?must be set}", "a"),
        ("${EMPTY?only unset fails}", ""),
        # $$ is a literal dollar, and what follows it is not a reference
        ("$$", "$"),
        ("$$$$", "$$"),
        ("$${A}", "${A}"),
        ("price: 5$$", "price: 5$"),
        ("${UNSET:-$$}", "$"),
        # a bare $ or $NAME reaches the service unchanged (shell snippets)
        ("$A", "$A"),
        ("$", "$"),
        ("a$", "a$"),
        ("echo $HOME", "echo $HOME"),
        # values are not substituted again
        ("${DOLLAR}", "$X"),
        # braces in plain text are kept
        ("${UNSET:-{json}}", "{json}"),
        ("no refs at all", "no refs at all"),
        ("", ""),
    ],
)
def test_substitute(text: str, expected: str) -> None:
    assert substitute(text, ENV) == expected


def test_substitute_accepts_a_lookup_function() -> None:
    asked: list[str] = []

    def look(name: str) -> str | None:
        asked.append(name)
        return {"A": "1"}.get(name)

    assert substitute("${A}/${B:-2}", look) == "1/2"
    assert asked == ["A", "B"]


@pytest.mark.parametrize(
    ("text", "var", "message"),
    [
        ("${UNSET}", "UNSET", "${UNSET} is not set"),
        ("x-${UNSET}-y", "UNSET", "${UNSET} is not set"),
        ("${UNSET:?set UNSET to the API key}", "UNSET", "${UNSET}: set UNSET to the API key"),
        ("${EMPTY:?must not be empty}", "EMPTY", "${EMPTY}: must not be empty"),
        ("${UNSET?gone}", "UNSET", "${UNSET}: gone"),
        ("${UNSET:?}", "UNSET", "${UNSET}: is required"),
        ("${UNSET:-${INNER}}", "INNER", "${INNER} is not set"),
    ],
)
def test_unresolved_reference_raises_with_its_name(text: str, var: str, message: str) -> None:
    with pytest.raises(SubstitutionError) as info:
        substitute(text, ENV)
    assert info.value.var == var
    assert str(info.value) == message


@pytest.mark.parametrize("text", ["${}", "${A", "${1A}", "${A:+alt}", "${A B}"])
def test_malformed_reference_is_an_error_not_kept(text: str) -> None:
    with pytest.raises(SubstitutionError, match="malformed reference"):
        substitute(text, ENV)


def test_references_lists_names_in_order() -> None:
    assert references("${A} $$ ${B:-x} $C ${D:?m} $${E}") == ["A", "B", "D"]


def test_references_include_nested_defaults() -> None:
    assert references("${A:-${B:-${C}}}/${D}") == ["A", "B", "C", "D"]


# --- the layering the graph applies ---------------------------------------------------------------


def _compile(folder: Path, target: str, environ: dict[str, str]) -> dict[str, dict[str, str]]:
    graph = compile_graph(load_catalog([Source(folder, "test")]), [target], environ=environ)
    return {i: n.env for i, n in graph.nodes.items()}


def test_own_beats_dependency_beats_process_env(write_datums: Callable[..., Path]) -> None:
    d = write_datums({
        "base.mcp": '[b00t]\nname="base"\ntype="mcp"\n[b00t.env]\nX = "from-base"\n',
        "own.mcp": '[b00t]\nname="own"\ntype="mcp"\ndepends_on=["base.mcp"]\n'
                   '[b00t.env]\nX = "from-own"\nSEEN = "${X}"\n',
        "user.mcp": '[b00t]\nname="user"\ntype="mcp"\ndepends_on=["base.mcp"]\n[b00t.env]\nSEEN = "${X}"\n',
        "lone.mcp": '[b00t]\nname="lone"\ntype="mcp"\n[b00t.env]\nSEEN = "${X}"\n',
    })
    environ = {"X": "from-process"}
    own = _compile(d, "own.mcp", environ)["own.mcp"]
    assert own["X"] == "from-own"
    assert own["SEEN"] == "from-own"  # a key sees the own keys before it
    assert _compile(d, "user.mcp", environ)["user.mcp"] == {"X": "from-base", "SEEN": "from-base"}
    # the process environment is only a fallback for lookups: it is not exported wholesale
    assert _compile(d, "lone.mcp", environ)["lone.mcp"] == {"SEEN": "from-process"}


def test_dependencies_are_seen_transitively_nearer_wins(write_datums: Callable[..., Path]) -> None:
    d = write_datums({
        "a.mcp": '[b00t]\nname="a"\ntype="mcp"\n[b00t.env]\nX = "a"\nONLY_A = "1"\n',
        "b.mcp": '[b00t]\nname="b"\ntype="mcp"\ndepends_on=["a.mcp"]\n[b00t.env]\nX = "b"\n',
        "c.mcp": '[b00t]\nname="c"\ntype="mcp"\ndepends_on=["b.mcp"]\n[b00t.env]\nY = "${X}${ONLY_A}"\n',
    })
    env = _compile(d, "c.mcp", {})["c.mcp"]
    assert env == {"X": "b", "ONLY_A": "1", "Y": "b1"}


@pytest.mark.parametrize("order", [["b.mcp", "a.mcp"], ["a.mcp", "b.mcp"]])
def test_a_dependency_that_overrides_another_wins_whatever_the_order(
        write_datums: Callable[..., Path], order: list[str]) -> None:
    # c depends on a and on b, and b itself depends on a and overrides X: b's value is the nearer one.
    d = write_datums({
        "a.mcp": '[b00t]\nname="a"\ntype="mcp"\n[b00t.env]\nX = "a"\n',
        "b.mcp": '[b00t]\nname="b"\ntype="mcp"\ndepends_on=["a.mcp"]\n[b00t.env]\nX = "b"\n',
        "c.mcp": f'[b00t]\nname="c"\ntype="mcp"\ndepends_on={order!r}\n[b00t.env]\nY = "${{X}}"\n'
                 .replace("'", '"'),
    })
    assert _compile(d, "c.mcp", {})["c.mcp"] == {"X": "b", "Y": "b"}


def test_a_stack_passes_through_and_renames(write_datums: Callable[..., Path]) -> None:
    d = write_datums({
        "db.mcp": '[b00t]\nname="db"\ntype="mcp"\n[b00t.env]\nDB_URL = "postgres://db:5432"\n',
        "llm.mcp": '[b00t]\nname="llm"\ntype="mcp"\n[b00t.env]\nOLLAMA_API_URL = "http://localhost:11434"\n',
        "s.stack": '[b00t]\nname="s"\ntype="stack"\nmembers=["db.mcp", "llm.mcp"]\n'
                   '[b00t.env]\nDB_URL = "${DB_URL}"\nEXTERNAL_API = "${OLLAMA_API_URL}"\n',
    })
    # The process environment must not leak into a self-reference: the dependency's export wins.
    graph = compile_graph(load_catalog([Source(d, "test")]), ["s"], environ={"DB_URL": "wrong"})
    stack = graph.nodes["s.stack"]
    assert stack.exports == {"DB_URL": "postgres://db:5432", "EXTERNAL_API": "http://localhost:11434"}
    assert stack.env["OLLAMA_API_URL"] == "http://localhost:11434"
    assert graph.env_of("s.stack")["EXTERNAL_API"] == "http://localhost:11434"


def test_self_reference_without_a_dependency_falls_back_to_the_process(
        write_datums: Callable[..., Path]) -> None:
    d = write_datums({"p.mcp": '[b00t]\nname="p"\ntype="mcp"\n[b00t.env]\nTOKEN = "${TOKEN:-none}"\n'})
    assert _compile(d, "p.mcp", {"TOKEN": "secret"})["p.mcp"] == {"TOKEN": "secret"}
    assert _compile(d, "p.mcp", {})["p.mcp"] == {"TOKEN": "none"}


def test_substitution_reaches_every_runtime_string(write_datums: Callable[..., Path]) -> None:
    d = write_datums({
        "cfg.mcp": '[b00t]\nname="cfg"\ntype="mcp"\n[b00t.env]\nPORT = "8080"\nDIR = "/srv"\n',
        "web.process": """
[b00t]
name = "web"
type = "process"
depends_on = ["cfg.mcp"]
command = ["${BIN:-python3}", "-m", "http.server"]
args = ["${PORT}", "--directory", "${DIR}"]
cwd = "${DIR}/www"
[b00t.health_check]
http_url = "http://127.0.0.1:${PORT}/"
tcp = "127.0.0.1:${PORT}"
exec = ["test", "-d", "${DIR}"]
[b00t.env]
URL = "http://127.0.0.1:${PORT}"
COST = "5$$"
""",
    })
    graph = compile_graph(load_catalog([Source(d, "test")]), ["web"], environ={})
    spec = graph.nodes["web.process"].spec
    assert spec.command == ("python3", "-m", "http.server")
    assert spec.args == ("8080", "--directory", "/srv")
    assert spec.cwd == "/srv/www"
    health = graph.nodes["web.process"].health
    assert health is not None
    assert (health.http_url, health.tcp, health.exec) == ("http://127.0.0.1:8080/", "127.0.0.1:8080",
                                                          ["test", "-d", "/srv"])
    assert graph.nodes["web.process"].exports == {"URL": "http://127.0.0.1:8080", "COST": "5$"}


def test_every_unresolved_reference_is_reported_with_datum_and_key(write_datums: Callable[..., Path]) -> None:
    d = write_datums({
        "bad.process": """
[b00t]
name = "bad"
type = "process"
command = "${NO_SUCH_BIN}"
args = ["ok", "${NO_SUCH_ARG:?pass an argument}"]
[b00t.env]
A = "${NO_SUCH_A}"
""",
    })
    with pytest.raises(EnvError) as info:
        compile_graph(load_catalog([Source(d, "test")]), ["bad"], environ={})
    found = {(p.key, p.message) for p in info.value.problems}
    path = {p.path for p in info.value.problems}
    assert path == {str(d / "bad.process.toml")}
    assert ("b00t.env.A", "${NO_SUCH_A} is not set (not exported by any dependency, not in the environment)") \
        in found
    assert ("b00t.command[0]", "${NO_SUCH_BIN} is not set (not exported by any dependency, not in the "
            "environment)") in found
    assert ("b00t.args[1]", "${NO_SUCH_ARG}: pass an argument") in found
    assert len(found) == 3


# --- edges found by mutation testing --------------------------------------------------------------


@pytest.mark.parametrize("text", ["${A", "pre ${A:-${B}", "${A:-x}${"])
def test_an_unclosed_reference_names_the_text_from_its_dollar(text: str) -> None:
    start = text.rindex("${") if text.endswith("${") else text.index("${")
    with pytest.raises(SubstitutionError) as info:
        substitute(text, ENV)
    assert info.value.var == text[start:]
    assert str(info.value) == f"malformed reference {text[start:]!r} (no closing brace)"


@pytest.mark.parametrize("whole", ["${A B}", "${1A}", "${A:+alt}"])
def test_a_malformed_reference_names_exactly_the_reference_and_the_forms_allowed(whole: str) -> None:
    with pytest.raises(SubstitutionError) as info:
        substitute(f"x {whole} y", ENV)
    assert info.value.var == whole
    assert str(info.value) == (f"malformed reference {whole!r} (write ${{NAME}}, ${{NAME:-default}} "
                               "or ${NAME:?message})")


def test_a_dollar_at_the_very_end_is_kept() -> None:
    assert substitute("cost: 5$", {}) == "cost: 5$"
    assert substitute("$", {}) == "$"


def test_references_and_substitute_allow_the_same_nesting() -> None:
    def nest(k: int) -> str:
        return "${A:-" * k + "x" + "}" * k
    assert references(nest(MAX_NESTING)) == ["A"] * MAX_NESTING
    with pytest.raises(SubstitutionError, match="nested more than"):
        references(nest(MAX_NESTING + 1))
    assert substitute(nest(MAX_NESTING), {}) == "x"
    with pytest.raises(SubstitutionError, match="nested more than"):
        substitute(nest(MAX_NESTING + 1), {})


def test_too_deep_a_nesting_names_the_innermost_text_clipped() -> None:
    inner = "y" * 50
    with pytest.raises(SubstitutionError) as info:
        substitute("${A:-" * (MAX_NESTING + 1) + inner + "}" * (MAX_NESTING + 1), {})
    shown = "y" * 40 + "… (10 more characters)"
    assert info.value.var == shown
    assert str(info.value) == f"${{…}} references nested more than {MAX_NESTING} deep (at {shown!r})"
