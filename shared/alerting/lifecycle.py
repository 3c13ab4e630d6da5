"""Changing and removing a subscription together with what it still had to send: pausing
(`active: false`) or removing one cancels its queued deliveries, which the history then shows
as `cancelled`. The HTTP API and the web UI both change subscriptions through here."""

from __future__ import annotations

import redis

from shared.alerting.history import cancel_deliveries
from shared.alerting.subscriptions import Subscription, SubscriptionSpec, delete_subscription, save_subscription
from shared.store import Store


def replace_subscription(
    client: redis.Redis, store: Store, owner: str, spec: SubscriptionSpec, subscription_id: str
) -> Subscription:
    """Replace one of `owner`'s subscriptions (SubscriptionError when they have none with that
    id, or another of theirs has the name); a paused one has its queued alerts cancelled."""
    saved = save_subscription(client, owner, spec, subscription_id)
    if not saved.active:
        cancel_deliveries(client, store, subscription_id, "subscription paused")
    return saved


def remove_subscription(client: redis.Redis, store: Store, owner: str, subscription_id: str) -> int | None:
    """Remove one of `owner`'s subscriptions and cancel its queued alerts: how many were
    cancelled, or None when they have no subscription with that id."""
    if not delete_subscription(client, owner, subscription_id):
        return None
    return cancel_deliveries(client, store, subscription_id, "subscription removed")
