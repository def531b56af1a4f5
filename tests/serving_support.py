"""Session fixtures for the tests that need a running tritonserver (test_serving.py, test_loadtest.py).

Loaded with ``pytest_plugins = ["serving_support"]`` by those modules, so that one server per model
serves every test of the session (starting one costs ~10 s on 2 cores):

* ``model_files`` / ``server``: a tiny random model on the synthetic corpus, its repository (exported
  with the rule-based detector, so that it also takes plain text) on a real tritonserver (from the
  nvidia-pytriton wheel) on loopback.
* ``real_model_files`` / ``real_server``: a tiny random model whose tokenizer and relation vocabulary
  are Re-DocRED's (../shared/data; skipped when absent), serving a handful of real dev documents.

Skips only where no tritonserver is installed; one that is installed and does not start fails the tests
with the server's log tail (exactly what users would hit).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

#: BERT's window: documents longer than this (in wordpieces with markers) run on the long encoder graph.
WINDOW = 512
#: Synthetic documents compared with the in-process model: a few short ones and one longer than a window.
NUM_SHORT_DOCS = 3
#: Real documents served: short ones and ones longer than a window, picked among the first dev documents.
NUM_REAL_SHORT, NUM_REAL_LONG, REAL_POOL = 3, 2, 80
#: The real-data tokenizer is trained on this many dev documents (vocabulary like a real checkpoint's:
#: words stay mostly whole, so lengths in wordpieces are realistic).
REAL_TOKENIZER_DOCS = 40
#: A random model puts about half of all (pair, relation) margins above the threshold class; raising the
#: threshold logit leaves this many per document above it, like Re-DocRED's trained density (~35 facts).
REAL_FACTS_PER_DOCUMENT = 35


def _export_tiny(out: Path, model: Any, source: Any) -> dict[str, Any]:
    """Checkpoint and the cpu-fp32 plan's graphs (encoder, encoder_long, head) of a tiny model."""
    from paee.checkpoint import Checkpoint
    from paee_export.build import GraphBuilder
    from paee_export.plan import PLANS

    checkpoint = out / "best.pt"
    ckpt = Checkpoint.from_model(model, source.tokenizer)
    ckpt.save(checkpoint)
    plan = PLANS["cpu-fp32"]
    graphs = GraphBuilder(model, out / "onnx", ckpt.featurizer(), validate=False).build(plan)
    return {"checkpoint": checkpoint, "ckpt": ckpt, "plan": plan, "graphs": graphs, "tokenizer": source.tokenizer,
            "featurizer": ckpt.config.featurizer, "relations": ckpt.config.relations}


def start_server(files: dict[str, Any], out: Path, **repository_options: Any):
    """Write the repository of ``files`` (the tiny model) and start a tritonserver on free loopback ports."""
    from paee.serving.server import TritonServer, TritonServerError, find_triton
    from paee_export.repository import write_repository

    options = {"max_batch_size": 4, "instances": 1, "threads": 1, **repository_options}
    repo = write_repository(out / "paee_repo", files["ckpt"], files["plan"], files["graphs"], **options)
    try:
        find_triton()
    except TritonServerError as e:
        pytest.skip(f"no tritonserver: {e}")
    return TritonServer(repo, http_port=0, grpc_port=0, metrics_port=0, stop_timeout_s=20).start()


def _split_by_length(docs: Sequence[Any], lengths: Sequence[int], short: int, long: int) -> tuple[list, list]:
    shorts = [d for d, n in zip(docs, lengths) if n <= WINDOW][:short]
    longs = [d for d, n in zip(docs, lengths) if n > WINDOW][:long]
    assert len(shorts) == short and len(longs) == long, f"need {short} short and {long} long documents, lengths {lengths}"
    return shorts, longs


@pytest.fixture(scope="session")
def model_files(tmp_path_factory) -> dict[str, Any]:
    """The synthetic tiny model: checkpoint, exported graphs, and the documents to compare on."""
    from paee.data.featurizer import Featurizer, FeaturizerConfig
    from paee.data.relations import RelationVocab
    from paee.data.synthetic import generate_corpus, rel2id, rel_info
    from paee_bench.checkpoints import random_model

    out = tmp_path_factory.mktemp("serving")
    docs = generate_corpus(n_docs=16, seed=11)
    relations = RelationVocab.from_rel2id(rel2id(), rel_info())
    featurizer_config = FeaturizerConfig()
    model, source = random_model("tiny", docs, relations, featurizer_config, seed=0)
    files = _export_tiny(out, model, source)
    featurizer = Featurizer(source.tokenizer, featurizer_config)
    short, long = _split_by_length(docs, [featurizer.featurize(d).num_tokens for d in docs], NUM_SHORT_DOCS, 1)
    return {**files, "docs": short + long}


@pytest.fixture(scope="session")
def server(model_files, tmp_path_factory):
    from paee.data.detect import DetectionConfig

    triton = start_server(model_files, tmp_path_factory.mktemp("repo"), detection=DetectionConfig("rule"))
    yield triton
    triton.stop()


@pytest.fixture(scope="session")
def real_model_files(tmp_path_factory, redocred_dev_path, rel2id_path, rel_info_path) -> dict[str, Any]:
    """A tiny random model for Re-DocRED: its tokenizer, 97 relation classes, and real dev documents.

    The threshold class's bias is raised so that `REAL_FACTS_PER_DOCUMENT` (pair, relation) margins per
    served document lie above it: the model predicts some triples per document and
    leaves most pairs empty, so agreement of the triple sets tests the decision, not just "all" or "none".
    """
    import torch

    from paee.data.docred import read_documents
    from paee.data.featurizer import Featurizer, FeaturizerConfig
    from paee.data.relations import RelationVocab
    from paee.model.paee import build_model
    from paee.training.setup import make_model_config, prepare_encoder
    from paee_bench.checkpoints import raise_threshold

    out = tmp_path_factory.mktemp("serving_real")
    torch.manual_seed(0)
    relations = RelationVocab.from_files(rel2id_path, rel_info_path)
    pool = read_documents(redocred_dev_path, relations=relations)[:REAL_POOL]
    source = prepare_encoder("tiny", pool[:REAL_TOKENIZER_DOCS])
    featurizer_config = FeaturizerConfig()
    featurizer = Featurizer(source.tokenizer, featurizer_config, relations)
    lengths = [f.num_tokens for f in featurizer.featurize_many(pool)]
    short, long = _split_by_length(pool, lengths, NUM_REAL_SHORT, NUM_REAL_LONG)
    docs = short + long
    config = make_model_config(source, relations, featurizer_config)
    model = build_model(config).eval()

    raise_threshold(model, featurizer, docs, REAL_FACTS_PER_DOCUMENT)
    files = _export_tiny(out, model, source)
    return {**files, "docs": docs, "lengths": {d.title: n for d, n in zip(pool, lengths)}}


@pytest.fixture(scope="session")
def real_server(real_model_files, tmp_path_factory):
    triton = start_server(real_model_files, tmp_path_factory.mktemp("repo_real"))
    yield triton
    triton.stop()
