"""The drop folder (InboxSource) and the Batcher that puts its deliveries on the chain."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import redis

from services.fetcher.service import Fetcher
from services.fetcher.watch import watch_folder
from shared import runs
from shared.article import Article
from shared.deadletters import read_dead_letters
from shared.settings import Settings
from shared.sources.batcher import Batcher, Enqueue
from shared.sources.delivery import Delivery
from shared.sources.inbox import InboxSource

STORY = "Night buses return to the city centre\nThe operator restored six routes after the strike.\n"


@pytest.fixture
def source(settings: Settings) -> InboxSource:
    return InboxSource(settings.inbox_dir, settings.processed_dir, settings.rejected_dir)


def drop(path: Path, content: str | bytes, *, age: float = 600.0) -> Path:
    """Write a file into the inbox, `age` seconds old (settled unless age is ~0)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, "utf-8")
    else:
        path.write_bytes(content)
    if age:
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))
    return path


def files_under(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}


def scan_twice(source: InboxSource) -> list[Delivery]:
    """Two scans of the watching fetcher: the first only notes the size and time of files it has
    not seen before; the second reads those that stayed unchanged."""
    assert list(source.poll()) == [], "a file seen for the first time must not be read yet"
    return list(source.poll())


# --- InboxSource ------------------------------------------------------------------------------


def test_a_file_in_a_subfolder_moves_to_processed_only_after_on_enqueued(
    source: InboxSource, settings: Settings
) -> None:
    dropped = drop(settings.inbox_dir / "agency" / "2025" / "buses.txt", STORY)

    [delivery] = scan_twice(source)

    assert [article.title for article in delivery.articles] == ["Night buses return to the city centre"]
    assert delivery.rejected == 0
    assert dropped.exists(), "read but not yet queued: the file must stay in the inbox"
    assert not settings.processed_dir.exists()

    delivery.on_enqueued()

    assert not dropped.exists()
    moved = settings.processed_dir / "agency" / "2025" / "buses.txt"
    assert moved.read_text("utf-8") == STORY
    assert files_under(settings.processed_dir) == {"agency/2025/buses.txt"}


def test_files_are_read_oldest_first(source: InboxSource, settings: Settings) -> None:
    drop(settings.inbox_dir / "a.txt", "Newest story\nbody", age=100)
    drop(settings.inbox_dir / "sub" / "b.txt", "Oldest story\nbody", age=300)
    drop(settings.inbox_dir / "c.txt", "Middle story\nbody", age=200)

    titles = [delivery.articles[0].title for delivery in scan_twice(source)]

    assert titles == ["Oldest story", "Middle story", "Newest story"]


def test_an_unread_delivery_leaves_the_file_for_the_next_poll(source: InboxSource, settings: Settings) -> None:
    drop(settings.inbox_dir / "buses.txt", STORY)

    first = scan_twice(source)
    second = list(source.poll())

    assert len(first) == len(second) == 1
    assert first[0].articles[0].id == second[0].articles[0].id


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("feeds/broken.json", '{"title": "Pier closed", ', "malformed JSON"),
        ("empty.txt", "   \n", "empty file"),
        ("scan.pdf", b"%PDF-1.7 not really", "unsupported file type '.pdf'"),
    ],
)
def test_an_unreadable_file_moves_to_rejected_with_a_reason_file(
    source: InboxSource, settings: Settings, name: str, content: str | bytes, reason: str
) -> None:
    dropped = drop(settings.inbox_dir / name, content)

    [delivery] = scan_twice(source)

    assert delivery.articles == [] and delivery.rejected == 1
    assert not dropped.exists()
    rejected = settings.rejected_dir / name
    assert rejected.read_bytes() == (content.encode() if isinstance(content, str) else content)
    note = rejected.with_name(rejected.name + ".reason").read_text("utf-8")
    assert note.startswith(reason)
    assert f"file: {dropped}" in note
    assert "rejected at: " in note
    assert files_under(settings.rejected_dir) == {name, name + ".reason"}
    assert not settings.processed_dir.exists()


@pytest.mark.parametrize(
    "name",
    ["buses.txt.part", "buses.tmp", "buses.TMP", "buses.json.crdownload", "buses.partial", ".DS_Store", ".buses.txt"],
)
def test_partial_and_hidden_files_are_left_alone(source: InboxSource, settings: Settings, name: str) -> None:
    dropped = drop(settings.inbox_dir / "sub" / name, STORY)

    assert scan_twice(source) == []
    assert list(source.poll(settle=False)) == []
    assert dropped.read_text("utf-8") == STORY
    assert not settings.processed_dir.exists() and not settings.rejected_dir.exists()


def test_a_just_written_file_waits_to_settle_unless_settle_is_off(source: InboxSource, settings: Settings) -> None:
    fresh = drop(settings.inbox_dir / "fresh.txt", STORY, age=0)
    drop(settings.inbox_dir / "old.txt", "Older story\nbody")

    settled = scan_twice(source)
    taken = list(source.poll(settle=False))

    assert [delivery.articles[0].title for delivery in settled] == ["Older story"]
    assert sorted(delivery.articles[0].title for delivery in taken) == [
        "Night buses return to the city centre",
        "Older story",
    ]
    assert fresh.exists()


def test_a_name_collision_in_processed_keeps_both_files(source: InboxSource, settings: Settings) -> None:
    earlier = settings.processed_dir / "desk" / "buses.txt"
    earlier.parent.mkdir(parents=True)
    earlier.write_text("Yesterday's version\nbody", "utf-8")
    drop(settings.inbox_dir / "desk" / "buses.txt", STORY)

    [delivery] = scan_twice(source)
    delivery.on_enqueued()

    assert earlier.read_text("utf-8") == "Yesterday's version\nbody"
    kept = sorted(settings.processed_dir.joinpath("desk").iterdir())
    assert len(kept) == 2
    [renamed] = [path for path in kept if path != earlier]
    assert renamed.name.startswith("buses.") and renamed.suffix == ".txt"
    assert renamed.read_text("utf-8") == STORY
    assert files_under(settings.inbox_dir) == set()


def test_a_name_collision_in_rejected_keeps_both_files_and_both_reasons(
    source: InboxSource, settings: Settings
) -> None:
    drop(settings.inbox_dir / "bad.json", "{oops")
    scan_twice(source)
    drop(settings.inbox_dir / "bad.json", "[]")
    scan_twice(source)

    names = files_under(settings.rejected_dir)
    assert len(names) == 4
    reasons = sorted(
        (settings.rejected_dir / name).read_text("utf-8").splitlines()[0] for name in names if name.endswith(".reason")
    )
    assert reasons[0].startswith("malformed JSON") and reasons[1] == "no article found in the file"


def test_a_one_off_pass_takes_a_new_file_at_once(source: InboxSource, settings: Settings) -> None:
    drop(settings.inbox_dir / "buses.txt", STORY, age=0)

    [delivery] = list(source.poll(settle=False))

    assert delivery.articles[0].title == "Night buses return to the city centre"


def grow(path: Path) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write('{"title": "Second story", "text": "Written a moment later."}\n')


def rewrite_in_place(path: Path) -> None:
    """Same size, other bytes, a later time: a writer that preallocates, then fills the file."""
    path.write_text(path.read_text("utf-8").replace("First", "Final"), "utf-8")
    stamp = path.stat().st_mtime - 5  # differs from the first scan's time, and is not in the future
    os.utime(path, (stamp, stamp))


@pytest.mark.parametrize("change", [grow, rewrite_in_place], ids=["grows", "rewritten-same-size"])
def test_a_file_changing_between_scans_is_read_only_after_a_scan_without_change(
    settings: Settings, change: Callable[[Path], None]
) -> None:
    # settle_seconds=0 leaves the size-and-time comparison as the only guard.
    source = InboxSource(settings.inbox_dir, settings.processed_dir, settings.rejected_dir, settle_seconds=0)
    path = drop(settings.inbox_dir / "wire.jsonl", '{"title": "First story", "text": "Sent at once."}\n', age=0)

    assert list(source.poll()) == []  # first seen
    change(path)
    assert list(source.poll()) == []  # changed since the previous scan
    [delivery] = list(source.poll())  # unchanged for one scan

    assert [article.title for article in delivery.articles] == (
        ["First story", "Second story"] if change is grow else ["Final story"]
    )


# --- files read in part -----------------------------------------------------------------------

GOOD = [
    {"title": "Ferry fares frozen for the winter", "text": "The port authority kept prices unchanged."},
    {"title": "Lighthouse opens to visitors", "url": "https://coast.example.org/lighthouse", "text": "Tours start."},
]
WIRE = "\n".join([json.dumps(GOOD[0]), '{"title": "Broken off', json.dumps(GOOD[1]), '{"url": 5}']) + "\n"


@pytest.fixture
def keeping_source(settings: Settings, redis_client: redis.Redis) -> InboxSource:
    return InboxSource(settings.inbox_dir, settings.processed_dir, settings.rejected_dir, dead_letters=redis_client)


def test_bad_json_lines_are_listed_beside_the_processed_file_and_kept_as_dead_letters(
    keeping_source: InboxSource, settings: Settings, redis_client: redis.Redis
) -> None:
    dropped = drop(settings.inbox_dir / "agency" / "wire.jsonl", WIRE)
    sent: list[list[str]] = []
    batcher = Batcher(10, lambda batch, run_id: sent.append([a.title for a in batch]), redis_client, "run-9")

    [delivery] = list(keeping_source.poll(settle=False))
    batcher.add(delivery)

    assert delivery.rejected == 2
    assert read_dead_letters(redis_client) == [], "nothing is kept before the good lines are queued"
    assert dropped.exists() and not settings.processed_dir.exists()

    batcher.flush()

    assert sent == [[story["title"] for story in GOOD]]
    assert not dropped.exists()
    moved = settings.processed_dir / "agency" / "wire.jsonl"
    assert moved.read_text("utf-8") == WIRE
    problems = moved.with_name("wire.jsonl.problems").read_text("utf-8").splitlines()
    assert problems[0].startswith("line 2: malformed JSON")
    assert problems[1] == "line 4: the line: field 'url' must be a string, not int"
    assert problems[2] == f"file: {dropped}"
    assert problems[3].startswith("read at: ")
    assert files_under(settings.processed_dir) == {"agency/wire.jsonl", "agency/wire.jsonl.problems"}
    letters = read_dead_letters(redis_client)
    assert [(letter["stage"], letter["item"]) for letter in letters] == [
        ("read", {"file": str(moved), "line": 2, "content": '{"title": "Broken off'}),
        ("read", {"file": str(moved), "line": 4, "content": '{"url": 5}'}),
    ]
    assert [letter["reason"] for letter in letters] == [line.split(": ", 1)[1] for line in problems[:2]]
    counts = runs.read(redis_client, "run-9")
    assert (counts["seen"], counts["rejected"]) == (2, 2)


def test_a_long_bad_line_is_kept_cut_to_2000_characters(
    keeping_source: InboxSource, settings: Settings, redis_client: redis.Redis
) -> None:
    long_line = '{"title": "' + "x" * 5000
    drop(settings.inbox_dir / "wire.ndjson", json.dumps(GOOD[0]) + "\n" + long_line + "\n")

    [delivery] = list(keeping_source.poll(settle=False))
    delivery.on_enqueued()

    [letter] = read_dead_letters(redis_client)
    assert letter["item"]["content"] == long_line[:2000]
    assert letter["item"]["line"] == 2


def test_without_a_dead_letter_client_bad_lines_are_only_listed(
    source: InboxSource, settings: Settings, redis_client: redis.Redis
) -> None:
    drop(settings.inbox_dir / "wire.jsonl", WIRE)

    [delivery] = list(source.poll(settle=False))
    delivery.on_enqueued()

    assert (settings.processed_dir / "wire.jsonl.problems").exists()
    assert read_dead_letters(redis_client) == []


def test_a_json_lines_file_without_a_good_line_is_rejected_with_the_reason(
    keeping_source: InboxSource, settings: Settings, redis_client: redis.Redis
) -> None:
    drop(settings.inbox_dir / "wire.jsonl", '{"title": 1}\nnot json\n')

    [delivery] = list(keeping_source.poll(settle=False))

    assert delivery.articles == [] and delivery.rejected == 1
    reason = (settings.rejected_dir / "wire.jsonl.reason").read_text("utf-8").splitlines()[0]
    assert reason.startswith("no good line in the file: line 1: the line: field 'title' must be a string")
    assert "line 2: malformed JSON" in reason
    assert files_under(settings.rejected_dir) == {"wire.jsonl", "wire.jsonl.reason"}
    assert read_dead_letters(redis_client) == []  # the whole file is kept in rejected/ instead


def test_the_fetcher_keeps_bad_lines_of_dropped_files_as_dead_letters(
    settings: Settings, redis_client: redis.Redis
) -> None:
    drop(settings.inbox_dir / "wire.jsonl", WIRE)
    sent: list[Article] = []

    counts = Fetcher(settings, redis_client, lambda batch, run_id: sent.extend(batch)).run_once("run-3")

    assert len(sent) == 2
    assert (counts["seen"], counts["rejected"]) == (2, 2)
    assert [letter["item"]["line"] for letter in read_dead_letters(redis_client)] == [2, 4]


# --- Batcher ----------------------------------------------------------------------------------

Event = tuple[str, object]


def recording_enqueue(events: list[Event]) -> Enqueue:
    """A plain enqueue function that records each batch's titles and run id."""

    def enqueue(batch: Sequence[Article], run_id: str | None) -> None:
        events.append(("batch", [article.title for article in batch]))
        events.append(("run", run_id))

    return enqueue


def delivery(name: str, count: int, events: list[Event]) -> Delivery:
    articles = [Article.create(title=f"{name}{n}", text=f"Story {name}{n} about the harbour.") for n in range(count)]
    return Delivery(articles, on_enqueued=lambda: events.append(("done", name)))


def batches(events: list[Event]) -> list[object]:
    return [value for kind, value in events if kind == "batch"]


def test_batches_hold_at_most_size_articles_in_order(redis_client: redis.Redis) -> None:
    events: list[Event] = []
    batcher = Batcher(3, recording_enqueue(events), redis_client, None)

    for name, count in (("a", 2), ("b", 4), ("c", 1)):
        batcher.add(delivery(name, count, events))
    batcher.flush()

    assert batches(events) == [["a0", "a1", "b0"], ["b1", "b2", "b3"], ["c0"]]


def test_on_enqueued_runs_only_once_all_of_the_delivery_was_sent(redis_client: redis.Redis) -> None:
    events: list[Event] = []
    batcher = Batcher(3, recording_enqueue(events), redis_client, "run-1")

    batcher.add(delivery("a", 5, events))
    assert [kind for kind, _ in events] == ["batch", "run"], "a0-a2 sent, a3-a4 still held: a is not done"

    batcher.add(delivery("b", 1, events))
    assert [kind for kind, _ in events] == ["batch", "run", "batch", "run", "done", "done"]
    assert events[2] == ("batch", ["a3", "a4", "b0"])
    assert {value for kind, value in events if kind == "done"} == {"a", "b"}
    assert {value for kind, value in events if kind == "run"} == {"run-1"}


def test_a_delivery_spanning_many_batches_finishes_after_the_last(redis_client: redis.Redis) -> None:
    events: list[Event] = []
    batcher = Batcher(2, recording_enqueue(events), redis_client, None)

    batcher.add(delivery("a", 7, events))
    assert ("done", "a") not in events
    batcher.flush()

    assert batches(events) == [["a0", "a1"], ["a2", "a3"], ["a4", "a5"], ["a6"]]
    assert events[-1] == ("done", "a")
    assert events.count(("done", "a")) == 1


def test_flush_sends_the_remainder_and_nothing_twice(redis_client: redis.Redis) -> None:
    events: list[Event] = []
    batcher = Batcher(100, recording_enqueue(events), redis_client, None)

    batcher.add(delivery("lone", 1, events))
    assert events == []
    batcher.flush()
    batcher.flush()

    assert events == [("batch", ["lone0"]), ("run", None), ("done", "lone")]


def test_a_rejected_or_empty_delivery_is_finished_at_once(redis_client: redis.Redis) -> None:
    events: list[Event] = []
    batcher = Batcher(10, recording_enqueue(events), redis_client, None)

    batcher.add(Delivery([], on_enqueued=lambda: events.append(("done", "rejected")), rejected=1))
    batcher.add(Delivery([], on_enqueued=lambda: events.append(("done", "unchanged"))))

    assert events == [("done", "rejected"), ("done", "unchanged")]


def test_a_failed_enqueue_does_not_finish_the_delivery(redis_client: redis.Redis) -> None:
    events: list[Event] = []

    def broken(batch: Sequence[Article], run_id: str | None) -> None:
        raise ConnectionError("broker down")

    batcher = Batcher(2, broken, redis_client, None)
    with pytest.raises(ConnectionError):
        batcher.add(delivery("a", 2, events))

    assert events == []


def test_run_counters_count_seen_and_rejected(redis_client: redis.Redis) -> None:
    events: list[Event] = []
    batcher = Batcher(2, recording_enqueue(events), redis_client, "run-42")

    batcher.add(delivery("a", 3, events))
    batcher.add(Delivery([], rejected=1))
    batcher.add(delivery("b", 2, events))
    batcher.add(Delivery([], rejected=1))
    batcher.flush()

    counts = runs.read(redis_client, "run-42")
    assert (counts["seen"], counts["rejected"]) == (5, 2)
    assert runs.read(redis_client)["seen"] == 5  # totals too
    assert batcher.counts == {"seen": 5, "rejected": 2}
    assert runs.read(redis_client, "another-run")["seen"] == 0


def test_without_a_run_only_the_totals_count(redis_client: redis.Redis) -> None:
    events: list[Event] = []
    batcher = Batcher(5, recording_enqueue(events), redis_client, None)

    batcher.add(delivery("a", 2, events))
    batcher.add(Delivery([], rejected=1))
    batcher.flush()

    totals = runs.read(redis_client)
    assert (totals["seen"], totals["rejected"]) == (2, 1)
    assert not list(redis_client.scan_iter("ww:run:*"))


# --- the two together -------------------------------------------------------------------------


def test_a_dropped_file_moves_to_processed_only_after_its_batch_was_enqueued(
    source: InboxSource, settings: Settings, redis_client: redis.Redis
) -> None:
    dropped = drop(settings.inbox_dir / "buses.txt", STORY)
    still_in_inbox_when_sent: list[bool] = []

    def enqueue(batch: Sequence[Article], run_id: str | None) -> None:
        still_in_inbox_when_sent.append(dropped.exists())

    batcher = Batcher(10, enqueue, redis_client, "run-7")
    for found in scan_twice(source):
        batcher.add(found)
    assert dropped.exists(), "held in the batcher, not yet sent"
    batcher.flush()

    assert still_in_inbox_when_sent == [True]
    assert not dropped.exists()
    assert (settings.processed_dir / "buses.txt").exists()
    assert runs.read(redis_client, "run-7")["seen"] == 1


def test_a_failed_enqueue_leaves_the_file_in_the_inbox(
    source: InboxSource, settings: Settings, redis_client: redis.Redis
) -> None:
    dropped = drop(settings.inbox_dir / "buses.txt", STORY)

    def broken(batch: Sequence[Article], run_id: str | None) -> None:
        raise ConnectionError("broker down")

    batcher = Batcher(1, broken, redis_client, None)
    with pytest.raises(ConnectionError):
        for found in scan_twice(source):
            batcher.add(found)

    assert dropped.exists()
    assert not settings.processed_dir.exists()


def test_the_fetcher_reads_a_dropped_file_without_waiting_for_its_scan_timer(settings, redis_client) -> None:
    import threading
    import time

    from services.fetcher.service import Fetcher

    slow = settings.model_copy(update={"inbox_scan_seconds": 60.0})  # only file events can explain a quick read
    queued: list = []
    fetcher = Fetcher(slow, redis_client, lambda articles, run_id: queued.extend(articles))
    fetcher.inbox.settle_seconds = 0.3
    stop = threading.Event()
    thread = threading.Thread(target=fetcher.run_forever, args=(stop,), daemon=True)
    thread.start()
    time.sleep(0.5)  # the first (empty) scan has happened; the loop now waits on its 60 s timer
    (slow.inbox_dir / "late.txt").write_text("Late headline\n\nDropped while the fetcher was waiting.\n")
    processed = slow.processed_dir / "late.txt"
    deadline = time.monotonic() + 10
    # The file is moved once its articles are queued: wait for both.
    while not (queued and processed.exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    assert [article.title for article in queued] == ["Late headline"]
    assert processed.exists()


def test_the_fetcher_waits_for_the_queue_and_carries_on(settings, redis_client):
    import kombu.exceptions

    sent: list[int] = []

    def enqueue_after_an_outage(articles, run_id):
        sent.append(len(articles))
        if len(sent) == 1:
            raise kombu.exceptions.OperationalError("Error 111 connecting to Redis: Connection refused")

    settings.inbox_dir.mkdir(parents=True)
    dropped = settings.inbox_dir / "report.txt"
    dropped.write_text("Harbour report\n\nShips came and went all day.\n", "utf-8")
    os.utime(dropped, (time.time() - 60, time.time() - 60))  # long settled
    stop = threading.Event()
    fetcher = threading.Thread(
        target=Fetcher(settings, redis_client, enqueue_after_an_outage).run_forever, args=(stop,)
    )
    fetcher.start()
    deadline = time.monotonic() + 20
    while not (settings.processed_dir / "report.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    fetcher.join(timeout=10)
    assert not fetcher.is_alive() and sent == [1, 1]
    assert (settings.processed_dir / "report.txt").exists() and not dropped.exists()


@pytest.fixture
def other_filesystem(tmp_path) -> Iterator[Path]:
    """A folder on another filesystem than the inbox (tmpfs), as a bind-mounted inbox has."""
    folder = Path("/dev/shm") / f"wirewatch-processed-{tmp_path.name}"
    if not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second filesystem here")
    folder.mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_move_to_another_filesystem_cut_short_is_finished_not_doubled(settings, other_filesystem):
    settings.inbox_dir.mkdir(parents=True)
    source = InboxSource(settings.inbox_dir, other_filesystem, settings.rejected_dir)
    first = settings.inbox_dir / "first.txt"
    first.write_text("First report\n\nA quiet day in the harbour.\n", "utf-8")
    for delivery in source.poll(settle=False):
        delivery.on_enqueued()
    assert (other_filesystem / "first.txt").exists() and not first.exists()

    # A crash after the copy and before the original was removed: the file is in both places.
    crashed = settings.inbox_dir / "second.txt"
    crashed.write_text("Second report\n\nShips came and went.\n", "utf-8")
    shutil.copy2(crashed, other_filesystem / "second.txt")
    for delivery in source.poll(settle=False):
        delivery.on_enqueued()
    assert sorted(path.name for path in other_filesystem.iterdir()) == ["first.txt", "second.txt"]
    assert list(settings.inbox_dir.iterdir()) == []


def test_a_file_read_moves_out_whole_and_the_watch_still_wakes_for_the_next(
    source: InboxSource, settings: Settings
) -> None:
    dropped = drop(settings.inbox_dir / "quay.txt", STORY)
    inode = dropped.stat().st_ino
    wake = threading.Event()
    observer = watch_folder(settings.inbox_dir, wake)
    assert observer is not None, "file events are available on this machine"
    try:
        [delivery] = source.poll(settle=False)
        delivery.on_enqueued()
        moved = settings.processed_dir / "quay.txt"
        assert moved.read_text("utf-8") == STORY
        assert moved.stat().st_ino == inode and moved.stat().st_nlink == 1, "the same file, not a copy"
        assert not dropped.exists()
        assert not wake.wait(1.0), "the fetcher's own move out must not wake it"

        incoming = drop(settings.data_dir / "staging" / "ferry.txt", STORY)
        os.rename(incoming, settings.inbox_dir / "ferry.txt")
        assert wake.wait(5.0), "a file moved in wakes the fetcher"
    finally:
        observer.stop()
        observer.join(5)


def test_the_inbox_watch_follows_folders_made_after_it_started(settings: Settings) -> None:
    settings.inbox_dir.mkdir(parents=True)
    wake = threading.Event()
    observer = watch_folder(settings.inbox_dir, wake)
    assert observer is not None
    try:
        (settings.inbox_dir / "agency").mkdir()
        assert wake.wait(5.0), "a new folder wakes the fetcher"
        time.sleep(0.2)  # the watch takes the folder in
        wake.clear()
        incoming = drop(settings.data_dir / "staging" / "late.txt", STORY)
        os.rename(incoming, settings.inbox_dir / "agency" / "late.txt")
        assert wake.wait(5.0), "a file moved into the new folder wakes the fetcher"
        wake.clear()
        drop(settings.inbox_dir / "agency" / "written.txt", STORY, age=0)
        assert wake.wait(5.0), "a file written in place wakes the fetcher"
    finally:
        observer.stop()


@pytest.fixture
def watched(source: InboxSource, settings: Settings) -> Iterator[threading.Event]:
    """The inbox under a folder watch that tells `source` of files it saw finished; yields the
    watch's wake event."""
    settings.inbox_dir.mkdir(parents=True, exist_ok=True)
    wake = threading.Event()
    observer = watch_folder(settings.inbox_dir, wake, source.landed)
    assert observer is not None
    try:
        yield wake
    finally:
        observer.stop()
        observer.join(5)


def test_a_file_the_watch_saw_finished_is_read_at_the_first_scan(
    source: InboxSource, settings: Settings, watched: threading.Event
) -> None:
    drop(settings.inbox_dir / "written.txt", STORY, age=0)  # closed by its writer just now
    incoming = drop(settings.data_dir / "staging" / "renamed.txt", "Ferry timetable\nSummer sailings resume.")
    os.rename(incoming, settings.inbox_dir / "renamed.txt")
    assert watched.wait(5.0)
    time.sleep(0.2)  # the watch reads its events

    [first, second] = source.poll()

    assert {first.articles[0].title, second.articles[0].title} == {
        "Night buses return to the city centre",
        "Ferry timetable",
    }


def test_a_file_still_open_for_writing_is_not_taken_at_the_first_scan(
    source: InboxSource, settings: Settings, watched: threading.Event
) -> None:
    with (settings.inbox_dir / "slow.txt").open("w", encoding="utf-8") as writing:
        writing.write("Half a headline")
        writing.flush()
        assert watched.wait(5.0), "the file's creation wakes the fetcher"
        time.sleep(0.2)
        assert list(source.poll()) == [], "created but not closed: not known to be whole"
        writing.write(" and the rest\nThe body follows.")
