"""The chain's Celery tasks: one thin task per step, running it over a batch message.

The worker hands its per-process context to `bind_context` when a process starts; the tasks
read it from there and build nothing themselves.
"""

from __future__ import annotations

from typing import Any

from celery import Task

from shared.pipeline.context import PipelineContext
from shared.pipeline.pipelines import INGEST
from shared.pipeline.steps import STEPS, quarantine_batch, run_step
from shared.queue import task


class PipelineTask(Task):
    """A chain task whose batch is quarantined, never lost, when it fails for good."""

    step: str
    context: PipelineContext | None = None

    def on_failure(self, exc: BaseException, task_id: str, args: tuple, kwargs: dict, einfo: Any) -> None:
        batch = args[0] if args else kwargs.get("batch", {})
        reason = f"task {self.name} failed after {self.request.retries} retries: {type(exc).__name__}: {exc}"
        quarantine_batch(batch, _context(), self.step, reason)


def bind_context(context: PipelineContext | None) -> None:
    """Give the tasks of this process their clients (None when the process stops)."""
    PipelineTask.context = context


def _context() -> PipelineContext:
    if PipelineTask.context is None:
        raise RuntimeError("the worker started no pipeline context in this process")
    return PipelineTask.context


def _register(step: str) -> Task:
    def chain_task(self: PipelineTask, batch: dict[str, Any]) -> dict[str, Any]:
        result = run_step(STEPS[step], batch, _context(), last=step == INGEST[-1])
        if not result["articles"]:
            self.request.chain = None  # nothing left: the rest of the chain has no work
        return result

    chain_task.__name__ = step
    registered = task(base=PipelineTask)(chain_task)
    registered.step = step  # type: ignore[attr-defined]
    return registered


TASKS: dict[str, Task] = {step: _register(step) for step in INGEST}
"""One task per step of the ingest pipeline."""
