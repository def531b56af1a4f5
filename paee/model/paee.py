"""PaeeModel: the composition EncoderGraph -> HeadGraph (+ losses), and `build_model` from a PaeeConfig.

`PaeeModel.encoder` and `PaeeModel.head` are the two exported graphs (DESIGN.md section 3): nothing
happens between them here except handing tensors over, so the exported modules are the trained ones.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

from torch import Tensor, nn

from paee.model.config import PaeeConfig
from paee.model.encoder import EncoderGraph
from paee.model.losses import PaeeCriterion, PaeeLoss

#: Batch keys the model reads (README "Tensor contract").
ENCODER_KEYS = ("input_ids", "attention_mask", "mention_pos", "mention_mask")
HEAD_KEYS = ("entity_type", "entity_mask", "sent_span", "sent_mask", "same_sent")
#: Training targets; the loss is computed when all are present.
TARGET_KEYS = ("labels", "pair_mask", "has_relation", "subj_roles", "obj_roles")


class PaeeOutput(NamedTuple):
    logits: Tensor  # [B, N, N, R] relation logits, class 0 = adaptive threshold
    pair_prob: Tensor  # [B, N, N] Potential Pair Prediction probability (1 without PPP)
    loss: PaeeLoss | None  # None when the batch carries no targets


class PaeeModel(nn.Module):
    """EncoderGraph + HeadGraph + losses.

    `head` is any module with HeadGraph's interface (keyword inputs token_emb, entity_emb, entity_attn,
    entity_type, entity_mask, sent_span, sent_mask, same_sent; output with logits, pair_logit,
    pair_prob, subj_logits, obj_logits).
    """

    def __init__(
        self,
        encoder: EncoderGraph,
        head: nn.Module,
        criterion: PaeeCriterion,
        config: PaeeConfig | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.criterion = criterion
        self.config = config  # kept for checkpoints (`config.to_dict()`); None for hand-built models

    def forward(self, batch: Mapping[str, Tensor]) -> PaeeOutput:
        missing = [key for key in ENCODER_KEYS + HEAD_KEYS if key not in batch]
        if missing:
            raise ValueError(f"batch lacks input keys {missing}; it has {sorted(batch)}")
        encoded = self.encoder(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            mention_pos=batch["mention_pos"],
            mention_mask=batch["mention_mask"],
        )
        out = self.head(
            token_emb=encoded.token_emb,
            entity_emb=encoded.entity_emb,
            entity_attn=encoded.entity_attn,
            entity_type=batch["entity_type"],
            entity_mask=batch["entity_mask"],
            sent_span=batch["sent_span"],
            sent_mask=batch["sent_mask"],
            same_sent=batch["same_sent"],
        )
        targets = [key for key in TARGET_KEYS if key in batch]
        if not targets:
            return PaeeOutput(logits=out.logits, pair_prob=out.pair_prob, loss=None)
        if len(targets) != len(TARGET_KEYS):
            # a half-labelled batch is a featurizer bug, not a request for a partial loss
            absent = [key for key in TARGET_KEYS if key not in batch]
            raise ValueError(f"batch has targets {targets} but lacks {absent}")
        return PaeeOutput(logits=out.logits, pair_prob=out.pair_prob, loss=self.criterion(out, batch, encoded.entity_attn))


def build_model(config: PaeeConfig, encoder_dir: str | None = None) -> PaeeModel:
    """PaeeModel from its config: random encoder weights, or a local pretrained encoder directory."""
    # imported here: the composition (and its tests) accept any head with HeadGraph's interface
    from paee.model.head import HeadGraph

    encoder = EncoderGraph.from_config(config, encoder_dir)
    head = HeadGraph(config.head)
    criterion = PaeeCriterion.for_head(config.loss, config.head)
    return PaeeModel(encoder, head, criterion, config)
