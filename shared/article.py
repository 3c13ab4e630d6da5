"""The article: what sources produce, what the chain enriches, and what the stores keep."""

from __future__ import annotations

import hashlib
import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr

from shared.analysis import analyze
from shared.urls import canonical_url


def normalized_content(text: str) -> str:
    """Text folded for comparison: NFKC, lower case, one space between words."""
    # str.split() breaks at exactly the characters a regex \s matches, and faster
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


def digest(value: str) -> str:
    """A short, stable hex digest used for ids and Redis keys."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


def valid_text(text: str) -> str:
    """Text that can be written as UTF-8: lone surrogates (a file name's undecodable bytes, or
    an escaped `\\udcff` in JSON) become visible `\\xNN` / `\\udNNN` escapes instead of failing
    every later write."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:  # bytes a file name could not decode come back as the bytes they were
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


ANALYSIS = "analysis"
"""The message field that carries `Article.analysis()` once it was made (after indexing), each
field's terms joined by spaces (no term holds one), a stop word's place an empty term:
`Article.packed_analysis()`. Strings cost far less to carry and read than lists of terms."""

Analysis = dict[str, list[str | None]]

AFTER_INDEX_UNUSED = frozenset({"evidence", "tag_evidence", "entity_scores", "notes", "extraction"})
"""Fields that nothing after indexing reads: left out of the messages that follow it."""


class Article(BaseModel):
    """One news article on its way through wirewatch.

    `id` is derived from the article itself (canonical URL, else feed GUID, else content),
    so re-delivering the same article always addresses the same stored document.
    """

    id: str
    url: str | None = None
    canonical_url: str | None = None
    guid: str | None = None
    source: str = ""
    origin: str = Field(default="", description="Where it came from: a file path or a feed URL.")
    title: str = ""
    author: str | None = None
    text: str = ""
    html: str | None = Field(default=None, description="Raw HTML, until clean extracts the text.")
    extraction: str | None = Field(default=None, description="How the text was taken from HTML, if it was.")
    published_at: datetime | None = None
    ingested_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    lang: str | None = None
    tags: list[str] = Field(default_factory=list)
    source_tags: list[str] = Field(
        default_factory=list, description="Tags the feed list gives every article of a feed."
    )
    tag_evidence: dict[str, list[str]] = Field(default_factory=dict)
    tag_scores: dict[str, float] = Field(default_factory=dict)
    entity_scores: dict[str, float] = Field(
        default_factory=dict, description="`countries:KP` -> mentions (headline counts twice)."
    )
    evidence: list[dict[str, str]] = Field(
        default_factory=list, description="Why each tag and entity is there: kind, value, phrase, sentence."
    )
    countries: list[str] = Field(default_factory=list)
    people: list[str] = Field(default_factory=list)
    organizations: list[str] = Field(default_factory=list)
    version: int = Field(default=1, description="Raised each time the same URL or GUID arrives with changed text.")
    updated_at: datetime | None = None
    duplicate_of: str | None = None
    cluster_id: str | None = None
    notes: list[str] = Field(default_factory=list)
    delivery: str = Field(
        default_factory=lambda: uuid.uuid4().hex,
        description="One reading of a source; a redelivered message keeps it, a new reading does not.",
    )
    _analysis: tuple[str, str, Analysis] | None = PrivateAttr(default=None)

    def analysis(self) -> Analysis:
        """The analyzer's terms of the title and of the text (`shared.analysis.analyze`: None
        where a stop word stands), made once for every reader (the store's row, alert
        matching), and again only if the title or text has changed since."""
        made = self._analysis
        if made is None or made[0] is not self.title or made[1] is not self.text:
            made = self._analysis = (self.title, self.text, {"title": analyze(self.title), "text": analyze(self.text)})
        return made[2]

    def packed_analysis(self) -> dict[str, str]:
        """`analysis()` in the form a message carries it (`ANALYSIS`)."""
        return {name: " ".join([term or "" for term in terms]) for name, terms in self.analysis().items()}

    @classmethod
    def create(
        cls,
        *,
        title: str = "",
        text: str = "",
        html: str | None = None,
        url: str | None = None,
        guid: str | None = None,
        source: str = "",
        origin: str = "",
        published_at: datetime | None = None,
        notes: list[str] | None = None,
    ) -> Article:
        """Build an article from what a source read, deriving its canonical URL and id."""
        title, text, source, origin = valid_text(title), valid_text(text), valid_text(source), valid_text(origin)
        html, url, guid = (valid_text(value) if value is not None else None for value in (html, url, guid))
        canonical = canonical_url(url) if url else None
        if canonical:
            article_id = digest("url:" + canonical)
        elif guid:
            article_id = digest(f"guid:{source}:{guid}")
        else:
            article_id = digest("content:" + normalized_content(f"{title}\n{text or html or ''}"))
        return cls(
            id=article_id,
            url=url,
            canonical_url=canonical,
            guid=guid,
            source=source,
            origin=origin,
            title=title,
            text=text,
            html=html,
            published_at=published_at,
            notes=list(notes or []),
        )

    def to_message(self, *, leave_out: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The compact JSON form that travels through the queue: unset and empty fields are
        left out (with any named in `leave_out`), and each evidence sentence is written once,
        as its place in the text where it stands there, evidence items pointing at it by
        number, as [kind, value, phrase, sentence number] (`from_message` reads it back)."""
        data = {
            name: value
            for name, value in self.model_dump(mode="json", exclude_none=True, exclude=set(leave_out)).items()
            if value not in ("", [], {})
        }
        if "evidence" in data:
            sentences = list(dict.fromkeys(item["sentence"] for item in self.evidence))
            number = {sentence: n for n, sentence in enumerate(sentences)}
            data["evidence"] = [
                [item["kind"], item["value"], item["phrase"], number[item["sentence"]]] for item in self.evidence
            ]
            data["sentences"] = [_place(sentence, self.text) for sentence in sentences]
        return data

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> Article:
        """An article from its queue form (raises ValueError when it is not one), with the
        analysis it carries, if any (one that is not well formed is made again when wanted)."""
        analysis = data.get(ANALYSIS)  # not a field: validation passes over it
        if "sentences" in data:
            text = data.get("text", "")
            sentences = [text[at[0] : at[0] + at[1]] if isinstance(at, list) else at for at in data["sentences"]]
            evidence = [
                {"kind": kind, "value": value, "phrase": phrase, "sentence": sentences[number]}
                for kind, value, phrase, number in data.get("evidence", [])
            ]
            data = {**{k: v for k, v in data.items() if k != "sentences"}, "evidence": evidence}
        article = cls.model_validate(data)
        unpacked = _unpacked(analysis) if analysis is not None else None
        if unpacked is not None:
            article._analysis = (article.title, article.text, unpacked)
        return article

    def to_document(self) -> dict[str, Any]:
        """The JSON form a store keeps: everything but the transient delivery fields."""
        return self.model_dump(mode="json", exclude={"html", "delivery"})


def _unpacked(packed: Any) -> Analysis | None:
    # An empty term is a stop word's place: the analyzer makes no empty term a query could
    # ask for. A field of one stop word alone comes back as no terms, which matches the same.
    if not isinstance(packed, dict) or packed.keys() != {"title", "text"}:
        return None
    if not all(isinstance(terms, str) for terms in packed.values()):
        return None
    return {name: [term or None for term in terms.split(" ")] if terms else [] for name, terms in packed.items()}


def _place(sentence: str, text: str) -> str | list[int]:
    # [start, length] of the sentence in the text, or the sentence itself (a headline's).
    start = text.find(sentence)
    return [start, len(sentence)] if start >= 0 and sentence else sentence
