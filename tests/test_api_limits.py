"""Request limits on a real uvicorn: a body too large, or sent without a token, is refused unread."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.api.app import create_app
from shared.store.sqlite import SqliteStore
from shared.tokens import create_token
from tests.api_server import LiveAPI, serve

LIMIT = 100_000


@pytest.fixture
def live(settings, redis_client, tmp_path: Path) -> Iterator[LiveAPI]:
    settings.api_max_body_bytes = LIMIT
    app = create_app(settings, store=SqliteStore(tmp_path / "store.sqlite3"), client=redis_client)
    with serve(app) as live_api:
        yield live_api


def exchange(live: LiveAPI, head: str, chunks: Iterator[bytes]) -> tuple[int, dict, int]:
    """Send a request head and then body chunks until the server answers or stops reading;
    the status, the JSON body and how many body bytes went out."""
    sent = 0
    with socket.create_connection((live.host, live.port), timeout=5) as connection:
        connection.sendall(head.encode())
        try:
            for chunk in chunks:
                connection.settimeout(2)
                connection.sendall(chunk)
                sent += len(chunk)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: what it answered is waiting
        connection.settimeout(5)
        reply = b""
        try:
            while b"\r\n\r\n" not in reply or len(reply.partition(b"\r\n\r\n")[2]) < _length(reply):
                data = connection.recv(65536)
                if not data:
                    break
                reply += data
        except (TimeoutError, ConnectionResetError):
            pass
    head_text, _, body = reply.partition(b"\r\n\r\n")
    status = int(head_text.split()[1])
    return status, json.loads(body[: _length(reply)] or b"{}"), sent


def _length(reply: bytes) -> int:
    for line in reply.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def fixed(path: str, size: int, token: str | None = None) -> str:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}Content-Length: {size}\r\n\r\n"


def chunked(path: str, token: str | None = None) -> str:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}Transfer-Encoding: chunked\r\n\r\n"
    )


def megabytes(count: int, *, framed: bool) -> Iterator[bytes]:
    piece = b"[" + b" " * (1 << 20)
    for _ in range(count):
        yield (f"{len(piece):x}\r\n".encode() + piece + b"\r\n") if framed else piece


BIG = 300 * (1 << 20)


@pytest.mark.parametrize("path", ["/articles", "/subscriptions", "/websub/some-key"])
def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(live, redis_client, path):
    token = create_token(redis_client, "alice")
    status, body, sent = exchange(live, fixed(path, BIG, token), megabytes(300, framed=False))
    assert status == 413
    assert body["error"]["status"] == 413 and str(LIMIT) in body["error"]["message"]
    assert sent < BIG / 4  # the server answered and stopped reading long before the end


@pytest.mark.parametrize("path", ["/articles", "/subscriptions"])
def test_a_body_without_a_valid_token_is_refused_before_it_is_read(live, path):
    # Under the size limit, but unauthenticated: not a byte of the body is needed to say no.
    status, body, _ = exchange(live, fixed(path, LIMIT - 10, "ww_not-a-token"), iter([]))
    assert status == 401 and body["error"]["status"] == 401


def test_a_chunked_body_is_cut_off_at_the_limit(live, redis_client):
    token = create_token(redis_client, "alice")
    status, body, sent = exchange(live, chunked("/articles", token), megabytes(300, framed=True))
    assert status == 413 and body["error"]["message"].startswith("the request body is larger than")
    assert sent < BIG / 4


def test_a_body_under_the_limit_goes_through(live, redis_client):
    token = create_token(redis_client, "alice")
    article = json.dumps({"url": "https://example.org/a", "title": "Missile test", "text": "A missile was fired."})
    status, body, _ = exchange(live, fixed("/articles", len(article), token), iter([article.encode()]))
    assert status == 202 and body["accepted"] == 1
