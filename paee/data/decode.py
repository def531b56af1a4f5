"""Logits -> relation triples, and triples -> DocRED ``result.json`` records.

The model emits ``logits[P, R]`` per document, one row per ordered entity pair (``pair_index[P, 2]``: the
pair's subject and object), class 0 being the learned threshold (ATLOP's TH class). A relation r > 0 is
predicted for the pair (s, o) when ``logit_r > logit_0``; its score is the margin ``logit_r - logit_0``. Its
evidence is the sentences whose share of the pair's attention (``evidence_dist[P, S]``, the head's) exceeds
``DecodeConfig.evidence_threshold``: the official ``evidence`` field of ``result.json``.
Numpy only: this runs in Triton's python backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from paee.data.errors import PaeeDataError
from paee.data.relations import RelationVocab

#: Index of the threshold / no-relation class in the logits' last axis.
THRESHOLD_CLASS = 0
#: Fields of an official DocRED ``result.json`` record.
RESULT_FIELDS = ("title", "h_idx", "t_idx", "r", "evidence")
#: A sentence is evidence of a pair's triples when its share of the pair's attention exceeds this (DREEAM's
#: threshold, Ma et al. 2023; the README's "Evidence" section has the sweep on Re-DocRED).
DEFAULT_EVIDENCE_THRESHOLD = 0.2


@dataclass(frozen=True)
class DecodeConfig:
    """How logits become triples, the same everywhere (PyTorch, ONNX pipeline, Triton, benchmarks).

    Attributes:
        gate_threshold: pairs with ``pair_prob < gate_threshold`` predict nothing (None: no gating); a
            checkpoint trained with ``--gate-pairs`` sets it to its potential-pair threshold lambda.
        top_k: at most the k highest-scoring relations above threshold per pair (None: all).
        evidence_threshold: a triple's evidence is the sentences whose share of its pair's attention
            exceeds this (in [0, 1)).
    """

    gate_threshold: float | None = None
    top_k: int | None = None
    evidence_threshold: float = DEFAULT_EVIDENCE_THRESHOLD

    def __post_init__(self) -> None:
        if self.gate_threshold is not None and not 0.0 <= self.gate_threshold <= 1.0:
            raise PaeeDataError(f"gate_threshold must be a probability in [0, 1], got {self.gate_threshold!r}")
        if self.top_k is not None and (isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1):
            raise PaeeDataError(f"top_k must be an integer >= 1, got {self.top_k!r}")
        threshold = self.evidence_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold < 1.0:
            raise PaeeDataError(f"evidence_threshold must be a share in [0, 1), got {threshold!r}")

    def to_json(self) -> dict[str, Any]:
        return {"gate_threshold": self.gate_threshold, "top_k": self.top_k, "evidence_threshold": self.evidence_threshold}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> DecodeConfig:
        return cls(obj.get("gate_threshold"), obj.get("top_k"), obj.get("evidence_threshold", DEFAULT_EVIDENCE_THRESHOLD))


class Triple(NamedTuple):
    """A predicted relation: ``relation`` (class index, >= 1) holds from entity ``head`` to ``tail``."""

    head: int
    tail: int
    relation: int
    score: float  # logit_r - logit_TH, > 0
    evidence: tuple[int, ...] | None = None  # supporting sentence ids, ascending (None: not computed)


def decode(
    logits: np.ndarray,
    pair_index: np.ndarray,
    pair_prob: np.ndarray | None = None,
    config: DecodeConfig | None = None,
    evidence_dist: np.ndarray | None = None,
) -> list[Triple]:
    """Triples of one document, ordered by (head, tail, relation).

    Args:
        logits: [P, R] relation logits of the document's pairs, class 0 = threshold class.
        pair_index: [P, 2] the (subject, object) entity of each row; s != o.
        pair_prob: [P] Potential Pair Prediction probabilities; needed for gating.
        config: gating, top-k and the evidence threshold (default: no gating, no top-k).
        evidence_dist: [P, S] each sentence's share of the pair's attention; the triples of a pair get the
            sentences above ``config.evidence_threshold`` as evidence (None: triples without evidence).
    """
    logits = np.asarray(logits)
    pair_index = np.asarray(pair_index)
    config = config or DecodeConfig()
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise PaeeDataError(f"logits must be [P, R] with R >= 2, got shape {logits.shape}")
    if pair_index.shape != (logits.shape[0], 2):
        raise PaeeDataError(f"pair_index must be [{logits.shape[0]}, 2] like the logits' pairs, got {pair_index.shape}")
    R = logits.shape[1]
    margin = logits[:, 1:].astype(np.float64) - logits[:, THRESHOLD_CLASS : THRESHOLD_CLASS + 1]  # [P, R-1]
    keep = margin > 0
    if config.gate_threshold is not None:
        if pair_prob is None or np.shape(pair_prob) != (logits.shape[0],):
            raise PaeeDataError(f"gating needs pair_prob [{logits.shape[0]}], got {None if pair_prob is None else np.shape(pair_prob)}")
        keep &= (np.asarray(pair_prob) >= config.gate_threshold)[:, None]
    if config.top_k is not None and config.top_k < R - 1:
        order = np.argsort(-margin, axis=-1, kind="stable")  # [P, R-1], best first
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.broadcast_to(np.arange(R - 1), order.shape), axis=-1)
        keep &= rank < config.top_k
    evidence: list[tuple[int, ...] | None] = [None] * logits.shape[0]
    if evidence_dist is not None:
        evidence_dist = np.asarray(evidence_dist)
        if evidence_dist.ndim != 2 or evidence_dist.shape[0] != logits.shape[0]:
            raise PaeeDataError(f"evidence_dist must be [{logits.shape[0]}, S] like the logits' pairs, got {evidence_dist.shape}")
        supported = evidence_dist > config.evidence_threshold  # [P, S]
        evidence = [tuple(int(s) for s in np.flatnonzero(row)) for row in supported]
    rows, rels = np.nonzero(keep)
    found = [
        Triple(int(pair_index[p, 0]), int(pair_index[p, 1]), int(r) + 1, float(margin[p, r]), evidence[p])  # +1: skips class 0
        for p, r in zip(rows, rels)
    ]
    return sorted(found, key=lambda t: (t.head, t.tail, t.relation))


def triple_record(triple: Triple, relations: RelationVocab, title: str | None = None) -> dict[str, Any]:
    """The one record form of a triple: ``{title?, h_idx, t_idx, r, r_name, score, evidence?}`` (served as it is;
    `select_fields` trims it to the official ``result.json`` fields)."""
    if not 0 < triple.relation < len(relations):
        raise PaeeDataError(
            f"relation class {triple.relation} outside 1..{len(relations) - 1} of the relation vocabulary"
        )
    record: dict[str, Any] = {} if title is None else {"title": title}
    record.update(h_idx=int(triple.head), t_idx=int(triple.tail), r=relations.ids[triple.relation],
                  r_name=relations.name(triple.relation), score=float(triple.score))
    if triple.evidence is not None:
        record["evidence"] = list(triple.evidence)
    return record


def select_fields(record: Mapping[str, Any], with_names: bool = False, with_scores: bool = False) -> dict[str, Any]:
    """A record with the official ``result.json`` fields, plus ``r_name`` / ``score`` when asked."""
    wanted = RESULT_FIELDS + (("r_name",) if with_names else ()) + (("score",) if with_scores else ())
    return {key: record[key] for key in wanted if key in record}


def to_result_records(
    title: str,
    triples: Sequence[Triple],
    relations: RelationVocab,
    with_names: bool = False,
    with_scores: bool = False,
) -> list[dict[str, Any]]:
    """Official DocRED ``result.json`` records ``{"title", "h_idx", "t_idx", "r", "evidence"}`` of one document
    (``evidence`` where the triples carry it).

    ``with_names`` adds ``"r_name"`` (readable relation name), ``with_scores`` adds ``"score"``.
    """
    return [select_fields(triple_record(t, relations, title), with_names, with_scores) for t in triples]
