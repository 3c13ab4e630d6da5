"""The WebSub callback: a hub's verification of intent, and its signed deliveries."""

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.responses import PlainTextResponse

from services.api.deps import Clients
from shared.feeds.websub import (
    InvalidVerification,
    UnknownCallback,
    callback_state,
    confirm_intent,
    signed_by_hub,
)
from shared.sources.push import push_feed

log = logging.getLogger(__name__)

router = APIRouter(tags=["websub"])


async def _body(request: Request) -> bytes:
    # Read on the event loop (it is only awaiting the socket); the route runs in the pool.
    return await request.body()


@router.get("/websub/{key}", response_class=PlainTextResponse)
def verify(key: str, request: Request, clients: Clients) -> PlainTextResponse:
    """A hub's verification of intent: echo the challenge only for a subscription we asked for."""
    try:
        challenge = confirm_intent(clients.redis, key, request.query_params, clients.settings.websub_lease_seconds)
    except UnknownCallback as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None
    except InvalidVerification as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from None
    return PlainTextResponse(challenge)


@router.post("/websub/{key}", status_code=status.HTTP_202_ACCEPTED)
def deliver(key: str, request: Request, body: Annotated[bytes, Depends(_body)], clients: Clients) -> Response:
    """Content pushed by a hub, taken only with a valid signature (X-Hub-Signature)."""
    try:
        state = callback_state(clients.redis, key)
    except UnknownCallback as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None
    if not signed_by_hub(state, body, request.headers.get("x-hub-signature", "")):
        # The spec wants a 2xx even so, so that a forger learns nothing; the content is dropped.
        log.warning("WebSub delivery for %s with a bad signature dropped", state.url)
        return Response(status_code=status.HTTP_202_ACCEPTED)
    push_feed(clients.redis, state.url, body, {k.lower(): v for k, v in request.headers.items()})
    return Response(status_code=status.HTTP_202_ACCEPTED)
