"""Alert matching at scale: N subscriptions against a typical article, on this machine.

Loads N generated subscriptions into Redis, lets a real SubscriptionMatcher load them,
then matches a ~600-word article repeatedly and prints the median and p99 time per article,
the number of candidate queries evaluated, and how long a subscription change takes to
reach the matcher.

    python tests/benchmarks/bench_matcher.py [--subscriptions 100000] [--redis redis://127.0.0.1:6379/14]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

from shared import redis_keys
from shared.alerting.matcher import AnalyzedArticle
from shared.alerting.matching import SubscriptionMatcher
from shared.alerting.subscriptions import Channel, Subscription
from shared.article import Article

FIXTURES = Path(__file__).parents[1] / "fixtures" / "inbox"
NEWS_WORDS = [
    "missile",
    "launch",
    "test",
    "nuclear",
    "sanctions",
    "embargo",
    "summit",
    "talks",
    "troops",
    "navy",
    "army",
    "border",
    "election",
    "vote",
    "parliament",
    "minister",
    "president",
    "court",
    "ruling",
    "protest",
    "strike",
    "union",
    "inflation",
    "prices",
    "market",
    "bank",
    "rates",
    "trade",
    "deal",
    "tariff",
    "export",
    "import",
    "oil",
    "gas",
    "pipeline",
    "energy",
    "grid",
    "drought",
    "flood",
    "storm",
    "earthquake",
    "refugees",
    "ceasefire",
    "shelling",
    "drone",
    "attack",
    "hostage",
    "ransom",
    "cyber",
    "hackers",
    "cryptocurrency",
    "satellite",
    "rocket",
    "ballistic",
    "hypersonic",
    "warhead",
    "uranium",
    "enrichment",
    "inspectors",
    "diplomat",
    "embassy",
    "envoy",
    "treaty",
    "alliance",
    "exercise",
    "drills",
]
COUNTRIES = ["KP", "KR", "CN", "JP", "US", "RU", "UA", "IR", "IL", "IN", "PK", "TW", "GB", "FR", "DE"]


def vocabulary(rng: random.Random, size: int) -> list[str]:
    """News words first (the common ones), then made-up words, for a long Zipf-like tail."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    made_up = {"".join(rng.choices(letters, k=rng.randint(5, 10))) for _ in range(size)}
    return NEWS_WORDS + sorted(made_up)


def make_query(rng: random.Random, words: list[str]) -> str:
    def word() -> str:
        return words[min(len(words) - 1, int(rng.paretovariate(0.6)) - 1 + rng.randrange(len(words) // 3))]

    shape = rng.random()
    if shape < 0.40:
        return f"{word()} AND {word()}"
    if shape < 0.60:
        return f'"{word()} {word()}"'
    if shape < 0.75:
        return f"{word()} OR {word()} OR {word()}"
    if shape < 0.85:
        return f"countries:{rng.choice(COUNTRIES)} AND {word()}"
    if shape < 0.95:
        return f"{word()} -{word()}"
    return f"{word()[:4]}*"


def fill_subscriptions(client: redis.Redis, count: int, channel: Callable[[int], Channel], seed: int = 11) -> None:
    """`count` generated subscriptions (the n-th on `channel(n)`), written in pipelined batches."""
    rng = random.Random(seed)
    words = vocabulary(rng, 20_000)
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        subscription = Subscription(
            owner=f"user{n % 500}", name=f"s{n}", query=make_query(rng, words), channels=[channel(n)]
        )
        pipe.hset(redis_keys.SUBSCRIPTIONS, subscription.id, subscription.model_dump_json())
        if n % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def typical_article() -> Article:
    text = "\n\n".join(path.read_text("utf-8") for path in sorted(FIXTURES.glob("0[1456]_*.txt")))
    article = Article.create(title="North Korea test-fires ballistic missile into sea", text=text)
    article.countries, article.tags = ["KP", "KR", "JP", "US"], ["missile-test", "military"]
    return article


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()

    client = redis.Redis.from_url(args.redis)
    client.flushdb()
    channel = Channel(type="stream", stream="bench")
    fill_subscriptions(client, args.subscriptions, lambda _: channel)

    matcher = SubscriptionMatcher(client)
    started = time.perf_counter()
    matcher.refresh(force=True)
    print(f"loaded {len(matcher.compiled)} subscriptions in {time.perf_counter() - started:.1f} s")

    article = typical_article()
    doc_words = len(article.text.split())
    candidates = len(matcher.presearcher.article_candidates(AnalyzedArticle.of(article)))
    timings = []
    matched = 0
    for _ in range(args.runs):
        started = time.perf_counter()
        matched = len(matcher.match(article))
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    print(
        f"match one {doc_words}-word article against {len(matcher.compiled)} subscriptions: "
        f"median {statistics.median(timings):.2f} ms, p99 {timings[int(0.99 * len(timings))]:.2f} ms "
        f"({candidates} candidates evaluated, {matched} matched)"
    )

    from shared.alerting.subscriptions import SubscriptionSpec, save_subscription

    spec = SubscriptionSpec(name="fresh", query='"intercontinental missile" OR zzyzx', channels=[channel])
    save_subscription(client, "bench", spec)
    probe = Article.create(title="zzyzx", text="zzyzx")
    started = time.perf_counter()
    while not any(match.subscription.name == "fresh" for match in matcher.match(probe)):
        matcher.refresh()
        time.sleep(0.01)
    print(f"a new subscription reached the matcher in {time.perf_counter() - started:.2f} s (checks once a second)")
    client.flushdb()
    return 0


if __name__ == "__main__":
    sys.exit(main())
