"""The alert delivery task: at most once per (subscription, article), retried with backoff."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from celery import Task

from services.alerter.webhook import DeliveryFailed, DeliveryRefused, post_alert
from shared import redis_keys, runs
from shared.celery_app import ALERTS_QUEUE, task
from shared.deadletters import quarantine
from shared.redis_client import get_redis
from shared.settings import Settings, get_settings
from shared.store import process_store

DELIVERED_TTL_SECONDS = 30 * 86400


def retry_delay(attempt: int, first: float) -> float:
    """Seconds before retry number `attempt` (from 0): `first` doubling to at most an hour, ±20 %."""
    return min(first * 2**attempt, 3600) * random.uniform(0.8, 1.2)


@task(queue=ALERTS_QUEUE, max_retries=None)
def deliver_alert(self: Task, alert: dict[str, Any], run_id: str | None = None) -> None:
    """POST one alert to its subscription's webhook, and keep the outcome in the alert history."""
    settings = get_settings()
    client = get_redis(settings)
    marker = redis_keys.alert_delivered(alert["subscription"], alert["article"]["id"])
    if client.exists(marker):
        return  # a redelivered or repeated task: this alert already arrived
    attempt = self.request.retries + 1
    counts: Counter[str] = Counter()
    if attempt == 1:
        counts["alert_attempts"] += 1
    try:
        post_alert(alert["webhook"], alert, timeout=settings.webhook_timeout_seconds, user_agent=settings.user_agent)
    except DeliveryFailed as error:
        if self.request.retries >= settings.webhook_max_retries:
            reason = f"webhook unreachable after {attempt} attempts: {error}"
            _finish(settings, client, alert, run_id, counts, "failed", attempt, reason)
            return
        _history(settings, alert, "retrying", attempt, str(error))
        runs.record(client, run_id, counts)
        raise self.retry(
            countdown=retry_delay(self.request.retries, settings.webhook_retry_seconds),
            max_retries=settings.webhook_max_retries,
        ) from error
    except DeliveryRefused as error:
        _finish(settings, client, alert, run_id, counts, "failed", attempt, f"webhook refused the alert: {error}")
    else:
        client.set(marker, "1", ex=DELIVERED_TTL_SECONDS)
        _finish(settings, client, alert, run_id, counts, "delivered", attempt, None)


def _finish(
    settings: Settings,
    client: Any,
    alert: dict[str, Any],
    run_id: str | None,
    counts: Counter[str],
    status: str,
    attempts: int,
    error: str | None,
) -> None:
    if status == "failed":
        quarantine(client, stage="deliver_alert", reason=error or "", item=alert)
    counts[f"alerts_{status}"] += 1
    _history(settings, alert, status, attempts, error)
    runs.record(client, run_id, counts)


def _history(settings: Settings, alert: dict[str, Any], status: str, attempts: int, error: str | None) -> None:
    article = alert["article"]
    process_store(settings).record_alert(
        {
            "id": f"{alert['subscription']}:{article['id']}",
            "at": datetime.now(UTC).isoformat(),
            "subscription": alert["subscription"],
            "query": alert["query"],
            "article_id": article["id"],
            "title": article["title"],
            "url": article["url"],
            "matched_terms": alert["matched_terms"],
            "status": status,
            "attempts": attempts,
            "error": error,
        }
    )
