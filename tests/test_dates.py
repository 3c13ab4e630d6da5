"""parse_date: publication dates in every form sources give them, as aware UTC datetimes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.dates import parse_date


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2024-05-01T12:30:00Z", datetime(2024, 5, 1, 12, 30, tzinfo=UTC), id="iso-z"),
        pytest.param(" 2024-05-01T12:30:00Z ", datetime(2024, 5, 1, 12, 30, tzinfo=UTC), id="iso-z-padded"),
        pytest.param("2024-05-01T12:30:00+02:00", datetime(2024, 5, 1, 10, 30, tzinfo=UTC), id="iso-plus-offset"),
        pytest.param("2024-05-01T12:30:00-05:00", datetime(2024, 5, 1, 17, 30, tzinfo=UTC), id="iso-minus-offset"),
        pytest.param(
            "2024-05-01T23:30:00-05:00", datetime(2024, 5, 2, 4, 30, tzinfo=UTC), id="iso-offset-crosses-midnight"
        ),
        pytest.param("2024-05-01T12:30:00", datetime(2024, 5, 1, 12, 30, tzinfo=UTC), id="naive-iso-is-utc"),
        pytest.param("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC), id="bare-date-is-utc-midnight"),
        pytest.param("Wed, 01 May 2024 12:30:00 +0200", datetime(2024, 5, 1, 10, 30, tzinfo=UTC), id="rfc2822-offset"),
        pytest.param("Wed, 01 May 2024 12:30:00 GMT", datetime(2024, 5, 1, 12, 30, tzinfo=UTC), id="rfc2822-gmt"),
        pytest.param(
            "Wed, 01 May 2024 12:30:00 -0000", datetime(2024, 5, 1, 12, 30, tzinfo=UTC), id="rfc2822-unknown-zone"
        ),
        pytest.param(
            time.struct_time((2024, 5, 1, 12, 30, 15, 2, 122, 0)),
            datetime(2024, 5, 1, 12, 30, 15, tzinfo=UTC),
            id="struct-time",
        ),
        pytest.param(1714566600, datetime(2024, 5, 1, 12, 30, tzinfo=UTC), id="epoch-int"),
        pytest.param(1714566600.5, datetime(2024, 5, 1, 12, 30, 0, 500000, tzinfo=UTC), id="epoch-float"),
        pytest.param(0, datetime(1970, 1, 1, tzinfo=UTC), id="epoch-zero-is-a-date"),
        pytest.param(
            datetime(2024, 5, 1, 21, 30, tzinfo=timezone(timedelta(hours=9))),
            datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
            id="aware-datetime-converted",
        ),
        pytest.param(datetime(2024, 5, 1, 12, 30), datetime(2024, 5, 1, 12, 30, tzinfo=UTC), id="naive-datetime"),
    ],
)
def test_parse_date_reads_the_moment_in_utc(value: object, expected: datetime) -> None:
    parsed = parse_date(value)
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("garbage", id="garbage"),
        pytest.param("yesterday afternoon", id="words"),
        pytest.param("2024-13-45", id="impossible-iso"),
        pytest.param("Wed, 41 May 2024 12:30:00 +0200", id="impossible-rfc2822"),
        pytest.param("1714566600", id="epoch-as-text"),
        pytest.param(True, id="bool-is-not-epoch"),
        pytest.param([2024, 5, 1], id="list"),
    ],
)
def test_parse_date_returns_none_for_what_is_not_a_date(value: object) -> None:
    assert parse_date(value) is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(1714566600000, id="epoch-milliseconds"),
        pytest.param(float("nan"), id="nan"),
        pytest.param(10**20, id="huge"),
    ],
)
def test_out_of_range_epoch_never_raises(value: object) -> None:
    result = parse_date(value)  # None, or (for milliseconds) a real date; never an exception
    assert result is None or result.tzinfo is not None
