"""Which queries could match an article, without evaluating them all.

As in Lucene's monitor, every query is indexed under terms it cannot match without: one of
them must be in any article it matches. An article then only needs evaluating against the
queries indexed under its own terms, plus the few that require nothing (a lone `NOT`, a date
range). With 100 000 subscriptions a typical article has a few hundred candidates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from shared.matcher import AnalyzedArticle
from shared.query import And, Empty, MatchAll, Node, Not, Or, Phrase, Range, Term

PREFIX_KEY_CHARS = 3


def required_keys(node: Node) -> frozenset[str] | None:
    """Keys of which every matching article has at least one; None when nothing is required."""
    if isinstance(node, Term):
        if node.field in (None, "title", "text"):
            if not node.prefix:
                return frozenset({f"t:{node.value}"})
            return frozenset({f"p:{node.value[:PREFIX_KEY_CHARS]}"}) if len(node.value) >= PREFIX_KEY_CHARS else None
        return None if node.prefix else frozenset({f"k:{node.field}:{node.value}"})
    if isinstance(node, Phrase):
        words = [word for word in node.words if word is not None]
        return frozenset({f"t:{max(words, key=len)}"})  # the longest word: likely the rarest
    if isinstance(node, And):
        options = [keys for keys in map(required_keys, node.items) if keys is not None]
        return min(options, key=_cost) if options else None
    if isinstance(node, Or):
        union: set[str] = set()
        for item in node.items:
            keys = required_keys(item)
            if keys is None:
                return None
            union |= keys
        return frozenset(union)
    if isinstance(node, (Not, Range, MatchAll, Empty)):
        return None
    return None


def _cost(keys: frozenset[str]) -> tuple[int, int]:
    # Fewer keys, then longer ones: a rare long word narrows the candidates most.
    return len(keys), -min(len(key) for key in keys)


def article_keys(doc: AnalyzedArticle) -> set[str]:
    """Every key an article offers: its text tokens, their prefixes, its keyword values."""
    keys: set[str] = set()
    for tokens in doc.positions.values():
        for token in tokens:
            keys.add(f"t:{token}")
            if len(token) >= PREFIX_KEY_CHARS:
                keys.add(f"p:{token[:PREFIX_KEY_CHARS]}")
    for field, values in doc.keywords.items():
        keys.update(f"k:{field}:{value}" for value in values)
    return keys


class Presearcher:
    """An inverted index from required keys to query ids."""

    def __init__(self) -> None:
        self._by_key: dict[str, set[str]] = defaultdict(set)
        self._keys_of: dict[str, frozenset[str] | None] = {}
        self._always: set[str] = set()

    def add(self, query_id: str, node: Node) -> None:
        self.remove(query_id)
        keys = required_keys(node)
        self._keys_of[query_id] = keys
        if keys is None:
            self._always.add(query_id)
        else:
            for key in keys:
                self._by_key[key].add(query_id)

    def remove(self, query_id: str) -> None:
        keys = self._keys_of.pop(query_id, None)
        self._always.discard(query_id)
        for key in keys or ():
            ids = self._by_key.get(key)
            if ids is not None:
                ids.discard(query_id)
                if not ids:
                    del self._by_key[key]

    def candidates(self, keys: Iterable[str]) -> set[str]:
        found = set(self._always)
        for key in keys:
            ids = self._by_key.get(key)
            if ids:
                found |= ids
        return found

    def __len__(self) -> int:
        return len(self._keys_of)
