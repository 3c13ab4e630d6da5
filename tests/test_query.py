"""parse_query: Lucene query text → the small tree that the SQLite store and the matcher evaluate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.alerting.matcher import AnalyzedArticle, matches
from shared.query import (
    And,
    MatchAll,
    Not,
    Or,
    Phrase,
    QueryError,
    Range,
    Term,
    elasticsearch_query_text,
    parse_query,
)
from tests.factories import make_article

MISSILE = Term(None, "missil")  # text words are analyzed: lower case, Porter stem
ROCKET = Term(None, "rocket")
SPORT = Term(None, "sport")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("", MatchAll(), id="empty-matches-all"),
        pytest.param("*", MatchAll(), id="star-matches-all"),
        pytest.param("missile", MISSILE, id="one-word-stemmed"),
        pytest.param("MISSILES", MISSILE, id="word-lower-cased-and-stemmed"),
        pytest.param("missile rocket", And((MISSILE, ROCKET)), id="implicit-and"),
        pytest.param("missile AND rocket", And((MISSILE, ROCKET)), id="explicit-and"),
        pytest.param("missile OR rocket", Or((MISSILE, ROCKET)), id="or"),
        pytest.param("-sport", Not(SPORT), id="minus-prohibits"),
        pytest.param("NOT sport", Not(SPORT), id="not-prohibits"),
        pytest.param("missile -sport", And((MISSILE, Not(SPORT))), id="term-minus-term"),
        pytest.param("missile AND NOT sport", And((MISSILE, Not(SPORT))), id="and-not"),
        pytest.param("+missile", MISSILE, id="plus-is-required"),
        pytest.param(
            "missile OR -sport",
            And((MISSILE, Not(SPORT))),
            id="prohibited-clause-in-or-excludes-from-whole-or",
        ),
        pytest.param(
            "missile OR rocket OR -sport",
            And((Or((MISSILE, ROCKET)), Not(SPORT))),
            id="prohibited-clause-in-longer-or",
        ),
        pytest.param(
            "(missile OR rocket) -sport",
            And((Or((MISSILE, ROCKET)), Not(SPORT))),
            id="grouped-or-minus-term",
        ),
        pytest.param(
            "missile -(sport OR football)",
            And((MISSILE, Not(Or((SPORT, Term(None, "footbal")))))),
            id="prohibited-group",
        ),
        pytest.param(
            "title:(missile OR rocket)",
            Or((Term("title", "missil"), Term("title", "rocket"))),
            id="field-group-distributes-the-field",
        ),
        pytest.param(
            "title:(missile rocket)",
            And((Term("title", "missil"), Term("title", "rocket"))),
            id="field-group-implicit-and",
        ),
        pytest.param(
            "title:missile text:launch",
            And((Term("title", "missil"), Term("text", "launch"))),
            id="two-fields",
        ),
        pytest.param('"missile test"', Phrase(None, ("missil", "test")), id="phrase"),
        pytest.param('"missile test"~3', Phrase(None, ("missil", "test"), slop=3), id="proximity"),
        pytest.param(
            '"launched an ICBM"',
            Phrase(None, ("launch", None, "icbm")),
            id="phrase-keeps-stop-word-gap",
        ),
        pytest.param('title:"Kim\'s missile"', Phrase("title", ("kim", "missil")), id="phrase-possessive-dropped"),
        pytest.param("missil*", Term(None, "missil", prefix=True), id="prefix"),
        pytest.param("Missil*", Term(None, "missil", prefix=True), id="prefix-lower-cased-not-stemmed"),
        pytest.param("title:missile*", Term("title", "missile", prefix=True), id="prefix-on-field"),
        pytest.param("missile^2", MISSILE, id="boost-ignored"),
        pytest.param("missile~1", MISSILE, id="fuzzy-treated-as-word"),
        pytest.param("tags:Missile-Test", Term("tags", "missile-test"), id="tag-lower-cased-not-stemmed"),
        pytest.param("countries:kp", Term("countries", "KP"), id="country-code-upper-cased"),
        pytest.param("countries:KP", Term("countries", "KP"), id="country-code-already-canonical"),
        pytest.param("lang:EN", Term("lang", "en"), id="language-lower-cased"),
        pytest.param('people:"Kim Jong Un"', Term("people", "Kim Jong Un"), id="quoted-keyword-is-one-exact-value"),
        pytest.param('source:"Korea Herald"', Term("source", "Korea Herald"), id="source-compared-exactly"),
        pytest.param("organizations:IAEA", Term("organizations", "IAEA"), id="organization-not-stemmed"),
        pytest.param("tags:missile*", Term("tags", "missile", prefix=True), id="keyword-prefix"),
        pytest.param("tags:*", Term("tags", "", prefix=True), id="keyword-field-exists"),
        pytest.param("published_at:*", Range("published_at", None, None), id="date-field-exists"),
        pytest.param("title:*", MatchAll(), id="text-field-exists-everywhere"),
        pytest.param(
            "published_at:[2024-01-01 TO 2024-01-31]",
            Range("published_at", "2024-01-01T00:00:00.000000Z", "2024-01-31T23:59:59.999999Z"),
            id="inclusive-date-range-ends-at-end-of-day",
        ),
        pytest.param(
            "published_at:{2024-01-01 TO 2024-02-01}",
            Range(
                "published_at",
                "2024-01-01T00:00:00.000000Z",
                "2024-02-01T00:00:00.000000Z",
                include_low=False,
                include_high=False,
            ),
            id="exclusive-date-range",
        ),
        pytest.param(
            "published_at:[2024-03-01 TO *]",
            Range("published_at", "2024-03-01T00:00:00.000000Z", None),
            id="open-ended-range",
        ),
        pytest.param(
            "ingested_at:[* TO 2024-03-01]",
            Range("ingested_at", None, "2024-03-01T23:59:59.999999Z"),
            id="open-started-range",
        ),
        pytest.param(
            'published_at:["2024-03-01T10:00:00+02:00" TO *]',
            Range("published_at", "2024-03-01T08:00:00.000000Z", None),
            id="range-bound-with-offset-in-utc",
        ),
        pytest.param(
            "published_at:2024-05-01",
            Range("published_at", "2024-05-01T00:00:00.000000Z", "2024-05-01T23:59:59.999999Z"),
            id="bare-date-is-the-whole-day",
        ),
        pytest.param(
            'published_at:"2024-05-01"',
            Range("published_at", "2024-05-01T00:00:00.000000Z", "2024-05-01T23:59:59.999999Z"),
            id="quoted-date-is-the-whole-day",
        ),
        pytest.param(
            "missile AND published_at:[2024-01-01 TO *]",
            And((MISSILE, Range("published_at", "2024-01-01T00:00:00.000000Z", None))),
            id="words-and-range",
        ),
        pytest.param("the", Or(()), id="only-stop-words-match-nothing"),
        pytest.param("the missile", MISSILE, id="stop-word-left-out-of-and"),
    ],
)
def test_parse_query(query: str, expected: object) -> None:
    assert parse_query(query) == expected


def test_prohibited_clause_after_an_or_excludes_from_the_whole_query() -> None:
    assert parse_query("missile OR rocket -sport") == And((Or((MISSILE, ROCKET)), Not(SPORT)))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("countries:kp AND missile", "countries:KP AND missile"),
        ("tags:Nuclear OR lang:FR", "tags:nuclear OR lang:fr"),
        ('people:"Kim Jong Un" Missile', 'people:"Kim Jong Un" Missile'),
        ("(missile", "(missile"),
    ],
)
def test_elasticsearch_query_text_puts_keyword_values_in_canonical_case(query: str, expected: str) -> None:
    assert elasticsearch_query_text(query) == expected


def test_a_relative_range_is_resolved_when_evaluated_not_when_parsed() -> None:
    node = parse_query("ingested_at:[now-7d TO now]")
    assert isinstance(node, Range) and node.field == "ingested_at"
    monday, tuesday = datetime(2026, 3, 2, 9, tzinfo=UTC), datetime(2026, 3, 3, 9, tzinfo=UTC)
    assert node.bounds(monday) == ("2026-02-23T09:00:00.000000Z", "2026-03-02T09:00:00.000000Z")
    assert node.bounds(tuesday) == ("2026-02-24T09:00:00.000000Z", "2026-03-03T09:00:00.000000Z")


def test_a_compiled_relative_range_keeps_matching_new_articles() -> None:
    node = parse_query("missile AND published_at:[now-1d TO now]")  # compiled once, as a subscription is
    fresh = make_article("Missile launched", published_at=datetime.now(UTC) - timedelta(hours=1))
    old = make_article("Missile launched", published_at=datetime.now(UTC) - timedelta(days=2))
    assert matches(node, AnalyzedArticle.of(fresh)) and not matches(node, AnalyzedArticle.of(old))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param("headline:missile", "unknown field 'headline'", id="unknown-field"),
        pytest.param("headline:missile", "fields are: title, text", id="unknown-field-lists-fields"),
        pytest.param("title:(missile OR body:rocket)", "unknown field 'body'", id="unknown-field-nested"),
        pytest.param("title:[a TO m]", "ranges are supported on date fields", id="range-on-text-field"),
        pytest.param("tags:[a TO m]", "not 'tags'", id="range-on-keyword-field"),
        pytest.param("[2024-01-01 TO 2024-02-01]", "ranges are supported on date fields", id="range-without-field"),
        pytest.param("mi*ile", "only trailing wildcards", id="inner-star"),
        pytest.param("mi?sile", "only trailing wildcards", id="question-mark"),
        pytest.param("*ssile", "only trailing wildcards", id="leading-star"),
        pytest.param("published_at:yesterday", "not a date: 'yesterday'", id="word-on-date-field"),
        pytest.param("published_at:[2024-01-01 TO soon]", "not a date", id="bad-range-bound"),
        pytest.param("(missile", "cannot parse query '(missile'", id="unbalanced-parenthesis"),
        pytest.param('"missile test', "cannot parse query", id="unbalanced-quote"),
        pytest.param("AND", "cannot parse query", id="bare-operator"),
        pytest.param("missile OR", "cannot parse query", id="dangling-operator"),
    ],
)
def test_bad_queries_raise_query_error_saying_why(query: str, message: str) -> None:
    with pytest.raises(QueryError) as raised:
        parse_query(query)
    assert message in str(raised.value)


def test_query_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_query("nosuchfield:x")
