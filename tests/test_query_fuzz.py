"""Any text as a query: parse_query, the SQLite store and the alert matcher answer with a
result or a QueryError, never another exception, and never hang (a bounded number of
generated queries, each with a generous time limit that only a runaway would pass)."""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.alerting.matcher import AnalyzedArticle, matches
from shared.query import KNOWN_FIELDS, QueryError, parse_query
from shared.store.sqlite import SqliteStore
from tests.factories import make_article

EXAMPLES = 400
SYNTAX = list('()[]{}"\\:*?~^-+!/&|<>=., ')
WORDS = ["AND", "OR", "NOT", "TO", "now", "now-7d/d", "||+1M", "_exists_", "missile", "test", "the", "2026-03-01", "*"]
FIELDS = [f"{field}:" for field in (*KNOWN_FIELDS, "nosuchfield")]

pieces = st.one_of(
    st.sampled_from(SYNTAX),
    st.sampled_from(WORDS),
    st.sampled_from(FIELDS),
    st.integers(-(10**12), 10**12).map(str),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.text(min_size=1, max_size=6),  # any Unicode, lone surrogates included
)
queries = st.one_of(
    st.text(max_size=200),
    st.lists(pieces, max_size=60).map("".join),
    st.lists(pieces, max_size=60).map(" ".join),
    st.integers(1, 400).map(lambda depth: "(" * depth + "missile" + ")" * depth),
    st.integers(1, 1200).map(lambda count: " OR ".join(f"w{n}" for n in range(count))),
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> SqliteStore:
    store = SqliteStore(tmp_path_factory.mktemp("fuzz") / "store.sqlite3")
    store.index(ARTICLES)
    return store


ARTICLES = [
    make_article(
        "Missile test over the sea",
        "North Korea fired a ballistic missile on Tuesday; O'Brien's café said 2,000 U.S. sailors watched.",
        url="https://desk.example/1",
        tags=["missile-test"],
        countries=["KP"],
        published_at=datetime(2026, 3, 1, tzinfo=UTC),
    ),
    make_article("Sanctions agreed", "Ministers agreed new sanctions.", url="https://desk.example/2"),
]
DOCS = [AnalyzedArticle.of(article) for article in ARTICLES]


@given(query=queries)
@settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=10),  # not a speed target: a query that hangs fails here
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)
def test_any_text_is_a_result_or_a_query_error(store: SqliteStore, query: str) -> None:
    try:
        node = parse_query(query)
    except QueryError:
        return
    with suppress(QueryError):
        assert all(article.id for article in store.search(query, limit=5))
    with suppress(QueryError):
        assert store.count(query) >= 0
    with suppress(QueryError):
        assert set(store.facets(query)) == {"tags"}
    for doc in DOCS:
        with suppress(QueryError):
            assert matches(node, doc) in (True, False)
