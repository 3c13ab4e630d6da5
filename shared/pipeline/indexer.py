"""The bulk indexer: articles from many chain tasks are written to the store together.

The chain's index step adds its batch to a Redis stream and returns at once; for a store
that takes rows made ahead (SQLite), the entry carries them, so the indexer writes without
reading an article or analyzing text (Elasticsearch's requests are built here). Indexer
threads (one in every worker service, in a consumer group) read the stream, gather up to
`bulk_max_docs` articles or `bulk_max_wait_seconds` — whichever comes first, and no wait at
all when nothing else is queued — write them in one bulk request, then send each batch on to
alert matching and acknowledge its entry. An entry is acknowledged only after that, so a
crash loses nothing: entries a dead consumer held are claimed by another after a minute.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import redis

from shared import metrics, redis_keys, runs
from shared.article import AFTER_INDEX_UNUSED, ANALYSIS, Article
from shared.backoff import compute_backoff
from shared.deadletters import quarantine
from shared.heartbeat import Heartbeat
from shared.pipeline.dedupe import forget_claims, release_claims
from shared.redis_client import as_text
from shared.store import IndexFailure, Store, TransientStoreError

log = logging.getLogger(__name__)

GROUP = "indexers"
CLAIM_IDLE_MS = 60_000  # an entry unacknowledged this long belongs to a consumer that died
READ_BLOCK_MS = 500


def submit(
    client: redis.Redis, articles: Sequence[Article], run_id: str | None, rows: Sequence[Any] | None = None
) -> None:
    """Queue a batch for the bulk indexer, with the store's rows of its articles when the
    store takes rows made ahead (`shared.store.prepare_rows`). Making them analysed each
    article's text: the analysis goes on with the article, for alert matching."""
    batch: dict[str, Any] = {"run": run_id, "articles": [article.to_message() for article in articles]}
    if rows is not None:
        batch["rows"] = list(rows)
        for message, article in zip(batch["articles"], articles, strict=True):
            message[ANALYSIS] = article.packed_analysis()
    client.xadd(redis_keys.INDEX_STREAM, {"batch": orjson.dumps(batch)})


class BulkIndexer:
    """One consumer of the index stream."""

    def __init__(
        self,
        client: redis.Redis,
        store: Store,
        send_matches: Callable[[dict[str, Any]], None],
        *,
        max_docs: int = 500,
        max_wait: float = 1.0,
        claim_idle_ms: int = CLAIM_IDLE_MS,
    ) -> None:
        self.client, self.store, self.send_matches = client, store, send_matches
        self.max_docs, self.max_wait, self.claim_idle_ms = max_docs, max_wait, claim_idle_ms
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident()}"
        try:
            self.client.xgroup_create(redis_keys.INDEX_STREAM, GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def run(self, stop: threading.Event) -> None:
        """Index until `stop` is set; Redis or store outages are waited out with backoff."""
        failures = 0
        heartbeat = Heartbeat(self.client, "bulk-indexer")
        while not stop.is_set():
            try:
                heartbeat.beat()
                self.flush_once()
                failures = 0
            except Exception as error:  # whatever its clients raise, the thread carries on
                delay = compute_backoff(failures, first=0.5, maximum=30)
                if isinstance(error, (redis.ConnectionError, redis.TimeoutError, TransientStoreError)):
                    log.warning("bulk indexer waiting %.1f s: %s", delay, error)
                else:
                    log.exception("bulk indexer failed; again in %.1f s", delay)
                failures += 1
                stop.wait(delay)

    def flush_once(self, block_ms: int = READ_BLOCK_MS) -> int:
        """Gather one bulk of entries, index it, and pass it on; returns the articles written."""
        entries = self._claim_stale() or self._read(block_ms)
        if not entries:
            return 0
        deadline = time.monotonic() + self.max_wait
        while _size(entries) < self.max_docs and time.monotonic() < deadline:
            more = self._read(10)
            if not more:
                break  # nothing else queued: a lone batch is not held back waiting for company
            entries.extend(more)
        return self._write(entries)

    def _read(self, block_ms: int) -> list[tuple[str, dict[str, Any]]]:
        # One entry at a time, so a bulk request stops growing once it reaches max_docs; an
        # unreadable entry is put aside and the next one read at once.
        while True:
            reply: Any = self.client.xreadgroup(
                GROUP, self.consumer, {redis_keys.INDEX_STREAM: ">"}, count=1, block=block_ms
            )
            items = [item for _, items in reply or [] for item in items]
            readable = self._readable(items)
            if readable or not items:
                return readable

    def _claim_stale(self) -> list[tuple[str, dict[str, Any]]]:
        reply: Any = self.client.xautoclaim(
            redis_keys.INDEX_STREAM, GROUP, self.consumer, min_idle_time=self.claim_idle_ms, count=1
        )
        claimed = reply[1]
        return self._readable([item for item in claimed if item[1]])

    def _readable(self, items: list[Any]) -> list[tuple[str, dict[str, Any]]]:
        """The entries as batches; one that cannot be read is kept as a dead letter and removed."""
        readable = []
        for raw_id, fields in items:
            entry_id = as_text(raw_id)
            try:
                batch = orjson.loads(fields[b"batch"])
                if not isinstance(batch, dict) or not isinstance(batch.get("articles"), list):
                    raise ValueError("no list of articles")
                if not all(isinstance(batch.get(name), str | None) for name in ("run", "id")):
                    raise ValueError("run and id must be text")
                rows = batch.get("rows", [None] * len(batch["articles"]))
                if not isinstance(rows, list) or len(rows) != len(batch["articles"]):
                    raise ValueError("not one row per article")
            except (KeyError, ValueError) as error:
                # Not only the index step can write here by mistake: keep whatever it holds.
                kept = {_text(name): _text(value) for name, value in fields.items()}
                quarantine(self.client, stage="index", reason=f"unreadable index entry: {error!r}", item=kept)
                self._acknowledge(entry_id)
                continue
            readable.append((entry_id, batch))
        return readable

    def _acknowledge(self, entry_id: str, stored: Sequence[tuple[str, str]] = ()) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.xack(redis_keys.INDEX_STREAM, GROUP, entry_id)
        pipe.xdel(redis_keys.INDEX_STREAM, entry_id)
        forget_claims(pipe, stored)
        pipe.execute()

    def _write(self, entries: list[tuple[str, dict[str, Any]]]) -> int:
        # Rows the index step made are written as they are: no article is read or analyzed here.
        index_rows: Callable[[list[Any]], list[IndexFailure]] | None = getattr(self.store, "index_rows", None)
        write: Callable[[list[Any]], list[IndexFailure]] = self.store.index
        read: Callable[[dict[str, Any]], tuple[list[Any], list[dict[str, Any]]]] = self._articles
        if index_rows is not None and all("rows" in batch for _, batch in entries):
            write, read = index_rows, self._rows
        groups = [read(batch) for _, batch in entries]
        items = [item for group, _ in groups for item in group]
        messages = [message for _, group in groups for message in group]
        started = time.perf_counter()
        failures = write(items) if items else []
        if any(failure.transient for failure in failures):
            metrics.BULK_ERRORS.labels("transient").inc()
            raise TransientStoreError(f"store refused {len(failures)} articles for now: {failures[0].reason}")
        refused = {failure.article_id: failure.reason for failure in failures}
        metrics.record_bulk(len(items), time.perf_counter() - started, len(refused))
        metrics.count_sources(
            metrics.STEP_ARTICLES_OUT,
            "index",
            (message.get("source", "") for message in messages if message["id"] not in refused),
        )
        written = 0
        for (entry_id, batch), (_, group_messages) in zip(entries, groups, strict=True):
            counts: Counter[str] = Counter()
            kept, stored = [], []
            for message in group_messages:
                if message["id"] in refused:
                    quarantine(self.client, stage="index", reason=refused[message["id"]], item=message)
                    release_claims(self.client, message["id"], message.get("delivery", ""))
                    counts.update(rejected=1, done=1)
                else:
                    stored.append((message["id"], message.get("delivery", "")))
                    kept.append(_after_index(message))
            counts["indexed"] += len(kept)
            written += len(kept)
            if kept:
                self.send_matches({"run": batch.get("run"), "articles": kept})
            once = f"{batch['id']}:index" if batch.get("id") else None
            runs.record(self.client, batch.get("run"), counts, once=once)
            self._acknowledge(entry_id, stored)
        return written

    def _articles(self, batch: dict[str, Any]) -> tuple[list[Article], list[dict[str, Any]]]:
        """The batch's articles, each beside the message it was read from (passed on as it is,
        never written again). Only the index step writes the stream, but what cannot be read
        is kept, not fatal."""
        articles, messages = [], []
        for raw in batch.get("articles", []):
            try:
                articles.append(Article.from_message(raw))
            except (ValueError, TypeError, KeyError) as error:
                quarantine(self.client, stage="index", reason=f"not an article: {error}", item={"raw": raw})
                runs.record(self.client, batch.get("run"), Counter(rejected=1, done=1))
                continue
            messages.append(raw)
        return articles, messages

    def _rows(self, batch: dict[str, Any]) -> tuple[list[Any], list[dict[str, Any]]]:
        """The batch's rows, each beside its article's message; a message without an id is kept
        as a dead letter, as `_articles` keeps what it cannot read."""
        rows, messages = [], []
        for row, raw in zip(batch["rows"], batch["articles"], strict=True):
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                quarantine(self.client, stage="index", reason="not an article: no id", item={"raw": raw})
                runs.record(self.client, batch.get("run"), Counter(rejected=1, done=1))
                continue
            rows.append(row)
            messages.append(raw)
        return rows, messages


def start_indexer_thread(indexer: BulkIndexer) -> tuple[threading.Thread, threading.Event]:
    """Run an indexer in a daemon thread; set the event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=indexer.run, args=(stop,), name="bulk-indexer", daemon=True)
    thread.start()
    return thread, stop


def _after_index(message: dict[str, Any]) -> dict[str, Any]:
    # The message as `to_message(leave_out=AFTER_INDEX_UNUSED)` writes it; `sentences` only
    # serves the evidence, which is left out.
    return {name: value for name, value in message.items() if name not in AFTER_INDEX_UNUSED and name != "sentences"}


def _size(entries: list[tuple[str, dict[str, Any]]]) -> int:
    return sum(len(batch["articles"]) for _, batch in entries)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
