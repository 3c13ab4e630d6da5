"""Every Redis key wirewatch uses, named in one place."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote

PREFIX = "ww"

DEAD_LETTERS = f"{PREFIX}:dead-letters"
"""List of JSON records: an article (or item) that could not be processed, and why."""

SUBSCRIPTIONS = f"{PREFIX}:subscriptions"
"""Hash: subscription id -> subscription JSON."""

SUBSCRIPTION_NAMES = f"{PREFIX}:subscriptions:names"
"""Hash: owner NUL name -> subscription id (names are unique per owner)."""

SUBSCRIPTION_CHANGES = f"{PREFIX}:subscriptions:changes"
"""Stream of changed subscription ids; matchers follow it to reload only what changed."""

OUTBOX = f"{PREFIX}:outbox"
"""Hash: alert entry id -> its record (payload, channel, status, attempts, last error)."""

OUTBOX_DUE = f"{PREFIX}:outbox:due"
"""Sorted set of outbox entries waiting, scored by when they are due."""

OUTBOX_INFLIGHT = f"{PREFIX}:outbox:inflight"
"""Sorted set of outbox entries being delivered, scored by when their lease ends."""

OUTBOX_WAKE = f"{PREFIX}:outbox:wake"
"""List of at most one item, pushed when an entry is queued due now: an idle alerter waits on it."""

DIGESTS_DUE = f"{PREFIX}:digests:due"
"""Sorted set of digest buckets, scored by the end of their period."""

FEEDS = f"{PREFIX}:feeds"
"""Hash: feed URL -> feed settings (name, interval, full_text, tags, language, enabled)."""

FEEDS_DUE = f"{PREFIX}:feeds:due"
"""Sorted set of feed URLs, scored by when each is next polled."""

WEBSUB_CALLBACKS = f"{PREFIX}:websub"
"""Hash: callback key (in the URL a hub calls) -> feed URL."""

TOKENS = f"{PREFIX}:tokens"
"""Hash: SHA-256 of an API token -> owner name. The tokens themselves are never stored."""
TOKENS_CREATED = f"{PREFIX}:tokens-created"
"""Hash: SHA-256 of an API token -> when it was created (ISO 8601, UTC)."""

INDEX_STREAM = f"{PREFIX}:index-stream"
"""Stream of batches waiting for the bulk indexer (consumer group `indexers`)."""

EMBEDDED_USERS = f"{PREFIX}:embedded:users"
"""Set of the process ids using the embedded Redis; it stops when none is left."""

RETRIES = f"{PREFIX}:retries"
"""Sorted set of deferred batches (step and batch as JSON), scored by when they are due."""

PUSH_STREAM = f"{PREFIX}:push-stream"
"""Stream of what the API was handed (pushed articles, WebSub deliveries) for the fetcher to
read (consumer group `fetchers`)."""

ALERT_STREAMS = f"{PREFIX}-alerts"
"""Prefix of the streams that subscriptions' stream channels write to: outside `ww:`, so no
channel can write into a key of wirewatch's own."""

UI_NEW_SECRETS = f"{PREFIX}:ui:new-secrets"
"""Prefix of short-lived keys holding webhook secrets just made in the web UI, read (and
deleted) by the one page that shows them."""

TOTALS = f"{PREFIX}:totals"
"""Hash of counters since the data dir (or Redis) was created."""


def claims(article_id: str, delivery: str) -> str:
    """The identity keys one reading of an article claimed at dedupe, space-separated: kept
    until the article is stored (or let in again), so that a quarantine can release them."""
    return f"{PREFIX}:claim:{article_id[:16]}{delivery[:16]}"


_SEEN_KINDS = {"url": "u", "guid": "g", "content": "c"}


def seen(kind: str, digest: str) -> str:
    """Exact-duplicate marker for an article's canonical URL ("url"), feed GUID ("guid") or
    content hash ("content"), named by 16 hex digits of its digest: 64 bits keep a new identity
    from meeting another's key (a chance of one in 2**64 per key held) at millions of keys, in a
    name that fits Redis's smallest allocation for it. Names of the earlier form
    (`url:<32 digits>`) are no longer read; they expire within a dedupe window."""
    return f"{PREFIX}:seen:{_SEEN_KINDS[kind]}:{digest[:16]}"


def lsh_prefix() -> str:
    """Prefix of the LSH tables `<prefix><time slice>` and their bucket hashes
    `<prefix><time slice>:<number>`: field band and bucket,
    value the short references of the articles filed there (see `shared.pipeline.dedupe`).
    Named for the signature form, so buckets of another form are never read."""
    return f"{PREFIX}:lsh2:"


def signature(article_id: str) -> str:
    """`<root id>|<cluster id>|<form><packed MinHash signature>` of an article, named by its
    short reference, which is what LSH buckets hold."""
    return f"{PREFIX}:sigs:{short_ref(article_id)}"


_HEX12 = re.compile(r"[0-9a-f]{12}")


def short_ref(article_id: str) -> str:
    """12 hex digits that stand for an article (or a delivery): its id's first (ids are hex
    digests), or a digest's for an id of another form."""
    head = article_id[:12]
    if _HEX12.fullmatch(head):
        return head
    return hashlib.sha256(article_id.encode()).hexdigest()[:12]


def compiled_queries(fingerprint: str) -> str:
    """Hash of subscription queries, parsed and indexed, by query text, for the code with
    this fingerprint."""
    return f"{PREFIX}:subscriptions:compiled:{fingerprint}"


def owner_subscriptions(owner: str) -> str:
    """Set of one owner's subscription ids."""
    return f"{PREFIX}:subscriptions:owner:{owner}"


def digest_bucket(subscription_id: str, period_end: int) -> str:
    """List of alerts waiting for one subscription's digest that ends at `period_end`."""
    return f"{PREFIX}:digest:{subscription_id}:{period_end}"


def batch_articles(reference: str) -> str:
    """A queued batch's JSON, which its chain message names instead of carrying it."""
    return f"{PREFIX}:batch:{reference}"


def deliveries(task_id: str) -> str:
    """Counter of how often one task's message was delivered (a poison batch is split)."""
    return f"{PREFIX}:deliveries:{task_id}"


def heartbeat(loop: str, host: str) -> str:
    """Set (with a lifetime) by a background loop each few seconds: it is alive."""
    return f"{PREFIX}:heartbeat:{loop}:{host}"


def counted(key: str) -> str:
    """Set once the counts of one outcome (a batch at a step, a delivery) are recorded."""
    return f"{PREFIX}:counted:{key}"


def alerted(subscription_id: str, group: str) -> str:
    """Sorted set of the articles one subscription alerted on for one group (a story, an
    article, a field value), scored by the article's time: the re-alert window's memory."""
    return f"{PREFIX}:alerted:{subscription_id}:{group}"


def rate(subscription_id: str, hour: int) -> str:
    """Counter of one subscription's instant alerts in one hour."""
    return f"{PREFIX}:rate:{subscription_id}:{hour}"


def story_records(period: int) -> str:
    """Hash of the stories changed in one period of real time (a story window long): field a
    story's 6-byte reference, value its packed record (times, size, id, centroid)."""
    return f"{PREFIX}:storyrec:{period}"


def story_index(event_slice: int) -> str:
    """Hash indexing the stories of one slice of event time: field a 32-bit hash of a word's
    stem or of an entity, value the references of its latest stories there, concatenated."""
    return f"{PREFIX}:storyidx:{event_slice}"


def source_paragraphs(source_digest: str) -> str:
    """Hash of one source's paragraph counts' state (generation, since, size); the counts are
    in hashes named from it (see `shared.redis_scripts.COUNT_PARAGRAPHS`)."""
    return f"{PREFIX}:paras:{source_digest}"


def run(run_id: str) -> str:
    """Hash of counters for one `wirewatch run --once` pass."""
    return f"{PREFIX}:run:{run_id}"


def feed_validators(url: str) -> str:
    """Hash holding a feed's state: validators, body hash, interval, failures, health."""
    return f"{PREFIX}:feed:{url}"


def feed_entries(url: str) -> str:
    """Set of the entry fingerprints a feed has shown, to count its new items."""
    return f"{PREFIX}:feed-entries:{url}"


def alert_stream(owner: str, name: str) -> str:
    """The Redis stream a stream channel named `name` of one owner writes to. The owner is
    escaped, so one owner's names never reach into another's."""
    return f"{ALERT_STREAMS}:{quote(owner, safe='')}:{name}"


def pushed_by(article_id: str) -> str:
    """The origin (`push:<owner>`) that pushed an article, while it may still be on its way to
    the store: another origin may not replace it."""
    return f"{PREFIX}:pushed:{article_id}"
