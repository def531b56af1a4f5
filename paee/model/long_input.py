"""k-window encoding of documents longer than the encoder's window (ATLOP's process_long_input, generalised).

A document of real length l > W (W = window, ls / le = the tokenizer's start / end special tokens) is
read as k_l windows of W tokens:

* window 0 = tokens[0 : W - le] + end_tokens; the last window = start_tokens + tokens[l - W + ls : l];
  a middle window = start_tokens + tokens[a : a + W - ls - le] + end_tokens;
* the first content position a_j of window j is spread evenly, a_j = floor(j * e / (k_l - 1)) with
  e = l - W + ls (the last window's start), and k_l = 1 + ceil(e / stride) is the fewest windows whose
  starts are at most ``stride`` apart. With ``stride <= W - ls - le`` (the default is equal) every position is
  covered. For k_l = 2 this is exactly ATLOP's pair of windows;
* hidden states are averaged over the windows that hold a position; each window's attention rows (softmax
  over the window's own keys, as in the encoder) are added in document coordinates and renormalised to sum 1.
  The special tokens added to a window are dropped.

The batch's window count k = 1 + ceil((L - W + ls) / stride) follows the padded length L (a shape, never a
value), so the exported graph has a dynamic window axis and no data-dependent shape; a document shorter than
L uses its own k_l <= k windows and the rest are computed and ignored (a document with l <= W in a long batch
reads window 0 = tokens[0 : W]). All B * k windows go through the transformer as one batch.

Merging gathers *from the document side*: a position t is held by at most `max_covers(W, stride)`
consecutive windows, the first of which is the number of windows that end at or before t; each cover slot
is one `index_select` over the flattened windows (an ONNX Gather, no ScatterND, no [B, k, L, ...] tensor).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


def default_stride(window: int, len_start: int, len_end: int) -> int:
    """The largest stride that leaves no gap: a middle window's content length."""
    return window - len_start - len_end


def max_covers(window: int, stride: int) -> int:
    """The most windows that can hold one document position (a static bound for the merge).

    With k_l >= 3 the starts are more than stride / 2 apart (k_l - 1 = ceil(e / stride) < e / stride + 1), so
    at most floor((W - 1) / floor(stride / 2)) + 1 starts fall in the W positions before t; k_l = 2 gives 2.
    """
    return max(2, (window - 1) // max(stride // 2, 1) + 1)


def window_count(length: int | torch.SymInt, window: int, len_start: int, stride: int) -> int | torch.SymInt:
    """k windows for a padded length L > window (L may be a symbolic size when exported)."""
    return 1 + (length - window + len_start + stride - 1) // stride


class Windows(NamedTuple):
    """The windows of a long batch and where each document position lives in them."""

    input_ids: Tensor  # [B * k, W] window j of document b at row b * k + j
    attention_mask: Tensor  # [B * k, W]
    cover_index: Tensor  # [C, B * L] int64: flat index (into B * k * W window positions) of cover slot c
    cover_valid: Tensor  # [C, B, L] float: 1 where cover slot c holds document position t
    query_slot: Tensor  # [B * k, P] int64: window position of each query (clamped into [0, W))
    query_held: Tensor  # [B * k, P] float: 1 where window j holds query p


def document_lengths(attention_mask: Tensor) -> Tensor:
    """Real token count per document, [B] int64 (the featurizer pads at the end)."""
    return attention_mask.sum(dim=1).long()


def split_windows(
    input_ids: Tensor,
    attention_mask: Tensor,
    query_pos: Tensor,
    window: int,
    stride: int,
    start_tokens: Tensor,
    end_tokens: Tensor,
) -> Windows:
    """Cut every document of a long batch (L > window) into k windows, and map positions both ways."""
    B, L = input_ids.shape
    W, ls, le = window, start_tokens.numel(), end_tokens.numel()
    device = input_ids.device
    k = window_count(L, W, ls, stride)
    lengths = document_lengths(attention_mask).unsqueeze(1)  # [B, 1]
    last_start = (lengths - W + ls).clamp(min=0)  # [B, 1] e: content start of the last window
    k_doc = torch.where(lengths > W, 1 + (last_start + stride - 1) // stride, torch.ones_like(lengths))  # [B, 1]
    j = torch.arange(k, device=device).unsqueeze(0)  # [1, k]
    used = j < k_doc  # [B, k] windows this document reads
    jj = torch.minimum(j, k_doc - 1)  # [B, k] an unused window repeats the last one (never fully masked)
    start = jj * last_start // (k_doc - 1).clamp(min=1)  # [B, k] a_j
    prefix = torch.where(jj > 0, ls, 0)  # [B, k] start tokens in front
    suffix = torch.where(jj < k_doc - 1, le, 0)  # [B, k] end tokens behind
    content = W - prefix - suffix  # [B, k]

    # window slots -> document positions (or a special token)
    s = torch.arange(W, device=device).reshape(1, 1, W)  # [1, 1, W]
    pos = start.unsqueeze(-1) + s - prefix.unsqueeze(-1)  # [B, k, W]
    is_start = s < prefix.unsqueeze(-1)  # [B, k, W]
    is_end = s >= (W - suffix).unsqueeze(-1)  # [B, k, W]
    flat_pos = pos.clamp(0, L - 1).reshape(B, -1)  # [B, k * W]
    ids = input_ids.gather(1, flat_pos).reshape(B, -1, W)  # [B, k, W]
    mask = attention_mask.gather(1, flat_pos).reshape(B, -1, W)  # [B, k, W]
    # the special tokens are constant rows: start tokens at slots [0, ls), end tokens at slots [W - le, W)
    start_row = torch.cat([start_tokens.to(input_ids), input_ids.new_zeros(W - ls)]).reshape(1, 1, W)
    end_row = torch.cat([input_ids.new_zeros(W - le), end_tokens.to(input_ids)]).reshape(1, 1, W)
    ids = torch.where(is_start, start_row, torch.where(is_end, end_row, ids))
    mask = torch.where(is_start | is_end, torch.ones_like(mask), mask)

    def holds(t: Tensor, window_index: Tensor) -> tuple[Tensor, Tensor]:
        """For positions t [B, T] and windows [B, T]: (window slot of t, whether the window holds t)."""
        a = start.gather(1, window_index)
        p = prefix.gather(1, window_index)
        c = content.gather(1, window_index)
        held = (window_index < k_doc) & (a <= t) & (t < a + c)  # a short document keeps its padding, as on one pass
        return (t - a + p).clamp(0, W - 1), held

    # document positions -> cover slots: the first window holding t is the count of windows ending at or before t
    t = torch.arange(L, device=device).unsqueeze(0).expand(B, L)  # [B, L]
    ends = (start + content).masked_fill(~used, torch.iinfo(torch.int64).max)  # [B, k] unused windows end never
    first = (ends.unsqueeze(1) <= t.unsqueeze(2)).sum(dim=2)  # [B, L]
    row_base = (torch.arange(B, device=device) * k).unsqueeze(1)  # [B, 1] first window row of document b
    index, valid = [], []
    for c in range(max_covers(W, stride)):  # a fixed, small loop (unrolled when exported)
        window_index = (first + c).clamp(max=k - 1)  # [B, L]
        slot, held = holds(t, window_index)
        held = held & (first + c < k)
        index.append(((row_base + window_index) * W + slot).reshape(-1))
        valid.append(held.to(torch.float32))

    # queries (mention markers, document positions [B, P]) in every window
    P = query_pos.shape[1]
    windows_of = j.expand(B, k).unsqueeze(2).expand(B, k, P).reshape(B, -1)  # [B, k * P]
    q = query_pos.unsqueeze(1).expand(B, k, P).reshape(B, -1)  # [B, k * P]
    query_slot, query_held = holds(q, windows_of)
    return Windows(
        input_ids=ids.reshape(-1, W),
        attention_mask=mask.reshape(-1, W),
        cover_index=torch.stack(index),
        cover_valid=torch.stack(valid),
        query_slot=query_slot.reshape(-1, P),
        query_held=query_held.reshape(-1, P).to(torch.float32),
    )


def gather_positions(values: Tensor, index: Tensor) -> Tensor:
    """values[b, index[b, i], ...] for values [B, T, ...] and index [B, P] -> [B, P, ...]."""
    B, P = index.shape
    trailing = values.shape[2:]
    expanded = index.reshape(B, P, *([1] * len(trailing))).expand(B, P, *trailing)  # [B, P, ...]
    return values.gather(1, expanded)


def merge_positions(window_values: Tensor, windows: Windows, batch: int) -> Tensor:
    """Sum over cover slots of window values [B * k * W, F] taken at each document position -> [B, L, F].

    Positions held by no window (padding) are zero.
    """
    total = None
    for index, valid in zip(windows.cover_index, windows.cover_valid):
        taken = window_values.index_select(0, index).reshape(batch, -1, window_values.shape[-1])  # [B, L, F]
        term = taken * valid.to(taken.dtype).unsqueeze(-1)
        total = term if total is None else total + term
    return total


def merge_hidden(window_hidden: Tensor, windows: Windows) -> Tensor:
    """[B * k, W, H] window hidden states -> [B, L, H] document hidden states (overlaps averaged)."""
    B = windows.cover_valid.shape[1]
    summed = merge_positions(window_hidden.reshape(-1, window_hidden.shape[-1]), windows, B)  # [B, L, H]
    count = windows.cover_valid.sum(dim=0).clamp(min=1.0).to(summed.dtype).unsqueeze(-1)  # [B, L, 1]
    return summed / count
