"""Main-text extraction from a news page: the story's paragraphs, without the page around them.

The page is parsed once with lxml; its metadata (title, date, author) is read from that tree.

**The container pass** comes first and costs about a millisecond: scripts, styles and the like
are dropped, page furniture (navigation, asides, footers, and blocks whose class or id names
comments, sharing, related stories, captions, galleries...) is set aside, and every remaining
paragraph scores its parent and, half, its grandparent. The best-scoring element is the
container. Its text is taken only when the page is plainly built around it: it holds at least
`CONTAINER_MIN_CHARS` of paragraph text, paragraphs elsewhere add up to no more than
`OUTSIDE_SHARE` of that, and no more than `LOOSE_SHARE` of the container's own text lies outside
its paragraphs, headings, list items and quotes (text in tables or bare `<div>`s that this pass
would lose). A page that fails any of these, such as a story split around an advert, goes to the
full passes below.

**The full passes**: two independent readings, and general rules decide between them:

- **trafilatura, precision mode** (comments excluded, fast: without its own fallback
  extractors, which the readability pass stands in for): the primary pass. It is the most precise
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
containment 0.8-0.95, extra share 0.5-1.0 and small share 0.15-0.4, and F1 moves by less than
0.003 for the container pass's outside share 0.15-0.4, loose share 0.1-0.25 and minimum
250-600 characters.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import lxml.etree
import trafilatura

from shared.dates import parse_date
from shared.formats.markup import without_code

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

CONTAINER_MIN_CHARS = 400  # paragraph text the container pass needs before it trusts itself
OUTSIDE_SHARE = 0.25  # paragraph text elsewhere on the page, relative to the container's
LOOSE_SHARE = 0.15  # share of the container's text outside the blocks it reads
SCORED_MIN_CHARS = 25  # a shorter paragraph does not vote for a container (it is still read)
LINK_SHARE = 0.5  # a block whose text is mostly link text is a list of links, not prose

_WORD = re.compile(r"\w+")
# lxml.etree's parser, not lxml.html's: the latter asks Python for the class of every element it
# hands out, which cost more than the whole container pass.
_PARSER = lxml.etree.HTMLParser(
    encoding="utf-8", recover=True, no_network=True, remove_comments=True, remove_pis=True, huge_tree=False
)
# Never text a reader sees (or, for forms' controls, only labels).
_NOT_TEXT = (
    "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "embed", "canvas",
    "button", "select", "textarea",
)  # fmt: skip
# Page furniture by element, and by the words sites use in class and id names for it.
_FURNITURE_TAGS = frozenset({"nav", "aside", "footer", "header", "menu", "figure", "figcaption", "dialog"})
_FURNITURE_NAMES = re.compile(
    r"comment|share|sharing|social|related|promo|newsletter|subscri|signup|advert|\bads?\b|sponsor|cookie|consent"
    r"|caption|credit|gallery|slideshow|carousel|sidebar|widget|popup|modal|breadcrumb|footer|\bnav|banner|teaser"
    r"|recommend|more-?stories|most-?(?:read|popular)|pagination|pager|\bprev|\bnext\b",
    re.IGNORECASE,
)
_SCORED = ("p", "pre")
_READ = ("p", "pre", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "dd", "dt")
_HOLDERS = frozenset({"li", "blockquote", "dd", "dt"})  # read whole only when they hold no paragraph


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
    root = _parse(html)
    title, published, author = _page_metadata(root) if root is not None else (None, None, None)

    chosen = _container_text(root) if root is not None else None
    method = "container"
    if not chosen:
        # Both passes drop scripts and style sheets only after much work on their text.
        chosen, method = _full_passes(without_code(html), url)
    if not chosen:
        return Extraction(text="", method="none", title=title, published=published, author=author)
    chosen = _drop_leading_title(chosen, title)
    return Extraction(text="\n\n".join(chosen), method=method, title=title, published=published, author=author)


def _full_passes(html: str, url: str | None) -> tuple[list[str], str]:
    """trafilatura and readability, chosen between as the module doc says."""
    primary, method = _paragraphs(_text(_trafilatura(html, url, favor_precision=True))), "trafilatura"
    if not primary:
        primary, method = _paragraphs(_text(_trafilatura(html, url))), "trafilatura-default"
    located = _paragraphs(_readability_text(html, url))
    if located and _prefer_located(primary, located):
        return located, "readability+trafilatura"
    return primary, method


def _parse(html: str) -> Any | None:
    """The page's element tree (comments and processing instructions left out), or None."""
    try:
        root = lxml.etree.fromstring(html.encode("utf-8", "replace"), parser=_PARSER)
    except (lxml.etree.ParserError, lxml.etree.XMLSyntaxError, ValueError):
        return None
    return root if root is not None and isinstance(root.tag, str) else None


# --- the container pass -------------------------------------------------------------------------


def _container_text(root: Any) -> list[str] | None:
    try:
        return _container_paragraphs(root)
    except Exception:  # odd markup this pass did not foresee: the full passes still read the page
        return None


def _container_paragraphs(root: Any) -> list[str] | None:
    """The lines of the one container the page is built around, or None when that is not plain
    (see the module doc). Changes `root`: what is never text goes, `<br>` becomes a line break."""
    lxml.etree.strip_elements(root, *_NOT_TEXT, with_tail=False)
    for br in root.iter("br"):
        br.tail = "\n" + (br.tail or "")
    furniture = _Furniture()

    scores: dict[Any, float] = {}
    page_chars = 0
    for paragraph in root.iter(_SCORED):
        if furniture.holds(paragraph):
            continue
        chars = len(" ".join(_text_of(paragraph).split()))
        if chars < SCORED_MIN_CHARS or _link_chars(paragraph) > LINK_SHARE * chars:
            continue
        page_chars += chars
        parent = paragraph.getparent()
        if parent is None:
            continue
        scores[parent] = scores.get(parent, 0.0) + chars
        grandparent = parent.getparent()
        if grandparent is not None:
            scores[grandparent] = scores.get(grandparent, 0.0) + chars / 2
    if not scores:
        return None
    container = max(scores, key=scores.__getitem__)
    inside = container.iter(lxml.etree.Element)  # elements only, not entities
    for element in [element for element in inside if element is not container and _is_furniture(element)]:
        _remove_keeping_tail(element)  # a caption or share bar in the story is neither read nor lost text

    lines: list[str] = []
    read_chars = 0
    taken: set[Any] = set()
    for block in container.iter(_READ):
        if _inside_any(block, taken, container):
            continue
        if block.tag in _HOLDERS and block.find(".//p") is not None:
            continue  # its paragraphs are read one by one
        block_lines = _lines(block)
        chars = sum(map(len, block_lines))
        if not chars or _link_chars(block) > LINK_SHARE * chars:
            continue
        taken.add(block)
        lines.extend(block_lines)
        read_chars += chars
    if read_chars < CONTAINER_MIN_CHARS or page_chars - read_chars > OUTSIDE_SHARE * read_chars:
        return None
    container_chars = len(" ".join(_text_of(container).split()))
    if container_chars - read_chars > LOOSE_SHARE * container_chars:
        return None
    return [line for line in lines if _WORD.search(line)]


class _Furniture:
    """Whether an element is page furniture or inside some, remembered per element so that a
    page's paragraphs share the walk up their common ancestors."""

    def __init__(self) -> None:
        self._known: dict[Any, bool] = {}

    def holds(self, element: Any) -> bool:
        walked = []
        found = False
        node = element
        while node is not None:
            known = self._known.get(node)
            if known is not None:
                found = known
                break
            walked.append(node)
            if node.tag not in ("html", "body") and _is_furniture(node):
                found = True
                break
            node = node.getparent()
        for node in walked:
            self._known[node] = found
        return found


def _is_furniture(element: Any) -> bool:
    if element.tag in _FURNITURE_TAGS:
        return True
    names = f"{element.get('class') or ''} {element.get('id') or ''}"
    return bool(names.strip()) and _FURNITURE_NAMES.search(names) is not None


def _remove_keeping_tail(element: Any) -> None:
    parent = element.getparent()
    if parent is None:
        return
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def _inside_any(element: Any, taken: set[Any], container: Any) -> bool:
    node = element.getparent()
    while node is not None and node is not container:
        if node in taken:
            return True
        node = node.getparent()
    return False


def _lines(element: Any) -> list[str]:
    return [" ".join(line.split()) for line in _text_of(element).split("\n") if line.strip()]


def _text_of(element: Any) -> str:
    return lxml.etree.tostring(element, method="text", encoding="unicode", with_tail=False)


def _link_chars(element: Any) -> int:
    return sum(len(" ".join(_text_of(link).split())) for link in element.iter("a"))


# --- metadata -----------------------------------------------------------------------------------

_TITLE_NAMES = ("og:title", "twitter:title", "dc.title", "headline")
_DATE_NAMES = (
    "article:published_time", "og:published_time", "datepublished", "pubdate", "publishdate",
    "publish-date", "article.published", "parsely-pub-date", "sailthru.date", "dc.date.issued",
    "dcterms.issued", "dc.date", "dcterms.created", "date",
)  # fmt: skip
_AUTHOR_NAMES = ("author", "article:author", "dc.creator", "dcterms.creator", "parsely-author", "sailthru.author")
_SITE_SUFFIX = re.compile(r"\s+[|–—·-]\s+[^|–—·-]{1,40}$")
_BY = re.compile(r"^\s*by\s+", re.IGNORECASE)
FIELD_MAX_CHARS = 300  # longer is not a headline or a name


def _page_metadata(root: Any) -> tuple[str | None, str | None, str | None]:
    """Title, publication date (ISO 8601) and author from the page's meta tags, its JSON-LD,
    and failing those its `<title>`/`<h1>` and byline. Read before the container pass changes
    the tree (it drops the JSON-LD scripts)."""
    meta: dict[str, str] = {}
    for element in root.iter("meta"):
        name = (element.get("property") or element.get("name") or element.get("itemprop") or "").strip().lower()
        content = (element.get("content") or "").strip()
        if name and content and name not in meta:
            meta[name] = content
    linked = _linked_data(root)

    title = next((meta[name] for name in _TITLE_NAMES if name in meta), None) or _str(linked.get("headline"))
    if not title:
        headings = root.findall(".//h1")
        if len(headings) == 1:
            title = _text_of(headings[0])
    if not title:
        page_title = root.find(".//title")
        if page_title is not None:
            title = _SITE_SUFFIX.sub("", " ".join(_text_of(page_title).split()))

    published = None
    for value in (*(meta.get(name) for name in _DATE_NAMES), _str(linked.get("datePublished")), _time_element(root)):
        moment = parse_date(value) if value else None
        if moment is not None:
            published = moment.isoformat()
            break

    author = next((meta[name] for name in _AUTHOR_NAMES if name in meta and "://" not in meta[name]), None)
    author = author or _author_of(linked.get("author")) or _byline(root)
    return _clean_field(title), published, _clean_field(author)


def _linked_data(root: Any) -> dict[str, Any]:
    """The first JSON-LD object that describes an article (or, failing that, the first one)."""
    found: list[dict[str, Any]] = []
    for script in root.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json" or not script.text:
            continue
        try:
            data = json.loads(script.text)
        except ValueError:
            continue
        found.extend(_objects(data))
    for item in found:
        kind = item.get("@type")
        kinds = kind if isinstance(kind, list) else [kind]
        if any(isinstance(k, str) and k.endswith("Article") for k in kinds):
            return item
    return found[0] if found else {}


def _objects(data: Any) -> Iterator[dict[str, Any]]:
    items = data if isinstance(data, list) else [data]
    for item in items:
        if isinstance(item, dict):
            yield item
            graph = item.get("@graph")
            if isinstance(graph, list):
                yield from (node for node in graph if isinstance(node, dict))


def _author_of(value: Any) -> str | None:
    if isinstance(value, list):
        names = [name for name in map(_author_of, value) if name]
        return ", ".join(names) or None
    if isinstance(value, dict):
        return _str(value.get("name"))
    return _str(value)


def _time_element(root: Any) -> str | None:
    element = root.find(".//time[@datetime]")
    return element.get("datetime") if element is not None else None


def _byline(root: Any) -> str | None:
    # The first element in document order whose class names a byline; a walk that stops there
    # (an XPath with [1] selects every such element first).
    for element in root.iterfind(".//*[@class]"):
        if "byline" in element.get("class"):
            return _BY.sub("", _text_of(element).split(",")[0])
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# --- the passes ---------------------------------------------------------------------------------


def _trafilatura(
    html: str,
    url: str | None,
    *,
    favor_precision: bool = False,
    favor_recall: bool = False,
    fast: bool = True,
) -> object | None:
    """trafilatura's text of `html`; `fast` leaves out its own fallback extractors (its copy of
    readability, and justext), which on a whole page the readability pass here stands in for."""
    try:
        return trafilatura.bare_extraction(
            html,
            url=url,
            fast=fast,
            include_comments=False,
            favor_precision=favor_precision,
            favor_recall=favor_recall,
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
    # Not fast: on a fragment that still holds a split story, trafilatura's own fallback is
    # what reads past the first part (and a fragment is small).
    return _text(_trafilatura(page, url, favor_recall=True, fast=False))


def _clean_field(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value[:FIELD_MAX_CHARS] or None


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
