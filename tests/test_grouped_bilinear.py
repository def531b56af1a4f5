"""The classifier's training path (packed real pairs, chunked outer products) computes what its inference
path (ATLOP's one Linear over the outer products) computes, values and gradients."""

from __future__ import annotations

import torch

from paee.model.grouped_bilinear import TRAIN_CHUNK, ChunkedGroupedBilinear, GroupedBilinear


def test_chunked_function_equals_the_outer_product_linear_with_gradients() -> None:
    gen = torch.Generator().manual_seed(0)
    rows, groups, block, classes = 2 * TRAIN_CHUNK + 19, 3, 4, 5  # chunks of 64, 64 and 19
    z_s = torch.randn(rows, groups, block, generator=gen, requires_grad=True)
    z_o = torch.randn(rows, groups, block, generator=gen, requires_grad=True)
    linear = torch.nn.Linear(groups * block * block, classes)
    upstream = torch.randn(rows, classes, generator=gen)

    plain = linear((z_s.unsqueeze(-1) * z_o.unsqueeze(-2)).flatten(1))
    plain_grads = torch.autograd.grad((plain * upstream).sum(), (z_s, z_o, linear.weight, linear.bias))
    chunked = ChunkedGroupedBilinear.apply(z_s, z_o, linear.weight, linear.bias)
    chunked_grads = torch.autograd.grad((chunked * upstream).sum(), (z_s, z_o, linear.weight, linear.bias))
    torch.testing.assert_close(chunked, plain)
    for got, want in zip(chunked_grads, plain_grads):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_training_computes_the_real_pairs_only_and_agrees_with_inference() -> None:
    torch.manual_seed(0)
    module = GroupedBilinear(entity_dim=6, pair_dim=5, emb_size=8, block_size=4, num_relations=3)
    e_sub, e_obj, pair = torch.randn(2, 7, 6), torch.randn(2, 7, 6), torch.randn(2, 7, 5)
    pair_mask = torch.tensor([[1.0] * 7, [1.0] * 2 + [0.0] * 5])  # the second document has 2 real pairs
    module.eval()
    with torch.no_grad():
        inference = module(e_sub, e_obj, pair, pair_mask)
    module.train()
    training = module(e_sub, e_obj, pair, pair_mask)
    real = pair_mask > 0
    torch.testing.assert_close(training[real], inference[real])
    assert torch.equal(training[~real], torch.zeros_like(training[~real]))  # padded pairs are not computed
    training.sum().backward()
    assert module.bilinear.weight.grad is not None and torch.isfinite(module.bilinear.weight.grad).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the trainer's --amp bf16
        assert module(e_sub, e_obj, pair, pair_mask).dtype == torch.bfloat16
