"""The shipped Kibana saved objects: they parse, point only at mapped fields and at each
other, match what `setup --kibana` imports, and are imported through a real HTTP request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shared.kibana import export_ndjson, import_saved_objects
from shared.query import parse_query
from shared.settings import Settings
from shared.store.mapping import ALERT_MAPPING, ARTICLE_MAPPING

SHIPPED = Path(__file__).parents[1] / "deploy" / "kibana" / "wirewatch.ndjson"
FIELDS = {
    "wirewatch-articles": set(ARTICLE_MAPPING["properties"]),
    "wirewatch-alerts": set(ALERT_MAPPING["properties"]),
}


def shipped_objects() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SHIPPED.read_text("utf-8").splitlines()]


def test_the_shipped_file_is_what_setup_imports():
    assert SHIPPED.read_text("utf-8") == export_ndjson("wirewatch")


def test_references_point_at_objects_in_the_file():
    objects = shipped_objects()
    ids = {(item["type"], item["id"]) for item in objects}
    for item in objects:
        for reference in item["references"]:
            assert (reference["type"], reference["id"]) in ids, (item["id"], reference)
    assert {"index-pattern", "search", "lens", "dashboard"} == {item["type"] for item in objects}


def _data_view_of(item: dict[str, Any]) -> str:
    (view,) = [ref["id"] for ref in item["references"] if ref["type"] == "index-pattern"]
    return view


def test_every_field_used_exists_in_the_index_mapping():
    for item in shipped_objects():
        attributes = item["attributes"]
        if item["type"] == "index-pattern":
            assert attributes["timeFieldName"] in FIELDS[item["id"]]
        elif item["type"] == "search":
            fields = FIELDS[_data_view_of(item)]
            assert set(attributes["columns"]) <= fields
            assert {field for field, _ in attributes["sort"]} <= fields
            query = json.loads(attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]["query"]
            parse_query(query)  # valid in wirewatch's own query language, and so for Kibana's Lucene
            used = {part.split(":")[0].lstrip("-(") for part in query.split() if ":" in part}
            assert used <= fields, (item["id"], used - fields)
        elif item["type"] == "lens":
            fields = FIELDS[_data_view_of(item)]
            for layer in attributes["state"]["datasourceStates"]["formBased"]["layers"].values():
                sources = {column["sourceField"] for column in layer["columns"].values()} - {"___records___"}
                assert sources <= fields, (item["id"], sources - fields)


# What Kibana 9.2's export writes for each type (from its saved-object type definitions):
# written out here rather than imported, so a change in shared/kibana.py has to be deliberate.
KIBANA_9_2_VERSIONS = {"index-pattern": "8.0.0", "search": "10.6.0", "lens": "10.1.0", "dashboard": "10.3.0"}


def test_every_object_carries_the_migration_versions_kibana_9_2_exports():
    for item in shipped_objects():
        assert item.get("coreMigrationVersion") == "8.8.0", item["id"]
        assert item.get("typeMigrationVersion") == KIBANA_9_2_VERSIONS[item["type"]], item["id"]
        assert "migrationVersion" not in item  # the pre-8.8 form, which makes the importer migrate again


def test_lens_state_is_in_the_shape_current_lens_migrations_read():
    for item in (item for item in shipped_objects() if item["type"] == "lens"):
        state = item["attributes"]["state"]
        # Pre-8.x migrations read `indexpattern`; current Kibana reads only `formBased`.
        assert set(state["datasourceStates"]) == {"formBased"}, item["id"]
        layers = state["datasourceStates"]["formBased"]["layers"]
        references = {ref["name"] for ref in item["references"]}
        for layer_id, layer in layers.items():
            assert f"indexpattern-datasource-layer-{layer_id}" in references
            assert sorted(layer["columnOrder"]) == sorted(layer["columns"])
            for column in layer["columns"].values():
                assert {"label", "dataType", "operationType", "isBucketed", "sourceField"} <= set(column)
        visualization = state["visualization"]
        for shown in visualization.get("layers", [visualization]):
            columns = layers[shown["layerId"]]["columns"]
            used = [*shown.get("accessors", []), shown.get("xAccessor"), shown.get("splitAccessor")]
            used += [column["columnId"] for column in shown.get("columns", [])]
            assert {name for name in used if name} <= set(columns), item["id"]
        assert isinstance(state["filters"], list) and "query" in state


def test_the_dashboard_shows_tags_over_time_sources_countries_languages_stories_and_alerts():
    dashboard = next(item for item in shipped_objects() if item["type"] == "dashboard")
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    titles = {item["id"]: item["attributes"]["title"] for item in shipped_objects()}
    shown = [titles[ref["id"]] for ref in dashboard["references"]]
    assert len(panels) == len(shown) == 6
    assert {
        "Articles over time by tag",
        "Top sources",
        "Countries",
        "Languages",
        "Largest story clusters",
        "Alerts fired by subscription",
    } == set(shown)


@pytest.fixture
def kibana() -> Iterator[dict[str, Any]]:
    """A real HTTP server standing in for Kibana's import endpoint; it records the request."""
    seen: dict[str, Any] = {"success": True}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            seen["path"] = self.path
            seen["headers"] = dict(self.headers)
            seen["body"] = self.rfile.read(int(self.headers["Content-Length"]))
            lines = [line for line in seen["body"].split(b"\n") if line.startswith(b"{")]
            reply = {"success": seen["success"], "successCount": len(lines)}
            if not seen["success"]:
                reply["errors"] = [{"id": "wirewatch-articles", "error": {"type": "conflict"}}]
            payload = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    seen["url"] = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield seen
    server.shutdown()


def test_setup_imports_every_object_with_overwrite_and_credentials(kibana):
    settings = Settings(index_prefix="desk", elasticsearch_username="elastic", elasticsearch_password="pw")
    result = import_saved_objects(kibana["url"], settings)
    assert result["successCount"] == 13
    assert kibana["path"] == "/api/saved_objects/_import?overwrite=true"
    assert kibana["headers"]["kbn-xsrf"]
    assert kibana["headers"]["Authorization"].startswith("Basic ")
    assert kibana["headers"]["Content-Type"].startswith("multipart/form-data")
    assert b'"title": "desk-articles"' in kibana["body"] and b"wirewatch-articles" not in kibana["body"]


def test_a_refused_import_is_an_error(kibana):
    kibana["success"] = False
    with pytest.raises(RuntimeError, match="refused"):
        import_saved_objects(kibana["url"], Settings())


def test_a_discover_link_carries_the_query_as_rison_on_the_articles_data_view():
    from urllib.parse import unquote

    from shared.kibana import discover_url

    link = discover_url("https://kibana.example.org/", 'people:"O\'Brien" AND missile! #1', "news", days=3)
    assert link.startswith("https://kibana.example.org/app/discover#/?_g=(time:(from:now-3d,to:now))&_a=")
    state = unquote(link.split("&_a=", 1)[1])
    # rison quotes strings with ' and escapes ' and ! with a leading !
    assert (
        state
        == "(dataSource:(dataViewId:'news-articles',type:dataView),query:(language:lucene,query:'people:\"O!'Brien\" AND missile!! #1'))"
    )
    assert "#" not in link.split("#/?", 1)[1] and " " not in link
