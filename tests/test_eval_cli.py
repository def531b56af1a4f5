"""Tests of the ``paee-eval`` command (paee.cli.evaluate), called through ``main(argv)``.

Tests that read gold or training files need ``paee.data.docred.read_documents`` and skip until that
module exists; the prediction-side error tests run without it.
"""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from paee.cli.evaluate import main
from paee.data.schema import Document, Fact, Mention


def _docred():
    """The reader module, or a skip while it has not landed."""
    return pytest.importorskip("paee.data.docred")


def _doc(title: str, names: list[str], facts: list[tuple[int, int, str]]) -> Document:
    # One single-word mention per entity, all in one sentence, so the file is valid DocRED.
    mentions = tuple((Mention(name=n, sent_id=0, start=i, end=i + 1, type="LOC"),) for i, n in enumerate(names))
    return Document(
        title=title,
        sents=(tuple(names) + (".",),),
        entities=mentions,
        facts=tuple(Fact(h, t, r, (0,)) for h, t, r in facts),
    )


def _write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """gold: 3 facts on 2 pairs; train: shares (Paris, France, P17) with gold; pred: 2 right, 1 wrong."""
    gold = [_doc("G", ["Paris", "France", "Lyon"], [(0, 1, "P17"), (2, 1, "P17"), (2, 1, "P131")])]
    train = [_doc("T", ["Paris", "France"], [(0, 1, "P17")])]
    pred = [
        {"title": "G", "h_idx": 0, "t_idx": 1, "r": "P17"},
        {"title": "G", "h_idx": 2, "t_idx": 1, "r": "P17"},
        {"title": "G", "h_idx": 0, "t_idx": 2, "r": "P17"},
    ]
    return {
        "gold": _write(tmp_path / "dev.json", [d.to_json() for d in gold]),
        "train": _write(tmp_path / "train.json", [d.to_json() for d in train]),
        "pred": _write(tmp_path / "result.json", pred),
    }


def test_console_script_points_at_main():
    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "paee-eval"]
    assert ep.value == "paee.cli.evaluate:main"


def test_prints_table_and_writes_scores_next_to_predictions(files, capsys):
    _docred()
    rc = main(["--pred", str(files["pred"]), "--gold", str(files["gold"]), "--train", str(files["train"])])
    assert rc == 0
    # n_pred = 3, n_correct = 2, n_gold = 3 -> P = R = F1 = 2/3 (66.67).
    # (Paris, France, P17) is in train -> in_train = 1: Ign P = 1 / (3 - 1 + 1e-5) ~ 0.5,
    # Ign F1 = 2 * 0.5 * (2/3) / (0.5 + 2/3) = 4/7 (57.14).
    # Rela: pairs predicted {(0,1), (2,1), (0,2)}, gold {(0,1), (2,1)} -> P = 2/3, R = 1, F1 = 0.8.
    out = capsys.readouterr().out
    assert "F1         66.67" in out and "Ign F1     57.14" in out and "Rela F1    80.00" in out
    scores = json.loads((files["pred"].parent / "scores.json").read_text())
    assert scores["f1"] == pytest.approx(2 / 3)
    assert scores["ign_f1"] == pytest.approx(4 / 7, abs=1e-5)
    assert scores["rela_f1"] == pytest.approx(0.8)
    assert (scores["n_predictions"], scores["n_correct"], scores["n_correct_in_train"]) == (3, 2, 1)
    assert "Evi" not in out  # no prediction carries evidence


def test_prints_evidence_scores_when_predictions_carry_evidence(files, capsys):
    _docred()
    # Gold evidence is {0} for each of the 3 facts (3 sentences). Predicted: (0,1,P17) [0] correct, (2,1,P17) [0, 1]
    # correct (1 of 2 right), (0,2,P17) [0] wrong fact -> predicted 1 + 2 + 1 = 4, correct 1 + 1 = 2, gold 3.
    # Evi P = 2/4, R = 2/3, F1 = 2 (1/3) / (7/6) = 4/7 (57.14).
    records = json.loads(files["pred"].read_text())
    for record, evidence in zip(records, ([0], [0, 1], [0])):
        record["evidence"] = evidence
    files["pred"].write_text(json.dumps(records))
    assert main(["--pred", str(files["pred"]), "--gold", str(files["gold"])]) == 0
    out = capsys.readouterr().out
    assert "Evi P      50.00" in out and "Evi R      66.67" in out and "Evi F1     57.14" in out
    assert "evidence sentences: 2 correct (of correct facts) / 4 predicted / 3 gold" in out
    scores = json.loads((files["pred"].parent / "scores.json").read_text())
    assert scores["evidence_f1"] == pytest.approx(4 / 7) and scores["with_evidence"] is True


def test_out_option(files, tmp_path):
    _docred()
    out = tmp_path / "sub_scores.json"
    assert main(["--pred", str(files["pred"]), "--gold", str(files["gold"]), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["n_gold"] == 3
    assert not (files["pred"].parent / "scores.json").exists()


def _assert_one_line_error(capsys, *needles: str) -> None:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("paee-eval: error:"), err
    for needle in needles:
        assert needle in err, err


def test_bad_prediction_json_exits_2(files, capsys):
    files["pred"].write_text("[{", encoding="utf-8")
    assert main(["--pred", str(files["pred"]), "--gold", str(files["gold"])]) == 2
    _assert_one_line_error(capsys, "result.json")


def test_bad_prediction_record_exits_2(files, capsys):
    _write(files["pred"], [{"title": "G", "h_idx": 0, "t_idx": 1, "r": "P17"}, {"title": "G", "h_idx": "x"}])
    assert main(["--pred", str(files["pred"]), "--gold", str(files["gold"])]) == 2
    _assert_one_line_error(capsys, "prediction 1", "'h_idx'")


def test_missing_prediction_file_exits_2(files, capsys, tmp_path):
    assert main(["--pred", str(tmp_path / "nope.json"), "--gold", str(files["gold"])]) == 2
    _assert_one_line_error(capsys, "nope.json")


def test_missing_gold_file_exits_2(files, capsys, tmp_path):
    _docred()
    assert main(["--pred", str(files["pred"]), "--gold", str(tmp_path / "nope.json")]) == 2
    _assert_one_line_error(capsys, "nope.json")


def test_bad_gold_json_exits_2(files, capsys):
    _docred()
    files["gold"].write_text("{not json", encoding="utf-8")
    assert main(["--pred", str(files["pred"]), "--gold", str(files["gold"])]) == 2
    _assert_one_line_error(capsys)


@pytest.mark.realdata
def test_gold_labels_of_redocred_dev_score_100(redocred_dev_path, tmp_path, capsys):
    _docred()
    # Predictions built from the raw file (not through the reader) so that the reader is checked too.
    raw = json.loads(Path(redocred_dev_path).read_text(encoding="utf-8"))
    preds = [{"title": d["title"], "h_idx": l["h"], "t_idx": l["t"], "r": l["r"]} for d in raw for l in d["labels"]]
    pred_path = _write(tmp_path / "result.json", preds)
    assert main(["--pred", str(pred_path), "--gold", str(redocred_dev_path)]) == 0
    out = capsys.readouterr().out
    # Every prediction is a gold fact and vice versa: P = R = F1 = 1. No train file, so nothing is
    # ignored and Ign P = n / (n + 1e-5), which prints as 100.00.
    assert "F1        100.00" in out and "Ign F1    100.00" in out
    scores = json.loads((tmp_path / "scores.json").read_text())
    n_gold = len({(d["title"], l["r"], l["h"], l["t"]) for d in raw for l in d["labels"]})
    assert scores["n_gold"] == scores["n_correct"] == n_gold
    assert scores["f1"] == 1.0 and scores["rela_f1"] == 1.0
    assert scores["ign_f1"] == pytest.approx(1.0, abs=1e-6)
