"""Boilerplate learned per source, on the real Redis."""

from __future__ import annotations

from shared.pipeline.boilerplate import LearnedBoilerplate
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
