"""Raising and delivering alerts on real parts: Redis (outbox, digests), a real HTTP
receiver, a real SMTP server (aiosmtpd), and the SQLite store for the alert history."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from shared import redis_keys
from shared.alerting.delivery import AlertSender
from shared.alerting.dispatch import Dispatcher
from shared.alerting.history import cancel_deliveries
from shared.alerting.matching import alert_payload
from shared.alerting.outbox import LEASE_SECONDS, Outbox
from shared.alerting.subscriptions import Channel, SubscriptionSpec, delete_subscription, save_subscription
from shared.store.sqlite import SqliteStore
from tests.factories import make_article


@pytest.fixture
def history(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "store.sqlite3")


def subscribe(redis_client, channels: list[Channel], **options: Any):
    spec = SubscriptionSpec(name=options.pop("name", "launches"), query="missile", channels=channels, **options)
    return save_subscription(redis_client, "desk", spec)


def alert_for(subscription, title: str = "Missile launched", story: str = "story-1", article_id: str | None = None):
    article = make_article(
        title, f"{title}. A missile flew 600 kilometres.", url=f"https://example.org/{article_id or title}"
    )
    article.cluster_id = story
    return alert_payload(subscription, article, ["missil"], story_size=1)


def deliver_all(alerter: AlertSender, now: float | None = None, rounds: int = 20) -> None:
    for _ in range(rounds):
        if not alerter.tick(now):
            return


def test_a_webhook_alert_is_signed_over_timestamp_and_body(redis_client, settings, history, receiver):
    subscription = subscribe(redis_client, [Channel(type="webhook", url=receiver.url)])
    assert Dispatcher(redis_client).raise_alert(subscription, alert_for(subscription))
    deliver_all(AlertSender(settings, redis_client, history))
    ((headers, body),) = receiver.requests
    secret = subscription.channels[0].secret.encode()
    expected = hmac.new(secret, headers["x-wirewatch-timestamp"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["x-wirewatch-signature"] == f"sha256={expected}"
    assert abs(time.time() - int(headers["x-wirewatch-timestamp"])) < 60
    assert len(headers["x-wirewatch-alert-id"]) == 32
    sent = json.loads(body)
    assert sent["subscription"]["name"] == "launches" and sent["matched_terms"] == ["missil"]
    assert "**Missile**" in sent["snippet"]
    (entry,) = history.alert_history()
    assert (entry["status"], entry["channel"], entry["owner"]) == ("delivered", "webhook", "desk")


def test_an_idle_alerter_is_woken_by_an_alert_queued_due_now(redis_client, settings, history, receiver):
    subscription = subscribe(redis_client, [Channel(type="webhook", url=receiver.url)])
    outbox = Outbox(redis_client)
    outbox.wait(0.01)  # nothing queued yet: the wait runs out
    queued = threading.Timer(0.3, Dispatcher(redis_client).raise_alert, (subscription, alert_for(subscription)))
    started = time.monotonic()
    queued.start()
    outbox.wait(60)
    waited = time.monotonic() - started
    queued.join()
    assert 0.2 < waited < 30, "woken by the alert, not by the end of the wait"
    deliver_all(AlertSender(settings, redis_client, history))
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("kind", ["webhook", "slack"])
def test_a_hook_on_an_internal_address_is_refused_and_never_called(redis_client, settings, history, receiver, kind):
    subscription = subscribe(redis_client, [Channel(type=kind, url=receiver.url)])
    assert Dispatcher(redis_client).raise_alert(subscription, alert_for(subscription))

    deliver_all(AlertSender(settings.model_copy(update={"url_allow": None}), redis_client, history))

    assert receiver.attempts == 0
    (entry,) = history.alert_history()
    assert entry["status"] == "failed" and "loopback address" in entry["error"]


def test_one_alert_per_story_however_many_articles_it_has(redis_client, settings, history, receiver):
    subscription = subscribe(redis_client, [Channel(type="webhook", url=receiver.url)])
    dispatcher = Dispatcher(redis_client)
    assert dispatcher.raise_alert(subscription, alert_for(subscription, "Missile launched", "story-1"))
    assert not dispatcher.raise_alert(subscription, alert_for(subscription, "Missile fired, say officials", "story-1"))
    assert dispatcher.raise_alert(subscription, alert_for(subscription, "Second missile test", "story-2"))
    deliver_all(AlertSender(settings, redis_client, history))
    assert sorted(alert["article"]["title"] for alert in receiver.received) == [
        "Missile launched",
        "Second missile test",
    ]


def test_realert_per_article_sends_each_article(redis_client, settings, history, receiver):
    subscription = subscribe(redis_client, [Channel(type="webhook", url=receiver.url)], realert="article")
    dispatcher = Dispatcher(redis_client)
    assert dispatcher.raise_alert(subscription, alert_for(subscription, "Missile launched", "story-1"))
    assert dispatcher.raise_alert(subscription, alert_for(subscription, "Missile fired, say officials", "story-1"))
    deliver_all(AlertSender(settings, redis_client, history))
    assert len(receiver.received) == 2


@pytest.fixture
def smtp() -> Iterator[dict[str, Any]]:
    """A real SMTP server on a free local port, keeping what it receives."""
    received: dict[str, Any] = {"messages": []}

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
            received["messages"].append((envelope.rcpt_tos, envelope.content))
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    received["port"] = port
    yield received
    controller.stop()


def test_an_email_alert_has_a_plain_and_an_html_part(redis_client, settings, history, smtp):
    settings = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": smtp["port"], "smtp_from": "alerts@desk.example"}
    )
    subscription = subscribe(redis_client, [Channel(type="email", to=["analyst@desk.example"])])
    Dispatcher(redis_client).raise_alert(subscription, alert_for(subscription, "Missile launched over the sea"))
    deliver_all(AlertSender(settings, redis_client, history))
    ((recipients, content),) = smtp["messages"]
    assert recipients == ["analyst@desk.example"]
    message = message_from_bytes(content)
    assert message["Subject"] == "[wirewatch] launches: Missile launched over the sea"
    assert message["From"] == "alerts@desk.example"
    parts = {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in message.walk()
        if not part.is_multipart()
    }
    assert "Missile launched over the sea" in parts["text/plain"]
    assert '<a href="https://example.org/Missile launched over the sea">' in parts["text/html"]


def test_email_without_an_smtp_server_fails_with_the_reason(redis_client, settings, history):
    subscription = subscribe(redis_client, [Channel(type="email", to=["analyst@desk.example"])])
    Dispatcher(redis_client).raise_alert(subscription, alert_for(subscription))
    deliver_all(AlertSender(settings, redis_client, history))
    (entry,) = history.alert_history()
    assert entry["status"] == "failed" and "WIREWATCH_SMTP_HOST" in entry["error"]


def test_slack_and_stream_channels(redis_client, settings, history, receiver):
    subscription = subscribe(
        redis_client, [Channel(type="slack", url=receiver.url), Channel(type="stream", stream="desk-alerts")]
    )
    Dispatcher(redis_client).raise_alert(subscription, alert_for(subscription, "Missile launched"))
    deliver_all(AlertSender(settings, redis_client, history))
    (slack,) = receiver.received
    assert set(slack) == {"text"} and "Missile launched" in slack["text"]
    ((_, entries),) = redis_client.xread({"ww-alerts:desk:desk-alerts": "0"})
    assert json.loads(entries[0][1][b"alert"])["article"]["title"] == "Missile launched"


def test_a_stream_channel_writes_only_into_its_owners_namespace(redis_client, settings, history):
    # Named after the bulk indexer's own stream, and after another owner's stream.
    for owner, name in (("desk", "ww:index-stream"), ("desk", "shared"), ("night:desk", "x"), ("night", "desk:x")):
        spec = SubscriptionSpec(name=f"{owner}-{name}", query="missile", channels=[Channel(type="stream", stream=name)])
        subscription = save_subscription(redis_client, owner, spec)
        Dispatcher(redis_client).raise_alert(subscription, alert_for(subscription))
    deliver_all(AlertSender(settings, redis_client, history))
    assert not redis_client.exists(redis_keys.INDEX_STREAM, "shared")
    streams = sorted(key.decode() for key in redis_client.scan_iter("ww-alerts:*"))
    assert streams == [
        "ww-alerts:desk:shared",
        "ww-alerts:desk:ww:index-stream",
        "ww-alerts:night%3Adesk:x",
        "ww-alerts:night:desk:x",
    ]
    assert all(redis_client.xlen(stream) == 1 for stream in streams)


@pytest.mark.parametrize("name", ["", "a b", "x" * 101, "alerts\n", "ünïcode"])
def test_a_stream_name_outside_the_plain_alphabet_is_refused(name):
    with pytest.raises(ValueError, match="stream"):
        Channel(type="stream", stream=name)


def test_an_hourly_digest_groups_its_alerts_by_story(redis_client, settings, history, receiver):
    subscription = subscribe(redis_client, [Channel(type="webhook", url=receiver.url)], mode="hourly")
    dispatcher = Dispatcher(redis_client)
    for title, story in (("Missile launched", "s1"), ("Missile fired", "s1"), ("Missile test two", "s2")):
        dispatcher.raise_alert(subscription, alert_for(subscription, title, story, article_id=title))
    alerter = AlertSender(settings, redis_client, history)
    deliver_all(alerter)
    assert receiver.received == []  # nothing instant
    deliver_all(alerter, now=time.time() + 3601)
    (digest,) = receiver.received
    assert digest["digest"]["alerts"] == 2  # the second article of story s1 was the same alert
    assert [story["story"] for story in digest["digest"]["stories"]] == ["s1", "s2"]
    assert redis_client.zcard(redis_keys.DIGESTS_DUE) == 0


def test_alerts_past_the_hourly_cap_wait_for_the_digest(redis_client, settings, history, receiver):
    subscription = subscribe(redis_client, [Channel(type="webhook", url=receiver.url)], max_per_hour=1)
    dispatcher = Dispatcher(redis_client)
    for number in range(3):
        assert dispatcher.raise_alert(subscription, alert_for(subscription, f"Missile {number}", f"s{number}"))
    alerter = AlertSender(settings, redis_client, history)
    deliver_all(alerter)
    assert [alert["article"]["title"] for alert in receiver.received] == ["Missile 0"]
    deliver_all(alerter, now=time.time() + 3601)
    assert receiver.received[1]["digest"]["alerts"] == 2


def test_a_receiver_that_stays_down_is_given_up_after_the_retry_window_and_kept(
    redis_client, settings, history, receiver
):
    receiver.fail_first = 10_000
    settings = settings.model_copy(update={"alert_retry_hours": 0.0005, "alert_retry_seconds": 0.05})  # 1.8 s
    subscription = subscribe(redis_client, [Channel(type="webhook", url=receiver.url)])
    Dispatcher(redis_client).raise_alert(subscription, alert_for(subscription))
    alerter = AlertSender(settings, redis_client, history)
    deadline = time.time() + 20
    while time.time() < deadline and not [e for e in history.alert_history() if e["status"] == "failed"]:
        alerter.tick()
        time.sleep(0.05)
    (entry,) = history.alert_history()
    assert entry["status"] == "failed" and "gave up" in entry["error"] and entry["attempts"] >= 2
    assert receiver.attempts == entry["attempts"]


def test_a_client_error_is_not_retried(redis_client, settings, history, receiver):
    subscription = subscribe(redis_client, [Channel(type="webhook", url=receiver.url.replace("/hook", "/missing"))])
    receiver.status_for_path = {"/missing": 404}
    Dispatcher(redis_client).raise_alert(subscription, alert_for(subscription))
    deliver_all(AlertSender(settings, redis_client, history))
    (entry,) = history.alert_history()
    assert entry["status"] == "failed" and entry["attempts"] == 1 and entry["error"] == "HTTP 404 Not Found"
    assert "db_password" not in json.dumps(Outbox(redis_client).get(entry["id"]))  # the reply is never kept


def test_removing_a_subscription_cancels_what_it_still_had_to_send(redis_client, settings, history, receiver):
    receiver.fail_first = 1_000  # the receiver is down: the alert waits to be retried
    subscription = subscribe(redis_client, [Channel(type="webhook", url=receiver.url)])
    Dispatcher(redis_client).raise_alert(subscription, alert_for(subscription))
    deliver_all(AlertSender(settings, redis_client, history), rounds=1)
    assert history.alert_history()[0]["status"] == "retrying"

    delete_subscription(redis_client, "desk", subscription.id)
    assert cancel_deliveries(redis_client, history, subscription.id, "subscription removed") == 1

    receiver.fail_first = 0
    deliver_all(AlertSender(settings, redis_client, history), now=time.time() + 3600)
    assert receiver.received == []
    (entry,) = history.alert_history()
    assert (entry["status"], entry["error"]) == ("cancelled", "subscription removed")


def test_an_alert_of_a_paused_subscription_is_cancelled_when_its_turn_comes(redis_client, settings, history, receiver):
    subscription = subscribe(redis_client, [Channel(type="webhook", url=receiver.url)])
    Dispatcher(redis_client).raise_alert(subscription, alert_for(subscription))
    spec = SubscriptionSpec.model_validate(subscription.model_dump(exclude={"id", "owner", "created_at", "updated_at"}))
    save_subscription(redis_client, "desk", spec.model_copy(update={"active": False}), subscription.id)

    deliver_all(AlertSender(settings, redis_client, history))

    assert receiver.attempts == 0
    (entry,) = history.alert_history(status="cancelled")
    assert entry["error"] == "subscription paused"


def test_an_alert_taken_by_a_deliverer_that_died_is_delivered_by_another(redis_client, settings, history, receiver):
    subscription = subscribe(redis_client, [Channel(type="webhook", url=receiver.url)])
    Dispatcher(redis_client).raise_alert(subscription, alert_for(subscription))
    assert len(Outbox(redis_client).claim(10)) == 1  # taken, then its process died
    alerter = AlertSender(settings, redis_client, history)
    deliver_all(alerter)
    assert receiver.received == []  # still leased
    deliver_all(alerter, now=time.time() + LEASE_SECONDS + 1)
    assert len(receiver.received) == 1


@pytest.mark.parametrize(("realert", "expected"), [("story", 1), ("story-and-update", 2)])
def test_an_update_alerts_again_once_only_when_asked(redis_client, settings, history, receiver, realert, expected):
    subscription = subscribe(redis_client, [Channel(type="webhook", url=receiver.url)], realert=realert)
    dispatcher = Dispatcher(redis_client)
    first = alert_for(subscription, "Missile launched", "story-1", article_id="a1")
    dispatcher.raise_alert(subscription, first)
    for version in (2, 3):
        update = json.loads(json.dumps(first))
        update["article"]["version"] = version
        dispatcher.raise_alert(subscription, update)
    deliver_all(AlertSender(settings, redis_client, history))
    assert len(receiver.received) == expected


def launch_on(subscription, day: str, title: str, story: str = "story-1"):
    payload = alert_for(subscription, title, story)
    payload["article"]["published_at"] = f"{day}T06:00:00+00:00"
    return payload


@pytest.mark.parametrize(("window", "expected"), [(12.0, 3), (0.0, 1)])
def test_a_new_event_in_an_old_story_alerts_again_after_the_window(redis_client, window, expected):
    subscription = subscribe(
        redis_client, [Channel(type="stream", stream="ww-test:alerts")], realert_window_hours=window
    )
    dispatcher = Dispatcher(redis_client)
    raised = [
        dispatcher.raise_alert(subscription, launch_on(subscription, day, title))
        for day, title in (
            ("2026-11-30", "Missile launched"),
            ("2026-11-30", "Missile launch confirmed by Tokyo"),  # the same event, written up again
            ("2026-12-01", "ICBM launched"),
            ("2026-12-03", "Two short-range missiles launched"),  # joined the same story
        )
    ]
    assert sum(raised) == expected and raised[1] is False


def test_alerts_can_be_grouped_by_a_field_instead_of_the_story(redis_client):
    subscription = subscribe(redis_client, [Channel(type="stream", stream="ww-test:alerts")], realert_field="source")
    dispatcher = Dispatcher(redis_client)
    first = launch_on(subscription, "2026-11-30", "Missile launched", story="s1")
    first["article"]["source"] = "Wire A"
    same_source = launch_on(subscription, "2026-11-30", "Sanctions agreed", story="s2")
    same_source["article"]["source"] = "Wire A"
    other_source = launch_on(subscription, "2026-11-30", "Missile launched", story="s1")
    other_source["article"]["source"] = "Wire B"
    assert [dispatcher.raise_alert(subscription, p) for p in (first, same_source, other_source)] == [True, False, True]


def test_an_alert_is_queued_once_however_often_and_however_concurrently_it_is_raised(redis_client):
    channels = [Channel(type="stream", stream="ww-test:a"), Channel(type="stream", stream="ww-test:b")]
    subscription = subscribe(redis_client, channels, max_per_hour=100)
    payload = alert_for(subscription)
    with ThreadPoolExecutor(8) as pool:
        raised = list(pool.map(lambda _: Dispatcher(redis_client).raise_alert(subscription, payload), range(16)))
    assert raised.count(True) == 1
    outbox = Outbox(redis_client)
    assert redis_client.hlen(redis_keys.OUTBOX) == 2 == redis_client.zcard(redis_keys.OUTBOX_DUE)
    assert len(outbox.claim(10)) == 2  # every queued entry is due and can be claimed


def test_a_crash_before_the_alert_is_written_loses_nothing_on_redelivery(redis_client):
    # The rate count is the one write before the alert's script; a worker dying after it and
    # before the script leaves nothing half-queued, and the redelivered task queues the alert.
    subscription = subscribe(redis_client, [Channel(type="stream", stream="ww-test:a")], max_per_hour=5)
    dispatcher = Dispatcher(redis_client)
    dispatcher._over_rate(subscription, time.time())  # then the worker dies
    assert redis_client.hlen(redis_keys.OUTBOX) == 0
    assert dispatcher.raise_alert(subscription, alert_for(subscription))
    assert not dispatcher.raise_alert(subscription, alert_for(subscription))  # delivered twice by the queue
    assert redis_client.hlen(redis_keys.OUTBOX) == 1 == redis_client.zcard(redis_keys.OUTBOX_DUE)


def test_alerts_are_raised_after_redis_lost_its_scripts(redis_client):
    subscription = subscribe(redis_client, [Channel(type="stream", stream="ww-test:a")], realert="article")
    dispatcher = Dispatcher(redis_client)
    first, second = alert_for(subscription, "Missile one"), alert_for(subscription, "Missile two")
    assert dispatcher.raise_alerts([(subscription, first)]) == [True]
    redis_client.script_flush()  # as after a restart
    assert dispatcher.would_raise([(subscription, first), (subscription, second)]) == [False, True]
    redis_client.script_flush()
    assert dispatcher.raise_alerts([(subscription, first), (subscription, second)]) == [False, True]
    assert redis_client.hlen(redis_keys.OUTBOX) == 2


def test_the_alerter_loop_survives_an_unexpected_error_and_carries_on(redis_client, settings, history, receiver):
    import threading

    from services.alerter.service import run_alerter

    class FailingOnce(AlertSender):
        failures = 1

        def tick(self, now: float | None = None) -> int:
            if self.failures:
                self.failures -= 1
                raise RuntimeError("a bug in a channel library")
            return super().tick(now)

    subscription = subscribe(redis_client, [Channel(type="webhook", url=receiver.url)])
    Dispatcher(redis_client).raise_alert(subscription, alert_for(subscription))
    stop = threading.Event()
    loop = threading.Thread(target=run_alerter, args=(FailingOnce(settings, redis_client, history), stop))
    loop.start()
    received = receiver.wait_for(1, timeout=15)
    stop.set()
    loop.join(timeout=10)
    assert len(received) == 1 and not loop.is_alive()
