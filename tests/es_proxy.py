"""A real HTTP proxy in front of the test search node that records every request and can
answer, hold or alter chosen ones, to test what the node cannot do (index lifecycle
management) at the request level, and to inject per-document failures, overload and delays
into bulk requests."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, dict[str, Any]]


@dataclass
class Recorded:
    method: str
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class EsProxy:
    upstream: str
    requests: list[Recorded] = field(default_factory=list)
    answer: Callable[[Recorded], Answer | None] = lambda request: None
    """Return (status, body) to answer a request here instead of forwarding it."""
    alter_bulk: Callable[[list[dict[str, Any]], dict[str, Any]], dict[str, Any]] = lambda ops, reply: reply
    """Rewrite a forwarded `_bulk` reply; gets the request's action lines and the reply."""
    forward_body: Callable[[Recorded], bytes] = lambda request: request.body
    """The body forwarded to the node (the recorded request keeps what the client sent)."""
    url: str = ""

    def start(self) -> EsProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = Recorded(self.command, self.path, body, {k.lower(): v for k, v in self.headers.items()})
                proxy.requests.append(request)
                answered = proxy.answer(request)
                if answered is not None:
                    self._reply(answered[0], json.dumps(answered[1]).encode())
                    return
                status, reply = proxy._forward(request, self.headers.get("Content-Type"))
                if self.path.split("?")[0].endswith("/_bulk") and status == 200:
                    actions = [json.loads(line) for line in body.splitlines()[::2] if line.strip()]
                    reply = json.dumps(proxy.alter_bulk(actions, json.loads(reply))).encode()
                self._reply(status, reply)

            def _reply(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":  # a body after a HEAD answer would be read as the next reply
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def _forward(self, request: Recorded, content_type: str | None) -> tuple[int, bytes]:
        forwarded = urllib.request.Request(
            self.upstream + request.path,
            data=self.forward_body(request) if request.method in ("POST", "PUT") or request.body else None,
            method=request.method,
            headers={"Content-Type": content_type or "application/json"},
        )
        try:
            with urllib.request.urlopen(forwarded, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def sent(self, method: str, path_start: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_start)]
