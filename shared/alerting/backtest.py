"""Backtest: the alerts a subscription would have sent over the stored articles of the last
days, under its whole policy (grouping, re-alert window, hourly cap, digests) — what an analyst
checks before saving. The replay uses the live path's own pieces (the matcher, the alert
payload, `alert_group`, `repeats`, `digest_period`), in the order articles were first seen."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.alerting.dispatch import alert_group, alert_time, digest_period, repeats, window_seconds
from shared.alerting.matcher import AnalyzedArticle, matches
from shared.alerting.matching import alert_article, alert_payload, alert_story
from shared.alerting.subscriptions import Channel, Subscription
from shared.query import parse_query
from shared.store import Store

MAX_ARTICLES = 10_000  # articles replayed at most; more means a query too broad to alert on


@dataclass
class ReplayedAlert:
    """One alert the subscription would have sent."""

    sent_at: datetime
    delivery: str  # "instant", or "hourly digest" / "daily digest"
    article: dict[str, Any]
    matched_terms: list[str]
    snippet: str  # the sentence that matched, matched words in **bold**
    story: str


@dataclass
class Backtest:
    matched: int
    alerts: list[ReplayedAlert] = field(default_factory=list)
    truncated: bool = False

    def by_day(self) -> list[dict[str, Any]]:
        """The alerts per day (UTC) they would have been sent, oldest day first."""
        days: dict[str, list[ReplayedAlert]] = defaultdict(list)
        for alert in self.alerts:
            days[alert.sent_at.date().isoformat()].append(alert)
        return [
            {
                "day": day,
                "alerts": [
                    {
                        "sent_at": alert.sent_at.isoformat(timespec="seconds"),
                        "delivery": alert.delivery,
                        "story": alert.story,
                        "matched_terms": alert.matched_terms,
                        "snippet": alert.snippet,
                        "article": alert.article,
                    }
                    for alert in alerts
                ],
            }
            for day, alerts in sorted(days.items())
        ]


@dataclass
class MatchingArticle:
    """A stored article a query matches, with the terms that matched it."""

    id: str
    title: str
    url: str | None
    source: str
    published_at: str | None
    matched_terms: list[str]


def draft_subscription(owner: str, query: str, **policy: Any) -> Subscription:
    """A subscription that is never saved, to replay a query and a policy before saving them
    (raises pydantic's ValidationError, a ValueError, for a query or policy that is not valid)."""
    return Subscription(
        name="preview", owner=owner, query=query, channels=[Channel(type="stream", stream="preview")], **policy
    )


def _recent(subscription: Subscription, days: int) -> str:
    return f"({subscription.effective_query}) AND ingested_at:[now-{days}d TO now]"


def matching_articles(store: Store, subscription: Subscription, days: int, limit: int) -> list[MatchingArticle]:
    """Up to `limit` articles first seen in the last `days` days that the subscription's query
    matches, newest first, each with its matched terms."""
    node = parse_query(subscription.effective_query)
    rows = []
    for article in store.search(_recent(subscription, days), limit=limit):
        doc = AnalyzedArticle.of(article)
        matches(node, doc)
        rows.append(
            MatchingArticle(
                id=article.id,
                title=article.title,
                url=article.url,
                source=article.source,
                published_at=article.published_at.isoformat() if article.published_at else None,
                matched_terms=sorted(set(doc.matched)),
            )
        )
    return rows


def backtest(store: Store, subscription: Subscription, days: int) -> Backtest:
    """Replay the subscription over the articles first seen in the last `days` days."""
    node = parse_query(subscription.effective_query)
    found = store.search(_recent(subscription, days), limit=MAX_ARTICLES)
    result = Backtest(matched=len(found), truncated=len(found) >= MAX_ARTICLES)
    memory: dict[str, list[float]] = defaultdict(list)
    per_hour: Counter[int] = Counter()
    for article in sorted(found, key=lambda a: a.ingested_at):
        if article.duplicate_of is not None:  # a copy raises nothing: its original did
            continue
        doc = AnalyzedArticle.of(article)
        if not matches(node, doc):
            continue
        about = {"article": alert_article(article), "story": alert_story(article, 1)}
        group = alert_group(subscription, about)
        moment = alert_time(about)
        if repeats(memory[group], moment, window_seconds(subscription, group)):
            continue
        payload = alert_payload(subscription, article, sorted(set(doc.matched)), 1, about["article"])
        memory[group].append(moment)
        seen = article.ingested_at.timestamp()
        hour = int(seen // 3600)
        over_rate = False
        if subscription.mode == "instant" and subscription.max_per_hour is not None:
            per_hour[hour] += 1
            over_rate = per_hour[hour] > subscription.max_per_hour
        period = digest_period(subscription, over_rate)
        sent = seen if period is None else (seen // period + 1) * period
        result.alerts.append(
            ReplayedAlert(
                sent_at=datetime.fromtimestamp(sent, UTC),
                delivery="instant" if period is None else f"{'hourly' if period == 3600 else 'daily'} digest",
                article=payload["article"],
                matched_terms=payload["matched_terms"],
                snippet=payload["snippet"],
                story=payload["story"]["id"],
            )
        )
    return result
