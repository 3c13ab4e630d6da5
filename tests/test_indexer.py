"""The bulk indexer on a real Redis stream and the SQLite store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared import runs
from shared.analysis import analyze
from shared.article import ANALYSIS, Article
from shared.deadletters import read_dead_letters
from shared.pipeline.dedupe import Deduper, Verdict
from shared.pipeline.indexer import BulkIndexer, submit
from shared.redis_keys import claims
from shared.store import IndexFailure, TransientStoreError
from shared.store.sqlite import SqliteStore, stored_row
from tests.factories import make_article


class CountingStore(SqliteStore):
    """The real SQLite store, noting the size of every write, and refusing what it is told to."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes: list[int] = []
        self.refuse: set[str] = set()
        self.outages = 0

    def index(self, articles):
        if self.outages:
            self.outages -= 1
            raise TransientStoreError("store restarting")
        self.writes.append(len(articles))
        kept = [article for article in articles if article.id not in self.refuse]
        super().index(kept)
        return [IndexFailure(a.id, "mapper_parsing_exception: bad field") for a in articles if a.id in self.refuse]


@pytest.fixture
def store(tmp_path: Path) -> CountingStore:
    return CountingStore(tmp_path / "store.sqlite3")


@pytest.fixture
def matched() -> list[dict[str, Any]]:
    return []


def indexer(redis_client, store, matched, **options) -> BulkIndexer:
    return BulkIndexer(redis_client, store, matched.append, **options)


def batch(start: int, size: int) -> list:
    return [
        make_article(f"Story {n}", f"Text of story number {n}.", url=f"https://example.org/{n}")
        for n in range(start, start + size)
    ]


def test_many_small_batches_are_written_in_one_bulk_request(redis_client, store, matched):
    consumer = indexer(redis_client, store, matched)
    for start in range(0, 30, 3):
        submit(redis_client, batch(start, 3), "run-1")
    assert consumer.flush_once() == 30
    assert store.writes == [30]
    assert [len(item["articles"]) for item in matched] == [3] * 10  # each batch goes on to matching
    assert store.count("*") == 30
    assert runs.read(redis_client, "run-1")["indexed"] == 30


def test_a_bulk_request_stops_growing_at_max_docs(redis_client, store, matched):
    consumer = indexer(redis_client, store, matched, max_docs=10)
    for start in range(0, 40, 5):
        submit(redis_client, batch(start, 5), None)
    while consumer.flush_once(block_ms=10):
        pass
    assert store.writes == [10, 10, 10, 10]


def test_a_lone_batch_is_written_without_waiting_for_more(redis_client, store, matched):
    consumer = indexer(redis_client, store, matched, max_wait=600)  # a wait would hit the test timeout
    submit(redis_client, batch(0, 1), None)
    assert consumer.flush_once() == 1


def test_a_refused_article_is_quarantined_and_the_rest_go_on(redis_client, store, matched):
    articles = batch(0, 4)
    store.refuse = {articles[1].id}
    submit(redis_client, articles, "run-2")
    indexer(redis_client, store, matched).flush_once()
    assert [raw["id"] for raw in matched[0]["articles"]] == [a.id for a in articles if a.id != articles[1].id]
    (letter,) = read_dead_letters(redis_client)
    assert letter["stage"] == "index" and letter["item"]["id"] == articles[1].id
    counts = runs.read(redis_client, "run-2")
    assert (counts["indexed"], counts["rejected"], counts["done"]) == (3, 1, 1)


def test_a_stored_article_drops_what_it_could_release_and_a_refused_one_is_let_in_again(redis_client, store, matched):
    articles = batch(0, 3)
    Deduper(redis_client, 86400, 0.5).check_batch(articles)
    listed = [claims(article.id, article.delivery) for article in articles]
    identities = [redis_client.get(key).split() for key in listed]
    store.refuse = {articles[1].id}
    submit(redis_client, articles, None)
    indexer(redis_client, store, matched).flush_once()
    assert redis_client.exists(*listed) == 0
    assert redis_client.exists(*identities[0], *identities[2]) == len(identities[0]) + len(identities[2])
    assert redis_client.exists(*identities[1]) == 0
    again = articles[0].model_copy(update={"delivery": "another reading"})
    assert Deduper(redis_client, 86400, 0.5).check(again) is Verdict.DUPLICATE


def test_an_outage_keeps_the_batch_until_the_store_is_back(redis_client, store, matched):
    consumer = indexer(redis_client, store, matched, claim_idle_ms=0)
    submit(redis_client, batch(0, 2), None)
    store.outages = 1
    with pytest.raises(TransientStoreError):
        consumer.flush_once()
    assert store.count("*") == 0
    assert consumer.flush_once() == 2  # reclaimed from the pending list, not lost
    assert store.count("*") == 2


def test_batches_held_by_a_consumer_that_died_are_taken_over(redis_client, store, matched):
    submit(redis_client, batch(0, 3), None)
    doomed = indexer(redis_client, store, matched)
    assert len(doomed._read(100)) == 1  # read, never written: its process died here
    survivor = indexer(redis_client, store, matched, claim_idle_ms=0)
    assert survivor.flush_once(block_ms=10) == 3
    assert redis_client.xpending("ww:index-stream", "indexers")["pending"] == 0


def test_the_indexer_thread_survives_whatever_its_clients_raise_and_an_unreadable_entry(redis_client, store, matched):
    import threading
    import time

    import kombu.exceptions

    from shared import redis_keys
    from shared.pipeline.indexer import start_indexer_thread

    sends = {"failures": 1}

    def send_after_an_outage(batch):
        if sends["failures"]:
            sends["failures"] -= 1
            raise kombu.exceptions.OperationalError("Error 111 connecting to Redis: Connection refused")
        matched.append(batch)

    consumer = BulkIndexer(redis_client, store, send_after_an_outage, claim_idle_ms=0)
    redis_client.xadd(redis_keys.INDEX_STREAM, {"batch": "{not json"})
    submit(redis_client, batch(0, 3), None)
    thread, stop = start_indexer_thread(consumer)
    deadline = time.monotonic() + 15
    while not matched and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=5)
    assert isinstance(thread, threading.Thread) and not thread.is_alive()
    assert [len(sent["articles"]) for sent in matched] == [3]
    (letter,) = read_dead_letters(redis_client)
    assert letter["stage"] == "index" and "unreadable index entry" in letter["reason"]
    assert redis_client.xlen(redis_keys.INDEX_STREAM) == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"id": "alert-1", "alert": '{"article": {"title": "Missile"}}'},  # an alert, not a batch
        {"batch": b"\xff\xfe not utf-8"},
        {"batch": '{"articles": "not a list"}'},
        {"batch": '{"articles": [], "run": {"not": "a run id"}}'},
        {"batch": '{"articles": [], "id": ["not", "an id"]}'},
        {"batch": '{"articles": [], "rows": [["one row", "for no article"]]}'},
    ],
)
def test_an_entry_the_indexer_cannot_read_is_dead_lettered_and_the_next_is_indexed(
    redis_client, store, matched, fields
):
    from shared import redis_keys

    redis_client.xadd(redis_keys.INDEX_STREAM, fields)
    submit(redis_client, batch(0, 2), None)
    consumer = indexer(redis_client, store, matched)
    assert consumer.flush_once(block_ms=10) == 2
    (letter,) = read_dead_letters(redis_client)
    assert letter["stage"] == "index" and "unreadable index entry" in letter["reason"]
    assert redis_client.xlen(redis_keys.INDEX_STREAM) == 0
    # A restarted indexer finds nothing left over to choke on.
    assert indexer(redis_client, store, matched, claim_idle_ms=0).flush_once(block_ms=10) == 0


def test_rows_made_by_the_index_step_are_written_as_they_are(redis_client, store, matched):
    articles = batch(0, 3)
    articles[0].evidence = [{"kind": "tag", "value": "story", "phrase": "Story", "sentence": "Text of story number 0."}]
    submit(redis_client, articles, "run-3", [stored_row(article) for article in articles])
    assert indexer(redis_client, store, matched).flush_once(block_ms=10) == 3
    assert store.writes == []  # no article was read back: the rows went in as they came
    for article in articles:
        stored = store.get(article.id)
        assert stored is not None
        assert stored.model_dump(exclude={"delivery"}) == article.model_dump(exclude={"delivery"})
    assert [a.id for a in store.search("number", limit=10)] == [a.id for a in store.search("story", limit=10)]
    assert store.count("number") == 3
    (sent,) = matched
    assert [raw["id"] for raw in sent["articles"]] == [a.id for a in articles]
    assert "evidence" not in sent["articles"][0]  # matching gets what it reads, as before
    assert runs.read(redis_client, "run-3")["indexed"] == 3


def test_matching_gets_the_analysis_the_rows_were_made_from(redis_client, store, matched):
    articles = [make_article("The missile launch", "Officials said it was a ballistic missile, not a rocket.")]
    submit(redis_client, articles, None, [stored_row(article) for article in articles])
    indexer(redis_client, store, matched).flush_once(block_ms=10)
    (sent,) = matched
    received = Article.from_message(sent["articles"][0])
    made = {"title": analyze("The missile launch"), "text": analyze(articles[0].text)}
    assert received.analysis() == made
    assert received._analysis is not None  # read from the message, not made again


def test_an_analysis_comes_back_from_its_message_as_it_was_made():
    article = make_article(
        "The U.S. and the talks in Zürich",
        "O'Brien's team said 2,000 troops left. 北京 answered on Tuesday; it was the last of them",
    )
    made = article.analysis()
    assert None in made["title"] and None in made["text"]  # stop words keep their places
    received = Article.from_message({**article.to_message(), ANALYSIS: article.packed_analysis()})
    assert received.analysis() == made


@pytest.mark.parametrize(
    "carried",
    [
        {"title": "missil launch", "text": 7},
        {"title": "missil launch", "text": ["flew", "far"]},
        {"title": "missil launch"},
        ["missil", "launch"],
        "missil launch",
    ],
)
def test_an_analysis_that_is_not_well_formed_is_made_again(carried):
    article = make_article("The missile launch", "It flew far.")
    received = Article.from_message({**article.to_message(), ANALYSIS: carried})
    assert received.analysis() == {"title": analyze("The missile launch"), "text": analyze("It flew far.")}


def test_an_analysis_is_made_again_once_its_text_has_changed():
    article = make_article("Harbour closed", "The harbour closed.")
    assert article.analysis()["text"] == analyze("The harbour closed.")
    article.text = "Ferries sail again."
    assert article.analysis()["text"] == analyze("Ferries sail again.")
    assert "harbour" not in article.analysis()["text"]


def test_an_article_written_again_keeps_only_its_latest_text_searchable(redis_client, store, matched):
    first = make_article("Harbour closed", "The harbour closed after the storm.", url="https://example.org/h")
    store.index_rows([stored_row(first)])
    update = make_article("Harbour reopened", "The harbour reopened on Monday.", url="https://example.org/h")
    again = make_article("Harbour reopened again", "Ferries sail from the harbour.", url="https://example.org/h")
    other = make_article("Bridge repaired", "The bridge was repaired.", url="https://example.org/b")
    assert store.index_rows([stored_row(update), stored_row(other), stored_row(again)]) == []
    assert store.count("*") == 2
    assert store.count("storm") == 0 and store.count("monday") == 0
    assert [a.title for a in store.search("ferries")] == ["Harbour reopened again"]
    assert [a.title for a in store.search('"harbour reopened"')] == ["Harbour reopened again"]


def test_a_malformed_row_is_dead_lettered_and_the_rest_are_written(redis_client, store, matched):
    articles = batch(0, 3)
    rows = [stored_row(article) for article in articles]
    rows[1] = [articles[1].id, {"not": "a document"}]
    submit(redis_client, articles, "run-4", rows)
    assert indexer(redis_client, store, matched).flush_once(block_ms=10) == 2
    assert store.count("*") == 2 and store.get(articles[1].id) is None
    (letter,) = read_dead_letters(redis_client)
    assert letter["stage"] == "index" and letter["item"]["id"] == articles[1].id
    counts = runs.read(redis_client, "run-4")
    assert (counts["indexed"], counts["rejected"]) == (2, 1)
