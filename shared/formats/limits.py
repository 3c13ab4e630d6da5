"""How much of anything a reader takes in: file, article, line and nesting sizes, and time.

Hostile input is refused before it is parsed, with a reason that names the limit and its
setting, so whoever dropped it knows what to change or to split.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from shared.formats.mapping import UnreadableFile
from shared.settings import Settings, get_settings


@dataclass(frozen=True)
class Limits:
    """The sizes and time one read may take (see the settings of the same names)."""

    max_file_bytes: int
    max_article_chars: int
    max_line_bytes: int
    max_nesting: int
    max_read_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Limits:
        """The limits the settings give (the process-wide settings when none are passed)."""
        settings = settings or get_settings()
        return cls(
            max_file_bytes=settings.max_file_bytes,
            max_article_chars=settings.max_article_chars,
            max_line_bytes=settings.max_line_bytes,
            max_nesting=settings.max_nesting,
            max_read_seconds=settings.max_read_seconds,
        )

    def check_file_size(self, size: int) -> None:
        if size > self.max_file_bytes:
            raise UnreadableFile(
                f"too large: {size} bytes, over the limit of {self.max_file_bytes} (WIREWATCH_MAX_FILE_BYTES)"
            )

    def article_problem(self, chars: int) -> str | None:
        """Why an article of this many characters is refused, or None when it is not."""
        if chars <= self.max_article_chars:
            return None
        return (
            f"article too large: {chars} characters, over the limit of {self.max_article_chars} "
            "(WIREWATCH_MAX_ARTICLE_CHARS)"
        )

    def check_nesting(self, text: str) -> None:
        """Refuse JSON nested deeper than `max_nesting`, before the parser recurses into it."""
        if text.count("[") + text.count("{") <= self.max_nesting:
            return  # the usual article: too few brackets to nest that deep
        # Strings first (an unterminated one runs to the end, so no quote is scanned twice),
        # then only brackets are left to count.
        brackets = _BRACKETS_ONLY.sub("", _JSON_STRING.sub("", text))
        depth = 0
        for char in brackets:
            if char in "[{":
                depth += 1
                if depth > self.max_nesting:
                    raise UnreadableFile(
                        f"nested too deeply: more than {self.max_nesting} levels of objects and lists "
                        "(WIREWATCH_MAX_NESTING)"
                    )
            else:
                depth -= 1


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\Z)', re.S)
_BRACKETS_ONLY = re.compile(r"[^\[\]{}]+")


class ReadClock:
    """The time one file's reading may still take; checked between the steps of a read."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.ends:
            raise UnreadableFile(
                f"reading took longer than the limit of {self.seconds:g} s (WIREWATCH_MAX_READ_SECONDS)"
            )
