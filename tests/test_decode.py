"""Decoding logits to triples on hand-built logits; DocRED result records."""

from __future__ import annotations

import numpy as np
import pytest

from paee.data.decode import DecodeConfig, Triple, decode, to_result_records
from paee.data.errors import PaeeDataError
from paee.data.featurizer import ordered_pairs
from paee.data.relations import RelationVocab

R = 4  # includes the threshold class 0


def base_logits(n: int) -> tuple[np.ndarray, np.ndarray, dict[tuple[int, int], int]]:
    """logits [n(n-1), R] of n entities with everything below threshold (class 0 at 0, relations at -1),
    the pairs' index [n(n-1), 2], and each pair's row."""
    pairs = ordered_pairs(n)
    logits = np.full((len(pairs), R), -1.0, dtype=np.float32)
    logits[:, 0] = 0.0
    return logits, pairs, {(int(s), int(o)): i for i, (s, o) in enumerate(pairs)}


def test_threshold_class_decides() -> None:
    logits, pairs, row = base_logits(3)
    logits[row[0, 1], 2] = 2.5  # above TH by 2.5
    logits[row[0, 1], 3] = 0.5
    logits[row[1, 0], 1] = -0.1  # below TH: nothing
    logits[row[2, 0], 0] = 3.0
    logits[row[2, 0], 1] = 2.0  # under a raised threshold: nothing
    assert decode(logits, pairs) == [Triple(0, 1, 2, 2.5), Triple(0, 1, 3, 0.5)]


def test_triples_name_the_rows_pair_and_come_sorted() -> None:
    logits, pairs, row = base_logits(5)
    logits[row[4, 0], 2] = 5.0
    logits[row[2, 1], 3] = 1.0
    logits[row[0, 3], 1] = 5.0
    assert decode(logits, pairs) == [Triple(0, 3, 1, 5.0), Triple(2, 1, 3, 1.0), Triple(4, 0, 2, 5.0)]
    # the rows are read through pair_index, whatever their order
    order = np.random.default_rng(0).permutation(len(pairs))
    assert decode(logits[order], pairs[order]) == decode(logits, pairs)
    assert decode(*base_logits(1)[:2]) == [] and decode(*base_logits(0)[:2]) == []


def test_top_k_keeps_the_best_above_threshold() -> None:
    logits, pairs, row = base_logits(2)
    logits[row[0, 1], 1:] = [1.0, 3.0, 2.0]
    logits[row[1, 0], 1:] = [0.5, -2.0, -3.0]  # one above threshold: top 2 keeps just it
    assert decode(logits, pairs, config=DecodeConfig(top_k=1)) == [Triple(0, 1, 2, 3.0), Triple(1, 0, 1, 0.5)]
    assert decode(logits, pairs, config=DecodeConfig(top_k=2)) == [Triple(0, 1, 2, 3.0), Triple(0, 1, 3, 2.0),
                                                                    Triple(1, 0, 1, 0.5)]
    assert len(decode(logits, pairs, config=DecodeConfig(top_k=10))) == 4
    with pytest.raises(PaeeDataError, match="top_k"):
        DecodeConfig(top_k=0)


def test_gating_by_pair_probability() -> None:
    logits, pairs, row = base_logits(3)
    logits[row[0, 1], 1] = 1.0
    logits[row[1, 2], 2] = 1.0
    prob = np.zeros(len(pairs), dtype=np.float32)
    prob[row[0, 1]] = 0.9
    prob[row[1, 2]] = 0.2
    assert decode(logits, pairs, pair_prob=prob, config=DecodeConfig(gate_threshold=0.3)) == [Triple(0, 1, 1, 1.0)]
    assert len(decode(logits, pairs, pair_prob=prob)) == 2  # no threshold: no gating
    with pytest.raises(PaeeDataError, match=r"gating needs pair_prob \[6\], got None"):
        decode(logits, pairs, config=DecodeConfig(gate_threshold=0.3))


def test_bad_shapes() -> None:
    logits, pairs, _ = base_logits(3)
    with pytest.raises(PaeeDataError, match="logits must be"):
        decode(logits[..., None], pairs)
    with pytest.raises(PaeeDataError, match=r"pair_index must be \[6, 2\]"):
        decode(logits, pairs[:4])
    with pytest.raises(PaeeDataError, match=r"gating needs pair_prob \[6\], got \(2, 2\)"):
        decode(logits, pairs, pair_prob=np.zeros((2, 2)), config=DecodeConfig(gate_threshold=0.1))


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


def test_evidence_sentences_above_the_threshold() -> None:
    # 3 entities, 6 pairs, S = 4 sentence slots. Pair (0, 1) shares [0.5, 0.3, 0.2, 0.0]: above 0.2 are sentences
    # 0 and 1 (0.2 itself does not pass); pair (2, 0) puts everything on sentence 3.
    logits, pairs, row = base_logits(3)
    logits[row[0, 1], 1] = 1.0
    logits[row[0, 1], 2] = 2.0  # two relations on one pair: the same evidence
    logits[row[2, 0], 3] = 0.5
    dist = np.zeros((len(pairs), 4), dtype=np.float32)
    dist[row[0, 1]] = [0.5, 0.3, 0.2, 0.0]
    dist[row[2, 0]] = [0.0, 0.0, 0.0, 1.0]
    assert decode(logits, pairs, evidence_dist=dist) == [
        Triple(0, 1, 1, 1.0, (0, 1)), Triple(0, 1, 2, 2.0, (0, 1)), Triple(2, 0, 3, 0.5, (3,))]
    lower = decode(logits, pairs, config=DecodeConfig(evidence_threshold=0.1), evidence_dist=dist)
    assert [t.evidence for t in lower] == [(0, 1, 2), (0, 1, 2), (3,)]
    higher = decode(logits, pairs, config=DecodeConfig(evidence_threshold=0.6), evidence_dist=dist)
    assert [t.evidence for t in higher] == [(), (), (3,)]  # a triple may have no sentence above it: empty evidence
    assert decode(logits, pairs)[0].evidence is None  # no distribution given: not computed
    with pytest.raises(PaeeDataError, match=r"evidence_dist must be \[6, S\]"):
        decode(logits, pairs, evidence_dist=dist[:2])
    relations = RelationVocab.from_ids(["P1", "P2", "P3"])
    records = to_result_records("T", decode(logits, pairs, evidence_dist=dist), relations)
    assert records[0] == {"title": "T", "h_idx": 0, "t_idx": 1, "r": "P1", "evidence": [0, 1]}
    assert "evidence" not in to_result_records("T", decode(logits, pairs), relations)[0]


@pytest.mark.parametrize("threshold", [-0.1, 1.0, 1.5, True, "0.2"])
def test_evidence_threshold_is_checked(threshold) -> None:
    with pytest.raises(PaeeDataError, match="evidence_threshold must be a share in \\[0, 1\\)"):
        DecodeConfig(evidence_threshold=threshold)


def test_decode_config_json_keeps_the_threshold() -> None:
    config = DecodeConfig(gate_threshold=0.3, top_k=2, evidence_threshold=0.35)
    assert DecodeConfig.from_json(config.to_json()) == config
    # decode.json written before evidence existed: the default threshold
    assert DecodeConfig.from_json({"gate_threshold": None, "top_k": None}).evidence_threshold == 0.2
