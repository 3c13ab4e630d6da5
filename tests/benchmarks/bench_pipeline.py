"""Throughput, cost and latency of the chain on embedded defaults, in one run.

Starts the embedded Redis and the SQLite store in a temporary data dir, fills the store with
`--stored` articles, then measures on generated articles (plain text, or `--html` pages of
about 40 KB with navigation, sidebars and footer):

  in-process limit  the same step functions, Redis and store in this one process, no Celery
  pipeline          `wirewatch run` (fetcher, worker, alerter) on a sibling set of articles made
                    by the same generator, dropped into the inbox at once; articles/s from drop
                    to the last one searchable, and its ratio to the limit
  per article       Redis commands (INFO commandstats) and round trips (reads the server
                    processed), CPU seconds of each process (from its own CPU times)
  steady            articles dropped at `--rate` per second: drop → searchable and drop → alert
                    (a real webhook receiver) p50/p99
  footprint         Redis memory and keys per stored article, resident memory per process
  targets           each throughput target this run can check, its figure, met or not

Generated articles follow stories (a few dozen words of their own per event, shared by its
write-ups, over a common English vocabulary), some are syndicated copies with a new headline
and some are dropped twice, so dedupe, stories and alert matching do real work.

    python tests/benchmarks/bench_pipeline.py [--articles 2000] [--stored 1000] [--html]
        [--rate 100] [--seconds 15] [--subscriptions 1000] [--skip-pipeline] [--growth 10000,100000]
    python tests/benchmarks/bench_pipeline.py --all

`--growth` fills the store further after the first measure and measures the in-process cost
again at each count, with Redis bytes and keys per stored article. `--all` runs plain text end
to end, the growth to 100,000 stored, HTML end to end and the alerting benchmark, one after
another (about half an hour).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis

from shared.formats.readers import read_file

TOPIC_SENTENCES = [
    "North Korea test-fired a ballistic missile on {day}, officials in Seoul said.",
    "The United Nations discussed new sanctions on Pyongyang after the launch.",
    "Diplomats from China and Japan held talks in Beijing about the summit.",
    "The navy and air force held joint military drills near the border.",
    "Inspectors said uranium enrichment had resumed at the plant.",
]
ALERT_QUERY = "missile"  # the benchmark subscription whose webhook is timed
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class Generator:
    """Articles grouped in stories: each event has its own rarer words, people and date; its
    write-ups mix them with common English. One in ten is a syndicated copy of an earlier one
    (new headline, a line added), one in fifty the same file dropped again."""

    def __init__(self, seed: int, story_size: int = 15) -> None:
        import wordfreq

        words = [w for w in wordfreq.top_n_list("en", 20000) if w.isalpha() and len(w) > 2]
        self.common, self.rare = words[80:4000], words[4000:]
        self.rng = random.Random(seed)
        self.story_size = story_size
        self.base = datetime(2026, 3, 1, tzinfo=UTC)
        self.events: list[dict[str, Any]] = []
        self.made: list[dict[str, str]] = []

    def _event(self) -> dict[str, Any]:
        rng = self.rng
        if not self.events or rng.random() < 1 / self.story_size:
            self.events.append(
                {
                    "words": rng.sample(self.rare, 25),
                    "names": [f"{rng.choice(self.rare).title()} {rng.choice(self.rare).title()}" for _ in range(2)],
                    "day": self.base + timedelta(days=rng.randint(0, 40)),
                    "topical": rng.random() < 0.2,
                }
            )
            return self.events[-1]
        return rng.choice(self.events[-40:])

    def article(self, n: int) -> dict[str, str]:
        """One article as title, date and text (~300 words), or a copy of an earlier one."""
        rng = self.rng
        if self.made and rng.random() < 0.02:
            return dict(rng.choice(self.made))  # the same file again: an exact duplicate
        if self.made and rng.random() < 0.1:
            original = rng.choice(self.made)
            copy = {
                **original,
                "n": str(n),
                "title": original["title"] + " (update)",
                "text": original["text"] + f"\n\nThis report was first published by outlet {rng.randint(1, 99)}.",
            }
            self.made.append(copy)
            return copy
        event = self._event()
        sentences = []
        for _ in range(rng.randint(18, 26)):
            if event["topical"] and rng.random() < 0.15:
                sentences.append(rng.choice(TOPIC_SENTENCES).format(day=rng.choice(["Monday", "Friday"])))
                continue
            length = rng.randint(8, 18)
            chosen = [
                rng.choice(event["words"]) if rng.random() < 0.25 else rng.choice(self.common) for _ in range(length)
            ]
            if rng.random() < 0.2:
                chosen.insert(rng.randint(0, len(chosen)), rng.choice(event["names"]))
            sentences.append(" ".join(chosen).capitalize() + ".")
        paragraphs = [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]
        day = event["day"] + timedelta(hours=rng.randint(0, 20))
        made = {
            "n": str(n),
            "title": " ".join([*rng.sample(event["words"], 3), *rng.sample(self.common, 4)]).capitalize(),
            "date": day.strftime("%Y-%m-%d"),
            "text": "\n\n".join(paragraphs),
        }
        self.made.append(made)
        return made


def as_text_file(article: dict[str, str]) -> tuple[str, str]:
    return ".txt", f"{article['title']}\ndate {article['date']}\n\n{article['text']}\n"


def as_html_page(article: dict[str, str]) -> tuple[str, str]:
    """A news page of about 40 KB: head, navigation, the article, sidebars, comments, footer."""
    rng = random.Random(article["n"])
    sections = ["World", "Politics", "Business", "Tech", "Science", "Health", "Sport", "Culture", "Opinion"]
    nav = "".join(f'<li><a href="/section/{s.lower()}/{i}">{s} {i}</a></li>' for s in sections for i in range(6))
    most_read = "".join(
        f'<li><a href="/story/{rng.randint(1, 10**6)}">Most read story number {i} about the city council vote</a></li>'
        for i in range(12)
    )
    comments = "".join(
        f'<div class="comment"><span class="user">reader{i}</span><p>I think this is interesting, thanks for '
        f"reporting on it. Comment {i}.</p></div>"
        for i in range(15)
    )
    footer = "".join(f'<a href="/about/{i}">About page {i}</a> ' for i in range(80))
    body = "".join(f"<p>{paragraph}</p>\n" for paragraph in article["text"].split("\n\n"))
    style = "<style>" + " ".join(f".c{i} {{ margin: {i}px; padding: {i % 7}px; }}" for i in range(400)) + "</style>"
    script = "<script>" + " ".join(f"window.track{i} = function() {{ return {i}; }};" for i in range(300)) + "</script>"
    url = f"https://bench.example.org/news/{article['n']}"
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{article["title"]} | Bench Times</title>'
        f'<link rel="canonical" href="{url}"><meta property="article:published_time" content="{article.get("date", "2026-03-01")}">'
        f"{style}{script}</head><body><header><nav><ul>{nav}</ul></nav>"
        '<div class="cookie">We use cookies to improve your experience. Accept all cookies.</div></header>'
        f'<main><article><h1>{article["title"]}</h1><div class="byline">By Staff Reporter</div>{body}</article>'
        f'<aside><h2>Most read</h2><ul>{most_read}</ul></aside><section class="comments">{comments}</section></main>'
        f"<footer>{footer}<p>Copyright Bench Times. All rights reserved.</p></footer></body></html>"
    )
    return ".html", page


class Receiver:
    """A real HTTP server taking webhooks, noting when each article's alert arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        arrived = self.arrived

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server interface)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with contextlib.suppress(ValueError, KeyError):  # not an instant alert
                    arrived.setdefault(json.loads(body)["article"]["id"], time.monotonic())
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


class StoreWatcher:
    """Polls the SQLite store for newly visible articles and notes when each appeared."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: dict[str, float] = {}
        self._last_rowid = 0
        self._db: sqlite3.Connection | None = None

    def poll(self) -> None:
        if self._db is None:
            self._db = sqlite3.connect(self.path, timeout=30)
        now = time.monotonic()
        try:
            rows = self._db.execute("SELECT rowid, id FROM articles WHERE rowid > ?", (self._last_rowid,)).fetchall()
        except sqlite3.OperationalError:
            return
        for rowid, identifier in rows:
            self.seen.setdefault(identifier, now)
            self._last_rowid = max(self._last_rowid, rowid)

    def wait_for(self, ids: set[str], timeout: float, seen: dict[str, float] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if seen is None:
                self.poll()
            if all(identifier in (self.seen if seen is None else seen) for identifier in ids):
                return
            time.sleep(0.02)
        missing = sum(identifier not in (self.seen if seen is None else seen) for identifier in ids)
        raise TimeoutError(f"{missing} of {len(ids)} not through after {timeout} s")


class Processes:
    """CPU times and resident memory of a process tree (and the Redis server), from /proc."""

    def __init__(self, root: int, redis_pid: int) -> None:
        self.root, self.redis_pid = root, redis_pid

    def roles(self) -> dict[int, str]:
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError):
                    continue
        roles = {self.root: "fetcher", self.redis_pid: "redis"}
        for pid, parent in parents.items():
            if parent == self.root:
                try:
                    command = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                service = next((part.decode() for part in command if part in (b"worker", b"alerter")), None)
                if service:
                    roles[pid] = service
                    for child, grandparent in parents.items():
                        if grandparent == pid:
                            roles[child] = f"{service} child {child}"
        return roles

    @staticmethod
    def cpu(pid: int) -> float:
        try:
            fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    @staticmethod
    def rss_mb(pid: int) -> float:
        try:
            pages = int((Path("/proc") / str(pid) / "statm").read_text().split()[1])
        except OSError:
            return 0.0
        return pages * PAGE_SIZE / 2**20

    def snapshot(self) -> dict[str, float]:
        return {role: self.cpu(pid) for pid, role in self.roles().items()}


class Targets:
    """The throughput targets a run can check, printed together at its end: each with the
    figure this run measured."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, bool]] = []

    def check(self, what: str, value: float, limit: float, unit: str, *, at_most: bool = False) -> None:
        met = value <= limit if at_most else value >= limit
        self.rows.append(
            (f"{what} {'≤' if at_most else '≥'} {limit:g}{unit}", f"{value:.{0 if value >= 100 else 2}f}{unit}", met)
        )

    def print(self) -> None:
        if self.rows:
            print("targets:")
        for target, measured, met in self.rows:
            print(f"  {target:<52} {measured:>16}  {'met' if met else 'NOT MET'}")


def redis_counters(client: redis.Redis) -> tuple[dict[str, int], int]:
    """(calls per command, reads) the server processed so far: a read is one round trip of a
    client (a pipeline or a script arrives in one); INFO itself is left out."""
    stats: Any = client.info("commandstats")
    commands = {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items() if k != "cmdstat_info"}
    info: Any = client.info("stats")
    return commands, int(info["total_reads_processed"])


def redis_per_article(before: tuple[dict[str, int], int], after: tuple[dict[str, int], int], n: int) -> str:
    calls = {name: count - before[0].get(name, 0) for name, count in after[0].items()}
    top = sorted(calls.items(), key=lambda item: -item[1])[:8]
    return (
        f"Redis per article: {sum(calls.values()) / n:.1f} commands, {(after[1] - before[1]) / n:.2f} round trips ("
        + ", ".join(f"{name} {count / n:.1f}" for name, count in top if count)
        + ")"
    )


def wait_through(client: redis.Redis, watcher: StoreWatcher, before: int, count: int, timeout: float) -> None:
    """Until `count` more articles have left the chain: stored, or dropped as a copy (a page
    whose extracted text is another's is one), or quarantined."""
    from shared import runs

    deadline = time.monotonic() + timeout
    while runs.read(client)["done"] - before < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} articles not through after {timeout} s")
        watcher.poll()
        time.sleep(0.02)
    watcher.poll()


def wait_for_alerts(client: redis.Redis, timeout: float) -> None:
    """Until no alert is due or being delivered: the alerter has caught up."""
    from shared import redis_keys

    deadline = time.monotonic() + timeout
    while client.zcount(redis_keys.OUTBOX_DUE, "-inf", time.time()) or client.zcard(redis_keys.OUTBOX_INFLIGHT):
        if time.monotonic() > deadline:
            raise TimeoutError(f"alerts still queued after {timeout} s")
        time.sleep(0.05)


def done_so_far(client: redis.Redis) -> int:
    from shared import runs

    return runs.read(client)["done"]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def write_files(
    folder: Path, articles: list[dict[str, str]], render: Callable[..., tuple[str, str]], tag: str
) -> list[Path]:
    paths = []
    for number, article in enumerate(articles):
        suffix, content = render(article)
        path = folder / f"{tag}-{number:07d}{suffix}"
        path.write_text(content, "utf-8")
        paths.append(path)
    return paths


def ids_of(paths: list[Path]) -> list[str]:
    return [article.id for path in paths for article in read_file(path)]


def run_in_process(paths: list[Path], context: Any, store: Any, batch_size: int) -> None:
    """Read the files and run the ingest pipeline's step functions over them, a batch at a
    time: what one worker process does, without Celery or the queue between the steps."""
    from shared.pipeline.dedupe import forget_claims
    from shared.pipeline.pipelines import AFTER_INDEX, QUEUED
    from shared.pipeline.steps import run_pipeline

    for start in range(0, len(paths), batch_size):
        articles = [article for path in paths[start : start + batch_size] for article in read_file(path)]
        stored = run_pipeline([step for step in QUEUED if step != "index"], articles, context)
        store.index(stored)
        # what the bulk indexer sends with its acknowledgement
        pipe = context.redis.pipeline(transaction=False)
        forget_claims(pipe, [(article.id, article.delivery) for article in stored])
        pipe.execute()
        run_pipeline(AFTER_INDEX, stored, context)


ALL_RUNS: list[tuple[str, list[str]]] = [
    ("plain text, end to end", []),
    ("plain text, cost as the store grows", ["--skip-pipeline", "--articles", "1000", "--growth", "10000,100000"]),
    ("HTML pages, end to end", ["--html", "--articles", "500", "--stored", "500"]),
]


def run_all() -> int:
    """Every measure the throughput targets need, each in a fresh data dir and Redis."""
    here = Path(__file__)
    runs = [(title, [sys.executable, str(here), *extra]) for title, extra in ALL_RUNS]
    runs.append(
        ("alert delivery, subscriptions and matching", [sys.executable, "-m", "tests.benchmarks.bench_alerting"])
    )
    failed = 0
    for title, command in runs:
        print(f"\n=== {title} ===", flush=True)
        failed += subprocess.run(command, check=False, cwd=here.parents[2]).returncode != 0
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=2000, help="articles per measured set")
    parser.add_argument("--stored", type=int, default=1000, help="articles stored before measuring")
    parser.add_argument("--html", action="store_true", help="HTML pages of ~40 KB instead of plain text")
    parser.add_argument("--rate", type=float, default=100, help="steady phase: articles per second")
    parser.add_argument("--seconds", type=float, default=15, help="steady phase: duration")
    parser.add_argument("--subscriptions", type=int, default=1000, help="keyword subscriptions matched")
    parser.add_argument("--skip-pipeline", action="store_true", help="only the in-process limit")
    parser.add_argument(
        "--growth",
        default="",
        help="stored counts (e.g. 10000,100000) to fill the store up to after the first measure, "
        "measuring the in-process cost again at each",
    )
    parser.add_argument("--all", action="store_true", help="every measure the targets need, one after another")
    args = parser.parse_args()
    if args.all:
        return run_all()

    render = as_html_page if args.html else as_text_file
    kind = "HTML pages" if args.html else "plain-text articles"
    with tempfile.TemporaryDirectory(prefix="wirewatch-bench-") as tmp:
        data, staging = Path(tmp) / "data", Path(tmp) / "staging"
        inbox = data / "inbox"
        inbox.mkdir(parents=True)
        staging.mkdir()
        os.environ.update(WIREWATCH_DATA_DIR=str(data), WIREWATCH_URL_ALLOW="127.0.0.1")
        from shared.alerting.subscriptions import Channel, SubscriptionSpec, save_subscription
        from shared.pipeline.context import build_context
        from shared.redis_client import get_redis, resolve_redis_url, stop_embedded_redis
        from shared.settings import Settings
        from shared.store import open_store

        settings = Settings()
        redis_url = resolve_redis_url(settings)  # the embedded server, as `wirewatch run` starts it
        client = get_redis(settings)
        try:
            store = open_store(settings)
            store.setup()
            receiver = Receiver()
            generator = Generator(seed=7)
            rng = random.Random(11)
            for number in range(args.subscriptions):
                words = rng.sample(generator.rare, 2)
                query = f"{words[0]} AND {words[1]}" if number % 2 else f'"{words[0]} {words[1]}"'
                spec = SubscriptionSpec(
                    name=f"s{number}", query=query, channels=[Channel(type="stream", stream="bench")]
                )
                save_subscription(client, "bench", spec, None)
            alert = SubscriptionSpec(
                name="timed", query=ALERT_QUERY, realert="article", channels=[Channel(type="webhook", url=receiver.url)]
            )
            save_subscription(client, "bench", alert, None)
            empty_memory = int(client.info("memory")["used_memory"])
            context = build_context(settings, client)
            print(
                f"{kind}, {args.stored} stored first, sets of {args.articles}, {args.subscriptions} subscriptions; "
                f"{os.cpu_count()} cores"
            )

            def fill(first: int, last: int) -> None:
                started = time.perf_counter()
                for start in range(first, last, 5000):
                    batch = [generator.article(n) for n in range(start, min(last, start + 5000))]
                    paths = write_files(staging, batch, render, f"stored{start}")
                    run_in_process(paths, context, store, settings.batch_size)
                    for path in paths:
                        path.unlink()
                print(f"stored {last} in {time.perf_counter() - started:.0f} s")

            targets = Targets()

            def footprint() -> str:
                stored = store.count()
                memory = int(client.info("memory")["used_memory"]) - empty_memory
                keys = int(client.dbsize())
                targets.check(f"Redis memory per article at {stored} stored", memory / stored, 2048, " B", at_most=True)
                return f"Redis {memory / stored:.0f} bytes and {keys / stored:.2f} keys per stored article ({stored} stored)"

            fill(0, args.stored)

            # The limit: this process alone, the same steps, Redis and store.
            # Each set numbers its articles apart: a page's URL (its id) comes from its number.
            limit_paths = write_files(
                staging, [generator.article(3 * 10**6 + n) for n in range(args.articles)], render, "limit"
            )
            counters = redis_counters(client)
            load = loadavg()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            run_in_process(limit_paths, context, store, settings.batch_size)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            n = args.articles
            limit = n / wall
            print(
                f"\nin-process limit (load {load}): {n} in {wall:.1f} s = {limit:.0f} articles/s, "
                f"CPU {1000 * cpu / n:.2f} ms/article\n  {redis_per_article(counters, redis_counters(client), n)}"
            )
            if args.growth:
                print(f"  {footprint()}")
                filled, first_cost = args.stored, cpu / n
                for level in (int(value) for value in args.growth.split(",")):
                    fill(filled, level)
                    filled = level
                    fresh = [generator.article(5 * 10**6 + level + k) for k in range(args.articles)]
                    paths = write_files(staging, fresh, render, f"growth{level}")
                    load, cpu0 = loadavg(), time.process_time()
                    run_in_process(paths, context, store, settings.batch_size)
                    cost = (time.process_time() - cpu0) / n
                    targets.check(
                        f"CPU per article at {level} stored, against {args.stored}",
                        100 * cost / first_cost,
                        120,
                        " %",
                        at_most=True,
                    )
                    print(
                        f"at {level} stored (load {load}): CPU {1000 * cost:.2f} ms/article, "
                        f"{100 * cost / first_cost:.0f} % of the cost at {args.stored}\n  {footprint()}"
                    )
            if args.skip_pipeline:
                targets.print()
                return 0

            env = {k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")}
            env.update(
                WIREWATCH_DATA_DIR=str(data),
                WIREWATCH_REDIS_URL=redis_url,
                WIREWATCH_INBOX_SCAN_SECONDS="0.2",
                WIREWATCH_URL_ALLOW="127.0.0.1",
            )
            service = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "run"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            processes = Processes(service.pid, int(client.info("server")["process_id"]))
            watcher = StoreWatcher(data / "articles.sqlite3")
            try:
                warmup = write_files(staging, [generator.article(10**7 + n) for n in range(50)], render, "warm")
                before = done_so_far(client)
                for path in warmup:
                    os.rename(path, inbox / path.name)
                wait_through(client, watcher, before, len(warmup), timeout=180)
                time.sleep(1)

                paths = write_files(
                    staging, [generator.article(4 * 10**6 + n) for n in range(args.articles)], render, "burst"
                )
                ids = set(ids_of(paths))
                fresh = ids - set(watcher.seen)
                before = done_so_far(client)
                counters = redis_counters(client)
                cpu_before, load = processes.snapshot(), loadavg()
                dropped_at = time.monotonic()
                for path in paths:
                    os.rename(path, inbox / path.name)
                wait_through(client, watcher, before, len(paths), timeout=3600)
                elapsed = max(watcher.seen[i] for i in fresh if i in watcher.seen) - dropped_at
                wait_for_alerts(client, timeout=300)  # the burst's alerts count in its cost, not in the steady part
                cpu_after = processes.snapshot()
                after = redis_counters(client)
                rate = n / elapsed
                print(
                    f"pipeline (load {load}): {n} in {elapsed:.1f} s = {rate:.0f} articles/s, "
                    f"{100 * rate / limit:.0f} % of the in-process limit"
                )
                print(f"  {redis_per_article(counters, after, n)}")
                targets.check(
                    "end to end", rate, 300 if args.html else 2000, " pages/s" if args.html else " articles/s"
                )
                targets.check("pipeline, of the in-process limit", 100 * rate / limit, 65, " %")
                targets.check("Redis round trips per article", (after[1] - counters[1]) / n, 10, "", at_most=True)
                total = 0.0
                for role in sorted(cpu_after):
                    spent = cpu_after[role] - cpu_before.get(role, 0.0)
                    total += spent
                    print(f"  CPU {role:<22} {1000 * spent / n:6.2f} ms/article")
                print(f"  CPU all processes      {1000 * total / n:6.2f} ms/article")

                steady_ids: dict[str, float] = {}
                alert_ids: set[str] = set()
                total_steady = int(args.rate * args.seconds)
                steady_paths = write_files(
                    staging, [generator.article(2 * 10**6 + k) for k in range(total_steady)], render, "steady"
                )
                load = loadavg()
                before = done_so_far(client)
                start = time.monotonic()
                for k, path in enumerate(steady_paths):
                    time.sleep(max(0.0, start + k / args.rate - time.monotonic()))
                    found = read_file(path)
                    dropped = time.monotonic()
                    os.rename(path, inbox / path.name)
                    for article in found:
                        if article.id not in watcher.seen and article.id not in steady_ids:
                            steady_ids[article.id] = dropped
                            copy = article.title.endswith("(update)")  # a copy alerts nothing
                            if ALERT_QUERY in (article.text or article.html or "").lower() and not copy:
                                alert_ids.add(article.id)
                    if k % 10 == 0:
                        watcher.poll()
                wait_through(client, watcher, before, len(steady_paths), timeout=900)
                searchable = [watcher.seen[i] - t for i, t in steady_ids.items() if i in watcher.seen]
                alert_ids &= set(watcher.seen)  # a page whose text turned out a copy's is not stored
                try:
                    watcher.wait_for(alert_ids, timeout=60, seen=receiver.arrived)
                except TimeoutError as error:
                    print(f"  alerts: {error}")
                alerted = [receiver.arrived[i] - steady_ids[i] for i in alert_ids if i in receiver.arrived]
                print(
                    f"steady {args.rate:.0f}/s for {args.seconds:.0f} s (load {load}): drop → searchable "
                    f"p50 {statistics.median(searchable):.2f} s, p99 {percentile(searchable, 0.99):.2f} s; "
                    f"drop → alert p50 {statistics.median(alerted) if alerted else float('nan'):.2f} s, "
                    f"p99 {percentile(alerted, 0.99):.2f} s ({len(alerted)} alerts)"
                )
                targets.check(f"drop → alert p99 at {args.rate:g}/s", percentile(alerted, 0.99), 1, " s", at_most=True)

                print(f"footprint: {footprint()}")
                worker_rss = 0.0
                for pid, role in sorted(processes.roles().items(), key=lambda item: item[1]):
                    print(f"  RSS {role:<22} {processes.rss_mb(pid):6.0f} MB")
                    if role.startswith("worker"):
                        worker_rss = max(worker_rss, processes.rss_mb(pid))
                targets.check("worker RSS, any process", worker_rss, 300, " MB", at_most=True)
                targets.print()
            finally:
                started_here = [pid for pid, role in processes.roles().items() if role not in ("redis", "fetcher")]
                service.send_signal(signal.SIGINT)
                try:
                    service.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    service.kill()
                for pid in started_here:  # a worker still stopping when its parent gave up
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        finally:
            stop_embedded_redis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
