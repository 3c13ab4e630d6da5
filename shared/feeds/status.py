"""What `wirewatch feeds status` shows about each feed, read from its state in Redis."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import redis

from shared.feeds.registry import Feed
from shared.feeds.state import FeedState


def feed_status(client: redis.Redis, feeds: list[Feed]) -> list[dict[str, Any]]:
    """One row per feed: state, last fetch, last new item, HTTP status, items/day, failures,
    next poll, validator trust, health."""
    rows = []
    now = datetime.now(UTC)
    for feed in feeds:
        state = FeedState(client, feed.url).read()
        first = datetime.fromisoformat(state["first_poll"]) if state.get("first_poll") else None
        days = max((now - first).total_seconds() / 86400, 1 / 24) if first else None
        items = int(state.get("items_total") or 0)
        if state.get("validators") == "untrusted":
            validators = f"untrusted: {state.get('validators_note', '')}"
        elif state.get("etag") or state.get("last_modified"):
            validators = "trusted (" + ", ".join(k for k in ("etag", "last_modified") if state.get(k)) + ")"
        else:
            validators = "none offered"
        failures = int(state.get("failures") or 0)
        health = ""
        if state.get("disabled"):
            health = f"disabled: {state['disabled']}"
        elif failures:
            health = f"failing: {state.get('last_error', '')}"
        elif state.get("silent_reported"):
            health = f"silent since {state.get('last_new_item', '?')}"
        rows.append(
            {
                "url": feed.url,
                "name": feed.name or "",
                "state": "disabled" if not feed.enabled else (state.get("status") or "not fetched yet"),
                "last_fetch": state.get("checked_at", "")[:19],
                "last_new_item": state.get("last_new_item", "")[:19],
                "http_status": state.get("http_status", ""),
                "items_per_day": round(items / days, 1) if days else None,
                "failures": failures,
                "next_poll": state.get("next_poll", ""),
                "interval_seconds": int(float(state["interval"])) if state.get("interval") else None,
                "validators": validators,
                "entries_set_aside": (
                    f"{state['entries_refused']} at the last poll ({state.get('last_entry_problem', '')})"
                    if int(state.get("entries_refused") or 0)
                    else ""
                ),
                "health": health or "ok",
            }
        )
    return rows


def health_counts(client: redis.Redis, feeds: list[Feed]) -> Counter[str]:
    """How many feeds are `ok`, `failing`, `silent` or `disabled` (the metrics' feed health)."""
    return Counter(row["health"].split(":")[0].split(" ")[0] for row in feed_status(client, feeds))
