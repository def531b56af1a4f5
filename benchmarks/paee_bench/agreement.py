"""Parity of a backend with PyTorch fp32 on the benchmark documents (the reference is the ``torch`` pass).

* ``max_abs_logit_diff`` / ``mean_abs_logit_diff``: over each document's real n x n x R block of logits
  (in-process backends; a server returns triples, not logits);
* ``max_abs_score_diff``: over triples both predict, the difference of their scores (logit_r - logit_TH);
  the one logit-level figure a server backend has;
* ``triples``: Jaccard of the (document, head, tail, relation) sets and the share of documents whose
  triples are identical (`paee_export.parity.triple_agreement`);
* ``pair_argmax_agreement``: share of ordered pairs whose best class, NA included, is the same
  (meaningful for random weights, whose triples are noise);
* ``f1`` / ``f1_change``: official DocRED F1 against the gold labels, where the documents have them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from paee.data.decode import Triple
from paee.data.relations import RelationVocab
from paee.data.schema import Document
from paee.evaluation.metrics import score_triples
from paee_export.parity import pair_argmax_agreement, triple_agreement


def served_triples(served: Sequence[Sequence[dict[str, Any]]], relations: RelationVocab) -> list[list[Triple]]:
    """The server's ``{h_idx, t_idx, r, score, evidence?}`` dicts as `Triple`s (relation ids -> class indices)."""
    return [[Triple(t["h_idx"], t["t_idx"], relations.index(t["r"]), float(t["score"]),
                    tuple(t["evidence"]) if "evidence" in t else None) for t in doc] for doc in served]


def f1_score(docs: Sequence[Document], triples: Sequence[Sequence[Triple]], relations: RelationVocab) -> float:
    return float(score_triples(docs, triples, relations).f1)


def _score_diff(reference: Sequence[Sequence[Triple]], other: Sequence[Sequence[Triple]]) -> float | None:
    diffs = []
    for ref_doc, got_doc in zip(reference, other):
        got = {(t.head, t.tail, t.relation): t.score for t in got_doc}
        diffs += [abs(t.score - got[(t.head, t.tail, t.relation)]) for t in ref_doc if (t.head, t.tail, t.relation) in got]
    return max(diffs) if diffs else None


def compare(docs: Sequence[Document], relations: RelationVocab, reference_triples: Sequence[Sequence[Triple]],
            reference_logits: Sequence[np.ndarray], triples: Sequence[Sequence[Triple]],
            logits: Sequence[np.ndarray] | None, reference_f1: float | None) -> dict[str, Any]:
    """The parity block of one backend (see the module docstring)."""
    result: dict[str, Any] = {"triples": triple_agreement(reference_triples, triples),
                              "max_abs_score_diff": _score_diff(reference_triples, triples)}
    if logits is not None:
        diffs = [np.abs(r.astype(np.float64) - g.astype(np.float64)) for r, g in zip(reference_logits, logits)]
        diffs = [d for d in diffs if d.size]
        result["max_abs_logit_diff"] = float(max(d.max() for d in diffs)) if diffs else 0.0
        result["mean_abs_logit_diff"] = float(sum(d.sum() for d in diffs) / sum(d.size for d in diffs)) if diffs else 0.0
        result["pair_argmax_agreement"] = pair_argmax_agreement(reference_logits, logits)
    if reference_f1 is not None:
        f1 = f1_score(docs, triples, relations)
        result["f1"] = f1
        result["f1_change"] = f1 - reference_f1
    return result


__all__ = ["compare", "f1_score", "served_triples"]
