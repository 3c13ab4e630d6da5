"""One webhook delivery over HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx


class DeliveryRefused(Exception):
    """The receiver answered with a client error: retrying will not help."""


class DeliveryFailed(Exception):
    """The receiver could not be reached or failed (timeout, 5xx, 429): worth retrying."""


def post_alert(url: str, alert: dict[str, Any], *, timeout: float, user_agent: str) -> int:
    """POST the alert as JSON; returns the status, or raises DeliveryFailed / DeliveryRefused."""
    body = json.dumps(alert, ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": user_agent}
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as error:
        raise DeliveryFailed(f"{type(error).__name__}: {error}") from error
    if response.status_code in (408, 429) or response.status_code >= 500:
        raise DeliveryFailed(f"HTTP {response.status_code}")
    if response.status_code >= 300:
        raise DeliveryRefused(f"HTTP {response.status_code}: {response.text[:200]}")
    return response.status_code
