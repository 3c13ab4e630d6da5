"""The one backoff rule: how long to wait before trying again after a transient failure."""

from __future__ import annotations

import random


def compute_backoff(attempt: int, *, first: float, maximum: float, jitter: float = 0.2) -> float:
    """Seconds to wait before retry number `attempt` (from 0): `first`, doubling each time up to
    `maximum`, spread by ± `jitter` so that many waiters do not come back in the same instant."""
    delay = min(first * 2 ** min(attempt, 64), maximum)
    return delay * random.uniform(1 - jitter, 1 + jitter)
