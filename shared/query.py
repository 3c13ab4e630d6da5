"""The search and subscription query language: Lucene syntax, as typed in Kibana.

Queries are parsed with luqum into a small tree of our own (`Term`, `Phrase`, `Wildcard`,
`Fuzzy`, `Exists`, `Range`, `And`, `Or`, `Not`, `MatchAll`). That tree is the one meaning of a
query: the Elasticsearch store builds its query DSL from it, the SQLite store translates it to
SQL and the alert matcher evaluates it on an article.

Precedence (README, "Queries"): `NOT`/`-` binds tightest, then `AND`, then `OR`, as in Kibana's
KQL; words side by side with no operator must all match and bind loosest, as in a web search
(`missile test OR launch` is `missile AND (test OR launch)`). A prohibited clause among
alternatives excludes from all of them, as in Lucene (`missile OR rocket -sport`).
"""

from __future__ import annotations

import calendar
import dataclasses
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from dateutil.relativedelta import relativedelta
from luqum import tree
from luqum.exceptions import ParseError
from luqum.parser import parser

from shared.analysis import analyze, lower

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
    """A query that cannot be parsed, names an unknown field, or that the search engine
    refuses; the message says which."""


@dataclass(frozen=True)
class MatchAll:
    pass


@dataclass(frozen=True)
class Empty:
    """A clause with no searchable words (only stop words). As in Elasticsearch, it is left
    out of the query around it, and a query of nothing else matches nothing."""


@dataclass(frozen=True)
class Term:
    """One word (analyzed for text fields), or a keyword value; `prefix` for `word*`.

    `text` is the word as typed, for Elasticsearch to analyze itself; equality ignores it."""

    field: str | None
    value: str
    prefix: bool = False
    text: str = dataclasses.field(default="", compare=False)


@dataclass(frozen=True)
class Phrase:
    """Analyzed words in order (None where a stop word stood); `slop` allows that many moves
    of words, as Lucene counts them (two swap a pair). `text` is the phrase as typed."""

    field: str | None
    words: tuple[str | None, ...]
    slop: int = 0
    text: str = dataclasses.field(default="", compare=False)


@dataclass(frozen=True)
class Wildcard:
    """A pattern with `*` (any characters) and `?` (one) over the indexed terms of a field:
    the stemmed tokens of a text field, or keyword values. Not analyzed, only lower-cased."""

    field: str | None
    pattern: str


@dataclass(frozen=True)
class Fuzzy:
    """A term within `edits` insertions, deletions, substitutions or transpositions of an
    indexed term (`word~`: 0 below 3 characters, 1 below 6, else 2, as Elasticsearch's AUTO)."""

    field: str | None
    value: str
    edits: int


@dataclass(frozen=True)
class Exists:
    """The keyword or date field has a value (`_exists_:field`, `field:*`)."""

    field: str


@dataclass(frozen=True)
class Range:
    """A date range; bounds are ISO-8601 UTC strings, or date math on `now` (`now-7d/d`) that
    is resolved when the range is evaluated (`bounds`), never when it is parsed: a subscription
    compiled today must still mean "the last day" tomorrow. None is an open bound."""

    field: str
    low: str | None
    high: str | None
    include_low: bool = True
    include_high: bool = True

    def bounds(self, now: datetime | None = None) -> tuple[str | None, str | None]:
        """Both bounds as ISO-8601 UTC strings, relative ones taken from `now` (default: now).

        Rounding (`/d`) goes as Elasticsearch's: down for `>=` and `<`, up to the last instant
        of the unit for `>` and `<=`."""
        moment = now or datetime.now(UTC)
        low = _resolved(self.low, moment, up=not self.include_low)
        return low, _resolved(self.high, moment, up=self.include_high)


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = MatchAll | Empty | Term | Phrase | Wildcard | Fuzzy | Exists | Range | And | Or | Not

MAX_QUERY_CHARS = 10_000
"""Longer queries are refused rather than handed to a parser that recurses on them."""


@dataclass(frozen=True)
class QueryLimits:
    """How large a query may be: `max_terms` words, phrases, wildcards, fuzzy words, ranges and
    `_exists_` clauses, nested `max_depth` levels of AND, OR, NOT and parentheses. Every store
    and the matcher run what passes; a query past them is refused before it costs anything."""

    max_terms: int = 256
    max_depth: int = 32


def query_limits() -> QueryLimits:
    """The limits set by `WIREWATCH_QUERY_MAX_TERMS` and `WIREWATCH_QUERY_MAX_DEPTH`."""
    from shared.settings import get_settings  # the settings are read when a query is, not on import

    settings = get_settings()
    return QueryLimits(settings.query_max_terms, settings.query_max_depth)


def parse_query(text: str, limits: QueryLimits | None = None) -> Node:
    """Parse a Lucene-syntax query; raises `QueryError` with a readable message, also for a
    query past `limits` (by default `query_limits()`)."""
    return _parse_within(text, limits or query_limits())


@lru_cache(maxsize=4096)
def _parse_within(text: str, limits: QueryLimits) -> Node:
    # The tree is immutable, so a query read again (a subscription is validated, then compiled)
    # is parsed once.
    if not text.strip() or text.strip() == "*":
        return MatchAll()
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"query too long: {len(text)} characters (at most {MAX_QUERY_CHARS})")
    # Counted on the text first: the parser and the tree walks below recurse once per level.
    if _parenthesis_depth(text) > limits.max_depth:
        raise QueryError(f"query nested too deeply: parentheses deeper than {limits.max_depth} levels")
    try:
        parsed = parser.parse(text)
        node = _convert(parsed, None)
        depth, terms = _size(node)
    except (ParseError, TypeError, ValueError, ArithmeticError) as error:
        if isinstance(error, QueryError):
            raise
        reason = "a fuzzy degree or boost is not a number" if isinstance(error, ArithmeticError) else error
        raise QueryError(f"cannot parse query {text[:200]!r}: {reason}") from None
    except RecursionError:
        raise QueryError(f"query nested too deeply: {text[:80]!r}…") from None
    if depth > limits.max_depth:
        raise QueryError(f"query nested too deeply: {depth} levels of AND, OR and NOT (at most {limits.max_depth})")
    if terms > limits.max_terms:
        raise QueryError(f"query too large: {terms} terms (at most {limits.max_terms})")
    return Or(()) if isinstance(node, Empty) else node


def _parenthesis_depth(text: str) -> int:
    deepest = depth = 0
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif not quoted and char == ")":
            depth = max(depth - 1, 0)
    return deepest


def _size(node: Node) -> tuple[int, int]:
    """(depth, terms) of a query tree; a phrase counts its words."""
    if isinstance(node, (And, Or)):
        sizes = [_size(item) for item in node.items]
        return 1 + max((depth for depth, _ in sizes), default=0), sum(terms for _, terms in sizes)
    if isinstance(node, Not):
        depth, terms = _size(node.item)
        return depth + 1, terms
    if isinstance(node, (MatchAll, Empty)):
        return 1, 0
    if isinstance(node, Phrase):
        return 1, max(1, len(node.words))
    return 1, 1


_OPERATIONS = (tree.AndOperation, tree.OrOperation, tree.UnknownOperation)
_NEGATIONS = (tree.Not, tree.Prohibit)


def _convert(node: tree.Item, field: str | None) -> Node:
    if isinstance(node, tree.SearchField):
        name = node.name
        if name == "_exists_":
            return _exists_field(node.expr)
        if name not in KNOWN_FIELDS:
            raise QueryError(f"unknown field {name!r}; fields are: {', '.join(KNOWN_FIELDS)}")
        return _convert(node.expr, name)
    if isinstance(node, (tree.Group, tree.FieldGroup)):
        return _convert(node.expr, field)
    if isinstance(node, tree.Boost):
        return _convert(node.expr, field)  # boosts rank results; they never change a match
    if isinstance(node, _OPERATIONS):
        return _operation(node, field)
    if isinstance(node, _NEGATIONS):
        inner = _convert(node.a, field)
        return inner if isinstance(inner, Empty) else Not(inner)
    if isinstance(node, tree.Plus):
        return _convert(node.a, field)
    if isinstance(node, tree.Proximity):
        inner = _convert(node.term, field)
        if isinstance(inner, Phrase):
            return Phrase(inner.field, inner.words, int(node.degree or 0), inner.text)
        return inner
    if isinstance(node, tree.Fuzzy):
        return _fuzzy(field, node)
    if isinstance(node, tree.Phrase):
        return _phrase(field, node.value[1:-1])
    if isinstance(node, tree.Range):
        return _range(field, node.low.value, node.high.value, bool(node.include_low), bool(node.include_high))
    if isinstance(node, tree.From):
        return _range(field, node.a.value, "*", bool(node.include), True)
    if isinstance(node, tree.To):
        return _range(field, "*", node.a.value, True, bool(node.include))
    if isinstance(node, tree.Word):
        return _word(field, node.value)
    if isinstance(node, tree.Regex):
        raise QueryError(f"regular expressions are not supported: {str(node)!r} (escape a / as \\/)")
    raise QueryError(f"unsupported query element {str(node)!r}")


def _operation(node: tree.Item, field: str | None) -> Node:
    """Re-read a run of boolean operators with our precedence, whatever luqum grouped: the
    operands and operators in the order typed, split on juxtaposition, then OR, then AND."""
    sequence = _flatten(node)
    groups: list[list[tree.Item | str]] = [[]]
    for item in sequence:
        if item == " ":
            groups.append([])
        else:
            groups[-1].append(item)
    return _and([_alternatives(group, field) for group in groups])


def _flatten(node: tree.Item) -> list[tree.Item | str]:
    if not isinstance(node, _OPERATIONS):
        return [node]
    operator = {tree.AndOperation: "AND", tree.OrOperation: "OR"}.get(type(node), " ")
    flat: list[tree.Item | str] = []
    for position, child in enumerate(node.children):
        if position:
            flat.append(operator)
        flat.extend(_flatten(child))
    return flat


def _alternatives(sequence: list[tree.Item | str], field: str | None) -> Node:
    """`a AND b OR c`: OR of AND-ed operands. As in Lucene, a prohibited alternative
    (`a OR -b`) excludes documents from the whole OR."""
    branches: list[list[tree.Item]] = [[]]
    for item in sequence:
        if item == "OR":
            branches.append([])
        elif item != "AND":
            branches[-1].append(item)  # type: ignore[arg-type]
    positive: list[Node] = []
    negative: list[Node] = []
    for branch in branches:
        if len(branch) == 1 and isinstance(branch[0], _NEGATIONS):
            inner = _convert(branch[0].a, field)
            if not isinstance(inner, Empty):
                negative.append(Not(inner))
            continue
        converted = _and([_convert(child, field) for child in branch])
        if not isinstance(converted, Empty):
            positive.append(converted)
    if not positive and not negative:
        return Empty()
    if not positive or any(isinstance(item, MatchAll) for item in positive):
        either: Node = MatchAll()
    else:
        either = positive[0] if len(positive) == 1 else Or(tuple(positive))
    return _and([either, *negative])


def _and(items: list[Node]) -> Node:
    items = [item for item in items if not isinstance(item, Empty)]
    if not items:
        return Empty()
    kept = [item for item in items if not isinstance(item, MatchAll)]
    if not kept:
        return MatchAll()
    return kept[0] if len(kept) == 1 else And(tuple(kept))


_ESCAPED = re.compile(r"\\(.)")
_UNESCAPED_WILDCARD = re.compile(r"(?<!\\)(?:\\\\)*[*?]")


def _unescape(raw: str) -> str:
    return _ESCAPED.sub(r"\1", raw)


def _word(field: str | None, raw: str) -> Node:
    value = _unescape(raw)
    if raw == "*":
        return _exists(field)
    if field in DATE_FIELDS:
        return _range(field, value, value, True, True)
    if _UNESCAPED_WILDCARD.search(raw):
        return _wildcard(field, raw)
    if field in KEYWORD_FIELDS:
        return Term(field, _keyword_value(field, value), text=value)
    return _analyzed(field, value)


def _wildcard(field: str | None, raw: str) -> Node:
    """`missil*` stays a prefix (cheap everywhere); `*ssile`, `mi?sile`, `m*le` are patterns.
    Wildcard characters escaped with a backslash are literal."""
    if field in DATE_FIELDS:
        raise QueryError(f"wildcards cannot be used on the date field {field!r}: {raw!r}")
    pieces = re.split(r"(\\.|[*?])", raw)
    pattern = "".join(piece if piece in ("*", "?") else _unescape(piece) for piece in pieces)
    literal = "".join(_unescape(piece) for piece in pieces if piece not in ("*", "?"))
    if "*" in literal or "?" in literal:
        raise QueryError(f"escaped wildcard characters cannot be mixed with wildcards: {raw!r}")
    pattern = _keyword_value(field, pattern) if field in KEYWORD_FIELDS else lower(pattern)
    head = pattern.rstrip("*")
    if pattern.endswith("*") and "*" not in head and "?" not in head:
        return Term(field, head, prefix=True, text=head)
    return Wildcard(field, pattern)


def _fuzzy(field: str | None, node: tree.Fuzzy) -> Node:
    if not isinstance(node.term, tree.Word):
        raise QueryError(f"fuzzy ~ applies to one word: {str(node)!r}")
    if field in DATE_FIELDS:
        raise QueryError(f"fuzzy ~ cannot be used on the date field {field!r}")
    value = _unescape(node.term.value)
    value = _keyword_value(field, value) if field in KEYWORD_FIELDS else lower(value)
    degree = node.degree
    if degree == degree.to_integral_value() and degree >= 1:
        edits = min(int(degree), 2)  # Lucene's automata reach two edits at most
    else:
        edits = 0 if len(value) < 3 else 1 if len(value) < 6 else 2  # AUTO
    return Fuzzy(field, value, edits)


def _exists_field(expr: tree.Item) -> Node:
    name = _unescape(str(expr)).strip()
    if name not in KNOWN_FIELDS:
        raise QueryError(f"unknown field {name!r} in _exists_; fields are: {', '.join(KNOWN_FIELDS)}")
    return _exists(name)


def _exists(field: str | None) -> Node:
    """`field:*`: the field has a value (Lucene's exists query)."""
    if field in KEYWORD_FIELDS or field in DATE_FIELDS:
        return Exists(field)
    return MatchAll()  # every article has a title and a text field


def _phrase(field: str | None, text: str) -> Node:
    text = _unescape(text)
    if field in KEYWORD_FIELDS:
        return Term(field, _keyword_value(field, text), text=text)
    if field in DATE_FIELDS:
        return _range(field, text, text, True, True)
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
        return Term(field, words[0], text=text)  # type: ignore[arg-type]
    return Phrase(field, tuple(words), text=text)


def _range(field: str | None, low: str, high: str, include_low: bool, include_high: bool) -> Node:
    if field not in DATE_FIELDS:
        raise QueryError(f"ranges are supported on date fields ({', '.join(DATE_FIELDS)}), not {field!r}")
    low_bound = None if low == "*" else _date_bound(low, up=not include_low)
    high_bound = None if high == "*" else _date_bound(high, up=include_high)
    return Range(field, low_bound, high_bound, include_low, include_high)


# Date math as Elasticsearch reads it: an anchor (`now`, or a date followed by `||`), then
# additions (`+1d`, `-7d`) and roundings (`/d`), applied left to right.
_MATH_STEP = re.compile(r"([+-])(\d+)([yMwdhHms])|/([yMwdhHms])")
_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?)?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?"
)
_ADD = {
    "y": "years",
    "M": "months",
    "w": "weeks",
    "d": "days",
    "h": "hours",
    "H": "hours",
    "m": "minutes",
    "s": "seconds",
}
_TICK = timedelta(microseconds=1)


def _date_bound(value: str, *, up: bool) -> str:
    """An absolute bound as ISO-8601 UTC, rounded now; date math on `now` kept as typed.

    A date missing its later parts (`2024-01-31`) is rounded as Elasticsearch rounds it: to its
    first instant, or, for `>` and `<=` (`up`), to its last."""
    value = _unescape(value.strip('"')).strip()
    anchor, _, math = value.partition("||") if "||" in value else (value, "", "")
    if anchor.startswith("now"):
        math, anchor = anchor[3:], "now"
    if "||" not in value and anchor != "now" and _DATE.fullmatch(anchor) is None:
        raise QueryError(f"not a date: {value!r} (use YYYY-MM-DD, an ISO date-time, now-7d or now-1d/d)")
    if _math_steps(math, value) is None:
        raise QueryError(f"not date math: {value!r} (units are y M w d h m s, as in now-7d/d)")
    if anchor == "now":
        _resolved("now" + math, datetime.now(UTC), up=up)  # refused now if it can never be a date
        return "now" + math  # resolved at evaluation (Range.bounds)
    moment = _parse_date(anchor, up=up and not math, whole=value)
    return format_datetime(_apply_math(moment, math, up=up, whole=value))


def _math_steps(math: str, whole: str) -> list[re.Match[str]] | None:
    steps = list(_MATH_STEP.finditer(math))
    if "".join(step.group(0) for step in steps) != math:
        return None
    return steps


def _parse_date(text: str, *, up: bool, whole: str) -> datetime:
    match = _DATE.fullmatch(text)
    if match is None:
        raise QueryError(f"not a date: {whole!r} (use YYYY-MM-DD, an ISO date-time, now-7d or now-1d/d)")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        y = int(year)
        mo = int(month) if month else (12 if up else 1)
        d = int(day) if day else (calendar.monthrange(y, mo)[1] if up else 1)
        moment = datetime(
            y,
            mo,
            d,
            int(hour) if hour else (23 if up else 0),
            int(minute) if minute else (59 if up else 0),
            int(second) if second else (59 if up else 0),
            int((fraction or "").ljust(6, "0")[:6]) if fraction else (999_999 if up else 0),
            tzinfo=UTC,
        )
    except ValueError as error:
        raise QueryError(f"not a date: {whole!r} ({error})") from None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        try:
            moment -= sign * offset
        except OverflowError:
            raise QueryError(f"not a date: {whole!r} (out of range in UTC)") from None
    return moment


def _apply_math(moment: datetime, math: str, *, up: bool, whole: str) -> datetime:
    try:
        for step in _math_steps(math, whole) or []:
            sign, amount, unit, rounding = step.groups()
            if unit:
                delta = relativedelta(**{_ADD[unit]: int(amount)})  # type: ignore[arg-type]
                moment = moment + delta if sign == "+" else moment - delta
            else:
                moment = _round(moment, rounding, up=up)
    except (OverflowError, ValueError) as error:
        raise QueryError(f"date math out of range: {whole!r} ({error})") from None
    return moment


def _round(moment: datetime, unit: str, *, up: bool) -> datetime:
    moment = moment.astimezone(UTC)
    if unit == "y":
        start, step = moment.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0), relativedelta(years=1)
    elif unit == "M":
        start, step = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0), relativedelta(months=1)
    elif unit == "w":  # weeks start on Monday, as in Elasticsearch
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        start, step = day - timedelta(days=day.weekday()), relativedelta(weeks=1)
    elif unit == "d":
        start, step = moment.replace(hour=0, minute=0, second=0, microsecond=0), relativedelta(days=1)
    elif unit in "hH":
        start, step = moment.replace(minute=0, second=0, microsecond=0), relativedelta(hours=1)
    elif unit == "m":
        start, step = moment.replace(second=0, microsecond=0), relativedelta(minutes=1)
    else:
        start, step = moment.replace(microsecond=0), relativedelta(seconds=1)
    return start + step - _TICK if up else start


def _resolved(bound: str | None, now: datetime, *, up: bool) -> str | None:
    if bound is None or not bound.startswith("now"):
        return bound
    return format_datetime(_apply_math(now, bound[3:], up=up, whole=bound))


def format_datetime(moment: datetime) -> str:
    """The one sortable text form of a time that stores and ranges compare."""
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-" + moment.strftime("%m-%dT%H:%M:%S.%fZ")  # %Y leaves years < 1000 unpadded
