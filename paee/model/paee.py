"""PaeeModel: the composition EncoderGraph -> HeadGraph (+ losses), and `build_model` from a PaeeConfig.

`PaeeModel.encoder` and `PaeeModel.head` are the two exported graphs (DESIGN.md section 3): nothing
happens between them but handing tensors over (`encode`, then `run_head`), so the exported modules are
the trained ones. The batch keys are the tensor contract's (`paee.runtime.contract.MODEL_INPUTS`).
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

from torch import Tensor, nn

from paee.model.config import PaeeConfig
from paee.model.encoder import EncoderGraph, EncoderOutput
from paee.model.head import HeadGraph, HeadOutput
from paee.model.losses import PaeeCriterion, PaeeLoss
from paee.runtime.contract import ENCODER_INPUTS, HEAD_FEATURES, MODEL_INPUTS, TRAINING_TARGETS


class PaeeOutput(NamedTuple):
    logits: Tensor  # [B, P, R] relation logits of each pair, class 0 = adaptive threshold
    pair_prob: Tensor  # [B, P] Potential Pair Prediction probability (1 without PPP)
    evidence_dist: Tensor  # [B, P, S] each sentence's share of the pair's attention a(s,o)
    loss: PaeeLoss | None  # None when the batch carries no targets


class PaeeModel(nn.Module):
    """EncoderGraph + HeadGraph + losses.

    `head` is any module with HeadGraph's interface (keyword inputs: the encoder's outputs and the
    contract's `HEAD_FEATURES`; output with logits, pair_logit, pair_prob, evidence_dist, subj_logits, obj_logits).
    """

    def __init__(self, encoder: EncoderGraph, head: nn.Module, criterion: PaeeCriterion,
                 config: PaeeConfig | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.criterion = criterion
        self.config = config  # kept for checkpoints (`config.to_dict()`); None for hand-built models

    def encode(self, batch: Mapping[str, Tensor]) -> EncoderOutput:
        """The encoder graph on a batch (its `ENCODER_INPUTS`)."""
        return self.encoder(**{key: batch[key] for key in ENCODER_INPUTS})

    def run_head(self, batch: Mapping[str, Tensor], encoded: EncoderOutput) -> HeadOutput:
        """The head graph on the encoder's outputs and the batch's `HEAD_FEATURES`."""
        return self.head(**encoded._asdict(), **{key: batch[key] for key in HEAD_FEATURES})

    def forward(self, batch: Mapping[str, Tensor]) -> PaeeOutput:
        missing = [key for key in MODEL_INPUTS if key not in batch]
        if missing:
            raise ValueError(f"batch lacks input keys {missing}; it has {sorted(batch)}")
        encoded = self.encode(batch)
        out = self.run_head(batch, encoded)
        targets = [key for key in TRAINING_TARGETS if key in batch]
        if not targets:
            return PaeeOutput(logits=out.logits, pair_prob=out.pair_prob, evidence_dist=out.evidence_dist, loss=None)
        if len(targets) != len(TRAINING_TARGETS):
            # a half-labelled batch is a featurizer bug, not a request for a partial loss
            absent = [key for key in TRAINING_TARGETS if key not in batch]
            raise ValueError(f"batch has targets {targets} but lacks {absent}")
        loss = self.criterion(out, batch, encoded.entity_attn)
        return PaeeOutput(logits=out.logits, pair_prob=out.pair_prob, evidence_dist=out.evidence_dist, loss=loss)


def build_model(config: PaeeConfig, encoder_dir: str | None = None) -> PaeeModel:
    """PaeeModel from its config: random encoder weights, or a local pretrained encoder directory."""
    encoder = EncoderGraph.from_config(config, encoder_dir)
    head = HeadGraph(config.head, config.dims)
    criterion = PaeeCriterion.for_head(config.loss, config.head)
    return PaeeModel(encoder, head, criterion, config)
