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

What Redis holds stays small and bounded whatever has been stored: a few hashes per period,
no key per article or story. Words are 32-bit hashes and stories 6-byte references there;
a story's record (centroid, times, size) is packed binary in one hash per period of real
time, and the index from words to stories is one hash per slice of event time, each word
keeping its latest stories only. A batch reads its candidates in one script call and saves
what it decided in another.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from itertools import repeat
from operator import add, mul, truediv
from typing import Any

import redis

from shared import redis_keys
from shared.analysis import STOP_WORDS, stem
from shared.article import Article
from shared.redis_scripts import SAVE_STORIES, STORY_CANDIDATES

LEAD_WORDS = 250  # the text's opening words: later paragraphs drift into background
LEAD_CHARS_PER_WORD = 12  # enough characters for that many words of English
KEYWORDS = 60  # distinctive words kept per article
CENTROID_WORDS = 100  # and per story
LOOKUP_WORDS = 10  # the most distinctive of them find candidate stories
CANDIDATES = 10  # stories compared in full, most shared lookup words first
TITLE_COUNT = 2  # a headline word counts as two in the text: it says what the story is about
ENTITY_WEIGHT = 8.0  # a named person or organisation weighs as a rare word
EVENT_SECONDS = 1.5 * 86400  # how far an article may lie from the nearest time of its story
POSTING_STORIES = 48  # stories a word keeps per slice, the latest: rarer words find the others
REF_BYTES = 6  # a story's reference in the index: unique among the stories of a few days

# Word weight is log(1 / frequency) above the weight of a word as common as COMMON, so that
# "said" or "year" weigh nothing; a word too rare for the list weighs as one at RARE.
COMMON, RARE = 1e-3, 1e-8
# Words are runs of letters and digits; the possessive's "s" is left out (it would take a place
# in the lead). Looking behind at every word costs a third of the time, so the possessive is
# matched as a word of its own and dropped, and only in text that has an apostrophe.
_WORD = re.compile(r"[^\W_]+")
_WORD_OR_POSSESSIVE = re.compile(r"['’]s\b|[^\W_]+")
# In ASCII text every character but a letter or digit becomes a space (and a letter lower
# case): splitting then gives the words, several times quicker than a pattern's search.
_ASCII_WORDS_APART = {point: chr(point).lower() if chr(point).isalnum() else " " for point in range(128)}
_ASCII_POSSESSIVE = re.compile(r"'s\b")  # in lower-case ASCII text
_HEADER = struct.Struct("<ddIB")  # a record's first and last time, size, length of the id
_MAX_WEIGHT = 65000.0  # within a half-precision float


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


@dataclass(slots=True)
class StoryVector:
    """An article's weighed words and entities, each named by a 32-bit hash of its stem (or
    `p:`/`o:` name), and the hashes that look up candidate stories."""

    weights: dict[int, float]
    lookup: list[int]
    norm: float


@dataclass(slots=True)
class _Story:
    id: str
    first: float
    last: float
    size: int
    words: dict[int, float] | None = None  # the centroid, read from `record` when first grown
    record: bytes = b""
    norm: float = 0.0  # of the centroid, 0 until worked out
    packed: tuple[tuple[int, ...], tuple[float, ...]] | None = None  # `record`'s centroid, once read

    def centroid(self) -> dict[int, float]:
        if self.words is None:
            self.words = dict(zip(*self.unpacked(), strict=True))
        return self.words

    def unpacked(self) -> tuple[tuple[int, ...], tuple[float, ...]]:
        if self.packed is None:
            self.packed = _unpack_centroid(self.record)
        return self.packed

    def similarity(self, vector: StoryVector) -> float:
        """Cosine of the article's vector and the centroid. Most stories compared are not
        joined, so a stored centroid is read as it is packed, never made a dictionary here."""
        keys: Iterable[int]
        values: Collection[float]
        if self.words is None:
            keys, values = self.unpacked()
        else:
            keys, values = self.words.keys(), self.words.values()
        if not self.norm:
            self.norm = _norm(values)
        weights = vector.weights
        dot = sum(map(mul, map(weights.get, keys, repeat(0.0)), values))
        return dot / (vector.norm * self.norm) if dot else 0.0


class StoryClusterer:
    def __init__(self, client: redis.Redis, window_days: float = 3.0, threshold: float = 0.2) -> None:
        self.client, self.window_seconds, self.threshold = client, window_days * 86400, threshold
        # A story the article may join has an article within this reach of it (see `_in_time`).
        self.reach = max(EVENT_SECONDS, self.window_seconds / 2)
        # The index is one hash per slice of event time, so an article reads at most two.
        self.slice_seconds = 2 * self.reach
        self._find_candidates = client.register_script(STORY_CANDIDATES)
        self._save_stories = client.register_script(SAVE_STORIES)

    def assign(self, article: Article) -> str:
        """The story id for a cleaned and tagged article (set on `cluster_id`, and returned)."""
        return self.assign_batch([article])[0]

    def assign_batch(self, articles: list[Article]) -> list[str]:
        """`assign` for a batch, in order, in two round trips: candidate stories are read for
        the whole batch at once, and the stories the batch started or grew are compared too.
        A copy (marked by dedupe) stays in its original's story and adds to its size."""
        plans: list[tuple[Article, StoryVector, float, list[int]]] = []
        copies: list[Article] = []
        for article in articles:
            if article.duplicate_of is not None and article.cluster_id:
                copies.append(article)
                continue
            vector = article_vector(article)
            moment = _moment(article)
            slices = sorted({self._slice(moment - self.reach), self._slice(moment + self.reach)})
            plans.append((article, vector, moment, slices))
        batch = _Batch()
        found, candidates = self._candidates(plans, [_ref(copy.cluster_id or "") for copy in copies])
        renamed: dict[str, str] = {}  # an original's cluster before the step -> its story
        for (article, vector, moment, slices), refs in zip(plans, candidates, strict=True):
            stories = {ref: batch.touched.get(ref) or found[ref] for ref in refs}
            stories.update(batch.sharing(slices, vector.lookup))
            best, best_score = None, 0.0
            for ref, story in stories.items():
                if not self._in_time(story, moment):
                    continue
                score = story.similarity(vector)
                if score > best_score:
                    best, best_score = ref, score
            before = article.cluster_id
            if best is not None and best_score >= self.threshold:
                story = stories[best]
            else:
                story = _Story(before or uuid.uuid4().hex, moment, moment, 0, {})
            _grow(story, vector, moment)
            batch.remember(story, vector, self._slice(moment))
            if story.id != before:
                batch.renamed_signatures.append((article.id, story.id))
            if before:
                renamed[before] = story.id
            article.cluster_id = story.id
        for copy in copies:
            copy.cluster_id = renamed.get(copy.cluster_id or "", copy.cluster_id)
            ref = _ref(copy.cluster_id or "")
            original = batch.touched.get(ref) or found.get(ref)
            if original is not None and original.id == copy.cluster_id:
                original.size += 1
                batch.touched[ref] = original
        self._save(batch)
        return [article.cluster_id or article.id for article in articles]

    def size(self, story_id: str) -> int:
        """How many articles (write-ups and copies) the story has had, while it is remembered."""
        return self.sizes([story_id])[0]

    def sizes(self, story_ids: list[str]) -> list[int]:
        """`size` of each story, in one round trip."""
        if not story_ids:
            return []
        now, refs = self._period(), [_ref(story_id) for story_id in story_ids]
        pipe = self.client.pipeline(transaction=False)
        for period in (now, now - 1):
            pipe.hmget(redis_keys.story_records(period), refs)
        current, previous = pipe.execute()
        sizes = []
        for story_id, record in zip(story_ids, map(lambda a, b: a or b, current, previous), strict=True):
            # a story changed in this period was moved to it
            story = _unpack(record) if record is not None else None
            sizes.append(story.size if story is not None and story.id == story_id else 0)
        return sizes

    def _slice(self, moment: float) -> int:
        return int(moment // self.slice_seconds)

    def _period(self) -> int:
        # Records live one or two periods of real time (a window each) after their last change.
        return int(time.time() // self.window_seconds)

    def _in_time(self, story: _Story, moment: float) -> bool:
        first, last = story.first, story.last
        near = first - EVENT_SECONDS <= moment <= last + EVENT_SECONDS
        return near and max(last, moment) - min(first, moment) <= self.window_seconds

    def _candidates(
        self, plans: list[tuple[Article, StoryVector, float, list[int]]], wanted: list[bytes]
    ) -> tuple[dict[bytes, _Story], list[list[bytes]]]:
        """The records found (by reference) and, for each planned article, the references of
        the stories of its slices that share the most of its lookup words or entities, most
        first; `wanted` are read too. One round trip for the batch whatever the store holds."""
        if not plans and not wanted:
            return {}, []
        period = self._period()
        keys = [redis_keys.story_records(period), redis_keys.story_records(period - 1)]
        positions: dict[int, int] = {}
        args: list[Any] = [CANDIDATES, REF_BYTES, len(plans)]
        for _, vector, _, slices in plans:
            for number in slices:
                if number not in positions:
                    positions[number] = len(keys) + 1
                    keys.append(redis_keys.story_index(number))
            args += [len(slices), *(positions[number] for number in slices)]
            args.append(b"".join(_field(key) for key in vector.lookup))
        args.append(b"".join(wanted))
        reply: Any = self._find_candidates(keys=keys, args=args)
        joined, *records = reply[0]
        found = dict(zip(_refs(joined), map(_unpack, records), strict=True))
        return found, [[ref for ref in _refs(refs) if ref in found] for refs in reply[1:]]

    def _save(self, batch: _Batch) -> None:
        """Write the batch's stories, index entries and renamed signatures in one round trip."""
        if not batch.touched and not batch.renamed_signatures:
            return
        period = self._period()
        keys = [redis_keys.story_records(period), redis_keys.story_records(period - 1)]
        args: list[Any] = [
            int((period + 2) * self.window_seconds),
            int(self.window_seconds * 2),
            REF_BYTES,
            POSTING_STORIES * REF_BYTES,
            len(batch.touched),
            len(batch.postings),
        ]
        for ref, story in batch.touched.items():
            args += [ref, _pack(story)]
        for number, entries in batch.postings.items():
            keys.append(redis_keys.story_index(number))
            args.append(b"".join(_field(key) + ref for key, ref in entries))
        for article_id, story_id in batch.renamed_signatures:
            keys.append(redis_keys.signature(article_id))
            args.append(story_id)
        self._save_stories(keys=keys, args=args)


class _Batch:
    """What one batch started or grew, and the index entries it adds, so that its later
    articles find them before they are saved."""

    def __init__(self) -> None:
        self.touched: dict[bytes, _Story] = {}
        self.postings: dict[int, list[tuple[int, bytes]]] = {}  # slice -> (lookup key, story)
        self.renamed_signatures: list[tuple[str, str]] = []  # (article id, its story)
        self._stories_of: dict[tuple[int, int], dict[bytes, None]] = {}  # (slice, key) -> stories, in order

    def remember(self, story: _Story, vector: StoryVector, number: int) -> None:
        ref = _ref(story.id)
        self.touched[ref] = story
        entries = self.postings.setdefault(number, [])
        for key in vector.lookup:
            entries.append((key, ref))
            self._stories_of.setdefault((number, key), {})[ref] = None

    def sharing(self, slices: list[int], lookup: list[int]) -> dict[bytes, _Story]:
        """The batch's stories under any of these lookup keys in these slices."""
        found = {}
        for number in slices:
            for key in lookup:
                for ref in self._stories_of.get((number, key), ()):
                    found[ref] = self.touched[ref]
        return found


def article_vector(article: Article) -> StoryVector:
    """The article's distinctive words (stemmed) and named people and organisations, weighed:
    (1 + log count) times how rare the word is in English; the headline's words count double."""
    words = Counter(_lead(article.text))
    for word in _words_in(article.title.lower()):
        words[word] += TITLE_COUNT
    counts: dict[int, int] = {}
    weights: dict[int, float] = {}
    known = _words.get
    for word, count in words.items():
        key, weight = known(word) or _learn(word)
        if not key:
            continue
        if key in counts:
            counts[key] += count
            # Forms of one stem differ in frequency ("launch", "launches"): the commonest says
            # how distinctive the stem is.
            if weight < weights[key]:
                weights[key] = weight
        else:
            counts[key], weights[key] = count, weight
    vector = dict(zip(counts, map(mul, map(_count_weight, counts.values()), weights.values()), strict=True))
    top = sorted(vector, key=vector.__getitem__, reverse=True)[:KEYWORDS]  # stable: first seen first among equals
    result = {key: vector[key] for key in top}
    entities = {_hash(f"p:{p}") for p in article.people} | {_hash(f"o:{o}") for o in article.organizations}
    for entity in entities:
        result[entity] = ENTITY_WEIGHT
    lookup = top[:LOOKUP_WORDS]
    norm = _norm(result.values()) or 1.0
    return StoryVector(result, lookup + sorted(entities - set(lookup)), norm)


def _lead(text: str) -> list[str]:
    """The text's first LEAD_WORDS words, lower-case. Only the opening is read (whole texts can
    be long), and most of it is enough: the rest is read only when the words run short."""
    limit = LEAD_WORDS * LEAD_CHARS_PER_WORD
    cut = text.find(" ", limit // 2)  # between words, so none is split
    if cut < 0 or cut >= limit:
        return _words_in(text[:limit].lower())[:LEAD_WORDS]
    words = _words_in(text[:cut].lower())
    if len(words) < LEAD_WORDS:
        words += _words_in(text[cut:limit].lower())
    return words[:LEAD_WORDS]


def _words_in(text: str) -> list[str]:
    """The words of lower-case text, in order, without the possessive's "s"."""
    if text.isascii():
        if "'" in text:
            text = _ASCII_POSSESSIVE.sub(" ", text)
        return text.translate(_ASCII_WORDS_APART).split()
    if "'" not in text and "’" not in text:
        return _WORD.findall(text)
    return [word for word in _WORD_OR_POSSESSIVE.findall(text) if word[0] not in "'’"]


_words: dict[str, tuple[int, float]] = {}  # word -> (hash of its stem, 0 when it does not count; weight)


@cache
def _count_weight(count: int) -> float:
    return 1 + math.log(count)


def _learn(word: str) -> tuple[int, float]:
    weight = 0.0 if word in STOP_WORDS or len(word) < 3 or word.isdigit() else word_weight(word)
    learnt = (_hash(stem(word)), weight) if weight > 0 else (0, 0.0)
    if len(_words) < 200_000:
        _words[word] = learnt
    return learnt


def _norm(weights: Collection[float]) -> float:
    return math.sqrt(sum(map(mul, weights, weights)))


def _hash(key: str) -> int:
    # Never 0, which marks a word that does not count.
    return zlib.crc32(key.encode()) or 1


def _field(key: int) -> bytes:
    return key.to_bytes(4, "little")


def _ref(story_id: str) -> bytes:
    return hashlib.blake2b(story_id.encode(), digest_size=REF_BYTES).digest()


def _refs(joined: bytes) -> list[bytes]:
    return [joined[at : at + REF_BYTES] for at in range(0, len(joined), REF_BYTES)]


def _grow(story: _Story, vector: StoryVector, moment: float) -> None:
    """Add an article to the story: its normalised vector to the centroid, its time, one to
    the size."""
    centroid, weights = story.centroid(), vector.weights
    # all words at once (each key is read before it is written, once)
    scaled = map(truediv, weights.values(), repeat(vector.norm))
    centroid.update(zip(weights, map(add, map(centroid.get, weights, repeat(0.0)), scaled), strict=True))
    if len(centroid) > CENTROID_WORDS:
        kept = sorted(centroid, key=centroid.__getitem__, reverse=True)[:CENTROID_WORDS]
        story.words = dict(zip(kept, map(centroid.__getitem__, kept), strict=True))
    story.first, story.last = min(story.first, moment), max(story.last, moment)
    story.size += 1
    story.norm = 0.0


def _pack(story: _Story) -> bytes:
    identifier = story.id.encode()
    centroid = story.centroid()
    keys = list(centroid)
    weights = list(map(min, centroid.values(), repeat(_MAX_WEIGHT)))
    return b"".join(
        (
            _HEADER.pack(story.first, story.last, story.size, len(identifier)),
            identifier,
            struct.pack(f"<{len(keys)}I{len(keys)}e", *keys, *weights),
        )
    )


def _unpack(record: bytes) -> _Story:
    """A story from its record; its centroid is read only if it is wanted (a story out of
    the article's time is never compared)."""
    first, last, size, length = _HEADER.unpack_from(record)
    identifier = record[_HEADER.size : _HEADER.size + length].decode()
    return _Story(identifier, first, last, size, None, record)


def _unpack_centroid(record: bytes) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """A record's centroid: its words' hashes and their weights, in the same order."""
    start = _HEADER.size + record[_HEADER.size - 1]
    count = (len(record) - start) // 6
    values = struct.unpack_from(f"<{count}I{count}e", record, start)
    return values[:count], values[count:]


def _moment(article: Article) -> float:
    # An undated article is placed at the time it was first seen.
    when: datetime = article.published_at or article.ingested_at
    return when.timestamp()
