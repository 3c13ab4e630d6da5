"""Story grouping measured on real news: the development set's same-event groups.

The development set is kept outside the repository (e.g. ../shared/eval/news-dev from a
checkout): `articles.jsonl` holds real articles (title, subtitle, text, date), `stories.jsonl`
labels some of them with the event they report (groups of two to five outlets, and single
articles on the same subject that report another event). Every article of the set is cleaned,
tagged and given to one real `StoryClusterer` on real Redis, the others being background news of
the same months; pairs are scored only over the labelled ones: a pair is right when both are
in one story iff they report one event. Its texts are never copied here.

The grouping must not depend on the order articles arrive, so the set is fed in its file order
and again shuffled, each into a flushed database; both results are printed, with whether the
two groupings are identical. A third pass without dates (every article placed at the time it
was seen, as plain dropped files are) is printed for information.

    python tests/benchmarks/bench_stories.py DEV_DIR [--redis redis://127.0.0.1:6379/13] [--seed 7] [--errors]

Targets: pair precision >= 0.9 and recall >= 0.9, and no story larger than the largest labelled
event. A benchmark, not a test: it exits 0 when the targets are met in both orders, 1 otherwise.
The Redis database given is flushed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from shared.article import Article
from shared.pipeline.clean import BoilerplateRules, clean
from shared.pipeline.stories import StoryClusterer, article_vector
from shared.pipeline.tag import Taxonomy, tag
from shared.settings import Settings

PRECISION_TARGET = RECALL_TARGET = 0.9


@dataclass(frozen=True)
class DevArticle:
    id: str
    title: str
    text: str
    published: datetime
    source: str
    url: str


@dataclass
class Result:
    order: str
    stories: dict[str, str]  # article id -> story id
    tp: int
    fp: int
    fn: int
    largest: int  # the largest story among the labelled articles
    largest_overall: int  # among every article fed
    story_seconds: float  # time spent in StoryClusterer.assign
    articles: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def load(folder: Path) -> tuple[list[DevArticle], dict[str, str]]:
    articles = []
    for line in (folder / "articles.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            text = f"{raw['subtitle']}\n\n{raw['text']}" if raw.get("subtitle") else raw["text"]
            articles.append(
                DevArticle(
                    id=raw["article_id"],
                    title=raw["title"],
                    text=text,
                    published=datetime.fromisoformat(raw["published"]).replace(tzinfo=UTC),
                    source=raw["source"],
                    url=raw["url"],
                )
            )
    events = {}
    for line in (folder / "stories.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            events[raw["article_id"]] = raw["story"]
    return articles, events


def prepare(articles: list[DevArticle], dated: bool) -> list[tuple[str, Article]]:
    rules, taxonomy = BoilerplateRules.load(), Taxonomy.load()
    seen = datetime(2017, 4, 1, tzinfo=UTC)
    prepared = []
    for number, dev in enumerate(articles):
        article = Article.create(
            title=dev.title,
            text=dev.text,
            url=dev.url,
            source=dev.source,
            published_at=dev.published if dated else None,
        )
        # Undated: all seen within a few minutes, as a folder of plain files would be.
        article.ingested_at = seen + timedelta(seconds=number)
        tag(clean(article, rules), taxonomy)
        if not dated:
            article.published_at = None  # cleaning may find a date in the text; this pass has none
        prepared.append((dev.id, article))
    return prepared


def evaluate(
    client: redis.Redis, prepared: list[tuple[str, Article]], events: dict[str, str], order: str, settings: Settings
) -> Result:
    client.flushdb()
    clusterer = StoryClusterer(client, settings.story_window_days, settings.story_threshold)
    stories: dict[str, str] = {}
    seconds = 0.0
    for article_id, article in prepared:
        article = article.model_copy(deep=True)
        started = time.perf_counter()
        stories[article_id] = clusterer.assign(article)
        seconds += time.perf_counter() - started
    tp = fp = fn = 0
    for a, b in itertools.combinations(sorted(events), 2):
        truth, predicted = events[a] == events[b], stories[a] == stories[b]
        tp += truth and predicted
        fp += predicted and not truth
        fn += truth and not predicted
    labelled = Counter(stories[i] for i in events)
    return Result(
        order,
        stories,
        tp,
        fp,
        fn,
        max(labelled.values()),
        max(Counter(stories.values()).values()),
        seconds,
        len(prepared),
    )


def partition(stories: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for article_id, story in stories.items():
        groups.setdefault(story, set()).add(article_id)
    return {frozenset(group) for group in groups.values()}


def report(result: Result, largest_event: int, events: dict[str, str], errors: bool) -> str:
    lines = [
        f"{result.order}: precision {result.precision:.3f} recall {result.recall:.3f}"
        f" (tp {result.tp} fp {result.fp} fn {result.fn}); largest story {result.largest}"
        f" of the labelled (largest event {largest_event}), {result.largest_overall} of all {result.articles};"
        f" story step {result.story_seconds / result.articles * 1e6:.0f} µs per article",
    ]
    if errors:
        for a, b in itertools.combinations(sorted(events), 2):
            truth, predicted = events[a] == events[b], result.stories[a] == result.stories[b]
            if truth != predicted:
                lines.append(f"  {'merged' if predicted else 'split'}: {a} ({events[a]}) / {b} ({events[b]})")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dev", type=Path, help="the development set's folder (articles.jsonl, stories.jsonl)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13", help="flushed before each pass")
    parser.add_argument("--seed", type=int, default=7, help="of the shuffled order")
    parser.add_argument("--errors", action="store_true", help="list the wrongly merged and split pairs")
    args = parser.parse_args()
    settings = Settings()
    client = redis.Redis.from_url(args.redis)
    articles, events = load(args.dev)
    largest_event = max(Counter(events.values()).values())
    shuffled = list(articles)
    random.Random(args.seed).shuffle(shuffled)
    print(
        f"{len(articles)} articles, {len(events)} labelled in {len(set(events.values()))} stories;"
        f" window {settings.story_window_days} days, threshold {settings.story_threshold}"
    )
    for _, article in prepare(articles, dated=True):
        article_vector(article)  # load the word list and fill the per-process memos, as a running worker has
    results = []
    for order, feed in (("file order", articles), (f"shuffled (seed {args.seed})", shuffled)):
        results.append(evaluate(client, prepare(feed, dated=True), events, order, settings))
        print(report(results[-1], largest_event, events, args.errors))
    same = partition(results[0].stories) == partition(results[1].stories)
    print(f"the two orders group every article {'identically' if same else 'DIFFERENTLY'}")
    undated = evaluate(client, prepare(articles, dated=False), events, "undated, file order", settings)
    print(report(undated, largest_event, events, args.errors) + "  (information: no target)")
    met = all(
        r.precision >= PRECISION_TARGET and r.recall >= RECALL_TARGET and r.largest <= largest_event for r in results
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
