"""Waking the fetcher when a file lands in the inbox: Linux inotify read directly.

Only what can bring a file in is asked for: a file or folder created, moved in, or closed after
writing. Each read takes a whole buffer of events and sets the wake once; events are looked at
only to watch folders that appear. A file leaving the inbox (the fetcher's own moves) is no
event here at all. Where inotify cannot be had, `watch_folder` falls back to watchdog.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import select
import struct
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_ISDIR = 0x40000000
IN_CLOEXEC = 0o2000000
LANDING = IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE
WHOLE = IN_MOVED_TO | IN_CLOSE_WRITE  # a file renamed in, or closed by its writer: complete
_EVENT = struct.Struct("iIII")  # watch, mask, cookie, name length; the name follows
_BUFFER_BYTES = 1 << 16
_STOP_CHECK_SECONDS = 0.5


class InotifyWatch:
    """Sets `wake` whenever a file lands anywhere under `folder` (folders made or moved in later
    included; linked folders are not followed). Raises OSError when inotify cannot watch it."""

    def __init__(self, folder: Path, wake: threading.Event, landed: Callable[[str], None] | None = None) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._add_watch = libc.inotify_add_watch
        self._add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self._fd = libc.inotify_init1(IN_CLOEXEC)
        if self._fd < 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))
        self.folder, self.wake, self.landed = folder, wake, landed
        self._folders: dict[int, bytes] = {}  # watch descriptor -> folder
        self._stopping = threading.Event()
        try:
            self._watch_tree(os.fsencode(folder), must=True)
        except OSError:
            os.close(self._fd)
            raise
        self._thread = threading.Thread(target=self._run, name="inbox-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _watch_tree(self, top: bytes, *, must: bool = False) -> None:
        for folder, _, _ in os.walk(top):  # os.walk does not descend into linked folders
            watch = self._add_watch(self._fd, folder, LANDING | IN_ONLYDIR | IN_DONT_FOLLOW)
            if watch >= 0:
                self._folders[watch] = folder
                continue
            error = ctypes.get_errno()
            if must or error == errno.ENOSPC:  # out of watches: the timer scans must do
                raise OSError(error, f"inotify cannot watch {os.fsdecode(folder)!r}: {os.strerror(error)}")
            # A folder gone or replaced since the walk listed it: nothing in it to watch.

    def _run(self) -> None:
        waiting = select.poll()
        waiting.register(self._fd, select.POLLIN)
        try:
            while not self._stopping.is_set():
                if waiting.poll(_STOP_CHECK_SECONDS * 1000):
                    self._take(os.read(self._fd, _BUFFER_BYTES))
        except Exception:  # the timer scans still find every file
            log.exception("inbox watch stopped; scanning on the timer alone")
        finally:
            os.close(self._fd)

    def _take(self, events: bytes) -> None:
        self.wake.set()
        offset = 0
        while offset < len(events):
            watch, mask, _, length = _EVENT.unpack_from(events, offset)
            name = events[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0")
            offset += _EVENT.size + length
            if mask & IN_Q_OVERFLOW:  # events were lost: watch whatever folders came meanwhile
                self._watch_tree(os.fsencode(self.folder))
            elif mask & IN_IGNORED:
                self._folders.pop(watch, None)
            elif mask & IN_ISDIR and watch in self._folders:
                self._watch_tree(os.path.join(self._folders[watch], name))
            elif mask & WHOLE and self.landed is not None and watch in self._folders:
                self.landed(os.fsdecode(os.path.join(self._folders[watch], name)))


def watch_folder(folder: Path, wake: threading.Event, landed: Callable[[str], None] | None = None) -> Any:
    """Set `wake` whenever something lands under `folder`, and pass `landed` the path of each
    file seen renamed in or closed after writing (with inotify only): an object with `stop()`,
    or None when file events are not available here (the fetcher then scans on its timer alone)."""
    if sys.platform.startswith("linux"):
        try:
            return InotifyWatch(folder, wake, landed)
        except (OSError, AttributeError) as error:  # AttributeError: a C library without inotify
            log.warning("no inotify for %s (%s); trying watchdog", folder, error)
    return _watchdog(folder, wake)


def _watchdog(folder: Path, wake: threading.Event) -> Any:
    try:
        from watchdog.events import (
            DirCreatedEvent,
            DirMovedEvent,
            FileClosedEvent,
            FileCreatedEvent,
            FileMovedEvent,
            FileSystemEvent,
            FileSystemEventHandler,
        )
        from watchdog.observers import Observer
    except ImportError:
        return None

    class Waker(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            wake.set()

    # Only what can bring a file in: a file landing, moved in, or finished being written.
    landing = [FileCreatedEvent, FileMovedEvent, FileClosedEvent, DirCreatedEvent, DirMovedEvent]
    observer = Observer()
    try:
        observer.schedule(Waker(), str(folder), recursive=True, event_filter=landing)
        observer.start()
    except OSError as error:  # e.g. the inotify watch limit: polling still works
        log.warning("no file events for %s (%s); scanning every few seconds", folder, error)
        return None
    return observer
