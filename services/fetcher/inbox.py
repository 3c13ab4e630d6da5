"""The drop folder: files dropped into the inbox become articles.

A file that has been read and queued moves to `processed/`; one that cannot be read moves to
`rejected/` beside a `.reason` file. Nothing is ever deleted, and the folder layout under the
inbox is kept.
"""

from __future__ import annotations

import functools
import logging
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from services.fetcher.decode import UnreadableFile
from services.fetcher.readers import read_file
from services.fetcher.sources import Delivery

log = logging.getLogger(__name__)

PARTIAL_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial")
SETTLE_SECONDS = 1.0  # a file modified more recently than this may still be being written


class InboxSource:
    """Reads the files in the inbox, subfolders included, oldest first."""

    name = "inbox"

    def __init__(self, inbox: Path, processed: Path, rejected: Path, *, settle_seconds: float = SETTLE_SECONDS) -> None:
        self.inbox, self.processed, self.rejected = inbox, processed, rejected
        self.settle_seconds = settle_seconds
        inbox.mkdir(parents=True, exist_ok=True)

    def poll(self, *, settle: bool = True) -> Iterator[Delivery]:
        """Read the files that are ready; `settle=False` takes every file at once (a one-off pass
        started after the files were dropped)."""
        for path in self._ready_files(self.settle_seconds if settle else 0.0):
            try:
                articles = read_file(path)
            except UnreadableFile as error:
                self._reject(path, str(error))
                yield Delivery([], rejected=1)
                continue
            except OSError as error:
                log.warning("cannot read %s yet: %s", path, error)
                continue
            except Exception as error:  # a reader's bug must not stop the inbox: keep the file, say why
                log.exception("reading %s failed", path)
                self._reject(path, f"could not be read ({type(error).__name__}: {error})")
                yield Delivery([], rejected=1)
                continue
            yield Delivery(articles, on_enqueued=functools.partial(self._processed, path))

    def _ready_files(self, settle_seconds: float) -> list[Path]:
        now = time.time()
        ready = []
        for path in self.inbox.rglob("*"):
            if not path.is_file() or path.name.startswith("."):
                continue
            if path.suffix.lower() in PARTIAL_SUFFIXES:
                continue
            try:
                modified = path.stat().st_mtime
            except FileNotFoundError:
                continue
            if now - modified >= settle_seconds:
                ready.append((modified, path))
        return [path for _, path in sorted(ready)]

    def _processed(self, path: Path) -> None:
        self._move(path, self.processed)

    def _reject(self, path: Path, reason: str) -> None:
        target = self._move(path, self.rejected)
        target.with_name(target.name + ".reason").write_text(
            f"{reason}\nfile: {path}\nrejected at: {datetime.now(UTC).isoformat()}\n", "utf-8"
        )
        log.warning("rejected %s: %s", path, reason)

    def _move(self, path: Path, folder: Path) -> Path:
        target = folder / path.relative_to(self.inbox)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # the same name dropped again: keep both
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            target = target.with_name(f"{target.stem}.{stamp}{target.suffix}")
        shutil.move(path, target)
        return target
