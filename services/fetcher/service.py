"""The fetcher loop: poll the sources, put what they found on the chain in batches."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from services.fetcher.feeds import FeedSource, http_client
from services.fetcher.inbox import InboxSource
from services.fetcher.registry import FeedRegistry
from services.fetcher.sources import Delivery, Source
from shared import runs
from shared.article import Article
from shared.settings import Settings

log = logging.getLogger(__name__)

Enqueue = Callable[[Sequence[Article], str | None], None]


@dataclass
class Batcher:
    """Groups articles from many deliveries into batches of `size` for the chain.

    A delivery's `on_enqueued` runs once all of its articles are on the queue. A poll ends
    with `flush()`, so a lone article is never held back waiting for company.
    """

    size: int
    enqueue: Enqueue
    client: redis.Redis
    run_id: str | None
    counts: Counter[str] = field(default_factory=Counter)
    _articles: list[Article] = field(default_factory=list)
    _waiting: list[tuple[Delivery, int]] = field(default_factory=list)

    def add(self, delivery: Delivery) -> None:
        if delivery.rejected:
            self._record(Counter(rejected=delivery.rejected))
        if not delivery.articles:
            delivery.on_enqueued()
            return
        self._articles.extend(delivery.articles)
        self._waiting.append((delivery, len(self._articles)))
        while len(self._articles) >= self.size:
            self._send(self.size)

    def flush(self) -> None:
        while self._articles:
            self._send(min(self.size, len(self._articles)))

    def _send(self, count: int) -> None:
        batch, self._articles = self._articles[:count], self._articles[count:]
        # Counted before sending: a fast worker must never finish more than was seen.
        self._record(Counter(seen=len(batch)))
        self.enqueue(batch, self.run_id)
        finished = [delivery for delivery, end in self._waiting if end <= count]
        self._waiting = [(delivery, end - count) for delivery, end in self._waiting if end > count]
        for delivery in finished:
            delivery.on_enqueued()

    def _record(self, counts: Counter[str]) -> None:
        self.counts.update(counts)
        runs.record(self.client, self.run_id, counts)


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
        self.inbox = InboxSource(settings.inbox_dir, settings.processed_dir, settings.rejected_dir, dead_letters=client)
        registry = FeedRegistry(client)
        if settings.feeds:
            registry.merge_file(settings.feeds)  # the file's feeds join those added by command
        self.feeds = FeedSource([], client, settings, http_client(settings), report_health, registry)

    @property
    def sources(self) -> list[Source]:
        return [source for source in (self.inbox, self.feeds) if source is not None]

    def run_once(self, run_id: str | None = None) -> Counter[str]:
        """Read everything once: every file in the inbox, every feed. Returns the counts."""
        batcher = Batcher(self.settings.batch_size, self.enqueue, self.client, run_id)
        for delivery in self.inbox.poll(settle=False):
            batcher.add(delivery)
        if self.feeds is not None:
            for delivery in self.feeds.poll(all_feeds=True):
                batcher.add(delivery)
        batcher.flush()
        return batcher.counts

    def run_forever(self, stop: threading.Event) -> None:
        """Read the inbox as soon as a file lands in it (inotify; a scan every few seconds
        where that is not available) and poll feeds as they fall due, until `stop`."""
        log.info(
            "fetcher watching %s and %d feeds",
            self.settings.inbox_dir,
            len(self.feeds.current_feeds()) if self.feeds else 0,
        )
        wake = threading.Event()
        observer = watch_folder(self.settings.inbox_dir, wake)
        try:
            self._loop(stop, wake)
        finally:
            if observer is not None:
                observer.stop()

    def _loop(self, stop: threading.Event, wake: threading.Event) -> None:
        while not stop.is_set():
            wake.clear()
            batcher = Batcher(self.settings.batch_size, self.enqueue, self.client, None)
            for source in self.sources:
                try:
                    for delivery in source.poll():
                        batcher.add(delivery)
                except Exception:  # a broken source must not stop the others
                    log.exception("source %s failed", source.name)
            batcher.flush()
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


def watch_folder(folder: Path, wake: threading.Event) -> Any:
    """Set `wake` whenever something changes under `folder`; None when file events are not
    available here (the fetcher then scans on its timer alone)."""
    try:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer
    except ImportError:
        return None

    class Waker(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            wake.set()

    observer = Observer()
    try:
        observer.schedule(Waker(), str(folder), recursive=True)
        observer.start()
    except OSError as error:  # e.g. the inotify watch limit: polling still works
        log.warning("no file events for %s (%s); scanning every few seconds", folder, error)
        return None
    return observer
