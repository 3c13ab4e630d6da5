"""Tagging quality: precision, recall and F1 of the real clean + tag on a labelled set.

Runs `clean` (shipped boilerplate rules) and `tag` (shipped taxonomy and entity lists) on each
article of tests/fixtures/labelled/articles.jsonl and compares the result with its labels:
per default tag (an article has the tag or not), and per entity type, micro-averaged over the
set (every expected or found country, person or organization of every article counts once).

    python tests/benchmarks/bench_tagging.py [--errors] [--fixture PATH] [--dev DIR]

`--dev DIR` measures on the real-news development set instead (kept outside the repository,
e.g. ../shared/eval/news-dev from a checkout): its `articles.jsonl` (title, subtitle, text)
and `tags.jsonl` (the five tags and country codes per article). Its texts are never copied here.

A benchmark, not a test: it always exits 0. tests/test_labelled_tags.py holds the targets.

How the set is labelled (by meaning, as an analyst would want it, never by what the tagger says):
  missile-test  a launch or test-firing of a missile or rocket weapon is reported, prepared or
                reacted to. Not missiles fired in an attack, space launches, or ovens.
  nuclear       nuclear weapons, programmes, materials, facilities or nuclear energy, literally.
                Not "nuclear family", "nuclear option", "went nuclear", cell nuclei.
  sanctions     restrictive measures by states or international bodies: sanctions, embargoes,
                asset freezes, export controls, blacklists. Not sports or workplace discipline,
                "sanctioned" meaning approved, press embargoes or spam blacklists.
  military      armed forces, military activity, weapons (missiles included, so every
                missile-test article is military) and weapons programmes, defence ministries,
                budgets and procurement. Nuclear weapons alone are `nuclear`; a passing mention
                of a war is neither.
  diplomacy     dealings between states or with international bodies: talks, summits, visits,
                envoys, ambassadors, embassies, treaties, foreign ministries addressing other
                states, votes of UN bodies. Not wage, merger or transfer talks, mountain summits,
                brand ambassadors, or "diplomatic" as a manner.
  countries     ISO codes of the countries named, by name, demonym, capital or other city, or
                seat of government (White House, Kremlin, Pentagon). Not "South China Sea",
                "Georgia" the US state, "Jordan" the player, "Turkey" the bird.
  people        canonical names from people.yml of the people the article names.
  organizations canonical names from organizations.yml; the most specific body ("UN Security
                Council", not also "United Nations" unless the UN is named on its own).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.article import Article
from shared.pipeline.clean import BoilerplateRules, clean
from shared.pipeline.tag import Taxonomy, tag

LABELLED = Path(__file__).parents[1] / "fixtures" / "labelled" / "articles.jsonl"
DEFAULT_TAGS = ("missile-test", "nuclear", "sanctions", "military", "diplomacy")
ENTITY_KINDS = ("countries", "people", "organizations")


@dataclass
class Score:
    """True positives, false positives and false negatives of one tag or entity type."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, expected: set[str], got: set[str]) -> None:
        self.tp += len(expected & got)
        self.fp += len(got - expected)
        self.fn += len(expected - got)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Error:
    """One field of one article where the tagger and the label disagree."""

    article_id: str
    field: str
    missing: list[str]
    extra: list[str]


@dataclass
class Evaluation:
    """Scores per default tag and per entity type, and every disagreement."""

    articles: int = 0
    tags: dict[str, Score] = field(default_factory=lambda: {name: Score() for name in DEFAULT_TAGS})
    entities: dict[str, Score] = field(default_factory=lambda: {kind: Score() for kind in ENTITY_KINDS})
    errors: list[Error] = field(default_factory=list)


def load_labelled(path: Path = LABELLED) -> list[dict[str, Any]]:
    """The labelled articles, one JSON object a line."""
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def load_dev_set(directory: Path) -> list[dict[str, Any]]:
    """The development set's tag part as labelled examples: the subtitle leads the text, as a
    standfirst does on the page; only tags and countries are labelled."""
    articles = {row["article_id"]: row for row in load_labelled(directory / "articles.jsonl")}
    examples = []
    for label in load_labelled(directory / "tags.jsonl"):
        row = articles[label["article_id"]]
        text = f"{row['subtitle']}\n\n{row['text']}" if row.get("subtitle") else row["text"]
        examples.append(
            {
                "id": label["article_id"],
                "title": row["title"],
                "text": text,
                "tags": label["tags"],
                "countries": label["countries"],
                "notes": label.get("notes", ""),
            }
        )
    return examples


def tag_text(title: str, text: str, taxonomy: Taxonomy, rules: BoilerplateRules) -> Article:
    """An article through the real clean and tag steps, as the worker runs them."""
    return tag(clean(Article.create(title=title, text=text), rules), taxonomy)


def evaluate(
    labelled: Iterable[dict[str, Any]],
    taxonomy: Taxonomy | None = None,
    rules: BoilerplateRules | None = None,
) -> Evaluation:
    """Tag every labelled article and compare with its labels."""
    taxonomy = taxonomy or Taxonomy.load()
    rules = rules or BoilerplateRules.load()
    result = Evaluation()
    for example in labelled:
        article = tag_text(example["title"], example["text"], taxonomy, rules)
        result.articles += 1
        compared = {"tags": (set(example["tags"]), set(article.tags) & set(DEFAULT_TAGS))}
        kinds = [kind for kind in ENTITY_KINDS if kind in example]
        for kind in kinds:
            compared[kind] = (set(example[kind]), set(getattr(article, kind)))
        for name in DEFAULT_TAGS:
            expected, got = compared["tags"]
            result.tags[name].add(expected & {name}, got & {name})
        for kind in kinds:
            result.entities[kind].add(*compared[kind])
        for name, (expected, got) in compared.items():
            if expected != got:
                result.errors.append(Error(example["id"], name, sorted(expected - got), sorted(got - expected)))
    return result


def report(result: Evaluation, errors: bool = False) -> str:
    """The scores as a table, then the disagreements if asked for."""
    lines = [
        f"{result.articles} labelled articles",
        "",
        f"{'':<16}{'P':>7}{'R':>7}{'F1':>7}{'TP':>6}{'FP':>5}{'FN':>5}",
    ]
    for group, scores in (("tags", result.tags), ("entities (micro)", result.entities)):
        lines.append(group)
        for name, score in scores.items():
            if group != "tags" and score.tp + score.fp + score.fn == 0:
                continue  # not labelled in this set
            lines.append(
                f"  {name:<14}{score.precision:>7.3f}{score.recall:>7.3f}{score.f1:>7.3f}"
                f"{score.tp:>6}{score.fp:>5}{score.fn:>5}"
            )
    if errors:
        lines += ["", f"{len(result.errors)} errors (missing = expected, not found; extra = found, not expected)"]
        for error in result.errors:
            parts = [f"missing {error.missing}" if error.missing else "", f"extra {error.extra}" if error.extra else ""]
            lines.append(f"  {error.article_id:<34}{error.field:<14}{'  '.join(part for part in parts if part)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--errors", action="store_true", help="list every article and field that disagrees")
    parser.add_argument("--fixture", type=Path, default=LABELLED, help="labelled articles (JSON lines)")
    parser.add_argument(
        "--dev",
        type=Path,
        help="the real-news development set's folder (articles.jsonl, tags.jsonl), e.g. ../shared/eval/news-dev",
    )
    args = parser.parse_args(argv)
    labelled = load_dev_set(args.dev) if args.dev else load_labelled(args.fixture)
    print(report(evaluate(labelled), errors=args.errors))
    return 0


if __name__ == "__main__":
    sys.exit(main())
