"""Fixtures of the microbenchmarks (`test_micro.py`): a tiny random PAEE model and documents, built in code.

Run them with ``pytest benchmarks/micro --benchmark-only`` (the project's default options skip benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

#: Documents of the fixture; the first one of more than MIN_TOKENS wordpieces is the one benchmarked.
NUM_DOCS = 8
MIN_TOKENS = 200


@dataclass
class TinySetup:
    model: Any
    featurizer: Any
    pad_id: int
    doc: Any  # the benchmarked document
    batch: dict  # its collated batch (numpy)
    tensors: dict  # the same as torch tensors


@pytest.fixture(scope="session")
def tiny_setup() -> TinySetup:
    import torch

    from paee.data.featurizer import Featurizer, FeaturizerConfig, collate
    from paee.data.relations import RelationVocab
    from paee.data.synthetic import generate_corpus, rel2id, rel_info
    from paee.inference import to_tensors
    from paee.runtime.contract import MODEL_INPUTS
    from paee_bench.checkpoints import random_model

    torch.set_num_threads(1)  # comparable across machines with different core counts
    docs = generate_corpus(n_docs=NUM_DOCS, seed="paee-micro")
    relations = RelationVocab.from_rel2id(rel2id(), rel_info())
    config = FeaturizerConfig()
    model, source = random_model("tiny", docs, relations, config, seed=0)
    featurizer = Featurizer(source.tokenizer, config, relations)
    features = featurizer.featurize_many(docs)
    index = next(i for i, f in enumerate(features) if f.num_tokens > MIN_TOKENS)
    pad_id = featurizer.spec.pad_id
    batch = collate([features[index]], pad_id=pad_id, max_length=config.max_length)
    return TinySetup(model, featurizer, pad_id, docs[index], batch, to_tensors(batch, torch.device("cpu"), MODEL_INPUTS))
