"""Pushed content: articles posted to the API and feeds delivered by WebSub hubs.

The API only checks a push (authentication, shape, signature) and adds it to a Redis stream;
the fetcher reads the stream as one more source, so the API does no feed parsing or queueing
of its own. An entry is acknowledged only once its articles are on the chain: a fetcher that
dies holding entries leaves them to another after a minute.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import redis

from shared import redis_keys
from shared.article import Article
from shared.deadletters import quarantine
from shared.feeds.registry import Feed, FeedRegistry
from shared.redis_client import as_text
from shared.sources.delivery import Delivery

if TYPE_CHECKING:  # the API writes to the stream without loading the feed reader
    from shared.feeds.source import FeedSource
    from shared.store import Store

log = logging.getLogger(__name__)

GROUP = "fetchers"
CLAIM_IDLE_MS = 60_000  # an entry unacknowledged this long belongs to a fetcher that died
READ_COUNT = 100
STORE_LOOKUP_CHUNK = 50  # ids looked up in the store per query


def push_articles(client: redis.Redis, articles: Sequence[Article]) -> None:
    """Hand articles posted to the API to the fetcher."""
    body = json.dumps([article.to_message() for article in articles], ensure_ascii=False)
    client.xadd(redis_keys.PUSH_STREAM, {"kind": "articles", "articles": body})


def claim_pushed(
    client: redis.Redis, store: Store, articles: Sequence[Article], origin: str, ttl_seconds: int
) -> list[str]:
    """Claim the pushed articles for `origin` (`push:<owner>`), all or none; the problems, one
    per article that belongs to another origin (another token's push, a feed, a file), when
    any does. An article is owned by whoever brought it first: a push may update its own
    articles, never replace another's. The claim in Redis covers articles still on their way
    to the store; the store answers for the rest."""
    if not articles:
        return []
    pipe = client.pipeline(transaction=False)
    for article in articles:
        pipe.set(redis_keys.pushed_by(article.id), origin, nx=True, ex=ttl_seconds)
        pipe.get(redis_keys.pushed_by(article.id))
    replies = pipe.execute()
    newly_claimed = [article.id for article, claimed in zip(articles, replies[0::2], strict=True) if claimed]
    holders = {article.id: as_text(holder) for article, holder in zip(articles, replies[1::2], strict=True) if holder}
    stored = _stored_origins(store, [article.id for article in articles])
    problems = []
    for number, article in enumerate(articles, 1):
        holder = holders.get(article.id)
        owner = holder if holder != origin else stored.get(article.id, origin)
        if owner != origin:
            where = article.url or article.guid or article.id
            problems.append(f"article {number} ({where}) belongs to another source and cannot be replaced by a push")
    if problems and newly_claimed:
        client.delete(*(redis_keys.pushed_by(article_id) for article_id in newly_claimed))
    return problems


def _stored_origins(store: Store, article_ids: list[str]) -> dict[str, str]:
    origins: dict[str, str] = {}
    distinct = list(dict.fromkeys(article_ids))
    for start in range(0, len(distinct), STORE_LOOKUP_CHUNK):
        chunk = distinct[start : start + STORE_LOOKUP_CHUNK]
        # Ids are hex digests: nothing in them needs escaping in a query.
        for found in store.search(f"id:({' OR '.join(chunk)})", limit=len(chunk)):
            origins[found.id] = found.origin
    return origins


def push_feed(client: redis.Redis, feed_url: str, body: bytes, headers: dict[str, str]) -> None:
    """Hand a hub's (signature-checked) delivery of a feed to the fetcher."""
    client.xadd(
        redis_keys.PUSH_STREAM,
        {"kind": "feed", "feed": feed_url, "body": body, "headers": json.dumps(headers)},
    )


class PushSource:
    """The push stream, read by the fetcher like any other source."""

    name = "push"

    def __init__(
        self, client: redis.Redis, feeds: FeedSource, *, claim_idle_ms: int = CLAIM_IDLE_MS, consumer: str | None = None
    ) -> None:
        self.client, self.feeds, self.claim_idle_ms = client, feeds, claim_idle_ms
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        try:
            self.client.xgroup_create(redis_keys.PUSH_STREAM, GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def poll(self, block_ms: int | None = None) -> Iterator[Delivery]:
        """Whatever was pushed since the last poll (waiting up to `block_ms` for something)."""
        reply: Any = self.client.xautoclaim(
            redis_keys.PUSH_STREAM, GROUP, self.consumer, min_idle_time=self.claim_idle_ms, count=READ_COUNT
        )
        entries = [(entry_id, fields) for entry_id, fields in reply[1] if fields]
        if not entries:
            read: Any = self.client.xreadgroup(
                GROUP, self.consumer, {redis_keys.PUSH_STREAM: ">"}, count=READ_COUNT, block=block_ms
            )
            entries = [item for _, items in read or [] for item in items]
        for entry_id, fields in entries:
            delivery = self._read(as_text(entry_id), {as_text(k): v for k, v in fields.items()})
            if delivery is not None:
                yield delivery

    def _read(self, entry_id: str, fields: dict[str, bytes]) -> Delivery | None:
        def done() -> None:
            pipe = self.client.pipeline(transaction=True)
            pipe.xack(redis_keys.PUSH_STREAM, GROUP, entry_id)
            pipe.xdel(redis_keys.PUSH_STREAM, entry_id)
            pipe.execute()

        try:
            if as_text(fields.get("kind", b"")) == "articles":
                articles = [Article.from_message(raw) for raw in json.loads(fields["articles"])]
                return Delivery(articles, on_enqueued=done)
            feed_url = as_text(fields["feed"])
            feed = FeedRegistry(self.client).get(feed_url) or Feed(url=feed_url)
            headers = json.loads(fields["headers"])
            delivery = self.feeds.accept_push(feed, fields["body"], headers)
        except (KeyError, ValueError) as error:
            # Written by the API, so this is a bug or a foreign writer: keep the entry's content.
            log.warning("push entry %s unreadable: %r", entry_id, error)
            kept = {name: value.decode("utf-8", "replace") for name, value in fields.items()}
            quarantine(self.client, stage="push", reason=f"unreadable push entry: {error!r}", item=kept)
            done()
            return None
        if delivery is None:
            done()
            return None
        remember = delivery.on_enqueued

        def remembered_and_done() -> None:
            remember()
            done()

        delivery.on_enqueued = remembered_and_done
        return delivery
