"""The one Celery app, and the one task decorator every wirewatch task uses.

The app is configured from `Settings` by `configure()` (called by the command line and the
tests), never at import time, so importing a task module opens no connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from celery import Celery, Task

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
RETRY_BACKOFF_MAX_SECONDS = 600
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
        # its chain before the next batch starts it (see services/worker/chain.py).
        "priority_steps": list(range(10)),
        "queue_order_strategy": "priority",
    },
    worker_hijack_root_logger=False,
    task_time_limit=600,
    task_soft_time_limit=540,
    include=["services.worker.tasks"],
)


def configure(settings: Settings) -> Celery:
    """Point the app at the settings' Redis (starting the embedded one if none is configured)."""
    broker = celery_broker_url(resolve_redis_url(settings))
    app.conf.update(broker_url=broker, result_backend=None)
    return app


def task(*, queue: str = PIPELINE_QUEUE, **options: Any) -> Callable[[Callable[..., Any]], Task]:
    """Register a task with wirewatch's safe defaults: JSON, late acks, bounded retries with
    exponential backoff and jitter on transient errors only, and a time limit."""
    defaults: dict[str, Any] = {
        "bind": True,
        "acks_late": True,
        "ignore_result": True,
        "autoretry_for": TRANSIENT_ERRORS,
        "retry_backoff": 2,
        "retry_backoff_max": RETRY_BACKOFF_MAX_SECONDS,
        "retry_jitter": True,
        "max_retries": MAX_TASK_RETRIES,
    }
    defaults.update(options)

    def register(function: Callable[..., Any]) -> Task:
        name = f"wirewatch.{function.__name__}"
        app.conf.task_routes[name] = {"queue": queue}
        return app.task(name=name, **defaults)(function)

    return register
