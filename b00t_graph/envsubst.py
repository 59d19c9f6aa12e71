"""``${VAR}`` substitution, compose-style, as a pure function.

Supported: ``${VAR}``, ``${VAR:-default}`` (default when unset or empty),
``${VAR-default}`` (default when unset), ``${VAR:?message}`` / ``${VAR?message}``
(an error with that message), and ``$$`` for a literal ``$``. A ``$`` followed by
anything else is kept as is, so shell snippets such as ``$HOME`` reach the
service unchanged. Defaults may themselves contain references.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

_REF = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}|(\{[^}]*\}?))")


class SubstitutionError(ValueError):
    """A reference that cannot be resolved; ``var`` is its name."""

    def __init__(self, var: str, message: str) -> None:
        self.var = var
        super().__init__(message)


Lookup = Callable[[str], str | None]


def substitute(text: str, lookup: Lookup | Mapping[str, str]) -> str:
    """Replace every reference in ``text``; raise :class:`SubstitutionError` for the first unresolved one."""
    get: Lookup = lookup.get if isinstance(lookup, Mapping) else lookup

    def repl(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        if m.group(5) is not None:
            raise SubstitutionError(m.group(5), f"malformed reference {m.group(0)!r} (write ${{NAME}})")
        var, op, arg = m.group(2), m.group(3), m.group(4)
        value = get(var)
        if op is None:
            if value is None:
                raise SubstitutionError(var, f"${{{var}}} is not set")
            return value
        unset = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return substitute(arg, get) if unset else str(value)
        if unset:
            raise SubstitutionError(var, f"${{{var}}}: {arg or 'is required'}")
        return str(value)

    return _REF.sub(repl, text)


def references(text: str) -> list[str]:
    """Names referenced by ``text`` (for display and dependency hints)."""
    return [m.group(2) for m in _REF.finditer(text) if m.group(2)]
