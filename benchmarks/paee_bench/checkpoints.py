"""Random-weight checkpoints built in code, for benchmarking without a trained model (nothing is downloaded).

``tiny``              the ``--encoder tiny`` model of `paee.training.setup` (hidden 64, 2 layers): tests, quick runs.
``bert-base-random``  a BERT-base-sized encoder (hidden 768, 12 layers, 12 heads, intermediate 3072) with
                      the default (full-size) head and a WordPiece tokenizer of `TOKENIZER_VOCAB` words
                      trained on the benchmark documents. Speed depends on sizes, not on weights, so this
                      is what a trained BERT-base PAEE costs; its predictions are meaningless.

Their threshold class is raised (`raise_threshold`) so that they predict DocRED's density of triples.
Both are saved as ordinary self-contained checkpoints (`paee.checkpoint`), so every backend
loads them exactly as it would load ``best.pt``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from paee.checkpoint import Checkpoint
from paee.data.featurizer import Featurizer, FeaturizerConfig
from paee.data.relations import RelationVocab
from paee.data.schema import Document
from paee.data.tokenizer import build_wordpiece_tokenizer
from paee.errors import PaeeUserError
from paee.inference import Predictor
from paee.model.config import tiny_bert_config
from paee.model.paee import PaeeModel, build_model
from paee.training.setup import EncoderSource, make_model_config, prepare_encoder

KINDS = ("tiny", "bert-base-random")
#: Triples per document a random model should predict: DocRED's density (about 12 facts per document).
#: Untouched, a random model fires about half of all (pair, relation) slots, thousands of triples per
#: document, and decoding and JSON, not the model, become what is measured; its parity figures then
#: measure noise around the threshold.
FACTS_PER_DOCUMENT = 12.0
#: Documents whose margins set a random model's threshold (more cost time, not precision).
THRESHOLD_DOCUMENTS = 50
#: BERT-base sizes (Devlin et al. 2019).
BERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
#: WordPiece vocabulary of the BERT-base-sized tokenizer (smaller than BERT's 28996: the corpus is small;
#: the embedding table's size does not change the encoder's cost).
TOKENIZER_VOCAB = 8000


def random_model(kind: str, docs: Sequence[Document], relations: RelationVocab, featurizer_config: FeaturizerConfig,
                 seed: int = 0) -> tuple[PaeeModel, EncoderSource]:
    """(model in eval mode, `EncoderSource`) of a random-weight model of ``kind``; the tokenizer learns ``docs``."""
    if kind not in KINDS:
        raise PaeeUserError(f"checkpoint kind {kind!r} is not one of {KINDS}")
    if not docs:
        raise PaeeUserError("a random model needs documents to train its tokenizer on")
    if kind == "tiny":
        source = prepare_encoder("tiny", docs)
    else:
        texts = [" ".join(" ".join(s) for s in d.sents) for d in docs]
        tokenizer = build_wordpiece_tokenizer(texts, vocab_size=TOKENIZER_VOCAB)
        source = EncoderSource(tiny_bert_config(vocab_size=tokenizer.get_vocab_size(), **BERT_BASE), tokenizer, None, {})
    torch.manual_seed(seed)
    model = build_model(make_model_config(source, relations, featurizer_config)).eval()
    return model, source


def raise_threshold(model: PaeeModel, featurizer: Featurizer, docs: Sequence[Document],
                    facts_per_document: float = FACTS_PER_DOCUMENT, device: str = "cpu") -> float:
    """Shift the threshold class's bias so that ``facts_per_document`` (pair, relation) margins per document
    of ``docs`` lie above it, on average (documents the featurizer refuses are left out); returns the shift."""
    features = [f for f in featurizer.featurize_many(docs, errors="collect") if not isinstance(f, Exception)]
    outputs = Predictor(model, featurizer, device=device).outputs_for_features(features)
    margins = np.concatenate([(o.logits[:, 1:] - o.logits[:, :1]).ravel() for o in outputs])  # logit_r - logit_TH
    fraction = min(1.0, facts_per_document * len(outputs) / max(1, margins.size))
    shift = float(np.quantile(margins, 1 - fraction))
    with torch.no_grad():
        model.head.classifier.bilinear.bias[0] += shift
    return shift


def make_checkpoint(kind: str, docs: Sequence[Document], relations: RelationVocab, path: str | Path,
                    featurizer_config: FeaturizerConfig | None = None, seed: int = 0) -> Path:
    """Write a random-weight checkpoint of ``kind`` to ``path`` (see the module docstring)."""
    featurizer_config = featurizer_config or FeaturizerConfig()
    model, source = random_model(kind, docs, relations, featurizer_config, seed)
    checkpoint = Checkpoint.from_model(model, source.tokenizer)
    shift = raise_threshold(model, checkpoint.featurizer(truncate=True), docs[:THRESHOLD_DOCUMENTS])
    checkpoint = Checkpoint.from_model(model, source.tokenizer, metadata={  # the state after the shift
        "made_by": "paee_bench.checkpoints", "kind": kind, "seed": seed, "weights": "random",
        "threshold_shift": shift, "facts_per_document": FACTS_PER_DOCUMENT,
    })  # fmt: skip
    path = Path(path)
    checkpoint.save(path)
    return path


__all__ = ["BERT_BASE", "FACTS_PER_DOCUMENT", "KINDS", "TOKENIZER_VOCAB", "make_checkpoint", "raise_threshold",
           "random_model"]
