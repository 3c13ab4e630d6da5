"""Fuzzing the readers of dropped files and the handling of feed entries: any bytes in give
articles or a recorded reason, never an exception, and each input is read within a time bound.

Kept short for CI (a few hundred generated inputs, derandomized so a run is repeatable);
`--hypothesis-seed` with a larger `max_examples` digs deeper by hand.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
import pytest
import redis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from shared.deadletters import read_dead_letters
from shared.feeds.registry import Feed
from shared.feeds.source import FeedSource, feed_client
from shared.formats.limits import Limits
from shared.formats.mapping import UnreadableFile
from shared.formats.readers import SUPPORTED_SUFFIXES, FileReading, parse_feed, read_file_report
from shared.settings import Settings

LIMITS = Limits(
    max_file_bytes=1_000_000, max_article_chars=200_000, max_line_bytes=100_000, max_nesting=32, max_read_seconds=5
)
BOUNDED = hypothesis_settings(
    max_examples=200,
    deadline=timedelta(seconds=5),  # far above what any input here needs; backtracking took minutes
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Pieces an attacker strings together: markup that repeats and never closes, brackets that
# nest, quotes and escapes, encodings' marks, control and high bytes, long runs.
FRAGMENTS = [
    b"<",
    b">",
    b"<meta ",
    b'<meta property="og:title" content="',
    b'<link rel="canonical" href="',
    b"<title>",
    b"</title>",
    b"<a href='",
    b"[",
    b"]",
    b"{",
    b"}",
    b'{"title": "',
    b'"text": "',
    b'"',
    b"\\",
    b"\\ud800",
    b"\n",
    b"\r",
    b"\x00",
    b"\x1b",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\xe9",
    b"\xc3",
    b"# ",
    b"\t#",
    b"=====",
    b"Subject: ",
    b"Content-Type: multipart/mixed; boundary=x\n\n--x\n",
    b"<?xml version='1.0' encoding='utf-16'?>",
    b"<rss version='2.0'><channel><item><title>",
    b"<entry><link href='http://[::1'/>",
    b"<ttl>\xc2\xb2</ttl>",
    b"9" * 50,
    b" " * 64,
    b"x" * 256,
]
hostile_bytes = st.one_of(
    st.binary(max_size=4096),
    st.lists(st.sampled_from(FRAGMENTS), max_size=400).map(b"".join),
    st.tuples(st.sampled_from(FRAGMENTS), st.integers(1, 3000)).map(lambda pair: pair[0] * pair[1]),
)


@BOUNDED
@given(suffix=st.sampled_from(SUPPORTED_SUFFIXES), data=hostile_bytes)
def test_any_bytes_in_any_dropped_format_give_articles_or_a_reason(tmp_path: Path, suffix: str, data: bytes) -> None:
    path = tmp_path / f"{uuid.uuid4().hex}{suffix}"
    path.write_bytes(data)
    try:
        reading = read_file_report(path, limits=LIMITS)
    except UnreadableFile as error:
        assert str(error), "a refusal always says why"
    else:
        assert isinstance(reading, FileReading) and reading.articles
        for article in reading.articles:
            article.to_message()  # what the queue carries can be written
            assert len(article.title) + len(article.text) + len(article.html or "") <= LIMITS.max_article_chars
        assert all(reason for _, reason in reading.problems)
    finally:
        path.unlink()


text_values = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "http://coast.example:99999/a",
            "http://[::1",
            "http://ex\u00adample.com/a",
            "https://coast.example/ok",
            "Fri, 31 Dec 9999 23:00:00 -0500",
            "9999-12-31T23:00:00-05:00",
            "0000-00-00",
            "\u00b2",
            "9" * 400,
            "",
        ]
    ),
)
entry = st.fixed_dictionaries(
    {"title": text_values, "link": text_values, "guid": text_values, "pubDate": text_values, "description": text_values}
)


def rss_document(channel: dict[str, str], entries: list[dict[str, str]]) -> bytes:
    def element(name: str, value: str) -> str:
        # XML 1.0 cannot carry most control characters: they would make the whole document
        # malformed, which is a different (and tested) case from a bad entry
        clean = "".join(char for char in value if char >= " " or char in "\t\n")
        return f"<{name}>{escape(clean)}</{name}>"

    items = "".join("<item>" + "".join(element(k, v) for k, v in item.items()) + "</item>" for item in entries)
    head = "".join(element(k, v) for k, v in channel.items())
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>{head}{items}</channel></rss>'.encode(
        "utf-8", "surrogatepass"
    )


@pytest.fixture(scope="module")
def http() -> httpx.Client:
    """One outbound client for every generated feed (building one takes half a second)."""
    return feed_client(Settings(_env_file=None))  # type: ignore[call-arg]


@BOUNDED
@given(
    channel=st.fixed_dictionaries({"title": text_values, "ttl": text_values, "pubDate": text_values}),
    entries=st.lists(entry, max_size=8),
    raw=st.one_of(st.none(), hostile_bytes),
)
def test_any_feed_gives_each_entry_an_article_or_a_reason(
    settings: Settings,
    redis_client: redis.Redis,
    http: httpx.Client,
    channel: dict[str, str],
    entries: list[dict[str, str]],
    raw: bytes,
) -> None:
    body = raw if raw is not None else rss_document(channel, entries)
    feed = Feed(url=f"https://feeds.example/{uuid.uuid4().hex}.rss", full_text=False)
    feeds = FeedSource([feed], redis_client, settings, http)
    before = len(read_dead_letters(redis_client, limit=10_000))

    delivery = feeds.accept_push(feed, body, {"content-type": "application/rss+xml"})

    letters = read_dead_letters(redis_client, limit=10_000)[before:]
    assert all(letter["reason"] for letter in letters)
    try:
        parsed_entries = len(parse_feed(body).entries)
    except UnreadableFile:
        parsed_entries = 0
    articles = len(delivery.articles) if delivery is not None else 0
    if delivery is not None:
        delivery.on_enqueued()
    assert articles + len(letters) == parsed_entries or letters and letters[-1]["stage"] == "push"


@pytest.mark.parametrize("suffix", SUPPORTED_SUFFIXES)
def test_the_fuzz_reaches_every_reader(tmp_path: Path, suffix: str) -> None:
    """A check on the fuzz itself: each format has an input that gives an article, so the
    generated inputs exercise the readers, not only their refusals."""
    samples = {
        ".txt": b"Headline\nBody.",
        ".md": b"# Headline\nBody.",
        ".html": b"<title>Headline</title><p>Body.</p>",
        ".htm": b"<title>Headline</title><p>Body.</p>",
        ".json": b'{"title": "Headline", "text": "Body."}',
        ".jsonl": b'{"title": "Headline", "text": "Body."}\n',
        ".ndjson": b'{"title": "Headline", "text": "Body."}\n',
        ".eml": b"Subject: Headline\nContent-Type: text/plain\n\nBody.\n",
    }
    feed = rss_document({"title": "Feed"}, [{"title": "Headline", "description": "Body."}])
    path = tmp_path / f"sample{suffix}"
    path.write_bytes(samples.get(suffix, feed))
    assert read_file_report(path, limits=LIMITS).articles[0].title == "Headline"
