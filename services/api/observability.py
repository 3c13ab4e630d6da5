"""The API's metrics: GET /metrics (no token, like /health: keep the API's port on the private
network the scraper is on), and each answered request counted by its route template."""

from __future__ import annotations

import redis
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.metrics import HTTP_REQUESTS, HTTP_SECONDS, metrics_registry


def add_metrics(app: FastAPI, client: redis.Redis) -> None:
    """Serve this process's metrics and what Redis holds at /metrics."""
    registry = metrics_registry(client)

    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)


def route_of(request: Request) -> str:
    """The matched route's template (`/subscriptions/{subscription_id}`): no ids, no keys."""
    return str(getattr(request.scope.get("route"), "path", "unmatched"))


def record_request(request: Request, status: int, seconds: float) -> None:
    """Count one answered request."""
    route = route_of(request)
    HTTP_REQUESTS.labels(request.method, route, str(status)).inc()
    HTTP_SECONDS.labels(route).observe(seconds)
