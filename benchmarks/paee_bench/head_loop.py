"""Our batched pair-representation stage against the peers' Python loops, same inputs, same outputs.

The stage is the head's pair features (paper eq. 3): localized context pooling
``a(s,o) = normalise(mean_k(A_s[k] * A_o[k]))``, ``c(s,o) = a(s,o) @ token_emb`` (ATLOP), then
``V(s,o) = W1 c(s,o) + E_pos[same_sent] + E_subj[type_s] + E_obj[type_o]`` (for the ``atlop`` variant
the stage ends at c(s,o)). Four implementations on the same encoder outputs, in PyTorch fp32:

* ``batched`` (ours, `paee.model.pair_map.pair_context`): the batch's real pairs (``pair_index``, padded
  to the batch's most) in one batched product, no Python loop, exportable; what the head runs for every
  per-pair step;
* ``map`` (`paee.model.pair_map.localized_context`): every B x N x N slot of the fixed map (N = 42 by
  default), padding included; what the head computed before it took the map's values from the n x n
  block's rows (`paee.model.pair_map.fill_map`);
* ``per_document`` (ATLOP's ``get_hrt`` / DocuNet's ``get_channel_map`` granularity): a Python loop over
  the documents of the batch; per document the n(n-1) real pairs are gathered with ``index_select`` and
  pooled in one product;
* ``per_pair`` (the loop over pairs of the issue): a Python loop over documents and over every ordered
  pair (s, o), s != o, computing that pair's context and features alone.

The outputs must agree on every real pair (``torch.allclose``, rtol 1e-4, atol 1e-5) before any time is
reported; the times are medians of ``repeats`` runs of the whole batch, divided by the documents.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from paee.data.featurizer import collate, ordered_pairs
from paee.errors import PaeeFailure
from paee.inference import to_tensors
from paee.model.paee import PaeeModel
from paee.model.pair_map import ATTENTION_NORM_EPS, gather_pairs, localized_context, pair_context
from paee.runtime.contract import MODEL_INPUTS

RTOL, ATOL = 1e-4, 1e-5


class HeadLoopMismatch(PaeeFailure):
    """A loop implementation disagrees with the batched one (a bug in one of them: no time is reported)."""


def batched(model: PaeeModel, enc: Any, t: dict[str, torch.Tensor]) -> torch.Tensor:
    """The real pairs of the batch at once: [B, P, D]."""
    context = pair_context(enc.token_emb, enc.entity_attn, t["pair_index"])  # [B, P, H]
    features = model.head.pair_features
    return context if features is None else features.pair_features(context, t["entity_type"], t["same_sent"],
                                                                    t["pair_index"])  # [B, P, D]


def whole_map(model: PaeeModel, enc: Any, t: dict[str, torch.Tensor]) -> torch.Tensor:
    """Every slot of the N x N map, then the real pairs' cells: [B, P, D]."""
    context = localized_context(enc.token_emb, enc.entity_attn)  # [B, N, N, H]
    features = model.head.pair_features
    pair_map = context if features is None else features.map_features(context, t["entity_type"], t["same_sent"])
    return gather_pairs(pair_map, t["pair_index"])  # [B, P, D]


def _features(model: PaeeModel, context: torch.Tensor, entity_type: torch.Tensor, same_sent: torch.Tensor,
              subj: torch.Tensor, obj: torch.Tensor) -> torch.Tensor:
    """W1 c + embeddings for pairs listed by subject / object index (context [P, H] -> [P, D])."""
    pf = model.head.pair_features
    if pf is None:
        return context
    return (pf.project(context) + pf.same_sent_emb(same_sent) + pf.subj_type_emb(entity_type[subj])
            + pf.obj_type_emb(entity_type[obj]))  # fmt: skip


def _pair_context(h_att: torch.Tensor, t_att: torch.Tensor, token_emb: torch.Tensor) -> torch.Tensor:
    """ATLOP's localized context of P pairs, the peers' way: attention rows [P, K, L] x2, tokens [L, H] -> [P, H]."""
    ht_att = (h_att * t_att).mean(1)  # [P, L], mean over heads
    ht_att = ht_att / (ht_att.sum(1, keepdim=True) + ATTENTION_NORM_EPS)
    return ht_att @ token_emb  # [P, H]


def _loop(model: PaeeModel, enc: Any, t: dict[str, torch.Tensor],
          groups: Callable[[torch.Tensor], Sequence[torch.Tensor]]) -> torch.Tensor:
    """The peers' way: a Python loop over the documents, and within each over ``groups(pairs)``: the pairs
    ([P, 2]) computed together in one product. Rows in ``pair_index``'s order: [B, P, D]."""
    token_emb, attn = enc.token_emb, enc.entity_attn  # [B, L, H], [B, N, K, L]
    batch, slots = t["pair_mask"].shape
    out = None
    for b, n in enumerate(_counts(t)):
        row = 0
        for pairs in groups(torch.from_numpy(ordered_pairs(n))):
            h_att = torch.index_select(attn[b], 0, pairs[:, 0])  # [P, K, L]
            t_att = torch.index_select(attn[b], 0, pairs[:, 1])  # [P, K, L]
            context = _pair_context(h_att, t_att, token_emb[b])  # [P, H]
            feats = _features(model, context, t["entity_type"][b], t["same_sent"][b, pairs[:, 0], pairs[:, 1]],
                              pairs[:, 0], pairs[:, 1])  # [P, D]
            if out is None:
                out = feats.new_zeros(batch, slots, feats.shape[-1])
            out[b, row : row + len(pairs)] = feats
            row += len(pairs)
    return out


def _counts(t: dict[str, torch.Tensor]) -> list[int]:
    """n of every document of the batch (its real pairs are n (n - 1))."""
    return t["entity_mask"].sum(-1).round().long().tolist()


def per_document(model: PaeeModel, enc: Any, t: dict[str, torch.Tensor]) -> torch.Tensor:
    """ATLOP's ``get_hrt`` granularity: every real pair of a document in one product."""
    return _loop(model, enc, t, lambda pairs: [pairs])


def per_pair(model: PaeeModel, enc: Any, t: dict[str, torch.Tensor]) -> torch.Tensor:
    """One ordered pair at a time."""
    return _loop(model, enc, t, lambda pairs: list(pairs.split(1)))


def _median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def compare_head_loops(model: PaeeModel, batch: dict[str, Any], repeats: int = 3) -> dict[str, Any]:
    """Check the three implementations agree on ``batch`` (collated numpy), then time them."""
    model.eval()
    t = to_tensors(batch, torch.device("cpu"), MODEL_INPUTS)
    counts = _counts(t)
    real = t["pair_mask"] > 0  # [B, P]
    with torch.no_grad():
        enc = model.encode(t)
        impls = {"batched": batched, "map": whole_map, "per_document": per_document, "per_pair": per_pair}
        outputs = {name: fn(model, enc, t) for name, fn in impls.items()}
        diffs = {}
        for name in ("map", "per_document", "per_pair"):
            got, want = outputs[name][real], outputs["batched"][real]
            diffs[name] = float((got - want).abs().max()) if got.numel() else 0.0
            if not torch.allclose(got, want, rtol=RTOL, atol=ATOL):
                raise HeadLoopMismatch(f"{name} differs from the batched stage by up to {diffs[name]:.3g}")
        seconds = {name: _median_seconds(lambda fn=fn: fn(model, enc, t), repeats) for name, fn in impls.items()}
        whole_head = _median_seconds(lambda: model.run_head(t, enc), repeats)
    docs = len(counts)
    per_doc_ms = {name: round(1000 * s / docs, 3) for name, s in seconds.items()}
    return {
        "documents": docs,
        "entities": counts,
        "real_pairs": sum(n * (n - 1) for n in counts),
        "pair_slots_batched": int(real.numel()),
        "pair_slots_map": int(t["same_sent"].numel()),
        "padded_length": int(t["input_ids"].shape[1]),
        "variant": model.head.config.variant,
        "output_dim": int(outputs["batched"].shape[-1]),
        "max_abs_diff": diffs,
        "allclose": {"rtol": RTOL, "atol": ATOL},
        "ms_per_document": per_doc_ms,
        "whole_head_ms_per_document": round(1000 * whole_head / docs, 3),
        "ratio_per_pair_over_batched": round(seconds["per_pair"] / seconds["batched"], 2),
        "ratio_map_over_batched": round(seconds["map"] / seconds["batched"], 2),
        "ratio_per_document_over_batched": round(seconds["per_document"] / seconds["batched"], 2),
        "repeats": repeats,
        "threads": torch.get_num_threads(),
    }


def head_loop_batch(features: Sequence[Any], count: int, pad_id: int, max_length: int) -> dict[str, Any]:
    """The first ``count`` documents as one collated batch (the same inputs for every implementation)."""
    return collate(list(features[:count]), pad_id=pad_id, max_length=max_length)


__all__ = ["compare_head_loops", "head_loop_batch", "batched", "per_document", "per_pair", "whole_map", "HeadLoopMismatch"]
