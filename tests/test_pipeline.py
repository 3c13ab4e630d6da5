"""The whole path on real parts: dropped files → fetcher → Celery chain over Redis → store →
alerts at a real HTTP receiver. Runs once per store (SQLite and Elasticsearch)."""

from __future__ import annotations

import shutil
import time
import uuid
from typing import Any

import pytest

from services.fetcher.service import Fetcher
from shared import runs
from shared.alerting.backtest import backtest
from shared.alerting.subscriptions import save_subscription, webhook_subscription
from shared.deadletters import read_dead_letters
from shared.queue import enqueue_batch
from shared.redis_client import get_redis


def run_inbox_once(settings: Any, timeout: float = 60) -> dict[str, int]:
    client = get_redis(settings)
    run_id = uuid.uuid4().hex
    Fetcher(settings, client, enqueue_batch).run_once(run_id)
    return runs.wait_until_done(client, run_id, timeout)


def history_when(store: Any, condition: Any, timeout: float = 10) -> list[dict[str, Any]]:
    """The alert history once `condition` holds (the alerter writes it just after delivering)."""
    deadline = time.monotonic() + timeout
    while True:
        store.refresh()
        entries = store.alert_history()
        if condition(entries) or time.monotonic() > deadline:
            return entries
        time.sleep(0.05)


def by_title(store: Any) -> dict[str, Any]:
    store.refresh()
    return {article.title: article for article in store.search("*", limit=100)}


def test_dropped_files_become_tagged_deduplicated_searchable_articles(settings, worker, store, inbox_files, receiver):
    client = get_redis(settings)
    for name, query in (
        ("launches", "missile AND (test OR launch)"),
        ("oil", "sanctions AND Pyongyang"),
        ("sanctions-tag", "tags:sanctions"),
    ):
        save_subscription(client, "desk", webhook_subscription(name, query, receiver.url))

    counts = run_inbox_once(settings)

    assert {name: counts[name] for name in runs.OUTCOMES} == {
        "seen": 9,  # seven article files and two feed items
        "indexed": 8,
        "duplicates": 1,  # 03 repeats 01 word for word
        "near_duplicates": 1,  # 02 is 01 with a new headline and a newsletter line
        "updates": 0,
        "rejected": 2,  # broken JSON, empty file
        "alerts": 3,
    }
    articles = by_title(store)
    launch = articles["North Korea test-fires ballistic missile into sea off east coast"]
    assert launch.published_at is not None and launch.published_at.date().isoformat() == "2026-03-14"
    assert {"missile-test", "military"} <= set(launch.tags)
    assert "test-fires" in launch.tag_evidence["missile-test"]
    assert {"KP", "KR", "JP", "US"} <= set(launch.countries)
    assert "Kim Jong Un" in launch.people
    assert "KCNA" in launch.organizations
    assert launch.lang == "en"

    copy = articles["Pyongyang fires ballistic missile off its east coast, Seoul says"]
    assert copy.duplicate_of == launch.id and copy.cluster_id == launch.cluster_id
    assert copy.canonical_url == "https://wire.example.org/asia/2026/03/14/pyongyang-fires-missile"
    assert "newsletter" not in copy.text and any("newsletter" in note for note in copy.notes)

    page = articles["UN panel urges tighter sanctions enforcement on Pyongyang"]
    assert "cookies" not in page.text and "Most read" not in page.text and "gardening" not in page.text
    assert page.url == "https://times.example.com/world/un-panel-sanctions-pyongyang"
    assert "sanctions" in page.tags
    assert "Read more" not in page.text

    football = articles["League sanctions club after crowd trouble at derby"]
    assert "sanctions" not in football.tags

    summit_2022 = articles["Leaders meet in Madrid for alliance summit on Ukraine war"]
    summit_2023 = articles["Alliance leaders end Vilnius summit with pledge of long-term support for Kyiv"]
    assert summit_2022.duplicate_of is None and summit_2023.duplicate_of is None
    assert summit_2022.cluster_id != summit_2023.cluster_id

    feed_titles = {
        "Japan to deploy longer-range missiles on southern islands",
        "Navy holds joint drills with allies in the Yellow Sea",
    }
    assert feed_titles <= set(articles)
    assert articles["Navy holds joint drills with allies in the Yellow Sea"].source == "Example Defence Desk"

    processed = sorted(path.name for path in settings.processed_dir.iterdir())
    assert processed == [
        "01_missile_launch.txt",
        "02_missile_launch_syndicated.json",
        "03_missile_launch_again.txt",
        "04_sanctions_un.html",
        "05_summit_2022.txt",
        "06_summit_2023.txt",
        "07_football_fine.txt",
        "08_feed.rss",
    ]
    rejected = {path.name: path for path in settings.rejected_dir.iterdir()}
    assert set(rejected) == {"09_broken.json", "09_broken.json.reason", "10_empty.txt", "10_empty.txt.reason"}
    assert rejected["09_broken.json.reason"].read_text().startswith("malformed JSON")
    assert rejected["10_empty.txt.reason"].read_text().startswith("empty file")
    assert list(settings.inbox_dir.iterdir()) == []

    alerts = receiver.wait_for(3)
    fired = sorted((alert["subscription"]["name"], alert["article"]["title"]) for alert in alerts)
    assert fired == [
        ("launches", "North Korea test-fires ballistic missile into sea off east coast"),
        ("oil", "UN panel urges tighter sanctions enforcement on Pyongyang"),
        ("sanctions-tag", "UN panel urges tighter sanctions enforcement on Pyongyang"),
    ]
    store.refresh()
    history = store.alert_history()
    assert sorted((entry["subscription"], entry["status"], entry["attempts"]) for entry in history) == [
        ("launches", "delivered", 1),
        ("oil", "delivered", 1),
        ("sanctions-tag", "delivered", 1),
    ]
    launch_alert = next(alert for alert in alerts if alert["subscription"]["name"] == "launches")
    assert set(launch_alert["matched_terms"]) >= {"title:missil", "text:launch"}  # each with its field
    assert launch_alert["article"]["id"] == launch.id


def test_a_second_pass_over_the_same_files_adds_nothing(settings, worker, store, inbox_files):
    run_inbox_once(settings)
    for path in settings.processed_dir.iterdir():
        path.rename(settings.inbox_dir / path.name)
    counts = run_inbox_once(settings)
    assert counts["indexed"] == 0 and counts["duplicates"] == counts["seen"] == 9
    store.refresh()
    assert store.count("*") == 8


def test_alerts_reach_a_receiver_that_was_down_at_first(settings, worker, store, receiver):
    receiver.fail_first = 2
    save_subscription(get_redis(settings), "desk", webhook_subscription("nk", "countries:KP", receiver.url))
    settings.inbox_dir.mkdir(parents=True)
    (settings.inbox_dir / "launch.txt").write_text(
        "North Korea fires missile\n\nNorth Korea fired a short-range missile on Monday, officials in Seoul said.\n"
    )
    counts = run_inbox_once(settings)
    assert counts["alerts"] == 1
    alerts = receiver.wait_for(1)
    assert [alert["subscription"]["name"] for alert in alerts] == ["nk"]
    assert receiver.attempts == 3
    (entry,) = history_when(store, lambda entries: entries and entries[0]["status"] == "delivered")
    assert (entry["subscription"], entry["status"], entry["attempts"]) == ("nk", "delivered", 3)


def drop_poisoned_pair(settings):
    settings.inbox_dir.mkdir(parents=True)
    (settings.inbox_dir / "good.txt").write_text("Fine headline\n\nA perfectly ordinary article about diplomacy.\n")
    (settings.inbox_dir / "bad.txt").write_text("Poisoned headline\n\nThis article carries poison for the step.\n")


def test_an_article_a_required_step_fails_on_is_quarantined_and_the_batch_goes_on(settings, worker, store, monkeypatch):
    import shared.pipeline.steps as steps

    real_clean, real_clean_batch = steps.clean, steps.clean_batch

    def clean_failing_on_poison(article, rules, learned=None):
        if "poison" in article.text:
            raise ValueError("cleaner exploded")
        return real_clean(article, rules, learned)

    def clean_batch_failing_on_poison(articles, rules, learned=None):
        # The batch's cleaning fails as a whole; each article is then cleaned alone.
        if any("poison" in article.text for article in articles):
            raise ValueError("cleaner exploded")
        return real_clean_batch(articles, rules, learned)

    monkeypatch.setattr(steps, "clean", clean_failing_on_poison)
    monkeypatch.setattr(steps, "clean_batch", clean_batch_failing_on_poison)
    drop_poisoned_pair(settings)
    counts = run_inbox_once(settings)
    assert counts["indexed"] == 1 and counts["rejected"] == 1
    letters = read_dead_letters(get_redis(settings))
    assert [(letter["stage"], letter["item"]["title"]) for letter in letters] == [("clean", "Poisoned headline")]
    assert "cleaner exploded" in letters[0]["reason"]
    store.refresh()
    assert [article.title for article in store.search("*")] == ["Fine headline"]

    # Once the step is mended, the same file dropped again is stored: its dedupe claim was
    # released when it was quarantined, so it is not taken for a duplicate.
    monkeypatch.setattr(steps, "clean", real_clean)
    shutil.copy(settings.processed_dir / "bad.txt", settings.inbox_dir / "bad.txt")
    again = run_inbox_once(settings)
    assert (again["indexed"], again["duplicates"]) == (1, 0)
    assert sorted(by_title(store)) == ["Fine headline", "Poisoned headline"]


def test_an_article_an_enrichment_fails_on_is_stored_without_it(settings, worker, store, monkeypatch):
    import shared.pipeline.steps as steps

    real_tag = steps.tag

    def tag_failing_on_poison(article, taxonomy):
        if "poison" in article.text:
            raise ValueError("taxonomy exploded")
        return real_tag(article, taxonomy)

    monkeypatch.setattr(steps, "tag", tag_failing_on_poison)
    drop_poisoned_pair(settings)
    counts = run_inbox_once(settings)
    assert (counts["indexed"], counts["rejected"]) == (2, 0)
    assert read_dead_letters(get_redis(settings)) == []
    stored = by_title(store)["Poisoned headline"]
    assert stored.tags == [] and any("tag: failed (ValueError: taxonomy exploded)" in note for note in stored.notes)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_a_lone_article_is_not_held_back_for_a_full_batch(settings, worker, store):
    settings.inbox_dir.mkdir(parents=True)
    (settings.inbox_dir / "one.txt").write_text("Only one\n\nThe batch size is a hundred but this article is alone.\n")
    counts = run_inbox_once(settings, timeout=15)
    assert counts["seen"] == counts["indexed"] == 1


def test_a_story_from_three_outlets_alerts_each_subscriber_once_with_a_valid_signature(
    settings, worker, store, receiver
):
    import hashlib
    import hmac
    import json
    import shutil

    from tests.conftest import FIXTURES

    client = get_redis(settings)
    launches = save_subscription(client, "desk", webhook_subscription("launches", "missile AND launch", receiver.url))
    korea = save_subscription(client, "asia-desk", webhook_subscription("korea", "countries:KP", receiver.url))
    settings.inbox_dir.mkdir(parents=True)
    original = (FIXTURES / "inbox" / "01_missile_launch.txt").read_text("utf-8")
    body = original.split("\n\n", 2)[2]
    shutil.copy(FIXTURES / "inbox" / "01_missile_launch.txt", settings.inbox_dir / "outlet_a.txt")
    for outlet, headline, edit in (
        ("Wire B", "Seoul says North Korea fired ballistic missile", ("Saturday morning", "Saturday")),
        ("Daily C", "North Korean missile lands outside Japan's waters", ("620 kilometres", "about 620 km")),
    ):
        copy = {
            "url": f"https://{outlet.split()[1].lower()}.example.com/nk-missile",
            "title": headline,
            "source": outlet,
            "text": body.replace(*edit),
        }
        (settings.inbox_dir / f"{outlet.replace(' ', '_')}.json").write_text(json.dumps(copy), "utf-8")

    counts = run_inbox_once(settings)
    assert (counts["indexed"], counts["near_duplicates"], counts["alerts"]) == (3, 2, 2)
    alerts = receiver.wait_for(2)
    assert sorted(alert["subscription"]["name"] for alert in alerts) == ["korea", "launches"]
    secrets = {launches.id: launches.channels[0].secret, korea.id: korea.channels[0].secret}
    for headers, raw in receiver.requests:
        sent = json.loads(raw)
        key = secrets[sent["subscription"]["id"]].encode()
        signed = hmac.new(key, headers["x-wirewatch-timestamp"].encode() + b"." + raw, hashlib.sha256).hexdigest()
        assert headers["x-wirewatch-signature"] == f"sha256={signed}"
        assert sent["story"]["articles"] >= 1 and sent["snippet"]


def test_a_crash_between_queueing_and_moving_a_file_loses_and_doubles_nothing(settings, worker, store, inbox_files):
    client = get_redis(settings)

    def enqueue_then_crash(articles, run_id):
        enqueue_batch(articles, run_id)
        raise SystemExit("killed after queueing, before moving the files")

    with pytest.raises(SystemExit):
        Fetcher(settings, client, enqueue_then_crash).run_once(uuid.uuid4().hex)
    assert len(list(settings.inbox_dir.iterdir())) == 8  # nothing moved: every readable file is still there
    first = by_title(store)
    deadline = time.monotonic() + 30
    while len(first) < 8 and time.monotonic() < deadline:  # the queued batch still goes through
        time.sleep(0.1)
        first = by_title(store)
    counts = run_inbox_once(settings)  # the restarted fetcher reads them again
    assert counts["indexed"] == 0 and counts["duplicates"] == 9
    assert sorted(path.name for path in settings.processed_dir.iterdir())[0] == "01_missile_launch.txt"
    assert len(by_title(store)) == 8


LAUNCHES = (
    (
        "2026-11-30",
        "North Korea fires ballistic missile into the sea",
        "North Korea fired a ballistic missile into the sea off its east coast on Monday, the South Korean "
        "military said. The missile flew about 500 kilometres. Officials in Seoul and Tokyo condemned the "
        "launch and said they were studying the flight data with Washington.",
    ),
    (
        "2026-12-01",
        "North Korea launches ICBM, Japan says",
        "North Korea launched an intercontinental ballistic missile on Tuesday that came down in the sea "
        "west of Hokkaido, Japan's defence ministry said. Seoul condemned the launch of the missile and "
        "said it was studying the flight data with Washington.",
    ),
    (
        "2026-12-03",
        "North Korea fires two short-range missiles from Wonsan",
        "North Korea fired two short-range ballistic missiles from near Wonsan into the sea on Thursday, "
        "the South Korean military said. Seoul and Tokyo condemned the launch of the missiles and said they "
        "were studying the flight data with Washington.",
    ),
)


def test_three_launches_on_three_days_alert_three_times_and_copies_stay_quiet(settings, worker, store, receiver):
    # The three reports share most of their words, so they may well be grouped as one story:
    # the re-alert window still lets each new day's launch through.
    subscription = save_subscription(
        get_redis(settings), "desk", webhook_subscription("launches", "missile AND (test OR launch)", receiver.url)
    )
    settings.inbox_dir.mkdir(parents=True)
    for number, (day, title, body) in enumerate(LAUNCHES):
        (settings.inbox_dir / f"launch_{number}.txt").write_text(f"date {day}\n{title}\n\n{body}\n", "utf-8")
    day, title, body = LAUNCHES[2]
    for copy in range(6):  # six outlets carrying the third report with their own headline
        (settings.inbox_dir / f"copy_{copy}.txt").write_text(
            f"date {day}\n{title} (outlet {copy})\n\n{body}\n\nOutlet {copy} news desk.\n", "utf-8"
        )

    counts = run_inbox_once(settings)

    assert (counts["indexed"], counts["near_duplicates"], counts["alerts"]) == (9, 6, 3)
    alerts = receiver.wait_for(3)
    assert sorted(alert["article"]["title"] for alert in alerts) == sorted(title for _, title, _ in LAUNCHES)
    time.sleep(0.5)
    assert len(receiver.received) == 3
    # The backtest replays the same policy over the stored articles: the same alerts.
    store.refresh()
    replay = backtest(store, subscription, days=1)
    assert sorted(alert.article["id"] for alert in replay.alerts) == sorted(a["article"]["id"] for a in alerts)
