"""The WebSub callback: a hub's verification of intent, and its signed deliveries."""

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import PlainTextResponse

from services.api.deps import Clients
from services.api.errors import refusals
from shared.feeds.websub import (
    InvalidVerification,
    UnknownCallback,
    callback_state,
    confirm_intent,
    signed_by_hub,
)
from shared.sources.push import push_feed

log = logging.getLogger(__name__)

router = APIRouter(tags=["websub"], responses=refusals(404, 422))
_CHALLENGE = {"description": "The hub's challenge, echoed", "content": {"text/plain": {"schema": {"type": "string"}}}}


async def _body(request: Request) -> bytes:
    # Read on the event loop (it is only awaiting the socket); the route runs in the pool.
    return await request.body()


# Not response_class=PlainTextResponse: that would document the refusals as text too.
@router.get("/websub/{key}", response_model=None, responses={200: _CHALLENGE, **refusals(400)})
def verify(
    key: str,
    clients: Clients,
    mode: Annotated[str | None, Query(alias="hub.mode")] = None,
    topic: Annotated[str | None, Query(alias="hub.topic")] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge")] = None,
    lease_seconds: Annotated[str | None, Query(alias="hub.lease_seconds", description="whole seconds")] = None,
    reason: Annotated[str | None, Query(alias="hub.reason")] = None,
) -> PlainTextResponse:
    """A hub's verification of intent: echo the challenge only for a subscription we asked for
    and that waits for it (a forged or repeated one is 404); a lease that is not a positive
    whole number is 400."""
    named = {"hub.mode": mode, "hub.topic": topic, "hub.challenge": challenge, "hub.lease_seconds": lease_seconds}
    params = {name: value for name, value in {**named, "hub.reason": reason}.items() if value is not None}
    try:
        answer = confirm_intent(clients.redis, key, params, clients.settings.websub_lease_seconds)
    except UnknownCallback as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None
    except InvalidVerification as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from None
    return PlainTextResponse(answer)


@router.post("/websub/{key}", status_code=status.HTTP_202_ACCEPTED, responses=refusals(413))
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
