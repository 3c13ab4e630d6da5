"""Kibana saved objects for wirewatch: data views, saved searches, Lens charts and a dashboard.

Built here from the index prefix, so `wirewatch setup --kibana URL` imports objects that
match the configured indices; `deploy/kibana/wirewatch.ndjson` is the same export for the
default prefix (a test keeps the two identical).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx

from shared.settings import Settings

CORE_MIGRATION_VERSION = "8.8.0"
"""What Kibana 9.2 writes in `coreMigrationVersion` of every export (unchanged since 8.8)."""
TYPE_MIGRATION_VERSIONS = {
    # The newest migration of each type in Kibana 9.2, as its exports carry it: the last legacy
    # migration for data views; "10.<model version>.0" for types on model versions.
    "index-pattern": "8.0.0",
    "search": "10.6.0",
    "lens": "10.1.0",
    "dashboard": "10.3.0",
}
"""An object without these is migrated by the importer from its oldest version; for Lens that
runs migrations that read a `state.datasourceStates.indexpattern` this file never writes,
and the whole import fails."""

ARTICLE_TIME_FIELD = "dated_at"
"""Publication time, or first-seen time for an undated article (see `index_document`)."""

ARTICLE_FIELDS_USED = (
    ARTICLE_TIME_FIELD,
    "dated_by",
    "published_at",
    "tags",
    "countries",
    "source",
    "lang",
    "cluster_id",
    "duplicate_of",
    "title",
    "url",
)
ALERT_FIELDS_USED = ("at", "subscription", "status")


def saved_objects(prefix: str = "wirewatch") -> list[dict[str, Any]]:
    """Every saved object, in import order (data views first)."""
    articles, alerts = f"{prefix}-articles", f"{prefix}-alerts"
    objects: list[dict[str, Any]] = [
        _data_view(articles, "wirewatch articles", ARTICLE_TIME_FIELD),
        _data_view(alerts, "wirewatch alert history", "at"),
    ]
    searches = [
        ("missile-tests", "Missile tests", "tags:missile-test"),
        ("sanctions", "Sanctions", "tags:sanctions"),
        ("north-korea", "North Korea (by country)", "countries:KP"),
        ("originals", "All articles, duplicates hidden", "NOT duplicate_of:*"),
    ]
    objects += [_saved_search(f"{prefix}-search-{key}", title, query, articles) for key, title, query in searches]
    charts = [
        _lens_over_time(
            f"{prefix}-lens-tags-over-time", "Articles over time by tag", articles, ARTICLE_TIME_FIELD, "tags"
        ),
        _lens_top_values(f"{prefix}-lens-top-sources", "Top sources", articles, "source"),
        _lens_top_values(f"{prefix}-lens-countries", "Countries", articles, "countries"),
        _lens_top_values(f"{prefix}-lens-languages", "Languages", articles, "lang"),
        _lens_top_values(f"{prefix}-lens-stories", "Largest story clusters", articles, "cluster_id"),
        _lens_over_time(f"{prefix}-lens-alerts", "Alerts fired by subscription", alerts, "at", "subscription"),
    ]
    objects += charts
    objects.append(_dashboard(f"{prefix}-dashboard", "wirewatch overview", charts))
    for item in objects:
        item["coreMigrationVersion"] = CORE_MIGRATION_VERSION
        item["typeMigrationVersion"] = TYPE_MIGRATION_VERSIONS[item["type"]]
    return objects


def export_ndjson(prefix: str = "wirewatch") -> str:
    """The saved objects as Kibana's import format: one JSON object per line."""
    return "".join(json.dumps(item, sort_keys=True) + "\n" for item in saved_objects(prefix))


def discover_url(kibana_url: str, query: str, prefix: str = "wirewatch", days: int = 7) -> str:
    """A link that opens Kibana's Discover on the articles data view with `query` (Lucene) over
    the last `days` days. The app state is rison, as Kibana writes it in its own URLs."""
    state = (
        f"(dataSource:(dataViewId:{_rison(f'{prefix}-articles')},type:dataView),"
        f"query:(language:lucene,query:{_rison(query)}))"
    )
    times = f"(time:(from:now-{days}d,to:now))"
    # Kibana reads its state from the fragment; quote what a URL may not hold as it is.
    return f"{kibana_url.rstrip('/')}/app/discover#/?_g={quote(times, safe=_RISON_SAFE)}&_a={quote(state, safe=_RISON_SAFE)}"


_RISON_SAFE = "():,!*-._~"


def _rison(text: str) -> str:
    # A rison string: always quoted, with ! and ' escaped by a leading !.
    return "'" + text.replace("!", "!!").replace("'", "!'") + "'"


def import_saved_objects(kibana_url: str, settings: Settings, *, client: httpx.Client | None = None) -> dict[str, Any]:
    """Import (overwriting, so it can run at every start) through Kibana's saved-objects API."""
    headers = {"kbn-xsrf": "wirewatch"}
    auth: Any = None
    if settings.elasticsearch_api_key is not None:
        headers["Authorization"] = f"ApiKey {settings.elasticsearch_api_key.get_secret_value()}"
    elif settings.elasticsearch_username and settings.elasticsearch_password is not None:
        auth = (settings.elasticsearch_username, settings.elasticsearch_password.get_secret_value())
    http = client or httpx.Client(
        timeout=60, verify=str(settings.elasticsearch_ca_certs) if settings.elasticsearch_ca_certs else True
    )
    response = http.post(
        kibana_url.rstrip("/") + "/api/saved_objects/_import",
        params={"overwrite": "true"},
        headers=headers,
        auth=auth,
        files={"file": ("wirewatch.ndjson", export_ndjson(settings.index_prefix).encode(), "application/ndjson")},
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    if not result.get("success", False):
        raise RuntimeError(f"Kibana refused some saved objects: {result.get('errors')}")
    return result


def _data_view(title: str, name: str, time_field: str) -> dict[str, Any]:
    return {
        "id": title,
        "type": "index-pattern",
        "attributes": {"title": title, "name": name, "timeFieldName": time_field},
        "references": [],
    }


def _saved_search(object_id: str, title: str, query: str, data_view: str) -> dict[str, Any]:
    source = {
        "query": {"query": query, "language": "lucene"},
        "filter": [],
        "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index",
    }
    return {
        "id": object_id,
        "type": "search",
        "attributes": {
            "title": title,
            "columns": ["title", "source", "tags", "countries", "url"],
            "sort": [[ARTICLE_TIME_FIELD, "desc"]],
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source)},
        },
        "references": [
            {"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern", "id": data_view}
        ],
    }


def _count_column() -> dict[str, Any]:
    return {
        "label": "Count",
        "dataType": "number",
        "operationType": "count",
        "sourceField": "___records___",
        "isBucketed": False,
        "scale": "ratio",
    }


def _terms_column(field: str, size: int) -> dict[str, Any]:
    return {
        "label": f"Top {field}",
        "dataType": "string",
        "operationType": "terms",
        "sourceField": field,
        "isBucketed": True,
        "scale": "ordinal",
        "params": {"size": size, "orderBy": {"type": "column", "columnId": "count"}, "orderDirection": "desc"},
    }


def _lens(
    object_id: str, title: str, data_view: str, kind: str, columns: dict[str, Any], visualization: dict[str, Any]
) -> dict[str, Any]:
    layer = {"columns": columns, "columnOrder": list(columns), "incompleteColumns": {}}
    return {
        "id": object_id,
        "type": "lens",
        "attributes": {
            "title": title,
            "visualizationType": kind,
            "state": {
                "datasourceStates": {"formBased": {"layers": {"layer": layer}}},
                "visualization": visualization,
                "query": {"query": "", "language": "lucene"},
                "filters": [],
                "internalReferences": [],
                "adHocDataViews": {},
            },
        },
        "references": [{"type": "index-pattern", "id": data_view, "name": "indexpattern-datasource-layer-layer"}],
    }


def _lens_over_time(object_id: str, title: str, data_view: str, time_field: str, split_field: str) -> dict[str, Any]:
    columns = {
        "split": _terms_column(split_field, 8),
        "time": {
            "label": time_field,
            "dataType": "date",
            "operationType": "date_histogram",
            "sourceField": time_field,
            "isBucketed": True,
            "scale": "interval",
            "params": {"interval": "auto"},
        },
        "count": _count_column(),
    }
    visualization = {
        "preferredSeriesType": "bar_stacked",
        "legend": {"isVisible": True, "position": "right"},
        "layers": [
            {
                "layerId": "layer",
                "layerType": "data",
                "seriesType": "bar_stacked",
                "xAccessor": "time",
                "splitAccessor": "split",
                "accessors": ["count"],
            }
        ],
    }
    return _lens(object_id, title, data_view, "lnsXY", columns, visualization)


def _lens_top_values(object_id: str, title: str, data_view: str, field: str) -> dict[str, Any]:
    columns = {"values": _terms_column(field, 15), "count": _count_column()}
    visualization = {
        "layerId": "layer",
        "layerType": "data",
        "columns": [{"columnId": "values"}, {"columnId": "count"}],
    }
    return _lens(object_id, title, data_view, "lnsDatatable", columns, visualization)


def _dashboard(object_id: str, title: str, charts: list[dict[str, Any]]) -> dict[str, Any]:
    panels = []
    for number, chart in enumerate(charts):
        wide = chart["attributes"]["visualizationType"] == "lnsXY"
        panels.append(
            {
                "type": "lens",
                "panelIndex": f"p{number}",
                "gridData": {
                    "x": 0 if wide else 24 * (number % 2),
                    "y": 15 * number,
                    "w": 48 if wide else 24,
                    "h": 15,
                    "i": f"p{number}",
                },
                "embeddableConfig": {},
                "panelRefName": f"panel_p{number}",
            }
        )
    return {
        "id": object_id,
        "type": "dashboard",
        "attributes": {
            "title": title,
            "panelsJSON": json.dumps(panels),
            "optionsJSON": json.dumps({"useMargins": True, "hidePanelTitles": False}),
            "timeRestore": True,
            "timeFrom": "now-30d",
            "timeTo": "now",
            "kibanaSavedObjectMeta": {
                "searchSourceJSON": json.dumps({"query": {"query": "", "language": "lucene"}, "filter": []})
            },
        },
        "references": [{"name": f"panel_p{n}", "type": "lens", "id": chart["id"]} for n, chart in enumerate(charts)],
    }
