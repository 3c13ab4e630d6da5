"""Articles given as JSON objects (pushed to the API, or read from a JSON file), and the error
every format raises for input that cannot become an article.

Kept apart from the file readers so the API can check pushes without loading them.
"""

from __future__ import annotations

from typing import Any

from shared.article import Article
from shared.dates import parse_date


class UnreadableFile(ValueError):
    """Input that cannot become an article; the message is the reason kept beside it."""


def article_from_mapping(item: Any, origin: str, source: str, where: str = "the object") -> Article:
    """An article from a JSON object; raises `UnreadableFile` saying what is missing."""
    if not isinstance(item, dict):
        raise UnreadableFile(f"{where} is a JSON {type(item).__name__}, not an object")
    fields = {key: item.get(key) for key in ("url", "title", "text", "html", "source", "guid")}
    for key, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise UnreadableFile(f"{where}: field {key!r} must be a string, not {type(value).__name__}")
    if not (fields["text"] or fields["html"] or fields["title"]):
        raise UnreadableFile(f"{where} has no 'text', 'html' or 'title'")
    return Article.create(
        title=fields["title"] or "",
        text=fields["text"] or "",
        html=fields["html"],
        url=fields["url"],
        guid=fields["guid"],
        source=fields["source"] or source,
        origin=origin,
        published_at=parse_date(item.get("published") or item.get("published_at")),
    )
