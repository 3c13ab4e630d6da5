"""What the story step costs per article, and whether that grows with what is stored.

Articles from `bench_pipeline`'s generator (events with their own rare words and people, a
tenth syndicated copies, some exact repeats) are given to the story step a batch at a time:
the store is filled to each level of `--stored` in turn through the story step alone, then at
each level `--articles` more go through dedupe, clean and tag as in the chain and the story
step is measured:

  Redis     commands (INFO commandstats, a script's own commands included) and round trips
            (reads the server processed) per article
  CPU       this process's CPU per article in the story step, and the Redis server's
  memory    bytes and keys per stored article of the story step's keys (MEMORY USAGE)

    python tests/benchmarks/bench_story_cost.py [--redis redis://127.0.0.1:6379/12]
        [--stored 1000,10000] [--articles 2000]

The Redis database given is flushed. Per-article figures at the last level should be close to
those at the first.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).parents[2]))

from shared import redis_keys  # noqa: E402
from shared.article import Article  # noqa: E402
from shared.pipeline.context import build_context  # noqa: E402
from shared.pipeline.steps import run_pipeline  # noqa: E402
from shared.settings import Settings  # noqa: E402
from tests.benchmarks.bench_pipeline import Generator, loadavg, redis_counters  # noqa: E402

STORY_KEYS = f"{redis_keys.PREFIX}:story*"


def make(generator: Generator, number: int) -> Article:
    made = generator.article(number)
    return Article.create(
        title=made["title"],
        text=made["text"],
        url=f"https://bench.example.org/news/{made['n']}",
        source=f"outlet{int(made['n']) % 30}",
        published_at=datetime.strptime(made["date"], "%Y-%m-%d").replace(tzinfo=UTC),
    )


def story_memory(client: redis.Redis) -> tuple[int, int]:
    """(bytes, keys) of the story step's keys."""
    total = keys = 0
    for key in client.scan_iter(STORY_KEYS, count=1000):
        total += int(client.memory_usage(key, samples=0) or 0)
        keys += 1
    return total, keys


def fill(articles: list[Article], context: Any, batch_size: int) -> int:
    """Give articles to the story step alone (what the other steps leave in Redis is not
    measured here, and they would make a large store slow to fill); how many."""
    for start in range(0, len(articles), batch_size):
        run_pipeline(["story"], articles[start : start + batch_size], context)
    return len(articles)


def redis_cpu(client: redis.Redis) -> float:
    """CPU seconds the Redis server has used (its INFO call included, a few microseconds)."""
    info: Any = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12", help="flushed first")
    parser.add_argument("--stored", default="1000,10000", help="comma-separated levels to fill to")
    parser.add_argument("--articles", type=int, default=2000, help="measured at each level")
    args = parser.parse_args()
    levels = [int(level) for level in args.stored.split(",")]
    os.environ.setdefault("WIREWATCH_REDIS_URL", args.redis)
    settings = Settings()
    client = redis.Redis.from_url(args.redis)
    client.flushdb()
    context = build_context(settings, client)
    generator = Generator(seed=7)
    number = stored = 0
    print(f"story step, batches of {settings.batch_size}; {args.articles} measured at each level")
    for level in levels:
        while number < level:
            count = min(5000, level - number)
            stored += fill([make(generator, number + n) for n in range(count)], context, settings.batch_size)
            number += count
        measured = [make(generator, 3 * 10**6 + number + n) for n in range(args.articles)]
        number += args.articles
        load = loadavg()
        # Only the story step's commands: the other steps run in between, so count around it.
        cpu, redis_seconds, through = 0.0, 0.0, 0
        commands: dict[str, int] = {}
        reads = 0
        for start in range(0, len(measured), settings.batch_size):
            batch = run_pipeline(["dedupe", "clean", "tag"], measured[start : start + settings.batch_size], context)
            before, redis_before = redis_counters(client), redis_cpu(client)
            began = time.process_time()
            run_pipeline(["story"], batch, context)
            cpu += time.process_time() - began
            redis_seconds += redis_cpu(client) - redis_before
            after = redis_counters(client)
            for name, calls in after[0].items():
                commands[name] = commands.get(name, 0) + calls - before[0].get(name, 0)
            reads += after[1] - before[1] - 4  # INFO calls between the two counts of reads
            through += len(batch)
        stored += through
        memory, keys = story_memory(client)
        top = sorted(commands.items(), key=lambda item: -item[1])[:8]
        print(
            f"stored {stored} (load {load}): {sum(commands.values()) / through:.1f} commands, "
            f"{reads / through:.2f} round trips, CPU {1000 * cpu / through:.3f} ms here and "
            f"{1000 * redis_seconds / through:.3f} ms in Redis per article; "
            f"memory {memory / stored:.0f} bytes and {keys / stored:.3f} keys per stored article\n  "
            + ", ".join(f"{name} {calls / through:.2f}" for name, calls in top if calls)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
