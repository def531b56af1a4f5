"""Reading, validating and writing DocRED-format JSON files.

A file is a JSON list of documents. Each document is detected on its own:

* **DocRED form** (has ``"sents"``): ``{title, sents: [[word, ...], ...], vertexSet: [[{name, sent_id,
  pos: [start, end), type}, ...], ...], labels: [{h, t, r, evidence}] (optional)}``. This is DocRED,
  Re-DocRED (whose mentions carry extra fields such as ``global_pos`` and ``index``: accepted and
  ignored) and any corpus converted to that format.
* **Text form** (has ``"text"``): plain text with character-offset mentions, see
  `paee.data.text_format`.

Validation raises `DocumentError` naming the document (index in the file and title) and the field,
for example ``document 3 ('Some title'), field 'vertexSet[2][0].pos': span [5, 5) is empty``.
Deliberately *not* errors, because DocRED itself has them: a mention ``name`` that differs from the
words of its span, and entities whose mentions disagree on the type (the first mention's type wins).
Duplicate labels (same head, tail and relation) are merged, their evidence united.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from paee.data.errors import PaeeDataError
from paee.data.jsonio import JsonListReader, read_json, write_json_atomic
from paee.data.relations import RelationVocab
from paee.data.schema import DOCRED_ENTITY_TYPES, Document, Mention
from paee.data.text_format import parse_text_document
from paee.data.validation import (
    Where, check_entity_type, check_title, count_words, get_field, is_int, json_kind, parse_labels,
)

__all__ = [
    "duplicate_titles", "iter_documents", "parse_document", "read_documents", "warn_duplicate_titles",
    "write_documents",
]

_MENTION_KEYS = ("name", "sent_id", "pos", "type")


# --- DocRED form --------------------------------------------------------------------------------


def _lists(obj: Mapping[str, Any], key: str, where: Where, items: str, parts: str) -> list[list[Any]]:
    """``obj[key]``: a non-empty list of lists (sentences of words, entities of mentions)."""
    raw = get_field(obj, key, list, key, where, f"a list of {items}, each a list of {parts}")
    if not raw:
        raise where.error(key, f"the document has no {items}")
    for i, value in enumerate(raw):
        if not isinstance(value, list):
            raise where.error(f"{key}[{i}]", f"expected a list of {parts}, got {json_kind(value)}")
    return raw


def _parse_sents(obj: Mapping[str, Any], where: Where) -> tuple[tuple[str, ...], ...]:
    sents = []
    for i, sent in enumerate(_lists(obj, "sents", where, "sentences", "words")):
        # One C-level pass over the words; only on failure do we look for the culprit.
        if not all(type(w) is str for w in sent):
            j = next(j for j, w in enumerate(sent) if not isinstance(w, str))
            raise where.error(f"sents[{i}][{j}]", f"expected a word (string), got {json_kind(sent[j])}")
        sents.append(tuple(sent))
    if not any(sents):
        raise where.error("sents", "the document has no words (every sentence is empty)")
    for i, sent in enumerate(sents):
        if not sent:
            # An empty sentence has no token span; the featurizer and the sentence pooling need one.
            raise where.error(f"sents[{i}]", "the sentence is empty (remove it and renumber sent_id and evidence)")
    return tuple(sents)


def _parse_mention(m: Any, field: str, where: Where, sents: tuple[tuple[str, ...], ...],
                   entity_types: Sequence[str] | None) -> Mention:
    if not isinstance(m, Mapping):
        raise where.error(field, f"expected a mention object {{name, sent_id, pos, type}}, got {json_kind(m)}")
    for key in _MENTION_KEYS:
        if key not in m:
            raise where.error(f"{field}.{key}", "missing (a mention needs name, sent_id, pos and type)")
    name = m["name"]
    if not isinstance(name, str):
        raise where.error(f"{field}.name", f"expected a string, got {json_kind(name)}")
    sent_id = m["sent_id"]
    if not is_int(sent_id):
        raise where.error(f"{field}.sent_id", f"expected a sentence index (integer), got {json_kind(sent_id)}")
    if not 0 <= sent_id < len(sents):
        raise where.error(f"{field}.sent_id",
                          f"sentence {sent_id} is out of range (document has {len(sents)} sentences)")
    pos = m["pos"]
    if not isinstance(pos, (list, tuple)) or len(pos) != 2 or not (is_int(pos[0]) and is_int(pos[1])):
        raise where.error(f"{field}.pos", f"expected [start, end] word indices, got {pos!r}")
    start, end = pos
    if start >= end:
        raise where.error(f"{field}.pos", f"span [{start}, {end}) is empty")
    length = len(sents[sent_id])
    if start < 0 or end > length:
        raise where.error(f"{field}.pos",
                          f"span [{start}, {end}) lies outside sentence {sent_id} ({count_words(length)})")
    etype = check_entity_type(m["type"], f"{field}.type", where, entity_types)
    return Mention(name, sent_id, start, end, etype)


def _parse_docred(obj: Mapping[str, Any], where: Where, entity_types: Sequence[str] | None,
                  relations: RelationVocab | None) -> Document:
    title = check_title(obj, where)
    sents = _parse_sents(obj, where)
    entities = []
    for e, mentions in enumerate(_lists(obj, "vertexSet", where, "entities", "mentions")):
        if not mentions:
            raise where.error(f"vertexSet[{e}]", "the entity has no mentions")
        entities.append(tuple(_parse_mention(m, f"vertexSet[{e}][{k}]", where, sents, entity_types)
                              for k, m in enumerate(mentions)))
    facts = parse_labels(obj.get("labels"), where, len(entities), len(sents), relations)
    return Document(title=title, sents=sents, entities=tuple(entities), facts=facts, index=where.index or 0)


# --- public API ---------------------------------------------------------------------------------


def parse_document(obj: Any, index: int, *, entity_types: Sequence[str] | None = DOCRED_ENTITY_TYPES,
                   relations: RelationVocab | None = None) -> Document:
    """Validate one parsed JSON document (DocRED form or text form) into a `Document`.

    Args:
        obj: the parsed JSON object.
        index: its position in the file (or request); becomes `Document.index` and names it in errors.
        entity_types: the allowed mention types; None accepts any (the schema comes from the data).
        relations: if given, label relation ids must belong to it.

    Raises:
        DocumentError: naming the document and the offending field.
    """
    where = Where(index)
    if not isinstance(obj, Mapping):
        raise where.error(None, f"expected a JSON object, got {json_kind(obj)}")
    if isinstance(obj.get("title"), str):
        where.title = obj["title"]
    has_sents, has_text = "sents" in obj, "text" in obj
    if has_sents and has_text:
        raise where.error(None, "has both 'sents' (DocRED form) and 'text' (text form); use one")
    if has_text:
        return parse_text_document(obj, index, entity_types=entity_types, relations=relations)
    if not has_sents:
        raise where.error("sents", "missing: expected DocRED form ('title', 'sents', 'vertexSet') "
                                   "or text form ('title', 'text', 'entities')")
    return _parse_docred(obj, where, entity_types, relations)


def read_documents(source: str | Path | Sequence[Any], *,
                   entity_types: Sequence[str] | None = DOCRED_ENTITY_TYPES,
                   relations: RelationVocab | None = None) -> list[Document]:
    """Read and validate every document of a JSON file, or of an already-parsed list of objects.

    ``Document.index`` is the document's position in the list. The first invalid document raises
    `DocumentError`; an unreadable file or a top level that is not a list raises `PaeeDataError`.
    """
    if isinstance(source, (str, Path)):
        data = read_json(source, what="documents")
        origin = str(source)
    else:
        data, origin = source, "input"
    if isinstance(data, Mapping) or not isinstance(data, Sequence) or isinstance(data, (str, bytes)):
        raise PaeeDataError(f"{origin}: expected a JSON list of documents, got {json_kind(data)}")
    types = None if entity_types is None else tuple(entity_types)
    return [parse_document(obj, i, entity_types=types, relations=relations) for i, obj in enumerate(data)]


def iter_documents(source: str | Path | JsonListReader, *, entity_types: Sequence[str] | None = DOCRED_ENTITY_TYPES,
                   relations: RelationVocab | None = None, errors: Literal["raise", "collect"] = "raise",
                   ) -> Iterator[Document | PaeeDataError]:
    """The documents of a JSON file one at a time (`JsonListReader`: memory for one document, whatever the
    file's size), validated as `read_documents` does. ``errors="collect"`` yields an invalid document's
    error in its place and goes on; a file that is not a JSON list stops with `PaeeDataError` either way."""
    reader = source if isinstance(source, JsonListReader) else JsonListReader(source, what="documents")
    types = None if entity_types is None else tuple(entity_types)
    for i, obj in enumerate(reader):
        try:
            yield parse_document(obj, i, entity_types=types, relations=relations)
        except PaeeDataError as err:
            if errors == "raise":
                raise
            yield err


def duplicate_titles(titles: Iterable[str]) -> list[str]:
    """Titles that more than one document carries: results and scores are keyed by title (the official
    format), so those documents' results mix; callers warn."""
    seen = Counter(titles)
    return [title for title, n in seen.items() if n > 1]


def warn_duplicate_titles(titles: Iterable[str], origin: str) -> None:
    """One warning line on stderr when titles repeat (see `duplicate_titles`)."""
    dup = duplicate_titles(titles)
    if dup:
        print(f"warning: {origin}: {len(dup)} title(s) carried by more than one document ({', '.join(map(repr, dup[:3]))}"
              f"{', ...' if len(dup) > 3 else ''}); results are keyed by title, so their facts mix", file=sys.stderr)


def write_documents(path: str | Path, docs: Sequence[Document]) -> None:
    """Write documents as a DocRED-format JSON list (UTF-8, readable by `read_documents`)."""
    write_json_atomic(path, [doc.to_json() for doc in docs])
