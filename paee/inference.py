"""Prediction with the PyTorch model: documents in, relation triples out.

One path for everyone: `paee-predict`, the trainer's dev evaluation and the parity checks of the export
all run documents through the same featurizer, `collate`, model and decoder. Documents are batched in
order of length (less padding) and results come back in input order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from paee.data.decode import Triple, decode, to_result_records
from paee.data.featurizer import DocFeatures, Featurizer, collate
from paee.data.relations import RelationVocab
from paee.data.schema import Document
from paee.data.tokenizer import TokenizerSpec
from paee.model.paee import PaeeModel, build_model
from paee.training.checkpoint import load_checkpoint

#: Keys of the collated batch that the model consumes at inference (targets are left out).
MODEL_INPUT_KEYS = (
    "input_ids", "attention_mask", "mention_pos", "mention_mask", "entity_type", "entity_mask",
    "sent_span", "sent_mask", "same_sent",
)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def to_tensors(batch: dict[str, np.ndarray], device: torch.device, keys: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """numpy batch from `collate` -> tensors on `device` (only `keys` when given)."""
    return {k: torch.from_numpy(v).to(device) for k, v in batch.items() if keys is None or k in keys}


@dataclass(frozen=True)
class DocOutput:
    """Model outputs of one document, cropped to its n x n block."""

    logits: np.ndarray  # [n, n, R]
    pair_prob: np.ndarray  # [n, n]


def length_batches(features: Sequence[DocFeatures], batch_size: int) -> Iterator[list[int]]:
    """Indices of `features` in batches of similar length (longest first)."""
    order = sorted(range(len(features)), key=lambda i: -len(features[i].input_ids))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


@torch.no_grad()
def run_model(
    model: PaeeModel,
    features: Sequence[DocFeatures],
    pad_id: int,
    batch_size: int = 8,
    device: torch.device | None = None,
    progress: bool = False,
) -> list[DocOutput]:
    """Logits and potential-pair probabilities of every document, in input order."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs: list[DocOutput | None] = [None] * len(features)
    batches = list(length_batches(features, batch_size))
    for idx in tqdm(batches, desc="predict", unit="batch", disable=not progress):
        batch = collate([features[i] for i in idx], pad_id=pad_id)
        out = model(to_tensors(batch, device, MODEL_INPUT_KEYS))
        logits = out.logits.float().cpu().numpy()  # [B, N, N, R]
        pair_prob = out.pair_prob.float().cpu().numpy()  # [B, N, N]
        for row, i in enumerate(idx):
            n = features[i].num_entities
            outputs[i] = DocOutput(logits[row, :n, :n], pair_prob[row, :n, :n])
    model.train(was_training)
    return outputs  # type: ignore[return-value]


class Predictor:
    """Featurize, run the PyTorch model, decode: ``Predictor.from_checkpoint("best.pt").predict(docs)``."""

    def __init__(
        self,
        model: PaeeModel,
        featurizer: Featurizer,
        relations: RelationVocab,
        *,
        device: str | torch.device = "auto",
        batch_size: int = 8,
        gate_threshold: float | None = None,
        top_k: int | None = None,
    ):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.featurizer = featurizer
        self.relations = relations
        self.pad_id = TokenizerSpec.from_tokenizer(featurizer.tokenizer).pad_id
        self.batch_size = batch_size
        self.gate_threshold = gate_threshold
        self.top_k = top_k

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, *, device: str | torch.device = "auto", featurizer_overrides: dict | None = None, **kwargs
    ) -> Predictor:
        """Rebuild model and featurizer from a self-contained checkpoint; `featurizer_overrides`
        changes featurizer settings for this run (e.g. ``{"truncate": True}``)."""
        ckpt = load_checkpoint(path)
        model = build_model(ckpt.model_config)
        model.load_state_dict(ckpt.state_dict)
        featurizer_config = dataclasses.replace(ckpt.featurizer_config, **(featurizer_overrides or {}))
        featurizer = Featurizer(ckpt.tokenizer, featurizer_config, ckpt.relations)
        head = ckpt.model_config.head
        kwargs.setdefault("gate_threshold", head.ppp_threshold if head.gate_pairs else None)
        return cls(model, featurizer, ckpt.relations, device=device, **kwargs)

    def outputs(self, docs: Sequence[Document], progress: bool = False) -> list[DocOutput]:
        features = self.featurizer.featurize_many(docs)
        return run_model(self.model, features, self.pad_id, self.batch_size, self.device, progress)

    def predict(self, docs: Sequence[Document], progress: bool = False) -> list[list[Triple]]:
        """Triples (head, tail, relation index, score) of each document."""
        return [self._decode(o) for o in self.outputs(docs, progress)]

    def predict_records(
        self, docs: Sequence[Document], *, with_names: bool = False, with_scores: bool = False, progress: bool = False
    ) -> list[dict]:
        """Official DocRED ``result.json`` records ``{title, h_idx, t_idx, r}`` for all documents."""
        records: list[dict] = []
        for doc, triples in zip(docs, self.predict(docs, progress)):
            records += to_result_records(doc.title, triples, self.relations, with_names=with_names, with_scores=with_scores)
        return records

    def _decode(self, out: DocOutput) -> list[Triple]:
        n = out.logits.shape[0]
        return decode(out.logits, n, pair_prob=out.pair_prob, gate_threshold=self.gate_threshold, top_k=self.top_k)
