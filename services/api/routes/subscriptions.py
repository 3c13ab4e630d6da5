"""Subscriptions: the owner's list, one by one, and a preview of what a query would match."""

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, Field, ValidationError

from services.api.deps import Clients, Owner
from services.api.errors import refusals
from shared.alerting.backtest import MatchingArticle, backtest, draft_subscription, matching_articles
from shared.alerting.lifecycle import remove_subscription, replace_subscription
from shared.alerting.subscriptions import (
    Subscription,
    SubscriptionError,
    SubscriptionSpec,
    check_channel_urls,
    hide_secrets,
    list_subscriptions,
    owned_subscription,
    rotate_secrets,
    save_subscription,
)
from shared.outbound import URLPolicy
from shared.query import QueryError

router = APIRouter(prefix="/subscriptions", tags=["subscriptions"], responses=refusals(401, 422))


class PreviewRequest(BaseModel):
    """A query to try, with the policy it would run under; or `subscription_id` to try a saved one."""

    query: str | None = Field(default=None, min_length=1, description="Lucene syntax, as typed in Kibana")
    filter: str | None = None
    subscription_id: str | None = Field(default=None, description="Replay one of your subscriptions instead")
    days: int = Field(
        default=7, ge=1, le=365, description="How far back to look (by the time articles were first seen)"
    )
    limit: int = Field(default=50, ge=1, le=500, description="Matching articles listed at most")
    mode: Literal["instant", "hourly", "daily"] = "instant"
    realert: Literal["story", "story-and-update", "article"] = "story"
    realert_field: Literal["source", "tags", "countries", "people", "organizations"] | None = None
    realert_window_hours: float = Field(default=12.0, ge=0)
    max_per_hour: int | None = Field(default=None, ge=1)


class Preview(BaseModel):
    count: int = Field(description="Articles the query matches")
    articles: list[MatchingArticle]
    alerts: int = Field(description="Alerts the policy would have sent for them")
    days: list[dict[str, Any]] = Field(description="Those alerts per day, with their matched terms")


def _owned(clients: Clients, subscription_id: str, who: str) -> Subscription:
    subscription = owned_subscription(clients.redis, who, subscription_id)
    if subscription is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no subscription {subscription_id}")
    return subscription


@router.get("")
def list_own(clients: Clients, who: Owner) -> list[Subscription]:
    """The owner's subscriptions, without their webhook secrets (shown once, when made)."""
    return [hide_secrets(subscription) for subscription in list_subscriptions(clients.redis, who)]


def _checked(spec: SubscriptionSpec, clients: Clients) -> SubscriptionSpec:
    try:
        check_channel_urls(spec, URLPolicy.from_setting(clients.settings.url_allow))
    except SubscriptionError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(error)) from None
    return spec


@router.post("", status_code=status.HTTP_201_CREATED, responses=refusals(400, 409, 413))
def create(spec: SubscriptionSpec, clients: Clients, who: Owner) -> Subscription:
    """Create a subscription; the response shows each webhook's signing secret."""
    try:
        return save_subscription(clients.redis, who, _checked(spec, clients))
    except SubscriptionError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None


@router.post("/preview", responses=refusals(400, 404, 413))
def preview(request: PreviewRequest, clients: Clients, who: Owner) -> Preview:
    """What a subscription would have done over the last days: the articles it matches, and
    the alerts its policy (grouping, re-alert window, hourly cap, digests) would have sent."""
    if request.subscription_id is not None:
        subscription = _owned(clients, request.subscription_id, who)
    elif request.query is not None:
        try:
            subscription = draft_subscription(
                who, request.query, **request.model_dump(exclude={"query", "subscription_id", "days", "limit"})
            )
        except ValidationError as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(error)) from None
    else:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "give a query or a subscription_id")
    try:
        replay = backtest(clients.store, subscription, request.days)
        found = matching_articles(clients.store, subscription, request.days, request.limit)
    except QueryError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(error)) from None
    return Preview(count=replay.matched, articles=found, alerts=len(replay.alerts), days=replay.by_day())


@router.get("/{subscription_id}", responses=refusals(404))
def read(subscription_id: str, clients: Clients, who: Owner) -> Subscription:
    """One subscription, without its webhook secrets (shown once, when made)."""
    return hide_secrets(_owned(clients, subscription_id, who))


@router.put("/{subscription_id}", responses=refusals(400, 404, 409, 413))
def replace(subscription_id: str, spec: SubscriptionSpec, clients: Clients, who: Owner) -> Subscription:
    """Replace a subscription; a webhook sent without a secret keeps the one it had, and pausing
    (`active: false`) cancels what was still to be sent. Only the secrets of webhooks new to it
    are shown."""
    existing = _owned(clients, subscription_id, who)
    try:
        saved = replace_subscription(clients.redis, clients.store, who, _checked(spec, clients), subscription_id)
    except SubscriptionError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    return hide_secrets(saved, except_new_since=existing)


@router.post("/{subscription_id}/rotate-secret", responses=refusals(404))
def rotate_secret(subscription_id: str, clients: Clients, who: Owner) -> Subscription:
    """New signing secrets for the subscription's webhooks, shown in the response."""
    _owned(clients, subscription_id, who)
    return rotate_secrets(clients.redis, who, subscription_id)


@router.delete("/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT, responses=refusals(404))
def delete(subscription_id: str, clients: Clients, who: Owner) -> Response:
    _owned(clients, subscription_id, who)
    remove_subscription(clients.redis, clients.store, who, subscription_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
