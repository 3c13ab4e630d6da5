"""Every Redis key wirewatch uses, named in one place."""

from __future__ import annotations

PREFIX = "ww"

DEAD_LETTERS = f"{PREFIX}:dead-letters"
"""List of JSON records: an article (or item) that could not be processed, and why."""

SUBSCRIPTIONS = f"{PREFIX}:subscriptions"
"""Hash: subscription name -> subscription JSON."""

SUBSCRIPTIONS_VERSION = f"{PREFIX}:subscriptions:version"
"""Counter bumped on every subscription change, so matchers reload within one batch."""

INDEX_STREAM = f"{PREFIX}:index-stream"
"""Stream of batches waiting for the bulk indexer (consumer group `indexers`)."""

TOTALS = f"{PREFIX}:totals"
"""Hash of counters since the data dir (or Redis) was created."""


def seen(kind: str, digest: str) -> str:
    """Exact-duplicate marker for an article's canonical URL, feed GUID or content hash."""
    return f"{PREFIX}:seen:{kind}:{digest}"


def lsh_band(band: int, bucket: str) -> str:
    """Set of article ids whose MinHash signature falls into one LSH bucket of one band."""
    return f"{PREFIX}:lsh:{band}:{bucket}"


def signature(article_id: str) -> str:
    """An article's MinHash signature, packed, with its cluster id."""
    return f"{PREFIX}:sig:{article_id}"


def run(run_id: str) -> str:
    """Hash of counters for one `wirewatch run --once` pass."""
    return f"{PREFIX}:run:{run_id}"


def feed_validators(url: str) -> str:
    """Hash holding a feed's ETag and Last-Modified for conditional GET."""
    return f"{PREFIX}:feed:{url}"


def alert_delivered(subscription: str, article_id: str) -> str:
    """Marker that one alert reached its webhook, so a redelivered task does not send it twice."""
    return f"{PREFIX}:alert:{subscription}:{article_id}"
