"""The embedded store: SQLite with an FTS5 index, for a single machine with nothing installed.

Title and text are indexed as the shared analyzer's tokens (see `shared.analysis`), so
searches here and alert matching agree term for term; keyword fields are read from the
JSON document.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shared.analysis import analyze
from shared.article import Article
from shared.query import (
    LIST_FIELDS,
    And,
    Empty,
    MatchAll,
    Node,
    Not,
    Or,
    Phrase,
    Range,
    Term,
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
"""


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
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            self._local.db = db
        return db

    def setup(self) -> None:
        self._db.executescript(_SCHEMA)

    def index(self, articles: Sequence[Article]) -> list[IndexFailure]:
        rows = []
        for article in articles:
            rows.append(
                (
                    article.id,
                    json.dumps(article.to_document(), ensure_ascii=False),
                    format_datetime(article.published_at) if article.published_at else None,
                    format_datetime(article.ingested_at),
                    _fts_text(article.title),
                    _fts_text(article.text),
                )
            )
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            for article_id, doc, published, ingested, title, text in rows:
                rowid = db.execute(
                    "INSERT INTO articles (id, doc, published_at, ingested_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, "
                    "published_at = excluded.published_at, ingested_at = excluded.ingested_at "
                    "RETURNING rowid",
                    (article_id, doc, published, ingested),
                ).fetchone()[0]
                db.execute("DELETE FROM articles_fts WHERE rowid = ?", (rowid,))
                db.execute("INSERT INTO articles_fts (rowid, title, text) VALUES (?, ?, ?)", (rowid, title, text))
            db.execute("COMMIT")
        except sqlite3.OperationalError as error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if "locked" in str(error) or "busy" in str(error):
                raise TransientStoreError(f"SQLite store busy: {error}") from error
            raise
        return []

    def get(self, article_id: str) -> Article | None:
        row = self._db.execute("SELECT doc FROM articles WHERE id = ?", (article_id,)).fetchone()
        return Article.model_validate_json(row[0]) if row else None

    def search(self, query: str, limit: int = 20, sort: str = "date") -> list[Article]:
        node = parse_query(query)
        where, params = to_sql(node)
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
        return [Article.model_validate_json(row[0]) for row in self._db.execute(sql, arguments).fetchall()]

    def facets(
        self, query: str = "*", fields: Sequence[str] = ("tags",), size: int = 10
    ) -> dict[str, list[tuple[str, int]]]:
        where, params = to_sql(parse_query(query))
        result = {}
        for field in fields:
            if field in LIST_FIELDS:
                source = f"articles a, json_each(a.doc, '$.{field}') v WHERE {where}"
                value = "v.value"
            else:
                source = f"articles a WHERE {where} AND json_extract(a.doc, '$.{field}') IS NOT NULL"
                value = f"json_extract(a.doc, '$.{field}')"
            rows = self._db.execute(
                f"SELECT {value} AS k, count(*) AS n FROM {source} GROUP BY k ORDER BY n DESC, k LIMIT ?",
                (*params, size),
            ).fetchall()
            result[field] = [(str(key), int(count)) for key, count in rows]
        return result

    def count(self, query: str = "*") -> int:
        where, params = to_sql(parse_query(query))
        return int(self._db.execute(f"SELECT count(*) FROM articles a WHERE {where}", params).fetchone()[0])

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
                    (row[0], _fts_text(article.title), _fts_text(article.text)),
                )
                if done % 500 == 0 or done == total:
                    progress(done, total)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return total

    def record_alert(self, record: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO alerts (id, at, doc) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at, doc = excluded.doc",
            (record["id"], record["at"], json.dumps(record, ensure_ascii=False)),
        )

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


# Stands where a stop word was, so positions (and phrase and proximity queries) match
# Elasticsearch's; analyzed tokens never contain an underscore-free run like this one.
GAP = "zzgapzz"


def _fts_text(text: str) -> str:
    return " ".join(token or GAP for token in analyze(text))


def to_sql(node: Node) -> tuple[str, list[Any]]:
    """Translate a query tree into a WHERE clause over `articles a`, with its parameters."""
    if isinstance(node, MatchAll):
        return "1", []
    if isinstance(node, Empty) or (isinstance(node, Or) and not node.items):
        return "0", []
    if isinstance(node, (And, Or)):
        parts = [to_sql(item) for item in node.items]
        joiner = " AND " if isinstance(node, And) else " OR "
        return "(" + joiner.join(sql for sql, _ in parts) + ")", [p for _, params in parts for p in params]
    if isinstance(node, Not):
        sql, params = to_sql(node.item)
        return f"NOT {sql}", params
    if isinstance(node, Range):
        return _range_sql(node)
    if isinstance(node, Term) and node.field is not None and node.field not in ("title", "text"):
        return _keyword_sql(node)
    return (
        "a.rowid IN (SELECT rowid FROM articles_fts WHERE articles_fts MATCH ?)",
        [_fts_expression(node)],
    )


def _fts_expression(node: Term | Phrase) -> str:
    columns = "{title text}" if node.field is None else node.field
    if isinstance(node, Term):
        match = f'"{node.value}"' + (" *" if node.prefix else "")
    elif node.slop:
        words = [word for word in node.words if word is not None]
        gaps = len(node.words) - len(words)
        match = "NEAR(" + " ".join(f'"{word}"' for word in words) + f", {node.slop + gaps})"
    else:
        match = '"' + " ".join(word or GAP for word in node.words) + '"'
    return f"{columns} : {match}"


def _keyword_sql(node: Term) -> tuple[str, list[Any]]:
    comparison = "value GLOB ?" if node.prefix else "value = ?"
    value = _glob_escape(node.value) + "*" if node.prefix else node.value
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
