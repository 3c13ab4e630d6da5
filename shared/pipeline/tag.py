"""Tag: topics from the taxonomy and entities (countries, people, organizations), with evidence.

All phrases are compiled into Aho–Corasick automata, so tagging costs one pass over the text
whatever the size of the taxonomy. Topic phrases match case-insensitively; entity names are
proper nouns and match case-sensitively ("Turkey", not "turkey"). Matches count only on word
boundaries, and where matches overlap the longest wins ("South Korean" is KR, not "Korean").
"""

from __future__ import annotations

import bisect
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import ahocorasick
import yaml

from shared.article import Article

log = logging.getLogger(__name__)

MAX_EVIDENCE = 5
WEAK_WEIGHT = 0.5
REPEAT_WEIGHT = 0.25
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
    min_scores: dict[str, float] = field(default_factory=dict)
    entity_min_score: float = 1.0

    @classmethod
    def load(cls, taxonomy: Path | None = None) -> Taxonomy:
        """The shipped vocabularies, with the topic taxonomy replaced by `taxonomy` if given."""
        data = resources.files(__package__).joinpath("data")
        raw = yaml.safe_load(
            taxonomy.read_text("utf-8") if taxonomy else data.joinpath("taxonomy.yml").read_text("utf-8")
        )
        tags = raw["tags"]
        topics, exclusions = _Automaton(fold_case=True), _Automaton(fold_case=True)
        min_scores = {}
        entity_min_score = float(raw.get("entity_min_score", 1.0))
        for tag, spec in tags.items():
            for phrase in spec.get("phrases", []):
                topics.add(phrase, "strong", tag)
            for phrase in spec.get("weak", []):
                topics.add(phrase, "weak", tag)
            for phrase in spec.get("unless", []):
                exclusions.add(phrase, "unless", tag)
            min_scores[tag] = float(spec.get("min_score", 1.0))
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
        return cls(topics, entities, exclusions, min_scores, entity_min_score)


class TaxonomyFiles:
    """The taxonomy as its files say now: reloaded when one of them changes, so a taxonomy
    edit reaches running workers within seconds, without a restart."""

    def __init__(self, taxonomy: Path | None = None, check_seconds: float = 2.0) -> None:
        self.path, self.check_seconds = taxonomy, check_seconds
        data = resources.files(__package__).joinpath("data")
        self._files = [Path(str(taxonomy or data.joinpath("taxonomy.yml")))] + [
            Path(str(data.joinpath(name))) for name in ("countries.yml", "people.yml", "organizations.yml")
        ]
        self._stamp = self._stamps()
        self._taxonomy = Taxonomy.load(taxonomy)
        self._checked = time.monotonic()

    def current(self) -> Taxonomy:
        now = time.monotonic()
        if now - self._checked >= self.check_seconds:
            self._checked = now
            stamp = self._stamps()
            if stamp != self._stamp:
                try:
                    self._taxonomy = Taxonomy.load(self.path)
                    self._stamp = stamp
                except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as error:
                    # A half-saved or broken file: keep tagging with the last good taxonomy.
                    log.warning("taxonomy not reloaded: %s", error)
        return self._taxonomy

    def _stamps(self) -> tuple[tuple[int, int], ...]:
        stamps = []
        for path in self._files:
            try:
                stat = path.stat()
                stamps.append((stat.st_mtime_ns, stat.st_size))
            except OSError:
                stamps.append((0, 0))
        return tuple(stamps)


def tag(article: Article, taxonomy: Taxonomy) -> Article:
    """Set the article's tags, with the phrases that triggered them and a score, its entities,
    and the evidence for each: the phrase and the sentence it stands in.

    A phrase from a tag's `phrases` scores 1, one from its `weak` list 0.5, and each further
    occurrence a quarter of that; a tag is kept when its score reaches its `min_score`
    (1 unless the taxonomy says otherwise), so weak words alone need company.
    """
    text = f"{article.title}\n{article.text}"
    sentences = _sentence_starts(text)
    excluded = {(_sentence_of(sentences, hit.start), hit.value) for hit in taxonomy.exclusions.find(text)}
    phrases: dict[str, list[str]] = {}
    scores: dict[str, float] = {}
    evidence: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for hit in _longest(taxonomy.topics.find(text)):
        if (_sentence_of(sentences, hit.start), hit.value) in excluded:
            continue
        phrase = text[hit.start : hit.end]
        weight = WEAK_WEIGHT if hit.kind == "weak" else 1.0
        first = (hit.value, phrase.lower()) not in seen
        seen.add((hit.value, phrase.lower()))
        scores[hit.value] = scores.get(hit.value, 0.0) + (weight if first else weight * REPEAT_WEIGHT)
        found = phrases.setdefault(hit.value, [])
        if first and len(found) < MAX_EVIDENCE:
            found.append(phrase)
            evidence.append(
                {"kind": "tag", "value": hit.value, "phrase": phrase, "sentence": _sentence(text, sentences, hit.start)}
            )
    kept = {name for name, score in scores.items() if score >= taxonomy.min_scores.get(name, 1.0)}
    article.tags = sorted(kept | set(article.source_tags))
    article.tag_evidence = {name: found for name, found in phrases.items() if name in kept}
    article.tag_scores = {name: round(scores[name], 2) for name in sorted(kept)}
    evidence = [item for item in evidence if item["value"] in kept]
    entities: dict[str, dict[str, None]] = {"countries": {}, "people": {}, "organizations": {}}
    mentions: Counter[tuple[str, str]] = Counter()
    title_end = len(article.title)
    found_evidence: list[dict[str, str]] = []
    for hit in _longest(taxonomy.entities.find(text)):
        entities[hit.kind][hit.value] = None
        # A mention scores 1, one in the headline 2: the headline says what the story is about.
        mentions[(hit.kind, hit.value)] += 2 if hit.start < title_end else 1
        if sum(1 for e in found_evidence if e["kind"] == hit.kind and e["value"] == hit.value) < MAX_EVIDENCE:
            found_evidence.append(
                {
                    "kind": hit.kind,
                    "value": hit.value,
                    "phrase": text[hit.start : hit.end],
                    "sentence": _sentence(text, sentences, hit.start),
                }
            )
    keep = {key for key, score in mentions.items() if score >= taxonomy.entity_min_score}
    article.countries = [value for value in entities["countries"] if ("countries", value) in keep]
    article.people = [value for value in entities["people"] if ("people", value) in keep]
    article.organizations = [value for value in entities["organizations"] if ("organizations", value) in keep]
    article.entity_scores = {f"{kind}:{value}": float(mentions[(kind, value)]) for kind, value in sorted(keep)}
    evidence += [item for item in found_evidence if (item["kind"], item["value"]) in keep]
    article.evidence = evidence
    return article


def _sentence(text: str, starts: list[int], position: int) -> str:
    index = _sentence_of(starts, position)
    end = starts[index + 1] if index + 1 < len(starts) else len(text)
    return text[starts[index] : end].strip()[:400]


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
