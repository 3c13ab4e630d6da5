"""One contract for both stores, and for the alert matcher: the same query finds the same
articles in SQLite, in Elasticsearch (through the official client), and at ingest."""

from __future__ import annotations

import pytest

from shared.alerting.matcher import AnalyzedArticle, matches
from shared.query import QueryError, parse_query
from tests.factories import day, make_article

ARTICLES = {
    "launch": make_article(
        "North Korea test-fires ballistic missile",
        "Pyongyang launched an intercontinental ballistic missile on Friday, the military in Seoul said. "
        "The missile test drew condemnation, and sanctions were discussed at the United Nations.",
        url="https://news.example.com/launch?utm_source=x",
        source="Example News",
        published_at=day("2026-03-14T03:00:00"),
        tags=["missile-test", "military", "sanctions"],
        countries=["KP", "KR"],
        people=["Kim Jong Un"],
        organizations=["United Nations"],
        lang="en",
    ),
    "copy": make_article(
        "Pyongyang fires missile, Seoul says",
        "Pyongyang launched an intercontinental ballistic missile on Friday, the military in Seoul said.",
        source="Wire",
        published_at=day("2026-03-14T04:00:00"),
        tags=["military"],
        countries=["KP", "KR"],
        lang="en",
        duplicate_of="launch-id",
    ),
    "football": make_article(
        "League sanctions club after derby",
        "The football league sanctioned the club over crowd trouble at Sunday's match.",
        source="Sport Daily",
        published_at=day("2025-11-02T10:00:00"),
        lang="en",
    ),
    "summit": make_article(
        "Leaders meet for summit in Madrid",
        "Heads of government gathered in Madrid for a summit about Ukraine, and defence spending was the main topic.",
        source="Example News",
        published_at=day("2022-06-29T08:00:00"),
        tags=["diplomacy"],
        countries=["ES", "UA"],
        lang="en",
    ),
    "undated": make_article(
        "Tests of a new defence system",
        "Engineers tested the defence system, not a missile, at a range in the desert.",
        source="Tech Weekly",
        lang="en",
    ),
}

QUERIES = [
    ("missile", {"launch", "copy", "undated"}),
    ("missiles", {"launch", "copy", "undated"}),  # stemmed like the english analyzer
    ('"missile test"', {"launch"}),
    ('"ballistic missile"', {"launch", "copy"}),
    ('"launched missile"~2', set()),  # "launched an intercontinental ballistic missile": 3 apart
    ('"launched missile"~3', {"launch", "copy"}),
    ('"test of missiles"', set()),
    ('"launched the intercontinental"', {"launch", "copy"}),  # any stop word holds the place
    ("missile AND (test OR launch)", {"launch", "copy", "undated"}),
    ("sanctions AND Pyongyang", {"launch"}),
    ("sanction*", {"launch", "football"}),
    ("missile -defence", {"launch", "copy"}),
    ("missile AND NOT defence", {"launch", "copy"}),
    ("summit OR football", {"summit", "football"}),
    ("missile OR summit -defence", {"launch", "copy"}),  # `-defence` applies to the whole OR
    ("title:sanctions", {"football"}),
    ("tags:sanctions", {"launch"}),
    ("tags:missile-test", {"launch"}),
    ("countries:KP", {"launch", "copy"}),
    ("countries:kp AND NOT duplicate_of:*", {"launch"}),
    ('people:"Kim Jong Un"', {"launch"}),
    ('organizations:"United Nations"', {"launch"}),
    ('people:"kim jong un"', set()),  # names compare exactly, as keywords do in Elasticsearch
    ("tags:SANCTIONS", {"launch"}),  # tags, countries and lang have one canonical case
    ('source:"Example News"', {"launch", "summit"}),
    ("lang:en AND tags:diplomacy", {"summit"}),
    ("published_at:[2026-01-01 TO 2026-12-31]", {"launch", "copy"}),
    ("published_at:[* TO 2023-01-01}", {"summit"}),
    ("published_at:2026-03-14", {"launch", "copy"}),
    ("-published_at:*", {"undated"}),
    ("the", set()),  # only stop words: nothing to search for, as in Elasticsearch
    ("the AND missile test", {"launch", "undated"}),
    ("*", set(ARTICLES)),
    ("madrid ukraine spending", {"summit"}),  # default operator AND
]


@pytest.fixture
def loaded(store):
    assert store.index(list(ARTICLES.values())) == []
    assert store.index([ARTICLES["launch"]]) == []  # re-indexing replaces, never duplicates
    store.refresh()
    return store


def names(articles) -> set[str]:
    ids = {article.id: name for name, article in ARTICLES.items()}
    return {ids[article.id] for article in articles}


@pytest.mark.parametrize(("query", "expected"), QUERIES, ids=[query for query, _ in QUERIES])
def test_store_search_finds_what_the_query_means(loaded, query, expected):
    assert names(loaded.search(query, limit=50)) == expected
    assert loaded.count(query) == len(expected)


@pytest.mark.parametrize(("query", "expected"), QUERIES, ids=[query for query, _ in QUERIES])
def test_the_alert_matcher_agrees_with_the_stores(query, expected):
    node = parse_query(query)
    assert {name for name, article in ARTICLES.items() if matches(node, AnalyzedArticle.of(article))} == expected


def test_results_come_newest_first_with_undated_last(loaded):
    assert [names([article]).pop() for article in loaded.search("*", limit=10)] == [
        "copy",
        "launch",
        "football",
        "summit",
        "undated",
    ]


def test_get_returns_the_whole_article(loaded):
    stored = loaded.get(ARTICLES["launch"].id)
    assert stored is not None
    assert stored.canonical_url == "https://news.example.com/launch"
    assert stored.people == ["Kim Jong Un"] and stored.published_at == day("2026-03-14T03:00:00")
    assert loaded.get("no-such-id") is None


@pytest.mark.parametrize("bad", ["nosuch:field", "title:(unclosed", "/mis.ile/", "published_at:[yesterday TO now]"])
def test_bad_queries_raise_a_readable_error(loaded, bad):
    with pytest.raises(QueryError):
        loaded.search(bad)


def test_facets_count_keyword_values_among_matching_articles(loaded):
    facets = loaded.facets("*", ("countries", "tags", "source"), size=5)
    assert facets["countries"][:2] == [("KP", 2), ("KR", 2)]
    assert dict(facets["tags"]) == {"missile-test": 1, "military": 2, "sanctions": 1, "diplomacy": 1}
    assert facets["source"][0] == ("Example News", 2)
    assert loaded.facets("title:summit", ("countries",))["countries"] == [("ES", 1), ("UA", 1)]


def test_relevance_puts_the_best_match_first(loaded):
    ranked = loaded.search("missile OR intercontinental OR ballistic", sort="relevance", limit=10)
    assert names(ranked[:1]) <= {"launch", "copy"}
    assert names(ranked[-1:]) == {"undated"}


def test_rebuild_rewrites_every_article_through_the_transform(loaded):
    progress = []
    assert (
        loaded.rebuild(
            lambda a: a.model_copy(update={"tags": [*a.tags, "reviewed"]}), lambda d, t: progress.append((d, t))
        )
        == 5
    )
    loaded.refresh()
    assert progress[-1] == (5, 5)
    assert loaded.count("tags:reviewed") == 5
    assert loaded.count("missile") == 3  # the text index was rebuilt too


def test_a_failed_rebuild_changes_nothing(loaded):
    def fail_on_summit(article):
        if "summit" in article.title.lower():
            raise RuntimeError("bad rule")
        return article.model_copy(update={"tags": ["changed"]})

    with pytest.raises(RuntimeError):
        loaded.rebuild(fail_on_summit, lambda d, t: None)
    loaded.refresh()
    assert loaded.count("tags:changed") == 0 and loaded.count("*") == 5


def test_alert_outcomes_written_together_replace_earlier_ones_by_id(store):
    def outcome(alert: str, at: str, status: str) -> dict:
        return {"id": alert, "at": at, "owner": "desk", "subscription": "launches", "status": status}

    store.record_alert(outcome("a1", "2026-03-14T03:00:00+00:00", "retrying"))
    store.record_alerts(
        [
            outcome("a1", "2026-03-14T03:05:00+00:00", "delivered"),
            outcome("a2", "2026-03-14T03:01:00+00:00", "failed"),
            outcome("a3", "2026-03-14T03:02:00+00:00", "delivered"),
        ]
    )
    store.refresh()
    assert [(entry["id"], entry["status"]) for entry in store.alert_history()] == [
        ("a1", "delivered"),
        ("a3", "delivered"),
        ("a2", "failed"),
    ]
    assert [entry["id"] for entry in store.alert_history(status="delivered", limit=1)] == ["a1"]
