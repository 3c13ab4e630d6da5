"""The chain's Celery tasks: one thin task per step, running it and the steps after it up to
indexing (or from alert matching to the end) over a batch message, in one go.

The worker hands its per-process context to `bind_context` when a process starts; the tasks
read it from there and build nothing themselves.

A batch message is deleted only once its articles went on, were stored, were quarantined with
a reason, or were found to be copies of stored ones:
- a transient error (Redis, the store) or a step that retries defers the batch in Redis and
  sends it on again later, at most `MAX_TASK_RETRIES` times, then quarantines it;
- if even that fails (Redis is away), or anything unforeseen happens, the message is put back
  (or, with Redis away, left unacknowledged until the visibility timeout hands it out again);
- a batch delivered more than `MAX_DELIVERIES` times (it keeps stopping its worker) is split
  in two, and an article that keeps doing it alone is quarantined; the rest go on.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import orjson
from celery import Task
from celery.exceptions import Reject

from shared import redis_keys
from shared.backoff import compute_backoff
from shared.pipeline.context import PipelineContext
from shared.pipeline.pipelines import AFTER_INDEX, INGEST, QUEUED
from shared.pipeline.steps import STEPS, StepFailed, quarantine_batch, read_batch, run_step
from shared.queue import (
    BATCH_REFERENCE,
    MAX_TASK_RETRIES,
    RETRY_BACKOFF_MAX_SECONDS,
    RETRY_FIRST_SECONDS,
    TRANSIENT_ERRORS,
    defer,
    resume,
    task,
)
from shared.redis_client import as_text

log = logging.getLogger(__name__)

MAX_DELIVERIES = 5  # a slow machine can redeliver a live batch; a poison one fails every time
RETRIED: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, StepFailed)
DELIVERIES_KEPT_SECONDS = 86400


class PipelineTask(Task):
    step: str
    context: PipelineContext | None = None


def bind_context(context: PipelineContext | None) -> None:
    """Give the tasks of this process their clients (None when the process stops)."""
    PipelineTask.context = context


def _context() -> PipelineContext:
    if PipelineTask.context is None:
        raise RuntimeError("the worker started no pipeline context in this process")
    return PipelineTask.context


def _nothing_left(task: PipelineTask) -> None:
    task.request.chain = None  # the rest of the chain has no work


def run_task(task: PipelineTask, message: dict[str, Any]) -> None:
    """Run the task's step and the steps after it in the same part of the chain (up to
    indexing, or after it) over the batch the message names, in this process, with the
    failure handling above. The batch is read once and its articles go from step to step as
    they are; a batch that must be tried again goes again from this task's step, as it came
    (every step is idempotent, as a redelivery after a crash already needs). Once the task is
    through with the batch (sent on, stored, deferred, split or quarantined), its key goes."""
    reference = message.get(BATCH_REFERENCE)
    try:
        context = _context()
        deliveries, failed_at, kept = _receive(context, task.request.id, reference)
    except TRANSIENT_ERRORS as error:  # nothing read yet: the message goes back as it came
        log.warning("batch %s put back: %r", message.get("id"), error)
        raise Reject(error, requeue=True) from error
    if reference is None:
        batch = message  # a message that carries its batch itself
    elif kept is None:  # its batch went once a delivery before this one was through with it
        log.info("batch %s: already through the chain, nothing to do", message.get("id"))
        return _nothing_left(task)
    else:
        batch = orjson.loads(kept)
    _run_batch(task, context, batch, deliveries, failed_at)
    if reference is not None:
        with contextlib.suppress(Exception):  # left behind, it only waits for its expiry
            context.redis.delete(redis_keys.batch_articles(reference))


def _run_batch(
    task: PipelineTask, context: PipelineContext, batch: dict[str, Any], deliveries: int, failed_at: str | None
) -> None:
    name = task.step
    try:
        if deliveries > MAX_DELIVERIES:
            _split(context, task.step, failed_at or task.step, batch, deliveries)
            return _nothing_left(task)
        articles = read_batch(batch, context, task.step)
        for name in segment(task.step):
            articles = run_step(
                STEPS[name],
                articles,
                context,
                run_id=batch.get("run"),
                batch_id=batch.get("id"),
                last=name == INGEST[-1],
            )
            if not articles:
                return _nothing_left(task)
    except RETRIED as error:
        try:
            _retry_later(context, task.step, name, batch, error)
        except Exception as failed:  # Redis itself is away: the message is kept, not lost
            log.warning("step=%s batch %s put back: %r", name, batch.get("id"), failed)
            raise Reject(error, requeue=True) from error
        return _nothing_left(task)
    except Exception as error:  # unforeseen: keep the message; deliveries are counted above
        log.exception("step=%s batch %s put back after an unexpected error", name, batch.get("id"))
        _note_failed_step(task.request.id, name)
        raise Reject(error, requeue=True) from error


def segment(step: str) -> tuple[str, ...]:
    """The steps one task runs from `step` on: to indexing, or from it to the end. A queue hop
    between two steps of one part would buy nothing but serialising the batch again."""
    steps = QUEUED if step in QUEUED else AFTER_INDEX
    return steps[steps.index(step) :]


def _receive(context: PipelineContext, task_id: str, reference: str | None) -> tuple[int, str | None, bytes | None]:
    """How often this message was delivered, the step it last failed at (if it raised), and
    the batch it names (None once gone, or when it names none): one round trip."""
    key = redis_keys.deliveries(task_id)
    pipe = context.redis.pipeline(transaction=False)
    pipe.hincrby(key, "count", 1)
    pipe.hget(key, "step")
    pipe.expire(key, DELIVERIES_KEPT_SECONDS)
    if reference is not None:
        pipe.get(redis_keys.batch_articles(reference))
    count, step, _, *kept = pipe.execute()
    return int(count), as_text(step) if step else None, kept[0] if kept else None


def _note_failed_step(task_id: str, step: str) -> None:
    # Best effort: a batch split down to one article is quarantined naming this step.
    with contextlib.suppress(Exception):
        _context().redis.hset(redis_keys.deliveries(task_id), "step", step)


def _retry_later(
    context: PipelineContext, start: str, failed_at: str, batch: dict[str, Any], error: BaseException
) -> None:
    retries = int(batch.get("retries", 0))
    if retries >= MAX_TASK_RETRIES:
        reason = f"{failed_at} failed {retries + 1} times: {type(error).__name__}: {error}"
        quarantine_batch(batch, context, failed_at, reason)
        return
    delay = compute_backoff(retries, first=RETRY_FIRST_SECONDS, maximum=RETRY_BACKOFF_MAX_SECONDS)
    log.warning("step=%s batch %s again from %s in %.1f s: %r", failed_at, batch.get("id"), start, delay, error)
    defer(context.redis, start, {**batch, "retries": retries + 1}, delay)


def _split(context: PipelineContext, step: str, failed_at: str, batch: dict[str, Any], deliveries: int) -> None:
    articles = batch.get("articles", [])
    if len(articles) <= 1:
        reason = f"{failed_at} failed on it or stopped its worker {deliveries - 1} times (a crash or the time limit)"
        quarantine_batch(batch, context, failed_at, reason)
        return
    middle = len(articles) // 2
    log.warning("step=%s batch %s delivered %d times: split in two", step, batch.get("id"), deliveries)
    for number, part in enumerate((articles[:middle], articles[middle:])):
        resume(step, {**batch, "id": f"{batch.get('id')}.{number}", "articles": part, "retries": 0})


def _register(step: str) -> Task:
    def chain_task(self: PipelineTask, batch: dict[str, Any]) -> None:
        run_task(self, batch)

    chain_task.__name__ = step
    registered = task(base=PipelineTask)(chain_task)
    registered.step = step  # type: ignore[attr-defined]
    return registered


TASKS: dict[str, Task] = {step: _register(step) for step in INGEST}
"""One task per step of the ingest pipeline."""
