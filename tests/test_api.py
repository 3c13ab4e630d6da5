"""The HTTP API through FastAPI's test client, on the real Redis and SQLite store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from shared.article import Article
from shared.feeds.source import FeedSource, feed_client
from shared.sources.push import PushSource
from shared.store.sqlite import SqliteStore
from shared.tokens import create_token
from tests.factories import make_article

WEBHOOK = {"type": "webhook", "url": "https://hooks.example.org/desk"}


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "store.sqlite3")


@pytest.fixture
def pushed(settings, redis_client) -> Callable[[], list[list[Article]]]:
    """What the fetcher would read from the push stream now, delivery by delivery."""
    source = PushSource(redis_client, FeedSource([], redis_client, settings, feed_client(settings)))
    return lambda: [delivery.articles for delivery in source.poll()]


@pytest.fixture
def api(settings, redis_client, store) -> TestClient:
    return TestClient(create_app(settings, store=store, client=redis_client))


@pytest.fixture
def alice(redis_client) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(redis_client, 'alice')}"}


@pytest.fixture
def bob(redis_client) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(redis_client, 'bob')}"}


def test_every_route_but_health_needs_a_valid_token(api):
    assert api.get("/health").json() == {"status": "ok"}
    assert api.get("/subscriptions").status_code == 401
    assert api.get("/subscriptions", headers={"Authorization": "Bearer ww_not-a-token"}).status_code == 401
    assert api.get("/alerts").status_code == 401


def test_tokens_are_stored_only_as_hashes(redis_client):
    token = create_token(redis_client, "carol")
    stored = {key.decode() for key in redis_client.hkeys("ww:tokens")}
    assert token not in stored and all(len(key) == 64 for key in stored)


def test_create_read_update_delete_a_subscription(api, alice):
    created = api.post(
        "/subscriptions",
        headers=alice,
        json={"name": "launches", "query": "missile AND (test OR launch)", "channels": [WEBHOOK]},
    )
    assert created.status_code == 201
    body = created.json()
    assert body["owner"] == "alice" and body["mode"] == "instant" and body["realert"] == "story"
    assert body["channels"][0]["secret"]  # generated, shown to its owner to verify signatures
    identifier = body["id"]
    assert api.get(f"/subscriptions/{identifier}", headers=alice).json()["query"] == "missile AND (test OR launch)"
    updated = api.put(
        f"/subscriptions/{identifier}",
        headers=alice,
        json={"name": "launches", "query": '"missile test"~3', "channels": [WEBHOOK], "mode": "daily"},
    )
    assert updated.status_code == 200 and updated.json()["mode"] == "daily" and updated.json()["id"] == identifier
    assert [s["name"] for s in api.get("/subscriptions", headers=alice).json()] == ["launches"]
    assert api.delete(f"/subscriptions/{identifier}", headers=alice).status_code == 204
    assert api.get(f"/subscriptions/{identifier}", headers=alice).status_code == 404


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata address"),
        ("http://10.0.0.7:6379/", "private address"),
        ("http://[fd00::1]/hook", "unique-local address"),
    ],
)
def test_a_webhook_to_an_internal_address_is_refused_when_saved(api, alice, url, reason):
    channel = {"type": "webhook", "url": url}
    response = api.post("/subscriptions", headers=alice, json={"name": "x", "query": "missile", "channels": [channel]})
    assert response.status_code == 422 and reason in response.text
    slack = api.post(
        "/subscriptions",
        headers=alice,
        json={"name": "y", "query": "missile", "channels": [{**channel, "type": "slack"}]},
    )
    assert slack.status_code == 422 and api.get("/subscriptions", headers=alice).json() == []


def test_a_replace_keeps_the_webhook_secret_until_it_is_rotated(api, alice, redis_client):
    from shared.alerting.subscriptions import get_subscription

    spec = {"name": "launches", "query": "missile", "channels": [WEBHOOK]}
    created = api.post("/subscriptions", headers=alice, json=spec).json()
    secret = created["channels"][0]["secret"]
    replaced = api.put(f"/subscriptions/{created['id']}", headers=alice, json={**spec, "query": "missile test"}).json()
    assert replaced["channels"][0]["secret"] is None  # kept, and not shown again
    assert get_subscription(redis_client, created["id"]).channels[0].secret == secret
    rotated = api.post(f"/subscriptions/{created['id']}/rotate-secret", headers=alice).json()
    assert rotated["channels"][0]["secret"] not in (None, secret)
    assert get_subscription(redis_client, created["id"]).channels[0].secret == rotated["channels"][0]["secret"]


def test_a_webhook_secret_is_shown_once_when_it_is_made(api, alice):
    spec = {"name": "launches", "query": "missile", "channels": [WEBHOOK]}
    created = api.post("/subscriptions", headers=alice, json=spec).json()
    secret = created["channels"][0]["secret"]
    assert secret
    for read in (api.get("/subscriptions", headers=alice), api.get(f"/subscriptions/{created['id']}", headers=alice)):
        assert read.status_code == 200 and secret not in read.text
    second = {"type": "webhook", "url": "https://hooks.example.org/night"}
    replaced = api.put(f"/subscriptions/{created['id']}", headers=alice, json={**spec, "channels": [WEBHOOK, second]})
    kept, added = replaced.json()["channels"]
    assert kept["secret"] is None and added["secret"] and added["secret"] != secret  # the new webhook's, once


def test_owners_never_see_or_change_each_others_subscriptions(api, alice, bob):
    identifier = api.post(
        "/subscriptions", headers=alice, json={"name": "mine", "query": "sanctions", "channels": [WEBHOOK]}
    ).json()["id"]
    assert api.get("/subscriptions", headers=bob).json() == []
    assert api.get(f"/subscriptions/{identifier}", headers=bob).status_code == 404
    assert (
        api.put(
            f"/subscriptions/{identifier}", headers=bob, json={"name": "x", "query": "y", "channels": [WEBHOOK]}
        ).status_code
        == 404
    )
    assert api.delete(f"/subscriptions/{identifier}", headers=bob).status_code == 404
    assert api.get(f"/subscriptions/{identifier}", headers=alice).status_code == 200
    # the same name is free for another owner
    assert (
        api.post(
            "/subscriptions", headers=bob, json={"name": "mine", "query": "sanctions", "channels": [WEBHOOK]}
        ).status_code
        == 201
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "x", "query": "nosuch:field", "channels": [WEBHOOK]}, "unknown field 'nosuch'"),
        ({"name": "x", "query": "missile", "channels": []}, "at least 1"),
        ({"name": "x", "query": "missile", "channels": [{"type": "webhook", "url": "ftp://x"}]}, "http(s) url"),
        ({"name": "x", "query": "missile", "channels": [{"type": "email", "to": []}]}, "recipient"),
        ({"name": "x", "query": "missile", "channels": [WEBHOOK], "mode": "weekly"}, "instant"),
    ],
)
def test_bad_subscriptions_are_refused_with_a_clear_message(api, alice, body, message):
    response = api.post("/subscriptions", headers=alice, json=body)
    assert response.status_code == 422
    assert message in response.text


def test_a_duplicate_name_is_a_conflict(api, alice):
    body = {"name": "same", "query": "missile", "channels": [WEBHOOK]}
    assert api.post("/subscriptions", headers=alice, json=body).status_code == 201
    assert api.post("/subscriptions", headers=alice, json=body).status_code == 409


def test_preview_shows_what_would_have_matched_in_the_last_days(api, alice, store):
    recent = make_article(
        "Missile test off the coast",
        "North Korea carried out a missile test on Monday.",
        url="https://example.org/recent",
    )
    old = make_article("Missile test last year", "An earlier missile test.", url="https://example.org/old")
    old.ingested_at = datetime.now(UTC) - timedelta(days=30)
    other = make_article("Harvest festival", "Farmers celebrated.", url="https://example.org/harvest")
    store.index([recent, old, other])
    preview = api.post("/subscriptions/preview", headers=alice, json={"query": '"missile test"', "days": 7})
    assert preview.status_code == 200
    assert preview.json()["count"] == 1
    (row,) = preview.json()["articles"]
    assert row["title"] == "Missile test off the coast" and row["matched_terms"] == ['title:"missil test"']
    assert preview.json()["alerts"] == 1
    ((alert,),) = [day["alerts"] for day in preview.json()["days"]]
    assert alert["article"]["id"] == recent.id and alert["delivery"] == "instant"
    assert api.post("/subscriptions/preview", headers=alice, json={"query": "title:("}).status_code == 422


def test_preview_replays_a_saved_subscriptions_policy(api, alice, bob, store):
    launches = []
    for number in range(3):
        article = make_article(
            f"Missile launch {number}", "A missile was launched.", url=f"https://example.org/{number}"
        )
        article.cluster_id = "one-story"
        launches.append(article)
    store.index(launches)
    spec = {"name": "launches", "query": "missile", "channels": [WEBHOOK], "mode": "daily"}
    saved = api.post("/subscriptions", headers=alice, json=spec).json()
    replay = api.post("/subscriptions/preview", headers=alice, json={"subscription_id": saved["id"]}).json()
    assert (replay["count"], replay["alerts"]) == (3, 1)  # one story, one alert, in the daily digest
    assert replay["days"][0]["alerts"][0]["delivery"] == "daily digest"
    by_article = api.post(
        "/subscriptions/preview", headers=alice, json={"query": "missile", "realert": "article", "mode": "instant"}
    ).json()
    assert by_article["alerts"] == 3
    assert api.post("/subscriptions/preview", headers=bob, json={"subscription_id": saved["id"]}).status_code == 404


def test_alert_history_shows_only_the_owners_alerts_and_filters_failures(api, alice, bob, store):
    for owner, status in (("alice", "delivered"), ("alice", "failed"), ("bob", "delivered")):
        store.record_alert(
            {
                "id": f"{owner}-{status}",
                "at": datetime.now(UTC).isoformat(),
                "owner": owner,
                "subscription": "s",
                "status": status,
                "channel": "webhook",
                "error": "HTTP 503" if status == "failed" else None,
            }
        )
    assert {entry["id"] for entry in api.get("/alerts", headers=alice).json()} == {"alice-delivered", "alice-failed"}
    (failed,) = api.get("/alerts", headers=alice, params={"status": "failed"}).json()
    assert failed["error"] == "HTTP 503"
    assert [entry["id"] for entry in api.get("/alerts", headers=bob).json()] == ["bob-delivered"]


def test_the_status_filter_comes_before_the_limit(api, alice, store):
    base = datetime.now(UTC)
    for number in range(8):
        status = "failed" if number < 3 else "delivered"  # the failures are the oldest
        at = (base - timedelta(minutes=10 - number)).isoformat()
        store.record_alert({"id": f"a{number}", "at": at, "owner": "alice", "subscription": "s", "status": status})
    failed = api.get("/alerts", headers=alice, params={"status": "failed", "limit": 3}).json()
    assert sorted(entry["id"] for entry in failed) == ["a0", "a1", "a2"]


def test_the_openapi_document_is_published(api):
    document = api.get("/openapi.json").json()
    assert {"/subscriptions", "/subscriptions/{subscription_id}", "/subscriptions/preview", "/alerts"} <= set(
        document["paths"]
    )


def test_pushed_articles_are_handed_to_the_fetcher_and_their_ids_returned(api, alice, pushed):
    one = {"url": "https://desk.example/a?utm_source=x", "title": "Missile test", "text": "A missile was fired."}
    response = api.post("/articles", headers=alice, json=one)
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 1 and len(body["ids"]) == 1
    ((article,),) = pushed()
    assert (
        article.id == body["ids"][0]
        and article.canonical_url == "https://desk.example/a"
        and article.source == "push:alice"
    )
    many = [{"title": f"Item {n}", "text": f"Body {n}."} for n in range(3)]
    assert api.post("/articles", headers=alice, json=many).json()["accepted"] == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"title": 5, "text": "x"}, "field 'title' must be a string"),
        ({"url": "https://desk.example/b"}, "has no 'text', 'html' or 'title'"),
        ([{"title": "ok", "text": "ok"}, "not an object"], "article 2 is a JSON str"),
        ([], "no articles"),
        ({"title": "x", "text": "y", "bogus": 1}, "unknown field 'bogus'"),
        ({"title": "x", "text": "y", "url": "notaurl"}, "url 'notaurl' is not an http(s) URL"),
        ({"title": "x", "text": "y", "published": "yesterday-ish"}, "published 'yesterday-ish' is not a date"),
    ],
)
def test_bad_pushes_are_refused_whole_with_the_reason(api, alice, pushed, body, message):
    response = api.post("/articles", headers=alice, json=body)
    assert response.status_code == 422 and message in response.text
    assert pushed() == []


def test_every_problem_of_a_pushed_article_is_named(api, alice, pushed):
    body = {"url": "notaurl", "published": "yesterday-ish", "bogus": 1, "title": "x"}
    response = api.post("/articles", headers=alice, json=body)
    assert response.status_code == 422
    text = response.text
    assert "unknown field 'bogus'" in text and "'notaurl' is not" in text and "'yesterday-ish' is not" in text
    assert pushed() == []


def test_a_push_cannot_replace_an_article_of_another_token_or_source(api, alice, bob, pushed, store, redis_client):
    original = {"url": "https://desk.example/launch", "title": "Missile test", "text": "A missile was fired."}
    assert api.post("/articles", headers=alice, json=original).status_code == 202
    hijack = {**original, "text": "Nothing happened at all.", "source": "push:alice"}
    refused = api.post("/articles", headers=bob, json=[{"title": "Fine", "text": "Fine."}, hijack])
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["status"] == 409 and error["problems"] == [
        "article 2 (https://desk.example/launch) belongs to another source and cannot be replaced by a push"
    ]
    # An update from the same token is still an update.
    assert api.post("/articles", headers=alice, json={**original, "text": "Two missiles."}).status_code == 202
    assert [[a.text for a in delivery] for delivery in pushed()] == [["A missile was fired."], ["Two missiles."]]
    # Bob's refused batch claimed nothing: his other article is his to push again.
    assert api.post("/articles", headers=bob, json={"title": "Fine", "text": "Fine."}).status_code == 202


def test_a_push_cannot_replace_a_stored_article_from_a_feed(api, alice, bob, pushed, store, redis_client):
    from_feed = make_article("Missile test", "A missile was fired.", url="https://wire.example/1")
    from_feed.origin = "https://wire.example/feed.rss"
    from_alice = make_article("Sanctions", "Sanctions were agreed.", url="https://desk.example/2")
    from_alice.origin = "push:alice"  # pushed long ago: its claim in Redis has ended, the store remembers
    store.index([from_feed, from_alice])
    for headers, url in ((alice, "https://wire.example/1"), (bob, "https://desk.example/2")):
        push = api.post("/articles", headers=headers, json={"url": url, "title": "Fake", "text": "Fake."})
        assert push.status_code == 409
    assert pushed() == []
    update = {"url": "https://desk.example/2", "title": "Sanctions", "text": "More sanctions."}
    assert api.post("/articles", headers=alice, json=update).status_code == 202


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"title": "\\ud800", "text": "x"}', "lone surrogate"),
        (b'{"title": "t", "text": "x", "url": "http://desk.example:99999/a"}', "Port out of range"),
        (b'{"title": "t", "text": "x", "url": "http://[::1"}', "Invalid IPv6 URL"),
        (b'{"title": "t", "text": "x", "published": "0001-01-01T00:00:00+05:00"}', "out of range"),
        (b'{"title": "t", "text": "x", "published": "9999-12-31T23:00:00-05:00"}', "out of range"),
    ],
)
def test_a_push_the_readers_cannot_represent_is_a_422_not_a_500(api, alice, pushed, body, message):
    response = api.post("/articles", headers={**alice, "Content-Type": "application/json"}, content=body)
    assert response.status_code == 422 and message in response.json()["error"]["message"]
    assert pushed() == []


@pytest.mark.parametrize(
    "query",
    [
        "a~1.1.1",
        "(" * 1000 + "missile" + ")" * 1000,
        " OR ".join(f"w{n}" for n in range(1000)),
        "published_at:>now-100000y",
    ],
)
def test_a_query_too_large_or_malformed_is_a_422_everywhere(api, alice, query):
    webhook = {"type": "webhook", "url": "https://hooks.example.org/desk"}
    for path, body in (
        ("/subscriptions/preview", {"query": query[:5000]}),
        ("/subscriptions", {"name": "q", "query": query[:5000], "channels": [webhook]}),
        ("/subscriptions", {"name": "f", "query": "missile", "filter": query[:5000], "channels": [webhook]}),
    ):
        response = api.post(path, headers=alice, json=body)
        assert response.status_code == 422, (path, response.text[:200])
        assert set(response.json()["error"]) == {"status", "message", "problems"}


def test_a_filter_of_twenty_thousand_terms_is_refused(api, alice):
    webhook = {"type": "webhook", "url": "https://hooks.example.org/desk"}
    huge = " OR ".join(f"w{n}" for n in range(20_000))
    body = {"name": "f", "query": "missile", "filter": huge, "channels": [webhook]}
    assert api.post("/subscriptions", headers=alice, json=body).status_code == 422


def test_pushing_needs_a_token(api):
    assert api.post("/articles", json={"title": "x", "text": "y"}).status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("get", "/subscriptions/nope", None, 404),
        ("post", "/subscriptions", {"name": "x"}, 422),
        ("post", "/subscriptions", {"name": "x", "query": "nosuchfield:y", "channels": [WEBHOOK]}, 422),
        ("post", "/articles", {"title": "x", "bogus": 1}, 422),
        ("get", "/alerts?status=nonsense", None, 422),
    ],
)
def test_every_refusal_has_one_shape(api, alice, method, path, body, status):
    response = getattr(api, method)(path, headers=alice, **({"json": body} if body is not None else {}))
    assert response.status_code == status
    error = response.json()["error"]
    assert error["status"] == status and error["message"] and isinstance(error["problems"], list)


def test_a_missing_token_is_refused_in_the_same_shape(api):
    response = api.get("/subscriptions")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["message"] == "a valid bearer token is required"
