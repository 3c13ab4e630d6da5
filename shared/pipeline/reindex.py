"""Rebuilding the store, optionally running the enrich pipeline again: how a taxonomy change
reaches every article already stored."""

from __future__ import annotations

from collections.abc import Callable

from shared.article import Article
from shared.pipeline.context import build_context
from shared.pipeline.pipelines import ENRICH
from shared.pipeline.steps import run_pipeline
from shared.redis_client import get_redis
from shared.settings import Settings
from shared.store import Store, open_store

LOCK_NAME = "ww:lock:reindex"
LOCK_SECONDS = 6 * 3600  # longer than any rebuild; a crashed holder's lock lapses after it


class ReindexBusy(RuntimeError):
    """Another reindex holds the lock."""


def retagger(settings: Settings) -> Callable[[Article], Article]:
    """Clean and tag a stored article again (the enrich pipeline), with the current rules,
    taxonomy and learned boilerplate."""
    context = build_context(settings, get_redis(settings), learn=False)

    def transform(article: Article) -> Article:
        enriched = run_pipeline(ENRICH, [article], context)
        return enriched[0] if enriched else article

    return transform


def reindex(
    settings: Settings,
    *,
    retag: bool,
    progress: Callable[[int, int], None],
    store: Store | None = None,
) -> int:
    """Rebuild the store under a Redis lock, so two rebuilds never race (a second one is
    refused with `ReindexBusy`); the pipeline goes on writing meanwhile and the store keeps
    every write (see `ElasticsearchStore.rebuild`). Returns the count rewritten."""
    lock = get_redis(settings).lock(LOCK_NAME, timeout=LOCK_SECONDS, blocking=False)
    if not lock.acquire():
        raise ReindexBusy("another reindex is running (Redis lock ww:lock:reindex)")
    try:
        target = store if store is not None else open_store(settings)
        return target.rebuild(retagger(settings) if retag else _unchanged, progress)
    finally:
        lock.release()


def _unchanged(article: Article) -> Article:
    return article
