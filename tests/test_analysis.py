"""The analyzer's fast path for ASCII text against its general Unicode word rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.analysis import MAX_TOKEN_CHARS, analyze, tokenize, tokenize_unicode

# The characters whose word rules differ: letters, digits, the joiners between them, the
# connector and some punctuation and space that always split.
ASCII_PIECES = st.text(alphabet="aZq09_.',:;-/ \n\"!?@#$%&()", max_size=60)
# The same with the Latin letters and news punctuation the fast path takes, and a few it must
# leave to the general rules (a Greek letter, a superscript, a combining accent, an ideograph).
LATIN_PIECES = st.text(alphabet="aZ09_.',:;- éÀÿĀž’‘“”–—…\u00a0\ufffdα²\u0301中ª", max_size=60)
WORDS = st.lists(st.sampled_from(["U.S", "O'Brien", "2,000", "3.5bn", "a_b", "__", "x:y", "e.g.", "1;2", "4'5"]))


@settings(max_examples=2000, deadline=None)
@given(ASCII_PIECES)
def test_ascii_path_cuts_as_the_unicode_rules_do(text: str) -> None:
    assert tokenize(text) == tokenize_unicode(text)


@settings(max_examples=2000, deadline=None)
@given(LATIN_PIECES)
def test_latin_path_cuts_as_the_unicode_rules_do(text: str) -> None:
    assert tokenize(text) == tokenize_unicode(text)


@settings(max_examples=500, deadline=None)
@given(WORDS, ASCII_PIECES)
def test_ascii_path_on_joined_words(words: list[str], glue: str) -> None:
    text = glue.join(words)
    assert tokenize(text) == tokenize_unicode(text)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        (
            "The U.S. fired 2,000 shells at O'Brien's farm.",
            ["The", "U.S", "fired", "2,000", "shells", "at", "O'Brien's", "farm"],
        ),
        ("3.5bn a_b __ x:y 1;2 e.g.", ["3.5bn", "a_b", "x:y", "1;2", "e.g"]),
    ],
)
def test_ascii_tokens(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens == tokenize_unicode(text)


def test_long_tokens_are_cut_as_the_engine_cuts_them() -> None:
    word = "a" * (MAX_TOKEN_CHARS * 2 + 3)
    assert tokenize(f"x {word} y") == ["x", "a" * MAX_TOKEN_CHARS, "a" * MAX_TOKEN_CHARS, "aaa", "y"]
    assert tokenize(f"x {word} y") == tokenize_unicode(f"x {word} y")


def test_analyze_stems_lowers_and_leaves_gaps_for_stop_words() -> None:
    assert analyze("Korea's missiles were launched at the sea") == [
        "korea",
        "missil",
        "were",
        "launch",
        None,
        None,
        "sea",
    ]
    # The memo of terms gives the same answer the second time.
    assert analyze("Korea's missiles") == ["korea", "missil"]
