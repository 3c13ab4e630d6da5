"""The dead-letter list: every article or item that could not be processed, with the reason.

Nothing a user gave wirewatch is dropped silently; what fails permanently lands here and
`wirewatch dead-letters` shows it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import redis

from shared import redis_keys
from shared.article import valid_text
from shared.metrics import QUARANTINED


def quarantine(client: redis.Redis, *, stage: str, reason: str, item: dict[str, Any]) -> None:
    """Keep an item that failed for good, with the stage where it failed and why."""
    record = {"at": datetime.now(UTC).isoformat(), "stage": stage, "reason": reason, "item": item}
    text = json.dumps(record, ensure_ascii=False, default=str)
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:  # a name or text with undecodable bytes: kept, as visible escapes
        encoded = json.dumps(_writable(record), ensure_ascii=False, default=str).encode("utf-8")
    client.rpush(redis_keys.DEAD_LETTERS, encoded)
    QUARANTINED.labels(stage).inc()


def _writable(value: Any) -> Any:
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, dict):
        return {_writable(str(key)): _writable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_writable(item) for item in value]
    return value


def read_dead_letters(client: redis.Redis, limit: int = 100) -> list[dict[str, Any]]:
    """The most recent dead letters, newest last."""
    return [json.loads(raw) for raw in client.lrange(redis_keys.DEAD_LETTERS, -limit, -1)]
