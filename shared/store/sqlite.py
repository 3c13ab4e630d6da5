"""The embedded store: SQLite with an FTS5 index, for a single machine with nothing installed.

Title and text are indexed as the shared analyzer's tokens (see `shared.analysis`), so
searches here and alert matching agree term for term; keyword fields are read from the
JSON document. What SQL and FTS5 cannot say (Lucene's sloppy phrases, wildcards inside a
word, fuzzy terms) is decided by the alert matcher's own functions, called from SQL, over
FTS5's candidates or its vocabulary.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import regex

from shared.alerting.matcher import phrase_in, term_matches
from shared.article import Article
from shared.query import (
    LIST_FIELDS,
    And,
    Empty,
    Exists,
    Fuzzy,
    MatchAll,
    Node,
    Not,
    Or,
    Phrase,
    QueryError,
    Range,
    Term,
    Wildcard,
    format_datetime,
    parse_query,
)
from shared.store import IndexFailure, TransientStoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL,
    published_at TEXT,
    ingested_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS articles_published ON articles (published_at);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS articles_fts USING fts5(
    title, text, tokenize = 'unicode61 remove_diacritics 0'
);
CREATE VIRTUAL TABLE IF NOT EXISTS articles_vocabulary USING fts5vocab(articles_fts, 'col');
"""

ANALYZER_VERSION = 2
"""Raised whenever `shared.analysis` changes its tokens: `setup` then re-analyzes the stored
articles, so that old rows and new queries agree (kept in SQLite's `user_version`)."""


class SqliteStore:
    """Articles in one SQLite file (WAL mode, so several worker processes can write)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        self.setup()

    @property
    def _db(self) -> sqlite3.Connection:
        # One connection per thread: sqlite3 connections must not cross threads.
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.create_function("wirewatch_phrase", 4, _phrase_function, deterministic=True)
            db.create_function("wirewatch_term", 2, _term_function, deterministic=True)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            self._local.db = db
        return db

    def setup(self) -> None:
        self._db.executescript(_SCHEMA)
        # FTS5 merges its index segments 8 at a time instead of 4: every article is merged
        # about half as often while it is written, for a few more segments to read per search.
        self._db.execute("INSERT INTO articles_fts (articles_fts, rank) VALUES ('automerge', 8)")
        if int(self._db.execute("PRAGMA user_version").fetchone()[0]) < ANALYZER_VERSION:
            self.rebuild(lambda article: article, lambda done, total: None)
            self._db.execute(f"PRAGMA user_version = {ANALYZER_VERSION}")

    def _vocabulary(self, field: str | None) -> list[str]:
        columns = ("title", "text") if field is None else (field,)
        marks = ", ".join("?" for _ in columns)
        rows = self._db.execute(f"SELECT DISTINCT term FROM articles_vocabulary WHERE col IN ({marks})", columns)
        return [_fts_decode(row[0]) for row in rows]

    def index(self, articles: Sequence[Article]) -> list[IndexFailure]:
        return self.index_rows([stored_row(article) for article in articles])

    def index_rows(self, rows: Sequence[Sequence[Any]]) -> list[IndexFailure]:
        """Write rows `stored_row` made (in the process that ran the batch, so that the one
        writer only writes): one transaction, a statement per table for the whole bulk."""
        latest: dict[str, Sequence[Any]] = {}
        failures = []
        for row in rows:
            if _row_shape_ok(row):
                latest[row[0]] = row  # an article twice in one bulk: its last version is kept
            else:
                failures.append(IndexFailure(str(row[0] if row else ""), "not a stored row of this store"))
        if not latest:
            return failures
        ids = json.dumps(list(latest), ensure_ascii=False)
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            # Only a replaced article has text to take out of the index: deleting a rowid FTS5
            # never held still costs it a flush of what it gathered so far.
            replaced = db.execute(f"SELECT rowid FROM articles WHERE id IN {_IDS}", (ids,)).fetchall()
            db.executemany("DELETE FROM articles_fts WHERE rowid = ?", replaced)
            db.executemany(
                "INSERT INTO articles (id, doc, published_at, ingested_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, "
                "published_at = excluded.published_at, ingested_at = excluded.ingested_at",
                [row[:4] for row in latest.values()],
            )
            rowids = dict(db.execute(f"SELECT id, rowid FROM articles WHERE id IN {_IDS}", (ids,)).fetchall())
            db.executemany(
                "INSERT INTO articles_fts (rowid, title, text) VALUES (?, ?, ?)",
                [(rowids[row[0]], row[4], row[5]) for row in latest.values()],
            )
            db.execute("COMMIT")
        except sqlite3.OperationalError as error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if any(word in str(error) for word in ("locked", "busy", "full")):  # waited out, then retried
                raise TransientStoreError(f"SQLite store unavailable: {error}") from error
            raise
        return failures

    def get(self, article_id: str) -> Article | None:
        row = self._db.execute("SELECT doc FROM articles WHERE id = ?", (article_id,)).fetchone()
        return Article.model_validate_json(row[0]) if row else None

    def search(self, query: str, limit: int = 20, sort: str = "date") -> list[Article]:
        node = parse_query(query)
        where, params = to_sql(node, self._vocabulary)
        by_date = "a.published_at IS NULL, a.published_at DESC, a.ingested_at DESC"
        ranking = _ranking_expression(node) if sort == "relevance" else None
        if ranking is None:
            sql = f"SELECT a.doc FROM articles a WHERE {where} ORDER BY {by_date} LIMIT ?"
            arguments: tuple[Any, ...] = (*params, limit)
        else:
            # bm25() is lower for better matches; articles matching only non-text clauses sort last.
            sql = (
                "SELECT a.doc FROM articles a LEFT JOIN (SELECT rowid, bm25(articles_fts) AS rank "
                "FROM articles_fts WHERE articles_fts MATCH ?) r ON r.rowid = a.rowid "
                f"WHERE {where} ORDER BY r.rank IS NULL, r.rank, {by_date} LIMIT ?"
            )
            arguments = (ranking, *params, limit)
        return [Article.model_validate_json(row[0]) for row in self._rows(sql, arguments)]

    def facets(
        self, query: str = "*", fields: Sequence[str] = ("tags",), size: int = 10
    ) -> dict[str, list[tuple[str, int]]]:
        where, params = to_sql(parse_query(query), self._vocabulary)
        result = {}
        for field in fields:
            if field in LIST_FIELDS:
                source = f"articles a, json_each(a.doc, '$.{field}') v WHERE {where}"
                value = "v.value"
            else:
                source = f"articles a WHERE {where} AND json_extract(a.doc, '$.{field}') IS NOT NULL"
                value = f"json_extract(a.doc, '$.{field}')"
            rows = self._rows(
                f"SELECT {value} AS k, count(*) AS n FROM {source} GROUP BY k ORDER BY n DESC, k LIMIT ?",
                (*params, size),
            )
            result[field] = [(str(key), int(count)) for key, count in rows]
        return result

    def count(self, query: str = "*") -> int:
        where, params = to_sql(parse_query(query), self._vocabulary)
        return int(self._rows(f"SELECT count(*) FROM articles a WHERE {where}", tuple(params))[0][0])

    def _rows(self, sql: str, arguments: Sequence[Any]) -> list[Any]:
        """Run a query's SQL; what SQLite refuses to run (an expression too deep, an FTS
        expression too large) is the query's fault: QueryError, as Elasticsearch's refusals are."""
        try:
            return self._db.execute(sql, arguments).fetchall()
        except sqlite3.OperationalError as error:
            if any(words in str(error) for words in _QUERY_TOO_COMPLEX):
                raise QueryError(f"the query is too complex to run: {error}") from None
            raise  # the database's own trouble (locked, I/O), not the query's

    def rebuild(self, transform: Callable[[Article], Article], progress: Callable[[int, int], None]) -> int:
        """Rewrite every article through `transform` in one transaction: all or nothing."""
        db = self._db
        total = int(db.execute("SELECT count(*) FROM articles").fetchone()[0])
        ids = [row[0] for row in db.execute("SELECT id FROM articles ORDER BY rowid")]
        db.execute("BEGIN IMMEDIATE")
        try:
            for done, article_id in enumerate(ids, 1):
                row = db.execute("SELECT rowid, doc FROM articles WHERE id = ?", (article_id,)).fetchone()
                article = transform(Article.model_validate_json(row[1]))
                db.execute(
                    "UPDATE articles SET doc = ? WHERE rowid = ?",
                    (json.dumps(article.to_document(), ensure_ascii=False), row[0]),
                )
                db.execute("DELETE FROM articles_fts WHERE rowid = ?", (row[0],))
                db.execute(
                    "INSERT INTO articles_fts (rowid, title, text) VALUES (?, ?, ?)",
                    (row[0], *_fts_texts(article)),
                )
                if done % 500 == 0 or done == total:
                    progress(done, total)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return total

    def record_alert(self, record: dict[str, Any]) -> None:
        self.record_alerts([record])

    def record_alerts(self, records: Sequence[dict[str, Any]]) -> None:
        rows = [(record["id"], record["at"], json.dumps(record, ensure_ascii=False)) for record in records]
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO alerts (id, at, doc) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at, doc = excluded.doc",
                rows,
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def alert_history(
        self, limit: int = 50, owner: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT doc FROM alerts WHERE (? IS NULL OR json_extract(doc, '$.owner') = ?)"
            " AND (? IS NULL OR json_extract(doc, '$.status') = ?) ORDER BY at DESC LIMIT ?",
            (owner, owner, status, status, limit),
        ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def refresh(self) -> None:
        """Nothing to do: a committed row is searchable at once."""

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


_IDS = "(SELECT value FROM json_each(?))"


def stored_row(article: Article) -> list[Any]:
    """What the store writes of an article (JSON, so it can travel on the index stream): id,
    document, dates, and title and text as the analyzer's tokens."""
    return [
        article.id,
        article.model_dump_json(exclude={"html", "delivery"}),  # `to_document()`, written in one pass
        format_datetime(article.published_at) if article.published_at else None,
        format_datetime(article.ingested_at),
        *_fts_texts(article),
    ]


def _row_shape_ok(row: Any) -> bool:
    return (
        isinstance(row, list | tuple)
        and len(row) == 6
        and all(isinstance(value, str) for value in (row[0], row[1], row[3], row[4], row[5]))
        and isinstance(row[2], str | None)
    )


# Stands where a stop word was, so positions (and phrase and proximity queries) match
# Elasticsearch's; no encoded token is this.
GAP = "ǂǂ"
_FTS_MARK = "ǂ"
# FTS5's unicode61 tokenizer knows the letters and digits of Unicode 6.1 and splits on
# everything else; a token keeps each of its other characters (`u.`, `2,000`, `o'brien`,
# emoji, scripts beyond these old blocks) as `ǂ<hex>ǂ`, so every token stays one FTS5 token
# and prefixes stay prefixes.
_FTS_PLAIN = regex.compile(r"[\p{L}\p{N}]")
_FTS_OLD_BLOCKS = ((0, 0x052F), (0x3040, 0x30FF), (0x4E00, 0x9FCC), (0xAC00, 0xD7A3))


def _fts_plain(char: str) -> bool:
    code = ord(char)
    return (
        char != _FTS_MARK
        and any(low <= code <= high for low, high in _FTS_OLD_BLOCKS)
        and _FTS_PLAIN.match(char) is not None
    )


_FTS_ENCODED = regex.compile(r"ǂ([0-9a-f]+)ǂ")


def _fts_token(token: str) -> str:
    if token.isascii() and token.isalnum():
        return token
    return "".join(char if _fts_plain(char) else f"{_FTS_MARK}{ord(char):x}{_FTS_MARK}" for char in token)


def _fts_decode(token: str) -> str:
    return _FTS_ENCODED.sub(lambda match: chr(int(match.group(1), 16)), token) if _FTS_MARK in token else token


def _fts_texts(article: Article) -> tuple[str, str]:
    """Title and text as the FTS5 table holds them: the analyzer's terms in their FTS5 form,
    GAP where a stop word stands (the analysis is the article's own, made once)."""
    analysis = article.analysis()
    return _fts_text(analysis["title"]), _fts_text(analysis["text"])


class _FtsForms(dict[str | None, str]):
    """Term -> its FTS5 form (a stop word's place, None, -> GAP), filled as terms are met:
    news vocabulary repeats, so nearly every term costs one dictionary lookup."""

    LIMIT = 500_000

    def __missing__(self, term: str | None) -> str:
        value = _fts_token(term) if term else GAP
        if len(self) < self.LIMIT:
            self[term] = value
        return value


_fts_forms = _FtsForms()


def _fts_text(terms: list[str | None]) -> str:
    return " ".join(map(_fts_forms.__getitem__, terms))


def _positions(fts_text: str | None) -> dict[str, list[int]]:
    index: dict[str, list[int]] = {}
    for position, token in enumerate((fts_text or "").split(" ")):
        if token != GAP:
            index.setdefault(_fts_decode(token), []).append(position)
    return index


def _phrase_function(field: str | None, title: str, text: str, phrase: str) -> bool:
    """SQL `wirewatch_phrase(field, title, text, words)`: Lucene's sloppy phrase, on one row."""
    spec = json.loads(phrase)
    node = Phrase(field, tuple(spec["words"]), spec["slop"])
    columns = {"title": title, "text": text}
    return any(phrase_in(node, _positions(columns[name])) for name in ((field,) if field else ("title", "text")))


def _term_function(value: str | None, spec: str) -> bool:
    """SQL `wirewatch_term(value, spec)`: a keyword value a wildcard or fuzzy term stands for."""
    return value is not None and term_matches(_expansion_node(spec), value)


def _expansion_node(spec: str) -> Wildcard | Fuzzy:
    kind, *rest = json.loads(spec)
    return Wildcard(None, rest[0]) if kind == "wildcard" else Fuzzy(None, rest[0], rest[1])


def _expansion_spec(node: Wildcard | Fuzzy) -> str:
    return json.dumps(["wildcard", node.pattern] if isinstance(node, Wildcard) else ["fuzzy", node.value, node.edits])


# What SQLite says when a query, not the database, is at fault.
_QUERY_TOO_COMPLEX = (
    "Expression tree is too large",
    "parser stack overflow",
    "too many SQL variables",
    "pattern too complex",
    "string or blob too big",
    "fts5:",
)

Vocabulary = Callable[[str | None], list[str]]


def to_sql(node: Node, vocabulary: Vocabulary | None = None) -> tuple[str, list[Any]]:
    """Translate a query tree into a WHERE clause over `articles a`, with its parameters.
    `vocabulary(field)` lists the indexed terms of a text field (both for None), for wildcards
    and fuzzy terms."""
    recurse = partial(to_sql, vocabulary=vocabulary)
    if isinstance(node, MatchAll):
        return "1", []
    if isinstance(node, Empty) or (isinstance(node, Or) and not node.items):
        return "0", []
    if isinstance(node, (And, Or)):
        parts = [recurse(item) for item in node.items]
        joiner = " AND " if isinstance(node, And) else " OR "
        return "(" + joiner.join(sql for sql, _ in parts) + ")", [p for _, params in parts for p in params]
    if isinstance(node, Not):
        sql, params = recurse(node.item)
        return f"NOT {sql}", params
    if isinstance(node, Range):
        return _range_sql(node)
    if isinstance(node, Exists):
        if node.field in LIST_FIELDS:
            return f"coalesce(json_array_length(a.doc, '$.{node.field}'), 0) > 0", []
        if node.field in ("published_at", "ingested_at"):
            return f"a.{node.field} IS NOT NULL", []
        return f"coalesce(json_extract(a.doc, '$.{node.field}'), '') != ''", []
    if isinstance(node, (Wildcard, Fuzzy)):
        if node.field is not None and node.field not in ("title", "text"):
            return _keyword_sql(node)
        terms = [term for term in (vocabulary(node.field) if vocabulary else []) if term_matches(node, term)]
        if not terms:
            return "0", []
        columns = "{title text}" if node.field is None else node.field
        expression = f"{columns} : (" + " OR ".join(f'"{_fts_token(term)}"' for term in terms) + ")"
        return "a.rowid IN (SELECT rowid FROM articles_fts WHERE articles_fts MATCH ?)", [expression]
    if isinstance(node, Term) and node.field is not None and node.field not in ("title", "text"):
        return _keyword_sql(node)
    if isinstance(node, Phrase) and (node.slop or None in node.words):
        # A stop word's place holds any word ("launched an ICBM" finds "launched new ICBM"),
        # and a sloppy phrase counts moves as Lucene does: neither is an FTS5 phrase.
        spec = json.dumps({"words": node.words, "slop": node.slop})
        return (
            "a.rowid IN (SELECT rowid FROM articles_fts WHERE articles_fts MATCH ? "
            "AND wirewatch_phrase(?, title, text, ?))",
            [_fts_expression(node), node.field, spec],
        )
    return (
        "a.rowid IN (SELECT rowid FROM articles_fts WHERE articles_fts MATCH ?)",
        [_fts_expression(node)],
    )


def _fts_expression(node: Term | Phrase) -> str:
    columns = "{title text}" if node.field is None else node.field
    if isinstance(node, Term):
        match = f'"{_fts_token(node.value)}"' + (" *" if node.prefix else "")
    elif node.slop or None in node.words:
        # Candidates only: every word in the row; wirewatch_phrase decides.
        match = "(" + " AND ".join(f'"{_fts_token(word)}"' for word in node.words if word is not None) + ")"
    else:
        match = '"' + " ".join(_fts_token(word) if word else GAP for word in node.words) + '"'
    return f"{columns} : {match}"


def _keyword_sql(node: Term | Wildcard | Fuzzy) -> tuple[str, list[Any]]:
    value: str
    if isinstance(node, (Wildcard, Fuzzy)):
        comparison, value = "wirewatch_term(value, ?)", _expansion_spec(node)
    elif node.prefix:
        comparison, value = "value GLOB ?", _glob_escape(node.value) + "*"
    else:
        comparison, value = "value = ?", node.value
    if node.field in LIST_FIELDS:
        return f"EXISTS (SELECT 1 FROM json_each(a.doc, '$.{node.field}') WHERE {comparison})", [value]
    # coalesce: a missing value is "no match", never SQL's NULL, which NOT would keep NULL.
    column = f"json_extract(a.doc, '$.{node.field}')"
    return f"coalesce({comparison.replace('value', column)}, 0)", [value]


def _ranking_expression(node: Node) -> str | None:
    """An FTS5 expression OR-ing the query's positive text clauses, for bm25 ranking."""
    leaves: list[str] = []

    def collect(item: Node) -> None:
        if isinstance(item, (And, Or)):
            for child in item.items:
                collect(child)
        elif isinstance(item, Phrase) or (isinstance(item, Term) and item.field in (None, "title", "text")):
            leaves.append(_fts_expression(item))

    collect(node)
    return " OR ".join(f"({leaf})" for leaf in leaves) if leaves else None


def _glob_escape(value: str) -> str:
    return "".join(f"[{char}]" if char in "*?[" else char for char in value)


def _range_sql(node: Range) -> tuple[str, list[Any]]:
    column = f"a.{node.field}"
    clauses, params = [f"{column} IS NOT NULL"], []
    low, high = node.bounds()
    if low is not None:
        clauses.append(f"{column} {'>=' if node.include_low else '>'} ?")
        params.append(low)
    if high is not None:
        clauses.append(f"{column} {'<=' if node.include_high else '<'} ?")
        params.append(high)
    return "(" + " AND ".join(clauses) + ")", params
