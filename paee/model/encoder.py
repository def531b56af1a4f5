"""EncoderGraph: BERT-family encoder + entity pooling + entity attention rows (the first exported graph).

(input_ids[B,L], attention_mask[B,L], mention_pos[B,N,M], mention_mask[B,N,M])
  -> EncoderOutput(token_emb[B,L,H], entity_emb[B,N,H], entity_attn[B,N,K,L])

* mention embedding = hidden state at the mention's start marker; entity_emb = masked logsumexp over
  the entity's mentions; an entity without mentions (padding, lost to truncation) gets zeros.
* entity_attn = mean over the entity's mentions of the last layer's attention rows at the start markers,
  per head. The rows are recomputed here from the last layer's query/key projections applied to that
  layer's input (hidden_states[-2]) at the mention positions only, so the encoder itself may run fused
  attention (SDPA, ORT Attention, TensorRT MHA), which cannot return probabilities (DESIGN.md 4, 8).
  The rows are the pre-dropout probabilities (identical to eager attention in eval mode).
* documents longer than the window: k overlapping windows in one pass, see `paee.model.long_input`.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor, nn
from transformers import AutoConfig, AutoModel, PreTrainedModel

from paee.errors import ConfigError
from paee.model import long_input
from paee.model.config import PaeeConfig

# ATLOP's renormalisation guard: a row that no window covers stays zero instead of 0/0.
ROW_SUM_EPS = 1e-10


class EncoderOutput(NamedTuple):
    token_emb: Tensor  # [B, L, H]
    entity_emb: Tensor  # [B, N, H]
    entity_attn: Tensor  # [B, N, K, L]


def last_self_attention(backbone: PreTrainedModel) -> nn.Module:
    """The last layer's self-attention module, which owns the `query` and `key` projections.

    BERT, RoBERTa and SciBERT (transformers 5.x, modeling_bert.py / modeling_roberta.py) all keep it at
    `encoder.layer[-1].attention.self` (`BertSelfAttention` / `RobertaSelfAttention`), with
    `query`/`key` nn.Linear, `num_attention_heads`, `attention_head_size` and `scaling`.
    """
    try:
        attention = backbone.encoder.layer[-1].attention.self
    except (AttributeError, IndexError, TypeError) as err:
        raise ValueError(
            f"encoder of type {backbone.config.model_type!r} has no encoder.layer[-1].attention.self; "
            "EncoderGraph supports BERT-family encoders (bert, roberta, scibert)"
        ) from err
    for name in ("query", "key", "num_attention_heads", "attention_head_size"):
        if not hasattr(attention, name):
            raise ValueError(
                f"last self-attention {type(attention).__name__} of {backbone.config.model_type!r} lacks "
                f"{name!r}; EncoderGraph supports BERT-family encoders (bert, roberta, scibert)"
            )
    return attention


def masked_logsumexp(values: Tensor, mask: Tensor, dim: int) -> Tensor:
    """logsumexp of `values` over `dim` where mask > 0; zero where nothing is unmasked.

    Masked entries are replaced by the dtype's lowest finite value (not -inf): an all-masked slice then
    has a finite logsumexp and finite gradients, and is zeroed afterwards (grad 0 to its inputs).
    """
    keep = mask > 0
    filled = values.masked_fill(~keep, torch.finfo(values.dtype).min)
    pooled = torch.logsumexp(filled, dim=dim)
    return torch.where(keep.any(dim=dim), pooled, torch.zeros_like(pooled))


class EncoderGraph(nn.Module):
    """Hugging Face BERT-family encoder with entity pooling and mention attention rows."""

    def __init__(
        self,
        backbone: PreTrainedModel,
        window: int,
        start_tokens: Sequence[int],
        end_tokens: Sequence[int],
        stride: int | None = None,
    ) -> None:
        super().__init__()
        if window <= len(start_tokens) + len(end_tokens):
            raise ValueError(
                f"window ({window}) must exceed len(start_tokens) + len(end_tokens) "
                f"({len(start_tokens)} + {len(end_tokens)})"
            )
        self.backbone = backbone
        self.window = window
        most = long_input.default_stride(window, len(start_tokens), len(end_tokens))
        self.stride = most if stride is None else int(stride)
        if not 2 <= self.stride <= most:
            raise ValueError(f"window stride {self.stride} must be in 2..{most} (window minus special tokens: no gap)")
        # buffers (not parameters, not saved): they follow the module's device
        start = torch.tensor(list(start_tokens), dtype=torch.long)
        end = torch.tensor(list(end_tokens), dtype=torch.long)
        self.register_buffer("start_tokens", start, persistent=False)
        self.register_buffer("end_tokens", end, persistent=False)
        attention = last_self_attention(backbone)  # validated once here; looked up again in forward
        self.num_heads = int(attention.num_attention_heads)
        self.head_size = int(attention.attention_head_size)

    @classmethod
    def from_config(cls, config: PaeeConfig, encoder_dir: str | None = None) -> EncoderGraph:
        """Random-weight encoder from `config.encoder`, or pretrained weights from a local directory."""
        common = {"attn_implementation": config.attn_implementation, "add_pooling_layer": False}
        if encoder_dir is None:
            settings = dict(config.encoder)
            model_type = settings.pop("model_type")
            backbone = AutoModel.from_config(AutoConfig.for_model(model_type, **settings), **common)
        else:
            # local_files_only: nothing is ever downloaded at run time
            backbone = AutoModel.from_pretrained(encoder_dir, local_files_only=True, **common)
            for name in ("model_type", "hidden_size", "num_attention_heads"):
                ours, theirs = config.encoder.get(name), getattr(backbone.config, name)
                if ours is not None and ours != theirs:
                    raise ConfigError(
                        f"encoder {name} in {encoder_dir} ({theirs!r}) differs from config.encoder ({ours!r})"
                    )
        return cls(backbone, config.window, config.start_tokens, config.end_tokens, config.window_stride)

    def windows_for(self, length: int) -> int:
        """Windows the encoder reads for a document of ``length`` wordpieces (1: one plain pass)."""
        if length <= self.window:
            return 1
        return int(long_input.window_count(length, self.window, self.start_tokens.numel(), self.stride))

    @property
    def hidden_size(self) -> int:
        return int(self.backbone.config.hidden_size)

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, mention_pos: Tensor, mention_mask: Tensor
    ) -> EncoderOutput:
        B, L = input_ids.shape
        _, N, M = mention_pos.shape
        consistent = (
            attention_mask.shape == input_ids.shape
            and mention_pos.shape[0] == B
            and mention_mask.shape == mention_pos.shape
        )
        if not consistent:
            raise ValueError(
                f"shape mismatch: input_ids {tuple(input_ids.shape)}, "
                f"attention_mask {tuple(attention_mask.shape)}, mention_pos {tuple(mention_pos.shape)}, "
                f"mention_mask {tuple(mention_mask.shape)}"
            )
        query_pos = mention_pos.reshape(B, N * M)  # [B, P], P = N * M mention start markers
        if L <= self.window:
            token_emb, rows = self._encode_short(input_ids, attention_mask, query_pos)
        else:
            token_emb, rows = self._encode_long(input_ids, attention_mask, query_pos)
        # rows: [B, P, K, L] attention of each mention marker over the document's tokens
        mention_emb = long_input.gather_positions(token_emb, query_pos).reshape(B, N, M, -1)  # [B, N, M, H]
        entity_emb = masked_logsumexp(mention_emb, mention_mask.unsqueeze(-1), dim=2)  # [B, N, H]
        rows = rows.reshape(B, N, M, self.num_heads, L)  # [B, N, M, K, L]
        weight = mention_mask.to(rows.dtype).reshape(B, N, M, 1, 1)  # [B, N, M, 1, 1]
        count = weight.sum(dim=2).clamp(min=1.0)  # [B, N, 1, 1]; entities without mentions -> zeros
        entity_attn = (rows * weight).sum(dim=2) / count  # [B, N, K, L]
        return EncoderOutput(token_emb=token_emb, entity_emb=entity_emb, entity_attn=entity_attn)

    # -- the two paths ------------------------------------------------------------------------------

    def _encode_short(
        self, input_ids: Tensor, attention_mask: Tensor, query_pos: Tensor
    ) -> tuple[Tensor, Tensor]:
        """One ordinary pass; rows = softmax(q k^T * scale) over the document's real tokens."""
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        query, key = self._query_key(out.hidden_states[-2], query_pos)  # [B, P, K, d], [B, L, K, d]
        scores = self._scores(query, key)  # [B, P, K, L]
        scores = scores.masked_fill(~self._key_mask(attention_mask), torch.finfo(scores.dtype).min)
        return out.last_hidden_state, scores.softmax(dim=-1)

    def _encode_long(
        self, input_ids: Tensor, attention_mask: Tensor, query_pos: Tensor
    ) -> tuple[Tensor, Tensor]:
        """All k windows of all documents in one [B * k, W] pass, merged back to document coordinates."""
        B, L = input_ids.shape
        windows = long_input.split_windows(
            input_ids, attention_mask, query_pos, self.window, self.stride, self.start_tokens, self.end_tokens
        )
        out = self.backbone(
            input_ids=windows.input_ids, attention_mask=windows.attention_mask, output_hidden_states=True
        )
        token_emb = long_input.merge_hidden(out.last_hidden_state, windows)  # [B, L, H]
        # each window's rows: softmax over the window's own keys (its special tokens included, as in ATLOP),
        # zero in windows that do not hold the query; laid out [B * k, W, P, K] so that the merge gathers rows
        query, key = self._query_key(out.hidden_states[-2], windows.query_slot)  # [Bk, P, K, d], [Bk, W, K, d]
        scaling = getattr(last_self_attention(self.backbone), "scaling", self.head_size**-0.5)
        scores = torch.einsum("bpkd,bwkd->bwpk", query, key) * scaling  # [Bk, W, P, K]
        key_mask = (windows.attention_mask > 0)[:, :, None, None]  # [Bk, W, 1, 1]
        scores = scores.masked_fill(~key_mask, torch.finfo(scores.dtype).min)
        probs = scores.softmax(dim=1) * windows.query_held.to(scores.dtype)[:, None, :, None]  # [Bk, W, P, K]
        P, K = probs.shape[2], probs.shape[3]
        summed = long_input.merge_positions(probs.reshape(-1, P * K), windows, B)  # [B, L, P * K]
        summed = summed.reshape(B, L, P, K).permute(0, 2, 3, 1)  # [B, P, K, L]
        return token_emb, summed / (summed.sum(dim=-1, keepdim=True) + ROW_SUM_EPS)

    # -- helpers --------------------------------------------------------------------------------------

    def _query_key(self, last_input: Tensor, query_pos: Tensor) -> tuple[Tensor, Tensor]:
        """Last layer's queries at `query_pos` ([Bw, P, K, d]) and keys at every position ([Bw, T, K, d])."""
        attention = last_self_attention(self.backbone)
        Bw, T, _ = last_input.shape
        P = query_pos.shape[1]
        # project only the P gathered rows: P * H * H instead of T * H * H multiply-adds
        query = attention.query(long_input.gather_positions(last_input, query_pos))  # [Bw, P, K*d]
        key = attention.key(last_input)  # [Bw, T, K*d]
        return (
            query.reshape(Bw, P, self.num_heads, self.head_size),  # [Bw, P, K, d]
            key.reshape(Bw, T, self.num_heads, self.head_size),  # [Bw, T, K, d]
        )

    def _scores(self, query: Tensor, key: Tensor) -> Tensor:
        """Scaled dot products [Bw, P, K, T] of queries [Bw, P, K, d] with keys [Bw, T, K, d]."""
        scaling = getattr(last_self_attention(self.backbone), "scaling", self.head_size**-0.5)
        return torch.einsum("bpkd,btkd->bpkt", query, key) * scaling

    @staticmethod
    def _key_mask(attention_mask: Tensor) -> Tensor:
        """[Bw, T] 0/1 mask -> [Bw, 1, 1, T] bool, broadcast over mentions and heads."""
        return (attention_mask > 0)[:, None, None, :]
