"""parse_query: Lucene query text → the small tree that the SQLite store and the matcher evaluate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.alerting.matcher import AnalyzedArticle, matches
from shared.query import (
    And,
    Exists,
    Fuzzy,
    MatchAll,
    Not,
    Or,
    Phrase,
    QueryError,
    Range,
    Term,
    Wildcard,
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
        pytest.param("missle~1", Fuzzy(None, "missle", 1), id="fuzzy-with-edits"),
        pytest.param("Missle~", Fuzzy(None, "missle", 2), id="fuzzy-auto-six-letters-two-edits"),
        pytest.param("mislle~", Fuzzy(None, "mislle", 2), id="fuzzy-auto-lower-cased-not-stemmed"),
        pytest.param("test~", Fuzzy(None, "test", 1), id="fuzzy-auto-four-letters-one-edit"),
        pytest.param("un~", Fuzzy(None, "un", 0), id="fuzzy-auto-two-letters-exact"),
        pytest.param("missle~5", Fuzzy(None, "missle", 2), id="fuzzy-at-most-two-edits"),
        pytest.param("mi*ile", Wildcard(None, "mi*ile"), id="inner-star"),
        pytest.param("Mi?sile", Wildcard(None, "mi?sile"), id="question-mark-lower-cased"),
        pytest.param("*ssil", Wildcard(None, "*ssil"), id="leading-star"),
        pytest.param("countries:k?", Wildcard("countries", "K?"), id="keyword-wildcard-canonical-case"),
        pytest.param(r"missile\*", MISSILE, id="escaped-star-is-literal-and-analyzed-away"),
        pytest.param("_exists_:tags", Exists("tags"), id="exists"),
        pytest.param(
            "missile AND test OR sanctions",
            Or((And((MISSILE, Term(None, "test"))), Term(None, "sanction"))),
            id="and-binds-tighter-than-or",
        ),
        pytest.param(
            "sanctions OR missile AND test",
            Or((Term(None, "sanction"), And((MISSILE, Term(None, "test"))))),
            id="and-binds-tighter-than-or-on-the-right",
        ),
        pytest.param(
            "missile test OR rocket",
            And((MISSILE, Or((Term(None, "test"), ROCKET)))),
            id="words-side-by-side-bind-loosest",
        ),
        pytest.param(
            "missile OR test rocket",
            And((Or((MISSILE, Term(None, "test"))), ROCKET)),
            id="words-side-by-side-bind-loosest-on-the-right",
        ),
        pytest.param("tags:Missile-Test", Term("tags", "missile-test"), id="tag-lower-cased-not-stemmed"),
        pytest.param("countries:kp", Term("countries", "KP"), id="country-code-upper-cased"),
        pytest.param("countries:KP", Term("countries", "KP"), id="country-code-already-canonical"),
        pytest.param("lang:EN", Term("lang", "en"), id="language-lower-cased"),
        pytest.param('people:"Kim Jong Un"', Term("people", "Kim Jong Un"), id="quoted-keyword-is-one-exact-value"),
        pytest.param('source:"Korea Herald"', Term("source", "Korea Herald"), id="source-compared-exactly"),
        pytest.param("organizations:IAEA", Term("organizations", "IAEA"), id="organization-not-stemmed"),
        pytest.param("tags:missile*", Term("tags", "missile", prefix=True), id="keyword-prefix"),
        pytest.param("tags:*", Exists("tags"), id="keyword-field-exists"),
        pytest.param("published_at:*", Exists("published_at"), id="date-field-exists"),
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
                "2024-01-01T23:59:59.999999Z",  # after the whole first day, as Elasticsearch rounds
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
        pytest.param(
            "published_at:>=2024-03-01",
            Range("published_at", "2024-03-01T00:00:00.000000Z", None),
            id="at-least",
        ),
        pytest.param(
            "published_at:>2024-03-01",
            Range("published_at", "2024-03-01T23:59:59.999999Z", None, include_low=False),
            id="after-a-day-means-after-its-end",
        ),
        pytest.param(
            "published_at:<=2024-03",
            Range("published_at", None, "2024-03-31T23:59:59.999999Z"),
            id="at-most-a-month-includes-all-of-it",
        ),
        pytest.param(
            "published_at:<2024",
            Range("published_at", None, "2024-01-01T00:00:00.000000Z", include_high=False),
            id="before-a-year",
        ),
        pytest.param(
            "published_at:[2024-01-31||+1M/M TO *]",
            Range("published_at", "2024-02-01T00:00:00.000000Z", None),
            id="date-math-on-a-date",
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
    ("query", "now", "expected"),
    [
        ("published_at:[now-7d/d TO now]", "2026-03-04T15:30:00", ("2026-02-25T00:00:00", "2026-03-04T15:30:00")),
        ("published_at:[now-1d/d TO now/d}", "2026-03-04T15:30:00", ("2026-03-03T00:00:00", "2026-03-04T00:00:00")),
        ("published_at:now-1d/d", "2026-03-04T15:30:00", ("2026-03-03T00:00:00", "2026-03-03T23:59:59.999999")),
        ("published_at:{now/w TO *]", "2026-03-04T15:30:00", ("2026-03-08T23:59:59.999999", None)),  # Monday weeks
        ("published_at:>=now-1M/M", "2026-03-31T15:30:00", ("2026-02-01T00:00:00", None)),
        ("published_at:<=now-1y/y", "2026-03-04T15:30:00", (None, "2025-12-31T23:59:59.999999")),
        ("published_at:[now-90m TO now-1h]", "2026-03-04T15:30:00", ("2026-03-04T14:00:00", "2026-03-04T14:30:00")),
        ("published_at:[now-30s/m TO now+1d]", "2026-03-04T15:30:10", ("2026-03-04T15:29:00", "2026-03-05T15:30:10")),
    ],
)
def test_date_math_rounds_as_elasticsearch_does(query: str, now: str, expected: tuple[str | None, str | None]) -> None:
    node = parse_query(query)
    assert isinstance(node, Range)
    moment = datetime.fromisoformat(now).replace(tzinfo=UTC)
    got = tuple(None if bound is None else datetime.fromisoformat(bound.rstrip("Z")) for bound in node.bounds(moment))
    assert got == tuple(None if bound is None else datetime.fromisoformat(bound) for bound in expected)


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
        pytest.param("published_at:2024-01-*", "not a date", id="date-wildcard"),
        pytest.param("published_at:[now-1q TO now]", "not date math", id="unknown-date-unit"),
        pytest.param("published_at:2024-02-30", "not a date", id="impossible-date"),
        pytest.param("_exists_:headline", "unknown field 'headline' in _exists_", id="exists-unknown-field"),
        pytest.param("/missile/", "regular expressions are not supported", id="regex"),
        pytest.param("published_at:yesterday", "not a date: 'yesterday'", id="word-on-date-field"),
        pytest.param("published_at:[2024-01-01 TO soon]", "not a date", id="bad-range-bound"),
        pytest.param("(missile", "cannot parse query '(missile'", id="unbalanced-parenthesis"),
        pytest.param('"missile test', "cannot parse query", id="unbalanced-quote"),
        pytest.param("AND", "cannot parse query", id="bare-operator"),
        pytest.param("missile OR", "cannot parse query", id="dangling-operator"),
        pytest.param("a~1.1.1", "a fuzzy degree or boost is not a number", id="fuzzy-degree-not-a-number"),
        pytest.param("a^1.1.1", "a fuzzy degree or boost is not a number", id="boost-not-a-number"),
        pytest.param("(" * 1000 + "a" + ")" * 1000, "nested too deeply", id="thousand-parentheses"),
        pytest.param("(" * 33 + "a" + ")" * 33, "deeper than 32 levels", id="parentheses-past-the-limit"),
        pytest.param(
            "(missile test OR " * 20 + "launch" + ")" * 20, "levels of AND, OR and NOT", id="operators-past-the-limit"
        ),
        pytest.param(" OR ".join(f"w{n}" for n in range(1000)), "1000 terms (at most 256)", id="thousand-terms"),
        pytest.param(" ".join(f"w{n}" for n in range(257)), "257 terms (at most 256)", id="terms-past-the-limit"),
        pytest.param('"' + " ".join(f"w{n}" for n in range(300)) + '"', "300 terms", id="phrase-past-the-limit"),
        pytest.param("published_at:>now-100000y", "date math out of range", id="date-math-before-year-1"),
        pytest.param("published_at:<now+100000y", "date math out of range", id="date-math-after-9999"),
        pytest.param('published_at:>"0001-01-01T00:00:00+05:00"', "out of range in UTC", id="year-1-east-of-utc"),
        pytest.param("published_at:[9999-12-31||+1d TO *]", "date math out of range", id="past-year-9999"),
    ],
)
def test_bad_queries_raise_query_error_saying_why(query: str, message: str) -> None:
    with pytest.raises(QueryError) as raised:
        parse_query(query)
    assert message in str(raised.value)


def test_query_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_query("nosuchfield:x")


def test_queries_at_the_limits_are_parsed_and_run_on_sqlite(tmp_path) -> None:
    from shared.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "store.sqlite3")
    store.index([make_article("Missile test", "A missile was fired.", url="https://example.org/1")])
    widest = " OR ".join(["missile", *(f"title:w{n}*" for n in range(255))])
    deepest = "(" * 31 + "missile" + ")" * 31
    for query in (widest, deepest, "published_at:[0001-01-01 TO 9999-12-31]"):
        parse_query(query)
        store.search(query)
    assert store.count(widest) == 1 == store.count(deepest)


def test_limits_come_from_the_settings(settings, monkeypatch) -> None:
    from shared.settings import get_settings

    monkeypatch.setenv("WIREWATCH_QUERY_MAX_TERMS", "3")
    monkeypatch.setenv("WIREWATCH_QUERY_MAX_DEPTH", "2")
    get_settings.cache_clear()
    parse_query("x OR y OR z")
    with pytest.raises(QueryError, match="4 terms"):
        parse_query("w OR x OR y OR z")
    with pytest.raises(QueryError, match="deeper than 2"):
        parse_query("(((missile)))")


def test_a_year_1_date_is_written_in_the_sortable_form() -> None:
    (low, high) = parse_query("published_at:[0001-01-01 TO 0999-12-31]").bounds()  # type: ignore[union-attr]
    assert (low, high) == ("0001-01-01T00:00:00.000000Z", "0999-12-31T23:59:59.999999Z")
