"""The alert history: one record per alert and channel with its outcome, and cancelling what a
removed or paused subscription still had to send."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import redis

from shared.alerting.outbox import Entry, Outbox
from shared.store import Store

log = logging.getLogger(__name__)


def record_history(store: Store, entry: Entry, status: str, error: str | None) -> None:
    """Keep one alert's outcome in the alert history; a failure to do so is logged, never
    raised: the history is a record, not the delivery."""
    payload = entry.payload
    article = payload.get("article") or {}
    try:
        store.record_alert(
            {
                "id": entry.id,
                "at": datetime.now(UTC).isoformat(),
                "subscription": payload["subscription"]["name"],
                "subscription_id": payload["subscription"]["id"],
                "owner": payload["subscription"]["owner"],
                "channel": entry.channel["type"],
                "query": payload.get("query"),
                "article_id": article.get("id"),
                "title": article.get("title") or f"digest of {payload.get('digest', {}).get('alerts', 0)} alerts",
                "url": article.get("url"),
                "matched_terms": payload.get("matched_terms", []),
                "status": status,
                "attempts": entry.attempts,  # the outbox has counted this attempt
                "error": error,
            }
        )
    except Exception:
        log.exception("could not record alert history for %s", entry.id)


def cancel_deliveries(client: redis.Redis, store: Store, subscription_id: str, reason: str) -> int:
    """Cancel what one subscription still has to send (it was removed or paused); each shows
    as `cancelled` in the history. Returns how many."""
    outbox = Outbox(client)
    pending = outbox.pending_for(subscription_id)
    for entry in pending:
        outbox.cancelled(entry, reason)
        record_history(store, entry, "cancelled", reason)
    return len(pending)
