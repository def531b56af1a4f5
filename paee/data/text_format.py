"""The plain-text input form: text plus character-offset mentions, converted to a `Document`.

For users without DocRED's tokenization. A document in this form reads::

    {"title": "Ada", "text": "Ada Lovelace was born in London. Lovelace wrote notes.",
     "entities": [{"type": "PER", "mentions": [{"start": 0, "end": 12}, {"start": 33, "end": 41}]},
                  {"type": "LOC", "mentions": [{"start": 25, "end": 31}]}],
     "labels": [{"h": 0, "t": 1, "r": "P19"}]}

Mention offsets are half-open character spans ``[start, end)`` into ``text``; ``labels`` is optional
(``evidence``, if given, uses the sentence ids of the splitter below). A mention's ``name`` is its text
slice; entities keep the given order (labels refer to them by position).

The conversion is deterministic and needs no model or dependency:

**Sentence splitter** (`split_sentences`). A sentence ends

1. after ``.``, ``!`` or ``?`` (and any closing quotes or brackets right after it) when whitespace
   follows and the next non-space character is an uppercase letter, a digit, an opening quote or an
   opening bracket; except when the ``.`` ends an abbreviation: a word in `ABBREVIATIONS` (``Mr.``,
   ``Dr.``, ``St.``, ``U.S.``, ``e.g.`` ...), a single capital letter (an initial, ``J. R. R.``) or
   dotted letters (``U.N.``);
2. at a blank line (a paragraph break), whatever precedes it.

Whitespace around sentences is dropped; a sentence without a word is dropped.

**Word tokenizer** (`tokenize`), the first alternative that matches at each position, left to right:

1. dotted letters ``U.S.``, ``e.g.`` (two or more single letters each followed by ``.``);
2. numbers with internal ``.``, ``,`` or ``-`` between digits: ``3.14``, ``1,000``, ``1990-91``;
3. a run of word characters (letters, digits, underscore): ``Lovelace``, ``1990s``;
4. any other single non-space character: ``.``, ``,``, ``(``, ``-``, ``'``.

So ``Jean-Paul`` is three words and ``O'Brien`` three; a mention must start and end on word
boundaries, so ``Paul`` inside ``Jean-Paul`` is a valid mention while ``Lovel`` inside ``Lovelace``
is not.

Errors (`DocumentError`, naming the document and the field such as ``entities[2].mentions[0]``):
offsets outside the text, ``start >= end``, offsets that cut a word, a mention overlapping another
mention, a mention crossing a sentence boundary.

The `Document` keeps, in ``extra``, the ``text`` and ``word_offsets`` (per sentence, the character
span of each word), so that predictions can be mapped back to the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from paee.data.validation import Where, check_entity_type, check_title, get_field, is_int, json_kind, parse_labels
from paee.data.relations import RelationVocab
from paee.data.schema import DOCRED_ENTITY_TYPES, Document, Mention

__all__ = ["ABBREVIATIONS", "parse_text_document", "split_sentences", "tokenize"]

#: Words after whose final ``.`` the splitter never ends a sentence (case-sensitive).
ABBREVIATIONS: frozenset[str] = frozenset({
    "Mr.", "Mrs.", "Ms.", "Dr.", "Prof.", "Sr.", "Jr.", "St.", "Mt.", "Ft.", "Gen.", "Col.", "Lt.", "Capt.",
    "Sgt.", "Gov.", "Sen.", "Rep.", "Rev.", "Hon.", "Inc.", "Ltd.", "Co.", "Corp.", "Bros.", "No.", "Nos.",
    "Vol.", "vol.", "pp.", "p.", "ed.", "eds.", "approx.", "ca.", "cf.", "vs.", "etc.", "al.", "fig.",
    "Fig.", "Jan.", "Feb.", "Mar.", "Apr.", "Jun.", "Jul.", "Aug.", "Sep.", "Sept.", "Oct.", "Nov.",
    "Dec.", "Ave.", "Blvd.", "Rd.", "U.S.", "U.K.", "U.N.", "e.g.", "i.e.",
})

_QUOTES_OPEN = "\"'\u201c\u2018(["
# A candidate sentence end: terminators, closing quotes/brackets, then the whitespace to the next sentence.
_SENTENCE_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(\s+)")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")
_INITIAL = re.compile(r"[^\W\d_]\.")  # a single letter and a full stop: an initial
_DOTTED = re.compile(r"(?:[^\W\d_]\.){2,}")  # U.S., e.g.
_WORD = re.compile(r"(?:[^\W\d_]\.){2,}|\d+(?:[.,\-]\d+)+|\w+|[^\w\s]")


def _ends_with_abbreviation(text: str, dot: int) -> bool:
    """Whether the ``.`` at ``text[dot]`` closes an abbreviation or an initial."""
    start = dot
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    chunk = text[start:dot + 1].lstrip(_QUOTES_OPEN)
    return chunk in ABBREVIATIONS or bool(_INITIAL.fullmatch(chunk)) or bool(_DOTTED.fullmatch(chunk))


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans ``[start, end)`` of the sentences of ``text`` (rules in the module docstring)."""
    cuts = [m.start() for m in _PARAGRAPH_BREAK.finditer(text)]
    for m in _SENTENCE_END.finditer(text):
        after = m.end()
        if after >= len(text):
            continue
        nxt = text[after]
        if not (nxt.isupper() or nxt.isdigit() or nxt in _QUOTES_OPEN):
            continue
        terminators = m.group(0).rstrip()
        last_terminator = m.start() + len(terminators.rstrip("\"'\u201d\u2019)]")) - 1
        if terminators[0] == "." and len(terminators.rstrip("\"'\u201d\u2019)]")) == 1 \
                and _ends_with_abbreviation(text, last_terminator):
            continue
        cuts.append(m.start(1))
    spans = []
    begin = 0
    for cut in sorted(set(cuts)) + [len(text)]:
        start, end = begin, cut
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end and _WORD.search(text, start, end):
            spans.append((start, end))
        begin = cut
    return spans


def tokenize(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Character spans of the words of ``text[start:end]`` (offsets into ``text``)."""
    end = len(text) if end is None else end
    return [m.span() for m in _WORD.finditer(text, start, end)]


def parse_text_document(obj: Mapping[str, Any], index: int, *,
                        entity_types: Sequence[str] | None = DOCRED_ENTITY_TYPES,
                        relations: RelationVocab | None = None) -> Document:
    """Validate a text-form document and convert it to a `Document` (sentences and words split here)."""
    where = Where(index)
    title = check_title(obj, where)
    text = get_field(obj, "text", str, "text", where, "a string")
    sentence_spans = split_sentences(text)
    if not sentence_spans:
        raise where.error("text", "the text has no words")
    words: list[list[tuple[int, int]]] = [tokenize(text, s, e) for s, e in sentence_spans]
    # Character offset -> (sentence, word) for every word start and every word end.
    starts: dict[int, tuple[int, int]] = {}
    ends: dict[int, tuple[int, int]] = {}
    for i, sent in enumerate(words):
        for j, (s, e) in enumerate(sent):
            starts[s] = (i, j)
            ends[e] = (i, j)

    raw_entities = get_field(obj, "entities", list, "entities", where, "a list of entities {type, mentions}")
    if not raw_entities:
        raise where.error("entities", "the document has no entities")
    entities: list[tuple[Mention, ...]] = []
    spans: list[tuple[int, int, str]] = []  # (start, end, field) of every mention, for the overlap check
    for e, raw in enumerate(raw_entities):
        field = f"entities[{e}]"
        if not isinstance(raw, Mapping):
            raise where.error(field, f"expected an object {{type, mentions}}, got {json_kind(raw)}")
        if "type" not in raw:
            raise where.error(f"{field}.type", "missing (expected an entity type string)")
        etype = check_entity_type(raw["type"], f"{field}.type", where, entity_types)
        raw_mentions = get_field(raw, "mentions", list, f"{field}.mentions", where, "a list of {start, end}")
        if not raw_mentions:
            raise where.error(f"{field}.mentions", "the entity has no mentions")
        mentions = []
        for k, m in enumerate(raw_mentions):
            mfield = f"{field}.mentions[{k}]"
            start, end = _char_span(m, mfield, where, len(text))
            mentions.append(_to_mention(text, start, end, etype, mfield, where, words, starts, ends))
            spans.append((start, end, mfield))
        entities.append(tuple(mentions))
    _check_overlaps(spans, text, where)

    sents = tuple(tuple(text[s:e] for s, e in sent) for sent in words)
    facts = parse_labels(obj.get("labels"), where, len(entities), len(sents), relations)
    extra = {"text": text, "word_offsets": tuple(tuple(sent) for sent in words)}
    return Document(title=title, sents=sents, entities=tuple(entities), facts=facts, index=index, extra=extra)


def _char_span(m: Any, field: str, where: Where, length: int) -> tuple[int, int]:
    if not isinstance(m, Mapping):
        raise where.error(field, f"expected an object {{start, end}}, got {json_kind(m)}")
    for key in ("start", "end"):
        if key not in m or not is_int(m[key]):
            got = "missing" if key not in m else f"got {json_kind(m[key])}"
            raise where.error(f"{field}.{key}", f"expected a character offset (integer), {got}")
    start, end = m["start"], m["end"]
    if start >= end:
        raise where.error(field, f"start {start} >= end {end}: the span [{start}, {end}) is empty")
    if start < 0 or end > length:
        raise where.error(field, f"span [{start}, {end}) lies outside the text ({length} characters)")
    return start, end


def _to_mention(text: str, start: int, end: int, etype: str, field: str, where: Where,
                words: list[list[tuple[int, int]]], starts: dict[int, tuple[int, int]],
                ends: dict[int, tuple[int, int]]) -> Mention:
    """Map a character span to a word span inside one sentence."""
    piece = text[start:end]
    if start not in starts:
        raise where.error(field, f"span [{start}, {end}) {piece!r} does not start at a word boundary "
                                 f"({_around(text, start)}); a mention must cover whole words")
    if end not in ends:
        raise where.error(field, f"span [{start}, {end}) {piece!r} does not end at a word boundary "
                                 f"({_around(text, end)}); a mention must cover whole words")
    (sent, first), (last_sent, last) = starts[start], ends[end]
    if sent != last_sent:
        boundary = words[sent][-1][1]
        raise where.error(field, f"span [{start}, {end}) {piece!r} crosses the boundary between sentences "
                                 f"{sent} and {last_sent} (the splitter ends a sentence after "
                                 f"{text[max(0, boundary - 20):boundary]!r}); fix the text, for example drop "
                                 "the full stop or write the abbreviation without it")
    return Mention(piece, sent, first, last + 1, etype)


def _around(text: str, offset: int) -> str:
    """``...text|text...`` around a character offset, for messages."""
    return f"at {text[max(0, offset - 15):offset]!r} | {text[offset:offset + 15]!r}"


def _check_overlaps(spans: list[tuple[int, int, str]], text: str, where: Where) -> None:
    ordered = sorted(spans)
    for (s1, e1, f1), (s2, e2, f2) in zip(ordered, ordered[1:]):
        if s2 < e1:
            raise where.error(f2, f"span [{s2}, {e2}) {text[s2:e2]!r} overlaps mention {f1} "
                                  f"[{s1}, {e1}) {text[s1:e1]!r}; mentions must not overlap")
