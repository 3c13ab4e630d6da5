"""Feeds written or served by an attacker: entries that are no articles, feed-level values
past any sense, a server that trickles its body, binary bytes. One bad entry is set aside with
its reason; one bad feed fails alone and backs off; no request outlives its time limit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from shared import redis_keys
from shared.deadletters import read_dead_letters
from shared.feeds.registry import Feed
from shared.feeds.source import FeedSource, feed_client
from shared.feeds.status import feed_status
from shared.settings import Settings, get_settings
from tests.test_feeds import COURIER, FeedServer, Reply, feed_state

GOOD = "<item><title>Harbour reopens after storm</title><guid>ok-1</guid><link>https://coast.example/ok-1</link>"
GOOD += "<description>The harbour reopened on Tuesday after three days of storm damage repairs.</description></item>"


def hostile_feed(hub: str = "http://[hub") -> bytes:
    """An RSS feed whose every feed-level value and most entries are wrong in a different way."""
    bad_items = [
        ("port", "http://coast.example:99999/a"),
        ("ipv6", "http://[::1"),
        ("idna", "http://ex\u00adample.com/story"),
    ]
    items = "".join(
        f"<item><title>Bad {name}</title><guid>bad-{name}</guid><link>{link}</link>"
        f"<description>Entry with a bad link ({name}).</description></item>"
        for name, link in bad_items
    )
    dated = (
        "<item><title>Far future</title><guid>future</guid><link>https://coast.example/future</link>"
        "<pubDate>Fri, 31 Dec 9999 23:00:00 -0500</pubDate><description>Dated past the calendar.</description></item>"
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">'
        f'<channel><title>Coast</title><ttl>\u00b2</ttl><atom:link rel="hub" href="{hub}"/>'
        f"{items}{dated}{GOOD}</channel></rss>"
    ).encode()


def feeds_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(f"WIREWATCH_{name.upper()}", value)
    get_settings.cache_clear()
    return get_settings()


def source(settings: Settings, client: redis.Redis, *feeds: Feed) -> FeedSource:
    return FeedSource(list(feeds), client, settings, feed_client(settings))


def test_one_bad_entry_is_set_aside_with_its_reason_and_the_rest_go_on(
    feed_server: FeedServer, settings: Settings, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = feeds_settings(settings, monkeypatch, public_url="https://wirewatch.example")
    feed_server.replies["/coast.rss"] = Reply(body=hostile_feed(), headers={"Content-Type": "application/rss+xml"})
    feed = Feed(url=feed_server.url("/coast.rss"), full_text=False)

    delivery = source(settings, redis_client, feed).fetch(feed)

    assert delivery is not None
    titles = sorted(article.title for article in delivery.articles)
    assert "Harbour reopens after storm" in titles and "Far future" in titles  # a bad date is no date, not a loss
    future = next(article for article in delivery.articles if article.title == "Far future")
    assert future.published_at is None
    letters = read_dead_letters(redis_client)
    assert {letter["item"]["title"] for letter in letters} == {"Bad port", "Bad ipv6"}
    assert all(letter["stage"] == "feed" and letter["reason"].startswith("unreadable entry") for letter in letters)
    delivery.on_enqueued()
    state = feed_state(redis_client, feed.url)
    assert state["entries_refused"] == "2" and "unreadable entry" in state["last_entry_problem"]
    assert state["failures"] == "0" and state["websub_state"] == "failed"  # the hub's URL is no URL
    [row] = feed_status(redis_client, [feed])
    assert row["entries_set_aside"].startswith("2 at the last poll (unreadable entry")
    # the next poll of the same feed keeps nothing twice
    feed_server.replies["/coast.rss"] = Reply(body=hostile_feed(), headers={"Content-Type": "application/rss+xml"})
    source(settings, redis_client, feed).fetch(feed)
    assert len(read_dead_letters(redis_client)) == 2


def test_an_entry_whose_page_cannot_be_fetched_keeps_its_summary(
    feed_server: FeedServer, settings: Settings, redis_client: redis.Redis
) -> None:
    idna_only = COURIER.replace(b"https://courier.example.com/news/c-1", "http://ex\u00adample.com/c-1".encode())
    idna_only = idna_only.replace(b"<title>Council approves new bus depot</title>", b"<title>Bad idna</title>")
    idna_only = idna_only.replace(b"https://courier.example.com/news/c-2", feed_server.url("/news/c-2").encode())
    feed_server.replies["/coast.rss"] = Reply(body=idna_only, headers={"Content-Type": "application/rss+xml"})
    feed = Feed(url=feed_server.url("/coast.rss"))
    feed_server.replies["/news/c-2"] = Reply(body=b"<html><body><p>River page.</p></body></html>")

    delivery = source(settings, redis_client, feed).fetch(feed)

    assert delivery is not None
    idna = next(article for article in delivery.articles if article.title == "Bad idna")
    assert any("not fetched" in note and "IDNA" in note for note in idna.notes)
    river = next(article for article in delivery.articles if article.title != "Bad idna")
    assert river.html is not None and "River page." in river.html  # the other entry's page still came


@pytest.mark.parametrize(
    ("ttl", "why"),
    [("\u00b2", "a digit to str.isdigit, not to int"), ("9" * 400, "too large for a float")],
)
def test_a_feed_level_value_past_sense_does_not_break_the_schedule(
    feed_server: FeedServer, settings: Settings, redis_client: redis.Redis, ttl: str, why: str
) -> None:
    body = COURIER.replace(b"<link>https://courier.example.com/</link>", f"<ttl>{ttl}</ttl>".encode())
    feed_server.replies["/courier.rss"] = Reply(body=body, headers={"Content-Type": "application/rss+xml"})
    feed = Feed(url=feed_server.url("/courier.rss"), full_text=False)

    delivery = source(settings, redis_client, feed).fetch(feed)

    assert delivery is not None and len(delivery.articles) == 2, why
    delivery.on_enqueued()
    assert feed_state(redis_client, feed.url)["failures"] == "0"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://ex\u00adample.com/feed.rss", "IDNA"),
        ("http://coast.example:99999/feed.rss", "Port out of range"),
    ],
)
def test_a_feed_that_cannot_be_read_fails_alone_and_backs_off(
    feed_server: FeedServer, settings: Settings, redis_client: redis.Redis, url: str, reason: str
) -> None:
    feed_server.replies["/courier.rss"] = Reply(body=COURIER, headers={"Content-Type": "application/rss+xml"})
    good = Feed(url=feed_server.url("/courier.rss"))
    broken = Feed(url=url)  # no URL at all: raised before any request is made
    feeds = source(settings, redis_client, broken, good)

    deliveries = list(feeds.poll(all_feeds=True))

    assert [len(found.articles) for found in deliveries] == [2]
    state = feed_state(redis_client, broken.url)
    assert state["failures"] == "1" and reason in state["last_error"]
    due = redis_client.zscore(redis_keys.FEEDS_DUE, broken.url)
    assert due is not None and due > time.time() + settings.feed_min_interval_seconds / 2
    assert list(feeds.poll()) == []  # not due again: the next minute asks nothing of it


def test_binary_bytes_served_as_a_feed_are_refused_at_once(
    feed_server: FeedServer, settings: Settings, redis_client: redis.Redis
) -> None:
    noise = bytes((n * 7919 + (n >> 5)) % 254 + 1 for n in range(1_000_000))
    feed_server.replies["/noise.rss"] = Reply(body=noise, headers={"Content-Type": "application/rss+xml"})
    feed = Feed(url=feed_server.url("/noise.rss"))
    started = time.monotonic()

    assert source(settings, redis_client, feed).fetch(feed) is None

    assert time.monotonic() - started < 30  # minutes of charset detection before
    assert "binary" in feed_state(redis_client, feed.url)["last_error"]


# --- a server that trickles its body -----------------------------------------------------------


class Trickle:
    """A real HTTP server that sends a feed's headers at once and then one byte every
    `every` seconds, for at most `lasting` seconds (so it always stops by itself)."""

    def __init__(self, every: float = 0.2, lasting: float = 60.0) -> None:
        self.requests = 0
        self.closed = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(COURIER) * 100))
                self.end_headers()
                ends = time.monotonic() + lasting
                try:
                    for byte in COURIER * 100:
                        if time.monotonic() > ends or outer.closed.is_set():
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(every)
                except OSError:
                    return  # the client gave up, as it should

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/slow.rss"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def trickle() -> Iterator[Trickle]:
    server = Trickle()
    yield server
    server.close()


def test_a_trickling_server_is_cut_off_at_the_request_deadline(
    trickle: Trickle, settings: Settings, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every read gets a byte well within the 5 s read timeout; only a total deadline ends it
    settings = feeds_settings(settings, monkeypatch, fetch_timeout_seconds="5", fetch_deadline_seconds="2")
    feed = Feed(url=trickle.url)
    started = time.monotonic()

    assert source(settings, redis_client, feed).fetch(feed) is None

    took = time.monotonic() - started
    assert took < 6, f"took {took:.1f} s"
    state = feed_state(redis_client, feed.url)
    assert state["failures"] == "1" and "2 s allowed for the whole request" in state["last_error"]


def test_a_stopping_fetcher_ends_a_request_under_way_and_records_no_failure(
    trickle: Trickle, settings: Settings, redis_client: redis.Redis
) -> None:
    feed = Feed(url=trickle.url)
    feeds = source(settings, redis_client, feed)
    threading.Timer(1.0, feeds.stopping.set).start()
    started = time.monotonic()

    assert feeds.fetch(feed) is None

    assert time.monotonic() - started < 4
    assert "failures" not in feed_state(redis_client, feed.url)


@pytest.mark.timeout(120)
def test_sigterm_stops_run_while_a_feed_trickles(trickle: Trickle, settings: Settings, tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("WIREWATCH_")}
    env.update(
        WIREWATCH_REDIS_URL=settings.redis_url or "",
        WIREWATCH_DATA_DIR=str(tmp_path / "run-data"),
        WIREWATCH_URL_ALLOW="127.0.0.1/32",
        WIREWATCH_FEED_HOST_DELAY_SECONDS="0",
    )
    added = subprocess.run(
        [sys.executable, "-m", "services.cli", "feeds", "add", trickle.url], env=env, capture_output=True, timeout=60
    )
    assert added.returncode == 0, added.stderr
    # Due now: a new feed's first poll is otherwise spread over its first interval.
    redis.Redis.from_url(env["WIREWATCH_REDIS_URL"]).zadd(redis_keys.FEEDS_DUE, {trickle.url: 0})
    service = subprocess.Popen(  # a session of its own: on failure its worker and alerter go with it
        [sys.executable, "-m", "services.cli", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while trickle.requests == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert trickle.requests == 1, "the fetcher never asked for the feed"
        time.sleep(1.0)  # well inside the trickle: the request is under way
        started = time.monotonic()
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=20)
        took = time.monotonic() - started
    finally:
        if service.poll() is None:
            os.killpg(service.pid, signal.SIGKILL)
            service.wait()
    assert service.returncode == 0
    print(f"run stopped {took:.1f} s after SIGTERM, its feed request under way")
    assert took < 15, f"stopped {took:.1f} s after SIGTERM"
