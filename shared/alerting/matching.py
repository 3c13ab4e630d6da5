"""Match alerts: every new article is checked against the subscriptions, once, at ingest.

Subscriptions are held in memory behind a presearcher (see `shared.alerting.presearch`) and follow the
Redis change stream, so each article is evaluated only against queries that could match it,
and a subscription change reaches every worker within a second. A near-duplicate
(`duplicate_of` set) raises nothing: its story already did.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from shared import redis_keys
from shared.alerting.matcher import AnalyzedArticle, matches
from shared.alerting.presearch import Presearcher, article_keys
from shared.alerting.subscriptions import CHANGES_KEPT, Subscription
from shared.analysis import stem
from shared.article import Article
from shared.metrics import MATCH_SECONDS
from shared.query import Node, parse_query
from shared.redis_client import as_text

RELOAD_CHECK_SECONDS = 1.0  # subscription changes take effect within this long

SNIPPET_CHARS = 240


@dataclass
class Match:
    subscription: Subscription
    matched: list[str]


@dataclass
class SubscriptionMatcher:
    """Active subscriptions, compiled and indexed, kept current from Redis."""

    client: redis.Redis
    presearcher: Presearcher = field(default_factory=Presearcher)
    compiled: dict[str, tuple[Subscription, Node]] = field(default_factory=dict)
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
        for subscription_id, raw in zip(ids, self.client.hmget(redis_keys.SUBSCRIPTIONS, ids), strict=True):
            self._apply(subscription_id, Subscription.model_validate_json(raw) if raw else None)

    def _load_all(self) -> None:
        newest: Any = self.client.xrevrange(redis_keys.SUBSCRIPTION_CHANGES, count=1)
        self._last_change = as_text(newest[0][0]) if newest else "0-0"  # read before loading: no gap
        self.presearcher = Presearcher()
        self.compiled = {}
        for raw in self.client.hvals(redis_keys.SUBSCRIPTIONS):
            subscription = Subscription.model_validate_json(raw)
            self._apply(subscription.id, subscription)

    def _missed_changes(self) -> bool:
        # The change stream is trimmed near CHANGES_KEPT entries; only then can changes this
        # matcher has not seen be gone, and a full reload is the safe answer.
        if int(self.client.xlen(redis_keys.SUBSCRIPTION_CHANGES)) < CHANGES_KEPT * 9 // 10:
            return False
        oldest: Any = self.client.xrange(redis_keys.SUBSCRIPTION_CHANGES, count=1)
        return bool(oldest) and _stream_id(as_text(oldest[0][0])) > _stream_id(self._last_change or "0-0")

    def _apply(self, subscription_id: str, subscription: Subscription | None) -> None:
        if subscription is None or not subscription.active:
            self.compiled.pop(subscription_id, None)
            self.presearcher.remove(subscription_id)
            return
        node = parse_query(subscription.effective_query)
        self.compiled[subscription_id] = (subscription, node)
        self.presearcher.add(subscription_id, node)

    def match(self, article: Article) -> list[Match]:
        """The subscriptions this article satisfies, with the terms that matched."""
        self.refresh()
        if not self.compiled:
            return []
        doc = AnalyzedArticle.of(article)
        found = []
        for subscription_id in self.presearcher.candidates(article_keys(doc)):
            subscription, node = self.compiled[subscription_id]
            doc.matched.clear()
            if matches(node, doc):
                found.append(Match(subscription, sorted(set(doc.matched))))
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
        base = stem(re.sub(r"['’]s$", "", word.lower()))
        if base in stems or any(base.startswith(prefix) for prefix in prefixes):
            hit = True
            return f"**{word}**"
        return word

    return _WORD.sub(bold, sentence), hit


def alert_payload(subscription: Subscription, article: Article, matched: list[str], story_size: int) -> dict[str, Any]:
    """What every channel receives about one alert: the subscription, why it fired, the article."""
    return {
        "subscription": {"id": subscription.id, "name": subscription.name, "owner": subscription.owner},
        "query": subscription.query,
        "matched_terms": matched,
        "snippet": highlight(article, matched),
        "story": {"id": article.cluster_id or article.id, "articles": story_size},
        "article": {
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
        },
    }
