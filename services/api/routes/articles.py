"""POST /articles: articles pushed by a client, handed to the fetcher."""

from typing import Any

from fastapi import APIRouter, HTTPException, status

from services.api.deps import Clients, Owner
from services.api.errors import refusals
from shared.formats.mapping import UnreadableFile, article_from_mapping
from shared.sources.push import claim_pushed, push_articles

MAX_PUSH = 1000  # articles per request

router = APIRouter(tags=["articles"])


@router.post("/articles", status_code=status.HTTP_202_ACCEPTED, responses=refusals(400, 401, 409, 413, 422))
def push(body: dict[str, Any] | list[Any], clients: Clients, who: Owner) -> dict[str, Any]:
    """Push one article (a JSON object: url, title, text or html, published, source, guid)
    or a list of them; they go through the same chain as every other source."""
    items = body if isinstance(body, list) else [body]
    if not items:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "no articles in the body")
    if len(items) > MAX_PUSH:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"at most {MAX_PUSH} articles per request")
    articles, problems = [], []
    for number, item in enumerate(items, 1):
        where = f"article {number}"
        try:
            _check_text(item, where)
            articles.append(article_from_mapping(item, f"push:{who}", f"push:{who}", where, strict=True))
        except UnreadableFile as error:
            problems.append(str(error))
        except (ValueError, OverflowError) as error:  # a port past 65535, a year-1 date west of UTC
            problems.append(f"{where}: {error}")
    if problems:  # all or nothing: a client fixes its batch and sends it again
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, problems)
    settings = clients.settings
    conflicts = claim_pushed(clients.redis, clients.store, articles, f"push:{who}", settings.dedupe_window_seconds)
    if conflicts:
        raise HTTPException(status.HTTP_409_CONFLICT, conflicts)
    batch_size = settings.batch_size
    for start in range(0, len(articles), batch_size):
        push_articles(clients.redis, articles[start : start + batch_size])
    return {"accepted": len(articles), "ids": [article.id for article in articles]}


def _check_text(value: Any, where: str) -> None:
    """JSON may carry lone surrogates (`"\\ud800"`), which no UTF-8 text can hold."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UnreadableFile(f"{where}: text with a lone surrogate ({value[:40]!r}) is not Unicode text") from None
    elif isinstance(value, dict):
        for key, inner in value.items():
            _check_text(key, where)
            _check_text(inner, where)
    elif isinstance(value, list):
        for inner in value:
            _check_text(inner, where)
