"""Encoder FLOPs counted analytically from the Hugging Face config and the token count.

One forward pass of a BERT-family layer over a window of L tokens (hidden H, feed-forward I) does these
matrix multiplications, 2 FLOPs per multiply-add:

=====================================  ==============
Q, K, V and output projections         4 * 2 * L*H*H
attention scores Q K^T and weights AV  2 * 2 * L*L*H
feed-forward up and down               2 * 2 * L*H*I
=====================================  ==============

so ``layer_flops(L) = 8*L*H^2 + 4*L^2*H + 4*L*H*I`` and the encoder does ``layers * layer_flops(L)``.
A document longer than the window W is read as two windows of W tokens (`paee.model.long_input`), which
costs ``2 * layers * layer_flops(W)``. L is the length the encoder really runs (the padded batch length).

Not counted: embeddings, LayerNorm, softmax, GELU, bias adds (O(L*H) each, under 1% at L = 300), and the
entity attention rows that `EncoderGraph` recomputes on the side. Those rows cost 2*P*H^2 (queries at all
P = N*M = 42*24 = 1008 mention slots, padded ones included) + 2*L*H^2 (keys) + 2*P*L*H (scores): for
BERT-base about 4% of the forward at L = 300 and 7% at L = 128. They are work the model chose to do, not
the encoder's, so the count leaves them out: the FLOP/s derived from it is conservative.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paee.errors import PaeeUserError

#: Hugging Face config keys the count reads.
CONFIG_KEYS = ("hidden_size", "num_hidden_layers", "intermediate_size")


def layer_flops(length: int, hidden: int, intermediate: int) -> int:
    """Matmul FLOPs of one transformer layer over ``length`` tokens (see the module docstring)."""
    return 8 * length * hidden * hidden + 4 * length * length * hidden + 4 * length * hidden * intermediate


def encoder_flops(config: Mapping[str, Any], length: int, window: int) -> int:
    """Matmul FLOPs of the encoder for one document run at ``length`` tokens (two windows above ``window``)."""
    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing:
        raise PaeeUserError(f"encoder config lacks {missing}; cannot count FLOPs")
    hidden, layers, intermediate = (int(config[k]) for k in ("hidden_size", "num_hidden_layers", "intermediate_size"))
    if length < 1:
        raise PaeeUserError(f"length must be >= 1, got {length}")
    if length <= window:
        return layers * layer_flops(length, hidden, intermediate)
    return 2 * layers * layer_flops(window, hidden, intermediate)


__all__ = ["encoder_flops", "layer_flops"]
