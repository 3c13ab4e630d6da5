"""Delivering alerts: what is due in the outbox goes out on its channel, and ended digest
periods become messages. Failed deliveries are retried with exponential backoff for
`alert_retry_hours` (48 by default), then kept as failed, visible in the API."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis

from shared import redis_keys, runs
from shared.alerting.channels import DeliveryFailed, DeliveryRefused, send
from shared.alerting.dispatch import digest_payload
from shared.alerting.history import record_history
from shared.alerting.outbox import Entry, Outbox, Outcome, entry_id
from shared.alerting.subscriptions import Subscription, get_subscription, stored_subscription
from shared.backoff import compute_backoff
from shared.metrics import ALERTS
from shared.outbound import Poster
from shared.redis_client import as_text
from shared.settings import Settings
from shared.store import Store

log = logging.getLogger(__name__)


RETRY_MAX_SECONDS = 3600.0


class AlertSender:
    """Sends what the outbox holds; the alerter service calls `tick` in its loop."""

    def __init__(self, settings: Settings, client: redis.Redis, store: Store) -> None:
        self.settings, self.client, self.store = settings, client, store
        self.outbox = Outbox(client)
        self.http = Poster(settings, timeout=settings.webhook_timeout_seconds)
        self._pool = ThreadPoolExecutor(max_workers=settings.alerter_concurrency, thread_name_prefix="deliver")

    def tick(self, now: float | None = None) -> int:
        """One round: close ended digests, deliver what is due (abandoned entries included).
        The round's Redis work is batched: one claim, one read of the subscriptions, one write
        of the outcomes."""
        now = time.time() if now is None else now
        self.flush_digests(now)
        entries = self.outbox.claim(self.settings.alerter_concurrency * 4, now)
        if not entries:
            return 0
        subscriptions = self._subscriptions(entries)
        outcomes = list(
            self._pool.map(lambda entry: self._attempt(entry, subscriptions.get(_subscription_id(entry))), entries)
        )
        self._settle(outcomes)
        return len(entries)

    def close(self) -> None:
        """Wait for deliveries in flight, then close the connections."""
        self._pool.shutdown(wait=True)
        self.http.close()

    def _subscriptions(self, entries: list[Entry]) -> dict[str, Subscription]:
        """The current subscriptions of a round's entries, each read and parsed once."""
        ids = sorted({_subscription_id(entry) for entry in entries})
        raws: Any = self.client.hmget(redis_keys.SUBSCRIPTIONS, ids)
        return {
            subscription_id: stored_subscription(raw) for subscription_id, raw in zip(ids, raws, strict=True) if raw
        }

    def _attempt(self, entry: Entry, subscription: Subscription | None) -> Outcome:
        """Send one entry; what became of it, for `_settle` to write."""
        if subscription is None or not subscription.active:
            return Outcome(
                entry, "cancelled", "subscription removed" if subscription is None else "subscription paused"
            )
        try:
            send(entry.channel, entry.payload, entry.id, self.settings, self.client, self.http)
        except DeliveryFailed as error:
            if time.time() - entry.record["created"] > self.settings.alert_retry_hours * 3600:
                return Outcome(entry, "failed", f"gave up after {entry.attempts + 1} attempts: {error}")
            at = time.time() + compute_backoff(
                entry.attempts, first=self.settings.alert_retry_seconds, maximum=RETRY_MAX_SECONDS
            )
            return Outcome(entry, "retrying", str(error), at)
        except DeliveryRefused as error:
            return Outcome(entry, "failed", str(error))
        except Exception as error:  # a bug in a channel must not lose the alert: keep it as failed
            log.exception("delivering %s failed", entry.id)
            return Outcome(entry, "failed", f"{type(error).__name__}: {error}")
        return Outcome(entry, "delivered")

    def _settle(self, outcomes: list[Outcome]) -> None:
        """Write a round's outcomes to the outbox, then the history, metrics and run counters."""
        counts: dict[str | None, Counter[str]] = defaultdict(Counter)
        for outcome in outcomes:
            run = counts[outcome.entry.record.get("run")]
            if outcome.status != "cancelled" and outcome.entry.attempts == 0:
                run["alert_attempts"] += 1
            if outcome.status != "retrying":
                run[f"alerts_{outcome.status}"] += 1
        self.outbox.settle(outcomes)
        record_history(self.store, outcomes)
        for outcome in outcomes:
            ALERTS.labels(outcome.entry.channel["type"], outcome.status).inc()
        for run_id, run_counts in counts.items():  # last: they tell a run its alerts are settled
            runs.record(self.client, run_id, run_counts)

    def flush_digests(self, now: float) -> int:
        """Turn every digest bucket whose period has ended into one outbox entry per channel."""
        buckets: Any = self.client.zrangebyscore(redis_keys.DIGESTS_DUE, "-inf", now)
        for raw_bucket in buckets:
            bucket = as_text(raw_bucket)
            _, _, subscription_id, period_end = bucket.rsplit(":", 3)
            items: Any = self.client.lrange(bucket, 0, -1)
            subscription = get_subscription(self.client, subscription_id)
            if items and subscription is not None:
                alerts: list[dict[str, Any]] = [json.loads(item) for item in items]
                payload = digest_payload(subscription, alerts, int(period_end))
                key = "digest:" + hashlib.sha256(b"".join(items)).hexdigest()[:16]
                for number, channel in enumerate(subscription.channels):
                    self.outbox.add(entry_id(subscription.id, key, number), payload, channel.model_dump())
            pipe = self.client.pipeline(transaction=True)
            pipe.ltrim(bucket, len(items), -1)  # only what was read: a late arrival stays for the next round
            pipe.llen(bucket)
            _, left = pipe.execute()
            if not left:
                self.client.zrem(redis_keys.DIGESTS_DUE, bucket)
        return len(buckets)


def _subscription_id(entry: Entry) -> str:
    return str(entry.payload["subscription"]["id"])
