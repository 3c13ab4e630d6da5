"""RSS and Atom feeds, polled politely and trusted only as far as they deserve.

- Each feed has its own clock: the interval adapts to how often it really has new items,
  within bounds, honours the feed's declared period, `Retry-After` and backoff on failure,
  and feeds start spread out. Requests to one host are limited in concurrency and spacing.
- Conditional GET with ETag/Last-Modified, remembered in Redis. Servers lie: every few polls
  a 304 is checked with an unconditional fetch, and a feed whose 304 hid a change is polled
  unconditionally from then on (its body hash tells unchanged from changed).
- A permanent redirect moves the feed to its new URL; 410 Gone disables it; a feed that keeps
  failing or goes silent raises a source-health event.
- Only entries the feed has not shown before go on (an entry whose text changed counts as
  new: an update). Short entries can have their linked page fetched for the full text.
- State is saved only after the articles are queued, so a crash means a refetch, never a loss.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import httpx
import redis

from services.fetcher.politeness import HostLimiter, parse_retry_after
from services.fetcher.readers import articles_from_feed
from services.fetcher.registry import Feed, FeedRegistry, FeedsFileError, load_feeds
from services.fetcher.safety import UnsafeURL, URLPolicy, httpx_request_guard
from services.fetcher.schedule import Bounds, Outcome, declared_minimum, next_interval
from services.fetcher.sources import Delivery
from shared import redis_keys
from shared.article import Article, digest
from shared.redis_client import as_text
from shared.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["Feed", "FeedSource", "FeedsFileError", "load_feeds", "http_client", "source_health_event"]

SHORT_ENTRY_CHARS = 600  # entries shorter than this carry a summary, not the article
ENTRY_MEMORY_SECONDS = 60 * 86400


class FeedTooLarge(Exception):
    pass


class FeedGone(Exception):
    pass


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]
    url: str
    moved_permanently: bool


@dataclass
class FeedSource:
    """The feeds, polled each on its own clock."""

    feeds: list[Feed]
    redis: redis.Redis
    settings: Settings
    http: httpx.Client
    report_health: Callable[[Article], None] = lambda event: None
    """Receives a source-health event (an article tagged `source-health`) for a failing or silent feed."""
    registry: FeedRegistry | None = None
    limiter: HostLimiter | None = None
    name: str = "feeds"

    def __post_init__(self) -> None:
        if self.limiter is None:
            self.limiter = HostLimiter(self.settings.feed_host_concurrency, self.settings.feed_host_delay_seconds)

    def current_feeds(self) -> list[Feed]:
        feeds = self.registry.all() if self.registry is not None else self.feeds
        return [feed for feed in feeds if feed.enabled]

    def poll(self, *, all_feeds: bool = False) -> Iterator[Delivery]:
        """Fetch the feeds that are due (every feed with `all_feeds`), a few hosts at a time."""
        feeds = self.current_feeds()
        if not all_feeds:
            feeds = self._due(feeds)
        if not feeds:
            return
        with ThreadPoolExecutor(max_workers=min(8, len(feeds)), thread_name_prefix="feed") as pool:
            for delivery in pool.map(self.fetch, feeds):
                if delivery is not None:
                    yield delivery

    def _due(self, feeds: list[Feed]) -> list[Feed]:
        now = time.time()
        scores = self.redis.zmscore(redis_keys.FEEDS_DUE, [feed.url for feed in feeds]) if feeds else []
        due = []
        for feed, score in zip(feeds, scores, strict=True):
            if score is None:  # never scheduled: start somewhere in the first interval, not all at once
                first = now + random.uniform(0, min(60.0, self.settings.feed_interval_seconds))
                self.redis.zadd(redis_keys.FEEDS_DUE, {feed.url: first}, nx=True)
            elif score <= now:
                due.append(feed)
        return due

    def fetch(self, feed: Feed) -> Delivery | None:
        """One poll of one feed: its new articles, or None when unchanged or failed (the
        failure is recorded in the feed's state and counted towards a source-health alert)."""
        key = redis_keys.feed_validators(feed.url)
        state = {as_text(k): as_text(v) for k, v in self.redis.hgetall(key).items()}
        try:
            response = self._read(feed, state)
        except FeedGone as error:
            self._disable(feed, key, str(error))
            return None
        except _RetryLater as later:
            self._failed(feed, key, later.reason, Outcome(failed=True, retry_after=later.seconds), state)
            return None
        except (httpx.HTTPError, OSError, FeedTooLarge, UnsafeURL) as error:
            log.warning("feed %s failed: %s", feed.url, error)
            self._failed(feed, key, f"error: {error}", Outcome(failed=True), state)
            return None
        if response is None:  # 304, or an unchanged body from a feed whose validators lie
            self._finish(feed, key, state, Outcome(), status="304 not modified", http_status="304")
            return None
        if response.moved_permanently and self.registry is not None:
            log.info("feed %s moved permanently to %s", feed.url, response.url)
            self.registry.move(feed.url, response.url)
            feed = feed.model_copy(update={"url": response.url})
            key = redis_keys.feed_validators(feed.url)
        return self._deliver(feed, key, state, response)

    def accept_push(self, feed: Feed, body: bytes, headers: dict[str, str]) -> Delivery | None:
        """A WebSub hub's delivery of the feed: handled like a poll's response."""
        key = redis_keys.feed_validators(feed.url)
        state = {as_text(k): as_text(v) for k, v in self.redis.hgetall(key).items()}
        return self._deliver(feed, key, state, Response(200, body, headers, feed.url, False), pushed=True)

    def _deliver(
        self, feed: Feed, key: str, state: dict[str, str], response: Response, pushed: bool = False
    ) -> Delivery | None:
        parsed = feedparser.parse(response.body, response_headers=response.headers)
        if not parsed.entries and (parsed.bozo or not parsed.version):
            why = parsed.get("bozo_exception") or "no RSS or Atom document (an HTML page?)"
            log.warning("feed %s is malformed: %s", feed.url, why)
            if not pushed:
                self._failed(feed, key, f"malformed: {why}", Outcome(failed=True), state)
            return None
        if not pushed:
            self._websub(feed, key, parsed, state)
        source = feed.name or parsed.feed.get("title") or feed.url
        articles = articles_from_feed(parsed, feed.url, source)
        fresh = self._unseen(feed, parsed.entries, articles)
        for article in fresh:
            article.source_tags = list(feed.tags)
            article.lang = feed.language or article.lang
        self._fetch_full_text(feed, fresh)
        outcome = Outcome(new_items=len(fresh), declared_minimum=declared_minimum(parsed.feed))
        fingerprints = [_fingerprint(entry) for entry in parsed.entries]
        saved = (
            {"status": f"pushed: {len(fresh)} new of {len(articles)} items"}
            if pushed
            else {
                "status": f"ok: {len(fresh)} new of {len(articles)} items",
                "http_status": str(response.status),
                "etag": response.headers.get("etag", ""),
                "last_modified": response.headers.get("last-modified", ""),
                "body_hash": hashlib.sha256(response.body).hexdigest(),
            }
        )

        def remember() -> None:
            if fingerprints:
                pipe = self.redis.pipeline(transaction=False)
                pipe.sadd(redis_keys.feed_entries(feed.url), *fingerprints)
                pipe.expire(redis_keys.feed_entries(feed.url), ENTRY_MEMORY_SECONDS)
                pipe.execute()
            if pushed:  # the polling schedule stays as it is
                self._record(key, **saved)
                self._watch_rhythm(feed, key, datetime.now(UTC) if fresh else None)
            else:
                self._finish(feed, key, state, outcome, **saved)

        if not fresh:
            remember()
            return None
        return Delivery(fresh, on_enqueued=remember)

    # -- reading -------------------------------------------------------------------------

    def _read(self, feed: Feed, state: dict[str, str]) -> Response | None:
        if "://" not in feed.url or feed.url.startswith("file://"):
            body = Path(feed.url.removeprefix("file://")).read_bytes()
            return Response(200, body, {}, feed.url, False)
        trusted = state.get("validators") != "untrusted"
        checking = trusted and int(state.get("polls_since_check") or 0) >= self.settings.feed_validator_check_every
        conditional = {}
        if trusted:
            if state.get("etag"):
                conditional["If-None-Match"] = state["etag"]
            if state.get("last_modified"):
                conditional["If-Modified-Since"] = state["last_modified"]
        response = self._get(feed.url, conditional)
        if response.status == 304:
            if not checking:
                return None
            # Is the 304 true? Ask again without validators and compare with what we hold.
            response = self._get(feed.url, {})
            state["polls_since_check"] = "-1"  # checked: the count starts again
            if hashlib.sha256(response.body).hexdigest() == state.get("body_hash"):
                return None
            when = datetime.now(UTC).isoformat(timespec="seconds")
            log.warning("feed %s answered 304 although it changed; its validators are no longer used", feed.url)
            self.redis.hset(
                redis_keys.feed_validators(feed.url),
                mapping={"validators": "untrusted", "validators_note": f"a 304 hid a change ({when})"},
            )
            return response
        if not trusted and hashlib.sha256(response.body).hexdigest() == state.get("body_hash"):
            return None
        return response

    def _get(self, url: str, headers: dict[str, str]) -> Response:
        assert self.limiter is not None
        with self.limiter.slot(url), self.http.stream("GET", url, headers=headers) as reply:
            if reply.status_code in (429, 503):
                seconds = parse_retry_after(reply.headers.get("retry-after"))
                if seconds:
                    self.limiter.defer(url, seconds)
                raise _RetryLater(
                    seconds, f"HTTP {reply.status_code}" + (f", retry after {seconds:.0f} s" if seconds else "")
                )
            if reply.status_code == 410:
                raise FeedGone(f"HTTP 410 Gone at {datetime.now(UTC).isoformat(timespec='seconds')}")
            if reply.status_code == 304:
                return Response(304, b"", dict(reply.headers), str(reply.url), False)
            reply.raise_for_status()
            body = bytearray()
            for chunk in reply.iter_bytes():
                body += chunk
                if len(body) > self.settings.fetch_max_bytes:
                    raise FeedTooLarge(f"response larger than {self.settings.fetch_max_bytes} bytes")
            moved = any(step.status_code in (301, 308) for step in reply.history)
            return Response(reply.status_code, bytes(body), dict(reply.headers), str(reply.url), moved)

    def _unseen(self, feed: Feed, entries: list[Any], articles: list[Article]) -> list[Article]:
        fingerprints = [_fingerprint(entry) for entry in entries]
        if not fingerprints:
            return []
        known = self.redis.smismember(redis_keys.feed_entries(feed.url), fingerprints)
        return [article for article, seen in zip(articles, known, strict=True) if not seen]

    def _fetch_full_text(self, feed: Feed, articles: list[Article]) -> None:
        for article in articles:
            wanted = (
                feed.full_text
                if feed.full_text is not None
                else len(article.text or article.html or "") < SHORT_ENTRY_CHARS
            )
            if not wanted or not article.url:
                continue
            try:
                page = self._get(article.url, {})
            except (httpx.HTTPError, OSError, FeedTooLarge, UnsafeURL, FeedGone, _RetryLater) as error:
                article.notes.append(f"fetch: full article not fetched ({error}); kept the feed's summary")
                continue
            if article.html and not article.text:  # the summary as text, kept if extraction fails
                article.text = _plain(article.html)
            article.html = page.body.decode(_charset(page.headers), errors="replace")
            article.notes.append(f"fetch: full article fetched from {page.url}")

    # -- WebSub ----------------------------------------------------------------------------

    def _websub(self, feed: Feed, key: str, parsed: Any, state: dict[str, str]) -> None:
        """Subscribe at the feed's hub (and renew the lease a day before it ends), when the
        feed names one and wirewatch has a public URL for the hub to call back."""
        if not self.settings.public_url:
            return
        links = parsed.feed.get("links", [])
        hub = next((link.get("href") for link in links if link.get("rel") == "hub"), None)
        topic = next((link.get("href") for link in links if link.get("rel") == "self"), None) or feed.url
        if not hub:
            return
        now = time.time()
        lease = float(state.get("websub_lease") or self.settings.websub_lease_seconds)
        renew_before = min(86400.0, lease / 10)  # a day before the end, or a tenth of a short lease
        if state.get("websub_state") == "verified" and float(state.get("websub_expires") or 0) > now + renew_before:
            return
        if state.get("websub_state") == "pending" and now - float(state.get("websub_requested") or 0) < 3600:
            return  # asked within the hour; the hub has not verified yet
        callback_key = digest(feed.url)
        secret = state.get("websub_secret") or secrets.token_urlsafe(24)
        form = {
            "hub.mode": "subscribe",
            "hub.topic": topic,
            "hub.callback": f"{self.settings.public_url.rstrip('/')}/websub/{callback_key}",
            "hub.secret": secret,
            "hub.lease_seconds": str(self.settings.websub_lease_seconds),
        }
        self.redis.hset(redis_keys.WEBSUB_CALLBACKS, callback_key, feed.url)
        self._record(
            key,
            websub_hub=hub,
            websub_topic=topic,
            websub_secret=secret,
            websub_state="pending",
            websub_requested=str(now),
        )
        try:
            reply = self.http.post(hub, data=form)
        except (httpx.HTTPError, UnsafeURL) as error:
            self._record(key, websub_state="failed", websub_note=f"hub unreachable: {error}")
            return
        if reply.status_code not in (202, 204):
            self._record(key, websub_state="failed", websub_note=f"hub answered HTTP {reply.status_code}")

    # -- bookkeeping -----------------------------------------------------------------------

    def _finish(self, feed: Feed, key: str, state: dict[str, str], outcome: Outcome, **fields: str) -> None:
        fixed = feed.interval
        websub, expires = (as_text(v) if v else "" for v in self.redis.hmget(key, "websub_state", "websub_expires"))
        if websub == "verified" and float(expires or 0) > time.time():
            fixed = self.settings.feed_max_interval_seconds  # pushes come from the hub: poll slowly, as a fallback
        interval = next_interval(_float(state.get("interval")), outcome, self._bounds(), fixed)
        now = time.time()
        fields.update(
            interval=f"{interval:.0f}",
            next_poll=datetime.fromtimestamp(now + interval, UTC).isoformat(timespec="seconds"),
            polls_since_check=str(int(state.get("polls_since_check") or 0) + 1),
            failures="0",
            items_total=str(int(state.get("items_total") or 0) + outcome.new_items),
            first_poll=state.get("first_poll") or datetime.now(UTC).isoformat(timespec="seconds"),
        )
        if not outcome.failed and "last_error" in state:
            fields["last_error"] = ""
        self._record(key, **fields)
        self.redis.zadd(redis_keys.FEEDS_DUE, {feed.url: now + interval})
        self._watch_rhythm(feed, key, datetime.now(UTC) if outcome.new_items else None)

    def _failed(self, feed: Feed, key: str, status: str, outcome: Outcome, state: dict[str, str]) -> None:
        interval = next_interval(_float(state.get("interval")), outcome, self._bounds(), feed.interval)
        now = time.time()
        self._record(
            key,
            status=status,
            last_error=status,
            interval=f"{interval:.0f}",
            next_poll=datetime.fromtimestamp(now + interval, UTC).isoformat(timespec="seconds"),
        )
        self.redis.zadd(redis_keys.FEEDS_DUE, {feed.url: now + interval})
        failures = int(self.redis.hincrby(key, "failures", 1))
        if failures == self.settings.feed_failures_before_alert:
            self.report_health(source_health_event(feed, failures, status))

    def _disable(self, feed: Feed, key: str, reason: str) -> None:
        log.warning("feed %s disabled: %s", feed.url, reason)
        self._record(key, status=f"disabled: {reason}", disabled=reason)
        if self.registry is not None:
            self.registry.put(feed.model_copy(update={"enabled": False}))
        self.redis.zrem(redis_keys.FEEDS_DUE, feed.url)
        self.report_health(source_health_event(feed, 1, f"disabled: {reason}"))

    def _bounds(self) -> Bounds:
        return Bounds(
            self.settings.feed_min_interval_seconds,
            self.settings.feed_max_interval_seconds,
            self.settings.feed_interval_seconds,
        )

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
            status = f"silent: no new item for {hours:.0f} hours (usually every {rhythm / 3600:.1f} hours)"
            self.report_health(source_health_event(feed, 0, status))

    def _record(self, key: str, **fields: str) -> None:
        fields["checked_at"] = datetime.now(UTC).isoformat()
        self.redis.hset(key, mapping=dict[str | bytes, str](fields))  # type: ignore[arg-type]


class _RetryLater(Exception):
    def __init__(self, seconds: float | None, reason: str) -> None:
        super().__init__(reason)
        self.seconds, self.reason = seconds, reason


def _fingerprint(entry: Any) -> str:
    # An entry is new when its identity or its text is: a changed entry goes on as an update.
    identity = entry.get("id") or entry.get("link") or entry.get("title", "")
    body = (
        entry.get("title", "")
        + (entry.get("summary") or "")
        + "".join(c.get("value", "") for c in entry.get("content", []))
    )
    return digest(f"{identity}\x00{body}")


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _charset(headers: dict[str, str]) -> str:
    content_type = headers.get("content-type", "")
    for part in content_type.split(";"):
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip('"')
    return "utf-8"


def _plain(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def source_health_event(feed: Feed, failures: int, status: str) -> Article:
    """A feed that keeps failing or went silent, as an article for alert matching
    (`tags:source-health`); one story per feed per day, so a subscriber hears of it once a day at most."""
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
    """The fetcher's HTTP client: timeouts, redirects, gzip and deflate, an honest User-Agent,
    and every request (redirects included) checked against the URL-safety policy."""
    return httpx.Client(
        timeout=settings.fetch_timeout_seconds,
        follow_redirects=True,
        headers={
            "User-Agent": settings.user_agent,
            "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/html;q=0.8, */*;q=0.5",
            "Accept-Encoding": "gzip, deflate",
        },
        event_hooks={"request": [httpx_request_guard(URLPolicy.from_setting(settings.url_allow))]},
    )
