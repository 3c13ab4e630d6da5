"""RSS and Atom feeds from the feeds file, fetched politely over HTTP or read from disk.

Conditional GET: the ETag and Last-Modified of the last good response are kept in Redis and
sent back, so an unchanged feed costs the publisher a 304. They are saved only after the
response's articles are queued, so a crash in between means a refetch, never a lost item.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import httpx
import redis
import yaml
from pydantic import BaseModel, Field, ValidationError

from services.fetcher.readers import articles_from_feed
from services.fetcher.sources import Delivery
from shared import redis_keys
from shared.article import Article, digest
from shared.redis_client import as_text
from shared.settings import Settings

log = logging.getLogger(__name__)


class Feed(BaseModel):
    url: str = Field(min_length=1)
    name: str | None = None
    interval: int | None = Field(default=None, ge=30, description="Seconds between polls.")


class FeedsFileError(ValueError):
    """The feeds file cannot be used; the message says where and why."""


def load_feeds(path: Path) -> list[Feed]:
    """Read the YAML feeds file (`feeds:` a list of {url, name?, interval?})."""
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise FeedsFileError(f"cannot read feeds file {path}: {error}") from None
    entries = data.get("feeds") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise FeedsFileError(f"{path}: expected a top-level 'feeds:' list")
    feeds = []
    for number, entry in enumerate(entries, 1):
        if isinstance(entry, str):
            entry = {"url": entry}
        try:
            feed = Feed.model_validate(entry)
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(part) for part in problem["loc"]) or "entry"
            raise FeedsFileError(f"{path}: feed {number}: {where}: {problem['msg']}") from None
        if "://" not in feed.url and not Path(feed.url).is_absolute():
            feed.url = str((path.parent / feed.url).resolve())  # local feed files sit beside the list
        feeds.append(feed)
    return feeds


class FeedTooLarge(Exception):
    pass


@dataclass
class FeedSource:
    """Polls each feed on its own interval; the first polls are spread out over a minute."""

    feeds: list[Feed]
    redis: redis.Redis
    settings: Settings
    http: httpx.Client
    report_health: Callable[[Article], None] = lambda event: None
    """Receives a source-health event (an article tagged `source-health`) when a feed keeps failing."""
    name: str = "feeds"

    def __post_init__(self) -> None:
        now = time.monotonic()
        spread = min(60.0, self.settings.feed_interval_seconds)
        self._due = {feed.url: now + random.uniform(0, spread) for feed in self.feeds}

    def poll(self, *, all_feeds: bool = False) -> Iterator[Delivery]:
        """Fetch the feeds that are due (every feed with `all_feeds`)."""
        now = time.monotonic()
        for feed in self.feeds:
            if not all_feeds and self._due[feed.url] > now:
                continue
            self._due[feed.url] = now + (feed.interval or self.settings.feed_interval_seconds)
            delivery = self.fetch(feed)
            if delivery is not None:
                yield delivery

    def fetch(self, feed: Feed) -> Delivery | None:
        """One feed's new articles, or None when it is unchanged or failed (the failure is logged
        and kept in the feed's state in Redis)."""
        key = redis_keys.feed_validators(feed.url)
        try:
            if "://" not in feed.url or feed.url.startswith("file://"):
                headers: dict[str, str] = {}
                validators: dict[str, str] = {}
                data = Path(feed.url.removeprefix("file://")).read_bytes()
            else:
                fetched = self._get(feed.url, key)
                if fetched is None:
                    self._record(key, status="304 not modified")
                    return None
                data, headers, validators = fetched
        except (httpx.HTTPError, OSError, FeedTooLarge) as error:
            log.warning("feed %s failed: %s", feed.url, error)
            self._failed(feed, key, f"error: {error}")
            return None
        parsed = feedparser.parse(data, response_headers=headers)
        if not parsed.entries and parsed.bozo:
            log.warning("feed %s is malformed: %s", feed.url, parsed.get("bozo_exception"))
            self._failed(feed, key, f"malformed: {parsed.get('bozo_exception')}")
            return None
        source = feed.name or parsed.feed.get("title") or feed.url
        articles = articles_from_feed(parsed, feed.url, source)

        newest = max((a.published_at for a in articles if a.published_at), default=None)

        def remember() -> None:
            self._record(key, status=f"ok: {len(articles)} items", failures="0", **validators)
            self._watch_rhythm(feed, key, newest)

        return Delivery(articles, on_enqueued=remember)

    def _get(self, url: str, key: str) -> tuple[bytes, dict[str, str], dict[str, str]] | None:
        stored = {as_text(k): as_text(v) for k, v in self.redis.hgetall(key).items()}
        headers = {}
        if stored.get("etag"):
            headers["If-None-Match"] = stored["etag"]
        if stored.get("last_modified"):
            headers["If-Modified-Since"] = stored["last_modified"]
        with self.http.stream("GET", url, headers=headers) as response:
            if response.status_code == 304:
                return None
            response.raise_for_status()
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self.settings.fetch_max_bytes:
                    raise FeedTooLarge(f"response larger than {self.settings.fetch_max_bytes} bytes")
            validators = {
                "etag": response.headers.get("etag", ""),
                "last_modified": response.headers.get("last-modified", ""),
            }
            return bytes(body), dict(response.headers), validators

    def _watch_rhythm(self, feed: Feed, key: str, newest: datetime | None) -> None:
        """Learn how often the feed has new items; a feed quiet for far longer raises an event.

        The rhythm is a moving average of the gaps between new items; "far longer" is
        `feed_silence_factor` rhythms, and never less than six hours.
        """
        now = datetime.now(UTC)
        state = {as_text(k): as_text(v) for k, v in self.redis.hgetall(key).items()}
        last_new = datetime.fromisoformat(state["last_new_item"]) if state.get("last_new_item") else None
        rhythm = float(state.get("rhythm_seconds") or 0)
        if newest is not None and (last_new is None or newest > last_new):
            if last_new is not None:
                gap = (newest - last_new).total_seconds()
                rhythm = gap if not rhythm else 0.7 * rhythm + 0.3 * gap
            self._record(key, last_new_item=newest.isoformat(), rhythm_seconds=str(rhythm), silent_reported="")
            return
        if last_new is None or not rhythm:
            return
        quiet = (now - last_new).total_seconds()
        if quiet > max(self.settings.feed_silence_factor * rhythm, 6 * 3600) and not state.get("silent_reported"):
            self._record(key, silent_reported=now.isoformat())
            hours = quiet / 3600
            self.report_health(
                source_health_event(
                    feed, 0, f"silent: no new item for {hours:.0f} hours (usually every {rhythm / 3600:.1f} hours)"
                )
            )

    def _failed(self, feed: Feed, key: str, status: str) -> None:
        self._record(key, status=status)
        failures = int(self.redis.hincrby(key, "failures", 1))
        if failures == self.settings.feed_failures_before_alert:
            self.report_health(source_health_event(feed, failures, status))

    def _record(self, key: str, **fields: str) -> None:
        fields["checked_at"] = datetime.now(UTC).isoformat()
        self.redis.hset(key, mapping=dict[str | bytes, str](fields))  # type: ignore[arg-type]


def source_health_event(feed: Feed, failures: int, status: str) -> Article:
    """A feed that keeps failing or went silent, as an article for alert matching (`tags:source-health`);
    one story per feed per day, so a subscriber hears of it once a day at most."""
    today = datetime.now(UTC).date().isoformat()
    name = feed.name or feed.url
    silent = status.startswith("silent")
    event = Article.create(
        title=f"Feed {'silent' if silent else 'failing'}: {name}",
        text=f"The feed {feed.url} is {status}."
        if silent
        else f"The feed {feed.url} failed {failures} times in a row. Last result: {status}",
        guid=f"source-health:{feed.url}:{today}",
        source="wirewatch",
    )
    event.tags = ["source-health"]
    event.cluster_id = f"source-health:{digest(feed.url)}:{today}"
    return event


def http_client(settings: Settings) -> httpx.Client:
    """The fetcher's HTTP client: timeouts, redirects, gzip, an honest User-Agent."""
    return httpx.Client(
        timeout=settings.fetch_timeout_seconds,
        follow_redirects=True,
        headers={
            "User-Agent": settings.user_agent,
            "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5",
        },
    )
