"""Counters of what happened to articles, per `run --once` pass and in total."""

from __future__ import annotations

import time
from collections import Counter

import redis

from shared import redis_keys
from shared.redis_client import as_text

OUTCOMES = ("seen", "indexed", "duplicates", "near_duplicates", "updates", "rejected", "alerts")
"""What `wirewatch run --once` reports."""
PROGRESS = ("done", "alert_attempts", "alerts_delivered", "alerts_failed")
"""Bookkeeping: articles that left the chain, and alert deliveries tried, made and given up."""


def record(client: redis.Redis, run_id: str | None, counts: Counter[str]) -> None:
    """Add counts to the totals and, when the batch belongs to a run, to that run."""
    counts = +counts  # drop zeros
    if not counts:
        return
    pipe = client.pipeline(transaction=False)
    for name, value in counts.items():
        pipe.hincrby(redis_keys.TOTALS, name, value)
        if run_id:
            pipe.hincrby(redis_keys.run(run_id), name, value)
    if run_id:
        pipe.expire(redis_keys.run(run_id), 7 * 86400)
    pipe.execute()


def read(client: redis.Redis, run_id: str | None = None) -> dict[str, int]:
    """The counters of one run, or the totals."""
    raw = client.hgetall(redis_keys.run(run_id) if run_id else redis_keys.TOTALS)
    values = {as_text(key): int(value) for key, value in raw.items()}
    return {name: values.get(name, 0) for name in (*OUTCOMES, *PROGRESS)}


def wait_until_done(client: redis.Redis, run_id: str, timeout: float) -> dict[str, int]:
    """Block until every article the run saw has left the chain (indexed, dropped or
    quarantined) and every alert it raised has had its first delivery attempt; raises
    TimeoutError with the counts so far when that takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        counts = read(client, run_id)
        if counts["done"] >= counts["seen"] and counts["alert_attempts"] >= counts["alerts"]:
            return counts
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} not finished after {timeout:.0f} s: {counts}")
        time.sleep(0.05)
