"""Backfilling an archive: every readable file under the given paths, read in place (nothing
is moved), a batch at a time, so a tree of any size never sits in memory at once."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from shared.deadletters import quarantine
from shared.formats.files import shown
from shared.formats.limits import Limits
from shared.formats.mapping import UnreadableFile
from shared.formats.readers import SUPPORTED_SUFFIXES, read_file_report
from shared.sources.batcher import Batcher
from shared.sources.delivery import Delivery

PROGRESS_EVERY = 200  # files between two progress reports


@dataclass
class BackfillReport:
    files: int = 0
    articles: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)


def walk(paths: Iterable[Path]) -> Iterator[Path]:
    """Files under `paths` in a stable order, lazily; hidden and partial files are skipped."""
    for path in paths:
        if not path.is_dir():
            # named by the user: a link is theirs to follow; what it leads to must still be a file
            yield path.resolve() if path.is_symlink() else path
            continue
        for folder, folders, files in os.walk(path):
            folders[:] = sorted(name for name in folders if not name.startswith("."))
            for name in sorted(files):
                if not name.startswith(".") and not name.endswith((".part", ".tmp")):
                    yield Path(folder) / name


def backfill(
    paths: Iterable[Path],
    batcher: Batcher,
    client: redis.Redis,
    progress: Callable[[int, int], None] | None = None,
    limits: Limits | None = None,
) -> BackfillReport:
    """Queue every article found; files that cannot be read are reported and dead-lettered.
    Only regular files are read: a link, FIFO or device met on the way is reported."""
    report = BackfillReport()
    limits = limits or Limits.from_settings()
    for path in walk(paths):
        report.files += 1
        reason = None
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            reason = f"unsupported file type {shown(path.suffix) or '(none)'!r}"
        else:
            try:
                reading = read_file_report(path, source="ingest", limits=limits)
            except UnreadableFile as error:
                reason = str(error)
            except OSError as error:
                reason = f"cannot read: {error}"
            except Exception as error:  # one file's surprise must not end the backfill
                reason = f"could not be read ({type(error).__name__}: {error})"
        if reason is not None:
            report.rejected.append((shown(path), reason))
            quarantine(client, stage="read", reason=reason, item={"file": shown(path)})
            batcher.add(Delivery([], rejected=1))
        else:
            for number, problem in reading.problems:
                item = {"file": shown(path), reading.unit: number, "content": reading.bad_lines.get(number, "")[:2000]}
                quarantine(client, stage="read", reason=problem, item=item)
            report.articles += len(reading.articles)
            batcher.add(Delivery(reading.articles, rejected=len(reading.problems)))
        if progress is not None and report.files % PROGRESS_EVERY == 0:
            progress(report.files, report.articles)
    batcher.flush()
    if progress is not None:
        progress(report.files, report.articles)
    return report
