"""A feed's state in Redis (validators, schedule, health, WebSub lease): one owner for the hash."""

from __future__ import annotations

from datetime import UTC, datetime

import redis

from shared import redis_keys
from shared.redis_client import as_text


class FeedState:
    """The state hash of one feed."""

    def __init__(self, client: redis.Redis, url: str) -> None:
        self.client, self.url, self.key = client, url, redis_keys.feed_validators(url)

    def read(self) -> dict[str, str]:
        """Every field, as text."""
        return {as_text(k): as_text(v) for k, v in self.client.hgetall(self.key).items()}

    def fields(self, *names: str) -> list[str]:
        """The named fields ("" where unset)."""
        return [as_text(value) if value else "" for value in self.client.hmget(self.key, list(names))]

    def record(self, **fields: str) -> None:
        """Set fields and stamp the time of this check."""
        self.update(**fields, checked_at=datetime.now(UTC).isoformat())

    def update(self, **fields: str) -> None:
        """Set fields as they are."""
        self.client.hset(self.key, mapping=dict[str | bytes, str](fields))  # type: ignore[arg-type]

    def count_failure(self) -> int:
        """One more failure in a row; returns how many now."""
        return int(self.client.hincrby(self.key, "failures", 1))
