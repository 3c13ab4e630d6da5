"""Stories on a real Redis: write-ups of one event join, other events (the same storyline on
another day, another subject in the same week) stay apart, whatever order they arrive in."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.article import Article
from shared.pipeline import stories
from shared.pipeline.stories import POSTING_STORIES, REF_BYTES, StoryClusterer, word_weight
from tests.factories import day, make_article

LAUNCH_MONDAY = (
    "North Korea fires ballistic missile from Sinpo into the East Sea",
    "North Korea fired a ballistic missile from near the port of Sinpo into the East Sea on Monday, South "
    "Korea's joint chiefs of staff said. The missile flew about 450 kilometres on a lofted trajectory before "
    "splashing down outside Japan's exclusive economic zone, and Tokyo lodged a protest with Pyongyang.",
)
LAUNCH_MONDAY_OTHER_OUTLET = (
    "Pyongyang test-fires missile off Sinpo, Seoul and Tokyo say",
    "A ballistic missile launched from the Sinpo shipyard area flew roughly 450 km before falling into the "
    "East Sea, Seoul's military said on Monday. Japan's defence ministry said the North Korean missile came "
    "down outside its economic zone; Tokyo protested through its embassy channel in Beijing.",
)
LAUNCH_MONDAY_THIRD_OUTLET = (
    "Missile from Sinpo lands outside Japan's waters, Tokyo protests",
    "South Korea's military said a North Korean ballistic missile fired from the Sinpo area on Monday flew "
    "some 450 kilometres. Japan said it landed outside its exclusive economic zone and protested to Pyongyang.",
)
LAUNCH_THURSDAY = (
    "North Korea fires ballistic missile into the East Sea again",
    "North Korea fired another ballistic missile into the East Sea on Thursday, South Korea's joint chiefs of "
    "staff said, its second launch this week. The missile flew about 600 kilometres from near Pyongyang before "
    "splashing down outside Japan's exclusive economic zone, and Tokyo lodged a protest.",
)
FLOOD = (
    "Floodwater cuts off riverside districts of Daegu after record rain",
    "Rescue crews in boats reached families stranded on rooftops in Daegu after the Geumho river burst its "
    "banks overnight, the city said. Record rainfall of 310 millimetres in a day flooded underpasses and "
    "shut the metro's riverside stations.",
)
FLOOD_OTHER_OUTLET = (
    "Daegu residents rescued from rooftops as Geumho river floods",
    "Boats rescued stranded families from rooftops across Daegu's riverside districts after the Geumho river "
    "overflowed in record rainfall, city officials said. Underpasses flooded and metro stations near the river "
    "were shut while crews pumped out water.",
)
BACKGROUND = (
    ("Wheat prices ease as harvest forecasts improve", "Wheat futures fell for a third day as forecasters raised "
     "their estimates for the northern harvest, traders said, easing pressure on millers and bakers."),
    ("City council approves budget for new tram line", "The council voted to fund the first section of a tram "
     "line linking the station to the university campus, with construction planned to begin next spring."),
    ("Film festival opens with a documentary about lighthouse keepers", "The festival opened with a quiet "
     "documentary about the last lighthouse keepers on the coast, drawing a long standing ovation."),
)  # fmt: skip


def write_up(title_and_text: tuple[str, str], when: str, outlet: str) -> Article:
    title, text = title_and_text
    slug = title.lower().replace(" ", "-")[:40]
    return make_article(title, text, url=f"https://{outlet}.example/{slug}", source=outlet, published_at=day(when))


@pytest.fixture
def clusterer(redis_client: redis.Redis) -> StoryClusterer:
    return StoryClusterer(redis_client, window_days=3.0, threshold=0.2)


def background(when: str) -> list[Article]:
    return [write_up(item, when, f"desk{n}") for n, item in enumerate(BACKGROUND)]


def test_two_write_ups_of_one_event_are_one_story(clusterer: StoryClusterer) -> None:
    for article in background("2026-03-02"):
        clusterer.assign(article)
    first = clusterer.assign(write_up(LAUNCH_MONDAY, "2026-03-02", "gazette"))
    second = clusterer.assign(write_up(LAUNCH_MONDAY_OTHER_OUTLET, "2026-03-02T09:00", "courier"))

    assert first == second
    assert clusterer.size(first) == 2


def test_a_second_launch_three_days_later_is_a_new_story(clusterer: StoryClusterer) -> None:
    monday = write_up(LAUNCH_MONDAY, "2026-03-02", "gazette")
    thursday = write_up(LAUNCH_THURSDAY, "2026-03-05", "gazette")
    # Close enough in words to be one story, were it not for the days between them.
    clusterer.assign(monday)
    assert clusterer.assign(thursday) != monday.cluster_id
    assert clusterer.size(monday.cluster_id or "") == 1


def test_an_article_must_be_close_to_the_story_as_a_whole_not_to_one_member(redis_client: redis.Redis) -> None:
    # A round-up reports the launch and, in a sentence, the flood: close to the flood report.
    roundup_text = f"{LAUNCH_MONDAY_OTHER_OUTLET[1]} In other news, {FLOOD[1].split('. ')[0]}."
    roundup = ("North Korea fires missile from Sinpo; floods in Daegu", roundup_text)
    alone = StoryClusterer(redis_client, window_days=3.0, threshold=0.2)
    with_roundup_only = alone.assign(write_up(roundup, "2026-03-02T10:00", "courier"))
    assert alone.assign(write_up(FLOOD_OTHER_OUTLET, "2026-03-02T11:00", "ledger")) == with_roundup_only
    redis_client.flushdb()

    clusterer = StoryClusterer(redis_client, window_days=3.0, threshold=0.2)
    launch = clusterer.assign(write_up(LAUNCH_MONDAY, "2026-03-02", "gazette"))
    clusterer.assign(write_up(LAUNCH_MONDAY_OTHER_OUTLET, "2026-03-02T08:00", "times"))
    clusterer.assign(write_up(LAUNCH_MONDAY_THIRD_OUTLET, "2026-03-02T09:00", "herald"))
    assert clusterer.assign(write_up(roundup, "2026-03-02T10:00", "courier")) == launch
    # Within the launch story the round-up is one voice of four: the flood does not chain in.
    assert clusterer.assign(write_up(FLOOD_OTHER_OUTLET, "2026-03-02T11:00", "ledger")) != launch
    assert clusterer.size(launch) == 4


ARTICLES = [
    (LAUNCH_MONDAY, "2026-03-02", "gazette", "launch"),
    (LAUNCH_MONDAY_OTHER_OUTLET, "2026-03-02T08:00", "courier", "launch"),
    (LAUNCH_THURSDAY, "2026-03-05", "gazette", "second launch"),
    (FLOOD, "2026-03-03", "ledger", "flood"),
    (FLOOD_OTHER_OUTLET, "2026-03-03T06:00", "times", "flood"),
    *((item, "2026-03-03", f"desk{n}", f"background {n}") for n, item in enumerate(BACKGROUND)),
]


@pytest.mark.parametrize("order", [(0, 1, 2, 3, 4, 5, 6, 7), (7, 6, 5, 4, 3, 2, 1, 0), (2, 4, 0, 6, 3, 1, 7, 5)])
def test_the_grouping_does_not_depend_on_arrival_order(redis_client: redis.Redis, order: tuple[int, ...]) -> None:
    clusterer = StoryClusterer(redis_client, window_days=3.0, threshold=0.2)
    stories = {}
    for index in order:
        item, when, outlet, event = ARTICLES[index]
        stories[index] = clusterer.assign(write_up(item, when, outlet))

    for a, b in itertools.combinations(range(len(ARTICLES)), 2):
        same_event = ARTICLES[a][3] == ARTICLES[b][3]
        assert (stories[a] == stories[b]) == same_event, (ARTICLES[a][3], ARTICLES[b][3])


def test_an_undated_article_is_placed_at_the_time_it_was_first_seen(clusterer: StoryClusterer) -> None:
    dated = write_up(LAUNCH_MONDAY, "2026-03-02", "gazette")
    clusterer.assign(dated)
    seen_then, seen_later = (
        make_article(*LAUNCH_MONDAY_OTHER_OUTLET, url=f"https://courier.example/{n}") for n in range(2)
    )
    seen_then.ingested_at = day("2026-03-02T07:00")
    seen_later.ingested_at = day("2026-03-02T07:00") + timedelta(days=5)

    assert clusterer.assign(seen_then) == dated.cluster_id
    assert clusterer.assign(seen_later) != dated.cluster_id


def test_words_weigh_by_their_rarity_in_english_not_by_what_came_first(
    clusterer: StoryClusterer, redis_client: redis.Redis
) -> None:
    assert word_weight("said") == 0 and word_weight("the") == 0
    assert 0 < word_weight("court") < word_weight("missile") < word_weight("pyongyang")
    clusterer.assign(write_up(LAUNCH_MONDAY, "2026-03-02", "gazette"))
    assert not list(redis_client.scan_iter("ww:df*"))  # nothing is counted per word


def invented_words(number: int, count: int = 6) -> list[str]:
    """Words no dictionary has, different for each number: articles that share none of them."""
    syllables = ["ka", "lo", "mi", "ru", "te", "vo", "zan", "pel", "dor", "fis"]
    words = []
    for index in range(count):
        value = number * count + index
        words.append("".join(syllables[(value // 10**place) % 10] for place in range(4)) + "ique")
    return words


def test_redis_holds_a_few_hashes_and_each_word_keeps_only_its_latest_stories(
    clusterer: StoryClusterer, redis_client: redis.Redis
) -> None:
    # Many different events on one day, all naming one person: each is its own story.
    articles = []
    for number in range(POSTING_STORIES + 12):
        words = " ".join(invented_words(number))
        article = write_up((f"Report on {words}", f"The {words} were described today."), "2026-03-02", f"desk{number}")
        article.people = ["Ada Quill"]
        articles.append(article)
    stories = clusterer.assign_batch(articles[:30]) + clusterer.assign_batch(articles[30:])
    assert len(set(stories)) == len(articles)

    keys = list(redis_client.scan_iter("ww:story*"))
    assert len(keys) <= 3  # the records, and the index of the slice or two the day falls in
    longest = max(len(value) for key in keys if b"storyidx" in key for value in redis_client.hvals(key))
    assert longest == POSTING_STORIES * REF_BYTES  # the person's entry, full and no fuller
    assert all(clusterer.size(story) == 1 for story in stories)


def event_report(number: int, outlet: str, words: list[str] | None = None) -> Article:
    named = " ".join(words or invented_words(number))
    return write_up((f"Report on {named}", f"The {named} were described today."), "2026-03-02", outlet)


@pytest.mark.parametrize("events", [10, "past the compact encoding"])
def test_write_ups_find_their_stories_however_the_day_s_index_is_stored(
    clusterer: StoryClusterer, redis_client: redis.Redis, events: int | str
) -> None:
    # A day's index is a small hash, stored packed, or past the server's limits (fields, or
    # bytes in a value: ten events share "report") a table: the candidates are read from
    # either, for one article and for a batch.
    if not isinstance(events, int):
        limit = int(redis_client.config_get("hash-max-listpack-entries")["hash-max-listpack-entries"])
        events = limit // 6 + 10  # six words an event
    stories = clusterer.assign_batch([event_report(number, f"desk{number}") for number in range(events)])
    packed = events == 10
    (index,) = redis_client.scan_iter("ww:storyidx*")
    assert redis_client.object("encoding", index) in ((b"listpack", b"ziplist") if packed else (b"hashtable",))

    alone = event_report(3, "courier", list(reversed(invented_words(3))))
    assert clusterer.assign(alone) == stories[3]
    batch = [event_report(number, "wire", invented_words(number)[::-1]) for number in (1, 5, 9)]
    assert clusterer.assign_batch(batch) == [stories[1], stories[5], stories[9]]
    assert clusterer.size(stories[5]) == 2


def test_a_copy_follows_its_original_into_its_story_and_counts_in_its_size(clusterer: StoryClusterer) -> None:
    launch = clusterer.assign(write_up(LAUNCH_MONDAY, "2026-03-02", "gazette"))
    other = write_up(LAUNCH_MONDAY_OTHER_OUTLET, "2026-03-02T09:00", "courier")
    other.cluster_id = other.id  # as dedupe leaves an original
    copy = write_up(LAUNCH_MONDAY_OTHER_OUTLET, "2026-03-02T09:30", "syndicate")
    copy.duplicate_of, copy.cluster_id = other.id, other.id  # a copy of it, in the same batch

    assert clusterer.assign_batch([other, copy]) == [launch, launch]
    assert copy.cluster_id == launch
    assert clusterer.size(launch) == 3


# The possessive's "s" as the lookbehind rule defines it, against which the faster cut is checked.
POSSESSIVE_LEFT_OUT = re.compile(r"(?!(?<=['’])s\b)[^\W_]+")


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="asSb09_'’ .,-\néØ中", max_size=40))
def test_words_leave_out_the_possessive_s_wherever_it_stands(text: str) -> None:
    lowered = text.lower()
    assert stories._words_in(lowered) == POSSESSIVE_LEFT_OUT.findall(lowered)


def test_a_possessive_takes_no_place_among_the_opening_words() -> None:
    text = " ".join(["Korea's launch", "it's s", "Seoul’s view", "James' boat", "s'"])
    assert stories._lead(text) == ["korea", "launch", "it", "s", "seoul", "view", "james", "boat", "s"]
