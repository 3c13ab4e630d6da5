"""Heartbeats: every background loop says it is alive, so that `wirewatch health --service`
fails when a loop has stopped while its process stays up (a dead indexer thread in a live
worker would otherwise look healthy while nothing is stored)."""

from __future__ import annotations

import socket
import time

import redis

from shared import redis_keys

BEAT_EVERY_SECONDS = 5.0
QUIET_AFTER_SECONDS = 60  # a loop not heard from for this long has stopped

LOOPS: dict[str, tuple[str, ...]] = {
    "worker": ("bulk-indexer", "retries"),
    "fetcher": ("fetcher", "push"),
    "alerter": ("alerter",),
}
"""The loops each service runs."""


class Heartbeat:
    """One loop's heartbeat; `beat()` is cheap to call on every turn of the loop."""

    def __init__(self, client: redis.Redis, loop: str) -> None:
        self.client, self.key = client, redis_keys.heartbeat(loop, socket.gethostname())
        self._last = float("-inf")

    def beat(self) -> None:
        now = time.monotonic()
        if now - self._last >= BEAT_EVERY_SECONDS:
            self.client.set(self.key, str(time.time()), ex=QUIET_AFTER_SECONDS)
            self._last = now


def quiet_loops(client: redis.Redis, service: str, host: str | None = None) -> list[str]:
    """The loops of `service` on this host (or `host`) that have not beaten lately."""
    host = host or socket.gethostname()
    loops = LOOPS[service]
    found = client.mget([redis_keys.heartbeat(loop, host) for loop in loops])
    return [loop for loop, value in zip(loops, found, strict=True) if value is None]
