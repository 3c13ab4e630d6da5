"""WebSub end to end over real HTTP: a hub, the wirewatch API (uvicorn) as the callback,
and a feed that names its hub."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from services.api.app import create_app
from shared.feeds.registry import Feed, FeedRegistry
from shared.feeds.source import FeedSource, feed_client
from shared.sources.push import PushSource
from tests.api_server import serve
from tests.test_feeds import Reply, feed_state


@pytest.fixture
def api_url(settings, redis_client) -> Iterator[str]:
    """The real API on a real port, so a hub can call it back."""
    with serve(create_app(settings, client=redis_client)) as live:
        yield live.url


@pytest.fixture
def hub() -> Iterator[dict[str, Any]]:
    """A real WebSub hub: records subscription requests and verifies intent at the callback."""
    state: dict[str, Any] = {"requests": [], "verifications": [], "challenge": "challenge-42"}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
            state["requests"].append(form)
            self.send_response(202)
            self.end_headers()
            query = urllib.parse.urlencode(
                {
                    "hub.mode": form["hub.mode"],
                    "hub.topic": form["hub.topic"],
                    "hub.challenge": state["challenge"],
                    "hub.lease_seconds": "7200",
                }
            )
            reply = httpx.get(f"{form['hub.callback']}?{query}")
            state["verifications"].append((reply.status_code, reply.text))

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_port}/hub"
    yield state
    server.shutdown()


def feed_naming_hub(hub_url: str, topic: str, items: list[tuple[str, str]]) -> bytes:
    entries = "".join(
        f"<item><title>{title}</title><link>https://desk.example/{guid}</link><guid>{guid}</guid><description>{title}.</description></item>"
        for guid, title in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>Pushed desk</title>'
        f'<atom:link rel="hub" href="{hub_url}"/><atom:link rel="self" href="{topic}"/>{entries}</channel></rss>'
    ).encode()


def test_a_feed_naming_a_hub_is_subscribed_verified_and_pushed_to(settings, redis_client, feed_server, hub, api_url):
    settings = settings.model_copy(update={"public_url": api_url})
    topic = feed_server.url("/pushed.rss")
    feed_server.replies["/pushed.rss"] = Reply(body=feed_naming_hub(hub["url"], topic, [("p-1", "First story")]))
    feed = Feed(url=topic, name="Pushed desk", full_text=False)
    FeedRegistry(redis_client).put(feed)
    source = FeedSource([feed], redis_client, settings, feed_client(settings))

    delivery = source.fetch(feed)
    delivery.on_enqueued()
    (request,) = hub["requests"]
    assert request["hub.mode"] == "subscribe" and request["hub.topic"] == topic
    assert request["hub.callback"].startswith(f"{api_url}/websub/") and request["hub.secret"]
    assert hub["verifications"] == [(200, "challenge-42")]
    state = feed_state(redis_client, topic)
    assert state["websub_state"] == "verified" and float(state["websub_expires"]) > time.time() + 7000
    assert (
        float(state["interval"]) >= settings.feed_max_interval_seconds * 0.9
    )  # pushes now; polling is the slow fallback

    pushed = feed_naming_hub(hub["url"], topic, [("p-1", "First story"), ("p-2", "Second story")])
    signature = "sha256=" + hmac.new(request["hub.secret"].encode(), pushed, hashlib.sha256).hexdigest()
    reply = httpx.post(
        request["hub.callback"],
        content=pushed,
        headers={"X-Hub-Signature": signature, "Content-Type": "application/rss+xml"},
    )
    assert reply.status_code == 202
    assert taken_by_fetcher(source) == ["Second story"]  # only what is new
    assert feed_state(redis_client, topic)["status"] == "pushed: 1 new of 2 items"

    forged = feed_naming_hub(hub["url"], topic, [("p-3", "Forged story")])
    reply = httpx.post(request["hub.callback"], content=forged, headers={"X-Hub-Signature": "sha256=" + "0" * 64})
    assert reply.status_code == 202 and taken_by_fetcher(source) == []


def taken_by_fetcher(source: FeedSource) -> list[str]:
    """The titles the fetcher takes from the push stream now, each delivery marked as queued."""
    titles = []
    for delivery in PushSource(source.redis, source).poll():
        titles += [article.title for article in delivery.articles]
        delivery.on_enqueued()
    return titles


def test_a_verification_for_a_topic_never_asked_for_is_refused(settings, redis_client, api_url):
    redis_client.hset("ww:websub", "k1", "https://desk.example/feed")
    redis_client.hset(
        "ww:feed:https://desk.example/feed",
        mapping={"websub_topic": "https://desk.example/feed", "websub_state": "pending", "websub_callback": "k1"},
    )
    wrong = httpx.get(
        f"{api_url}/websub/k1",
        params={"hub.mode": "subscribe", "hub.topic": "https://evil.example/feed", "hub.challenge": "x"},
    )
    assert wrong.status_code == 404
    unknown = httpx.get(
        f"{api_url}/websub/nope", params={"hub.mode": "subscribe", "hub.topic": "t", "hub.challenge": "x"}
    )
    assert unknown.status_code == 404
    right = httpx.get(
        f"{api_url}/websub/k1",
        params={"hub.mode": "subscribe", "hub.topic": "https://desk.example/feed", "hub.challenge": "ok-1"},
    )
    assert (right.status_code, right.text) == (200, "ok-1")


def forged_verification(api_url: str, key: str, topic: str, **extra: str) -> httpx.Response:
    params = {"hub.mode": "subscribe", "hub.topic": topic, "hub.challenge": "forged", **extra}
    return httpx.get(f"{api_url}/websub/{key}", params=params)


def test_a_callback_key_is_a_random_secret_and_a_verification_only_answers_a_pending_request(
    settings, redis_client, feed_server, hub, api_url
):
    from shared.article import digest

    settings = settings.model_copy(update={"public_url": api_url})
    topic = feed_server.url("/secret.rss")
    feed_server.replies["/secret.rss"] = Reply(body=feed_naming_hub(hub["url"], topic, [("s-1", "Story")]))
    feed = Feed(url=topic, full_text=False)
    source = FeedSource([feed], redis_client, settings, feed_client(settings))
    source.fetch(feed).on_enqueued()
    assert hub["verifications"] == [(200, "challenge-42")]
    key = hub["requests"][0]["hub.callback"].rsplit("/", 1)[1]
    assert key not in (digest(topic), digest(feed.url)) and len(key) >= 40
    redis_client.hset(f"ww:feed:{topic}", "websub_state", "pending")  # as while a renewal waits
    # Anyone can compute a hash of the feed URL; it names no subscription.
    assert forged_verification(api_url, digest(topic), topic).status_code == 404
    assert feed_state(redis_client, topic)["websub_state"] == "pending"
    # The real key, once verified, is not pending any more: a replay is refused too.
    redis_client.hset(f"ww:feed:{topic}", "websub_state", "verified")
    assert forged_verification(api_url, key, topic, **{"hub.lease_seconds": "315360000"}).status_code == 404
    redis_client.hset(f"ww:feed:{topic}", "websub_state", "pending")
    reply = forged_verification(api_url, key, topic, **{"hub.lease_seconds": "315360000"})
    assert (reply.status_code, reply.text) == (200, "forged")
    state = feed_state(redis_client, topic)
    assert float(state["websub_expires"]) <= time.time() + settings.websub_lease_seconds  # bounded by what we asked


@pytest.mark.parametrize("lease", ["ten", "-5", "0", "1e9", "\u0663"])
def test_a_lease_that_is_not_a_positive_whole_number_is_a_bad_request(settings, redis_client, api_url, lease):
    redis_client.hset("ww:websub", "k1", "https://desk.example/feed")
    redis_client.hset(
        "ww:feed:https://desk.example/feed",
        mapping={"websub_topic": "https://desk.example/feed", "websub_state": "pending", "websub_callback": "k1"},
    )
    reply = forged_verification(api_url, "k1", "https://desk.example/feed", **{"hub.lease_seconds": lease})
    assert reply.status_code == 400 and reply.json()["error"]["status"] == 400
    assert feed_state(redis_client, "https://desk.example/feed")["websub_state"] == "pending"


def test_a_signature_header_that_is_not_ascii_is_a_bad_signature(settings, redis_client, api_url):
    redis_client.hset("ww:websub", "k1", "https://desk.example/feed")
    redis_client.hset("ww:feed:https://desk.example/feed", mapping={"websub_callback": "k1", "websub_secret": "s3cret"})
    reply = httpx.post(
        f"{api_url}/websub/k1", content=b"<rss/>", headers={"X-Hub-Signature": "sha256=\u00e9".encode("latin-1")}
    )
    assert reply.status_code == 202
    assert redis_client.xlen("ww:push-stream") == 0


def test_a_lease_about_to_end_is_renewed(settings, redis_client, feed_server, hub, api_url):
    settings = settings.model_copy(update={"public_url": api_url})
    topic = feed_server.url("/renew.rss")
    feed_server.replies["/renew.rss"] = Reply(body=feed_naming_hub(hub["url"], topic, [("r-1", "Story")]))
    feed = Feed(url=topic, full_text=False)
    source = FeedSource([feed], redis_client, settings, feed_client(settings))
    source.fetch(feed).on_enqueued()
    assert len(hub["requests"]) == 1
    source.fetch(feed)  # verified, lease long: nothing to do
    assert len(hub["requests"]) == 1
    redis_client.hset(f"ww:feed:{topic}", "websub_expires", str(time.time() + 600))  # ends within the day
    source.fetch(feed)
    assert len(hub["requests"]) == 2 and hub["requests"][1]["hub.secret"] == hub["requests"][0]["hub.secret"]
