"""GET /alerts: the owner's alert history."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from services.api.deps import Clients, Owner
from services.api.errors import refusals

router = APIRouter(tags=["alerts"], responses=refusals(401, 422))


@router.get("/alerts")
def alerts(
    clients: Clients,
    who: Owner,
    status_filter: Annotated[
        Literal["delivered", "retrying", "failed", "cancelled"] | None, Query(alias="status")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """The owner's alert history, newest first; failed deliveries stay listed with their error."""
    return clients.store.alert_history(limit, owner=who, status=status_filter)
