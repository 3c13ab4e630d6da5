"""Subscriptions in Redis, and a matcher that follows their changes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.alerting.matching import SubscriptionMatcher
from shared.alerting.subscriptions import (
    Channel,
    SubscriptionError,
    SubscriptionSpec,
    delete_subscription,
    list_subscriptions,
    save_subscription,
)
from tests.factories import make_article

HOOK = Channel(type="webhook", url="https://hooks.example.org/a")
LAUNCH = make_article(
    "North Korea test-fires a missile", "Pyongyang fired a ballistic missile on Friday.", countries=["KP"]
)


def spec(name: str, query: str, **options) -> SubscriptionSpec:
    return SubscriptionSpec(name=name, query=query, channels=[HOOK], **options)


def names(matcher: SubscriptionMatcher) -> list[str]:
    return sorted(match.subscription.name for match in matcher.match(LAUNCH))


def test_a_matcher_follows_additions_changes_deactivation_and_deletion(redis_client):
    matcher = SubscriptionMatcher(redis_client)
    first = save_subscription(redis_client, "desk", spec("launches", "missile"))
    matcher.refresh(force=True)
    assert names(matcher) == ["launches"]

    save_subscription(redis_client, "desk", spec("launches", "harvest"), first.id)
    other = save_subscription(redis_client, "desk", spec("korea", "countries:KP"))
    matcher.refresh(force=True)
    assert names(matcher) == ["korea"]

    save_subscription(redis_client, "desk", spec("korea", "countries:KP", active=False), other.id)
    matcher.refresh(force=True)
    assert names(matcher) == []

    save_subscription(redis_client, "desk", spec("launches", "missile"), first.id)
    matcher.refresh(force=True)
    assert names(matcher) == ["launches"]
    assert delete_subscription(redis_client, "desk", first.id)
    matcher.refresh(force=True)
    assert names(matcher) == []


def test_a_filter_narrows_the_query(redis_client):
    save_subscription(redis_client, "desk", spec("launches-kr", "missile", filter="countries:KR"))
    save_subscription(redis_client, "desk", spec("launches-kp", "missile", filter="countries:KP"))
    matcher = SubscriptionMatcher(redis_client)
    assert names(matcher) == ["launches-kp"]


def test_names_are_unique_per_owner(redis_client):
    save_subscription(redis_client, "desk", spec("same", "missile"))
    with pytest.raises(SubscriptionError, match="already has"):
        save_subscription(redis_client, "desk", spec("same", "rocket"))
    save_subscription(redis_client, "other-desk", spec("same", "rocket"))
    assert [s.owner for s in list_subscriptions(redis_client)] == ["desk", "other-desk"]
    assert [s.query for s in list_subscriptions(redis_client, "other-desk")] == ["rocket"]


def test_nobody_deletes_another_owners_subscription(redis_client):
    mine = save_subscription(redis_client, "desk", spec("mine", "missile"))
    assert not delete_subscription(redis_client, "intruder", mine.id)
    assert len(list_subscriptions(redis_client, "desk")) == 1


@pytest.mark.parametrize(
    "channel",
    [
        {"type": "webhook", "url": "not a url"},
        {"type": "slack"},
        {"type": "email", "to": ["no-at-sign"]},
        {"type": "stream"},
        {"type": "pager"},
    ],
)
def test_incomplete_channels_are_refused(channel):
    with pytest.raises(ValidationError):
        SubscriptionSpec(name="x", query="missile", channels=[channel])


def test_the_contract_queries_fire_as_subscriptions_exactly_where_they_search(redis_client):
    from tests.test_store_contract import ARTICLES, QUERIES

    ids = {}
    for number, (query, _) in enumerate(QUERIES):
        ids[save_subscription(redis_client, "desk", spec(f"q{number}", query)).id] = query
    matcher = SubscriptionMatcher(redis_client)
    fired: dict[str, set[str]] = {query: set() for query, _ in QUERIES}
    for name, article in ARTICLES.items():
        for match in matcher.match(article):
            fired[ids[match.subscription.id]].add(name)
    assert fired == {query: expected for query, expected in QUERIES}
