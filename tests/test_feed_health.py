"""A feed's health as pure functions: its rhythm, and when its silence is news."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.feeds.health import next_rhythm, silence

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
HOUR = 3600.0


@pytest.mark.parametrize(
    ("rhythm", "last_new", "newest", "expected"),
    [
        (0.0, None, NOW, 0.0),  # the first item says nothing of a rhythm
        (0.0, NOW - timedelta(hours=2), NOW, 2 * HOUR),
        (2 * HOUR, NOW - timedelta(hours=12), NOW, 0.7 * 2 * HOUR + 0.3 * 12 * HOUR),
    ],
)
def test_the_rhythm_is_a_moving_average_of_gaps(rhythm, last_new, newest, expected):
    assert next_rhythm(rhythm, last_new, newest) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("quiet_hours", "rhythm_hours", "silent"),
    [
        (72, 2, True),
        (5, 0.1, False),  # never silent in under six hours, however busy the feed was
        (7, 0.1, True),
        (30, 2, False),  # within twenty rhythms
        (41, 2, True),
    ],
)
def test_silence_is_far_longer_than_the_rhythm(quiet_hours, rhythm_hours, silent):
    status = silence(NOW, NOW - timedelta(hours=quiet_hours), rhythm_hours * HOUR, factor=20)
    assert (status is not None) == silent
    if silent:
        assert status.startswith(f"silent: no new item for {quiet_hours} hours")


def test_a_feed_without_a_rhythm_is_never_silent():
    assert silence(NOW, None, 0.0, factor=20) is None
    assert silence(NOW, NOW - timedelta(days=30), 0.0, factor=20) is None
