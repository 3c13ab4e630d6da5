"""Match alerts: every new article is checked against the subscriptions, once, at ingest.

Subscriptions are held in memory behind a presearcher (see `shared.alerting.presearch`) and follow the
Redis change stream, so each article is evaluated only against queries that could match it,
and a subscription change reaches every worker within a second. A near-duplicate
(`duplicate_of` set) raises nothing: its story already did.
"""

from __future__ import annotations

import gc
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from shared import analysis, redis_keys
from shared.alerting.compiled import CompiledQueries, CompiledQuery, Decoder, compile_query, decoded
from shared.alerting.matcher import AnalyzedArticle, matches
from shared.alerting.presearch import Presearcher
from shared.alerting.subscriptions import CHANGES_KEPT, Subscription, effective_query, stored_subscription
from shared.article import Article
from shared.metrics import MATCH_SECONDS
from shared.query import Node
from shared.redis_client import as_text

RELOAD_CHECK_SECONDS = 1.0  # subscription changes take effect within this long
LOAD_BATCH = 1000  # subscriptions read at once when loading them all (one short script in Redis)
SUBSCRIPTIONS_KEPT = 10_000  # matched subscriptions kept in memory, not read again

SNIPPET_CHARS = 240


@dataclass
class Match:
    subscription: Subscription
    matched: list[str]


@dataclass
class SubscriptionMatcher:
    """Active subscriptions' queries, compiled and indexed, kept current from Redis. Only the
    queries stay in memory; a subscription itself is read when it matches (and kept a while)."""

    client: redis.Redis
    presearcher: Presearcher = field(default_factory=Presearcher)
    compiled: dict[str, Node | str] = field(default_factory=dict)  # a tree, or its stored form
    _decoder: Decoder = field(default_factory=Decoder)
    _subscriptions: dict[str, Subscription] = field(default_factory=dict)
    _queries: CompiledQueries | None = None
    _last_change: str | None = None
    _checked_at: float = float("-inf")

    def refresh(self, *, force: bool = False) -> None:
        """Apply subscription changes (at most once a second unless forced)."""
        now = time.monotonic()
        if not force and now - self._checked_at < RELOAD_CHECK_SECONDS:
            return
        self._checked_at = now
        if self._last_change is None or self._missed_changes():
            self._load_all()
            return
        changes: Any = self.client.xrange(redis_keys.SUBSCRIPTION_CHANGES, min=f"({self._last_change}", max="+")
        if not changes:
            return
        self._last_change = as_text(changes[-1][0])
        ids = sorted({as_text(fields[b"id"]) for _, fields in changes})
        raws: Any = self.client.hmget(redis_keys.SUBSCRIPTIONS, ids)
        self._apply(list(zip(ids, raws, strict=True)))

    def _load_all(self) -> None:
        newest: Any = self.client.xrevrange(redis_keys.SUBSCRIPTION_CHANGES, count=1)
        self._last_change = as_text(newest[0][0]) if newest else "0-0"  # read before loading: no gap
        self.presearcher = Presearcher()
        self.compiled = {}
        self._subscriptions = {}
        self._decoder = Decoder()
        collecting = gc.isenabled()
        gc.disable()  # everything made here lives on: collections would only walk it over and over
        try:
            for compiled, others in self.queries.scan(LOAD_BATCH):
                entries = self._decoder.decode_many([raw_entry for _, raw_entry in compiled])
                indexed = []
                for (subscription_id, _), entry in zip(compiled, entries, strict=True):
                    if entry is None:
                        others.append((subscription_id, self.client.hget(redis_keys.SUBSCRIPTIONS, subscription_id)))
                    else:
                        self.compiled[subscription_id] = entry.node
                        indexed.append((subscription_id, entry.keys, entry.all_of))
                self.presearcher.add_many(indexed)
                self._apply(others)
        finally:
            if collecting:
                gc.enable()
        self.queries.prune(len(self.compiled))

    @property
    def queries(self) -> CompiledQueries:
        if self._queries is None:
            self._queries = CompiledQueries(self.client)
        return self._queries

    def _missed_changes(self) -> bool:
        # The change stream is trimmed near CHANGES_KEPT entries; only then can changes this
        # matcher has not seen be gone, and a full reload is the safe answer.
        if int(self.client.xlen(redis_keys.SUBSCRIPTION_CHANGES)) < CHANGES_KEPT * 9 // 10:
            return False
        oldest: Any = self.client.xrange(redis_keys.SUBSCRIPTION_CHANGES, count=1)
        return bool(oldest) and _stream_id(as_text(oldest[0][0])) > _stream_id(self._last_change or "0-0")

    def _apply(self, stored: list[tuple[str, Any]]) -> None:
        """Index the given subscriptions as stored (None: deleted). Compiled queries come from
        Redis, and those not there yet are compiled and kept."""
        wanted: dict[str, str] = {}
        for subscription_id, raw in stored:
            self._subscriptions.pop(subscription_id, None)
            record = json.loads(raw) if raw else None
            if record is None or not record.get("active", True):
                self.compiled.pop(subscription_id, None)
                self.presearcher.remove(subscription_id)
            else:
                wanted[subscription_id] = effective_query(record["query"], record.get("filter"))
        texts = sorted(set(wanted.values()))
        entries: dict[str, CompiledQuery] = {}
        fresh: dict[str, CompiledQuery] = {}
        for text, raw_entry in zip(texts, self.queries.get(texts), strict=True):
            entry = decoded(self._decoder, raw_entry)
            if entry is None:
                entry = fresh[text] = compile_query(text, self.presearcher.key_load)
            entries[text] = entry
        self.queries.put(fresh)
        for subscription_id, text in wanted.items():
            self._index(subscription_id, entries[text])

    def _index(self, subscription_id: str, entry: CompiledQuery) -> None:
        self.compiled[subscription_id] = entry.node
        self.presearcher.add_keys(subscription_id, entry.keys, entry.all_of)

    def match(self, article: Article) -> list[Match]:
        """The subscriptions this article satisfies, with the terms that matched."""
        self.refresh()
        if not self.compiled:
            return []
        doc = AnalyzedArticle.of(article)
        hits = []
        for subscription_id in self.presearcher.article_candidates(doc):
            node = self.compiled[subscription_id]
            if isinstance(node, str):
                node = self.compiled[subscription_id] = self._decoder.tree(node)
            doc.matched.clear()
            if matches(node, doc):
                hits.append((subscription_id, sorted(set(doc.matched))))
        if not hits:
            return []
        subscriptions = self._subscriptions_of([subscription_id for subscription_id, _ in hits])
        return [
            Match(subscriptions[subscription_id], matched)
            for subscription_id, matched in hits
            if subscription_id in subscriptions
        ]

    def _subscriptions_of(self, ids: list[str]) -> dict[str, Subscription]:
        """The matched subscriptions, from memory or in one read; one paused or deleted since
        it was indexed is left out (the change reaches the index within a second)."""
        found = {
            subscription_id: self._subscriptions[subscription_id]
            for subscription_id in ids
            if subscription_id in self._subscriptions
        }
        missing = [subscription_id for subscription_id in ids if subscription_id not in found]
        if missing:
            if len(self._subscriptions) + len(missing) > SUBSCRIPTIONS_KEPT:
                self._subscriptions.clear()
            for subscription_id, raw in zip(missing, self.client.hmget(redis_keys.SUBSCRIPTIONS, missing), strict=True):
                subscription = stored_subscription(raw) if raw else None
                if subscription is not None and subscription.active:
                    found[subscription_id] = self._subscriptions[subscription_id] = subscription
        return found


def _stream_id(value: str) -> tuple[int, int]:
    milliseconds, _, sequence = value.partition("-")
    return int(milliseconds), int(sequence or 0)


def match_alerts(article: Article, matcher: SubscriptionMatcher) -> list[Match]:
    """The subscriptions an article raises alerts for: none for a near-duplicate."""
    if article.duplicate_of is not None:
        return []
    with MATCH_SECONDS.time():
        return matcher.match(article)


_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")


def highlight(article: Article, matched: list[str]) -> str:
    """The first sentence holding a matched word, with matched words in **bold**."""
    stems: set[str] = set()
    prefixes: set[str] = set()
    for term in matched:
        value = term.split(":")[-1].split("~")[0].strip('"')
        if value.endswith("*"):
            prefixes.add(value.rstrip("*"))
        else:
            stems.update(value.split())
    for source in (article.title, article.text):
        for sentence in _SENTENCE.findall(source):
            marked, hit = _mark(sentence, stems, prefixes)
            if hit:
                return marked.strip()[:SNIPPET_CHARS]
    return article.title[:SNIPPET_CHARS]


def _mark(sentence: str, stems: set[str], prefixes: set[str]) -> tuple[str, bool]:
    hit = False

    def bold(found: re.Match[str]) -> str:
        nonlocal hit
        word = found.group(0)
        base = analysis.term(word)  # as the analyzer indexes it (memoised there); None: a stop word
        if base is not None and (base in stems or any(base.startswith(prefix) for prefix in prefixes)):
            hit = True
            return f"**{word}**"
        return word

    return _WORD.sub(bold, sentence), hit


def alert_payload(
    subscription: Subscription,
    article: Article,
    matched: list[str],
    story_size: int,
    about: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What every channel receives about one alert: the subscription, why it fired, the article
    (`about`: its `alert_article`, when the caller has it already)."""
    return {
        "subscription": {"id": subscription.id, "name": subscription.name, "owner": subscription.owner},
        "query": subscription.query,
        "matched_terms": matched,
        "snippet": highlight(article, matched),
        "story": alert_story(article, story_size),
        "article": about if about is not None else alert_article(article),
    }


def alert_story(article: Article, story_size: int) -> dict[str, Any]:
    return {"id": article.cluster_id or article.id, "articles": story_size}


def alert_article(article: Article) -> dict[str, Any]:
    """The article as an alert shows it, and as the re-alert policy groups it."""
    return {
        "id": article.id,
        "version": article.version,
        "title": article.title,
        "url": article.url,
        "source": article.source,
        "published_at": article.published_at.isoformat() if article.published_at else None,
        "ingested_at": article.ingested_at.isoformat(),
        "tags": article.tags,
        "countries": article.countries,
        "people": article.people,
        "organizations": article.organizations,
    }
