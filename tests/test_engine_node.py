"""The real search node of the test session: it must never be skipped silently in CI."""

from __future__ import annotations

import pytest

from tests import engine_node


def test_a_missing_engine_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the real search engine"):
        engine_node.unavailable("java is not installed")


def test_a_missing_engine_skips_on_a_laptop(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        engine_node.unavailable("java is not installed")


def test_the_session_node_is_lucene_with_the_english_analyzer(engine_url):
    from shared.settings import Settings
    from shared.store.elastic import elasticsearch_client
    from tests.es_node import PlainJsonNode

    client = elasticsearch_client(Settings(elasticsearch_url=engine_url), node_class=PlainJsonNode)
    assert client.info()["version"]["lucene_version"].startswith("9.")
    tokens = client.indices.analyze(analyzer="english", text="Technological assemblies")["tokens"]
    assert [token["token"] for token in tokens] == ["technolog", "assembl"]
