"""The Elasticsearch index design for articles, in one place: fields, analyzers and size limits."""

from __future__ import annotations

from typing import Any

MAX_TEXT_CHARS = 500_000
"""Longer article bodies are cut before indexing; no news article comes near it."""
MAX_KEYWORD_CHARS = 1024
"""Keyword values longer than this are kept in `_source` but not indexed (`ignore_above`)."""
MAX_LIST_ITEMS = 200
"""At most this many tags, countries, people or organizations per article."""

_KEYWORD = {"type": "keyword", "ignore_above": MAX_KEYWORD_CHARS}
# Stemmed for search; `.exact` keeps every word as written, for exact phrases in Kibana.
_TEXT = {"type": "text", "analyzer": "english", "fields": {"exact": {"type": "text", "analyzer": "standard"}}}
_DATE = {"type": "date", "ignore_malformed": True}

ARTICLE_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "id": {"type": "keyword"},
        "url": _KEYWORD,
        "canonical_url": _KEYWORD,
        "guid": _KEYWORD,
        "source": _KEYWORD,
        "origin": {"type": "keyword", "index": False},
        "title": _TEXT,
        "author": _KEYWORD,
        "extraction": _KEYWORD,
        "text": _TEXT,
        "published_at": _DATE,
        # Kibana's time field: every article has one, so none drops out of a time-filtered view.
        "dated_at": {"type": "date"},
        "dated_by": {"type": "keyword"},
        "ingested_at": _DATE,
        "updated_at": _DATE,
        "version": {"type": "integer"},
        "lang": _KEYWORD,
        "tags": _KEYWORD,
        "tag_evidence": {"type": "object", "enabled": False},
        "tag_scores": {"type": "object", "enabled": False},
        "entity_scores": {"type": "object", "enabled": False},
        "evidence": {"type": "object", "enabled": False},
        "countries": _KEYWORD,
        "people": _KEYWORD,
        "organizations": _KEYWORD,
        "duplicate_of": _KEYWORD,
        "cluster_id": _KEYWORD,
        "notes": {"type": "text", "index": False},
    },
}

INDEX_SETTINGS: dict[str, Any] = {
    "number_of_shards": 1,
    # A new article is searchable within a second; no request ever forces a refresh.
    "refresh_interval": "1s",
}


def limit_document(doc: dict[str, Any]) -> dict[str, Any]:
    """Trim a document to the sizes the index accepts, so that no article is refused for size."""
    if len(doc.get("text") or "") > MAX_TEXT_CHARS:
        doc["text"] = doc["text"][:MAX_TEXT_CHARS]
    for name in ("tags", "countries", "people", "organizations"):
        if len(doc.get(name) or []) > MAX_LIST_ITEMS:
            doc[name] = doc[name][:MAX_LIST_ITEMS]
    return doc


DATED_BY_PUBLISHED = "published"
DATED_BY_FIRST_SEEN = "first_seen"


def index_document(doc: dict[str, Any]) -> dict[str, Any]:
    """An article's document as the index keeps it: trimmed to the limits, with the time field
    Kibana filters on (`dated_at`): its publication time, or, when it has none, the time
    wirewatch first saw it, marked so in `dated_by`."""
    if doc.get("published_at"):
        doc["dated_at"], doc["dated_by"] = doc["published_at"], DATED_BY_PUBLISHED
    else:
        doc["dated_at"], doc["dated_by"] = doc["ingested_at"], DATED_BY_FIRST_SEEN
    return limit_document(doc)


ALERT_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "at": {"type": "date"},
        "subscription": {"type": "keyword"},
        "subscription_id": {"type": "keyword"},
        "owner": {"type": "keyword"},
        "channel": {"type": "keyword"},
        "query": {"type": "keyword", "index": False},
        "article_id": {"type": "keyword"},
        "title": {"type": "text", "analyzer": "english"},
        "url": {"type": "keyword", "ignore_above": MAX_KEYWORD_CHARS},
        "status": {"type": "keyword"},
        "attempts": {"type": "integer"},
        "matched_terms": {"type": "keyword"},
        "error": {"type": "text", "index": False},
    },
}
"""The alert history: one document per (subscription, article), with its delivery outcome."""
