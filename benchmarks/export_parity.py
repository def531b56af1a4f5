"""Export parity measurements (a script, not a test: minutes on 2 CPU cores).

  redocred   BERT-base-sized PAEE with random weights (hidden 768, 12 layers, 12 heads, intermediate
             3072), WordPiece tokenizer (vocab 8000) built on the corpus text; export encoder /
             encoder_long / head, check 12 fused Attention nodes per optimised encoder, and compare
             ONNX Runtime fp32 with PyTorch on every Re-DocRED dev document (goal: max abs logit diff
             <= 1e-4).
  synthetic  tiny model trained briefly on a synthetic corpus; triple agreement with ORT fp32 and with
             PyTorch on a synthetic dev set (goal: >= 97%) of int8 as `paee-export --precision int8`
             ships it (openvino_int8: static int8 encoder calibrated on the training documents, bf16
             head; openvino_int8_fp32_head beside it), ORT dynamic int8 (ort_int8) and bf16 (OpenVINO).

  python benchmarks/export_parity.py redocred --out /tmp/paee_parity_redocred [--limit 50] [--variants ort_fp32_fused]
  python benchmarks/export_parity.py synthetic --out /tmp/paee_parity_synthetic

Writes OUT/parity.json and prints the table (format_parity_table).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from paee.data.docred import read_documents
from paee.data.featurizer import Featurizer, FeaturizerConfig
from paee.data.relations import RelationVocab
from paee.data.synthetic import SyntheticConfig, write_synthetic_splits
from paee.model.paee import build_model
from paee.training.setup import make_model_config
from paee_bench.checkpoints import BERT_BASE, random_model
from paee_export.graphs import ENCODER, ENCODER_GRAPHS, HEAD, ExportDims
from paee_export.onnx_export import export_graph, export_graphs
from paee_export.optimize import graph_stats, optimize_encoder, quantize_int8
from paee_export.parity import default_variants, format_parity_table, parity_report
from paee_export.runtimes import openvino_available

ROOT = Path(__file__).resolve().parents[1]
REDOCRED_DEV = ROOT.parent / "shared" / "data" / "redocred" / "dev_revised.json"
REL2ID = ROOT.parent / "shared" / "data" / "meta" / "rel2id.json"


def export_variants(model, dims: ExportDims, out: Path, num_layers: int, int8: bool, openvino: bool) -> dict[str, Path]:
    """Plain exports, fused (checked: one Attention per layer), int8, and the OpenVINO encoder."""
    t0 = time.perf_counter()
    exported = export_graphs(model, out, dims)
    paths: dict[str, Path] = {name: e.path for name, e in exported.items()}
    for name, e in exported.items():
        worst = max(max(c.max_abs_diff.values()) for c in e.validation)
        print(f"exported {name}: validation max abs diff {worst:.3g} ({time.perf_counter() - t0:.0f}s)", flush=True)
    for name in ENCODER_GRAPHS:
        opt = out / f"{name}.opt.onnx"
        stats = optimize_encoder(paths[name], opt, dims.num_heads, dims.hidden_size, expected_attention=num_layers)
        print(f"optimised {stats.summary()}", flush=True)
        paths[f"{name}.opt"] = opt
        if int8:
            q = out / f"{name}.int8.onnx"
            print(f"int8 {quantize_int8(opt, q).summary()}", flush=True)
            paths[f"{name}.int8"] = q
    if int8:
        q = out / "head.int8.onnx"
        print(f"int8 {quantize_int8(paths[HEAD], q).summary()}", flush=True)
        paths["head.int8"] = q
    if openvino and not openvino_available():
        print("OpenVINO not installed: bf16 and static int8 variants skipped (pip install openvino)")
    elif openvino:
        ov = export_graph(model, exported[ENCODER].spec, out / "encoder.ov.onnx", exporter="dynamo")
        paths["encoder.ov"] = ov.path
    print(f"head: {graph_stats(paths[HEAD]).summary()}")
    return paths


def run_redocred(args: argparse.Namespace) -> dict:
    docs = read_documents(args.dev)
    if args.limit:
        docs = docs[: args.limit]
    relations = RelationVocab.from_files(args.rel2id) if args.rel2id.exists() else RelationVocab.from_ids(
        f.relation for d in docs for f in d.facts
    )
    config = FeaturizerConfig(truncate=True)
    model, source = random_model("bert-base-random", docs, relations, config, seed=args.seed)
    featurizer = Featurizer(source.tokenizer, config, relations)
    dims = ExportDims.from_model(model, config.max_mentions, config.max_sentences)
    paths = export_variants(model, dims, args.out, BERT_BASE["num_hidden_layers"], int8=False, openvino=False)
    variants = _select(default_variants(paths), args.variants)
    t0 = time.perf_counter()
    report = parity_report(model, docs, featurizer, variants, batch_size=args.batch_size, progress=True)
    report["seconds"] = time.perf_counter() - t0
    return report


def run_synthetic(args: argparse.Namespace) -> dict:
    from paee.cli.train import main as train_main
    from paee.inference import Predictor

    data = args.out / "data"
    write_synthetic_splits(data, SyntheticConfig(), sizes={"train": args.train_docs, "dev": args.dev_docs}, seed=args.seed)
    run = args.out / "run"
    if args.checkpoint is not None:  # a model trained elsewhere (e.g. benchmarks/ablation.py's paee run)
        predictor = Predictor.from_checkpoint(args.checkpoint, device="cpu")
        model, featurizer = predictor.model.eval(), predictor.featurizer
    elif args.epochs > 0:
        rc = train_main([
            "--train", str(data / "train.json"), "--dev", str(data / "dev.json"), "--encoder", "tiny", "--out", str(run),
            "--epochs", str(args.epochs), "--batch-size", "4", "--seed", str(args.seed), "--no-resume",
        ])  # fmt: skip
        if rc != 0:
            raise SystemExit(f"training failed with exit code {rc}")
        predictor = Predictor.from_checkpoint(run / "best.pt", device="cpu")
        model, featurizer = predictor.model.eval(), predictor.featurizer
    else:  # --epochs 0: random weights, which predict many triples (a harder agreement test)
        from paee.data.relations import RelationVocab
        from paee.training.setup import prepare_encoder

        train = read_documents(data / "train.json")
        source = prepare_encoder("tiny", train)
        relations = RelationVocab.from_files(data / "rel2id.json")
        config = FeaturizerConfig()
        torch.manual_seed(args.seed)
        model = build_model(make_model_config(source, relations, config)).eval()
        featurizer = Featurizer(source.tokenizer, config, relations)
    docs = read_documents(data / "dev.json")
    config = featurizer.config
    dims = ExportDims.from_model(model, config.max_mentions, config.max_sentences)
    num_layers = int(model.encoder.backbone.config.num_hidden_layers)
    paths = export_variants(model, dims, args.out / "graphs", num_layers, int8=True, openvino=True)
    all_variants = default_variants(paths)
    if "encoder.ov" in paths:
        all_variants.update(static_int8_variants(paths, featurizer, read_documents(data / "train.json"), dims.window,
                                                 args.out / "graphs"))
    variants = _select(all_variants, args.variants)
    report = parity_report(model, docs, featurizer, variants, batch_size=args.batch_size)
    # agreement with ORT fp32 (not only with PyTorch): the quantisation's own effect
    from paee_export.parity import triple_agreement
    from paee_export.runtimes import OnnxPipeline

    fp32 = OnnxPipeline({g: paths[g] for g in ENCODER_GRAPHS}, paths[HEAD], featurizer, "fp32").predict(docs)
    for name, v in variants.items():
        pipe = OnnxPipeline(v.encoders, v.head, featurizer, v.precision, head_precision=v.head_precision)
        report["variants"][name]["end_to_end"]["triples_vs_ort_fp32"] = triple_agreement(fp32, pipe.predict(docs))
    return report


def static_int8_variants(paths: dict[str, Path], featurizer, calibration_docs, window: int, out: Path) -> dict:
    """What ``paee-export --precision int8`` ships: the OpenVINO encoder statically quantised (calibrated on
    training documents), ORT dynamic int8 for the long encoder; the head at bf16 on OpenVINO, or fp32."""
    from paee_export.calibration import quantize_encoder_static
    from paee_export.optimize import graph_stats
    from paee_export.parity import Variant
    from paee_export.runtimes import create_session

    static = out / "encoder.ov.int8s.onnx"
    calibrated = quantize_encoder_static(paths["encoder.ov"], static, featurizer, window, calibration_docs)
    print(f"static int8 ({calibrated}): {graph_stats(static).summary()}")
    encoders = {ENCODER: create_session(static, "int8", backend="openvino")}
    if "encoder_long.int8" in paths:
        encoders["encoder_long"] = create_session(paths["encoder_long.int8"], "int8")
    return {
        "openvino_int8": Variant(encoders, paths[HEAD], "int8", head_precision="bf16", files=[str(static)]),
        "openvino_int8_fp32_head": Variant(encoders, paths[HEAD], "int8", head_precision="fp32", files=[str(static)]),
    }


def _select(variants: dict, names: list[str] | None) -> dict:
    """The variants named on the command line (all when none are named)."""
    if not names:
        return variants
    unknown = [n for n in names if n not in variants]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; available: {sorted(variants)}")
    return {n: variants[n] for n in names}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    red = sub.add_parser("redocred", help="fp32 ONNX vs PyTorch on Re-DocRED dev, BERT-base random weights")
    red.add_argument("--dev", type=Path, default=REDOCRED_DEV)
    red.add_argument("--rel2id", type=Path, default=REL2ID)
    red.add_argument("--limit", type=int, default=0, help="first K documents only (0: all)")
    syn = sub.add_parser("synthetic", help="int8 / bf16 triple agreement, tiny model trained briefly")
    syn.add_argument("--train-docs", type=int, default=200)
    syn.add_argument("--dev-docs", type=int, default=100)
    syn.add_argument("--epochs", type=int, default=3, help="0: random weights, no training")
    syn.add_argument("--checkpoint", type=Path, help="compare this trained model instead of training one")
    for p in (red, syn):
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--batch-size", type=int, default=4)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--variants", nargs="*", help="variants to compare (default: all), e.g. ort_fp32_fused")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    report = run_redocred(args) if args.mode == "redocred" else run_synthetic(args)
    (args.out / "parity.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(format_parity_table(report))
    for name, v in report["variants"].items():
        extra = v["end_to_end"].get("triples_vs_ort_fp32")
        if extra:
            print(f"{name}: triple Jaccard vs ORT fp32 {extra['jaccard']:.4f}, identical docs {extra['identical_documents']:.4f}")
    print(f"report: {args.out / 'parity.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
