"""Documents of any length: a ~3,000-wordpiece document is read whole (k windows) by PyTorch, ONNX Runtime and
Triton alike; truncation happens only when a call asks for it, and then the caller is told what was lost."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("tritonclient")

from paee.checkpoint import Checkpoint  # noqa: E402
from paee.data.featurizer import Featurizer, collate  # noqa: E402
from paee.data.synthetic import repeat_document  # noqa: E402
from paee.inference import Predictor, to_tensors  # noqa: E402
from paee.model.config import PaeeConfig  # noqa: E402
from paee.runtime.contract import MODEL_INPUTS  # noqa: E402
from paee.runtime.pipeline import OnnxPipeline  # noqa: E402
from paee.serving.client import PaeeClient, PaeeServingError  # noqa: E402

pytest_plugins = ["serving_support"]

#: Wordpieces of the long test document (about 6 windows of 512), and of one over the served limit (4,096).
LONG_TOKENS, TOO_LONG_TOKENS = 3000, 4600


def _repeated(files: dict, tokens: int):
    """The first synthetic document repeated to at least ``tokens`` wordpieces, every entity within M mentions."""
    featurizer = Featurizer(files["tokenizer"], files["featurizer"])
    base, times = files["docs"][0], 2
    while True:
        doc = repeat_document(base, times, max_mentions=files["featurizer"].max_mentions)
        if featurizer.featurize_many([doc], truncate=True)[0].warnings or featurizer.featurize(doc).num_tokens >= tokens:
            return doc
        times += 1


@pytest.fixture(scope="module")
def long_doc(model_files):
    return _repeated(model_files, LONG_TOKENS)


def _triples(results) -> list[set]:
    return [{(t.head, t.tail, t.relation) for t in triples} for triples in results]


def test_a_long_document_is_read_whole(model_files, long_doc):
    ckpt = model_files["ckpt"]
    featurizer = ckpt.featurizer()
    features = featurizer.featurize(long_doc)
    assert LONG_TOKENS <= features.num_tokens < LONG_TOKENS + 400
    assert features.lost_mentions == [] and features.warnings == []
    model = ckpt.build_model().eval()
    windows = model.encoder.windows_for(features.num_tokens)
    assert windows >= 5
    # mentions all along the document: in each k-th of it (so every window holds some)
    markers = features.mention_pos[features.mention_mask > 0]
    part = np.minimum(markers * windows // features.num_tokens, windows - 1)
    assert set(part.tolist()) == set(range(windows))
    batch = collate([features], pad_id=featurizer.spec.pad_id)
    with torch.no_grad():
        encoded = model.encode(to_tensors(batch, torch.device("cpu"), MODEL_INPUTS))
    rows = encoded.entity_attn[0, : features.num_entities].sum(-1)  # [n, K]
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-5)


def test_pytorch_onnx_runtime_and_triton_give_the_same_triples(model_files, server, long_doc):
    ckpt = model_files["ckpt"]
    docs = [long_doc, model_files["docs"][0]]  # a long and a short document in one batch
    predictor = Predictor(ckpt.build_model(), ckpt.featurizer(), device="cpu")
    expected = _triples(predictor.predict(docs))
    assert expected[0], "the test needs a document with triples"
    sessions = {name: graph.session(1, "cpu") for name, graph in model_files["graphs"].items()}
    pipeline = OnnxPipeline(sessions, ckpt.featurizer(), window=ckpt.config.window)
    assert _triples(pipeline.predict(docs)) == expected
    relations = model_files["relations"]
    for url, protocol in ((server.http_url, "http"), (server.grpc_url, "grpc")):
        with PaeeClient(url, protocol=protocol, timeout_s=300, retries=1) as client:
            served = client.predict_many(docs, concurrency=2, whole=True)
        assert [{(t["h_idx"], t["t_idx"], relations.index(t["r"])) for t in r["triples"]} for r in served] == expected
        assert all("warnings" not in r for r in served)


def test_served_truncation_happens_only_when_the_request_asks(model_files, server):
    doc = _repeated(model_files, TOO_LONG_TOKENS)
    with PaeeClient(server.http_url, timeout_s=300, retries=0) as client:
        with pytest.raises(PaeeServingError, match=r"max_length=4096.*\"truncate\": true"):
            client.predict(doc)
    with PaeeClient(server.grpc_url, protocol="grpc", timeout_s=300, retries=0, truncate=True) as client:
        result = client.predict_raw(doc)
    assert result["warnings"][0].startswith("truncated from ")
    lost = result["warnings"][1:]
    assert lost and all(w.startswith("lost entity ") for w in lost)


def test_paee_predict_refuses_a_too_long_document_unless_asked_and_then_reports_the_loss(model_files, long_doc, tmp_path):
    docs = tmp_path / "docs.json"
    docs.write_text(json.dumps([long_doc.to_json()]))
    command = [sys.executable, "-m", "paee.cli.predict", "--checkpoint", str(model_files["checkpoint"]),
               "--input", str(docs), "--out", str(tmp_path / "result.json"), "--max-length", "1024", "--names"]
    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode == 2
    assert "more than max_length=1024" in refused.stderr and "--truncate" in refused.stderr
    assert not (tmp_path / "result.json").exists()
    cut = subprocess.run([*command, "--truncate"], capture_output=True, text=True)
    assert cut.returncode == 0, cut.stderr
    warned = json.loads((tmp_path / "result.warnings.json").read_text())
    assert warned[0]["title"] == long_doc.title and any(w.startswith("lost entity") for w in warned[0]["warnings"])
    assert "truncated to max_length=1024" in cut.stderr
    records = json.loads((tmp_path / "result.json").read_text())
    assert all(r["warnings"] == warned[0]["warnings"] for r in records)


def test_a_model_never_keeps_truncation_from_its_training(model_files, tmp_path):
    """Trained with --truncate (as ATLOP-style scripts do): prediction and serving still refuse, not cut."""
    config = model_files["ckpt"].config.to_dict()
    config["featurizer"]["truncate"] = True  # what checkpoints saved before this rule carry
    restored = PaeeConfig.from_dict(config)
    assert restored.featurizer.truncate is False
    ckpt = Checkpoint.from_model(model_files["ckpt"].build_model(), model_files["tokenizer"])
    ckpt.save(tmp_path / "best.pt")
    assert Checkpoint.load(tmp_path / "best.pt").featurizer().config.truncate is False


def test_parity_grows_documents_to_2_4_and_8_windows_whatever_the_models_relations(model_files):
    """The export's long parity documents: exact window counts, also for a model that knows none of the
    synthetic corpus' relations (a Re-DocRED checkpoint)."""
    from paee.data.featurizer import FeaturizerConfig
    from paee.data.relations import RelationVocab
    from paee_export.pipeline import PARITY_WINDOWS, window_documents

    ckpt = model_files["ckpt"]
    encoder = ckpt.build_model().encoder
    foreign = RelationVocab.from_rel2id({"Na": 0, "P17": 1})
    for relations in (ckpt.config.relations, foreign):
        featurizer = Featurizer(model_files["tokenizer"], FeaturizerConfig(**ckpt.config.featurizer.to_json()), relations)
        docs, left_out = window_documents(featurizer, model_files["docs"][0], encoder)
        assert left_out == {}
        assert [encoder.windows_for(featurizer.featurize(d.without_labels()).num_tokens) for d in docs] == list(PARITY_WINDOWS)
