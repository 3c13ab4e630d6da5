"""The fetcher loop: poll the sources, put what they found on the chain in batches."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

import kombu.exceptions
import redis

from services.fetcher.watch import watch_folder
from shared.article import Article
from shared.backoff import compute_backoff
from shared.feeds.registry import FeedRegistry
from shared.feeds.source import FeedSource, feed_client
from shared.feeds.status import health_counts
from shared.formats.limits import Limits
from shared.heartbeat import Heartbeat
from shared.metrics import serve_metrics
from shared.settings import Settings
from shared.sources.batcher import Batcher, Enqueue
from shared.sources.delivery import Source
from shared.sources.inbox import InboxSource
from shared.sources.push import PushSource

log = logging.getLogger(__name__)

PUSH_WAIT_MS = 1000
# Feeds fall due minutes apart: looking for due ones (the whole registry read from Redis) on
# every inbox scan, several times a second, would cost more than it finds.
FEED_CHECK_SECONDS = 1.0
# Redis or the queue away: not a broken source, so the whole pass waits and is tried again.
UNAVAILABLE: tuple[type[BaseException], ...] = (redis.RedisError, kombu.exceptions.OperationalError)


class Fetcher:
    """The sources of one fetcher service, and its loop."""

    def __init__(
        self,
        settings: Settings,
        client: redis.Redis,
        enqueue: Enqueue,
        report_health: Callable[[Article], None] = lambda event: None,
    ) -> None:
        self.settings, self.client, self.enqueue = settings, client, enqueue
        self.inbox = InboxSource(
            settings.inbox_dir,
            settings.processed_dir,
            settings.rejected_dir,
            dead_letters=client,
            limits=Limits.from_settings(settings),
        )
        registry = FeedRegistry(client)
        if settings.feeds:
            registry.merge_file(settings.feeds)  # the file's feeds join those added by command
        self.feeds = FeedSource([], client, settings, feed_client(settings), report_health, registry)
        self.push = PushSource(client, self.feeds)
        self._feeds_checked = float("-inf")  # monotonic time of the last look for due feeds

    @property
    def sources(self) -> list[Source]:
        return [self.inbox, self.feeds]

    def _sources_due(self) -> list[Source]:
        now = time.monotonic()
        if now - self._feeds_checked < FEED_CHECK_SECONDS:
            return [self.inbox]
        self._feeds_checked = now
        return self.sources

    def run_once(self, run_id: str | None = None) -> Counter[str]:
        """Read everything once: every file in the inbox, every feed. Returns the counts."""
        batcher = Batcher(self.settings.batch_size, self.enqueue, self.client, run_id)
        for delivery in self.inbox.poll(settle=False):
            batcher.add(delivery)
        for delivery in self.feeds.poll(all_feeds=True):
            batcher.add(delivery)
        for delivery in self.push.poll():
            batcher.add(delivery)
        batcher.flush()
        return batcher.counts

    def run_forever(self, stop: threading.Event) -> None:
        """Read the inbox as soon as a file lands in it (inotify; a scan every few seconds
        where that is not available), poll feeds as they fall due, and take pushes as they
        come, until `stop`."""
        self.feeds.stopping = stop  # a request under way when `stop` is set ends within half a second
        log.info("fetcher watching %s and %d feeds", self.settings.inbox_dir, len(self.feeds.current_feeds()))
        serve_metrics(
            "fetcher", self.settings, self.client, lambda: health_counts(self.client, FeedRegistry(self.client).all())
        )
        wake = threading.Event()
        observer = watch_folder(self.settings.inbox_dir, wake, self.inbox.landed)
        pushes = threading.Thread(target=self._take_pushes, args=(stop,), name="push", daemon=True)
        pushes.start()
        try:
            self._loop(stop, wake)
        finally:
            if observer is not None:
                observer.stop()
            pushes.join(timeout=5)

    def _poll_once(self) -> None:
        # What was read but not queued stays where it was (a file in the inbox, an entry in
        # the push stream, a feed's state unsaved) and is read again.
        batcher = Batcher(self.settings.batch_size, self.enqueue, self.client, None)
        for source in self._sources_due():
            try:
                for delivery in source.poll():
                    batcher.add(delivery)
            except UNAVAILABLE:
                raise
            except Exception:  # a broken source must not stop the others
                log.exception("source %s failed", source.name)
        batcher.flush()

    def _take_pushes(self, stop: threading.Event) -> None:
        # Its own thread: a push waits for no feed poll or file scan.
        failures = 0
        heartbeat = Heartbeat(self.client, "push")
        while not stop.is_set():
            batcher = Batcher(self.settings.batch_size, self.enqueue, self.client, None)
            try:
                heartbeat.beat()
                for delivery in self.push.poll(block_ms=PUSH_WAIT_MS):
                    batcher.add(delivery)
                batcher.flush()
                failures = 0
            except Exception as error:  # Redis or the queue away: wait for it, never exit
                delay = compute_backoff(failures, first=0.5, maximum=30)
                log.warning("push stream unavailable, again in %.1f s: %s", delay, error)
                failures += 1
                stop.wait(delay)

    def _loop(self, stop: threading.Event, wake: threading.Event) -> None:
        failures = 0
        heartbeat = Heartbeat(self.client, "fetcher")
        while not stop.is_set():
            wake.clear()
            try:
                heartbeat.beat()
                self._poll_once()
                failures = 0
            except Exception as error:  # the queue or Redis is away: wait for it, never exit
                delay = compute_backoff(failures, first=1.0, maximum=30)
                log.warning("fetcher waiting %.1f s for the queue: %r", delay, error)
                failures += 1
                stop.wait(delay)
                continue
            # A file event cuts the wait short; files seen but not settled yet are looked at
            # again as soon as they can be.
            pause = self.settings.inbox_scan_seconds
            if self.inbox.waiting:
                pause = min(pause, self.inbox.settle_seconds + 0.1)
            deadline = time.monotonic() + pause
            while not (stop.is_set() or wake.is_set()) and time.monotonic() < deadline:
                wake.wait(min(0.5, max(0.0, deadline - time.monotonic())))  # and notice `stop` soon
            if wake.is_set():
                stop.wait(0.2)  # let a burst of file events finish
