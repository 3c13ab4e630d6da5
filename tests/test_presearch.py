"""The presearcher never drops a query that matches, and keeps most others out."""

from __future__ import annotations

import pytest

from shared.alerting.matcher import AnalyzedArticle, matches
from shared.alerting.presearch import Presearcher, all_required_keys, article_keys, required_keys
from shared.query import parse_query
from tests.test_store_contract import ARTICLES, QUERIES


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        ("missile", {"t:missil"}),
        ("missile AND sanctions", {"t:sanction"}),  # the longer of the two
        ("missile OR rocket", {"t:missil", "t:rocket"}),
        ('"ballistic missile"', {"t:ballist"}),
        ("countries:KP", {"k:countries:KP"}),
        ("sanction*", {"p:san"}),
        ("missile -drill", {"t:missil"}),
        ("-drill", None),
        ("published_at:[2026-01-01 TO *]", None),
        ("missile OR published_at:[2026-01-01 TO *]", None),
    ],
)
def test_required_keys(query, keys):
    found = required_keys(parse_query(query))
    assert (set(found) if found is not None else None) == keys


def test_all_required_keys_cover_every_conjunct():
    assert all_required_keys(parse_query('"ballistic missile" AND countries:KP')) == {
        "t:ballist",
        "t:missil",
        "k:countries:KP",
    }
    assert all_required_keys(parse_query("missile OR rocket")) == frozenset()


def test_every_matching_query_is_a_candidate():
    presearcher = Presearcher()
    nodes = {query: parse_query(query) for query, _ in QUERIES}
    for query, node in nodes.items():
        presearcher.add(query, node)
    for article in ARTICLES.values():
        doc = AnalyzedArticle.of(article)
        candidates = set(presearcher.candidates(article_keys(doc)))
        matching = {query for query, node in nodes.items() if matches(node, doc)}
        assert matching <= candidates
        assert len(candidates) < len(nodes)


def test_removed_queries_are_no_longer_candidates():
    presearcher = Presearcher()
    presearcher.add("a", parse_query("missile"))
    presearcher.add("b", parse_query("-drill"))
    keys = article_keys(AnalyzedArticle.of(ARTICLES["launch"]))
    assert set(presearcher.candidates(keys)) == {"a", "b"}
    presearcher.remove("a")
    presearcher.remove("b")
    assert presearcher.candidates(keys) == [] and len(presearcher) == 0


def test_article_candidates_are_those_of_every_key_the_article_offers():
    presearcher = Presearcher()
    nodes = {query: parse_query(query) for query, _ in QUERIES}
    queries = list(nodes)
    for query in queries[: len(queries) // 2]:
        presearcher.add(query, nodes[query])
    for article in ARTICLES.values():  # the known terms are made here ...
        doc = AnalyzedArticle.of(article)
        assert sorted(presearcher.article_candidates(doc)) == sorted(presearcher.candidates(article_keys(doc)))
    for query in queries[len(queries) // 2 :]:  # ... and kept current as queries come
        presearcher.add(query, nodes[query])
    presearcher.add("prefix", parse_query("ballis*"))
    for article in ARTICLES.values():
        doc = AnalyzedArticle.of(article)
        found = presearcher.article_candidates(doc)
        assert sorted(found) == sorted(presearcher.candidates(article_keys(doc)))
        assert {query for query, node in nodes.items() if matches(node, doc)} <= set(found)
    launch = AnalyzedArticle.of(ARTICLES["launch"])
    assert "prefix" in presearcher.article_candidates(launch)
