"""Duplicate detection and story grouping, measured on labelled news articles.

The base articles (tests/fixtures/dedupe/articles.jsonl) are hand-written: several events are
reported by two to four outlets in their own words, and some subjects recur as different events
(two ASEAN summits, two missile tests, two floods in different cities). From each base article
the benchmark makes the copies syndication produces, each under its own URL and source:

  headline   the same text under another headline
  promo      a newsletter or promotion line added
  truncated  the last 20-30% of the text cut off
  edited     a few words changed and two sentences swapped
  combined   two of the above

Duplicates: everything goes through one real Deduper on real Redis: the first write-up of each
event first, then the other write-ups and all copies shuffled with a fixed seed (a copy never
before the article it copies). Each article's verdict names its original (NEW: itself,
NEAR_DUPLICATE: `duplicate_of`, DUPLICATE: the owner of the exact-duplicate key it hit), and two
articles are predicted duplicates iff they lead to the same original. Over all pairs of fed
articles, a pair is a duplicate iff both come from the same base article; independent write-ups
of the same event and articles on the same subject are negatives. Targets: precision >= 0.99,
recall >= 0.95.

Stories: each base article is cleaned and tagged, then given to
`shared.pipeline.stories.StoryClusterer.assign` in order of publication; two articles belong to
the same story iff they report the same event (pair-level precision and recall).

    python tests/benchmarks/bench_dedupe.py [--redis redis://127.0.0.1:6379/13] [--seed 7] [--errors]

The Redis database given is flushed.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import random
import re
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import redis

from shared import redis_keys
from shared.article import Article, digest, normalized_content
from shared.pipeline.dedupe import SHINGLE_WORDS, Deduper, Verdict, minhash
from shared.redis_client import as_text
from shared.settings import Settings

FIXTURE = Path(__file__).parents[1] / "fixtures" / "dedupe" / "articles.jsonl"
PRECISION_TARGET = 0.99
RECALL_TARGET = 0.95
KINDS = ("headline", "promo", "truncated", "edited")
COMBINATIONS = tuple(itertools.combinations(KINDS, 2))

# Events that are about the same subject: hard negatives for duplicates and for stories.
SUBJECTS = {
    "kp-srbm-2024-03-14": "north-korean-missile-test",
    "kp-cruise-2024-04-19": "north-korean-missile-test",
    "kp-satellite-2023-11": "north-korean-satellite-launch",
    "kp-satellite-2024-05": "north-korean-satellite-launch",
    "asean-summit-2022-11": "asean-summit",
    "asean-summit-2023-09": "asean-summit",
    "flood-busan-2024-07": "city-flood",
    "flood-manila-2024-07": "city-flood",
    "pla-drills-taiwan-2024-05": "pla-drills-around-taiwan",
    "pla-drills-taiwan-2024-10": "pla-drills-around-taiwan",
    "eu-sanctions-13th-2024-02": "eu-sanctions-on-russia",
    "eu-sanctions-14th-2024-06": "eu-sanctions-on-russia",
}

OUTLETS = (
    "Harbour Gazette",
    "Peninsula Times",
    "Eastern Wire",
    "Morning Ledger",
    "Pacific Courier",
    "Capital Herald",
    "Strait Observer",
    "Northern Dispatch",
    "River City Post",
    "Continental Report",
    "Daily Meridian",
    "Lakeside Chronicle",
)

PROMOS = (
    "Sign up for our Asia Morning Briefing newsletter to get the top stories from the region in your inbox every weekday.",
    "Subscribe to our free World Today newsletter for the day's essential news and analysis.",
    "Follow us on Telegram for breaking news alerts as they happen.",
    "Download our news app to read this story and more, even when you are offline.",
    "Read more: our live coverage, with maps and explainers, is updated throughout the day.",
    "Have a news tip? Contact our reporters securely through the form on our website.",
    "This story is part of our Global Affairs section. Support independent journalism by becoming a member today.",
)

HEADLINES = (
    lambda title, outlet: f"UPDATE 1-{title}",
    lambda title, outlet: f"{title} | {outlet}",
    lambda title, outlet: f"Breaking: {title}",
    lambda title, outlet: title.split(",")[0].split(":")[0].rstrip(".") + " - sources",
    lambda title, outlet: f"{title} (updated)",
)

# Sub-editors' word changes: (pattern, replacement), applied at one occurrence each.
SWAPS = (
    (r"\bsaid\b", "says"),
    (r"\babout\b", "around"),
    (r"\baround\b", "about"),
    (r"\broughly\b", "about"),
    (r"\bmore than\b", "over"),
    (r"\bofficials\b", "authorities"),
    (r"\balso\b", "further"),
    (r"\bwould\b", "will"),
    (r"\bwhich\b", "that"),
    (r"\bpeople\b", "residents"),
    (r"\bcountry\b", "nation"),
    (r"\bgovernment\b", "administration"),
    (r"\bbegan\b", "started"),
    (r"\bpercent\b", "per cent"),
    (r"\bdefence\b", "defense"),
    (r"\bseveral\b", "a number of"),
    (r"\bhad been\b", "was"),
    (r"\bthe United States\b", "the US"),
    (r"\bexpected\b", "likely"),
    (r"\bmonths\b", "weeks"),
    (r"\bthe ", "a "),
)
SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’]?\s+(?=[A-Z\"“])")


@dataclass(frozen=True)
class BaseArticle:
    id: str
    title: str
    text: str
    published: datetime
    event: str

    @property
    def subject(self) -> str:
        return SUBJECTS.get(self.event, self.event)


def load_articles(path: Path = FIXTURE) -> list[BaseArticle]:
    articles = []
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            published = datetime.fromisoformat(raw["published"])
            articles.append(
                BaseArticle(
                    id=raw["id"],
                    title=raw["title"],
                    text=raw["text"],
                    published=published if published.tzinfo else published.replace(tzinfo=UTC),
                    event=raw["event"],
                )
            )
    return articles


# --- copies -------------------------------------------------------------------------------------


def change_headline(title: str, text: str, rng: random.Random, outlet: str) -> tuple[str, str]:
    return rng.choice(HEADLINES)(title, outlet), text


def add_promo(title: str, text: str, rng: random.Random, outlet: str) -> tuple[str, str]:
    paragraphs = text.split("\n\n")
    promo = rng.choice(PROMOS)
    where = rng.choice(("end", "end", "start", "middle"))
    if where == "end":
        paragraphs.append(promo)
    elif where == "start":
        paragraphs.insert(0, promo)
    else:
        paragraphs.insert(rng.randrange(1, len(paragraphs)), promo)
    return title, "\n\n".join(paragraphs)


def truncate(title: str, text: str, rng: random.Random, outlet: str) -> tuple[str, str]:
    words = list(re.finditer(r"\S+", text))
    keep = round(len(words) * (1 - rng.uniform(0.20, 0.30)))
    cut = text[: words[keep - 1].end()].rstrip(",;:")
    return title, cut + rng.choice(("…", " […]", "...", " Read more"))


def light_edit(title: str, text: str, rng: random.Random, outlet: str) -> tuple[str, str]:
    """A few words changed (three or four) and two neighbouring sentences swapped."""
    matches = [(m.start(), m.end(), new) for pattern, new in SWAPS for m in re.finditer(pattern, text)]
    rng.shuffle(matches)
    wanted = rng.choice((3, 4))
    chosen: list[tuple[int, int, str]] = []
    for start, end, new in matches:
        if all(end <= s or start >= e for s, e, _ in chosen):
            chosen.append((start, end, new))
        if len(chosen) == wanted:
            break
    assert len(chosen) == wanted, "too few words to edit"
    for start, end, new in sorted(chosen, reverse=True):
        text = text[:start] + new + text[end:]
    paragraphs = text.split("\n\n")
    candidates = [i for i, paragraph in enumerate(paragraphs) if len(SENTENCE_END.split(paragraph)) >= 2]
    index = rng.choice(candidates)
    sentences = SENTENCE_END.split(paragraphs[index])
    at = rng.randrange(len(sentences) - 1)
    sentences[at], sentences[at + 1] = sentences[at + 1], sentences[at]
    paragraphs[index] = " ".join(sentences)
    return title, "\n\n".join(paragraphs)


TRANSFORMS = {"headline": change_headline, "promo": add_promo, "truncated": truncate, "edited": light_edit}


@dataclass
class Item:
    """One article fed to the Deduper: a base article ("original") or a copy of one."""

    key: str
    base: BaseArticle
    kind: str
    article: Article


def _url(outlet: str, published: datetime, number: int) -> str:
    slug = outlet.lower().replace(" ", "-")
    return f"https://www.{slug}.example/news/{published:%Y/%m/%d}/{number}"


def build_items(bases: list[BaseArticle], rng: random.Random) -> list[Item]:
    """The base articles and five copies of each, every one with its own URL and source."""
    items = []
    numbers = rng.sample(range(100_000, 1_000_000), len(bases) * 6)
    for index, base in enumerate(bases):
        outlet = OUTLETS[index % len(OUTLETS)]
        original = Article.create(
            title=base.title,
            text=base.text,
            url=_url(outlet, base.published, numbers.pop()),
            source=outlet,
            published_at=base.published,
        )
        items.append(Item(base.id, base, "original", original))
        plans = [(kind,) for kind in KINDS] + [COMBINATIONS[index % len(COMBINATIONS)]]
        for plan in plans:
            copier = rng.choice([name for name in OUTLETS if name != outlet])
            title, text = base.title, base.text
            for kind in plan:
                title, text = TRANSFORMS[kind](title, text, rng, copier)
            kind = "+".join(plan)
            published = base.published + timedelta(hours=rng.randint(1, 30))
            copy = Article.create(
                title=title,
                text=text,
                url=_url(copier, published, numbers.pop()),
                source=copier,
                published_at=published,
            )
            items.append(Item(f"{base.id}~{kind}", base, kind, copy))
    ids = [item.article.id for item in items]
    assert len(set(ids)) == len(ids), "two items share an article id"
    return items


def feed_order(items: list[Item], rng: random.Random) -> list[Item]:
    """The first write-up of each event in order of publication, then the rest shuffled, a copy
    never before the article it copies."""
    originals = sorted((item for item in items if item.kind == "original"), key=lambda item: item.base.published)
    first: dict[str, Item] = {}
    for item in originals:
        first.setdefault(item.base.event, item)
    ordered = list(first.values())
    rest = [item for item in items if item not in ordered]
    rng.shuffle(rest)
    arrived = {item.base.id for item in ordered}
    waiting: dict[str, list[Item]] = defaultdict(list)
    for item in rest:
        if item.kind == "original":
            ordered.append(item)
            arrived.add(item.base.id)
            ordered.extend(waiting.pop(item.base.id, []))
        elif item.base.id in arrived:
            ordered.append(item)
        else:
            waiting[item.base.id].append(item)
    assert not waiting and len(ordered) == len(items)
    return ordered


# --- measuring ----------------------------------------------------------------------------------


def shingles(text: str) -> set[str]:
    words = normalized_content(text).split()
    return {" ".join(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}


def jaccard(a: str, b: str) -> float:
    first, second = shingles(a), shingles(b)
    return len(first & second) / len(first | second) if first | second else 0.0


def estimated(a: str, b: str) -> float:
    return float(np.mean(minhash(normalized_content(a).split()) == minhash(normalized_content(b).split())))


def pair_category(a: Item, b: Item) -> str:
    if a.base.id == b.base.id:
        return "copies"
    if a.base.event == b.base.event:
        return "same event"
    if a.base.subject == b.base.subject:
        return "same subject"
    return "unrelated"


@dataclass
class PairCounts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def pairs(self) -> int:
        return self.tp + self.fp + self.fn + self.tn


@dataclass
class DuplicateResult:
    items: list[Item]
    verdicts: dict[str, Verdict]
    roots: dict[str, str]  # item key -> key of the item the Deduper leads it to
    counts: PairCounts
    by_category: Counter[tuple[str, bool]] = field(default_factory=Counter)  # (category, predicted) -> pairs
    seconds: float = 0.0

    @property
    def precision(self) -> float:
        return self.counts.precision

    @property
    def recall(self) -> float:
        return self.counts.recall

    def misjudged(self) -> list[Item]:
        """Articles whose original the Deduper got wrong: a copy not led to its base article's
        group, or an article led into another base article's group."""
        by_key = {item.key: item for item in self.items}
        wrong = []
        for item in self.items:
            root = by_key[self.roots[item.key]]
            if root.base.id != item.base.id or self.roots[item.key] != self.roots[item.base.id]:
                wrong.append(item)
        return wrong

    def report(self, errors: bool = False) -> str:
        c = self.counts
        lines = [
            f"duplicates: precision {c.precision:.4f} recall {c.recall:.4f}"
            f"  (targets >= {PRECISION_TARGET}, >= {RECALL_TARGET}; tp {c.tp} fp {c.fp} fn {c.fn})",
            f"  articles: {len(self.items)} ({sum(i.kind == 'original' for i in self.items)} base articles,"
            f" {sum(i.kind != 'original' for i in self.items)} copies); checked in {self.seconds:.2f}s",
            f"  pairs: {c.pairs}; "
            + ", ".join(
                f"{category} {self.by_category[category, True] + self.by_category[category, False]}"
                f" ({self.by_category[category, True]} judged duplicates)"
                for category in ("copies", "same event", "same subject", "unrelated")
            ),
            "  verdicts: " + ", ".join(f"{v.name} {n}" for v, n in Counter(self.verdicts.values()).most_common()),
        ]
        found: Counter[str] = Counter()
        total: Counter[str] = Counter()
        for item in self.items:
            if item.kind != "original":
                total[item.kind] += 1
                found[item.kind] += self.roots[item.key] == self.roots[item.base.id]
        lines.append("  copies found: " + ", ".join(f"{kind} {found[kind]}/{total[kind]}" for kind in total))
        if errors:
            by_key = {item.key: item for item in self.items}
            wrong = self.misjudged()
            lines.append(f"errors: {len(wrong)} articles")
            for item in wrong:
                root = by_key[self.roots[item.key]]
                base = by_key[item.base.id]
                lines.append(
                    f"  {item.key} [{item.kind}] -> {self.verdicts[item.key].name}, led to {root.key}"
                    f" (its base {base.key} led to {self.roots[base.key]});"
                    f" vs base: jaccard {jaccard(item.article.text, base.article.text):.2f}"
                    f" minhash {estimated(item.article.text, base.article.text):.2f}"
                    + (
                        f"; vs {root.key}: jaccard {jaccard(item.article.text, root.article.text):.2f}"
                        f" minhash {estimated(item.article.text, root.article.text):.2f}"
                        if root.key != base.key
                        else ""
                    )
                )
        return "\n".join(lines)


def _exact_owner(client: redis.Redis, article: Article) -> str | None:
    """The short reference (`redis_keys.short_ref`) of the article that owns the exact-duplicate
    key this one collided with."""
    keys = []
    if article.canonical_url:
        keys.append(redis_keys.seen("url", digest(article.canonical_url)))
    keys.append(redis_keys.seen("content", digest(normalized_content(article.text))))
    for key in keys:
        raw = client.get(key)
        if raw is not None:
            owner = as_text(raw).split("|", 1)[0]
            if owner != redis_keys.short_ref(article.id):
                return owner
    return None


def evaluate_duplicates(
    client: redis.Redis,
    bases: list[BaseArticle],
    *,
    threshold: float,
    window_seconds: int,
    seed: int = 7,
) -> DuplicateResult:
    """Feed the base articles and their copies through one Deduper and count pairs."""
    rng = random.Random(seed)
    items = feed_order(build_items(bases, rng), rng)
    deduper = Deduper(client, window_seconds, threshold)
    key_of = {item.article.id: item.key for item in items}
    key_of_owner = {redis_keys.short_ref(item.article.id): item.key for item in items}
    verdicts: dict[str, Verdict] = {}
    roots: dict[str, str] = {}
    started = time.perf_counter()
    for item in items:
        verdict = deduper.check(item.article)
        verdicts[item.key] = verdict
        if verdict is Verdict.NEAR_DUPLICATE:
            target = key_of[item.article.duplicate_of or ""]
        elif verdict is Verdict.DUPLICATE:
            owner = _exact_owner(client, item.article)
            assert owner is not None, f"{item.key}: a duplicate of nothing"
            target = key_of_owner[owner]
        else:  # NEW (an UPDATE cannot happen: every article has its own URL)
            target = item.key
        roots[item.key] = roots.get(target, target)
    seconds = time.perf_counter() - started
    counts = PairCounts()
    by_category: Counter[tuple[str, bool]] = Counter()
    for a, b in itertools.combinations(items, 2):
        category = pair_category(a, b)
        truth = category == "copies"
        predicted = roots[a.key] == roots[b.key]
        by_category[category, predicted] += 1
        if truth and predicted:
            counts.tp += 1
        elif predicted:
            counts.fp += 1
        elif truth:
            counts.fn += 1
        else:
            counts.tn += 1
    return DuplicateResult(items, verdicts, roots, counts, by_category, seconds)


# --- stories ------------------------------------------------------------------------------------


@dataclass
class StoryResult:
    stories: dict[str, str]  # base article id -> story id
    bases: list[BaseArticle]
    counts: PairCounts
    seconds: float

    def report(self, errors: bool = False) -> str:
        c = self.counts
        lines = [
            f"stories: precision {c.precision:.4f} recall {c.recall:.4f}  (tp {c.tp} fp {c.fp} fn {c.fn})",
            f"  articles: {len(self.bases)}, events {len({b.event for b in self.bases})},"
            f" stories {len(set(self.stories.values()))}; pairs {c.pairs} ({c.tp + c.fn} in the same event);"
            f" assigned in {self.seconds:.2f}s",
        ]
        if errors:
            lines.append("errors:")
            for a, b in itertools.combinations(self.bases, 2):
                same_event, same_story = a.event == b.event, self.stories[a.id] == self.stories[b.id]
                if same_event != same_story:
                    what = "split" if same_event else "merged"
                    lines.append(
                        f"  {what}: {a.id} ({a.event}, {a.published:%Y-%m-%d}) / {b.id} ({b.event}, {b.published:%Y-%m-%d})"
                    )
        return "\n".join(lines)


def stories_available() -> bool:
    return importlib.util.find_spec("shared.pipeline.stories") is not None


def evaluate_stories(client: redis.Redis, bases: list[BaseArticle]) -> StoryResult:
    """Clean and tag each base article, then assign it a story, in order of publication."""
    from shared.pipeline.clean import BoilerplateRules, clean
    from shared.pipeline.stories import StoryClusterer
    from shared.pipeline.tag import Taxonomy, tag

    rules, taxonomy = BoilerplateRules.load(), Taxonomy.load()
    clusterer = StoryClusterer(client)
    stories: dict[str, str] = {}
    started = time.perf_counter()
    for index, base in enumerate(sorted(bases, key=lambda b: b.published)):
        outlet = OUTLETS[index % len(OUTLETS)]
        article = Article.create(
            title=base.title,
            text=base.text,
            url=_url(outlet, base.published, index),
            source=outlet,
            published_at=base.published,
        )
        tag(clean(article, rules), taxonomy)
        stories[base.id] = clusterer.assign(article)
    seconds = time.perf_counter() - started
    counts = PairCounts()
    for a, b in itertools.combinations(bases, 2):
        truth, predicted = a.event == b.event, stories[a.id] == stories[b.id]
        if truth and predicted:
            counts.tp += 1
        elif predicted:
            counts.fp += 1
        elif truth:
            counts.fn += 1
        else:
            counts.tn += 1
    return StoryResult(stories, bases, counts, seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13", help="flushed before each part")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threshold", type=float, default=None, help="default: the project's setting")
    parser.add_argument("--errors", action="store_true", help="list the misjudged articles and pairs")
    args = parser.parse_args()
    settings = Settings()
    threshold = args.threshold if args.threshold is not None else settings.near_duplicate_threshold
    client = redis.Redis.from_url(args.redis)
    bases = load_articles()
    events = Counter(base.event for base in bases)
    print(
        f"{len(bases)} base articles, {len(events)} events ({sum(n >= 2 for n in events.values())} with 2-4 write-ups);"
        f" threshold {threshold}, seed {args.seed}, {args.redis}"
    )
    client.flushdb()
    result = evaluate_duplicates(
        client, bases, threshold=threshold, window_seconds=settings.dedupe_window_seconds, seed=args.seed
    )
    print(result.report(errors=args.errors))
    if stories_available():
        client.flushdb()
        print(evaluate_stories(client, bases).report(errors=args.errors))
    else:
        print("stories: not available")
    met = result.precision >= PRECISION_TARGET and result.recall >= RECALL_TARGET
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
