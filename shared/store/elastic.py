"""The production store: Elasticsearch through the official client.

Writes go to a write alias (`<prefix>-articles`) over numbered indices created from an index
template, so indices can be rolled over and rebuilt without clients noticing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from elasticsearch import ApiError, Elasticsearch, helpers
from elasticsearch import ConnectionError as EsConnectionError

from shared.article import Article
from shared.query import parse_query
from shared.settings import Settings
from shared.store import IndexFailure, TransientStoreError
from shared.store.mapping import ARTICLE_MAPPING, INDEX_SETTINGS, limit_document

_BULK_CHUNK_DOCS = 500
_BULK_CHUNK_BYTES = 10 * 1024 * 1024


def elasticsearch_client(settings: Settings, **options: Any) -> Elasticsearch:
    """A client for the configured cluster: API key or user/password, TLS with a CA file."""
    auth: dict[str, Any] = {}
    if settings.elasticsearch_api_key is not None:
        auth["api_key"] = settings.elasticsearch_api_key.get_secret_value()
    elif settings.elasticsearch_username and settings.elasticsearch_password is not None:
        auth["basic_auth"] = (settings.elasticsearch_username, settings.elasticsearch_password.get_secret_value())
    if settings.elasticsearch_ca_certs is not None:
        auth["ca_certs"] = str(settings.elasticsearch_ca_certs)
    return Elasticsearch(
        settings.elasticsearch_url,
        request_timeout=30,
        retry_on_timeout=True,
        max_retries=3,
        **auth,
        **options,
    )


class ElasticsearchStore:
    """Articles in Elasticsearch, written through the `<prefix>-articles` alias."""

    def __init__(self, client: Elasticsearch, prefix: str) -> None:
        self.client = client
        self.alias = f"{prefix}-articles"
        self.template = f"{prefix}-articles"

    def setup(self) -> None:
        self.client.indices.put_index_template(
            name=self.template,
            index_patterns=[f"{self.alias}-*"],
            template={"settings": INDEX_SETTINGS, "mappings": ARTICLE_MAPPING},
            priority=100,
        )
        if not self.client.indices.exists_alias(name=self.alias):
            self.client.indices.create(
                index=f"{self.alias}-000001",
                aliases={self.alias: {"is_write_index": True}},
            )

    def index(self, articles: Sequence[Article]) -> list[IndexFailure]:
        actions = (
            {"_op_type": "index", "_index": self.alias, "_id": a.id, "_source": limit_document(a.to_document())}
            for a in articles
        )
        failures: list[IndexFailure] = []
        try:
            for ok, item in helpers.streaming_bulk(
                self.client,
                actions,
                chunk_size=_BULK_CHUNK_DOCS,
                max_chunk_bytes=_BULK_CHUNK_BYTES,
                raise_on_error=False,
                max_retries=3,  # 429s are retried by the helper with backoff
                initial_backoff=1,
            ):
                if not ok:
                    result = item.get("index", {})
                    status = int(result.get("status", 500))
                    failures.append(
                        IndexFailure(
                            str(result.get("_id")), _reason(result.get("error")), status == 429 or status >= 500
                        )
                    )
        except EsConnectionError as error:
            raise TransientStoreError(f"Elasticsearch unreachable: {error}") from error
        except ApiError as error:
            if error.status_code == 429 or error.status_code >= 500:
                raise TransientStoreError(f"Elasticsearch overloaded: {error}") from error
            raise
        return failures

    def get(self, article_id: str) -> Article | None:
        found = self.client.search(index=self.alias, query={"ids": {"values": [article_id]}}, size=1)
        hits = found["hits"]["hits"]
        return Article.model_validate(hits[0]["_source"]) if hits else None

    def search(self, query: str, limit: int = 20) -> list[Article]:
        found = self.client.search(
            index=self.alias,
            query=self._query(query),
            size=limit,
            sort=[
                {"published_at": {"order": "desc", "missing": "_last"}},
                {"ingested_at": {"order": "desc"}},
            ],
        )
        return [Article.model_validate(hit["_source"]) for hit in found["hits"]["hits"]]

    def count(self, query: str = "*") -> int:
        return int(self.client.count(index=self.alias, query=self._query(query))["count"])

    def refresh(self) -> None:
        self.client.indices.refresh(index=self.alias)

    def close(self) -> None:
        self.client.close()

    @staticmethod
    def _query(text: str) -> dict[str, Any]:
        parse_query(text)  # the same syntax errors, with the same messages, as the embedded store
        if not text.strip():
            return {"match_all": {}}
        return {
            "query_string": {
                "query": text,
                "fields": ["title", "text"],
                "default_operator": "AND",
            }
        }


def _reason(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', '')}"
    return str(error)
