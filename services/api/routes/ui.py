"""The analysts' web UI at /ui: server-rendered pages over the same domain functions as the
JSON routes, with a few lines of script for checking a query as it is typed and replaying it.

Signing in with an API token puts the token in an HTTP-only, SameSite=Strict cookie scoped to
/ui. Every form carries a CSRF token derived from the session's token (an HMAC keyed by it), so
a page of another site can neither read nor forge one; a POST without it is refused with 403.
Pages load nothing from elsewhere (the Content-Security-Policy says so), so the UI works on a
machine without internet.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from services.api.deps import Clients
from shared import redis_keys
from shared.alerting.backtest import Backtest, backtest, draft_subscription
from shared.alerting.lifecycle import remove_subscription, replace_subscription
from shared.alerting.subscriptions import (
    Channel,
    Subscription,
    SubscriptionError,
    SubscriptionSpec,
    check_channel_urls,
    hide_secrets,
    list_subscriptions,
    owned_subscription,
    save_subscription,
)
from shared.deadletters import read_dead_letters
from shared.feeds.registry import FeedRegistry
from shared.feeds.status import feed_status
from shared.kibana import discover_url
from shared.outbound import URLPolicy
from shared.query import QueryError, parse_query
from shared.tokens import owner_of

if TYPE_CHECKING:
    from jinja2 import Environment
    from markupsafe import Markup

HERE = Path(__file__).resolve().parents[1] / "ui"
SESSION_COOKIE = "wirewatch_session"
SIGN_IN_COOKIE = "wirewatch_sign_in"  # a nonce that the sign-in form must echo (no session yet)
COOKIE_PATH = "/ui"
SESSION_SECONDS = 12 * 3600
MAX_FORM_BYTES = 64_000
BACKTEST_DAYS = 7
STATUSES = ("delivered", "retrying", "failed", "cancelled")
POLICY_FIELDS = ("mode", "realert", "realert_field", "realert_window_hours", "max_per_hour")
SECURITY_HEADERS = {
    # Everything comes from this server: no CDN, no inline script or style, no framing.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

router = APIRouter(prefix="/ui", include_in_schema=False)


class SignInFirst(Exception):
    """A page asked for without a valid session: go to the sign-in page."""


class Refused(Exception):
    """A request the UI refuses, shown as a page with its status and reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Session:
    owner: str
    csrf: str
    operator: bool


@dataclass(frozen=True)
class Posted:
    """A form sent by a signed-in owner, its CSRF token checked."""

    session: Session
    form: dict[str, str]


def mount_ui(app: FastAPI) -> None:
    """Add the UI's routes, its static files and the handlers that answer its refusals with pages."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    app.add_exception_handler(SignInFirst, _to_sign_in)
    app.add_exception_handler(Refused, _refusal_page)


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: only the holder of the session's token can compute it, and
    it reveals nothing of the token."""
    return hmac.new(session_token.encode(), b"wirewatch-ui-csrf", hashlib.sha256).hexdigest()


def _session(request: Request, clients: Clients) -> Session:
    token = request.cookies.get(SESSION_COOKIE)
    owner = owner_of(clients.redis, token) if token else None
    if token is None or owner is None:
        raise SignInFirst()
    operators = {name.strip() for name in clients.settings.operators.split(",") if name.strip()}
    return Session(owner=owner, csrf=csrf_token(token), operator=owner in operators)


SignedIn = Annotated[Session, Depends(_session)]


async def _form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise Refused(415, "forms are sent as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Refused(413, "the form is too large")
    # A form's fields are all single-valued; the stdlib parses them as browsers encode them.
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


async def _posted(request: Request, session: SignedIn) -> Posted:
    form = await _form(request)
    if not hmac.compare_digest(form.get("csrf", "").encode(), session.csrf.encode()):
        raise Refused(403, "the form's CSRF token is missing or wrong; reload the page and try again")
    return Posted(session, form)


Post = Annotated[Posted, Depends(_posted)]


@functools.cache
def _pages() -> Environment:
    # Loaded with the first page: an API that serves no page does not carry the template engine.
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    pages = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined)
    pages.filters["marked"] = _marked
    pages.globals["query_string"] = _query_string
    return pages


def _marked(snippet: str) -> Markup:
    """A snippet whose matched words stand in **bold**, with those words in <mark> and
    everything escaped."""
    from markupsafe import Markup, escape

    parts = snippet.split("**")
    return Markup("").join(
        Markup("<mark>{}</mark>").format(part) if number % 2 else escape(part) for number, part in enumerate(parts)
    )


def _query_string(**values: str) -> str:
    return urlencode(values)


def _render(request: Request, template: str, session: Session | None, code: int = 200, **context: Any) -> HTMLResponse:
    html = _pages().get_template(template).render(request_path=request.url.path, session=session, **context)
    return HTMLResponse(html, status_code=code, headers=SECURITY_HEADERS)


def _redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303, headers=SECURITY_HEADERS)


async def _to_sign_in(request: Request, error: Exception) -> Response:
    return _redirect("/ui/sign-in")


async def _refusal_page(request: Request, error: Exception) -> Response:
    assert isinstance(error, Refused)
    return _render(request, "refused.html", None, error.status, status=error.status, message=error.message)


def _owned(clients: Clients, session: Session, subscription_id: str) -> Subscription:
    found = owned_subscription(clients.redis, session.owner, subscription_id)
    if found is None:
        raise Refused(404, f"no subscription {subscription_id}")
    return found


def _discover(clients: Clients, query: str) -> str | None:
    kibana = clients.settings.kibana_url
    return discover_url(kibana, query, clients.settings.index_prefix) if kibana else None


# Sign-in and sign-out


@router.get("")
def home() -> Response:
    return _redirect("/ui/subscriptions")


@router.get("/sign-in")
def sign_in_page(request: Request) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = _render(request, "sign_in.html", None, nonce=nonce, problem=None)
    _set_cookie(request, response, SIGN_IN_COOKIE, nonce, 3600)
    return response


@router.post("/sign-in")
def sign_in(request: Request, clients: Clients, form: Annotated[dict[str, str], Depends(_form)]) -> Response:
    nonce = request.cookies.get(SIGN_IN_COOKIE, "")
    if not nonce or not hmac.compare_digest(form.get("csrf", "").encode(), nonce.encode()):
        raise Refused(403, "the sign-in form's CSRF token is missing or wrong; reload the page and try again")
    token = form.get("token", "").strip()
    if not token or owner_of(clients.redis, token) is None:
        fresh = secrets.token_urlsafe(24)
        response = _render(request, "sign_in.html", None, 401, nonce=fresh, problem="That token is not valid.")
        _set_cookie(request, response, SIGN_IN_COOKIE, fresh, 3600)
        return response
    signed_in = _redirect("/ui/subscriptions")
    _set_cookie(request, signed_in, SESSION_COOKIE, token, SESSION_SECONDS)
    signed_in.delete_cookie(SIGN_IN_COOKIE, path=COOKIE_PATH)
    return signed_in


@router.post("/sign-out")
def sign_out(posted: Post) -> Response:
    response = _redirect("/ui/sign-in")
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response


def _set_cookie(request: Request, response: Response, name: str, value: str, seconds: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=seconds,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


# Subscriptions


@router.get("/subscriptions")
def subscriptions_page(request: Request, clients: Clients, session: SignedIn) -> Response:
    owned = list_subscriptions(clients.redis, session.owner)
    links = {subscription.id: _discover(clients, subscription.effective_query) for subscription in owned}
    return _render(request, "subscriptions.html", session, subscriptions=owned, discover=links)


@router.get("/subscriptions/new")
def new_subscription_page(request: Request, clients: Clients, session: SignedIn) -> Response:
    return _editor(request, clients, session, None, {"mode": "instant", "realert": "story"}, {})


@router.post("/subscriptions/new")
def create_subscription(request: Request, clients: Clients, posted: Post) -> Response:
    spec, problems = _spec(posted.form, clients)
    if spec is not None:
        try:
            saved = save_subscription(clients.redis, posted.session.owner, spec)
        except SubscriptionError as error:
            problems["name"] = str(error)
        else:
            return _saved_redirect(clients, posted.session, saved, None)
    return _editor(request, clients, posted.session, None, posted.form, problems, 422)


@router.get("/subscriptions/{subscription_id}")
def subscription_page(request: Request, subscription_id: str, clients: Clients, session: SignedIn) -> Response:
    subscription = _owned(clients, session, subscription_id)
    fresh = _take_new_secrets(clients, session, subscription_id, request.query_params.get("secrets", ""))
    return _editor(
        request,
        clients,
        session,
        subscription,
        _as_form(subscription),
        {},
        saved="saved" in request.query_params,
        new_secrets=fresh,
    )


# Secrets are shown once, as the JSON API shows them: the page after a save reads the new ones
# from a short-lived key that only that page's address names, then deletes it.
NEW_SECRETS_SECONDS = 300


def _saved_redirect(
    clients: Clients, session: Session, saved: Subscription, before: Subscription | None
) -> RedirectResponse:
    shown = saved if before is None else hide_secrets(saved, except_new_since=before)
    fresh = {channel.url: channel.secret for channel in shown.channels if channel.type == "webhook" and channel.secret}
    path = f"/ui/subscriptions/{saved.id}?saved=1"
    if fresh:
        nonce = secrets.token_urlsafe(18)
        record = {"owner": session.owner, "subscription": saved.id, "secrets": fresh}
        clients.redis.set(f"{redis_keys.UI_NEW_SECRETS}:{nonce}", json.dumps(record), ex=NEW_SECRETS_SECONDS)
        path += f"&secrets={nonce}"
    return _redirect(path)


def _take_new_secrets(clients: Clients, session: Session, subscription_id: str, nonce: str) -> dict[str, str]:
    if not nonce:
        return {}
    key = f"{redis_keys.UI_NEW_SECRETS}:{nonce}"
    pipe = clients.redis.pipeline()
    pipe.get(key)
    pipe.delete(key)
    raw, _ = pipe.execute()
    record = json.loads(raw) if raw else {}
    if record.get("owner") != session.owner or record.get("subscription") != subscription_id:
        return {}
    return dict(record.get("secrets") or {})


@router.post("/subscriptions/{subscription_id}")
def update_subscription(request: Request, subscription_id: str, clients: Clients, posted: Post) -> Response:
    existing = _owned(clients, posted.session, subscription_id)
    spec, problems = _spec(posted.form, clients, active=existing.active)
    if spec is not None:
        try:
            saved = replace_subscription(clients.redis, clients.store, posted.session.owner, spec, subscription_id)
        except SubscriptionError as error:
            problems["name"] = str(error)
        else:
            return _saved_redirect(clients, posted.session, saved, existing)
    return _editor(request, clients, posted.session, existing, posted.form, problems, 422)


@router.post("/subscriptions/{subscription_id}/pause")
def pause(subscription_id: str, clients: Clients, posted: Post) -> Response:
    return _set_active(clients, posted, subscription_id, False)


@router.post("/subscriptions/{subscription_id}/resume")
def resume(subscription_id: str, clients: Clients, posted: Post) -> Response:
    return _set_active(clients, posted, subscription_id, True)


def _set_active(clients: Clients, posted: Posted, subscription_id: str, active: bool) -> Response:
    existing = _owned(clients, posted.session, subscription_id)
    spec = SubscriptionSpec.model_validate({**existing.model_dump(), "active": active})
    replace_subscription(clients.redis, clients.store, posted.session.owner, spec, subscription_id)
    return _redirect("/ui/subscriptions")


@router.post("/subscriptions/{subscription_id}/delete")
def delete(subscription_id: str, clients: Clients, posted: Post) -> Response:
    _owned(clients, posted.session, subscription_id)
    remove_subscription(clients.redis, clients.store, posted.session.owner, subscription_id)
    return _redirect("/ui/subscriptions")


@router.post("/preview")
def preview(request: Request, clients: Clients, posted: Post) -> Response:
    """What the editor's script asks as a query is typed: the problems of the query and filter,
    and the backtest of the form's query and policy as an HTML fragment."""
    form = posted.form
    problems = _query_problems(form)
    days = _days(form)
    html = ""
    if not problems and form.get("query", "").strip():
        replay, problem = _replay(clients, posted.session.owner, form, days)
        if problem:
            problems["policy"] = problem
        else:
            html = _pages().get_template("_backtest.html").render(replay=replay, days=days)
    return JSONResponse({"problems": problems, "html": html}, headers=SECURITY_HEADERS)


def _editor(
    request: Request,
    clients: Clients,
    session: Session,
    subscription: Subscription | None,
    form: dict[str, Any],
    problems: dict[str, str],
    status: int = 200,
    saved: bool = False,
    new_secrets: dict[str, str] | None = None,
) -> HTMLResponse:
    days = _days(form)
    replay = None
    if not _query_problems(form) and str(form.get("query") or "").strip():
        replay, problem = _replay(clients, session.owner, form, days)
        if problem:
            problems.setdefault("policy", problem)
    return _render(
        request,
        "subscription.html",
        session,
        status,
        subscription=hide_secrets(subscription) if subscription else None,
        new_secrets=new_secrets or {},
        form=form,
        problems=problems,
        replay=replay,
        days=days,
        saved=saved,
        discover=_discover(clients, subscription.effective_query) if subscription else None,
    )


def _query_problems(form: dict[str, Any]) -> dict[str, str]:
    problems = {}
    for field in ("query", "filter"):
        text = str(form.get(field) or "").strip()
        if text:
            try:
                parse_query(text)
            except QueryError as error:
                problems[field] = str(error)
    return problems


def _days(form: dict[str, Any]) -> int:
    try:
        return min(max(int(form.get("days") or BACKTEST_DAYS), 1), 365)
    except ValueError:
        return BACKTEST_DAYS


def _policy(form: dict[str, Any]) -> dict[str, Any]:
    policy = {field: form.get(field) or None for field in POLICY_FIELDS}
    return {field: value for field, value in policy.items() if value is not None}


def _replay(clients: Clients, owner: str, form: dict[str, Any], days: int) -> tuple[Backtest | None, str | None]:
    try:
        draft = draft_subscription(
            owner, str(form["query"]).strip(), filter=str(form.get("filter") or "").strip() or None, **_policy(form)
        )
        return backtest(clients.store, draft, days), None
    except ValidationError as error:
        return None, _problem_text(error)
    except QueryError as error:
        return None, str(error)


def _problem_text(error: ValidationError) -> str:
    return "; ".join(
        (f"{problem['loc'][0]}: " if problem["loc"] else "") + problem["msg"].removeprefix("Value error, ")
        for problem in error.errors()
    )


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


def _spec(
    form: dict[str, str], clients: Clients, active: bool = True
) -> tuple[SubscriptionSpec | None, dict[str, str]]:
    """The subscription a form describes, or the problems of each field."""
    problems = _query_problems(form)
    channels: list[dict[str, Any]] = [{"type": "webhook", "url": url} for url in _lines(form.get("webhooks", ""))]
    if recipients := _lines(form.get("emails", "")):
        channels.append({"type": "email", "to": recipients})
    channels += [{"type": "slack", "url": url} for url in _lines(form.get("slack", ""))]
    if stream := form.get("stream", "").strip():
        channels.append({"type": "stream", "stream": stream})
    if not channels:
        problems["channels"] = "give at least one place to send alerts to"
    if problems:
        return None, problems
    try:
        spec = SubscriptionSpec(
            name=form.get("name", "").strip(),
            query=form.get("query", "").strip(),
            filter=form.get("filter", "").strip() or None,
            channels=[Channel.model_validate(channel) for channel in channels],
            active=active,
            **_policy(form),
        )
        check_channel_urls(spec, URLPolicy.from_setting(clients.settings.url_allow))
    except ValidationError as error:
        field = str(error.errors()[0]["loc"][0]) if error.errors()[0]["loc"] else "channels"
        return None, {field if field in form else "channels": _problem_text(error)}
    except SubscriptionError as error:
        return None, {"channels": str(error)}
    return spec, {}


def _as_form(subscription: Subscription) -> dict[str, Any]:
    by_type: dict[str, list[str]] = {"webhook": [], "email": [], "slack": [], "stream": []}
    for channel in subscription.channels:
        by_type[channel.type] += channel.to if channel.type == "email" else [channel.url or channel.stream or ""]
    return {
        "name": subscription.name,
        "query": subscription.query,
        "filter": subscription.filter or "",
        "webhooks": "\n".join(by_type["webhook"]),
        "emails": ", ".join(by_type["email"]),
        "slack": "\n".join(by_type["slack"]),
        "stream": by_type["stream"][0] if by_type["stream"] else "",
        **{field: getattr(subscription, field) for field in POLICY_FIELDS},
    }


# Alerts and articles


@router.get("/alerts")
def alerts_page(request: Request, clients: Clients, session: SignedIn, status: str | None = None) -> Response:
    wanted = status if status in STATUSES else None
    history = clients.store.alert_history(200, owner=session.owner, status=wanted)
    return _render(request, "alerts.html", session, alerts=history, status=wanted, statuses=STATUSES)


@router.get("/articles/{article_id}")
def article_page(request: Request, article_id: str, clients: Clients, session: SignedIn) -> Response:
    article = clients.store.get(article_id)
    if article is None:
        raise Refused(404, f"no article {article_id}")
    return _render(request, "article.html", session, article=article)


# For operators


def _operator(session: SignedIn) -> Session:
    if not session.operator:
        raise Refused(403, "feed health and dead letters are for operators (WIREWATCH_OPERATORS)")
    return session


Operator = Annotated[Session, Depends(_operator)]


@router.get("/feeds")
def feeds_page(request: Request, clients: Clients, session: Operator) -> Response:
    rows = feed_status(clients.redis, FeedRegistry(clients.redis).all())
    return _render(request, "feeds.html", session, feeds=rows)


@router.get("/dead-letters")
def dead_letters_page(request: Request, clients: Clients, session: Operator) -> Response:
    records = list(reversed(read_dead_letters(clients.redis, 200)))
    return _render(request, "dead_letters.html", session, records=records)
