"""Cost of the PyTorch reference model: forward and forward+backward time, peak memory, head's share.

A BERT-base-sized encoder with random weights (hidden 768, 12 layers, 12 heads), the default head
(N = 42), one DocRED-like document of a chosen length with a chosen number of entities. Medians of
`--repeats` runs after `--warmup` runs; CUDA work is synchronised before the clock is read.

    python benchmarks/model_cost.py --tokens 512 --entities 20 --device cpu
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time

import numpy as np
import torch

from paee.data.featurizer import FeaturizerConfig
from paee.data.relations import RelationVocab
from paee.data.schema import DOCRED_ENTITY_TYPES
from paee.model.config import PaeeConfig
from paee.model.paee import build_model

BERT_BASE = dict(model_type="bert", vocab_size=28996, hidden_size=768, num_hidden_layers=12,
                 num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512)
DOCRED_RELATIONS = 97
DOCRED_TYPES = len(DOCRED_ENTITY_TYPES) + 1  # type ids with the padding type 0


def synthetic_batch(tokens: int, entities: int, n_max: int, mentions: int = 3, sentences: int = 10,
                    seed: int = 0) -> dict[str, torch.Tensor]:
    """One document's batch dict (tensor contract) with random ids and evenly spread mentions."""
    rng = np.random.default_rng(seed)
    m_slots, s_slots = 24, 32
    input_ids = rng.integers(1000, 20000, size=(1, tokens))
    mention_pos = np.zeros((1, n_max, m_slots), dtype=np.int64)
    mention_mask = np.zeros((1, n_max, m_slots), dtype=np.float32)
    for e in range(entities):
        pos = rng.choice(np.arange(1, tokens - 1), size=mentions, replace=False)
        mention_pos[0, e, :mentions] = np.sort(pos)
        mention_mask[0, e, :mentions] = 1
    bounds = np.linspace(1, tokens - 1, sentences + 1).astype(np.int64)
    sent_span = np.zeros((1, s_slots, 2), dtype=np.int64)
    sent_span[0, :sentences, 0], sent_span[0, :sentences, 1] = bounds[:-1], bounds[1:]
    sent_mask = np.zeros((1, s_slots), dtype=np.float32)
    sent_mask[0, :sentences] = 1
    entity_mask = np.zeros((1, n_max), dtype=np.float32)
    entity_mask[0, :entities] = 1
    entity_type = (entity_mask * rng.integers(1, DOCRED_TYPES, size=(1, n_max))).astype(np.int64)
    same_sent = rng.integers(0, 2, size=(1, n_max, n_max))
    arrays = dict(input_ids=input_ids, attention_mask=np.ones((1, tokens), dtype=np.int64), mention_pos=mention_pos,
                  mention_mask=mention_mask, entity_type=entity_type, entity_mask=entity_mask, sent_span=sent_span,
                  sent_mask=sent_mask, same_sent=same_sent)
    return {k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()}


def targets(batch: dict[str, torch.Tensor], entities: int, relations: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    n_max = batch["entity_mask"].shape[1]
    pair_mask = torch.zeros(1, n_max, n_max)
    pair_mask[0, :entities, :entities] = 1 - torch.eye(entities)
    has_rel = (torch.rand(1, n_max, n_max, generator=g) < 0.05).float() * pair_mask
    labels = torch.zeros(1, n_max, n_max, relations)
    labels[..., 1] = has_rel
    labels[..., 0] = pair_mask * (1 - has_rel)
    roles = torch.zeros(1, n_max, relations)
    return dict(labels=labels, pair_mask=pair_mask, has_relation=has_rel, subj_roles=roles, obj_roles=roles.clone())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, warmup: int, repeats: int) -> float:
    """Median seconds of `fn()` after warm-up."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=512)
    p.add_argument("--entities", type=int, default=20, help="real entities (DocRED mean is 19.5)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", help="write the figures as JSON here")
    args = p.parse_args(argv)

    torch.manual_seed(0)
    device = torch.device(args.device)
    relations = RelationVocab.from_ids(f"P{r}" for r in range(1, DOCRED_RELATIONS))
    config = PaeeConfig(encoder=dict(BERT_BASE), featurizer=FeaturizerConfig(), relations=relations)
    model = build_model(config).to(device)
    dims = config.dims
    batch = {k: v.to(device) for k, v in synthetic_batch(args.tokens, args.entities, dims.max_entities).items()}
    train_batch = {**batch, **{k: v.to(device) for k, v in targets(batch, args.entities, DOCRED_RELATIONS).items()}}

    model.eval()
    with torch.no_grad():
        encoded = model.encode(batch)
        t_forward = timed(lambda: model(batch), device, args.warmup, args.repeats)
        t_encoder = timed(lambda: model.encode(batch), device, args.warmup, args.repeats)
        t_head = timed(lambda: model.run_head(batch, encoded), device, args.warmup, args.repeats)

    model.train()

    def step():
        model.zero_grad(set_to_none=True)
        model(train_batch).loss.total.backward()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t_train = timed(step, device, args.warmup, args.repeats)
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    result = {
        "tokens": args.tokens, "entities": args.entities, "max_entities": dims.max_entities, "device": str(device),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
        "params_encoder_M": round(sum(p.numel() for p in model.encoder.parameters()) / 1e6, 2),
        "params_head_M": round(sum(p.numel() for p in model.head.parameters()) / 1e6, 2),
        "forward_ms": round(1000 * t_forward, 1),
        "encoder_forward_ms": round(1000 * t_encoder, 1),
        "head_forward_ms": round(1000 * t_head, 1),
        "head_share_of_forward": round(t_head / (t_encoder + t_head), 3),
        "forward_backward_ms": round(1000 * t_train, 1),
        "peak_memory_MiB": round(peak / 2**20, 1),
        "peak_memory_kind": "CUDA max allocated" if device.type == "cuda" else "process max RSS",
    }
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
