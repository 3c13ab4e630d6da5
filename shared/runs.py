"""Counters of what happened to articles, per `run --once` pass and in total."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import redis
from redis.commands.core import Script

from shared import redis_keys
from shared.redis_client import as_text

OUTCOMES = ("seen", "indexed", "duplicates", "near_duplicates", "updates", "rejected", "alerts")
"""What `wirewatch run --once` reports."""
PROGRESS = ("done", "alert_attempts", "alerts_delivered", "alerts_failed")
"""Bookkeeping: articles that left the chain, and alert deliveries tried, made and given up."""


RUN_KEPT_SECONDS = 7 * 86400

# KEYS: the once-only marker ("" for none), the totals, the run's hash ("" for none).
# ARGV: how long the marker and the run are kept, then pairs of (name, amount).
_RECORD = """
if KEYS[1] ~= '' and not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
for i = 2, #ARGV, 2 do
    redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
    if KEYS[3] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[i], ARGV[i + 1]) end
end
if KEYS[3] ~= '' then redis.call('EXPIRE', KEYS[3], ARGV[1]) end
return 1
"""


_record_script: Script | None = None


def record(client: redis.Redis, run_id: str | None, counts: Counter[str], *, once: str | None = None) -> None:
    """Add counts to the totals and, when the batch belongs to a run, to that run. With `once`
    (an outcome's identity, such as a batch at a step), a second record of the same outcome —
    a redelivered message — adds nothing."""
    counts = +counts  # drop zeros
    if not counts:
        return
    keys = [redis_keys.counted(once) if once else "", redis_keys.TOTALS, redis_keys.run(run_id) if run_id else ""]
    args: list[str | int] = [RUN_KEPT_SECONDS]
    for name, value in counts.items():
        args += [name, value]
    global _record_script
    if _record_script is None:  # its digest computed once, not on every batch
        _record_script = client.register_script(_RECORD)
    _record_script(keys=keys, args=args, client=client)


def read(client: redis.Redis, run_id: str | None = None) -> dict[str, int]:
    """The counters of one run, or the totals."""
    raw = client.hgetall(redis_keys.run(run_id) if run_id else redis_keys.TOTALS)
    values = {as_text(key): int(value) for key, value in raw.items()}
    return {name: values.get(name, 0) for name in (*OUTCOMES, *PROGRESS)}


def wait_until_done(
    client: redis.Redis, run_id: str, timeout: float, progress: Callable[[dict[str, int]], None] | None = None
) -> dict[str, int]:
    """Block until every article the run saw has left the chain (indexed, dropped or
    quarantined) and every alert it raised has had its first delivery attempt; raises
    TimeoutError with the counts so far when that takes too long. `progress` sees the counts
    on every look."""
    deadline = time.monotonic() + timeout
    while True:
        counts = read(client, run_id)
        if progress is not None:
            progress(counts)
        if counts["done"] >= counts["seen"] and counts["alert_attempts"] >= counts["alerts"]:
            return counts
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} not finished after {timeout:.0f} s: {counts}")
        time.sleep(0.05)
