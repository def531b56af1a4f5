"""Unit tests of paee.evaluation.metrics against numbers worked out by hand from the official scorer.

Documents are built in code; each test states its hand computation next to the expected values.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paee.data.errors import PaeeDataError
from paee.data.schema import Document, Fact, Mention
from paee.evaluation.metrics import IGN_EPSILON, evaluate, read_predictions, train_fact_names


def make_doc(title: str, entity_names: list[list[str]], facts: list[tuple], index: int = 0) -> Document:
    """A document whose only relevant parts for scoring are titles, mention names and facts."""
    entities = tuple(
        tuple(Mention(name=n, sent_id=0, start=i, end=i + 1, type="MISC") for i, n in enumerate(names))
        for names in entity_names
    )
    return Document(
        title=title,
        # one sentence of names, then one filler sentence per further evidence id (a fact's evidence must
        # name sentences of its document)
        sents=(tuple(n for names in entity_names for n in names),)
        + (("filler",),) * max((e for f in facts if len(f) > 3 for e in f[3]), default=0),
        entities=entities,
        facts=tuple(Fact(*f) for f in facts),
        index=index,
    )


def pred(title: str, h: int, t: int, r: str, **extra) -> dict:
    return {"title": title, "h_idx": h, "t_idx": t, "r": r, **extra}


def gold_as_predictions(docs: list[Document]) -> list[dict]:
    return [pred(d.title, f.head, f.tail, f.relation) for d in docs for f in d.facts]


# Two gold documents, 5 facts on 4 pairs: A (0,1) (2,1) (1,0); B (0,1) with two relations.
GOLD = [
    make_doc("A", [["Paris"], ["France", "French Republic"], ["Berlin"]], [(0, 1, "P17"), (2, 1, "P17"), (1, 0, "P36")]),
    make_doc("B", [["Ann"], ["Bob"]], [(0, 1, "P26"), (0, 1, "P1038")], index=1),
]


def test_exact_match_scores_one():
    # 5 distinct predictions, all gold: P = R = F1 = 5/5; 4 pairs, all gold: Rela = 4/4.
    # No train facts: Ign P = 5 / (5 - 0 + 1e-5), i.e. 1 up to the official epsilon.
    s = evaluate(gold_as_predictions(GOLD), GOLD)
    assert (s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0)
    assert (s.rela_precision, s.rela_recall, s.rela_f1) == (1.0, 1.0, 1.0)
    assert s.ign_precision == pytest.approx(5 / (5 + IGN_EPSILON), rel=1e-12)
    assert s.ign_f1 == pytest.approx(1.0, abs=1e-5)
    assert (s.n_predictions, s.n_gold, s.n_correct, s.n_correct_in_train) == (5, 5, 5, 0)
    assert (s.n_predicted_pairs, s.n_gold_pairs, s.n_correct_pairs, s.n_unknown_titles) == (4, 4, 4, 0)


def test_train_fact_names_uses_every_mention_pair():
    # Entity 0 has 1 mention, entities 1 and 2 have 2 each: the P17 label (0 -> 1) yields 1 x 2 = 2
    # triples, the P131 label (2 -> 1) yields 2 x 2 = 4; 6 distinct triples in all.
    train = [
        make_doc(
            "T",
            [["Paris"], ["French Republic", "France"], ["Roma", "Rome"]],
            [(0, 1, "P17"), (2, 1, "P131")],
        )
    ]
    assert train_fact_names(train) == {
        ("Paris", "French Republic", "P17"),
        ("Paris", "France", "P17"),
        ("Roma", "French Republic", "P131"),
        ("Roma", "France", "P131"),
        ("Rome", "French Republic", "P131"),
        ("Rome", "France", "P131"),
    }


def test_ign_f1_with_constructed_training_file():
    gold = [
        make_doc(
            "G",
            [["Paris"], ["France", "French Republic"], ["Berlin"], ["Germany"], ["Rome"], ["Italy"]],
            [(0, 1, "P17"), (2, 3, "P17"), (4, 5, "P17"), (1, 0, "P36")],
        )
    ]
    train = [
        make_doc(
            "T",
            # "French Republic" matches only the *second* gold mention of entity 1;
            # "Rome" is only the *second* train mention of its entity.
            [["Paris"], ["French Republic"], ["Berlin"], ["Germany"], ["Roma", "Rome"], ["Italy"]],
            [(0, 1, "P17"), (2, 3, "P131"), (4, 5, "P17")],
        )
    ]
    predictions = gold_as_predictions(gold) + [pred("G", 0, 3, "P17"), pred("G", 2, 5, "P17")]
    s = evaluate(predictions, gold, train_fact_names(train))
    # Correct facts seen in train:
    #   (Paris, France|French Republic, P17): ("Paris", "French Republic", P17) in train  -> yes
    #   (Berlin, Germany, P17): train has the names with P131 only                        -> no
    #   (Rome, Italy, P17): ("Rome", "Italy", P17) from the train entity's 2nd mention    -> yes
    #   (France, Paris, P36): nothing                                                      -> no
    # n_pred = 6, n_correct = 4, in_train = 2, n_gold = 4.
    # P = 4/6, R = 1, F1 = 2 * (2/3) * 1 / (5/3) = 0.8.
    # Ign P = (4 - 2) / (6 - 2 + 1e-5) = 2 / 4.00001; Ign F1 = 2 * IgnP * R / (IgnP + R) ~ 2/3.
    assert (s.n_predictions, s.n_correct, s.n_correct_in_train, s.n_gold) == (6, 4, 2, 4)
    assert s.precision == pytest.approx(4 / 6)
    assert s.recall == 1.0
    assert s.f1 == pytest.approx(0.8)
    ign_p = 2 / (4 + 1e-5)
    assert s.ign_precision == pytest.approx(ign_p, rel=1e-12)
    assert s.ign_f1 == pytest.approx(2 * ign_p / (ign_p + 1), rel=1e-12)
    assert s.ign_f1 == pytest.approx(2 / 3, abs=1e-5)
    # Rela: 6 predicted pairs, 4 gold pairs, all 4 predicted -> P = 4/6, R = 1, F1 = 0.8.
    assert (s.rela_precision, s.rela_recall, s.rela_f1) == pytest.approx((4 / 6, 1.0, 0.8))


def test_train_facts_only_matter_for_correct_predictions():
    # A wrong prediction whose names are in train changes nothing: P = 1/2, Ign P = 1 / (2 + 1e-5).
    gold = [make_doc("G", [["a"], ["b"], ["c"]], [(0, 1, "P1")])]
    s = evaluate([pred("G", 0, 1, "P1"), pred("G", 1, 2, "P1")], gold, {("b", "c", "P1")})
    assert s.n_correct_in_train == 0
    assert s.ign_precision == pytest.approx(1 / (2 + 1e-5), rel=1e-12)


def test_duplicate_predictions_count_once():
    # Distinct predictions: (A,0,1,P17) [x3, one with extra keys] and (A,2,1,P131) [x2, wrong].
    # n_pred = 2, n_correct = 1, n_gold = 5 -> P = 1/2, R = 1/5, F1 = 2 * .5 * .2 / .7 = 2/7.
    # Rela: pairs {(A,0,1), (A,2,1)} both gold -> P = 2/2, R = 2/4, F1 = 2/3.
    predictions = [
        pred("A", 0, 1, "P17"),
        pred("A", 2, 1, "P131"),
        pred("A", 0, 1, "P17", score=0.3),
        pred("A", 2, 1, "P131"),
        pred("A", 0, 1, "P17"),
    ]
    s = evaluate(predictions, GOLD)
    assert (s.n_predictions, s.n_correct, s.n_gold) == (2, 1, 5)
    assert (s.precision, s.recall, s.f1) == pytest.approx((0.5, 0.2, 2 / 7))
    assert (s.rela_precision, s.rela_recall, s.rela_f1) == pytest.approx((1.0, 0.5, 2 / 3))


def test_duplicate_gold_facts_collapse():
    # The same (title, r, h, t) twice is one gold fact: n_gold = 1, so one prediction gives R = 1.
    gold = [make_doc("G", [["a"], ["b"]], [(0, 1, "P1"), (0, 1, "P1", (0,))])]
    s = evaluate([pred("G", 0, 1, "P1")], gold)
    assert (s.n_gold, s.recall, s.f1) == (1, 1.0, 1.0)


def test_unknown_titles_lower_precision_not_recall():
    # All 5 gold facts + 3 predictions for titles absent from gold (2 titles).
    # n_pred = 8, n_correct = 5 -> P = 5/8, R = 5/5, F1 = 2 * (5/8) / (13/8) = 10/13.
    # Rela: 4 + 3 predicted pairs, 4 correct -> P = 4/7, R = 1, F1 = 2 * (4/7) / (11/7) = 8/11.
    predictions = gold_as_predictions(GOLD) + [pred("Z", 0, 1, "P17"), pred("Z", 1, 0, "P17"), pred("Y", 0, 1, "P1")]
    s = evaluate(predictions, GOLD)
    assert (s.n_predictions, s.n_correct, s.n_unknown_titles) == (8, 5, 2)
    assert (s.precision, s.recall, s.f1) == pytest.approx((5 / 8, 1.0, 10 / 13))
    assert (s.rela_precision, s.rela_recall, s.rela_f1) == pytest.approx((4 / 7, 1.0, 8 / 11))


def test_several_relations_on_one_pair():
    # Gold: 3 relations on pair (0,1) and 1 on (1,2) -> 4 facts, 2 pairs.
    # Predicted: 2 of the 3 relations on (0,1) -> P = 2/2, R = 2/4, F1 = 2/3.
    # Rela counts pair (0,1) once: predicted {(0,1)}, gold {(0,1), (1,2)} -> P = 1, R = 1/2, F1 = 2/3.
    gold = [make_doc("G", [["a"], ["b"], ["c"]], [(0, 1, "P17"), (0, 1, "P131"), (0, 1, "P27"), (1, 2, "P17")])]
    s = evaluate([pred("G", 0, 1, "P17"), pred("G", 0, 1, "P131")], gold)
    assert (s.precision, s.recall, s.f1) == pytest.approx((1.0, 0.5, 2 / 3))
    assert (s.n_predicted_pairs, s.n_gold_pairs, s.n_correct_pairs) == (1, 2, 1)
    assert (s.rela_precision, s.rela_recall, s.rela_f1) == pytest.approx((1.0, 0.5, 2 / 3))


def test_wrong_relation_on_gold_pair_counts_for_rela_only():
    # (A,0,1,P36) is not a gold fact (gold has P17 there) but (A,0,1) is a gold pair.
    # Facts: 0 correct of 1 -> P = R = F1 = 0. Rela: 1 of 1 predicted pairs, 1 of 4 gold -> F1 = 2/5.
    s = evaluate([pred("A", 0, 1, "P36")], GOLD)
    assert (s.precision, s.recall, s.f1, s.ign_f1) == (0.0, 0.0, 0.0, 0.0)
    assert (s.rela_precision, s.rela_recall, s.rela_f1) == pytest.approx((1.0, 0.25, 0.4))


def test_empty_predictions_score_zero():
    # The official script would fail on tmp[0]; here every rate is 0.
    s = evaluate([], GOLD)
    assert (s.precision, s.recall, s.f1, s.ign_precision, s.ign_f1) == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert (s.rela_precision, s.rela_recall, s.rela_f1, s.evidence_f1) == (0.0, 0.0, 0.0, 0.0)
    assert (s.n_predictions, s.n_gold, s.n_correct) == (0, 5, 0)
    # Nothing to score against either: still no division error.
    assert evaluate([], []).f1 == 0.0
    assert evaluate([pred("A", 0, 1, "P17")], []).n_unknown_titles == 1


def test_evidence_scores():
    # Gold evidence {0, 1} (2 sentences). The correct prediction claims {1, 2}: 1 correct sentence.
    # A wrong prediction's evidence {3} still counts in pred_evi (official): pred_evi = 3.
    # Evidence P = 1/3, R = 1/2, F1 = 2 * (1/6) / (5/6) = 2/5.
    gold = [make_doc("G", [["a"], ["b"], ["c"]], [(0, 1, "P1", (0, 1))])]
    s = evaluate([pred("G", 0, 1, "P1", evidence=[1, 2]), pred("G", 1, 2, "P1", evidence=[3])], gold)
    assert (s.evidence_precision, s.evidence_recall, s.evidence_f1) == pytest.approx((1 / 3, 1 / 2, 2 / 5))


def test_evidence_official_semantics_hand_computed():
    # Gold G: (0,1,P1) evidence {0,1,2}; (1,2,P2) evidence {3}; (2,3,P1) evidence {0} (missed by the predictions).
    # Predictions, as official_evaluate counts them:
    #   (0,1,P1) [1, 5]  correct fact, partial evidence: 1 correct sentence (1), 2 predicted
    #   (0,1,P1) [0,1,2] duplicate of the first: dropped (the first of the sorted run is kept), counts nothing
    #   (1,2,P2) []      correct fact, empty evidence: 0 correct, 0 predicted
    #   (0,2,P1) [0, 3]  wrong fact with evidence: 0 correct, 2 predicted (claimed evidence costs precision)
    #   Z (0,1,P1) [0]   unknown title: skipped before counting, as in the official loop
    # predicted 2 + 0 + 2 = 4, correct 1, gold 3 + 1 + 1 = 5 (the missed fact's sentence is missed)
    # Evi P = 1/4, R = 1/5, F1 = 2 (1/20) / (9/20) = 2/9. Facts: P = 2/4 (Z counts), R = 2/3.
    gold = [make_doc("G", [["a"], ["b"], ["c"], ["d"]], [(0, 1, "P1", (0, 1, 2)), (1, 2, "P2", (3,)), (2, 3, "P1", (0,))])]
    predictions = [pred("G", 0, 1, "P1", evidence=[1, 5]), pred("G", 0, 1, "P1", evidence=[0, 1, 2]),
                   pred("G", 1, 2, "P2", evidence=[]), pred("G", 0, 2, "P1", evidence=[0, 3]),
                   pred("Z", 0, 1, "P1", evidence=[0])]
    s = evaluate(predictions, gold)
    assert (s.n_predicted_evidence, s.n_correct_evidence, s.n_gold_evidence) == (4, 1, 5)
    assert (s.evidence_precision, s.evidence_recall, s.evidence_f1) == pytest.approx((1 / 4, 1 / 5, 2 / 9))
    assert (s.precision, s.recall) == pytest.approx((2 / 4, 2 / 3)) and s.with_evidence


def test_evidence_empty_everywhere_and_absent():
    # Correct facts with empty evidence only: nothing predicted -> Evi P = 0 (official: 0 when pred_evi = 0),
    # nothing correct -> R = 0 / 2 = 0, F1 = 0; the field is there, so Evi is reported (as zeros).
    gold = [make_doc("G", [["a"], ["b"]], [(0, 1, "P1", (0, 1))])]
    s = evaluate([pred("G", 0, 1, "P1", evidence=[])], gold)
    assert (s.evidence_precision, s.evidence_recall, s.evidence_f1, s.n_gold_evidence) == (0.0, 0.0, 0.0, 2)
    assert s.with_evidence and s.f1 == 1.0
    # Exact evidence on the only fact: P = R = F1 = 1.
    exact = evaluate([pred("G", 0, 1, "P1", evidence=[1, 0])], gold)
    assert (exact.evidence_precision, exact.evidence_recall, exact.evidence_f1) == (1.0, 1.0, 1.0)
    # No prediction carries the field: Evi is not reported (and scores 0).
    none = evaluate([pred("G", 0, 1, "P1")], gold)
    assert not none.with_evidence and none.evidence_f1 == 0.0


def test_evaluate_does_not_modify_predictions():
    predictions = [pred("B", 0, 1, "P26"), pred("A", 0, 1, "P17")]
    before = json.dumps(predictions)
    evaluate(predictions, GOLD)
    assert json.dumps(predictions) == before


def test_scores_to_json_round_trips():
    s = evaluate(gold_as_predictions(GOLD), GOLD)
    obj = json.loads(json.dumps(s.to_json()))
    assert obj["f1"] == 1.0 and obj["n_gold"] == 5 and set(obj) >= {"ign_f1", "rela_f1", "n_unknown_titles"}


# --- read_predictions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record, field",
    [
        ({"h_idx": 0, "t_idx": 1, "r": "P17"}, "'title'"),
        ({"title": "A", "t_idx": 1, "r": "P17"}, "'h_idx'"),
        ({"title": "A", "h_idx": "0", "t_idx": 1, "r": "P17"}, "'h_idx'"),
        ({"title": "A", "h_idx": 0, "t_idx": True, "r": "P17"}, "'t_idx'"),
        ({"title": "A", "h_idx": 0, "t_idx": -1, "r": "P17"}, "'t_idx'"),
        ({"title": "A", "h_idx": 0, "t_idx": 1, "r": 17}, "'r'"),
        ({"title": 3, "h_idx": 0, "t_idx": 1, "r": "P17"}, "'title'"),
        ({"title": "A", "h_idx": 0, "t_idx": 1, "r": "P17", "evidence": "0"}, "'evidence'"),
    ],
)
def test_bad_record_names_index_and_field(record, field):
    with pytest.raises(PaeeDataError, match=rf"prediction 1, field {field}"):
        read_predictions([pred("A", 0, 1, "P17"), record])


def test_non_object_record_and_non_list():
    with pytest.raises(PaeeDataError, match="prediction 0: expected an object"):
        read_predictions(["A 0 1 P17"])
    with pytest.raises(PaeeDataError, match="JSON list"):
        read_predictions({"title": "A"})  # type: ignore[arg-type]


def test_read_predictions_from_file(tmp_path: Path):
    path = tmp_path / "result.json"
    path.write_text(json.dumps([pred("A", 0, 1, "P17", score=1.5)]))
    assert read_predictions(path) == [pred("A", 0, 1, "P17")]
    path.write_text("[{")
    with pytest.raises(PaeeDataError, match="cannot read predictions"):
        read_predictions(path)
    with pytest.raises(PaeeDataError, match="cannot read predictions"):
        read_predictions(tmp_path / "missing.json")
    path.write_text(json.dumps([pred("A", 0, 1, "P17"), {"title": "A"}]))
    with pytest.raises(PaeeDataError, match=r"result\.json: prediction 1, field 'h_idx': missing"):
        read_predictions(path)
