"""Microbenchmarks of the pipeline's stages on a tiny model (pytest-benchmark): featurize, encoder, head,
decode, and the pair stage batched against the per-pair loop.

    pytest benchmarks/ --benchmark-only [--benchmark-json out.json]

Each benchmark warms up, records its sizes in ``extra_info``, and checks its result after timing (a fast
wrong answer is no benchmark). PyTorch runs on one thread (`conftest.tiny_setup`).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pytest_benchmark")

ROUNDS = 20


def _sizes(setup) -> dict:
    return {"tokens": int(setup.batch["input_ids"].shape[1]), "entities": int(setup.batch["entity_mask"][0].sum()),
            "pairs": int(setup.batch["pair_mask"][0].sum())}


def test_featurize(benchmark, tiny_setup):
    features = benchmark.pedantic(tiny_setup.featurizer.featurize, args=(tiny_setup.doc,), rounds=ROUNDS, warmup_rounds=2)
    benchmark.extra_info.update(_sizes(tiny_setup))
    assert features.num_entities == tiny_setup.doc.num_entities


def test_encoder(benchmark, tiny_setup):
    t, model = tiny_setup.tensors, tiny_setup.model

    def run():
        with torch.no_grad():
            return model.encode(t)

    out = benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=2)
    benchmark.extra_info.update(_sizes(tiny_setup))
    assert out.token_emb.shape[:2] == t["input_ids"].shape


def _encoded(setup):
    t = setup.tensors
    with torch.no_grad():
        return setup.model.encode(t)


def test_head(benchmark, tiny_setup):
    t, model, enc = tiny_setup.tensors, tiny_setup.model, _encoded(tiny_setup)

    def run():
        with torch.no_grad():
            return model.run_head(t, enc)

    out = benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=2)
    benchmark.extra_info.update(_sizes(tiny_setup))
    assert torch.isfinite(out.logits).all()


def test_decode(benchmark, tiny_setup):
    from paee.data.decode import decode

    t, model = tiny_setup.tensors, tiny_setup.model
    with torch.no_grad():
        out = model(t)
    logits, pair_prob, pair_index = out.logits[0].numpy(), out.pair_prob[0].numpy(), t["pair_index"][0].numpy()
    n = int(t["entity_mask"][0].sum())
    triples = benchmark.pedantic(decode, args=(logits, pair_index), kwargs={"pair_prob": pair_prob}, rounds=ROUNDS * 5,
                                 warmup_rounds=2)
    benchmark.extra_info.update(_sizes(tiny_setup))
    assert all(0 <= tr.head < n and 0 <= tr.tail < n and tr.head != tr.tail for tr in triples)


@pytest.mark.parametrize("implementation", ["batched", "whole_map", "per_pair"])
def test_pair_stage(benchmark, tiny_setup, implementation):
    """The head's pair features: our batched stage on the real pairs against the whole N x N map and the
    peers' per-pair loop (`paee_bench.head_loop`)."""
    from paee_bench import head_loop

    t, model, enc = tiny_setup.tensors, tiny_setup.model, _encoded(tiny_setup)
    fn = getattr(head_loop, implementation)
    with torch.no_grad():
        out = benchmark.pedantic(fn, args=(model, enc, t), rounds=5 if implementation == "per_pair" else ROUNDS,
                                 warmup_rounds=1)
        reference = head_loop.batched(model, enc, t)
    benchmark.extra_info.update(_sizes(tiny_setup))
    real = t["pair_mask"][0] > 0
    assert torch.allclose(out[0][real], reference[0][real], rtol=1e-4, atol=1e-5)
