"""The in-memory form of a DocRED-style document, shared by every part of the package.

A `Document` is what the reader produces after validation, what the synthetic generator and the
plain-text converter produce, and what the featurizer and the metrics consume. It is plain Python
(no numpy, no torch) so that it travels into Triton's python backend and into clients.

Conventions (DocRED's): entities are the `vertexSet` entries in order of first appearance; a mention's
`pos` is a half-open word span ``[start, end)`` inside sentence ``sent_id``; a fact's relation is the
relation *id* string of the corpus (a Wikidata property such as ``"P17"`` for DocRED).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from paee.data.errors import DocumentError, PaeeDataError, describe_document  # noqa: F401  (describe_document: re-exported)

#: Entity types of DocRED / Re-DocRED, in the order used for type ids (0 is reserved for padding).
DOCRED_ENTITY_TYPES: tuple[str, ...] = ("PER", "ORG", "LOC", "TIME", "NUM", "MISC")
#: Largest sentence / word / entity index a document may hold: the featurizer's arrays and the graphs'
#: inputs are 64-bit, and no real document comes near (checked here so that ``Mention(end=10**30)`` is a
#: clear error, not an OverflowError deep in numpy).
MAX_INDEX = 2**31 - 1


def _index_problem(value: Any, low: int = 0) -> str | None:
    """Why ``value`` is not an index in ``[low, MAX_INDEX]``, or None (bool is no index although an int)."""
    if not isinstance(value, int) or isinstance(value, bool):
        return f"expected an integer, got {type(value).__name__}"
    if not low <= value <= MAX_INDEX:
        return f"{value} is outside {low}..{MAX_INDEX}"
    return None


def _not_text(value: str) -> bool:
    """A string that is not Unicode text (a lone surrogate): the tokenizer and UTF-8 output refuse it."""
    try:
        value.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


@dataclass(frozen=True)
class Mention:
    """One mention of an entity: a word span ``[start, end)`` inside sentence ``sent_id``."""

    name: str
    sent_id: int
    start: int
    end: int
    type: str

    def __post_init__(self) -> None:
        for name in ("sent_id", "start", "end"):
            problem = _index_problem(getattr(self, name))
            if problem:
                raise PaeeDataError(f"Mention {self.name!r}: {name}: {problem}")
        if self.start >= self.end:
            raise PaeeDataError(f"Mention {self.name!r}: span [{self.start}, {self.end}) is empty")
        for name in ("name", "type"):
            if not isinstance(getattr(self, name), str):
                raise PaeeDataError(f"Mention {self.name!r}: {name}: expected a string, got {type(getattr(self, name)).__name__}")


@dataclass(frozen=True)
class Fact:
    """A labelled relation instance: ``relation`` holds between entity ``head`` and entity ``tail``."""

    head: int
    tail: int
    relation: str
    evidence: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in ("head", "tail"):
            problem = _index_problem(getattr(self, name))
            if problem:
                raise PaeeDataError(f"Fact {self.relation!r}: {name}: {problem}")
        if not isinstance(self.relation, str):
            raise PaeeDataError(f"Fact: relation: expected a relation id string, got {type(self.relation).__name__}")
        if not isinstance(self.evidence, tuple):  # a list would make the fact unhashable
            object.__setattr__(self, "evidence", tuple(self.evidence))
        for sent in self.evidence:
            problem = _index_problem(sent)
            if problem:  # -1 would land on the last sentence slot
                raise PaeeDataError(f"Fact {self.relation!r}: evidence {sent!r}: {problem}")


@dataclass(frozen=True)
class Document:
    """A validated document.

    Attributes:
        title: the document title; DocRED's scorer identifies documents by title.
        sents: words of each sentence.
        entities: the mentions of each entity (``vertexSet``), entity ids are positions here.
        facts: relation labels, de-duplicated on (head, tail, relation); empty for unlabelled data.
        index: position of the document in the file it came from, used in error messages.
    """

    title: str
    sents: tuple[tuple[str, ...], ...]
    entities: tuple[tuple[Mention, ...], ...]
    facts: tuple[Fact, ...] = ()
    index: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        """What the parts cannot check alone: facts point at this document's entities and sentences, and
        every string is Unicode text (documents built in code skip the reader's checks)."""
        def error(field_name: str | None, problem: str) -> Exception:
            return DocumentError(self.index, self.title if isinstance(self.title, str) else None, field_name, problem)

        if not isinstance(self.title, str):
            raise error("title", f"expected a string, got {type(self.title).__name__}")
        if _not_text(self.title):
            raise error("title", "holds a lone surrogate (not Unicode text)")
        if _not_text("".join("".join(s) for s in self.sents)):
            i, j = next((i, j) for i, s in enumerate(self.sents) for j, w in enumerate(s) if _not_text(w))
            raise error(f"sents[{i}][{j}]", "holds a lone surrogate (not Unicode text)")
        n, num_sents = len(self.entities), len(self.sents)
        for k, fact in enumerate(self.facts):
            if fact.head >= n or fact.tail >= n:
                raise error(f"labels[{k}]", f"head {fact.head} / tail {fact.tail} outside the document's {n} entities")
            late = [s for s in fact.evidence if s >= num_sents]
            if late:
                raise error(f"labels[{k}].evidence", f"sentence {late[0]} is not among the document's {num_sents} sentences")

    @property
    def where(self) -> str:
        """How error messages name this document: ``document 3 ('Some title')``."""
        return describe_document(self.index, self.title)

    @property
    def num_entities(self) -> int:
        return len(self.entities)

    @property
    def num_words(self) -> int:
        return sum(len(s) for s in self.sents)

    def entity_type(self, entity: int) -> str:
        """An entity's type is its first mention's type (as in ATLOP and DocuNet)."""
        return self.entities[entity][0].type

    def without_labels(self) -> "Document":
        """The same document without its facts (what prediction reads: labels are never needed there)."""
        return dataclasses.replace(self, facts=()) if self.facts else self

    def to_json(self) -> dict[str, Any]:
        """The DocRED JSON form of this document (round-trips through the reader)."""
        doc: dict[str, Any] = {
            "title": self.title,
            "sents": [list(s) for s in self.sents],
            "vertexSet": [
                [
                    {"name": m.name, "sent_id": m.sent_id, "pos": [m.start, m.end], "type": m.type}
                    for m in mentions
                ]
                for mentions in self.entities
            ],
        }
        if self.facts:
            doc["labels"] = [
                {"h": f.head, "t": f.tail, "r": f.relation, "evidence": list(f.evidence)}
                for f in self.facts
            ]
        return doc


def entity_types_of(docs: Iterable["Document"]) -> tuple[str, ...]:
    """The entity types of a corpus's schema (each entity's first mention's type): DocRED's six where they
    are all DocRED types (type ids stay DocRED's; a dev split may use a type the training split lacks),
    else the types found, sorted."""
    found = {doc.entity_type(e) for doc in docs for e in range(doc.num_entities)}
    return DOCRED_ENTITY_TYPES if found <= set(DOCRED_ENTITY_TYPES) else tuple(sorted(found))

