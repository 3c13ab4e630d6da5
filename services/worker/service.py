"""The worker service: the Celery worker for the chain, with a bulk indexer thread beside it.

Clients are built when a worker process starts (in every pool process, for prefork) and
handed to the tasks; nothing is built at import time.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from celery import signals

from services.worker import tasks
from shared.metrics import serve_metrics
from shared.pipeline.context import build_context, load_models
from shared.pipeline.indexer import BulkIndexer, start_indexer_thread
from shared.queue import PIPELINE_QUEUE, configure, run_retry_pump, send_after_index
from shared.redis_client import get_redis
from shared.settings import Settings
from shared.store import Store, open_store


def bulk_indexer(settings: Settings, store: Store) -> BulkIndexer:
    """A bulk indexer writing to `store`, sending what it wrote on to alert matching."""
    return BulkIndexer(
        get_redis(settings),
        store,
        send_after_index,
        max_docs=settings.bulk_max_docs,
        max_wait=settings.bulk_max_wait_seconds,
    )


def start_pipeline(settings: Settings) -> None:
    """Give this process's tasks their clients."""
    tasks.bind_context(build_context(settings, get_redis(settings)))


def start_retry_pump(settings: Settings) -> threading.Event:
    """Send deferred batches on as they fall due, in a daemon thread; set the event to stop it."""
    stop = threading.Event()
    threading.Thread(target=run_retry_pump, args=(get_redis(settings), stop), name="retries", daemon=True).start()
    return stop


def run_worker(settings: Settings, *, concurrency: int | None, log_level: str) -> None:
    """Run the Celery worker on the pipeline queue until it is stopped, with a bulk indexer."""
    app = configure(settings)
    running: list[threading.Event] = []

    @signals.worker_init.connect(weak=False)
    def start_main(**_: Any) -> None:
        load_models()  # before the pool forks: its processes inherit them
        start_pipeline(settings)

    @signals.worker_process_init.connect(weak=False)
    def start_child(**_: Any) -> None:
        start_pipeline(settings)  # a forked process opens its own connections

    @signals.worker_ready.connect(weak=False)
    def start_indexer(**_: Any) -> None:
        running.append(start_indexer_thread(bulk_indexer(settings, open_store(settings)))[1])
        running.append(start_retry_pump(settings))
        # Started once the pool has forked: a child forked while this thread held a lock (a scrape
        # mid-connect) would wait on it forever. The pool's children count into files (see
        # shared.multiprocess_metrics) that this exporter adds up.
        serve_metrics("worker", settings, get_redis(settings))

    @signals.worker_shutting_down.connect(weak=False)
    def stop_indexer(**_: Any) -> None:
        for event in running:
            event.set()

    app.worker_main(
        [
            *(["--quiet"] if settings.log_format == "json" else []),  # no banner among the JSON lines
            "worker",
            "-Q",
            PIPELINE_QUEUE,
            "-c",
            str(concurrency or settings.worker_concurrency),
            "-n",
            f"worker-{uuid.uuid4().hex[:6]}@%h",
            "--loglevel",
            log_level.upper(),
            "--without-gossip",
            "--without-mingle",
        ]
    )
