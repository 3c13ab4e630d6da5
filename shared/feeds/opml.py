"""OPML, the format feed readers exchange subscription lists in."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime
from xml.sax.saxutils import quoteattr

from shared.feeds.registry import Feed


class OpmlError(ValueError):
    """An OPML document that cannot be read; the message says why."""


def parse_opml(text: str) -> list[Feed]:
    """Feeds in an OPML document: every outline with an `xmlUrl`; the titles of the folders
    around it become its tags, as readers use folders for topics."""
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        raise OpmlError(f"not valid OPML: {error}") from None
    body = root.find("body")
    if root.tag != "opml" or body is None:
        raise OpmlError("not an OPML document (no <opml><body>)")
    feeds: list[Feed] = []

    def walk(element: ElementTree.Element, folders: list[str]) -> None:
        for outline in element.findall("outline"):
            url = outline.get("xmlUrl")
            title = outline.get("title") or outline.get("text")
            if url:
                feeds.append(Feed(url=url.strip(), name=title, tags=[folder.lower() for folder in folders]))
            else:
                walk(outline, [*folders, title] if title else folders)

    walk(body, [])
    return feeds


def export_opml(feeds: list[Feed], title: str = "wirewatch feeds") -> str:
    """An OPML 2.0 document listing the feeds."""
    created = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        f"  <head><title>{_escape(title)}</title><dateCreated>{created}</dateCreated></head>",
        "  <body>",
    ]
    for feed in feeds:
        name = quoteattr(feed.name or feed.url)
        lines.append(f'    <outline type="rss" text={name} title={name} xmlUrl={quoteattr(feed.url)}/>')
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
