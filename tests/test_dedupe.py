"""Deduper against the real Redis: exact duplicates, near-duplicates, clusters and redelivery."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

import numpy as np
import pytest
import redis

from shared import redis_keys
from shared.article import Article, normalized_content
from shared.pipeline.dedupe import (
    BANDS,
    BUCKET_LOAD,
    CLAIMS_SECONDS,
    Deduper,
    Verdict,
    minhash,
    minhash_batch,
    release_claims,
)
from shared.settings import Settings


def edit(text: str, *replacements: tuple[str, str]) -> str:
    """`text` with each (old, new) applied; every `old` must occur exactly once."""
    for old, new in replacements:
        assert text.count(old) == 1, f"edit target not found once: {old!r}"
        text = text.replace(old, new)
    return text


LAUNCH = (
    "North Korea fired a short-range ballistic missile off its east coast early on Thursday, South Korea's "
    "Joint Chiefs of Staff said, the fourth launch this month as allied navies prepared for a week of drills "
    "in nearby waters. The missile was fired from an area near the port of Sinpo shortly after six in the "
    "morning and flew about 480 kilometres before falling into the sea outside Japan's exclusive economic "
    "zone, officials in Tokyo said. There were no reports of damage to ships or aircraft.\n\n"
    "Analysts said the trajectory suggested a test of a solid-fuel design that Pyongyang unveiled at a parade "
    "in the spring, and that the timing appeared meant to signal displeasure with the upcoming exercises. "
    "The defence ministry in Seoul said its forces had tracked the launch from the moment of lift-off and were "
    "sharing data with American and Japanese counterparts.\n\n"
    "A spokesperson for the foreign ministry called the launch a clear violation of Security Council "
    "resolutions and urged the North to return to talks without preconditions. State media in the North "
    "had not reported the launch by midday."
)

# The same story as another outlet runs it: small wording edits and its own newsletter plug.
SYNDICATED = edit(
    LAUNCH,
    ("early on Thursday", "on Thursday morning"),
    ("about 480 kilometres", "roughly 480 km"),
    ("A spokesperson for the foreign ministry called", "A foreign ministry spokesperson called"),
    (
        "had not reported the launch by midday.",
        "had yet to report the launch by midday.\n\nSign up for our free Asia Briefing newsletter to get "
        "the region's top stories in your inbox every morning.",
    ),
)

# A further rewrite of the syndicated copy: close to it, but too far from LAUNCH on its own.
REWRITE = edit(
    SYNDICATED,
    (
        "the fourth launch this month as allied navies prepared for a week of drills in nearby waters",
        "its fourth test in a month, days before allied navies begin joint exercises",
    ),
    ("There were no reports of damage to ships or aircraft.", "No damage to shipping or aircraft was reported."),
    (
        "and that the timing appeared meant to signal displeasure with the upcoming exercises.",
        "and said the launch was probably timed as a protest against the drills.",
    ),
)

SUMMIT_ASEAN = (
    "Leaders of Southeast Asian nations ended a two-day summit in Vientiane on Friday with a joint statement "
    "that called for restraint in the South China Sea and pledged closer cooperation on electricity grids "
    "and disaster relief. The host, Laos, had pushed for a deal on cross-border power trading, and officials "
    "said a framework would be signed before the end of the year.\n\n"
    "Divisions over Myanmar dominated the closing session. Several delegations argued that the bloc's peace "
    "plan had failed and that the military government should remain excluded from top-level meetings, while "
    "others favoured a gradual return. The final text repeated earlier language and set no deadline.\n\n"
    "Diplomats said the summit had been overshadowed by a collision between coast guard vessels near a "
    "disputed shoal last week. The chair's statement did not name any country but expressed serious concern "
    "about incidents at sea. Malaysia will host the next meeting in the spring."
)

SUMMIT_AFRICA = (
    "African heads of state gathered in Addis Ababa on Sunday for the annual summit of the African Union, "
    "where debt relief and the funding of peacekeeping missions topped an agenda crowded with conflicts. "
    "The outgoing chairperson opened the meeting by urging wealthy creditors to accept longer repayment "
    "terms, saying that interest payments now exceeded health budgets in more than a dozen member states.\n\n"
    "Delegates spent much of the first day on the war in Sudan, where a ceasefire brokered last autumn has "
    "collapsed. A draft resolution asks neighbouring countries to stop the flow of weapons across their "
    "borders and proposes a new envoy, but several governments objected to the wording.\n\n"
    "The summit is also expected to approve a plan to finance a quarter of peacekeeping costs from member "
    "contributions, a step long sought by the United Nations. A new chairperson of the commission will be "
    "elected on Monday after three rounds of voting failed to produce a winner last year."
)


@pytest.fixture
def deduper(redis_client: redis.Redis, settings: Settings) -> Deduper:
    return Deduper(redis_client, settings.dedupe_window_seconds, settings.near_duplicate_threshold)


def similarity(first: str, second: str) -> float:
    """The Deduper's estimate of the Jaccard similarity of two texts' shingles."""
    a = minhash(normalized_content(first).split())
    b = minhash(normalized_content(second).split())
    return float(np.mean(a == b))


def original() -> Article:
    return Article.create(
        title="North Korea fires ballistic missile into sea", text=LAUNCH, url="https://wire.example/asia/launch"
    )


# --- exact duplicates ---------------------------------------------------------------------------


def test_first_reading_is_new_and_starts_its_own_cluster(deduper: Deduper) -> None:
    article = original()
    assert deduper.check(article) is Verdict.NEW
    assert article.duplicate_of is None
    assert article.cluster_id == article.id


def test_redelivery_of_the_same_reading_is_not_a_duplicate(deduper: Deduper) -> None:
    article = original()
    assert deduper.check(article) is Verdict.NEW
    assert deduper.check(article) is Verdict.NEW  # same delivery: a retry, not a second reading
    assert article.duplicate_of is None
    assert article.cluster_id == article.id


def test_redelivered_message_is_not_a_duplicate(deduper: Deduper) -> None:
    article = original()
    message = article.to_message()
    assert deduper.check(article) is Verdict.NEW
    assert deduper.check(Article.model_validate(message)) is Verdict.NEW


def test_same_url_read_again_is_a_duplicate(deduper: Deduper) -> None:
    assert deduper.check(original()) is Verdict.NEW
    again = original()  # a new reading of the same link: a new delivery
    assert deduper.check(again) is Verdict.DUPLICATE


def test_same_url_with_tracking_parameters_is_a_duplicate(deduper: Deduper) -> None:
    first = original()
    assert deduper.check(first) is Verdict.NEW
    shared_link = Article.create(
        title=first.title, text=first.text, url="https://WIRE.example/asia/launch/?utm_source=twitter&fbclid=abc#top"
    )
    assert shared_link.id == first.id
    assert deduper.check(shared_link) is Verdict.DUPLICATE


def test_same_url_with_changed_text_is_an_update_in_the_same_story(deduper: Deduper) -> None:
    first = original()
    assert deduper.check(first) is Verdict.NEW
    changed = Article.create(
        title=first.title, text=first.text + " Officials later raised the count to two missiles.", url=first.url
    )
    assert deduper.check(changed) is Verdict.UPDATE
    assert (changed.id, changed.version, changed.cluster_id) == (first.id, 2, first.cluster_id)
    assert changed.updated_at is not None and changed.duplicate_of is None
    again = Article.create(title=first.title, text=changed.text, url=first.url)
    assert deduper.check(again) is Verdict.DUPLICATE  # the update read a second time
    third = Article.create(title=first.title, text=changed.text + " A third was reported.", url=first.url)
    assert deduper.check(third) is Verdict.UPDATE and third.version == 3


def test_same_text_under_another_url_is_a_duplicate(deduper: Deduper) -> None:
    assert deduper.check(original()) is Verdict.NEW
    copy = Article.create(title="Missile fired", text=LAUNCH, url="https://mirror.example/world/12345")
    assert deduper.check(copy) is Verdict.DUPLICATE


def test_same_text_with_other_spacing_and_case_is_a_duplicate(deduper: Deduper) -> None:
    assert deduper.check(original()) is Verdict.NEW
    reflowed = Article.create(
        title="Missile fired", text="  " + LAUNCH.upper().replace("\n\n", " ").replace(" ", "   ") + "\n"
    )
    assert deduper.check(reflowed) is Verdict.DUPLICATE


def test_same_feed_guid_with_updated_text_is_an_update(deduper: Deduper) -> None:
    first = Article.create(title="Summit ends", text=SUMMIT_ASEAN, guid="tag:wire.example,2024:8812", source="Wire")
    assert deduper.check(first) is Verdict.NEW
    updated = Article.create(
        title="Summit ends (updated)",
        text=SUMMIT_ASEAN + " The statement was published in full on Saturday.",
        guid="tag:wire.example,2024:8812",
        source="Wire",
    )
    assert deduper.check(updated) is Verdict.UPDATE and updated.version == 2
    redelivered = updated.model_copy()
    assert deduper.check(redelivered) is Verdict.UPDATE and redelivered.version == 2  # a retry keeps the version


def test_same_guid_from_another_source_is_not_a_duplicate(deduper: Deduper) -> None:
    assert deduper.check(Article.create(title="a", text=SUMMIT_ASEAN, guid="item-17", source="Wire")) is Verdict.NEW
    other = Article.create(title="b", text=SUMMIT_AFRICA, guid="item-17", source="Gazette")
    assert deduper.check(other) is Verdict.NEW


def test_duplicate_claims_expire_with_the_window(redis_client: redis.Redis, settings: Settings) -> None:
    deduper = Deduper(redis_client, 1, settings.near_duplicate_threshold)
    assert deduper.check(original()) is Verdict.NEW
    time.sleep(1.5)
    assert deduper.check(original()) is Verdict.NEW


def test_a_readings_list_of_claims_outlives_the_chain_but_not_the_window(
    deduper: Deduper, redis_client: redis.Redis
) -> None:
    article = original()
    assert deduper.check(article) is Verdict.NEW
    listed = redis_keys.claims(article.id, article.delivery)
    assert 86400 < redis_client.ttl(listed) <= CLAIMS_SECONDS
    for key in redis_client.get(listed).split():
        assert redis_client.ttl(key) > CLAIMS_SECONDS  # the identities themselves last the window


def test_a_release_lets_in_identities_claimed_in_the_earlier_form(redis_client: redis.Redis) -> None:
    # Before owners were shortened: full-length key names and `<id>|<delivery>|<hash>|<version>`.
    mine, theirs = "a1" * 16, "b2" * 16
    redis_client.set("ww:seen:url:" + "c3" * 16, f"{mine}|{'d4' * 16}|{'e5' * 16}|1")
    redis_client.set("ww:seen:content:" + "f6" * 16, f"{theirs}|{'d4' * 16}|{'e5' * 16}|1")
    listed = redis_keys.claims(mine, "d4" * 16)
    redis_client.set(listed, f"ww:seen:url:{'c3' * 16} ww:seen:content:{'f6' * 16}")
    assert release_claims(redis_client, mine, "d4" * 16) == 1
    assert redis_client.exists("ww:seen:url:" + "c3" * 16, listed) == 0
    assert redis_client.exists("ww:seen:content:" + "f6" * 16) == 1  # a later reading's is left alone


def test_short_texts_are_never_near_duplicates(deduper: Deduper) -> None:
    first = Article.create(text="Missile launched off the east coast, officials say")
    second = Article.create(text="Missile launched off the east coast, officials said")
    assert deduper.check(first) is Verdict.NEW
    assert deduper.check(second) is Verdict.NEW
    assert second.duplicate_of is None
    assert second.cluster_id == second.id


# --- near-duplicates ----------------------------------------------------------------------------


def test_syndicated_copy_with_edits_is_a_near_duplicate_of_the_original(deduper: Deduper) -> None:
    first = original()
    assert deduper.check(first) is Verdict.NEW
    copy = Article.create(
        title="Pyongyang launches fourth missile this month",  # another headline
        text=SYNDICATED,
        url="https://herald.example/2024/05/02/pyongyang-missile",
    )
    assert deduper.check(copy) is Verdict.NEAR_DUPLICATE
    assert copy.duplicate_of == first.id
    assert copy.cluster_id == first.cluster_id == first.id


def test_truncated_copy_is_a_near_duplicate(deduper: Deduper) -> None:
    first = original()
    assert deduper.check(first) is Verdict.NEW
    words = LAUNCH.split()
    truncated = " ".join(words[: int(len(words) * 0.8)])
    copy = Article.create(title="Missile fired", text=truncated, url="https://brief.example/launch")
    assert deduper.check(copy) is Verdict.NEAR_DUPLICATE
    assert copy.duplicate_of == first.id
    assert copy.cluster_id == first.id


def test_different_stories_on_the_same_subject_are_separate(deduper: Deduper) -> None:
    asean = Article.create(title="Summit ends with call for restraint", text=SUMMIT_ASEAN)
    africa = Article.create(title="African Union summit opens", text=SUMMIT_AFRICA)
    assert deduper.check(asean) is Verdict.NEW
    assert deduper.check(africa) is Verdict.NEW
    assert asean.duplicate_of is None and africa.duplicate_of is None
    assert asean.cluster_id == asean.id
    assert africa.cluster_id == africa.id
    assert asean.cluster_id != africa.cluster_id


def test_copy_of_a_near_duplicate_points_at_the_root_original(deduper: Deduper, settings: Settings) -> None:
    # REWRITE alone is not similar enough to LAUNCH; only its likeness to SYNDICATED links it
    assert similarity(REWRITE, LAUNCH) < settings.near_duplicate_threshold <= similarity(REWRITE, SYNDICATED)
    first = original()
    middle = Article.create(title="Missile launched", text=SYNDICATED, url="https://herald.example/launch")
    last = Article.create(title="Fourth missile test", text=REWRITE, url="https://courier.example/launch")
    assert deduper.check(first) is Verdict.NEW
    assert deduper.check(middle) is Verdict.NEAR_DUPLICATE
    assert deduper.check(last) is Verdict.NEAR_DUPLICATE
    assert last.duplicate_of == first.id
    assert last.cluster_id == first.id


def test_near_duplicate_joins_the_cluster_not_an_unrelated_story(deduper: Deduper) -> None:
    asean = Article.create(title="Summit ends", text=SUMMIT_ASEAN)
    first = original()
    assert deduper.check(asean) is Verdict.NEW
    assert deduper.check(first) is Verdict.NEW
    copy = Article.create(title="Missile launched", text=SYNDICATED, url="https://herald.example/launch")
    assert deduper.check(copy) is Verdict.NEAR_DUPLICATE
    assert copy.duplicate_of == first.id
    assert copy.cluster_id != asean.cluster_id


def test_redelivered_near_duplicate_gets_the_same_verdict(deduper: Deduper) -> None:
    first = original()
    assert deduper.check(first) is Verdict.NEW
    copy = Article.create(title="Missile launched", text=SYNDICATED, url="https://herald.example/launch")
    message = copy.to_message()
    assert deduper.check(copy) is Verdict.NEAR_DUPLICATE
    retry = Article.model_validate(message)
    assert deduper.check(retry) is Verdict.NEAR_DUPLICATE
    assert retry.duplicate_of == first.id
    assert retry.cluster_id == first.id


def test_redelivered_original_stays_new_after_a_near_copy_was_seen(deduper: Deduper) -> None:
    first = original()
    message = first.to_message()
    assert deduper.check(first) is Verdict.NEW
    copy = Article.create(title="Missile launched", text=SYNDICATED, url="https://herald.example/launch")
    assert deduper.check(copy) is Verdict.NEAR_DUPLICATE
    retry = Article.model_validate(message)
    assert deduper.check(retry) is Verdict.NEW
    assert retry.duplicate_of is None
    assert retry.cluster_id == retry.id


# --- signatures ---------------------------------------------------------------------------------


def test_signatures_are_the_same_in_every_process() -> None:
    # Workers share signatures through Redis: hashing must not depend on the process.
    program = (
        "from shared.article import normalized_content; from shared.pipeline.dedupe import minhash; "
        f"print(minhash(normalized_content({LAUNCH!r}).split()).tolist())"
    )
    here = minhash(normalized_content(LAUNCH).split()).tolist()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=env, check=True)
        assert json.loads(done.stdout) == here


def test_signature_estimates_follow_the_shingles_shared() -> None:
    words = normalized_content(LAUNCH).split()
    shingles = [" ".join(words[i : i + 3]) for i in range(len(words) - 2)]
    half = words[: len(words) // 2]
    shared = len(set(shingles[: len(half) - 2])) / len(set(shingles))
    assert abs(similarity(LAUNCH, " ".join(half)) - shared) < 0.15
    assert similarity(LAUNCH, LAUNCH.upper()) == 1.0
    assert similarity(LAUNCH, SUMMIT_ASEAN) < 0.2


def test_a_signature_of_an_earlier_form_is_not_compared_but_its_story_is_kept(
    deduper: Deduper, redis_client: redis.Redis
) -> None:
    first = original()
    assert deduper.check(first) is Verdict.NEW
    # What an earlier version stored: 16-bit values, no form marker, under the same key.
    earlier = f"{first.id}|story-1|".encode() + np.zeros(128, dtype=np.uint16).tobytes()
    redis_client.set(redis_keys.signature(first.id), earlier)
    copy = Article.create(
        title="Pyongyang launches fourth missile this month", text=SYNDICATED, url="https://herald.example/2"
    )
    assert deduper.check(copy) is Verdict.NEW  # its bucket mate's signature is not read as one
    changed = Article.create(title=first.title, text=first.text + " A second launch followed.", url=first.url)
    assert deduper.check(changed) is Verdict.UPDATE
    assert changed.cluster_id == "story-1"


def test_bucket_hashes_stay_small_and_expire_as_articles_accumulate(
    deduper: Deduper, redis_client: redis.Redis
) -> None:
    rng = random.Random(5)
    vocabulary = [f"{syllable}{n}" for syllable in ("port", "tide", "quay", "mast", "hull") for n in range(200)]
    texts = [" ".join(rng.choice(vocabulary) for _ in range(60)) for _ in range(300)]
    articles = [
        Article.create(title=f"Notice {n}", text=text, url=f"https://wire.example/{n}") for n, text in enumerate(texts)
    ]
    for start in range(0, len(articles), 50):
        assert set(deduper.check_batch(articles[start : start + 50])) == {Verdict.NEW}
    buckets = [key for key in redis_client.scan_iter(f"{redis_keys.lsh_prefix()}*") if key.count(b":") == 3]
    assert len(buckets) >= 300 * BANDS // BUCKET_LOAD  # it grew with the articles
    for key in buckets:
        assert redis_client.hlen(key) <= 128 and redis_client.object("encoding", key) == b"listpack"
        assert redis_client.ttl(key) > 0
    # The first article's bands moved as their buckets split: a copy of it still finds it.
    copy = Article.create(title="Copy", text=texts[0] + " Filed again by another wire.", url="https://other.example/1")
    assert deduper.check(copy) is Verdict.NEAR_DUPLICATE and copy.duplicate_of == articles[0].id


def test_a_batch_of_signatures_is_each_text_signed_alone() -> None:
    # Texts of every size a batch can hold, empty and shorter than a shingle included, and
    # enough of them that the permutations run in more than one chunk.
    rng = random.Random(5)
    words = normalized_content(LAUNCH).split()
    texts = [[], ["one"], ["one", "two"], words[:3], words] + [
        rng.sample(words, rng.randint(0, len(words))) for _ in range(60)
    ]
    signed = minhash_batch(texts)
    assert len(signed) == len(texts)
    for text, signature in zip(texts, signed, strict=True):
        assert signature.dtype == np.uint32 and signature.flags.c_contiguous
        assert signature.tolist() == minhash(text).tolist()
    assert signed[0].tolist() != signed[1].tolist()  # no words and one word sign apart
