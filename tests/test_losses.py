"""Loss terms on hand-computed cases (the arithmetic is written out beside each expectation)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from paee.model.config import LossWeights
from paee.model.losses import (
    PaeeCriterion,
    adaptive_threshold_loss,
    evidence_attention_loss,
    potential_pair_loss,
    role_loss,
)


def _at_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """B=1, N=2: pair rows (0,1), (1,0) real and one padded row; R=3 classes (0 = TH)."""
    logits = torch.zeros(1, 3, 3)
    labels = torch.zeros(1, 3, 3)
    logits[0, 0] = torch.tensor([0.0, 1.0, -1.0])  # pair (0,1): relation 1
    labels[0, 0] = torch.tensor([0.0, 1.0, 0.0])
    logits[0, 1] = torch.tensor([2.0, 0.0, 1.0])  # pair (1,0): no relation (TH label set)
    labels[0, 1] = torch.tensor([1.0, 0.0, 0.0])
    logits[0, 2] = torch.tensor([-50.0, 40.0, 9.0])  # padded pair row: garbage, masked out
    labels[0, 2] = torch.tensor([0.0, 1.0, 1.0])
    pair_mask = torch.tensor([[1.0, 1.0, 0.0]])
    return logits, labels, pair_mask


def test_adaptive_threshold_loss_hand_computed() -> None:
    logits, labels, pair_mask = _at_case()
    labels_before = labels.clone()
    # pair (0,1), logits TH=0, r1=1, r2=-1, positive {r1}:
    #   positives above TH: -log(e^1 / (e^0 + e^1)) = log(1 + e^-1)
    #   TH above negatives {r2}: -log(e^0 / (e^0 + e^-1)) = log(1 + e^-1)
    pair01 = 2 * math.log(1 + math.exp(-1))  # 0.626523
    # pair (1,0), logits TH=2, r1=0, r2=1, no positive:
    #   positives above TH: empty set -> 0
    #   TH above negatives {r1, r2}: -log(e^2 / (e^2 + e^0 + e^1)) = log(1 + e^-2 + e^-1)
    pair10 = math.log(1 + math.exp(-2) + math.exp(-1))  # 0.407606
    expected = (pair01 + pair10) / 2  # mean over the 2 valid pairs = 0.517064
    loss = adaptive_threshold_loss(logits, labels, pair_mask)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert torch.equal(labels, labels_before)  # labels are never changed in place


def test_adaptive_threshold_loss_two_positives() -> None:
    # one pair, logits TH=0, r1=2, r2=1, both positive, no negative:
    #   positives above TH over {TH, r1, r2}: lse = log(1 + e^2 + e^1);
    #   -(2 - lse) - (1 - lse) = 2 * lse - 3
    #   TH above negatives over {TH}: -log(1) = 0
    logits = torch.tensor([0.0, 2.0, 1.0]).reshape(1, 1, 3)
    labels = torch.tensor([0.0, 1.0, 1.0]).reshape(1, 1, 3)
    lse = math.log(1 + math.exp(2) + math.exp(1))
    loss = adaptive_threshold_loss(logits, labels, torch.ones(1, 1))
    assert loss.item() == pytest.approx(2 * lse - 3, abs=1e-6)


def test_potential_pair_loss_hand_computed() -> None:
    pair_logit = torch.tensor([[2.0, -1.0, 30.0]])  # rows (0,1), (1,0), padding
    has_relation = torch.tensor([[1.0, 0.0, 0.0]])
    pair_mask = torch.tensor([[1.0, 1.0, 0.0]])
    # real (0,1): y=1, x=2  -> -log(sigmoid(2))      = log(1 + e^-2) = 0.126928
    # real (1,0): y=0, x=-1 -> -log(1 - sigmoid(-1)) = log(1 + e^-1) = 0.313262
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))) / 2  # 0.220095
    loss = potential_pair_loss(pair_logit, has_relation, pair_mask)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_role_loss_hand_computed() -> None:
    # N=2 entities (entity 1 is padding), R=2 classes
    logits = torch.tensor([[[0.0, 1.0], [5.0, -5.0]]])
    roles = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    entity_mask = torch.tensor([[1.0, 0.0]])
    # entity 0: class 0 y=1, x=0 -> log 2; class 1 y=0, x=1 -> log(1 + e^1); mean over 1 entity x 2 classes
    expected = (math.log(2) + math.log(1 + math.e)) / 2  # 1.003204
    assert role_loss(logits, roles, entity_mask).item() == pytest.approx(expected, abs=1e-6)


def _head_output(logits: torch.Tensor, num_entities: int = 2) -> SimpleNamespace:
    B, P, R = logits.shape
    return SimpleNamespace(
        logits=logits,
        pair_logit=torch.full((B, P), 2.0),
        subj_logits=torch.zeros(B, num_entities, R),
        obj_logits=torch.zeros(B, num_entities, R),
    )


def _targets(labels: torch.Tensor, pair_mask: torch.Tensor, num_entities: int = 2) -> dict[str, torch.Tensor]:
    B, P, R = labels.shape
    return {
        "labels": labels,
        "pair_mask": pair_mask,
        "pair_index": torch.tensor([[[0, 1], [1, 0], [0, 0]]]).expand(B, P, 2),
        "has_relation": torch.ones(B, P),
        "subj_roles": torch.ones(B, num_entities, R),
        "obj_roles": torch.zeros(B, num_entities, R),
        "entity_mask": torch.ones(B, num_entities),
    }


def test_criterion_weights_and_variants() -> None:
    logits, labels, pair_mask = _at_case()
    out, batch = _head_output(logits), _targets(labels, pair_mask)
    at = adaptive_threshold_loss(logits, labels, pair_mask).item()
    pot = math.log(1 + math.exp(-2))  # every valid pair y=1, x=2
    sub = obj = math.log(2)  # every role logit is 0
    # total = at * L_AT + pot * L_pot + role * (L_sub + L_obj) / 2 with weights 1, 0.5, 2
    loss = PaeeCriterion(LossWeights(at=1.0, pot=0.5, role=2.0))(out, batch)
    assert loss.pot.item() == pytest.approx(pot, abs=1e-6)
    assert loss.sub.item() == pytest.approx(sub, abs=1e-6) and loss.obj.item() == pytest.approx(obj, abs=1e-6)
    assert loss.total.item() == pytest.approx(at + 0.5 * pot + 2.0 * (sub + obj) / 2, abs=1e-5)
    # a head without PPP and EER: those terms are zero, the total is the AT loss alone
    bare = PaeeCriterion.for_head(LossWeights(), SimpleNamespace(flags=SimpleNamespace(use_ppp=False, use_eer=False)))(out, batch)
    assert bare.pot.item() == bare.sub.item() == bare.obj.item() == 0.0
    assert bare.total.item() == pytest.approx(at, abs=1e-6)


def test_loss_weights_reject_negative() -> None:
    with pytest.raises(ValueError, match="-1"):
        LossWeights(pot=-1.0)


def _evidence_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """B=1, N=2, K=1, L=4; sentence 0 = tokens [0, 2), sentence 1 = [2, 4); a third slot is padding.
    Pair rows (0,1), (1,0) and a padded row."""
    entity_attn = torch.tensor([[[[0.1, 0.2, 0.3, 0.4]], [[0.25, 0.25, 0.25, 0.25]]]])  # [1, 2, 1, 4]
    pair_index = torch.tensor([[[0, 1], [1, 0], [0, 0]]])
    sent_span = torch.tensor([[[0, 2], [2, 4], [0, 0]]])
    sent_mask = torch.tensor([[1.0, 1.0, 0.0]])
    evidence = torch.zeros(1, 3, 3)
    evidence[0, 0, 1] = 1.0  # pair (0,1): sentence 1
    evidence[0, 1, 0] = evidence[0, 1, 1] = 1.0  # pair (1,0): sentences 0 and 1
    return entity_attn, pair_index, sent_span, sent_mask, evidence


def test_evidence_attention_loss_hand_computed() -> None:
    entity_attn, pair_index, sent_span, sent_mask, evidence = _evidence_case()
    # a(s,o) = A_0 * A_1 / sum = [0.1, 0.2, 0.3, 0.4] for both orders: sentence mass [0.3, 0.7]
    kl_01 = -math.log(0.7)  # target [0, 1]
    kl_10 = 0.5 * math.log(0.5 / 0.3) + 0.5 * math.log(0.5 / 0.7)  # target [0.5, 0.5]
    loss = evidence_attention_loss(entity_attn, pair_index, sent_span, sent_mask, evidence)
    assert loss.item() == pytest.approx((kl_01 + kl_10) / 2, abs=1e-4)
    # evidence on a padded sentence slot is dropped: pair (0,1) then has none and no longer counts
    evidence[0, 0] = torch.tensor([0.0, 0.0, 1.0])
    assert evidence_attention_loss(entity_attn, pair_index, sent_span, sent_mask, evidence).item() == pytest.approx(
        kl_10, abs=1e-4
    )
    # no evidence anywhere: zero, not NaN
    assert evidence_attention_loss(entity_attn, pair_index, sent_span, sent_mask, torch.zeros_like(evidence)).item() == 0.0


def test_criterion_adds_the_weighted_evidence_term_only_when_asked() -> None:
    logits, labels, pair_mask = _at_case()
    entity_attn, pair_index, sent_span, sent_mask, evidence = _evidence_case()
    batch = {**_targets(labels, pair_mask), "sent_span": sent_span, "sent_mask": sent_mask, "evidence": evidence}
    out = _head_output(logits)
    plain = PaeeCriterion(LossWeights())(out, batch)  # the paper's loss: no attention needed
    assert plain.evidence.item() == 0.0
    guided = PaeeCriterion(LossWeights(evidence=0.1))(out, batch, entity_attn)
    expected = evidence_attention_loss(entity_attn, pair_index, sent_span, sent_mask, evidence).item()
    assert guided.evidence.item() == pytest.approx(expected, abs=1e-6) and expected > 0
    assert guided.total.item() == pytest.approx(plain.total.item() + 0.1 * expected, abs=1e-5)
    with pytest.raises(ValueError, match="entity_attn"):
        PaeeCriterion(LossWeights(evidence=0.1))(out, batch)


def test_the_papers_loss_equals_atloss_with_at_most_one_relation_per_pair() -> None:
    from paee.model.losses import balanced_softmax_loss

    logits, labels, pair_mask = _at_case()  # one relation on (0,1), none on (1,0)
    assert balanced_softmax_loss(logits, labels, pair_mask).item() == pytest.approx(
        adaptive_threshold_loss(logits, labels, pair_mask).item(), abs=1e-6)


def test_the_papers_loss_on_a_two_relation_pair_hand_computed() -> None:
    from paee.model.losses import balanced_softmax_loss

    # one pair, logits TH=0, r1=2, r2=1, r3=-1; positives {r1, r2}, negative {r3}:
    #   log(e^{s_TH} + e^{s_r3}) + log(e^{-s_TH} + e^{-s_r1} + e^{-s_r2}) = log(1 + e^-1) + log(1 + e^-2 + e^-1)
    logits = torch.tensor([0.0, 2.0, 1.0, -1.0]).reshape(1, 1, 4)
    labels = torch.tensor([0.0, 1.0, 1.0, 0.0]).reshape(1, 1, 4)
    expected = math.log(1 + math.exp(-1)) + math.log(1 + math.exp(-2) + math.exp(-1))  # 0.7808
    assert balanced_softmax_loss(logits, labels, torch.ones(1, 1)).item() == pytest.approx(expected, abs=1e-6)
    # ATLoss on the same pair: 2 * log(1 + e^2 + e^1) - 3 + log(1 + e^-1) = 1.1946: the two differ here
    at = 2 * math.log(1 + math.exp(2) + math.exp(1)) - 3 + math.log(1 + math.exp(-1))
    assert adaptive_threshold_loss(logits, labels, torch.ones(1, 1)).item() == pytest.approx(at, abs=1e-5)


def test_the_criterion_uses_the_configured_relation_loss_and_old_configs_say_atloss() -> None:
    from paee.model.config import RELATION_LOSS_NAMES
    from paee.model.losses import RELATION_LOSSES, balanced_softmax_loss

    assert set(RELATION_LOSSES) == set(RELATION_LOSS_NAMES)
    logits = torch.tensor([0.0, 2.0, 1.0, -1.0]).reshape(1, 1, 4)
    labels = torch.tensor([0.0, 1.0, 1.0, 0.0]).reshape(1, 1, 4)
    out = SimpleNamespace(logits=logits, pair_logit=torch.zeros(1, 1), subj_logits=torch.zeros(1, 1, 4),
                          obj_logits=torch.zeros(1, 1, 4))
    batch = {"labels": labels, "pair_mask": torch.ones(1, 1), "has_relation": torch.ones(1, 1),
             "subj_roles": torch.zeros(1, 1, 4), "obj_roles": torch.zeros(1, 1, 4), "entity_mask": torch.ones(1, 1)}
    bare = dict(use_ppp=False, use_eer=False)
    paper = PaeeCriterion(LossWeights(), **bare)(out, batch).total.item()
    atlop = PaeeCriterion(LossWeights(relation_loss="atlop"), **bare)(out, batch).total.item()
    assert paper == pytest.approx(balanced_softmax_loss(logits, labels, torch.ones(1, 1)).item()) and paper != atlop
    with pytest.raises(ValueError, match="relation_loss must be one of"):
        LossWeights(relation_loss="focal")
