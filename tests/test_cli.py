"""The command line as a user runs it: subprocesses on embedded defaults (embedded Redis,
SQLite store), no WIREWATCH_REDIS_URL or WIREWATCH_ELASTICSEARCH_URL set."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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
        env={**env, "PYTHONPATH": str(Path(__file__).parents[1])},
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
    assert [alert["subscription"]["name"] for alert in receiver.wait_for(1)] == ["nk-sanctions"]

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
    wirewatch(home, "subscriptions", "add", "a", "missile", "--webhook", "http://127.0.0.1:9/a")
    listed = wirewatch(home, "subscriptions", "list", "--json")
    assert [json.loads(line)["name"] for line in listed.stdout.splitlines()] == ["a"]
    assert wirewatch(home, "subscriptions", "remove", "a").returncode == 0
    missing = wirewatch(home, "subscriptions", "remove", "a")
    assert missing.returncode == 2 and "no subscription named 'a'" in missing.stderr


def test_health_reports_redis_and_store(home: Path) -> None:
    result = wirewatch(home, "health")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "healthy"
