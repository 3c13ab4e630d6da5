"""The alert history: one record per alert and channel with its outcome, and cancelling what a
removed or paused subscription still had to send."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import redis

from shared.alerting.outbox import Outbox, Outcome
from shared.store import Store

log = logging.getLogger(__name__)


def record_history(store: Store, outcomes: Sequence[Outcome]) -> None:
    """Keep settled outcomes in the alert history, in one write; a failure to do so is logged,
    never raised: the history is a record, not the delivery."""
    if not outcomes:
        return
    at = datetime.now(UTC).isoformat()
    try:
        store.record_alerts([_history_record(outcome, at) for outcome in outcomes])
    except Exception:
        log.exception("could not record alert history for %s", ", ".join(outcome.entry.id for outcome in outcomes))


def _history_record(outcome: Outcome, at: str) -> dict[str, Any]:
    entry = outcome.entry
    payload = entry.payload
    article = payload.get("article") or {}
    return {
        "id": entry.id,
        "at": at,
        "subscription": payload["subscription"]["name"],
        "subscription_id": payload["subscription"]["id"],
        "owner": payload["subscription"]["owner"],
        "channel": entry.channel["type"],
        "query": payload.get("query"),
        "article_id": article.get("id"),
        "title": article.get("title") or f"digest of {payload.get('digest', {}).get('alerts', 0)} alerts",
        "url": article.get("url"),
        "matched_terms": payload.get("matched_terms", []),
        "status": outcome.status,
        "attempts": entry.attempts,  # the outbox has counted this attempt
        "error": outcome.error,
    }


def cancel_deliveries(client: redis.Redis, store: Store, subscription_id: str, reason: str) -> int:
    """Cancel what one subscription still has to send (it was removed or paused); each shows
    as `cancelled` in the history. Returns how many."""
    outbox = Outbox(client)
    cancelled = [Outcome(entry, "cancelled", reason) for entry in outbox.pending_for(subscription_id)]
    outbox.settle(cancelled)
    record_history(store, cancelled)
    return len(cancelled)
