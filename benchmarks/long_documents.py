"""Latency against document length: the k-window encoder plus the head, from one window to 4,096 wordpieces.

    python benchmarks/long_documents.py --out runs/long_documents                       # BERT-base sizes, random weights
    python benchmarks/long_documents.py --out runs/long_documents --baseline /path/to/previous/checkout

One synthetic document is repeated (`paee.data.synthetic.repeat_document`) until it is longer than the longest
length asked for, then cut by the featurizer to each length exactly, so every length reads the same text. Each
length is timed (PyTorch fp32 eager, batch 1, encoder + head, median of ``--repeats`` after a warm-up) and
reported with its window count k and the milliseconds per window: the encoder's cost grows with k (one batch
of k windows of 512), the head's with the length (its context pooling reads every token).

``--baseline DIR`` times the lengths that DIR's code can read (at most 1,024 wordpieces before the k-window
encoder) on the same inputs, in the same run, in a subprocess running DIR's code: the ratio column says
whether short documents pay anything more than before. Writes ``results.json``, ``results.md`` and
``latency_vs_length.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from paee.data.featurizer import Featurizer, FeaturizerConfig, collate
from paee.data.relations import RelationVocab
from paee.data.synthetic import generate_corpus, rel2id, repeat_document
from paee.inference import to_tensors
from paee.runtime.contract import MODEL_INPUTS
from paee_bench.checkpoints import KINDS, random_model

DEFAULT_LENGTHS = (256, 512, 1000, 1536, 2048, 3072, 4096)
#: The longest document the code before the k-window encoder could read (two windows).
BASELINE_MAX_LENGTH = 1024

#: Timing code run by ``--baseline``'s interpreter on its own source tree: only APIs both versions have.
BASELINE_TIMER = r"""
import json, statistics, sys, time
import numpy as np, torch
from paee.data.relations import RelationVocab
from paee.data.synthetic import generate_corpus, rel2id
from paee.data.featurizer import FeaturizerConfig
from paee.inference import to_tensors
from paee.runtime.contract import MODEL_INPUTS
from paee_bench.checkpoints import random_model
kind, batches, repeats = sys.argv[1], np.load(sys.argv[2], allow_pickle=True), int(sys.argv[3])
model, _ = random_model(kind, generate_corpus(n_docs=8, seed=0), RelationVocab.from_rel2id(rel2id()), FeaturizerConfig(max_length=1024))
out = {}
for name in batches.files:
    tensors = to_tensors(batches[name].item(), torch.device("cpu"), MODEL_INPUTS)
    times = []
    with torch.no_grad():
        for i in range(repeats + 1):
            start = time.perf_counter(); model.run_head(tensors, model.encode(tensors)); times.append(time.perf_counter() - start)
    out[name] = 1000 * statistics.median(times[1:])
print(json.dumps(out))
"""


def _documents(featurizer: Featurizer, lengths: list[int]) -> dict[int, Any]:
    """Features of one text cut to each length (the text repeated past the longest first)."""
    base = generate_corpus(n_docs=1, seed="long-documents")[0]
    base_length = featurizer.featurize(base).num_tokens
    times = -(-max(lengths) // base_length) + 1
    long_doc = repeat_document(base, times, max_mentions=featurizer.config.max_mentions)
    features = {}
    for length in lengths:
        cut = Featurizer(featurizer.tokenizer, FeaturizerConfig(**{**featurizer.config.to_json(), "max_length": length}))
        features[length] = cut.featurize_many([long_doc], truncate=True)[0]
    return features


def _time(model: Any, batch: dict[str, np.ndarray], repeats: int) -> float:
    tensors = to_tensors(batch, torch.device("cpu"), MODEL_INPUTS)
    times = []
    with torch.no_grad():
        for _ in range(repeats + 1):  # the first is the warm-up
            start = time.perf_counter()
            model.run_head(tensors, model.encode(tensors))
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times[1:])


def _baseline(source: Path, kind: str, batches: dict[int, dict], repeats: int, out: Path) -> dict[int, float]:
    path = out / "baseline_batches.npz"
    np.savez(path, **{str(length): np.asarray(batch, dtype=object) for length, batch in batches.items()})
    shim = out / "baseline_shim"  # the installed layout: export/ as paee_export, benchmarks/paee_bench as paee_bench
    shim.mkdir(exist_ok=True)
    for name, target in (("paee_export", source / "export"), ("paee_bench", source / "benchmarks" / "paee_bench")):
        if not (shim / name).exists():
            (shim / name).symlink_to(target.resolve())
    env = {**os.environ, "PYTHONPATH": f"{source.resolve()}{os.pathsep}{shim}"}
    done = subprocess.run([sys.executable, "-c", BASELINE_TIMER, kind, str(path), str(repeats)], env=env, check=True,
                          capture_output=True, text=True)
    return {int(k): v for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["length"] for r in rows], [r["ms"] for r in rows], "o-", label="this code")
    base = [r for r in rows if r.get("baseline_ms") is not None]
    if base:
        ax.plot([r["length"] for r in base], [r["baseline_ms"] for r in base], "s--", label="before (<= 1,024)")
    for r in rows:
        ax.annotate(f"k={r['windows']}", (r["length"], r["ms"]), textcoords="offset points", xytext=(4, -12), fontsize=8)
    ax.set_xlabel("document length (wordpieces with markers)")
    ax.set_ylabel("encoder + head latency, batch 1 (ms)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=KINDS, default="bert-base-random")
    p.add_argument("--lengths", default=",".join(map(str, DEFAULT_LENGTHS)), help="wordpieces, comma-separated")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--baseline", type=Path, help="a checkout of the previous commit: time its code on the short lengths")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    logging.getLogger("paee.data.featurizer").setLevel(logging.ERROR)  # the cuts are deliberate: no lost-mention lines
    lengths = sorted(int(x) for x in args.lengths.split(","))
    args.out.mkdir(parents=True, exist_ok=True)
    relations = RelationVocab.from_rel2id(rel2id())
    config = FeaturizerConfig(max_length=max(lengths))
    model, source = random_model(args.model, generate_corpus(n_docs=8, seed=0), relations, config)
    featurizer = Featurizer(source.tokenizer, config)
    features = _documents(featurizer, lengths)
    batches = {n: collate([f], pad_id=featurizer.spec.pad_id, max_length=max(lengths)) for n, f in features.items()}
    rows = []
    for length in tqdm(lengths, desc="lengths", unit="length"):
        ms = _time(model, batches[length], args.repeats)
        k = model.encoder.windows_for(features[length].num_tokens)
        rows.append({"length": features[length].num_tokens, "windows": k, "ms": round(ms, 1), "ms_per_window": round(ms / k, 1)})
    if args.baseline:
        short = {n: {k: v for k, v in b.items() if k in MODEL_INPUTS} for n, b in batches.items() if n <= BASELINE_MAX_LENGTH}
        before = _baseline(args.baseline, args.model, short, args.repeats, args.out)
        for length, row in zip(lengths, rows):
            if length in before:
                row["baseline_ms"] = round(before[length], 1)
                row["ratio"] = round(row["ms"] / before[length], 3)
    result = {"model": args.model, "threads": torch.get_num_threads(), "repeats": args.repeats,
              "baseline": str(args.baseline) if args.baseline else None, "rows": rows,
              "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])}
    (args.out / "results.json").write_text(json.dumps(result, indent=1))
    header = "| wordpieces | windows k | ms | ms per window | before (ms) | ratio |\n|---:|---:|---:|---:|---:|---:|\n"
    table = header + "".join(
        f"| {r['length']} | {r['windows']} | {r['ms']} | {r['ms_per_window']} | {r.get('baseline_ms', '')} | {r.get('ratio', '')} |\n"
        for r in rows)
    (args.out / "results.md").write_text(f"`{result['command']}` ({args.model}, {result['threads']} threads)\n\n{table}")
    _plot(rows, args.out / "latency_vs_length.png")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
