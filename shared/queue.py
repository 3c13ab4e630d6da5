"""The queue: the one Celery app, the one task decorator every wirewatch task uses, and
sending work down the chain by task name.

Producers send tasks by name, so no producer imports the worker's step code; the worker
registers the tasks itself (`services.worker.tasks`). The app is configured from `Settings` by
`configure()`, never at import time, so importing this module opens no connection.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import redis
from celery import Celery, Task, chain

from shared.article import Article
from shared.backoff import compute_backoff
from shared.pipeline.pipelines import AFTER_INDEX, INGEST, QUEUED
from shared.redis_client import celery_broker_url, resolve_redis_url
from shared.settings import Settings
from shared.store import TransientStoreError

PIPELINE_QUEUE = "pipeline"

# Errors worth retrying: the broker, Redis or the store is briefly away or overloaded.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    TransientStoreError,
)

MAX_TASK_RETRIES = 5
RETRY_FIRST_SECONDS = 2.0
RETRY_BACKOFF_MAX_SECONDS = 600.0
# Redis redelivers an unacknowledged message after this long; it must exceed the longest
# retry delay and the longest task, or a slow task would run twice at once.
VISIBILITY_TIMEOUT_SECONDS = 4 * 3600

app = Celery("wirewatch", set_as_current=False)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    task_default_queue=PIPELINE_QUEUE,
    task_routes={},
    broker_connection_retry_on_startup=True,
    broker_transport_options={
        "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
        # One Redis list per priority 0..9, read in order (0 first): lets a batch finish
        # its chain before the next batch starts it (see `enqueue_batch`).
        "priority_steps": list(range(10)),
        "queue_order_strategy": "priority",
    },
    worker_hijack_root_logger=False,
    task_time_limit=600,
    task_soft_time_limit=540,
)


def configure(settings: Settings) -> Celery:
    """Point the app at the settings' Redis (starting the embedded one if none is configured)."""
    broker = celery_broker_url(resolve_redis_url(settings))
    app.conf.update(broker_url=broker, result_backend=None)
    return app


def task_name(step: str) -> str:
    """The registered name of a step's task."""
    return f"wirewatch.{step}"


def task(*, queue: str = PIPELINE_QUEUE, **options: Any) -> Callable[[Callable[..., Any]], Task]:
    """Register a task with wirewatch's safe defaults: JSON, late acks, a time limit, and
    bounded retries on transient errors only, spaced by `compute_backoff`."""
    defaults: dict[str, Any] = {"bind": True, "acks_late": True, "ignore_result": True, "max_retries": MAX_TASK_RETRIES}
    defaults.update(options)

    def register(function: Callable[..., Any]) -> Task:
        name = task_name(function.__name__)
        app.conf.task_routes[name] = {"queue": queue}

        @functools.wraps(function)
        def run(self: Task, *args: Any, **kwargs: Any) -> Any:
            try:
                return function(self, *args, **kwargs)
            except TRANSIENT_ERRORS as error:
                delay = compute_backoff(
                    self.request.retries, first=RETRY_FIRST_SECONDS, maximum=RETRY_BACKOFF_MAX_SECONDS
                )
                raise self.retry(exc=error, countdown=delay) from error

        return app.task(name=name, **defaults)(run)

    return register


def enqueue_batch(articles: Sequence[Article], run_id: str | None = None) -> None:
    """Send one batch down the ingest pipeline, as one chain of tasks sent by name.

    Later steps get higher priority (in Redis, 0 is the highest): a queue is first in, first
    out, so without it the second step of the first batch would wait behind the first step
    of every batch dropped after it, and nothing would be searchable until all were.
    """
    batch = {"run": run_id, "articles": [article.to_message() for article in articles]}
    last = len(INGEST) - 1
    signatures = [
        app.signature(task_name(step), queue=PIPELINE_QUEUE, priority=last - position)
        for position, step in enumerate(QUEUED)
    ]
    signatures[0].args = (batch,)
    chain(*signatures).apply_async()


def send_after_index(batch: dict[str, Any]) -> None:
    """Send a stored batch on to the steps after indexing (the bulk indexer calls this)."""
    signatures = [app.signature(task_name(step), queue=PIPELINE_QUEUE, priority=0) for step in AFTER_INDEX]
    signatures[0].args = (batch,)
    chain(*signatures).apply_async()


def report_health(event: Article) -> None:
    """Send a source-health event straight to alert matching; it is never stored as an article."""
    send_after_index({"run": None, "articles": [event.to_message()]})
