"""What every route needs: the process's clients, and the owner of the request's token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import redis
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.settings import Settings
from shared.store import Store
from shared.tokens import owner_of


@dataclass(frozen=True)
class Resources:
    """Built once when the app is created."""

    settings: Settings
    redis: redis.Redis
    store: Store


def resources(request: Request) -> Resources:
    return request.app.state.resources  # type: ignore[no-any-return]


Clients = Annotated[Resources, Depends(resources)]

_bearer = HTTPBearer(auto_error=False)


def owner(clients: Clients, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """The token's owner; 401 without a valid token."""
    found = owner_of(clients.redis, credentials.credentials) if credentials else None
    if found is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    return found


Owner = Annotated[str, Depends(owner)]
