"""The queue: the one Celery app, the one task decorator every wirewatch task uses, and
sending work down the chain by task name.

Producers send tasks by name, so no producer imports the worker's step code; the worker
registers the tasks itself (`services.worker.tasks`). The app is configured from `Settings` by
`configure()`, never at import time, so importing this module opens no connection.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import redis
from celery import Celery, Task

from shared import redis_keys
from shared.article import Article
from shared.backoff import compute_backoff
from shared.heartbeat import Heartbeat
from shared.pipeline.pipelines import AFTER_INDEX, INGEST, QUEUED
from shared.redis_client import celery_broker_url, get_redis, resolve_redis_url
from shared.settings import Settings
from shared.store import TransientStoreError

log = logging.getLogger(__name__)

PIPELINE_QUEUE = "pipeline"

# Errors worth retrying: the broker, Redis or the store is briefly away or overloaded.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    TransientStoreError,
)

MAX_TASK_RETRIES = 5
RETRY_FIRST_SECONDS = 2.0
RETRY_BACKOFF_MAX_SECONDS = 120.0
# A task is stopped after this long (a batch takes a second or two); its message, redelivered,
# counts as one more delivery towards splitting a poison batch.
TASK_TIME_LIMIT_SECONDS = 20
# Redis gives an unacknowledged message to another worker after this long: a dead worker's
# batches come back within a minute. It must exceed a task and the one prefetched behind it,
# and retries are never held as delayed messages (they wait in Redis, see `defer`), so no
# live worker holds a message this long.
VISIBILITY_TIMEOUT_SECONDS = 45
RESTORE_CHECK_SECONDS = 5

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
        "unacked_restore_interval": RESTORE_CHECK_SECONDS,
        "unacked_restore_throttle": 1,
        # One Redis list per priority 0..9, read in order (0 first): lets a batch finish
        # its chain before the next batch starts it (see `enqueue_batch`).
        "priority_steps": list(range(10)),
        "queue_order_strategy": "priority",
        # The JSON body as it is, not base64 within the message's JSON: a third fewer bytes,
        # and no encoding pass on either side. Each message names its own encoding, so
        # messages queued before this setting are still read.
        "body_encoding": "utf-8",
    },
    worker_hijack_root_logger=False,
    task_time_limit=TASK_TIME_LIMIT_SECONDS,
)


# A chain message names its batch, kept in Redis under its own key, instead of carrying it:
# the worker's consumer then decodes, keeps as unacknowledged and hands its pool a few bytes
# rather than every article's text, and the task reads the batch once. The key goes once the
# task is through with the batch; this only bounds what a producer that died between writing
# the batch and sending its message leaves behind.
BATCH_KEPT_SECONDS = 30 * 86400
BATCH_REFERENCE = "kept"
"""The field of a chain message naming its batch's key (`redis_keys.batch_articles`)."""

_batches: redis.Redis | None = None


def configure(settings: Settings) -> Celery:
    """Point the app at the settings' Redis (starting the embedded one if none is configured)."""
    global _batches
    broker = celery_broker_url(resolve_redis_url(settings))
    app.conf.update(broker_url=broker, result_backend=None)
    _batches = get_redis(settings)
    return app


def task_name(step: str) -> str:
    """The registered name of a step's task."""
    return f"wirewatch.{step}"


def task(*, queue: str = PIPELINE_QUEUE, **options: Any) -> Callable[[Callable[..., Any]], Task]:
    """Register a task with wirewatch's safe defaults: JSON, late acks, a time limit, and its
    message put back when its worker is lost."""
    defaults: dict[str, Any] = {"bind": True, "acks_late": True, "ignore_result": True}
    defaults.update(options)

    def register(function: Callable[..., Any]) -> Task:
        name = task_name(function.__name__)
        app.conf.task_routes[name] = {"queue": queue}
        return app.task(name=name, **defaults)(function)

    return register


def enqueue_batch(articles: Sequence[Article], run_id: str | None = None) -> None:
    """Send one batch down the ingest pipeline, as a task sent by name.

    Later steps get higher priority (in Redis, 0 is the highest): a queue is first in, first
    out, so without it alert matching of the first batch would wait behind every batch
    dropped after it.
    """
    batch = {"id": uuid.uuid4().hex, "run": run_id, "articles": [article.to_message() for article in articles]}
    resume(QUEUED[0], batch)


def send_after_index(batch: dict[str, Any]) -> None:
    """Send a stored batch on to the steps after indexing (the bulk indexer calls this)."""
    resume(AFTER_INDEX[0], batch)


def resume(step: str, batch: dict[str, Any]) -> None:
    """Send a batch down the ingest pipeline from `step` on, as one task: the worker runs it
    and the steps after it to indexing (or, after indexing, to the end) in one go."""
    if _batches is None:
        raise RuntimeError("the queue is not configured: call configure(settings) first")
    reference = uuid.uuid4().hex
    _batches.set(redis_keys.batch_articles(reference), orjson.dumps(batch), ex=BATCH_KEPT_SECONDS)
    last = len(INGEST) - 1
    app.send_task(
        task_name(step),
        args=({"id": batch.get("id"), BATCH_REFERENCE: reference},),
        queue=PIPELINE_QUEUE,
        priority=max(0, last - INGEST.index(step)),
        # What logs and monitors show of the task: a few words, not a repr walked over every article.
        argsrepr=f"(batch {batch.get('id')} of {len(batch.get('articles', []))} articles)",
        kwargsrepr="{}",
    )


def defer(client: redis.Redis, step: str, batch: dict[str, Any], seconds: float) -> None:
    """Hold a batch in Redis for `seconds`, then send it on from `step` (`resume_due`). A
    retry waits here, not in a worker as a delayed message that the visibility timeout would
    hand to a second worker."""
    entry = json.dumps({"step": step, "batch": batch}, ensure_ascii=False)
    client.zadd(redis_keys.RETRIES, {entry: time.time() + seconds})


def resume_due(client: redis.Redis, limit: int = 100) -> int:
    """Send on the deferred batches that are due; returns how many. An entry is removed only
    after it is sent, so a crash in between sends it twice (the steps are idempotent), never
    not at all."""
    due: Any = client.zrangebyscore(redis_keys.RETRIES, "-inf", time.time(), start=0, num=limit)
    for raw in due:
        entry = json.loads(raw)
        resume(entry["step"], entry["batch"])
        client.zrem(redis_keys.RETRIES, raw)
    return len(due)


def report_health(event: Article) -> None:
    """Send a source-health event straight to alert matching; it is never stored as an article."""
    send_after_index({"run": None, "articles": [event.to_message()]})


def run_retry_pump(client: redis.Redis, stop: threading.Event, every: float = 1.0) -> None:
    """Send deferred batches on as they fall due, until `stop`; whatever fails is tried again."""
    failures = 0
    heartbeat = Heartbeat(client, "retries")
    while not stop.is_set():
        try:
            heartbeat.beat()
            sent = resume_due(client)
            failures = 0
        except Exception as error:  # Redis or the broker away: wait, then carry on
            delay = compute_backoff(failures, first=0.5, maximum=30)
            log.warning("deferred batches wait %.1f s: %r", delay, error)
            failures += 1
            stop.wait(delay)
            continue
        if not sent:
            stop.wait(every)
