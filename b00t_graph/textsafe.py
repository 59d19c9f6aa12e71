"""Text from datums, handled safely: split into argv in linear time, escaped before it is printed.

A datum is input from anyone who can write a file in a datum folder. Two things
about its strings must hold whatever they contain:

* :func:`split` turns a shell-style command string into argv with exactly the
  results of :func:`shlex.split` (POSIX mode, no comments), in time linear in
  its length (``shlex`` grows each token one character at a time: a 1 MB
  command took ten seconds, 2 MB forty).
* :func:`escape` makes every control character visible (``\\x1b``, ``\\r``, …)
  so that an escape sequence in a command or a name cannot redraw the
  terminal and hide what a datum runs. ``render`` and the CLI use it for
  everything they print that came from a datum.
"""

from __future__ import annotations

import re

# --- splitting -----------------------------------------------------------------------------------

#: what shlex calls whitespace (a vertical tab or a form feed is part of a word for it, so here too)
_WS = " \t\r\n"
_PLAIN = re.compile(r"[^ \t\r\n'\"\\]+")
_IN_DOUBLE = re.compile(r'[^"\\]+')
#: a run of backslash-escaped characters outside quotes (``a\ b\ c``): every second character is kept
_ESCAPED = re.compile(r"(?:\\[\s\S])+")


def split(text: str) -> list[str]:
    """``shlex.split(text)`` in linear time: same words, same ``ValueError`` messages.

    Words are kept as lists of slices and joined once, never grown character by
    character; each run of ordinary characters is taken by one regular-expression match.
    """
    words: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WS:
            i += 1
        if i >= n:
            return words
        parts: list[str] = []
        while i < n and text[i] not in _WS:
            ch = text[i]
            if ch == "'":  # nothing is special inside single quotes
                end = text.find("'", i + 1)
                if end < 0:
                    raise ValueError("No closing quotation")
                parts.append(text[i + 1:end])
                i = end + 1
            elif ch == '"':  # a backslash escapes only " and \ inside double quotes
                i += 1
                while True:
                    m = _IN_DOUBLE.match(text, i)
                    if m:
                        parts.append(m.group())
                        i = m.end()
                    if i >= n:
                        raise ValueError("No closing quotation")
                    if text[i] == '"':
                        i += 1
                        break
                    if i + 1 >= n:
                        raise ValueError("No escaped character")
                    nxt = text[i + 1]
                    if nxt not in '"\\':
                        parts.append("\\")
                    parts.append(nxt)
                    i += 2
            elif ch == "\\":
                m = _ESCAPED.match(text, i)
                if m is None:  # a backslash at the very end
                    raise ValueError("No escaped character")
                parts.append(m.group()[1::2])
                i = m.end()
            else:
                m = _PLAIN.match(text, i)
                assert m is not None  # ch is none of the characters the pattern excludes
                parts.append(m.group())
                i = m.end()
        words.append("".join(parts))  # "" only for a quoted empty word, as shlex gives


# --- escaping ------------------------------------------------------------------------------------

#: C0 controls, DEL, C1 controls, and the bidirectional overrides that reorder what a terminal shows
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(m: re.Match[str]) -> str:
    ch = m.group()
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` with every control character written out (``ESC`` → ``\\x1b``, CR → ``\\r``)."""
    return _CONTROL.sub(_visible, text) if _CONTROL.search(text) else text


def escape_lines(text: str) -> str:
    """Like :func:`escape`, but newlines stay: for messages b00t-graph itself lays out on several lines."""
    return "\n".join(escape(line) for line in text.split("\n"))


def clip(text: str, limit: int = 200) -> str:
    """At most ``limit`` characters, the cut said: a huge datum value must not flood an error message."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"
