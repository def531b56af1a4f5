"""Readers for the biomedical relation-extraction corpora CDR (BioCreative V) and GDA, to `Document`.

Two input formats, chosen by name through `READERS` (``convert(path, fmt)``):

**PubTator** (``"pubtator"``, `read_pubtator` / `parse_pubtator`). Documents are blocks separated by
blank lines::

    227508|t|Naloxone reverses the antihypertensive effect of clonidine.
    227508|a|In unanesthetized, spontaneously hypertensive rats ...
    227508<TAB>0<TAB>8<TAB>Naloxone<TAB>Chemical<TAB>D009270
    227508<TAB>CID<TAB>D008750<TAB>D007022

The document text is ``title + " " + abstract``; mention lines give half-open character offsets
``[start, end)`` into it, the mention text, its type and its concept ids (a 7th field, the names of a
composite mention's parts, is ignored); relation lines give a label and the head and tail concept ids.
Rules, as in the CDR literature (ATLOP, SSR-PU):

1. a mention whose concept id is ``-1`` (not linked to MeSH) is dropped;
2. a composite mention (ids ``D1|D2``, "pulmonary and renal insufficiency") is a mention of each
   concept;
3. the mentions of one concept id form one entity, typed by its mentions ("Chemical"/"Disease" in
   CDR, "Gene"/"Disease" in GDA); entities are ordered by first mention;
4. a relation keeps its label from the file (``"CID"``); the head is the first id (the chemical), the
   tail the second (the disease); a relation to a concept without a mention is dropped and *counted*
   (`ReadReport.dropped_relations`), as are duplicate relation lines (merged).

Sentences and words come from `paee.data.text_format.split_sentences` and `tokenize`, with three
changes so that every mention is a word span inside one sentence: the title is always a sentence of its
own (it is a separate passage, often without a final full stop); a word is split at every mention
start and end (``[3H]-naloxone``, ``antihypertensive`` with the mention ``hypertensive``); sentences
that a mention crosses are merged (counted in `ReadReport.sentence_merges`). A mention's ``name`` is
its text slice. The document ``title`` is the PMID, so that results are keyed by it; ``extra`` keeps
``pmid``, ``pubmed_title``, ``text``, ``word_offsets`` (the character span of every word, per
sentence, as in `paee.data.text_format`) and ``concepts`` (the concept id of each entity).

**Christopoulou et al. (2019)'s preprocessed form** (``"cdr-data"``, `read_cdr_data` /
`parse_cdr_data`: ``train_filter.data``, the form ATLOP-style code reads for CDR and GDA). One line per
document, tab-separated: the PMID, the sentences joined by ``|`` (words separated by spaces), then for
every candidate pair a group of `PAIR_FIELDS` fields::

    label  direction  cross  span1  span2  id1 names1 type1 starts1 ends1 sents1  id2 names2 ... sents2

``label`` is ``1:CID:2`` (argument 1 has relation CID with argument 2; ``2:CID:1`` would make argument
2 the head), ``1:NR:2`` (no relation) or ``not_include`` (a pair that the preprocessing's hypernym filter
took out of training and evaluation: kept in ``extra["excluded_pairs"]`` as (head, tail) entity indices
and counted, never a fact). ``direction`` (``L2R``/``R2L``) is only the text order of the closest
mentions (``span1``, ``span2``): argument 1 is the chemical in both (measured on the real files), so
it does not swap head and tail. ``names`` are ``|``-joined, ``starts``/``ends``/``sents`` ``:``-joined;
offsets count words over the whole document and become sentence-local here. Entities are the concept
ids of the pairs, ordered by first mention (``extra["concepts"]``). Errors name the document (PMID), the field
(``pairs[3].arg2.ends``) and the file and line: a span outside its sentence, lists of unequal length,
a concept whose mentions or type differ between two pairs. A repeated PMID keeps the first line (as
ATLOP does) and is counted.
"""

from __future__ import annotations

import dataclasses
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from paee.data.errors import DocumentError, PaeeDataError
from paee.data.schema import Document, Fact, Mention
from paee.data.text_format import split_sentences, tokenize

__all__ = [
    "CDR_ENTITY_TYPES", "CDR_RELATION", "GDA_ENTITY_TYPES", "PAIR_FIELDS", "READERS", "ReadReport",
    "convert", "parse_cdr_data", "parse_pubtator", "read_cdr_data", "read_pubtator", "summarize",
]

#: Entity types of CDR (pass as ``entity_types`` to `paee.data.docred.parse_document`).
CDR_ENTITY_TYPES: tuple[str, ...] = ("Chemical", "Disease")
#: Entity types of GDA.
GDA_ENTITY_TYPES: tuple[str, ...] = ("Gene", "Disease")
#: CDR's one relation: chemical-induced disease.
CDR_RELATION = "CID"

#: PubTator concept id of a mention not linked to the ontology; such mentions are dropped.
UNLINKED_ID = "-1"
_COMPOSITE_SEP = "|"  # between the concept ids of a composite mention
_TITLE_KEY, _ABSTRACT_KEY = "t", "a"
_PASSAGE_LINE = re.compile(r"([^|\t]+)\|([ta])\|(.*)")
_MENTION_MIN_FIELDS = 6  # pmid, start, end, text, type, ids [, names of the composite's parts]
_RELATION_FIELDS = 4  # pmid, label, head id, tail id

#: Fields per candidate pair in the ``.data`` format: 5 pair fields, then 6 per argument.
PAIR_FIELDS = 17
_ARG_FIELDS = ("id", "names", "type", "starts", "ends", "sents")
_ARG_OFFSETS = (5, 11)  # where argument 1 and argument 2 begin inside a pair group
_DIRECTIONS = frozenset({"L2R", "R2L"})
_CROSS_FLAGS = frozenset({"CROSS", "NON-CROSS"})
_PAIR_LABEL = re.compile(r"([12]):(.+):([12])")
_NO_RELATION = "NR"  # the .data label of a candidate pair without a relation
_EXCLUDED = "not_include"  # the .data label of a pair removed by the hypernym filter
_SENT_SEP, _WORD_SEP, _LIST_SEP, _NAME_SEP = "|", " ", ":", "|"


@dataclass(frozen=True)
class ReadReport:
    """What a reader kept, dropped and changed; one per document (``extra["read_report"]``), summed by
    `summarize`. Nothing is dropped without being counted here."""

    documents: int = field(default=0)
    entities: int = field(default=0)
    mentions: int = field(default=0)
    """What the documents hold (mentions counted per entity)."""
    facts: int = field(default=0)
    relations_in_file: int = field(default=0)
    """Relation lines (PubTator) or relation pairs (``.data``) in the input."""
    dropped_relations: tuple[str, ...] = ()
    """``"pmid LABEL head tail: reason"`` for every relation not kept as a fact."""
    duplicate_relations: int = field(default=0)
    """Relation lines repeating a kept fact (merged into it)."""
    unlinked_mentions: int = field(default=0)
    """PubTator mentions with concept id ``-1``, dropped."""
    composite_mentions: int = field(default=0)
    """PubTator mentions with several concept ids (one mention per concept)."""
    sentence_merges: int = field(default=0)
    """Sentence boundaries of the splitter removed because a mention crossed them."""
    word_splits: int = field(default=0)
    """Words of the tokenizer split at a mention boundary."""
    excluded_pairs: int = field(default=0)
    """``.data`` pairs labelled ``not_include``."""
    duplicate_documents: int = field(default=0)
    """``.data`` lines repeating an earlier PMID, skipped."""

    def __add__(self, other: ReadReport) -> ReadReport:
        return ReadReport(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def summary(self) -> str:
        """One line for a command-line tool."""
        return (f"{self.documents} documents, {self.entities} entities, {self.mentions} mentions, "
                f"{self.facts} facts kept of {self.relations_in_file} relations in the file "
                f"({len(self.dropped_relations)} dropped, {self.duplicate_relations} duplicates merged); "
                f"{self.unlinked_mentions} unlinked mentions dropped, {self.composite_mentions} composite, "
                f"{self.sentence_merges} sentence merges, {self.word_splits} word splits, "
                f"{self.excluded_pairs} excluded pairs, {self.duplicate_documents} duplicate documents")


def summarize(docs: Iterable[Document]) -> ReadReport:
    """The sum of the per-document reports of documents read by this module."""
    total = ReadReport()
    for doc in docs:
        total += doc.extra.get("read_report", ReadReport())
    return total


def _line_error(source: str, line: int, problem: str) -> PaeeDataError:
    return PaeeDataError(f"{source}, line {line}: {problem}")


def _read_text(path: str | Path) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise PaeeDataError(f"cannot read {path}: {e}") from e


def _sorted_unique(mentions: Iterable[Mention]) -> tuple[Mention, ...]:
    """Mentions in text order, each span once (a composite listed twice, a mention repeated in a file)."""
    seen: dict[tuple[int, int, int], Mention] = {}
    for m in mentions:
        seen.setdefault((m.sent_id, m.start, m.end), m)
    return tuple(seen[key] for key in sorted(seen))


def _add_fact(facts: dict[tuple[int, int, str], Fact], head: int, tail: int, label: str) -> bool:
    """Add a fact; False if it was already there (a duplicate to count)."""
    key = (head, tail, label)
    if key in facts:
        return False
    facts[key] = Fact(head, tail, label)
    return True


# --- PubTator -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RawMention:
    start: int
    end: int
    type: str
    concepts: tuple[str, ...]
    line: int


@dataclass
class _Block:
    """One PubTator document as read from its lines, before sentence splitting."""

    pmid: str
    first_line: int
    title: str | None = None
    abstract: str | None = None
    mentions: list[_RawMention] = dataclasses.field(default_factory=list)
    # label, head id, tail id, line number
    relations: list[tuple[str, str, str, int]] = dataclasses.field(default_factory=list)
    unlinked: int = 0

    @property
    def text(self) -> str:
        return f"{self.title} {self.abstract}"


def parse_pubtator(text: str, source: str = "<text>") -> list[Document]:
    """Documents of a PubTator-format text (rules in the module docstring).

    Args:
        text: the whole file.
        source: how messages name the input (a file name).

    Raises:
        PaeeDataError: a malformed line, naming ``source`` and the line number.
    """
    docs: list[Document] = []
    block: _Block | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if block is not None:
                docs.append(_pubtator_document(block, len(docs), source))
                block = None
            continue
        block = _pubtator_line(line, number, block, source)
    if block is not None:
        docs.append(_pubtator_document(block, len(docs), source))
    return docs


def _check_complete(block: _Block, source: str) -> None:
    if block.abstract is None:
        raise _line_error(source, block.first_line, f"PMID {block.pmid} has a title line but no abstract line "
                                                    f"('{block.pmid}|a|...', possibly empty) after it")


def read_pubtator(path: str | Path) -> list[Document]:
    """Documents of a PubTator file; see `parse_pubtator`."""
    return parse_pubtator(_read_text(path), str(path))


def _pubtator_line(line: str, number: int, block: _Block | None, source: str) -> _Block:
    """Add one non-blank line to the current block (a new one at a title line)."""
    passage = _PASSAGE_LINE.fullmatch(line)
    if passage is not None:
        pmid, key, body = passage.groups()
        if key == _TITLE_KEY:
            if block is not None:
                raise _line_error(source, number, f"title of PMID {pmid} inside the block of PMID {block.pmid} "
                                                  f"(line {block.first_line}); separate documents by a blank line")
            return _Block(pmid, number, title=body)
        if block is None or block.title is None or block.pmid != pmid:
            raise _line_error(source, number, f"abstract of PMID {pmid} without its title line "
                                              f"('{pmid}|t|...') right before it")
        if block.abstract is not None:
            raise _line_error(source, number, f"second abstract line of PMID {pmid}")
        block.abstract = body
        return block
    if block is None or block.abstract is None:
        raise _line_error(source, number, "expected a title line 'PMID|t|title' then an abstract line "
                                          f"'PMID|a|abstract', got {line[:60]!r}")
    parts = line.split("\t")
    if parts[0] != block.pmid:
        raise _line_error(source, number, f"PMID {parts[0]!r} inside the block of PMID {block.pmid} "
                                          f"(line {block.first_line}); separate documents by a blank line")
    if len(parts) == _RELATION_FIELDS and not parts[1].isdigit():  # a digit: a mention line cut short
        _, label, head, tail = parts
        block.relations.append((label, head, tail, number))
    elif len(parts) >= _MENTION_MIN_FIELDS:
        block.mentions.append(_pubtator_mention(parts, number, block, source))
        if not block.mentions[-1].concepts:
            block.mentions.pop()
            block.unlinked += 1
    else:
        raise _line_error(source, number, f"expected a mention line (PMID, start, end, text, type, concept ids) "
                                          f"or a relation line (PMID, label, head id, tail id), "
                                          f"got {len(parts)} tab-separated fields")
    return block


def _pubtator_mention(parts: list[str], number: int, block: _Block, source: str) -> _RawMention:
    _, start, end, piece, etype, ids = parts[:_MENTION_MIN_FIELDS]
    if not (start.isdigit() and end.isdigit()):
        raise _line_error(source, number, f"mention offsets must be integers, got {start!r} and {end!r}")
    s, e = int(start), int(end)
    text = block.text
    if not 0 <= s < e <= len(text):
        raise _line_error(source, number, f"mention span [{s}, {e}) is empty or outside the text of "
                                          f"PMID {block.pmid} ({len(text)} characters: title, a space, abstract)")
    if text[s:e] != piece:
        raise _line_error(source, number, f"mention text {piece!r} differs from the text at [{s}, {e}): "
                                          f"{text[s:e]!r} (offsets count title + ' ' + abstract)")
    concepts = tuple(dict.fromkeys(c.strip() for c in ids.split(_COMPOSITE_SEP)))
    return _RawMention(s, e, etype, tuple(c for c in concepts if c and c != UNLINKED_ID), number)


def _sentence_spans(block: _Block) -> list[tuple[int, int]]:
    """Sentences of the title, then of the abstract (the title is always a sentence of its own)."""
    text = block.text
    spans = []
    for begin, end in ((0, len(block.title)), (len(block.title) + 1, len(text))):
        spans.extend((begin + s, begin + e) for s, e in split_sentences(text[begin:end]))
    return spans


def _merge_crossed(spans: list[tuple[int, int]], text: str,
                   mentions: Sequence[_RawMention]) -> tuple[list[tuple[int, int]], int]:
    """Merge the sentences that a mention crosses; returns the sentences and the number of merges."""
    starts = [s for s, _ in spans]
    joined = [False] * len(spans)  # joined[k]: sentence k continues into sentence k + 1
    for m in mentions:
        # The sentences hold the first and the last non-space character (they cover every other one).
        piece = text[m.start:m.end]
        first = bisect_right(starts, m.start + len(piece) - len(piece.lstrip())) - 1
        last = bisect_right(starts, m.start + len(piece.rstrip()) - 1) - 1
        for k in range(max(first, 0), last):
            joined[k] = True
    merged: list[tuple[int, int]] = []
    for k, (s, e) in enumerate(spans):
        if k > 0 and joined[k - 1]:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged, sum(joined)


def _split_words(text: str, start: int, end: int, cuts: Sequence[int]) -> tuple[list[tuple[int, int]], int]:
    """Words of ``text[start:end]``, each split at the offsets in ``cuts`` (sorted) that fall inside it."""
    words = []
    splits = 0
    for s, e in tokenize(text, start, end):
        inner = cuts[bisect_right(cuts, s):bisect_left(cuts, e)]
        for cut in inner:
            words.append((s, cut))
            s = cut
        words.append((s, e))
        splits += len(inner)
    return words, splits


def _pubtator_document(block: _Block, index: int, source: str) -> Document:
    _check_complete(block, source)
    text = block.text
    sentences, merges = _merge_crossed(_sentence_spans(block), text, block.mentions)
    cuts = sorted({m.start for m in block.mentions} | {m.end for m in block.mentions})
    words: list[list[tuple[int, int]]] = []
    splits = 0
    for s, e in sentences:
        sent_words, n = _split_words(text, s, e, cuts)
        words.append(sent_words)
        splits += n
    sent_starts = [s for s, _ in sentences]
    word_starts = [[ws for ws, _ in sent] for sent in words]
    word_ends = [[we for _, we in sent] for sent in words]

    # Mentions in text order, so that entities come in order of first mention.
    by_concept: dict[str, list[Mention]] = {}
    for m in sorted(block.mentions, key=lambda m: (m.start, m.end, m.line)):
        piece = text[m.start:m.end]
        sent = max(bisect_right(sent_starts, m.start + len(piece) - len(piece.lstrip())) - 1, 0)
        first = bisect_right(word_ends[sent], m.start)  # the first word that ends after the mention starts
        last = bisect_left(word_starts[sent], m.end)  # one past the last word that starts before it ends
        if first >= last:
            raise DocumentError(index, block.pmid, f"mention at line {m.line}",
                                f"span [{m.start}, {m.end}) {text[m.start:m.end]!r} covers no word ({source})")
        for concept in m.concepts:
            by_concept.setdefault(concept, []).append(Mention(piece, sent, first, last, m.type))
    ids = {concept: e for e, concept in enumerate(by_concept)}
    entities = tuple(_sorted_unique(ms) for ms in by_concept.values())

    facts: dict[tuple[int, int, str], Fact] = {}
    dropped: list[str] = []
    duplicates = 0
    for label, head, tail, line in block.relations:
        missing = [c for c in (head, tail) if c not in ids]
        if missing:
            dropped.append(f"{block.pmid} {label} {head} {tail}: no mention of {' or '.join(missing)} (line {line})")
        elif head == tail:
            dropped.append(f"{block.pmid} {label} {head} {tail}: head and tail are one concept (line {line})")
        elif not _add_fact(facts, ids[head], ids[tail], label):
            duplicates += 1
    report = ReadReport(
        documents=1, entities=len(entities), mentions=sum(len(ms) for ms in entities), facts=len(facts),
        relations_in_file=len(block.relations), dropped_relations=tuple(dropped), duplicate_relations=duplicates,
        unlinked_mentions=block.unlinked, composite_mentions=sum(len(m.concepts) > 1 for m in block.mentions),
        sentence_merges=merges, word_splits=splits)
    extra: dict[str, Any] = {
        "pmid": block.pmid, "pubmed_title": block.title, "text": text,
        "word_offsets": tuple(tuple(ws) for ws in words), "concepts": tuple(ids), "read_report": report,
    }
    sents = tuple(tuple(text[s:e] for s, e in ws) for ws in words)
    return Document(title=block.pmid, sents=sents, entities=entities, facts=tuple(facts.values()),
                    index=index, extra=extra)


# --- Christopoulou et al.'s .data format -------------------------------------------------------


def parse_cdr_data(text: str, source: str = "<text>") -> list[Document]:
    """Documents of a ``.data``-format text (CDR's ``train_filter.data``; rules in the module docstring).

    Raises:
        PaeeDataError: a line without the PMID, text and whole pair groups (naming ``source`` and line).
        DocumentError: an inconsistent pair group, naming the PMID, the field, ``source`` and the line.
    """
    docs: list[Document] = []
    seen: dict[str, Document] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2 or (len(parts) - 2) % PAIR_FIELDS:
            raise _line_error(source, number, f"expected a PMID, the text, then groups of {PAIR_FIELDS} fields "
                                              f"per candidate pair, got {len(parts)} tab-separated fields")
        kept = seen.get(parts[0])
        if kept is not None:
            # Counted on the document kept, so that `summarize` sees it.
            kept.extra["read_report"] += ReadReport(duplicate_documents=1)
            continue
        docs.append(_data_document(parts, len(docs), f"{source}, line {number}"))
        seen[parts[0]] = docs[-1]
    return docs


def read_cdr_data(path: str | Path) -> list[Document]:
    """Documents of a ``.data`` file; see `parse_cdr_data`."""
    return parse_cdr_data(_read_text(path), str(path))


@dataclass(frozen=True)
class _Arg:
    concept: str
    type: str
    mentions: tuple[Mention, ...]
    field: str


def _data_document(parts: list[str], index: int, where: str) -> Document:
    pmid = parts[0]

    def error(field: str, problem: str) -> DocumentError:
        return DocumentError(index, pmid, field, f"{problem} ({where})")

    sents = tuple(tuple(s.split(_WORD_SEP)) for s in parts[1].split(_SENT_SEP))
    for i, sent in enumerate(sents):
        if "" in sent:
            raise error("text", f"sentence {i} has an empty word (two spaces or a space at an end)")
    bounds = []  # (first word, end word) of each sentence, in document word offsets
    offset = 0
    for sent in sents:
        bounds.append((offset, offset + len(sent)))
        offset += len(sent)

    args: dict[str, _Arg] = {}
    pairs: list[tuple[str, str, str, str]] = []  # label, arg-1 concept, arg-2 concept, field
    for p, at in enumerate(range(2, len(parts), PAIR_FIELDS)):
        group = parts[at:at + PAIR_FIELDS]
        label, direction, cross = group[:3]
        if direction not in _DIRECTIONS:
            raise error(f"pairs[{p}].direction", f"expected one of {sorted(_DIRECTIONS)}, got {direction!r}")
        if cross not in _CROSS_FLAGS:
            raise error(f"pairs[{p}].cross", f"expected one of {sorted(_CROSS_FLAGS)}, got {cross!r}")
        concepts = []
        for a, begin in enumerate(_ARG_OFFSETS, start=1):
            arg = _data_arg(group[begin:begin + len(_ARG_FIELDS)], f"pairs[{p}].arg{a}", sents, bounds, error)
            known = args.setdefault(arg.concept, arg)
            if (known.type, known.mentions) != (arg.type, arg.mentions):
                raise error(arg.field, f"concept {arg.concept} has other mentions or another type than in "
                                       f"{known.field}")
            concepts.append(arg.concept)
        pairs.append((label, concepts[0], concepts[1], f"pairs[{p}].label"))

    order = sorted(args.values(), key=lambda arg: (arg.mentions[0].sent_id, arg.mentions[0].start, arg.mentions[0].end))
    ids = {arg.concept: e for e, arg in enumerate(order)}
    facts: dict[tuple[int, int, str], Fact] = {}
    excluded = []
    relations = duplicates = 0
    for label, first, second, field in pairs:
        if label == _EXCLUDED:
            excluded.append((ids[first], ids[second]))
            continue
        match = _PAIR_LABEL.fullmatch(label)
        if match is None or match.group(1) == match.group(3):
            raise error(field, f"expected '1:REL:2', '2:REL:1' or {_EXCLUDED!r}, got {label!r}")
        head_arg, relation, _ = match.groups()
        if relation == _NO_RELATION:
            continue
        head, tail = (first, second) if head_arg == "1" else (second, first)
        relations += 1
        if head == tail:
            raise error(field, f"head and tail are one concept ({head})")
        if not _add_fact(facts, ids[head], ids[tail], relation):
            duplicates += 1
    entities = tuple(arg.mentions for arg in order)
    report = ReadReport(documents=1, entities=len(entities), mentions=sum(len(ms) for ms in entities),
                        facts=len(facts), relations_in_file=relations, duplicate_relations=duplicates,
                        excluded_pairs=len(excluded))
    extra = {"pmid": pmid, "concepts": tuple(ids), "excluded_pairs": tuple(excluded), "read_report": report}
    return Document(title=pmid, sents=sents, entities=entities, facts=tuple(facts.values()), index=index,
                    extra=extra)


def _data_arg(values: list[str], field: str, sents: tuple[tuple[str, ...], ...], bounds: list[tuple[int, int]],
              error: Callable[[str, str], DocumentError]) -> _Arg:
    """One argument of a pair group: concept id, type and its mentions (sentence-local word spans)."""
    concept, names, etype = values[0], values[1], values[2]
    lists = {}
    for key, raw in zip(_ARG_FIELDS[3:], values[3:]):
        try:
            lists[key] = [int(v) for v in raw.split(_LIST_SEP)]
        except ValueError:
            raise error(f"{field}.{key}", f"expected integers joined by {_LIST_SEP!r}, got {raw!r}") from None
    names_list = names.split(_NAME_SEP)
    count = len(lists["starts"])
    for key, got in (("names", len(names_list)), ("ends", len(lists["ends"])), ("sents", len(lists["sents"]))):
        if got != count:
            raise error(f"{field}.{key}", f"{got} values for {count} mention starts")
    mentions = []
    for k, (start, end, sent) in enumerate(zip(lists["starts"], lists["ends"], lists["sents"])):
        if not 0 <= sent < len(sents):
            raise error(f"{field}.sents", f"sentence {sent} (mention {k}) is out of range "
                                          f"(document has {len(sents)} sentences)")
        first, stop = bounds[sent]
        if not first <= start < end <= stop:
            raise error(f"{field}.starts", f"word span [{start}, {end}) (mention {k}, {names_list[k]!r}) is not "
                                           f"inside sentence {sent} (words [{first}, {stop}))")
        mentions.append(Mention(names_list[k], sent, start - first, end - first, etype))
    return _Arg(concept, etype, _sorted_unique(mentions), field)


# --- by name ------------------------------------------------------------------------------------

#: Input format name -> reader (``paee-data convert --format``).
READERS: dict[str, Callable[[str | Path], list[Document]]] = {
    "pubtator": read_pubtator,
    "cdr-data": read_cdr_data,
}


def convert(path: str | Path, fmt: str) -> list[Document]:
    """Read a biomedical corpus file in format ``fmt`` (a key of `READERS`) as documents.

    Write them with `paee.data.docred.write_documents`; read them back with ``entity_types=CDR_ENTITY_TYPES``
    (or `GDA_ENTITY_TYPES`). `summarize` gives what was kept and dropped.
    """
    reader = READERS.get(fmt)
    if reader is None:
        raise PaeeDataError(f"unknown format {fmt!r} (known: {', '.join(READERS)})")
    return reader(path)
