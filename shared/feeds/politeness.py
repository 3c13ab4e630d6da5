"""Per-host politeness for the fetcher's thread pool: few requests at once, spaced out in time.

Hosts are told apart by lower-cased host name and port (the scheme's default port when none is
given), so one publisher is never hit by the whole pool at once however many feeds it has.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

MAX_RETRY_AFTER = 24 * 3600.0
_DEFAULT_PORTS = {"http": 80, "https": 443}
_DELTA_SECONDS = re.compile(r"[0-9]+")


@dataclass
class _Host:
    active: int = 0
    next_start: float = 0.0


class HostLimiter:
    """Thread-safe limit per host: at most `max_concurrent` requests in flight, and at least
    `min_delay` seconds between the starts of two requests to it."""

    def __init__(self, max_concurrent: int = 1, min_delay: float = 2.0) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, not {max_concurrent}")
        if min_delay < 0:
            raise ValueError(f"min_delay must not be negative, not {min_delay}")
        self.max_concurrent = max_concurrent
        self.min_delay = min_delay
        self._condition = threading.Condition()
        self._hosts: dict[str, _Host] = {}
        self._prune_at = 1024

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        """Block until url's host has a free slot and its next allowed start has come, then hold
        the slot for the body of the with-block; the next start to that host is min_delay later."""
        key = host_key(url)
        with self._condition:
            while True:
                state = self._hosts.setdefault(key, _Host())
                now = time.monotonic()
                if state.active < self.max_concurrent and now >= state.next_start:
                    break
                # a full host waits for a release (notify); a spaced-out one only for the clock
                self._condition.wait(None if state.active >= self.max_concurrent else state.next_start - now)
            state.active += 1
            state.next_start = now + self.min_delay
        try:
            yield
        finally:
            with self._condition:
                state.active -= 1
                self._prune()
                self._condition.notify_all()

    def defer(self, url: str, seconds: float) -> None:
        """Push the next allowed start to url's host at least `seconds` from now (a Retry-After);
        never pulls it earlier."""
        key = host_key(url)
        with self._condition:
            state = self._hosts.setdefault(key, _Host())
            state.next_start = max(state.next_start, time.monotonic() + seconds)

    def next_allowed(self, url: str) -> float:
        """The time.monotonic() time from which a request to url's host may start, ignoring
        whether a slot is free; now or earlier for a host that may start at once."""
        key = host_key(url)
        with self._condition:
            state = self._hosts.get(key)
            return state.next_start if state is not None else time.monotonic()

    def _prune(self) -> None:
        # forget idle hosts whose delay has passed, so a long run over many hosts stays small
        if len(self._hosts) < self._prune_at:
            return
        now = time.monotonic()
        self._hosts = {key: s for key, s in self._hosts.items() if s.active or s.next_start > now}
        self._prune_at = max(1024, 2 * len(self._hosts))


def host_key(url: str) -> str:
    """The politeness key of url: lower-cased host name and port, e.g. "example.com:443".
    Raises ValueError for a URL without a host."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise ValueError(f"no host in URL {url!r}")
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal, kept apart from the port
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    return f"{host}:{port}" if port else host


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header, given as delta-seconds or an HTTP date (relative
    to `now`, default the current time); None when absent or not valid (a negative number is not
    valid), 0 for a date in the past, and at most 24 hours."""
    text = (value or "").strip()
    if not text:
        return None
    if _DELTA_SECONDS.fullmatch(text):
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    now = now or datetime.now(UTC)
    # HTTP dates are GMT; a date or a `now` without a zone is taken as UTC
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER)
