"""Alerting throughput on this machine: delivery, subscription loading, matching.

  delivery   N alerts raised into the outbox, then sent by the real AlertSender (shared
             outbound client, signing, outbox bookkeeping, SQLite alert history) to a real
             HTTP receiver running in a separate process; deliveries per CPU-second of the
             delivering process (all its threads), and per wall-clock second
  load       `--subscriptions` generated subscriptions (webhook channels) in Redis, loaded by
             a fresh SubscriptionMatcher in a child process, twice (the first start after
             they were written, then the next): CPU and wall seconds, and the growth of its
             resident memory
  matching   ms of CPU per article for `matcher.match` and for the whole match step (payload
             and dispatch included; most stories have already alerted), with `--small` and
             with `--subscriptions` subscriptions, over generated articles

    python -m tests.benchmarks.bench_alerting [--redis redis://127.0.0.1:6379/14]
        [--deliveries 3000] [--subscriptions 100000] [--small 1000] [--articles 200]
        [--only delivery,load,matching]

The Redis database given is flushed before and after.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis

from shared.alerting.subscriptions import Channel
from shared.article import Article
from shared.settings import Settings
from tests.benchmarks.bench_matcher import COUNTRIES, FIXTURES, fill_subscriptions, vocabulary


def cpu_seconds() -> float:
    """CPU time of this process, every thread, user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- delivery -----------------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would offer
    counter: Any = None

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.counter.get_lock():
            self.counter.value += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _serve(port: Any, counter: Any) -> None:
    _Receiver.counter = counter
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    port.value = server.server_address[1]
    server.serve_forever()


def bench_delivery(redis_url: str, count: int) -> None:
    from shared.alerting.delivery import AlertSender
    from shared.alerting.dispatch import Dispatcher
    from shared.alerting.matching import alert_payload
    from shared.alerting.subscriptions import SubscriptionSpec, save_subscription
    from shared.store.sqlite import SqliteStore

    context = multiprocessing.get_context("spawn")
    port, counter = context.Value("i", 0), context.Value("i", 0)
    server = context.Process(target=_serve, args=(port, counter), daemon=True)
    server.start()
    while not port.value:
        time.sleep(0.01)
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(redis_url=redis_url, data_dir=Path(data), url_allow="127.0.0.1/32")
        url = f"http://127.0.0.1:{port.value}/hook"
        subscriptions = [
            save_subscription(
                client,
                f"desk{n}",
                SubscriptionSpec(
                    name="launches", query="missile", realert="article", channels=[Channel(type="webhook", url=url)]
                ),
            )
            for n in range(10)
        ]
        dispatcher = Dispatcher(client)
        for n in range(count):
            article = Article.create(
                title=f"Missile launch number {n}",
                text=f"A missile flew {n} kilometres.",
                url=f"https://example.org/{n}",
            )
            subscription = subscriptions[n % len(subscriptions)]
            dispatcher.raise_alert(subscription, alert_payload(subscription, article, ["text:missil"], 1))
        store = SqliteStore(Path(data) / "store.sqlite3")
        sender = AlertSender(settings, client, store)
        sender.tick()  # warm up: the first connection, the scripts
        warm = counter.value
        cpu, wall = cpu_seconds(), time.perf_counter()
        while sender.tick():
            pass
        cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
        sender.close()
        sent = counter.value
        delivered = sum(1 for row in store.alert_history(limit=count + 10, status="delivered"))
        store.close()
    server.terminate()
    server.join()
    client.flushdb()
    timed = sent - warm
    print(
        f"delivery: {timed} webhooks in {wall:.2f} s wall, {cpu:.2f} s CPU of the delivering process: "
        f"{timed / cpu:.0f} deliveries per CPU-second, {timed / wall:.0f}/s wall "
        f"({sent} received, {delivered} recorded as delivered, of {count})"
    )


# --- subscriptions ------------------------------------------------------------------------


def fill_webhook_subscriptions(client: redis.Redis, count: int) -> None:
    """`count` generated subscriptions with webhook channels."""
    fill_subscriptions(
        client, count, lambda n: Channel(type="webhook", url=f"https://hooks.example.org/{n % 997}", secret=f"s{n}")
    )


def _load_in_child(redis_url: str, results: Any) -> None:
    from shared.alerting.matching import SubscriptionMatcher

    client = redis.Redis.from_url(redis_url)
    matcher = SubscriptionMatcher(client)
    before_rss, cpu, wall = rss_mb(), cpu_seconds(), time.perf_counter()
    matcher.refresh(force=True)
    results.put(
        (len(matcher.presearcher), cpu_seconds() - cpu, time.perf_counter() - wall, rss_mb() - before_rss, rss_mb())
    )


def bench_load(redis_url: str, count: int) -> None:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    fill_webhook_subscriptions(client, count)
    context = multiprocessing.get_context("spawn")
    for start in ("first start", "next start"):
        results = context.Queue()
        child = context.Process(target=_load_in_child, args=(redis_url, results))
        child.start()
        loaded, cpu, wall, growth, total = results.get()
        child.join()
        print(
            f"load ({start}): {loaded} subscriptions in {cpu:.2f} s CPU ({wall:.2f} s wall), "
            f"resident memory +{growth:.0f} MB (process {total:.0f} MB)"
        )


# --- matching -----------------------------------------------------------------------------


def make_articles(count: int, seed: int = 5) -> list[Article]:
    """Articles of sentences from the inbox fixtures and words of the subscriptions'
    vocabulary, each with its own mix, so no two texts are the same."""
    rng = random.Random(seed)
    words = vocabulary(random.Random(11), 20_000)
    sentences = [
        sentence.strip() + "."
        for path in sorted(FIXTURES.glob("0[1345]_*.*"))
        for sentence in path.read_text("utf-8").split(".")
        if len(sentence.split()) > 4 and "<" not in sentence
    ]
    articles = []
    for n in range(count):
        body = rng.sample(sentences, min(len(sentences), 25))
        extra = " ".join(words[min(len(words) - 1, int(rng.paretovariate(0.8)) - 1)] for _ in range(60))
        article = Article.create(
            title=f"{rng.choice(words).title()} {rng.choice(words)} report {n}",
            text=" ".join(body) + "\n\n" + extra.capitalize() + ".",
            url=f"https://example.org/news/{n}",
        )
        article.countries = rng.sample(COUNTRIES, 2)
        article.published_at = datetime.now(UTC)
        article.cluster_id = f"story-{n % 20}"
        articles.append(article)
    return articles


def _per_article(articles: list[Article], work: Callable[[Article], Any]) -> float:
    cpu = cpu_seconds()
    for article in articles:
        work(article)
    return (cpu_seconds() - cpu) * 1000 / len(articles)


def bench_matching(redis_url: str, counts: list[int], articles: int) -> None:
    from shared.alerting.matching import SubscriptionMatcher
    from shared.pipeline.context import build_context
    from shared.pipeline.steps import BatchState, match_alerts_step

    client = redis.Redis.from_url(redis_url)
    docs = make_articles(articles)
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(redis_url=redis_url, data_dir=Path(data))
        for count in counts:
            client.flushdb()
            fill_webhook_subscriptions(client, count)
            context = build_context(settings, client)
            context.matcher = SubscriptionMatcher(client)
            context.matcher.refresh(force=True)
            matched = sum(len(context.matcher.match(article)) for article in docs)  # warm-up
            match_ms = _per_article(docs, context.matcher.match)
            state = BatchState(run_id=None)
            for article in docs:  # the stories alert once; what follows is the steady state
                match_alerts_step(article, context, state)
            step_ms = _per_article(docs, partial(match_alerts_step, ctx=context, state=state))
            print(
                f"matching: {count} subscriptions: match {match_ms:.2f} ms/article, "
                f"match step {step_ms:.2f} ms/article ({matched / len(docs):.1f} matches per article, "
                f"{state.counts['alerts']} alerts over {len(docs)} articles)"
            )
    client.flushdb()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--articles", type=int, default=200)
    parser.add_argument("--only", default="delivery,load,matching")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    print(f"load average: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    if "delivery" in parts:
        bench_delivery(args.redis, args.deliveries)
    if "load" in parts:
        bench_load(args.redis, args.subscriptions)
    if "matching" in parts:
        bench_matching(args.redis, [args.small, args.subscriptions], args.articles)
    print(f"load average: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
