"""How closely the shared analyzer reproduces Elasticsearch's `english` analyzer on real text.

Starts the test session's real engine (an OpenSearch node, the same Lucene analysis), sends the
title and text of every article of a development set to its `_analyze`, analyzes the same text
with `shared.analysis.analyze`, and prints the share of tokens that agree in text and position,
with the most frequent disagreements. The target is at least 99.9 %.

    python tests/benchmarks/bench_analysis.py --dev ../shared/eval/news-dev [--url http://127.0.0.1:9200]
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import tempfile
import urllib.request
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2]))

from shared.analysis import analyze  # noqa: E402


def engine_tokens(url: str, text: str) -> list[tuple[str, int]]:
    """The `english` analyzer's tokens of `text`, with positions."""
    body = json.dumps({"analyzer": "english", "text": text}).encode()
    request = urllib.request.Request(f"{url}/_analyze", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return [(token["token"], token["position"]) for token in json.load(response)["tokens"]]


def ours(text: str) -> list[tuple[str, int]]:
    return [(token, position) for position, token in enumerate(analyze(text)) if token is not None]


def relative(tokens: list[tuple[str, int]]) -> list[tuple[str, int]]:
    if not tokens:
        return tokens
    first = tokens[0][1]
    return [(token, position - first) for token, position in tokens]


def compare(url: str, texts: list[str]) -> tuple[int, int, Counter[str]]:
    """Tokens the engine produced, how many of them ours reproduce, and what differed."""
    total = equal = 0
    differences: Counter[str] = Counter()
    for text in texts:
        theirs = relative(engine_tokens(url, text))
        mine = relative(ours(text))
        total += len(theirs)
        matcher = difflib.SequenceMatcher(a=theirs, b=mine, autojunk=False)
        for tag, a0, a1, b0, b1 in matcher.get_opcodes():
            if tag == "equal":
                equal += a1 - a0
            else:
                left = " ".join(token for token, _ in theirs[a0:a1])[:60]
                right = " ".join(token for token, _ in mine[b0:b1])[:60]
                differences[f"engine [{left}] ours [{right}]"] += 1
    return total, equal, differences


def main() -> int:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    arguments.add_argument("--dev", type=Path, required=True, help="folder with articles.jsonl")
    arguments.add_argument("--url", help="a running node; default: start the test session's own")
    arguments.add_argument("--show", type=int, default=15, help="how many kinds of difference to print")
    options = arguments.parse_args()
    texts = []
    for line in (options.dev / "articles.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        texts.extend(value for value in (record.get("title"), record.get("text")) if value)
    node = None
    url = options.url
    if url is None:
        from tests import engine_node

        node = engine_node.start(Path(tempfile.mkdtemp(prefix="wirewatch-engine-")))
        url = node.url
    try:
        total, equal, differences = compare(url, texts)
    finally:
        if node is not None:
            node.stop()
    print(f"{len(texts)} texts, {total} engine tokens, {equal} equal in text and position")
    print(f"agreement with the engine's english analyzer: {100 * equal / max(total, 1):.3f} %")
    for difference, count in differences.most_common(options.show):
        print(f"  {count:5d}  {difference}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
