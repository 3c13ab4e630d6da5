"""Rebuilding the store, optionally re-running clean and tag: how a taxonomy change reaches
every article already stored."""

from __future__ import annotations

from collections.abc import Callable

from services.worker.clean import BoilerplateRules, clean
from services.worker.tag import Taxonomy, tag
from shared.article import Article
from shared.redis_client import get_redis
from shared.settings import Settings
from shared.store import Store, open_store

LOCK_NAME = "ww:lock:reindex"
LOCK_SECONDS = 6 * 3600  # longer than any rebuild; a crashed holder's lock lapses after it


class ReindexBusy(RuntimeError):
    """Another reindex holds the lock."""


def retagger(taxonomy: Taxonomy, rules: BoilerplateRules) -> Callable[[Article], Article]:
    """Clean and tag a stored article again with the current rules and taxonomy."""

    def transform(article: Article) -> Article:
        return tag(clean(article, rules), taxonomy)

    return transform


def reindex(
    settings: Settings,
    *,
    retag: bool,
    progress: Callable[[int, int], None],
    store: Store | None = None,
) -> int:
    """Rebuild the store under a Redis lock, so two rebuilds never race; returns the count."""
    lock = get_redis(settings).lock(LOCK_NAME, timeout=LOCK_SECONDS, blocking=False)
    if not lock.acquire():
        raise ReindexBusy("another reindex is running (Redis lock ww:lock:reindex)")
    try:
        target = store if store is not None else open_store(settings)
        transform = retagger(Taxonomy.load(settings.taxonomy), BoilerplateRules.load()) if retag else _unchanged
        return target.rebuild(transform, progress)
    finally:
        lock.release()


def _unchanged(article: Article) -> Article:
    return article
