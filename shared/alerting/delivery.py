"""Delivering alerts: what is due in the outbox goes out on its channel, and ended digest
periods become messages. Failed deliveries are retried with exponential backoff for
`alert_retry_hours` (48 by default), then kept as failed, visible in the API."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis

from shared import redis_keys, runs
from shared.alerting.channels import DeliveryFailed, DeliveryRefused, send
from shared.alerting.dispatch import digest_payload
from shared.alerting.history import record_history
from shared.alerting.outbox import Entry, Outbox, entry_id
from shared.alerting.subscriptions import get_subscription
from shared.backoff import compute_backoff
from shared.metrics import ALERTS
from shared.outbound import outbound_client
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
        self.http = outbound_client(settings, timeout=settings.webhook_timeout_seconds)
        self._pool = ThreadPoolExecutor(max_workers=settings.alerter_concurrency, thread_name_prefix="deliver")

    def tick(self, now: float | None = None) -> int:
        """One round: requeue abandoned entries, close ended digests, deliver what is due."""
        now = time.time() if now is None else now
        self.outbox.reap(now)
        self.flush_digests(now)
        entries = self.outbox.claim(self.settings.alerter_concurrency * 4, now)
        list(self._pool.map(self.deliver, entries))
        return len(entries)

    def close(self) -> None:
        """Wait for deliveries in flight."""
        self._pool.shutdown(wait=True)

    def deliver(self, entry: Entry) -> None:
        counts: Counter[str] = Counter()
        subscription = get_subscription(self.client, entry.payload["subscription"]["id"])
        if subscription is None or not subscription.active:
            self._finish(
                entry, "cancelled", "subscription removed" if subscription is None else "subscription paused", counts
            )
            return
        if entry.attempts == 0:
            counts["alert_attempts"] += 1
        try:
            send(entry.channel, entry.payload, entry.id, self.settings, self.client, self.http)
        except DeliveryFailed as error:
            given_up = time.time() - entry.record["created"] > self.settings.alert_retry_hours * 3600
            if given_up:
                self._finish(entry, "failed", f"gave up after {entry.attempts + 1} attempts: {error}", counts)
            else:
                at = time.time() + compute_backoff(
                    entry.attempts, first=self.settings.alert_retry_seconds, maximum=RETRY_MAX_SECONDS
                )
                self.outbox.retry(entry, str(error), at)
                ALERTS.labels(entry.channel["type"], "retrying").inc()
                self._history(entry, "retrying", str(error))
                runs.record(self.client, entry.record.get("run"), counts)
        except DeliveryRefused as error:
            self._finish(entry, "failed", str(error), counts)
        except Exception as error:  # a bug in a channel must not lose the alert: keep it as failed
            log.exception("delivering %s failed", entry.id)
            self._finish(entry, "failed", f"{type(error).__name__}: {error}", counts)
        else:
            self._finish(entry, "delivered", None, counts)

    def _finish(self, entry: Entry, status: str, error: str | None, counts: Counter[str]) -> None:
        if status == "delivered":
            self.outbox.delivered(entry)
        elif status == "cancelled":
            self.outbox.cancelled(entry, error or "")
        else:
            self.outbox.failed(entry, error or "")
        counts[f"alerts_{status}"] += 1
        ALERTS.labels(entry.channel["type"], status).inc()
        self._history(entry, status, error)
        runs.record(self.client, entry.record.get("run"), counts)

    def _history(self, entry: Entry, status: str, error: str | None) -> None:
        record_history(self.store, entry, status, error)

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
