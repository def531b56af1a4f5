"""Logits -> relation triples, and triples -> DocRED ``result.json`` records.

The model emits ``logits[N, N, R]`` per document, class 0 being the learned threshold (ATLOP's TH
class). A relation r > 0 is predicted for the ordered pair (s, o) when ``logit_r > logit_0``; its score
is the margin ``logit_r - logit_0``. Only the top-left n x n block is real (the rest is padding or
sliding-window filling), and s == o is never a pair. Numpy only: this runs in Triton's python backend.
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
RESULT_FIELDS = ("title", "h_idx", "t_idx", "r")


@dataclass(frozen=True)
class DecodeConfig:
    """How logits become triples, the same everywhere (PyTorch, ONNX pipeline, Triton, benchmarks).

    Attributes:
        gate_threshold: pairs with ``pair_prob < gate_threshold`` predict nothing (None: no gating); a
            checkpoint trained with ``--gate-pairs`` sets it to its potential-pair threshold lambda.
        top_k: at most the k highest-scoring relations above threshold per pair (None: all).
    """

    gate_threshold: float | None = None
    top_k: int | None = None

    def __post_init__(self) -> None:
        if self.gate_threshold is not None and not 0.0 <= self.gate_threshold <= 1.0:
            raise PaeeDataError(f"gate_threshold must be a probability in [0, 1], got {self.gate_threshold!r}")
        if self.top_k is not None and (isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1):
            raise PaeeDataError(f"top_k must be an integer >= 1, got {self.top_k!r}")

    def to_json(self) -> dict[str, Any]:
        return {"gate_threshold": self.gate_threshold, "top_k": self.top_k}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> DecodeConfig:
        return cls(obj.get("gate_threshold"), obj.get("top_k"))


class Triple(NamedTuple):
    """A predicted relation: ``relation`` (class index, >= 1) holds from entity ``head`` to ``tail``."""

    head: int
    tail: int
    relation: int
    score: float  # logit_r - logit_TH, > 0


def decode(
    logits: np.ndarray,
    num_entities: int | Sequence[int] | np.ndarray,
    pair_prob: np.ndarray | None = None,
    config: DecodeConfig | None = None,
) -> list[Triple] | list[list[Triple]]:
    """Triples of one document (``logits`` [N, N, R]) or of a batch ([B, N, N, R]).

    Args:
        logits: relation logits, class 0 = threshold class.
        num_entities: n (an int for one document, one per document for a batch).
        pair_prob: Potential Pair Prediction probabilities [N, N] / [B, N, N]; needed for gating.
        config: gating and top-k (default: neither).

    Returns:
        triples ordered by (head, tail, relation); a list per document for a batch.
    """
    logits = np.asarray(logits)
    config = config or DecodeConfig()
    gate_threshold, top_k = config.gate_threshold, config.top_k
    if gate_threshold is not None and pair_prob is None:
        raise PaeeDataError("gate_threshold needs pair_prob")
    if logits.ndim == 3:
        if not np.isscalar(num_entities) and np.ndim(num_entities) != 0:
            raise PaeeDataError("for one document's logits [N, N, R], num_entities must be an int")
        return _decode_one(logits, int(num_entities), pair_prob, gate_threshold, top_k)  # type: ignore[arg-type]
    if logits.ndim == 4:
        counts = np.asarray(num_entities).reshape(-1)
        if counts.shape[0] != logits.shape[0]:
            raise PaeeDataError(f"num_entities has {counts.shape[0]} values for a batch of {logits.shape[0]}")
        if pair_prob is not None and np.shape(pair_prob)[0] != logits.shape[0]:
            raise PaeeDataError(f"pair_prob has {np.shape(pair_prob)[0]} documents for a batch of {logits.shape[0]}")
        return [
            _decode_one(logits[b], int(counts[b]), None if pair_prob is None else pair_prob[b], gate_threshold, top_k)
            for b in range(logits.shape[0])
        ]
    raise PaeeDataError(f"logits must be [N, N, R] or [B, N, N, R], got shape {logits.shape}")


def _decode_one(
    logits: np.ndarray, n: int, pair_prob: np.ndarray | None, gate_threshold: float | None, top_k: int | None
) -> list[Triple]:
    N, N2, R = logits.shape
    if N != N2 or R < 2:
        raise PaeeDataError(f"logits must be [N, N, R] with R >= 2, got shape {logits.shape}")
    if not 0 <= n <= N:
        raise PaeeDataError(f"num_entities={n} outside 0..{N}")
    block = logits[:n, :n].astype(np.float64)  # [n, n, R]; the rest is padding / filling
    margin = block[..., 1:] - block[..., THRESHOLD_CLASS : THRESHOLD_CLASS + 1]  # [n, n, R-1]
    keep = margin > 0
    keep &= ~np.eye(n, dtype=bool)[..., None]  # no self pairs
    if gate_threshold is not None:
        prob = np.asarray(pair_prob)
        if prob.shape != (N, N):
            raise PaeeDataError(f"pair_prob must be [{N}, {N}], got shape {prob.shape}")
        keep &= (prob[:n, :n] >= gate_threshold)[..., None]
    if top_k is not None and top_k < R - 1:
        order = np.argsort(-margin, axis=-1, kind="stable")  # [n, n, R-1], best first
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.broadcast_to(np.arange(R - 1), order.shape), axis=-1)
        keep &= rank < top_k
    heads, tails, rels = np.nonzero(keep)
    scores = margin[heads, tails, rels]
    return [
        Triple(int(h), int(t), int(r) + 1, float(s))  # +1: margin's axis skips class 0
        for h, t, r, s in zip(heads, tails, rels, scores)
    ]


def triple_record(triple: Triple, relations: RelationVocab, title: str | None = None) -> dict[str, Any]:
    """The one record form of a triple: ``{title?, h_idx, t_idx, r, r_name, score}`` (served as it is;
    `select_fields` trims it to the official ``result.json`` fields)."""
    if not 0 < triple.relation < len(relations):
        raise PaeeDataError(
            f"relation class {triple.relation} outside 1..{len(relations) - 1} of the relation vocabulary"
        )
    record: dict[str, Any] = {} if title is None else {"title": title}
    record.update(h_idx=int(triple.head), t_idx=int(triple.tail), r=relations.ids[triple.relation],
                  r_name=relations.name(triple.relation), score=float(triple.score))
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
    """Official DocRED ``result.json`` records ``{"title", "h_idx", "t_idx", "r"}`` of one document.

    ``with_names`` adds ``"r_name"`` (readable relation name), ``with_scores`` adds ``"score"``.
    """
    return [select_fields(triple_record(t, relations, title), with_names, with_scores) for t in triples]
