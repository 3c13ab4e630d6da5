"""The wirewatch HTTP API (FastAPI; the OpenAPI document is at /openapi.json, docs at /docs).

Every route but /health needs `Authorization: Bearer <token>` (`wirewatch tokens create NAME`);
a token's owner sees and changes only their own subscriptions and alerts. Every refusal has
one shape: `{"error": {"status", "message", "problems": [...]}}`. The API stores and
reads; what is pushed to it goes to the fetcher through a Redis stream, so the API process
loads none of the pipeline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import redis
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.api.deps import Resources
from services.api.errors import error_response as _error
from services.api.limits import RequestLimits
from services.api.observability import add_metrics, record_request, route_of
from services.api.routes import alerts, articles, health, subscriptions, websub
from services.api.routes.ui import mount_ui
from shared.redis_client import get_redis
from shared.settings import Settings, get_settings
from shared.store import Store, open_store
from shared.tokens import owner_of

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, store: Store | None = None, client: redis.Redis | None = None
) -> FastAPI:
    """The API app, with its clients built here once; tests pass their own store and Redis."""
    settings = settings or get_settings()
    # /docs and /redoc load Swagger UI and ReDoc from files the package ships, not from a CDN.
    app = FastAPIOffline(title="wirewatch", version="0.1.0", description=__doc__)
    app.state.resources = Resources(
        settings=settings,
        redis=client if client is not None else get_redis(settings),
        store=store if store is not None else open_store(settings),
    )
    add_metrics(app, app.state.resources.redis)
    for module in (health, subscriptions, articles, websub, alerts):
        app.include_router(module.router)
    mount_ui(app)

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, error: StarletteHTTPException) -> JSONResponse:
        problems: list[object] = error.detail if isinstance(error.detail, list) else []
        message = error.detail if isinstance(error.detail, str) else "; ".join(map(str, problems))
        headers = dict(error.headers) if error.headers else None
        return _error(error.status_code, message, [str(problem) for problem in problems], headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}" for problem in error.errors()]
        return _error(422, "the request is not valid", problems, None)

    # Inside the request log, so a refused body is logged too.
    app.add_middleware(
        RequestLimits,
        max_bytes=settings.api_max_body_bytes,
        token_owner=lambda token: owner_of(app.state.resources.redis, token),
    )

    @app.middleware("http")
    async def log_request(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        seconds = time.perf_counter() - started
        record_request(request, response.status_code, seconds)
        path = route_of(request) if "{key}" in route_of(request) else request.url.path  # a WebSub key is a secret
        log.info(
            "%s %s %d %.1f ms",
            request.method,
            path,
            response.status_code,
            seconds * 1000,
            extra={
                "method": request.method,
                "path": path,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 1),
            },
        )
        return response

    return app
