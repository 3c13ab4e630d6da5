"""Stories: articles on the same event from different outlets, grouped under one story id.

Copies are dedupe's business; this groups independent write-ups of one event. An article joins
a story only when it is close to the story as a whole: its distinctive words and named people
and organisations, weighed against the story's centroid (the sum of its members' vectors), not
against its nearest member, so a story cannot grow by chaining neighbours of neighbours.

Time follows the event: an article joins only a story whose articles lie within a day and a
half of it (the story's span may not exceed the window either), so a second launch on another
day starts its own story, however alike the words.

Word weights are fixed, not learned: a word weighs by how rare it is in general English
(wordfreq's frequencies, shipped inside that package), so the grouping does not depend on which
articles came first, and no per-word counting happens in Redis.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections import Counter
from datetime import datetime
from functools import cache
from typing import Any

import redis

from shared import redis_keys
from shared.analysis import STOP_WORDS, stem
from shared.article import Article
from shared.redis_client import as_text
from shared.redis_scripts import SAVE_STORY, STORY_CANDIDATES

LEAD_WORDS = 250  # the text's opening words: later paragraphs drift into background
LEAD_CHARS_PER_WORD = 12  # enough characters for that many words of English
KEYWORDS = 60  # distinctive words kept per article
CENTROID_WORDS = 100  # and per story
LOOKUP_WORDS = 10  # the most distinctive of them find candidate stories
CANDIDATES = 10  # stories compared in full, most shared lookup words first
TITLE_COUNT = 2  # a headline word counts as two in the text: it says what the story is about
ENTITY_WEIGHT = 8.0  # a named person or organisation weighs as a rare word
EVENT_SECONDS = 1.5 * 86400  # how far an article may lie from the nearest time of its story

# Word weight is log(1 / frequency) above the weight of a word as common as COMMON, so that
# "said" or "year" weigh nothing; a word too rare for the list weighs as one at RARE.
COMMON, RARE = 1e-3, 1e-8
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_POSSESSIVE = re.compile(r"['’]s\b", re.IGNORECASE)


@cache
def _frequencies() -> dict[str, float]:
    """English word frequencies (wordfreq's large list: 320k words from subtitles, Wikipedia,
    news, books and the web); loaded once per process, about 0.2 s and 30 MB."""
    import wordfreq

    return wordfreq.get_frequency_dict("en", wordlist="large")


def word_weight(word: str) -> float:
    """How distinctive a lower-case word is in English in general: 0 for a common word."""
    frequency = max(_frequencies().get(word, 0.0), RARE)
    return max(0.0, math.log(COMMON / frequency))


class StoryClusterer:
    def __init__(self, client: redis.Redis, window_days: float = 3.0, threshold: float = 0.2) -> None:
        self.client, self.window_seconds, self.threshold = client, window_days * 86400, threshold
        self._find_candidates = client.register_script(STORY_CANDIDATES)
        self._save_story = client.register_script(SAVE_STORY)

    def assign(self, article: Article) -> str:
        """The story id for a cleaned and tagged article (set on `cluster_id`, and returned)."""
        return self.assign_batch([article])[0]

    def assign_batch(self, articles: list[Article]) -> list[str]:
        """`assign` for a batch, in order, in two round trips: candidate stories are read for
        the whole batch at once, and the stories the batch started or grew are compared too."""
        plans: list[tuple[dict[str, float], float, list[str]] | None] = []
        for article in articles:
            if article.duplicate_of is not None and article.cluster_id:
                plans.append(None)
                continue
            vector = article_vector(article)
            moment = _moment(article)
            plans.append((vector, moment, self._candidate_keys(vector, moment)))
        found = self._candidates([plan[2] for plan in plans if plan is not None])
        touched: dict[str, dict[str, Any]] = {}  # stories this batch started or grew
        touched_keys: dict[str, set[str]] = {}  # index key -> those stories under it
        pipe = self.client.pipeline(transaction=False)
        assigned = []
        for article, plan in zip(articles, plans, strict=True):
            if plan is None:
                self._count(pipe, article.cluster_id or article.id)  # a copy belongs to its original's story
                assigned.append(article.cluster_id or article.id)
                continue
            vector, moment, keys = plan
            candidates = dict(found.pop(0))
            for key in keys:
                for story_id in touched_keys.get(key, ()):
                    candidates[story_id] = touched[story_id]
            candidates.update({story_id: touched[story_id] for story_id in candidates if story_id in touched})
            best, best_score, best_story = None, 0.0, None
            for story_id, story in candidates.items():
                if not self._in_time(story, moment):
                    continue
                score = _cosine(vector, story["words"])
                if score > best_score:
                    best, best_score, best_story = story_id, score, story
            joined = best is not None and best_score >= self.threshold
            story_id = best if joined and best else (article.cluster_id or uuid.uuid4().hex)
            story, index_keys = self._remember(pipe, story_id, best_story if joined else None, article, vector, moment)
            touched[story_id] = story
            for key in index_keys:
                touched_keys.setdefault(key, set()).add(story_id)
            article.cluster_id = story_id
            assigned.append(story_id)
        pipe.execute()
        return assigned

    def size(self, story_id: str) -> int:
        """How many articles (write-ups and copies) the story has had within the window."""
        return int(self.client.get(redis_keys.story(story_id)) or 0)

    def _in_time(self, story: dict[str, Any], moment: float) -> bool:
        first, last = story["first"], story["last"]
        near = first - EVENT_SECONDS <= moment <= last + EVENT_SECONDS
        return near and max(last, moment) - min(first, moment) <= self.window_seconds

    def _count(self, pipe: Any, story_id: str) -> None:
        pipe.incr(redis_keys.story(story_id))
        pipe.expire(redis_keys.story(story_id), int(self.window_seconds * 2))

    def _candidate_keys(self, vector: dict[str, float], moment: float) -> list[str]:
        # A story the article may join has its first or last article within this reach (see
        # `_in_time`), and each article is indexed under its own day.
        reach = max(EVENT_SECONDS, self.window_seconds / 2)
        days = range(_day(moment - reach), _day(moment + reach) + 1)
        return [redis_keys.story_index(f"{day}:{key}") for key in _lookup(vector) for day in days]

    def _candidates(self, key_lists: list[list[str]]) -> list[list[tuple[str, dict[str, Any]]]]:
        """For each article's index keys, the stories of the window that share its most
        distinctive words or entities, most shared first, with their records: one round trip
        for the batch whatever the store holds."""
        if not any(key_lists):
            return [[] for _ in key_lists]
        keys = [key for key_list in key_lists for key in key_list]
        args: list[str | int] = [CANDIDATES, redis_keys.story_record(""), *(len(key_list) for key_list in key_lists)]
        replies: Any = self._find_candidates(keys=keys, args=args)
        results = []
        for reply in replies:
            found = [as_text(part) for part in reply]
            results.append([(found[i], json.loads(found[i + 1])) for i in range(0, len(found), 2)])
        return results

    def _remember(
        self,
        pipe: Any,
        story_id: str,
        joined: dict[str, Any] | None,
        article: Article,
        vector: dict[str, float],
        moment: float,
    ) -> tuple[dict[str, Any], list[str]]:
        story: dict[str, Any] = dict(joined) if joined else {"words": {}, "first": moment, "last": moment, "size": 0}
        centroid: Counter[str] = Counter(story["words"])
        norm = math.sqrt(sum(w * w for w in vector.values())) or 1.0
        centroid.update({word: weight / norm for word, weight in vector.items()})
        story["words"] = {word: round(weight, 4) for word, weight in centroid.most_common(CENTROID_WORDS)}
        story["first"], story["last"] = min(story["first"], moment), max(story["last"], moment)
        story["size"] += 1
        ttl = int(self.window_seconds * 2)
        index_keys = [redis_keys.story_index(f"{_day(moment)}:{key}") for key in _lookup(vector)]
        self._save_story(
            keys=[
                redis_keys.story_record(story_id),
                redis_keys.story(story_id),
                redis_keys.signature(article.id),
                *index_keys,
            ],
            args=[json.dumps(story), story_id, ttl],
            client=pipe,
        )
        return story, index_keys


def article_vector(article: Article) -> dict[str, float]:
    """The article's distinctive words (stemmed) and named people and organisations, weighed:
    (1 + log count) times how rare the word is in English; the headline's words count double."""
    counts: Counter[str] = Counter()
    weights: dict[str, float] = {}
    # Only the opening is read: cut before tokenising, as whole texts can be long.
    opening = article.text[: LEAD_WORDS * LEAD_CHARS_PER_WORD]
    lead = _WORD.findall(_POSSESSIVE.sub("", opening).lower())[:LEAD_WORDS]
    title = _WORD.findall(_POSSESSIVE.sub("", article.title).lower())
    for words, times in ((lead, 1), (title, TITLE_COUNT)):
        for word in words:
            known = _keys.get(word)
            if known is None:
                known = _key(word)
                if len(_keys) < 200_000:
                    _keys[word] = known
            key, weight = known
            if not key:
                continue
            counts[key] += times
            # Forms of one stem differ in frequency ("launch", "launches"): the commonest says
            # how distinctive the stem is.
            weights[key] = min(weights.get(key, weight), weight)
    vector = {key: (1 + math.log(n)) * weights[key] for key, n in counts.items()}
    top = dict(sorted(vector.items(), key=lambda item: -item[1])[:KEYWORDS])
    for entity in (*(f"p:{p}" for p in article.people), *(f"o:{o}" for o in article.organizations)):
        top[entity] = ENTITY_WEIGHT
    return top


_keys: dict[str, tuple[str, float]] = {}  # word -> (stem or "" when it does not count, weight)


def _key(word: str) -> tuple[str, float]:
    if word in STOP_WORDS or len(word) < 3 or word.isdigit():
        return "", 0.0
    weight = word_weight(word)
    return (stem(word), weight) if weight > 0 else ("", 0.0)


def _lookup(vector: dict[str, float]) -> list[str]:
    words = sorted((k for k in vector if ":" not in k), key=lambda k: -vector[k])[:LOOKUP_WORDS]
    return [f"w:{word}" for word in words] + sorted(k for k in vector if ":" in k)


def _day(moment: float) -> int:
    # Index keys are per day, so each stays as small as one day's stories.
    return int(moment // 86400)


def _moment(article: Article) -> float:
    # An undated article is placed at the time it was first seen.
    when: datetime = article.published_at or article.ingested_at
    return when.timestamp()


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(weight * b.get(word, 0.0) for word, weight in a.items())
    norm = math.sqrt(sum(w * w for w in a.values())) * math.sqrt(sum(w * w for w in b.values()))
    return dot / norm if norm else 0.0
