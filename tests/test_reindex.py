"""`wirewatch reindex`: a taxonomy change reaches stored articles, under a lock, and a rebuild
on a live cluster loses nothing. The Elasticsearch rebuild runs on the real test node with the
production bulk indexer writing all the while; what the node cannot do (index lifecycle
management) and timings it will not produce on demand (a bulk request that lands late, a
rollover just before the swap) go through the recording proxy."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared import redis_keys
from shared.pipeline.indexer import BulkIndexer, start_indexer_thread, submit
from shared.pipeline.reindex import ReindexBusy, reindex
from shared.settings import Settings
from shared.store import open_store
from shared.store.elastic import ElasticsearchStore, elasticsearch_client
from tests.es_node import PlainJsonNode
from tests.es_proxy import EsProxy, Recorded
from tests.factories import make_article

ALIAS = "news-articles"


def connect(url: str) -> ElasticsearchStore:
    client = elasticsearch_client(Settings(elasticsearch_url=url), node_class=PlainJsonNode)
    return ElasticsearchStore(client, "news")


def reports(kind: str, count: int) -> list:
    return [
        make_article(
            f"{kind} report {n}", f"Officials described {kind} event {n}.", url=f"https://example.org/{kind}/{n}"
        )
        for n in range(count)
    ]


def roll_over(url: str, new_index: str) -> None:
    """What the lifecycle's rollover does: a new write index behind the alias, the old ones
    kept with their documents. Sent to the node directly, as the cluster's own act."""
    old = list(json.loads(_send(url, "GET", f"/{ALIAS}/_alias")))
    _send(url, "PUT", f"/{new_index}", {})
    actions = [{"add": {"index": name, "alias": ALIAS, "is_write_index": False}} for name in old]
    actions.append({"add": {"index": new_index, "alias": ALIAS, "is_write_index": True}})
    _send(url, "POST", "/_aliases", {"actions": actions})


def _send(url: str, method: str, path: str, body: Any = None) -> bytes:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return bytes(response.read())


def created_at(store: ElasticsearchStore, index: str) -> int:
    return int(store.client.indices.get_settings(index=index)[index]["settings"]["index"]["creation_date"])


def kept_origin(store: ElasticsearchStore, index: str) -> int:
    return int(store.client.indices.get_mapping(index=index)[index]["mappings"]["_meta"]["origination_date"])


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_retag_applies_the_current_taxonomy_to_stored_articles(settings, redis_client, tmp_path):
    store = open_store(settings)
    store.index([make_article("Harvest festival", "Farmers celebrated a record wheat harvest in the valley.", tags=[])])
    taxonomy = tmp_path / "taxonomy.yml"
    taxonomy.write_text("tags:\n  agriculture:\n    phrases: [harvest, wheat, farmers]\n")
    retag_settings = settings.model_copy(update={"taxonomy": taxonomy})

    assert reindex(retag_settings, retag=True, progress=lambda d, t: None) == 1
    (article,) = store.search("tags:agriculture")
    assert article.tags == ["agriculture"]
    assert article.tag_evidence["agriculture"] == ["Harvest", "Farmers", "wheat"]  # in text order, as written


def test_a_second_reindex_while_one_runs_is_refused(settings, redis_client, engine_url):
    store = connect(engine_url)
    store.setup()
    store.index(reports("stored", 3))
    store.refresh()
    copying, finish = threading.Event(), threading.Event()

    def hold(done: int, total: int) -> None:
        copying.set()
        assert finish.wait(30)

    first: dict[str, Any] = {}
    running = threading.Thread(
        target=lambda: first.update(copied=reindex(settings, retag=False, progress=hold, store=store))
    )
    running.start()
    try:
        assert copying.wait(30)
        with pytest.raises(ReindexBusy, match="another reindex is running"):
            reindex(settings, retag=False, progress=lambda d, t: None, store=connect(engine_url))
        assert store.client.indices.exists_alias(name=f"{ALIAS}-rebuilding")  # the first one is untouched
    finally:
        finish.set()
        running.join(timeout=60)
    assert first == {"copied": 3}
    assert list(store.client.indices.get_alias(name=ALIAS)) == [f"{ALIAS}-r1-000001"]


def test_every_article_written_all_through_a_reindex_is_found_afterwards(settings, redis_client, engine_url):
    store = connect(engine_url)
    store.setup()
    early = reports("early", 700)  # more than one page of the walk
    store.index(early)
    roll_over(engine_url, f"{ALIAS}-000002")
    store.index(reports("middle", 300))
    store.refresh()
    born = {index: created_at(store, index) for index in (f"{ALIAS}-000001", f"{ALIAS}-000002")}
    expected = {hit["_id"]: hit["_source"]["title"] for hit in _all(store)}

    # The production write path: batches on the index stream, a bulk indexer thread writing them.
    indexed: list[dict[str, Any]] = []
    indexer = BulkIndexer(redis_client, store, indexed.append, max_docs=50, max_wait=0.05)
    indexer_thread, stop_indexer = start_indexer_thread(indexer)
    stop_writing = threading.Event()

    def write_all_through() -> None:
        n = 0
        while not stop_writing.is_set():
            batch = [
                make_article(f"Live report {n}.{k}", f"Live event {n}.{k}.", url=f"https://example.org/live/{n}/{k}")
                for k in range(4)
            ]
            stored = early[n % len(early)]  # an update of an article in the rolled-over index
            batch.append(stored.model_copy(update={"title": f"{stored.title}, updated in round {n}"}))
            expected.update({article.id: article.title for article in batch})
            submit(redis_client, batch, None)
            n += 1
            time.sleep(0.05)

    writer = threading.Thread(target=write_all_through)
    pages: list[int] = []

    def between_pages(done: int, total: int) -> None:
        pages.append(done)
        if len(pages) == 1:  # the lifecycle rolls the alias over in the middle of the rebuild
            roll_over(engine_url, f"{ALIAS}-000003")
            born[f"{ALIAS}-000003"] = created_at(store, f"{ALIAS}-000003")
        seen = len(indexed)
        wait_until(lambda: len(indexed) >= seen + 3)  # every page is copied while writes go on

    writer.start()
    wait_until(lambda: len(indexed) >= 3)
    indexed_before = len(indexed)
    try:
        copied = reindex(settings, retag=False, progress=between_pages, store=store)
    finally:
        stop_writing.set()
        writer.join(timeout=30)
    indexed_during = len(indexed) - indexed_before
    wait_until(lambda: redis_client.xlen(redis_keys.INDEX_STREAM) == 0)
    stop_indexer.set()
    indexer_thread.join(timeout=10)
    store.refresh()

    copies = [f"{ALIAS}-r1-{generation:06d}" for generation in (1, 2, 3)]
    aliases = store.client.indices.get_alias(name=ALIAS)
    assert sorted(aliases) == copies
    assert [name for name in copies if aliases[name]["aliases"][ALIAS].get("is_write_index")] == [copies[2]]
    assert sorted(store.client.indices.get(index=f"{ALIAS}-*")) == copies  # old ones deleted, no strays
    for generation, copy in enumerate(copies, 1):  # a write still on its way to an old name lands in its copy
        assert list(store.client.indices.get_alias(name=f"{ALIAS}-{generation:06d}")) == [copy]
    assert not store.client.indices.exists_alias(name=f"{ALIAS}-rebuilding")

    found = _all(store)
    assert len(found) == len({hit["_id"] for hit in found})  # one copy of each
    assert {hit["_id"]: hit["_source"]["title"] for hit in found} == expected  # every one, latest version
    assert store.count("*") == len(expected)
    assert copied >= 1000 and len(pages) >= 4 and indexed_during >= 3 * len(pages)
    for generation, copy in enumerate(copies, 1):
        assert kept_origin(store, copy) == born[f"{ALIAS}-{generation:06d}"]


def test_a_second_rebuild_keeps_the_age_the_first_one_kept(settings, redis_client, engine_url):
    store = connect(engine_url)
    store.setup()
    store.index(reports("stored", 5))
    born = created_at(store, f"{ALIAS}-000001")
    time.sleep(0.01)
    for _ in range(2):
        assert reindex(settings, retag=False, progress=lambda d, t: None, store=store) == 5
    assert list(store.client.indices.get_alias(name=ALIAS)) == [f"{ALIAS}-r2-000001"]
    assert created_at(store, f"{ALIAS}-r2-000001") > born
    assert kept_origin(store, f"{ALIAS}-r2-000001") == born
    store.refresh()
    assert store.count("*") == 5


@pytest.fixture
def proxy(engine_url) -> Iterator[EsProxy]:
    running = EsProxy(engine_url).start()
    yield running
    running.stop()


def test_a_bulk_request_that_landed_after_the_walk_began_is_written_again_to_the_copy(proxy, engine_url):
    rebuilder = connect(engine_url)
    rebuilder.setup()
    rebuilder.index(reports("stored", 20))
    late = make_article("Late report", "It reached the cluster late.", url="https://example.org/late")
    held, release = threading.Event(), threading.Event()

    def hold_first_bulk(request: Recorded):
        if "_bulk" in request.path and not held.is_set():
            held.set()
            assert release.wait(30)  # read the layout before the rebuild began; lands after its walk began
        return None

    proxy.answer = hold_first_bulk
    writer = threading.Thread(target=lambda: connect(proxy.url).index([late]))
    writer.start()
    assert held.wait(30)

    def land_it(done: int, total: int) -> None:
        release.set()
        writer.join(timeout=30)

    assert rebuilder.rebuild(lambda article: article, land_it) == 20
    rebuilder.refresh()
    assert rebuilder.get(late.id) is not None and rebuilder.count("*") == 21
    bulks = [request for request in proxy.requests if "_bulk" in request.path]
    assert len(bulks) == 2  # the first where the old layout said, then again with the copy
    assert f"{ALIAS}-r1-000001" in bulks[1].body.decode()


def test_each_rebuilt_index_keeps_its_lifecycle_age_and_a_rollover_at_the_swap_is_copied_first(proxy, engine_url):
    direct = connect(engine_url)
    direct.setup()
    direct.index(reports("oldest", 4))
    roll_over(engine_url, f"{ALIAS}-000002")
    direct.index(reports("newer", 3))
    lifecycle_dates = {f"{ALIAS}-000001": 1_700_000_000_000, f"{ALIAS}-000002": 1_710_000_000_000}
    swaps: list[Recorded] = []

    def as_elasticsearch(request: Recorded):
        # Elasticsearch answers these; the node has no lifecycle management, so the proxy does.
        path = urllib.parse.unquote(request.path.split("?")[0])
        if path.endswith("/_ilm/explain"):
            names = path.strip("/").split("/")[0].split(",")
            return 200, {
                "indices": {
                    name: {"index": name, "managed": True, "lifecycle_date_millis": lifecycle_dates[name]}
                    for name in names
                }
            }
        if request.method == "PUT" and path.endswith("/_settings"):
            return 200, {"acknowledged": True}
        if path == "/_aliases" and not swaps:
            swaps.append(request)  # the lifecycle rolls the alias over just before the swap
            roll_over(engine_url, f"{ALIAS}-000003")
            lifecycle_dates[f"{ALIAS}-000002"] = 1_720_000_000_000  # its rollover
            lifecycle_dates[f"{ALIAS}-000003"] = 1_730_000_000_000
            direct.index(reports("newest", 2))
        return None

    def without_lifecycle_settings(request: Recorded) -> bytes:
        path = request.path.split("?")[0]
        creating = request.method == "PUT" and path.count("/") == 1 and not path.startswith("/_")
        if creating and request.body and "settings" in request.json():
            body = request.json()
            body["settings"] = {k: v for k, v in body["settings"].items() if not k.startswith("index.lifecycle.")}
            return json.dumps(body).encode()
        return request.body

    proxy.answer, proxy.forward_body = as_elasticsearch, without_lifecycle_settings
    assert connect(proxy.url).rebuild(lambda article: article, lambda d, t: None) == 9

    def settings_sent(index: str) -> dict[str, Any]:
        (created,) = [r for r in proxy.requests if r.method == "PUT" and r.path.split("?")[0] == f"/{index}"]
        return created.json().get("settings") or {}

    rolled_over = {"index.lifecycle.indexing_complete": True}
    assert settings_sent(f"{ALIAS}-r1-000001") == {"index.lifecycle.origination_date": 1_700_000_000_000, **rolled_over}
    assert settings_sent(f"{ALIAS}-r1-000002") == {}  # made as the write copy
    (updated,) = proxy.sent("PUT", f"/{ALIAS}-r1-000002/_settings")  # its index rolled over meanwhile
    assert updated.json() == {"index.lifecycle.origination_date": 1_720_000_000_000, **rolled_over}
    assert settings_sent(f"{ALIAS}-r1-000003") == {}  # the write copy takes its age from its own rollover
    swaps = [request for request in proxy.sent("POST", "/_aliases") if b"-rebuilding" in request.body]
    assert len(swaps) == 2  # the first swap was refused: two write indices
    aliases = direct.client.indices.get_alias(name=ALIAS)
    assert sorted(aliases) == [f"{ALIAS}-r1-00000{n}" for n in (1, 2, 3)]
    assert aliases[f"{ALIAS}-r1-000003"]["aliases"][ALIAS]["is_write_index"] is True
    direct.refresh()
    assert direct.count("*") == 9


def _all(store: ElasticsearchStore) -> list[dict[str, Any]]:
    found = store.client.search(index=ALIAS, query={"match_all": {}}, size=10_000, source=["title"])
    return list(found["hits"]["hits"])
