"""``textsafe``: the linear splitter gives exactly ``shlex.split``'s answers; escaping shows every control."""

from __future__ import annotations

import shlex
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b00t_graph.textsafe import clip, escape, escape_lines, split


def _shlex(text: str) -> list[str] | tuple[str, str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        return ("error", str(exc))


def _ours(text: str) -> list[str] | tuple[str, str]:
    try:
        return split(text)
    except ValueError as exc:
        return ("error", str(exc))


#: the characters shlex treats specially, plus ordinary ones, a vertical tab (a word character to shlex)
#: and non-ASCII text: dense in the cases where a splitter goes wrong
_TRICKY = st.text(alphabet=st.sampled_from(list("ab -=/.\t\n\r'\"\\\x0b\x0c#$é")), max_size=40)
#: command lines as people write them
_WORD = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="'\"\\ \t\r\n"),
                min_size=1, max_size=12)
_ARG = st.one_of(_WORD, _WORD.map(lambda w: f"'{w} x'"), _WORD.map(lambda w: f'"{w} $x"'),
                 _WORD.map(lambda w: f"--{w}=\"a b\""), _WORD.map(lambda w: f"{w}\\ z"))
_COMMAND = st.lists(_ARG, max_size=8).map(" ".join)


@settings(max_examples=400, deadline=None)
@given(_TRICKY)
def test_split_matches_shlex_on_tricky_text(text: str) -> None:
    assert _ours(text) == _shlex(text)


@settings(max_examples=200, deadline=None)
@given(_COMMAND)
def test_split_matches_shlex_on_command_lines(text: str) -> None:
    assert _ours(text) == _shlex(text)


@pytest.mark.parametrize("text, words", [
    ("python3 -m http.server 8000", ["python3", "-m", "http.server", "8000"]),
    ("sh -c 'echo \"hi there\"'", ["sh", "-c", 'echo "hi there"']),
    ('a "b\\"c" d\\ e', ["a", 'b"c', "d e"]),
    ('"x\\y"', ["x\\y"]),  # inside double quotes a backslash escapes only " and \
    ("'' \"\"", ["", ""]),
    ("  ", []),
])
def test_split_examples(text: str, words: list[str]) -> None:
    assert split(text) == words == shlex.split(text)


@pytest.mark.parametrize("text, message", [
    ("a 'b", "No closing quotation"), ('a "b', "No closing quotation"), ('"b\\"', "No closing quotation"),
    ("a\\", "No escaped character"), ('"a\\', "No escaped character"),
])
def test_split_errors_are_shlex_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split(text)


@pytest.mark.parametrize("make", [
    lambda n: "a" * n,  # one huge word: shlex grows it a character at a time
    lambda n: '"' + "b" * n + '"',
    lambda n: "c\\ " * (n // 3),
], ids=["word", "double-quoted", "escapes"])
def test_split_is_linear(make: object) -> None:
    """2 MB in a fraction of a second (shlex.split: ~39 s for 2 MB, minutes on a loaded machine).

    Four times the input takes about four times as long (quadratic would be sixteen); the bounds are loose
    so a busy CI machine does not fail it, and still far below what shlex needs.
    """
    assert callable(make)
    small, big = make(500_000), make(2_000_000)
    t0 = time.perf_counter()
    split(small)
    t_small = time.perf_counter() - t0
    t0 = time.perf_counter()
    split(big)
    t_big = time.perf_counter() - t0
    assert t_big < 10.0
    assert t_big < 10 * t_small + 0.5


def test_escape_makes_controls_visible() -> None:
    assert escape("a\x1b[2Kb\rc\x07d\x00e\x7f\x9bf") == "a\\x1b[2Kb\\rc\\x07d\\x00e\\x7f\\x9bf"
    assert escape("evil\u202etxt.exe") == "evil\\u202etxt.exe"  # a bidi override reorders what is shown
    assert escape("tab\there\nnewline") == "tab\\there\\nnewline"
    assert escape("plain ünïcode — fine") == "plain ünïcode — fine"
    assert escape_lines("line one\x1b[1A\nline two") == "line one\\x1b[1A\nline two"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_escaped_text_has_no_control_character(text: str) -> None:
    out = escape(text)
    assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in out)


def test_clip() -> None:
    assert clip("short") == "short"
    assert clip("x" * 1000, 10) == "x" * 10 + "… (990 more characters)"


# --- mutation testing (`make mutate`, benchmarks/MUTATION.md): what its survivors showed unpinned -----------

def test_clip_keeps_text_of_exactly_the_limit() -> None:
    assert clip("x" * 10, 10) == "x" * 10
    assert clip("x" * 11, 10) == "x" * 10 + "… (1 more characters)"


def test_clip_limit_is_200_by_default() -> None:
    assert clip("y" * 200) == "y" * 200
    assert clip("y" * 201) == "y" * 200 + "… (1 more characters)"


def test_split_keeps_the_backslash_before_an_ordinary_character_in_double_quotes() -> None:
    for text in ('"a\\Xb"', '"\\X"'):
        assert split(text) == shlex.split(text)
    assert split('"a\\Xb"') == ["a\\Xb"]


def test_split_a_run_of_escaped_characters() -> None:
    assert split("a\\ b\\ c\\ d") == ["a b c d"] == shlex.split("a\\ b\\ c\\ d")
