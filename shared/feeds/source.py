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
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis

from shared import redis_keys
from shared.article import Article, digest
from shared.deadletters import quarantine
from shared.feeds import health, websub
from shared.feeds.politeness import HostLimiter, parse_retry_after
from shared.feeds.registry import Feed, FeedRegistry, FeedsFileError, load_feeds
from shared.feeds.schedule import Bounds, Outcome, declared_minimum, next_interval
from shared.feeds.state import FeedState
from shared.formats.decode import looks_binary
from shared.formats.limits import Limits
from shared.formats.mapping import UnreadableFile
from shared.formats.markup import without_code
from shared.formats.readers import articles_from_feed, parse_feed
from shared.metrics import FEED_POLLS
from shared.outbound import UnsafeURL, outbound_client, time_limit
from shared.settings import Settings
from shared.sources.delivery import Delivery

log = logging.getLogger(__name__)

__all__ = ["Feed", "FeedSource", "FeedsFileError", "load_feeds", "feed_client"]

FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/html;q=0.8, */*;q=0.5"
SHORT_ENTRY_CHARS = 600  # entries shorter than this carry a summary, not the article
ENTRY_MEMORY_SECONDS = 60 * 86400


class FeedTooLarge(Exception):
    pass


class FeedGone(Exception):
    pass


# ARGV: now, the claim's end, then feed URLs. A feed still due (its time not after now) gets
# the claim's end as its due time, and a 1 in the reply; one claimed by another fetcher a 0.
_CLAIM = """
local won = {}
for i = 3, #ARGV do
    local due = redis.call('ZSCORE', KEYS[1], ARGV[i])
    if due and tonumber(due) <= tonumber(ARGV[1]) then
        redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i])
        won[#won + 1] = 1
    else
        won[#won + 1] = 0
    end
end
return won
"""
_claim_script: Any = None


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
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set when the service stops: requests under way end within half a second, unrecorded."""

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
        return self._claim(due, now)

    def _claim(self, feeds: list[Feed], now: float) -> list[Feed]:
        """The due feeds this fetcher won: several fetchers share one schedule, and a feed is
        polled by the one that moves its due time forward first. The claim lasts the shortest
        poll interval; the poll's outcome then sets the real next time, and a fetcher that
        dies mid-poll leaves the feed to be polled again when the claim runs out."""
        if not feeds:
            return []
        global _claim_script
        if _claim_script is None:
            _claim_script = self.redis.register_script(_CLAIM)
        until = now + self.settings.feed_min_interval_seconds
        won: Any = _claim_script(
            keys=[redis_keys.FEEDS_DUE], args=[now, until, *[feed.url for feed in feeds]], client=self.redis
        )
        return [feed for feed, claimed in zip(feeds, won, strict=True) if claimed]

    def fetch(self, feed: Feed) -> Delivery | None:
        """One poll of one feed: its new articles, or None when unchanged or failed (the
        failure is recorded in the feed's state and counted towards a source-health alert)."""
        feed_state = FeedState(self.redis, feed.url)
        state = feed_state.read()
        try:
            response = self._read(feed, state)
        except FeedGone as error:
            self._disable(feed, feed_state, str(error))
            return None
        except _RetryLater as later:
            self._failed(feed, feed_state, later.reason, Outcome(failed=True, retry_after=later.seconds), state)
            return None
        except Exception as error:  # whatever a feed does, it fails alone, backs off and says why
            if self.stopping.is_set():
                return None  # cut short by a shutdown: not the feed's failure
            if not isinstance(error, (httpx.HTTPError, OSError, FeedTooLarge, UnsafeURL)):
                log.exception("feed %s failed unexpectedly", feed.url)
            log.warning("feed %s failed: %s", feed.url, error)
            self._failed(feed, feed_state, f"error: {type(error).__name__}: {error}", Outcome(failed=True), state)
            return None
        if response is None:  # 304, or an unchanged body from a feed whose validators lie
            self._finish(feed, feed_state, state, Outcome(), status="304 not modified", http_status="304")
            return None
        if response.moved_permanently and self.registry is not None:
            log.info("feed %s moved permanently to %s", feed.url, response.url)
            self.registry.move(feed.url, response.url)
            feed = feed.model_copy(update={"url": response.url})
            feed_state = FeedState(self.redis, feed.url)
        try:
            return self._deliver(feed, feed_state, state, response)
        except Exception as error:
            log.exception("feed %s could not be read", feed.url)
            self._failed(feed, feed_state, f"unreadable: {type(error).__name__}: {error}", Outcome(failed=True), state)
            return None

    def accept_push(self, feed: Feed, body: bytes, headers: dict[str, str]) -> Delivery | None:
        """A WebSub hub's delivery of the feed: handled like a poll's response."""
        feed_state = FeedState(self.redis, feed.url)
        state = feed_state.read()
        try:
            return self._deliver(feed, feed_state, state, Response(200, body, headers, feed.url, False), pushed=True)
        except Exception as error:  # a pushed body that breaks the reader is kept, not retried forever
            log.exception("pushed feed %s could not be read", feed.url)
            reason = f"unreadable pushed feed: {type(error).__name__}: {error}"
            quarantine(self.redis, stage="push", reason=reason, item={"feed": feed.url, "body": body[:2000]})
            return None

    def _deliver(
        self, feed: Feed, feed_state: FeedState, state: dict[str, str], response: Response, pushed: bool = False
    ) -> Delivery | None:
        try:
            parsed = parse_feed(response.body, response.headers)
        except UnreadableFile as error:
            log.warning("feed %s refused: %s", feed.url, error)
            if not pushed:
                self._failed(feed, feed_state, f"refused: {error}", Outcome(failed=True), state)
            return None
        if not parsed.entries and (parsed.bozo or not parsed.version):
            why = parsed.get("bozo_exception") or "no RSS or Atom document (an HTML page?)"
            log.warning("feed %s is malformed: %s", feed.url, why)
            if not pushed:
                self._failed(feed, feed_state, f"malformed: {why}", Outcome(failed=True), state)
            return None
        if not pushed:
            try:
                websub.subscribe(self.http, self.settings, feed.url, parsed.feed.get("links", []), feed_state)
            except Exception as error:  # a hub we cannot reach leaves polling as it is
                log.warning("feed %s: WebSub subscription failed: %r", feed.url, error)
                feed_state.record(websub_state="failed", websub_note=f"hub unusable: {type(error).__name__}: {error}")
        source = feed.name or parsed.feed.get("title") or feed.url
        reading = articles_from_feed(parsed, feed.url, source, Limits.from_settings(self.settings))
        articles = reading.articles
        self._set_aside(feed, feed_state, state, parsed.entries, reading.problems)
        fresh = self._unseen(feed, reading.entries, articles)
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
                feed_state.record(**saved)
                self._watch_rhythm(feed, feed_state, datetime.now(UTC) if fresh else None)
            else:
                self._finish(feed, feed_state, state, outcome, **saved)

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
            FeedState(self.redis, feed.url).update(
                validators="untrusted", validators_note=f"a 304 hid a change ({when})"
            )
            return response
        if not trusted and hashlib.sha256(response.body).hexdigest() == state.get("body_hash"):
            return None
        return response

    def _get(self, url: str, headers: dict[str, str]) -> Response:
        assert self.limiter is not None
        with (
            self.limiter.slot(url),
            time_limit(self.settings.fetch_deadline_seconds, self.stopping),
            self.http.stream("GET", url, headers=headers) as reply,
        ):
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

    def _set_aside(
        self,
        feed: Feed,
        feed_state: FeedState,
        state: dict[str, str],
        entries: list[Any],
        problems: list[tuple[int, str, dict[str, str]]],
    ) -> None:
        """Entries that could not become articles: each new one is kept as a dead letter with its
        reason, and the feed's state says how many and the last reason (a known one is not kept
        again: its fingerprint is remembered with the others once the poll's articles are queued)."""
        if not problems:
            if int(state.get("entries_refused") or 0):
                feed_state.update(entries_refused="0")
            return
        fingerprints = [_fingerprint(entries[number - 1]) for number, _, _ in problems]
        known = self.redis.smismember(redis_keys.feed_entries(feed.url), fingerprints)
        for (number, reason, kept), seen in zip(problems, known, strict=True):
            if not seen:
                log.warning("feed %s: entry %d set aside: %s", feed.url, number, reason)
                quarantine(self.redis, stage="feed", reason=reason, item={"feed": feed.url, "entry": number, **kept})
        feed_state.record(entries_refused=str(len(problems)), last_entry_problem=problems[-1][1])

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
                if looks_binary(page.body):
                    raise UnreadableFile("binary content, not a page")
                try:
                    html = page.body.decode(_charset(page.headers), errors="replace")
                except LookupError:  # a charset nobody knows: UTF-8 is the likeliest
                    html = page.body.decode("utf-8", errors="replace")
                problem = Limits.from_settings(self.settings).article_problem(len(html) + len(article.title))
                if problem is not None:
                    raise UnreadableFile(problem)
            except Exception as error:  # any failure keeps the summary, with the reason
                if self.stopping.is_set():
                    raise
                article.notes.append(f"fetch: full article not fetched ({error}); kept the feed's summary")
                continue
            if article.html and not article.text:  # the summary as text, kept if extraction fails
                article.text = _plain(article.html)
            article.html = without_code(html)
            article.notes.append(f"fetch: full article fetched from {page.url}")

    # -- bookkeeping -----------------------------------------------------------------------

    def _finish(
        self, feed: Feed, feed_state: FeedState, state: dict[str, str], outcome: Outcome, **fields: str
    ) -> None:
        fixed = feed.interval
        if websub.lease_active(feed_state):
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
        feed_state.record(**fields)
        FEED_POLLS.labels("new" if outcome.new_items else "unchanged").inc()
        self.redis.zadd(redis_keys.FEEDS_DUE, {feed.url: now + interval})
        self._watch_rhythm(feed, feed_state, datetime.now(UTC) if outcome.new_items else None)

    def _failed(self, feed: Feed, feed_state: FeedState, status: str, outcome: Outcome, state: dict[str, str]) -> None:
        interval = next_interval(_float(state.get("interval")), outcome, self._bounds(), feed.interval)
        now = time.time()
        feed_state.record(
            status=status,
            last_error=status,
            interval=f"{interval:.0f}",
            next_poll=datetime.fromtimestamp(now + interval, UTC).isoformat(timespec="seconds"),
        )
        self.redis.zadd(redis_keys.FEEDS_DUE, {feed.url: now + interval})
        FEED_POLLS.labels("failed").inc()
        failures = feed_state.count_failure()
        if failures == self.settings.feed_failures_before_alert:
            self.report_health(health.source_health_event(feed, failures, status))

    def _disable(self, feed: Feed, feed_state: FeedState, reason: str) -> None:
        log.warning("feed %s disabled: %s", feed.url, reason)
        feed_state.record(status=f"disabled: {reason}", disabled=reason)
        FEED_POLLS.labels("gone").inc()
        if self.registry is not None:
            self.registry.put(feed.model_copy(update={"enabled": False}))
        self.redis.zrem(redis_keys.FEEDS_DUE, feed.url)
        self.report_health(health.source_health_event(feed, 1, f"disabled: {reason}"))

    def _bounds(self) -> Bounds:
        return Bounds(
            self.settings.feed_min_interval_seconds,
            self.settings.feed_max_interval_seconds,
            self.settings.feed_interval_seconds,
        )

    def _watch_rhythm(self, feed: Feed, feed_state: FeedState, newest: datetime | None) -> None:
        """Learn how often the feed has new items; a feed quiet for far longer raises an event."""
        state = feed_state.read()
        last_new = datetime.fromisoformat(state["last_new_item"]) if state.get("last_new_item") else None
        rhythm = float(state.get("rhythm_seconds") or 0)
        if newest is not None and (last_new is None or newest > last_new):
            rhythm = health.next_rhythm(rhythm, last_new, newest)
            feed_state.record(last_new_item=newest.isoformat(), rhythm_seconds=str(rhythm), silent_reported="")
            return
        if state.get("silent_reported"):
            return
        status = health.silence(datetime.now(UTC), last_new, rhythm, self.settings.feed_silence_factor)
        if status is not None:
            feed_state.record(silent_reported=datetime.now(UTC).isoformat())
            self.report_health(health.source_health_event(feed, 0, status))


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
    return " ".join(re.sub(r"<[^<>]+>", " ", html).split())  # [^<>]: no rescans, so linear


def feed_client(settings: Settings) -> httpx.Client:
    """The client feeds, pages and hubs are read with: the outbound client, asking for feeds first."""
    return outbound_client(settings, headers={"Accept": FEED_ACCEPT})
