"""Schemas from data: any entity types, type-pair constraints in training, decoding and scoring, labels the
model does not know ignored by prediction, CDR through `paee-data convert`, a DWIE-sized schema trained and
exported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from paee.data.decode import Triple
from paee.data.docred import read_documents
from paee.data.errors import DocumentError, PaeeDataError
from paee.data.featurizer import Featurizer, FeaturizerConfig, collate, ordered_pairs, parse_pair_types
from paee.data.relations import RelationVocab
from paee.data.schema import DOCRED_ENTITY_TYPES, entity_types_of
from paee.evaluation.metrics import score_triples
from paee.runtime.pipeline import document_outputs

BIN = Path(sys.executable).parent


def _doc(title: str, types: list[str], facts: list[tuple[int, int, str]] = ()) -> dict:
    """One sentence, one single-word mention per entity (word i is entity i)."""
    words = [f"w{i}" for i in range(len(types))] + ["."]
    return {"title": title, "sents": [words],
            "vertexSet": [[{"name": f"w{i}", "sent_id": 0, "pos": [i, i + 1], "type": t}] for i, t in enumerate(types)],
            "labels": [{"h": h, "t": t, "r": r, "evidence": [0]} for h, t, r in facts]}


CDR_LIKE = [_doc("cdr-1", ["Chemical", "Disease", "Chemical", "Disease"], [(0, 1, "CID"), (2, 3, "CID")])]


def test_entity_types_come_from_the_data():
    docs = read_documents(CDR_LIKE, entity_types=None)
    assert entity_types_of(docs) == ("Chemical", "Disease")
    docred = read_documents([_doc("d", ["PER", "LOC"])])
    assert entity_types_of(docred) == DOCRED_ENTITY_TYPES  # DocRED's own ids when its types suffice
    with pytest.raises(DocumentError, match=r"vertexSet\[0\]\[0\]\.type.*unknown entity type 'Chemical'"):
        read_documents(CDR_LIKE)  # DocRED's schema is still the default of the readers


def test_pair_types_mask_other_pairs_in_collate_and_decoding(tiny_tokenizer):
    config = FeaturizerConfig(entity_types=("Chemical", "Disease"), pair_types=parse_pair_types("Chemical:Disease"))
    relations = RelationVocab.from_ids(["CID"])
    feats = Featurizer(tiny_tokenizer, config, relations).featurize_many(read_documents(CDR_LIKE, entity_types=None))
    batch = collate(feats, pad_id=0, num_relations=relations.num_classes)
    pairs = ordered_pairs(4)
    candidates = {(0, 1), (0, 3), (2, 1), (2, 3)}  # chemical -> disease only
    assert {tuple(p) for p, m in zip(pairs, batch["pair_mask"][0]) if m} == candidates
    assert batch["pair_index"].shape[1] == 12  # every pair is still listed: the map is filled from all of them
    # decoding reads the candidate pairs only, whatever the logits of the others say
    logits = np.zeros((1, 12, 2), dtype=np.float32)
    logits[0, :, 1] = 1.0  # every pair above the threshold
    (out,) = document_outputs({"logits": logits, "pair_prob": np.ones((1, 12), np.float32)}, batch)
    assert {tuple(p) for p in out.pair_index} == candidates
    with pytest.raises(PaeeDataError, match="pair_types must be"):
        FeaturizerConfig(entity_types=("Chemical", "Disease"), pair_types=(("Chemical", "Gene"),))
    with pytest.raises(PaeeDataError, match="SUBJECT_TYPE:OBJECT_TYPE"):
        parse_pair_types("Chemical-Disease")


def test_scoring_counts_candidate_pairs_only():
    docs = read_documents([_doc("x", ["Chemical", "Disease", "Disease"], [(0, 1, "CID"), (1, 2, "CID")])],
                          entity_types=None)
    relations = RelationVocab.from_ids(["CID"])
    triples = [[Triple(0, 1, 1, 1.0), Triple(1, 0, 1, 1.0)]]  # one right, one disease -> chemical
    everything = score_triples(docs, triples, relations)
    constrained = score_triples(docs, triples, relations, pair_types=(("Chemical", "Disease"),))
    assert (everything.n_gold, everything.n_predictions, everything.n_correct) == (2, 2, 1)
    assert (constrained.n_gold, constrained.n_predictions, constrained.n_correct) == (1, 1, 1)
    assert constrained.f1 == 1.0


def test_paee_eval_scores_any_schema(tmp_path):
    gold = tmp_path / "gold.json"
    gold.write_text(json.dumps([_doc("g", ["type::location", "type::person"], [(1, 0, "lives_in")])]))
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps([{"title": "g", "h_idx": 1, "t_idx": 0, "r": "lives_in"}]))
    done = subprocess.run([BIN / "paee-eval", "--pred", pred, "--gold", gold], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "scores.json").read_text())["f1"] == 1.0


@pytest.fixture(scope="module")
def dwie_like_run(tmp_path_factory):
    """A DWIE-sized schema (10 entity types, 60 entities per document) trained one step by the command."""
    out = tmp_path_factory.mktemp("dwie")
    types = [f"type::{name}" for name in ("person", "location", "organization", "gpe", "event", "work", "misc",
                                         "ethnicity", "role", "time")]
    docs = [_doc(f"dwie-{k}", [types[(i + k) % 10] for i in range(60)],
                 [(i, i + 1, "related") for i in range(0, 58, 7)] + [(i + 2, i, "part_of") for i in range(0, 50, 9)])
            for k in range(3)]
    train = out / "train.json"
    train.write_text(json.dumps(docs))
    done = subprocess.run([BIN / "paee-train", "--train", train, "--encoder", "tiny", "--max-entities", "64",
                           "--out", out / "run", "--epochs", "1", "--batch-size", "2", "--max-steps", "1"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, types, docs


def test_a_dwie_sized_schema_trains_and_exports(dwie_like_run):
    from paee.checkpoint import Checkpoint

    out, types, _ = dwie_like_run
    ckpt = Checkpoint.load(out / "run" / "best.pt")
    assert ckpt.config.featurizer.entity_types == tuple(sorted(types))
    assert ckpt.config.dims.max_entities == 64 and ckpt.config.dims.num_entity_types == 11
    assert ckpt.config.featurizer.type_map is None  # no detector map for this schema unless one is given
    done = subprocess.run([BIN / "paee-export", "--checkpoint", out / "run" / "best.pt", "--out", out / "repo",
                           "--no-parity", "--quiet"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    featurizer = json.loads((out / "repo" / "paee_preprocess" / "1" / "assets" / "featurizer.json").read_text())
    assert featurizer["entity_types"] == sorted(types) and featurizer["max_entities"] == 64


def test_predict_ignores_labels_the_model_does_not_know(dwie_like_run, tmp_path):
    out, types, docs = dwie_like_run
    relabelled = [dict(d, labels=[{"h": 0, "t": 1, "r": "never_seen", "evidence": []}]) for d in docs[:1]]
    inputs = tmp_path / "in.json"
    inputs.write_text(json.dumps(relabelled))
    done = subprocess.run([BIN / "paee-predict", "--checkpoint", out / "run" / "best.pt", "--input", inputs,
                           "--out", tmp_path / "result.json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "never_seen" in done.stderr and "labels are ignored" in done.stderr
    assert isinstance(json.loads((tmp_path / "result.json").read_text()), list)


def test_a_custom_schema_is_served(dwie_like_run, tmp_path):
    """The exported repository's preprocess model reads the model's own entity types (not DocRED's)."""
    from paee.checkpoint import Checkpoint
    from paee.inference import Predictor
    from paee.serving.client import PaeeClient, PaeeServingError
    from paee.serving.server import TritonServer, TritonServerError, find_triton

    out, _, docs = dwie_like_run
    try:
        find_triton()
    except TritonServerError as e:
        pytest.skip(f"no tritonserver: {e}")
    ckpt = Checkpoint.load(out / "run" / "best.pt")
    doc = read_documents(docs[:1], entity_types=ckpt.config.featurizer.entity_types)[0]
    want = {(t.head, t.tail, ckpt.config.relations.ids[t.relation]) for t in
            Predictor(ckpt.build_model(), ckpt.featurizer(), device="cpu").predict([doc])[0] if abs(t.score) > 1e-3}
    server = TritonServer(out / "repo", http_port=0, grpc_port=0, metrics_port=0, stop_timeout_s=20).start()
    try:
        with PaeeClient(server.http_url, timeout_s=120) as client:
            got = client.predict(docs[0])
            # exported without --detector: plain text is refused with the option that would take it
            with pytest.raises(PaeeServingError, match=r"document 0 \('plain'\): plain text without 'entities' "
                                                       r"needs a repository exported with a detector"):
                client.predict_raw({"title": "plain", "text": "Ada Lovelace met Charles Babbage."})
    finally:
        server.stop()
    assert want <= {(t["h_idx"], t["t_idx"], t["r"]) for t in got}
    assert {(t["h_idx"], t["t_idx"], t["r"]) for t in got if abs(t["score"]) > 1e-3} <= want
