"""Turning one dropped file into articles, by its format.

Readers only read: they decode the bytes and pick out title, text or HTML, URL and date.
Cleaning, deduplication and tagging happen later, in the worker chain.
"""

from __future__ import annotations

import html as html_lib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import feedparser

from services.fetcher.decode import UnreadableFile, decode_text
from shared.article import Article
from shared.dates import parse_date

FEED_SUFFIXES = (".rss", ".atom", ".xml")
TEXT_SUFFIXES = (".txt",)
HTML_SUFFIXES = (".html", ".htm")
JSON_SUFFIXES = (".json",)
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + HTML_SUFFIXES + JSON_SUFFIXES + FEED_SUFFIXES


def read_file(path: Path, source: str = "inbox") -> list[Article]:
    """Articles in a dropped file; raises `UnreadableFile` with the reason when there are none."""
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise UnreadableFile(
            f"unsupported file type {path.suffix or '(none)'!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    data = path.read_bytes()
    articles = reader(data, str(path), source)
    if not articles:
        raise UnreadableFile("no article found in the file")
    return articles


def read_text(data: bytes, origin: str, source: str) -> list[Article]:
    """A `.txt` file: the first non-empty line is the headline, the rest the body."""
    text = decode_text(data).strip()
    title, _, body = text.partition("\n")
    return [Article.create(title=title.strip(), text=body.strip(), origin=origin, source=source)]


_CANONICAL = re.compile(
    r"<link\b[^>]*\brel=[\"']?canonical[\"']?[^>]*>|<meta\b[^>]*\bproperty=[\"']og:url[\"'][^>]*>", re.I
)
_HREF = re.compile(r"\b(?:href|content)=[\"']([^\"']+)[\"']", re.I)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
_OG_TITLE = re.compile(r"<meta\b[^>]*\bproperty=[\"']og:title[\"'][^>]*\bcontent=[\"']([^\"']*)[\"']", re.I)
_SITE_SUFFIX = re.compile(r"\s+[|–—-]\s+[^|–—-]{1,40}$")
_PUBLISHED = re.compile(
    r"<meta\b[^>]*\b(?:property|name|itemprop)=[\"'](?:article:published_time|datePublished|pubdate|date)[\"']"
    r"[^>]*\bcontent=[\"']([^\"']+)[\"']",
    re.I,
)


def read_html(data: bytes, origin: str, source: str) -> list[Article]:
    """An `.html` page: kept whole for main-text extraction; URL, title and date from its head."""
    page = decode_text(data)
    if "<" not in page:
        raise UnreadableFile("no HTML markup in an .html file")
    url = None
    for tag in _CANONICAL.findall(page):
        href = _HREF.search(tag)
        if href and href.group(1).startswith(("http://", "https://")):
            url = html_lib.unescape(href.group(1))
            break
    og_title, page_title = _OG_TITLE.search(page), _TITLE.search(page)
    if og_title:
        title = html_lib.unescape(og_title.group(1)).strip()
    elif page_title:
        # A <title> usually ends with the site's name: "Headline | Example Times".
        title = _SITE_SUFFIX.sub("", html_lib.unescape(re.sub(r"\s+", " ", page_title.group(1))).strip())
    else:
        title = ""
    published = _PUBLISHED.search(page)
    return [
        Article.create(
            title=title,
            html=page,
            url=url,
            origin=origin,
            source=source,
            published_at=parse_date(published.group(1)) if published else None,
        )
    ]


def read_json(data: bytes, origin: str, source: str) -> list[Article]:
    """A `.json` file: one article object (url, title, text or html, published, source), or a list."""
    try:
        value = json.loads(decode_text(data))
    except json.JSONDecodeError as error:
        raise UnreadableFile(f"malformed JSON: {error}") from None
    items = value if isinstance(value, list) else [value]
    return [article_from_mapping(item, origin, source, f"item {n}") for n, item in enumerate(items, 1)]


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


def read_feed(data: bytes, origin: str, source: str) -> list[Article]:
    """An RSS or Atom document: every entry becomes an article."""
    parsed = feedparser.parse(data)
    if not parsed.entries:
        if parsed.bozo:
            raise UnreadableFile(f"malformed feed: {parsed.get('bozo_exception')}")
        raise UnreadableFile("feed has no entries")
    return articles_from_feed(parsed, origin, parsed.feed.get("title") or source)


_MARKUP = re.compile(r"<[a-zA-Z/][^>]*>")


def articles_from_feed(parsed: Any, origin: str, source: str) -> list[Article]:
    """Articles from a parsed feed; entry HTML is kept for the cleaner, plain text as text."""
    articles = []
    for entry in parsed.entries:
        body = ""
        if entry.get("content"):
            body = entry.content[0].get("value", "")
        body = body or entry.get("summary", "")
        is_html = bool(_MARKUP.search(body))
        articles.append(
            Article.create(
                title=html_lib.unescape(entry.get("title", "")).strip(),
                text="" if is_html else body.strip(),
                html=body if is_html else None,
                url=entry.get("link"),
                guid=entry.get("id"),
                source=source,
                origin=origin,
                published_at=parse_date(entry.get("published_parsed") or entry.get("updated_parsed")),
            )
        )
    return articles


_READERS: dict[str, Callable[[bytes, str, str], list[Article]]] = {
    **{suffix: read_text for suffix in TEXT_SUFFIXES},
    **{suffix: read_html for suffix in HTML_SUFFIXES},
    **{suffix: read_json for suffix in JSON_SUFFIXES},
    **{suffix: read_feed for suffix in FEED_SUFFIXES},
}
