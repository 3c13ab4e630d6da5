"""The wirewatch HTTP API (FastAPI; the OpenAPI document is at /openapi.json, docs at /docs).

Every route but /health needs `Authorization: Bearer <token>` (`wirewatch tokens create NAME`);
a token's owner sees and changes only their own subscriptions and alerts.
"""

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Annotated, Any

import redis
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.responses import PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from services.fetcher.decode import UnreadableFile
from services.fetcher.feeds import FeedSource, http_client
from services.fetcher.readers import article_from_mapping
from services.fetcher.registry import Feed, FeedRegistry
from services.worker.chain import enqueue_batch
from shared import redis_keys
from shared.article import Article
from shared.celery_app import configure
from shared.matcher import AnalyzedArticle, matches
from shared.query import QueryError, parse_query
from shared.redis_client import as_text, get_redis
from shared.settings import Settings, get_settings
from shared.store import Store, process_store
from shared.subscriptions import (
    Subscription,
    SubscriptionError,
    SubscriptionSpec,
    delete_subscription,
    get_subscription,
    list_subscriptions,
    save_subscription,
)
from shared.tokens import owner_of

MAX_PUSH = 1000  # articles per POST /articles
log = logging.getLogger(__name__)


def valid_hub_signature(secret: str, body: bytes, header: str) -> bool:
    """WebSub's `X-Hub-Signature: <method>=<hex HMAC of the body>` (sha1, sha256 or sha512)."""
    method, _, signature = header.partition("=")
    if method not in ("sha1", "sha256", "sha384", "sha512") or not signature:
        return False
    expected = hmac.new(secret.encode(), body, getattr(hashlib, method)).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


class PreviewRequest(BaseModel):
    query: str = Field(min_length=1, description="Lucene syntax, as typed in Kibana")
    filter: str | None = None
    days: int = Field(default=7, ge=1, le=365, description="How far back to look (by ingest time)")
    limit: int = Field(default=50, ge=1, le=500)


class PreviewMatch(BaseModel):
    id: str
    title: str
    url: str | None
    source: str
    published_at: str | None
    matched_terms: list[str]


class Preview(BaseModel):
    count: int
    articles: list[PreviewMatch]


def create_app(
    settings: Settings | None = None,
    store: Store | None = None,
    client: redis.Redis | None = None,
    enqueue: Callable[[list[Article]], None] | None = None,
) -> FastAPI:
    """The API app; tests pass their own store, Redis client and queue."""
    settings = settings or get_settings()
    if enqueue is None:
        configure(settings)
        enqueue = enqueue_batch
    app = FastAPI(title="wirewatch", version="0.1.0", description=__doc__)
    bearer = HTTPBearer(auto_error=False)

    def redis_client() -> redis.Redis:
        return client if client is not None else get_redis(settings)

    def article_store() -> Store:
        return store if store is not None else process_store(settings)

    def owner(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        found = owner_of(redis_client(), credentials.credentials) if credentials else None
        if found is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )
        return found

    Owner = Annotated[str, Depends(owner)]

    def owned(subscription_id: str, who: str) -> Subscription:
        subscription = get_subscription(redis_client(), subscription_id)
        if subscription is None or subscription.owner != who:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no subscription {subscription_id}")
        return subscription

    @app.get("/health", tags=["service"])
    def health() -> dict[str, str]:
        redis_client().ping()
        return {"status": "ok"}

    @app.get("/subscriptions", tags=["subscriptions"])
    def list_own(who: Owner) -> list[Subscription]:
        return list_subscriptions(redis_client(), who)

    @app.post("/subscriptions", status_code=status.HTTP_201_CREATED, tags=["subscriptions"])
    def create(spec: SubscriptionSpec, who: Owner) -> Subscription:
        try:
            return save_subscription(redis_client(), who, spec)
        except SubscriptionError as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None

    @app.get("/subscriptions/{subscription_id}", tags=["subscriptions"])
    def read(subscription_id: str, who: Owner) -> Subscription:
        return owned(subscription_id, who)

    @app.put("/subscriptions/{subscription_id}", tags=["subscriptions"])
    def replace(subscription_id: str, spec: SubscriptionSpec, who: Owner) -> Subscription:
        owned(subscription_id, who)
        try:
            return save_subscription(redis_client(), who, spec, subscription_id)
        except SubscriptionError as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None

    @app.delete("/subscriptions/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["subscriptions"])
    def delete(subscription_id: str, who: Owner) -> Response:
        owned(subscription_id, who)
        delete_subscription(redis_client(), who, subscription_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @app.post("/subscriptions/preview", tags=["subscriptions"])
    def preview(request: PreviewRequest, who: Owner) -> Preview:
        """What a query would have matched among the articles of the last days."""
        query = f"({request.query}) AND ({request.filter})" if request.filter else request.query
        try:
            node = parse_query(query)
            window = f"({query}) AND ingested_at:[now-{request.days}d TO now]"
            found = article_store().search(window, limit=request.limit)
            total = article_store().count(window)
        except QueryError as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(error)) from None
        rows = []
        for article in found:
            doc = AnalyzedArticle.of(article)
            matches(node, doc)
            rows.append(
                PreviewMatch(
                    id=article.id,
                    title=article.title,
                    url=article.url,
                    source=article.source,
                    published_at=article.published_at.isoformat() if article.published_at else None,
                    matched_terms=sorted(set(doc.matched)),
                )
            )
        return Preview(count=total, articles=rows)

    @app.post("/articles", status_code=status.HTTP_202_ACCEPTED, tags=["articles"])
    def push_articles(body: dict[str, Any] | list[Any], who: Owner) -> dict[str, Any]:
        """Push one article (a JSON object: url, title, text or html, published, source, guid)
        or a list of them; they go through the same chain as every other source."""
        items = body if isinstance(body, list) else [body]
        if not items:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "no articles in the body")
        if len(items) > MAX_PUSH:
            raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"at most {MAX_PUSH} articles per request")
        articles, problems = [], []
        for number, item in enumerate(items, 1):
            try:
                articles.append(article_from_mapping(item, f"push:{who}", f"push:{who}", f"article {number}"))
            except UnreadableFile as error:
                problems.append(str(error))
        if problems:  # all or nothing: a client fixes its batch and sends it again
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, problems)
        for start in range(0, len(articles), settings.batch_size):
            enqueue(articles[start : start + settings.batch_size])
        return {"accepted": len(articles), "ids": [article.id for article in articles]}

    @app.get("/websub/{key}", tags=["websub"], response_class=PlainTextResponse)
    def websub_verify(key: str, request: Request) -> PlainTextResponse:
        """A hub's verification of intent: echo the challenge only for a subscription we asked for."""
        params = request.query_params
        url = redis_client().hget(redis_keys.WEBSUB_CALLBACKS, key)
        if url is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown callback")
        state_key = redis_keys.feed_validators(as_text(url))
        state = {as_text(k): as_text(v) for k, v in redis_client().hgetall(state_key).items()}
        mode, topic = params.get("hub.mode"), params.get("hub.topic")
        if mode == "denied":
            redis_client().hset(
                state_key, mapping={"websub_state": "denied", "websub_note": params.get("hub.reason", "")}
            )
            return PlainTextResponse("")
        if (
            mode != "subscribe"
            or topic != state.get("websub_topic")
            or state.get("websub_state") not in ("pending", "verified")
        ):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such subscription pending")
        lease = int(params.get("hub.lease_seconds") or settings.websub_lease_seconds)
        redis_client().hset(
            state_key,
            mapping={
                "websub_state": "verified",
                "websub_expires": str(time.time() + lease),
                "websub_lease": str(lease),
            },
        )
        return PlainTextResponse(params.get("hub.challenge", ""))

    @app.post("/websub/{key}", tags=["websub"], status_code=status.HTTP_202_ACCEPTED)
    async def websub_deliver(key: str, request: Request) -> Response:
        """Content pushed by a hub, taken only with a valid signature (X-Hub-Signature)."""
        body = await request.body()
        url = redis_client().hget(redis_keys.WEBSUB_CALLBACKS, key)
        if url is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown callback")
        feed_url = as_text(url)
        secret = as_text(redis_client().hget(redis_keys.feed_validators(feed_url), "websub_secret") or b"")
        if not secret or not valid_hub_signature(secret, body, request.headers.get("x-hub-signature", "")):
            # The spec wants a 2xx even so, so that a forger learns nothing; the content is dropped.
            log.warning("WebSub delivery for %s with a bad signature dropped", feed_url)
            return Response(status_code=status.HTTP_202_ACCEPTED)
        feed = (FeedRegistry(redis_client()).get(feed_url)) or Feed(url=feed_url)
        source = FeedSource([feed], redis_client(), settings, http_client(settings))
        delivery = source.accept_push(feed, body, {k.lower(): v for k, v in request.headers.items()})
        if delivery is not None:
            enqueue(delivery.articles)
            delivery.on_enqueued()
        return Response(status_code=status.HTTP_202_ACCEPTED)

    @app.get("/alerts", tags=["alerts"])
    def alerts(
        who: Owner,
        status_filter: Annotated[str | None, Query(alias="status", description="delivered, retrying or failed")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """The owner's alert history, newest first; failed deliveries stay listed with their error."""
        history = article_store().alert_history(limit, owner=who)
        return [entry for entry in history if status_filter is None or entry["status"] == status_filter]

    return app
