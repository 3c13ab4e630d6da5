"""Putting a batch of articles on the chain."""

from __future__ import annotations

from collections.abc import Sequence

from celery import chain

from services.worker.tasks import CHAIN_TASKS
from shared.article import Article


def enqueue_batch(articles: Sequence[Article], run_id: str | None = None) -> None:
    """Send one batch through dedupe → clean → tag → index → match alerts, as one chain."""
    batch = {"run": run_id, "articles": [article.to_message() for article in articles]}
    first, *rest = CHAIN_TASKS
    chain(first.s(batch), *(task.s() for task in rest)).apply_async()
