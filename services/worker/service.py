"""The worker service: the Celery worker for the chain, with a bulk indexer thread beside it."""

from __future__ import annotations

import threading
from typing import Any

from celery import signals

from services.worker.indexer import BulkIndexer, start_indexer_thread
from shared.redis_client import get_redis
from shared.settings import Settings
from shared.store import process_store

_running: list[threading.Event] = []


def bulk_indexer(settings: Settings) -> BulkIndexer:
    """A bulk indexer for this process, writing to the process's store."""
    from services.worker.tasks import send_matches

    return BulkIndexer(
        get_redis(settings),
        process_store(settings),
        send_matches,
        max_docs=settings.bulk_max_docs,
        max_wait=settings.bulk_max_wait_seconds,
    )


def run_indexer_with_worker(settings: Settings) -> None:
    """Start the bulk indexer when the Celery worker is ready, stop it when the worker stops."""

    @signals.worker_ready.connect(weak=False)
    def start_indexer(**_: Any) -> None:
        _running.append(start_indexer_thread(bulk_indexer(settings))[1])

    @signals.worker_shutting_down.connect(weak=False)
    def stop_indexer(**_: Any) -> None:
        for event in _running:
            event.set()
