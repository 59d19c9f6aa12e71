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

from b00t_graph.capabilities import Choice, Resolver, Unresolved, parse_use
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


# --- mutation testing (`make mutate`, benchmarks/MUTATION.md): the cases its survivors showed unpinned ----
# The exact wording of why a provider is passed over, which environment counts as set for a provider and
# for its dependencies, the walk over a provider's dependencies, and the JSON form of a choice.

CAP = "embeddings"


def P(ident: str = "emb.api", **kw: Any) -> Datum:
    """A provider of the capability."""
    kw.setdefault("provides", CAP)
    return D(ident, **kw)


def why(*datums: Datum, environ: dict[str, str] | None = None, broken: dict[str, list[Problem]] | None = None,
        ident: str = "emb.api") -> str | None:
    cat = Catalog(sources=[], datums={d.id: d for d in datums}, broken=broken or {})
    return Resolver(cat, environ or {}).why_unusable(ident)


def test_choice_as_json_lists_what_was_passed_over() -> None:
    c = Choice(datum="app.api", slot="e", capability=CAP, protocol=None, chosen="b.api", how="fallback",
               passed_over=(("a.api", "OPENAI_API_KEY is not set"),))
    assert c.as_json()["passed_over"] == [{"datum": "a.api", "why": "OPENAI_API_KEY is not set"}]


def test_a_provider_that_also_has_a_broken_file_does_not_load() -> None:
    """A duplicate identity is both loaded and broken: the first problem is the reason, with its key if any."""
    two = [Problem("/datums/emb.api.toml", "b00t.env", "bad"), Problem("/datums/emb.api.toml", "x", "second")]
    assert why(P(), broken={"emb.api": two}) == "does not load (b00t.env: bad)"
    assert why(P(), broken={"emb.api": [Problem("/datums/emb.api.toml", "", "not TOML")]}) == \
        "does not load (not TOML)"


def test_every_dependency_is_walked_past_one_already_seen() -> None:
    # emb depends on ghost (missing), c and b; b depends on c too: c is met twice before ghost
    prov = P(depends_on=("ghost.docker", "c.docker", "b.docker"))
    got = why(prov, D("b.docker", depends_on=("c.docker",)), D("c.docker"))
    assert got == "depends on ghost.docker, which no datum provides"


def test_a_provider_sets_its_own_required_env() -> None:
    assert why(P(env_required=("X",), env={"X": "v"})) is None
    assert why(P(env_required=("X",), env_defaults={"X": "v"})) is None
    assert why(P(env_required=("X",))) == "X is not set"


def test_a_providers_env_does_not_satisfy_its_dependencys_requirement() -> None:
    prov = P(depends_on=("db.docker",), env={"Y": "v"})
    assert why(prov, D("db.docker", env_required=("Y",))) == "Y is not set"
    assert why(prov, D("db.docker", env_required=("Y",)), environ={"Y": "1"}) is None


def test_several_missing_names_are_listed_together() -> None:
    assert why(P(env_required=("A", "B"))) == "A, B are not set"


def test_every_unset_reference_of_a_value_is_found() -> None:
    # A is set: the scan must go on past it to B (the set names stand in as set, not as unset)
    assert why(P(env={"X": "${A}${B}"}), environ={"A": "a"}) == "B is not set"


def test_a_name_unset_in_two_values_is_named_once_and_the_engine_host_is_always_set() -> None:
    assert why(P(env={"X": "${A}", "Y": "${A}/${B}"})) == "A, B are not set"
    assert why(P(env={"URL": "http://${B00T_ENGINE_HOST}:80"})) is None  # set for every node when it runs


def test_a_default_of_a_set_name_is_checked_too() -> None:
    """What a set name holds is not known when resolving (a dependency's export may be empty): the
    names in its ``:-`` default must be set as well for the provider to count as usable."""
    prov = P(depends_on=("db.docker",), env={"X": "${DB_URL:-${FALLBACK}}"})
    assert why(prov, D("db.docker", env={"DB_URL": "http://db"})) == "FALLBACK is not set"


def test_the_unset_names_of_one_value_are_capped() -> None:
    """Each pass finds one more unset name, 32 at most: a hostile value cannot loop for long."""
    value = "".join(f"${{V{i}}}" for i in range(40))
    got = why(P(env={"X": value}))
    assert got == ", ".join(f"V{i}" for i in range(32)) + " are not set"


def _use(prov: Datum, name: str, protocol: str | None = "p1", broken: dict[str, list[Problem]] | None = None) -> str:
    app = D("app.api", needs=(Need("e", CAP, protocol),))
    cat = Catalog(sources=[], datums={prov.id: prov, app.id: app}, broken=broken or {})
    got = Resolver(cat, {}, use={"e": name}).resolve(app, app.needs[0])
    assert isinstance(got, Unresolved)
    ((_, reason),) = got.candidates
    return reason


def test_use_of_a_provider_with_another_protocol_says_which() -> None:
    assert _use(P(protocol=None), "emb") == "emb.api speaks protocol (none), not 'p1'"
    assert _use(P(protocol="p2"), "emb") == "emb.api speaks protocol p2, not 'p1'"


def test_use_of_a_broken_datum_without_a_key() -> None:
    broken = {"bad.api": [Problem("/datums/bad.api.toml", "", "not TOML")]}
    assert _use(P(protocol="p1"), "bad", broken=broken) == "bad.api does not load (not TOML)"


def _resolve(*datums: Datum, need: Need, environ: dict[str, str] | None = None,
             use: dict[str, str] | None = None) -> Choice | Unresolved:
    app = D("app.api", needs=(need,))
    cat = Catalog(sources=[], datums={d.id: d for d in (*datums, app)}, broken={})
    return Resolver(cat, environ or {}, use=use).resolve(app, need)


def test_a_name_with_dots_names_its_datum_without_the_type() -> None:
    got = _resolve(P("my.emb.api"), P("my.api", env_required=("X",)), need=Need("e", CAP), use={"e": "my.emb"})
    assert isinstance(got, Choice) and (got.datum, got.chosen, got.how) == ("app.api", "my.emb.api", "--use")


def test_parse_use_splits_at_the_first_equals_sign() -> None:
    assert parse_use(["e=a=b"]) == {"e": "a=b"}


def test_a_preferred_name_that_is_no_provider_is_said_once() -> None:
    got = _resolve(P("b.api"), D("db.docker", provides="vector-db"), D("plain.docker"),
                   need=Need("e", CAP, prefer=("nope", "nope", "db", "plain"), fallback="b"))
    assert isinstance(got, Choice) and got.chosen == "b.api"
    assert got.passed_over == (("nope", "no such datum"),
                               ("db", "db.docker does not provide 'embeddings' (it provides 'vector-db')"),
                               ("plain", "plain.docker does not provide 'embeddings'"))


def test_a_name_matching_two_providers_tries_the_one_not_yet_considered() -> None:
    got = _resolve(P("emb.api", env_required=("X",)), P("emb.docker"), need=Need("e", CAP, prefer=("emb.api", "emb")))
    assert isinstance(got, Choice) and (got.chosen, got.how) == ("emb.docker", "preferred 2 of 2")
    assert got.passed_over == (("emb.api", "X is not set"),)


def test_an_unusable_only_provider_says_why() -> None:
    got = _resolve(P("emb.api", env_required=("X",)), need=Need("e", CAP))
    assert isinstance(got, Unresolved) and got.candidates == (("emb.api", "X is not set"),)


def test_the_providers_outside_prefer_say_why_they_are_unusable() -> None:
    got = _resolve(P("a.api", env_required=("X",)), P("b.api"), need=Need("e", CAP, prefer=("nope",)))
    assert isinstance(got, Unresolved)
    assert got.candidates == (("nope", "no such datum"), ("a.api", "X is not set"),
                              ("b.api", "not in prefer or fallback"))


def test_a_provider_of_another_protocol_is_listed_with_it() -> None:
    got = _resolve(P("a.api"), P("b.api", protocol="p2"), need=Need("e", CAP, "p1"))
    assert isinstance(got, Unresolved)
    assert got.candidates == (("a.api", f"provides {CAP!r} with protocol (none), not 'p1'"),
                              ("b.api", f"provides {CAP!r} with protocol p2, not 'p1'"))


def test_what_is_not_an_env_problem_does_not_make_a_provider_unusable() -> None:
    assert why(P(env={"X": "${not valid}"})) is None  # malformed: compiling reports it
    assert why(P(env={"X": "${A:?need A}"}), environ={"A": "a"}) is None  # set: its value is not known here
    assert why(P(env={"A": "x", "B": "${A}"})) is None  # a key of its own, set before
