"""EncoderGraph: entity pooling, attention rows recomputed from Q/K, long-document windows (ATLOP semantics)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import Tensor
from transformers import AutoModel, RobertaConfig

from paee.model.config import DEFAULT_WINDOW, tiny_bert_config
from paee.model.encoder import EncoderGraph, masked_logsumexp

VOCAB = 99  # odd sizes so that mixed-up dimensions fail
W = DEFAULT_WINDOW
ATOL = 1e-5
BERT_START, BERT_END = [101 % VOCAB], [102 % VOCAB]
ROBERTA_START, ROBERTA_END = [0], [2, 2]  # <s> and </s></s>
# larger than BERT's 0.02 so that attention is peaked and a wrong row cannot pass by being uniform
INIT_RANGE = 0.5


def _bert_backbone(attn: str) -> torch.nn.Module:
    from transformers import AutoConfig

    settings = tiny_bert_config(VOCAB)
    settings["initializer_range"] = INIT_RANGE
    model_type = settings.pop("model_type")
    config = AutoConfig.for_model(model_type, **settings)
    torch.manual_seed(0)
    return AutoModel.from_config(config, attn_implementation=attn, add_pooling_layer=False).eval()


def _roberta_backbone(attn: str) -> torch.nn.Module:
    # RoBERTa offsets positions past its padding id, hence W + 2 position embeddings
    config = RobertaConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        max_position_embeddings=W + 2, initializer_range=INIT_RANGE, pad_token_id=1,
    )
    torch.manual_seed(0)
    return AutoModel.from_config(config, attn_implementation=attn, add_pooling_layer=False).eval()


def _eager_twin(backbone: torch.nn.Module) -> torch.nn.Module:
    twin = copy.deepcopy(backbone)
    twin.set_attn_implementation("eager")
    return twin.eval()


def _batch(lengths: list[int], L: int, pad_id: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (len(lengths), L), generator=gen)
    mask = torch.zeros(len(lengths), L, dtype=torch.long)
    for b, length in enumerate(lengths):
        mask[b, :length] = 1
        ids[b, length:] = pad_id
    return ids, mask


def atlop_reference(
    eager: torch.nn.Module, ids: Tensor, mask: Tensor, start: list[int], end: list[int]
) -> tuple[Tensor, Tensor]:
    """ATLOP's process_long_input as a straightforward per-document loop (eager attention, full maps).

    Returns hidden [B, L, H] and last-layer attention [B, K, L, L] in document coordinates.
    """
    B, L = ids.shape
    ls, le = len(start), len(end)
    start_t, end_t = torch.tensor(start), torch.tensor(end)
    hidden, attention = [], []
    for b in range(B):
        n = int(mask[b].sum())
        if L <= W or n <= W:
            out = eager(input_ids=ids[b : b + 1, :W], attention_mask=mask[b : b + 1, :W], output_attentions=True)
            h = torch.zeros(L, out.last_hidden_state.shape[-1])
            h[: min(L, W)] = out.last_hidden_state[0]
            heads = out.attentions[-1].shape[1]
            a = torch.zeros(heads, L, L)
            a[:, : min(L, W), : min(L, W)] = out.attentions[-1][0]
        else:
            ids1 = torch.cat([ids[b, : W - le], end_t])[None]
            ids2 = torch.cat([start_t, ids[b, n - W + ls : n]])[None]
            o1 = eager(input_ids=ids1, attention_mask=mask[b : b + 1, :W], output_attentions=True)
            o2 = eager(input_ids=ids2, attention_mask=mask[b : b + 1, n - W : n], output_attentions=True)
            H, heads = o1.last_hidden_state.shape[-1], o1.attentions[-1].shape[1]
            h1, h2 = torch.zeros(L, H), torch.zeros(L, H)
            m1, m2 = torch.zeros(L), torch.zeros(L)
            a1, a2 = torch.zeros(heads, L, L), torch.zeros(heads, L, L)
            h1[: W - le] = o1.last_hidden_state[0, : W - le]
            m1[: W - le] = 1
            a1[:, : W - le, : W - le] = o1.attentions[-1][0, :, : W - le, : W - le]
            lo = n - W + ls
            h2[lo:n] = o2.last_hidden_state[0, ls:]
            m2[lo:n] = 1
            a2[:, lo:n, lo:n] = o2.attentions[-1][0, :, ls:, ls:]
            h = (h1 + h2) / (m1 + m2 + 1e-10)[:, None]
            a = a1 + a2
            a = a / (a.sum(-1, keepdim=True) + 1e-10)
        hidden.append(h)
        attention.append(a)
    return torch.stack(hidden), torch.stack(attention)


def _one_mention_each(positions: list[list[int]]) -> tuple[Tensor, Tensor]:
    """mention_pos [B, N, 1] with one mention per entity, so entity_attn rows are single rows."""
    pos = torch.tensor(positions).unsqueeze(-1)
    return pos, torch.ones(pos.shape)


def _reference_rows(attention: Tensor, pos: Tensor) -> Tensor:
    """[B, K, L, L] maps, [B, N, 1] positions -> [B, N, K, L] rows."""
    B, N, _ = pos.shape
    return torch.stack([torch.stack([attention[b, :, pos[b, n, 0]] for n in range(N)]) for b in range(B)])


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_short_rows_match_eager_attentions(family: str) -> None:
    backbone = _bert_backbone("sdpa") if family == "bert" else _roberta_backbone("sdpa")
    start, end, pad = (BERT_START, BERT_END, 0) if family == "bert" else (ROBERTA_START, ROBERTA_END, 1)
    encoder = EncoderGraph(backbone, W, start, end).eval()
    ids, mask = _batch([41, 29], L=41, pad_id=pad)
    pos, mention_mask = _one_mention_each([[1, 7, 40, 0, 13], [2, 28, 5, 11, 0]])
    with torch.no_grad():
        out = encoder(ids, mask, pos, mention_mask)
        ref = _eager_twin(backbone)(input_ids=ids, attention_mask=mask, output_attentions=True)
    assert out.token_emb.shape == (2, 41, 32)
    assert out.entity_attn.shape == (2, 5, 4, 41)
    expected = _reference_rows(ref.attentions[-1], pos)
    assert (out.entity_attn - expected).abs().max() <= ATOL
    assert (out.token_emb - ref.last_hidden_state).abs().max() <= ATOL


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_long_documents_match_atlop_loop(family: str) -> None:
    backbone = _bert_backbone("sdpa") if family == "bert" else _roberta_backbone("sdpa")
    start, end, pad = (BERT_START, BERT_END, 0) if family == "bert" else (ROBERTA_START, ROBERTA_END, 1)
    encoder = EncoderGraph(backbone, W, start, end).eval()
    # a 700-token and a 600-token document (two windows, overlap) and a 300-token one (window 1 only)
    lengths, L = [700, 600, 300], 700
    ids, mask = _batch(lengths, L=L, pad_id=pad, seed=1)
    # markers before, inside and after the overlap, at the window edges, and the last real token
    pos, mention_mask = _one_mention_each(
        [[3, 150, 188, 189, 300, 509, 510, 511, 650, 699],
         [0, 87, 88, 89, 400, 509, 510, 511, 512, 599],
         [1, 2, 100, 250, 299, 0, 0, 0, 0, 0]]
    )
    with torch.no_grad():
        out = encoder(ids, mask, pos, mention_mask)
        ref_hidden, ref_attention = atlop_reference(_eager_twin(backbone), ids, mask, start, end)
    assert out.token_emb.shape == (3, L, 32) and out.entity_attn.shape == (3, 10, 4, L)
    assert (out.token_emb - ref_hidden).abs().max() <= ATOL
    assert (out.entity_attn - _reference_rows(ref_attention, pos)).abs().max() <= ATOL
    row_sums = out.entity_attn.sum(-1)
    assert torch.allclose(row_sums, torch.ones_like(row_sums), atol=ATOL)


def _record_backbone_inputs(encoder: EncoderGraph, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """The shapes of the input_ids every backbone call gets (filled as the encoder runs)."""
    seen: list[tuple[int, ...]] = []
    original = encoder.backbone.forward

    def spy(*args, **kwargs):
        seen.append(tuple(kwargs["input_ids"].shape))
        return original(*args, **kwargs)

    monkeypatch.setattr(encoder.backbone, "forward", spy)
    return seen


def test_short_batch_runs_one_plain_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = EncoderGraph(_bert_backbone("sdpa"), W, BERT_START, BERT_END).eval()
    seen = _record_backbone_inputs(encoder, monkeypatch)
    ids, mask = _batch([W, 17], L=W, pad_id=0)
    pos, mention_mask = _one_mention_each([[1, 2], [3, 4]])
    with torch.no_grad():
        encoder(ids, mask, pos, mention_mask)
        encoder(*_batch([W + 1, 17], L=W + 1, pad_id=0), pos, mention_mask)
    assert seen == [(2, W), (4, W)]  # short: the batch as is; long: both windows of all documents


def test_entity_pooling_means_and_logsumexp() -> None:
    encoder = EncoderGraph(_bert_backbone("sdpa"), W, BERT_START, BERT_END).eval()
    ids, mask = _batch([23], L=23, pad_id=0)
    pos = torch.tensor([[[2, 9, 0], [5, 0, 0], [0, 0, 0]]])  # entity 2 has no mention (padding)
    mention_mask = torch.tensor([[[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    with torch.no_grad():
        out = encoder(ids, mask, pos, mention_mask)
    h = out.token_emb[0]
    assert torch.allclose(out.entity_emb[0, 0], torch.logsumexp(torch.stack([h[2], h[9]]), 0), atol=ATOL)
    assert torch.allclose(out.entity_emb[0, 1], h[5], atol=ATOL)
    assert torch.equal(out.entity_emb[0, 2], torch.zeros(32))
    with torch.no_grad():
        rows = encoder(ids, mask, torch.tensor([[[2], [9]]]), torch.ones(1, 2, 1)).entity_attn[0]
    assert torch.allclose(out.entity_attn[0, 0], (rows[0] + rows[1]) / 2, atol=ATOL)
    assert torch.equal(out.entity_attn[0, 2], torch.zeros(4, 23))


def test_no_mention_entity_has_finite_gradients() -> None:
    values = torch.randn(2, 3, 4, 5, requires_grad=True)
    mask = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]).expand(2, 3, 4)
    pooled = masked_logsumexp(values, mask.unsqueeze(-1), dim=2)  # [2, 3, 5]
    assert torch.equal(pooled[:, 1], torch.zeros(2, 5))
    pooled.sum().backward()
    assert torch.isfinite(values.grad).all()
    assert torch.equal(values.grad[:, 1], torch.zeros(2, 4, 5))


def test_mismatched_inputs_and_bad_strides_raise() -> None:
    encoder = EncoderGraph(_bert_backbone("sdpa"), W, BERT_START, BERT_END)
    pos, mention_mask = _one_mention_each([[1, 2]])
    for stride in (1, W - 1):  # a stride over the window's content would leave tokens unread
        with pytest.raises(ValueError, match="window stride"):
            EncoderGraph(_bert_backbone("sdpa"), W, BERT_START, BERT_END, stride=stride)
    ids, mask = _batch([9, 9], L=9, pad_id=0)
    with pytest.raises(ValueError, match="shape mismatch"):
        encoder(ids, mask, pos, mention_mask)  # mentions for 1 document, 2 documents of tokens


def k_window_reference(
    eager: torch.nn.Module, ids: Tensor, mask: Tensor, start: list[int], end: list[int], stride: int
) -> tuple[Tensor, Tensor, list[int]]:
    """The k-window rule written out per document and per window (plain Python, eager attention).

    Returns hidden [B, L, H], attention [B, K, L, L] in document coordinates and each document's window count.
    """
    B, L = ids.shape
    ls, le = len(start), len(end)
    hidden, attention, counts = [], [], []
    for b in range(B):
        n = int(mask[b].sum())
        if n <= W:
            h, a = atlop_reference(eager, ids[b : b + 1], mask[b : b + 1], start, end)  # one window of W tokens
            hidden.append(h[0])
            attention.append(a[0])
            counts.append(1)
            continue
        e = n - W + ls
        k = 1 + math.ceil(e / stride)
        H_sum, count, A = None, torch.zeros(L), None
        for j in range(k):
            a_j = j * e // (k - 1)
            pre, suf = (ls if j > 0 else 0), (le if j < k - 1 else 0)
            content = list(range(a_j, a_j + W - pre - suf))
            window = torch.tensor((start if pre else []) + ids[b, content].tolist() + (end if suf else []))[None]
            out = eager(input_ids=window, attention_mask=torch.ones_like(window), output_attentions=True)
            h = torch.zeros(L, out.last_hidden_state.shape[-1])
            h[content] = out.last_hidden_state[0, pre : W - suf]
            att = torch.zeros(out.attentions[-1].shape[1], L, L)
            att[:, content[0] : content[-1] + 1, content[0] : content[-1] + 1] = out.attentions[-1][0, :, pre : W - suf, pre : W - suf]
            H_sum = h if H_sum is None else H_sum + h
            A = att if A is None else A + att
            count[content] += 1
        hidden.append(H_sum / count.clamp(min=1)[:, None])
        attention.append(A / (A.sum(-1, keepdim=True) + 1e-10))
        counts.append(k)
    return torch.stack(hidden), torch.stack(attention), counts


@pytest.mark.parametrize("family", ["bert", "roberta"])
@pytest.mark.parametrize("stride", [None, 64])
def test_any_length_matches_the_per_window_rule(family: str, stride: int | None) -> None:
    """Documents of 1 to 8 windows in one batch: hidden states, attention rows (summing to 1), no lost position."""
    backbone = _bert_backbone("sdpa") if family == "bert" else _roberta_backbone("sdpa")
    start, end, pad = (BERT_START, BERT_END, 0) if family == "bert" else (ROBERTA_START, ROBERTA_END, 1)
    encoder = EncoderGraph(backbone, W, start, end, stride=stride).eval()
    step = encoder.stride
    lengths = [2600, 1400, 1022, 700, 200]
    L = max(lengths)
    ids, mask = _batch(lengths, L=L, pad_id=pad, seed=2)
    gen = torch.Generator().manual_seed(3)
    # mentions spread over every window, plus the first and the last real token
    pos = torch.stack([torch.cat([torch.tensor([0, n - 1]), torch.randint(0, n, (10,), generator=gen)]) for n in lengths])
    pos, mention_mask = pos.unsqueeze(-1), torch.ones(len(lengths), 12, 1)
    with torch.no_grad():
        out = encoder(ids, mask, pos, mention_mask)
        ref_hidden, ref_attention, counts = k_window_reference(_eager_twin(backbone), ids, mask, start, end, step)
    if stride is None:
        assert counts == [6, 3, 3, 2, 1]  # 2600 tokens: 1 + ceil((2600 - 511) / 510) = 6 windows
    assert (out.token_emb - ref_hidden).abs().max() <= ATOL
    assert (out.entity_attn - _reference_rows(ref_attention, pos)).abs().max() <= ATOL
    row_sums = out.entity_attn.sum(-1)
    assert torch.allclose(row_sums, torch.ones_like(row_sums), atol=ATOL)
    for b, n in enumerate(lengths):  # every real position is read by some window: no zero hidden state
        assert out.token_emb[b, :n].abs().sum(-1).min() > 0


def test_window_count_follows_the_padded_length(monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = EncoderGraph(_bert_backbone("sdpa"), W, BERT_START, BERT_END).eval()
    seen = _record_backbone_inputs(encoder, monkeypatch)
    pos, mention_mask = _one_mention_each([[1, 2], [3, 4]])
    with torch.no_grad():
        for L in (1021, 1022, 4096):
            encoder(*_batch([L, 17], L=L, pad_id=0), pos, mention_mask)
    # k = 1 + ceil((L - 511) / 510): ATLOP's two windows up to 1021 tokens, then more, one pass each
    assert seen == [(4, W), (6, W), (2 * 9, W)]
