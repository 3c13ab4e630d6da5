"""The web UI over HTTP (FastAPI's test client, the real Redis and SQLite store): signing in,
cookie flags, CSRF, owner isolation, escaping, the live query check and backtest, the alert
history, the operators' pages and Kibana links. The browser test is test_ui_browser.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from shared.alerting.outbox import Outbox
from shared.alerting.subscriptions import list_subscriptions, save_subscription, webhook_subscription
from shared.deadletters import quarantine
from shared.feeds.registry import Feed, FeedRegistry
from shared.store.sqlite import SqliteStore
from shared.tokens import create_token
from tests.factories import make_article

HOOK = "https://hooks.example.org/desk"
UI_ROOT = Path(__file__).parents[1] / "services" / "api" / "ui"


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "store.sqlite3")


@pytest.fixture
def app(settings, redis_client, store):
    return create_app(settings, store=store, client=redis_client)


def browser(app) -> TestClient:
    return TestClient(app, follow_redirects=False)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(client: TestClient, token: str):
    page = client.get("/ui/sign-in")
    return client.post("/ui/sign-in", data={"csrf": csrf_of(page.text), "token": token})


@pytest.fixture
def alice(app, redis_client) -> TestClient:
    client = browser(app)
    assert sign_in(client, create_token(redis_client, "alice")).status_code == 303
    return client


@pytest.fixture
def bob(app, redis_client) -> TestClient:
    client = browser(app)
    assert sign_in(client, create_token(redis_client, "bob")).status_code == 303
    return client


def form_token(client: TestClient, path: str = "/ui/subscriptions") -> str:
    return csrf_of(client.get(path).text)


def new_subscription(client: TestClient, **fields: str):
    data = {"csrf": form_token(client), "name": "launches", "query": "missile", "webhooks": HOOK, **fields}
    return client.post("/ui/subscriptions/new", data=data)


def test_pages_send_a_visitor_without_a_session_to_sign_in(app):
    client = browser(app)
    for path in ("/ui", "/ui/subscriptions", "/ui/alerts", "/ui/feeds", "/ui/subscriptions/new"):
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] in ("/ui/sign-in", "/ui/subscriptions")
    client.cookies.set("wirewatch_session", "ww_not-a-token", path="/ui")
    assert client.get("/ui/subscriptions").headers["location"] == "/ui/sign-in"


def test_signing_in_keeps_the_token_in_an_http_only_strict_cookie_for_the_ui_alone(app, redis_client):
    client = browser(app)
    token = create_token(redis_client, "alice")
    signed_in = sign_in(client, token)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/ui/subscriptions"
    (cookie,) = [value for value in signed_in.headers.get_list("set-cookie") if value.startswith("wirewatch_session=")]
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert f"wirewatch_session={token}".lower() in flags
    assert {"httponly", "samesite=strict", "path=/ui"} <= flags
    assert "secure" not in flags  # plain HTTP here; over HTTPS the cookie is Secure too
    page = client.get("/ui/subscriptions")
    assert page.status_code == 200 and '<span id="owner">alice</span>' in page.text
    assert token not in page.text  # the page never shows the token itself


def test_the_session_cookie_is_secure_over_https(app, redis_client):
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    cookie = sign_in(client, create_token(redis_client, "alice")).headers["set-cookie"]
    assert "secure" in cookie.lower()


def test_a_wrong_token_is_refused_and_starts_no_session(app):
    client = browser(app)
    response = sign_in(client, "ww_not-a-token")
    assert response.status_code == 401 and "That token is not valid." in response.text
    assert "wirewatch_session" not in response.headers.get("set-cookie", "")
    assert client.get("/ui/subscriptions").status_code == 303


def test_signing_in_without_the_forms_nonce_is_refused(app, redis_client):
    client = browser(app)
    token = create_token(redis_client, "alice")
    assert client.post("/ui/sign-in", data={"token": token}).status_code == 403
    client.get("/ui/sign-in")
    assert client.post("/ui/sign-in", data={"token": token, "csrf": "forged"}).status_code == 403
    assert client.get("/ui/subscriptions").status_code == 303


def test_signing_out_ends_the_session(alice):
    response = alice.post("/ui/sign-out", data={"csrf": form_token(alice)})
    assert response.status_code == 303 and response.headers["location"] == "/ui/sign-in"
    assert alice.get("/ui/subscriptions").status_code == 303


def test_every_form_post_without_the_right_csrf_token_is_refused(alice, redis_client):
    assert new_subscription(alice).status_code == 303
    (subscription,) = list_subscriptions(redis_client, "alice")
    paths = [
        "/ui/subscriptions/new",
        f"/ui/subscriptions/{subscription.id}",
        f"/ui/subscriptions/{subscription.id}/pause",
        f"/ui/subscriptions/{subscription.id}/resume",
        f"/ui/subscriptions/{subscription.id}/delete",
        "/ui/preview",
        "/ui/sign-out",
    ]
    form = {"name": "renamed", "query": "sanctions", "webhooks": HOOK}
    for path in paths:
        for token in (None, "0" * 64, csrf_of(alice.get("/ui/sign-in").text)):  # none, forged, the sign-in nonce
            data = form if token is None else {**form, "csrf": token}
            response = alice.post(path, data=data)
            assert response.status_code == 403, (path, token)
            assert "CSRF" in response.text
    assert list_subscriptions(redis_client, "alice") == [subscription]  # nothing changed
    assert alice.get("/ui/subscriptions").status_code == 200  # still signed in


def test_another_owners_token_gives_another_csrf_token(alice, bob):
    assert form_token(alice) != form_token(bob)
    response = alice.post("/ui/subscriptions/new", data={"csrf": form_token(bob), "name": "x", "query": "y"})
    assert response.status_code == 403


def test_create_edit_pause_resume_and_delete_a_subscription(alice, redis_client):
    created = new_subscription(alice, query="missile AND (test OR launch)", mode="hourly", max_per_hour="")
    assert created.status_code == 303
    (saved,) = list_subscriptions(redis_client, "alice")
    assert created.headers["location"].startswith(f"/ui/subscriptions/{saved.id}?saved=1&secrets=")
    assert (saved.query, saved.mode, saved.max_per_hour, saved.active) == (
        "missile AND (test OR launch)",
        "hourly",
        None,
        True,
    )
    assert [channel.url for channel in saved.channels] == [HOOK] and saved.channels[0].secret
    page = alice.get(created.headers["location"])
    assert "Saved" in page.text and saved.channels[0].secret in page.text  # its owner checks signatures with it
    # Shown once, as the JSON API shows it: the same address again, or the page itself, never shows it.
    assert saved.channels[0].secret not in alice.get(created.headers["location"]).text
    assert saved.channels[0].secret not in alice.get(f"/ui/subscriptions/{saved.id}").text

    edit = {
        "csrf": csrf_of(page.text),
        "name": "launches",
        "query": '"missile test"~3',
        "filter": "countries:KP",
        "webhooks": HOOK,
        "emails": "desk@example.org, night@example.org",
        "stream": "alerts",
        "mode": "instant",
        "realert": "article",
        "realert_field": "",
        "realert_window_hours": "6",
        "max_per_hour": "5",
    }
    assert alice.post(f"/ui/subscriptions/{saved.id}", data=edit).status_code == 303
    (edited,) = list_subscriptions(redis_client, "alice")
    assert (edited.id, edited.query, edited.filter, edited.realert) == (
        saved.id,
        '"missile test"~3',
        "countries:KP",
        "article",
    )
    assert (edited.realert_window_hours, edited.max_per_hour) == (6.0, 5)
    assert [(channel.type, channel.to or channel.stream) for channel in edited.channels[1:]] == [
        ("email", ["desk@example.org", "night@example.org"]),
        ("stream", "alerts"),
    ]
    assert edited.channels[0].secret == saved.channels[0].secret  # kept across an edit
    assert saved.channels[0].secret not in alice.get(f"/ui/subscriptions/{saved.id}").text

    token = form_token(alice)
    assert alice.post(f"/ui/subscriptions/{saved.id}/pause", data={"csrf": token}).status_code == 303
    assert not list_subscriptions(redis_client, "alice")[0].active
    assert "paused" in alice.get("/ui/subscriptions").text
    assert alice.post(f"/ui/subscriptions/{saved.id}/resume", data={"csrf": token}).status_code == 303
    assert list_subscriptions(redis_client, "alice")[0].active
    assert alice.post(f"/ui/subscriptions/{saved.id}/delete", data={"csrf": token}).status_code == 303
    assert list_subscriptions(redis_client, "alice") == []
    assert alice.get(f"/ui/subscriptions/{saved.id}").status_code == 404


def test_pausing_cancels_what_the_subscription_still_had_to_send(alice, redis_client, store):
    assert new_subscription(alice).status_code == 303
    (saved,) = list_subscriptions(redis_client, "alice")
    article = make_article("Missile test", "A missile test.", url="https://example.org/1")
    payload = {
        "subscription": {"id": saved.id, "name": saved.name, "owner": "alice"},
        "article": {"id": article.id, "title": article.title, "url": article.url},
        "matched_terms": ["title:missil"],
    }
    assert Outbox(redis_client).add(f"{saved.id}:{article.id}", payload, saved.channels[0].model_dump())
    assert alice.post(f"/ui/subscriptions/{saved.id}/pause", data={"csrf": form_token(alice)}).status_code == 303
    (record,) = store.alert_history(owner="alice")
    assert (record["status"], record["error"]) == ("cancelled", "subscription paused")


def test_a_form_with_problems_comes_back_with_them_and_what_was_typed(alice, redis_client):
    bad_query = new_subscription(alice, query="missile AND (test")
    assert bad_query.status_code == 422
    assert 'id="query-problem"' in bad_query.text and "missile AND (test" in bad_query.text
    unknown = new_subscription(alice, query="nosuch:field")
    assert unknown.status_code == 422 and "unknown field" in unknown.text
    internal = new_subscription(alice, webhooks="http://10.0.0.7:6379/")
    assert internal.status_code == 422 and "private address" in internal.text
    nowhere = new_subscription(alice, webhooks="")
    assert nowhere.status_code == 422 and "at least one place" in nowhere.text
    assert list_subscriptions(redis_client, "alice") == []
    assert new_subscription(alice).status_code == 303
    taken = new_subscription(alice)
    assert taken.status_code == 422 and "already has a subscription named" in taken.text


def test_another_owners_subscription_is_not_found(alice, bob, redis_client):
    theirs = save_subscription(redis_client, "bob", webhook_subscription("bobs", "sanctions", HOOK))
    token = form_token(alice)
    assert alice.get(f"/ui/subscriptions/{theirs.id}").status_code == 404
    for action in ("", "/pause", "/resume", "/delete"):
        data = {"csrf": token, "name": "taken", "query": "x", "webhooks": HOOK}
        assert alice.post(f"/ui/subscriptions/{theirs.id}{action}", data=data).status_code == 404, action
    assert "bobs" not in alice.get("/ui/subscriptions").text
    assert list_subscriptions(redis_client, "bob") == [theirs]
    assert bob.get(f"/ui/subscriptions/{theirs.id}").status_code == 200


def test_the_query_box_gets_parse_errors_and_the_backtest_as_it_is_typed(alice, store):
    recent = make_article(
        "North Korea fires missile", "North Korea fired a ballistic missile on Monday.", url="https://example.org/1"
    )
    store.index([recent, make_article("Harvest festival", "Farmers celebrated.", url="https://example.org/2")])
    token = form_token(alice, "/ui/subscriptions/new")

    def typed(query: str, **fields: str) -> dict:
        response = alice.post("/ui/preview", data={"csrf": token, "query": query, **fields})
        assert response.status_code == 200
        return response.json()

    half = typed("missile AND (")
    assert set(half["problems"]) == {"query"} and half["html"] == ""
    assert "nosuch" in typed("nosuch:missile")["problems"]["query"]
    assert "filter" in typed("missile", filter="tags:(")["problems"]
    done = typed("missile", days="3")
    assert done["problems"] == {}
    assert "In the last 3 days" in done["html"] and "<strong>1</strong> matching article" in done["html"]
    assert f'href="/ui/articles/{recent.id}"' in done["html"]
    assert "<mark>missile</mark>" in done["html"]  # the matched word, highlighted
    assert "title:missil" in done["html"]
    policy = typed("missile", max_per_hour="0")
    assert "max_per_hour" in policy["problems"]["policy"]


def test_everything_shown_is_escaped(alice, redis_client, store):
    hostile = "<script>alert(1)</script>"
    article = make_article(f"Missile {hostile}", f"A missile **{hostile}** test.", url="https://example.org/x")
    store.index([article])
    assert new_subscription(alice, name=hostile, query='missile OR "<b>"').status_code == 303
    for path in (
        "/ui/subscriptions",
        f"/ui/subscriptions/{list_subscriptions(redis_client, 'alice')[0].id}",
        f"/ui/articles/{article.id}",
    ):
        page = alice.get(path).text
        assert hostile not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path
    preview = alice.post("/ui/preview", data={"csrf": form_token(alice), "query": "missile"}).json()["html"]
    assert hostile not in preview and "&lt;script&gt;" in preview


def test_the_alert_history_shows_the_owners_alerts_with_their_states_and_articles(alice, store):
    article = make_article("Missile test", "A missile test.", url="https://example.org/launch")
    store.index([article])
    outcomes = [
        ("delivered", None),
        ("retrying", "HTTP 503 Service Unavailable"),
        ("failed", "gave up after 48 h: connection refused"),
        ("cancelled", "subscription removed"),
    ]
    for number, (status, error) in enumerate(outcomes):
        store.record_alert(
            {
                "id": f"alert-{number}",
                "at": f"2026-12-01T0{number}:00:00+00:00",
                "subscription": "launches",
                "subscription_id": "s1",
                "owner": "alice",
                "channel": "webhook",
                "query": "missile",
                "article_id": article.id,
                "title": article.title,
                "url": article.url,
                "matched_terms": ["title:missil"],
                "status": status,
                "attempts": number + 1,
                "error": error,
            }
        )
    store.record_alert(
        {
            "id": "theirs",
            "at": "2026-12-01T05:00:00+00:00",
            "owner": "bob",
            "subscription": "bobs-secret",
            "subscription_id": "s2",
            "channel": "webhook",
            "title": "Not for alice",
            "status": "delivered",
            "attempts": 1,
            "error": None,
        }
    )
    page = alice.get("/ui/alerts").text
    assert "Not for alice" not in page and "bobs-secret" not in page
    for status, error in outcomes:
        assert f'<span class="state {status}">{status}</span>' in page
        if error:
            assert error in page
    assert f'href="/ui/articles/{article.id}"' in page and 'href="https://example.org/launch"' in page
    failed = alice.get("/ui/alerts?status=failed").text
    assert "connection refused" in failed and "HTTP 503" not in failed
    shown = alice.get(f"/ui/articles/{article.id}")
    assert shown.status_code == 200 and "A missile test." in shown.text
    assert alice.get("/ui/articles/no-such-article").status_code == 404


def test_feed_health_and_dead_letters_are_for_operators(settings, redis_client, store, alice, monkeypatch):
    FeedRegistry(redis_client).put(Feed(url="https://news.example.org/rss", name="Example news"))
    quarantine(redis_client, stage="read", reason="not valid JSON at line 3", item={"origin": "inbox/broken.json"})
    assert alice.get("/ui/feeds").status_code == 403
    assert alice.get("/ui/dead-letters").status_code == 403
    assert "Feed health" not in alice.get("/ui/subscriptions").text

    operator = browser(
        create_app(settings.model_copy(update={"operators": "ops, alice"}), store=store, client=redis_client)
    )
    assert sign_in(operator, create_token(redis_client, "alice")).status_code == 303
    feeds = operator.get("/ui/feeds")
    assert feeds.status_code == 200 and "Example news" in feeds.text and "not fetched yet" in feeds.text
    letters = operator.get("/ui/dead-letters")
    assert (
        letters.status_code == 200
        and "not valid JSON at line 3" in letters.text
        and "inbox/broken.json" in letters.text
    )


def test_a_subscription_links_into_kibana_discover_when_kibana_is_configured(settings, redis_client, store, alice):
    assert new_subscription(alice, query="missile", filter="countries:KP").status_code == 303
    assert "/app/discover" not in alice.get("/ui/subscriptions").text
    with_kibana = browser(
        create_app(
            settings.model_copy(update={"kibana_url": "https://kibana.example.org/"}), store=store, client=redis_client
        )
    )
    sign_in(with_kibana, create_token(redis_client, "alice"))
    page = with_kibana.get("/ui/subscriptions").text
    link = re.search(r'href="(https://kibana\.example\.org/app/discover[^"]+)"', page)
    assert link, "no Discover link"
    assert "query:%27(missile)%20AND%20(countries:KP)%27" in link.group(1)
    assert "dataViewId:%27wirewatch-articles%27" in link.group(1)


def test_the_pages_load_nothing_from_elsewhere(alice):
    new_subscription(alice)
    for path in ("/ui/subscriptions", "/ui/subscriptions/new", "/ui/alerts", "/ui/sign-in"):
        response = alice.get(path)
        assert "default-src 'self'" in response.headers["content-security-policy"]
        for attribute in re.findall(r'(?:src|href)="([^"]*)"', response.text):
            assert attribute.startswith(("/ui/", "#")), (path, attribute)
    for name in ("ui.css", "ui.js"):
        served = alice.get(f"/ui/static/{name}")
        assert served.status_code == 200 and served.text == (UI_ROOT / "static" / name).read_text("utf-8")
        assert "http" not in served.text and "@import" not in served.text


def test_the_api_loads_the_template_engine_with_its_first_page_not_at_start():
    from tests.test_layout import loaded_by, under

    assert under(loaded_by("from services.api.app import create_app"), "jinja2", "markupsafe") == []
