"""The chain's Celery tasks: thin wrappers that run one step over a batch message."""

from __future__ import annotations

from typing import Any

from celery import Task

from services.worker.context import current_context
from services.worker.steps import STEPS, Step, quarantine_batch, run_step
from shared.celery_app import task


class PipelineTask(Task):
    """A chain task whose batch is quarantined, never lost, when it fails for good."""

    step: Step

    def on_failure(self, exc: BaseException, task_id: str, args: tuple, kwargs: dict, einfo: Any) -> None:
        batch = args[0] if args else kwargs.get("batch", {})
        reason = f"task {self.name} failed after {self.request.retries} retries: {type(exc).__name__}: {exc}"
        quarantine_batch(batch, current_context(), self.step.name, reason)


def _run(self: PipelineTask, batch: dict[str, Any]) -> dict[str, Any]:
    result = run_step(self.step, batch, current_context(), last=self.step is STEPS[-1])
    if not result["articles"]:
        self.request.chain = None  # nothing left: the rest of the chain has no work
    return result


def _register(step: Step) -> PipelineTask:
    def chain_task(self: PipelineTask, batch: dict[str, Any]) -> dict[str, Any]:
        return _run(self, batch)

    chain_task.__name__ = step.name
    registered = task(base=PipelineTask)(chain_task)
    registered.step = step  # type: ignore[attr-defined]
    return registered  # type: ignore[return-value]


CHAIN_TASKS: tuple[PipelineTask, ...] = tuple(_register(step) for step in STEPS)
"""One task per step, in the order of `STEPS`."""


def send_matches(batch: dict[str, Any]) -> None:
    """Send an indexed batch to alert matching (called by the bulk indexer)."""
    match_task = CHAIN_TASKS[-1]
    match_task.s(batch).set(priority=0).apply_async()
