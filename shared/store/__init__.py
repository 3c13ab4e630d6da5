"""Where articles are kept and searched: one interface, two implementations.

`ElasticsearchStore` is for production; `SqliteStore` (SQLite with FTS5) is the embedded
default. Both take the same Lucene-syntax queries and pass the same contract tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shared.article import Article
from shared.settings import Settings


@dataclass(frozen=True)
class IndexFailure:
    """An article the store refused; `transient` failures are worth retrying."""

    article_id: str
    reason: str
    transient: bool = False


class TransientStoreError(RuntimeError):
    """The store is unreachable or overloaded; the whole operation may be retried."""


class Store(Protocol):
    def setup(self) -> None:
        """Create what the store needs (tables, index templates, aliases); idempotent."""

    def index(self, articles: Sequence[Article]) -> list[IndexFailure]:
        """Insert or replace articles by id, into a rebuild's copies too while one runs;
        returns the ones that were refused."""

    def get(self, article_id: str) -> Article | None:
        """One article by id."""

    def search(self, query: str, limit: int = 20, sort: str = "date") -> list[Article]:
        """Articles matching a Lucene-syntax query, newest first (`sort="relevance"`: best first)."""

    def count(self, query: str = "*") -> int:
        """How many articles match."""

    def facets(
        self, query: str = "*", fields: Sequence[str] = ("tags",), size: int = 10
    ) -> dict[str, list[tuple[str, int]]]:
        """The most frequent values of keyword fields among matching articles, with counts."""

    def rebuild(self, transform: Callable[[Article], Article], progress: Callable[[int, int], None]) -> int:
        """Rewrite every stored article through `transform`, all or nothing, losing no write
        made meanwhile; returns how many were rewritten."""

    def record_alert(self, record: dict[str, Any]) -> None:
        """Keep one alert's outcome in the alert history (one entry per subscription and article)."""

    def record_alerts(self, records: Sequence[dict[str, Any]]) -> None:
        """`record_alert` for many outcomes in one write."""

    def alert_history(
        self, limit: int = 50, owner: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """The most recent alert outcomes, newest first (only `owner`'s, only those in `status`,
        when given); filtered before the limit."""

    def refresh(self) -> None:
        """Make everything indexed so far searchable now (tests and `run --once`)."""

    def close(self) -> None:
        """Release connections."""


def open_store(settings: Settings) -> Store:
    """The Elasticsearch store when a URL is configured, else the embedded SQLite store."""
    if settings.elasticsearch_url:
        from shared.store.elastic import ElasticsearchStore, elasticsearch_client, lifecycle_from

        return ElasticsearchStore(elasticsearch_client(settings), settings.index_prefix, lifecycle_from(settings))
    from shared.store.sqlite import SqliteStore

    return SqliteStore(settings.data_dir / "articles.sqlite3")


def prepare_rows(settings: Settings, articles: Sequence[Article]) -> list[Any] | None:
    """The rows the configured store writes of these articles, made by the process that ran
    their batch so that the bulk indexer only writes them; None when the store makes its own
    (Elasticsearch's bulk requests are built as they are sent)."""
    if settings.elasticsearch_url:
        return None
    from shared.store.sqlite import stored_row

    return [stored_row(article) for article in articles]
