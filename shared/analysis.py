"""The text analyzer shared by the SQLite store and the alert matcher.

It mirrors Elasticsearch's `english` analyzer (possessive removal, lower case, English stop
words, Porter stemming) so that a query means the same thing in Kibana, in
`wirewatch search` on the embedded store, and in an alert subscription.
"""

from __future__ import annotations

import re

import snowballstemmer

# Lucene's English stop set, which the Elasticsearch `english` analyzer uses.
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_POSSESSIVE = re.compile(r"['’]s\b", re.IGNORECASE)
_stemmer = snowballstemmer.stemmer("porter")
_stems: dict[str, str] = {}


def stem(word: str) -> str:
    """Porter stem of a lower-case word, memoised: news vocabulary repeats a lot."""
    cached = _stems.get(word)
    if cached is None:
        if word.isdigit():
            return word  # numbers do not stem, and would only fill the memo
        cached = _stemmer.stemWord(word)
        if len(_stems) < 500_000:
            _stems[word] = cached
    return cached


def analyze(text: str) -> list[str | None]:
    """Stemmed, lower-case tokens of `text` in order; a stop word leaves None in its place.

    The gap keeps positions as Elasticsearch keeps them, so "launched an ICBM" is two
    positions apart for phrase and proximity queries here as there.
    """
    words = _TOKEN.findall(_POSSESSIVE.sub("", text).lower())
    return [None if word in STOP_WORDS else stem(word) for word in words]


def terms(text: str) -> list[str]:
    """The searchable tokens of `text`, stop words dropped."""
    return [token for token in analyze(text) if token is not None]
