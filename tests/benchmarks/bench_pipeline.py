"""Throughput and latency of the real chain on embedded defaults.

Starts `wirewatch run` (embedded Redis, SQLite store, worker and alerter processes) in a
temporary data dir, then drops generated articles into the inbox and watches the store:

  burst:  N files dropped at once; articles/s from drop to the last one searchable, and the
          p50/p99 time from drop to searchable.
  steady: files dropped at a fixed rate below capacity; p50/p99 drop-to-searchable.

    python tests/benchmarks/bench_pipeline.py [--articles 10000] [--rate 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shared.article import Article

WORDS = [
    "government",
    "minister",
    "officials",
    "said",
    "talks",
    "agreement",
    "economy",
    "market",
    "prices",
    "energy",
    "border",
    "troops",
    "election",
    "parliament",
    "court",
    "ruling",
    "protest",
    "police",
    "city",
    "region",
    "province",
    "capital",
    "report",
    "analysts",
    "company",
    "shares",
    "growth",
    "inflation",
    "bank",
    "rates",
    "exports",
    "imports",
    "trade",
    "deal",
    "summit",
    "leaders",
    "visit",
    "foreign",
    "ministry",
    "statement",
    "week",
    "month",
    "year",
    "plan",
    "budget",
    "spending",
    "defence",
    "security",
    "water",
    "weather",
    "storm",
    "flood",
    "harvest",
    "farmers",
    "workers",
    "union",
    "strike",
    "hospital",
    "health",
    "school",
    "students",
    "teachers",
    "police",
    "investigation",
    "judge",
    "prison",
    "rights",
    "media",
    "television",
    "newspaper",
    "online",
    "users",
    "data",
    "network",
]
TOPICAL = [
    "North Korea test-fired a ballistic missile on {day}, officials in Seoul said.",
    "The United Nations discussed new sanctions on Pyongyang after the launch.",
    "Diplomats from China and Japan held talks in Beijing about the summit.",
    "The navy and air force held joint military drills near the border.",
]


def make_article(n: int, rng: random.Random) -> dict[str, str]:
    """A distinct ~300-word article: random sentences, some topical ones for the tagger."""
    sentences = []
    for _ in range(24):
        if rng.random() < 0.1:
            sentences.append(rng.choice(TOPICAL).format(day=rng.choice(["Monday", "Friday"])))
        else:
            words = rng.choices(WORDS, k=rng.randint(8, 16))
            sentences.append(" ".join(words).capitalize() + f" {rng.randint(1, 10**9)}.")
    paragraphs = [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]
    return {
        "url": f"https://bench.example.org/articles/{n}",
        "title": f"Benchmark article {n}: " + " ".join(rng.choices(WORDS, k=6)),
        "text": "\n\n".join(paragraphs),
        "source": "bench",
    }


def article_id(url: str) -> str:
    return Article.create(url=url).id


class StoreWatcher:
    """Polls the SQLite store for newly visible articles and notes when each appeared."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: dict[str, float] = {}
        self._last_rowid = 0
        self._db: sqlite3.Connection | None = None

    def poll(self) -> None:
        if self._db is None:
            if not self.path.exists():
                return
            self._db = sqlite3.connect(self.path, timeout=30)
        now = time.monotonic()
        try:
            rows = self._db.execute("SELECT rowid, id FROM articles WHERE rowid > ?", (self._last_rowid,)).fetchall()
        except sqlite3.OperationalError:
            return
        for rowid, identifier in rows:
            self.seen.setdefault(identifier, now)
            self._last_rowid = max(self._last_rowid, rowid)

    def wait_for(self, ids: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if all(identifier in self.seen for identifier in ids):
                return
            time.sleep(0.02)
        missing = sum(identifier not in self.seen for identifier in ids)
        raise TimeoutError(f"{missing} of {len(ids)} articles not searchable after {timeout} s")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def drop(staging: Path, inbox: Path, articles: list[dict[str, str]], start: int) -> None:
    """Write files outside the inbox, then rename them in: each appears whole at once."""
    paths = []
    for offset, article in enumerate(articles):
        path = staging / f"{start + offset:06d}.json"
        path.write_text(json.dumps(article), "utf-8")
        paths.append(path)
    for path in paths:
        os.rename(path, inbox / path.name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200, help="steady phase: files per second")
    parser.add_argument("--seconds", type=float, default=10, help="steady phase: duration")
    args = parser.parse_args()

    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="wirewatch-bench-") as tmp:
        data = Path(tmp) / "data"
        inbox, staging = data / "inbox", Path(tmp) / "staging"
        inbox.mkdir(parents=True)
        staging.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")}
        env.update(WIREWATCH_DATA_DIR=str(data), WIREWATCH_INBOX_SCAN_SECONDS="0.2")
        service = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        watcher = StoreWatcher(data / "articles.sqlite3")
        try:
            warmup = [make_article(10**7 + n, rng) for n in range(20)]
            drop(staging, inbox, warmup, 10**7)
            watcher.wait_for([article_id(a["url"]) for a in warmup], timeout=120)

            burst = [make_article(n, rng) for n in range(args.articles)]
            drop(staging, inbox, burst, 0)
            dropped_at = time.monotonic()
            ids = [article_id(a["url"]) for a in burst]
            watcher.wait_for(ids, timeout=1800)
            latencies = [watcher.seen[i] - dropped_at for i in ids]
            elapsed = max(latencies)
            print(
                f"burst:  {args.articles} articles in {elapsed:.1f} s = {args.articles / elapsed:.0f} articles/s; "
                f"drop→searchable p50 {statistics.median(latencies):.2f} s, p99 {percentile(latencies, 0.99):.2f} s"
            )

            steady_ids, drop_times = [], {}
            total = int(args.rate * args.seconds)
            start = time.monotonic()
            for n in range(total):
                due = start + n / args.rate
                time.sleep(max(0.0, due - time.monotonic()))
                article = make_article(10**6 + n, rng)
                drop(staging, inbox, [article], 10**6 + n)
                identifier = article_id(article["url"])
                drop_times[identifier] = time.monotonic()
                steady_ids.append(identifier)
                watcher.poll()
            watcher.wait_for(steady_ids, timeout=600)
            steady = [watcher.seen[i] - drop_times[i] for i in steady_ids]
            print(
                f"steady: {total} articles at {args.rate:.0f}/s; drop→searchable p50 {statistics.median(steady):.2f} s, "
                f"p99 {percentile(steady, 0.99):.2f} s"
            )
        finally:
            service.send_signal(signal.SIGINT)
            try:
                service.wait(timeout=60)
            except subprocess.TimeoutExpired:
                service.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
