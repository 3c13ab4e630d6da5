"""Articles given as JSON objects (pushed to the API, or read from a JSON file), and the error
every format raises for input that cannot become an article.

Kept apart from the file readers so the API can check pushes without loading them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from shared.article import Article
from shared.dates import parse_date


class UnreadableFile(ValueError):
    """Input that cannot become an article; the message is the reason kept beside it."""


FIELDS = ("url", "title", "text", "html", "published", "published_at", "source", "guid")


def article_from_mapping(
    item: Any, origin: str, source: str, where: str = "the object", *, strict: bool = False
) -> Article:
    """An article from a JSON object; raises `UnreadableFile` saying what is missing. `strict`
    (what a client pushes): unknown fields, a URL that is not http(s), and a date that cannot be
    read are refused too, every problem named in one message."""
    if not isinstance(item, dict):
        raise UnreadableFile(f"{where} is a JSON {type(item).__name__}, not an object")
    if strict:
        problems = strict_problems(item)
        if problems:
            raise UnreadableFile(f"{where}: " + "; ".join(problems))
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


def strict_problems(item: dict[str, Any]) -> list[str]:
    """What a pushed article gets wrong beyond missing text: unknown fields, a bad URL, an
    unreadable date."""
    problems = [f"unknown field {name!r} (fields are: {', '.join(FIELDS)})" for name in item if name not in FIELDS]
    url = item.get("url")
    if isinstance(url, str):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(f"url {url!r} is not an http(s) URL")
    for name in ("published", "published_at"):
        value = item.get(name)
        if value not in (None, "") and parse_date(value) is None:
            problems.append(f"{name} {value!r} is not a date (ISO 8601, RFC 2822 or epoch seconds)")
    return problems
