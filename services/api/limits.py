"""Limits applied before a route runs: the size of a request body, and a token before a body.

A route's body is read (and parsed) before its dependencies run, so without this a client
with no token could make the API hold any body it liked in memory before being refused.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio.to_thread
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.deps import owner
from services.api.errors import error_response

# A refusal before the body is read closes the connection: the rest of the body is never read.
_CLOSE = {"Connection": "close"}


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes", headers=_CLOSE)


class RequestLimits:
    """ASGI middleware: a body over `max_bytes` is refused with 413 before it is read (by its
    Content-Length, or as soon as a chunked body passes the limit), and a request with a body
    to a route that needs a token is refused with 401 before the body is read when the token
    is missing or unknown (`token_owner` answers None)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, token_owner: Callable[[str], str | None]) -> None:
        self.app, self.max_bytes, self.token_owner = app, max_bytes, token_owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            status = 413 if length.isdigit() else 400
            await self._refuse(scope, receive, send, BodyTooLarge(self.max_bytes) if status == 413 else None)
            return
        received = 0
        started = False
        checked = False

        async def limited_receive() -> Message:
            nonlocal received, checked
            if not checked:
                # Routing has chosen the route by the first read of the body: a route that
                # needs a token refuses a request without one before reading anything.
                checked = True
                if _needs_token(scope.get("route")) and not await self._authorized(headers):
                    raise HTTPException(
                        401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer", **_CLOSE}
                    )
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except (BodyTooLarge, HTTPException) as error:
            if started:
                raise
            await self._refuse(scope, receive, send, error)

    async def _authorized(self, headers: Headers) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        # The token lookup is a blocking Redis call: off the event loop, as routes run.
        return await anyio.to_thread.run_sync(self.token_owner, token.strip()) is not None

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, error: HTTPException | None) -> None:
        if error is None:
            response = error_response(400, "Content-Length is not a number", [], None)
        else:
            response = error_response(error.status_code, str(error.detail), [], dict(error.headers or {}) or None)
        response.headers.update(_CLOSE)
        await response(scope, receive, send)


def _needs_token(route: object) -> bool:
    return isinstance(route, APIRoute) and _depends_on_owner(route.dependant)


def _depends_on_owner(dependant: Dependant) -> bool:
    return any(sub.call is owner or _depends_on_owner(sub) for sub in dependant.dependencies)
