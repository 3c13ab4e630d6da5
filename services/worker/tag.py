"""Tag: topics from the taxonomy and entities (countries, people, organizations), with evidence.

All phrases are compiled into Aho–Corasick automata, so tagging costs one pass over the text
whatever the size of the taxonomy. Topic phrases match case-insensitively; entity names are
proper nouns and match case-sensitively ("Turkey", not "turkey"). Matches count only on word
boundaries, and where matches overlap the longest wins ("South Korean" is KR, not "Korean").
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import ahocorasick
import yaml

from shared.article import Article

MAX_EVIDENCE = 5
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class Hit:
    start: int
    end: int  # exclusive
    kind: str
    value: str


@dataclass
class _Automaton:
    """Phrases → (kind, value), searched on word boundaries, longest match first."""

    fold_case: bool
    _automaton: Any = field(default_factory=ahocorasick.Automaton)

    def add(self, phrase: str, kind: str, value: str) -> None:
        key = phrase.lower() if self.fold_case else phrase
        entries = self._automaton.get(key)[1] if key in self._automaton else []
        entries.append((kind, value))
        self._automaton.add_word(key, (len(key), entries))

    def finish(self) -> None:
        if len(self._automaton):
            self._automaton.make_automaton()

    def find(self, text: str) -> list[Hit]:
        if not len(self._automaton):
            return []
        haystack = _lower_keeping_offsets(text) if self.fold_case else text
        hits: list[Hit] = []
        for last, (length, entries) in self._automaton.iter(haystack):
            start = last - length + 1
            if _is_boundary(haystack, start - 1) and _is_boundary(haystack, last + 1):
                hits.extend(Hit(start, last + 1, kind, value) for kind, value in entries)
        return hits


def _lower_keeping_offsets(text: str) -> str:
    """Lower case with every character staying one character ("İ".lower() is two), so that
    positions found in the result are positions in `text`."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(low if len(low := char.lower()) == 1 else char for char in text)


def _is_boundary(text: str, index: int) -> bool:
    return index < 0 or index >= len(text) or not text[index].isalnum()


@dataclass
class Taxonomy:
    """The tag and entity vocabularies, compiled. Load with `Taxonomy.load()`."""

    topics: _Automaton
    entities: _Automaton
    exclusions: _Automaton

    @classmethod
    def load(cls, taxonomy: Path | None = None) -> Taxonomy:
        """The shipped vocabularies, with the topic taxonomy replaced by `taxonomy` if given."""
        data = resources.files(__package__).joinpath("data")
        tags = yaml.safe_load(
            taxonomy.read_text("utf-8") if taxonomy else data.joinpath("taxonomy.yml").read_text("utf-8")
        )["tags"]
        topics, exclusions = _Automaton(fold_case=True), _Automaton(fold_case=True)
        for tag, spec in tags.items():
            for phrase in spec.get("phrases", []):
                topics.add(phrase, "tag", tag)
            for phrase in spec.get("unless", []):
                exclusions.add(phrase, "unless", tag)
        entities = _Automaton(fold_case=False)
        for kind, file_name in (
            ("countries", "countries.yml"),
            ("people", "people.yml"),
            ("organizations", "organizations.yml"),
        ):
            for value, names in yaml.safe_load(data.joinpath(file_name).read_text("utf-8"))[kind].items():
                for name in names:
                    entities.add(str(name), kind, str(value))
        for automaton in (topics, entities, exclusions):
            automaton.finish()
        return cls(topics, entities, exclusions)


def tag(article: Article, taxonomy: Taxonomy) -> Article:
    """Set the article's tags (with the phrases that triggered them) and its entities."""
    text = f"{article.title}\n{article.text}"
    sentences = _sentence_starts(text)
    excluded = {(_sentence_of(sentences, hit.start), hit.value) for hit in taxonomy.exclusions.find(text)}
    evidence: dict[str, list[str]] = {}
    for hit in _longest(taxonomy.topics.find(text)):
        if (_sentence_of(sentences, hit.start), hit.value) in excluded:
            continue
        phrase = text[hit.start : hit.end]
        found = evidence.setdefault(hit.value, [])
        if phrase.lower() not in (p.lower() for p in found) and len(found) < MAX_EVIDENCE:
            found.append(phrase)
    article.tags = sorted(set(evidence) | set(article.source_tags))
    article.tag_evidence = evidence
    entities: dict[str, dict[str, None]] = {"countries": {}, "people": {}, "organizations": {}}
    for hit in _longest(taxonomy.entities.find(text)):
        entities[hit.kind][hit.value] = None
    article.countries = list(entities["countries"])
    article.people = list(entities["people"])
    article.organizations = list(entities["organizations"])
    return article


def _longest(hits: list[Hit]) -> list[Hit]:
    """Drop hits inside a longer overlapping hit of the same automaton."""
    hits.sort(key=lambda hit: (hit.start, -(hit.end - hit.start)))
    kept: list[Hit] = []
    reach = -1
    for hit in hits:
        if hit.start >= reach or (kept and hit.start == kept[-1].start and hit.end == kept[-1].end):
            kept.append(hit)
            reach = max(reach, hit.end)
    return kept


def _sentence_starts(text: str) -> list[int]:
    return [0] + [match.end() for match in _SENTENCE_BREAK.finditer(text)]


def _sentence_of(starts: list[int], position: int) -> int:
    return bisect.bisect_right(starts, position) - 1
