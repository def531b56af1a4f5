"""HeadGraph: config, exact shapes, padding invariance, every variant x backbone, ONNX export."""

from __future__ import annotations

import json

import pytest
import torch

from paee.model.head import (
    PPP_OFF_LOGIT,
    VARIANTS,
    HeadConfig,
    HeadGraph,
    HeadOutput,
    evidence_distribution,
    sentence_attention,
    sentence_max_pool,
)
from paee.data.featurizer import pair_slots
from paee.model.pair_map import pairs_attention
from paee.runtime.contract import ModelDims

INPUT_NAMES = (
    "token_emb", "entity_emb", "entity_attn", "entity_type", "entity_mask", "sent_span", "sent_mask",
    "same_sent", "pair_index", "pair_mask",
)  # fmt: skip
L, S = 37, 5  # odd token and sentence counts so that mixed-up axes fail
NUM_TYPES = 4


def tiny_dims(max_entities: int = 7) -> ModelDims:
    """Odd sizes: H=32, K=4, R=5."""
    return ModelDims(max_entities=max_entities, max_mentions=3, max_sentences=8, hidden_size=32, num_heads=4,
                     num_relations=5, num_entity_types=NUM_TYPES)


def tiny_config(max_entities: int = 7, **overrides: object) -> HeadConfig:
    """Tiny head hyperparameters (TNet's top k fits the grid of ``max_entities``)."""
    values: dict[str, object] = dict(
        pair_dim=12, map_channels=4, map_out_channels=9, tnet_top_k=2 if max_entities < 12 else 8,
        tnet_location_hidden=3, ppp_hidden=6, ppp_embed_dim=3, eer_layers=1, eer_heads=2, eer_dim=10, eer_ffn_dim=14,
        eer_dropout=0.0, emb_size=16, block_size=8,
    )  # fmt: skip
    values.update(overrides)
    return HeadConfig(**values)  # type: ignore[arg-type]


def tiny_head(max_entities: int = 7, **overrides: object) -> HeadGraph:
    return HeadGraph(tiny_config(max_entities, **overrides), tiny_dims(max_entities))


def make_inputs(dims: ModelDims, counts: list[int], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random head inputs; document b has counts[b] real entities and 4 - b % 2 real sentences."""
    gen = torch.Generator().manual_seed(seed)
    batch, num_ent = len(counts), dims.max_entities
    entity_mask = (torch.arange(num_ent) < torch.tensor(counts).unsqueeze(-1)).float()  # [B, N]
    sent_counts = torch.tensor([4 - b % 2 for b in range(batch)])
    sent_mask = (torch.arange(S) < sent_counts.unsqueeze(-1)).float()  # [B, S]
    bounds = torch.tensor([[0, 9], [9, 20], [20, 30], [30, 37], [0, 0]])  # [S, 2]
    sent_span = bounds.expand(batch, S, 2) * sent_mask.long().unsqueeze(-1)  # padded spans [0, 0)
    pair_index, pair_mask = pair_slots(counts)
    return {
        "token_emb": torch.randn(batch, L, dims.hidden_size, generator=gen),
        "entity_emb": torch.randn(batch, num_ent, dims.hidden_size, generator=gen),
        "entity_attn": torch.rand(batch, num_ent, dims.num_heads, L, generator=gen).softmax(-1),
        "entity_type": torch.randint(1, NUM_TYPES, (batch, num_ent), generator=gen) * entity_mask.long(),
        "entity_mask": entity_mask,
        "sent_span": sent_span.contiguous(),
        "sent_mask": sent_mask,
        "same_sent": torch.randint(0, 2, (batch, num_ent, num_ent), generator=gen),
        "pair_index": torch.from_numpy(pair_index),
        "pair_mask": torch.from_numpy(pair_mask),
    }


def run(head: HeadGraph, inputs: dict[str, torch.Tensor]) -> HeadOutput:
    return head(*(inputs[name] for name in INPUT_NAMES))


def check_shapes(out: HeadOutput, dims: ModelDims, counts: list[int]) -> None:
    """Per pair outputs have the batch's largest pair count P; per entity outputs N."""
    batch, num_ent, rel = len(counts), dims.max_entities, dims.num_relations
    pairs = max(2, *(n * (n - 1) for n in counts))
    assert isinstance(out, HeadOutput)
    assert out.logits.shape == (batch, pairs, rel)
    assert out.pair_logit.shape == (batch, pairs)
    assert out.pair_prob.shape == (batch, pairs)
    assert out.evidence_dist.shape == (batch, pairs, S)
    assert out.subj_logits.shape == (batch, num_ent, rel)
    assert out.obj_logits.shape == (batch, num_ent, rel)


# --- config -------------------------------------------------------------------------------------


def test_config_roundtrip_and_variant_flags() -> None:
    config = tiny_config(variant="wo_sw", backbone="unet")
    assert HeadConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert [(v, VARIANTS[v].use_ppp, VARIANTS[v].use_eer) for v in ("paee", "wo_ppp", "wo_eer")] == [
        ("paee", True, True), ("wo_ppp", False, True), ("wo_eer", True, False),
    ]  # fmt: skip
    assert tiny_config(variant="wo_sw").flags.fill == "zero" and tiny_config().flags.fill == "sliding"
    assert not tiny_config(variant="atlop").flags.use_ppp and not tiny_config(variant="atlop").flags.use_eer


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"emb_size": 100, "block_size": 64}, r"emb_size \(100\) is not a multiple of block_size \(64\)"),
        ({"variant": "paeee"}, "variant must be one of .*'paeee'"),
        ({"backbone": "resnet"}, "backbone must be one of .*'resnet'"),
        ({"eer_dim": 10, "eer_heads": 3}, r"eer_dim \(10\) is not a multiple of eer_heads \(3\)"),
        ({"ppp_threshold": 1.5}, "ppp_threshold must be in \\(0, 1\\), got 1.5"),
        ({"pair_dim": 0}, "'pair_dim': 0"),
    ],
)
def test_config_errors_show_values(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_tnet_grid_must_fit_the_models_entity_slots() -> None:
    """TNet's top k is checked against the grid of the model's N (7 entities, patch 6: a 2 x 2 grid)."""
    with pytest.raises(ValueError, match=r"tnet_top_k \(5\) exceeds the 4 cells of the TNet grid \(2 x 2"):
        tiny_head(tnet_top_k=5)
    tiny_head(42, tnet_top_k=8)  # N=42, patch 6: a 7 x 7 grid holds 8 cells


def test_config_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown HeadConfig keys \\['hidden'\\]"):
        HeadConfig.from_dict({"hidden": 3})


def test_wrong_entity_axis_is_rejected() -> None:
    head = tiny_head()
    inputs = make_inputs(tiny_dims(max_entities=8), [3])
    with pytest.raises(ValueError, match="entity axis is 8, the model's max_entities is 7"):
        run(head, inputs)


# --- shapes, masks, variants ------------------------------------------------------------------------


@pytest.mark.parametrize("max_entities", [7, 42])
def test_exact_output_shapes(max_entities: int) -> None:
    torch.manual_seed(0)
    dims = tiny_dims(max_entities)
    out = run(tiny_head(max_entities).eval(), make_inputs(dims, [3, max_entities]))
    check_shapes(out, dims, [3, max_entities])


def _perturb_padding(inputs: dict[str, torch.Tensor], counts: list[int]) -> dict[str, torch.Tensor]:
    """Random values in every padded entity / sentence slot (masks unchanged)."""
    noisy = {name: value.clone() for name, value in inputs.items()}
    gen = torch.Generator().manual_seed(99)
    for b, n in enumerate(counts):
        noisy["entity_emb"][b, n:] = 50.0 * torch.randn(noisy["entity_emb"][b, n:].shape, generator=gen)
        noisy["entity_attn"][b, n:] = torch.rand(noisy["entity_attn"][b, n:].shape, generator=gen)
        padded_types = noisy["entity_type"][b, n:]
        padded_types.copy_(torch.randint(0, NUM_TYPES, padded_types.shape, generator=gen))
        noisy["same_sent"][b, n:] = 1 - noisy["same_sent"][b, n:]
        noisy["same_sent"][b, :, n:] = 1 - noisy["same_sent"][b, :, n:]
        padded_sentences = noisy["sent_mask"][b] < 0.5
        noisy["sent_span"][b][padded_sentences] = torch.tensor([2, L])  # a real-looking span
    return noisy


@pytest.mark.parametrize(
    ("variant", "backbone"), [("paee", "tnet"), ("paee", "unet"), ("wo_sw", "tnet"), ("atlop", "tnet")]
)
def test_padding_does_not_change_real_pairs(variant: str, backbone: str) -> None:
    torch.manual_seed(0)
    head = tiny_head(42, variant=variant, backbone=backbone).eval()
    counts = [5, 13]
    inputs = make_inputs(tiny_dims(42), counts)
    with torch.no_grad():
        clean, noisy = run(head, inputs), run(head, _perturb_padding(inputs, counts))
    for b, n in enumerate(counts):
        real = n * (n - 1)
        torch.testing.assert_close(noisy.logits[b, :real], clean.logits[b, :real])
        torch.testing.assert_close(noisy.pair_prob[b, :real], clean.pair_prob[b, :real])
        torch.testing.assert_close(noisy.evidence_dist[b, :real], clean.evidence_dist[b, :real])
        torch.testing.assert_close(noisy.subj_logits[b, :n], clean.subj_logits[b, :n])


@pytest.mark.parametrize("backbone", ["tnet", "unet"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_forward_backward(variant: str, backbone: str) -> None:
    torch.manual_seed(0)
    config = tiny_config(variant=variant, backbone=backbone)
    head = tiny_head(variant=variant, backbone=backbone).train()
    out = run(head, make_inputs(tiny_dims(), [3, 7]))
    check_shapes(out, tiny_dims(), [3, 7])
    assert all(torch.isfinite(t).all() for t in out)
    loss = out.logits.square().mean() + out.subj_logits.mean()
    flags = config.flags
    if flags.use_ppp:
        loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(
            out.pair_logit, torch.zeros_like(out.pair_logit)
        )
    loss.backward()
    grads = [p.grad for p in head.parameters() if p.requires_grad]
    assert all(g is None or torch.isfinite(g).all() for g in grads)
    assert head.classifier.bilinear.weight.grad.abs().sum() > 0
    if not flags.use_ppp:  # documented constants of a switched-off PPP
        assert torch.equal(out.pair_prob, torch.ones_like(out.pair_prob))
        assert torch.all(out.pair_logit == PPP_OFF_LOGIT)
        assert torch.equal(torch.sigmoid(out.pair_logit), out.pair_prob)
    if not flags.use_eer:
        assert out.subj_logits.abs().sum() == 0 and out.obj_logits.abs().sum() == 0
    assert (head.backbone is not None) == flags.use_par
    assert (head.eer is not None) == flags.use_eer


def test_all_padding_document_stays_finite() -> None:
    """A filler row of a batch (no entity, no sentence) must not produce NaN in the RE-encoder."""
    inputs = make_inputs(tiny_dims(), [0, 4])
    inputs["sent_mask"][0] = 0.0
    with torch.no_grad():
        out = run(tiny_head().eval(), inputs)
    assert all(torch.isfinite(t).all() for t in out)


def test_sentence_attention_hand_computed() -> None:
    # a(s,o) over 6 tokens [0.1, 0.2, 0.3, 0.1, 0.25, 0.05]; sentences [1, 3) and [3, 5), a padded third slot.
    # Mass: 0.2 + 0.3 = 0.5 and 0.1 + 0.25 = 0.35 (tokens 0 and 5, [CLS] / [SEP], hold the rest), 0 on padding.
    # Shares over the sentences: 0.5 / 0.85 and 0.35 / 0.85.
    pair_attn = torch.tensor([[[0.1, 0.2, 0.3, 0.1, 0.25, 0.05]]])  # [1, 1, 6]
    sent_span = torch.tensor([[[1, 3], [3, 5], [0, 6]]])  # the padded slot's span is ignored
    sent_mask = torch.tensor([[1.0, 1.0, 0.0]])
    mass = sentence_attention(pair_attn, sent_span, sent_mask)
    torch.testing.assert_close(mass, torch.tensor([[[0.5, 0.35, 0.0]]]))
    torch.testing.assert_close(evidence_distribution(mass), torch.tensor([[[0.5 / 0.85, 0.35 / 0.85, 0.0]]]), atol=1e-4, rtol=0)


@pytest.mark.parametrize("variant", ["paee", "atlop", "wo_par"])
def test_evidence_dist_is_the_loss_attention_normalised(variant: str) -> None:
    """Every variant outputs each real pair's share of a(s,o) per sentence: the evidence loss's sentence mass,
    normalised over the real sentences (0 on padded ones)."""
    dims, counts = tiny_dims(), [3, 7]
    inputs = make_inputs(dims, counts)
    with torch.no_grad():
        out = run(tiny_head(variant=variant).eval(), inputs)
    mass = sentence_attention(pairs_attention(inputs["entity_attn"], inputs["pair_index"]), inputs["sent_span"],
                              inputs["sent_mask"])
    expected = mass / mass.sum(-1, keepdim=True)
    for b, n in enumerate(counts):
        real, sentences = n * (n - 1), int(inputs["sent_mask"][b].sum())
        torch.testing.assert_close(out.evidence_dist[b, :real], expected[b, :real], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(out.evidence_dist[b, :real].sum(-1), torch.ones(real), atol=1e-4, rtol=0)
        assert (out.evidence_dist[b, :, sentences:] == 0).all()


def test_sentence_max_pool_matches_loop() -> None:
    torch.manual_seed(3)
    tokens = torch.randn(2, L, 6)
    spans = torch.tensor([[[0, 9], [9, 20], [20, 20], [0, 0]], [[0, 37], [3, 4], [0, 0], [0, 0]]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    pooled = sentence_max_pool(tokens, spans, mask)
    for b in range(2):
        for s in range(4):
            start, end = spans[b, s].tolist()
            if mask[b, s] > 0 and end > start:
                expected = tokens[b, start:end].amax(0)
            else:
                expected = torch.zeros(6)  # padded or empty sentence
            torch.testing.assert_close(pooled[b, s], expected)


# --- export -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_onnx_dynamo_export_default_n_has_no_nonzero() -> None:
    """Default N=42 (tiny widths) exports with a dynamic batch and pair axis; no NonZero; ORT matches at
    another B and P."""
    torch.manual_seed(0)
    head = tiny_head(42).eval()
    example = make_inputs(tiny_dims(42), [5, 30])  # a dynamic dimension may not be 0 or 1 in the example
    batch = torch.export.Dim("batch", min=1, max=64)
    pairs = torch.export.Dim("pairs", min=2, max=42 * 41)
    dynamic = {name: {0: batch} for name in INPUT_NAMES} | {"pair_index": {0: batch, 1: pairs}, "pair_mask": {0: batch, 1: pairs}}
    with torch.no_grad():
        program = torch.onnx.export(
            head,
            tuple(example[name] for name in INPUT_NAMES),
            dynamo=True,
            input_names=list(INPUT_NAMES),
            output_names=list(HeadOutput._fields),
            dynamic_shapes=dynamic,
            external_data=False,
            verbose=False,
        )
    model = program.model_proto
    op_types = {node.op_type for node in model.graph.node}
    assert "NonZero" not in op_types
    assert [o.name for o in model.graph.output] == list(HeadOutput._fields)

    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    other = make_inputs(tiny_dims(42), [1, 17, 42], seed=5)  # batch 3, 1,722 pairs: not the example's
    with torch.no_grad():
        expected = run(head, other)
    results = session.run(None, {name: other[name].numpy() for name in INPUT_NAMES})
    for name, want, got in zip(HeadOutput._fields, expected, results):
        torch.testing.assert_close(torch.from_numpy(got), want, atol=1e-4, rtol=1e-4, msg=name)
