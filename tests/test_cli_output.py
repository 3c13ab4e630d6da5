"""What the command line prints, as a user sees it: the real `wirewatch` in a subprocess on the
test Redis and an SQLite store, writing into pipes, closed pipes and a terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.deadletters import quarantine
from shared.store import open_store
from tests.conftest import FIXTURES

ROOT = Path(__file__).parents[1]
COMMAND = [sys.executable, "-m", "services.cli"]


@pytest.fixture(autouse=True)
def fresh(settings, redis_client):
    """Every test on a flushed test Redis and its own data dir."""


def environment() -> dict[str, str]:
    # The `settings` fixture has put the test Redis and a fresh data dir in the environment.
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def wirewatch(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], env=environment(), capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def into_a_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """Run with stdout piped into a reader that has already exited, as `| head -3` leaves it."""
    read_end, write_end = os.pipe()
    reader = subprocess.Popen([sys.executable, "-c", "pass"], stdin=read_end)
    reader.wait()
    os.close(read_end)  # no one reads any more: every write to the pipe fails
    try:
        return subprocess.run(
            [*COMMAND, *args], env=environment(), stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120
        )
    finally:
        os.close(write_end)


def on_a_terminal(*args: str, timeout: float = 300) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal (stdout a pipe); returns the exit code, stdout and
    what the terminal showed."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a real window's size
    process = subprocess.Popen([*COMMAND, *args], env=environment(), stdout=subprocess.PIPE, stderr=terminal, cwd=ROOT)
    os.close(terminal)
    shown = b""
    while True:
        ready, _, _ = select.select([controller], [], [], timeout)
        if not ready:
            process.kill()
            raise TimeoutError(shown.decode(errors="replace"))
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process is done writing
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    stdout = process.stdout.read().decode() if process.stdout else ""
    return process.wait(timeout=timeout), stdout, shown.decode(errors="replace")


def test_version(settings):
    result = wirewatch("--version")
    assert result.returncode == 0 and result.stdout.strip() == "wirewatch 0.1.0"


def test_tokens_list_shows_ids_owners_and_times_never_the_tokens(settings):
    empty = wirewatch("tokens", "list")
    assert empty.returncode == 0 and empty.stdout == "" and "no tokens" in empty.stderr
    made = [wirewatch("tokens", "create", owner).stdout.strip() for owner in ("alice", "bob")]
    listed = wirewatch("tokens", "list")
    as_json = wirewatch("tokens", "list", "--json")
    for output in (listed.stdout, as_json.stdout):
        assert not any(token in output or token[3:] in output for token in made)
    lines = listed.stdout.splitlines()
    assert [line.split()[1] for line in lines] == ["alice", "bob"]
    assert all(len(line.split()[0]) == 12 and line.split()[2] == "created" for line in lines)
    assert datetime.fromisoformat(lines[0].split()[3]) <= datetime.now(UTC)
    wirewatch("tokens", "revoke", "alice")
    assert [line.split()[1] for line in wirewatch("tokens", "list").stdout.splitlines()] == ["bob"]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["subscriptions", "list"], "no subscriptions"),
        (["feeds", "list"], "no feeds"),
        (["feeds", "status"], "no feeds"),
        (["alerts"], "no alerts"),
        (["dead-letters"], "no dead letters"),
        (["search", "missile"], "no articles match"),
    ],
)
def test_an_empty_list_says_so_and_json_stays_empty(settings, command, message):
    result = wirewatch(*command)
    assert result.returncode == 0 and result.stdout == "" and message in result.stderr
    if command[0] not in ("dead-letters",):
        return
    as_json = wirewatch(*command, "--json")
    assert as_json.returncode == 0 and as_json.stdout == "" and as_json.stderr == ""


def test_dead_letters_name_the_file_and_line(settings, redis_client):
    quarantine(redis_client, stage="read", reason="not JSON", item={"file": "/feeds/batch.jsonl", "line": 7})
    quarantine(redis_client, stage="read", reason="unsupported file type '.bin'", item={"file": "/feeds/x.bin"})
    lines = wirewatch("dead-letters").stdout.splitlines()
    assert "/feeds/batch.jsonl:7  — not JSON" in lines[0]
    assert "/feeds/x.bin  — unsupported file type" in lines[1]


def test_a_closed_pipe_ends_quietly(settings):
    store = open_store(settings)
    store.setup()
    for number in range(50):
        store.record_alert(
            {"id": f"a{number}", "at": datetime.now(UTC).isoformat(), "subscription": "launches", "channel": "webhook"}
            | {"status": "delivered", "title": f"Launch {number}", "error": None}
        )
    assert wirewatch("feeds", "add", "https://example.org/feed.rss").returncode == 0
    for command in (["alerts"], ["stats"], ["feeds", "status", "--json"], ["alerts", "--json"]):
        result = into_a_closed_pipe(*command)
        assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, command
        assert "BrokenPipe" not in result.stderr and result.returncode == 141, (command, result.stderr)


def test_progress_bars_show_on_a_terminal_only(settings, tmp_path):
    inbox = tmp_path / "backfill"
    inbox.mkdir()
    for name in ("01_missile_launch.txt", "04_sanctions_un.html", "05_summit_2022.txt", "07_football_fine.txt"):
        shutil.copy(FIXTURES / "inbox" / name, inbox / name)
    piped = wirewatch("ingest", str(inbox), timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert "files/s" not in piped.stderr and "\r" not in piped.stderr and "it/s" not in piped.stderr
    assert "4 files read" in piped.stderr

    (tmp_path / "more").mkdir()
    shutil.copy(FIXTURES / "inbox" / "06_summit_2023.txt", tmp_path / "more" / "06.txt")
    status, stdout, shown = on_a_terminal("ingest", str(tmp_path / "more"))
    assert status == 0, shown
    assert "reading: 100%" in shown and "1/1" in shown and "files/s" in shown  # total and rate
    assert "through the chain: 100%" in shown and "articles/s" in shown
    assert "seen             1" in stdout

    status, _, shown = on_a_terminal("reindex")
    assert status == 0, shown
    copied = re.search(r"reindexed (\d+) articles", shown)
    assert copied and int(copied.group(1)) > 0
    assert "reindex: 100%" in shown and f"{copied.group(1)}/{copied.group(1)}" in shown and "articles/s" in shown
    assert "<00:00" in shown  # the time left
