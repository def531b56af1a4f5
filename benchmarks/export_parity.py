"""Export parity measurements of the export plans (a script, not a test: minutes on 2 CPU cores).

  redocred   BERT-base-sized PAEE with random weights (hidden 768, 12 layers, 12 heads, intermediate
             3072), WordPiece tokenizer (vocab 8000) built on the corpus text; the cpu-fp32 plan (12 fused
             Attention nodes per optimised encoder checked) against PyTorch on every Re-DocRED dev document
             (goal: max abs logit diff <= 1e-4).
  synthetic  tiny model trained briefly on a synthetic corpus; triple agreement with PyTorch and with the
             cpu-fp32 plan on a synthetic dev set (goal: >= 97%) of every CPU plan this machine can run
             (`paee_export.plan`: cpu-int8 is what `paee-export --precision int8` ships, its static int8
             encoder calibrated here on the training documents).

  python benchmarks/export_parity.py redocred --out /tmp/paee_parity_redocred [--limit 50]
  python benchmarks/export_parity.py synthetic --out /tmp/paee_parity_synthetic [--plans cpu-int8 cpu-bf16]

Writes OUT/parity.json and prints the table (`paee_export.parity.format_parity_table`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from paee.cli.train import main as train_main
from paee.data.docred import read_documents
from paee.data.featurizer import Featurizer, FeaturizerConfig
from paee.data.relations import RelationVocab
from paee.data.synthetic import SyntheticConfig, write_synthetic_splits
from paee.inference import Predictor
from paee.model.paee import build_model
from paee.training.setup import make_model_config, prepare_encoder
from paee_bench.checkpoints import random_model
from paee_export.build import GraphBuilder, stderr_log
from paee_export.parity import format_parity_table, parity_report, triple_agreement
from paee_export.pipeline import plan_variant
from paee_export.plan import PLANS, unmet_requirements

ROOT = Path(__file__).resolve().parents[1]
REDOCRED_DEV = ROOT.parent / "shared" / "data" / "redocred" / "dev_revised.json"
REL2ID = ROOT.parent / "shared" / "data" / "meta" / "rel2id.json"
#: The fp32 plan every other plan is also compared with (the quantisation's own effect).
REFERENCE_PLAN = "cpu-fp32"


def cpu_plans(names: list[str] | None) -> list[str]:
    """The named CPU plans (default: every CPU plan whose requirements this machine meets)."""
    available = [name for name, plan in PLANS.items() if plan.target == "cpu" and not unmet_requirements(plan)]
    if not names:
        return available
    unknown = [n for n in names if n not in available]
    if unknown:
        raise SystemExit(f"plans {unknown} cannot run here; available: {available}")
    return names


def measure(model, featurizer, docs, out: Path, plans: list[str], batch_size: int, calibration_docs=None) -> dict:
    """Build the plans, compare each with PyTorch, and with the cpu-fp32 plan's triples."""
    builder = GraphBuilder(model, out / "graphs", featurizer, calibration_docs=calibration_docs, log=stderr_log)
    window = model.config.dims.window
    variants = {name: plan_variant(PLANS[name], builder.build(PLANS[name]), featurizer, window) for name in plans}
    t0 = time.perf_counter()
    report = parity_report(model, docs, featurizer, variants, batch_size=batch_size, progress=True)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["build"] = builder.info
    reference = plan_variant(PLANS[REFERENCE_PLAN], builder.build(PLANS[REFERENCE_PLAN]), featurizer, window)
    fp32 = reference.pipeline.predict(docs)
    for name, variant in variants.items():
        report["variants"][name]["end_to_end"]["triples_vs_cpu_fp32"] = triple_agreement(fp32, variant.pipeline.predict(docs))
    return report


def run_redocred(args: argparse.Namespace) -> dict:
    docs = read_documents(args.dev)[: args.limit or None]
    relations = RelationVocab.from_files(args.rel2id) if args.rel2id.exists() else RelationVocab.from_ids(
        f.relation for d in docs for f in d.facts
    )
    model, source = random_model("bert-base-random", docs, relations, FeaturizerConfig(truncate=True), seed=args.seed)
    featurizer = Featurizer(source.tokenizer, model.config.featurizer, relations)
    return measure(model, featurizer, docs, args.out, args.plans or [REFERENCE_PLAN], args.batch_size)


def run_synthetic(args: argparse.Namespace) -> dict:
    data = args.out / "data"
    write_synthetic_splits(data, SyntheticConfig(), sizes={"train": args.train_docs, "dev": args.dev_docs}, seed=args.seed)
    train = read_documents(data / "train.json")
    if args.checkpoint is not None or args.epochs > 0:  # a model trained elsewhere, or trained here
        checkpoint = args.checkpoint
        if checkpoint is None:
            run = args.out / "run"
            rc = train_main([
                "--train", str(data / "train.json"), "--dev", str(data / "dev.json"), "--encoder", "tiny",
                "--out", str(run), "--epochs", str(args.epochs), "--batch-size", "4", "--seed", str(args.seed),
                "--no-resume", "--truncate",
            ])  # fmt: skip
            if rc != 0:
                raise SystemExit(f"training failed with exit code {rc}")
            checkpoint = run / "best.pt"
        predictor = Predictor.from_checkpoint(checkpoint, device="cpu", featurizer_overrides={"truncate": True})
        model, featurizer = predictor.model.eval(), predictor.featurizer
    else:  # --epochs 0: random weights, which predict many triples (a harder agreement test)
        source = prepare_encoder("tiny", train)
        relations = RelationVocab.from_files(data / "rel2id.json")
        torch.manual_seed(args.seed)
        model = build_model(make_model_config(source, relations, FeaturizerConfig(truncate=True))).eval()
        featurizer = Featurizer(source.tokenizer, model.config.featurizer, relations)
    docs = read_documents(data / "dev.json")
    return measure(model, featurizer, docs, args.out, cpu_plans(args.plans), args.batch_size, calibration_docs=train)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    red = sub.add_parser("redocred", help="fp32 ONNX vs PyTorch on Re-DocRED dev, BERT-base random weights")
    red.add_argument("--dev", type=Path, default=REDOCRED_DEV)
    red.add_argument("--rel2id", type=Path, default=REL2ID)
    red.add_argument("--limit", type=int, default=0, help="first K documents only (0: all)")
    syn = sub.add_parser("synthetic", help="every CPU plan's triple agreement, tiny model trained briefly")
    syn.add_argument("--train-docs", type=int, default=200)
    syn.add_argument("--dev-docs", type=int, default=100)
    syn.add_argument("--epochs", type=int, default=3, help="0: random weights, no training")
    syn.add_argument("--checkpoint", type=Path, help="compare this trained model instead of training one")
    for p in (red, syn):
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--batch-size", type=int, default=4)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--plans", nargs="*", help=f"export plans to compare (default: every CPU plan that runs here), "
                                                  f"of {', '.join(PLANS)}")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    report = run_redocred(args) if args.mode == "redocred" else run_synthetic(args)
    (args.out / "parity.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(format_parity_table(report))
    for name, v in report["variants"].items():
        extra = v["end_to_end"]["triples_vs_cpu_fp32"]
        print(f"{name}: triple Jaccard vs cpu-fp32 {extra['jaccard']:.4f}, identical docs {extra['identical_documents']:.4f}")
    print(f"report: {args.out / 'parity.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
