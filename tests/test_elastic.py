"""The Elasticsearch store's own duties, through the official client against the real test
node: template, alias, bulk failures, rollover safety, rebuilds. What the node cannot do
(index lifecycle management) and failures it will not produce on demand (refused documents,
429, 503) go through a recording proxy in front of it and are tested at the request level."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from shared.settings import Settings
from shared.store.elastic import ElasticsearchStore, elasticsearch_client
from shared.store.lifecycle import Lifecycle
from tests.es_node import PlainJsonNode
from tests.es_proxy import EsProxy, Recorded
from tests.factories import make_article


def connect(url: str, lifecycle: Lifecycle | None = None) -> ElasticsearchStore:
    client = elasticsearch_client(Settings(elasticsearch_url=url), node_class=PlainJsonNode)
    return ElasticsearchStore(client, "news", lifecycle)


@pytest.fixture
def proxy(engine_url) -> Iterator[EsProxy]:
    running = EsProxy(engine_url).start()
    yield running
    running.stop()


@pytest.fixture
def es(engine_url) -> ElasticsearchStore:
    store = connect(engine_url)
    store.setup()
    return store


def articles(count: int) -> list:
    return [
        make_article(
            f"Report number {n}", f"Officials described event number {n} in detail.", url=f"https://example.org/{n}"
        )
        for n in range(count)
    ]


def test_setup_creates_template_first_index_and_write_alias_and_can_run_again(es):
    es.setup()
    aliases = es.client.indices.get_alias(name="news-articles")
    assert aliases == {"news-articles-000001": {"aliases": {"news-articles": {"is_write_index": True}}}}
    template = es.client.indices.get_index_template(name="news-articles")["index_templates"][0]["index_template"]
    assert template["index_patterns"] == ["news-articles-*"]
    mapping = template["template"]["mappings"]
    assert mapping["dynamic"] in (False, "false")
    assert mapping["properties"]["tags"]["type"] == "keyword"
    assert mapping["properties"]["text"]["analyzer"] == "english"
    assert mapping["properties"]["tag_evidence"]["enabled"] in (False, "false")


def test_a_server_without_lifecycle_management_gets_a_warning_not_a_failure(engine_url, caplog):
    with caplog.at_level(logging.WARNING):
        connect(engine_url).setup()
    assert "no index lifecycle management" in caplog.text


def test_setup_sends_the_lifecycle_policy_and_template_settings_elasticsearch_expects(proxy):
    def accept_ilm(request: Recorded):
        # Elasticsearch acknowledges both; the test node has no ILM, so the proxy answers for it.
        if request.path.startswith("/_ilm/policy/") or request.path.startswith("/_index_template/"):
            return 200, {"acknowledged": True}
        return None

    proxy.answer = accept_ilm
    connect(proxy.url, Lifecycle(max_age="7d", max_primary_shard_size="10gb", retention_days=90)).setup()

    (policy,) = proxy.sent("PUT", "/_ilm/policy/news-articles")
    assert policy.json() == {
        "policy": {
            "phases": {
                "hot": {"actions": {"rollover": {"max_age": "7d", "max_primary_shard_size": "10gb"}}},
                "delete": {"min_age": "90d", "actions": {"delete": {}}},
            }
        }
    }
    (template,) = proxy.sent("PUT", "/_index_template/news-articles")
    settings = template.json()["template"]["settings"]
    assert settings["index.lifecycle.name"] == "news-articles"
    assert settings["index.lifecycle.rollover_alias"] == "news-articles"
    assert template.json()["index_patterns"] == ["news-articles-*"]  # rollover names match ^.*-\d+$
    (first,) = proxy.sent("PUT", "/news-articles-000001")
    assert first.json() == {"aliases": {"news-articles": {"is_write_index": True}}}
    assert proxy.sent("PUT", "/_ilm/policy/")[0] is policy and proxy.requests.index(policy) < proxy.requests.index(
        template
    )


def test_a_document_the_cluster_refuses_is_reported_and_the_rest_are_stored(proxy, engine_url):
    connect(engine_url).setup()
    batch = articles(5)
    poisoned = batch[2].id

    def refuse_one(actions, reply):
        for item in reply["items"]:
            if item["index"]["_id"] == poisoned:
                item["index"].update(
                    status=400, error={"type": "mapper_parsing_exception", "reason": "failed to parse [published_at]"}
                )
        reply["errors"] = True
        return reply

    proxy.alter_bulk = refuse_one
    store = connect(proxy.url)
    failures = store.index(batch)
    assert [(f.article_id, f.transient) for f in failures] == [(poisoned, False)]
    assert "mapper_parsing_exception" in failures[0].reason
    store.refresh()
    assert store.count("*") == 5  # the node stored it; the refusal is what the store reports
    assert {a.id for a in store.search("*", limit=10)} >= {a.id for a in batch if a.id != poisoned}


def test_documents_refused_with_429_are_retried_until_stored(proxy, engine_url):
    connect(engine_url).setup()
    refusals = {"left": 1}

    def overload_once(actions, reply):
        if refusals["left"]:
            refusals["left"] -= 1
            for item in reply["items"]:
                item["index"].update(
                    status=429, error={"type": "es_rejected_execution_exception", "reason": "queue full"}
                )
            reply["errors"] = True
        return reply

    proxy.alter_bulk = overload_once
    store = connect(proxy.url)
    assert store.index(articles(3)) == []
    assert len(proxy.sent("PUT", "/_bulk") + proxy.sent("POST", "/_bulk")) == 2


def test_a_cluster_that_stays_overloaded_is_a_transient_error(proxy, engine_url):
    from shared.store import TransientStoreError

    connect(engine_url).setup()
    proxy.answer = lambda request: (503, {"error": "unavailable"}) if "_bulk" in request.path else None
    with pytest.raises(TransientStoreError):
        connect(proxy.url).index(articles(2))


def test_after_rollover_a_redelivered_article_replaces_its_stored_copy(es):
    first = articles(2)
    es.index(first)
    # What a rollover does: a new write index behind the alias; the old one keeps its documents.
    es.client.indices.create(index="news-articles-000002")
    es.client.indices.update_aliases(
        actions=[
            {"add": {"index": "news-articles-000001", "alias": "news-articles", "is_write_index": False}},
            {"add": {"index": "news-articles-000002", "alias": "news-articles", "is_write_index": True}},
        ]
    )
    updated = first[0].model_copy(update={"title": "Report number 0, updated"})
    es.index([updated, *articles(3)[2:]])
    es.refresh()
    assert es.count("*") == 3
    hits = es.client.search(index="news-articles", query={"ids": {"values": [updated.id]}})["hits"]["hits"]
    assert [(hit["_index"], hit["_source"]["title"]) for hit in hits] == [
        ("news-articles-000001", "Report number 0, updated")
    ]


def test_rebuild_copies_through_the_transform_and_swaps_the_alias(es):
    es.index(articles(7))
    es.refresh()
    seen = []

    def retitle(article):
        return article.model_copy(update={"tags": ["rebuilt"]})

    assert es.rebuild(retitle, lambda done, total: seen.append((done, total))) == 7
    assert seen[-1] == (7, 7)
    assert list(es.client.indices.get_alias(name="news-articles")) == ["news-articles-r1-000001"]
    assert list(es.client.indices.get(index="news-articles-*")) == ["news-articles-r1-000001"]  # the old one deleted
    assert list(es.client.indices.get_alias(name="news-articles-000001")) == ["news-articles-r1-000001"]
    es.refresh()
    assert es.count("tags:rebuilt") == 7


def test_a_rebuild_that_fails_half_way_leaves_the_live_index_untouched(es):
    es.index(articles(6))
    es.refresh()
    calls = {"n": 0}

    def explode_on_fourth(article):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("taxonomy error")
        return article.model_copy(update={"tags": ["rebuilt"]})

    with pytest.raises(RuntimeError, match="taxonomy error"):
        es.rebuild(explode_on_fourth, lambda done, total: None)
    assert list(es.client.indices.get_alias(name="news-articles")) == ["news-articles-000001"]
    assert list(es.client.indices.get(index="news-articles-*")) == ["news-articles-000001"]  # the copy deleted
    assert list(es.client.indices.get_alias(name="news-articles-r1-000001")) == ["news-articles-000001"]
    assert es.count("*") == 6 and es.count("tags:rebuilt") == 0
    es.rebuild(lambda article: article, lambda done, total: None)  # the next one takes a name of its own
    assert list(es.client.indices.get_alias(name="news-articles")) == ["news-articles-r2-000001"]


def test_every_article_has_a_time_for_kibana_and_an_undated_one_is_marked_first_seen(es):
    from shared.kibana import ARTICLE_TIME_FIELD
    from tests.factories import day

    dated = make_article("Dated report", "Officials spoke.", url="https://example.org/dated")
    dated = dated.model_copy(update={"published_at": day("2026-03-14T03:00:00")})
    undated = make_article("Undated report", "Officials spoke again.", url="https://example.org/undated")
    es.index([dated, undated])
    es.refresh()
    found = es.client.search(
        index="news-articles", query={"range": {ARTICLE_TIME_FIELD: {"gte": "2000-01-01"}}}, size=10
    )["hits"]["hits"]
    marks = {hit["_id"]: (hit["_source"]["dated_at"], hit["_source"]["dated_by"]) for hit in found}
    assert marks[dated.id] == (dated.to_document()["published_at"], "published")
    assert marks[undated.id] == (undated.to_document()["ingested_at"], "first_seen")


def test_secrets_never_show_in_settings_reprs():
    settings = Settings(
        elasticsearch_url="https://es:9200",
        elasticsearch_username="elastic",
        elasticsearch_password="s3cret-pw",
        elasticsearch_api_key="k3y-value",
    )
    shown = repr(settings) + str(settings.model_dump())
    assert "s3cret-pw" not in shown and "k3y-value" not in shown


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        ({"elasticsearch_api_key": "a2V5OnNlY3JldA=="}, "ApiKey a2V5OnNlY3JldA=="),
        ({"elasticsearch_username": "elastic", "elasticsearch_password": "pw"}, "Basic ZWxhc3RpYzpwdw=="),
    ],
)
def test_credentials_go_with_every_request(proxy, credentials, expected):
    settings = Settings(elasticsearch_url=proxy.url, **credentials)
    store = ElasticsearchStore(elasticsearch_client(settings, node_class=PlainJsonNode), "news")
    store.setup()
    assert proxy.requests and {request.headers.get("authorization") for request in proxy.requests} == {expected}


# Lucene refuses a wildcard whose automaton grows too large to determinize.
TOO_COMPLEX = "".join(f"*{letter}?" for letter in "abcdefghijklmnopqrstuvwxyz") + "*"


def test_a_query_the_engine_refuses_is_a_query_error_with_its_reason(es):
    from shared.query import QueryError

    es.index(articles(1))
    es.refresh()
    for run in (lambda: es.search(TOO_COMPLEX), lambda: es.count(TOO_COMPLEX), lambda: es.facets(TOO_COMPLEX)):
        with pytest.raises(QueryError, match="the search engine refused the query .*automaton"):
            run()
    assert es.count("report") == 1  # the store still answers
