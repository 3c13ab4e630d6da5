"""The one backoff rule."""

from __future__ import annotations

import pytest

from shared.backoff import compute_backoff


@pytest.mark.parametrize(
    ("attempt", "first", "maximum", "low", "high"),
    [
        (0, 2.0, 600.0, 1.6, 2.4),
        (1, 2.0, 600.0, 3.2, 4.8),
        (5, 2.0, 600.0, 51.2, 76.8),
        (20, 2.0, 600.0, 480.0, 720.0),  # capped, then spread
        (10_000, 0.5, 30.0, 24.0, 36.0),  # no overflow however long it failed
    ],
)
def test_backoff_doubles_up_to_its_cap_with_jitter(attempt, first, maximum, low, high):
    delays = {compute_backoff(attempt, first=first, maximum=maximum) for _ in range(200)}
    assert all(low <= delay <= high for delay in delays)
    assert len(delays) > 1  # spread, so that waiters do not all return at once
