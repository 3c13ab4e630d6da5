"""Stories: articles on the same event from different outlets, grouped under one story id.

Copies are dedupe's business; this groups independent write-ups. An article joins the most
similar story seen within a time window, where similarity weighs its distinctive words
(TF-IDF, with document frequencies kept in Redis), the entities it names and its tags. The
window keeps two events on one subject apart (a 2022 summit and a 2023 one); the words keep
two events of one week apart (two different missile tests).
"""

from __future__ import annotations

import json
import math
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

import redis

from shared import redis_keys
from shared.analysis import terms
from shared.article import Article
from shared.redis_client import as_text
from shared.redis_scripts import ADD_TO_SETS, COUNT_DOCUMENT, HSET_IF_EXISTS, MOST_SHARED

KEYWORDS = 30  # distinctive words kept per article and per story
WEIGHED_WORDS = 60
LOOKUP_WORDS = 10  # the most distinctive of them find candidate stories
CANDIDATES = 30  # stories compared in full
WORD_WEIGHT, ENTITY_WEIGHT, TAG_WEIGHT = 0.6, 0.3, 0.1


class StoryClusterer:
    def __init__(self, client: redis.Redis, window_days: float = 3.0, threshold: float = 0.2) -> None:
        self.client, self.window_seconds, self.threshold = client, window_days * 86400, threshold
        self._count_document = client.register_script(COUNT_DOCUMENT)
        self._add_to_sets = client.register_script(ADD_TO_SETS)
        self._most_shared = client.register_script(MOST_SHARED)
        self._set_if_exists = client.register_script(HSET_IF_EXISTS)

    def assign(self, article: Article) -> str:
        """The story id for a cleaned and tagged article (set on `cluster_id`, and returned)."""
        if article.duplicate_of is not None and article.cluster_id:
            self._count(article.cluster_id)  # a copy belongs to its original's story
            return article.cluster_id
        words = self._keywords(article)
        entities = _entities(article)
        moment = _moment(article)
        best, best_score, best_story = None, 0.0, None
        for story_id, story in self._candidates(words, entities, moment):
            if abs(moment - story["time"]) > self.window_seconds:
                continue
            score = (
                WORD_WEIGHT * _cosine(words, story["words"])
                + ENTITY_WEIGHT * _jaccard(entities, set(story["entities"]))
                + TAG_WEIGHT * _jaccard(set(article.tags), set(story["tags"]))
            )
            if score > best_score:
                best, best_score, best_story = story_id, score, story
        joined = best is not None and best_score >= self.threshold
        story_id = best if joined and best else (article.cluster_id or uuid.uuid4().hex)
        self._remember(story_id, best_story if joined else None, article, words, entities, moment)
        self._count(story_id)
        article.cluster_id = story_id
        return story_id

    def size(self, story_id: str) -> int:
        """How many articles (write-ups and copies) the story has had within the window."""
        return int(self.client.get(redis_keys.story(story_id)) or 0)

    def _count(self, story_id: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.incr(redis_keys.story(story_id))
        pipe.expire(redis_keys.story(story_id), int(self.window_seconds * 2))
        pipe.execute()

    def _keywords(self, article: Article) -> dict[str, float]:
        counts = Counter(terms(article.text))
        for word in terms(article.title):
            counts[word] += 2  # a headline word says what the story is about
        counts = Counter({word: n for word, n in counts.items() if len(word) > 2 and not word.isdigit()})
        if not counts:
            return {}
        # Only the most frequent words are weighed: the distinctive ones are among them, and
        # counting every word of every article would cost more than the rest of the step.
        ordered = sorted(word for word, _ in counts.most_common(WEIGHED_WORDS))
        reply = self._count_document(keys=[redis_keys.DOCUMENT_FREQUENCY, redis_keys.DOCUMENTS_SEEN], args=ordered)
        total, *frequencies = as_text(reply).split(",")
        weights = {
            word: counts[word] * math.log((1 + int(total)) / (1 + int(df)))
            for word, df in zip(ordered, frequencies, strict=True)
        }
        top = sorted(weights.items(), key=lambda item: -item[1])[:KEYWORDS]
        return {word: weight for word, weight in top if weight > 0}

    def _candidates(
        self, words: dict[str, float], entities: set[str], moment: float
    ) -> list[tuple[str, dict[str, Any]]]:
        """Stories of the window sharing the article's most distinctive words or its people and
        organisations (countries are too common to find a story by), most shared first."""
        lookup = [f"w:{word}" for word in list(words)[:LOOKUP_WORDS]] + sorted(
            e for e in entities if not e.startswith("c:")
        )
        days = range(_day(moment - self.window_seconds), _day(moment + self.window_seconds) + 1)
        keys = [redis_keys.story_index(f"{day}:{key}") for key in lookup for day in days]
        if not keys:
            return []
        ids = [story_id for story_id in as_text(self._most_shared(keys=keys, args=[CANDIDATES])).split(",") if story_id]
        if not ids:
            return []
        records = self.client.mget([redis_keys.story_record(i) for i in ids])
        return [(i, json.loads(raw)) for i, raw in zip(ids, records, strict=True) if raw]

    def _remember(
        self,
        story_id: str,
        joined: dict[str, Any] | None,
        article: Article,
        words: dict[str, float],
        entities: set[str],
        moment: float,
    ) -> None:
        key = redis_keys.story_record(story_id)
        story: dict[str, Any] = joined or {"words": {}, "entities": [], "tags": [], "time": moment, "size": 0}
        merged: Counter[str] = Counter(story["words"])
        merged.update(words)
        story["words"] = dict(sorted(merged.items(), key=lambda item: -item[1])[: KEYWORDS * 2])
        story["entities"] = sorted(set(story["entities"]) | entities)
        story["tags"] = sorted(set(story["tags"]) | set(article.tags))
        story["time"] = min(story["time"], moment) if joined else moment
        story["size"] += 1
        ttl = int(self.window_seconds * 2)
        pipe = self.client.pipeline(transaction=False)
        pipe.set(key, json.dumps(story), ex=ttl)
        lookup = [f"w:{word}" for word in list(words)[:LOOKUP_WORDS]] + sorted(
            e for e in entities if not e.startswith("c:")
        )
        index_keys = [redis_keys.story_index(f"{_day(moment)}:{key}") for key in lookup]
        self._add_to_sets(keys=index_keys, args=[story_id, ttl], client=pipe)
        # Copies of this article that arrive later take their story from its signature.
        self._set_if_exists(keys=[redis_keys.signature(article.id)], args=["cluster", story_id], client=pipe)
        pipe.execute()


def _day(moment: float) -> int:
    # Index keys are per day, so each stays as small as one day's stories.
    return int(moment // 86400)


def _entities(article: Article) -> set[str]:
    return (
        {f"c:{c}" for c in article.countries}
        | {f"p:{p}" for p in article.people}
        | {f"o:{o}" for o in article.organizations}
    )


def _moment(article: Article) -> float:
    when: datetime = article.published_at or article.ingested_at
    return when.timestamp()


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(weight * b.get(word, 0.0) for word, weight in a.items())
    norm = math.sqrt(sum(w * w for w in a.values())) * math.sqrt(sum(w * w for w in b.values()))
    return dot / norm if norm else 0.0


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0
