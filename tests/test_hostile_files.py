"""Dropped files written by an attacker: links out of the inbox, pipes and devices, names in
any bytes, pages built to make a parser backtrack, binary bytes, files and lines too large or
too deep. Each is refused or read in bounded time, and kept with its reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from services.fetcher.service import Fetcher
from shared import runs
from shared.deadletters import read_dead_letters
from shared.formats.limits import Limits
from shared.formats.mapping import UnreadableFile
from shared.formats.readers import read_file_report
from shared.queue import enqueue_batch
from shared.settings import Settings
from shared.sources.backfill import backfill
from shared.sources.batcher import Batcher
from shared.sources.inbox import InboxSource

STORY = "Ferry timetable changes for winter\nThe island ferry will sail twice a day from November.\n"
SMALL = Limits(
    max_file_bytes=200_000, max_article_chars=50_000, max_line_bytes=20_000, max_nesting=16, max_read_seconds=20
)


def inbox_source(settings: Settings, client: redis.Redis | None = None, limits: Limits | None = None) -> InboxSource:
    return InboxSource(
        settings.inbox_dir, settings.processed_dir, settings.rejected_dir, dead_letters=client, limits=limits
    )


def reason_of(settings: Settings, name: str) -> str:
    return (settings.rejected_dir / f"{name}.reason").read_text("utf-8").splitlines()[0]


# --- the inbox reads only regular files inside it --------------------------------------------


def test_a_link_out_of_the_inbox_is_moved_to_rejected_unread(settings: Settings, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "passwd"
    secret.write_text("root:x:0:0:secret account line\nsecond line of the secret\n", "utf-8")
    settings.inbox_dir.mkdir(parents=True)
    (settings.inbox_dir / "p.txt").symlink_to(secret)
    (settings.inbox_dir / "gone.txt").symlink_to(outside / "no-such-file")
    (settings.inbox_dir / "etc").symlink_to(outside, target_is_directory=True)
    (outside / "inside-the-linked-folder.txt").write_text(STORY, "utf-8")

    deliveries = list(inbox_source(settings).poll(settle=False))

    assert [article for found in deliveries for article in found.articles] == []
    assert sum(found.rejected for found in deliveries) == 3
    for name in ("p.txt", "gone.txt", "etc"):
        assert (settings.rejected_dir / name).is_symlink(), f"{name} kept as the link it was"
        assert "symbolic link" in reason_of(settings, name)
    assert "dangling" in reason_of(settings, "gone.txt")
    assert secret.read_text("utf-8").startswith("root:x")  # never moved, never read
    assert (outside / "inside-the-linked-folder.txt").exists()
    assert list(settings.inbox_dir.iterdir()) == []


def test_a_fifo_named_like_a_text_file_is_rejected_without_blocking(settings: Settings) -> None:
    settings.inbox_dir.mkdir(parents=True)
    os.mkfifo(settings.inbox_dir / "news.txt")
    (settings.inbox_dir / "real.txt").write_text(STORY, "utf-8")

    deliveries = list(inbox_source(settings).poll(settle=False))  # would block forever on open()

    assert [a.title for found in deliveries for a in found.articles] == ["Ferry timetable changes for winter"]
    assert "FIFO" in reason_of(settings, "news.txt")
    assert (settings.rejected_dir / "news.txt").is_fifo()


def test_a_folder_swapped_for_a_link_after_the_scan_is_not_followed(settings: Settings, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "story.txt").write_text("Secret memo\nNot for the inbox.\n", "utf-8")
    folder = settings.inbox_dir / "desk"
    folder.mkdir(parents=True)
    (folder / "story.txt").write_text(STORY, "utf-8")
    path = folder / "story.txt"
    # the race: between the scan and the open, the folder becomes a link out of the inbox
    folder.rename(settings.inbox_dir / "desk-old")
    folder.symlink_to(outside, target_is_directory=True)

    with pytest.raises(UnreadableFile, match="symbolic link"):
        read_file_report(path, inside=settings.inbox_dir)


def test_ingest_reports_a_fifo_and_a_link_and_goes_on(settings: Settings, redis_client: redis.Redis, tmp_path) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    os.mkfifo(archive / "a-pipe.txt")
    (archive / "b-link.txt").symlink_to("/etc/hostname")
    (archive / "c-deep.json").write_text("[" * 5000 + "]" * 5000, "utf-8")
    (archive / "d-story.txt").write_text(STORY, "utf-8")
    sent: list[Any] = []
    batcher = Batcher(10, lambda batch, run: sent.extend(batch), redis_client, None)

    report = backfill([archive], batcher, redis_client, limits=SMALL)

    assert [article.title for article in sent] == ["Ferry timetable changes for winter"]
    reasons = {Path(path).name: reason for path, reason in report.rejected}
    assert "FIFO" in reasons["a-pipe.txt"]
    assert "symbolic link" in reasons["b-link.txt"]
    assert "nested too deeply" in reasons["c-deep.json"]
    assert len(read_dead_letters(redis_client)) == 3


# --- names in any bytes ----------------------------------------------------------------------


def test_a_file_name_in_any_bytes_survives_every_step_and_every_dead_letter(settings, worker, store) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    inbox = settings.inbox_dir
    inbox.mkdir(parents=True)
    for number in range(5):
        (inbox / f"good-{number}.txt").write_text(f"Harbour works, part {number}\nCrane number {number} arrived.\n")
    bad = os.fsdecode(b"caf\xe9-\xff.txt")  # Latin-1 and a byte that is nothing at all
    (inbox / bad).write_text("Harbour works, the odd one\nA name no UTF-8 reader can decode.\n", "utf-8")
    lines = os.fsdecode(b"wire-\xfe.jsonl")
    (inbox / lines).write_text('{"title": "Lines file story", "text": "A good line."}\nnot json\n', "utf-8")
    unreadable = os.fsdecode(b"broken-\xfd.json")
    (inbox / unreadable).write_text("{", "utf-8")

    run_id = uuid.uuid4().hex
    Fetcher(settings, client, enqueue_batch).run_once(run_id)
    counts = runs.wait_until_done(client, run_id, timeout=60)  # hung forever when a name broke a step

    assert (counts["seen"], counts["indexed"], counts["rejected"]) == (7, 7, 2)
    store.refresh()
    origins = {article.title: article.origin for article in store.search("*", limit=20)}
    assert origins["Harbour works, the odd one"].endswith("caf\\xe9-\\xff.txt")
    assert origins["Lines file story"].endswith("wire-\\xfe.jsonl")
    assert (settings.processed_dir / bad).exists()  # the file itself keeps its bytes
    assert (settings.processed_dir / f"{lines}.problems").exists()
    assert (settings.rejected_dir / unreadable).exists()
    assert "broken-\\xfd.json" in (settings.rejected_dir / f"{unreadable}.reason").read_text("utf-8")
    [letter] = read_dead_letters(client)
    assert letter["item"]["file"].endswith("wire-\\xfe.jsonl") and letter["item"]["line"] == 2


def test_a_dead_letter_with_undecodable_text_is_kept(redis_client: redis.Redis) -> None:
    from shared.deadletters import quarantine

    quarantine(redis_client, stage="read", reason="bad \udcff name", item={"file": "x-\udcfe.txt", "n": ["\ud800"]})

    [letter] = read_dead_letters(redis_client)
    assert letter["reason"] == "bad \\xff name" and letter["item"]["file"] == "x-\\xfe.txt"


# --- pages built to make a parser backtrack ---------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "repeated",
    [
        '<meta property="og:title" ',  # 13 KB of this took 88 s when regular expressions read the head
        '<meta name="date" ',
        '<link rel="canonical" ',
        "<title>",
        "<meta ",
        '<a href="',
    ],
)
def test_a_page_of_repeated_unclosed_tags_is_read_in_linear_time(tmp_path: Path, repeated: str) -> None:
    page = "<html><head>" + repeated * (700_000 // len(repeated)) + "</head><body><p>Text.</p></body></html>"
    path = tmp_path / "page.html"
    path.write_text(page, "utf-8")

    [article] = read_file_report(path).articles

    assert article.html is not None and len(article.html) > 700_000


def test_the_head_is_still_read_from_real_markup(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        '<html><head><title>Storm closes port | Coast Daily</title><LINK REL="Canonical" HREF="https://coast.example/'
        'storm?a=1&amp;b=2"><meta property="og:title" content="Storm closes the port &amp; the ferry">'
        '<meta itemprop="datePublished" content="2026-01-05T10:00:00Z"></head><body><p>Body.</p></body></html>',
        "utf-8",
    )

    [article] = read_file_report(path).articles

    assert article.title == "Storm closes the port & the ferry"
    assert article.url == "https://coast.example/storm?a=1&b=2"
    assert article.published_at is not None and article.published_at.isoformat() == "2026-01-05T10:00:00+00:00"


# --- binary bytes -----------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["noise.txt", "noise.html", "noise.rss", "noise.md"])
def test_a_megabyte_of_binary_bytes_is_refused_at_once(tmp_path: Path, name: str) -> None:
    # high bytes and control bytes, no NUL: what kept charset detection busy for minutes
    noise = bytes((n * 7919 + (n >> 5)) % 254 + 1 for n in range(1_000_000))
    path = tmp_path / name
    path.write_bytes(noise)

    with pytest.raises(UnreadableFile, match="binary"):
        read_file_report(path)


@pytest.mark.timeout(60)
def test_a_megabyte_of_high_bytes_in_no_known_encoding_is_decoded_from_a_sample(tmp_path: Path) -> None:
    text = "".join(chr(0x0400 + (n * 31) % 200) + (" " if n % 7 == 0 else "") for n in range(600_000))
    path = tmp_path / "cyrillic.txt"
    path.write_bytes(("Заголовок\n" + text).encode("koi8-r", "replace"))

    [article] = read_file_report(path).articles

    assert len(article.text) > 500_000


# --- sizes ------------------------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_rejected_unread_naming_the_limit(settings: Settings) -> None:
    big = settings.inbox_dir / "huge.txt"
    big.parent.mkdir(parents=True)
    with open(big, "wb") as handle:
        handle.truncate(SMALL.max_file_bytes + 1)  # sparse: the test writes nothing, a reader would read it all

    [delivery] = list(inbox_source(settings, limits=SMALL).poll(settle=False))

    assert delivery.rejected == 1
    assert "WIREWATCH_MAX_FILE_BYTES" in reason_of(settings, "huge.txt")


def test_an_article_over_the_size_limit_is_refused_naming_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("A long one\n" + "word " * 20_000, "utf-8")

    with pytest.raises(UnreadableFile, match="WIREWATCH_MAX_ARTICLE_CHARS"):
        read_file_report(path, limits=SMALL)


def test_json_nested_deeper_than_the_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"title": "x", "text": "y", "extra": ' + "[" * 17 + "]" * 17 + "}", "utf-8")

    with pytest.raises(UnreadableFile, match="WIREWATCH_MAX_NESTING"):
        read_file_report(path, limits=SMALL)
    shallow = tmp_path / "shallow.json"
    shallow.write_text('{"title": "x [[[[ in a string", "text": "' + "{" * 100 + '"}', "utf-8")
    assert read_file_report(shallow, limits=SMALL).articles[0].title == "x [[[[ in a string"


def test_a_pathological_line_costs_only_itself_and_good_lines_go_on(tmp_path: Path) -> None:
    good = json.dumps({"title": "Good line", "text": "Kept."})
    lines = [
        good,
        '{"title": "deep", "text": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"title": "huge", "text": "' + "x" * 50_000 + '"}',
        '{"title": "number", "text": "t", "n": ' + "9" * 5000 + "}",
        '{"title": "\\ud800", "text": "a lone surrogate"}',
        "\x00\x01\x02 binary",
        good.replace("Good line", "Second good line"),
    ]
    path = tmp_path / "wire.jsonl"
    path.write_text("\n".join(lines) + "\n", "utf-8")

    reading = read_file_report(path, limits=SMALL)

    assert [article.title for article in reading.articles] == ["Good line", "\\ud800", "Second good line"]
    reasons = dict(reading.problems)
    assert "WIREWATCH_MAX_NESTING" in reasons[2]
    assert "WIREWATCH_MAX_LINE_BYTES" in reasons[3]
    assert 4 in reasons and 6 in reasons


@pytest.mark.timeout(120)
def test_a_large_json_lines_file_is_read_a_line_at_a_time(tmp_path: Path) -> None:
    """Peak memory of reading a 40 MB .jsonl stays near its articles, not several copies of
    the file (measured in a child process, whose peak is its own)."""
    path = tmp_path / "big.jsonl"
    line = json.dumps({"title": "Line", "text": "x" * 2000}) + "\n"
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(20_000):
            handle.write(line)
    probe = (  # the peak from /proc (VmHWM): ru_maxrss would carry this test process's peak across exec
        "import sys\n"
        "from pathlib import Path\n"
        "from shared.formats.readers import read_file_report\n"
        "def peak_kb():\n"
        "    with open('/proc/self/status') as status:\n"
        "        return next(int(line.split()[1]) for line in status if line.startswith('VmHWM:'))\n"
        "before = peak_kb()\n"
        "reading = read_file_report(Path(sys.argv[1]))\n"
        "print(len(reading.articles), (peak_kb() - before) // 1024)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True)
    count, grown_mb = map(int, result.stdout.split())
    assert count == 20_000
    size_mb = path.stat().st_size // 2**20
    print(f"read {size_mb} MB of .jsonl; peak memory grew {grown_mb} MB")
    assert grown_mb < 3 * size_mb  # the articles themselves, not the file, its text and its lines besides


def test_reading_longer_than_the_time_limit_is_rejected_naming_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "slow.jsonl"
    path.write_text((json.dumps({"title": "T", "text": "x"}) + "\n") * 50_000, "utf-8")
    quick = Limits(
        max_file_bytes=10**8, max_article_chars=10**6, max_line_bytes=10**6, max_nesting=16, max_read_seconds=1e-4
    )
    started = time.monotonic()

    with pytest.raises(UnreadableFile, match="WIREWATCH_MAX_READ_SECONDS"):
        read_file_report(path, limits=quick)
    assert time.monotonic() - started < 5
