"""Reading publication dates in the forms feeds, JSON and dropped files use."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def parse_date(value: object) -> datetime | None:
    """An aware UTC datetime from ISO-8601, RFC 2822, a `time.struct_time` or epoch seconds;
    None when the value is empty or not a date (a bad date never rejects an article)."""
    if value is None or value == "":
        return None
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, time.struct_time):
        try:
            moment = datetime(*value[:6], tzinfo=UTC)
        except (ValueError, OverflowError):  # e.g. 9999-12-31 at -05:00 is in the year 10000
            return None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if value > 100_000_000_000 else value  # epoch milliseconds, as JavaScript writes them
        try:
            moment = datetime.fromtimestamp(seconds, UTC)
        except (ValueError, OverflowError, OSError):
            return None
    elif isinstance(value, str):
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            try:
                moment = parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
