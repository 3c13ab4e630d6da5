"""Boilerplate learned per source: a paragraph that a source prints in many of its articles
(a sign-off, a standing promotion, a correction notice) is not part of any one story.

Each paragraph is counted once per article in a HyperLogLog per (source, paragraph) in Redis,
kept for the window; once it has been seen in `min_articles` articles, it is removed from
every later article of that source, with a note saying so.
"""

from __future__ import annotations

import redis

from shared import redis_keys
from shared.article import Article, digest, normalized_content

MIN_CHARS, MAX_CHARS = 25, 600  # shorter: too common to judge; longer: not a standing line


class LearnedBoilerplate:
    def __init__(
        self, client: redis.Redis, min_articles: int = 6, window_days: float = 30, *, learn: bool = True
    ) -> None:
        self.client, self.min_articles, self.window_seconds = client, min_articles, int(window_days * 86400)
        self.learn = learn  # False: judge by what was learned, count nothing (re-tagging stored articles)

    def remove(self, article: Article) -> None:
        """Count the article's paragraphs and drop those its source has repeated often enough."""
        self.remove_batch([article])

    def remove_batch(self, articles: list[Article]) -> None:
        """`remove` for every article of a batch, in one round trip."""
        plans = []
        pipe = self.client.pipeline(transaction=False)
        for article in articles:
            if not article.source or not article.text:
                continue
            paragraphs = article.text.split("\n\n")
            candidates = [
                (number, redis_keys.source_paragraph(digest(article.source), digest(normalized_content(paragraph))))
                for number, paragraph in enumerate(paragraphs)
                if MIN_CHARS <= len(paragraph) <= MAX_CHARS
            ]
            if not candidates:
                continue
            # A copy must not make its original's lines look common.
            learning = self.learn and article.duplicate_of is None
            for _, key in candidates:
                if learning:
                    pipe.pfadd(key, article.id)
                    pipe.expire(key, self.window_seconds)
                pipe.pfcount(key)
            plans.append((article, paragraphs, candidates, learning))
        if not plans:
            return
        replies = iter(pipe.execute())
        for article, paragraphs, candidates, learning in plans:
            counts = [[next(replies) for _ in range(3 if learning else 1)][-1] for _ in candidates]
            removed = set()
            for (number, _), count in zip(candidates, counts, strict=True):
                if int(count) >= self.min_articles:
                    removed.add(number)
                    article.notes.append(
                        f"clean: removed a paragraph {article.source} printed in {count} articles: {paragraphs[number][:80]!r}"
                    )
            if removed and len(removed) < len(paragraphs):  # never empty an article entirely
                article.text = "\n\n".join(p for n, p in enumerate(paragraphs) if n not in removed)
