"""Documents -> fixed-shape numpy features of the tensor contract (README, "Tensor contract").

One featurizer serves training, evaluation and Triton's preprocessing model, so it imports numpy and
`tokenizers` only (never torch). Per document:

1. ATLOP entity markers: a marker word (``*``) before each mention start and after each mention end
   (mentions sharing a start word share one start marker, likewise for ends).
2. All documents of a call are tokenized in one ``encode_batch`` over the pre-split words; the
   encodings' ``word_ids`` locate the markers and sentence boundaries in wordpieces (vectorised with
   numpy, no per-word tokenizer call).
3. Entities are padded to N, mentions to M, sentences to S; documents over a limit raise `LimitError`
   naming the limit and the option that raises it, or with ``truncate=True`` are cut to
   ``max_length`` wordpieces (mentions that do not fit are dropped and reported).

`collate` stacks `DocFeatures` into the batch dictionary (and the training targets).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, overload

import numpy as np
from tokenizers import Encoding, Tokenizer

from paee.data.errors import DocumentError, LimitError, PaeeDataError
from paee.data.relations import RelationVocab
from paee.data.schema import DOCRED_ENTITY_TYPES, Document, describe_document
from paee.data.tokenizer import DEFAULT_MARKER, TokenizerSpec
from paee.data.type_map import TypeMap, schema_type_map

logger = logging.getLogger(__name__)

#: Default limit of a document's wordpieces (markers and special tokens included); longer ones are an error
#: unless the caller asks to truncate. The encoder reads any length as k overlapping windows.
DEFAULT_MAX_LENGTH = 4096
#: The largest limit accepted: memory grows with length (entity attention rows are [N, K, L] per document).
MAX_SUPPORTED_LENGTH = 8192
#: Documents tokenized per ``encode_batch`` call: bounds the memory held by encodings at once.
ENCODE_CHUNK = 512
#: Value of padded (unused) index slots: mention_pos, entity_type, sent_span.
INDEX_PAD = 0
#: Pair slots of a batch at the least: the exported head's pair axis is traced at 2 (a dynamic dimension
#: cannot be 0 or 1 in an export example), so a batch of single-entity documents still has 2 (masked).
MIN_PAIRS = 2
#: How limit errors name the remedy: N, M and S are a model's sizes, fixed when it is trained.
LIMIT_SET_AT_TRAINING = "a limit of the model, set when it is trained: paee-train {option}"


@dataclass(frozen=True)
class FeaturizerConfig:
    """Shapes and options of the featurizer; export-time and training-time constants.

    Attributes:
        max_entities: N, entity slots per document (42 = the DocRED / Re-DocRED maximum; DWIE needs ~90).
        max_mentions: M, mention slots per entity (DocRED's maximum is 23).
        max_sentences: S, sentence slots per document (DocRED's maximum is 21).
        max_length: wordpieces per document including markers and special tokens (at most
            `MAX_SUPPORTED_LENGTH`); a run-time limit, not a model size: commands may raise it.
        marker: the entity marker word inserted before and after each mention (ATLOP's ``*``).
        entity_types: entity type names; a type's id is 1 + its position here (0 = padding).
        truncate: cut documents longer than ``max_length`` instead of raising `LimitError`; mentions
            whose markers fall outside are dropped and reported in ``DocFeatures.lost_mentions`` and
            ``DocFeatures.warnings``. A per-call choice: checkpoints and repositories never store it on.
        pair_types: the (subject type, object type) pairs that are candidates for a relation (CDR:
            only Chemical -> Disease); empty = every ordered pair. Other pairs stay in ``pair_index`` (the
            map is filled from every pair) with ``pair_mask`` 0: no loss, no prediction, not scored.
        type_map: detector label -> entity type for plain text (`paee.data.type_map.TypeMap.to_json`);
            None: the schema's own (`SCHEMA_TYPE_MAPS`: DocRED's for DocRED's types). See `detector_type_map`.
    """

    max_entities: int = 42
    max_mentions: int = 24
    max_sentences: int = 32
    max_length: int = DEFAULT_MAX_LENGTH
    marker: str = DEFAULT_MARKER
    entity_types: tuple[str, ...] = DOCRED_ENTITY_TYPES
    truncate: bool = False
    pair_types: tuple[tuple[str, str], ...] = ()
    type_map: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "entity_types", tuple(self.entity_types))
        object.__setattr__(self, "pair_types", tuple(tuple(pair) for pair in self.pair_types))
        for name in ("max_entities", "max_mentions", "max_sentences", "max_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise PaeeDataError(f"FeaturizerConfig.{name} must be a positive integer, got {value!r}")
        if self.max_length > MAX_SUPPORTED_LENGTH:
            raise PaeeDataError(
                f"FeaturizerConfig.max_length={self.max_length} exceeds {MAX_SUPPORTED_LENGTH}, the largest "
                "limit accepted (memory grows with the length)"
            )
        if not self.marker or self.marker != self.marker.strip():
            raise PaeeDataError(f"FeaturizerConfig.marker must be a non-empty word without spaces, got {self.marker!r}")
        if not self.entity_types or len(set(self.entity_types)) != len(self.entity_types):
            raise PaeeDataError(
                f"FeaturizerConfig.entity_types must be distinct and non-empty, got {self.entity_types}"
            )
        unknown = sorted({t for pair in self.pair_types for t in pair} - set(self.entity_types))
        if unknown or any(len(pair) != 2 for pair in self.pair_types):
            raise PaeeDataError(f"FeaturizerConfig.pair_types must be (subject, object) pairs of entity types "
                                f"{list(self.entity_types)}; got {[list(p) for p in self.pair_types]}")
        if self.type_map is not None:  # stored as JSON, checked against the types once here
            object.__setattr__(self, "type_map", TypeMap.from_json(self.type_map).to_json())
            self.detector_type_map()

    def detector_type_map(self) -> TypeMap:
        """The model's detector label -> entity type map (`paee.data.type_map.schema_type_map`)."""
        return schema_type_map(self.entity_types, self.type_map)

    @property
    def num_entity_types(self) -> int:
        """Number of type ids including padding (size of a type embedding table)."""
        return len(self.entity_types) + 1

    def to_json(self) -> dict[str, Any]:
        obj = asdict(self)
        obj["entity_types"] = list(self.entity_types)
        obj["pair_types"] = [list(pair) for pair in self.pair_types]
        return obj

    def candidate_table(self) -> np.ndarray:
        """[T+1, T+1] bool: whether a pair of (subject type id, object type id) is a candidate."""
        if not self.pair_types:
            return np.ones((self.num_entity_types, self.num_entity_types), dtype=bool)
        ids = {t: i + 1 for i, t in enumerate(self.entity_types)}
        table = np.zeros((self.num_entity_types, self.num_entity_types), dtype=bool)
        for subject, obj in self.pair_types:
            table[ids[subject], ids[obj]] = True
        return table

    @classmethod
    def from_json(cls, obj: dict[str, Any] | str) -> FeaturizerConfig:
        """From `to_json`'s dictionary (or its JSON text); unknown keys are an error."""
        if isinstance(obj, str):
            try:
                obj = json.loads(obj)
            except json.JSONDecodeError as e:
                raise PaeeDataError(f"invalid featurizer config JSON: {e}") from e
        try:
            return cls(**obj)
        except TypeError as e:
            raise PaeeDataError(f"invalid featurizer config {obj!r}: {e}") from e


def parse_pair_types(text: str) -> tuple[tuple[str, str], ...]:
    """``"Chemical:Disease,Gene:Disease"`` -> (("Chemical", "Disease"), ("Gene", "Disease")) (the commands'
    ``--pair-types``)."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        subject, sep, obj = item.partition(":")
        if not sep or not subject.strip() or not obj.strip():
            raise PaeeDataError(f"pair types: {item!r} is not SUBJECT_TYPE:OBJECT_TYPE (e.g. Chemical:Disease)")
        pairs.append((subject.strip(), obj.strip()))
    return tuple(pairs)


@dataclass
class DocFeatures:
    """Features of one document (numpy; ``l`` = its unpadded length in wordpieces).

    Attributes:
        input_ids: [l] int64, wordpieces with markers and the tokenizer's special tokens.
        mention_pos: [N, M] int64, token index of each mention's start marker (0 where padded).
        mention_mask: [N, M] float32, 1 on real (kept) mentions.
        entity_type: [N] int64, 1..T type id of each entity (its first mention's type), 0 on padding.
        entity_mask: [N] float32, 1 on real entities (also on one whose mentions were all truncated).
        sent_span: [S, 2] int64, token span ``[start, end)`` of each sentence (markers included).
        sent_mask: [S] float32, 1 on real sentences with at least one token.
        same_sent: [N, N] int64, 1 where some kept mention of s and some of o share a sentence.
        num_entities: n, the real entity count.
        facts: [F, 3] int64, (head, tail, relation class index); empty if unlabelled or no vocabulary.
        evidence: [E, 3] int64, (head, tail, sentence) for each evidence sentence of each fact (DocRED's
            ``evidence``), sentences beyond the S slots left out; empty when the labels carry none.
        title: the document title.
        index: the document's position in its file.
        lost_mentions: (entity, mention) pairs dropped by truncation.
        warnings: what the caller must be told about this document (truncation and each lost mention).
        candidate_pairs: [n(n-1)] bool, in `ordered_pairs` order: the pairs whose entity types are a
            candidate pair (`FeaturizerConfig.pair_types`); all true without a constraint.
    """

    input_ids: np.ndarray
    mention_pos: np.ndarray
    mention_mask: np.ndarray
    entity_type: np.ndarray
    entity_mask: np.ndarray
    sent_span: np.ndarray
    sent_mask: np.ndarray
    same_sent: np.ndarray
    num_entities: int
    facts: np.ndarray
    evidence: np.ndarray
    title: str
    index: int
    lost_mentions: list[tuple[int, int]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    candidate_pairs: np.ndarray | None = None  # None: every pair

    @property
    def num_tokens(self) -> int:
        """l, the unpadded length in wordpieces."""
        return int(self.input_ids.shape[0])

    @property
    def num_pairs(self) -> int:
        """n (n - 1), the document's ordered entity pairs (what the head classifies)."""
        return self.num_entities * (self.num_entities - 1)


@dataclass
class _Prepared:
    """A validated document with marker words inserted, before tokenization (internal)."""

    doc: Document
    words: list[str]  # marked word sequence fed to the tokenizer
    mention_entity: np.ndarray  # [K] entity of each mention (flattened over entities)
    mention_slot: np.ndarray  # [K] mention index within its entity
    mention_sent: np.ndarray  # [K] sentence of each mention
    start_marker_word: np.ndarray  # [K] position of the mention's start marker in `words`
    end_marker_word: np.ndarray  # [K] position of the mention's end marker in `words`
    sent_words: np.ndarray  # [num_sents, 2] marked-word span of each sentence
    entity_type: np.ndarray  # [n] type ids
    facts: np.ndarray  # [F, 3]
    evidence: np.ndarray  # [E, 3] (head, tail, sentence)


class Featurizer:
    """Turns `Document`s into `DocFeatures` with one tokenizer and one `FeaturizerConfig`.

    Args:
        tokenizer: a `tokenizers.Tokenizer` (see `paee.data.tokenizer`); its post-processor's special
            tokens frame each document.
        config: shapes and options; defaults to `FeaturizerConfig()`.
        relations: relation vocabulary; with it, a document's facts become class indices.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        config: FeaturizerConfig | None = None,
        relations: RelationVocab | None = None,
    ):
        self.tokenizer = tokenizer
        self.config = config or FeaturizerConfig()
        self.relations = relations
        self.spec = TokenizerSpec.from_tokenizer(tokenizer, self.config.marker)
        self._type_ids = {t: i + 1 for i, t in enumerate(self.config.entity_types)}
        self._candidates = self.config.candidate_table() if self.config.pair_types else None
        overhead = len(self.spec.start_tokens) + len(self.spec.suffix_tokens)
        if self.config.max_length <= overhead:
            raise PaeeDataError(
                f"FeaturizerConfig.max_length={self.config.max_length} leaves no room beside the tokenizer's "
                f"{overhead} special tokens"
            )

    def featurize(self, doc: Document) -> DocFeatures:
        """Features of one document; raises `DocumentError` / `LimitError`."""
        return self.featurize_many([doc])[0]

    @overload
    def featurize_many(
        self, docs: Iterable[Document], errors: Literal["raise"] = "raise", truncate: bool | Sequence[bool] | None = None
    ) -> list[DocFeatures]: ...

    @overload
    def featurize_many(
        self, docs: Iterable[Document], errors: Literal["collect"], truncate: bool | Sequence[bool] | None = None
    ) -> list[DocFeatures | PaeeDataError]: ...

    def featurize_many(
        self,
        docs: Iterable[Document],
        errors: Literal["raise", "collect"] = "raise",
        truncate: bool | Sequence[bool] | None = None,
    ) -> list[DocFeatures] | list[DocFeatures | PaeeDataError]:
        """Features of many documents, tokenized in batches.

        Args:
            docs: the documents.
            errors: ``"raise"`` raises the first document's error; ``"collect"`` returns, at each bad
                document's position, its `PaeeDataError` instead of features (one bad request in a
                Triton batch then fails alone).
            truncate: this call's choice for documents over ``max_length`` (one for all, or one per
                document, e.g. per served request); None = the configuration's ``truncate``.
        """
        if errors not in ("raise", "collect"):
            raise PaeeDataError(f"errors must be 'raise' or 'collect', got {errors!r}")
        docs = list(docs)
        if truncate is None or isinstance(truncate, bool):
            cut = [self.config.truncate if truncate is None else truncate] * len(docs)
        else:
            cut = [bool(t) for t in truncate]
            if len(cut) != len(docs):
                raise PaeeDataError(f"truncate has {len(cut)} choices for {len(docs)} documents")
        results: list[DocFeatures | PaeeDataError | None] = [None] * len(docs)
        for lo in range(0, len(docs), ENCODE_CHUNK):
            prepared: list[tuple[int, _Prepared]] = []
            for i in range(lo, min(lo + ENCODE_CHUNK, len(docs))):
                try:
                    prepared.append((i, self._prepare(docs[i])))
                except PaeeDataError as e:
                    if errors == "raise":
                        raise
                    results[i] = e
            encodings = self._encode([p for _, p in prepared])
            for (i, p), encoding in zip(prepared, encodings):
                try:
                    if isinstance(encoding, PaeeDataError):
                        raise encoding
                    results[i] = self._assemble(p, encoding, cut[i])
                except PaeeDataError as e:
                    if errors == "raise":
                        raise
                    results[i] = e
        return results  # type: ignore[return-value]  # every slot is filled above

    def _encode(self, prepared: list[_Prepared]) -> list[Encoding | DocumentError]:
        """The tokenizer over a chunk of documents; when it refuses the chunk (a word that is not text), each
        document is tried alone so that only the culprits fail, each with its own `DocumentError`."""
        words = [p.words for p in prepared]
        try:
            return self.tokenizer.encode_batch(words, is_pretokenized=True, add_special_tokens=False)
        except Exception:  # the Rust tokenizer raises TypeError / ValueError / its own exceptions on bad words
            pass
        out: list[Encoding | DocumentError] = []
        for p, doc_words in zip(prepared, words):
            try:
                out.append(self.tokenizer.encode(doc_words, is_pretokenized=True, add_special_tokens=False))
            except Exception as e:
                out.append(DocumentError(p.doc.index, p.doc.title, "sents",
                                         f"the tokenizer cannot read the words ({type(e).__name__}: {e})"))
        return out

    # --- step 1: validate, flatten mentions, insert markers -----------------------------------

    def _prepare(self, doc: Document) -> _Prepared:
        cfg = self.config
        n, num_sents = len(doc.entities), len(doc.sents)
        self._check_limit(doc, "vertexSet", f"has {n} entities", n, "max_entities")
        self._check_limit(doc, "sents", f"has {num_sents} sentences", num_sents, "max_sentences")
        entity_type = np.zeros(n, dtype=np.int64)
        ent, slot, sent, start, end = [], [], [], [], []
        for e, mentions in enumerate(doc.entities):
            if not mentions:
                raise DocumentError(doc.index, doc.title, f"vertexSet[{e}]", "entity has no mention")
            self._check_limit(doc, f"vertexSet[{e}]", f"entity has {len(mentions)} mentions", len(mentions), "max_mentions")
            type_id = self._type_ids.get(mentions[0].type)
            if type_id is None:
                raise DocumentError(
                    doc.index, doc.title, f"vertexSet[{e}][0].type",
                    f"unknown entity type {mentions[0].type!r}, expected one of {list(cfg.entity_types)} "
                    "(FeaturizerConfig.entity_types)",
                )
            entity_type[e] = type_id
            for m, mention in enumerate(mentions):
                ent.append(e)
                slot.append(m)
                sent.append(mention.sent_id)
                start.append(mention.start)
                end.append(mention.end)
        mention_entity = np.asarray(ent, dtype=np.int64)
        mention_slot = np.asarray(slot, dtype=np.int64)
        mention_sent = np.asarray(sent, dtype=np.int64)
        mention_start = np.asarray(start, dtype=np.int64)
        mention_end = np.asarray(end, dtype=np.int64)

        sent_len = np.fromiter((len(s) for s in doc.sents), dtype=np.int64, count=num_sents)
        sent_offset = np.zeros(num_sents + 1, dtype=np.int64)
        np.cumsum(sent_len, out=sent_offset[1:])
        # Documents built in code may skip the reader's validation: check spans once, vectorised.
        in_doc = (mention_sent >= 0) & (mention_sent < num_sents)
        bad = ~in_doc | (mention_start < 0) | (mention_end <= mention_start)
        bad[in_doc] |= mention_end[in_doc] > sent_len[mention_sent[in_doc]]
        if bad.any():
            k = int(np.argmax(bad))
            raise DocumentError(
                doc.index, doc.title, f"vertexSet[{mention_entity[k]}][{mention_slot[k]}].pos",
                f"span [{mention_start[k]}, {mention_end[k]}) in sentence {mention_sent[k]} is outside the "
                f"document's {num_sents} sentences or empty",
            )

        # Marker words: before each start word, after each last word (shared when positions coincide).
        num_words = int(sent_offset[-1])
        first_word = sent_offset[mention_sent] + mention_start
        last_word = sent_offset[mention_sent] + mention_end - 1
        has_start = np.zeros(num_words, dtype=np.int64)
        has_end = np.zeros(num_words, dtype=np.int64)
        has_start[first_word] = 1
        has_end[last_word] = 1
        # New position of word i = i + start markers at words <= i + end markers after words < i.
        word_pos = np.arange(num_words) + np.cumsum(has_start) + np.cumsum(has_end) - has_end
        total = num_words + int(has_start.sum()) + int(has_end.sum())
        marked = np.full(total, cfg.marker, dtype=object)
        marked[word_pos] = [w for s in doc.sents for w in s]

        # A sentence starts at its first word's start marker (if any) and ends where the next begins.
        sent_begin = np.append(word_pos - has_start, total)[sent_offset]  # [num_sents + 1]
        sent_words = np.stack([sent_begin[:-1], sent_begin[1:]], axis=1)

        return _Prepared(
            doc=doc,
            words=marked.tolist(),
            mention_entity=mention_entity,
            mention_slot=mention_slot,
            mention_sent=mention_sent,
            start_marker_word=word_pos[first_word] - 1,
            end_marker_word=word_pos[last_word] + 1,
            sent_words=sent_words,
            entity_type=entity_type,
            facts=self._facts(doc),
            evidence=self._evidence(doc),
        )

    def _check_limit(self, doc: Document, field: str, what: str, count: int, limit: str) -> None:
        """`LimitError` when ``count`` exceeds the configuration's ``limit`` (a size set when the model is trained)."""
        value = getattr(self.config, limit)
        if count > value:
            option = "--" + limit.replace("_", "-")
            raise LimitError(doc.index, doc.title, field,
                             f"{what}, more than {limit}={value} ({LIMIT_SET_AT_TRAINING.format(option=option)})")

    def _facts(self, doc: Document) -> np.ndarray:
        if self.relations is None or not doc.facts:
            return np.zeros((0, 3), dtype=np.int64)
        n = len(doc.entities)
        rows = []
        for k, fact in enumerate(doc.facts):
            if fact.relation not in self.relations:
                raise DocumentError(
                    doc.index, doc.title, f"labels[{k}].r",
                    f"relation {fact.relation!r} is not in the relation vocabulary ({len(self.relations)} classes)",
                )
            r = self.relations.index(fact.relation)
            if r == 0:
                raise DocumentError(
                    doc.index, doc.title, f"labels[{k}].r",
                    f"relation {fact.relation!r} is the no-relation class and cannot label a fact",
                )
            if not (0 <= fact.head < n and 0 <= fact.tail < n):
                raise DocumentError(
                    doc.index, doc.title, f"labels[{k}]",
                    f"head {fact.head} / tail {fact.tail} outside the document's {n} entities",
                )
            rows.append((fact.head, fact.tail, r))
        return np.asarray(rows, dtype=np.int64).reshape(-1, 3)

    def _evidence(self, doc: Document) -> np.ndarray:
        """(head, tail, sentence) rows; the reader has checked the ids, sentences past S have no slot."""
        if self.relations is None:  # unlabelled use, as for `facts`
            return np.zeros((0, 3), dtype=np.int64)
        limit = self.config.max_sentences
        rows = [(fact.head, fact.tail, sent) for fact in doc.facts for sent in fact.evidence if sent < limit]
        return np.asarray(rows, dtype=np.int64).reshape(-1, 3)

    # --- step 2: wordpiece positions, limits, padding -----------------------------------------

    def _assemble(self, p: _Prepared, encoding: Encoding, truncate: bool) -> DocFeatures:
        cfg, spec, doc = self.config, self.spec, p.doc
        N, M, S = cfg.max_entities, cfg.max_mentions, cfg.max_sentences
        content = np.asarray(encoding.ids, dtype=np.int64)
        # Without special tokens every wordpiece has a word id; they never decrease along the sequence.
        word_ids = np.asarray([-1 if w is None else w for w in encoding.word_ids], dtype=np.int64)
        prefix = len(spec.start_tokens)

        def token_of(marked_word: np.ndarray) -> np.ndarray:
            # first wordpiece of a marked word (a word that yields no wordpiece maps to the next one)
            return prefix + np.searchsorted(word_ids, marked_word, side="left")

        mention_tok = token_of(p.start_marker_word)
        end_marker_tok = token_of(p.end_marker_word)
        sent_span = token_of(p.sent_words)  # [num_sents, 2]

        length = prefix + len(content) + len(spec.suffix_tokens)
        kept = np.ones(len(mention_tok), dtype=bool)
        lost: list[tuple[int, int]] = []
        warnings: list[str] = []
        if length > cfg.max_length:
            if not truncate:
                raise LimitError(doc.index, doc.title, "sents", self._length_problem(length))
            budget = cfg.max_length - prefix - len(spec.suffix_tokens)
            content = content[:budget]
            cut = prefix + budget
            # A mention survives only if its text and both markers fit.
            kept = end_marker_tok + len(spec.marker_ids) <= cut
            sent_span = np.minimum(sent_span, cut)
            lost = [(int(e), int(m)) for e, m in zip(p.mention_entity[~kept], p.mention_slot[~kept])]
            warnings = [f"truncated from {length} to max_length={cfg.max_length} wordpieces (truncate was asked for); "
                        f"{len(lost)} mention(s) lost"]
            warnings += [f"lost entity {e} mention {m} ({doc.entities[e][m].name!r}, sentence {doc.entities[e][m].sent_id})"
                         for e, m in lost]
            logger.warning("%s: %s", doc.where, "; ".join(warnings))
        input_ids = np.concatenate(
            [np.asarray(spec.start_tokens, dtype=np.int64), content, np.asarray(spec.suffix_tokens, dtype=np.int64)]
        )

        n, num_sents = len(doc.entities), len(doc.sents)
        ent, slot = p.mention_entity[kept], p.mention_slot[kept]
        mention_pos = np.full((N, M), INDEX_PAD, dtype=np.int64)
        mention_mask = np.zeros((N, M), dtype=np.float32)
        mention_pos[ent, slot] = mention_tok[kept]
        mention_mask[ent, slot] = 1.0

        entity_type = np.full(N, INDEX_PAD, dtype=np.int64)
        entity_type[:n] = p.entity_type
        entity_mask = np.zeros(N, dtype=np.float32)
        entity_mask[:n] = 1.0

        sent_span_padded = np.full((S, 2), INDEX_PAD, dtype=np.int64)
        sent_span_padded[:num_sents] = sent_span
        sent_mask = np.zeros(S, dtype=np.float32)
        sent_mask[:num_sents] = sent_span[:, 1] > sent_span[:, 0]

        # same_sent via the entity x sentence incidence matrix of kept mentions.
        incidence = np.zeros((N, S), dtype=np.int64)
        incidence[ent, p.mention_sent[kept]] = 1
        same_sent = (incidence @ incidence.T > 0).astype(np.int64)

        return DocFeatures(
            input_ids=input_ids,
            mention_pos=mention_pos,
            mention_mask=mention_mask,
            entity_type=entity_type,
            entity_mask=entity_mask,
            sent_span=sent_span_padded,
            sent_mask=sent_mask,
            same_sent=same_sent,
            num_entities=n,
            facts=p.facts,
            evidence=p.evidence,
            title=doc.title,
            index=doc.index,
            lost_mentions=lost,
            warnings=warnings,
            candidate_pairs=self._candidate_pairs(p.entity_type),
        )

    def _candidate_pairs(self, entity_type: np.ndarray) -> np.ndarray | None:
        """Per ordered pair (`ordered_pairs` order), whether its types are a candidate (None: no constraint)."""
        if self._candidates is None:
            return None
        pairs = ordered_pairs(len(entity_type))
        return self._candidates[entity_type[pairs[:, 0]], entity_type[pairs[:, 1]]]

    def _length_problem(self, length: int) -> str:
        limit = self.config.max_length
        remedy = ("or ask to cut it: --truncate on a command, \"options\": {\"truncate\": true} in a served request "
                  "(the lost mentions are reported)")
        if limit < MAX_SUPPORTED_LENGTH:
            remedy = f"raise the limit with --max-length (at most {MAX_SUPPORTED_LENGTH}), " + remedy
        return f"has {length} wordpieces with entity markers and special tokens, more than max_length={limit} ({remedy})"


# --- batching -----------------------------------------------------------------------------------


def collate(
    features: Sequence[DocFeatures],
    pad_id: int,
    num_relations: int | None = None,
    pad_to_multiple: int = 8,
    max_length: int = MAX_SUPPORTED_LENGTH,
    length: int | None = None,
) -> dict[str, np.ndarray]:
    """Stack documents into the batch dictionary of the tensor contract (`paee.runtime.contract`).

    ``L`` is the batch's longest document rounded up to ``pad_to_multiple``, never above
    ``max_length``; or exactly ``length`` when given (Triton's length buckets). ``P`` is the most ordered
    pairs of a document in the batch (`ordered_pairs`; at least `MIN_PAIRS`). With ``num_relations``
    (R, NA class included) the training targets are added: per pair ``labels`` [B, P, R], ``has_relation``
    [B, P] and ``evidence`` [B, P, S] (1 on the evidence sentences of the pair's facts; used by the optional
    evidence loss), per entity ``subj_roles`` and ``obj_roles`` [B, N, R]. ``title`` holds each document's
    UTF-8 title ([B, 1] bytes).
    """
    if not features:
        raise PaeeDataError("collate needs at least one document")
    if pad_to_multiple < 1:
        raise PaeeDataError(f"pad_to_multiple must be >= 1, got {pad_to_multiple}")
    N, M = features[0].mention_pos.shape
    S = features[0].sent_span.shape[0]
    for f in features:
        if f.mention_pos.shape != (N, M) or f.sent_span.shape != (S, 2):
            raise PaeeDataError(
                f"cannot batch documents featurized with different shapes: {describe(f)} has "
                f"N, M, S = {(*f.mention_pos.shape, f.sent_span.shape[0])}, the first has {(N, M, S)}"
            )
    B = len(features)
    longest = max(f.num_tokens for f in features)
    if longest > max_length:
        raise PaeeDataError(f"a document has {longest} wordpieces, more than max_length={max_length}")
    L = min(-(-longest // pad_to_multiple) * pad_to_multiple, max_length)
    if length is not None:
        if not longest <= length:
            raise PaeeDataError(f"cannot pad a batch whose longest document has {longest} wordpieces to {length}")
        L = length

    input_ids = np.full((B, L), pad_id, dtype=np.int64)
    attention_mask = np.zeros((B, L), dtype=np.int64)
    for b, f in enumerate(features):
        input_ids[b, : f.num_tokens] = f.input_ids
        attention_mask[b, : f.num_tokens] = 1
    pair_index, pair_mask = pair_slots([f.num_entities for f in features])
    P = pair_index.shape[1]
    for b, f in enumerate(features):  # type-pair constraint: other pairs are listed, but masked
        if f.candidate_pairs is not None:
            pair_mask[b, : f.num_pairs] *= f.candidate_pairs
    batch = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "mention_pos": np.stack([f.mention_pos for f in features]),
        "mention_mask": np.stack([f.mention_mask for f in features]),
        "entity_type": np.stack([f.entity_type for f in features]),
        "entity_mask": np.stack([f.entity_mask for f in features]),
        "sent_span": np.stack([f.sent_span for f in features]),
        "sent_mask": np.stack([f.sent_mask for f in features]),
        "same_sent": np.stack([f.same_sent for f in features]),
        "pair_index": pair_index,  # [B, P, 2]
        "pair_mask": pair_mask,  # [B, P]
        "title": np.asarray([[f.title.encode("utf-8")] for f in features], dtype=np.object_),  # [B, 1]
        "warnings": np.asarray([[json.dumps(f.warnings).encode("utf-8")] for f in features], dtype=np.object_),  # [B, 1]
    }
    if num_relations is not None:
        batch.update(_targets(features, N, S, P, num_relations))
    return batch


def ordered_pairs(n: int) -> np.ndarray:
    """The n (n - 1) ordered pairs (s, o), s != o, of n entities, row-major: [n(n-1), 2] (`pair_index`'s order)."""
    subject, obj = np.divmod(np.arange(n * n, dtype=np.int64), n)
    keep = subject != obj
    return np.stack([subject[keep], obj[keep]], axis=1)


def pair_slots(entity_counts: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """``pair_index`` [B, P, 2] and ``pair_mask`` [B, P] of documents with these entity counts: each
    document's `ordered_pairs` first, (0, 0) padding up to the batch's most (at least `MIN_PAIRS`)."""
    P = max(MIN_PAIRS, *(n * (n - 1) for n in entity_counts))
    pair_index = np.zeros((len(entity_counts), P, 2), dtype=np.int64)
    pair_mask = np.zeros((len(entity_counts), P), dtype=np.float32)
    for b, n in enumerate(entity_counts):
        pair_index[b, : n * (n - 1)] = ordered_pairs(n)
        pair_mask[b, : n * (n - 1)] = 1.0
    return pair_index, pair_mask


def pair_position(head: Any, tail: Any, n: Any) -> Any:
    """Row of the pair (head, tail), head != tail, in `ordered_pairs` (n): its n - 1 predecessors per
    earlier head, then its tail, skipping the head itself. Ints, numpy arrays or torch tensors (the head
    finds its map's cells in the pair rows with it)."""
    return head * (n - 1) + tail - (tail > head) * 1  # * 1: a bool -> int on numpy and torch alike


def _targets(features: Sequence[DocFeatures], N: int, S: int, P: int, R: int) -> dict[str, np.ndarray]:
    """Training targets per pair (class 0 is the NA / threshold class) and per entity (cross matching roles)."""
    if R < 2:
        raise PaeeDataError(f"num_relations must count NA and at least one relation, got {R}")
    B = len(features)
    labels = np.zeros((B, P, R), dtype=np.float32)
    evidence = np.zeros((B, P, S), dtype=np.float32)
    subj = np.zeros((B, N, R - 1), dtype=bool)  # s is the head of some fact of class r
    obj = np.zeros((B, N, R - 1), dtype=bool)  # o is the tail of some fact of class r
    pair_mask = np.zeros((B, P), dtype=bool)
    valid = np.zeros((B, N), dtype=bool)
    for b, f in enumerate(features):
        n = f.num_entities
        pair_mask[b, : f.num_pairs] = True
        valid[b, :n] = True
        if len(f.facts):
            h, t, r = f.facts.T
            if r.min() < 1 or r.max() >= R:
                raise PaeeDataError(f"{describe(f)}: relation class outside 1..{R - 1}")
            labels[b, pair_position(h, t, n), r] = 1.0
            subj[b, h, r - 1] = True
            obj[b, t, r - 1] = True
        if len(f.evidence):
            h, t, sent = f.evidence.T
            evidence[b, pair_position(h, t, n), sent] = 1.0
    has_relation = labels[..., 1:].any(axis=-1)  # [B, P]
    labels[..., 0] = pair_mask & ~has_relation

    def roles(x: np.ndarray) -> np.ndarray:
        none = valid & ~x.any(axis=-1)  # column 0: a real entity with no such role
        return np.concatenate([none[..., None], x], axis=-1).astype(np.float32)

    return {
        "labels": labels,
        "has_relation": has_relation.astype(np.float32),
        "subj_roles": roles(subj),
        "obj_roles": roles(obj),
        "evidence": evidence,
    }


def describe(features: DocFeatures) -> str:
    """How messages name the document behind some features."""
    return describe_document(features.index, features.title)
