"""WebSub: subscribing at a feed's hub, answering its verification of intent, and telling a
signed delivery from a forged one. The deliveries themselves are read like a poll's response
(`FeedSource.accept_push`), by the fetcher, from the push stream."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import redis

from shared import redis_keys
from shared.article import digest
from shared.feeds.state import FeedState
from shared.redis_client import as_text
from shared.settings import Settings

if TYPE_CHECKING:
    import httpx

PENDING_SECONDS = 3600  # a hub that has not verified within this long is asked again


class UnknownCallback(LookupError):
    """No subscription of ours has this callback, or none is pending."""


def subscribe(http: httpx.Client, settings: Settings, url: str, links: list[Any], state: FeedState) -> None:
    """Subscribe at the feed's hub (and renew the lease a day before it ends), when the feed
    names one and wirewatch has a public URL for the hub to call back."""
    # Imported here: the API answers hubs with this module and never subscribes.
    import httpx

    from shared.outbound import UnsafeURL

    if not settings.public_url:
        return
    hub = next((link.get("href") for link in links if link.get("rel") == "hub"), None)
    topic = next((link.get("href") for link in links if link.get("rel") == "self"), None) or url
    if not hub:
        return
    current = state.read()
    now = time.time()
    lease = float(current.get("websub_lease") or settings.websub_lease_seconds)
    renew_before = min(86400.0, lease / 10)  # a day before the end, or a tenth of a short lease
    if current.get("websub_state") == "verified" and float(current.get("websub_expires") or 0) > now + renew_before:
        return
    if current.get("websub_state") == "pending" and now - float(current.get("websub_requested") or 0) < PENDING_SECONDS:
        return  # asked recently; the hub has not verified yet
    callback_key = digest(url)
    secret = current.get("websub_secret") or secrets.token_urlsafe(24)
    form = {
        "hub.mode": "subscribe",
        "hub.topic": topic,
        "hub.callback": f"{settings.public_url.rstrip('/')}/websub/{callback_key}",
        "hub.secret": secret,
        "hub.lease_seconds": str(settings.websub_lease_seconds),
    }
    state.client.hset(redis_keys.WEBSUB_CALLBACKS, callback_key, url)
    state.record(
        websub_hub=hub, websub_topic=topic, websub_secret=secret, websub_state="pending", websub_requested=str(now)
    )
    try:
        reply = http.post(hub, data=form)
    except (httpx.HTTPError, OSError, UnsafeURL) as error:
        state.record(websub_state="failed", websub_note=f"hub unreachable: {error}")
        return
    if reply.status_code not in (202, 204):
        state.record(websub_state="failed", websub_note=f"hub answered HTTP {reply.status_code}")


def lease_active(state: FeedState) -> bool:
    """Whether a hub currently pushes this feed (so polling can slow down to a fallback)."""
    websub, expires = state.fields("websub_state", "websub_expires")
    return websub == "verified" and float(expires or 0) > time.time()


def callback_state(client: redis.Redis, key: str) -> FeedState:
    """The state of the feed a callback key belongs to; UnknownCallback if none does."""
    url = client.hget(redis_keys.WEBSUB_CALLBACKS, key)
    if url is None:
        raise UnknownCallback("unknown callback")
    return FeedState(client, as_text(url))


def confirm_intent(client: redis.Redis, key: str, params: Mapping[str, str], default_lease: int) -> str:
    """Answer a hub's verification of intent: the challenge to echo, only for a subscription
    we asked for (UnknownCallback otherwise); a denial is recorded and answered empty."""
    state = callback_state(client, key)
    current = state.read()
    mode, topic = params.get("hub.mode"), params.get("hub.topic")
    if mode == "denied":
        state.update(websub_state="denied", websub_note=params.get("hub.reason", ""))
        return ""
    if (
        mode != "subscribe"
        or topic != current.get("websub_topic")
        or current.get("websub_state")
        not in (
            "pending",
            "verified",
        )
    ):
        raise UnknownCallback("no such subscription pending")
    lease = int(params.get("hub.lease_seconds") or default_lease)
    state.update(websub_state="verified", websub_expires=str(time.time() + lease), websub_lease=str(lease))
    return params.get("hub.challenge", "")


def signed_by_hub(state: FeedState, body: bytes, header: str) -> bool:
    """Whether a delivery carries a valid signature under the secret we gave the hub."""
    (secret,) = state.fields("websub_secret")
    return bool(secret) and valid_hub_signature(secret, body, header)


def valid_hub_signature(secret: str, body: bytes, header: str) -> bool:
    """WebSub's `X-Hub-Signature: <method>=<hex HMAC of the body>` (sha1, sha256 or sha512)."""
    method, _, signature = header.partition("=")
    if method not in ("sha1", "sha256", "sha384", "sha512") or not signature:
        return False
    expected = hmac.new(secret.encode(), body, getattr(hashlib, method)).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())
