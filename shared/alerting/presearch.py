"""Which queries could match an article, without evaluating them all.

As in Lucene's monitor, every query is indexed under terms it cannot match without: one of
them must be in any article it matches. An article then only needs evaluating against the
queries indexed under its own terms, plus the few that require nothing (a lone `NOT`, a date
range). With 100 000 subscriptions a typical article has a few hundred candidates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any

from shared.alerting.matcher import AnalyzedArticle
from shared.query import And, Empty, MatchAll, Node, Not, Or, Phrase, Range, Term

PREFIX_KEY_CHARS = 3


def required_keys(node: Node, cost: Callable[[frozenset[str]], Any] | None = None) -> frozenset[str] | None:
    """Keys of which every matching article has at least one; None when nothing is required.

    Where an AND offers a choice, `cost` picks (cheapest wins); by default fewer, longer keys.
    """
    cost = cost or _cost
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
        options = [keys for keys in (required_keys(item, cost) for item in node.items) if keys is not None]
        return min(options, key=cost) if options else None
    if isinstance(node, Or):
        union: set[str] = set()
        for item in node.items:
            keys = required_keys(item, cost)
            if keys is None:
                return None
            union |= keys
        return frozenset(union)
    if isinstance(node, (Not, Range, MatchAll, Empty)):
        return None
    return None


def all_required_keys(node: Node) -> frozenset[str]:
    """Keys every matching article has, all of them: a cheap subset test that rules out most
    candidates (the second word of an AND, the other words of a phrase) before evaluation."""
    if isinstance(node, Term):
        keys = required_keys(node)
        return keys if keys is not None and len(keys) == 1 else frozenset()
    if isinstance(node, Phrase):
        return frozenset(f"t:{word}" for word in node.words if word is not None)
    if isinstance(node, And):
        return frozenset().union(*(all_required_keys(item) for item in node.items))
    if isinstance(node, Or) and node.items:
        return frozenset.intersection(*(all_required_keys(item) for item in node.items))
    return frozenset()


def _cost(keys: frozenset[str]) -> tuple[int, int]:
    # Fewer keys, then longer ones: a rare long word narrows the candidates most.
    return len(keys), -min(len(key) for key in keys)


def article_keys(doc: AnalyzedArticle) -> set[str]:
    """Every key an article offers: its text terms, their prefixes, its keyword values."""
    terms = set().union(*doc.terms.values())
    keys = {f"t:{term}" for term in terms}
    keys.update(f"p:{term[:PREFIX_KEY_CHARS]}" for term in terms if len(term) >= PREFIX_KEY_CHARS)
    return keys | _keyword_keys(doc)


def _keyword_keys(doc: AnalyzedArticle) -> set[str]:
    return {f"k:{field}:{value}" for field, values in doc.keywords.items() for value in values}


_prefix = itemgetter(slice(PREFIX_KEY_CHARS))  # a shorter term gives a shorter string: never a key


class Presearcher:
    """An inverted index from required keys to query ids."""

    def __init__(self) -> None:
        self._by_key: dict[str, set[str]] = defaultdict(set)
        self._keys_of: dict[str, tuple[str, ...] | None] = {}
        self._all_of: dict[str, tuple[str, ...]] = {}  # only queries that have such keys
        self._always: set[str] = set()
        # The terms and prefixes any query is filed under or requires, made when first asked
        # for and then kept current (a removed query's may stay: a key more is only looked up).
        self._known: tuple[set[str], set[str]] | None = None

    def add(self, query_id: str, node: Node) -> None:
        # Of an AND's terms, index under the one fewest queries use so far: it is likely the
        # rarest, and it keeps every key's list of queries short.
        keys = required_keys(node, self.key_load)
        self.add_keys(query_id, None if keys is None else tuple(keys), tuple(all_required_keys(node)))

    def add_keys(self, query_id: str, keys: tuple[str, ...] | None, all_of: tuple[str, ...]) -> None:
        """Index a query under keys worked out before (`required_keys`, `all_required_keys`)."""
        self.add_many([(query_id, keys, all_of)])

    def add_many(self, queries: Iterable[tuple[str, tuple[str, ...] | None, tuple[str, ...]]]) -> None:
        """`add_keys` for many queries: (id, keys, all_of) each."""
        keys_of, all_of_of, by_key, always = self._keys_of, self._all_of, self._by_key, self._always
        for query_id, keys, all_of in queries:
            if query_id in keys_of:
                self.remove(query_id)
            keys_of[query_id] = keys
            if all_of:
                all_of_of[query_id] = all_of
            if keys is None:
                always.add(query_id)
            else:
                for key in keys:
                    by_key[key].add(query_id)
            if self._known is not None:
                _file_known(self._known, keys or ())
                _file_known(self._known, all_of)

    def remove(self, query_id: str) -> None:
        keys = self._keys_of.pop(query_id, None)
        self._all_of.pop(query_id, None)
        self._always.discard(query_id)
        for key in keys or ():
            ids = self._by_key.get(key)
            if ids is not None:
                ids.discard(query_id)
                if not ids:
                    del self._by_key[key]

    def key_load(self, keys: frozenset[str]) -> tuple[int, int]:
        """How many queries are filed under these keys so far: a `cost` for `required_keys`."""
        return sum(len(self._by_key.get(key, ())) for key in keys), len(keys)

    def article_candidates(self, doc: AnalyzedArticle) -> list[str]:
        """`candidates` of an article, making only the keys some query has: an article's
        terms meet the known ones in one set intersection."""
        if self._known is None:
            self._known = set(), set()
            _file_known(self._known, self._by_key)
            for all_of in self._all_of.values():
                _file_known(self._known, all_of)
        known_terms, known_prefixes = self._known
        terms = set().union(*doc.terms.values())
        keys = {"t:" + term for term in terms & known_terms}
        if known_prefixes:
            keys.update("p:" + prefix for prefix in set(map(_prefix, terms)) & known_prefixes)
        return self.candidates(keys | _keyword_keys(doc))

    def candidates(self, keys: set[str]) -> list[str]:
        """Queries that may match an article offering `keys`; the rest cannot."""
        found = set(self._always)
        for key in keys:
            ids = self._by_key.get(key)
            if ids:
                found |= ids
        all_of, nothing = self._all_of, ()
        return [query_id for query_id in found if keys.issuperset(all_of.get(query_id, nothing))]

    def __len__(self) -> int:
        return len(self._keys_of)


def _file_known(known: tuple[set[str], set[str]], keys: Iterable[str]) -> None:
    terms, prefixes = known
    for key in keys:
        if key.startswith("t:"):
            terms.add(key[2:])
        elif key.startswith("p:"):
            prefixes.add(key[2:])
