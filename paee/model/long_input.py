"""Two-window encoding of documents longer than the encoder's window (ATLOP's process_long_input).

ATLOP semantics, vectorised (no Python loop over documents, no data-dependent shapes):

* a document of real length l > W (W = window) is read as
  window 1 = tokens[0 : W - len_end] + end_tokens and
  window 2 = start_tokens + tokens[l - W + len_start : l];
  a document with l <= W in a long batch is read as window 1 = tokens[0 : W] only;
* hidden states are mapped back to document positions and averaged where both windows cover a
  position; attention rows are added in document coordinates and renormalised to sum 1. The marker
  tokens added to a window (its end tokens in window 1, its start tokens in window 2) are dropped.

Both windows of all B documents go through the encoder as one [2B, W] batch: window 1 of document b
at row b, window 2 at row B + b (window 2 of a short document is computed and then ignored, the price
of a constant shape). Positions are mapped by gathering *from the document side* (one index per
document position into each window plus a 0/1 validity), which exports as Gather, not ScatterND.

Like ATLOP, the scheme covers documents up to 2W - len_start - len_end tokens; positions between the
two windows of a longer document get zero hidden states and zero attention.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class WindowBatch(NamedTuple):
    """The encoder's input for a long batch: both windows of every document."""

    input_ids: Tensor  # [2B, W] window 1 of all documents, then window 2 of all documents
    attention_mask: Tensor  # [2B, W]


class WindowLayout(NamedTuple):
    """Where each document position lives in each window (per document, gather-side indices)."""

    index1: Tensor  # [B, L] int64: window-1 position of document position t (clamped into [0, W))
    valid1: Tensor  # [B, L] float: 1 where window 1 covers t
    index2: Tensor  # [B, L] int64: window-2 position of document position t (clamped into [0, W))
    valid2: Tensor  # [B, L] float: 1 where window 2 covers t (long documents only)


def document_lengths(attention_mask: Tensor) -> Tensor:
    """Real token count per document, [B] int64 (the featurizer pads at the end)."""
    return attention_mask.sum(dim=1).long()


def split_windows(
    input_ids: Tensor,
    attention_mask: Tensor,
    window: int,
    start_tokens: Tensor,
    end_tokens: Tensor,
) -> WindowBatch:
    """Cut every document of a long batch (L > window) into its two windows, as one [2B, W] batch."""
    B, L = input_ids.shape
    W = window
    len_start, len_end = start_tokens.numel(), end_tokens.numel()
    lengths = document_lengths(attention_mask)  # [B]
    is_long = (lengths > W).unsqueeze(1)  # [B, 1]
    # window 1: the first W - len_end tokens closed by the end tokens; a short document keeps its first W
    end = end_tokens.to(input_ids).expand(B, len_end)  # [B, len_end]
    closed = torch.cat([input_ids[:, : W - len_end], end], dim=1)  # [B, W]
    ids1 = torch.where(is_long, closed, input_ids[:, :W])  # [B, W]
    mask1 = attention_mask[:, :W]  # [B, W]
    # window 2: start tokens + the last W - len_start real tokens; it starts at document position
    # `offset` = l - W (0 for a short document, whose window 2 is ignored downstream)
    offset = (lengths - W).clamp(min=0).unsqueeze(1)  # [B, 1]
    positions = torch.arange(W, device=input_ids.device).unsqueeze(0) + offset  # [B, W], all < L
    tail = input_ids.gather(1, positions[:, len_start:])  # [B, W - len_start]
    ids2 = torch.cat([start_tokens.to(input_ids).expand(B, len_start), tail], dim=1)  # [B, W]
    # ATLOP takes attention_mask[l - W : l] (all ones for a long document); for a short document this
    # is its first W mask values, never all zero, so no window is fully masked
    mask2 = attention_mask.gather(1, positions)  # [B, W]
    return WindowBatch(
        input_ids=torch.cat([ids1, ids2], dim=0),  # [2B, W]
        attention_mask=torch.cat([mask1, mask2], dim=0),  # [2B, W]
    )


def window_layout(
    attention_mask: Tensor, window: int, len_start: int, len_end: int, dtype: torch.dtype
) -> WindowLayout:
    """Document-position -> window-position maps and coverage of both windows, [B, L] each."""
    B, L = attention_mask.shape
    W = window
    lengths = document_lengths(attention_mask).unsqueeze(1)  # [B, 1]
    is_long = lengths > W  # [B, 1]
    t = torch.arange(L, device=attention_mask.device).unsqueeze(0)  # [1, L] document positions
    # window 1 is the identity map; a long document's window 1 ends where its end tokens begin
    window1_end = torch.where(is_long, W - len_end, W)  # [B, 1]
    valid1 = t < window1_end  # [B, L]
    index1 = t.clamp(max=W - 1).expand(B, L)  # [B, L]
    # window 2 holds document position t at window position t - offset, after its start tokens
    offset = (lengths - W).clamp(min=0)  # [B, 1]
    shifted = t - offset  # [B, L]
    valid2 = is_long & (shifted >= len_start) & (t < lengths)  # [B, L]
    index2 = shifted.clamp(min=0, max=W - 1)  # [B, L]
    return WindowLayout(index1=index1, valid1=valid1.to(dtype), index2=index2, valid2=valid2.to(dtype))


def gather_positions(values: Tensor, index: Tensor) -> Tensor:
    """values[b, index[b, i], ...] for values [B, T, ...] and index [B, P] -> [B, P, ...]."""
    B, P = index.shape
    trailing = values.shape[2:]
    expanded = index.reshape(B, P, *([1] * len(trailing))).expand(B, P, *trailing)  # [B, P, ...]
    return values.gather(1, expanded)


def merge_hidden(window_hidden: Tensor, layout: WindowLayout) -> Tensor:
    """[2B, W, H] window hidden states -> [B, L, H] document hidden states (overlap averaged)."""
    B = layout.index1.shape[0]
    h1 = gather_positions(window_hidden[:B], layout.index1) * layout.valid1.unsqueeze(-1)  # [B, L, H]
    h2 = gather_positions(window_hidden[B:], layout.index2) * layout.valid2.unsqueeze(-1)  # [B, L, H]
    # clamp, not ATLOP's + 1e-10: exact average where covered, zero where no window covers
    count = (layout.valid1 + layout.valid2).clamp(min=1.0).unsqueeze(-1)  # [B, L, 1]
    return (h1 + h2) / count
