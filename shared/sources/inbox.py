"""The drop folder: files dropped into the inbox become articles.

A file that has been read and queued moves to `processed/`; one that cannot be read moves to
`rejected/` beside a `.reason` file. A file read only in part (bad lines in a `.jsonl`) moves
to `processed/` beside a `.problems` file, and its bad lines become dead letters. Nothing is
ever deleted, and the folder layout under the inbox is kept.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import logging
import os
import shutil
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import redis

from shared.deadletters import quarantine
from shared.formats.files import kind_of, relative_parts, shown
from shared.formats.limits import Limits
from shared.formats.mapping import UnreadableFile
from shared.formats.readers import FileReading, read_file_report
from shared.sources.delivery import Delivery

log = logging.getLogger(__name__)

PARTIAL_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial")
SETTLE_SECONDS = 1.0  # a file modified more recently than this may still be being written
DEAD_LETTER_LINE_CHARS = 2000  # a bad line kept as a dead letter is cut to this length


def _same_content(first: Path, second: Path) -> bool:
    one, other = first.lstat(), second.lstat()
    if not (stat.S_ISREG(one.st_mode) and stat.S_ISREG(other.st_mode)) or one.st_size != other.st_size:
        return False
    return _digest(first) == _digest(second)


def _digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def _by_name(entry: os.DirEntry[str]) -> str:
    return entry.name


class InboxSource:
    """Reads the files in the inbox, subfolders included, oldest first.

    While watching, a file is read once it is older than `settle_seconds` and its size and
    modification time have not changed since the previous scan: a slow copy that stalls for
    longer than the settle time is still not read half-written. A file the folder watch saw
    renamed in or closed by its writer (`landed`) is whole and read at the next scan. Bad lines of a file go to the
    dead-letter list when `dead_letters` is given.

    Only regular files inside the inbox are read. Symbolic links (to files or folders, dangling
    or not), FIFOs, devices and sockets move to `rejected/` as they are, with the reason: a
    link is never followed out of the inbox, and nothing blocks on a pipe."""

    name = "inbox"

    def __init__(
        self,
        inbox: Path,
        processed: Path,
        rejected: Path,
        *,
        settle_seconds: float = SETTLE_SECONDS,
        dead_letters: redis.Redis | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.inbox, self.processed, self.rejected = inbox, processed, rejected
        self.limits = limits or Limits.from_settings()
        self.settle_seconds = settle_seconds
        self.dead_letters = dead_letters
        self._last_scan: dict[str, tuple[int, int]] = {}  # (size, mtime in ns) by file path, at the previous scan
        self.waiting = 0  # files seen at the last scan but not settled yet
        self._whole: set[str] = set()  # files the folder watch saw renamed in or closed after writing
        inbox.mkdir(parents=True, exist_ok=True)

    def landed(self, path: str) -> None:
        """Note a file the folder watch saw renamed in or closed by its writer: it is whole, so
        the next scan reads it without waiting to see it unchanged twice. Called from the
        watch's thread; a mark lost to a race costs one scan, never a file."""
        self._whole.add(path)

    def poll(self, *, settle: bool = True) -> Iterator[Delivery]:
        """Read the files that are ready; `settle=False` takes every file at once (a one-off pass
        started after the files were dropped)."""
        ready, refused = self._scan(settle)
        for path, reason in refused:
            self._reject(path, reason)
            yield Delivery([], rejected=1)
        for path in ready:
            try:
                reading = read_file_report(path, limits=self.limits, inside=self.inbox)
            except UnreadableFile as error:
                self._reject(path, str(error))
                yield Delivery([], rejected=1)
                continue
            except FileNotFoundError:
                continue  # taken away since the scan
            except OSError as error:
                log.warning("cannot read %s yet: %s", shown(path), error)
                continue
            except Exception as error:  # a reader's bug must not stop the inbox: keep the file, say why
                log.exception("reading %s failed", shown(path))
                self._reject(path, f"could not be read ({type(error).__name__}: {error})")
                yield Delivery([], rejected=1)
                continue
            yield Delivery(
                reading.articles,
                on_enqueued=functools.partial(self._processed, path, reading),
                rejected=len(reading.problems),
            )

    def _scan(self, settle: bool) -> tuple[list[Path], list[tuple[Path, str]]]:
        """The regular files ready to read, oldest first, and the entries refused with why."""
        now = time.time()
        settle_seconds = self.settle_seconds if settle else 0.0
        # Keyed by the name as text: a Path made for every entry of every scan would cost more
        # than the scan's system calls; only the files taken become Paths.
        scan: dict[str, tuple[int, int]] = {}
        whole = self._whole
        ready = []
        refused = []
        for name, info in self._entries():
            kind = kind_of(info.st_mode)
            if kind is not None:
                path = Path(name)
                target = " (dangling)" if stat.S_ISLNK(info.st_mode) and not path.exists() else ""
                refused.append((path, f"{kind}{target}, not a regular file: only regular files are read"))
                continue
            if name.lower().endswith(PARTIAL_SUFFIXES):
                continue
            scan[name] = seen = (info.st_size, info.st_mtime_ns)
            if name in whole:
                ready.append((info.st_mtime, name))
                continue
            if settle and self._last_scan.get(name) != seen:
                continue  # new, or still growing since the previous scan
            if now - info.st_mtime >= settle_seconds:
                ready.append((info.st_mtime, name))
        whole.difference_update([name for name in list(whole) if name not in scan])
        self._last_scan = scan
        self.waiting = len(scan) - len(ready)
        return [Path(name) for _, name in sorted(ready)], refused

    def _entries(self) -> Iterator[tuple[str, os.stat_result]]:
        """Every visible entry under the inbox, by its path, with its own status (links not
        followed); real folders are descended into, linked ones are entries like any other."""
        folders = [os.fspath(self.inbox)]
        while folders:
            folder = folders.pop()
            try:
                with os.scandir(folder) as found:
                    entries = sorted(found, key=_by_name)
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(info.st_mode):
                    folders.append(entry.path)
                else:
                    yield entry.path, info

    def _processed(self, path: Path, reading: FileReading) -> None:
        target = self._move(path, self.processed)
        if not reading.problems:
            return
        lines = [f"{reading.unit} {number}: {reason}" for number, reason in reading.problems]
        target.with_name(target.name + ".problems").write_text(
            "\n".join(lines) + f"\nfile: {shown(path)}\nread at: {datetime.now(UTC).isoformat()}\n", "utf-8"
        )
        log.warning(
            "%s: %d bad %ss skipped, listed in %s.problems",
            shown(path),
            len(reading.problems),
            reading.unit,
            shown(target.name),
        )
        if self.dead_letters is None:
            return
        try:
            for number, reason in reading.problems:
                content = reading.bad_lines.get(number, "")[:DEAD_LETTER_LINE_CHARS]
                item = {"file": shown(target), reading.unit: number, "content": content}
                quarantine(self.dead_letters, stage="read", reason=reason, item=item)
        except redis.RedisError:
            # Raising here would keep the batch's other files from moving on; the .problems file
            # and the file itself in processed/ still hold every bad line.
            log.exception("could not keep the bad lines of %s as dead letters", shown(target))

    def _reject(self, path: Path, reason: str) -> None:
        target = self._move(path, self.rejected)
        target.with_name(target.name + ".reason").write_text(
            f"{reason}\nfile: {shown(path)}\nrejected at: {datetime.now(UTC).isoformat()}\n", "utf-8"
        )
        log.warning("rejected %s: %s", shown(path), reason)

    def _move(self, path: Path, folder: Path) -> Path:
        target = folder.joinpath(*relative_parts(path, self.inbox))
        if os.path.lexists(target):
            if _same_content(path, target):  # a move cut short after its copy: finish it
                path.unlink()
                return target
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")  # the same name dropped again: keep both
            target = target.with_name(f"{target.stem}.{stamp}{target.suffix}")
        try:
            _replace_into(path, target)  # one filesystem: atomic
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            target.parent.mkdir(parents=True, exist_ok=True)
            # Another filesystem (a bind-mounted inbox): copy under a temporary name, put it in
            # place in one rename, then remove the original. A crash in between leaves the file
            # in both places, and the next move finds the copy and finishes.
            partial = target.with_name(f".{target.name}.partial")
            _copy_entry(path, partial)
            os.replace(partial, target)
            path.unlink()
        return target


def _replace_into(path: Path, target: Path) -> None:
    """`os.replace`, making the target's folder only when it is missing (a mkdir before every
    move would cost more than the move)."""
    try:
        os.replace(path, target)
    except FileNotFoundError:
        if not os.path.lexists(path):
            raise
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)


def _copy_entry(path: Path, copy: Path) -> None:
    """Copy a file to another filesystem, durably; a link, FIFO or device is copied as what it
    is (never through it), so a refused entry keeps its evidence without being opened."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        os.symlink(os.readlink(path), copy)
    elif stat.S_ISFIFO(info.st_mode):
        os.mkfifo(copy, stat.S_IMODE(info.st_mode))
    elif not stat.S_ISREG(info.st_mode):
        os.mknod(copy, info.st_mode, info.st_rdev)
    else:
        shutil.copy2(path, copy)
        with open(copy, "rb") as copied:
            os.fsync(copied.fileno())
