"""PaeeModel composition (encoder -> head -> losses), build_model and PaeeConfig, on tiny odd sizes."""

from __future__ import annotations

import dataclasses
import json
from typing import NamedTuple

import pytest
import torch
from torch import Tensor, nn

from paee.data.featurizer import FeaturizerConfig, pair_slots
from paee.data.relations import RelationVocab
from paee.model.config import LossWeights, PaeeConfig, tiny_bert_config
from paee.model.encoder import EncoderGraph
from paee.model.losses import PaeeCriterion
from paee.model.paee import PaeeModel, build_model
from paee.model.head import evidence_distribution, sentence_attention
from paee.model.pair_map import gather_entities, pair_context, pairs_attention

# odd, pairwise different sizes so that a mixed-up axis fails instead of broadcasting
B, L, N, M, S, R, H, K, T = 2, 23, 7, 3, 5, 5, 32, 4, 4
VOCAB = 99
NUM_REAL = [4, 6]  # real entities per document; slots NUM_REAL[b]..N-1 are padding


class StandInOutput(NamedTuple):
    logits: Tensor
    pair_logit: Tensor
    pair_prob: Tensor
    evidence_dist: Tensor
    subj_logits: Tensor
    obj_logits: Tensor


class StandInHead(nn.Module):
    """Smallest head with HeadGraph's interface: [e_s; e_o; ATLOP context c(s,o)] -> linear layers."""

    def __init__(self) -> None:
        super().__init__()
        self.type_emb = nn.Embedding(T, H)
        self.rel = nn.Linear(3 * H, R)
        self.pot = nn.Linear(3 * H, 1)
        self.roles = nn.Linear(H, 2 * R)

    def forward(self, token_emb, entity_emb, entity_attn, entity_type, entity_mask, sent_span, sent_mask, same_sent,
                pair_index, pair_mask):
        entity = entity_emb + self.type_emb(entity_type) * entity_mask.unsqueeze(-1)  # [B, N, H]
        context = pair_context(token_emb, entity_attn, pair_index)  # [B, P, H]
        subject = gather_entities(entity, pair_index[..., 0])  # [B, P, H]
        obj = gather_entities(entity, pair_index[..., 1])  # [B, P, H]
        pair = torch.cat([subject, obj, context], dim=-1)  # [B, P, 3H]
        pair_logit = self.pot(pair).squeeze(-1)  # [B, P]
        subj, obj = self.roles(entity).chunk(2, dim=-1)  # [B, N, R] x2
        evidence = evidence_distribution(sentence_attention(pairs_attention(entity_attn, pair_index), sent_span, sent_mask))
        return StandInOutput(self.rel(pair), pair_logit, torch.sigmoid(pair_logit), evidence, subj, obj)


def _encoder() -> EncoderGraph:
    from transformers import AutoConfig, AutoModel

    settings = tiny_bert_config(VOCAB)
    config = AutoConfig.for_model(settings.pop("model_type"), **settings)
    torch.manual_seed(0)
    backbone = AutoModel.from_config(config, add_pooling_layer=False)
    return EncoderGraph(backbone, window=512, start_tokens=[2], end_tokens=[3])


def _batch(seed: int = 0, targets: bool = True) -> dict[str, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    lengths = [L, 17]
    attention_mask = torch.zeros(B, L, dtype=torch.long)
    for b, length in enumerate(lengths):
        attention_mask[b, :length] = 1
    input_ids = torch.randint(4, VOCAB, (B, L), generator=gen) * attention_mask
    mention_pos = torch.zeros(B, N, M, dtype=torch.long)
    mention_mask = torch.zeros(B, N, M)
    entity_type = torch.zeros(B, N, dtype=torch.long)
    entity_mask = torch.zeros(B, N)
    for b, n in enumerate(NUM_REAL):
        for e in range(n):
            count = 1 + e % M
            mention_pos[b, e, :count] = torch.randint(1, lengths[b] - 1, (count,), generator=gen)
            mention_mask[b, e, :count] = 1
        entity_type[b, :n] = torch.randint(1, T, (n,), generator=gen)
        entity_mask[b, :n] = 1
    sent_span = torch.tensor([[0, 5], [5, 11], [11, 17], [17, 23], [0, 0]]).expand(B, S, 2).clone()
    sent_mask = torch.tensor([[1.0, 1, 1, 1, 0], [1.0, 1, 1, 0, 0]])
    same_sent = torch.randint(0, 2, (B, N, N), generator=gen)
    pair_index, pair_mask = (torch.from_numpy(x) for x in pair_slots(NUM_REAL))  # [B, P, 2], [B, P]
    batch = {
        "input_ids": input_ids, "attention_mask": attention_mask, "mention_pos": mention_pos,
        "mention_mask": mention_mask, "entity_type": entity_type, "entity_mask": entity_mask,
        "sent_span": sent_span, "sent_mask": sent_mask, "same_sent": same_sent,
        "pair_index": pair_index, "pair_mask": pair_mask,
    }  # fmt: skip
    if targets:
        P = pair_mask.shape[1]
        positive = (torch.rand(B, P, R - 1, generator=gen) < 0.2).float() * pair_mask.unsqueeze(-1)
        has_relation = positive.amax(-1)  # [B, P]
        labels = torch.cat([((1 - has_relation) * pair_mask).unsqueeze(-1), positive], dim=-1)  # [B, P, R]
        subj = torch.zeros(B, N, R).scatter_reduce(1, pair_index[..., :1].expand(B, P, R), labels, "amax")
        obj = torch.zeros(B, N, R).scatter_reduce(1, pair_index[..., 1:].expand(B, P, R), labels, "amax")
        batch.update(labels=labels, has_relation=has_relation, subj_roles=subj, obj_roles=obj)
    return batch


def _model() -> PaeeModel:
    torch.manual_seed(1)
    return PaeeModel(_encoder(), StandInHead(), PaeeCriterion(LossWeights())).eval()


def test_output_shapes_and_loss() -> None:
    model = _model()
    with torch.no_grad():
        out = model(_batch())
        bare = model(_batch(targets=False))
    P = max(n * (n - 1) for n in NUM_REAL)
    assert out.logits.shape == (B, P, R)
    assert out.pair_prob.shape == (B, P)
    assert out.loss is not None and out.loss.total.shape == ()
    assert all(torch.isfinite(part) for part in out.loss)
    assert bare.loss is None


def test_mixed_up_dimensions_fail() -> None:
    model = _model()
    batch = _batch()
    swapped = dict(batch, mention_mask=batch["mention_mask"].transpose(1, 2))  # [B, M, N] instead of [B, N, M]
    with pytest.raises(ValueError, match="shape mismatch"):
        model(swapped)
    wrong_classes = dict(batch, labels=torch.zeros(B, batch["pair_mask"].shape[1], N))  # R axis of size N
    with pytest.raises(RuntimeError):
        model(wrong_classes)
    half_labelled = {k: v for k, v in batch.items() if k != "obj_roles"}
    with pytest.raises(ValueError, match="obj_roles"):
        model(half_labelled)


def test_backward_gives_finite_gradients_in_encoder_and_head() -> None:
    model = _model().train()
    model(_batch()).loss.total.backward()
    for part in (model.encoder, model.head):
        grads = [p.grad for p in part.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


def _perturb_padding(batch: dict[str, Tensor], seed: int) -> dict[str, Tensor]:
    """Garbage in every padded slot: padded entities and padded mentions of real entities."""
    gen = torch.Generator().manual_seed(seed)
    padded_mention = batch["mention_mask"] == 0
    noise_pos = torch.randint(0, L, (B, N, M), generator=gen)
    padded_entity = batch["entity_mask"] == 0
    noise_type = torch.randint(1, T, (B, N), generator=gen)
    return dict(
        batch,
        mention_pos=torch.where(padded_mention, noise_pos, batch["mention_pos"]),
        entity_type=torch.where(padded_entity, noise_type, batch["entity_type"]),
    )


def _assert_real_pairs_unchanged(model: nn.Module) -> None:
    batch = _batch(targets=False)
    with torch.no_grad():
        clean = model(batch).logits
        noisy = model(_perturb_padding(batch, seed=7)).logits
    for b, n in enumerate(NUM_REAL):
        assert torch.allclose(clean[b, : n * (n - 1)], noisy[b, : n * (n - 1)], atol=1e-5)


def test_padding_entities_do_not_affect_real_pairs() -> None:
    _assert_real_pairs_unchanged(_model())


# --- with the real HeadGraph --------------------------------------------------------------------------


def _tiny_head_config():
    head = pytest.importorskip("paee.model.head")
    return head.HeadConfig(
        pair_dim=16, map_out_channels=16, map_channels=8, tnet_patch_size=3, tnet_top_k=2,
        tnet_location_hidden=8, ppp_hidden=8, ppp_embed_dim=4, eer_layers=1, eer_heads=2, eer_dim=16,
        eer_ffn_dim=24, emb_size=16, block_size=8,
    )  # fmt: skip


#: The data's sizes: N entities, M mentions, S sentences, T - 1 entity types; R relation classes.
FEATURIZER = FeaturizerConfig(max_entities=N, max_mentions=M, max_sentences=S, entity_types=("A", "B", "C"))
RELATIONS = RelationVocab.from_ids(["r1", "r2", "r3", "r4"])


def _tiny_config(**overrides) -> PaeeConfig:
    settings = dict(
        encoder=tiny_bert_config(VOCAB), featurizer=FEATURIZER, relations=RELATIONS,
        start_tokens=[2], end_tokens=[3], head=_tiny_head_config(),
    )  # fmt: skip
    settings.update(overrides)
    return PaeeConfig(**settings)


def test_config_round_trips_through_json() -> None:
    config = _tiny_config(loss=LossWeights(at=1.0, pot=0.5, role=2.0))
    restored = PaeeConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config
    assert restored.head == config.head and restored.loss.pot == 0.5
    assert config.max_length == config.featurizer.max_length == 4096  # the featurizer's limit, not the encoder's
    dims = config.dims  # every size derived once: N, M, S from the featurizer, R from the relations, H, K
    assert (dims.max_entities, dims.max_mentions, dims.max_sentences, dims.num_relations, dims.hidden_size,
            dims.num_heads, dims.num_entity_types) == (N, M, S, R, H, K, T)  # fmt: skip


def test_config_mistakes_name_the_bad_values() -> None:
    with pytest.raises(ValueError, match=r"window \(600\) exceeds .*max_position_embeddings \(512\)"):
        _tiny_config(window=600)
    with pytest.raises(ValueError, match="'bogus'"):
        PaeeConfig.from_dict(dict(_tiny_config().to_dict(), bogus=1))
    with pytest.raises(ValueError, match="model_type"):
        PaeeConfig(encoder={"hidden_size": 32}, featurizer=FEATURIZER, relations=RELATIONS)
    with pytest.raises(ValueError, match=r"tnet_top_k \(17\) exceeds the 16 cells of the TNet grid \(4 x 4"):
        _tiny_config(head=dataclasses.replace(_tiny_head_config(), tnet_top_k=17))  # N=7, patch 3: a 4 x 4 grid


def test_build_model_with_real_head_trains_and_ignores_padding() -> None:
    torch.manual_seed(0)
    model = build_model(_tiny_config())
    assert isinstance(model.encoder, EncoderGraph) and model.config is not None
    out = model.train()(_batch())
    P = max(n * (n - 1) for n in NUM_REAL)
    assert out.logits.shape == (B, P, R) and out.pair_prob.shape == (B, P)
    out.loss.total.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    _assert_real_pairs_unchanged(model.eval())


def test_build_model_loads_a_local_pretrained_encoder(tmp_path) -> None:
    from transformers import AutoConfig, AutoModel

    config = _tiny_config()
    settings = dict(config.encoder)
    torch.manual_seed(3)
    saved = AutoModel.from_config(AutoConfig.for_model(settings.pop("model_type"), **settings))
    saved.save_pretrained(tmp_path)
    model = build_model(config, encoder_dir=str(tmp_path))
    loaded = model.encoder.backbone.state_dict()
    assert all(torch.equal(loaded[name], value) for name, value in saved.state_dict().items() if name in loaded)
    roberta = dict(config.encoder, model_type="roberta")  # the directory holds a BERT
    with pytest.raises(ValueError, match=r"model_type .*\('bert'\) differs from config.encoder \('roberta'\)"):
        build_model(_tiny_config(encoder=roberta), encoder_dir=str(tmp_path))


def test_the_relation_loss_is_recorded_and_configs_saved_before_it_say_atloss() -> None:
    config = _tiny_config()
    assert config.loss.relation_loss == "paper"  # eq. 9 by default
    saved = config.to_dict()
    assert PaeeConfig.from_dict(saved).loss.relation_loss == "paper"
    del saved["loss"]["relation_loss"]  # a configuration written before the field existed
    assert PaeeConfig.from_dict(saved).loss.relation_loss == "atlop"
