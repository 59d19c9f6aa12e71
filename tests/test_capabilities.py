"""Capability resolution, pure: ``[b00t.requires.<slot>]`` → the chosen provider, as a dependency edge.

Catalogues are built in code (the datums a rag-api-style folder holds) so that the rules are tested
without the loader: prefer order, fallback, the only provider, usability (loads, env set, runtime
reachable), ``use`` overrides, and a message listing every candidate when none is usable.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
import pytest

from b00t_graph.capabilities import Choice, Resolver, parse_use
from b00t_graph.errors import EXIT_INPUT, CapabilityError, CycleError, EnvError, Problem
from b00t_graph.graph import compile_graph
from b00t_graph.loader import Catalog
from b00t_graph.model import Datum, Need

EMB = "openai-embeddings-v1"


def D(ident: str, **kw: Any) -> Datum:
    name, _, typ = ident.rpartition(".")
    return Datum(name=name, type=typ, path=f"/datums/{ident}.toml", **kw)


def catalog(*datums: Datum, broken: dict[str, list[Problem]] | None = None) -> Catalog:
    return Catalog(sources=[], datums={d.id: d for d in datums}, broken=broken or {})


def rag(**changes: Datum) -> dict[str, Datum]:
    """A rag-api-style folder: two embeddings providers (one local on docker, one remote), a vector db."""
    datums = {
        "ollama.docker": D("ollama.docker", image="ollama/ollama", env={"OLLAMA_API_URL": "http://localhost:11434"}),
        "ollama-embeddings.api": D("ollama-embeddings.api", provides="embeddings", protocol=EMB,
                                   depends_on=("ollama.docker",),
                                   env={"OLLAMA_API_URL": "${OLLAMA_API_URL}",
                                        "OLLAMA_EMBEDDING_MODEL": "nomic-embed-text"}),
        "openai-embeddings.api": D("openai-embeddings.api", provides="embeddings", protocol=EMB,
                                   env={"OPENAI_API_BASE": "https://api.openai.com/v1",
                                        "OPENAI_API_KEY": "${OPENAI_API_KEY}"}),
        "qdrant-api.api": D("qdrant-api.api", provides="vector-db", protocol="qdrant-rest-v1",
                            env={"QDRANT_URL": "http://localhost:6333"}),
        "rag-api.api": D("rag-api.api", provides="rag", protocol="rag-composite-v1",
                         needs=(Need("embeddings", "embeddings", EMB,
                                     prefer=("ollama-embeddings", "openai-embeddings"),
                                     fallback="openai-embeddings"),
                                Need("vector_db", "vector-db", "qdrant-rest-v1", prefer=("qdrant-api",),
                                     fallback="qdrant-api")),
                         env={"RAG_VECTOR_DB_URL": "${QDRANT_URL}"}),
    }
    datums.update(changes)
    return datums


def choices(cat: Catalog, environ: dict[str, str] | None = None, **kw: Any) -> dict[str, Choice]:
    graph = compile_graph(cat, ["rag-api.api"], environ=environ or {}, **kw)
    return {c.slot: c for c in graph.nodes["rag-api.api"].choices}


def test_the_first_usable_preferred_provider_is_chosen_and_becomes_an_edge() -> None:
    cat = catalog(*rag().values())
    graph = compile_graph(cat, ["rag-api"], environ={})
    node = graph.nodes["rag-api.api"]
    assert [str(c) for c in node.choices] == ["embeddings → ollama-embeddings.api (preferred 1 of 2)",
                                              "vector_db → qdrant-api.api (preferred 1 of 1)"]
    # an ordinary dependency edge: order, env inheritance, dependents (down order)
    assert node.deps == ("ollama-embeddings.api", "qdrant-api.api")
    assert list(graph.nodes) == ["ollama.docker", "ollama-embeddings.api", "qdrant-api.api", "rag-api.api"]
    assert node.env["OLLAMA_API_URL"] == "http://localhost:11434"
    assert node.exports == {"RAG_VECTOR_DB_URL": "http://localhost:6333"}
    assert graph.dependents()["ollama-embeddings.api"] == ["rag-api.api"]
    assert "openai-embeddings.api" not in graph.nodes


def test_falls_back_when_the_preferred_providers_required_env_is_missing() -> None:
    emb = attrs.evolve(rag()["ollama-embeddings.api"], env_required=("OLLAMA_TOKEN",))
    only_fallback = attrs.evolve(rag()["rag-api.api"], needs=(
        Need("embeddings", "embeddings", EMB, prefer=("ollama-embeddings",), fallback="openai-embeddings"),
        rag()["rag-api.api"].needs[1]))
    cat = catalog(*rag(**{"ollama-embeddings.api": emb, "rag-api.api": only_fallback}).values())
    got = choices(cat, {"OPENAI_API_KEY": "sk-test"})["embeddings"]
    assert (got.chosen, got.how) == ("openai-embeddings.api", "fallback")
    assert got.passed_over == (("ollama-embeddings.api", "OLLAMA_TOKEN is not set"),)

    # with the variable set, the preferred one is usable again
    assert choices(cat, {"OPENAI_API_KEY": "k", "OLLAMA_TOKEN": "t"})["embeddings"].chosen == "ollama-embeddings.api"


def test_the_second_preferred_name_when_the_first_is_unusable() -> None:
    emb = attrs.evolve(rag()["ollama-embeddings.api"], env_required=("OLLAMA_TOKEN",))
    cat = catalog(*rag(**{"ollama-embeddings.api": emb}).values())
    got = choices(cat, {"OPENAI_API_KEY": "k"})["embeddings"]
    assert str(got) == "embeddings → openai-embeddings.api (preferred 2 of 2)"


def test_a_reference_nothing_sets_makes_a_provider_unusable() -> None:
    # openai-embeddings needs ${OPENAI_API_KEY}; the local one's runtime is unreachable: nothing is usable
    cat = catalog(*rag().values())
    with pytest.raises(CapabilityError) as info:
        choices(cat, {}, reachable=lambda kind: "no engine answers" if kind == "docker" else None)
    msg = str(info.value)
    assert info.value.exit_code == EXIT_INPUT
    assert msg.splitlines() == [
        "/datums/rag-api.api.toml: b00t.requires.embeddings: rag-api.api needs 'embeddings' "
        f"(protocol {EMB}), and no candidate is usable:",
        "    ollama-embeddings.api: the docker runtime is unreachable (no engine answers)",
        "    openai-embeddings.api: OPENAI_API_KEY is not set",
        "    choose one with --use embeddings=NAME, or fix one of them",
    ]


def test_reachability_is_asked_only_when_given() -> None:
    cat = catalog(*rag().values())
    asked: list[str] = []

    def down(kind: str) -> str | None:
        asked.append(kind)
        return "no engine answers"

    got = choices(cat, {"OPENAI_API_KEY": "k"}, reachable=down)["embeddings"]
    assert got.chosen == "openai-embeddings.api"
    assert got.passed_over == (("ollama-embeddings.api", "the docker runtime is unreachable (no engine answers)"),)
    assert asked == ["docker"]  # asked once per runtime kind, and never for passive providers
    # offline (no predicate): loads + env set is enough
    assert choices(cat)["embeddings"].chosen == "ollama-embeddings.api"


def test_use_overrides_prefer_with_a_bare_or_a_typed_name() -> None:
    cat = catalog(*rag().values())
    for name in ("openai-embeddings", "openai-embeddings.api"):
        got = choices(cat, {"OPENAI_API_KEY": "k"}, use={"embeddings": name})["embeddings"]
        assert str(got) == "embeddings → openai-embeddings.api (--use)"


@pytest.mark.parametrize(("name", "why"), [
    ("qdrant-api", "qdrant-api.api does not provide 'embeddings' (it provides 'vector-db')"),
    ("ollama.docker", "ollama.docker does not provide 'embeddings'"),
    ("nope", "no such datum"),
])
def test_use_naming_a_non_provider_is_bad_input(name: str, why: str) -> None:
    cat = catalog(*rag().values())
    with pytest.raises(CapabilityError) as info:
        choices(cat, use={"embeddings": name})
    assert info.value.exit_code == EXIT_INPUT
    assert f"    {name}: {why}" in str(info.value).splitlines()


def test_use_for_a_slot_nobody_needs_is_bad_input() -> None:
    cat = catalog(*rag().values())
    with pytest.raises(CapabilityError, match=r"--use embedings=x: no datum of this graph needs a slot 'embedings' "
                                              r"\(slots: embeddings, vector_db\)"):
        choices(cat, use={"embedings": "x"})


def test_protocol_filters_candidates_and_says_so() -> None:
    other = D("legacy-embeddings.api", provides="embeddings", protocol="legacy-v0")
    emb = attrs.evolve(rag()["ollama-embeddings.api"], env_required=("NOPE",))
    cat = catalog(*rag(**{"ollama-embeddings.api": emb}).values(), other)
    with pytest.raises(CapabilityError) as info:
        choices(cat)
    lines = str(info.value).splitlines()
    assert ("    legacy-embeddings.api: provides 'embeddings' with protocol legacy-v0, "
            "not 'openai-embeddings-v1'") in lines
    assert "    ollama-embeddings.api: NOPE is not set" in lines


def test_the_only_provider_without_prefer_or_fallback() -> None:
    need = Need("db", "vector-db")
    app = D("app.mcp", needs=(need,))
    q = rag()["qdrant-api.api"]
    graph = compile_graph(catalog(app, q), ["app.mcp"], environ={})
    assert [str(c) for c in graph.nodes["app.mcp"].choices] == ["db → qdrant-api.api (only provider)"]

    # two providers and no preference: not guessed
    q2 = D("qdrant2.api", provides="vector-db")
    with pytest.raises(CapabilityError) as info:
        compile_graph(catalog(app, q, q2), ["app.mcp"], environ={})
    assert "    qdrant-api.api: not in prefer or fallback" in str(info.value).splitlines()
    assert "    qdrant2.api: not in prefer or fallback" in str(info.value).splitlines()

    # nobody provides it
    with pytest.raises(CapabilityError, match=r"app.mcp needs 'vector-db', and no datum provides it"):
        compile_graph(catalog(app), ["app.mcp"], environ={})


def test_a_broken_or_incomplete_provider_is_passed_over() -> None:
    datums = rag()
    del datums["ollama-embeddings.api"]
    broken = {"ollama-embeddings.api": [Problem("/datums/ollama-embeddings.api.toml", "b00t.env", "bad")]}
    cat = catalog(*datums.values(), broken=broken)
    got = choices(cat, {"OPENAI_API_KEY": "k"})["embeddings"]
    assert got.chosen == "openai-embeddings.api"
    assert got.passed_over == (("ollama-embeddings", "ollama-embeddings.api does not load (b00t.env: bad)"),)

    # a provider whose own dependency is missing
    datums = rag()
    del datums["ollama.docker"]
    got = choices(catalog(*datums.values()), {"OPENAI_API_KEY": "k"})["embeddings"]
    assert got.passed_over == (("ollama-embeddings.api", "depends on ollama.docker, which no datum provides"),)


def test_a_chosen_provider_that_needs_its_needer_is_a_cycle() -> None:
    emb = attrs.evolve(rag()["ollama-embeddings.api"], depends_on=("ollama.docker", "rag-api.api"))
    with pytest.raises(CycleError, match=re.escape("rag-api.api → ollama-embeddings.api → rag-api.api")):
        choices(catalog(*rag(**{"ollama-embeddings.api": emb}).values()))


def test_use_of_an_unusable_provider_reports_its_real_problem() -> None:
    # the user asked: no silent substitution; compiling then says what is missing
    with pytest.raises(EnvError, match=re.escape(
            "openai-embeddings.api.toml: b00t.env.OPENAI_API_KEY: ${OPENAI_API_KEY} is not set")):
        choices(catalog(*rag().values()), use={"embeddings": "openai-embeddings"})


def test_resolver_is_pure_and_remembers_usability() -> None:
    cat = catalog(*rag().values())
    r = Resolver(cat, {}, None)
    need = cat.datums["rag-api.api"].needs[0]
    one = r.resolve(cat.datums["rag-api.api"], need)
    assert one == r.resolve(cat.datums["rag-api.api"], need)
    assert isinstance(one, Choice) and one.as_json() == {
        "slot": "embeddings", "capability": "embeddings", "protocol": EMB, "chosen": "ollama-embeddings.api",
        "how": "preferred 1 of 2", "passed_over": []}


def test_parse_use() -> None:
    assert parse_use(["embeddings=openai-embeddings", " db = qdrant-api.api "]) == {
        "embeddings": "openai-embeddings", "db": "qdrant-api.api"}
    for bad in ("embeddings", "=x", "embeddings="):
        with pytest.raises(CapabilityError, match="expected SLOT=NAME"):
            parse_use([bad])
