"""Main-text extraction quality and speed on an annotated set of pages.

The folder holds pairs `ID.html` + `ID.json`, the JSON's "text" being the human-annotated article
body (its "url", when present, is passed to the extractor). Every page is extracted, and the
extractions are scored the way the public article-extraction benchmark scores them:

- text → tokens (`\\w+`, case kept) → 4-token shingles, counted (a text shorter than 4 tokens is
  one shingle of all its tokens);
- per page: TP = shingles in both (by count), FP = only in the extraction, FN = only in the
  annotation; the three are divided by their sum so that long pages weigh no more than short ones;
- per page precision TP/(TP+FP) and recall TP/(TP+FN), both 1 when FP = FN = 0;
- precision is the mean over the pages that have TP+FP > 0 (an empty extraction does not count
  there), recall the mean over the pages that have TP+FN > 0, and F1 = 2PR/(P+R) of those two
  means (macro averages, not a mean of per-page F1s);
- accuracy: share of pages whose extraction has exactly the annotation's tokens;
- ± is the standard deviation of each metric over bootstrap resamples of the pages.

Speed is pages per second of the extractor alone (reading files and scoring excluded), in one
process.

    python tests/benchmarks/bench_extraction.py FOLDER [--extractor wirewatch|trafilatura|...]
        [--bootstrap 1000] [--worst 0]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trafilatura

from shared.pipeline.extract import extract_main_text

SHINGLE_SIZE = 4
_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class Page:
    id: str
    html: str
    url: str | None
    truth: str


@dataclass(frozen=True)
class Counts:
    """One page's shingle counts, normalised to sum to 1 (or all 0 when both texts are empty)."""

    tp: float
    fp: float
    fn: float


# --- scoring ------------------------------------------------------------------------------------


def tokens(text: str | None) -> list[str]:
    return _TOKEN.findall(text or "")


def shingles(text: str | None, size: int = SHINGLE_SIZE) -> Counter[tuple[str, ...]]:
    words = tokens(text)
    if len(words) < size:
        return Counter([tuple(words)]) if words else Counter()
    return Counter(tuple(words[i : i + size]) for i in range(len(words) - size + 1))


def page_counts(truth: str, extracted: str | None) -> Counts:
    true_shingles, extracted_shingles = shingles(truth), shingles(extracted)
    tp = sum((true_shingles & extracted_shingles).values())
    fp = sum((extracted_shingles - true_shingles).values())
    fn = sum((true_shingles - extracted_shingles).values())
    total = tp + fp + fn
    if not total:
        return Counts(0.0, 0.0, 0.0)
    return Counts(tp / total, fp / total, fn / total)


def page_precision(c: Counts) -> float:
    if c.fp == 0 and c.fn == 0:
        return 1.0
    if c.tp == 0 and c.fp == 0:
        return 0.0
    return c.tp / (c.tp + c.fp)


def page_recall(c: Counts) -> float:
    if c.fp == 0 and c.fn == 0:
        return 1.0
    if c.tp == 0 and c.fn == 0:
        return 0.0
    return c.tp / (c.tp + c.fn)


def metrics(counts: list[Counts]) -> dict[str, float]:
    precisions = [page_precision(c) for c in counts if c.tp + c.fp > 0]
    recalls = [page_recall(c) for c in counts if c.tp + c.fn > 0]
    precision = statistics.mean(precisions) if precisions else 0.0
    recall = statistics.mean(recalls) if recalls else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def bootstrap_std(counts: list[Counts], exact: list[float], rounds: int, seed: int = 0) -> dict[str, float]:
    if rounds < 2 or len(counts) < 2:
        return {}
    rng = random.Random(seed)
    samples: dict[str, list[float]] = {}
    for _ in range(rounds):
        picks = [rng.randrange(len(counts)) for _ in counts]
        for key, value in metrics([counts[i] for i in picks]).items():
            samples.setdefault(key, []).append(value)
        samples.setdefault("accuracy", []).append(statistics.mean(exact[i] for i in picks))
    return {key: statistics.stdev(values) for key, values in samples.items()}


# --- extractors ---------------------------------------------------------------------------------

Extractor = Callable[[str, str | None], tuple[str, str]]  # (html, url) -> (text, method)


def _wirewatch(html: str, url: str | None) -> tuple[str, str]:
    result = extract_main_text(html, url)
    return result.text, result.method


def _trafilatura_plain(html: str, url: str | None) -> tuple[str, str]:
    # As the public benchmark runs it: default settings, comments excluded, no URL.
    return trafilatura.extract(html, include_comments=False) or "", "trafilatura"


def _trafilatura_precision(html: str, url: str | None) -> tuple[str, str]:
    return trafilatura.extract(html, include_comments=False, favor_precision=True) or "", "trafilatura-precision"


EXTRACTORS: dict[str, Extractor] = {
    "wirewatch": _wirewatch,
    "trafilatura": _trafilatura_plain,
    "trafilatura-precision": _trafilatura_precision,
}


# --- running ------------------------------------------------------------------------------------


def load_pages(folder: Path) -> list[Page]:
    pages = []
    for html_path in sorted(folder.glob("*.html")):
        json_path = html_path.with_suffix(".json")
        if html_path.name.startswith("_") or not json_path.exists():
            continue
        record = json.loads(json_path.read_text("utf-8"))
        html = html_path.read_text("utf-8", errors="replace")
        pages.append(Page(html_path.stem, html, record.get("url"), record.get("text") or ""))
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="folder of ID.html + ID.json pairs")
    parser.add_argument("--extractor", choices=sorted(EXTRACTORS), default="wirewatch")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples for the ± figures (0: none)")
    parser.add_argument("--worst", type=int, default=0, help="also list the N pages with the lowest F1")
    args = parser.parse_args(argv)

    pages = load_pages(args.folder)
    if not pages:
        print(f"no ID.html + ID.json pairs in {args.folder}", file=sys.stderr)
        return 2
    extractor = EXTRACTORS[args.extractor]

    counts: list[Counts] = []
    exact: list[float] = []
    methods: Counter[str] = Counter()
    per_page: list[tuple[float, str, float, float, str]] = []
    elapsed = 0.0
    for page in pages:
        started = time.perf_counter()
        text, method = extractor(page.html, page.url)
        elapsed += time.perf_counter() - started
        c = page_counts(page.truth, text)
        counts.append(c)
        exact.append(float(tokens(page.truth) == tokens(text)))
        methods[method] += 1
        p, r = page_precision(c), page_recall(c)
        per_page.append((2 * p * r / (p + r) if p + r else 0.0, page.id, p, r, method))

    result = metrics(counts)
    result["accuracy"] = statistics.mean(exact)
    spread = bootstrap_std(counts, exact, args.bootstrap)

    def show(key: str) -> str:
        return f"{key}={result[key]:.4f}" + (f" ± {spread[key]:.3f}" if key in spread else "")

    print(f"extractor={args.extractor} pages={len(pages)}")
    print("  ".join(show(key) for key in ("precision", "recall", "f1", "accuracy")))
    print(f"speed={len(pages) / elapsed:.1f} pages/s ({1000 * elapsed / len(pages):.1f} ms/page)")
    print("methods: " + ", ".join(f"{name}={n}" for name, n in methods.most_common()))
    if args.worst:
        print(f"lowest F1 ({args.worst}):")
        for f1, page_id, p, r, method in sorted(per_page)[: args.worst]:
            print(f"  {f1:.3f}  P={p:.3f} R={r:.3f}  {method:<24} {page_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
