"""Decoding logits to triples on hand-built logits; DocRED result records."""

from __future__ import annotations

import numpy as np
import pytest

from paee.data.decode import DecodeConfig, Triple, decode, to_result_records
from paee.data.errors import PaeeDataError
from paee.data.relations import RelationVocab

N, R = 5, 4  # R includes the threshold class 0


def base_logits() -> np.ndarray:
    """Everything below threshold: class 0 at 0, the relations at -1."""
    logits = np.full((N, N, R), -1.0, dtype=np.float32)
    logits[..., 0] = 0.0
    return logits


def test_threshold_class_decides() -> None:
    logits = base_logits()
    logits[0, 1, 2] = 2.5  # above TH by 2.5
    logits[0, 1, 3] = 0.5
    logits[1, 0, 1] = -0.1  # below TH: nothing
    logits[2, 0, 0] = 3.0
    logits[2, 0, 1] = 2.0  # under a raised threshold: nothing
    assert decode(logits, num_entities=3) == [Triple(0, 1, 2, 2.5), Triple(0, 1, 3, 0.5)]


def test_diagonal_and_padding_are_ignored() -> None:
    logits = base_logits()
    logits[1, 1, 1] = 5.0  # self pair
    logits[0, 3, 1] = 5.0  # entity 3 is padding when n = 3
    logits[4, 0, 2] = 5.0  # padding row
    logits[2, 1, 3] = 1.0
    assert decode(logits, num_entities=3) == [Triple(2, 1, 3, 1.0)]
    assert {(t.head, t.tail) for t in decode(logits, num_entities=5)} == {(0, 3), (4, 0), (2, 1)}
    assert decode(logits, num_entities=0) == []


def test_top_k_keeps_the_best_above_threshold() -> None:
    logits = base_logits()
    logits[0, 1, 1:] = [1.0, 3.0, 2.0]
    logits[1, 0, 1:] = [0.5, -2.0, -3.0]  # one above threshold: top 2 keeps just it
    assert decode(logits, 2, config=DecodeConfig(top_k=1)) == [Triple(0, 1, 2, 3.0), Triple(1, 0, 1, 0.5)]
    assert decode(logits, 2, config=DecodeConfig(top_k=2)) == [Triple(0, 1, 2, 3.0), Triple(0, 1, 3, 2.0), Triple(1, 0, 1, 0.5)]
    assert len(decode(logits, 2, config=DecodeConfig(top_k=10))) == 4
    with pytest.raises(PaeeDataError, match="top_k"):
        DecodeConfig(top_k=0)


def test_gating_by_pair_probability() -> None:
    logits = base_logits()
    logits[0, 1, 1] = 1.0
    logits[1, 2, 2] = 1.0
    prob = np.zeros((N, N), dtype=np.float32)
    prob[0, 1] = 0.9
    prob[1, 2] = 0.2
    assert decode(logits, 3, pair_prob=prob, config=DecodeConfig(gate_threshold=0.3)) == [Triple(0, 1, 1, 1.0)]
    assert len(decode(logits, 3, pair_prob=prob)) == 2  # no threshold: no gating
    with pytest.raises(PaeeDataError, match="needs pair_prob"):
        decode(logits, 3, config=DecodeConfig(gate_threshold=0.3))


def test_batch() -> None:
    a, b = base_logits(), base_logits()
    a[0, 1, 1] = 1.0
    b[3, 4, 3] = 2.0
    b[0, 1, 1] = 1.0
    prob = np.ones((2, N, N), dtype=np.float32)
    prob[1, 0, 1] = 0.0
    out = decode(np.stack([a, b]), np.array([2, 5]), pair_prob=prob, config=DecodeConfig(gate_threshold=0.5))
    assert out == [[Triple(0, 1, 1, 1.0)], [Triple(3, 4, 3, 2.0)]]
    with pytest.raises(PaeeDataError, match="num_entities has 1 values"):
        decode(np.stack([a, b]), [2])


def test_bad_shapes() -> None:
    with pytest.raises(PaeeDataError, match="logits must be"):
        decode(np.zeros((N, R)), 2)
    with pytest.raises(PaeeDataError, match="num_entities=6"):
        decode(base_logits(), 6)
    with pytest.raises(PaeeDataError, match="pair_prob must be"):
        decode(base_logits(), 2, pair_prob=np.zeros((2, 2)), config=DecodeConfig(gate_threshold=0.1))


def test_result_records() -> None:
    relations = RelationVocab.from_ids(["P17", "P131", "P27"], names={"P17": "country"})  # Na, P131, P17, P27
    triples = [Triple(0, 1, 2, 1.5), Triple(2, 0, 1, 0.25)]
    assert to_result_records("T", triples, relations) == [
        {"title": "T", "h_idx": 0, "t_idx": 1, "r": "P17"},
        {"title": "T", "h_idx": 2, "t_idx": 0, "r": "P131"},
    ]
    rich = to_result_records("T", triples, relations, with_names=True, with_scores=True)
    assert rich[0] == {"title": "T", "h_idx": 0, "t_idx": 1, "r": "P17", "r_name": "country", "score": 1.5}
    assert rich[1]["r_name"] == "P131"  # no name known: the id
    with pytest.raises(PaeeDataError, match="relation class 7"):
        to_result_records("T", [Triple(0, 1, 7, 1.0)], relations)
