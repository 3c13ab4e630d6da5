"""The gate of the chain: exact duplicates stop here, near-duplicates are marked.

Exact duplicates (same canonical URL, feed GUID or normalised content) are claimed
atomically in Redis, so two workers never both let the same article through. Near-duplicates
(syndicated copies, small edits) are found with MinHash signatures over word shingles and
banded LSH buckets in Redis that every worker shares; they continue with `duplicate_of` set.
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import numpy as np
import redis

from shared import redis_keys
from shared.article import Article, digest, normalized_content
from shared.redis_scripts import CLAIM_IDENTITIES, NEAREST_IN_BUCKETS, SET_EACH_FOR

NUM_PERM = 128
BANDS, ROWS = 16, 3  # pairs at Jaccard 0.5 share a bucket with probability 0.88, at 0.7 with 0.999
SHINGLE_WORDS = 3
MIN_WORDS_FOR_NEAR = 12  # shorter texts have too few shingles to compare meaningfully
MIN_WORDS_FOR_CONTENT_HASH = 8
REF_BYTES = 6  # 48 bits of an article id: collisions stay unlikely at millions of articles
_EACH_REF = re.compile(b".{%d}" % REF_BYTES, re.DOTALL)  # a bucket's references, cut apart in one call
BUCKET_LOAD = 48  # entries a bucket hash holds on average at most: well within a compact encoding
# A reading's list of claimed identities is dropped once its article is stored; this lifetime
# only bounds what is left by articles that never reach the store (copies dropped on the way).
CLAIMS_SECONDS = 2 * 86400

# Move identity keys to a new owner only if none changed since they were read.
_SWAP_IF_UNCHANGED = """
for i, key in ipairs(KEYS) do
    if redis.call('GET', key) ~= ARGV[i] then return 0 end
end
for _, key in ipairs(KEYS) do
    redis.call('SET', key, ARGV[#KEYS + 1], 'EX', ARGV[#KEYS + 2])
end
return 1
"""


class Verdict(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    NEAR_DUPLICATE = "near_duplicate"
    UPDATE = "update"  # the same URL or GUID with changed text: replaces the stored article


@dataclass
class Deduper:
    """Duplicate detection over the Redis every worker shares."""

    client: redis.Redis
    window_seconds: int
    threshold: float

    def __post_init__(self) -> None:
        self._file_in_buckets = self.client.register_script(NEAREST_IN_BUCKETS)
        self._swap = self.client.register_script(_SWAP_IF_UNCHANGED)
        self._claim = self.client.register_script(CLAIM_IDENTITIES)
        self._set_each = self.client.register_script(SET_EACH_FOR)

    def check(self, article: Article) -> Verdict:
        """Claim the article's identities; mark a near-duplicate with `duplicate_of`/`cluster_id`,
        an update (same URL or GUID, changed text) with its `version`."""
        return self.check_batch([article])[0]

    def check_batch(self, articles: Sequence[Article]) -> list[Verdict]:
        """`check` for a batch, in order, in a handful of round trips whatever its size: an
        article is judged against the stored ones and against those before it in the batch."""
        readings = [_Reading.of(article) for article in articles]
        verdicts: list[Verdict] = []
        near: list[tuple[int, _Reading]] = []
        for reading, (status, version) in zip(readings, self._claim_exact(readings), strict=True):
            article = reading.article
            if status == "duplicate":
                verdicts.append(Verdict.DUPLICATE)
                continue
            if version > 1:
                article.version, article.updated_at = version, datetime.now(UTC)
                self._keep_story(article)
                verdicts.append(Verdict.UPDATE)
            elif len(reading.words) < MIN_WORDS_FOR_NEAR:
                article.cluster_id = article.cluster_id or article.id
                verdicts.append(Verdict.NEW)
            else:
                verdicts.append(Verdict.NEW)  # NEAR_DUPLICATE once an original is found
            if len(reading.words) >= MIN_WORDS_FOR_NEAR:
                near.append((len(verdicts) - 1, reading))
        if near:
            signatures = minhash_batch([reading.words for _, reading in near])
            for (_, reading), signature in zip(near, signatures, strict=True):
                reading.signature = signature
            originals = self._nearest([reading for _, reading in near])
            for (number, reading), original in zip(near, originals, strict=True):
                if verdicts[number] is Verdict.UPDATE:
                    continue  # an update keeps its story: it is only filed in the buckets
                if original is not None:
                    reading.article.duplicate_of, reading.article.cluster_id = original
                    verdicts[number] = Verdict.NEAR_DUPLICATE
                else:
                    reading.article.cluster_id = reading.article.id
            self._remember_signatures([reading for _, reading in near])
        return verdicts

    def _claim_exact(self, readings: list[_Reading]) -> list[tuple[str, int]]:
        """("new" | "duplicate" | "update", version) for each reading, in one round trip.

        Each identity key holds `<id>|<delivery>|<content hash>|<version>` of the reading that
        owns it, the first three as 12 hex digits (`_owner`). A redelivered message carries the
        same delivery, so a retry after a crash is never taken for a duplicate. The same URL or
        GUID read again with other text is an update: the identities move to it, atomically,
        with the version one higher.
        """
        args: list[str | int] = [self.window_seconds, min(self.window_seconds, CLAIMS_SECONDS)]
        for reading in readings:
            article = reading.article
            if not reading.identities:
                continue
            # What this reading may own, so that a later quarantine can let the article in again.
            args += [
                _owner(article.id, article.delivery, reading.content_hash, 1),
                redis_keys.claims(article.id, article.delivery),
                len(reading.identities),
                *(key for _, key in reading.identities),
            ]
        replies = iter(self._claim(keys=[], args=args) if len(args) > 2 else [])
        results = []
        for reading in readings:
            if not reading.identities:
                results.append(("new", 1))
                continue
            results.append(self._judge(reading, [next(replies) for _ in reading.identities]))
        return results

    def _judge(self, reading: _Reading, raws: list[bytes | None]) -> tuple[str, int]:
        article = reading.article
        article_id, delivery = redis_keys.short_ref(article.id), redis_keys.short_ref(article.delivery)
        content_hash = _short_hash(reading.content_hash)
        owners = [
            (kind, key, raw.decode(), *raw.decode().split("|"))
            for (kind, key), raw in zip(reading.identities, raws, strict=True)
            if raw is not None
        ]
        if all(
            owner_id == article_id and owner_delivery == delivery for _, _, _, owner_id, owner_delivery, *_ in owners
        ):
            return "new", max((int(owner[6]) for owner in owners), default=1)  # a redelivery keeps its version
        if any(owner_id != article_id for _, _, _, owner_id, *_ in owners):
            return "duplicate", 0
        stable = [owner for owner in owners if owner[0] == "stable"]
        if not stable or any(owner[5] == content_hash for owner in stable):
            return "duplicate", 0  # read again, unchanged
        version = max(int(owner[6]) for owner in stable) + 1
        updated = _owner(article.id, article.delivery, reading.content_hash, version)
        swapped = self._swap(
            keys=[owner[1] for owner in stable], args=[*(owner[2] for owner in stable), updated, self.window_seconds]
        )
        return ("update", version) if swapped else ("duplicate", 0)  # lost a race: the winner has it

    def _keep_story(self, article: Article) -> None:
        """An update stays in the story (and under the original) the article was filed in."""
        root, cluster, _ = _read_signature(self.client.get(redis_keys.signature(article.id)))
        article.cluster_id = cluster or article.cluster_id or article.id
        if root and root != article.id:
            article.duplicate_of = root

    def _nearest(self, readings: list[_Reading]) -> list[tuple[str, str] | None]:
        """(original id, cluster id) of the most similar earlier article above the threshold,
        for each reading: one script files every reading in its LSH buckets and returns what
        they held (earlier readings of the batch included), one pipeline reads the signatures
        of the stored candidates."""
        # Time slices of half the window: the current one and the two before it hold every
        # article of the window; a slice's hashes expire once no article in them is younger.
        slice_seconds = max(1, self.window_seconds // 2)
        current = int(time.time() // slice_seconds)
        expire_at = (current + 3) * slice_seconds
        args: list[bytes | str | int] = [redis_keys.lsh_prefix(), 3, expire_at, BUCKET_LOAD]
        args += [current, current - 1, current - 2]
        for reading in readings:
            assert reading.signature is not None
            args += [reading.ref, BANDS, b"".join(_buckets(reading.signature))]
        replies: Any = self._file_in_buckets(keys=[], args=args)
        in_batch = {reading.ref for reading in readings}
        candidates = []
        for reading, held in zip(readings, replies, strict=True):
            refs = set(_EACH_REF.findall(held))
            candidates.append(refs - {reading.ref})
        stored = sorted({c for found in candidates for c in found if c not in in_batch})
        known: dict[bytes, tuple[str | None, str | None, np.ndarray | None]] = {}
        if stored:
            values = self.client.mget([redis_keys.signature(candidate.hex()) for candidate in stored])
            known = {candidate: _read_signature(value) for candidate, value in zip(stored, values, strict=True)}
        results: list[tuple[str, str] | None] = []
        decided: dict[bytes, tuple[np.ndarray, str, str]] = {}
        for reading, found in zip(readings, candidates, strict=True):
            article, signature = reading.article, reading.signature
            assert signature is not None
            best: tuple[float, str, str] | None = None
            compact = _compact(signature)
            for candidate in sorted(found):
                if candidate in decided:
                    other, root, cluster = decided[candidate]
                else:
                    stored_root, stored_cluster, kept = known.get(candidate, (None, None, None))
                    if stored_root is None or stored_cluster is None or kept is None:
                        continue  # expired with the window, or later in this batch
                    other, root, cluster = kept, stored_root, stored_cluster
                if root == article.id:
                    continue  # a copy of this very article (a redelivery)
                estimate = similarity(other, compact)
                if estimate >= self.threshold and (best is None or estimate > best[0]):
                    best = (estimate, root, cluster)
            result = (best[1], best[2]) if best else None
            results.append(result)
            if article.version > 1:
                root, cluster = article.duplicate_of or article.id, article.cluster_id or article.id
            else:
                root, cluster = result or (article.id, article.id)
            decided[reading.ref] = (compact, root, cluster)
        return results

    def _remember_signatures(self, readings: list[_Reading]) -> None:
        args: list[bytes | str | int] = [self.window_seconds]
        for reading in readings:
            article, signature = reading.article, reading.signature
            assert signature is not None
            root, cluster = article.duplicate_of or article.id, article.cluster_id or article.id
            args += [redis_keys.signature(reading.ref.hex()), _signature_value(root, cluster, signature)]
        self._set_each(keys=[], args=args)


@dataclass
class _Reading:
    """What dedupe judges an article by, computed once."""

    article: Article
    content_hash: str
    identities: list[tuple[str, str]]
    words: list[str]
    signature: np.ndarray | None = None

    @functools.cached_property
    def ref(self) -> bytes:
        return _ref(self.article.id)

    @classmethod
    def of(cls, article: Article) -> _Reading:
        content = normalized_content(article.text)
        content_hash = digest(content)
        words = content.split()
        identities: list[tuple[str, str]] = []
        if article.canonical_url:
            identities.append(("stable", redis_keys.seen("url", digest(article.canonical_url))))
        if article.guid:
            identities.append(("stable", redis_keys.seen("guid", digest(f"{article.source}:{article.guid}"))))
        if len(words) >= MIN_WORDS_FOR_CONTENT_HASH:
            identities.append(("content", redis_keys.seen("content", content_hash)))
        return cls(article, content_hash, identities, words)


def _owner(article_id: str, delivery: str, content_hash: str, version: int) -> str:
    """What an identity key holds for the reading that owns it: 12 hex digits each of its id,
    delivery and content hash (48 bits are plenty: only an owner and one reading are ever
    compared), short enough for Redis to keep the value within its object's allocation."""
    return f"{_reading_prefix(article_id, delivery)}{_short_hash(content_hash)}|{version}"


def _reading_prefix(article_id: str, delivery: str) -> str:
    return f"{redis_keys.short_ref(article_id)}|{redis_keys.short_ref(delivery)}|"


def _short_hash(content_hash: str) -> str:
    return content_hash[:12]


# Delete each identity key still owned by this reading (its value starts with ARGV[1], or with
# ARGV[2] in the form written before owners were shortened).
_RELEASE = """
local released = 0
for key in string.gmatch(redis.call('GET', KEYS[1]) or '', '%S+') do
    local owner = redis.call('GET', key)
    if owner and (string.sub(owner, 1, #ARGV[1]) == ARGV[1] or string.sub(owner, 1, #ARGV[2]) == ARGV[2]) then
        redis.call('DEL', key)
        released = released + 1
    end
end
redis.call('DEL', KEYS[1])
return released
"""


def release_claims(client: redis.Redis, article_id: str, delivery: str) -> int:
    """Let an article in again that was claimed by dedupe but never stored (it was quarantined
    on the way): dropping the same file again must not be taken for a duplicate. Returns how
    many identities were released; those a later reading owns are left alone."""
    script = client.register_script(_RELEASE)
    prefixes = [_reading_prefix(article_id, delivery), f"{article_id}|{delivery}|"]
    return int(script(keys=[redis_keys.claims(article_id, delivery)], args=prefixes))


def forget_claims(pipe: redis.client.Pipeline, stored: Iterable[tuple[str, str]]) -> None:
    """Queue on `pipe` the removal of what the readings (article id, delivery) of articles just
    stored may release: a stored article is never let in again, so the lists would only cost
    memory from then on."""
    keys = [redis_keys.claims(article_id, delivery) for article_id, delivery in stored]
    if keys:
        pipe.delete(*keys)


def minhash(words: list[str]) -> np.ndarray:
    """MinHash signature (uint32) of the word 3-shingles of normalised text: each shingle is
    hashed once, then every permutation is one multiply-add over all the hashes at once."""
    return minhash_batch([words])[0]


def minhash_batch(texts: Sequence[list[str]]) -> list[np.ndarray]:
    """`minhash` of each text (its words), the numpy work done over the whole batch at once:
    one pass hashes every shingle, and the permutations run over a few hundred texts' shingles
    together instead of one text at a time."""
    empty = np.full(NUM_PERM, 0xFFFFFFFF, dtype=np.uint32)
    worded = [number for number, words in enumerate(texts) if words]
    signatures = [empty] * len(texts)
    if not worded:
        return signatures
    hashes, counts = _shingle_hashes([texts[number] for number in worded])
    ends = np.cumsum(counts)
    first = 0
    while first < len(worded):
        # A chunk of whole texts, about _CHUNK_SHINGLES shingles: the permuted values stay in cache.
        last = max(first + 1, int(np.searchsorted(ends, ends[first] - counts[first] + _CHUNK_SHINGLES, "right")))
        start = int(ends[first] - counts[first])
        chunk = hashes[start : ends[last - 1]]
        permuted = _MULTIPLIERS * chunk  # wraps modulo 2**64: multiply-shift hashing
        permuted += _OFFSETS
        offsets = ends[first : last - 1] - start
        lowest = np.minimum.reduceat(permuted, np.concatenate(([0], offsets)), axis=1)
        # the high bits are the well-mixed ones
        kept = (lowest >> np.uint64(32)).astype(np.uint32).T
        for number, signature in zip(worded[first:last], kept, strict=True):
            signatures[number] = np.ascontiguousarray(signature)
        first = last
    return signatures


_CHUNK_SHINGLES = 1024


def _shingle_hashes(texts: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """A 64-bit hash of each shingle's text, for every text (each with at least one word) in
    turn, and how many shingles each text has. The hash is polynomial modulo 2**64, read off
    the prefix sums of all the texts joined, so no shingle is ever built as a string and a
    shingle hashes alike wherever it stands; stable across processes and versions, unlike
    `hash()`."""
    text = " ".join(" ".join(words) for words in texts).encode()
    size = len(text)
    codes = np.frombuffer(text, dtype=np.uint8).astype(np.uint64)
    powers, inverses = _powers(size)
    prefix = np.zeros(size + 1, dtype=np.uint64)
    np.cumsum(codes * powers, out=prefix[1:])
    spaces = np.flatnonzero(codes == ord(" "))
    starts = np.concatenate(([0], spaces + 1))
    ends = np.concatenate((spaces, [size]))
    lengths = np.fromiter((len(words) for words in texts), dtype=np.int64, count=len(texts))
    counts = np.maximum(1, lengths - SHINGLE_WORDS + 1)  # fewer words: the text is one shingle
    # each shingle's first word, counted over all the texts: its text's first word plus its place
    first_word = np.repeat(np.cumsum(lengths) - lengths - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    last_word = first_word + np.repeat(np.minimum(lengths, SHINGLE_WORDS) - 1, counts)
    first, last = starts[first_word], ends[last_word]
    # sum(c[i] * B**i for i in [first, last)) / B**first: the shingle's hash wherever it stands
    return _mix((prefix[last] - prefix[first]) * inverses[first]), counts


def _constants(label: str, count: int) -> np.ndarray:
    """`count` fixed pseudo-random 64-bit numbers, the same in every process and version."""
    raw = b"".join(hashlib.blake2b(f"{label}:{n}".encode(), digest_size=8).digest() for n in range(count))
    return np.frombuffer(raw, dtype="<u8").astype(np.uint64)


_BASE = int(_constants("shingle-base", 1)[0]) | 1  # odd: it has an inverse modulo 2**64
_MULTIPLIERS = (_constants("minhash-multiplier", NUM_PERM) | np.uint64(1)).reshape(-1, 1)
_OFFSETS = _constants("minhash-offset", NUM_PERM).reshape(-1, 1)
_power_table: tuple[np.ndarray, np.ndarray] = (np.ones(1, dtype=np.uint64), np.ones(1, dtype=np.uint64))


def _powers(size: int) -> tuple[np.ndarray, np.ndarray]:
    """B**i and B**-i modulo 2**64 for i < size, from a table grown (doubling) on demand."""
    global _power_table
    if len(_power_table[0]) < size:
        length = max(size, 2 * len(_power_table[0]), 4096)
        tables = []
        for base in (_BASE, pow(_BASE, -1, 2**64)):
            steps = np.full(length, base, dtype=np.uint64)
            steps[0] = 1
            tables.append(np.cumprod(steps, dtype=np.uint64))
        _power_table = (tables[0], tables[1])
    return _power_table[0][:size], _power_table[1][:size]


def _mix(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: every output bit depends on every input bit."""
    values = values ^ (values >> np.uint64(30))
    values *= np.uint64(0xBF58476D1CE4E5B9)
    values ^= values >> np.uint64(27)
    values *= np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


def _buckets(signature: np.ndarray) -> list[bytes]:
    """The band's number, then 40 bits of a hash of its rows, for each band."""
    packed, width = signature[: BANDS * ROWS].tobytes(), 4 * ROWS
    buckets = []
    for band in range(BANDS):
        named = bytes((band,)) + packed[band * width : (band + 1) * width]
        buckets.append(named[:1] + hashlib.blake2b(named, digest_size=5).digest())
    return buckets


def _ref(article_id: str) -> bytes:
    """The short reference LSH buckets hold for an article (its signature's key says it)."""
    return bytes.fromhex(redis_keys.short_ref(article_id))


def _compact(signature: np.ndarray) -> np.ndarray:
    """What is kept of a signature to compare with: the low 8 bits of each value. Two different
    values agree there once in 256, a bias `similarity` takes out, at a quarter of the memory."""
    return (signature & 0xFF).astype(np.uint8)


def similarity(kept: np.ndarray, other: np.ndarray) -> float:
    """Estimated Jaccard similarity of two compact signatures: the share of agreeing values,
    less the agreements of different values by chance."""
    agreeing = float(np.mean(kept == other))
    return max(0.0, (agreeing - _CHANCE) / (1 - _CHANCE))


_CHANCE = 1 / 256
# Marks the signature form (this MinHash, 8 bits a value): a value of another form, written
# before a change, is never compared with one of this form, though its ids are still read.
_FORM = b"m2:"


def _signature_value(root: str, cluster: str, signature: np.ndarray) -> bytes:
    return f"{root}|{cluster}|".encode() + _FORM + _compact(signature).tobytes()


def _read_signature(value: bytes | str | None) -> tuple[str | None, str | None, np.ndarray | None]:
    """(root id, cluster id, compact signature or None if of another form) from a signature
    key's value."""
    if not isinstance(value, bytes) or not value:
        return None, None, None
    root, cluster, packed = value.split(b"|", 2)
    kept = None
    if len(packed) == len(_FORM) + NUM_PERM and packed.startswith(_FORM):
        kept = np.frombuffer(packed, dtype=np.uint8, offset=len(_FORM))
    return root.decode(), cluster.decode(), kept
