"""The search and subscription query language: Lucene syntax, as typed in Kibana.

Queries are parsed with luqum into a small tree of our own (`Term`, `Phrase`, `Range`, `And`,
`Or`, `Not`, `MatchAll`) that the SQLite store translates to SQL and the alert matcher
evaluates on an article. Elasticsearch receives the query text itself (`query_string`) with
the same default operator (AND) and default fields (title, text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from luqum import tree
from luqum.exceptions import ParseError
from luqum.parser import parser

from shared.analysis import analyze

TEXT_FIELDS = ("title", "text")
LIST_FIELDS = ("tags", "countries", "people", "organizations")
SCALAR_FIELDS = ("source", "lang", "url", "cluster_id", "duplicate_of", "id")
KEYWORD_FIELDS = LIST_FIELDS + SCALAR_FIELDS
DATE_FIELDS = ("published_at", "ingested_at")
KNOWN_FIELDS = TEXT_FIELDS + KEYWORD_FIELDS + DATE_FIELDS


# Keyword values with one canonical case, so `countries:kp` finds KP in every store. Other
# keyword fields (people, organizations, source, …) compare exactly, as Elasticsearch does.
CANONICAL_CASE = {"countries": str.upper, "tags": str.lower, "lang": str.lower}


def _keyword_value(field: str, value: str) -> str:
    return CANONICAL_CASE.get(field, str)(value)


class QueryError(ValueError):
    """A query that cannot be parsed or names an unknown field; the message says which."""


@dataclass(frozen=True)
class MatchAll:
    pass


@dataclass(frozen=True)
class Empty:
    """A clause with no searchable words (only stop words). As in Elasticsearch, it is left
    out of the query around it, and a query of nothing else matches nothing."""


@dataclass(frozen=True)
class Term:
    """One word (analyzed for text fields), or a keyword value; `prefix` for `word*`."""

    field: str | None
    value: str
    prefix: bool = False


@dataclass(frozen=True)
class Phrase:
    """Analyzed words in order (None where a stop word stood); `slop` > 0 allows that many
    other words in between."""

    field: str | None
    words: tuple[str | None, ...]
    slop: int = 0


@dataclass(frozen=True)
class Range:
    """A date range; bounds are ISO-8601 UTC strings or relative ones (`now`, `now-7d`), None
    for open. Relative bounds are resolved when the range is evaluated (`bounds`), never when
    it is parsed: a subscription compiled today must still mean "the last day" tomorrow."""

    field: str
    low: str | None
    high: str | None
    include_low: bool = True
    include_high: bool = True

    def bounds(self, now: datetime | None = None) -> tuple[str | None, str | None]:
        """Both bounds as ISO-8601 UTC strings, relative ones taken from `now` (default: now)."""
        moment = now or datetime.now(UTC)
        return _resolved(self.low, moment), _resolved(self.high, moment)


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = MatchAll | Empty | Term | Phrase | Range | And | Or | Not


def parse_query(text: str) -> Node:
    """Parse a Lucene-syntax query; raises `QueryError` with a readable message."""
    if not text.strip() or text.strip() == "*":
        return MatchAll()
    try:
        parsed = parser.parse(text)
    except (ParseError, TypeError, ValueError) as error:
        raise QueryError(f"cannot parse query {text!r}: {error}") from None
    node = _convert(parsed, None)
    return Or(()) if isinstance(node, Empty) else node


def _convert(node: tree.Item, field: str | None) -> Node:
    if isinstance(node, tree.SearchField):
        name = node.name
        if name not in KNOWN_FIELDS:
            raise QueryError(f"unknown field {name!r}; fields are: {', '.join(KNOWN_FIELDS)}")
        return _convert(node.expr, name)
    if isinstance(node, (tree.Group, tree.FieldGroup)):
        return _convert(node.expr, field)
    if isinstance(node, tree.Boost):
        return _convert(node.expr, field)  # boosts rank results; they never change a match
    if isinstance(node, (tree.AndOperation, tree.UnknownOperation)):
        return _and([_convert(child, field) for child in node.children])
    if isinstance(node, tree.OrOperation):
        return _or(node.children, field)
    if isinstance(node, (tree.Not, tree.Prohibit)):
        inner = _convert(node.a, field)
        return inner if isinstance(inner, Empty) else Not(inner)
    if isinstance(node, tree.Plus):
        return _convert(node.a, field)
    if isinstance(node, tree.Proximity):
        inner = _convert(node.term, field)
        if isinstance(inner, Phrase):
            return Phrase(inner.field, inner.words, int(node.degree or 0))
        return inner
    if isinstance(node, tree.Fuzzy):
        return _convert(node.term, field)
    if isinstance(node, tree.Phrase):
        return _phrase(field, node.value[1:-1])
    if isinstance(node, tree.Range):
        return _range(field, node)
    if isinstance(node, tree.Word):
        return _word(field, node.value)
    raise QueryError(f"unsupported query element {str(node)!r}")


def _and(items: list[Node]) -> Node:
    items = [item for item in items if not isinstance(item, Empty)]
    if not items:
        return Empty()
    kept = [item for item in items if not isinstance(item, MatchAll)]
    if not kept:
        return MatchAll()
    return kept[0] if len(kept) == 1 else And(tuple(kept))


def _or(children: tuple[tree.Item, ...], field: str | None) -> Node:
    # As in Lucene, a prohibited clause inside OR excludes documents from the whole OR.
    positive: list[Node] = []
    negative: list[Node] = []
    for child in _hoist_prohibited(children):
        if isinstance(child, (tree.Not, tree.Prohibit)):
            inner = _convert(child.a, field)
            if not isinstance(inner, Empty):
                negative.append(Not(inner))
        else:
            converted = _convert(child, field)
            if not isinstance(converted, Empty):
                positive.append(converted)
    if not positive and not negative:
        return Empty()
    if any(isinstance(item, MatchAll) for item in positive):
        either: Node = MatchAll()
    elif not positive:
        either = MatchAll()
    else:
        either = positive[0] if len(positive) == 1 else Or(tuple(positive))
    return _and([either, *negative])


def _hoist_prohibited(children: tuple[tree.Item, ...]) -> list[tree.Item]:
    """`a OR b -c`: luqum groups `b -c` first, but Lucene puts every clause in one boolean
    query, where `-c` excludes documents from the whole OR. Lift such clauses up a level."""
    flat: list[tree.Item] = []
    for child in children:
        if isinstance(child, tree.UnknownOperation):
            prohibited = [c for c in child.children if isinstance(c, (tree.Not, tree.Prohibit))]
            rest = [c for c in child.children if not isinstance(c, (tree.Not, tree.Prohibit))]
            if prohibited and rest:
                flat.append(rest[0] if len(rest) == 1 else tree.UnknownOperation(*rest))
                flat.extend(prohibited)
                continue
        flat.append(child)
    return flat


def _word(field: str | None, raw: str) -> Node:
    value = raw.replace("\\", "")
    if value == "*":
        return _exists(field)
    if field in DATE_FIELDS:
        day = _date_bound(value)
        return Range(field, day, _date_bound(value, end=True))
    prefix = value.endswith("*") and "*" not in value[:-1] and "?" not in value
    if "*" in value[:-1] or "?" in value:
        raise QueryError(f"only trailing wildcards are supported: {raw!r}")
    value = value.rstrip("*")
    if prefix and field not in KEYWORD_FIELDS and not _ONE_WORD.fullmatch(value):
        raise QueryError(f"a wildcard needs a single word before it: {raw!r}")
    if field in KEYWORD_FIELDS:
        return Term(field, _keyword_value(field, value), prefix)
    if prefix:
        return Term(field, value.lower(), True)
    return _analyzed(field, value)


def _exists(field: str | None) -> Node:
    """`field:*`: the field has a value (Lucene's exists query)."""
    if field in KEYWORD_FIELDS:
        return Term(field, "", prefix=True)
    if field in DATE_FIELDS:
        return Range(field, None, None)
    return MatchAll()  # every article has a title and a text field


def _phrase(field: str | None, text: str) -> Node:
    if field in KEYWORD_FIELDS:
        return Term(field, _keyword_value(field, text))
    if field in DATE_FIELDS:
        return _word(field, text)
    return _analyzed(field, text)


def _analyzed(field: str | None, text: str) -> Node:
    words = analyze(text)
    while words and words[0] is None:
        words.pop(0)
    while words and words[-1] is None:
        words.pop()
    if not words:
        return Empty()
    if len(words) == 1:
        return Term(field, words[0])  # type: ignore[arg-type]
    return Phrase(field, tuple(words))


def _range(field: str | None, node: tree.Range) -> Node:
    if field not in DATE_FIELDS:
        raise QueryError(f"ranges are supported on date fields ({', '.join(DATE_FIELDS)}), not {field!r}")
    low = None if node.low.value == "*" else _date_bound(node.low.value)
    high = None if node.high.value == "*" else _date_bound(node.high.value, end=node.include_high)
    return Range(field, low, high, bool(node.include_low), bool(node.include_high))


_ONE_WORD = re.compile(r"[^\W_]+")
_RELATIVE = re.compile(r"^now(?:-(\d+)([dhmw]))?$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _date_bound(value: str, *, end: bool = False) -> str:
    """ISO-8601 UTC string for a date, a date-time, `now` or `now-7d`.

    A bare date as an upper bound means the end of that day, as Elasticsearch rounds it.
    """
    value = value.strip('"')
    if _RELATIVE.match(value):
        return value  # resolved at evaluation (Range.bounds)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise QueryError(f"not a date: {value!r} (use YYYY-MM-DD, an ISO date-time, or now-7d)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if end and len(value) == 10:
        moment += timedelta(days=1) - timedelta(microseconds=1)
    return format_datetime(moment)


def _resolved(bound: str | None, now: datetime) -> str | None:
    relative = _RELATIVE.match(bound) if bound else None
    if relative is None:
        return bound
    moment = now
    if relative.group(1):
        moment -= timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    return format_datetime(moment)


def format_datetime(moment: datetime) -> str:
    """The one sortable text form of a time that stores and ranges compare."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def elasticsearch_query_text(text: str) -> str:
    """The query as Elasticsearch should receive it: keyword values put in their canonical
    case (`countries:kp` → `countries:KP`), everything else as the user typed it."""
    try:
        parsed = parser.parse(text)
    except (ParseError, TypeError, ValueError):
        return text
    _canonicalize(parsed, None)
    return str(parsed)


def _canonicalize(node: tree.Item, field: str | None) -> None:
    if isinstance(node, tree.SearchField):
        field = node.name
    if field in CANONICAL_CASE and isinstance(node, (tree.Word, tree.Phrase)):
        node.value = _keyword_value(field, node.value)
    for child in node.children:
        _canonicalize(child, field)
