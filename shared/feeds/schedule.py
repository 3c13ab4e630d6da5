"""When to poll a feed next: adapt to how often it really has new items, within bounds, and
back off when it fails or asks us to."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

_PERIOD_SECONDS = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400, "monthly": 30 * 86400, "yearly": 365 * 86400}


@dataclass(frozen=True)
class Bounds:
    minimum: float
    maximum: float
    start: float


@dataclass(frozen=True)
class Outcome:
    """What one poll found."""

    new_items: int = 0
    failed: bool = False
    retry_after: float | None = None
    declared_minimum: float | None = None


def declared_minimum(feed: Any) -> float | None:
    """The shortest interval the publisher asks for: RSS `<ttl>` (minutes) or the syndication
    module's `updatePeriod`/`updateFrequency`."""
    candidates = []
    ttl = _count(feed.get("ttl"))
    if ttl:
        candidates.append(ttl * 60.0)
    period = _PERIOD_SECONDS.get(str(feed.get("sy_updateperiod", "")).strip().lower())
    if period:
        candidates.append(period / max(1, _count(feed.get("sy_updatefrequency")) or 1))
    # A publisher's floor is honoured up to a month: a 400-digit ttl is no schedule.
    return min(max(candidates), DECLARED_MINIMUM_CAP) if candidates else None


DECLARED_MINIMUM_CAP = 30 * 86400.0


def _count(value: Any) -> int | None:
    """A whole number written in ASCII digits (`²` is a digit to `str.isdigit`, not to us)."""
    text = str(value or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        return None
    return int(text)


def next_interval(current: float | None, outcome: Outcome, bounds: Bounds, fixed: float | None = None) -> float:
    """Seconds until the next poll.

    New items shorten the interval, quiet polls lengthen it (a feed that publishes hourly
    settles near an hour); failures double it; a Retry-After or the feed's own declared
    period is a floor. A fixed interval from the feed list replaces the adaptation but not
    the backoff. A tenth of jitter keeps feeds from converging on the same second.
    """
    interval = fixed or current or bounds.start
    if outcome.failed:
        interval = interval * 2
    elif fixed is None:
        interval = interval * 0.7 if outcome.new_items else interval * 1.3
    interval = min(max(interval, bounds.minimum), bounds.maximum if not outcome.failed else bounds.maximum * 4)
    interval *= random.uniform(0.95, 1.05)
    for floor in (outcome.declared_minimum, outcome.retry_after):  # after the jitter: a floor is a promise
        if floor:
            interval = max(interval, floor)
    return interval
