"""PAEE losses (paper appendix A.1, eq. 9-12; DESIGN.md section 5.8).

* L_rel, the relation loss over the real pairs, with the learned threshold class TH = 0, one of
  `RELATION_LOSSES` (``LossWeights.relation_loss``):
  ``paper`` (eq. 9, the default): the balanced softmax ``log(e^{s_TH} + sum_neg e^{s_i}) +
  log(e^{-s_TH} + sum_pos e^{-s_i})``;
  ``atlop``: ATLOP's adaptive-threshold loss (each positive ranked above TH in one log-softmax over
  {positives, TH}, TH above the negatives). The two are equal on pairs with at most one relation and
  differ on pairs with several (27% of Re-DocRED dev's relational pairs).
* L_pot: binary cross-entropy of Potential Pair Prediction (pair has some relation), over valid pairs.
* L_sub, L_obj: binary cross-entropy of Cross Matching's subject/object role scores per class, over
  valid entities x R classes (eq. 11 divides by n_e * n_c).
* total = at * L_rel + pot * L_pot + role * (L_sub + L_obj) / 2 (eq. 12). Terms of components the head
  variant lacks (no PPP, no EER) are zero.
* L_evi (not in the paper, weight 0 by default): evidence-guided pair attention as in DREEAM (Ma et al.,
  EACL 2023). For each labelled pair with evidence sentences, KL(evidence || sentence mass of ATLOP's
  pair attention a(s,o)), at sentence level. It only shapes training (it has no parameter of its own) and
  needs DocRED's ``evidence`` labels; it lets an encoder trained from scratch find the words that state
  a relation (README, "Learning"). The same sentence mass, normalised, is the head's ``evidence_dist``: the
  evidence served with each triple (README, "Evidence").

Targets are never modified in place.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paee.model.config import LossWeights
from paee.model.head import sentence_attention, sentence_token_mask
from paee.model.pair_map import pairs_attention

TH_CLASS = 0  # the threshold / NA class of the relation logits


class PaeeLoss(NamedTuple):
    total: Tensor  # [] weighted sum (eq. 12)
    at: Tensor  # [] relation loss (eq. 9 or ATLoss, `RELATION_LOSSES`)
    pot: Tensor  # [] potential-pair BCE (0 without PPP)
    sub: Tensor  # [] subject-role BCE (0 without EER)
    obj: Tensor  # [] object-role BCE (0 without EER)
    evidence: Tensor  # [] evidence-attention KL (0 when its weight is 0)


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of `values` over entries where mask > 0 (mask broadcast to values); 0 when nothing is valid."""
    weight = mask.to(values.dtype).expand_as(values)
    return (values * weight).sum() / weight.sum().clamp(min=1.0)


def adaptive_threshold_loss(logits: Tensor, labels: Tensor, pair_mask: Tensor) -> Tensor:
    """ATLOP's adaptive-threshold loss, averaged over valid pairs.

    logits, labels: [B, P, R] (labels multi-hot; class 0 set on pairs without relation); pair_mask: [B, P].
    """
    th = torch.zeros_like(labels, dtype=torch.bool)
    th[..., TH_CLASS] = True  # [B, P, R] one-hot of the TH class (a new tensor, labels untouched)
    positive = (labels > 0) & ~th  # [B, P, R] the pair's relations, never TH itself
    lowest = torch.finfo(logits.dtype).min  # finite "minus infinity": fp16/bf16 safe, no inf * 0
    # rank positive classes above TH: log-softmax over {positives, TH}, scored at the positives
    log_p_pos = logits.masked_fill(~(positive | th), lowest).log_softmax(dim=-1)
    loss_pos = -torch.where(positive, log_p_pos, torch.zeros_like(log_p_pos)).sum(dim=-1)  # [B, P]
    # rank TH above negative classes: log-softmax over {negatives, TH}, scored at TH
    log_p_neg = logits.masked_fill(positive, lowest).log_softmax(dim=-1)
    loss_neg = -log_p_neg[..., TH_CLASS]  # [B, P]
    return _masked_mean(loss_pos + loss_neg, pair_mask)


def balanced_softmax_loss(logits: Tensor, labels: Tensor, pair_mask: Tensor) -> Tensor:
    """The paper's eq. 9, averaged over the real pairs: ``log(e^{s_TH} + sum_neg e^{s_i}) +
    log(e^{-s_TH} + sum_pos e^{-s_i})`` (a pair without relation: ``-log softmax_TH`` over {TH, negatives}).

    logits, labels: [B, P, R] (labels multi-hot; class 0 set on pairs without relation); pair_mask: [B, P].
    """
    th = torch.zeros_like(labels, dtype=torch.bool)
    th[..., TH_CLASS] = True  # [B, P, R]
    positive = (labels > 0) & ~th
    negative = ~positive & ~th
    lowest = torch.finfo(logits.dtype).min  # finite "minus infinity": fp16/bf16 safe
    negatives_over_th = torch.logsumexp(logits.masked_fill(~(negative | th), lowest), dim=-1)  # [B, P]
    positives_under_th = torch.logsumexp((-logits).masked_fill(~(positive | th), lowest), dim=-1)  # [B, P]
    return _masked_mean(negatives_over_th + positives_under_th, pair_mask)


#: The relation losses by name (`LossWeights.relation_loss`; checkpoints record which one trained them).
RELATION_LOSSES = {"paper": balanced_softmax_loss, "atlop": adaptive_threshold_loss}


def potential_pair_loss(pair_logit: Tensor, has_relation: Tensor, pair_mask: Tensor) -> Tensor:
    """BCE of pair_logit [B, P] against has_relation [B, P], averaged over the real pairs (pair_mask)."""
    bce = F.binary_cross_entropy_with_logits(pair_logit, has_relation.to(pair_logit.dtype), reduction="none")
    return _masked_mean(bce, pair_mask)


def role_loss(role_logits: Tensor, roles: Tensor, entity_mask: Tensor) -> Tensor:
    """BCE of role_logits [B, N, R] against roles [B, N, R], averaged over valid entities x R classes."""
    bce = F.binary_cross_entropy_with_logits(role_logits, roles.to(role_logits.dtype), reduction="none")
    return _masked_mean(bce, entity_mask.unsqueeze(-1))


def evidence_attention_loss(entity_attn: Tensor, pair_index: Tensor, sent_span: Tensor, sent_mask: Tensor,
                            evidence: Tensor) -> Tensor:
    """KL(evidence distribution || sentence mass of a(s,o)), averaged over pairs with evidence.

    entity_attn: [B, N, K, L]; pair_index: int64 [B, P, 2]; sent_span: int64 [B, S, 2] token spans
    ``[start, end)``; sent_mask: [B, S]; evidence: [B, P, S], 1 on the evidence sentences of each labelled
    pair. The target is uniform over a pair's evidence sentences (those with tokens); pairs without any
    contribute nothing.
    """
    inside = sentence_token_mask(sent_span, sent_mask, entity_attn.shape[-1])  # [B, S, L]
    # the head's `evidence_dist` is this mass, normalised over the sentences
    # fp32 from here on: under fp16 autocast the log floor below would underflow to log(0)
    sentence_mass = sentence_attention(pairs_attention(entity_attn, pair_index), sent_span, sent_mask).float()  # [B, P, S]
    target = evidence.float() * inside.any(dim=-1).float()[:, None, :]  # only sentences with tokens
    count = target.sum(dim=-1, keepdim=True)  # [B, P, 1]
    has_evidence = count.squeeze(-1) > 0  # [B, P]
    target = target / count.clamp(min=1.0)
    # KL with 0 * log 0 = 0; the floor keeps log finite where the attention put no mass on an evidence sentence
    kl = (target * (torch.log(target.clamp(min=1e-12)) - torch.log(sentence_mass.clamp(min=1e-10)))).sum(dim=-1)
    return _masked_mean(kl, has_evidence)


class PaeeCriterion(nn.Module):
    """Combines the loss terms with the configured weights; terms of absent components are zero.

    `use_ppp` / `use_eer` are the head variant's flags (`for_head`).
    """

    def __init__(self, weights: LossWeights | None = None, use_ppp: bool = True, use_eer: bool = True) -> None:
        super().__init__()
        self.weights = weights if weights is not None else LossWeights()
        self.use_ppp = use_ppp
        self.use_eer = use_eer

    @classmethod
    def for_head(cls, weights: LossWeights, head_config: Any) -> "PaeeCriterion":
        """The criterion of a head configuration: the terms of the components its variant has."""
        flags = head_config.flags
        return cls(weights, use_ppp=flags.use_ppp, use_eer=flags.use_eer)

    def forward(self, head_output: Any, batch: Mapping[str, Tensor], entity_attn: Tensor | None = None) -> PaeeLoss:
        """head_output: HeadOutput (logits, pair_logit, subj_logits, obj_logits); batch: targets and masks;
        entity_attn: the encoder's [B, N, K, L] rows, needed only when the evidence weight is above 0."""
        at = RELATION_LOSSES[self.weights.relation_loss](head_output.logits, batch["labels"], batch["pair_mask"])
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
        evidence = zero
        if w.evidence > 0:
            if entity_attn is None or "evidence" not in batch:
                raise ValueError("the evidence loss weight is above 0 but the criterion got no entity_attn or the "
                                 "batch no 'evidence' targets (collate adds them with num_relations)")
            evidence = evidence_attention_loss(entity_attn, batch["pair_index"], batch["sent_span"], batch["sent_mask"],
                                               batch["evidence"])
            total = total + w.evidence * evidence
        return PaeeLoss(total=total, at=at, pot=pot, sub=sub, obj=obj, evidence=evidence)
