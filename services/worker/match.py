"""Match alerts: every new article is checked against every subscription, once, at ingest.

A near-duplicate (`duplicate_of` set) fires no alert: its original already did.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import redis

from shared.article import Article
from shared.matcher import AnalyzedArticle, matches
from shared.query import Node, parse_query
from shared.subscriptions import Subscription, list_subscriptions, subscriptions_version

RELOAD_CHECK_SECONDS = 1.0  # subscription changes take effect within this long


@dataclass
class SubscriptionMatcher:
    """The subscriptions with their parsed queries, reloaded when they change in Redis."""

    client: redis.Redis
    _compiled: list[tuple[Subscription, Node]] = field(default_factory=list)
    _version: int = -1
    _checked_at: float = 0.0

    def subscriptions(self) -> list[tuple[Subscription, Node]]:
        now = time.monotonic()
        if now - self._checked_at >= RELOAD_CHECK_SECONDS:
            self._checked_at = now
            version = subscriptions_version(self.client)
            if version != self._version:
                self._compiled = [(s, parse_query(s.query)) for s in list_subscriptions(self.client)]
                self._version = version
        return self._compiled


def match_alerts(article: Article, matcher: SubscriptionMatcher) -> list[dict[str, Any]]:
    """The alerts this article raises: one per matching subscription, with the matched terms."""
    if article.duplicate_of is not None:
        return []
    compiled = matcher.subscriptions()
    if not compiled:
        return []
    analyzed = AnalyzedArticle.of(article)
    alerts = []
    for subscription, query in compiled:
        analyzed.matched.clear()
        if matches(query, analyzed):
            alerts.append(alert_payload(subscription, article, sorted(set(analyzed.matched))))
    return alerts


def alert_payload(subscription: Subscription, article: Article, matched: list[str]) -> dict[str, Any]:
    """The JSON body a webhook receives."""
    return {
        "subscription": subscription.name,
        "query": subscription.query,
        "webhook": subscription.webhook,
        "matched_terms": matched,
        "article": {
            "id": article.id,
            "title": article.title,
            "url": article.url,
            "source": article.source,
            "published_at": article.published_at.isoformat() if article.published_at else None,
            "tags": article.tags,
            "countries": article.countries,
            "people": article.people,
            "organizations": article.organizations,
            "cluster_id": article.cluster_id,
        },
    }
