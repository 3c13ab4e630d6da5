"""Boilerplate learned per source, on the real Redis."""

from __future__ import annotations

from shared import redis_keys
from shared.pipeline.boilerplate import KEPT, LearnedBoilerplate
from tests.factories import make_article

SIGN_OFF = "Reporting by the Harbour Gazette port desk; editing by the night team. Send tips to the desk."


def article(number: int, source: str = "Harbour Gazette", **fields):
    text = f"Story number {number} happened at the harbour on a busy morning for the port.\n\n{SIGN_OFF}"
    return make_article(f"Story {number}", text, url=f"https://gazette.example/{number}", source=source, **fields)


def test_a_line_a_source_repeats_is_removed_once_seen_often_enough(redis_client) -> None:
    learned = LearnedBoilerplate(redis_client, min_articles=3)
    first, second = article(1), article(2)
    learned.remove(first)
    learned.remove(second)
    assert SIGN_OFF in first.text and SIGN_OFF in second.text
    third = article(3)
    learned.remove(third)
    assert SIGN_OFF not in third.text and third.text.startswith("Story number 3")
    assert any("printed in 3 articles" in note for note in third.notes)
    other_source = article(4, source="Valley Courier")
    learned.remove(other_source)
    assert SIGN_OFF in other_source.text  # learned per source


def test_copies_and_redeliveries_do_not_count_twice(redis_client) -> None:
    learned = LearnedBoilerplate(redis_client, min_articles=3)
    original = article(1)
    for _ in range(3):
        learned.remove(original.model_copy(deep=True))  # the same article again: one count
    copy = article(2, duplicate_of=original.id)
    learned.remove(copy)
    assert SIGN_OFF in copy.text


def test_an_article_is_never_emptied(redis_client) -> None:
    learned = LearnedBoilerplate(redis_client, min_articles=2)
    for number in range(3):
        only = make_article(f"Brief {number}", SIGN_OFF, url=f"https://gazette.example/b{number}", source="Gazette")
        learned.remove(only)
    assert only.text == SIGN_OFF


def fresh_article(number: int, *lines: str, source: str = "Harbour Gazette"):
    """An article with two paragraphs of its own, then `lines`."""
    own = [
        f"Dispatch {number}: the ferry timetable changed again on a windy day at pier {number}.",
        f"Harbour master number {number} told reporters the cranes were idle for {number} hours.",
    ]
    text = "\n\n".join([*own, *lines])
    return make_article(f"Dispatch {number}", text, url=f"https://gazette.example/d{number}", source=source)


def held_paragraphs(redis_client) -> tuple[int, int]:
    """(keys, paragraphs) the learned boilerplate holds in Redis: its state and generations."""
    keys = list(redis_client.scan_iter(f"{redis_keys.PREFIX}:paras:*"))
    generations = [key for key in keys if key.count(b":") > 2]
    return len(keys), sum(redis_client.hlen(key) for key in generations)


def test_memory_per_source_stays_bounded_and_standing_lines_are_still_learned(redis_client) -> None:
    learned = LearnedBoilerplate(redis_client, min_articles=3, capacity=40)
    sizes = []
    for start in range(0, 400, 20):
        batch = [fresh_article(number, SIGN_OFF) for number in range(start, start + 20)]
        learned.remove_batch(batch)
        sizes.append(held_paragraphs(redis_client))
    keys, paragraphs = sizes[-1]
    # Two generations of 40 paragraphs, each with at most the lines of the article that filled it.
    assert paragraphs <= 2 * (40 + 2) and keys <= 1 + 2 * 16
    assert max(held for _, held in sizes) <= 2 * (40 + 2)  # it never grew with the articles
    assert SIGN_OFF not in batch[-1].text
    assert any("printed in" in note for note in batch[-1].notes)


def test_a_line_not_seen_again_is_forgotten_when_its_generations_are_dropped(redis_client) -> None:
    line = "Our weekend puzzle page is back next Saturday with a harbour crossword for all."
    learned = LearnedBoilerplate(redis_client, min_articles=3, capacity=40)
    learned.remove_batch([fresh_article(1, line), fresh_article(2, line)])
    probe = fresh_article(3, line)
    LearnedBoilerplate(redis_client, min_articles=2, learn=False).remove(probe)
    assert line not in probe.text  # remembered in two articles so far
    learned.remove_batch([fresh_article(number) for number in range(10, 100)])  # 180 new paragraphs
    late = fresh_article(200, line)
    learned.remove(late)
    assert line in late.text  # counted afresh: once


def test_a_line_seen_again_moves_with_the_generations_and_keeps_its_count(redis_client) -> None:
    line = "Corrections to this report can be sent to the desk at any hour of the day."
    learned = LearnedBoilerplate(redis_client, min_articles=6, capacity=40)
    seen = []
    for round_ in range(6):
        printed = fresh_article(1000 + round_, line)
        learned.remove_batch([printed, *(fresh_article(100 * round_ + n) for n in range(15))])  # 30 new lines each
        seen.append(printed)
    assert line in seen[4].text and line not in seen[5].text
    assert any("printed in 6 articles" in note for note in seen[5].notes)


def test_a_retried_batch_counts_nothing_twice_even_across_generations(redis_client) -> None:
    learned = LearnedBoilerplate(redis_client, min_articles=5, capacity=40)
    batch = [fresh_article(number, SIGN_OFF) for number in range(3)]
    learned.remove_batch([a.model_copy(deep=True) for a in batch])
    learned.remove_batch([fresh_article(number) for number in range(10, 40)])  # a new generation begins
    learned.remove_batch([a.model_copy(deep=True) for a in batch])  # the retry
    fourth = fresh_article(50, SIGN_OFF)
    learned.remove(fourth)
    assert SIGN_OFF in fourth.text  # 4 articles, not 7
    fifth = fresh_article(51, SIGN_OFF)
    learned.remove(fifth)
    assert SIGN_OFF not in fifth.text and any("printed in 5 articles" in note for note in fifth.notes)


def test_counts_are_exact_up_to_the_fingerprints_kept_and_estimated_above(redis_client) -> None:
    learned = LearnedBoilerplate(redis_client, min_articles=2)
    counts = []
    for number in range(60):
        printed = fresh_article(number, SIGN_OFF)
        learned.remove(printed)
        counts.append(next((int(note.split("printed in ")[1].split()[0]) for note in printed.notes), 1))
    assert counts[:KEPT] == list(range(1, KEPT + 1))
    assert all(count >= KEPT for count in counts[KEPT:]) and 20 <= counts[-1] <= 180


def test_judging_without_learning_writes_nothing(redis_client) -> None:
    reader = LearnedBoilerplate(redis_client, min_articles=2, learn=False)
    reader.remove_batch([fresh_article(number, SIGN_OFF) for number in range(5)])
    assert held_paragraphs(redis_client) == (0, 0)
