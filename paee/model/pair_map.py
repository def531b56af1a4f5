"""Pair features (paper eq. 3), the filling of the fixed N x N pair map (eq. 4, "Sliding(V)"), and the
gathers from the map to a document's real pairs.

Everything here works on padded tensors: a batch holds B documents padded to N entities, the real
entities packed at the front (``n = entity_mask.sum(-1)``), and P pair slots, the real ordered pairs
first (``pair_index`` [B, P, 2]). No Python loop over documents or pairs and no data-dependent shape:
the map is static (N x N), the pair axis is a dynamic dimension of the exported graph.

* `PairFeatures`: localized context pooling (ATLOP) ``a(s,o) = normalise(mean_k(A_s * A_o))``,
  ``c(s,o) = a(s,o) @ token_emb`` and ``V(s,o) = W1 c(s,o)`` plus embeddings of the same-sentence bit and
  of the subject and object entity types; over the whole map, or over listed pairs.
* `gather_pairs` / `gather_entities`: a pair's cell of a map, a pair's subject or object row.
* `sliding_fill`: tiles the real n x n block over the whole N x N map, ``V'[i,j] = V[i mod n, j mod n]``
  (across, down and diagonally), through a gather on index tensors computed from n.
* `zero_fill`: the ablation (``w/o SW``): everything outside the n x n block is 0.
* `fill_map`: the same two fillings built from the features of the block's cells listed as rows (the
  real pairs, then the diagonal, `block_rows`): what the head runs, so that V is computed for the n x n
  block only (n^2 rows, not N^2 cells) and N sizes the map alone.
"""

from __future__ import annotations

import torch
from torch import nn

from paee.data.featurizer import pair_position

#: ATLOP's constant in the normalisation of the pair attention: keeps all-zero rows (padding) finite.
ATTENTION_NORM_EPS = 1e-5

#: Number of values of the same-sentence bit (0: inter-sentential pair, 1: intra-sentential pair).
NUM_SAME_SENT_VALUES = 2


def entity_counts(entity_mask: torch.Tensor) -> torch.Tensor:
    """Real entity count n per document, at least 1, as int64 [B].

    ``n >= 1`` keeps the modulo in `fill_index` defined for an all-padding document (a filler row of a
    batch); such a document tiles its (padding) entity 0 and its outputs are ignored downstream.
    """
    counts = entity_mask.sum(dim=-1).round().to(torch.long)  # [B]; the mask is exact 0/1
    return counts.clamp(min=1)


def fill_index(num_entities: torch.Tensor, size: int) -> torch.Tensor:
    """Row/column source index ``i mod n`` for every i < size, per document: int64 [B, size].

    Written as ``i - (i // n) * n`` with integer division: that lowers to ONNX Div/Mul/Sub, which every
    runtime we target supports for int64, where a Mod node is less widely supported (TensorRT).
    """
    positions = torch.arange(size, device=num_entities.device, dtype=torch.long)  # [size]
    n = num_entities.to(torch.long).unsqueeze(-1)  # [B, 1]
    return positions - torch.div(positions, n, rounding_mode="floor") * n  # [B, size]


def sliding_fill(pair_map: torch.Tensor, num_entities: torch.Tensor) -> torch.Tensor:
    """Tile each document's n x n block over its whole N x N map: ``out[b,i,j] = in[b, i mod n, j mod n]``.

    pair_map: [B, N, N, D] (channels last); num_entities: int64 [B], 1 <= n <= N. For n = N the gather
    is the identity. Values outside the n x n block of the input are never read.
    """
    batch, size, size_o, dim = pair_map.shape
    if size != size_o:
        raise ValueError(f"pair map must be square, got {size} x {size_o}")
    index = fill_index(num_entities, size)  # [B, N]
    flat_index = index.unsqueeze(-1) * size + index.unsqueeze(-2)  # [B, N, N] source cell i'*N + j'
    flat_index = flat_index.reshape(batch, size * size, 1).expand(-1, -1, dim)  # [B, N*N, D]
    flat_map = pair_map.reshape(batch, size * size, dim)  # [B, N*N, D]
    filled = torch.gather(flat_map, 1, flat_index)  # [B, N*N, D]
    return filled.reshape(batch, size, size, dim)  # [B, N, N, D]


def block_mask(num_entities: torch.Tensor, size: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """1 on the top-left n x n block of each document's N x N map, 0 elsewhere: [B, N, N]."""
    positions = torch.arange(size, device=num_entities.device, dtype=torch.long)  # [N]
    inside = positions.unsqueeze(0) < num_entities.to(torch.long).unsqueeze(-1)  # [B, N]
    return (inside.unsqueeze(-1) & inside.unsqueeze(-2)).to(dtype)  # [B, N, N]


def zero_fill(pair_map: torch.Tensor, num_entities: torch.Tensor) -> torch.Tensor:
    """Ablation ``w/o SW``: keep the n x n block, zero the rest. pair_map: [B, N, N, D]."""
    mask = block_mask(num_entities, pair_map.shape[1], pair_map.dtype)  # [B, N, N]
    return pair_map * mask.unsqueeze(-1)  # [B, N, N, D]


#: Filling strategies (`VariantFlags.fill`): tile the n x n block over the map, or zeros outside it.
FILLS = ("sliding", "zero")


def pair_attention(entity_attn: torch.Tensor) -> torch.Tensor:
    """ATLOP's pair attention ``a(s,o) = mean_k(A_s[k] * A_o[k])``, normalised to sum 1 over tokens: [B, N, N, L].

    entity_attn: [B, N, K, L] (per entity, per head, attention over tokens).
    """
    num_heads = entity_attn.shape[2]
    # sum_k A_s[k,l] * A_o[k,l] for every (s, o, l): one batched product over the head axis.
    attn_t = entity_attn.permute(0, 3, 1, 2)  # [B, L, N, K]
    pair_attn = torch.matmul(attn_t, attn_t.transpose(-1, -2))  # [B, L, N, N]
    pair_attn = pair_attn.permute(0, 2, 3, 1) / num_heads  # [B, N, N, L], mean over heads
    return pair_attn / (pair_attn.sum(dim=-1, keepdim=True) + ATTENTION_NORM_EPS)


def localized_context(token_emb: torch.Tensor, entity_attn: torch.Tensor) -> torch.Tensor:
    """ATLOP's localized context pooling ``c(s,o) = a(s,o) @ token_emb`` for the whole map: [B, N, N, H].

    token_emb: [B, L, H]; entity_attn: [B, N, K, L]; ``a(s,o)`` is `pair_attention`.
    """
    batch, num_ent, _, length = entity_attn.shape
    pair_attn = pair_attention(entity_attn).reshape(batch, num_ent * num_ent, length)  # [B, N*N, L]
    context = torch.matmul(pair_attn, token_emb)  # [B, N*N, H]
    return context.reshape(batch, num_ent, num_ent, token_emb.shape[-1])  # [B, N, N, H]


def block_rows(pair_index: torch.Tensor, size: int) -> torch.Tensor:
    """The cells of the n x n block as rows: the listed pairs [B, P, 2], then every entity slot with itself
    (the diagonal) [B, N, 2]: int64 [B, P + N, 2]."""
    diagonal = torch.arange(size, device=pair_index.device, dtype=pair_index.dtype)  # [N]
    diagonal = diagonal.expand(pair_index.shape[0], size).unsqueeze(-1).expand(-1, -1, 2)  # [B, N, 2]
    return torch.cat([pair_index, diagonal], dim=1)


def map_row_index(num_entities: torch.Tensor, size: int, num_pairs: int, fill: str) -> torch.Tensor:
    """For every cell (i, j) of the N x N map, the row of ``[block_rows; a zero row]`` it takes: int64 [B, N*N].

    Sliding: the block cell (i mod n, j mod n): its row in `ordered_pairs` order (`pair_position`), or
    ``P + s`` for a diagonal cell (s, s). Zero: the same inside the n x n block, the zero row ``P + N``
    outside. num_entities: int64 [B] (>= 1, `entity_counts`); num_pairs: P, the pair rows' count.
    """
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    index = fill_index(num_entities, size)  # [B, N]: i mod n
    subject, obj = index.unsqueeze(-1), index.unsqueeze(-2)  # [B, N, 1], [B, 1, N]
    n = num_entities.to(torch.long).reshape(-1, 1, 1)  # [B, 1, 1]
    rows = torch.where(subject == obj, num_pairs + subject, pair_position(subject, obj, n))  # [B, N, N]
    if fill == "zero":
        rows = torch.where(block_mask(num_entities, size, torch.bool), rows, num_pairs + size)
    return rows.reshape(rows.shape[0], size * size)


def fill_map(rows: torch.Tensor, num_entities: torch.Tensor, num_pairs: int, fill: str) -> torch.Tensor:
    """The filled N x N map [B, N, N, D] from the block's rows [B, P + N, D] (`block_rows` order):
    equals ``sliding_fill`` / ``zero_fill`` of the map those rows come from."""
    batch, count, dim = rows.shape
    size = count - num_pairs
    values = torch.cat([rows, rows.new_zeros(batch, 1, dim)], dim=1)  # [B, P + N + 1, D]: the zero row last
    cells = gather_entities(values, map_row_index(num_entities, size, num_pairs, fill))  # [B, N*N, D]
    return cells.reshape(batch, size, size, dim)


# --- the real pairs ------------------------------------------------------------------------------------


def gather_entities(values: torch.Tensor, entity: torch.Tensor) -> torch.Tensor:
    """``values[b, entity[b, p]]``: per pair, its entity's row. values: [B, N, ...]; entity: int64 [B, P]."""
    batch, pairs = entity.shape
    trailing = values.shape[2:]
    index = entity.reshape(batch, pairs, *([1] * len(trailing))).expand(batch, pairs, *trailing)  # [B, P, ...]
    return values.gather(1, index)


def gather_pairs(pair_map: torch.Tensor, pair_index: torch.Tensor) -> torch.Tensor:
    """The map's cell of each pair, ``map[b, s, o]``: pair_map [B, N, N, D] (channels last), pair_index
    int64 [B, P, 2] -> [B, P, D]."""
    batch, size = pair_map.shape[:2]
    flat = pair_map.reshape(batch, size * size, *pair_map.shape[3:])  # [B, N*N, D]
    return gather_entities(flat, pair_index[..., 0] * size + pair_index[..., 1])  # [B, P, D]


def pairs_attention(entity_attn: torch.Tensor, pair_index: torch.Tensor) -> torch.Tensor:
    """`pair_attention` of the listed pairs only, ATLOP's way: [B, P, L] (cost follows the pairs).

    entity_attn: [B, N, K, L]; pair_index: int64 [B, P, 2].
    """
    subject = gather_entities(entity_attn, pair_index[..., 0])  # [B, P, K, L]
    obj = gather_entities(entity_attn, pair_index[..., 1])  # [B, P, K, L]
    pair_attn = (subject * obj).mean(dim=2)  # [B, P, L], mean over heads
    return pair_attn / (pair_attn.sum(dim=-1, keepdim=True) + ATTENTION_NORM_EPS)


def pair_context(token_emb: torch.Tensor, entity_attn: torch.Tensor, pair_index: torch.Tensor) -> torch.Tensor:
    """`localized_context` of the listed pairs only: [B, P, H]. token_emb: [B, L, H]."""
    return torch.matmul(pairs_attention(entity_attn, pair_index), token_emb)  # [B, P, H]


class PairFeatures(nn.Module):
    """``V(s,o) = W1 c(s,o) + E_pos[same_sent] + E_subj[type_s] + E_obj[type_o]``: [..., D].

    The paper "adds the position and type information of entities to enrich V": added (not
    concatenated) embeddings keep D fixed and cost nothing in the N x N map. Works on the whole map
    (`map_features`) or on a list of pairs (`pair_features`); the arithmetic is the same.
    """

    def __init__(self, hidden_size: int, pair_dim: int, num_entity_types: int) -> None:
        super().__init__()
        self.project = nn.Linear(hidden_size, pair_dim)  # W1
        self.same_sent_emb = nn.Embedding(NUM_SAME_SENT_VALUES, pair_dim)
        # Separate subject and object type tables: the roles differ (a PER subject vs a PER object).
        self.subj_type_emb = nn.Embedding(num_entity_types, pair_dim)
        self.obj_type_emb = nn.Embedding(num_entity_types, pair_dim)

    def forward(
        self, context: torch.Tensor, subj_type: torch.Tensor, obj_type: torch.Tensor, same_sent: torch.Tensor
    ) -> torch.Tensor:
        """context [..., H]; subj_type, obj_type int64 and same_sent int64 broadcastable to context's leading axes."""
        features = self.project(context) + self.same_sent_emb(same_sent)
        return features + self.subj_type_emb(subj_type) + self.obj_type_emb(obj_type)

    def map_features(self, context: torch.Tensor, entity_type: torch.Tensor, same_sent: torch.Tensor) -> torch.Tensor:
        """The whole map: context [B, N, N, H]; entity_type [B, N]; same_sent [B, N, N] -> [B, N, N, D]."""
        return self(context, entity_type.unsqueeze(2), entity_type.unsqueeze(1), same_sent)

    def pair_features(self, context: torch.Tensor, entity_type: torch.Tensor, same_sent: torch.Tensor,
                      pair_index: torch.Tensor) -> torch.Tensor:
        """The listed pairs: context [B, P, H]; entity_type [B, N]; same_sent [B, N, N] -> [B, P, D]."""
        subj_type = entity_type.gather(1, pair_index[..., 0])  # [B, P]
        obj_type = entity_type.gather(1, pair_index[..., 1])  # [B, P]
        pair_same_sent = gather_pairs(same_sent.unsqueeze(-1), pair_index).squeeze(-1)  # [B, P]
        return self(context, subj_type, obj_type, pair_same_sent)
