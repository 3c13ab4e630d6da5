"""Alert subscriptions: a named Lucene-syntax query and the webhook its alerts go to."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import redis
from pydantic import BaseModel, Field

from shared import redis_keys
from shared.query import parse_query


class Subscription(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    query: str = Field(min_length=1)
    webhook: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class SubscriptionError(ValueError):
    """A subscription that cannot be saved; the message says why."""


def add_subscription(client: redis.Redis, subscription: Subscription) -> None:
    """Save (or replace) a subscription after checking its query and webhook URL."""
    parse_query(subscription.query)  # raises QueryError with a readable message
    parts = urlsplit(subscription.webhook)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SubscriptionError(f"webhook must be an http(s) URL, got {subscription.webhook!r}")
    pipe = client.pipeline(transaction=True)
    pipe.hset(redis_keys.SUBSCRIPTIONS, subscription.name, subscription.model_dump_json())
    pipe.incr(redis_keys.SUBSCRIPTIONS_VERSION)
    pipe.execute()


def remove_subscription(client: redis.Redis, name: str) -> bool:
    """Delete a subscription; False when there was none by that name."""
    pipe = client.pipeline(transaction=True)
    pipe.hdel(redis_keys.SUBSCRIPTIONS, name)
    pipe.incr(redis_keys.SUBSCRIPTIONS_VERSION)
    removed, _ = pipe.execute()
    return bool(removed)


def list_subscriptions(client: redis.Redis) -> list[Subscription]:
    """All subscriptions, by name."""
    raw = client.hgetall(redis_keys.SUBSCRIPTIONS)
    return sorted((Subscription.model_validate_json(value) for value in raw.values()), key=lambda s: s.name)


def subscriptions_version(client: redis.Redis) -> int:
    """Changes whenever a subscription is added, replaced or removed."""
    return int(client.get(redis_keys.SUBSCRIPTIONS_VERSION) or 0)
