"""The push stream between the API and the fetcher, on a real Redis."""

from __future__ import annotations

import pytest

from shared import redis_keys
from shared.deadletters import read_dead_letters
from shared.feeds.source import FeedSource, feed_client
from shared.sources.push import PushSource, push_articles
from tests.factories import make_article


@pytest.fixture
def feeds(settings, redis_client) -> FeedSource:
    return FeedSource([], redis_client, settings, feed_client(settings))


def test_a_push_is_acknowledged_only_once_its_articles_are_queued(redis_client, feeds):
    articles = [make_article("Missile test", "A missile was fired."), make_article("Sanctions", "New sanctions.")]
    push_articles(redis_client, articles)

    (delivery,) = PushSource(redis_client, feeds).poll()

    assert [article.id for article in delivery.articles] == [article.id for article in articles]
    assert redis_client.xpending(redis_keys.PUSH_STREAM, "fetchers")["pending"] == 1
    delivery.on_enqueued()
    assert redis_client.xlen(redis_keys.PUSH_STREAM) == 0
    assert list(PushSource(redis_client, feeds).poll()) == []


def test_what_a_dead_fetcher_held_is_taken_over(redis_client, feeds):
    push_articles(redis_client, [make_article("Missile test", "A missile was fired.")])
    list(PushSource(redis_client, feeds, consumer="died").poll())  # taken, never queued

    assert list(PushSource(redis_client, feeds, consumer="alive").poll()) == []  # not idle long enough yet
    (delivery,) = PushSource(redis_client, feeds, consumer="alive", claim_idle_ms=0).poll()
    assert delivery.articles[0].title == "Missile test"


def test_an_unreadable_entry_is_kept_as_a_dead_letter(redis_client, feeds):
    redis_client.xadd(redis_keys.PUSH_STREAM, {"kind": "articles", "articles": "[{not json"})

    assert list(PushSource(redis_client, feeds).poll()) == []

    (letter,) = read_dead_letters(redis_client)
    assert letter["stage"] == "push" and "unreadable push entry" in letter["reason"]
    assert letter["item"]["articles"] == "[{not json"
    assert redis_client.xlen(redis_keys.PUSH_STREAM) == 0
