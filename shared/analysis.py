"""The text analyzer shared by the SQLite store and the alert matcher.

It reproduces Elasticsearch's `english` analyzer token for token, so that a query means the
same thing in Kibana, in `wirewatch search` on the embedded store, and in an alert
subscription: Unicode word segmentation as Lucene's standard tokenizer does it (UAX #29:
`O'Brien`, `U.S`, `2,000` and `3.5bn` stay whole, every CJK ideograph is a token of its own),
the English possessive filter, lower case, the English stop words (leaving a position gap) and
Lucene's Porter stemmer. `tests/benchmarks/bench_analysis.py` measures the agreement with a
real engine's `_analyze`.
"""

from __future__ import annotations

import re

import regex

# Lucene's English stop set, which the Elasticsearch `english` analyzer uses.
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)

MAX_TOKEN_CHARS = 255
"""Lucene's standard tokenizer cuts longer tokens into pieces of this length."""

# Segments between Unicode word boundaries that become tokens: those holding a letter, a digit
# or an emoji (Lucene emits emoji as tokens too); spaces and punctuation do not.
_BOUNDARY = regex.compile(r"\b", flags=regex.WORD | regex.V1)
_TOKEN_CHAR = regex.compile(r"[\p{L}\p{Nd}\p{Extended_Pictographic}\p{Regional_Indicator}]")
# Scripts written without spaces between words (Thai, Lao, Khmer, Myanmar): Lucene keeps a
# whole run as one token where the Unicode rules would cut every character.
_SOUTH_EAST_ASIAN = regex.compile(r"[\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}]+")
_POSSESSIVE_APOSTROPHES = ("'", "\u2019", "\uff07")
# Java lower-cases code point by code point (no final sigma, İ becomes i); Python's
# str.lower() does not, for these.
_JAVA_LOWER = {"\u0130": "i"}


def lower(text: str) -> str:
    """Lower case as Lucene's LowerCaseFilter does it, code point by code point."""
    if text.isascii():
        return text.lower()
    return "".join(_JAVA_LOWER.get(char) or (char.lower() if len(char.lower()) == 1 else char) for char in text)


# On text in the Latin script the Unicode word rules come down to this: runs of letters,
# digits and `_`, joined across one `.`, `'`, `’`, `‘` or `:` between two letters, or one `.`,
# `'`, `’`, `‘`, `,` or `;` between two digits. `tests/test_analysis.py` checks it against the
# general rules on generated text.
_LATIN_TOKEN = r"\w+(?:(?:(?<=[^\W\d_])[.'’‘:](?=[^\W\d_])|(?<=\d)[.'’‘,;](?=\d))\w+)*"
_ASCII_TOKENS = re.compile(_LATIN_TOKEN, re.ASCII)
_LATIN_TOKENS = re.compile(_LATIN_TOKEN)
# Characters beyond ASCII that the pattern above handles: Latin letters and the punctuation and
# spaces of ordinary news copy. Any other character sends the text down the general rules.
_BEYOND_LATIN = re.compile(
    "[^\x00-\x7f\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00a0\ufffd]"
)


# ASCII text cut where no token can go on: at every character that is neither a word
# character nor one that may join two (`_ASCII_CUT`), and after a joining character followed
# by a space (it joins nothing). Most pieces are then whole words; only the others need the
# pattern, which costs far more per character than cutting and splitting.
_ASCII_CUT = {point: chr(point) if chr(point).isalnum() or chr(point) in "_.':,;" else " " for point in range(128)}
_JOINED_TO_NOTHING = (". ", ", ", ": ", "; ", "' ")


def _ascii_tokens(text: str) -> list[str]:
    text = text.translate(_ASCII_CUT)
    for joiner in _JOINED_TO_NOTHING:
        if joiner in text:
            text = text.replace(joiner, "  ")
    tokens: list[str] = []
    for piece in text.split():
        if piece.isalnum():
            tokens.append(piece)
        else:
            tokens += _ASCII_TOKENS.findall(piece)
    return tokens


def tokenize(text: str) -> list[str]:
    """The tokens of Lucene's standard tokenizer, as written (no case change)."""
    if text.isascii():  # most text
        tokens = _ascii_tokens(text)
    elif _BEYOND_LATIN.search(text) is None:
        tokens = _LATIN_TOKENS.findall(text)
    else:
        return tokenize_unicode(text)
    if "_" in text:  # a run of underscores alone is no token
        tokens = [token for token in tokens if token.strip("_")]
    if len(text) > MAX_TOKEN_CHARS and max(map(len, tokens), default=0) > MAX_TOKEN_CHARS:
        tokens = [piece for token in tokens for piece in _pieces(token)]
    return tokens


def tokenize_unicode(text: str) -> list[str]:
    """`tokenize` by the general Unicode word rules, for any text."""
    tokens: list[str] = []
    joinable = False  # the previous segment was South-East Asian text, directly before this one
    for segment in _BOUNDARY.split(text):
        if not segment:
            continue
        if _SOUTH_EAST_ASIAN.fullmatch(segment):
            if joinable:
                tokens[-1] += segment
            else:
                tokens.append(segment)
            joinable = True
            continue
        joinable = False
        if _TOKEN_CHAR.search(segment):
            tokens.extend(_pieces(segment))
    return tokens


def _pieces(segment: str) -> list[str] | tuple[str]:
    """A token as the engine keeps it: one piece, or pieces of its longest token length."""
    if len(segment) <= MAX_TOKEN_CHARS:
        return (segment,)
    return [segment[start : start + MAX_TOKEN_CHARS] for start in range(0, len(segment), MAX_TOKEN_CHARS)]


_stems: dict[str, str] = {}


def stem(word: str) -> str:
    """Lucene's Porter stem of a lower-case word, memoised: news vocabulary repeats a lot."""
    cached = _stems.get(word)
    if cached is None:
        cached = PorterStemmer(word).stem()
        if len(_stems) < 500_000:
            _stems[word] = cached
    return cached


class _Terms(dict[str, str | None]):
    """Token as written -> its term (None for a stop word), filled as tokens are met: news
    vocabulary repeats, so nearly every token costs one dictionary lookup."""

    LIMIT = 500_000

    def __missing__(self, token: str) -> str | None:
        term = _term(token)
        if len(self) < self.LIMIT:
            self[token] = term
        return term


def _term(token: str) -> str | None:
    if len(token) >= 2 and token[-2] in _POSSESSIVE_APOSTROPHES and token[-1] in "sS":
        token = token[:-2]
    token = lower(token)
    return None if token in STOP_WORDS else stem(token)


_terms = _Terms()


def term(token: str) -> str | None:
    """The term the analyzer makes of one token as written (None for a stop word)."""
    return _terms[token]


def analyze(text: str) -> list[str | None]:
    """Stemmed, lower-case tokens of `text` in order; a stop word leaves None in its place.

    The gap keeps positions as Elasticsearch keeps them, so "launched an ICBM" is two
    positions apart for phrase and proximity queries here as there.
    """
    return list(map(_terms.__getitem__, tokenize(text)))


def terms(text: str) -> list[str]:
    """The searchable tokens of `text`, stop words dropped."""
    return [token for token in analyze(text) if token is not None]


class PorterStemmer:
    """Martin Porter's stemmer as Lucene implements it (`PorterStemmer.java`, from Porter's
    own C version): it differs from the published algorithm (and from Snowball's `porter`) in
    a few rules that news text meets often (`-logi` → `-log`: technology and technological
    agree; `-bli` → `-ble`: assembly and assembled agree) and never stems words of two letters
    (`us`). Steps are numbered as in Lucene."""

    def __init__(self, word: str) -> None:
        self.b = list(word)
        self.k = len(word) - 1
        self.j = 0

    def stem(self) -> str:
        if self.k > 1:
            self.step1()
            self.step2()
            self.step3()
            self.step4()
            self.step5()
            self.step6()
        return "".join(self.b[: self.k + 1])

    def cons(self, i: int) -> bool:
        char = self.b[i]
        if char in "aeiou":
            return False
        if char == "y":
            return True if i == 0 else not self.cons(i - 1)
        return True

    def m(self) -> int:
        """The number of vowel-consonant sequences in b[0..j]."""
        n, i, j = 0, 0, self.j
        while True:
            if i > j:
                return n
            if not self.cons(i):
                break
            i += 1
        i += 1
        while True:
            while True:
                if i > j:
                    return n
                if self.cons(i):
                    break
                i += 1
            i += 1
            n += 1
            while True:
                if i > j:
                    return n
                if not self.cons(i):
                    break
                i += 1
            i += 1

    def vowel_in_stem(self) -> bool:
        return any(not self.cons(i) for i in range(self.j + 1))

    def double_consonant(self, j: int) -> bool:
        return j >= 1 and self.b[j] == self.b[j - 1] and self.cons(j)

    def cvc(self, i: int) -> bool:
        if i < 2 or not self.cons(i) or self.cons(i - 1) or not self.cons(i - 2):
            return False
        return self.b[i] not in "wxy"

    def ends(self, suffix: str) -> bool:
        length = len(suffix)
        start = self.k - length + 1
        if start < 0 or "".join(self.b[start : self.k + 1]) != suffix:
            return False
        self.j = self.k - length
        return True

    def setto(self, replacement: str) -> None:
        self.b[self.j + 1 :] = list(replacement)
        self.k = self.j + len(replacement)

    def r(self, replacement: str) -> None:
        if self.m() > 0:
            self.setto(replacement)

    def step1(self) -> None:
        """Plurals and -ed or -ing."""
        b = self.b
        if b[self.k] == "s":
            if self.ends("sses"):
                self.k -= 2
            elif self.ends("ies"):
                self.setto("i")
            elif b[self.k - 1] != "s":
                self.k -= 1
        if self.ends("eed"):
            if self.m() > 0:
                self.k -= 1
        elif (self.ends("ed") or self.ends("ing")) and self.vowel_in_stem():
            self.k = self.j
            if self.ends("at"):
                self.setto("ate")
            elif self.ends("bl"):
                self.setto("ble")
            elif self.ends("iz"):
                self.setto("ize")
            elif self.double_consonant(self.k):
                char = b[self.k]
                self.k -= 1
                if char in "lsz":
                    self.k += 1
            elif self.m() == 1 and self.cvc(self.k):
                self.setto("e")
        del b[self.k + 1 :]

    def step2(self) -> None:
        """Terminal y to i when there is another vowel in the stem."""
        if self.ends("y") and self.vowel_in_stem():
            self.b[self.k] = "i"

    _STEP3 = {
        "a": (("ational", "ate"), ("tional", "tion")),
        "c": (("enci", "ence"), ("anci", "ance")),
        "e": (("izer", "ize"),),
        "l": (("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous")),
        "o": (("ization", "ize"), ("ation", "ate"), ("ator", "ate")),
        "s": (("alism", "al"), ("iveness", "ive"), ("fulness", "ful"), ("ousness", "ous")),
        "t": (("aliti", "al"), ("iviti", "ive"), ("biliti", "ble")),
        "g": (("logi", "log"),),
    }
    _STEP4 = {
        "e": (("icate", "ic"), ("ative", ""), ("alize", "al")),
        "i": (("iciti", "ic"),),
        "l": (("ical", "ic"), ("ful", "")),
        "s": (("ness", ""),),
    }
    _STEP5 = {
        "a": ("al",),
        "c": ("ance", "ence"),
        "e": ("er",),
        "i": ("ic",),
        "l": ("able", "ible"),
        "n": ("ant", "ement", "ment", "ent"),
        "o": ("ion", "ou"),
        "s": ("ism",),
        "t": ("ate", "iti"),
        "u": ("ous",),
        "v": ("ive",),
        "z": ("ize",),
    }

    def _replace_first(self, rules: tuple[tuple[str, str], ...]) -> None:
        for suffix, replacement in rules:
            if self.ends(suffix):
                self.r(replacement)
                return

    def step3(self) -> None:
        """Double suffixes to single ones (-ization → -ize)."""
        if self.k == 0:
            return
        self._replace_first(self._STEP3.get(self.b[self.k - 1], ()))
        del self.b[self.k + 1 :]

    def step4(self) -> None:
        """-ic-, -full, -ness and the like."""
        self._replace_first(self._STEP4.get(self.b[self.k], ()))
        del self.b[self.k + 1 :]

    def step5(self) -> None:
        """-ant, -ence and the like, in a stem of m() > 1."""
        if self.k == 0:
            return
        for suffix in self._STEP5.get(self.b[self.k - 1], ()):
            if self.ends(suffix):
                if suffix == "ion" and not (self.j >= 0 and self.b[self.j] in "st"):
                    continue
                break
        else:
            return
        if self.m() > 1:
            self.k = self.j
            del self.b[self.k + 1 :]

    def step6(self) -> None:
        """A final -e, and -ll to -l, in longer stems."""
        self.j = self.k
        if self.b[self.k] == "e":
            a = self.m()
            if a > 1 or (a == 1 and not self.cvc(self.k - 1)):
                self.k -= 1
        if self.b[self.k] == "l" and self.double_consonant(self.k) and self.m() > 1:
            self.k -= 1
        del self.b[self.k + 1 :]
