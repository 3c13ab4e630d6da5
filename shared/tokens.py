"""API bearer tokens: created once and shown once; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets

import redis

from shared import redis_keys
from shared.redis_client import as_text


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(client: redis.Redis, owner: str) -> str:
    """A new token for `owner` (a user or team name); the caller shows it once."""
    token = "ww_" + secrets.token_urlsafe(32)
    client.hset(redis_keys.TOKENS, _digest(token), owner)
    return token


def owner_of(client: redis.Redis, token: str) -> str | None:
    """Who a token belongs to, or None for an unknown token."""
    owner = client.hget(redis_keys.TOKENS, _digest(token))
    return as_text(owner) if owner is not None else None


def revoke_owner(client: redis.Redis, owner: str) -> int:
    """Remove every token of `owner`; returns how many."""
    gone = [key for key, value in client.hgetall(redis_keys.TOKENS).items() if as_text(value) == owner]
    return int(client.hdel(redis_keys.TOKENS, *gone)) if gone else 0
