"""Turning one dropped file into articles, by its format.

Readers only read: they decode the bytes and pick out title, text or HTML, URL and date.
Cleaning, deduplication and tagging happen later, in the worker chain.
"""

from __future__ import annotations

import codecs
import email
import email.policy
import html as html_lib
import io
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage, MIMEPart
from pathlib import Path
from typing import IO, Any

import feedparser
import lxml.etree

from shared.article import Article, valid_text
from shared.dates import parse_date
from shared.formats.decode import decode_text, looks_binary
from shared.formats.files import open_regular, shown
from shared.formats.limits import Limits, ReadClock
from shared.formats.mapping import UnreadableFile, article_from_mapping
from shared.formats.markup import without_code

TEXT_SUFFIXES = (".txt",)
MARKDOWN_SUFFIXES = (".md",)
HTML_SUFFIXES = (".html", ".htm")
JSON_SUFFIXES = (".json",)
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
EMAIL_SUFFIXES = (".eml",)
FEED_SUFFIXES = (".rss", ".atom", ".xml")
WHOLE_ARTICLE_SUFFIXES = TEXT_SUFFIXES + MARKDOWN_SUFFIXES + HTML_SUFFIXES  # the file is the article
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

    `problems` holds `(number, reason)` for each bad part (a line of a line-based file or an
    entry of a feed: `unit` says which); `bad_lines` the raw text of those parts, by number,
    so they can be kept as dead letters.
    """

    articles: list[Article]
    problems: list[tuple[int, str]] = field(default_factory=list)
    bad_lines: dict[int, str] = field(default_factory=dict)
    unit: str = "line"


def read_file(path: Path, source: str = "inbox", limits: Limits | None = None) -> list[Article]:
    """Articles in a dropped file; raises `UnreadableFile` with the reason when there are none.

    Bad lines of a `.jsonl` file are skipped here; `read_file_report` says which and why."""
    return read_file_report(path, source, limits).articles


def read_file_report(
    path: Path, source: str = "inbox", limits: Limits | None = None, *, inside: Path | None = None
) -> FileReading:
    """The articles in a dropped file and the problems met reading it; raises `UnreadableFile`
    with the reason when there is no article at all.

    Only a regular file is read (`inside`: and only through real folders below that one), and
    only within the limits: size before a byte is parsed, nesting before JSON is, the time of
    the whole read between its steps. Any error of a reader becomes the reason."""
    limits = limits or Limits.from_settings()
    suffix = path.suffix.lower()
    reader, partial_reader = _READERS.get(suffix), _PARTIAL_READERS.get(suffix)
    if reader is None and partial_reader is None:
        raise UnreadableFile(
            f"unsupported file type {shown(path.suffix) or '(none)'!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    clock = ReadClock(limits.max_read_seconds)
    origin = shown(path)
    descriptor = open_regular(path, inside)
    try:
        size = os.fstat(descriptor).st_size
        limits.check_file_size(size)
        if suffix in WHOLE_ARTICLE_SUFFIXES and size > 4 * limits.max_article_chars:
            # the whole file is one article, and no encoding packs more than 4 bytes in a character
            raise UnreadableFile(
                f"article too large: {size} bytes hold more than {limits.max_article_chars} characters "
                "(WIREWATCH_MAX_ARTICLE_CHARS)"
            )
        try:
            if suffix in JSON_LINES_SUFFIXES:
                with os.fdopen(descriptor, "rb", closefd=False) as handle:
                    reading = read_json_lines_stream(handle, origin, source, limits, clock)
            else:
                data = _read_all(descriptor, size, limits.max_file_bytes)
                limits.check_file_size(len(data))  # it grew since it was looked at
                clock.check()
                if partial_reader is not None:
                    reading = partial_reader(data, origin, source, limits)
                else:
                    assert reader is not None
                    reading = FileReading([_within_limit(a, limits) for a in reader(data, origin, source)])
                clock.check()
        except UnreadableFile:
            raise
        except RecursionError:
            raise UnreadableFile(
                f"nested too deeply: more than about {sys.getrecursionlimit()} levels of objects, lists or MIME parts"
            ) from None
        except Exception as error:  # a reader's bug or a parser's surprise: the file is kept, with why
            raise UnreadableFile(f"could not be read ({type(error).__name__}: {error})") from None
    finally:
        os.close(descriptor)
    if not reading.articles:
        if reading.problems:
            shown_problems = "; ".join(f"{reading.unit} {n}: {reason}" for n, reason in reading.problems[:3])
            more = len(reading.problems) - 3
            raise UnreadableFile(
                f"no good {reading.unit} in the file: {shown_problems}" + (f"; and {more} more" if more > 0 else "")
            )
        raise UnreadableFile("no article found in the file")
    return reading


def _read_all(descriptor: int, size: int, limit: int) -> bytes:
    """The file's bytes to its end, but no more than `limit` + 1 of them. Asks for the size
    `fstat` gave first: asking for the whole limit would allocate that much for every file."""
    data = os.read(descriptor, size + 1)
    while len(data) <= limit:  # to the end of the file (it may have grown), or past the limit
        more = os.read(descriptor, min(limit + 1 - len(data), 1 << 20))
        if not more:
            break
        data += more
    return data


def _within_limit(article: Article, limits: Limits) -> Article:
    """The article, unless it is over the size limit: then `UnreadableFile` naming the limit."""
    problem = limits.article_problem(_article_chars(article))
    if problem is not None:
        raise UnreadableFile(problem)
    return article


def _article_chars(article: Article) -> int:
    return len(article.title) + len(article.text) + len(article.html or "")


def read_text(data: bytes, origin: str, source: str) -> list[Article]:
    """A `.txt` file: the first non-empty line is the headline, the rest the body."""
    text = decode_text(data).strip()
    title, _, body = text.partition("\n")
    return [Article.create(title=title.strip(), text=body.strip(), origin=origin, source=source)]


_SETEXT_UNDERLINE = re.compile(r"[ \t]*(?:=+|-+)[ \t]*")


def _atx_heading(line: str) -> str | None:
    """The text of a Markdown `# Heading` line (closing hashes dropped), or None. String
    operations, not a regular expression: the line may be as long as the file."""
    marks = len(line) - len(line.lstrip("#"))
    rest = line[marks:]
    if not 1 <= marks <= 6 or (rest and rest[0] not in " \t"):
        return None
    rest = rest.strip(" \t")
    closed = rest.rstrip("#")
    if closed != rest and (not closed or closed[-1] in " \t"):
        rest = closed.rstrip(" \t")
    return rest


def read_markdown(data: bytes, origin: str, source: str) -> list[Article]:
    """A `.md` file: like `.txt`, but the headline may be a Markdown heading (`# Title`, or a
    line underlined with `===` or `---`). The body stays Markdown; the cleaner normalises it."""
    text = decode_text(data).strip()
    title, _, body = text.partition("\n")
    heading = _atx_heading(title.strip())
    if heading is not None:
        title = heading
    else:
        underline, _, rest = body.partition("\n")
        if _SETEXT_UNDERLINE.fullmatch(underline):
            body = rest
    return [Article.create(title=title.strip(), text=body.strip(), origin=origin, source=source)]


_SITE_SUFFIX = re.compile(r"\s+[|–—-]\s+[^|–—-]{1,40}$")
_DATE_NAMES = frozenset({"article:published_time", "datepublished", "pubdate", "date"})
TITLE_CHARS = 2000  # a title longer than this is not a headline; cut before anything searches it


def read_html(data: bytes, origin: str, source: str) -> list[Article]:
    """An `.html` page: kept for main-text extraction, less the code in its scripts and style
    sheets; URL, title and date from its `<head>` (or wherever the page put its `<meta>` and
    `<link>` tags), read by lxml's HTML parser, which takes time in proportion to the page
    however its tags repeat."""
    page = decode_text(data)
    if "<" not in page:
        raise UnreadableFile("no HTML markup in an .html file")
    read = without_code(page)
    url = og_title = page_title = published = None
    for element in _html_elements(read):
        tag = element.tag
        if tag == "title":
            if page_title is None:
                page_title = "".join(element.itertext())[:TITLE_CHARS]
            continue
        attributes = {name.lower(): value for name, value in element.attrib.items()}
        if tag == "link":
            rel = attributes.get("rel", "").lower().split()
            href = attributes.get("href", "").strip()
            if url is None and "canonical" in rel and href.startswith(("http://", "https://")):
                url = href
            continue
        name = (attributes.get("property") or attributes.get("name") or attributes.get("itemprop") or "").lower()
        content = attributes.get("content", "")
        if name == "og:url" and url is None and content.strip().startswith(("http://", "https://")):
            url = content.strip()
        elif name == "og:title" and og_title is None:
            og_title = content[:TITLE_CHARS]
        elif name in _DATE_NAMES and published is None and content.strip():
            published = content.strip()
    if og_title is not None:
        title = og_title.strip()
    elif page_title is not None:
        # A <title> usually ends with the site's name: "Headline | Example Times".
        title = _SITE_SUFFIX.sub("", " ".join(page_title.split()))
    else:
        title = ""
    article = Article.create(
        title=title,
        html=page,  # an article without a URL is named by its content: by the whole page, as always
        url=url,
        origin=origin,
        source=source,
        published_at=parse_date(published) if published else None,
    )
    article.html = read if read is page else valid_text(read)
    return [article]


# Letter classes, not IGNORECASE: the search then skips ahead to each "<" (several times faster).
_BODY_TAG = re.compile(r"<[bB][oO][dD][yY]")
_METADATA_TAG = re.compile(r"<(?:/?[tT][iI][tT][lL][eE]|[lL][iI][nN][kK]|[mM][eE][tT][aA])")


def _metadata_part(page: str) -> str:
    """The part of a page that holds all of its `<title>`, `<link>` and `<meta>` tags: what
    comes before `<body>`, when the rest holds none of them and the cut falls between tags (not
    inside a tag, a quoted value or a title); else the whole page. The head is a sliver of a
    news page's markup, and the parser's time goes with the markup it reads."""
    body = _BODY_TAG.search(page)
    if body is None or _METADATA_TAG.search(page, body.start()) is not None:
        return page
    head = page[: body.start()]
    last_tag = head.rfind("<")
    tail = head[last_tag:]
    if head.rfind(">") < last_tag or tail.count('"') % 2 or tail.count("'") % 2:
        return page
    return head


def _html_elements(page: str) -> Iterator[Any]:
    """The `<title>`, `<link>` and `<meta>` elements of a page, in document order."""
    parser = lxml.etree.HTMLParser(encoding="utf-8", recover=True, no_network=True, huge_tree=False)
    try:
        root = lxml.etree.fromstring(_metadata_part(page).encode("utf-8", "replace"), parser=parser)
    except (lxml.etree.ParserError, lxml.etree.XMLSyntaxError, ValueError):
        return  # markup lxml cannot make a tree of: the page goes on without metadata
    if root is None:
        return
    yield from root.iter("title", "link", "meta")


def read_json(data: bytes, origin: str, source: str, limits: Limits) -> FileReading:
    """A `.json` file: one article object (url, title, text or html, published, source), or a list."""
    text = decode_text(data)
    limits.check_nesting(text)
    try:
        value = json.loads(text)
    except ValueError as error:  # malformed, or a number of more digits than Python converts
        raise UnreadableFile(f"malformed JSON: {error}") from None
    items = value if isinstance(value, list) else [value]
    articles = [article_from_mapping(item, origin, source, f"item {n}") for n, item in enumerate(items, 1)]
    return FileReading([_within_limit(article, limits) for article in articles])


def read_json_lines(data: bytes, origin: str, source: str, limits: Limits | None = None) -> FileReading:
    """A `.jsonl` / `.ndjson` file given as bytes: as `read_json_lines_stream`."""
    limits = limits or Limits.from_settings()
    return read_json_lines_stream(io.BytesIO(data), origin, source, limits, ReadClock(limits.max_read_seconds))


def read_json_lines_stream(
    handle: IO[bytes], origin: str, source: str, limits: Limits, clock: ReadClock
) -> FileReading:
    """A `.jsonl` / `.ndjson` file: one article object per line, as in `.json`, read a line at
    a time (a line longer than `max_line_bytes` is skipped unread, as a bad line).

    A bad line does not spoil the others: it is reported with its number and reason. Only a file
    without a single good line is unreadable."""
    reading = FileReading([])
    for number, raw, too_long in _lines(handle, limits.max_line_bytes):
        clock.check()
        if too_long:
            reason = f"line too long: over the limit of {limits.max_line_bytes} bytes (WIREWATCH_MAX_LINE_BYTES)"
            reading.problems.append((number, reason))
            reading.bad_lines[number] = raw.decode("utf-8", "replace")[:2000]
            continue
        if not raw.strip():
            continue
        try:
            line = _decode_line(raw).lstrip("\ufeff")  # a BOM left inside when files were concatenated
            if not line.strip():
                continue
            limits.check_nesting(line)
            article = article_from_mapping(json.loads(line), origin, source, "the line")
            reading.articles.append(_within_limit(article, limits))
        except json.JSONDecodeError as error:
            reading.problems.append((number, f"malformed JSON: {error.msg} at column {error.colno}"))
            reading.bad_lines[number] = raw.decode("utf-8", "replace")
        except RecursionError:
            reading.problems.append((number, f"nested too deeply: more than about {sys.getrecursionlimit()} levels"))
            reading.bad_lines[number] = raw.decode("utf-8", "replace")
        except Exception as error:  # whatever a line holds, it costs only itself
            reading.problems.append((number, _reason(error)))
            reading.bad_lines[number] = raw.decode("utf-8", "replace")
    if not reading.articles and not reading.problems:
        raise UnreadableFile("empty file")
    return reading


def _lines(handle: IO[bytes], max_bytes: int) -> Iterator[tuple[int, bytes, bool]]:
    """(number, line, whether it was too long) for each line; a too-long line's rest is read
    past in blocks and dropped, so no line over `max_bytes` is ever held whole."""
    start = handle.read(4)
    handle.seek(0)
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # \n is two bytes there
        text = decode_text(handle.read())
        for number, text_line in enumerate(text.split("\n"), 1):
            encoded = text_line.encode("utf-8")
            yield number, encoded[:2000] if len(encoded) > max_bytes else encoded, len(encoded) > max_bytes
        return
    number = 0
    while True:
        line = handle.readline(max_bytes + 1)
        if not line:
            return
        number += 1
        if len(line) <= max_bytes or line.endswith(b"\n") and len(line) == max_bytes + 1:
            yield number, line.rstrip(b"\r\n"), False
            continue
        head = line[:2000]
        while not line.endswith(b"\n"):
            line = handle.readline(1 << 20)
            if not line:
                break
        yield number, head, True


def _decode_line(raw: bytes) -> str:
    # Split on \n only: a str.splitlines() would also break at U+2028 and other separators,
    # which JSON allows raw inside strings.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return decode_text(raw)


def _reason(error: BaseException) -> str:
    if isinstance(error, UnreadableFile):
        return str(error)
    return f"{type(error).__name__}: {error}"


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


def read_feed(data: bytes, origin: str, source: str, limits: Limits) -> FileReading:
    """An RSS or Atom document: every entry becomes an article; an entry that cannot is a
    problem of the reading, the others go on."""
    parsed = parse_feed(data)
    if not parsed.entries:
        if parsed.bozo:
            raise UnreadableFile(f"malformed feed: {parsed.get('bozo_exception')}")
        raise UnreadableFile("feed has no entries")
    feed_reading = articles_from_feed(parsed, origin, parsed.feed.get("title") or source, limits)
    reading = FileReading(feed_reading.articles, unit="entry")
    for number, reason, kept in feed_reading.problems:
        reading.problems.append((number, reason))
        reading.bad_lines[number] = json.dumps(kept, ensure_ascii=False, default=str)[:2000]
    return reading


def parse_feed(data: bytes, headers: dict[str, str] | None = None) -> Any:
    """feedparser's reading of a feed document; binary bytes are refused before it tries."""
    if looks_binary(data):
        raise UnreadableFile("binary content, not a feed")
    return feedparser.parse(data, response_headers=headers or {})


@dataclass
class FeedReading:
    """The articles of a parsed feed, each with its entry, and the entries that became none:
    `(entry number, reason, what of the entry is kept as its dead letter)`."""

    articles: list[Article] = field(default_factory=list)
    entries: list[Any] = field(default_factory=list)
    problems: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)


_MARKUP = re.compile(r"<[a-zA-Z/][^<>]*>")  # [^<>]: each scan stops at the next tag, so linear


def articles_from_feed(parsed: Any, origin: str, source: str, limits: Limits | None = None) -> FeedReading:
    """Articles from a parsed feed, one entry at a time: an entry that cannot become one (a
    link that is no URL, a date past the calendar, an article over the size limit) is set
    aside with the reason, never taking the others down. Entry HTML is kept for the cleaner,
    plain text as text."""
    limits = limits or Limits.from_settings()
    reading = FeedReading()
    for number, entry in enumerate(parsed.entries, 1):
        try:
            article = _entry_article(entry, origin, source)
            problem = limits.article_problem(_article_chars(article))
        except Exception as error:
            problem = f"unreadable entry: {_reason(error)}"
        if problem is not None:
            reading.problems.append((number, problem, _entry_summary(entry)))
            continue
        reading.articles.append(article)
        reading.entries.append(entry)
    return reading


def _entry_article(entry: Any, origin: str, source: str) -> Article:
    body = ""
    if entry.get("content"):
        body = entry.content[0].get("value", "")
    body = body or entry.get("summary", "")
    is_html = bool(_MARKUP.search(body))
    published = parse_date(entry.get("published_parsed") or entry.get("updated_parsed"))
    article = Article.create(
        title=html_lib.unescape(entry.get("title", "")).strip(),
        text="" if is_html else body.strip(),
        html=body if is_html else None,
        url=entry.get("link"),
        guid=entry.get("id"),
        source=source,
        origin=origin,
        published_at=published,
    )
    article.author = entry.get("author") or None
    return article


def _entry_summary(entry: Any) -> dict[str, str]:
    """What is kept of an entry that could not become an article: enough to find it again."""
    return {key: str(entry.get(key, ""))[:500] for key in ("id", "link", "title", "published") if entry.get(key)}


_READERS: dict[str, Callable[[bytes, str, str], list[Article]]] = {
    **{suffix: read_text for suffix in TEXT_SUFFIXES},
    **{suffix: read_markdown for suffix in MARKDOWN_SUFFIXES},
    **{suffix: read_html for suffix in HTML_SUFFIXES},
    **{suffix: read_email for suffix in EMAIL_SUFFIXES},
}
# Readers that report bad parts (lines, items, entries) instead of rejecting the whole file.
_PARTIAL_READERS: dict[str, Callable[[bytes, str, str, Limits], FileReading]] = {
    **{suffix: read_json_lines for suffix in JSON_LINES_SUFFIXES},
    **{suffix: read_json for suffix in JSON_SUFFIXES},
    **{suffix: read_feed for suffix in FEED_SUFFIXES},
}
