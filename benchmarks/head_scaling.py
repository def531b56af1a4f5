"""Head time against N, the entity slots of the map, for one document of a fixed size (PyTorch fp32, CPU).

    python benchmarks/head_scaling.py [--entities 20] [--tokens 300] [--sizes 42,64,96] [--out DIR]

The head has the default (full-size) configuration on BERT-base encoder outputs (H 768, K 12 heads) and
DocRED's 97 relation classes; the encoder outputs are random (the head's cost depends on sizes, not on
values). For each N it reports the median of ``--repeats`` runs of the whole head: N sizes the map (pair
features of the N x N map, sliding fill, TNet), the real pairs everything after it. Writes
``DIR/head_scaling.json`` and ``.md``.

The script also runs on the code before the head worked on real pairs (it passes ``pair_index`` only
where the head takes it), which is how the README's before/after figure at N = 42 was taken.
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from paee.model.head import HeadConfig, HeadGraph
from paee.runtime.contract import ModelDims

BERT_BASE_HIDDEN, BERT_BASE_HEADS, DOCRED_CLASSES, DOCRED_TYPES = 768, 12, 97, 7


def head_inputs(dims: ModelDims, entities: int, tokens: int, sentences: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    """One document: ``entities`` real entities, ``tokens`` wordpieces, ``sentences`` sentences."""
    gen = torch.Generator().manual_seed(seed)
    N, S = dims.max_entities, dims.max_sentences
    entity_mask = (torch.arange(N) < entities).float()[None]
    bounds = torch.linspace(0, tokens, sentences + 1).long()
    sent_span = torch.zeros(1, S, 2, dtype=torch.long)
    sent_span[0, :sentences, 0], sent_span[0, :sentences, 1] = bounds[:-1], bounds[1:]
    inputs = {
        "token_emb": torch.randn(1, tokens, dims.hidden_size, generator=gen),
        "entity_emb": torch.randn(1, N, dims.hidden_size, generator=gen),
        "entity_attn": torch.rand(1, N, dims.num_heads, tokens, generator=gen).softmax(-1),
        "entity_type": torch.randint(1, dims.num_entity_types, (1, N), generator=gen) * entity_mask.long(),
        "entity_mask": entity_mask,
        "sent_span": sent_span,
        "sent_mask": (torch.arange(S) < sentences).float()[None],
        "same_sent": torch.randint(0, 2, (1, N, N), generator=gen),
    }
    if "pair_index" in inspect.signature(HeadGraph.forward).parameters:  # the real-pair head
        from paee.data.featurizer import pair_slots

        index, mask = pair_slots([entities])
        inputs.update(pair_index=torch.from_numpy(index), pair_mask=torch.from_numpy(mask))
    return inputs


def median_ms(fn: Any, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t0))
    return round(statistics.median(times), 2)


def measure(max_entities: int, entities: int, tokens: int, repeats: int) -> dict[str, Any]:
    dims = ModelDims(max_entities=max_entities, max_mentions=24, max_sentences=32, hidden_size=BERT_BASE_HIDDEN,
                     num_heads=BERT_BASE_HEADS, num_relations=DOCRED_CLASSES, num_entity_types=DOCRED_TYPES)
    torch.manual_seed(0)
    head = HeadGraph(HeadConfig(), dims).eval()
    inputs = head_inputs(dims, entities, tokens)
    with torch.no_grad():
        return {"N": max_entities, "map_cells": max_entities**2, "real_pairs": entities * (entities - 1),
                "head_ms": median_ms(lambda: head(**inputs), repeats)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--entities", type=int, default=20)
    p.add_argument("--tokens", type=int, default=300)
    p.add_argument("--sizes", default="42,64,96")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("runs/head_scaling"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = [measure(int(n), args.entities, args.tokens, args.repeats) for n in args.sizes.split(",")]
    result = {"entities": args.entities, "tokens": args.tokens, "threads": args.threads, "torch": torch.__version__,
              "real_pair_head": "pair_index" in inspect.signature(HeadGraph.forward).parameters, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "head_scaling.json").write_text(json.dumps(result, indent=1))
    lines = [f"Head (default config, H 768, R 97), one document of {args.entities} entities and {args.tokens} tokens, "
             f"PyTorch fp32, {args.threads} threads:", "", "| N | map cells | real pairs | head ms (median) |",
             "|---:|---:|---:|---:|"]
    lines += [f"| {r['N']} | {r['map_cells']} | {r['real_pairs']} | {r['head_ms']} |" for r in rows]
    (args.out / "head_scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
