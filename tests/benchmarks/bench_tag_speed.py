"""Speed of the tag step: milliseconds per article for `tag` and for its patterns alone.

Runs the real clean step once, then times `tag` (shipped taxonomy and entity lists) over every
article, the best of several rounds in process CPU time (a shared machine's wall clock
measures its neighbours too).

    python tests/benchmarks/bench_tag_speed.py [--dev DIR] [--rounds N]

`--dev DIR` times the real-news development set's `articles.jsonl` (title, subtitle, text),
kept outside the repository; without it, the labelled fixture articles. A benchmark, not a
test: it prints numbers and exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from shared.article import Article
from shared.pipeline.clean import BoilerplateRules, clean
from shared.pipeline.tag import Taxonomy, tag

LABELLED = Path(__file__).parents[1] / "fixtures" / "labelled" / "articles.jsonl"


def load_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def best_of(rounds: int, run: Callable[[], object]) -> float:
    """The shortest process CPU time of `rounds` runs, in seconds."""
    times = []
    for _ in range(rounds):
        started = time.process_time()
        run()
        times.append(time.process_time() - started)
    return min(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev", type=Path, help="the real-news development set's folder (articles.jsonl)")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    rows = load_rows(args.dev / "articles.jsonl" if args.dev else LABELLED)
    taxonomy, rules = Taxonomy.load(), BoilerplateRules.load()
    articles = [
        clean(
            Article.create(
                title=row["title"], text=f"{row['subtitle']}\n\n{row['text']}" if row.get("subtitle") else row["text"]
            ),
            rules,
        )
        for row in rows
    ]
    texts = [f"{article.title}\n{article.text}" for article in articles]
    per_article = 1000 / len(articles)
    patterns = best_of(args.rounds, lambda: [taxonomy.find_patterns(text) for text in texts])
    tag_times = []
    for _ in range(args.rounds):
        fresh = [article.model_copy(deep=True) for article in articles]  # tag sets fields in place
        tag_times.append(best_of(1, lambda fresh=fresh: [tag(article, taxonomy) for article in fresh]))
    tag_time = min(tag_times)
    print(f"{len(articles)} articles, {sum(map(len, texts)) / len(texts):.0f} characters each on average")
    print(f"patterns  {patterns * per_article:.3f} ms/article")
    print(f"tag       {tag_time * per_article:.3f} ms/article")
    return 0


if __name__ == "__main__":
    sys.exit(main())
