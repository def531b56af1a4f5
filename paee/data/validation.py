"""Validation helpers shared by both input forms (DocRED form, text form): where a document is, what
kind of JSON value a field holds, and the checks of titles, entity types and labels.

Every check raises `DocumentError` naming the document (index and title) and the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from paee.data.errors import DocumentError
from paee.data.relations import NA_RELATION, RelationVocab
from paee.data.schema import Fact

__all__ = ["Where", "check_entity_type", "check_title", "count_words", "get_field", "is_int", "json_kind", "parse_labels"]


class Where:
    """The document being parsed, so that every check can build a `DocumentError` in one call."""

    __slots__ = ("index", "title")

    def __init__(self, index: int | None, title: str | None = None):
        self.index = index
        self.title = title

    def error(self, field: str | None, problem: str) -> DocumentError:
        return DocumentError(self.index, self.title, field, problem)


def json_kind(value: Any) -> str:
    """JSON name of a value's type, for messages (``a list``, ``null``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def count_words(n: int) -> str:
    """``1 word`` / ``5 words``, for messages."""
    return f"{n} word" if n == 1 else f"{n} words"


def is_int(value: Any) -> bool:
    # bool is a subclass of int in Python; JSON true/false are never valid indices.
    return isinstance(value, int) and not isinstance(value, bool)


def get_field(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], field: str, where: Where,
         expected: str) -> Any:
    """``obj[key]``, checked to be present and of the expected JSON kind."""
    if key not in obj:
        raise where.error(field, f"missing (expected {expected})")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise where.error(field, f"expected {expected}, got {json_kind(value)}")
    return value


def check_entity_type(value: Any, field: str, where: Where, entity_types: Sequence[str] | None) -> str:
    """An entity type string from ``entity_types`` (any non-empty string when None: a schema read from
    the data); the error lists the known types."""
    if not isinstance(value, str) or not value:
        raise where.error(field, f"expected an entity type string, got {json_kind(value)}")
    if entity_types is not None and value not in entity_types:
        raise where.error(field, f"unknown entity type {value!r} (known: {', '.join(entity_types)})")
    return value


def check_title(obj: Mapping[str, Any], where: Where) -> str:
    """The document title (a string); sets it on ``where`` so later messages name it."""
    title = get_field(obj, "title", str, "title", where, "a string")
    where.title = title
    return title


def parse_labels(raw: Any, where: Where, num_entities: int, num_sents: int,
                 relations: RelationVocab | None) -> tuple[Fact, ...]:
    """Validate a ``labels`` list and merge duplicates (same h, t, r: evidence united).

    ``relations`` given: relation ids must be in the vocabulary; otherwise any id but ``Na`` passes.
    """
    if raw is None:  # some converters write "labels": null for unlabelled documents
        return ()
    if not isinstance(raw, list):
        raise where.error("labels", f"expected a list, got {json_kind(raw)}")
    merged: dict[tuple[int, int, str], set[int]] = {}  # dicts keep insertion order: first occurrence wins
    for i, label in enumerate(raw):
        field = f"labels[{i}]"
        if not isinstance(label, Mapping):
            raise where.error(field, f"expected an object {{h, t, r, evidence}}, got {json_kind(label)}")
        ends = []
        for key in ("h", "t"):
            value = label.get(key)
            if key not in label or not is_int(value):
                got = "missing" if key not in label else f"got {json_kind(value)}"
                raise where.error(f"{field}.{key}", f"expected an entity index (integer), {got}")
            if not 0 <= value < num_entities:
                raise where.error(f"{field}.{key}",
                                  f"entity {value} is out of range (document has {num_entities} entities)")
            ends.append(value)
        head, tail = ends
        if head == tail:
            raise where.error(field, f"head and tail are the same entity ({head}); relations hold between two entities")
        rel = label.get("r")
        if not isinstance(rel, str):
            got = "missing" if "r" not in label else f"got {json_kind(rel)}"
            raise where.error(f"{field}.r", f"expected a relation id string, {got}")
        if rel == NA_RELATION:
            raise where.error(f"{field}.r", f"{NA_RELATION!r} is the no-relation class, not a relation label")
        if relations is not None and rel not in relations:
            raise where.error(f"{field}.r", f"unknown relation {rel!r} (not among the {len(relations) - 1} "
                                            "relations of the relation vocabulary)")
        evidence = label.get("evidence", ())
        if evidence is None:
            evidence = ()
        if not isinstance(evidence, (list, tuple)):
            raise where.error(f"{field}.evidence", f"expected a list of sentence ids, got {json_kind(evidence)}")
        for sent in evidence:
            if not is_int(sent) or not 0 <= sent < num_sents:
                raise where.error(f"{field}.evidence",
                                  f"{sent!r} is not a sentence id (document has {num_sents} sentences)")
        merged.setdefault((head, tail, rel), set()).update(evidence)
    return tuple(Fact(h, t, r, tuple(sorted(ev))) for (h, t, r), ev in merged.items())
