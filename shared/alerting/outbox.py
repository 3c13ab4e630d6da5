"""The alert outbox: every alert to send, kept in Redis until it is delivered or given up.

An entry's id is derived from (subscription, story or article, channel), and it is added
in one script with its due time, so a redelivered task, a retried batch or a second worker can
never queue the same alert twice, and none is ever queued without being due. Deliverers claim due entries with a lease; an entry whose deliverer died
returns to the queue when the lease runs out, so no alert is lost. Receivers get the entry id
as an idempotency key.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import redis

from shared import redis_keys
from shared.redis_client import as_text

LEASE_SECONDS = 120  # longer than any one delivery (timeouts are 10-30 s)

# KEYS: the due set, the in-flight set, the outbox hash. ARGV: now, a limit, the lease's end.
# First every entry whose lease ran out goes back to the due set (its deliverer died); then up
# to ARGV[2] entries due by now move to the in-flight set, leased until ARGV[3]. Atomic, so two
# deliverers never take the same entry. Returns (id, record) pairs; an id without a record,
# which could never be sent, leaves both sets.
_CLAIM = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(expired) do
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZADD', KEYS[1], ARGV[1], id)
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local found = {}
for _, id in ipairs(ids) do
    redis.call('ZREM', KEYS[1], id)
    local record = redis.call('HGET', KEYS[3], id)
    if record then
        redis.call('ZADD', KEYS[2], ARGV[3], id)
        found[#found + 1] = id
        found[#found + 1] = record
    end
end
return found
"""
# KEYS: the outbox hash, the in-flight set, the due set. ARGV: triples of (id, record, the
# time of its next attempt, or "" when it is finished).
_SETTLE = """
for i = 1, #ARGV, 3 do
    local id = ARGV[i]
    redis.call('HSET', KEYS[1], id, ARGV[i + 1])
    redis.call('ZREM', KEYS[2], id)
    if ARGV[i + 2] == '' then
        redis.call('ZREM', KEYS[3], id)
    else
        redis.call('ZADD', KEYS[3], ARGV[i + 2], id)
    end
end
return #ARGV / 3
"""


_ADD = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('LPUSH', KEYS[3], 1)
redis.call('LTRIM', KEYS[3], 0, 0)
return 1
"""


def outbox_record(payload: dict[str, Any], channel: dict[str, Any], run_id: str | None) -> dict[str, Any]:
    """What the outbox keeps of one message for one channel."""
    return {
        "payload": payload,
        "channel": channel,
        "status": "pending",
        "attempts": 0,
        "created": time.time(),
        "run": run_id,
    }


def entry_id(subscription_id: str, key: str, channel: int) -> str:
    """The idempotency key of one alert on one channel."""
    return hashlib.sha256(f"{subscription_id}\x00{key}\x00{channel}".encode()).hexdigest()[:32]


@dataclass
class Entry:
    id: str
    record: dict[str, Any]

    @property
    def payload(self) -> dict[str, Any]:
        return self.record["payload"]

    @property
    def channel(self) -> dict[str, Any]:
        return self.record["channel"]

    @property
    def attempts(self) -> int:
        return int(self.record.get("attempts", 0))


@dataclass
class Outcome:
    """What became of one delivery attempt: `delivered`, `failed`, `cancelled`, or `retrying`
    at time `at`; `error` says why it was not delivered."""

    entry: Entry
    status: str
    error: str | None = None
    at: float | None = None


class Outbox:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._claim = client.register_script(_CLAIM)
        self._settle = client.register_script(_SETTLE)
        self._add = client.register_script(_ADD)

    def add(self, entry: str, payload: dict[str, Any], channel: dict[str, Any], *, run_id: str | None = None) -> bool:
        """Queue one message for one channel (a digest; alerts are queued by the dispatcher);
        False when it was queued before. One script: never queued without being due."""
        record = json.dumps(outbox_record(payload, channel, run_id), ensure_ascii=False)
        return bool(
            self._add(
                keys=[redis_keys.OUTBOX, redis_keys.OUTBOX_DUE, redis_keys.OUTBOX_WAKE],
                args=[entry, record, time.time()],
            )
        )

    def wait(self, seconds: float) -> None:
        """Wait until an entry is queued due now, or at most `seconds` (entries retried later
        fall due without a word: the caller looks again after the wait)."""
        self.client.blpop([redis_keys.OUTBOX_WAKE], timeout=seconds)

    def claim(self, limit: int, now: float | None = None) -> list[Entry]:
        """Take up to `limit` due entries for delivery, under a lease, in one round trip;
        entries whose deliverer vanished are due again first."""
        now = time.time() if now is None else now
        found = self._claim(
            keys=[redis_keys.OUTBOX_DUE, redis_keys.OUTBOX_INFLIGHT, redis_keys.OUTBOX],
            args=[now, limit, now + LEASE_SECONDS],
        )
        return [Entry(as_text(found[i]), json.loads(found[i + 1])) for i in range(0, len(found), 2)]

    def delivered(self, entry: Entry) -> None:
        self.settle([Outcome(entry, "delivered")])

    def failed(self, entry: Entry, error: str) -> None:
        """Give up on an entry; it stays in the outbox, visible, with its last error."""
        self.settle([Outcome(entry, "failed", error)])

    def retry(self, entry: Entry, error: str, at: float) -> None:
        self.settle([Outcome(entry, "retrying", error, at)])

    def cancelled(self, entry: Entry, reason: str) -> None:
        """Stop an entry for good without sending it (its subscription was removed or paused)."""
        self.settle([Outcome(entry, "cancelled", reason)])

    def settle(self, outcomes: list[Outcome]) -> None:
        """Write what became of claimed entries, all in one script: a retry goes back to the due
        set at its time, anything else leaves both sets for good."""
        if not outcomes:
            return
        now = time.time()
        args: list[Any] = []
        for outcome in outcomes:
            entry, record = outcome.entry, outcome.entry.record
            attempts = entry.attempts if outcome.status == "cancelled" else entry.attempts + 1
            if outcome.status == "retrying":
                record.update(attempts=attempts, last_error=outcome.error, next_attempt=outcome.at, status="retrying")
            else:
                record.update(attempts=attempts, status=outcome.status, last_error=outcome.error, finished=now)
            due = (outcome.at or now) if outcome.status == "retrying" else ""
            args += [entry.id, json.dumps(record, ensure_ascii=False), due]
        self._settle(
            keys=[redis_keys.OUTBOX, redis_keys.OUTBOX_INFLIGHT, redis_keys.OUTBOX_DUE],
            args=args,
        )

    def pending_for(self, subscription_id: str) -> list[Entry]:
        """The entries of one subscription not yet delivered or given up."""
        found = []
        for raw_id, raw in self.client.hscan_iter(redis_keys.OUTBOX, count=1000):
            record = json.loads(raw)
            if (
                record["status"] in ("pending", "retrying")
                and record["payload"]["subscription"]["id"] == subscription_id
            ):
                found.append(Entry(as_text(raw_id), record))
        return found

    def get(self, entry: str) -> dict[str, Any] | None:
        raw = self.client.hget(redis_keys.OUTBOX, entry)
        return json.loads(raw) if raw else None
