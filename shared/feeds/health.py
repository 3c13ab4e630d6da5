"""A feed's health, as pure functions: its publishing rhythm, when its silence is news, and the
source-health event that tells subscribers."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.article import Article, digest
from shared.feeds.registry import Feed

MIN_SILENCE_SECONDS = 6 * 3600


def next_rhythm(rhythm: float, last_new: datetime | None, newest: datetime) -> float:
    """The moving average of the gaps between new items, after one more new item."""
    if last_new is None:
        return rhythm
    gap = (newest - last_new).total_seconds()
    return gap if not rhythm else 0.7 * rhythm + 0.3 * gap


def silence(now: datetime, last_new: datetime | None, rhythm: float, factor: float) -> str | None:
    """Why the feed counts as silent — quiet for `factor` rhythms and never less than six
    hours — or None while it does not."""
    if last_new is None or not rhythm:
        return None
    quiet = (now - last_new).total_seconds()
    if quiet <= max(factor * rhythm, MIN_SILENCE_SECONDS):
        return None
    return f"silent: no new item for {quiet / 3600:.0f} hours (usually every {rhythm / 3600:.1f} hours)"


def source_health_event(feed: Feed, failures: int, status: str) -> Article:
    """A feed that keeps failing or went silent, as an article for alert matching
    (`tags:source-health`); one story per feed per day, so a subscriber hears of it once a day at most."""
    today = datetime.now(UTC).date().isoformat()
    name = feed.name or feed.url
    silent = status.startswith("silent")
    event = Article.create(
        title=f"Feed {'silent' if silent else 'failing'}: {name}",
        text=f"The feed {feed.url} is {status}."
        if silent
        else f"The feed {feed.url} failed {failures} times in a row. Last result: {status}",
        guid=f"source-health:{feed.url}:{today}",
        source="wirewatch",
    )
    event.tags = ["source-health"]
    event.cluster_id = f"source-health:{digest(feed.url)}:{today}"
    return event
