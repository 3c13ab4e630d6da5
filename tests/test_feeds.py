"""Feeds: the YAML feeds file, and FeedSource against a real local HTTP server."""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from shared import redis_keys
from shared.feeds.source import Feed, FeedsFileError, FeedSource, feed_client, load_feeds
from shared.redis_client import as_text
from shared.settings import Settings

ETAG = '"courier-v1"'
LAST_MODIFIED = "Mon, 02 Jun 2025 09:05:00 GMT"


def rss(title: str, items: list[tuple[str, str]]) -> bytes:
    """A small RSS 2.0 document; items are (guid, headline)."""
    entries = "".join(
        f"<item><title>{headline}</title><link>https://courier.example.com/news/{guid}</link>"
        f'<guid isPermaLink="false">{guid}</guid><pubDate>Mon, 02 Jun 2025 09:00:00 +0000</pubDate>'
        f"<description>{headline}, the council said on Monday.</description></item>"
        for guid, headline in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>https://courier.example.com/</link>{entries}</channel></rss>"
    ).encode()


COURIER = rss("Valley Courier", [("c-1", "Council approves new bus depot"), ("c-2", "River levels fall after rain")])


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FeedServer:
    """A real HTTP server: each path answers with its Reply, honouring If-None-Match against the
    reply's ETag; it records the headers of every request."""

    base: str = ""
    replies: dict[str, Reply] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path

    def headers_of(self, number: int) -> dict[str, str]:
        return {name.lower(): value for name, value in self.requests[number][1].items()}


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    state = FeedServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            state.requests.append((self.path, dict(self.headers.items())))
            reply = state.replies.get(self.path, Reply(404, b"not here"))
            etag = reply.headers.get("ETag")
            if reply.status == 200 and etag and self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def source_for(settings: Settings, client: redis.Redis, *feeds: Feed) -> FeedSource:
    return FeedSource(list(feeds), client, settings, feed_client(settings))


def feed_state(client: redis.Redis, url: str) -> dict[str, str]:
    raw = client.hgetall(redis_keys.feed_validators(url))
    return {as_text(key): as_text(value) for key, value in raw.items()}


def serve_courier(server: FeedServer, path: str = "/courier.rss", **headers: str) -> Feed:
    server.replies[path] = Reply(
        body=COURIER,
        headers={
            "Content-Type": "application/rss+xml; charset=utf-8",
            "ETag": ETAG,
            "Last-Modified": LAST_MODIFIED,
            **headers,
        },
    )
    return Feed(url=server.url(path))


def free_port() -> int:
    """A local port that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- conditional GET --------------------------------------------------------------------------


def test_a_first_fetch_returns_the_feed_articles(
    feed_server: FeedServer, settings: Settings, redis_client: redis.Redis
) -> None:
    feed = serve_courier(feed_server)

    delivery = source_for(settings, redis_client, feed).fetch(feed)

    assert delivery is not None
    depot, river = delivery.articles
    assert (depot.title, depot.guid) == ("Council approves new bus depot", "c-1")
    assert depot.url == "https://courier.example.com/news/c-1"
    assert depot.published_at == datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
    assert depot.source == "Valley Courier"
    assert depot.origin == feed.url
    assert river.guid == "c-2"
    assert feed_server.headers_of(0)["user-agent"] == settings.user_agent
    assert "if-none-match" not in feed_server.headers_of(0)


def test_a_feed_name_overrides_the_feed_title_as_source(
    feed_server: FeedServer, settings: Settings, redis_client: redis.Redis
) -> None:
    feed = serve_courier(feed_server).model_copy(update={"name": "Courier (regional)"})

    delivery = source_for(settings, redis_client, feed).fetch(feed)

    assert delivery is not None
    assert {article.source for article in delivery.articles} == {"Courier (regional)"}


def test_validators_are_stored_only_after_on_enqueued(
    feed_server: FeedServer, settings: Settings, redis_client: redis.Redis
) -> None:
    feed = serve_courier(feed_server)

    delivery = source_for(settings, redis_client, feed).fetch(feed)
    assert delivery is not None
    assert feed_state(redis_client, feed.url) == {}

    delivery.on_enqueued()

    state = feed_state(redis_client, feed.url)
    assert state["etag"] == ETAG
    assert state["last_modified"] == LAST_MODIFIED
    assert state["status"] == "ok: 2 new of 2 items"
    assert datetime.fromisoformat(state["checked_at"]).tzinfo is not None


def test_a_second_fetch_is_conditional_and_a_304_returns_nothing_and_keeps_validators(
    feed_server: FeedServer, settings: Settings, redis_client: redis.Redis
) -> None:
    feed = serve_courier(feed_server)
    feeds = source_for(settings, redis_client, feed)
    first = feeds.fetch(feed)
    assert first is not None
    first.on_enqueued()

    second = feeds.fetch(feed)

    assert second is None
    sent = feed_server.headers_of(1)
    assert sent["if-none-match"] == ETAG
    assert sent["if-modified-since"] == LAST_MODIFIED
    state = feed_state(redis_client, feed.url)
    assert state["status"] == "304 not modified"
    assert (state["etag"], state["last_modified"]) == (ETAG, LAST_MODIFIED)


def test_validators_survive_into_a_new_feed_source(
    feed_server: FeedServer, settings: Settings, redis_client: redis.Redis
) -> None:
    feed = serve_courier(feed_server)
    first = source_for(settings, redis_client, feed).fetch(feed)
    assert first is not None
    first.on_enqueued()

    assert source_for(settings, redis_client, feed).fetch(feed) is None  # a restarted fetcher
    assert feed_server.headers_of(1)["if-none-match"] == ETAG


def test_without_on_enqueued_nothing_is_stored_and_the_next_fetch_gets_the_articles_again(
    feed_server: FeedServer, settings: Settings, redis_client: redis.Redis
) -> None:
    feed = serve_courier(feed_server)
    feeds = source_for(settings, redis_client, feed)

    assert feeds.fetch(feed) is not None  # read, but never queued (a crash, say)
    again = feeds.fetch(feed)

    assert feed_state(redis_client, feed.url) == {}
    assert "if-none-match" not in feed_server.headers_of(1)
    assert "if-modified-since" not in feed_server.headers_of(1)
    assert again is not None and [article.guid for article in again.articles] == ["c-1", "c-2"]


def test_a_feed_without_validators_is_fetched_unconditionally(
    feed_server: FeedServer, settings: Settings, redis_client: redis.Redis
) -> None:
    feed_server.replies["/plain.rss"] = Reply(body=COURIER, headers={"Content-Type": "application/rss+xml"})
    feed = Feed(url=feed_server.url("/plain.rss"))
    feeds = source_for(settings, redis_client, feed)
    first = feeds.fetch(feed)
    assert first is not None
    first.on_enqueued()

    assert feeds.fetch(feed) is None  # fetched again, but every entry was seen before
    assert "if-none-match" not in feed_server.headers_of(1)
    assert "if-modified-since" not in feed_server.headers_of(1)


# --- transport --------------------------------------------------------------------------------


def test_a_gzip_encoded_feed_is_decoded(feed_server: FeedServer, settings: Settings, redis_client: redis.Redis) -> None:
    feed_server.replies["/courier.rss.gz"] = Reply(
        body=gzip.compress(COURIER),
        headers={"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"},
    )
    feed = Feed(url=feed_server.url("/courier.rss.gz"))

    delivery = source_for(settings, redis_client, feed).fetch(feed)

    assert "gzip" in feed_server.headers_of(0)["accept-encoding"]
    assert delivery is not None
    assert [article.title for article in delivery.articles] == [
        "Council approves new bus depot",
        "River levels fall after rain",
    ]


def test_a_body_larger_than_fetch_max_bytes_is_refused(
    feed_server: FeedServer, settings: Settings, redis_client: redis.Redis
) -> None:
    big = rss("Valley Courier", [(f"c-{n}", f"Planning notice number {n} published") for n in range(40)])
    assert len(big) > 2048
    feed = serve_courier(feed_server)
    feed_server.replies["/courier.rss"].body = big
    small = settings.model_copy(update={"fetch_max_bytes": 2048})

    delivery = source_for(small, redis_client, feed).fetch(feed)

    assert delivery is None
    state = feed_state(redis_client, feed.url)
    assert state["status"].startswith("error:")
    assert "2048" in state["status"]
    assert "etag" not in state


def test_a_body_under_fetch_max_bytes_is_accepted(
    feed_server: FeedServer, settings: Settings, redis_client: redis.Redis
) -> None:
    assert len(COURIER) < 2048
    feed = serve_courier(feed_server)
    small = settings.model_copy(update={"fetch_max_bytes": 2048})

    delivery = source_for(small, redis_client, feed).fetch(feed)

    assert delivery is not None and len(delivery.articles) == 2


@pytest.mark.parametrize("status", [500, 404, 403])
def test_an_http_error_returns_nothing_and_records_the_error(
    feed_server: FeedServer, settings: Settings, redis_client: redis.Redis, status: int
) -> None:
    feed_server.replies["/down.rss"] = Reply(status, b"oops")
    feed = Feed(url=feed_server.url("/down.rss"))

    assert source_for(settings, redis_client, feed).fetch(feed) is None

    state = feed_state(redis_client, feed.url)
    assert state["status"].startswith("error:")
    assert str(status) in state["status"]


def test_a_failure_after_a_good_fetch_keeps_the_validators(
    feed_server: FeedServer, settings: Settings, redis_client: redis.Redis
) -> None:
    feed = serve_courier(feed_server)
    feeds = source_for(settings, redis_client, feed)
    first = feeds.fetch(feed)
    assert first is not None
    first.on_enqueued()
    feed_server.replies["/courier.rss"] = Reply(500, b"down for maintenance")

    assert feeds.fetch(feed) is None

    state = feed_state(redis_client, feed.url)
    assert state["status"].startswith("error:") and "500" in state["status"]
    assert state["etag"] == ETAG


def test_an_unreachable_server_returns_nothing_and_records_the_error(
    settings: Settings, redis_client: redis.Redis
) -> None:
    feed = Feed(url=f"http://127.0.0.1:{free_port()}/gone.rss")

    assert source_for(settings, redis_client, feed).fetch(feed) is None
    assert feed_state(redis_client, feed.url)["status"].startswith("error:")


def test_a_malformed_feed_returns_nothing_and_records_why(
    feed_server: FeedServer, settings: Settings, redis_client: redis.Redis
) -> None:
    feed_server.replies["/junk.rss"] = Reply(body=b"<<< not a feed at all", headers={"Content-Type": "text/xml"})
    feed = Feed(url=feed_server.url("/junk.rss"))

    assert source_for(settings, redis_client, feed).fetch(feed) is None
    assert feed_state(redis_client, feed.url)["status"].startswith("malformed:")


def test_a_redirect_is_followed(feed_server: FeedServer, settings: Settings, redis_client: redis.Redis) -> None:
    serve_courier(feed_server, "/new/courier.rss")
    feed_server.replies["/old.rss"] = Reply(301, b"", {"Location": "/new/courier.rss"})
    feed = Feed(url=feed_server.url("/old.rss"))

    delivery = source_for(settings, redis_client, feed).fetch(feed)

    assert delivery is not None and len(delivery.articles) == 2
    assert [path for path, _ in feed_server.requests] == ["/old.rss", "/new/courier.rss"]


# --- local files and polling ------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "file://"])
def test_a_local_feed_file_is_read(tmp_path: Path, settings: Settings, redis_client: redis.Redis, prefix: str) -> None:
    path = tmp_path / "local.rss"
    path.write_bytes(rss("Parish Newsletter", [("p-1", "Fete raises funds for the church roof")]))
    feed = Feed(url=prefix + str(path))

    delivery = source_for(settings, redis_client, feed).fetch(feed)

    assert delivery is not None
    [article] = delivery.articles
    assert (article.title, article.guid, article.source) == (
        "Fete raises funds for the church roof",
        "p-1",
        "Parish Newsletter",
    )
    assert article.origin == feed.url


def test_a_missing_local_feed_file_records_the_error(
    tmp_path: Path, settings: Settings, redis_client: redis.Redis
) -> None:
    feed = Feed(url=str(tmp_path / "nowhere.rss"))

    assert source_for(settings, redis_client, feed).fetch(feed) is None
    assert feed_state(redis_client, feed.url)["status"].startswith("error:")


def test_poll_all_feeds_yields_one_delivery_per_working_feed(
    feed_server: FeedServer, settings: Settings, redis_client: redis.Redis
) -> None:
    good = serve_courier(feed_server)
    feed_server.replies["/down.rss"] = Reply(500, b"")
    bad = Feed(url=feed_server.url("/down.rss"))

    deliveries = list(source_for(settings, redis_client, bad, good).poll(all_feeds=True))

    assert [len(delivery.articles) for delivery in deliveries] == [2]
    assert sorted(path for path, _ in feed_server.requests) == ["/courier.rss", "/down.rss"]


# --- the feeds file ---------------------------------------------------------------------------


def write_yaml(folder: Path, text: str, name: str = "feeds.yml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, "utf-8")
    return path


def test_load_feeds_reads_urls_names_and_intervals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config"
    absolute = tmp_path / "elsewhere" / "abs.rss"
    path = write_yaml(
        config,
        "feeds:\n"
        "  - url: https://courier.example.com/rss\n"
        "    name: Valley Courier\n"
        "    interval: 600\n"
        "  - url: local/parish.rss\n"
        f"  - url: {absolute}\n"
        "  - https://monitor.example.org/atom\n",
    )
    monkeypatch.chdir(tmp_path)  # relative paths follow the YAML file, not the working directory

    feeds = load_feeds(path)

    assert [(feed.url, feed.name, feed.interval) for feed in feeds] == [
        ("https://courier.example.com/rss", "Valley Courier", 600),
        (str((config / "local" / "parish.rss").resolve()), None, None),
        (str(absolute), None, None),
        ("https://monitor.example.org/atom", None, None),
    ]


def test_a_relative_local_feed_from_the_feeds_file_can_be_fetched(
    tmp_path: Path, settings: Settings, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    (config / "local").mkdir(parents=True)
    (config / "local" / "parish.rss").write_bytes(rss("Parish Newsletter", [("p-1", "Bell tower repaired")]))
    [feed] = load_feeds(write_yaml(config, "feeds:\n  - url: local/parish.rss\n"))
    monkeypatch.chdir(tmp_path)

    delivery = source_for(settings, redis_client, feed).fetch(feed)

    assert delivery is not None and delivery.articles[0].title == "Bell tower repaired"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty-file"),
        pytest.param("sources:\n  - url: https://courier.example.com/rss\n", id="other-key"),
        pytest.param("feeds: https://courier.example.com/rss\n", id="feeds-not-a-list"),
        pytest.param("feeds:\n", id="feeds-null"),
        pytest.param("- url: https://courier.example.com/rss\n", id="top-level-list"),
    ],
)
def test_a_feeds_file_without_a_feeds_list_is_refused(tmp_path: Path, text: str) -> None:
    path = write_yaml(tmp_path, text)

    with pytest.raises(FeedsFileError) as raised:
        load_feeds(path)

    assert str(raised.value) == f"{path}: expected a top-level 'feeds:' list"


def test_an_entry_without_url_is_refused_with_its_position(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "feeds:\n  - url: https://courier.example.com/rss\n  - name: Valley Courier\n")

    with pytest.raises(FeedsFileError, match=r"feed 2") as raised:
        load_feeds(path)

    assert str(raised.value).startswith(f"{path}: feed 2: ")


def test_an_entry_without_url_says_the_url_is_missing(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "feeds:\n  - name: Valley Courier\n")

    with pytest.raises(FeedsFileError) as raised:
        load_feeds(path)

    assert "url" in str(raised.value).removeprefix(str(path))  # the tmp path itself may hold "url"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        pytest.param("  - url: ''\n", r"feed 1: ", id="empty-url"),
        pytest.param(
            "  - url: https://courier.example.com/rss\n    interval: 5\n", r"feed 1: .*30", id="interval-too-short"
        ),
        pytest.param("  - 42\n", r"feed 1: ", id="not-a-mapping"),
    ],
)
def test_an_invalid_entry_is_refused(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(FeedsFileError, match=message):
        load_feeds(write_yaml(tmp_path, "feeds:\n" + entry))


@pytest.mark.parametrize("text", [pytest.param("feeds: [\n", id="bad-yaml"), pytest.param(None, id="missing-file")])
def test_an_unreadable_feeds_file_is_refused(tmp_path: Path, text: str | None) -> None:
    path = write_yaml(tmp_path, text) if text is not None else tmp_path / "absent.yml"

    with pytest.raises(FeedsFileError, match=r"^cannot read feeds file"):
        load_feeds(path)
