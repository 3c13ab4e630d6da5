"""The literal text every match of a regular expression begins with, read from the pattern.

A pattern whose matches all begin with one of a few strings ("fired", "launched", "sign up")
need only be tried where the text has one of them; a text without any of them cannot match.
Finding strings is far quicker than the regex engine's search, which tries every position.
"""

from __future__ import annotations

import functools
import re
import re._constants as _re_constants
import re._parser as _re_parser  # the parse tree a pattern's literal starts are read from
from typing import Any

_MAX_STARTS = 5000
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_AT, _ASSERT, _ASSERT_NOT = _re_constants.AT, _re_constants.ASSERT, _re_constants.ASSERT_NOT
_LITERAL, _IN, _SUBPATTERN, _BRANCH = (
    _re_constants.LITERAL,
    _re_constants.IN,
    _re_constants.SUBPATTERN,
    _re_constants.BRANCH,
)
_REPEATS = (_re_constants.MAX_REPEAT, _re_constants.MIN_REPEAT, _re_constants.POSSESSIVE_REPEAT)


def literal_starts(pattern: re.Pattern[str]) -> set[str] | None:
    """Lower-case ASCII strings one of which begins every match of `pattern` (compiled with
    IGNORECASE), read from its parse tree; None when a match may begin anywhere."""
    try:
        starts, _ = _sequence_starts(list(_re_parser.parse(pattern.pattern, pattern.flags)))
    except (TypeError, ValueError, AttributeError, re.error):
        return None  # a construct this reader does not know: search everywhere
    # up to the first non-ASCII character: the folded text spells only ASCII letters alike
    starts = {_NON_ASCII.split(start, maxsplit=1)[0].lower() for start in starts}
    if not starts or "" in starts:
        return None
    # "missile" already finds every place "missiles" would
    return {start for start in starts if not any(start != other and start.startswith(other) for other in starts)}


def _sequence_starts(items: list[tuple[Any, Any]]) -> tuple[set[str], bool]:
    """The literal beginnings of a parsed sequence, and whether they are the whole of it (so
    that what follows can be appended)."""
    starts = {""}
    for op, value in items:
        if op is _AT or op in (_ASSERT, _ASSERT_NOT):
            continue  # zero width: \\b, lookarounds
        if op is _LITERAL:
            parts, whole = {chr(value)}, True
        elif op is _IN and all(kind is _LITERAL for kind, _ in value):
            parts, whole = {chr(char) for _, char in value}, True
        elif op is _SUBPATTERN:
            # case flags inside only narrow what matches: lower-cased starts still find it
            parts, whole = _sequence_starts(list(value[3]))
        elif op in _REPEATS and value[0] == 0 and value[1] == 1:
            found, whole = _sequence_starts(list(value[2]))
            parts = found | {""}  # "tests?": "test" or "tests"
        elif op is _BRANCH:
            parts, whole = set(), True
            for branch in value[1]:
                found, complete = _sequence_starts(list(branch))
                parts |= found
                whole = whole and complete
        else:
            return starts, False  # a class, a repeat, anything else: the literal part ends here
        longer = {start + part for start in starts for part in parts}
        if len(longer) > _MAX_STARTS:
            return starts, False  # the beginnings so far are enough to find every match
        starts = longer
        if not whole:
            return starts, False
    return starts, True


@functools.cache
def _ignorecase_to_ascii() -> tuple[dict[int, str], re.Pattern[str]]:
    """Characters an IGNORECASE pattern's ASCII letter matches, mapped to that letter (upper
    case, and the few others the regex engine treats as equal: "ſ" is "s", "ı" is "i"), and a
    pattern finding the ones `str.lower` does not turn into that letter."""
    letters = re.compile("[a-z]", re.IGNORECASE)
    table = {ord(char): char.lower() for char in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
    others = "".join(chr(point) for point in range(0x80, 0x10000))
    for found in letters.finditer(others):
        char = found[0]
        table[ord(char)] = next(letter for letter in "abcdefghijklmnopqrstuvwxyz" if re.fullmatch(letter, char, re.I))
    unlike_lower = [chr(point) for point, letter in table.items() if chr(point).lower() != letter]
    return table, re.compile("[" + re.escape("".join(unlike_lower)) + "]")


def fold_like_ignorecase(text: str) -> str:
    """`text` with every character an IGNORECASE ASCII letter would match written as that
    letter, the length kept, so that a literal start is found wherever a match can begin."""
    if text.isascii():
        return text.lower()
    table, unlike_lower = _ignorecase_to_ascii()
    if not unlike_lower.search(text):
        return text.lower()  # other characters lower-case to themselves or to non-ASCII ones
    return text.translate(table)
