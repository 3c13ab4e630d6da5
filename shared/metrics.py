"""Metrics in the Prometheus format: every metric wirewatch exports is declared here, with the
few functions the call sites use (one line each) and the exporter the services start.

The API serves them at `/metrics`; the fetcher, worker and alerter each on their own port
(`WIREWATCH_FETCHER_METRICS_PORT`, `_WORKER_`, `_ALERTER_`; 0 turns one off). Counters and
histograms live in the process that counts; what Redis holds (queue depths, dead letters,
feed health) is read from Redis when the scraper asks, by `RedisCollector`, so nothing polls.

The worker's prefork pool counts in its child processes: those write their values to files in a
directory made for the run (`shared.multiprocess_metrics`), and the worker's exporter adds them
up at each scrape.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shared import multiprocess_metrics, redis_keys
from shared.settings import Settings

if TYPE_CHECKING:
    import redis

    from shared.article import Article

log = logging.getLogger(__name__)

MAX_SOURCES = 500
"""Distinct source labels one process keeps; later ones are counted as `other`, so a stream of
one-off senders (e-mail files) cannot grow the scrape without bound."""

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20)
_MATCH_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
_BULK_SIZES = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

STEP_ARTICLES_IN = Counter("wirewatch_step_articles_in", "Articles a pipeline step was given.", ["step", "source"])
STEP_ARTICLES_OUT = Counter(
    "wirewatch_step_articles_out",
    "Articles a pipeline step passed on (for index: written to the store by the bulk indexer).",
    ["step", "source"],
)
STEP_SECONDS = Histogram(
    "wirewatch_step_seconds", "Time one pipeline step took over one batch.", ["step"], buckets=_LATENCY_BUCKETS
)
QUARANTINED = Counter("wirewatch_quarantined", "Items kept as dead letters, by the stage they failed at.", ["stage"])
FEED_POLLS = Counter("wirewatch_feed_polls", "Feed polls, by outcome.", ["outcome"])
ALERTS = Counter("wirewatch_alerts", "Alert deliveries, by channel and outcome.", ["channel", "outcome"])
MATCH_SECONDS = Histogram(
    "wirewatch_match_seconds", "Time matching one article against every subscription took.", buckets=_MATCH_BUCKETS
)
BULK_ARTICLES = Histogram(
    "wirewatch_bulk_request_articles", "Articles in one bulk request to the store.", buckets=_BULK_SIZES
)
BULK_SECONDS = Histogram(
    "wirewatch_bulk_request_seconds", "Time one bulk request to the store took.", buckets=_LATENCY_BUCKETS
)
BULK_ERRORS = Counter(
    "wirewatch_bulk_errors",
    "Bulk indexing errors: `refused` articles (dead-lettered), `transient` requests (retried).",
    ["kind"],
)
HTTP_REQUESTS = Counter("wirewatch_http_requests", "API requests answered.", ["method", "route", "status"])
HTTP_SECONDS = Histogram(
    "wirewatch_http_request_seconds", "Time the API took to answer.", ["route"], buckets=_LATENCY_BUCKETS
)

_sources: set[str] = set()
_sources_lock = threading.Lock()


def source_label(source: str) -> str:
    """The `source` label for an article's source: bounded, see MAX_SOURCES."""
    name = source or "unknown"
    if name in _sources:
        return name
    with _sources_lock:
        if len(_sources) >= MAX_SOURCES:
            return "other"
        _sources.add(name)
    return name


def count_articles(metric: Counter, step: str, articles: Iterable[Article]) -> None:
    """Add articles to a per-step, per-source counter: one increment per source, not per article."""
    count_sources(metric, step, (article.source for article in articles))


def count_sources(metric: Counter, step: str, sources: Iterable[str]) -> None:
    """`count_articles` over the articles' sources alone."""
    for source, number in Tally(sources).items():
        metric.labels(step, source_label(source)).inc(number)


def record_step(step: str, given: Sequence[Article], passed: Sequence[Article], seconds: float) -> None:
    """What one step did with one batch: articles in and out per source, and its time."""
    count_articles(STEP_ARTICLES_IN, step, given)
    count_articles(STEP_ARTICLES_OUT, step, passed)
    STEP_SECONDS.labels(step).observe(seconds)


def record_bulk(articles: int, seconds: float, refused: int) -> None:
    """One bulk request: its size, its time and the articles the store refused."""
    BULK_ARTICLES.observe(articles)
    BULK_SECONDS.observe(seconds)
    if refused:
        BULK_ERRORS.labels("refused").inc(refused)


# -- what Redis holds, read at scrape time ----------------------------------------------------

# Celery's Redis transport keeps one list per priority (see `shared.queue`): the queue's own
# name for priority 0, the name with a separator and the number for the others.
_CELERY_PRIORITY_SEPARATOR = "\x06\x16"
# `shared.queue.PIPELINE_QUEUE`, named again because the API process must not load Celery (a test
# keeps the two equal).
PIPELINE_QUEUE = "pipeline"


def celery_queue_keys(queue: str) -> list[str]:
    """The Redis lists that hold a Celery queue's messages, one per priority."""
    return [queue] + [f"{queue}{_CELERY_PRIORITY_SEPARATOR}{priority}" for priority in range(1, 10)]


class RedisCollector(Collector):
    """Queue depths and dead letters (and, for the fetcher, feed health), read from Redis in one
    round trip each time the scraper asks. An unreachable Redis leaves them out of that scrape."""

    def __init__(self, client: redis.Redis, feed_health: Callable[[], Tally[str]] | None = None) -> None:
        self.client, self.feed_health = client, feed_health

    def collect(self) -> Iterator[Metric]:
        try:
            depths, dead_letters = self._read()
        except Exception as error:  # a scrape must answer even when Redis does not
            log.warning("metrics: Redis not read: %r", error)
            return
        queues = GaugeMetricFamily(
            "wirewatch_queue_depth",
            "Work waiting, per queue: chain messages, batches for the bulk indexer, deferred retries, "
            "alerts due, pushes not yet read.",
            labels=["queue"],
        )
        for name, depth in depths.items():
            queues.add_metric([name], depth)
        yield queues
        yield GaugeMetricFamily("wirewatch_dead_letters", "Items kept as dead letters, now.", value=dead_letters)
        if self.feed_health is not None:
            try:
                states = self.feed_health()
            except Exception as error:
                log.warning("metrics: feed health not read: %r", error)
                return
            feeds = GaugeMetricFamily("wirewatch_feeds", "Enabled and disabled feeds, by health.", labels=["health"])
            for health in ("ok", "failing", "silent", "disabled"):
                feeds.add_metric([health], states.get(health, 0))
            yield feeds

    def _read(self) -> tuple[dict[str, float], float]:
        pipe = self.client.pipeline(transaction=False)
        for key in celery_queue_keys(PIPELINE_QUEUE):
            pipe.llen(key)
        pipe.xlen(redis_keys.INDEX_STREAM)  # entries are deleted once written: what is left waits
        pipe.zcard(redis_keys.RETRIES)
        pipe.zcount(redis_keys.OUTBOX_DUE, "-inf", time.time())
        pipe.xlen(redis_keys.PUSH_STREAM)
        pipe.llen(redis_keys.DEAD_LETTERS)
        replies = pipe.execute()
        chain = replies[:10]
        index, retries, alerts_due, pushes, dead_letters = replies[10:]
        depths = {
            "pipeline": float(sum(chain)),
            "index": float(index),
            "retries": float(retries),
            "alerts": float(alerts_due),
            "push": float(pushes),
        }
        return depths, float(dead_letters)


# -- serving ----------------------------------------------------------------------------------


def metrics_registry(client: redis.Redis, feed_health: Callable[[], Tally[str]] | None = None) -> CollectorRegistry:
    """The registry one service serves: this process's metrics (or, under a process pool, the
    sum over its processes) and what Redis holds."""
    registry = CollectorRegistry(auto_describe=False)
    # prometheus-client's own switch, set for the worker by `multiprocess_metrics.prepare`
    directory = os.environ.get(multiprocess_metrics.DIRECTORY_VARIABLE)
    if directory:
        from prometheus_client.multiprocess import MultiProcessCollector

        MultiProcessCollector(registry, path=directory)
    else:
        registry.register(REGISTRY)
    registry.register(RedisCollector(client, feed_health))
    return registry


def serve_metrics(
    service: str, settings: Settings, client: redis.Redis, feed_health: Callable[[], Tally[str]] | None = None
) -> bool:
    """Serve a service's metrics on its port (`WIREWATCH_<SERVICE>_METRICS_PORT`) in a daemon
    thread; False when the port is 0 (metrics off) or taken (the service runs on without them,
    with a warning)."""
    port = int(getattr(settings, f"{service}_metrics_port"))
    if not port:
        return False
    host = settings.metrics_host
    registry = metrics_registry(client, feed_health)
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        log.warning("%s metrics not served on %s:%d: %s", service, host, port, error)
        return False
    log.info("%s metrics on http://%s:%d/metrics", service, host, port)
    return True
