"""Compiled queries kept in Redis: what a matcher reads back is the query it would parse, and a
second matcher starts from them without compiling again."""

from __future__ import annotations

import pytest

from shared import redis_keys
from shared.alerting.compiled import CompiledQueries, Decoder, compile_query, encode
from shared.alerting.matching import SubscriptionMatcher
from shared.alerting.subscriptions import Channel, SubscriptionSpec, save_subscription
from shared.query import parse_query
from tests.factories import make_article

HOOK = Channel(type="webhook", url="https://hooks.example.org/a")
QUERIES = [
    "missile",
    'title:"ballistic missile"~2',
    "launch* AND -drill",
    "countries:KP OR tags:sanctions",
    "pyongyang~ AND mis?ile",
    "_exists_:people AND published_at:[now-7d/d TO now]",
    '"the launch of a missile" OR (summit AND talks)',
    "*",
]


@pytest.mark.parametrize("text", QUERIES)
def test_a_stored_query_reads_back_as_the_tree_it_was_parsed_into(text):
    compiled = compile_query(text)
    decoder = Decoder()
    stored = decoder.decode(encode(compiled))
    assert isinstance(stored.node, str)  # kept as text until it is needed
    assert decoder.tree(stored.node) == parse_query(text)
    assert (stored.keys, stored.all_of) == (compiled.keys, compiled.all_of)


def test_equal_words_of_different_queries_become_one_object():
    decoder = Decoder()
    first, second = (
        decoder.tree(str(decoder.decode(encode(compile_query(text))).node))
        for text in ("missile AND launch", "launch OR summit")
    )
    assert first.items[1] is second.items[0]


def test_a_second_matcher_starts_from_the_compiled_queries_and_matches_the_same(redis_client):
    article = make_article("North Korea test-fires a missile", "Pyongyang launched a missile.", countries=["KP"])
    names = {}
    for number, text in enumerate(QUERIES):
        spec = SubscriptionSpec(
            name=f"q{number}", query=text, filter="pyongyang" if number % 2 else None, channels=[HOOK]
        )
        names[save_subscription(redis_client, "desk", spec).id] = spec.name
    save_subscription(
        redis_client, "desk", SubscriptionSpec(name="paused", query="missile", channels=[HOOK], active=False)
    )
    first = SubscriptionMatcher(redis_client)
    expected = sorted(match.subscription.name for match in first.match(article))
    assert expected and len(first.compiled) == len(QUERIES)

    queries = CompiledQueries(redis_client)
    batches = list(queries.scan(1000))
    assert sorted(subscription for batch, _ in batches for subscription, _ in batch) == sorted(names)
    assert not any(others for _, others in batches)  # every query, filters included, was found compiled

    second = SubscriptionMatcher(redis_client)
    assert sorted(match.subscription.name for match in second.match(article)) == expected


def test_a_damaged_compiled_query_is_compiled_again(redis_client):
    save_subscription(redis_client, "desk", SubscriptionSpec(name="launches", query="missile", channels=[HOOK]))
    queries = CompiledQueries(redis_client)
    redis_client.hset(queries.key, "missile", "not a compiled query")
    matcher = SubscriptionMatcher(redis_client)
    assert [match.subscription.name for match in matcher.match(make_article("A missile", "A missile."))] == ["launches"]
    assert Decoder().decode(redis_client.hget(queries.key, "missile")).keys == ("t:missil",)


def test_compiled_queries_no_subscription_has_are_dropped_once_they_are_many(redis_client):
    save_subscription(redis_client, "desk", SubscriptionSpec(name="launches", query="missile", channels=[HOOK]))
    queries = CompiledQueries(redis_client)
    stale = encode(compile_query("summit"))
    redis_client.hset(queries.key, mapping={f"summit OR word{number}": stale for number in range(1100)})
    SubscriptionMatcher(redis_client).refresh(force=True)
    assert redis_client.hkeys(queries.key) == [b"missile"]
    assert 0 < redis_client.ttl(queries.key) <= 30 * 86400


def test_entries_read_together_are_read_as_each_alone_and_a_damaged_one_is_left_out():
    entries = [encode(compile_query(text)) for text in QUERIES]
    alone = [Decoder().decode(entry) for entry in entries]
    assert Decoder().decode_many(entries) == alone
    damaged = [entries[0], "not a compiled query", entries[1][:12], entries[2]]
    assert Decoder().decode_many(damaged) == [alone[0], None, None, alone[2]]


def test_a_subscription_whose_id_holds_a_separator_is_still_loaded(redis_client):
    article = make_article("A missile", "A missile.")
    saved = save_subscription(redis_client, "desk", SubscriptionSpec(name="launches", query="missile", channels=[HOOK]))
    SubscriptionMatcher(redis_client).refresh(force=True)  # compiles the query
    odd = saved.model_copy(update={"id": "odd\x1fid\x1e", "name": "odd"})
    redis_client.hset(redis_keys.SUBSCRIPTIONS, odd.id, odd.model_dump_json())
    batches = list(CompiledQueries(redis_client).scan(1000))
    assert [subscription for batch, _ in batches for subscription, _ in batch] == [saved.id]
    assert [subscription for _, others in batches for subscription, _ in others] == [odd.id]
    matcher = SubscriptionMatcher(redis_client)
    assert sorted(match.subscription.name for match in matcher.match(article)) == ["launches", "odd"]
