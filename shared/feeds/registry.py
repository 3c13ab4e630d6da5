"""The feed list: what `wirewatch feeds add/remove/import` manage, kept in Redis, with the
feeds file merged in at start."""

from __future__ import annotations

from pathlib import Path

import redis
import yaml
from pydantic import BaseModel, Field, ValidationError

from shared import redis_keys


class Feed(BaseModel):
    """One feed and how to treat it."""

    url: str = Field(min_length=1)
    name: str | None = None
    interval: int | None = Field(default=None, ge=30, description="Fixed seconds between polls (default: adaptive).")
    full_text: bool | None = Field(
        default=None, description="Fetch each linked page for the full text (default: when entries are short)."
    )
    tags: list[str] = Field(default_factory=list, description="Tags added to every article of the feed.")
    language: str | None = Field(default=None, description="Language of the feed's articles, when known.")
    enabled: bool = True


class FeedsFileError(ValueError):
    """The feeds file cannot be used; the message says where and why."""


def load_feeds(path: Path) -> list[Feed]:
    """Read the YAML feeds file (`feeds:` a list of {url, name?, interval?, full_text?, tags?, language?, enabled?})."""
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise FeedsFileError(f"cannot read feeds file {path}: {error}") from None
    entries = data.get("feeds") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise FeedsFileError(f"{path}: expected a top-level 'feeds:' list")
    feeds = []
    for number, entry in enumerate(entries, 1):
        if isinstance(entry, str):
            entry = {"url": entry}
        try:
            feed = Feed.model_validate(entry)
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(part) for part in problem["loc"]) or "entry"
            raise FeedsFileError(f"{path}: feed {number}: {where}: {problem['msg']}") from None
        if "://" not in feed.url and not Path(feed.url).is_absolute():
            feed.url = str((path.parent / feed.url).resolve())  # local feed files sit beside the list
        feeds.append(feed)
    return feeds


class FeedRegistry:
    """Feeds by URL in a Redis hash."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def all(self) -> list[Feed]:
        return sorted(
            (Feed.model_validate_json(raw) for raw in self.client.hvals(redis_keys.FEEDS)), key=lambda feed: feed.url
        )

    def get(self, url: str) -> Feed | None:
        raw = self.client.hget(redis_keys.FEEDS, url)
        return Feed.model_validate_json(raw) if raw else None

    def put(self, feed: Feed) -> None:
        self.client.hset(redis_keys.FEEDS, feed.url, feed.model_dump_json())

    def remove(self, url: str) -> bool:
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(redis_keys.FEEDS, url)
        pipe.zrem(redis_keys.FEEDS_DUE, url)
        pipe.delete(redis_keys.feed_validators(url))
        removed, *_ = pipe.execute()
        return bool(removed)

    def move(self, old: str, new: str) -> None:
        """A permanent redirect: the feed, its state and its schedule move to the new URL."""
        feed = self.get(old)
        if feed is None or old == new:
            return
        feed.url = new
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(redis_keys.FEEDS, old)
        pipe.hset(redis_keys.FEEDS, new, feed.model_dump_json())
        pipe.zrem(redis_keys.FEEDS_DUE, old)
        pipe.execute()
        if self.client.exists(redis_keys.feed_validators(old)):
            self.client.rename(redis_keys.feed_validators(old), redis_keys.feed_validators(new))

    def merge_file(self, path: Path) -> int:
        """Add the feeds file's entries (replacing same-URL entries); returns how many."""
        feeds = load_feeds(path)
        for feed in feeds:
            self.put(feed)
        return len(feeds)
