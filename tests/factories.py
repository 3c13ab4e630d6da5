"""Small builders for test articles."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.article import Article


def make_article(title: str, text: str = "", **fields: Any) -> Article:
    """An article as the chain would store it; `fields` sets tags, countries, dates and so on."""
    create_args = {key: fields.pop(key) for key in ("url", "guid", "source", "published_at") if key in fields}
    article = Article.create(title=title, text=text or title, **create_args)
    for name, value in fields.items():
        setattr(article, name, value)
    return article


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
