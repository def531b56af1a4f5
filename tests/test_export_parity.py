"""End to end without torch: OnnxPipeline (featurize -> collate -> encoder/encoder_long -> head -> decode)
against paee.inference.Predictor, and the parity report, on synthetic documents with long ones."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from paee.data.featurizer import Featurizer, FeaturizerConfig  # noqa: E402
from paee.data.relations import RelationVocab  # noqa: E402
from paee.data.synthetic import generate_corpus, rel2id  # noqa: E402
from paee.inference import Predictor  # noqa: E402
from paee.model.paee import build_model  # noqa: E402
from paee.training.setup import make_model_config, prepare_encoder  # noqa: E402
from paee.runtime.contract import ENCODER, ENCODER_LONG, HEAD  # noqa: E402
from paee.runtime.pipeline import OnnxPipeline  # noqa: E402
from paee.runtime.sessions import SessionError, create_session  # noqa: E402
from paee_export.onnx_export import export_graphs  # noqa: E402
from paee_export.parity import (  # noqa: E402
    Variant, evidence_agreement, format_parity_table, parity_report, triple_agreement,
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    docs = generate_corpus(n_docs=8, seed=1)  # 2 of the 8 exceed 512 wordpieces with this vocabulary
    source = prepare_encoder("tiny", docs)
    relations = RelationVocab.from_rel2id(rel2id())
    config = FeaturizerConfig()
    torch.manual_seed(1)
    model = build_model(make_model_config(source, relations, config)).eval()
    featurizer = Featurizer(source.tokenizer, config, relations)
    exported = export_graphs(model, tmp_path_factory.mktemp("graphs"), validate=False)
    return model, featurizer, relations, docs, {name: e.path for name, e in exported.items()}


def _pipeline(paths, featurizer, graphs=(ENCODER, ENCODER_LONG, HEAD), batch_size=3) -> OnnxPipeline:
    sessions = {name: create_session(paths[name], "fp32") for name in graphs}
    return OnnxPipeline(sessions, featurizer, window=512, batch_size=batch_size)


def test_documents_cover_both_length_buckets(setup):
    _, featurizer, _, docs, _ = setup
    lengths = [f.num_tokens for f in featurizer.featurize_many(docs)]
    assert min(lengths) <= 512 < max(lengths)


def test_onnx_pipeline_gives_the_predictors_triples(setup):
    model, featurizer, relations, docs, paths = setup
    expected = Predictor(model, featurizer, device="cpu", batch_size=3).predict(docs)
    got = _pipeline(paths, featurizer).predict(docs)
    assert sum(len(t) for t in expected) > 0  # random weights still predict triples: a real comparison
    assert [[(t.head, t.tail, t.relation) for t in doc] for doc in got] == [
        [(t.head, t.tail, t.relation) for t in doc] for doc in expected
    ]
    for doc_got, doc_expected in zip(got, expected):
        for a, b in zip(doc_got, doc_expected):
            assert abs(a.score - b.score) <= 1e-4


def test_pipeline_without_the_long_graph_says_which_graph_is_missing(setup):
    _, featurizer, _, docs, paths = setup
    pipeline = _pipeline(paths, featurizer, graphs=(ENCODER, HEAD))
    with pytest.raises(SessionError, match="encoder_long"):
        pipeline.predict(docs)


def test_parity_report_covers_graphs_and_end_to_end(setup):
    model, featurizer, _, docs, paths = setup
    variants = {"cpu-fp32": Variant(_pipeline(paths, featurizer), "fp32", files=[paths[HEAD]])}
    report = parity_report(model, docs[:6], featurizer, variants, batch_size=3)
    entry = report["variants"]["cpu-fp32"]
    assert entry["encoder"]["token_emb"]["max_abs"] <= 1e-4
    assert entry["head"]["logits"]["max_abs"] <= 1e-4
    assert entry["end_to_end"]["logits"]["max_abs"] <= 1e-4
    assert entry["end_to_end"]["triples"]["jaccard"] == 1.0
    assert entry["head"]["evidence_dist"]["max_abs"] <= 1e-5 and entry["end_to_end"]["evidence_dist"]["max_abs"] <= 1e-5
    evidence = entry["end_to_end"]["evidence"]  # the same evidence sets on every triple both predict
    assert evidence["compared_triples"] >= 10 and evidence["differing"] == 0, evidence
    assert evidence["identical"] * evidence["compared_triples"] + evidence["borderline"] == evidence["compared_triples"]
    assert entry["end_to_end"]["f1_change"] == 0.0  # synthetic documents are labelled
    assert report["long_documents"] >= 1
    assert report["versions"]["onnxruntime"]
    table = format_parity_table(report)
    assert "cpu-fp32" in table and "jaccard" in table and "same evi" in table


def test_triple_agreement_counts():
    from paee.data.decode import Triple

    ref = [[Triple(0, 1, 2, 1.0), Triple(1, 0, 3, 1.0)], []]
    other = [[Triple(0, 1, 2, 0.5)], []]
    agreement = triple_agreement(ref, other)
    assert agreement["jaccard"] == 0.5 and agreement["identical_documents"] == 0.5


def test_evidence_agreement_counts():
    """Two triples both predict: one with the same evidence, one differing at sentence 2, whose reference share
    (0.20003) lies within 1e-4 of the threshold 0.2: borderline; at sentence 1 (share 0.5) it would differ."""
    import numpy as np

    from paee.data.decode import Triple
    from paee.runtime.pipeline import DocOutput

    ref = [[Triple(0, 1, 2, 1.0, (0,)), Triple(1, 0, 3, 1.0, (0, 2)), Triple(1, 0, 1, 1.0, (0,))]]
    other = [[Triple(0, 1, 2, 0.9, (0,)), Triple(1, 0, 3, 0.9, (0,))]]
    shares = np.array([[0.7, 0.1, 0.1, 0.1], [0.3, 0.5, 0.20003, 0.0]], dtype=np.float32)
    out = DocOutput(np.array([[0, 1], [1, 0]]), np.zeros((2, 4), np.float32), np.ones(2, np.float32), shares)
    agreement = evidence_agreement(ref, other, [out], threshold=0.2)
    assert agreement == {"compared_triples": 2.0, "reference_sentences": 3.0, "identical": 0.5, "borderline": 1.0, "differing": 0.0,
                         "jaccard": 2 / 3}
    other[0][1] = Triple(1, 0, 3, 0.9, (0, 1, 2))
    assert evidence_agreement(ref, other, [out], threshold=0.2)["differing"] == 1.0
    assert evidence_agreement(ref, other)["borderline"] == 0.0  # without the shares nothing is borderline
