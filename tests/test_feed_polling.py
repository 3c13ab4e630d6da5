"""Polling feeds for months: trust in validators, backoff, adaptive intervals, redirects,
410, full-article fetch, URL safety, and only new entries going on. Real HTTP server."""

from __future__ import annotations

import time

import pytest

from shared import redis_keys
from shared.feeds.registry import FeedRegistry
from shared.feeds.schedule import Bounds, Outcome, declared_minimum, next_interval
from shared.feeds.source import Feed, FeedSource, feed_client
from shared.feeds.status import feed_status
from tests.test_feeds import COURIER, ETAG, Reply, feed_state, rss, serve_courier

BOUNDS = Bounds(minimum=300, maximum=6 * 3600, start=900)


def source(settings, redis_client, *feeds, registry=None, events=None, **overrides):
    settings = settings.model_copy(update=overrides)
    report = events.append if events is not None else (lambda event: None)
    return FeedSource(list(feeds), redis_client, settings, feed_client(settings), report, registry)


def enqueue(delivery):
    assert delivery is not None
    delivery.on_enqueued()
    return delivery.articles


def test_a_304_that_hid_a_change_makes_the_feed_untrusted(feed_server, settings, redis_client):
    feed = serve_courier(feed_server)
    feeds = source(settings, redis_client, feed, feed_validator_check_every=1)
    enqueue(feeds.fetch(feed))
    # The publisher adds an item but keeps its ETag: the server will answer 304 to a conditional GET.
    feed_server.replies["/courier.rss"].body = rss(
        "Valley Courier",
        [
            ("c-1", "Council approves new bus depot"),
            ("c-2", "River levels fall after rain"),
            ("c-3", "Library opens on Sundays"),
        ],
    )
    articles = enqueue(feeds.fetch(feed))
    assert [a.title for a in articles] == ["Library opens on Sundays"]  # found by the check, only the new item
    assert feed_server.headers_of(1).get("if-none-match") == ETAG  # the conditional GET that lied
    assert "if-none-match" not in feed_server.headers_of(2)  # the check
    state = feed_state(redis_client, feed.url)
    assert state["validators"] == "untrusted" and "a 304 hid a change" in state["validators_note"]
    assert feeds.fetch(feed) is None  # unchanged body: nothing new
    assert "if-none-match" not in feed_server.headers_of(3)  # validators no longer sent
    (row,) = feed_status(redis_client, [feed])
    assert row["validators"].startswith("untrusted: a 304 hid a change")


def test_an_honest_304_keeps_the_validators_trusted(feed_server, settings, redis_client):
    feed = serve_courier(feed_server)
    feeds = source(settings, redis_client, feed, feed_validator_check_every=1)
    enqueue(feeds.fetch(feed))
    assert feeds.fetch(feed) is None
    assert feed_server.headers_of(1).get("if-none-match") == ETAG and "if-none-match" not in feed_server.headers_of(2)
    assert feed_state(redis_client, feed.url).get("validators") != "untrusted"
    assert feeds.fetch(feed) is None
    assert feed_server.headers_of(3).get("if-none-match") == ETAG  # no check due yet: a plain conditional GET
    assert len(feed_server.requests) == 4


def test_429_with_retry_after_is_honoured(feed_server, settings, redis_client):
    feed_server.replies["/busy.rss"] = Reply(429, b"slow down", {"Retry-After": "3600"})
    feed = Feed(url=feed_server.url("/busy.rss"))
    feeds = source(settings, redis_client, feed)
    before = time.time()
    assert feeds.fetch(feed) is None
    state = feed_state(redis_client, feed.url)
    assert float(state["interval"]) >= 3600 and state["failures"] == "1" and "retry after 3600" in state["status"]
    assert redis_client.zscore(redis_keys.FEEDS_DUE, feed.url) >= before + 3600
    assert feeds.limiter.next_allowed(feed.url) >= time.monotonic() + 3500


def test_failures_back_off_and_a_success_resets_them(feed_server, settings, redis_client):
    feed_server.replies["/down.rss"] = Reply(503, b"down")
    feed = Feed(url=feed_server.url("/down.rss"))
    feeds = source(settings, redis_client, feed)
    feeds.fetch(feed)
    first = float(feed_state(redis_client, feed.url)["interval"])
    feeds.fetch(feed)
    second = float(feed_state(redis_client, feed.url)["interval"])
    assert second > first * 1.7
    feed_server.replies["/down.rss"] = Reply(body=COURIER)
    enqueue(feeds.fetch(feed))
    assert feed_state(redis_client, feed.url)["failures"] == "0"


def test_a_permanent_redirect_moves_the_feed_and_a_temporary_one_does_not(feed_server, settings, redis_client):
    registry = FeedRegistry(redis_client)
    serve_courier(feed_server, "/new.rss")
    feed_server.replies["/old.rss"] = Reply(301, b"", {"Location": feed_server.url("/new.rss")})
    feed_server.replies["/elsewhere.rss"] = Reply(302, b"", {"Location": feed_server.url("/new.rss")})
    old, temporary = Feed(url=feed_server.url("/old.rss"), name="Courier"), Feed(url=feed_server.url("/elsewhere.rss"))
    registry.put(old)
    registry.put(temporary)
    feeds = source(settings, redis_client, registry=registry)
    enqueue(feeds.fetch(old))
    assert [f.url for f in registry.all()] == [feed_server.url("/elsewhere.rss"), feed_server.url("/new.rss")]
    assert registry.get(feed_server.url("/new.rss")).name == "Courier"
    assert feed_state(redis_client, feed_server.url("/new.rss"))["etag"] == ETAG
    feeds.fetch(temporary)
    assert registry.get(temporary.url) is not None


def test_410_gone_disables_the_feed_and_says_so(feed_server, settings, redis_client):
    registry = FeedRegistry(redis_client)
    feed_server.replies["/gone.rss"] = Reply(410, b"gone")
    feed = Feed(url=feed_server.url("/gone.rss"), name="Old desk")
    registry.put(feed)
    events = []
    feeds = source(settings, redis_client, registry=registry, events=events)
    assert feeds.fetch(feed) is None
    assert registry.get(feed.url).enabled is False
    assert feeds.current_feeds() == []
    assert [e.title for e in events] == ["Feed failing: Old desk"] and "410" in events[0].text
    (row,) = feed_status(redis_client, registry.all())
    assert row["state"] == "disabled" and row["health"].startswith("disabled: HTTP 410 Gone")


def test_only_entries_not_seen_before_go_on_and_a_changed_entry_counts(feed_server, settings, redis_client):
    feed = serve_courier(feed_server)
    feed_server.replies["/courier.rss"].headers.pop("ETag")
    feeds = source(settings, redis_client, feed)
    assert len(enqueue(feeds.fetch(feed))) == 2
    feed_server.replies["/courier.rss"].body = rss(
        "Valley Courier", [("c-1", "Council approves new bus depot"), ("c-2", "River levels fall after heavy rain")]
    )
    (changed,) = enqueue(feeds.fetch(feed))
    assert changed.guid == "c-2" and changed.title == "River levels fall after heavy rain"


def test_short_entries_get_their_linked_page_and_a_failed_page_keeps_the_summary(feed_server, settings, redis_client):
    story = b"<p>" + b"The full story, long and detailed. " * 40 + b"</p>"
    page = b"<html><body><script>var tracker = 1;</script><article>" + story + b"</article></body></html>"
    feed_server.replies["/story-1"] = Reply(body=page, headers={"Content-Type": "text/html; charset=utf-8"})
    items = "".join(
        f"<item><title>{title}</title><link>{feed_server.url(path)}</link><guid>{path}</guid><description>Short summary.</description></item>"
        for title, path in (("Found", "/story-1"), ("Missing", "/story-2"))
    )
    feed_server.replies["/short.rss"] = Reply(
        body=f'<?xml version="1.0"?><rss version="2.0"><channel><title>Short</title>{items}</channel></rss>'.encode()
    )
    feed = Feed(url=feed_server.url("/short.rss"))
    found, missing = enqueue(source(settings, redis_client, feed).fetch(feed))
    assert "The full story" in found.html and found.text == "Short summary."
    assert "<script></script>" in found.html and "tracker" not in found.html  # no step reads the code
    assert any("full article fetched" in note for note in found.notes)
    assert missing.html is None and missing.text == "Short summary."
    assert any("kept the feed's summary" in note for note in missing.notes)


def test_feed_urls_on_private_addresses_are_refused_by_default(feed_server, settings, redis_client):
    feed = serve_courier(feed_server)
    assert source(settings, redis_client, feed, url_allow=None).fetch(feed) is None
    state = feed_state(redis_client, feed.url)
    assert "loopback" in state["last_error"] and feed_server.requests == []


def test_the_feed_list_tags_and_language_reach_the_articles(feed_server, settings, redis_client):
    feed = serve_courier(feed_server).model_copy(update={"tags": ["local"], "language": "en"})
    (first, _) = enqueue(source(settings, redis_client, feed).fetch(feed))
    assert first.source_tags == ["local"] and first.lang == "en"


@pytest.mark.parametrize(
    ("outcome", "current", "expected"),
    [
        (Outcome(new_items=3), 1000, 700),
        (Outcome(), 1000, 1300),
        (Outcome(), 6 * 3600, 6 * 3600),  # capped
        (Outcome(new_items=1), 310, 300),  # floored
        (Outcome(failed=True), 1000, 2000),
        (Outcome(failed=True, retry_after=7200), 1000, 7200),
        (Outcome(new_items=5, declared_minimum=3600), 1000, 3600),  # the publisher's ttl wins
        (Outcome(), None, 900 * 1.3),
    ],
)
def test_next_interval(outcome, current, expected):
    assert next_interval(current, outcome, BOUNDS) == pytest.approx(expected, rel=0.06)


def test_a_fixed_interval_does_not_adapt_but_still_backs_off():
    assert next_interval(1000, Outcome(new_items=9), BOUNDS, fixed=600) == pytest.approx(600, rel=0.06)
    assert next_interval(600, Outcome(failed=True), BOUNDS, fixed=600) == pytest.approx(1200, rel=0.06)


@pytest.mark.parametrize(
    ("feed", "expected"),
    [
        ({"ttl": "60"}, 3600),
        ({"sy_updateperiod": "hourly", "sy_updatefrequency": "2"}, 1800),
        ({"sy_updateperiod": "daily"}, 86400),
        ({"ttl": "soon"}, None),
        ({}, None),
    ],
)
def test_declared_minimum(feed, expected):
    assert declared_minimum(feed) == expected


def test_floors_are_never_undercut_by_jitter():
    for _ in range(200):
        assert next_interval(1000, Outcome(failed=True, retry_after=7200), BOUNDS) >= 7200
        assert next_interval(1000, Outcome(declared_minimum=3600), BOUNDS) >= 3600


def test_a_server_too_slow_to_answer_times_out_and_is_recorded(settings, redis_client):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.end_headers()
            self.wfile.write(COURIER[:40])
            self.wfile.flush()
            time.sleep(3)  # the rest of the body never comes in time

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        feed = Feed(url=f"http://127.0.0.1:{server.server_port}/slow.rss")
        started = time.monotonic()
        assert source(settings, redis_client, feed, fetch_timeout_seconds=0.5).fetch(feed) is None
        assert time.monotonic() - started < 2.5
        state = feed_state(redis_client, feed.url)
        assert state["failures"] == "1" and "timed out" in state["last_error"].lower()
    finally:
        server.shutdown()


def test_fetchers_sharing_the_schedule_poll_a_due_feed_once(feed_server, settings, redis_client):
    feed = serve_courier(feed_server)
    redis_client.zadd(redis_keys.FEEDS_DUE, {feed.url: time.time() - 1})
    first, second = source(settings, redis_client, feed), source(settings, redis_client, feed)
    polled = [delivery for fetcher in (first, second, first) for delivery in fetcher.poll()]
    assert len(feed_server.requests) == 1 and len(polled) == 1
    enqueue(polled[0])  # the poll's outcome sets the next time, past the claim
    assert redis_client.zscore(redis_keys.FEEDS_DUE, feed.url) > time.time() + BOUNDS.minimum / 2


def test_a_claim_left_by_a_fetcher_that_died_runs_out(feed_server, settings, redis_client):
    feed = serve_courier(feed_server)
    redis_client.zadd(redis_keys.FEEDS_DUE, {feed.url: time.time() - 1})
    claimed = source(settings, redis_client, feed, feed_min_interval_seconds=1)._due([feed])
    assert claimed == [feed]  # then the fetcher dies before polling
    survivor = source(settings, redis_client, feed, feed_min_interval_seconds=1)
    assert list(survivor.poll()) == []
    time.sleep(1.1)
    assert len(list(survivor.poll())) == 1 and len(feed_server.requests) == 1
