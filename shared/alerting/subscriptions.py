"""Alert subscriptions: who wants to hear about which articles, how, and how often.

Kept in Redis: a hash of subscriptions by id, a per-owner index, and a change stream that
matchers follow, so a change takes effect in every worker within a second without reloading
the other subscriptions.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import redis
from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from shared import redis_keys
from shared.outbound import UnresolvableHost, UnsafeURL, URLPolicy, check_url
from shared.query import parse_query
from shared.redis_client import as_text

CHANGES_KEPT = 100_000  # entries of the change stream kept; matchers reload fully if they fall behind


class SubscriptionError(ValueError):
    """A subscription that cannot be saved; the message says why."""


class Channel(BaseModel):
    """Where alerts go: a signed JSON webhook, e-mail, a Slack-compatible webhook, or a Redis stream."""

    type: Literal["webhook", "email", "slack", "stream"]
    url: str | None = Field(default=None, description="webhook and slack: the URL to POST to")
    secret: str | None = Field(
        default=None,
        description="webhook: HMAC-SHA256 key; generated when the webhook is new, kept when a replace leaves "
        "it out, changed only by rotating; shown only in the answer that made it",
    )
    to: list[str] = Field(default_factory=list, description="email: recipients")
    stream: str | None = Field(
        default=None,
        max_length=100,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="stream: a name; alerts go to the Redis stream `ww-alerts:<owner>:<name>`, the owner's own",
    )

    @model_validator(mode="after")
    def _complete(self) -> Channel:
        if self.type in ("webhook", "slack"):
            parts = urlsplit(self.url or "")
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"{self.type} channel needs an http(s) url, got {self.url!r}")
        elif self.type == "email":
            if not self.to or not all("@" in address for address in self.to):
                raise ValueError("email channel needs recipient addresses in 'to'")
        elif not self.stream:
            raise ValueError("stream channel needs a 'stream' name")
        return self


class SubscriptionSpec(BaseModel):
    """What a user sends to create or replace a subscription."""

    name: str = Field(min_length=1, max_length=200)
    query: str = Field(min_length=1, max_length=5000, description="Lucene syntax, as typed in Kibana")
    filter: str | None = Field(
        default=None, min_length=1, max_length=5000, description="An extra query every alert must also match"
    )
    channels: list[Channel] = Field(min_length=1)
    mode: Literal["instant", "hourly", "daily"] = "instant"
    realert: Literal["story", "story-and-update", "article"] = Field(
        default="story",
        description="story: alerts are grouped by story, copies and updates stay quiet; "
        "story-and-update: also one more when an alerted article is updated; article: one per article",
    )
    realert_field: Literal["source", "tags", "countries", "people", "organizations"] | None = Field(
        default=None,
        description="Group alerts by this field's value(s) instead of by story (ElastAlert's query_key)",
    )
    realert_window_hours: float = Field(
        default=12.0,
        ge=0,
        description="A group alerts again for an article at least this far in time (published, else first "
        "seen) from every article it already alerted on; 0: once per group (remembered 30 days)",
    )
    max_per_hour: int | None = Field(
        default=None, ge=1, description="Instant alerts beyond this per hour wait for the hourly digest"
    )
    active: bool = True

    @field_validator("query", "filter")
    @classmethod
    def _parses(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A stored subscription's queries were checked when it was saved: reading it back
        # (`stored_subscription`) does not parse them again.
        if value is not None and not (info.context and info.context.get("stored")):
            parse_query(value)  # raises QueryError (a ValueError) with a readable message
        return value


class Subscription(SubscriptionSpec):
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    owner: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def effective_query(self) -> str:
        return effective_query(self.query, self.filter)


def effective_query(query: str, filter: str | None) -> str:
    """The query an article must match: the subscription's, and its filter if it has one."""
    return f"({query}) AND ({filter})" if filter else query


def save_subscription(
    client: redis.Redis, owner: str, spec: SubscriptionSpec, subscription_id: str | None = None
) -> Subscription:
    """Create (or, with an id, replace) a subscription of `owner`; names are unique per owner."""
    existing = get_subscription(client, subscription_id) if subscription_id else None
    if subscription_id and (existing is None or existing.owner != owner):
        raise SubscriptionError(f"no subscription {subscription_id}")
    taken = client.hget(redis_keys.SUBSCRIPTION_NAMES, f"{owner}\x00{spec.name}")
    if taken is not None and as_text(taken) != subscription_id:
        raise SubscriptionError(f"{owner} already has a subscription named {spec.name!r}")
    kept: dict[str, Any] = {"id": existing.id, "created_at": existing.created_at} if existing else {}
    subscription = Subscription.model_validate({**spec.model_dump(), "owner": owner, **kept})
    earlier = (
        {channel.url: channel.secret for channel in existing.channels if channel.type == "webhook"} if existing else {}
    )
    for channel in subscription.channels:
        if channel.type == "webhook" and not channel.secret:
            channel.secret = earlier.get(channel.url) or new_secret()
    pipe = client.pipeline(transaction=True)
    if existing and existing.name != spec.name:
        pipe.hdel(redis_keys.SUBSCRIPTION_NAMES, f"{owner}\x00{existing.name}")
    pipe.hset(redis_keys.SUBSCRIPTIONS, subscription.id, subscription.model_dump_json())
    pipe.hset(redis_keys.SUBSCRIPTION_NAMES, f"{owner}\x00{spec.name}", subscription.id)
    pipe.sadd(redis_keys.owner_subscriptions(owner), subscription.id)
    pipe.xadd(redis_keys.SUBSCRIPTION_CHANGES, {"id": subscription.id}, maxlen=CHANGES_KEPT, approximate=True)
    pipe.execute()
    return subscription


def hide_secrets(subscription: Subscription, except_new_since: Subscription | None = None) -> Subscription:
    """A copy of a subscription to show: webhook secrets are shown once, in the answer that
    made them (creation, rotation, a webhook added by a replace), so each is left out here
    unless it is new since `except_new_since`; without it, every one is left out."""
    known = (
        {channel.secret for channel in except_new_since.channels if channel.secret}
        if except_new_since is not None
        else None
    )
    shown = subscription.model_copy(deep=True)
    for channel in shown.channels:
        if known is None or channel.secret in known:
            channel.secret = None
    return shown


def new_secret() -> str:
    """A webhook signing key."""
    return secrets.token_urlsafe(24)


def rotate_secrets(client: redis.Redis, owner: str, subscription_id: str) -> Subscription:
    """Give every webhook of one of `owner`'s subscriptions a new signing key."""
    existing = get_subscription(client, subscription_id)
    if existing is None or existing.owner != owner:
        raise SubscriptionError(f"no subscription {subscription_id}")
    spec = SubscriptionSpec.model_validate(existing.model_dump(exclude={"id", "owner", "created_at", "updated_at"}))
    for channel in spec.channels:
        if channel.type == "webhook":
            channel.secret = new_secret()
    return save_subscription(client, owner, spec, subscription_id)


def check_channel_urls(spec: SubscriptionSpec, policy: URLPolicy) -> None:
    """Refuse webhook and Slack URLs that lead to internal addresses (SubscriptionError with the
    reason), as feeds are refused; a host that does not resolve now is checked again when an
    alert is sent."""
    for channel in spec.channels:
        if channel.url is None:
            continue
        try:
            check_url(channel.url, policy)
        except UnsafeURL as error:
            raise SubscriptionError(f"{channel.type} URL refused: {error}") from None
        except UnresolvableHost:
            pass


def delete_subscription(client: redis.Redis, owner: str, subscription_id: str) -> bool:
    """Delete one of `owner`'s subscriptions; False when they have none with that id."""
    existing = get_subscription(client, subscription_id)
    if existing is None or existing.owner != owner:
        return False
    pipe = client.pipeline(transaction=True)
    pipe.hdel(redis_keys.SUBSCRIPTIONS, subscription_id)
    pipe.hdel(redis_keys.SUBSCRIPTION_NAMES, f"{owner}\x00{existing.name}")
    pipe.srem(redis_keys.owner_subscriptions(owner), subscription_id)
    pipe.xadd(redis_keys.SUBSCRIPTION_CHANGES, {"id": subscription_id}, maxlen=CHANGES_KEPT, approximate=True)
    pipe.execute()
    return True


def stored_subscription(raw: bytes | str) -> Subscription:
    """A subscription as saved in Redis; its queries are not parsed again."""
    return Subscription.model_validate_json(raw, context={"stored": True})


def get_subscription(client: redis.Redis, subscription_id: str | None) -> Subscription | None:
    raw = client.hget(redis_keys.SUBSCRIPTIONS, subscription_id) if subscription_id else None
    return stored_subscription(raw) if raw else None


def owned_subscription(client: redis.Redis, owner: str, subscription_id: str) -> Subscription | None:
    """One of `owner`'s subscriptions; None when they have none with that id (another owner's
    is as unknown as one that never was)."""
    found = get_subscription(client, subscription_id)
    return found if found is not None and found.owner == owner else None


def find_by_name(client: redis.Redis, owner: str, name: str) -> Subscription | None:
    found = client.hget(redis_keys.SUBSCRIPTION_NAMES, f"{owner}\x00{name}")
    return get_subscription(client, as_text(found)) if found else None


def list_subscriptions(client: redis.Redis, owner: str | None = None) -> list[Subscription]:
    """One owner's subscriptions (all, with owner None), by name."""
    if owner is None:
        raws: list[Any] = list(client.hgetall(redis_keys.SUBSCRIPTIONS).values())
    else:
        ids = [as_text(i) for i in client.smembers(redis_keys.owner_subscriptions(owner))]
        raws = [raw for raw in client.hmget(redis_keys.SUBSCRIPTIONS, ids) if raw] if ids else []
    return sorted((stored_subscription(raw) for raw in raws), key=lambda s: (s.owner, s.name))


def webhook_subscription(name: str, query: str, webhook: str, owner: str = "local") -> SubscriptionSpec:
    """The simple form the command line offers: one query, one signed webhook."""
    return SubscriptionSpec(name=name, query=query, channels=[Channel(type="webhook", url=webhook)])
