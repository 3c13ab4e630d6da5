"""Main-text extraction from a news page: the story's paragraphs, without the page around them.

Two independent passes read the page, and general rules decide between them:

- **trafilatura, precision mode** (comments excluded): the primary pass. It is the most precise
  on news pages, but two things go wrong with it now and then. It can settle on one block of a
  story that the site splits into several containers (say, around an advert) and lose the rest;
  or it can settle on a side block (a reprint notice, a caption) instead of the story.
- **readability, cleaned by trafilatura**: readability-lxml scores the page's containers and
  returns the best one together with its related siblings; trafilatura (recall mode, comments
  excluded) then turns that fragment into clean paragraphs, dropping captions, share bars and
  the like that readability leaves in.

Which text is kept:

1. The primary text, normally.
2. The readability text when it *contains* the primary text (≥ 90 % of its 4-word shingles)
   and adds distinct paragraphs worth at least half as many words again: the primary pass
   stopped at one part of a split story.
3. The readability text when the primary text is under a quarter of its length (and the
   readability text is not tiny) without that containment: the primary pass fixed on a side
   block.

When precision mode finds nothing, trafilatura's default mode stands in as the primary text;
when that finds nothing either, the readability text is taken as it is.

Then lines with no word at all (table rules, lone bullets) go, and a leading paragraph that
repeats the headline goes too (the headline is in `title`). Paragraphs are separated by blank
lines. Nothing here ever raises: a page that no pass can read gives empty text and method
"none".

The thresholds are round numbers; on the annotated benchmark set the result is the same for
containment 0.8-0.95, extra share 0.5-1.0 and small share 0.15-0.4.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass

import trafilatura

try:  # an optional dependency: without it the primary pass works alone
    from readability import Document as _ReadabilityDocument
except ImportError:  # pragma: no cover - exercised only where readability-lxml is missing
    _ReadabilityDocument = None

# readability-lxml logs every page it finds hard at INFO/WARNING: that is expected here.
logging.getLogger("readability.readability").setLevel(logging.ERROR)

SHINGLE_SIZE = 4
CONTAINED = 0.9  # share of the primary text's shingles that the wider text must hold
EXTRA_SHARE = 0.5  # distinct extra words, relative to the primary text, that justify the wider text
SMALL_SHARE = 0.25  # a primary text under this share of the readability text is a side block
SMALL_MIN_WORDS = 100  # ... if the readability text has at least this many words
PARAGRAPH_IN = 0.5  # a paragraph whose shingles are at least this much in a text is part of it
TITLE_MATCH = 0.6  # a leading paragraph within this length ratio of the headline, and inside it

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Extraction:
    """The main text of a page, how it was found, and the page's own metadata."""

    text: str
    method: str
    title: str | None = None
    published: str | None = None
    author: str | None = None


def extract_main_text(html: str, url: str | None = None) -> Extraction:
    """The article body of `html` (paragraphs separated by blank lines) and its metadata.

    Never raises: odd or empty markup gives empty text with method "none".
    """
    try:
        return _extract(html, url)
    except Exception:  # any parser failure on odd markup means "no main text"
        return Extraction(text="", method="none")


def _extract(html: str, url: str | None) -> Extraction:
    if not isinstance(html, str) or not html.strip():
        return Extraction(text="", method="none")
    document = _trafilatura(html, url, favor_precision=True, with_metadata=True)
    title, published, author = _metadata(document, html, url)

    primary, method = _paragraphs(getattr(document, "text", None)), "trafilatura"
    if not primary:
        primary, method = _paragraphs(_text(_trafilatura(html, url))), "trafilatura-default"
    located = _paragraphs(_readability_text(html, url))

    if located and _prefer_located(primary, located):
        chosen, method = located, "readability+trafilatura"
    else:
        chosen = primary
    if not chosen:
        return Extraction(text="", method="none", title=title, published=published, author=author)
    chosen = _drop_leading_title(chosen, title)
    return Extraction(text="\n\n".join(chosen), method=method, title=title, published=published, author=author)


# --- the passes ---------------------------------------------------------------------------------


def _trafilatura(
    html: str,
    url: str | None,
    *,
    favor_precision: bool = False,
    favor_recall: bool = False,
    with_metadata: bool = False,
) -> object | None:
    try:
        return trafilatura.bare_extraction(
            html,
            url=url,
            include_comments=False,
            favor_precision=favor_precision,
            favor_recall=favor_recall,
            with_metadata=with_metadata,
        )
    except Exception:  # trafilatura raises many kinds on odd markup; all mean "no result"
        return None


def _text(document: object | None) -> str | None:
    return getattr(document, "text", None) if document is not None else None


def _readability_text(html: str, url: str | None) -> str | None:
    """The container readability takes for the article, as trafilatura's clean paragraphs."""
    if _ReadabilityDocument is None:
        return None
    try:
        # No URL: readability would rewrite every link absolute (a fifth of its time), and
        # only the fragment's text is used.
        fragment = _ReadabilityDocument(html).summary(html_partial=True)
    except Exception:  # readability raises on pages it cannot parse or score
        return None
    if not fragment or not fragment.strip():
        return None
    page = f"<html><body>{fragment}</body></html>"
    return _text(_trafilatura(page, url, favor_recall=True))


def _metadata(document: object | None, html: str, url: str | None) -> tuple[str | None, str | None, str | None]:
    if document is None:
        try:
            document = trafilatura.extract_metadata(html, default_url=url)
        except Exception:  # unreadable markup: no metadata
            document = None
    return (
        _clean_field(getattr(document, "title", None)),
        _clean_field(getattr(document, "date", None)),
        _clean_field(getattr(document, "author", None)),
    )


def _clean_field(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value or None


# --- choosing and tidying -----------------------------------------------------------------------


def _paragraphs(text: str | None) -> list[str]:
    """Non-empty lines that hold at least one word (drops table rules such as `|---|---|`)."""
    if not text:
        return []
    lines = (" ".join(line.split()) for line in text.splitlines())
    return [line for line in lines if _WORD.search(line)]


def _prefer_located(primary: list[str], located: list[str]) -> bool:
    """Whether the readability text should replace the primary text (see the module doc)."""
    if not primary:
        return True
    primary_shingles = _shingles(" ".join(primary))
    located_shingles = _shingles(" ".join(located))
    primary_words = _word_count(primary)
    if _share_in(primary_shingles, located_shingles) >= CONTAINED:
        extra_words = sum(
            len(_WORD.findall(paragraph))
            for paragraph in dict.fromkeys(located)  # a caption repeated for each image counts once
            if _share_in(_shingles(paragraph), primary_shingles) < PARAGRAPH_IN
        )
        return extra_words >= EXTRA_SHARE * primary_words
    located_words = _word_count(located)
    return located_words >= SMALL_MIN_WORDS and primary_words < SMALL_SHARE * located_words


def _drop_leading_title(paragraphs: list[str], title: str | None) -> list[str]:
    """Drop leading paragraphs that repeat the headline (never the last one)."""
    if not title:
        return paragraphs
    headline = _normalized(title)
    start = 0
    while start < len(paragraphs) - 1 and _same_line(_normalized(paragraphs[start]), headline):
        start += 1
    return paragraphs[start:]


def _same_line(line: str, headline: str) -> bool:
    if not line or not headline:
        return False
    shorter, longer = sorted((line, headline), key=len)
    return shorter in longer and len(shorter) >= TITLE_MATCH * len(longer)


def _normalized(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _word_count(paragraphs: list[str]) -> int:
    return sum(len(_WORD.findall(paragraph)) for paragraph in paragraphs)


def _shingles(text: str) -> Counter[tuple[str, ...]]:
    words = _WORD.findall(text)
    if len(words) <= SHINGLE_SIZE:
        return Counter([tuple(words)]) if words else Counter()
    return Counter(tuple(words[i : i + SHINGLE_SIZE]) for i in range(len(words) - SHINGLE_SIZE + 1))


def _share_in(part: Counter[tuple[str, ...]], whole: Counter[tuple[str, ...]]) -> float:
    total = sum(part.values())
    if not total:
        return 1.0
    return sum((part & whole).values()) / total


__all__ = ["Extraction", "extract_main_text"]
