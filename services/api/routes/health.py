"""GET /health: whether the API reaches Redis."""

from fastapi import APIRouter

from services.api.deps import Clients

router = APIRouter(tags=["service"])


@router.get("/health")
def health(clients: Clients) -> dict[str, str]:
    clients.redis.ping()
    return {"status": "ok"}
