"""Metrics: what each service exports after a real run (real Redis, the worker's prefork pool,
fetcher, alerter and API as processes, a real webhook receiver), what Redis-held gauges read,
and that the Grafana dashboard and the scrape config only name what is exported."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shared import redis_keys
from shared.alerting.subscriptions import save_subscription, webhook_subscription
from shared.deadletters import quarantine
from shared.feeds.registry import Feed
from shared.feeds.source import FeedSource, feed_client
from shared.feeds.status import health_counts
from shared.metrics import PIPELINE_QUEUE, RedisCollector, celery_queue_keys, metrics_registry
from shared.settings import Settings
from shared.tokens import create_token
from tests.processes import free_port, stop_groups
from tests.test_feeds import Reply, serve_courier

ROOT = Path(__file__).parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "wirewatch.json"
SCRAPE_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict[Any, float], name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (0 when none)."""
    return sum(
        number
        for (found, found_labels), number in scraped.items()
        if found == name and set(labels.items()) <= set(found_labels)
    )


def scrape(url: str) -> dict[Any, float]:
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain")
        return samples(reply.read().decode())


def exported_names(registry: Any) -> set[str]:
    """The sample names a registry can export, from its `# TYPE` lines (present before any count)."""
    names = set()
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            if name.endswith("_created"):
                continue  # when a series began: not something to chart
            suffixes = {"histogram": ["_bucket", "_sum", "_count"]}.get(kind, [""])  # a counter's is named _total
            names.update(name + suffix for suffix in suffixes)
    return names


def test_the_dashboard_is_well_formed_and_names_only_exported_metrics(redis_client):
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    registry = metrics_registry(redis_client, feed_health=lambda: health_counts(redis_client, []))
    exported = exported_names(registry)
    expressions = [
        target["expr"] for panel in dashboard["panels"] if panel["type"] != "row" for target in panel["targets"]
    ]
    named = {name for expression in expressions for name in re.findall(r"\bwirewatch_\w+", expression)}
    assert len(expressions) >= 15 and {panel["id"] for panel in dashboard["panels"]} == set(
        range(1, len(dashboard["panels"]) + 1)
    )
    assert named - exported == set()
    # every metric family wirewatch declares is on the dashboard
    families = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in exported if name.startswith("wirewatch_")}
    assert families - {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in named} == set()


def test_the_scrape_config_points_at_each_services_default_port():
    config = yaml.safe_load(SCRAPE_CONFIG.read_text("utf-8"))
    ports = {}
    for job in config["scrape_configs"]:
        if "static_configs" in job:
            (target,) = job["static_configs"][0]["targets"]
            ports[job["job_name"]] = int(target.rsplit(":", 1)[1])
        else:
            ports[job["job_name"]] = job["dns_sd_configs"][0]["port"]
    defaults = Settings.model_fields
    assert ports == {
        "wirewatch-api": int(str(defaults["api_bind"].default).rsplit(":", 1)[1]),
        "wirewatch-fetcher": defaults["fetcher_metrics_port"].default,
        "wirewatch-worker": defaults["worker_metrics_port"].default,
        "wirewatch-alerter": defaults["alerter_metrics_port"].default,
    }


def test_the_collector_names_celerys_queue():
    from shared.queue import PIPELINE_QUEUE as CELERY_QUEUE

    assert PIPELINE_QUEUE == CELERY_QUEUE


def test_queue_depths_and_dead_letters_are_read_from_redis_at_each_scrape(redis_client):
    registry = metrics_registry(redis_client)
    before = samples(generate_latest(registry).decode())
    assert value(before, "wirewatch_queue_depth", queue="pipeline") == 0
    assert value(before, "wirewatch_dead_letters") == 0

    keys = celery_queue_keys(PIPELINE_QUEUE)
    redis_client.rpush(keys[0], "a", "b")
    redis_client.rpush(keys[5], "c")  # a later step's priority
    redis_client.xadd(redis_keys.INDEX_STREAM, {"batch": "{}"})
    redis_client.zadd(redis_keys.RETRIES, {"x": time.time() + 60})
    redis_client.zadd(redis_keys.OUTBOX_DUE, {"due": time.time() - 1, "later": time.time() + 3600})
    redis_client.xadd(redis_keys.PUSH_STREAM, {"article": "{}"})
    quarantine(redis_client, stage="clean", reason="test", item={"id": "x"})

    after = samples(generate_latest(registry).decode())
    depths = {queue: value(after, "wirewatch_queue_depth", queue=queue) for queue in ("pipeline", "index", "retries")}
    assert depths == {"pipeline": 3, "index": 1, "retries": 1}
    assert value(after, "wirewatch_queue_depth", queue="alerts") == 1  # only what is due
    assert value(after, "wirewatch_queue_depth", queue="push") == 1
    assert value(after, "wirewatch_dead_letters") == 1
    assert value(after, "wirewatch_quarantined_total", stage="clean") - value(
        before, "wirewatch_quarantined_total", stage="clean"
    ) == pytest.approx(1)


def test_a_scrape_answers_when_redis_does_not(settings):
    import redis

    unreachable = redis.Redis(port=free_port(), socket_connect_timeout=0.2)
    text = generate_latest(metrics_registry(unreachable)).decode()
    assert "# TYPE wirewatch_step_seconds histogram" in text  # the process's own metrics are served
    assert "wirewatch_queue_depth" not in text and "wirewatch_dead_letters " not in text
    assert list(RedisCollector(unreachable).collect()) == []


def test_feed_polls_are_counted_by_outcome_and_feed_health_is_read(feed_server, settings, redis_client):
    def polls(outcome: str) -> float:
        return REGISTRY.get_sample_value("wirewatch_feed_polls_total", {"outcome": outcome}) or 0.0

    before = {outcome: polls(outcome) for outcome in ("new", "unchanged", "failed", "gone")}
    feed = serve_courier(feed_server)
    broken = Feed(url=feed_server.url("/down.rss"))
    feed_server.replies["/down.rss"] = Reply(500, b"oops")
    gone = Feed(url=feed_server.url("/gone.rss"))
    feed_server.replies["/gone.rss"] = Reply(410, b"gone")
    source = FeedSource([feed, broken, gone], redis_client, settings, feed_client(settings))
    delivery = source.fetch(feed)
    assert delivery is not None
    delivery.on_enqueued()
    assert source.fetch(feed) is None
    assert source.fetch(broken) is None and source.fetch(gone) is None
    counted = {outcome: polls(outcome) - before[outcome] for outcome in before}
    assert counted == {"new": 1, "unchanged": 1, "failed": 1, "gone": 1}
    assert health_counts(redis_client, [feed, broken, gone]) == {"ok": 1, "failing": 1, "disabled": 1}


# -- a real run ---------------------------------------------------------------------------------

ARTICLES = [
    ("Harbour authority opens new ferry terminal", "The terminal on the north quay will serve three island routes."),
    ("Orchard growers report a record apple harvest", "Cool nights in September gave the fruit its colour."),
    ("City library extends its weekend hours", "Readers can borrow books on Sunday afternoons from next month."),
    ("Zebrafish study wins marine biology prize", "The team tracked how the fish regrow damaged fins."),
    ("Cycling lane on the river road is finished", "The two-kilometre lane links the station with the old town."),
]
ALERTING_TITLE = "Zebrafish study wins marine biology prize"


class Services:
    """The four services as real processes, as `wirewatch <service>` starts them."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, service: str, *args: str) -> None:
        with open(self.log(service), "wb") as log_file:
            self.processes[service] = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "--log-level", "info", service, *args],
                env=self.env,
                cwd=ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stopping the worker stops its pool too
            )

    def log(self, service: str) -> Path:
        return self.folder / f"{service}.log"

    def stop(self) -> None:
        stop_groups(self.processes.values())

    def wait_for_line(self, service: str, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.log(service).read_text("utf-8", errors="replace"))
            if found:
                return found
            assert self.processes[service].poll() is None, self.log(service).read_text("utf-8", errors="replace")
            time.sleep(0.2)
        raise AssertionError(f"{service} never logged {pattern!r}:\n{self.log(service).read_text('utf-8')}")


def wait_for_scrape(url: str, condition: Any, timeout: float = 120) -> dict[Any, float]:
    deadline = time.monotonic() + timeout
    scraped: dict[Any, float] = {}
    while time.monotonic() < deadline:
        try:
            scraped = scrape(url)
        except OSError:
            scraped = {}
        if scraped and condition(scraped):
            return scraped
        time.sleep(0.5)
    raise AssertionError(f"{url} never showed what was expected; last scrape: {scraped}")


@pytest.mark.timeout(300)
def test_every_service_exports_what_a_real_run_did(settings, redis_client, receiver, tmp_path):
    ports = {service: free_port() for service in ("fetcher", "worker", "alerter")}
    env = {
        **os.environ,
        "WIREWATCH_LOG_FORMAT": "json",
        "WIREWATCH_API_BIND": "127.0.0.1:0",
        "WIREWATCH_INBOX_SCAN_SECONDS": "0.5",
        "WIREWATCH_WORKER_CONCURRENCY": "2",
        **{f"WIREWATCH_{service.upper()}_METRICS_PORT": str(port) for service, port in ports.items()},
        "PYTHONPATH": str(ROOT),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    subprocess.run([sys.executable, "-m", "services.cli", "setup"], env=env, cwd=ROOT, check=True, capture_output=True)
    save_subscription(redis_client, "desk", webhook_subscription("zebrafish", "zebrafish", receiver.url))
    token = create_token(redis_client, "desk")
    inbox = settings.inbox_dir
    inbox.mkdir(parents=True)
    for number, (title, text) in enumerate(ARTICLES[:-1]):
        (inbox / f"{number:02}.txt").write_text(f"{title}\n\n{text}\n", "utf-8")
    title, text = ARTICLES[-1]
    good = json.dumps({"title": title, "text": text})
    (inbox / "more.jsonl").write_text(f"{good}\n{{not json\n", "utf-8")  # the bad line: one dead letter

    services = Services(tmp_path, env)
    try:
        for service in ("worker", "alerter", "fetcher", "api"):
            services.start(service)
        listening = services.wait_for_line("api", r"listening on http://127\.0\.0\.1:(\d+)")
        api = f"http://127.0.0.1:{listening.group(1)}"
        articles = len(ARTICLES)

        worker = wait_for_scrape(
            f"http://127.0.0.1:{ports['worker']}/metrics",
            lambda s: value(s, "wirewatch_step_articles_out_total", step="match_alerts") >= articles,
        )
        # The steps ran in the pool's child processes, the bulk indexer in the parent: both reach the scrape.
        for step in ("dedupe", "clean", "tag", "story", "index"):
            assert value(worker, "wirewatch_step_articles_in_total", step=step) == articles, step
            assert value(worker, "wirewatch_step_seconds_count", step=step) >= 1, step
        assert value(worker, "wirewatch_step_articles_out_total", step="index") == articles
        assert value(worker, "wirewatch_step_articles_out_total", step="dedupe") == articles
        assert value(worker, "wirewatch_bulk_request_articles_sum") == articles
        assert value(worker, "wirewatch_bulk_errors_total") == 0
        assert value(worker, "wirewatch_match_seconds_count") == articles

        assert len(receiver.wait_for(1)) == 1
        alerter = wait_for_scrape(
            f"http://127.0.0.1:{ports['alerter']}/metrics",
            lambda s: value(s, "wirewatch_alerts_total", channel="webhook", outcome="delivered") >= 1,
        )
        assert value(alerter, "wirewatch_alerts_total", channel="webhook", outcome="delivered") == 1
        assert value(alerter, "wirewatch_alerts_total") == 1

        fetcher = scrape(f"http://127.0.0.1:{ports['fetcher']}/metrics")
        assert value(fetcher, "wirewatch_quarantined_total", stage="read") == 1
        assert value(fetcher, "wirewatch_feeds", health="ok") == 0

        request = urllib.request.Request(f"{api}/subscriptions", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            assert reply.status == 200
        scraped = scrape(f"{api}/metrics")
        assert value(scraped, "wirewatch_http_requests_total", route="/subscriptions", status="200") == 1
        for exporter in (scraped, fetcher, worker, alerter):
            assert value(exporter, "wirewatch_dead_letters") == 1
            assert ("wirewatch_queue_depth", (("queue", "pipeline"),)) in exporter
    finally:
        services.stop()

    lines = {service: services.log(service).read_text("utf-8").splitlines() for service in services.processes}
    # Celery prints this one line itself, past any logging configuration.
    lines["worker"] = [line for line in lines["worker"] if line != "worker: Warm shutdown (MainProcess)"]
    records = {service: [json.loads(line) for line in text if line.strip()] for service, text in lines.items()}
    for service, logged in records.items():
        assert logged and {record["service"] for record in logged} == {service}
    assert any(record.get("step") == "index" for record in records["worker"])
    (alerted,) = [record for record in records["worker"] if "alert for subscription" in record["message"]]
    assert alerted["step"] == "match_alerts" and alerted["article"]
    requests = [record for record in records["api"] if record.get("path") == "/subscriptions"]
    assert [(r["method"], r["status"]) for r in requests] == [("GET", 200)] and requests[0]["duration_ms"] >= 0
    assert token not in "\n".join(lines["api"])
