"""GET /alerts: the owner's alert history."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.api.deps import Clients, Owner

router = APIRouter(tags=["alerts"])


@router.get("/alerts")
def alerts(
    clients: Clients,
    who: Owner,
    status_filter: Annotated[str | None, Query(alias="status", description="delivered, retrying or failed")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """The owner's alert history, newest first; failed deliveries stay listed with their error."""
    history = clients.store.alert_history(limit, owner=who)
    return [entry for entry in history if status_filter is None or entry["status"] == status_filter]
