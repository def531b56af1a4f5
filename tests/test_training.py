"""Training end to end on a tiny model: run directory, self-contained checkpoints, resume, prediction,
and clear errors for files that are not PAEE checkpoints."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from paee.cli.predict import main as predict_main
from paee.cli.train import main as train_main
from paee.data.synthetic import SyntheticConfig, write_synthetic_splits
from paee.inference import Predictor
from paee.checkpoint import FORMAT_NAME, Checkpoint, CheckpointError

load_checkpoint = Checkpoint.load


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    write_synthetic_splits(out, SyntheticConfig(), sizes={"train": 16, "dev": 6, "test": 6}, seed=5)
    return out


@pytest.fixture(scope="module")
def run_dir(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    rc = train_main([
        "--train", str(corpus / "train.json"), "--dev", str(corpus / "dev.json"), "--encoder", "tiny",
        "--out", str(out), "--epochs", "2", "--batch-size", "4", "--seed", "3",
        "--truncate",  # a tokenizer trained on 16 documents splits unseen names into many pieces
    ])
    assert rc == 0
    return out


def _events(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_run_directory_holds_checkpoints_and_metrics_log(run_dir):
    assert (run_dir / "best.pt").is_file() and (run_dir / "last.pt").is_file()
    assert (run_dir / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = _events(run_dir)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["epoch"] for e in evals] == [1, 2]
    assert all(0.0 <= e["dev"]["f1"] <= 1.0 for e in evals)
    # 16 documents / batch 4 = 4 optimizer steps per epoch
    assert events[-1]["step"] == 8


def test_best_checkpoint_is_self_contained_and_loads_weights_only(run_dir, corpus):
    payload = torch.load(run_dir / "best.pt", weights_only=True)
    assert payload["format"] == FORMAT_NAME
    assert "training_state" not in payload  # best.pt is for inference, last.pt for resuming
    assert {"model_config", "tokenizer_json", "state_dict"} <= set(payload)
    config = payload["model_config"]  # every size once: the featurizer's N, M, S and the relations' R
    assert {"featurizer", "relations"} <= set(config)
    assert not {"max_entities", "num_relations"} & (set(config) | set(config["head"]))
    rel2id = json.loads((corpus / "rel2id.json").read_text())
    assert config["relations"]["ids"] == sorted(rel2id, key=rel2id.get)
    assert config["relations"]["names"]  # relation names travel with the model
    assert "training_state" in torch.load(run_dir / "last.pt", weights_only=True)


def test_predict_cli_writes_official_result_format(run_dir, corpus, tmp_path):
    out = tmp_path / "result.json"
    rc = predict_main(["--checkpoint", str(run_dir / "best.pt"), "--input", str(corpus / "test.json"),
                       "--out", str(out), "--names", "--scores", "--truncate"])
    assert rc == 0
    records = json.loads(out.read_text())
    titles = {d["title"] for d in json.loads((corpus / "test.json").read_text())}
    sentences = {d["title"]: len(d["sents"]) for d in json.loads((corpus / "test.json").read_text())}
    for r in records:
        assert set(r) == {"title", "h_idx", "t_idx", "r", "r_name", "score", "evidence"}
        assert r["title"] in titles and r["h_idx"] != r["t_idx"] and r["score"] > 0
        assert r["evidence"] == sorted(set(r["evidence"])) and all(0 <= s < sentences[r["title"]] for s in r["evidence"])


def test_predict_cli_evidence_threshold(run_dir, corpus, tmp_path, capsys):
    """Evidence is the sentences above the threshold: a lower one gives supersets (0: every sentence the pair
    attends to), 0.99 (near) nothing; the
    triples stay the same; a threshold outside [0, 1) is a one-line user error."""
    from paee.data.docred import read_documents
    from paee_bench.checkpoints import raise_threshold

    # two epochs on 16 documents predict no triple: the threshold class is lowered to ~12 triples per document;
    # documents that need truncation are left out (an entity whose mentions were all cut has no attention, so
    # no evidence: its pairs' triples would say nothing here)
    ckpt = Checkpoint.load(run_dir / "best.pt")
    docs = read_documents(corpus / "test.json")
    fits = ckpt.featurizer(truncate=False).featurize_many(docs, errors="collect")
    docs = [d for d, f in zip(docs, fits) if not isinstance(f, Exception)]
    assert len(docs) >= 3
    (tmp_path / "docs.json").write_text(json.dumps([d.to_json() for d in docs]))
    model = ckpt.build_model()
    raise_threshold(model, ckpt.featurizer(), docs, 12)
    checkpoint = tmp_path / "dense.pt"
    Checkpoint.from_model(model, ckpt.tokenizer).save(checkpoint)

    def evidence(threshold: str) -> dict:
        out = tmp_path / f"result_{threshold}.json"
        assert predict_main(["--checkpoint", str(checkpoint), "--input", str(tmp_path / "docs.json"),
                             "--out", str(out), "--evidence-threshold", threshold]) == 0
        return {(r["title"], r["h_idx"], r["t_idx"], r["r"]): set(r["evidence"]) for r in json.loads(out.read_text())}

    low, default, high = evidence("0"), evidence("0.2"), evidence("0.99")
    assert low.keys() == default.keys() == high.keys() and low
    assert all(default[k] <= low[k] for k in low) and sum(map(len, low.values())) > sum(map(len, default.values()))
    assert sum(map(len, high.values())) <= len(high) // 10
    assert predict_main(["--checkpoint", str(run_dir / "best.pt"), "--input", str(corpus / "test.json"),
                         "--out", str(tmp_path / "x.json"), "--evidence-threshold", "1.5"]) == 2
    assert "evidence_threshold must be a share in [0, 1), got 1.5" in capsys.readouterr().err


def test_predictor_matches_cli_and_is_deterministic(run_dir, corpus):
    from paee.data.docred import read_documents

    docs = read_documents(corpus / "test.json")
    predictor = Predictor.from_checkpoint(run_dir / "best.pt", device="cpu")
    first, second = predictor.predict(docs), predictor.predict(docs)
    assert first == second
    assert len(first) == len(docs)


def test_resume_continues_from_last_checkpoint(run_dir, corpus, tmp_path):
    resumed = tmp_path / "resumed"
    shutil.copytree(run_dir, resumed)
    rc = train_main([
        "--train", str(corpus / "train.json"), "--dev", str(corpus / "dev.json"), "--encoder", "tiny",
        "--out", str(resumed), "--epochs", "3", "--batch-size", "4", "--seed", "3", "--truncate",
    ])
    assert rc == 0
    events = _events(resumed)
    starts = [e for e in events if e["event"] == "start"]
    assert starts[-1]["resumed_from_step"] == 8
    assert events[-1]["event"] == "end" and events[-1]["epoch"] == 3 and events[-1]["step"] == 12


def test_version_1_checkpoint_loads_and_predicts_the_same(run_dir, corpus, tmp_path):
    """A checkpoint written before sizes were stored once (format 1) is converted on load: same weights."""
    from paee.data.docred import read_documents

    payload = torch.load(run_dir / "best.pt", weights_only=True)
    config = dict(payload["model_config"])
    featurizer, relations = config.pop("featurizer"), config.pop("relations")
    head = dict(config["head"], hidden_size=64, num_heads=4, num_relations=len(relations["ids"]),
                num_entity_types=len(featurizer["entity_types"]) + 1, max_entities=featurizer["max_entities"],
                max_sentences=featurizer["max_sentences"])
    config.update(head=head, num_relations=len(relations["ids"]), num_entity_types=head["num_entity_types"],
                  max_entities=featurizer["max_entities"])
    old = tmp_path / "v1.pt"
    torch.save({**payload, "format_version": 1, "model_config": config, "featurizer_config": featurizer,
                "relations": relations}, old)
    docs = read_documents(corpus / "test.json")[:4]
    new_triples = Predictor.from_checkpoint(run_dir / "best.pt", device="cpu", featurizer_overrides={"truncate": True})
    old_triples = Predictor.from_checkpoint(old, device="cpu", featurizer_overrides={"truncate": True})
    assert old_triples.predict(docs) == new_triples.predict(docs)
    assert Checkpoint.load(old).config == Checkpoint.load(run_dir / "best.pt").config


def test_truncated_checkpoint_is_a_clear_error(run_dir, tmp_path):
    broken = tmp_path / "broken.pt"
    data = (run_dir / "best.pt").read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or not a checkpoint"):
        load_checkpoint(broken)


def test_file_that_is_not_a_paee_checkpoint_is_a_clear_error(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, other)
    with pytest.raises(CheckpointError, match="not a PAEE checkpoint"):
        load_checkpoint(other)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(text)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_incompatible_format_version_is_a_clear_error(run_dir, tmp_path):
    payload = torch.load(run_dir / "best.pt", weights_only=True)
    payload["format_version"] = 999
    future = tmp_path / "future.pt"
    torch.save(payload, future)
    with pytest.raises(CheckpointError, match="format version 999 is not supported"):
        load_checkpoint(future)


def test_predict_cli_reports_bad_checkpoint_without_traceback(tmp_path, corpus, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    rc = predict_main(["--checkpoint", str(bad), "--input", str(corpus / "test.json"), "--out", str(tmp_path / "r.json")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "bad.pt" in err and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()


def test_evidence_weight_trains_the_evidence_term_and_travels_in_the_checkpoint(corpus, tmp_path):
    out = tmp_path / "evidence"
    rc = train_main([
        "--train", str(corpus / "train.json"), "--encoder", "tiny", "--out", str(out), "--epochs", "3",
        "--batch-size", "4", "--seed", "3", "--truncate", "--evidence-weight", "0.1",
    ])
    assert rc == 0
    steps = [e for e in _events(out) if e["event"] == "step"]
    assert steps and all(e["parts"]["evidence"] > 0 for e in steps)  # the synthetic labels carry evidence
    assert torch.load(out / "last.pt", weights_only=True)["model_config"]["loss"]["evidence"] == 0.1


def test_the_checkpoint_carries_its_detector_type_map(run_dir, corpus, tmp_path):
    """DocRED's types: DocRED's label map is stored (paee-predict --raw reads it); --type-map replaces it."""
    from paee.data.type_map import DOCRED_TYPE_MAP

    stored = torch.load(run_dir / "best.pt", weights_only=True)["model_config"]["featurizer"]["type_map"]
    assert stored == DOCRED_TYPE_MAP.to_json()
    (tmp_path / "map.json").write_text(json.dumps({"PERSON": "PER", "GPE": "LOC"}))
    out = tmp_path / "mapped"
    assert train_main(["--train", str(corpus / "train.json"), "--encoder", "tiny", "--out", str(out), "--epochs", "1",
                       "--max-steps", "1", "--truncate", "--type-map", str(tmp_path / "map.json")]) == 0
    stored = torch.load(out / "last.pt", weights_only=True)["model_config"]["featurizer"]["type_map"]
    assert stored == {"table": {"PERSON": "PER", "GPE": "LOC"}, "default": None}


def test_evidence_weight_without_evidence_labels_is_a_clear_error(corpus, tmp_path, capsys):
    docs = json.loads((corpus / "train.json").read_text())
    for doc in docs:
        for label in doc["labels"]:
            label["evidence"] = []
    train = tmp_path / "train.json"
    train.write_text(json.dumps(docs))
    rc = train_main(["--train", str(train), "--encoder", "tiny", "--out", str(tmp_path / "run"),
                     "--evidence-weight", "0.1", "--truncate"])
    assert rc != 0
    err = capsys.readouterr().err
    assert "--evidence-weight" in err and "evidence" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "last.pt").exists()
