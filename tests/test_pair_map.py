"""Pair features and map filling (paee.model.pair_map) against brute-force loops."""

from __future__ import annotations

import pytest
import torch

from paee.model.pair_map import (
    PairFeatures,
    block_mask,
    entity_counts,
    fill_index,
    gather_pairs,
    localized_context,
    pair_context,
    sliding_fill,
    zero_fill,
)

N = 42  # the default HeadConfig.max_entities (DocRED maximum)
D = 3  # odd channel count so that mixed-up axes fail


def _all_counts_map() -> tuple[torch.Tensor, torch.Tensor]:
    """One document per n in 1..N, each with its own random map: ([N, N, N, D], counts [N])."""
    torch.manual_seed(0)
    return torch.randn(N, N, N, D), torch.arange(1, N + 1)


def test_sliding_fill_equals_tiling_formula_for_every_n() -> None:
    pair_map, counts = _all_counts_map()
    filled = sliding_fill(pair_map, counts)  # one batched gather for all 42 documents
    assert filled.shape == (N, N, N, D)
    for doc, n in enumerate(counts.tolist()):
        expected = torch.empty(N, N, D)
        for i in range(N):
            for j in range(N):
                expected[i, j] = pair_map[doc, i % n, j % n]
        assert torch.equal(filled[doc], expected), f"sliding fill wrong for n={n}"


def test_sliding_fill_identity_at_full_and_reads_only_real_block() -> None:
    pair_map, counts = _all_counts_map()
    assert torch.equal(sliding_fill(pair_map[-1:], counts[-1:]), pair_map[-1:])  # n = N
    # Values outside each n x n block are never read.
    outside = 1.0 - block_mask(counts, N).unsqueeze(-1)  # [B, N, N, 1]
    noisy = pair_map + 100.0 * outside * torch.randn_like(pair_map)
    assert torch.equal(sliding_fill(noisy, counts), sliding_fill(pair_map, counts))


def test_zero_fill_keeps_block_and_zeros_the_rest() -> None:
    pair_map, counts = _all_counts_map()
    filled = zero_fill(pair_map, counts)
    for doc, n in enumerate(counts.tolist()):
        assert torch.equal(filled[doc, :n, :n], pair_map[doc, :n, :n])
        assert filled[doc, n:].abs().sum() == 0 and filled[doc, :, n:].abs().sum() == 0


def test_entity_counts_and_fill_index() -> None:
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert entity_counts(mask).tolist() == [2, 1]  # an all-padding filler document counts as 1
    assert fill_index(torch.tensor([3]), 7).tolist() == [[0, 1, 2, 0, 1, 2, 0]]


def test_localized_context_matches_loop() -> None:
    torch.manual_seed(1)
    batch, num_ent, heads, length, hidden = 2, 7, 4, 11, 5
    tokens = torch.randn(batch, length, hidden)
    attn = torch.rand(batch, num_ent, heads, length).softmax(-1)
    context = localized_context(tokens, attn)
    assert context.shape == (batch, num_ent, num_ent, hidden)
    for b in range(batch):
        for s in range(num_ent):
            for o in range(num_ent):
                a = (attn[b, s] * attn[b, o]).mean(0)  # [L]
                a = a / (a.sum() + 1e-5)
                torch.testing.assert_close(context[b, s, o], a @ tokens[b])


def test_pair_features_shape_and_enrichment() -> None:
    torch.manual_seed(2)
    features = PairFeatures(hidden_size=5, pair_dim=6, num_entity_types=4)
    context = torch.randn(2, 7, 7, 5)
    types = torch.randint(0, 4, (2, 7))
    same = torch.randint(0, 2, (2, 7, 7))
    out = features.map_features(context, types, same)
    assert out.shape == (2, 7, 7, 6)
    flipped = features.map_features(context, types, 1 - same)
    assert not torch.allclose(out, flipped)  # the same-sentence bit reaches V
    # the listed pairs get their map cell: same arithmetic
    pair_index = torch.tensor([[[0, 1], [6, 2], [3, 3]], [[5, 4], [1, 0], [2, 6]]])
    listed = features.pair_features(gather_pairs(context, pair_index), types, same, pair_index)
    torch.testing.assert_close(listed, gather_pairs(out, pair_index))


def test_pair_context_equals_the_maps_cells() -> None:
    torch.manual_seed(4)
    token_emb = torch.randn(2, 11, 5)
    entity_attn = torch.rand(2, 7, 3, 11).softmax(-1)
    pair_index = torch.tensor([[[0, 1], [6, 2], [3, 4]], [[5, 4], [1, 0], [2, 6]]])
    whole = localized_context(token_emb, entity_attn)  # [2, 7, 7, 5]
    torch.testing.assert_close(pair_context(token_emb, entity_attn, pair_index), gather_pairs(whole, pair_index))


@pytest.mark.parametrize("fill", [sliding_fill, zero_fill])
def test_fill_rejects_nothing_for_n_equal_one(fill) -> None:  # noqa: ANN001
    pair_map = torch.randn(1, N, N, D)
    out = fill(pair_map, torch.tensor([1]))
    assert torch.isfinite(out).all() and out.shape == pair_map.shape


@pytest.mark.parametrize(("fill", "reference"), [("sliding", sliding_fill), ("zero", zero_fill)])
def test_fill_map_from_the_blocks_rows_equals_the_map_fill(fill, reference) -> None:
    """The head fills the map from the n x n block's rows (pairs, then the diagonal): the same map as the
    map-form fill, for every n of a batch padded to the most pairs."""
    from paee.data.featurizer import pair_slots
    from paee.model.pair_map import block_rows, fill_map

    counts = [1, 2, 5, 13, N]
    pair_map = torch.randn(len(counts), N, N, D)
    index, _ = pair_slots(counts)
    rows = block_rows(torch.from_numpy(index), N)  # [B, P + N, 2]
    values = gather_pairs(pair_map, rows)  # the block's cells as rows (padded rows read cell (0, 0))
    filled = fill_map(values, torch.tensor(counts), index.shape[1], fill)
    torch.testing.assert_close(filled, reference(pair_map, torch.tensor(counts)), rtol=0, atol=0)
