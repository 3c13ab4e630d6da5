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

import ahocorasick_rs
import pycountry
import yaml

from shared.article import Article
from shared.pipeline.literals import fold_like_ignorecase, literal_starts

log = logging.getLogger(__name__)

MAX_EVIDENCE = 5
WEAK_WEIGHT = 0.5
REPEAT_WEIGHT = 0.25
COMPANY_WEIGHT = 0.25  # a second phrase of the tag in the same sentence
HEADLINE_WEIGHT = 1.5  # the headline and the lead say what the article is about
LEAD_WEIGHT = 1.25
LONG_ARTICLE = 12  # sentences: beyond this, a tag may ask for more than one plain sentence
PASSING_WEIGHT = 0.34  # a clause, a quotation, a name or a title: three make one sentence
# A sentence ends at . ! or ? before a space, but not after an initial or a title ("U.S.",
# "Gen.", "Mr.") and not before a lower-case word ("…the U.S. uranium trade").
_SENTENCE_BREAK = re.compile(
    # Led by the characters a break begins with, a class: the engine skips to them in C.
    r"[.!?\n](?:(?<=[.!?])"
    r"(?<!\b[A-Z]\.)(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)(?<!\bDr\.)(?<!\bSt\.)(?<!\bGen\.)(?<!\bSen\.)"
    r"(?<!\bRep\.)(?<!\bGov\.)(?<!\bCol\.)(?<!\bLt\.)(?<!\bSgt\.)(?<!\bAdm\.)(?<!\bNo\.)[\"'”’)]?\s+(?![a-z])|(?<=\n)\n*)"
)

# A phrase glued to a noun it only describes: a "nuclear-powered cruiser" is a ship, a
# "nuclear-capable bomber" an aircraft.
_MODIFIER_AFTER = re.compile(r"-(?:powered|capable|propelled|fuelled|fueled|armed|tipped|free|style|themed)\b", re.I)
# Words after a phrase that make it part of a job title or an institution's name ("nuclear
# power corporation", "military analyst", "diplomatic correspondent").
_TITLE_AFTER = re.compile(
    r"\s+(?:director|directors|adviser|advisers|advisor|advisors|expert|experts|analyst|analysts|correspondent|"
    r"veteran|veterans|gen|general|lieutenant|colonel|major|sergeant|captain|seal|seals|officer|officers|"
    r"commander|reservist|reservists|brass|hospital|police|chief|chiefs|attaché|attache|"
    r"editor|commentator|historian|scholar|researcher|policy|corporation|corp|company|companies|agency|unit|"
    r"industry|regulator|institute|think-tank|academy|school|college|university|museum|intelligence)\b",
    re.I,
)
# Words that open a clause about something else: what follows them, up to the next comma, is
# background to the sentence ("…sanctions imposed over Iran's nuclear programme"), an item of
# a list, a reason, a comparison, or something denied.
_CLAUSE_OPENER = re.compile(
    r"\b(?:which|who|whose|whom|after|following|amid|amidst|over|despite|because|since|including|"
    r"such as|especially|particularly|notably|how|whether|in defiance of|in response to|in retaliation for|"
    r"on the heels of|ahead of|due to|thanks to|in the wake of|faced with|undeterred by|emerging from|like|"
    r"about|if|unless|denied|denies|deny|without|instead of|rather than|in exchange for|in return for|"
    r"(?<=, )as|ranging from|not|never|in addition to|potential|possible|pointed to|referred to|citing|cited|"
    r"adding that|opposition to|every time|each time|whenever|culminating in|"
    r"mentioned|mention|recalled|recalling|compared|imagine|imagined|fear|fears|feared|worries|"
    r"concern|concerns|concerned)\b"
)
_COORDINATION = re.compile(r"\s(?:and|but|yet)\s")
_CLAUSE_GOES_ON = re.compile(r"\s*(?:and|or|nor)\s")
_FORMER = re.compile(r"\b(?:former|retired|ex|onetime|one-time)[\s-]+(?:[\w.]+\s+){0,2}$", re.I)
# "He was foreign secretary until…", "served as defence minister": a post, not what is done
_PERSON_NOUN = re.compile(
    r"(?:secretary|minister|ministers|ambassador|ambassadors|envoy|envoys|diplomat|diplomats|consul|negotiator|"
    r"negotiators|delegate|delegates|attaché|attache)$",
    re.I,
)
_POST_BEFORE = re.compile(
    r"\b(?:was|is|became|become|becomes|been|served as|serving as|appointed|named|made)\s+"
    r"(?:(?:the|a|an|then|then-|deputy|acting|first|\w+'s|[A-Z][\w.'’-]*)\s+){0,3}$"
)
_CLAUSE_END = re.compile(r"[,;:–—()]|\s-\s")
# A sentence opening with a participle or a preposition ("Undeterred by UN sanctions, the North
# conducted…"): up to its first comma it sets the scene.
_SCENE_SETTER = re.compile(
    r"^\W*(?:[A-Z][a-z]+(?:ed|ing)(?=\s+[a-z])|Despite|Amid|After|Following|Under|With|Since|As)\b"
)
# A phrase standing as a person's title: before the name ("Defense Minister Sergei Shoigu said")
# or beside it ("the defence minister, Siraj Fegessa, told MPs"). What the person does is the
# sentence's subject, not the title's topic.
_PERSON_AFTER = re.compile(
    r"\s+of\s+(?:the\s+)?[A-Z]|"  # "the defence ministers of Indonesia"
    r",?\s+(?!(?:The|A|An|On|In|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|January|February|March|"
    r"April|May|June|July|August|September|October|November|December)\b)[A-Z][a-z][\w'’-]*\s+[A-Z][a-z][\w'’-]*"
)
_QUOTE_MARKS = re.compile(r"[\"“”«»]")
_NAME_WORD = re.compile(r"[A-Z][\w'’.-]*")
# The last word of an institution's or a law's name: a phrase inside such a name is a name.
_INSTITUTION_WORD = re.compile(
    r"(?:Association|Associations|Corp|Corporation|Company|Co|Inc|Ltd|Agency|Commission|Institute|Council|"
    r"Committee|Organization|Organisation|Center|Centre|Party|University|College|Academy|School|Day|Act|Law|"
    r"Foundation|Fund|Group|Authority|Museum|Forum|Bank|Studies|Society|Project|Initiative|Network|Union|Alliance)\W*"
)


# The head of a name a phrase can stand inside: "Day of the Soviet Army", "Museum of the Navy".
_NAME_BEFORE = re.compile(
    r"\b(?:Day|Museum|Academy|Institute|University|College|School|Order|Hero|Festival|Society|Friends)"
    r" of (?:the )?(?:[A-Z][\w'’-]* |and )*$"
)


@dataclass(frozen=True)
class Hit:
    start: int
    end: int  # exclusive
    kind: str
    value: str


def _searcher(keys: list[str]) -> Any:
    """An Aho–Corasick automaton over `keys` reporting every match, overlapping ones too, as
    (key's number, start, end) in characters; compiled to a DFA, the quickest to search."""
    return ahocorasick_rs.AhoCorasick(
        keys, matchkind=ahocorasick_rs.MatchKind.Standard, implementation=ahocorasick_rs.Implementation.DFA
    )


@dataclass
class _Automaton:
    """Phrases → (kind, value), searched on word boundaries, longest match first."""

    fold_case: bool
    _phrases: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    _entries: list[list[tuple[str, str]]] = field(default_factory=list)
    _searcher: Any = None

    def add(self, phrase: str, kind: str, value: str) -> None:
        key = phrase.lower() if self.fold_case else phrase
        if key:
            self._phrases.setdefault(key, []).append((kind, value))

    def finish(self) -> None:
        if self._phrases:
            self._entries = list(self._phrases.values())
            self._searcher = _searcher(list(self._phrases))

    def find(self, text: str) -> list[Hit]:
        if self._searcher is None:
            return []
        haystack = _lower_keeping_offsets(text) if self.fold_case else text
        hits: list[Hit] = []
        end, entries = len(haystack), self._entries
        for number, start, stop in self._searcher.find_matches_as_indexes(haystack, overlapping=True):
            # on word boundaries only (inlined: this loop runs for every phrase found)
            if (start == 0 or not haystack[start - 1].isalnum()) and (stop == end or not haystack[stop].isalnum()):
                for kind, value in entries[number]:
                    hits.append(Hit(start, stop, kind, value))
        return hits


def _lower_keeping_offsets(text: str) -> str:
    """Lower case with every character staying one character ("İ".lower() is two), so that
    positions found in the result are positions in `text`."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(low if len(low := char.lower()) == 1 else char for char in text)


class TagPatterns:
    """The tags' regular expressions, each tried only where a text begins one of its matches.

    Every literal a pattern's matches must begin with ("fired", "launched", "to test") is read
    from the pattern itself and put into one Aho–Corasick automaton; a pattern is then tried
    (`match`) only at the places the automaton finds, instead of at every character. The hits
    are those `finditer` gives, in the same order. A pattern whose matches may begin anywhere
    (`\\w+ missile`) is searched over the whole text. A pattern that names `{state}` is
    searched over the text with each country it names masked (`STATE`), so that a state is
    what the entity lists call one, found in the same single pass.
    """

    def __init__(self, patterns: list[tuple[re.Pattern[str], str]]) -> None:
        self.patterns = patterns
        self.literal_starts = [literal_starts(pattern) for pattern, _ in patterns]
        self._on_states = {number for number, (pattern, _) in enumerate(patterns) if STATE in pattern.pattern}
        patterns_of: dict[str, list[int]] = {}  # a literal start -> the patterns it begins
        for number, starts in enumerate(self.literal_starts):
            if starts is None or number in self._on_states:
                continue
            for start in starts:
                patterns_of.setdefault(start, []).append(number)
        self._patterns_of = list(patterns_of.values())
        self._starts = _searcher(list(patterns_of)) if patterns_of else None

    def find(self, text: str, states: list[tuple[int, int]] | None = None) -> list[Hit]:
        """The patterns' hits in `text`, whose countries stand at `states` (start, end)."""
        candidates: dict[int, list[int]] = {number: [] for number in range(len(self.patterns))}
        if self._starts is not None:
            patterns_of = self._patterns_of
            for found, start, _ in self._starts.find_matches_as_indexes(fold_like_ignorecase(text), overlapping=True):
                for number in patterns_of[found]:
                    candidates[number].append(start)
        masked = _masked(text, states) if states and self._on_states else None
        hits: list[Hit] = []
        for number, (pattern, tag) in enumerate(self.patterns):
            if number in self._on_states:
                if masked and pattern.pattern.startswith(_STATE_PATTERN):
                    hits += _matches_from(pattern, masked, sorted(start for start, _ in states or []), tag)
                elif masked:
                    hits += [Hit(match.start(), match.end(), "strong", tag) for match in pattern.finditer(masked)]
                continue
            if self.literal_starts[number] is None:
                hits += [Hit(match.start(), match.end(), "strong", tag) for match in pattern.finditer(text)]
                continue
            hits += _matches_from(pattern, text, sorted(set(candidates[number])), tag)
        return hits


def _matches_from(pattern: re.Pattern[str], text: str, starts: list[int], tag: str) -> list[Hit]:
    """The matches `finditer` would give, when every one begins at one of `starts` (sorted)."""
    hits: list[Hit] = []
    reach = 0  # finditer goes on from the end of a match: no overlapping matches
    for start in starts:
        if start < reach:
            continue
        match = pattern.match(text, start)
        if match:
            hits.append(Hit(match.start(), match.end(), "strong", tag))
            reach = match.end()
    return hits


# A country in the masked text: a character no article uses, one for each of the name's.
STATE = "\ue000"
_STATE_PATTERN = f"(?<!{STATE}){STATE}+(?!{STATE})"


def _masked(text: str, states: list[tuple[int, int]]) -> str:
    parts, done = [], 0
    for start, end in sorted(states):
        if start >= done:
            parts += [text[done:start], STATE * (end - start)]
            done = end
    return "".join(parts) + text[done:]


@dataclass
class Taxonomy:
    """The tag and entity vocabularies, compiled. Load with `Taxonomy.load()`."""

    topics: _Automaton
    entities: _Automaton
    min_scores: dict[str, float] = field(default_factory=dict)
    titles_are_people: frozenset[str] = frozenset()
    long_min_scores: dict[str, float] = field(default_factory=dict)
    entity_min_score: float = 1.0
    patterns: TagPatterns = field(default_factory=lambda: TagPatterns([]))
    cities: frozenset[str] = frozenset()
    between_states: frozenset[str] = frozenset()

    def find_patterns(self, text: str, states: list[tuple[int, int]] | None = None) -> list[Hit]:
        """Hits of the tags' `patterns`: reports told in other words, with words between
        ("launched what appeared to be four ballistic missiles"); `states` are where the
        text names countries, for the patterns that ask for a `{state}`."""
        return self.patterns.find(text, states)

    @classmethod
    def load(cls, taxonomy: Path | None = None) -> Taxonomy:
        """The shipped vocabularies, with the topic taxonomy replaced by `taxonomy` if given."""
        data = resources.files(__package__).joinpath("data")
        raw = yaml.safe_load(
            taxonomy.read_text("utf-8") if taxonomy else data.joinpath("taxonomy.yml").read_text("utf-8")
        )
        tags = raw["tags"]
        topics = _Automaton(fold_case=True)  # with the `unless` phrases: one pass finds both
        min_scores, long_min_scores = {}, {}
        titles_are_people, between_states = set(), set()
        patterns = []
        entity_min_score = float(raw.get("entity_min_score", 1.0))
        for tag, spec in tags.items():
            for phrase in spec.get("phrases", []):
                topics.add(phrase, "strong", tag)
            for phrase in spec.get("weak", []):
                topics.add(phrase, "weak", tag)
            for phrase in spec.get("unless", []):
                topics.add(phrase, "unless", tag)
            min_scores[tag] = float(spec.get("min_score", 1.0))
            long_min_scores[tag] = float(spec.get("long_article_min_score", min_scores[tag]))
            if spec.get("titles_are_people"):
                titles_are_people.add(tag)
            if spec.get("between_states"):
                between_states.add(tag)
            patterns += [(pattern, tag) for pattern in spec.get("patterns", [])]
        entities = _Automaton(fold_case=False)
        countries = yaml.safe_load(data.joinpath("countries.yml").read_text("utf-8"))
        compiled = [
            (re.compile(pattern.replace("{state}", _STATE_PATTERN), re.IGNORECASE), tag) for pattern, tag in patterns
        ]
        for code, names in country_names(countries["countries"]).items():
            for name in names:
                entities.add(name, "countries", code)
        for name in countries.get("not_countries", []):
            entities.add(str(name), "not_countries", str(name))
        for kind, file_name in (("people", "people.yml"), ("organizations", "organizations.yml")):
            for value, names in yaml.safe_load(data.joinpath(file_name).read_text("utf-8"))[kind].items():
                for name in names:
                    entities.add(str(name), kind, str(value))
        for automaton in (topics, entities):
            automaton.finish()
        return cls(
            topics,
            entities,
            min_scores,
            frozenset(titles_are_people),
            long_min_scores,
            entity_min_score,
            TagPatterns(compiled),
            frozenset(map(str, countries.get("cities", []))),
            frozenset(between_states),
        )


COUNTRY_NAME_LANGUAGES = ("de", "fr", "es", "it", "pt", "nl")


def country_names(listed: dict[Any, list[Any]]) -> dict[str, list[str]]:
    """Every ISO 3166-1 country's names (pycountry's English names and their translations)
    joined with the editable list's names, demonyms, capitals and metonyms, by alpha-2 code.
    Names written "Korea, Republic of" are catalogue forms no article uses, and are left out."""
    names: dict[str, list[str]] = {}
    for key, aliases in listed.items():
        if not isinstance(key, str) or len(key) != 2:
            # YAML reads a bare NO as false: a key that is not a code is refused, not coded.
            raise TypeError(f"countries.yml: key {key!r} is not a quoted ISO alpha-2 code")
        names[key] = [str(alias) for alias in aliases]
    translations = [_translation(language) for language in COUNTRY_NAME_LANGUAGES]
    for country in pycountry.countries:
        found = names.setdefault(country.alpha_2, [])
        english = [getattr(country, field, None) for field in ("name", "common_name", "official_name")]
        candidates = [name for name in english if name]
        candidates += [translate(country.name) for translate in translations]
        for name in candidates:
            if "," not in name and len(name) >= 4 and name not in found:
                found.append(name)
    return names


def _translation(language: str) -> Any:
    import gettext

    try:
        return gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language]).gettext
    except OSError:
        return lambda name: name


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
    and the evidence for each: the phrase, the sentence it stands in, and how much it counted.

    A tag means the subject is a real part of the article, so each occurrence counts by where
    and how it stands (`Occurrence.weigh`): in the headline or lead more, in a sentence of its
    own fully, in a clause about something else, a quotation, a name or a title a little, as
    a modifier ("nuclear-powered") not at all. A phrase from a tag's `weak` list counts half, a
    repeat of a phrase a quarter. A sentence counts once per tag (its best occurrence, plus a
    little for a second phrase of the tag beside it, two weak phrases together as much as one
    phrase); a tag is kept when its score reaches its
    `min_score` (1 unless the taxonomy says otherwise). Tags that were found but not kept are
    explained in the notes.
    """
    text = f"{article.title}\n{article.text}"
    sentences = _sentence_starts(text)
    title_end = len(article.title)
    lead_end = _lead_end(text, sentences, title_end)
    topic_hits = taxonomy.topics.find(text)
    excluded = {(_sentence_of(sentences, hit.start), hit.value) for hit in topic_hits if hit.kind == "unless"}
    entity_hits = [hit for hit in _longest(taxonomy.entities.find(text)) if hit.kind != "not_countries"]
    not_the_country = {
        hit.start: skip
        for hit in entity_hits
        if hit.kind == "countries" and (skip := _not_the_country(text, hit, taxonomy.cities, title_end))
    }
    states = [
        (hit.start, hit.end) for hit in entity_hits if hit.kind == "countries" and hit.start not in not_the_country
    ]
    hits = _longest([hit for hit in topic_hits if hit.kind != "unless"] + taxonomy.find_patterns(text, states))
    background_before = _background_before(article, text)
    backgrounds: dict[int, str | None] = {}  # by sentence
    occurrences: list[tuple[Hit, int, str, float, str]] = []
    for hit in hits:
        index = _sentence_of(sentences, hit.start)
        if (index, hit.value) in excluded:
            continue
        weight, why = weigh(
            text,
            sentences[index],
            hit,
            title_end,
            lead_end,
            titles_are_people=hit.value in taxonomy.titles_are_people,
            between_states=hit.value in taxonomy.between_states,
            background=backgrounds[index]
            if index in backgrounds
            else backgrounds.setdefault(index, _background(_sentence(text, sentences, hit.start), background_before)),
        )
        if hit.kind == "weak":
            weight, why = weight * WEAK_WEIGHT, why + ", a weak phrase"
        occurrences.append((hit, index, text[hit.start : hit.end], weight, why))
    # A phrase counts fully where it stands best (its own sentence rather than an earlier
    # clause), and a quarter wherever it is repeated.
    best_of: dict[tuple[str, str], int] = {}
    for number, (hit, _, phrase, weight, _) in enumerate(occurrences):
        key = (hit.value, phrase.lower())
        if key not in best_of or weight > occurrences[best_of[key]][3]:
            best_of[key] = number
    per_sentence: dict[tuple[str, int], list[tuple[float, str, bool]]] = {}
    phrases: dict[str, list[str]] = {}
    evidence: list[dict[str, str]] = []
    for number, (hit, index, phrase, weight, why) in enumerate(occurrences):
        first = best_of[(hit.value, phrase.lower())] == number
        if not first:
            weight, why = weight * REPEAT_WEIGHT, why + ", repeated"
        per_sentence.setdefault((hit.value, index), []).append((weight, phrase.lower(), hit.kind == "weak"))
        found = phrases.setdefault(hit.value, [])
        if first and len(found) < MAX_EVIDENCE:
            found.append(phrase)
            evidence.append(
                {
                    "kind": "tag",
                    "value": hit.value,
                    "phrase": phrase,
                    "sentence": _sentence(text, sentences, hit.start),
                    "weight": f"{weight:.2f}",
                    "why": why,
                }
            )
    scores: dict[str, float] = {}
    for (name, _), weights in per_sentence.items():
        weights.sort(reverse=True)
        best, best_phrase, best_weak = weights[0]
        others = [weight for weight, phrase, _ in weights[1:] if phrase != best_phrase]
        score = best + (COMPANY_WEIGHT * best if others else 0.0)
        if best_weak and others:
            # two weak phrases side by side ("the foreign minister will raise it with the
            # secretary of state") make one full mention
            score = max(score, min(best + others[0], best / WEAK_WEIGHT))
        scores[name] = scores.get(name, 0.0) + score
    # In a long article one plain sentence may be a passing mention: a tag can ask for more
    # (`long_article_min_score`: a second sentence, the headline or the lead).
    long = len(sentences) > LONG_ARTICLE
    needed = {
        name: (taxonomy.long_min_scores if long else taxonomy.min_scores).get(name, taxonomy.min_scores.get(name, 1.0))
        for name in scores
    }
    kept = {name for name, score in scores.items() if score >= needed[name] - 1e-9}
    for name in sorted(set(scores) - kept):
        reasons = "; ".join(f"«{item['phrase']}» {item['why']}" for item in evidence if item["value"] == name)
        article.notes.append(f"tag: {name} not kept, score {scores[name]:.2f} below {needed[name]:g} ({reasons})")
    article.tags = sorted(kept | set(article.source_tags))
    article.tag_evidence = {name: found for name, found in phrases.items() if name in kept}
    article.tag_scores = {name: round(scores[name], 2) for name in sorted(kept)}
    evidence = [item for item in evidence if item["value"] in kept]
    entities: dict[str, dict[str, None]] = {"countries": {}, "people": {}, "organizations": {}}
    mentions: Counter[tuple[str, str]] = Counter()
    found_evidence: list[dict[str, str]] = []
    evidence_count: Counter[tuple[str, str]] = Counter()
    # "Sea of Japan" (not_countries) is left out above: its length shields the country inside it
    for hit in entity_hits:
        if hit.kind == "countries" and (skip := not_the_country.get(hit.start)):
            article.notes.append(f"tag: «{text[hit.start : hit.end]}» not coded {hit.value}: {skip}")
            continue
        entities[hit.kind][hit.value] = None
        # A mention scores 1, one in the headline 2: the headline says what the story is about.
        key = (hit.kind, hit.value)
        mentions[key] += 2 if hit.start < title_end else 1
        if evidence_count[key] < MAX_EVIDENCE:
            evidence_count[key] += 1
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


def weigh(
    text: str,
    sentence_start: int,
    hit: Hit,
    title_end: int,
    lead_end: int,
    titles_are_people: bool = False,
    between_states: bool = False,
    background: str | None = None,
) -> tuple[float, str]:
    """How much one occurrence of a tag's phrase says the article is about it, and why.

    Where: the headline counts 1.5, the lead 1.25, a sentence 1. How: a modifier glued to a
    noun ("nuclear-powered") and a sentence set decades back (`background`, the year that
    dates it) count nothing; a clause about something else, a quotation, a name or a job
    title a third (`PASSING_WEIGHT`). For a tag whose taxonomy sets `titles_are_people`, a
    phrase standing as a person's title ("Defense Minister Sergei Shoigu", "the defence
    minister, Siraj Fegessa,") counts a third too; for one that sets `between_states`, so do
    talks with an armed group ("peace talks with the rebels"), a building named as a place
    ("offices and foreign embassies"), the foreign service ("diplomatic sources"), a
    biography's job title, standing relations ("enjoys close ties with") and a budget line
    ("funding for diplomacy"). A post someone holds ("was foreign secretary") and the last
    item of a list after "include" count a third for every tag.
    """
    after = text[hit.end : hit.end + 40]
    glued = _MODIFIER_AFTER.match(after)
    if glued and hit.value != "missile-test":
        return 0.0, f"a modifier («{text[hit.start : hit.end]}{glued[0]}»)"
    if (
        hit.value == "missile-test"
        and text[hit.start - 1 : hit.start] == "-"
        and text[hit.start - 2 : hit.start - 1].isalpha()
    ):
        return 0.0, f"part of a compound («…-{text[hit.start : hit.end]}»)"
    if hit.start < title_end:
        weight, where = HEADLINE_WEIGHT, "in the headline"
    elif hit.start < lead_end:
        weight, where = LEAD_WEIGHT, "in the lead"
    else:
        weight, where = 1.0, "in a sentence"
    if background and hit.start >= title_end:
        return 0.0, f"{where}, decades-old background ({background})"
    prefix = text[sentence_start : hit.start]
    if _FORMER.search(prefix):
        return weight * PASSING_WEIGHT, f"{where}, a former post"
    if _PERSON_NOUN.search(text, hit.start, hit.end) and _POST_BEFORE.search(prefix[-60:]):
        return weight * PASSING_WEIGHT, f"{where}, a post someone holds"
    passing = (
        (hit.start >= title_end and _in_clause(prefix))  # a headline names its subject, clause or not
        or _in_quotation(prefix)
        or (_LIST_ITEM.search(prefix) and "an item of a list")
        or _in_name(text, sentence_start, hit, title_end)
        or (_TITLE_AFTER.match(after) and "a job title or an institution's name")
        or (titles_are_people and _PERSON_AFTER.match(after) and "a person's title")
        or (between_states and _ARMED_GROUP_AFTER.match(after) and "talks with an armed group, not a state")
        or (between_states and _PLACE_BEFORE_BUILDING.search(prefix[-60:]) and "a building named as a place")
        or (between_states and _SERVICE_AFTER.match(after) and "the foreign service, not dealings")
        or (between_states and _ADVISER_BEFORE.search(prefix[-60:]) and "a job title")
        or (between_states and _STANDING_BEFORE.search(prefix[-60:]) and "standing relations, not an event")
        or (between_states and _BUDGET_BEFORE.search(prefix[-40:]) and "a budget line, not dealings")
    )
    if passing:
        return weight * PASSING_WEIGHT, f"{where}, {passing}"
    return weight, where


# "peace negotiations with the Taliban": a government and an armed group, not two states
_ARMED_GROUP_AFTER = re.compile(
    r"\s+(?:[\w-]+\s+){0,2}?with\s+(?:the\s+)?(?:[\w-]+\s+)?(?:taliban|rebels?|insurgents?|militants?|militias?|"
    r"guerrillas?|separatists?|jihadists?|armed\s+groups?|armed\s+opposition)\b",
    re.I,
)
# "houses government offices and foreign embassies", "protesters outside the embassy"
_PLACE_BEFORE_BUILDING = re.compile(
    r"\b(?:houses|housing|home to|outside|near|opposite|next to|in front of|close to|nearby)\s+"
    r"(?:(?:the|a|an|several|many|some|foreign|[A-Z][\w.'’-]*|government|offices|and)\s+){0,5}$"
)
# "diplomatic sources said", "the diplomatic corps", "embassy staff": the service, not its dealings
_SERVICE_AFTER = re.compile(
    r"\s+(?:sources?|corps|staff|staffers|stations?|passports?|immunity|cables?|pouch|compound|premises|quarter|"
    r"community|circles|cars?|plates)\b",
    re.I,
)
# "chief policy adviser to Afghanistan's ministry of foreign affairs": a biography's job title
_ADVISER_BEFORE = re.compile(
    r"\b(?:adviser|advisers|advisor|advisors|consultant|director|director-general|head|chief)\s+(?:to|of|at)\s+"
    r"(?:the\s+)?(?:[\w'’.-]+'s\s+|[A-Z][\w'’.-]*\s+){0,2}$"
)
# "enjoys bilateral ties with", "has close relations with": how things stand, not a dealing
_STANDING_BEFORE = re.compile(
    r"\b(?:enjoys?|enjoyed|maintains?|maintained|has|have|had)\s+(?:(?:close|good|friendly|strong|warm|cordial|"
    r"long-standing|longstanding|historic|bilateral|diplomatic|economic|trade)\s+)*$",
    re.I,
)
# "slash funding for diplomacy": a line of a budget
_BUDGET_BEFORE = re.compile(
    r"\b(?:funding|funds|budget|budgets|spending|money|cuts?)\s+(?:for|on|to)\s+(?:the\s+)?$", re.I
)
# "…included curfews, media blocks, limits on parties and a ban on diplomats travelling": the
# last item of a list of three or more after "include" or "such as"
_LIST_ITEM = re.compile(
    r"\b(?:include|includes|included|including|such as)\s+[^.;:,]+,[^.;:,]+,[^.;:]*\b(?:and|or)\s+[^,.;:]*$"
)
# A sentence dated decades back: a year or "N years ago", and nothing recent beside it.
# A year, not a decade ("the 1970s") that names an era. The word boundary before it is checked
# behind the digits: a pattern that begins with its digits is searched for them alone.
_YEAR = re.compile(r"((?:1[89]|20)\d\d)(?<!\w\d\d\d\d)\b(?!s)")
_YEARS_AGO = re.compile(r"\b(\d{2,3}) years ago(?: this year)?\b")
_RECENT = re.compile(
    r"\b(?:today|tonight|yesterday|tomorrow|now|currently|still|continued|continuing|ongoing|recent|recently|"
    r"this (?:week|month|year)|last (?:week|month|year)|"
    r"(?:on )?(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday))\b"
)
BACKGROUND_YEARS = 15


def _background_before(article: Article, text: str) -> int | None:
    """The last year that is decades-old background: 15 years before the article's date, or
    before the latest year it names when it has no date."""
    years = [int(year) for year in _YEAR.findall(text)]
    now = article.published_at.year if article.published_at else max(years, default=None)
    return now - BACKGROUND_YEARS if now else None


def _background(sentence: str, before: int | None) -> str | None:
    """The year that dates a sentence decades back, if it is set there and nowhere recent."""
    if before is None or _RECENT.search(_YEARS_AGO.sub("", sentence)):
        return None  # "20 years ago this year" is not recent
    years = [int(year) for year in _YEAR.findall(sentence)]
    years += [before + BACKGROUND_YEARS - int(ago) for ago in _YEARS_AGO.findall(sentence)]
    if years and max(years) <= before:
        return str(max(years))
    return None


def _in_clause(prefix: str) -> str | None:
    """The clause opener the occurrence stands under, if its clause is still open."""
    if _SCENE_SETTER.match(prefix) and not _CLAUSE_END.search(prefix):
        return f"in an opening clause («{prefix.split()[0] if prefix.split() else ''}…»)"
    lowered = prefix.lower()
    for opener in reversed(list(_CLAUSE_OPENER.finditer(lowered))):
        if opener.start() < 2 and _CLAUSE_END.search(lowered, opener.end()):
            return None  # a scene-setting opener, closed by its comma: the main clause follows
        if _clause_closed(lowered, opener.end()):
            continue  # that clause ended before the occurrence
        if opener[0] in ("not", "never") and _COORDINATION.search(lowered, opener.end()):
            continue  # "…was not a test and showed the readiness of…": the denial ended
        return f"in a clause after «{opener[0]}»"
    return None


def _clause_closed(lowered: str, start: int) -> bool:
    """Whether a clause opened at `start` ends before the end of `lowered`: at a comma that
    does not go on with "and" or "or" ("every time the US vetoes one, or Russia vetoes
    another" is one clause; so is "including sanctions, embargoes, and troops")."""
    for end in _CLAUSE_END.finditer(lowered, start):
        if end[0] != "," or not _CLAUSE_GOES_ON.match(lowered, end.end()):
            return True
    return False


def _in_quotation(prefix: str) -> str | None:
    marks = _QUOTE_MARKS.findall(prefix)
    straight = sum(1 for mark in marks if mark == '"')
    curly_open = prefix.rfind("“") > prefix.rfind("”") or prefix.rfind("«") > prefix.rfind("»")
    return "inside a quotation" if straight % 2 or curly_open else None


def _in_name(text: str, sentence_start: int, hit: Hit, title_end: int) -> str | None:
    """A capitalised phrase inside a run of capitalised words that ends in an institution's
    word is part of its name ("the Arms Control Association", "China General Nuclear Power
    Corp"); a title before a person's name is not ("Foreign Minister Wang Yi met…")."""
    if hit.start < title_end or not text[hit.start].isupper():
        return None
    named = _NAME_BEFORE.search(text[max(sentence_start, hit.start - 80) : hit.start])
    if named:
        return f"inside a name («{named[0].strip()}…»)"
    after = text[hit.end : hit.end + 80].split()
    for word in after[:5]:
        if _INSTITUTION_WORD.fullmatch(word):
            return f"inside a name («…{word.rstrip(',.;:')}»)"
        if not _NAME_WORD.fullmatch(word.rstrip(",.;:")) and word.lower() not in ("of", "for", "and", "on"):
            break
    return None


def _lead_end(text: str, starts: list[int], title_end: int) -> int:
    """Where the lead ends: the first sentence after the headline."""
    following = [start for start in starts if start > title_end]
    return following[1] if len(following) > 1 else len(text)


_TREATY_AFTER = re.compile(
    r"\s+(?:[A-Za-z]+\s+)?(?:agreement|agreements|accord|accords|protocol|protocols|convention|conventions|"
    r"statute|treaty|declaration|process|format|principles)\b",
    re.IGNORECASE,
)
_PLACE_BEFORE = re.compile(
    r"\b(?:in|at|from|to|near|outside|into|via|across|around|through|toward|towards|visiting|visited|visit|"
    r"arrived|flew|flight|flights|based|born|headquartered|held|hosted)\s+(?:the\s+)?$",
    re.IGNORECASE,
)


# "officials in Seoul" are the government, not a place
_GOVERNMENT_IN = re.compile(
    r"\b(?:officials|authorities|government|leaders|leadership|diplomats|regime|ministers)\s+in\s+$", re.I
)


def _not_the_country(text: str, hit: Hit, cities: frozenset[str], title_end: int) -> str | None:
    """Why a country's name here does not refer to the country, if it does not: a treaty named
    after a city ("the Minsk accords"), a city named only as a place or a dateline, or a
    person's or paper's name that begins with a city ("Paris Hilton")."""
    name = text[hit.start : hit.end]
    after = text[hit.end : hit.end + 40]
    if _TREATY_AFTER.match(after):
        return "a treaty or accord's name"
    if name not in cities:
        return None
    if hit.start > title_end and text[title_end : hit.start].strip() == "" and after[:2] in (" (", ", ", "--"):
        return "a dateline"
    before = text[max(0, hit.start - 40) : hit.start]
    if _PLACE_BEFORE.search(before) and not _GOVERNMENT_IN.search(before):
        return "a city named as a place"
    following = after.split(maxsplit=1)
    if following and after[:1] == " " and _NAME_WORD.fullmatch(following[0].rstrip(",.;:")):
        return "part of a name"
    return None


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
    """Where each sentence starts: the text's start, and the end of every `_SENTENCE_BREAK`."""
    return [0, *(found.end() for found in _SENTENCE_BREAK.finditer(text))]


def _sentence_of(starts: list[int], position: int) -> int:
    return bisect.bisect_right(starts, position) - 1
