"""The production store: Elasticsearch through the official client.

Writes go through the write alias `<prefix>-articles` over numbered indices
(`<prefix>-articles-000001`, …) made from one index template, so the index lifecycle policy
can roll the alias over and `rebuild` can swap in new indices without clients noticing. A
rebuild announces itself in the alias layout (its copies sit under `<prefix>-articles-rebuilding`),
which every bulk request reads, so writes made during a rebuild reach the copies too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import ApiError, BadRequestError, Elasticsearch, helpers
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
LAYOUT_ATTEMPTS = 5
PIT_KEEP_ALIVE = "5m"  # between two pages of a rebuild's walk, bulk writes included
_GENERATION = re.compile(r"-(\d+)$")
_REBUILD_TAG = re.compile(r"-r(\d+)-\d+$")


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
        self.rebuilding_alias = f"{self.alias}-rebuilding"
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
            if _no_handler(error):
                log.warning(
                    "this server has no index lifecycle management; %s will not roll over or expire", self.alias
                )
                return False
            raise
        return True

    # -- writing ---------------------------------------------------------------------------

    def index(self, articles: Sequence[Article]) -> list[IndexFailure]:
        """Write articles where the alias layout says, honouring a rebuild in progress.

        The layout is read before the bulk request and again after it: when it changed in
        between (a rebuild published its copies, swapped the alias or finished, or the alias
        rolled over), the same articles are written again where it now says. A bulk that
        reaches an index after the rebuild scanned it, or after it was set aside, is so
        always repeated in the index that lives on."""
        try:
            failures: list[IndexFailure] = []
            for _ in range(LAYOUT_ATTEMPTS):
                layout = self._layout()
                failures = self._bulk(self._actions(articles, layout))
                if self._layout() == layout:
                    return failures
            raise TransientStoreError("the index layout kept changing during the bulk request; writing again later")
        except EsConnectionError as error:
            raise TransientStoreError(f"Elasticsearch unreachable: {error}") from error
        except ApiError as error:
            if error.status_code == 429 or error.status_code >= 500:
                raise TransientStoreError(f"Elasticsearch overloaded: {error}") from error
            raise

    def _actions(self, articles: Sequence[Article], layout: Layout) -> Iterator[dict[str, Any]]:
        located = self._locate([article.id for article in articles], layout)
        for article in articles:
            source = index_document(article.to_document())
            # An article already stored in a rolled-over index is replaced there, so a
            # re-delivery or an update never leaves a second copy in the new write index. A new
            # one goes to the write index the layout named, not to whatever the alias names
            # when the request lands: a rollover in between then leaves it in one index (and,
            # during a rebuild, in that index's copy), never in two.
            home = located.get(article.id) or layout.write_index
            yield {"_op_type": "index", "_index": home or self.alias, "_id": article.id, "_source": source}
            copy = layout.copies.get(home or "")
            if copy is not None:  # a rebuild is under way: its copy of that index gets it too
                yield {"_op_type": "index", "_index": copy, "_id": article.id, "_source": source}

    def _layout(self) -> Layout:
        """The indices behind the alias and, during a rebuild, the copy of each (one request)."""
        found = self.client.indices.get_alias(index=f"{self.alias}-*")
        live: list[str] = []
        copies: list[str] = []
        write = None
        for name, info in found.items():
            aliases = info.get("aliases", {})
            if self.alias in aliases:
                live.append(name)
                if aliases[self.alias].get("is_write_index"):
                    write = name
            if self.rebuilding_alias in aliases:
                copies.append(name)
        if write is None and len(live) == 1:
            write = live[0]  # an alias over one index writes to it without the flag
        by_generation = {_generation(name): name for name in live}
        paired = {by_generation[_generation(c)]: c for c in copies if _generation(c) in by_generation}
        return Layout(tuple(sorted(live)), write, paired)

    def _locate(self, ids: list[str], layout: Layout) -> dict[str, str]:
        """The concrete index of each id already stored in a rolled-over index under the alias.

        A real-time multi-get, not a search: a search sees only what was refreshed, so an
        article written less than a refresh interval before a rollover would get a second copy."""
        older = [name for name in layout.live if name != layout.write_index]
        if not ids or not older:
            return {}
        docs = [{"_index": index, "_id": article_id} for index in older for article_id in ids]
        found = self.client.mget(docs=docs, source=False)
        return {doc["_id"]: doc["_index"] for doc in found["docs"] if doc.get("found")}

    def _bulk(self, actions: Any) -> list[IndexFailure]:
        failures: dict[str, IndexFailure] = {}
        for ok, item in helpers.streaming_bulk(
            self.client,
            actions,
            chunk_size=BULK_CHUNK_DOCS,
            max_chunk_bytes=BULK_CHUNK_BYTES,
            raise_on_error=False,  # collect per-document errors; one bad article stops nothing
            max_retries=3,  # documents refused with 429 are retried with backoff
            initial_backoff=1,
        ):
            if ok:
                continue
            operation, result = next(iter(item.items()))
            status = int(result.get("status", 500))
            if operation == "create" and status == 409:
                continue  # a rebuild's copy found the id taken: a live write got there first, and is newer
            article_id = str(result.get("_id"))
            failures[article_id] = IndexFailure(
                article_id, _reason(result.get("error")), status == 429 or status >= 500
            )
        return list(failures.values())

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
        self.record_alerts([record])

    def record_alerts(self, records: Sequence[dict[str, Any]]) -> None:
        actions = [{"_index": self.alerts, "_id": record["id"], "_source": record} for record in records]
        try:
            helpers.bulk(self.client, actions)
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
        """Copy every article through `transform` into new indices, one for each index behind
        the alias, while writers go on; swap the alias to the copies in one request; delete the
        old indices once each copy holds every one of their ids. Returns the articles copied.

        1. Each old index gets its own copy, `<alias>-r<N>-<its generation>`: a name rollover
           never makes (it counts up the generation only), keeping the old index's age for the
           lifecycle (`index.lifecycle.origination_date`; `_meta` too, for the next rebuild).
        2. A copy is created under `<alias>-rebuilding`: from then on every bulk request
           writes to the old index and to its copy (see `index`).
        3. The old index is refreshed, so all written before step 2 is searchable, and read
           through a point in time with search_after; its articles go into the copy only where
           no live write has put a newer one (`create`).
        4. An index that rollover added meanwhile is copied the same way. The swap is one
           `_aliases` request, which the cluster refuses if the alias gained another write
           index in the meantime; then that index is copied and the swap tried again.
        5. The old indices are blocked for writes, checked id by id against their copies, and
           deleted, each name becoming an alias of its copy.
        On any failure before the swap the copies are deleted and the live indices are left as
        they were."""
        found = self.client.indices.get_alias(index=f"{self.alias}-*")
        self._discard_copies(  # left by a rebuild that died; the caller holds the rebuild lock
            name for name, info in found.items() if self.rebuilding_alias in info.get("aliases", {})
        )
        tag = self._next_rebuild_tag()
        copies: dict[str, str] = {}
        total, copied = self.count("*"), 0
        written_to: str | None = None  # the write index whose copy was made as the write copy

        def advance(page: int) -> None:
            nonlocal copied
            copied += page
            progress(copied, total)

        try:
            while True:
                layout = self._layout()
                if layout.write_index is None:
                    raise RuntimeError(f"the alias {self.alias} has no write index")
                if written_to is not None and written_to != layout.write_index:
                    self._rolled_over(written_to, copies[written_to])  # during the rebuild
                    written_to = None
                pending = [index for index in layout.live if index not in copies]
                if not pending:
                    if self._swap(layout, copies):
                        break
                    continue
                if layout.write_index in pending:
                    written_to = layout.write_index
                self._create_copies(pending, layout.write_index, tag, copies)
                for index in pending:
                    self.client.indices.refresh(index=index)
                    self._copy(index, copies[index], transform, advance)
        except BaseException:
            self._abandon(copies)
            raise
        self._retire(layout, copies, transform)
        return copied

    def _create_copies(self, indices: list[str], write_index: str, tag: int, copies: dict[str, str]) -> None:
        generations = [_generation(index) for index in indices]
        taken = [_generation(index) for index in copies]
        if None in generations or len(set(generations + taken)) < len(generations + taken):
            raise RuntimeError(f"cannot pair the indices behind {self.alias} by generation: {indices}")
        found = self.client.indices.get(index=",".join(indices))
        lifecycle_dates = self._lifecycle_dates(indices)
        for index, generation in zip(indices, generations, strict=True):
            origin = _origination(found[index], (lifecycle_dates or {}).get(index))
            # The write copy takes its age from its own rollover, as the old write index would have.
            settings = _rolled_over_settings(origin) if lifecycle_dates is not None and index != write_index else {}
            copy = f"{self.alias}-r{tag}-{generation:06d}"
            self.client.indices.create(
                index=copy,
                settings=settings or None,  # mapping and the rest come from the template
                mappings={"_meta": {"rebuilt_from": index, "origination_date": origin}},
                aliases={self.rebuilding_alias: {}},
            )
            copies[index] = copy

    def _rolled_over(self, index: str, copy: str) -> None:
        """The write index rolled over during the rebuild: its copy, made as the write copy, is
        now done with rollover too and takes the old index's lifecycle date."""
        dates = self._lifecycle_dates([index])
        if dates is not None and index in dates:
            self.client.indices.put_settings(index=copy, settings=_rolled_over_settings(dates[index]))

    def _lifecycle_dates(self, indices: list[str]) -> dict[str, int] | None:
        """When each index's lifecycle age counts from (its rollover, else its creation, or its
        origination date), or None on a cluster without index lifecycle management."""
        try:
            explained = self.client.ilm.explain_lifecycle(index=",".join(indices))
        except ApiError as error:
            if _no_handler(error):
                return None
            raise
        return {
            name: int(info["lifecycle_date_millis"])
            for name, info in explained["indices"].items()
            if info.get("managed") and "lifecycle_date_millis" in info
        }

    def _copy(
        self, index: str, copy: str, transform: Callable[[Article], Article], advance: Callable[[int], None]
    ) -> None:
        for hits in self._pages(index, source=True):
            actions = (
                {
                    "_op_type": "create",
                    "_index": copy,
                    "_id": hit["_id"],
                    "_source": index_document(transform(Article.model_validate(hit["_source"])).to_document()),
                }
                for hit in hits
            )
            failures = self._bulk(actions)
            if failures:
                raise RuntimeError(f"{len(failures)} articles refused by {copy}: {failures[0].reason}")
            advance(len(hits))

    def _pages(self, index: str, *, source: bool) -> Iterator[list[dict[str, Any]]]:
        """Every document of an index as it stood when this began, a page at a time: a point
        in time paged with search_after, so refreshes during the walk neither skip nor repeat."""
        pit = self.client.open_point_in_time(index=index, keep_alive=PIT_KEEP_ALIVE)["id"]
        try:
            after: list[Any] | None = None
            while True:
                page = self.client.search(
                    pit={"id": pit, "keep_alive": PIT_KEEP_ALIVE},
                    sort=[{"id": "asc"}],
                    size=BULK_CHUNK_DOCS,
                    search_after=after,
                    source=source,
                    track_total_hits=False,
                )
                pit = page.get("pit_id", pit)  # the cluster may hand out a new id; use the latest
                hits = page["hits"]["hits"]
                if not hits:
                    return
                yield hits
                after = hits[-1]["sort"]
        finally:
            self.client.close_point_in_time(id=pit)

    def _swap(self, layout: Layout, copies: dict[str, str]) -> bool:
        """Point the alias at the copies in one request; False when the cluster refused it
        because the alias changed (a rollover), so the new index must be copied first."""
        actions: list[dict[str, Any]] = [{"remove": {"index": index, "alias": self.alias}} for index in layout.live]
        actions += [
            {"add": {"index": copies[index], "alias": self.alias, "is_write_index": index == layout.write_index}}
            for index in layout.live
        ]
        actions.append({"remove": {"indices": list(copies.values()), "alias": self.rebuilding_alias}})
        try:
            self.client.indices.update_aliases(actions=actions)
        except ApiError:
            if self._layout().live == layout.live:
                raise
            return False
        # Copies of indices the lifecycle deleted during the rebuild expired with them.
        self._discard_copies([copy for index, copy in copies.items() if index not in layout.live])
        return True

    def _retire(self, layout: Layout, copies: dict[str, str], transform: Callable[[Article], Article]) -> None:
        """Delete the old indices once each copy holds every one of their ids."""
        for index in layout.live:
            # A writer that read the layout before the swap gets a refusal from here and
            # writes again where the alias now points (see `index`).
            self.client.indices.add_block(index=index, block="write")
        self.client.indices.refresh(index=",".join(layout.live))  # the check sees every write that got in
        for index in layout.live:
            missing = self._missing_ids(index, copies[index])
            if missing:
                found = self.client.mget(index=index, ids=missing)["docs"]
                articles = [transform(Article.model_validate(doc["_source"])) for doc in found if doc.get("found")]
                self._bulk(
                    {
                        "_op_type": "create",
                        "_index": copies[index],
                        "_id": a.id,
                        "_source": index_document(a.to_document()),
                    }
                    for a in articles
                )
                if self._missing_ids(index, copies[index]):
                    raise RuntimeError(
                        f"{copies[index]} lacks articles of {index}; {index} is kept, blocked for writes"
                    )
                log.warning("%d articles of %s reached %s only at the final check", len(missing), index, copies[index])
        # Each old name becomes an alias of its copy in the same request that deletes it: a
        # bulk request still on its way to the old name lands in the copy, and the cluster
        # never creates a stray index of that name.
        retire: list[dict[str, Any]] = []
        for index in layout.live:
            retire += [{"remove_index": {"index": index}}, {"add": {"index": copies[index], "alias": index}}]
        self.client.indices.update_aliases(actions=retire)

    def _missing_ids(self, index: str, copy: str) -> list[str]:
        missing = []
        for hits in self._pages(index, source=False):
            found = self.client.mget(index=copy, ids=[hit["_id"] for hit in hits], source=False)["docs"]
            missing += [doc["_id"] for doc in found if not doc.get("found")]
        return missing

    def _discard_copies(self, copies: Iterable[str]) -> None:
        """Delete rebuild copies, never one the alias already points to."""
        live = set(self._layout().live)
        for copy in copies:
            if copy not in live:
                self.client.indices.delete(index=copy, ignore_unavailable=True)

    def _abandon(self, copies: dict[str, str]) -> None:
        """Delete the copies of a failed rebuild, each name becoming an alias of the index it
        copied in the same request: a write still on its way to a copy lands in the live index
        (where the writer also put it) rather than in a stray index of that name."""
        found = self.client.indices.get_alias(index=f"{self.alias}-*")
        live = {name for name, info in found.items() if self.alias in info.get("aliases", {})}
        actions: list[dict[str, Any]] = []
        for index, copy in copies.items():
            if copy in found and copy not in live:
                actions.append({"remove_index": {"index": copy}})
                if index in live:
                    actions.append({"add": {"index": index, "alias": copy}})
        if actions:
            self.client.indices.update_aliases(actions=actions)

    def _next_rebuild_tag(self) -> int:
        found = self.client.indices.get_alias(index=f"{self.alias}-*")
        names = [*found, *(alias for info in found.values() for alias in info.get("aliases", {}))]
        tags = [int(match.group(1)) for name in names if (match := _REBUILD_TAG.search(name))]
        return max(tags, default=0) + 1


@dataclass(frozen=True)
class Layout:
    """The indices behind the articles alias, read once per bulk request."""

    live: tuple[str, ...]
    write_index: str | None
    copies: dict[str, str] = field(default_factory=dict)
    """During a rebuild: each live index's copy, which every write to it also goes to."""


def _generation(name: str) -> int | None:
    match = _GENERATION.search(name)
    return int(match.group(1)) if match else None


def _origination(index: dict[str, Any], lifecycle_date: int | None) -> int:
    """When an index's data counts as born: its lifecycle date, else what a previous rebuild
    kept, else its creation."""
    if lifecycle_date is not None:
        return lifecycle_date
    kept = index.get("mappings", {}).get("_meta", {}).get("origination_date")
    return int(kept) if kept is not None else int(index["settings"]["index"]["creation_date"])


def _rolled_over_settings(origination: int) -> dict[str, Any]:
    """A copy of a rolled-over index: retention counts from the old index's lifecycle date, not
    from the copy's creation, and the lifecycle skips rollover (the index takes no new writes)."""
    return {"index.lifecycle.origination_date": origination, "index.lifecycle.indexing_complete": True}


def _no_handler(error: ApiError) -> bool:
    return error.status_code in (400, 404, 405) and "no handler" in str(error)


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
