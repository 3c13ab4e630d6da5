"""The backtest replays a subscription's whole policy over stored articles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.alerting.backtest import backtest
from shared.alerting.subscriptions import Channel, Subscription
from shared.store.sqlite import SqliteStore
from tests.factories import make_article


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    """Three launches on three days in one story, a second write-up of the first, a copy of the
    last, and an article the query does not match; all first seen within the last hour."""
    store = SqliteStore(tmp_path / "store.sqlite3")
    seen = datetime.now(UTC).replace(minute=10, second=0, microsecond=0) - timedelta(hours=1)  # one clock hour
    articles = []
    for number, (day, title) in enumerate(
        (
            ("2026-11-30", "North Korea launches missile into the sea"),
            ("2026-11-30", "Missile launch confirmed by Tokyo"),
            ("2026-12-01", "North Korea launches ICBM"),
            ("2026-12-03", "Two short-range missiles launched from Wonsan"),
            ("2026-12-03", "Sanctions talks resume in Geneva"),
        )
    ):
        article = make_article(title, f"{title}. Officials gave details.", url=f"https://desk.example/{number}")
        article.published_at = datetime.fromisoformat(f"{day}T06:00:00+00:00")
        article.ingested_at = seen + timedelta(minutes=number)
        article.cluster_id = "one-story"
        articles.append(article)
    copy = make_article("Two short-range missiles launched", "A copy.", url="https://other.example/copy")
    copy.duplicate_of, copy.cluster_id, copy.ingested_at = articles[3].id, "one-story", seen + timedelta(minutes=9)
    store.index([*articles, copy])
    return store


def subscription(**policy: object) -> Subscription:
    return Subscription(
        name="launches", owner="desk", query="missile OR ICBM", channels=[Channel(type="stream", stream="s")], **policy
    )


def titles(result) -> list[str]:
    return [alert.article["title"] for alert in result.alerts]


def test_each_new_event_alerts_once_and_second_write_ups_and_copies_stay_quiet(store):
    result = backtest(store, subscription(), days=1)
    assert result.matched == 5
    assert titles(result) == [
        "North Korea launches missile into the sea",
        "North Korea launches ICBM",
        "Two short-range missiles launched from Wonsan",
    ]
    assert all(alert.delivery == "instant" for alert in result.alerts)
    assert result.alerts[0].matched_terms == ["title:missil"]


def test_without_a_window_a_story_alerts_once(store):
    assert titles(backtest(store, subscription(realert_window_hours=0), days=1)) == [
        "North Korea launches missile into the sea"
    ]


def test_alerts_past_the_hourly_cap_wait_for_the_hourly_digest(store):
    result = backtest(store, subscription(max_per_hour=1), days=1)
    assert [alert.delivery for alert in result.alerts] == ["instant", "hourly digest", "hourly digest"]
    hour_end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    assert [alert.sent_at for alert in result.alerts[1:]] == [hour_end, hour_end]


def test_a_daily_subscription_sends_its_alerts_at_the_end_of_the_day(store):
    result = backtest(store, subscription(mode="daily"), days=1)
    assert {alert.delivery for alert in result.alerts} == {"daily digest"}
    seen = datetime.now(UTC) - timedelta(hours=1)
    (day,) = result.by_day()
    assert day["day"] == (seen + timedelta(days=1)).date().isoformat() and len(day["alerts"]) == 3
    assert all(alert.sent_at.time().isoformat() == "00:00:00" for alert in result.alerts)


def test_articles_older_than_the_window_are_not_replayed(store):
    assert backtest(store, subscription(), days=1).matched == 5
    old = make_article("Missile test in 2020", "A missile test.", url="https://desk.example/old")
    old.ingested_at = datetime.now(UTC) - timedelta(days=3)
    store.index([old])
    assert backtest(store, subscription(), days=1).matched == 5
    assert backtest(store, subscription(), days=7).matched == 6
