"""The worker's tasks on a real Celery worker and Redis: nothing a batch carries is lost or
counted twice, whatever a step does."""

from __future__ import annotations

import time

import pytest
import redis

import services.worker.tasks as tasks
from shared import redis_keys
from shared.deadletters import read_dead_letters
from shared.queue import BATCH_REFERENCE
from shared.redis_client import get_redis
from tests.test_pipeline import by_title, run_inbox_once

pytestmark = pytest.mark.parametrize("store", ["sqlite"], indirect=True)


def drop(settings, count: int, poisoned: int | None = None) -> None:
    settings.inbox_dir.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        word = "poison" if number == poisoned else "ordinary"
        text = f"Report {number}\n\nA {word} article number {number} about harbour traffic and the weather.\n"
        (settings.inbox_dir / f"report_{number:02}.txt").write_text(text, "utf-8")


def test_a_batch_that_keeps_failing_is_split_until_the_article_at_fault_is_quarantined(
    settings, worker, store, monkeypatch
):
    real_run_step = tasks.run_step

    def run_step_failing_on_poison(step, articles, context, **batch):
        if step.name == "clean" and any("poison" in article.text for article in articles):
            raise RuntimeError("the step brought its worker down")
        return real_run_step(step, articles, context, **batch)

    monkeypatch.setattr(tasks, "run_step", run_step_failing_on_poison)
    drop(settings, 6, poisoned=4)

    counts = run_inbox_once(settings, timeout=60)

    assert (counts["seen"], counts["indexed"], counts["rejected"], counts["done"]) == (6, 5, 1, 6)
    (letter,) = read_dead_letters(get_redis(settings))
    assert letter["stage"] == "clean" and letter["item"]["title"] == "Report 4"
    assert "failed on it or stopped its worker 5 times" in letter["reason"]
    assert sorted(by_title(store)) == [f"Report {n}" for n in (0, 1, 2, 3, 5)]


def test_a_transient_error_defers_the_batch_and_nothing_is_counted_twice(settings, worker, store, monkeypatch):
    import shared.pipeline.steps as steps

    real_assign = steps.story_step
    failures = {"left": 2}

    def story_step_with_outage(article, context, state):
        if failures["left"] > 0:
            failures["left"] -= 1
            raise redis.ConnectionError("Redis went away for a moment")
        return real_assign(article, context, state)

    monkeypatch.setattr(tasks, "RETRY_FIRST_SECONDS", 0.05)
    monkeypatch.setitem(steps.STEPS, "story", steps.Step("story", story_step_with_outage, on_error="note"))
    drop(settings, 5)

    counts = run_inbox_once(settings, timeout=60)

    assert (counts["seen"], counts["indexed"], counts["rejected"], counts["done"]) == (5, 5, 0, 5)
    assert failures["left"] == 0 and read_dead_letters(get_redis(settings)) == []
    assert get_redis(settings).zcard(redis_keys.RETRIES) == 0
    assert len(by_title(store)) == 5


def test_a_batch_whose_retries_run_out_is_quarantined_with_the_reason(settings, worker, store, monkeypatch):
    import shared.pipeline.steps as steps
    from shared.store import TransientStoreError

    def story_step_always_down(article, context, state):
        raise TransientStoreError("the store keeps refusing")

    monkeypatch.setattr(tasks, "RETRY_FIRST_SECONDS", 0.01)
    monkeypatch.setitem(steps.STEPS, "story", steps.Step("story", story_step_always_down, on_error="note"))
    drop(settings, 3)

    counts = run_inbox_once(settings, timeout=60)

    assert (counts["indexed"], counts["rejected"], counts["done"]) == (0, 3, 3)
    letters = read_dead_letters(get_redis(settings))
    assert len(letters) == 3 and all("story failed 6 times" in letter["reason"] for letter in letters)
    # Each kept as its batch came to the worker, whole, to be sent again once the store is back.
    assert sorted(letter["item"]["title"] for letter in letters) == ["Report 0", "Report 1", "Report 2"]
    assert all("harbour traffic" in letter["item"]["text"] for letter in letters)


def test_the_batch_a_message_names_is_removed_once_the_chain_is_through_with_it(settings, worker, store):
    drop(settings, 4)

    counts = run_inbox_once(settings, timeout=60)

    assert (counts["indexed"], counts["done"]) == (4, 4)
    client = get_redis(settings)
    deadline = time.monotonic() + 10  # the last task removes its batch just after counting it done
    while list(client.scan_iter(redis_keys.batch_articles("*"))) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(client.scan_iter(redis_keys.batch_articles("*"))) == []


def test_a_message_delivered_again_after_its_batch_went_through_does_nothing(settings, worker, store):
    result = tasks.TASKS["dedupe"].apply(args=({"id": "b1", BATCH_REFERENCE: "already-through"},))

    assert result.successful()
    assert read_dead_letters(get_redis(settings)) == [] and by_title(store) == {}
