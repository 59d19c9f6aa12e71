"""Capability resolution: the cases mutation testing found unpinned (``make mutate``, benchmarks/MUTATION.md).

Each test names the rule it pins: the exact wording of why a provider is passed over, which
environment counts as set for a provider and for its dependencies, the walk over a provider's
dependencies, and the JSON form of a choice.
"""

from __future__ import annotations

from typing import Any

from b00t_graph.capabilities import Choice, Resolver, Unresolved
from b00t_graph.errors import Problem
from b00t_graph.loader import Catalog
from b00t_graph.model import Datum, Need

CAP = "embeddings"


def D(ident: str, **kw: Any) -> Datum:
    name, _, typ = ident.rpartition(".")
    return Datum(name=name, type=typ, path=f"/datums/{ident}.toml", **kw)


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
    from b00t_graph.capabilities import parse_use
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
