"""The ablation table of the paper's Table 5 on the synthetic corpus: PAEE, the ATLOP baseline and each
"w/o" variant, trained with the same budget (data, epochs, learning rates, seed), one `paee-train` each.

    python benchmarks/ablation.py --out /tmp/paee_ablation [--epochs 12] [--jobs 2]
    python benchmarks/ablation.py --out /tmp/paee_ablation_plain --preset plain --train-docs 1000 \
        --epochs 3 --batch-size 2 --evidence-weight 0.1 --jobs 2      # the README's "Learning" recipe

Writes OUT/data (the synthetic splits), OUT/<variant>/ (each run), OUT/ablation.json and
OUT/ablation.md (the table: best dev F1 / Ign F1 / Rela F1, the epoch it was reached, wall time).
With ``--jobs 2`` two runs share the machine, each with one thread (the wall times then count a shared
machine; compare them with each other, not with a quiet run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from paee.data.synthetic import SyntheticConfig, write_synthetic_splits
from paee.model.head import VARIANTS
from paee.training.plots import read_metrics
from paee.training.setup import TINY_LR_ENCODER, TINY_LR_HEAD

SCORES = ("f1", "ign_f1", "rela_f1")


def train_variant(variant: str, data: Path, out: Path, args: argparse.Namespace, threads: int) -> dict:
    """One `paee-train` run; returns its best dev scores and wall time."""
    run = out / variant
    cmd = [
        sys.executable, "-m", "paee.cli.train", "--train", str(data / "train.json"), "--dev", str(data / "dev.json"),
        "--encoder", "tiny", "--variant", variant, "--out", str(run), "--epochs", str(args.epochs),
        "--lr-encoder", str(args.lr_encoder), "--lr-head", str(args.lr_head), "--seed", str(args.seed),
        "--batch-size", str(args.batch_size), "--evidence-weight", str(args.evidence_weight), "--no-resume",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    with open(out / f"{variant}.log", "w", encoding="utf-8") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    seconds = time.perf_counter() - start
    if rc:
        raise RuntimeError(f"paee-train --variant {variant} failed (exit {rc}); see {out / f'{variant}.log'}")
    evals = [e for e in read_metrics(run / "metrics.jsonl") if e["event"] == "eval"]
    best = max(evals, key=lambda e: e["dev"]["f1"])
    return {"variant": variant, "best_epoch": best["epoch"], "seconds": round(seconds, 1),
            **{k: round(100 * best["dev"][k], 2) for k in SCORES}}


def markdown_table(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [
        f"Synthetic corpus ({args.preset} preset, seed {args.data_seed}: {args.train_docs} train / {args.dev_docs} "
        f"dev documents), tiny encoder, {args.epochs} epochs, batch {args.batch_size}, lr {args.lr_encoder} / "
        f"{args.lr_head}, evidence weight {args.evidence_weight}, seed {args.seed}; best dev epoch of each run.",
        "",
        "| variant | dev F1 | Ign F1 | Rela F1 | best epoch | wall s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['variant']} | {r['f1']:.2f} | {r['ign_f1']:.2f} | {r['rela_f1']:.2f} | {r['best_epoch']} | "
              f"{r['seconds']:.0f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated (default: all)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--lr-encoder", type=float, default=TINY_LR_ENCODER)
    p.add_argument("--lr-head", type=float, default=TINY_LR_HEAD)
    p.add_argument("--seed", type=int, default=66)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--train-docs", type=int, default=240)
    p.add_argument("--dev-docs", type=int, default=60)
    p.add_argument("--preset", default="docred", choices=["docred", "plain"], help="synthetic corpus preset")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--evidence-weight", type=float, default=0.0, help="paee-train --evidence-weight")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (each gets cores/jobs threads)")
    args = p.parse_args(argv)

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / "data"
    config = SyntheticConfig.plain() if args.preset == "plain" else SyntheticConfig()
    write_synthetic_splits(data, config, sizes={"train": args.train_docs, "dev": args.dev_docs, "test": 0},
                           seed=args.data_seed)
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda v: train_variant(v, data, args.out, args, threads), variants))
    table = markdown_table(rows, args)
    (args.out / "ablation.json").write_text(json.dumps({"config": {k: str(v) for k, v in vars(args).items()},
                                                        "rows": rows}, indent=2), encoding="utf-8")
    (args.out / "ablation.md").write_text(table, encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
