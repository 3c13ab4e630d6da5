"""Evaluates parsed queries on one article, in memory: how alert subscriptions match at ingest.

The semantics are Elasticsearch's for the query DSL the same tree becomes (shared analyzer,
phrases on consecutive positions, `~N` as Lucene's sloppy phrase, wildcards and fuzzy terms over
the indexed terms, keyword fields compared exactly), and the SQLite store uses these functions
where SQL cannot say it, so a subscription fires exactly on the articles a search would find.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from typing import Protocol, cast

from shared.article import Article
from shared.query import (
    LIST_FIELDS,
    SCALAR_FIELDS,
    And,
    Empty,
    Exists,
    Fuzzy,
    MatchAll,
    Node,
    Not,
    Or,
    Phrase,
    Range,
    Term,
    Wildcard,
    format_datetime,
)


class Positions(Protocol):
    """Where each term stands in a field: `phrase_in` only asks for one term's positions."""

    def get(self, term: str, default: list[int], /) -> list[int]: ...


class _FieldPositions:
    """A field's term positions, found when a phrase first asks for a term (in C, by
    `list.index`): most articles meet few phrase queries, and those ask for few terms."""

    __slots__ = ("_found", "_tokens")

    def __init__(self, tokens: list[str | None]) -> None:
        self._tokens = tokens
        self._found: dict[str, list[int]] = {}

    def get(self, term: str, default: list[int], /) -> list[int]:
        found = self._found.get(term)
        if found is None:
            found = self._found[term] = []
            index, at = self._tokens.index, -1
            try:
                while True:
                    at = index(term, at + 1)
                    found.append(at)
            except ValueError:  # no further occurrence
                pass
        return found or default


class AnalyzedArticle:
    """An article's fields in the form queries are evaluated against, computed once: each text
    field's analyzed tokens and set of terms; term positions, sorted terms and formatted dates
    only when a query asks for them."""

    __slots__ = (
        "_dates",
        "_ingested_at",
        "_positions",
        "_published_at",
        "_sorted",
        "keywords",
        "matched",
        "terms",
        "tokens",
    )

    def __init__(self, tokens: dict[str, list[str | None]], keywords: dict[str, set[str]], article: Article) -> None:
        self.tokens = tokens
        self.terms = {name: _term_set(analyzed) for name, analyzed in tokens.items()}
        self.keywords = keywords
        self.matched: list[str] = []
        self._published_at, self._ingested_at = article.published_at, article.ingested_at
        self._dates: dict[str, str | None] | None = None
        self._positions: dict[str, _FieldPositions] = {}
        self._sorted: dict[str, list[str]] = {}

    @classmethod
    def of(cls, article: Article) -> AnalyzedArticle:
        keywords = {name: set(getattr(article, name)) for name in LIST_FIELDS}
        for name in SCALAR_FIELDS:
            value = getattr(article, name)
            keywords[name] = {value} if value else set()
        return cls(article.analysis(), keywords, article)

    @property
    def dates(self) -> dict[str, str | None]:
        if self._dates is None:
            published = self._published_at
            self._dates = {
                "published_at": format_datetime(published) if published else None,
                "ingested_at": format_datetime(self._ingested_at),
            }
        return self._dates

    def positions(self, name: str) -> Positions:
        """Where each term stands in a text field (stop words keep their places)."""
        found = self._positions.get(name)
        if found is None:
            found = self._positions[name] = _FieldPositions(self.tokens[name])
        return found

    def has_prefix(self, name: str, prefix: str) -> bool:
        """Whether a term of a text field starts with `prefix` (by bisection of its sorted terms)."""
        ordered = self._sorted.get(name)
        if ordered is None:
            ordered = self._sorted[name] = sorted(self.terms[name])
        at = bisect_left(ordered, prefix)
        return at < len(ordered) and ordered[at].startswith(prefix)


def _term_set(tokens: list[str | None]) -> set[str]:
    terms = set(tokens)  # in C, then the stop words' gaps out
    terms.discard(None)
    return cast(set[str], terms)


def matches(node: Node, doc: AnalyzedArticle) -> bool:
    """True when the article satisfies the query; matched leaves are appended to `doc.matched`."""
    if isinstance(node, MatchAll):
        return True
    if isinstance(node, Empty):
        return False
    if isinstance(node, And):
        return all(matches(item, doc) for item in node.items)
    if isinstance(node, Or):
        return any([matches(item, doc) for item in node.items])  # list: record every matching branch
    if isinstance(node, Not):
        before = len(doc.matched)
        result = not matches(node.item, doc)
        del doc.matched[before:]  # what a NOT clause found is not why the article matched
        return result
    if isinstance(node, Term):
        where = _term(node, doc)
    elif isinstance(node, Phrase):
        where = next((name for name in _text_fields(node.field) if phrase_in(node, doc.positions(name))), None)
    elif isinstance(node, (Wildcard, Fuzzy)):
        where = _expanded(node, doc)
    elif isinstance(node, Exists):
        where = node.field if doc.keywords.get(node.field) or doc.dates.get(node.field) else None
    else:
        where = node.field if _range(node, doc) else None
    if where is not None:
        doc.matched.append(describe(node, where))
    return where is not None


def describe(node: Term | Phrase | Wildcard | Fuzzy | Exists | Range, field: str | None = None) -> str:
    """A short human form of a matched leaf, for alert explanations: `text:missil`,
    `title:"ballist missil"`, `tags:sanctions` (the field it matched in, if it is known)."""
    if isinstance(node, Term):
        text = node.value + ("*" if node.prefix else "")
    elif isinstance(node, Phrase):
        text = '"' + " ".join(word or "_" for word in node.words) + '"' + (f"~{node.slop}" if node.slop else "")
    elif isinstance(node, Wildcard):
        text = node.pattern
    elif isinstance(node, Fuzzy):
        text = f"{node.value}~{node.edits}"
    elif isinstance(node, Exists):
        text = "*"
    else:
        text = f"[{node.low or '*'} TO {node.high or '*'}]"
    field = field or node.field
    return f"{field}:{text}" if field else text


def _text_fields(name: str | None) -> tuple[str, ...]:
    return ("title", "text") if name is None else (name,)


def _term(node: Term, doc: AnalyzedArticle) -> str | None:
    """The field the term matched in (the title first), or None."""
    if node.field in doc.keywords:
        values = doc.keywords[node.field]
        if node.prefix:
            return node.field if any(value.startswith(node.value) for value in values) else None
        return node.field if node.value in values else None
    for name in _text_fields(node.field):
        if doc.has_prefix(name, node.value) if node.prefix else node.value in doc.terms[name]:
            return name
    return None


def phrase_in(node: Phrase, tokens: Positions) -> bool:
    """Lucene's phrase match: every word at its offset in the phrase (stop words keep their
    place); with slop, the positions may stray from those offsets by at most `slop` moves in
    all (the largest minus the smallest of position - offset)."""
    offsets = [(offset, word) for offset, word in enumerate(node.words) if word is not None]
    lists = [tokens.get(word, []) for _, word in offsets]
    if not all(lists):
        return False
    if node.slop == 0:
        rest = [(offset, set(positions)) for (offset, _), positions in zip(offsets[1:], lists[1:], strict=True)]
        return any(all(start + offset in positions for offset, positions in rest) for start in lists[0])
    shifted = [
        [position - offset for position in positions] for (offset, _), positions in zip(offsets, lists, strict=True)
    ]
    return _smallest_window(shifted) - 1 <= node.slop


def term_matches(node: Wildcard | Fuzzy, candidate: str) -> bool:
    """Whether one indexed term (a token, or a keyword value) is one the pattern or fuzzy term
    stands for."""
    if isinstance(node, Wildcard):
        return _wildcard_regex(node.pattern).fullmatch(candidate) is not None
    if abs(len(candidate) - len(node.value)) > node.edits:
        return False
    return edit_distance(node.value, candidate, node.edits) <= node.edits


def expand(node: Wildcard | Fuzzy, terms: Iterable[str]) -> list[str]:
    """The indexed terms a wildcard or fuzzy term stands for."""
    return [term for term in terms if term_matches(node, term)]


@lru_cache(maxsize=4096)
def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def edit_distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein distance (an adjacent transposition is one edit, as in Lucene's
    fuzzy query), stopping early once every path exceeds `limit`."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def _expanded(node: Wildcard | Fuzzy, doc: AnalyzedArticle) -> str | None:
    if node.field in doc.keywords:
        return node.field if expand(node, doc.keywords[node.field]) else None
    for name in _text_fields(node.field):
        if expand(node, doc.terms[name]):
            return name
    return None


def _smallest_window(lists: list[list[int]]) -> int:
    """Length of the shortest token span holding one occurrence of every word (SQLite NEAR)."""
    events = sorted((position, word) for word, positions in enumerate(lists) for position in positions)
    counts: dict[int, int] = defaultdict(int)
    covered, left, best = 0, 0, len(events) + 1_000_000
    for position, word in events:
        counts[word] += 1
        if counts[word] == 1:
            covered += 1
        while covered == len(lists):
            first_position, first_word = events[left]
            best = min(best, position - first_position + 1)
            counts[first_word] -= 1
            if counts[first_word] == 0:
                covered -= 1
            left += 1
    return best


def _range(node: Range, doc: AnalyzedArticle) -> bool:
    value = doc.dates.get(node.field)
    if value is None:
        return False
    low, high = node.bounds()
    if low is not None and (value < low if node.include_low else value <= low):
        return False
    if high is not None and (value > high if node.include_high else value >= high):
        return False
    return True
