"""The duplicate benchmark (tests/benchmarks/bench_dedupe.py) must meet the project's targets."""

from __future__ import annotations

import redis

from shared.settings import Settings
from tests.benchmarks.bench_dedupe import PRECISION_TARGET, RECALL_TARGET, evaluate_duplicates, load_articles


def test_duplicate_detection_meets_precision_and_recall_targets(redis_client: redis.Redis, settings: Settings) -> None:
    bases = load_articles()
    result = evaluate_duplicates(
        redis_client,
        bases,
        threshold=settings.near_duplicate_threshold,
        window_seconds=settings.dedupe_window_seconds,
    )
    assert result.counts.tp + result.counts.fn == len(bases) * 15  # five copies each: C(6, 2) pairs per base
    assert result.precision >= PRECISION_TARGET, result.report(errors=True)
    assert result.recall >= RECALL_TARGET, result.report(errors=True)


def test_story_grouping_keeps_events_apart_and_joins_most_write_ups(redis_client: redis.Redis) -> None:
    from tests.benchmarks.bench_dedupe import evaluate_stories

    result = evaluate_stories(redis_client, load_articles())
    assert result.counts.precision >= 0.95, result.report(errors=True)  # never one story of two events
    assert result.counts.recall >= 0.85, result.report(errors=True)
