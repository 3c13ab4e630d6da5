"""Serving the API: bind its address, say where it listens, then hand the socket to uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from services.api.app import create_app
from shared.settings import Settings

log = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    """Serve the API on `WIREWATCH_API_BIND` until stopped. The request lines (one per request,
    from the app) and "listening on" are always logged; uvicorn's own access log is off."""
    logging.getLogger("services.api").setLevel(min(logging.INFO, logging.getLogger().getEffectiveLevel()))
    host, _, port = settings.api_bind.rpartition(":")
    config = uvicorn.Config(
        create_app(settings), host=host or "127.0.0.1", port=int(port), log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    sock = config.bind_socket()
    bound_host, bound_port = sock.getsockname()[:2]
    log.info("listening on http://%s:%d", bound_host, bound_port, extra={"address": f"{bound_host}:{bound_port}"})
    server.run(sockets=[sock])
