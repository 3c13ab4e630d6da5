"""The alert delivery task: at most once per (subscription, article), retried with backoff."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from celery import Task

from services.alerter.webhook import DeliveryFailed, DeliveryRefused, post_alert
from shared import redis_keys, runs
from shared.celery_app import ALERTS_QUEUE, task
from shared.deadletters import quarantine
from shared.redis_client import get_redis
from shared.settings import get_settings

DELIVERED_TTL_SECONDS = 30 * 86400


def retry_delay(attempt: int, first: float) -> float:
    """Seconds before retry number `attempt` (from 0): `first` doubling to at most an hour, ±20 %."""
    return min(first * 2**attempt, 3600) * random.uniform(0.8, 1.2)


@task(queue=ALERTS_QUEUE, max_retries=None)
def deliver_alert(self: Task, alert: dict[str, Any], run_id: str | None = None) -> None:
    """POST one alert to its subscription's webhook."""
    settings = get_settings()
    client = get_redis(settings)
    marker = redis_keys.alert_delivered(alert["subscription"], alert["article"]["id"])
    if client.exists(marker):
        return  # a redelivered or repeated task: this alert already arrived
    counts: Counter[str] = Counter()
    if self.request.retries == 0:
        counts["alert_attempts"] += 1
    try:
        post_alert(alert["webhook"], alert, timeout=settings.webhook_timeout_seconds, user_agent=settings.user_agent)
    except DeliveryFailed as error:
        if self.request.retries >= settings.webhook_max_retries:
            _give_up(client, alert, f"webhook unreachable after {self.request.retries + 1} attempts: {error}", counts)
            runs.record(client, run_id, counts)
            return
        runs.record(client, run_id, counts)
        raise self.retry(
            countdown=retry_delay(self.request.retries, settings.webhook_retry_seconds),
            max_retries=settings.webhook_max_retries,
        ) from error
    except DeliveryRefused as error:
        _give_up(client, alert, f"webhook refused the alert: {error}", counts)
    else:
        client.set(marker, "1", ex=DELIVERED_TTL_SECONDS)
        counts["alerts_delivered"] += 1
    runs.record(client, run_id, counts)


def _give_up(client: Any, alert: dict[str, Any], reason: str, counts: Counter[str]) -> None:
    quarantine(client, stage="deliver_alert", reason=reason, item=alert)
    counts["alerts_failed"] += 1
