"""Boilerplate learned per source: a paragraph that a source prints in many of its articles
(a sign-off, a standing promotion, a correction notice) is not part of any one story.

Each paragraph is counted once per article, per source, in Redis (a script keeps a bounded
memory per source: see `shared.redis_scripts.COUNT_PARAGRAPHS`); once it has been seen in
`min_articles` articles, it is removed from every later article of that source, with a note
saying so. A paragraph not seen again for about the window is forgotten.
"""

from __future__ import annotations

import time
import unicodedata
from typing import Any

import redis

from shared import redis_keys
from shared.article import Article, digest
from shared.redis_scripts import COUNT_PARAGRAPHS

MIN_CHARS, MAX_CHARS = 25, 600  # shorter: too common to judge; longer: not a standing line
CAPACITY = 1024  # paragraphs a generation holds per source: a line must recur within about that many
KEPT = 12  # article fingerprints per paragraph: counts are exact up to this
DIGEST_WIDTH = 12  # hex digits naming a paragraph


class LearnedBoilerplate:
    def __init__(
        self,
        client: redis.Redis,
        min_articles: int = 6,
        window_days: float = 30,
        *,
        learn: bool = True,
        capacity: int = CAPACITY,
    ) -> None:
        self.client, self.min_articles, self.window_seconds = client, min_articles, int(window_days * 86400)
        self.learn = learn  # False: judge by what was learned, count nothing (re-tagging stored articles)
        self.capacity = capacity
        self._count = client.register_script(COUNT_PARAGRAPHS)

    def remove(self, article: Article) -> None:
        """Count the article's paragraphs and drop those its source has repeated often enough."""
        self.remove_batch([article])

    def remove_batch(self, articles: list[Article]) -> None:
        """`remove` for every article of a batch, in one round trip."""
        plans = []
        args: list[Any] = [
            int(time.time()),
            max(1, self.window_seconds // 2),
            self.window_seconds,
            self.capacity,
            KEPT,
            DIGEST_WIDTH,
        ]
        for article in articles:
            if not article.source or not article.text:
                continue
            paragraphs = article.text.split("\n\n")
            candidates = [
                (number, _paragraph_digest(paragraph))
                for number, paragraph in enumerate(paragraphs)
                if MIN_CHARS <= len(paragraph) <= MAX_CHARS
            ]
            if not candidates:
                continue
            # A copy must not make its original's lines look common.
            learning = self.learn and article.duplicate_of is None
            fingerprint = bytes.fromhex(digest(article.id)[:8]) if learning else b""
            source = redis_keys.source_paragraphs(digest(article.source)[:16])
            args += [source, fingerprint, len(candidates), "".join(field for _, field in candidates)]
            plans.append((article, paragraphs, candidates))
        if not plans:
            return
        replies: Any = self._count(keys=[], args=args)
        for (article, paragraphs, candidates), counts in zip(plans, replies, strict=True):
            removed = set()
            for (number, _), count in zip(candidates, map(int, counts.split(b",")), strict=True):
                if count >= self.min_articles:
                    removed.add(number)
                    article.notes.append(
                        f"clean: removed a paragraph {article.source} printed in {count} articles: {paragraphs[number][:80]!r}"
                    )
            if removed and len(removed) < len(paragraphs):  # never empty an article entirely
                article.text = "\n\n".join(p for n, p in enumerate(paragraphs) if n not in removed)


def _paragraph_digest(paragraph: str) -> str:
    """12 hex digits naming a paragraph, whatever its spacing or case: `normalized_content`,
    without a regular expression, as it runs for every paragraph of every article."""
    return digest(" ".join(unicodedata.normalize("NFKC", paragraph).casefold().split()))[:DIGEST_WIDTH]
