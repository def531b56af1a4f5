"""The real-pair head gives the same numbers as the old N x N head, for every variant and backbone.

``fixtures/head_map_golden.npz`` holds what the head computed before it worked on real pairs (the whole
42 x 42 map, then cropped to each document's n (n - 1) ordered pairs, row-major), with the same seeded
weights and inputs as below. The new head reads the pairs from ``pair_index`` and must agree within 1e-5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from paee.data.featurizer import pair_slots
from paee.model.head import HeadConfig, HeadGraph
from paee.runtime.contract import ModelDims

GOLDEN = Path(__file__).parent / "fixtures" / "head_map_golden.npz"
GOLDEN_COUNTS = (1, 2, 7, 19, 42)  # real entities per document; N = 42
L, S, H, K, R, T, N = 37, 5, 32, 4, 5, 4, 42
CASES = [(v, b) for v in ("paee", "wo_eer", "wo_sw", "wo_ppp") for b in ("tnet", "unet")]
CASES += [("atlop", "tnet"), ("wo_par", "tnet")]
DIMS = ModelDims(max_entities=N, max_mentions=3, max_sentences=8, hidden_size=H, num_heads=K, num_relations=R,
                 num_entity_types=T)


def golden_inputs(seed: int = 7) -> dict[str, torch.Tensor]:
    """The seeded head inputs the fixture was computed from (do not change: the fixture depends on it)."""
    gen = torch.Generator().manual_seed(seed)
    counts = torch.tensor(GOLDEN_COUNTS)
    batch = len(GOLDEN_COUNTS)
    entity_mask = (torch.arange(N) < counts.unsqueeze(-1)).float()
    sent_mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]] * batch)
    bounds = torch.tensor([[0, 9], [9, 20], [20, 30], [30, 37], [0, 0]])
    real = (entity_mask[:, :, None] * entity_mask[:, None, :]).long()
    return {
        "token_emb": torch.randn(batch, L, H, generator=gen),
        "entity_emb": torch.randn(batch, N, H, generator=gen),
        "entity_attn": torch.rand(batch, N, K, L, generator=gen).softmax(-1),
        "entity_type": torch.randint(1, T, (batch, N), generator=gen) * entity_mask.long(),
        "entity_mask": entity_mask,
        "sent_span": bounds.expand(batch, S, 2).contiguous(),
        "sent_mask": sent_mask,
        "same_sent": torch.randint(0, 2, (batch, N, N), generator=gen) * real,
    }


def pair_inputs(counts: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """pair_index / pair_mask as `collate` builds them."""
    index, mask = pair_slots(counts)
    return torch.from_numpy(index), torch.from_numpy(mask)


def golden_head(variant: str, backbone: str) -> HeadGraph:
    config = HeadConfig(pair_dim=12, map_channels=4, map_out_channels=9, tnet_top_k=8, tnet_location_hidden=3,
                        ppp_hidden=6, ppp_embed_dim=3, eer_layers=1, eer_heads=2, eer_dim=10, eer_ffn_dim=14,
                        eer_dropout=0.0, emb_size=16, block_size=8, variant=variant, backbone=backbone)
    torch.manual_seed(0)
    return HeadGraph(config, DIMS).eval()


@pytest.mark.parametrize(("variant", "backbone"), CASES, ids=[f"{v}-{b}" for v, b in CASES])
def test_real_pair_head_equals_the_map_head(variant: str, backbone: str) -> None:
    golden = np.load(GOLDEN)
    pair_index, pair_mask = pair_inputs(GOLDEN_COUNTS)
    with torch.no_grad():
        out = golden_head(variant, backbone)(**golden_inputs(), pair_index=pair_index, pair_mask=pair_mask)
    assert out.logits.shape == (len(GOLDEN_COUNTS), N * (N - 1), R)
    real = pair_mask.bool()
    np.testing.assert_allclose(out.logits[real].numpy(), golden[f"{variant}-{backbone}-logits"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(out.pair_prob[real].numpy(), golden[f"{variant}-{backbone}-pair_prob"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(out.subj_logits.numpy(), golden[f"{variant}-{backbone}-subj_logits"], atol=1e-5, rtol=0)


def test_a_batch_pays_only_for_its_largest_pair_count() -> None:
    """Documents of 3 and 5 entities: P = 20 pair rows, not N x N = 1,764; the rows of the 3-entity
    document are the same whether it is alone or batched with the larger one."""
    inputs = golden_inputs()
    head = golden_head("paee", "tnet")
    pick = [2, 3]  # documents with 7 and 19 entities
    sub = {k: v[pick] for k, v in inputs.items()}
    counts = (GOLDEN_COUNTS[2], GOLDEN_COUNTS[3])
    pair_index, pair_mask = pair_inputs(counts)
    with torch.no_grad():
        both = head(**sub, pair_index=pair_index, pair_mask=pair_mask)
        alone_index, alone_mask = pair_inputs(counts[:1])
        alone = head(**{k: v[:1] for k, v in sub.items()}, pair_index=alone_index, pair_mask=alone_mask)
    assert both.logits.shape[1] == 19 * 18
    assert alone.logits.shape[1] == 7 * 6
    np.testing.assert_allclose(both.logits[0, : 7 * 6].numpy(), alone.logits[0].numpy(), atol=1e-5, rtol=0)


def test_a_checkpoint_written_by_the_map_head_runs_the_pair_path_unchanged() -> None:
    """``fixtures/checkpoint_v2_map_head.pt`` was saved by the N x N head (commit fb8472f), with its outputs
    on three synthetic documents: the same file loads and gives the same logits and triples today."""
    from paee.checkpoint import Checkpoint
    from paee.data.synthetic import generate_corpus
    from paee.inference import Predictor

    fixtures = Path(__file__).parent / "fixtures"
    ckpt = Checkpoint.load(fixtures / "checkpoint_v2_map_head.pt")
    old = np.load(fixtures / "checkpoint_v2_map_head_outputs.npz")
    docs = generate_corpus(n_docs=6, seed="paee-compat")[:3]
    predictor = Predictor(ckpt.build_model(), ckpt.featurizer(), device="cpu")
    outputs = predictor.outputs_for_features(ckpt.featurizer().featurize_many(docs))
    for i, out in enumerate(outputs):
        np.testing.assert_allclose(out.logits, old[f"doc{i}-logits"], atol=1e-5, rtol=0)
        np.testing.assert_allclose(out.pair_prob, old[f"doc{i}-pair_prob"], atol=1e-5, rtol=0)
    triples = [(i, t.head, t.tail, t.relation) for i, ts in enumerate(predictor.predict(docs)) for t in ts]
    assert triples == [tuple(row) for row in old["triples"].tolist()] and len(triples) == 30
