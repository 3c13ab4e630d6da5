"""API bearer tokens: created once and shown once; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from shared import redis_keys
from shared.redis_client import as_text

ID_LENGTH = 12  # a token's id: the start of its hash, which says nothing of the token itself


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown of a token: never the token, only its id, owner and creation time."""

    id: str
    owner: str
    created: str | None  # None for tokens made before creation times were kept


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(client: redis.Redis, owner: str) -> str:
    """A new token for `owner` (a user or team name); the caller shows it once."""
    token = "ww_" + secrets.token_urlsafe(32)
    digest = _digest(token)
    pipe = client.pipeline(transaction=True)
    pipe.hset(redis_keys.TOKENS, digest, owner)
    pipe.hset(redis_keys.TOKENS_CREATED, digest, datetime.now(UTC).isoformat(timespec="seconds"))
    pipe.execute()
    return token


def list_tokens(client: redis.Redis) -> list[TokenInfo]:
    """Every token's id, owner and creation time, oldest first."""
    created = {as_text(k): as_text(v) for k, v in client.hgetall(redis_keys.TOKENS_CREATED).items()}
    tokens = [
        TokenInfo(id=as_text(digest)[:ID_LENGTH], owner=as_text(owner), created=created.get(as_text(digest)))
        for digest, owner in client.hgetall(redis_keys.TOKENS).items()
    ]
    return sorted(tokens, key=lambda token: (token.created or "", token.owner, token.id))


def owner_of(client: redis.Redis, token: str) -> str | None:
    """Who a token belongs to, or None for an unknown token."""
    owner = client.hget(redis_keys.TOKENS, _digest(token))
    return as_text(owner) if owner is not None else None


def revoke_owner(client: redis.Redis, owner: str) -> int:
    """Remove every token of `owner`; returns how many."""
    gone = [key for key, value in client.hgetall(redis_keys.TOKENS).items() if as_text(value) == owner]
    if not gone:
        return 0
    client.hdel(redis_keys.TOKENS_CREATED, *gone)
    return int(client.hdel(redis_keys.TOKENS, *gone))
