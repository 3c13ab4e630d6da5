"""One query meaning everywhere: the same queries over the same articles on the real engine
(an OpenSearch node: Lucene analysis and query DSL, as Elasticsearch), on the SQLite store and in
the alert matcher. It prints a table of what each found and fails on any difference.

The corpus is written for the purpose: phrases with stop words, possessives, abbreviations,
numbers, diacritics, CJK, words that stem alike, and dates relative to now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.alerting.matcher import AnalyzedArticle, matches
from shared.article import Article
from shared.query import QueryError, parse_query
from shared.store.sqlite import SqliteStore
from tests.conftest import elastic_store
from tests.factories import make_article

NOW = datetime.now(UTC)


def _corpus() -> dict[str, Article]:
    return {
        "icbm": make_article(
            "Pyongyang launched an ICBM",
            "North Korea launched an intercontinental ballistic missile on Friday. Kim's military said the "
            "missile test was a success; the U.S. and Japan condemned it.",
            tags=["missile-test", "military"],
            countries=["KP", "US", "JP"],
            people=["Kim Jong Un"],
            source="Example News",
            url="https://example.org/1",
            lang="en",
            published_at=NOW - timedelta(hours=2),
        ),
        "new-icbm": make_article(
            "North Korea launched new ICBM",
            "Analysts said the test of the missile launched from a new site showed technological progress.",
            tags=["missile-test"],
            countries=["KP"],
            source="Wire",
            url="https://example.org/2",
            lang="en",
            published_at=NOW - timedelta(days=3),
        ),
        "sanctions": make_article(
            "US sanctions on missile suppliers",
            "The United States imposed sanctions on 2,000 entities; O'Brien's office said the technology "
            "would be assembled elsewhere. Missile test sanctions were discussed.",
            tags=["sanctions"],
            countries=["US"],
            people=["Robert O'Brien"],
            organizations=["U.S. Treasury"],
            source="Example News",
            url="https://example.org/3",
            lang="en",
            published_at=NOW - timedelta(days=10),
        ),
        "football": make_article(
            "League sanctions club after derby",
            "The football league sanctioned the club over crowd trouble at Sunday's match in Zürich.",
            tags=["sport"],
            countries=["CH"],
            source="Sport Daily",
            url="https://example.org/4",
            lang="en",
            published_at=datetime(2024, 1, 31, 22, 0, tzinfo=UTC),
        ),
        "summit": make_article(
            "Leaders meet for summit in Madrid",
            "Heads of government gathered in Madrid; defence spending and the assembly of new jets were the "
            "main topics. A café owner said test flights were loud.",
            tags=["diplomacy"],
            countries=["ES"],
            organizations=["NATO"],
            source="Example News",
            url="https://example.org/5",
            lang="en",
            published_at=datetime(2024, 2, 1, 0, 30, tzinfo=UTC),
        ),
        "beijing": make_article(
            "北京 reacts to missile launch",
            "中国外交部 said in 北京 that all sides should show restraint after the launch of a ballistic missile.",
            countries=["CN"],
            source="Wire",
            url="https://example.org/6",
            lang="en",
            published_at=datetime(2024, 2, 1, 12, 0, tzinfo=UTC),
        ),
        "cafe": make_article(
            "Cafe culture in Paris",
            "The cafe, not the café across the street, served 3.5 million coffees; its technologies are old.",
            tags=["culture"],
            countries=["FR"],
            source="Lifestyle",
            url="https://example.org/7",
            lang="fr",
            published_at=datetime(2023, 6, 15, 9, 0, tzinfo=UTC),
        ),
        "reorder": make_article(
            "Missile test: launch delayed",
            "Engineers said launch missile systems need repairs; the test missile stays on the pad. Us "
            "engineers are tired.",
            tags=["missile-test", "military"],
            countries=["IN"],
            source="Tech Weekly",
            url="https://example.org/8",
            lang="en",
            published_at=NOW - timedelta(minutes=20),
        ),
        "undated": make_article(
            "Tests of a new defence system",
            "Engineers tested the defence system, not a missile, at a range in the desert. Assembly lines resumed.",
            source="Tech Weekly",
            url="https://example.org/9",
            lang="en",
        ),
        "korean": make_article(
            "한국 군 발표",
            "Seoul's military said 한국어 statements followed the launch.",
            countries=["KR"],
            source="Wire",
            url="https://example.org/10",
            lang="ko",
            published_at=NOW - timedelta(days=40),
        ),
    }


QUERIES = [
    # words, stemming, stop words
    "missile",
    "missiles",
    "launched",
    "technology",
    "technological",
    "assembly",
    "assembled",
    "US",
    "us",
    "U.S.",
    "the",
    "the AND missile",
    # phrases with stop words and slop
    '"launched an ICBM"',
    '"launched new ICBM"',
    '"launched the ICBM"',
    '"test of the missile"',
    '"missile test"',
    '"test missile"',
    '"missile test"~1',
    '"missile test"~2',
    '"launch missile"',
    '"launched missile"~2',
    '"launched missile"~4',
    '"ballistic missile"',
    'title:"north korea"',
    # possessives, names, numbers
    "Kim",
    "Kim's",
    '"Kim\'s military"',
    "O'Brien",
    "O'Brien's",
    "brien",
    "2,000",
    "2000",
    "3.5",
    # diacritics and CJK
    "café",
    "cafe",
    "Zürich",
    "zurich",
    "北京",
    "北",
    '"外交部"',
    "한국어",
    # wildcards and fuzzy
    "missil*",
    "mi*ile",
    "*ssile",
    "mi?sile",
    "techno*",
    "title:sanc*",
    "missle~",
    "missle~1",
    "rocket~",
    "tags:missile-*",
    "tags:*sport",
    "countries:k?",
    "source:wir~1",
    # keyword vs text fields
    "tags:sanctions",
    "sanctions",
    "title:sanctions",
    "text:sanctions",
    'people:"Kim Jong Un"',
    'people:"kim jong un"',
    'organizations:"U.S. Treasury"',
    "countries:us",
    'source:"Example News"',
    "lang:EN",
    r"url:https\://example.org/1",
    'url:"https://example.org/3"',
    # exists
    "_exists_:people",
    "people:*",
    "-_exists_:published_at",
    "_exists_:organizations AND missile",
    # precedence
    "missile AND test OR sanctions",
    "sanctions OR missile AND test",
    "missile test OR sanctions",
    "missile OR sanctions test",
    "missile OR sanctions -test",
    "NOT missile",
    "missile -test",
    "(missile OR sanctions) AND NOT title:test",
    "madrid defence",
    "madrid summit spending",
    "title:madrid text:spending",
    # dates: absolute, rounding, relative
    "published_at:[2024-01-01 TO 2024-01-31]",
    "published_at:{2024-01-31 TO 2024-02-01]",
    "published_at:[2024-01-31 TO 2024-02-01}",
    "published_at:2024-02-01",
    "published_at:2024",
    "published_at:>=2024-02-01",
    "published_at:>2024-02-01",
    "published_at:<2024-02-01",
    "published_at:<=2024-01",
    "published_at:[now-1d TO now]",
    "published_at:>=now-7d/d",
    "published_at:[now-30d/d TO now-1d/d]",
    "published_at:<now-1y/y",
    "published_at:[now-1M/M TO *]",
    "published_at:*",
    "missile AND published_at:[now-7d TO now]",
]


@pytest.fixture(scope="module")
def corpus() -> dict[str, Article]:
    return _corpus()


@pytest.fixture
def stores(corpus: dict[str, Article], engine_url: str, tmp_path: Path) -> dict[str, Any]:
    elastic = elastic_store(engine_url, prefix="parity")
    sqlite = SqliteStore(tmp_path / "parity.sqlite3")
    for store in (elastic, sqlite):
        assert store.index(list(corpus.values())) == []
        store.refresh()
    return {"elasticsearch": elastic, "sqlite": sqlite}


def _found(search: Any, query: str, names: dict[str, str]) -> str:
    try:
        return ",".join(sorted(names[article.id] for article in search(query)))
    except QueryError as error:
        return f"QueryError: {str(error)[:40]}"


def test_every_query_means_the_same_on_the_engine_sqlite_and_the_matcher(
    stores: dict[str, Any], corpus: dict[str, Article], capsys: pytest.CaptureFixture[str]
) -> None:
    assert len(QUERIES) >= 60
    names = {article.id: name for name, article in corpus.items()}
    analyzed = {name: AnalyzedArticle.of(article) for name, article in corpus.items()}

    def matcher(query: str) -> list[Article]:
        node = parse_query(query)
        return [corpus[name] for name, doc in analyzed.items() if matches(node, doc)]

    rows = []
    for query in QUERIES:
        engine = _found(lambda q: stores["elasticsearch"].search(q, limit=100), query, names)
        sqlite = _found(lambda q: stores["sqlite"].search(q, limit=100), query, names)
        matched = _found(matcher, query, names)
        rows.append((query, engine, sqlite, matched))
    differences = [row for row in rows if not row[1] == row[2] == row[3]]
    with capsys.disabled():
        width = max(len(query) for query in QUERIES)
        print(f"\n{'query':<{width}}  {'same':<4}  engine (OpenSearch) | sqlite | matcher")
        for query, engine, sqlite, matched in rows:
            same = "yes" if engine == sqlite == matched else "NO"
            shown = engine if same == "yes" else f"{engine} | {sqlite} | {matched}"
            print(f"{query:<{width}}  {same:<4}  {shown or '-'}")
        print(f"{len(rows)} queries, {len(rows) - len(differences)} the same everywhere, {len(differences)} different")
    assert differences == []
    # The corpus must tell queries apart: most find some articles but not all of them.
    telling = [row for row in rows if row[1] and "QueryError" not in row[1] and row[1].count(",") < len(corpus) - 1]
    assert len(telling) >= 0.8 * len(rows)
