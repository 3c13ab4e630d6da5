"""The API served by a real uvicorn on a free local port, for tests that need real sockets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI


@dataclass
class LiveAPI:
    url: str
    host: str
    port: int


@contextmanager
def serve(app: FastAPI) -> Iterator[LiveAPI]:
    """Serve `app` until the block ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield LiveAPI(f"http://127.0.0.1:{port}", "127.0.0.1", port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
