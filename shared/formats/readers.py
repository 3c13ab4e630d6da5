"""Turning one dropped file into articles, by its format.

Readers only read: they decode the bytes and pick out title, text or HTML, URL and date.
Cleaning, deduplication and tagging happen later, in the worker chain.
"""

from __future__ import annotations

import email
import email.policy
import html as html_lib
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage, MIMEPart
from pathlib import Path
from typing import Any

import feedparser

from shared.article import Article
from shared.dates import parse_date
from shared.formats.decode import decode_text
from shared.formats.mapping import UnreadableFile, article_from_mapping

TEXT_SUFFIXES = (".txt",)
MARKDOWN_SUFFIXES = (".md",)
HTML_SUFFIXES = (".html", ".htm")
JSON_SUFFIXES = (".json",)
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
EMAIL_SUFFIXES = (".eml",)
FEED_SUFFIXES = (".rss", ".atom", ".xml")
SUPPORTED_SUFFIXES = (
    TEXT_SUFFIXES
    + MARKDOWN_SUFFIXES
    + HTML_SUFFIXES
    + JSON_SUFFIXES
    + JSON_LINES_SUFFIXES
    + EMAIL_SUFFIXES
    + FEED_SUFFIXES
)


@dataclass
class FileReading:
    """What one file gave: its articles, and the parts of it that could not become one.

    `problems` holds `(line number, reason)` for each bad line of a line-based file;
    `bad_lines` the raw text of those lines, by number, so they can be kept as dead letters.
    """

    articles: list[Article]
    problems: list[tuple[int, str]] = field(default_factory=list)
    bad_lines: dict[int, str] = field(default_factory=dict)


def read_file(path: Path, source: str = "inbox") -> list[Article]:
    """Articles in a dropped file; raises `UnreadableFile` with the reason when there are none.

    Bad lines of a `.jsonl` file are skipped here; `read_file_report` says which and why."""
    return read_file_report(path, source).articles


def read_file_report(path: Path, source: str = "inbox") -> FileReading:
    """The articles in a dropped file and the problems met reading it; raises `UnreadableFile`
    with the reason when there is no article at all."""
    suffix = path.suffix.lower()
    reader, line_reader = _READERS.get(suffix), _LINE_READERS.get(suffix)
    try:
        if line_reader is not None:
            reading = line_reader(path.read_bytes(), str(path), source)
        elif reader is not None:
            reading = FileReading(reader(path.read_bytes(), str(path), source))
        else:
            reading = None
    except RecursionError:
        raise UnreadableFile(
            f"nested too deeply: more than about {sys.getrecursionlimit()} levels of objects, lists or MIME parts"
        ) from None
    if reading is None:
        raise UnreadableFile(
            f"unsupported file type {path.suffix or '(none)'!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not reading.articles:
        raise UnreadableFile("no article found in the file")
    return reading


def read_text(data: bytes, origin: str, source: str) -> list[Article]:
    """A `.txt` file: the first non-empty line is the headline, the rest the body."""
    text = decode_text(data).strip()
    title, _, body = text.partition("\n")
    return [Article.create(title=title.strip(), text=body.strip(), origin=origin, source=source)]


_ATX_HEADING = re.compile(r"^#{1,6}(?:[ \t]+|$)(.*?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^[ \t]*(?:=+|-+)[ \t]*$")


def read_markdown(data: bytes, origin: str, source: str) -> list[Article]:
    """A `.md` file: like `.txt`, but the headline may be a Markdown heading (`# Title`, or a
    line underlined with `===` or `---`). The body stays Markdown; the cleaner normalises it."""
    text = decode_text(data).strip()
    title, _, body = text.partition("\n")
    heading = _ATX_HEADING.match(title.strip())
    if heading:
        title = heading.group(1)
    else:
        underline, _, rest = body.partition("\n")
        if _SETEXT_UNDERLINE.match(underline):
            body = rest
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


def read_json_lines(data: bytes, origin: str, source: str) -> FileReading:
    """A `.jsonl` / `.ndjson` file: one article object per line, as in `.json`.

    A bad line does not spoil the others: it is reported with its number and reason. Only a file
    without a single good line is unreadable."""
    reading = FileReading([])
    # Split on \n only: str.splitlines() would also break at U+2028 and other separators,
    # which JSON allows raw inside strings. decode_text has already turned CRLF into \n.
    for number, raw in enumerate(decode_text(data).split("\n"), 1):
        line = raw.lstrip("\ufeff")  # a BOM left inside when files were concatenated
        if not line.strip():
            continue
        try:
            reading.articles.append(article_from_mapping(json.loads(line), origin, source, "the line"))
        except json.JSONDecodeError as error:
            reading.problems.append((number, f"malformed JSON: {error.msg} at column {error.colno}"))
            reading.bad_lines[number] = raw
        except UnreadableFile as error:
            reading.problems.append((number, str(error)))
            reading.bad_lines[number] = raw
    if not reading.articles and reading.problems:
        shown = "; ".join(f"line {number}: {reason}" for number, reason in reading.problems[:3])
        more = len(reading.problems) - 3
        raise UnreadableFile(f"no good line in the file: {shown}" + (f"; and {more} more" if more > 0 else ""))
    return reading


def read_email(data: bytes, origin: str, source: str) -> list[Article]:
    """An `.eml` file (a newsletter or news alert): Subject is the headline, the HTML part (else
    the plain-text one) the body, Date the publication date, the sender's name the source."""
    if not data.strip():
        raise UnreadableFile("empty file")
    message = email.message_from_bytes(data, policy=email.policy.default)
    if not isinstance(message, EmailMessage) or not message.keys():
        raise UnreadableFile("not an e-mail message: no header lines")
    title = re.sub(r"\s+", " ", str(message.get("Subject", ""))).strip()
    part = message.get_body(preferencelist=("html", "plain"))
    body = _email_text(part) if part is not None else ""
    if not body.strip():
        attached = sorted({p.get_content_type() for p in message.walk() if not p.is_multipart()} - {"text/plain"})
        found = f" (only {', '.join(attached)})" if attached else ""
        raise UnreadableFile(f"no text or HTML body in the e-mail{found}")
    is_html = part is not None and part.get_content_type() == "text/html"
    message_id = str(message.get("Message-ID", "")).strip().strip("<>") or None
    return [
        Article.create(
            title=title,
            text="" if is_html else body.strip(),
            html=body if is_html else None,
            # The Message-ID names this one message; a List-Id names the whole newsletter,
            # so as a GUID it would make every issue a new version of the same article.
            guid=message_id,
            source=_email_sender(message) or source,
            origin=origin,
            published_at=parse_date(str(message.get("Date", ""))),
        )
    ]


def _email_text(part: MIMEPart) -> str:
    """A text part decoded by its declared charset, else by guessing as for dropped files."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes) or not payload.strip():
        return ""
    charset = part.get_content_charset()
    if charset:
        try:
            return payload.decode(charset).replace("\r\n", "\n")
        except (LookupError, UnicodeDecodeError):
            pass  # an unknown or wrong charset: guess instead of losing the body
    return decode_text(payload)


def _email_sender(message: EmailMessage) -> str:
    sender = message.get("From")
    addresses = getattr(sender, "addresses", ())
    if not addresses:
        return ""
    return (addresses[0].display_name or addresses[0].addr_spec).strip()


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
        article = Article.create(
            title=html_lib.unescape(entry.get("title", "")).strip(),
            text="" if is_html else body.strip(),
            html=body if is_html else None,
            url=entry.get("link"),
            guid=entry.get("id"),
            source=source,
            origin=origin,
            published_at=parse_date(entry.get("published_parsed") or entry.get("updated_parsed")),
        )
        article.author = entry.get("author") or None
        articles.append(article)
    return articles


_READERS: dict[str, Callable[[bytes, str, str], list[Article]]] = {
    **{suffix: read_text for suffix in TEXT_SUFFIXES},
    **{suffix: read_markdown for suffix in MARKDOWN_SUFFIXES},
    **{suffix: read_html for suffix in HTML_SUFFIXES},
    **{suffix: read_json for suffix in JSON_SUFFIXES},
    **{suffix: read_email for suffix in EMAIL_SUFFIXES},
    **{suffix: read_feed for suffix in FEED_SUFFIXES},
}
# Readers of line-based files, which report bad lines instead of rejecting the whole file.
_LINE_READERS: dict[str, Callable[[bytes, str, str], FileReading]] = {
    **{suffix: read_json_lines for suffix in JSON_LINES_SUFFIXES},
}
