"""The production store: Elasticsearch through the official client.

Writes go through the write alias `<prefix>-articles` over numbered indices
(`<prefix>-articles-000001`, …) made from one index template, so the index lifecycle policy
can roll the alias over and `rebuild` can swap in a new index without clients noticing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from elasticsearch import ApiError, BadRequestError, Elasticsearch, NotFoundError, helpers
from elasticsearch import ConnectionError as EsConnectionError

from shared.article import Article
from shared.query import (
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
    parse_query,
)
from shared.settings import Settings
from shared.store import IndexFailure, TransientStoreError
from shared.store.lifecycle import Lifecycle
from shared.store.mapping import ALERT_MAPPING, ARTICLE_MAPPING, INDEX_SETTINGS, index_document

log = logging.getLogger(__name__)

BULK_CHUNK_DOCS = 500
BULK_CHUNK_BYTES = 10 * 1024 * 1024
_GENERATION = re.compile(r"-(\d+)$")


def elasticsearch_client(settings: Settings, **options: Any) -> Elasticsearch:
    """A client for the configured cluster: API key (which wins) or user/password, TLS verified
    against the CA file when one is given, against the system's CAs otherwise."""
    auth: dict[str, Any] = {}
    if settings.elasticsearch_api_key is not None:
        auth["api_key"] = settings.elasticsearch_api_key.get_secret_value()
    elif settings.elasticsearch_username and settings.elasticsearch_password is not None:
        auth["basic_auth"] = (settings.elasticsearch_username, settings.elasticsearch_password.get_secret_value())
    if settings.elasticsearch_ca_certs is not None:
        auth["ca_certs"] = str(settings.elasticsearch_ca_certs)
    if not settings.elasticsearch_verify_certs and (settings.elasticsearch_url or "").startswith("https://"):
        auth["verify_certs"] = False  # the client refuses TLS options on a plain-text URL
    return Elasticsearch(
        settings.elasticsearch_url,
        request_timeout=30,
        retry_on_timeout=True,
        max_retries=3,
        **auth,
        **options,
    )


def lifecycle_from(settings: Settings) -> Lifecycle:
    return Lifecycle(
        max_age=settings.index_rollover_max_age,
        max_primary_shard_size=settings.index_rollover_max_shard_size,
        retention_days=settings.index_retention_days,
    )


class ElasticsearchStore:
    """Articles in Elasticsearch, written through the `<prefix>-articles` alias."""

    def __init__(self, client: Elasticsearch, prefix: str, lifecycle: Lifecycle | None = None) -> None:
        self.client = client
        self.alias = f"{prefix}-articles"
        self.template = self.policy = self.alias
        self.alerts = f"{prefix}-alerts"
        self.lifecycle = lifecycle or Lifecycle()

    # -- setup -----------------------------------------------------------------------------

    def setup(self) -> None:
        """Create (or update) the lifecycle policy, the index template and, on first run, the
        first index behind the write alias. Safe to run at every start."""
        settings = dict(INDEX_SETTINGS)
        if self._put_lifecycle_policy():
            settings.update(Lifecycle.index_settings(self.policy, self.alias))
        self.client.indices.put_index_template(
            name=self.template,
            index_patterns=[f"{self.alias}-*"],
            template={"settings": settings, "mappings": ARTICLE_MAPPING},
            priority=100,
        )
        if not self.client.indices.exists_alias(name=self.alias):
            self.client.indices.create(index=f"{self.alias}-000001", aliases={self.alias: {"is_write_index": True}})
        if not self.client.indices.exists(index=self.alerts):
            self.client.indices.create(index=self.alerts, mappings=ALERT_MAPPING, settings={"number_of_shards": 1})

    def _put_lifecycle_policy(self) -> bool:
        try:
            self.client.ilm.put_lifecycle(name=self.policy, policy=self.lifecycle.policy())
        except ApiError as error:
            if error.status_code in (400, 404, 405) and "no handler" in str(error):
                log.warning(
                    "this server has no index lifecycle management; %s will not roll over or expire", self.alias
                )
                return False
            raise
        return True

    # -- writing ---------------------------------------------------------------------------

    def index(self, articles: Sequence[Article]) -> list[IndexFailure]:
        try:
            located = self._locate([article.id for article in articles])
            actions = (
                {
                    "_op_type": "index",
                    # An article already stored in a rolled-over index is replaced there, so a
                    # re-delivery or an update never leaves a second copy in the new write index.
                    "_index": located.get(article.id, self.alias),
                    "_id": article.id,
                    "_source": index_document(article.to_document()),
                }
                for article in articles
            )
            return self._bulk(actions)
        except EsConnectionError as error:
            raise TransientStoreError(f"Elasticsearch unreachable: {error}") from error
        except ApiError as error:
            if error.status_code == 429 or error.status_code >= 500:
                raise TransientStoreError(f"Elasticsearch overloaded: {error}") from error
            raise

    def _locate(self, ids: list[str]) -> dict[str, str]:
        """The concrete index of each id already stored in a rolled-over index under the alias.

        A real-time multi-get, not a search: a search sees only what was refreshed, so an
        article written less than a refresh interval before a rollover would get a second copy."""
        if not ids:
            return {}
        aliases = self.client.indices.get_alias(name=self.alias)
        older = [name for name, info in aliases.items() if not info["aliases"][self.alias].get("is_write_index")]
        if not older:
            return {}
        docs = [{"_index": index, "_id": article_id} for index in older for article_id in ids]
        found = self.client.mget(docs=docs, source=False)
        return {doc["_id"]: doc["_index"] for doc in found["docs"] if doc.get("found")}

    def _bulk(self, actions: Any) -> list[IndexFailure]:
        failures: list[IndexFailure] = []
        for ok, item in helpers.streaming_bulk(
            self.client,
            actions,
            chunk_size=BULK_CHUNK_DOCS,
            max_chunk_bytes=BULK_CHUNK_BYTES,
            raise_on_error=False,  # collect per-document errors; one bad article stops nothing
            max_retries=3,  # documents refused with 429 are retried with backoff
            initial_backoff=1,
        ):
            if not ok:
                result = item.get("index", {})
                status = int(result.get("status", 500))
                failures.append(
                    IndexFailure(str(result.get("_id")), _reason(result.get("error")), status == 429 or status >= 500)
                )
        return failures

    # -- reading ---------------------------------------------------------------------------

    def get(self, article_id: str) -> Article | None:
        found = self.client.search(index=self.alias, query={"ids": {"values": [article_id]}}, size=1)
        hits = found["hits"]["hits"]
        return Article.model_validate(hits[0]["_source"]) if hits else None

    def search(self, query: str, limit: int = 20, sort: str = "date") -> list[Article]:
        order: list[Any] = [
            {"published_at": {"order": "desc", "missing": "_last"}},
            {"ingested_at": {"order": "desc"}},
        ]
        if sort == "relevance":
            order = ["_score", *order]
        with _refusals_as_query_errors(query):
            found = self.client.search(index=self.alias, query=self._query(query), size=limit, sort=order)
        return [Article.model_validate(hit["_source"]) for hit in found["hits"]["hits"]]

    def count(self, query: str = "*") -> int:
        with _refusals_as_query_errors(query):
            return int(self.client.count(index=self.alias, query=self._query(query))["count"])

    def facets(
        self, query: str = "*", fields: Sequence[str] = ("tags",), size: int = 10
    ) -> dict[str, list[tuple[str, int]]]:
        aggregations = {field: {"terms": {"field": field, "size": size}} for field in fields}
        with _refusals_as_query_errors(query):
            found = self.client.search(index=self.alias, query=self._query(query), size=0, aggregations=aggregations)
        return {
            field: [
                (str(bucket["key"]), int(bucket["doc_count"])) for bucket in found["aggregations"][field]["buckets"]
            ]
            for field in fields
        }

    def record_alert(self, record: dict[str, Any]) -> None:
        try:
            self.client.index(index=self.alerts, id=record["id"], document=record)
        except EsConnectionError as error:
            raise TransientStoreError(f"Elasticsearch unreachable: {error}") from error

    def alert_history(
        self, limit: int = 50, owner: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        wanted = [
            {"term": {name: value}} for name, value in (("owner", owner), ("status", status)) if value is not None
        ]
        query = {"bool": {"filter": wanted}} if wanted else {"match_all": {}}
        found = self.client.search(index=self.alerts, query=query, sort=[{"at": {"order": "desc"}}], size=limit)
        return [hit["_source"] for hit in found["hits"]["hits"]]

    def refresh(self) -> None:
        self.client.indices.refresh(index=f"{self.alias},{self.alerts}")

    def close(self) -> None:
        self.client.close()

    @staticmethod
    def _query(text: str) -> dict[str, Any]:
        return to_dsl(parse_query(text))

    # -- rebuilding ------------------------------------------------------------------------

    def rebuild(self, transform: Callable[[Article], Article], progress: Callable[[int, int], None]) -> int:
        """Copy every article into a new index through `transform`, then swap the alias to it in
        one step and delete the old indices. On any failure the new index is deleted and the
        live one is left as it was. Returns the number of articles copied."""
        old = list(self.client.indices.get_alias(name=self.alias))
        new = f"{self.alias}-{self._next_generation(old):06d}"
        self.client.indices.create(index=new)  # mapping and settings come from the template
        try:
            total = self.count("*")
            copied = 0
            for chunk in _chunks(self._scan(), BULK_CHUNK_DOCS):
                actions = [
                    {
                        "_op_type": "index",
                        "_index": new,
                        "_id": a.id,
                        "_source": index_document(transform(a).to_document()),
                    }
                    for a in chunk
                ]
                failures = self._bulk(actions)
                if failures:
                    raise RuntimeError(f"{len(failures)} articles refused by the new index: {failures[0].reason}")
                copied += len(chunk)
                progress(copied, total)
            swap: list[dict[str, Any]] = [{"remove": {"index": index, "alias": self.alias}} for index in old]
            swap.append({"add": {"index": new, "alias": self.alias, "is_write_index": True}})
            self.client.indices.update_aliases(actions=swap)  # one request: searches never see a gap
        except BaseException:
            self.client.indices.delete(index=new, ignore_unavailable=True)
            raise
        for index in old:
            self.client.indices.delete(index=index, ignore_unavailable=True)
        return copied

    def _scan(self) -> Iterator[Article]:
        after: list[Any] | None = None
        while True:
            page = self.client.search(
                index=self.alias,
                query={"match_all": {}},
                sort=[{"id": "asc"}],
                size=BULK_CHUNK_DOCS,
                search_after=after,
            )
            hits = page["hits"]["hits"]
            if not hits:
                return
            for hit in hits:
                yield Article.model_validate(hit["_source"])
            after = hits[-1]["sort"]

    def _next_generation(self, indices: list[str]) -> int:
        try:
            existing = list(self.client.indices.get(index=f"{self.alias}-*"))
        except NotFoundError:
            existing = []
        numbers = [int(match.group(1)) for name in existing + indices if (match := _GENERATION.search(name))]
        return max(numbers, default=0) + 1


def _chunks(articles: Iterator[Article], size: int) -> Iterator[list[Article]]:
    chunk: list[Article] = []
    for article in articles:
        chunk.append(article)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _reason(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', '')}"
    return str(error)


@contextmanager
def _refusals_as_query_errors(query: str) -> Iterator[None]:
    """A query the engine refuses (400: too many terms, an unreadable value) is the user's
    to fix: a `QueryError` with the engine's reason, never a traceback or a 500."""
    try:
        yield
    except BadRequestError as error:
        raise QueryError(f"the search engine refused the query {query!r}: {_reason(_root_cause(error))}") from None


def _root_cause(error: ApiError) -> Any:
    body = error.body if isinstance(error.body, dict) else {}
    cause = body.get("error", {})
    if isinstance(cause, dict) and cause.get("root_cause"):
        return cause["root_cause"][0]
    return cause or str(error)


def to_dsl(node: Node) -> dict[str, Any]:
    """The query DSL that means what the parsed query means (see `shared.query`): built from
    wirewatch's own parse rather than handed to `query_string`, so Elasticsearch and the other
    stores cannot read a query differently. Text is sent as typed and analyzed by the fields'
    own analyzer; a bare word or phrase matches in the title or the text, each on its own."""
    if isinstance(node, MatchAll):
        return {"match_all": {}}
    if isinstance(node, Empty):
        return {"match_none": {}}
    if isinstance(node, And):
        must = [to_dsl(item) for item in node.items if not isinstance(item, Not)]
        must_not = [to_dsl(item.item) for item in node.items if isinstance(item, Not)]
        return {"bool": {"filter": must or [{"match_all": {}}], "must_not": must_not}}
    if isinstance(node, Or):
        if not node.items:
            return {"match_none": {}}
        return {"bool": {"should": [to_dsl(item) for item in node.items], "minimum_should_match": 1}}
    if isinstance(node, Not):
        return {"bool": {"filter": [{"match_all": {}}], "must_not": [to_dsl(node.item)]}}
    if isinstance(node, Range):
        low, high = node.bounds()
        bounds: dict[str, str] = {}
        if low is not None:
            bounds["gte" if node.include_low else "gt"] = low
        if high is not None:
            bounds["lte" if node.include_high else "lt"] = high
        return {"range": {node.field: bounds}} if bounds else {"exists": {"field": node.field}}
    if isinstance(node, Exists):
        return {"exists": {"field": node.field}}
    fields = ("title", "text") if node.field is None else (node.field,)
    leaves = [_leaf(field, node) for field in fields]
    return leaves[0] if len(leaves) == 1 else {"bool": {"should": leaves, "minimum_should_match": 1}}


def _leaf(field: str, node: Term | Phrase | Wildcard | Fuzzy) -> dict[str, Any]:
    text_field = field in ("title", "text")
    if isinstance(node, Phrase):
        return {"match_phrase": {field: {"query": node.text, "slop": node.slop}}}
    if isinstance(node, Wildcard):
        return {"wildcard": {field: {"value": node.pattern}}}
    if isinstance(node, Fuzzy):
        return {
            "fuzzy": {field: {"value": node.value, "fuzziness": node.edits, "transpositions": True, "prefix_length": 0}}
        }
    if node.prefix:
        return {"prefix": {field: {"value": node.value}}}
    if text_field:
        return {"match": {field: {"query": node.text or node.value, "operator": "and"}}}
    return {"term": {field: {"value": node.value}}}
