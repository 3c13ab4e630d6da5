"""Articles from many deliveries grouped into batches for the chain."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import redis

from shared import runs
from shared.article import Article
from shared.sources.delivery import Delivery

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
