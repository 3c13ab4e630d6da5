"""A feed that keeps failing raises a source-health alert that subscribers can ask for."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shared.alerting.subscriptions import save_subscription, webhook_subscription
from shared.article import Article
from shared.feeds.source import Feed, FeedSource, feed_client
from shared.queue import report_health
from shared.redis_client import get_redis

FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Desk</title>
<item><title>Ferry resumes</title><link>https://desk.example/ferry</link><description>The ferry runs again.</description></item>
</channel></rss>"""


@pytest.fixture
def flaky() -> Iterator[dict[str, Any]]:
    """A real feed server answering 503 while `down` is set."""
    state: dict[str, Any] = {"down": True}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if state["down"]:
                self.send_response(503)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.end_headers()
            self.wfile.write(FEED)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_port}/feed.xml"
    yield state
    server.shutdown()


def test_the_third_failure_in_a_row_raises_one_event_and_success_resets_the_count(settings, redis_client, flaky):
    events: list[Article] = []
    feed = Feed(url=flaky["url"], name="Desk feed")
    source = FeedSource([feed], redis_client, settings, feed_client(settings), events.append)
    for _ in range(4):
        assert source.fetch(feed) is None
    (event,) = events
    assert event.title == "Feed failing: Desk feed" and event.tags == ["source-health"]
    assert "failed 3 times in a row" in event.text and "503" in event.text
    flaky["down"] = False
    delivery = source.fetch(feed)
    assert delivery is not None
    delivery.on_enqueued()
    flaky["down"] = True
    for _ in range(2):
        source.fetch(feed)
    assert len(events) == 1  # the count started again after the success


def test_a_source_health_subscription_is_alerted(settings, worker, store, receiver, flaky):
    save_subscription(get_redis(settings), "ops", webhook_subscription("feeds", "tags:source-health", receiver.url))
    save_subscription(get_redis(settings), "desk", webhook_subscription("news", "ferry", receiver.url))
    feed = Feed(url=flaky["url"], name="Desk feed")
    source = FeedSource([feed], get_redis(settings), settings, feed_client(settings), report_health)
    for _ in range(3):
        source.fetch(feed)
    (alert,) = receiver.wait_for(1)
    assert alert["subscription"]["name"] == "feeds"
    assert alert["article"]["title"] == "Feed failing: Desk feed" and alert["article"]["source"] == "wirewatch"
    store.refresh()
    assert store.count("*") == 0  # an event, never stored as an article


def test_a_feed_silent_far_longer_than_its_rhythm_raises_one_event(settings, redis_client, flaky):
    from datetime import UTC, datetime, timedelta

    from shared.feeds.state import FeedState

    events: list[Article] = []
    feed = Feed(url=flaky["url"], name="Desk feed")
    source = FeedSource([feed], redis_client, settings, feed_client(settings), events.append)
    key = FeedState(redis_client, feed.url)
    # It used to publish every two hours; the newest item it shows is three days old.
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    source._watch_rhythm(feed, key, three_days_ago - timedelta(hours=2))
    source._watch_rhythm(feed, key, three_days_ago)
    assert events == []
    source._watch_rhythm(feed, key, three_days_ago)  # polled again: nothing new
    source._watch_rhythm(feed, key, three_days_ago)
    (event,) = events
    assert event.title == "Feed silent: Desk feed" and event.tags == ["source-health"]
    assert "no new item for 72 hours" in event.text and "every 2.0 hours" in event.text
    source._watch_rhythm(feed, key, datetime.now(UTC))  # a new item: it speaks again
    assert key.read()["silent_reported"] == ""
