"""Least privilege, tested at the request level. The test node is OpenSearch and has no
Elastic security API, so a recording proxy answers as Elasticsearch documents it (role and
API-key APIs) and the tests check the exact requests `wirewatch setup --security` sends, the
key files it writes, and that services then authenticate with their key. Whether each role is
enough, and no more, is checked against what each service's store code sends to the real node:
every request is mapped to the index privileges Elasticsearch would ask for."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from services.cli import main
from shared.settings import Settings, get_settings
from shared.store.elastic import ElasticsearchStore, elasticsearch_client
from shared.store.security import KEY_FILE, key_id_of
from tests.es_proxy import EsProxy, Recorded

NOWHERE = "http://127.0.0.1:9"  # the proxy answers every request; nothing is forwarded
SUPERUSER = "Basic " + base64.b64encode(b"elastic:changeme").decode()

ARTICLES = ["news-articles", "news-articles-*"]
WIREWATCH = {"application": "wirewatch"}
EXPECTED_ROLES = {
    "news-fetcher": {"cluster": [], "indices": [{"names": ARTICLES, "privileges": ["read"]}]},
    "news-worker": {
        "cluster": [],
        "indices": [{"names": ARTICLES, "privileges": ["index", "read", "view_index_metadata"]}],
    },
    "news-alerter": {
        "cluster": [],
        "indices": [
            {"names": ARTICLES, "privileges": ["read"]},
            {"names": ["news-alerts"], "privileges": ["index"]},
        ],
    },
    "news-api": {
        "cluster": [],
        "indices": [
            {"names": ARTICLES, "privileges": ["read"]},
            {"names": ["news-alerts"], "privileges": ["read", "index"]},
        ],
    },
    "news-kibana-reader": {
        "cluster": [],
        "indices": [{"names": [*ARTICLES, "news-alerts"], "privileges": ["read", "view_index_metadata"]}],
        "applications": [
            {
                "application": "kibana-.kibana",
                "privileges": ["feature_discover.read", "feature_dashboard.read", "feature_visualize.read"],
                "resources": ["space:default"],
            }
        ],
    },
}
SERVICES = ["fetcher", "worker", "alerter", "api"]


class ElasticSecurity:
    """Answers as Elasticsearch 9 does: the store's setup requests are acknowledged, and API
    keys are created, looked up and invalidated in a small registry."""

    def __init__(self) -> None:
        self.active: dict[str, str] = {}
        self.created = 0

    def __call__(self, request: Recorded) -> tuple[int, dict[str, Any]]:
        path, query = urlsplit(request.path).path, parse_qs(urlsplit(request.path).query)
        if request.method == "HEAD":
            return 200, {}
        if path.startswith("/_security/role/"):
            return 200, {"role": {"created": True}}
        if path == "/_security/api_key" and request.method in ("PUT", "POST"):  # both documented
            self.created += 1
            key_id, secret = f"key{self.created}", f"secret{self.created}"
            self.active[key_id] = request.json()["name"]
            encoded = base64.b64encode(f"{key_id}:{secret}".encode()).decode()
            return 200, {"id": key_id, "name": request.json()["name"], "api_key": secret, "encoded": encoded}
        if path == "/_security/api_key" and request.method == "GET":
            key_id = query["id"][0]
            if key_id not in self.active:
                return 404, {"error": {"type": "resource_not_found_exception"}, "status": 404}
            return 200, {"api_keys": [{"id": key_id, "name": self.active[key_id], "invalidated": False}]}
        if path == "/_security/api_key" and request.method == "DELETE":
            ids = request.json()["ids"]
            for key_id in ids:
                self.active.pop(key_id, None)
            return 200, {"invalidated_api_keys": ids, "previously_invalidated_api_keys": [], "error_count": 0}
        return 200, {"acknowledged": True}


@pytest.fixture
def elastic(settings, monkeypatch) -> Iterator[tuple[EsProxy, ElasticSecurity]]:
    security = ElasticSecurity()
    proxy = EsProxy(NOWHERE, answer=security).start()
    monkeypatch.setenv("WIREWATCH_ELASTICSEARCH_URL", proxy.url)
    monkeypatch.setenv("WIREWATCH_ELASTICSEARCH_USERNAME", "elastic")
    monkeypatch.setenv("WIREWATCH_ELASTICSEARCH_PASSWORD", "changeme")
    monkeypatch.setenv("WIREWATCH_INDEX_PREFIX", "news")
    get_settings.cache_clear()
    yield proxy, security
    proxy.stop()


def setup_security(keys: Path, *extra: str) -> int:
    get_settings.cache_clear()
    return main(["setup", "--security", "--keys-dir", str(keys), *extra])


def test_setup_security_puts_one_role_per_service_with_only_the_privileges_it_uses(elastic, tmp_path, capsys):
    proxy, _ = elastic
    assert setup_security(tmp_path / "keys") == 0

    roles = {r.path.removeprefix("/_security/role/"): r.json() for r in proxy.sent("PUT", "/_security/role/")}
    assert roles == {
        name: {**body, "metadata": {**WIREWATCH, "service": name.removeprefix("news-")}}
        for name, body in EXPECTED_ROLES.items()
    }
    for body in roles.values():  # nothing can manage the cluster, templates, policies or security
        assert body["cluster"] == []
        assert all(not {"all", "manage", "delete", "delete_index"} & set(i["privileges"]) for i in body["indices"])
    assert "security: worker: role news-worker, new key" in capsys.readouterr().out


def test_setup_security_gives_each_service_its_own_key_with_its_role_inline(elastic, tmp_path):
    proxy, _ = elastic
    keys = tmp_path / "keys"
    assert setup_security(keys) == 0

    created = [r.json() for r in proxy.sent("PUT", "/_security/api_key")]
    assert created == [
        {
            "name": f"news-{service}",
            "role_descriptors": {f"news-{service}": EXPECTED_ROLES[f"news-{service}"]},
            "metadata": {**WIREWATCH, "service": service},
        }
        for service in SERVICES
    ]
    assert {r.headers.get("authorization") for r in proxy.requests} == {SUPERUSER}
    for number, service in enumerate(SERVICES, start=1):
        key_file = keys / service / KEY_FILE
        assert key_id_of(key_file.read_text().strip()) == f"key{number}"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    env = (keys / "elasticsearch-api-keys.env").read_text().splitlines()
    assert [line.split("=", 1)[0] for line in env] == [f"{s.upper()}_ELASTICSEARCH_API_KEY" for s in SERVICES]
    assert stat.S_IMODE((keys / "elasticsearch-api-keys.env").stat().st_mode) == 0o600


def test_running_setup_again_keeps_keys_that_still_work(elastic, tmp_path):
    proxy, security = elastic
    keys = tmp_path / "keys"
    setup_security(keys)
    before = {s: (keys / s / KEY_FILE).read_text() for s in SERVICES}
    proxy.requests.clear()

    assert setup_security(keys) == 0
    assert proxy.sent("PUT", "/_security/api_key") == [] and proxy.sent("DELETE", "/_security/api_key") == []
    looked_up = [parse_qs(urlsplit(r.path).query) for r in proxy.sent("GET", "/_security/api_key")]
    assert looked_up == [{"id": [f"key{n}"], "active_only": ["true"]} for n in range(1, 5)]
    assert {s: (keys / s / KEY_FILE).read_text() for s in SERVICES} == before
    assert security.created == 4


def test_a_key_invalidated_elsewhere_is_replaced(elastic, tmp_path):
    proxy, security = elastic
    keys = tmp_path / "keys"
    setup_security(keys)
    del security.active["key2"]  # the worker's key, invalidated in Kibana

    assert setup_security(keys) == 0
    assert [r.json()["name"] for r in proxy.sent("PUT", "/_security/api_key")][4:] == ["news-worker"]
    assert key_id_of((keys / "worker" / KEY_FILE).read_text().strip()) == "key5"


def test_rotating_writes_new_keys_before_invalidating_the_old_ones(elastic, tmp_path):
    proxy, security = elastic
    keys = tmp_path / "keys"
    setup_security(keys)
    proxy.requests.clear()

    assert setup_security(keys, "--rotate-keys") == 0
    steps = [
        (r.method, r.json()["name"] if r.method == "PUT" else r.json()["ids"])
        for r in proxy.requests
        if r.path.startswith("/_security/api_key")
    ]
    assert steps == [
        step for n, s in enumerate(SERVICES, start=1) for step in (("PUT", f"news-{s}"), ("DELETE", [f"key{n}"]))
    ]
    assert sorted(security.active) == ["key5", "key6", "key7", "key8"]
    assert key_id_of((keys / "api" / KEY_FILE).read_text().strip()) == "key8"


def test_refused_security_setup_is_one_clear_line(elastic, tmp_path, capsys):
    proxy, security = elastic

    def forbid(request: Recorded) -> tuple[int, dict[str, Any]]:
        if request.path.startswith("/_security/"):
            reason = "action [cluster:admin/xpack/security/role/put] is unauthorized for user [ingest]"
            return 403, {"error": {"type": "security_exception", "reason": reason}, "status": 403}
        return security(request)

    proxy.answer = forbid
    assert setup_security(tmp_path / "keys") == 2
    assert "security setup refused" in capsys.readouterr().err
    assert not (tmp_path / "keys").exists()


def test_security_needs_elasticsearch(settings, tmp_path, capsys):
    assert main(["setup", "--security", "--keys-dir", str(tmp_path)]) == 2
    assert "--security needs WIREWATCH_ELASTICSEARCH_URL" in capsys.readouterr().err
    assert main(["setup", "--rotate-keys"]) == 2
    assert "--rotate-keys and --keys-dir go with --security" in capsys.readouterr().err


def test_a_service_started_with_its_key_file_sends_only_that_key(elastic, tmp_path, monkeypatch):
    proxy, _ = elastic
    keys = tmp_path / "keys"
    setup_security(keys)
    proxy.requests.clear()
    proxy.answer = lambda request: (200, {"count": 3, "_shards": {"total": 1, "successful": 1, "failed": 0}})
    monkeypatch.delenv("WIREWATCH_ELASTICSEARCH_USERNAME")
    monkeypatch.delenv("WIREWATCH_ELASTICSEARCH_PASSWORD")
    monkeypatch.setenv("WIREWATCH_ELASTICSEARCH_API_KEY_FILE", str(keys / "worker" / KEY_FILE))
    get_settings.cache_clear()

    settings = get_settings()
    store = ElasticsearchStore(elasticsearch_client(settings), "news")
    assert store.count("*") == 3
    encoded = (keys / "worker" / KEY_FILE).read_text().strip()
    assert [r.headers.get("authorization") for r in proxy.requests] == [f"ApiKey {encoded}"]
    assert encoded not in repr(settings)


def test_a_missing_or_empty_key_file_is_a_clear_settings_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read WIREWATCH_ELASTICSEARCH_API_KEY_FILE"):
        Settings(elasticsearch_api_key_file=tmp_path / "absent")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="holds no API key"):
        Settings(elasticsearch_api_key_file=tmp_path / "empty")


def test_an_api_key_set_directly_wins_over_the_file(tmp_path):
    (tmp_path / "key").write_text("from-file\n")
    settings = Settings(elasticsearch_api_key="from-env", elasticsearch_api_key_file=tmp_path / "key")
    assert settings.elasticsearch_api_key is not None
    assert settings.elasticsearch_api_key.get_secret_value() == "from-env"


def test_tls_is_verified_unless_turned_off():
    verified = elasticsearch_client(Settings(elasticsearch_url="https://es.internal:9200"))
    assert verified.transport.node_pool.all()[0].config.verify_certs is True

    with pytest.warns(Warning, match="verify_certs=False is insecure"):
        unverified = elasticsearch_client(
            Settings(elasticsearch_url="https://es.internal:9200", elasticsearch_verify_certs=False)
        )
    assert unverified.transport.node_pool.all()[0].config.verify_certs is False


def test_key_ids_are_read_from_encoded_keys_only():
    assert key_id_of(base64.b64encode(b"abc:def").decode()) == "abc"
    assert key_id_of("not base64!") is None
    assert key_id_of(base64.b64encode(b"no-colon").decode()) is None
    assert json.loads(json.dumps(EXPECTED_ROLES))  # plain JSON, as the role API takes it


def test_a_ca_file_needs_an_https_url_and_an_empty_one_is_unset(tmp_path):
    with pytest.raises(ValueError, match="must be https://"):
        Settings(elasticsearch_url="http://es:9200", elasticsearch_ca_certs=tmp_path / "ca.crt")
    assert Settings(elasticsearch_url="http://es:9200", elasticsearch_ca_certs="").elasticsearch_ca_certs is None
    assert Settings(elasticsearch_api_key_file="").elasticsearch_api_key is None


# -- each role covers what its service's store code sends (real node, through the proxy) -------

IMPLIED = {"index": {"index", "create", "create_doc"}, "read": {"read"}, "view_index_metadata": {"view_index_metadata"}}


def privileges_needed(request: Recorded) -> list[tuple[str, str]]:
    """(index or alias name, privilege) pairs an Elasticsearch request needs, for the kinds of
    request the store sends; any other kind fails the test, so a new one must be placed here."""
    parts = [part for part in urlsplit(request.path).path.split("/") if part]
    if parts[-1] == "_bulk":
        default = parts[0] if len(parts) == 2 else None
        actions = [json.loads(line) for line in request.body.splitlines()[::2] if line.strip()]
        return [(meta.get("_index", default), op) for action in actions for op, meta in action.items()]
    if parts[-1] == "_mget":
        return [(doc["_index"], "read") for doc in request.json()["docs"]]
    if parts[-1] in ("_search", "_count"):
        return [(name, "read") for name in parts[0].split(",")]
    if "_alias" in parts:  # GET _alias/<alias> or GET <indices>/_alias
        return [(parts[-1] if parts[0] == "_alias" else parts[0], "view_index_metadata")]
    if len(parts) == 3 and parts[1] == "_doc" and request.method in ("PUT", "POST"):
        return [(parts[0], "index")]
    raise AssertionError(f"no privilege known for {request.method} {request.path}")


def granting(role: dict[str, Any], name: str, privilege: str) -> set[tuple[int, str]]:
    """The (role entry, granted privilege) pairs that allow `privilege` on `name`."""
    from fnmatch import fnmatchcase

    return {
        (number, granted)
        for number, entry in enumerate(role["indices"])
        if any(fnmatchcase(name, pattern) for pattern in entry["names"])
        for granted in entry["privileges"]
        if privilege in IMPLIED.get(granted, {granted})
    }


def test_each_role_allows_every_request_its_service_sends_and_grants_nothing_unused(engine_url):
    from shared.store.security import service_roles
    from tests.es_node import PlainJsonNode
    from tests.factories import make_article

    admin = ElasticsearchStore(
        elasticsearch_client(Settings(elasticsearch_url=engine_url), node_class=PlainJsonNode), "news"
    )
    admin.setup()
    stored = [make_article(f"Report {n}", "Officials described it.", url=f"https://example.org/{n}") for n in range(2)]
    admin.index(stored)
    # A rollover, so that the worker looks up and replaces copies in the older index.
    admin.client.indices.create(index="news-articles-000002")
    admin.client.indices.update_aliases(
        actions=[
            {"add": {"index": "news-articles-000001", "alias": "news-articles", "is_write_index": False}},
            {"add": {"index": "news-articles-000002", "alias": "news-articles", "is_write_index": True}},
        ]
    )
    admin.refresh()
    alert = {
        "id": "a1",
        "at": "2026-01-01T00:00:00+00:00",
        "subscription": "s",
        "subscription_id": "s1",
        "owner": "o",
        "channel": "webhook",
        "status": "cancelled",
        "attempts": 1,
    }
    # What each service's code does with the store (see the README's Security table).
    what_each_service_does = {
        "worker": lambda store: store.index([stored[0], make_article("New report", url="https://example.org/new")]),
        "alerter": lambda store: store.record_alert(alert),
        "api": lambda store: (store.search("report"), store.alert_history(10), store.record_alert(alert)),
        "fetcher": lambda store: None,
    }
    roles = service_roles("news")
    needed: dict[str, set[tuple[str, str]]] = {}
    for service, work in what_each_service_does.items():
        proxy = EsProxy(engine_url).start()
        try:
            store = ElasticsearchStore(
                elasticsearch_client(Settings(elasticsearch_url=proxy.url), node_class=PlainJsonNode), "news"
            )
            work(store)
            store.count("*")  # every service's health check
        finally:
            proxy.stop()
        needed[service] = {pair for request in proxy.requests for pair in privileges_needed(request)}
        refused = {pair for pair in needed[service] if not granting(roles[service], *pair)}
        assert not refused, f"{service} would be refused {refused}"
        used = {grant for pair in needed[service] for grant in granting(roles[service], *pair)}
        granted = {(n, p) for n, entry in enumerate(roles[service]["indices"]) for p in entry["privileges"]}
        assert used == granted, f"{service} is granted what it never uses: {granted - used}"
    assert {
        ("news-articles-*", "view_index_metadata"),
        ("news-articles-000001", "read"),
        ("news-articles-000001", "index"),
        ("news-articles-000002", "index"),
    } <= needed["worker"]
