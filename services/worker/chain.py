"""Putting a batch of articles on the chain."""

from __future__ import annotations

from collections.abc import Sequence

from celery import chain

from services.worker.steps import STEPS
from services.worker.tasks import CHAIN_TASKS, send_matches
from shared.article import Article


def enqueue_batch(articles: Sequence[Article], run_id: str | None = None) -> None:
    """Send one batch through dedupe → clean → tag → index → match alerts, as one chain.

    Later steps get higher priority (in Redis, 0 is the highest): a queue is first in, first
    out, so without it the second step of the first batch would wait behind the first step
    of every batch dropped after it, and nothing would be searchable until all were.
    """
    batch = {"run": run_id, "articles": [article.to_message() for article in articles]}
    last = len(CHAIN_TASKS) - 1
    chained = CHAIN_TASKS[: _INDEX + 1]  # the bulk indexer sends the rest on (see steps.STEPS)
    signatures = [task.s().set(priority=last - position) for position, task in enumerate(chained)]
    signatures[0] = chained[0].s(batch).set(priority=last)
    chain(*signatures).apply_async()


_INDEX = [step.name for step in STEPS].index("index")


def report_health(event: Article) -> None:
    """Send a source-health event straight to alert matching; it is never stored as an article."""
    send_matches({"run": None, "articles": [event.to_message()]})
