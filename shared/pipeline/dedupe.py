"""The gate of the chain: exact duplicates stop here, near-duplicates are marked.

Exact duplicates (same canonical URL, feed GUID or normalised content) are claimed
atomically in Redis, so two workers never both let the same article through. Near-duplicates
(syndicated copies, small edits) are found with MinHash signatures over word shingles and
banded LSH buckets in Redis that every worker shares; they continue with `duplicate_of` set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

import numpy as np
import redis
from datasketch import MinHash

from shared import redis_keys
from shared.article import Article, digest, normalized_content
from shared.redis_client import as_text
from shared.redis_scripts import ADD_TO_SETS

NUM_PERM = 128
BANDS = 32  # 32 bands of 4 rows: pairs at Jaccard 0.5 share a bucket with probability 0.87
ROWS = NUM_PERM // BANDS
SHINGLE_WORDS = 3
MIN_WORDS_FOR_NEAR = 12  # shorter texts have too few shingles to compare meaningfully
MIN_WORDS_FOR_CONTENT_HASH = 8

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
_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=7)  # permutations computed once, reused for every article


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
        # Server-side, so adding an article to its 32 buckets costs one command, not 64.
        self._add_to_buckets = self.client.register_script(ADD_TO_SETS)
        self._swap = self.client.register_script(_SWAP_IF_UNCHANGED)

    def check(self, article: Article) -> Verdict:
        """Claim the article's identities; mark a near-duplicate with `duplicate_of`/`cluster_id`,
        an update (same URL or GUID, changed text) with its `version`."""
        status, version = self._claim_exact(article)
        if status == "duplicate":
            return Verdict.DUPLICATE
        words = normalized_content(article.text).split()
        if version > 1:
            article.version, article.updated_at = version, datetime.now(UTC)
            self._keep_story(article)
            if len(words) >= MIN_WORDS_FOR_NEAR:
                self._nearest(article.id, signature := minhash(words))  # files the new text in the buckets
                self._remember_signature(article, signature)
            return Verdict.UPDATE
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

    def _claim_exact(self, article: Article) -> tuple[str, int]:
        """("new" | "duplicate" | "update", version) for this reading of the article.

        Each identity key holds `<id>|<delivery>|<content hash>|<version>` of the reading that
        owns it. A redelivered message carries the same delivery, so a retry after a crash is
        never taken for a duplicate. The same URL or GUID read again with other text is an
        update: the identities move to it, atomically, with the version one higher.
        """
        content = normalized_content(article.text)
        content_hash = digest(content)
        identities: list[tuple[str, str]] = []
        if article.canonical_url:
            identities.append(("stable", redis_keys.seen("url", digest(article.canonical_url))))
        if article.guid:
            identities.append(("stable", redis_keys.seen("guid", digest(f"{article.source}:{article.guid}"))))
        if len(content.split()) >= MIN_WORDS_FOR_CONTENT_HASH:
            identities.append(("content", redis_keys.seen("content", content_hash)))
        if not identities:
            return "new", 1
        mine = f"{article.id}|{article.delivery}|{content_hash}|1"
        pipe = self.client.pipeline(transaction=True)  # SET NX then GET, atomically per key
        for _, key in identities:
            pipe.set(key, mine, nx=True, ex=self.window_seconds)
            pipe.get(key)
        # What this reading may own, so that a later quarantine can let the article in again.
        pipe.sadd(redis_keys.claims(article.id, article.delivery), *(key for _, key in identities))
        pipe.expire(redis_keys.claims(article.id, article.delivery), self.window_seconds)
        replies = pipe.execute()[:-2]
        owners = [
            (kind, key, raw.decode(), *raw.decode().split("|"))
            for (kind, key), raw in zip(identities, replies[1::2], strict=True)
            if raw is not None
        ]
        if all(owner_id == article.id and delivery == article.delivery for _, _, _, owner_id, delivery, *_ in owners):
            return "new", max((int(owner[6]) for owner in owners), default=1)  # a redelivery keeps its version
        if any(owner_id != article.id for _, _, _, owner_id, *_ in owners):
            return "duplicate", 0
        stable = [owner for owner in owners if owner[0] == "stable"]
        if not stable or any(owner[5] == content_hash for owner in stable):
            return "duplicate", 0  # read again, unchanged
        version = max(int(owner[6]) for owner in stable) + 1
        updated = f"{article.id}|{article.delivery}|{content_hash}|{version}"
        swapped = self._swap(
            keys=[owner[1] for owner in stable], args=[*(owner[2] for owner in stable), updated, self.window_seconds]
        )
        return ("update", version) if swapped else ("duplicate", 0)  # lost a race: the winner has it

    def _keep_story(self, article: Article) -> None:
        """An update stays in the story (and under the original) the article was filed in."""
        root, cluster = (
            as_text(value) if value else None
            for value in self.client.hmget(redis_keys.signature(article.id), "root", "cluster")
        )
        article.cluster_id = cluster or article.cluster_id or article.id
        if root and root != article.id:
            article.duplicate_of = root

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
        pipe.execute()


# Delete each identity key still owned by this reading (its value starts with ARGV[1]).
_RELEASE = """
local released = 0
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    local owner = redis.call('GET', key)
    if owner and string.sub(owner, 1, #ARGV[1]) == ARGV[1] then
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
    return int(script(keys=[redis_keys.claims(article_id, delivery)], args=[f"{article_id}|{delivery}|"]))


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
