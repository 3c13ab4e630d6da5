"""Compiled subscription queries kept in Redis, so that a matcher starts without parsing them.

Parsing one query (the Lucene grammar, then the analyzer on every word) costs a fraction of a
millisecond, most of a minute for 100 000 subscriptions. The parsed tree and its presearch
keys are kept in a hash keyed by the query's text, under a fingerprint of the code that
parses, analyzes and indexes: a change to any of it gives a new hash, which the first matcher
to start fills again. Keyed by text, an entry can never belong to another query, and the many
subscriptions that share a query share one entry.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import redis

from shared import analysis, query, redis_keys
from shared.alerting import presearch
from shared.alerting.subscriptions import effective_query
from shared.query import And, Empty, Exists, Fuzzy, MatchAll, Node, Not, Or, Phrase, Range, Term, Wildcard, parse_query

KEPT_SECONDS = 30 * 86400  # a fingerprint no matcher has loaded for this long is dropped

# One step of reading every subscription with its compiled query, done in Redis so that the
# matcher does not parse each subscription's JSON. KEYS: the subscriptions, the compiled
# queries. ARGV: the HSCAN cursor, the batch size. Returns the next cursor; then, as one
# string, `<id> US <entry>` for each active subscription whose query is compiled, joined by
# RS (one reply instead of three per subscription: reading replies costs the matcher more
# than anything else); then pairs of id and stored subscription for the others (its query
# not compiled yet, a form the script does not read, or an id holding a separator). Compact
# JSON escapes every control character, so no entry holds RS or US. The text is built as
# `effective_query` builds it; were they ever to differ, the entry would only be missed,
# never wrong, as entries are keyed by the text they were compiled from.
_SCAN = """
local found = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', tonumber(ARGV[2]))
local out = {found[1], ''}
local compiled = {}
local items = found[2]
for i = 1, #items, 2 do
    local ok, subscription = pcall(cjson.decode, items[i + 1])
    local entry = false
    if ok and type(subscription) == 'table' then
        if subscription.active == false then
            items[i] = nil
        elseif type(subscription.query) == 'string' and not string.find(items[i], '[\\30\\31]') then
            local text = subscription.query
            if type(subscription.filter) == 'string' then
                text = '(' .. subscription.query .. ') AND (' .. subscription.filter .. ')'
            end
            entry = redis.call('HGET', KEYS[2], text)
        end
    end
    if items[i] then
        if entry then
            compiled[#compiled + 1] = items[i] .. '\\31' .. entry
        else
            out[#out + 1] = items[i]
            out[#out + 1] = items[i + 1]
        end
    end
end
out[2] = table.concat(compiled, '\\30')
return out
"""
_RECORDS, _FIELDS = "\x1e", "\x1f"

_LEAVES: dict[str, Callable[..., Node]] = {
    "term": Term,
    "phrase": lambda field, words, *rest: Phrase(field, tuple(words), *rest),
    "wildcard": Wildcard,
    "fuzzy": Fuzzy,
    "exists": Exists,
    "range": Range,
    "all": MatchAll,
    "empty": Empty,
}
_NAMES = {Term: "term", Phrase: "phrase", Wildcard: "wildcard", Fuzzy: "fuzzy", Exists: "exists", Range: "range"}


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    """A query as the matcher keeps it: the tree (or its stored form, until it is needed), the
    keys the presearcher files it under (None: a candidate for every article), and the keys
    every matching article has."""

    node: Node | str
    keys: tuple[str, ...] | None
    all_of: tuple[str, ...]


def code_fingerprint() -> str:
    """Changes whenever parsing, analysis or presearch could give a different result."""
    digest = hashlib.sha256(metadata.version("luqum").encode())
    for module in (query, analysis, presearch, sys.modules[__name__]):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:16]


def compile_query(text: str, cost: Callable[[frozenset[str]], Any] | None = None) -> CompiledQuery:
    """Parse and index one query; `cost` picks among an AND's keys (see `required_keys`)."""
    node = parse_query(text)
    keys = presearch.required_keys(node, cost)
    return CompiledQuery(
        node, None if keys is None else tuple(sorted(keys)), tuple(sorted(presearch.all_required_keys(node)))
    )


def encode(compiled: CompiledQuery) -> str:
    """The stored form: the keys, a newline (never inside compact JSON), the tree."""
    assert not isinstance(compiled.node, str)
    keys = json.dumps([compiled.keys, compiled.all_of], ensure_ascii=False)
    return keys + "\n" + json.dumps(_encode(compiled.node), ensure_ascii=False)


def _encode(node: Node) -> list[Any]:
    if isinstance(node, (And, Or)):
        return ["and" if isinstance(node, And) else "or", [_encode(item) for item in node.items]]
    if isinstance(node, Not):
        return ["not", _encode(node.item)]
    if isinstance(node, MatchAll):
        return ["all"]
    if isinstance(node, Empty):
        return ["empty"]
    if isinstance(node, (Term, Phrase)):
        return [_NAMES[type(node)], node.field, node.value if isinstance(node, Term) else node.words, *_rest(node)]
    if isinstance(node, Wildcard):
        return ["wildcard", node.field, node.pattern]
    if isinstance(node, Fuzzy):
        return ["fuzzy", node.field, node.value, node.edits]
    if isinstance(node, Exists):
        return ["exists", node.field]
    return ["range", node.field, node.low, node.high, node.include_low, node.include_high]


def _rest(node: Term | Phrase) -> list[Any]:
    return [node.prefix, node.text] if isinstance(node, Term) else [node.slop, node.text]


class Decoder:
    """Turns stored entries back into trees; equal leaves and keys across queries become one
    shared object, which keeps 100 000 compiled queries small."""

    def __init__(self) -> None:
        self._leaves: dict[tuple[Any, ...], Node] = {}
        self._keys: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple for equal keys

    def decode(self, raw: bytes | str) -> CompiledQuery:
        """The keys of a stored entry; its tree stays text until `tree` is asked for it (most
        queries are never a candidate, and the text is smaller than the tree)."""
        text = raw.decode() if isinstance(raw, bytes) else raw
        head, newline, tree = text.partition("\n")
        if not newline or not tree:
            raise ValueError("no tree in a compiled query")
        return self._compiled(tree, json.loads(head))

    def decode_many(self, raws: list[str]) -> list[CompiledQuery | None]:
        """`decode` for many entries, their keys read in one JSON parse; None for a damaged one."""
        heads, trees = [], []
        for raw in raws:
            head, _, tree = raw.partition("\n")
            heads.append(head)
            trees.append(tree)
        try:
            parsed = json.loads("[" + ",".join(heads) + "]")
            if len(parsed) != len(raws):
                raise ValueError("entries run into each other")
        except ValueError:  # a damaged entry among them: each alone
            return [decoded(self, raw) for raw in raws]
        found: list[CompiledQuery | None] = []
        known = self._keys
        for tree, head in zip(trees, parsed, strict=True):  # `_compiled` inline: it runs 100 000 times
            try:
                keys, all_of = head
                if keys is not None:
                    keys = tuple(keys)
                    keys = known.get(keys) or self._share(keys)
                all_of = tuple(all_of)
                found.append(CompiledQuery(tree, keys, known.get(all_of) or self._share(all_of)) if tree else None)
            except (ValueError, TypeError, KeyError, IndexError):
                found.append(None)
        return found

    def _compiled(self, tree: str, head: Any) -> CompiledQuery:
        keys, all_of = head
        return CompiledQuery(tree, None if keys is None else self._share(tuple(keys)), self._share(tuple(all_of)))

    def _share(self, keys: tuple[str, ...]) -> tuple[str, ...]:
        """One tuple of interned keys for equal keys across queries."""
        found = self._keys.get(keys)
        if found is None:
            found = tuple(map(sys.intern, keys))
            self._keys[found] = found
        return found

    def tree(self, stored: str) -> Node:
        return self._node(json.loads(stored))

    def _node(self, tree: list[Any]) -> Node:
        kind = tree[0]
        if kind == "and":
            return And(tuple(self._node(item) for item in tree[1]))
        if kind == "or":
            return Or(tuple(self._node(item) for item in tree[1]))
        if kind == "not":
            return Not(self._node(tree[1]))
        values = tuple(tuple(value) if isinstance(value, list) else value for value in tree[1:])
        key = (kind, *values)
        node = self._leaves.get(key)
        if node is None:
            strings = (sys.intern(value) if isinstance(value, str) else value for value in values)
            node = self._leaves[key] = _LEAVES[kind](*strings)
        return node


class CompiledQueries:
    """The Redis hash of compiled queries for the running code."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.key = redis_keys.compiled_queries(code_fingerprint())
        self._scan = client.register_script(_SCAN)

    def scan(self, batch: int) -> Iterator[tuple[list[tuple[str, str]], list[tuple[str, Any]]]]:
        """Every active subscription, a batch at a time: (id, compiled entry) for those whose
        query is compiled, (id, stored subscription) for the others."""
        cursor: Any = 0
        while True:
            found: Any = self._scan(keys=[redis_keys.SUBSCRIPTIONS, self.key], args=[cursor, batch])
            cursor = found[0]
            records = _text(found[1])
            compiled = [
                (subscription_id, entry)
                for subscription_id, _, entry in (
                    record.partition(_FIELDS) for record in (records.split(_RECORDS) if records else ())
                )
            ]
            others = [(_text(found[at]), found[at + 1]) for at in range(2, len(found), 2)]
            yield compiled, others
            if int(cursor) == 0:
                return

    def get(self, texts: list[str]) -> list[bytes | None]:
        found: Any = self.client.hmget(self.key, texts) if texts else []
        return list(found)

    def put(self, compiled: dict[str, CompiledQuery]) -> None:
        if compiled:
            pipe = self.client.pipeline(transaction=False)
            pipe.hset(self.key, mapping={text: encode(entry) for text, entry in compiled.items()})
            pipe.expire(self.key, KEPT_SECONDS)
            pipe.execute()

    def prune(self, subscriptions: int) -> None:
        """Drop the entries of queries no subscription has any more, once they are many, and
        keep the hash for another while."""
        if int(self.client.hlen(self.key)) > 2 * subscriptions + 1000:
            texts = {
                effective_query(record["query"], record.get("filter"))
                for record in map(json.loads, self.client.hvals(redis_keys.SUBSCRIPTIONS))
            }
            stale = [text for text in (_text(raw) for raw in self.client.hkeys(self.key)) if text not in texts]
            for start in range(0, len(stale), 10_000):
                self.client.hdel(self.key, *stale[start : start + 10_000])
        self.client.expire(self.key, KEPT_SECONDS)


def decoded(decoder: Decoder, raw: bytes | str | None) -> CompiledQuery | None:
    """An entry decoded, or None when there is none or it is damaged (it is compiled again)."""
    if raw is None:
        return None
    try:
        return decoder.decode(raw)
    except (ValueError, TypeError, KeyError, IndexError):
        return None


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
