"""The gate of the chain: exact duplicates stop here, near-duplicates are marked.

Exact duplicates (same canonical URL, feed GUID or normalised content) are claimed
atomically in Redis, so two workers never both let the same article through. Near-duplicates
(syndicated copies, small edits) are found with MinHash signatures over word shingles and
banded LSH buckets in Redis that every worker shares; they continue with `duplicate_of` set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum

import numpy as np
import redis
from datasketch import MinHash

from shared import redis_keys
from shared.article import Article, digest, normalized_content

NUM_PERM = 128
BANDS = 32  # 32 bands of 4 rows: pairs at Jaccard 0.5 share a bucket with probability 0.87
ROWS = NUM_PERM // BANDS
SHINGLE_WORDS = 3
MIN_WORDS_FOR_NEAR = 12  # shorter texts have too few shingles to compare meaningfully
MIN_WORDS_FOR_CONTENT_HASH = 8

_ADD_TO_BUCKETS = """
for _, key in ipairs(KEYS) do
    redis.call('SADD', key, ARGV[1])
    redis.call('EXPIRE', key, ARGV[2])
end
"""
_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=7)  # permutations computed once, reused for every article


class Verdict(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    NEAR_DUPLICATE = "near_duplicate"


@dataclass
class Deduper:
    """Duplicate detection over the Redis every worker shares."""

    client: redis.Redis
    window_seconds: int
    threshold: float

    def __post_init__(self) -> None:
        # Server-side, so adding an article to its 32 buckets costs one command, not 64.
        self._add_to_buckets = self.client.register_script(_ADD_TO_BUCKETS)

    def check(self, article: Article) -> Verdict:
        """Claim the article's identities; mark a near-duplicate with `duplicate_of`/`cluster_id`."""
        if self._claim_exact(article):
            return Verdict.DUPLICATE
        words = normalized_content(article.text).split()
        if len(words) < MIN_WORDS_FOR_NEAR:
            article.cluster_id = article.cluster_id or article.id
            return Verdict.NEW
        signature = minhash(words)
        original = self._nearest(article.id, signature)
        if original is not None:
            article.duplicate_of, article.cluster_id = original
        else:
            article.cluster_id = article.id
        self._remember_signature(article, signature)
        return Verdict.NEAR_DUPLICATE if original is not None else Verdict.NEW

    def story_size(self, cluster_id: str) -> int:
        """How many articles the story (cluster) has had within the window."""
        return int(self.client.get(redis_keys.story(cluster_id)) or 0)

    def _claim_exact(self, article: Article) -> bool:
        """True when another reading already owns one of this article's identities.

        Each identity key holds `<article id>|<delivery>` of its first reader. A redelivered
        message carries the same delivery, so a retry after a crash is not taken for a duplicate.
        """
        identities = []
        if article.canonical_url:
            identities.append(redis_keys.seen("url", digest(article.canonical_url)))
        if article.guid:
            identities.append(redis_keys.seen("guid", digest(f"{article.source}:{article.guid}")))
        content = normalized_content(article.text)
        if len(content.split()) >= MIN_WORDS_FOR_CONTENT_HASH:
            identities.append(redis_keys.seen("content", digest(content)))
        if not identities:
            return False
        mine = f"{article.id}|{article.delivery}"
        pipe = self.client.pipeline(transaction=True)  # SET NX then GET, atomically per key
        for key in identities:
            pipe.set(key, mine, nx=True, ex=self.window_seconds)
            pipe.get(key)
        replies = pipe.execute()
        owners = [owner.decode() for owner in replies[1::2] if owner is not None]
        return any(owner != mine for owner in owners)

    def _nearest(self, article_id: str, signature: np.ndarray) -> tuple[str, str] | None:
        """(original id, cluster id) of the most similar earlier article above the threshold.

        One round trip reads the article's LSH buckets and adds it to them.
        """
        keys = [redis_keys.lsh_band(band, bucket) for band, bucket in enumerate(_buckets(signature))]
        pipe = self.client.pipeline(transaction=False)
        pipe.sunion(keys)
        self._add_to_buckets(keys=keys, args=[article_id, self.window_seconds], client=pipe)
        members, _ = pipe.execute()
        candidates = {member.decode() for member in members}
        candidates.discard(article_id)
        if not candidates:
            return None
        ordered = sorted(candidates)
        pipe = self.client.pipeline(transaction=False)
        for candidate in ordered:
            pipe.hmget(redis_keys.signature(candidate), "sig", "root", "cluster")
        best: tuple[float, str, str] | None = None
        for packed, root, cluster in pipe.execute():
            if packed is None or (root is not None and root.decode() == article_id):
                continue  # expired with the window, or a copy of this very article (a redelivery)
            similarity = float(np.mean(np.frombuffer(packed, dtype=signature.dtype) == signature))
            if similarity >= self.threshold and (best is None or similarity > best[0]):
                best = (similarity, root.decode(), cluster.decode())
        return (best[1], best[2]) if best else None

    def _remember_signature(self, article: Article, signature: np.ndarray) -> None:
        pipe = self.client.pipeline(transaction=False)
        key = redis_keys.signature(article.id)
        pipe.hset(
            key,
            mapping={
                "sig": signature.tobytes(),
                "root": article.duplicate_of or article.id,
                "cluster": article.cluster_id or article.id,
            },
        )
        pipe.expire(key, self.window_seconds)
        story = redis_keys.story(article.cluster_id or article.id)
        pipe.incr(story)
        pipe.expire(story, self.window_seconds)
        pipe.execute()


def minhash(words: list[str]) -> np.ndarray:
    """MinHash signature of the word 3-shingles of normalised text."""
    shingles = {" ".join(words[i : i + SHINGLE_WORDS]).encode() for i in range(len(words) - SHINGLE_WORDS + 1)}
    sketch = MinHash(num_perm=NUM_PERM, permutations=_TEMPLATE.permutations, scheme=_TEMPLATE.scheme)
    sketch.update_batch(list(shingles))
    return sketch.hashvalues


def _buckets(signature: np.ndarray) -> list[str]:
    return [
        hashlib.blake2b(signature[band * ROWS : (band + 1) * ROWS].tobytes(), digest_size=8).hexdigest()
        for band in range(BANDS)
    ]
