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
from shared.feeds.state import FeedState
from shared.redis_client import as_text
from shared.settings import Settings

if TYPE_CHECKING:
    import httpx

PENDING_SECONDS = 3600  # a hub that has not verified within this long is asked again


class UnknownCallback(LookupError):
    """No subscription of ours has this callback, or none is pending."""


class InvalidVerification(ValueError):
    """A verification of intent that is not well formed (a lease that is not a number)."""


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
    live = current.get("websub_state") in ("pending", "verified") and bool(current.get("websub_callback"))
    if (
        live
        and current.get("websub_state") == "verified"
        and float(current.get("websub_expires") or 0) > now + renew_before
    ):
        return
    if (
        live
        and current.get("websub_state") == "pending"
        and now - float(current.get("websub_requested") or 0) < PENDING_SECONDS
    ):
        return  # asked recently; the hub has not verified yet
    # The callback key is a random secret, kept while the subscription lives (renewals reuse
    # it): only the hub learns it, so no one else can verify or deliver in its name.
    callback_key = current["websub_callback"] if live else secrets.token_urlsafe(32)
    if not live and current.get("websub_callback"):
        state.client.hdel(redis_keys.WEBSUB_CALLBACKS, current["websub_callback"])
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
        websub_hub=hub,
        websub_topic=topic,
        websub_secret=secret,
        websub_callback=callback_key,
        websub_state="pending",
        websub_requested=str(now),
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
    state = FeedState(client, as_text(url))
    (current_key,) = state.fields("websub_callback")
    if not current_key or not hmac.compare_digest(current_key.encode(), key.encode()):
        raise UnknownCallback("unknown callback")  # a key of an ended subscription
    return state


def confirm_intent(client: redis.Redis, key: str, params: Mapping[str, str], asked_lease: int) -> str:
    """Answer a hub's verification of intent: the challenge to echo, only for a subscription
    we asked for and that waits for it (UnknownCallback otherwise); a denial is recorded and
    answered empty. The lease is taken up to the one asked for; InvalidVerification when the
    hub's is not a positive whole number."""
    state = callback_state(client, key)
    current = state.read()
    mode, topic = params.get("hub.mode"), params.get("hub.topic")
    if mode == "denied":
        state.update(websub_state="denied", websub_note=params.get("hub.reason", "")[:500])
        return ""
    if mode != "subscribe" or topic != current.get("websub_topic") or current.get("websub_state") != "pending":
        raise UnknownCallback("no such subscription pending")
    lease = _lease(params.get("hub.lease_seconds"), asked_lease)
    state.update(websub_state="verified", websub_expires=str(time.time() + lease), websub_lease=str(lease))
    return params.get("hub.challenge", "")


def _lease(text: str | None, asked: int) -> int:
    if text is None or not text.strip():
        return asked
    if not text.strip().isascii() or not text.strip().isdigit() or int(text) < 1:
        raise InvalidVerification(f"hub.lease_seconds is not a positive whole number: {text[:40]!r}")
    return min(int(text), asked)  # a longer lease than asked would put renewal off too long


def signed_by_hub(state: FeedState, body: bytes, header: str) -> bool:
    """Whether a delivery carries a valid signature under the secret we gave the hub."""
    (secret,) = state.fields("websub_secret")
    return bool(secret) and valid_hub_signature(secret, body, header)


def valid_hub_signature(secret: str, body: bytes, header: str) -> bool:
    """WebSub's `X-Hub-Signature: <method>=<hex HMAC of the body>` (sha1, sha256 or sha512)."""
    method, _, signature = header.partition("=")
    if method not in ("sha1", "sha256", "sha384", "sha512") or not signature or not signature.isascii():
        return False
    expected = hmac.new(secret.encode(), body, getattr(hashlib, method)).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())
