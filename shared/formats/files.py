"""Opening dropped files safely, and showing their names whatever bytes those are.

A drop folder is written by others: a name may be any bytes, and an entry may be a symbolic
link out of the folder, a FIFO that blocks whoever opens it, or a device. Only regular files
are read, and the check is made on the opened descriptor (`fstat`), so nothing can be swapped
in between the look and the read.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from shared.article import valid_text
from shared.formats.mapping import UnreadableFile


class NotRegularFile(UnreadableFile):
    """An entry that is not a regular file (a link, a FIFO, a device, a folder)."""


def shown(value: str | os.PathLike[str]) -> str:
    """A file name as printable text: bytes that are not UTF-8 appear as `\\xNN`, so the name
    can be logged, written to a `.reason` file or kept as JSON, and still told apart."""
    return valid_text(os.fspath(value))


def kind_of(mode: int) -> str | None:
    """What an entry is, in words, when it is not a regular file; None when it is one."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def relative_parts(path: Path, folder: Path) -> tuple[str, ...]:
    """`path.relative_to(folder).parts`, by string for the usual case of a path made under
    `folder` (the pathlib way parses both paths again, on every file)."""
    start = os.path.join(os.fspath(folder), "")
    text = os.fspath(path)
    if text.startswith(start) and len(text) > len(start):
        parts = tuple(text[len(start) :].split(os.sep))
        if "" not in parts and "." not in parts:
            return parts
    return path.relative_to(folder).parts


def open_regular(path: Path, inside: Path | None = None) -> int:
    """A read-only descriptor of `path`, which must be a regular file; raises `NotRegularFile`
    otherwise. With `inside`, every folder between it and the file is opened without following
    links, so a linked folder cannot lead out of it."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    folder_flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    parts = relative_parts(path, inside) if inside is not None else (os.fspath(path),)
    if len(parts) == 1 and inside is not None:
        # Straight inside: the folder's own path is followed either way, so open by the whole name.
        parts = (os.path.join(inside, parts[0]),)
        inside = None
    folder = os.open(inside, os.O_RDONLY | os.O_DIRECTORY) if inside is not None else None
    try:
        for part in parts[:-1]:
            try:
                below = os.open(part, folder_flags, dir_fd=folder)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise NotRegularFile(f"{part!r} on the way is a symbolic link or not a folder") from None
                raise
            if folder is not None:
                os.close(folder)
            folder = below
        try:
            descriptor = os.open(parts[-1], flags, dir_fd=folder)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise NotRegularFile("a symbolic link, not a regular file: it is not followed") from None
            raise
    finally:
        if folder is not None:
            os.close(folder)
    kind = kind_of(os.fstat(descriptor).st_mode)
    if kind is not None:
        os.close(descriptor)
        raise NotRegularFile(f"{kind}, not a regular file")
    os.set_blocking(descriptor, True)
    return descriptor
