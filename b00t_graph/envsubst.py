"""``${VAR}`` substitution, compose-style, as a pure function.

Supported: ``${VAR}``, ``${VAR:-default}`` (default when unset or empty),
``${VAR-default}`` (default when unset), ``${VAR:?message}`` / ``${VAR?message}``
(an error with that message), and ``$$`` for a literal ``$``. A ``$`` followed by
anything else is kept as is, so shell snippets such as ``$HOME`` reach the
service unchanged. Defaults may themselves contain references, up to
:data:`MAX_NESTING` deep (deeper is an error, not a stack overflow).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping

from .textsafe import clip

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS = (":-", ":?", "-", "?")
#: ``${A:-${B:-…}}`` nested deeper than this is refused; real datums nest one or two deep.
MAX_NESTING = 32


class SubstitutionError(ValueError):
    """A reference that cannot be resolved; ``var`` is its name."""

    def __init__(self, var: str, message: str) -> None:
        self.var = var
        super().__init__(message)


Lookup = Callable[[str], str | None]


def substitute(text: str, lookup: Lookup | Mapping[str, str]) -> str:
    """Replace every reference in ``text``; raise :class:`SubstitutionError` for the first unresolved one."""
    get: Lookup = lookup.get if isinstance(lookup, Mapping) else lookup
    return "".join(_scan(text, get, collect=None, depth=0))


def references(text: str) -> list[str]:
    """Names referenced by ``text``, nested defaults included (for display and dependency hints)."""
    names: list[str] = []
    list(_scan(text, lambda _: "", collect=names, depth=0))
    return names


def _scan(text: str, get: Lookup, collect: list[str] | None, depth: int) -> Iterator[str]:
    """A small scanner rather than a regular expression, so defaults can nest."""
    if depth > MAX_NESTING:
        shown = clip(text, 40)
        raise SubstitutionError(shown, f"${{…}} references nested more than {MAX_NESTING} deep (at {shown!r})")
    i, n = 0, len(text)
    while i < n:
        j = text.find("$", i)
        if j < 0:
            yield text[i:]
            return
        yield text[i:j]
        nxt = text[j + 1] if j + 1 < n else ""
        if nxt == "$":
            yield "$"
            i = j + 2
        elif nxt == "{":
            end = _closing(text, j + 1)
            if end < 0:
                raise SubstitutionError(clip(text[j:]), f"malformed reference {clip(text[j:])!r} (no closing brace)")
            yield _expand(text[j:end + 1], text[j + 2:end], get, collect, depth)
            i = end + 1
        else:
            yield "$"  # a bare $ or $NAME is the service's business (shell snippets)
            i = j + 1


def _closing(text: str, open_at: int) -> int:
    depth = 0
    for k in range(open_at, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return -1


def _expand(whole: str, body: str, get: Lookup, collect: list[str] | None, depth: int) -> str:
    m = _NAME.match(body)
    rest = body[m.end():] if m else body
    op = next((o for o in _OPS if rest.startswith(o)), None)
    if m is None or (rest and op is None):
        raise SubstitutionError(clip(whole), f"malformed reference {clip(whole)!r} (write ${{NAME}}, "
                                "${NAME:-default} or ${NAME:?message})")
    var = m.group(0)
    if collect is not None:
        collect.append(var)
        if op is not None and op.endswith("-"):
            list(_scan(rest[len(op):], get, collect, depth + 1))
        return ""
    value = get(var)
    if op is None:
        if value is None:
            raise SubstitutionError(var, f"${{{var}}} is not set")
        return value
    arg = rest[len(op):]
    unset = value is None or (op.startswith(":") and value == "")
    if op.endswith("-"):
        return "".join(_scan(arg, get, None, depth + 1)) if unset else str(value)
    if unset:
        raise SubstitutionError(var, f"${{{var}}}: {arg or 'is required'}")
    return str(value)
