"""PAEE losses (paper appendix A.1, eq. 9-12; DESIGN.md section 5.8).

* L_AT: adaptive-threshold loss with the learned threshold class TH = 0 (ATLOP's ATLoss): rank every
  positive class above TH, rank TH above every negative class; averaged over valid pairs.
* L_pot: binary cross-entropy of Potential Pair Prediction (pair has some relation), over valid pairs.
* L_sub, L_obj: binary cross-entropy of Cross Matching's subject/object role scores per class, over
  valid entities x R classes (eq. 11 divides by n_e * n_c).
* total = at * L_AT + pot * L_pot + role * (L_sub + L_obj) / 2 (eq. 12). Terms of components the head
  variant lacks (no PPP, no EER) are zero.

Targets are never modified in place.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paee.model.config import LossWeights

TH_CLASS = 0  # the threshold / NA class of the relation logits


class PaeeLoss(NamedTuple):
    total: Tensor  # [] weighted sum (eq. 12)
    at: Tensor  # [] adaptive-threshold relation loss
    pot: Tensor  # [] potential-pair BCE (0 without PPP)
    sub: Tensor  # [] subject-role BCE (0 without EER)
    obj: Tensor  # [] object-role BCE (0 without EER)


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of `values` over entries where mask > 0 (mask broadcast to values); 0 when nothing is valid."""
    weight = mask.to(values.dtype).expand_as(values)
    return (values * weight).sum() / weight.sum().clamp(min=1.0)


def adaptive_threshold_loss(logits: Tensor, labels: Tensor, pair_mask: Tensor) -> Tensor:
    """ATLOP's adaptive-threshold loss, averaged over valid pairs.

    logits, labels: [B, N, N, R] (labels multi-hot; class 0 set on pairs without relation);
    pair_mask: [B, N, N].
    """
    th = torch.zeros_like(labels, dtype=torch.bool)
    th[..., TH_CLASS] = True  # [B, N, N, R] one-hot of the TH class (a new tensor, labels untouched)
    positive = (labels > 0) & ~th  # [B, N, N, R] the pair's relations, never TH itself
    lowest = torch.finfo(logits.dtype).min  # finite "minus infinity": fp16/bf16 safe, no inf * 0
    # rank positive classes above TH: log-softmax over {positives, TH}, scored at the positives
    log_p_pos = logits.masked_fill(~(positive | th), lowest).log_softmax(dim=-1)
    loss_pos = -torch.where(positive, log_p_pos, torch.zeros_like(log_p_pos)).sum(dim=-1)  # [B, N, N]
    # rank TH above negative classes: log-softmax over {negatives, TH}, scored at TH
    log_p_neg = logits.masked_fill(positive, lowest).log_softmax(dim=-1)
    loss_neg = -log_p_neg[..., TH_CLASS]  # [B, N, N]
    return _masked_mean(loss_pos + loss_neg, pair_mask)


def potential_pair_loss(pair_logit: Tensor, has_relation: Tensor, pair_mask: Tensor) -> Tensor:
    """BCE of pair_logit [B, N, N] against has_relation [B, N, N], averaged over valid pairs."""
    bce = F.binary_cross_entropy_with_logits(pair_logit, has_relation.to(pair_logit.dtype), reduction="none")
    return _masked_mean(bce, pair_mask)


def role_loss(role_logits: Tensor, roles: Tensor, entity_mask: Tensor) -> Tensor:
    """BCE of role_logits [B, N, R] against roles [B, N, R], averaged over valid entities x R classes."""
    bce = F.binary_cross_entropy_with_logits(role_logits, roles.to(role_logits.dtype), reduction="none")
    return _masked_mean(bce, entity_mask.unsqueeze(-1))


class PaeeCriterion(nn.Module):
    """Combines the loss terms with the configured weights; terms of absent components are zero.

    `use_ppp` / `use_eer` mirror the head config (attributes of the same names; both on when absent).
    """

    def __init__(self, weights: LossWeights | None = None, use_ppp: bool = True, use_eer: bool = True) -> None:
        super().__init__()
        self.weights = weights if weights is not None else LossWeights()
        self.use_ppp = use_ppp
        self.use_eer = use_eer

    @classmethod
    def for_head(cls, weights: LossWeights, head_config: Any) -> "PaeeCriterion":
        return cls(
            weights,
            use_ppp=bool(getattr(head_config, "use_ppp", True)),
            use_eer=bool(getattr(head_config, "use_eer", True)),
        )

    def forward(self, head_output: Any, batch: Mapping[str, Tensor]) -> PaeeLoss:
        """head_output: HeadOutput (logits, pair_logit, subj_logits, obj_logits); batch: targets and masks."""
        at = adaptive_threshold_loss(head_output.logits, batch["labels"], batch["pair_mask"])
        zero = at.new_zeros(())
        pot = (
            potential_pair_loss(head_output.pair_logit, batch["has_relation"], batch["pair_mask"])
            if self.use_ppp
            else zero
        )
        if self.use_eer:
            sub = role_loss(head_output.subj_logits, batch["subj_roles"], batch["entity_mask"])
            obj = role_loss(head_output.obj_logits, batch["obj_roles"], batch["entity_mask"])
        else:
            sub = obj = zero
        w = self.weights
        total = w.at * at + w.pot * pot + w.role * (sub + obj) / 2
        return PaeeLoss(total=total, at=at, pot=pot, sub=sub, obj=obj)
