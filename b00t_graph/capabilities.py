"""Capability resolution: which datum fills each ``[b00t.requires.<slot>]``, as a pure function.

A datum that *needs* a capability (``Need``) names preferred providers; a datum that
*provides* one says so (``Datum.provides`` + ``Datum.protocol``). Resolving a need picks the
first usable name in ``prefer``, else ``fallback``, else the only provider; ``use``
(``--use SLOT=NAME``) overrides. *Usable* means: the provider loads, everything it depends on
exists and loads, its required environment is set, and the runtimes it and its dependencies
need are reachable. Reachability is an injected predicate (runtime kind → why not, or
``None``) so that compiling stays pure: ``plan --offline`` passes none and only the first
checks apply. The choice becomes an ordinary dependency edge of the datum that needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import attrs

from .engines import ENGINE_HOST_VAR
from .envsubst import SubstitutionError, substitute
from .errors import CapabilityError
from .loader import Catalog
from .model import Datum, Need

#: runtime kind (``docker``, ``process``, …) → why it cannot be reached, or ``None`` when it can.
Reachable = Callable[[str], str | None]


@attrs.frozen
class Choice:
    """How one need of one datum was filled, for ``plan`` (``embeddings → ollama-embeddings.api``)."""

    datum: str
    slot: str
    capability: str
    protocol: str | None
    chosen: str
    #: ``preferred 1 of 2``, ``fallback``, ``only provider``, ``--use``
    how: str
    #: candidates considered before the chosen one, each with why it was passed over
    passed_over: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return f"{self.slot} → {self.chosen} ({self.how})"

    def as_json(self) -> dict[str, object]:
        return {"slot": self.slot, "capability": self.capability, "protocol": self.protocol,
                "chosen": self.chosen, "how": self.how,
                "passed_over": [{"datum": i, "why": w} for i, w in self.passed_over]}


@attrs.frozen
class Unresolved:
    """A need no candidate can fill: every candidate considered, each with why it was passed over."""

    datum: Datum
    need: Need
    candidates: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        want = repr(self.need.capability) + (f" (protocol {self.need.protocol})" if self.need.protocol else "")
        head = f"{self.datum.path}: b00t.requires.{self.need.slot}: {self.datum.id} needs {want}, "
        if not self.candidates:
            return head + "and no datum provides it ([b00t.provides] capability)"
        lines = [head + "and no candidate is usable:"]
        lines += [f"    {ident}: {why}" for ident, why in self.candidates]
        lines.append(f"    choose one with --use {self.need.slot}=NAME, or fix one of them")
        return "\n".join(lines)


def parse_use(items: Sequence[str]) -> dict[str, str]:
    """``["embeddings=ollama-embeddings"]`` → ``{"embeddings": "ollama-embeddings"}``; exit 2 when malformed."""
    out: dict[str, str] = {}
    for item in items:
        slot, eq, name = item.partition("=")
        if not eq or not slot.strip() or not name.strip():
            raise CapabilityError([f"--use {item!r}: expected SLOT=NAME (e.g. --use embeddings=openai-embeddings)"])
        out[slot.strip()] = name.strip()
    return out


def _matches(name: str, ident: str) -> bool:
    """``ollama-embeddings`` and ``ollama-embeddings.api`` both name ``ollama-embeddings.api``."""
    return name == ident or name == ident.rpartition(".")[0]


class Resolver:
    """Resolves needs against one catalogue, one environment and one reachability predicate.

    Pure: it reads the catalogue and the mappings it was given, nothing else. Usability of a
    provider is computed once and remembered.
    """

    def __init__(self, catalog: Catalog, environ: Mapping[str, str], reachable: Reachable | None = None,
                 use: Mapping[str, str] | None = None) -> None:
        self.catalog = catalog
        self.environ = environ
        self.reachable = reachable
        self.use = dict(use or {})
        self.used_slots: set[str] = set()
        self._why: dict[str, str | None] = {}
        self._reach: dict[str, str | None] = {}
        self._by_capability: dict[str, list[Datum]] = {}
        for ident in sorted(catalog.datums):
            d = catalog.datums[ident]
            if d.provides:
                self._by_capability.setdefault(d.provides, []).append(d)

    def providers(self, capability: str) -> list[Datum]:
        return list(self._by_capability.get(capability, []))

    # --- usability ------------------------------------------------------------------------------

    def why_unusable(self, ident: str) -> str | None:
        """Why ``ident`` cannot be used as a provider now, or ``None`` when it can."""
        if ident not in self._why:
            self._why[ident] = self._check(ident)
        return self._why[ident]

    def _check(self, ident: str) -> str | None:
        cat = self.catalog
        if ident in cat.broken:
            first = cat.broken[ident][0]
            return f"does not load ({first.key + ': ' if first.key else ''}{first.message})"
        # Its static closure: everything it depends on must exist and load; collect exports and runtimes.
        seen: dict[str, Datum] = {}
        stack = [ident]
        while stack:
            cur = stack.pop()
            if cur in seen:
                continue
            datum = cat.datums.get(cur)
            if datum is None:
                if cur in cat.broken:
                    return f"depends on {cur}, which does not load"
                return f"depends on {cur}, which no datum provides"
            seen[cur] = datum
            stack.extend(e for e in datum.edges if e not in datum.optional)
        # What its dependencies export (its own keys are not "set" for its own self-references).
        exported = {k for i, d in seen.items() if i != ident for k in (*d.env, *d.env_defaults)}
        own = cat.datums[ident]
        missing: list[str] = []
        for i, d in seen.items():
            has = exported | (set(own.env) | set(own.env_defaults) if i == ident else set())
            for name in d.env_required:
                if name not in self.environ and name not in has and name not in missing:
                    missing.append(name)
        missing += [n for n in _unset_references(own, exported | set(own.env_defaults), self.environ)
                    if n not in missing]
        if missing:
            return ", ".join(missing) + (" is" if len(missing) == 1 else " are") + " not set"
        if self.reachable is not None:
            # a docker datum on a named engine is asked of that engine (``docker@NAME``)
            kinds = (f"{d.runtime}@{d.engine}" if d.engine and d.engine != "default" else d.runtime
                     for d in seen.values() if d.runtime)
            for kind in dict.fromkeys(kinds):
                if kind not in self._reach:
                    self._reach[kind] = self.reachable(kind)
                why = self._reach[kind]
                if why:
                    return f"the {kind} runtime is unreachable ({why})"
        return None

    # --- resolution -----------------------------------------------------------------------------

    def resolve(self, datum: Datum, need: Need) -> Choice | Unresolved:
        """Fill one need of ``datum``."""
        providers = self.providers(need.capability)
        fit = [p for p in providers if need.protocol is None or p.protocol == need.protocol]
        off = [(p.id, f"provides {need.capability!r} with protocol {p.protocol or '(none)'}, "
                f"not {need.protocol!r}") for p in providers if p not in fit]

        def choice(ident: str, how: str, passed: list[tuple[str, str]]) -> Choice:
            return Choice(datum=datum.id, slot=need.slot, capability=need.capability, protocol=need.protocol,
                          chosen=ident, how=how, passed_over=tuple(passed))

        if need.slot in self.use:
            self.used_slots.add(need.slot)
            name = self.use[need.slot]
            hits = [p.id for p in fit if _matches(name, p.id)]
            if hits:
                return choice(hits[0], "--use", [])
            return Unresolved(datum, need, ((name, self._not_a_provider(name, need)),))

        passed: list[tuple[str, str]] = []
        considered: set[str] = set()

        def first_usable(name: str) -> str | None:
            hits = [p.id for p in fit if _matches(name, p.id)]
            if not hits:
                if not any(_matches(name, i) for i, _ in passed):
                    passed.append((name, self._not_a_provider(name, need)))
                return None
            for ident in hits:
                if ident in considered:
                    continue
                considered.add(ident)
                why = self.why_unusable(ident)
                if why is None:
                    return ident
                passed.append((ident, why))
            return None

        for i, name in enumerate(need.prefer):
            got = first_usable(name)
            if got:
                return choice(got, f"preferred {i + 1} of {len(need.prefer)}", passed)
        if need.fallback:
            got = first_usable(need.fallback)
            if got:
                return choice(got, "fallback", passed)
        rest = [p.id for p in fit if p.id not in considered]
        if not need.prefer and not need.fallback and len(fit) == 1:
            why = self.why_unusable(fit[0].id)
            if why is None:
                return choice(fit[0].id, "only provider", passed)
            passed.append((fit[0].id, why))
        else:
            for ident in rest:
                why = self.why_unusable(ident)
                passed.append((ident, why or "not in prefer or fallback"))
        return Unresolved(datum, need, tuple(passed + off))

    def _not_a_provider(self, name: str, need: Need) -> str:
        if any(_matches(name, i) for i in self.catalog.broken):
            ident = next(i for i in sorted(self.catalog.broken) if _matches(name, i))
            first = self.catalog.broken[ident][0]
            return f"{ident} does not load ({first.key + ': ' if first.key else ''}{first.message})"
        named = [d for i, d in sorted(self.catalog.datums.items()) if _matches(name, i)]
        if not named:
            return "no such datum"
        d = named[0]
        if d.provides != need.capability:
            return f"{d.id} does not provide {need.capability!r}" + (
                f" (it provides {d.provides!r})" if d.provides else "")
        return f"{d.id} speaks protocol {d.protocol or '(none)'}, not {need.protocol!r}"

    def unused(self) -> list[str]:
        """``--use`` slots no datum of the graph needs: almost certainly a typo."""
        return [s for s in self.use if s not in self.used_slots]


def _unset_references(datum: Datum, exported: set[str], environ: Mapping[str, str]) -> list[str]:
    """Names the datum's own env needs that nothing sets (references without a default)."""
    missing: list[str] = []
    own: set[str] = set()
    for key, value in datum.env.items():
        known = exported | own | set(environ) | set(missing) | {ENGINE_HOST_VAR}  # always set
        for _ in range(32):  # each pass finds one more unset name
            try:
                substitute(value, dict.fromkeys(known, ""))
                break
            except SubstitutionError as exc:
                if exc.var in known or not exc.var.isidentifier():  # malformed: not an env problem
                    break
                missing.append(exc.var)
                known.add(exc.var)
        own.add(key)
    return missing

