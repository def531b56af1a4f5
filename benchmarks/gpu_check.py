"""The GPU check: the whole PAEE pipeline on PyTorch CUDA, one prepared run (``benchmarks/gpu_check.sh``).

What it measures, on BERT-base-sized random weights (`paee_bench.checkpoints`, threshold raised to DocRED's
density of triples) and the 50 DocRED test documents of the bundle:

* sets: ``docred50`` (each document at its own length and pair count) and ``docred50-512`` (the same
  documents cut (``--truncate``: mentions past the cut are dropped) or padded to exactly 512 wordpieces,
  and padded to the set's most pairs: fixed shapes, the CUDA-graph case);
* modes (`MODES`): PyTorch eager fp32, eager bf16 weights, CUDA graphs fp32 and bf16 (encoder and head each
  captured per input shape, `paee_bench.backends.CudaGraphRunner`), and ``torch.compile`` of the encoder
  and the head when the time budget leaves room for its compilation;
* batch 1 (per-document latency: host-to-device copy, encoder, head, device-to-host copy) and batch 32
  (documents per second over length-sorted batches); featurize and decode (CPU) timed once per document,
  so that the pipeline figure is their sum with the model's;
* agreement of every mode's triples with eager fp32 (Jaccard of the (document, head, tail, relation) sets).

Writes ``OUT/gpu_check.json`` and ``OUT/gpu_check.md``. ``--dry-run`` runs the same code on CPU with the
tiny model and four documents (what the test does); modes that need CUDA are reported as skipped with the
reason. ``--prepare DIR`` writes the bundle the device run carries: the first documents of a DocRED file
and the relation files (never committed: the bundle folder is ignored by git).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from paee.checkpoint import Checkpoint
from paee.data.decode import DecodeConfig
from paee.data.docred import read_documents
from paee.data.featurizer import Featurizer, FeaturizerConfig, collate
from paee.data.relations import RelationVocab
from paee.data.schema import Document
from paee.data.synthetic import generate_corpus, rel2id, rel_info
from paee.errors import PaeeUserError, console_script
from paee.runtime.pipeline import decode_output, document_outputs, length_batches
from paee_bench.backends import CompiledRunner, CudaGraphRunner, TorchRunner
from paee_bench.checkpoints import raise_threshold, random_model
from paee_bench.environment import environment
from paee_bench.measure import percentiles
from paee_bench.agreement import triple_agreement

BUNDLE_DOCS = "docs.json"
BUNDLE_REL2ID = "rel2id.json"
BUNDLE_REL_INFO = "rel_info.json"
#: Documents of the check (the issue's 50 DocRED test documents).
DEFAULT_DOCS = 50
BATCH_SIZES = (1, 32)
#: Padded length of the fixed-shape set.
FIXED_LENGTH = 512
#: Timed passes over a set (after one untimed pass that captures graphs / compiles); the median counts.
REPEATS = 3
#: The issue's budget is 8 minutes on the device; compilation is skipped when less than this is left.
COMPILE_NEEDS_S = 150.0


@dataclass(frozen=True)
class Mode:
    """One way to run the model: weights dtype, and CUDA graphs or torch.compile on top of eager."""

    dtype: str
    runner: str  # "eager" | "cuda-graphs" | "compile"
    needs_cuda: bool = False


#: The modes, in run order (compile last: its time depends on the budget left).
MODES = {
    "eager-fp32": Mode("fp32", "eager"),
    "eager-bf16": Mode("bf16", "eager"),
    "cuda-graphs-fp32": Mode("fp32", "cuda-graphs", needs_cuda=True),
    "cuda-graphs-bf16": Mode("bf16", "cuda-graphs", needs_cuda=True),
    "compile-bf16": Mode("bf16", "compile", needs_cuda=True),
}
REFERENCE_MODE = "eager-fp32"
RUNNERS: dict[str, Callable[[Any, str, str], Any]] = {
    "eager": lambda model, device, dtype: TorchRunner(model, device, dtype),
    "cuda-graphs": lambda model, device, dtype: CudaGraphRunner(model, dtype),
    "compile": lambda model, device, dtype: CompiledRunner(model, device, dtype),
}


def prepare_bundle(out: Path, docs: Path, rel2id_path: Path, rel_info_path: Path, count: int) -> Path:
    """Write the bundle a device run carries: the first ``count`` documents of ``docs`` and the relation files."""
    out.mkdir(parents=True, exist_ok=True)
    documents = json.loads(docs.read_text(encoding="utf-8"))[:count]
    (out / BUNDLE_DOCS).write_text(json.dumps(documents, ensure_ascii=False), encoding="utf-8")
    shutil.copy2(rel2id_path, out / BUNDLE_REL2ID)
    shutil.copy2(rel_info_path, out / BUNDLE_REL_INFO)
    return out


def load_inputs(bundle: Path | None, dry_run: bool) -> tuple[list[Document], RelationVocab, str]:
    """The documents, the relation vocabulary, and where they came from."""
    if bundle is None:
        if not dry_run:
            raise PaeeUserError("--bundle DIR is needed (write it with --prepare DIR); only --dry-run runs without")
        docs = generate_corpus(n_docs=4, seed="paee-gpu-check")
        return docs, RelationVocab.from_rel2id(rel2id(), rel_info()), "synthetic (dry run)"
    relations = RelationVocab.from_files(bundle / BUNDLE_REL2ID, bundle / BUNDLE_REL_INFO)
    docs = read_documents(bundle / BUNDLE_DOCS, relations=relations)
    return (docs[:4] if dry_run else docs), relations, f"{bundle / BUNDLE_DOCS} ({len(docs)} documents)"


def fixed_batch(batch: dict[str, np.ndarray], pairs: int) -> dict[str, np.ndarray]:
    """Pad the pair axis of a collated batch to ``pairs`` (as `collate` pads: pair (0, 0), mask 0)."""
    extra = pairs - batch["pair_mask"].shape[1]
    return {**batch, "pair_index": np.pad(batch["pair_index"], ((0, 0), (0, extra), (0, 0))),
            "pair_mask": np.pad(batch["pair_mask"], ((0, 0), (0, extra)))}


def make_batches(features: Sequence[Any], pad_id: int, batch_size: int, fixed: bool) -> list[tuple[list[int], dict]]:
    """Length-sorted batches (rows, collated numpy); ``fixed``: every batch at `FIXED_LENGTH` and the set's most pairs."""
    most_pairs = max(max(f.num_pairs for f in features), 2)
    batches = []
    for rows in length_batches(features, batch_size):
        chosen = [features[i] for i in rows]
        if fixed:
            batch = fixed_batch(collate(chosen, pad_id=pad_id, max_length=FIXED_LENGTH, length=FIXED_LENGTH), most_pairs)
        else:
            batch = collate(chosen, pad_id=pad_id, max_length=max(f.num_tokens for f in chosen) + 8)
        batches.append((rows, batch))
    return batches


def timed_pass(runner: Any, batches: Sequence[tuple[list[int], dict]]) -> tuple[list[float], list[Any]]:
    """Seconds of each batch (copy in, encoder, head, copy out) and each batch's outputs."""
    seconds, outputs = [], []
    for _, batch in batches:
        t0 = time.perf_counter()
        logits, pair_prob = runner.head(batch, runner.encode(batch))  # .cpu() in head waits for the GPU
        seconds.append(time.perf_counter() - t0)
        outputs.append((logits, pair_prob))
    return seconds, outputs


def measure_mode(runner: Any, batches: Sequence[tuple[list[int], dict]], count: int, decode_config: DecodeConfig
                 ) -> tuple[dict[str, Any], list[list[Any]]]:
    """Warm-up pass, `REPEATS` timed passes; the per-batch median; triples of every document."""
    t0 = time.perf_counter()
    _, outputs = timed_pass(runner, batches)  # captures CUDA graphs / compiles
    first_pass = time.perf_counter() - t0
    passes = [timed_pass(runner, batches)[0] for _ in range(REPEATS)]
    per_batch = [statistics.median(times) for times in zip(*passes)]
    triples: list[list[Any]] = [[] for _ in range(count)]
    for (rows, batch), (logits, pair_prob) in zip(batches, outputs):
        for i, out in zip(rows, document_outputs({"logits": logits, "pair_prob": pair_prob}, batch)):
            triples[i] = decode_output(out, decode_config)
    size = len(batches[0][0])
    figures = {"batches": len(batches), "first_pass_s": round(first_pass, 3), "docs_per_s": round(count / sum(per_batch), 2)}
    if size == 1:
        figures["model_ms_per_document"] = percentiles([1000 * s for s in per_batch])
    return figures, triples


def cpu_stages(docs: Sequence[Document], featurizer: Featurizer, decode_config: DecodeConfig, pad_id: int,
               runner: Any) -> dict[str, Any]:
    """Featurize + collate and decode per document on the CPU (the pipeline's host side), batch 1."""
    featurize_ms, decode_ms = [], []
    for doc in docs:
        t0 = time.perf_counter()
        feats = featurizer.featurize(doc)
        batch = collate([feats], pad_id=pad_id, max_length=featurizer.config.max_length)
        featurize_ms.append(1000 * (time.perf_counter() - t0))
        logits, pair_prob = runner.head(batch, runner.encode(batch))
        t0 = time.perf_counter()
        for out in document_outputs({"logits": logits, "pair_prob": pair_prob}, batch):
            decode_output(out, decode_config)
        decode_ms.append(1000 * (time.perf_counter() - t0))
    return {"featurize_ms": percentiles(featurize_ms), "decode_ms": percentiles(decode_ms)}


def run_check(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    device = "cuda" if torch.cuda.is_available() and not args.dry_run else "cpu"
    if device == "cpu" and not args.dry_run:
        raise PaeeUserError(f"no CUDA device visible to torch {torch.__version__}; --dry-run runs the check on CPU")
    docs, relations, source = load_inputs(args.bundle, args.dry_run)
    kind = "tiny" if args.dry_run else "bert-base-random"
    torch.manual_seed(0)
    model, encoder = random_model(kind, docs, relations, FeaturizerConfig(truncate=True))
    checkpoint = Checkpoint.from_model(model, encoder.tokenizer)
    featurizer = checkpoint.featurizer(truncate=True)
    shift = raise_threshold(model.to(device), featurizer, docs, device=device)
    model = model.cpu()
    decode_config = checkpoint.decode_config()
    features = featurizer.featurize_many(docs)
    sets = {"docred50": features,  # their own lengths
            "docred50-512": checkpoint.featurizer(truncate=True, max_length=FIXED_LENGTH).featurize_many(docs)}
    pad_id = featurizer.spec.pad_id
    results: dict[str, Any] = {
        "format": "paee-gpu-check", "device": device, "dry_run": bool(args.dry_run), "model": kind,
        "documents": {"source": source, "count": len(docs), "tokens": [f.num_tokens for f in features],
                      "entities": [f.num_entities for f in features]},
        "threshold_shift": round(shift, 4), "environment": environment(), "sets": {}, "skipped": {},
    }
    reference_runner = TorchRunner(model, device, "fp32")
    results["cpu_stages"] = cpu_stages(docs, featurizer, decode_config, pad_id, reference_runner)
    reference: dict[tuple[str, int], list[list[Any]]] = {}
    for set_name, set_features in sets.items():
        fixed = set_name != "docred50"
        rows: dict[str, Any] = {}
        for mode_name, mode in MODES.items():
            left = args.budget_s - (time.perf_counter() - started)
            if mode.needs_cuda and device != "cuda":
                results["skipped"][mode_name] = "needs a CUDA device (dry run on CPU)"
                continue
            if mode.runner == "compile" and left < COMPILE_NEEDS_S:
                results["skipped"][f"{set_name}/{mode_name}"] = f"{left:.0f} s of the budget left, compilation needs ~{COMPILE_NEEDS_S:.0f} s"
                continue
            try:
                runner = RUNNERS[mode.runner](model, device, mode.dtype)
                for size in BATCH_SIZES:
                    batches = make_batches(set_features, pad_id, size, fixed)
                    figures, triples = measure_mode(runner, batches, len(docs), decode_config)
                    if mode_name == REFERENCE_MODE:
                        reference[(set_name, size)] = triples
                    figures["agreement_with_eager_fp32"] = triple_agreement(reference[(set_name, size)], triples)
                    rows.setdefault(mode_name, {})[f"batch{size}"] = figures
                    print(f"{set_name} {mode_name} batch {size}: {figures['docs_per_s']} docs/s", flush=True)
                runner.close()
            except Exception as err:  # a mode that fails here is a finding: report it, keep the others
                rows[mode_name] = {"failed": f"{type(err).__name__}: {err}"}
        results["sets"][set_name] = rows
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def render_markdown(r: dict[str, Any]) -> str:
    """The report people read: one table per set."""
    env = r["environment"]
    gpu = env["gpu"].get("devices", ["none"])
    cpu = r["cpu_stages"]
    lines = [
        "# PAEE GPU check", "",
        f"* device: {r['device']} ({', '.join(gpu)}), torch {env['versions'].get('torch')}, CUDA {env['gpu'].get('cuda')}",
        f"* model: {r['model']} (random weights, threshold shifted by {r['threshold_shift']} to DocRED's density)",
        f"* documents: {r['documents']['source']}; tokens median {statistics.median(r['documents']['tokens'])}",
        f"* host side per document (CPU, batch 1): featurize p50 {cpu['featurize_ms'].get('p50')} ms, "
        f"decode p50 {cpu['decode_ms'].get('p50')} ms",
        f"* whole run: {r['seconds']} s", "",
    ]
    for set_name, rows in r["sets"].items():
        lines += [f"## {set_name}", "",
                  "| mode | model p50 ms (batch 1) | pipeline p50 ms (batch 1) | docs/s batch 1 | docs/s batch 32 | "
                  "triples Jaccard vs eager fp32 |", "|---|---:|---:|---:|---:|---:|"]
        for mode, row in rows.items():
            if "failed" in row:
                lines.append(f"| {mode} | failed: {row['failed']} | | | | |")
                continue
            one, many = row.get("batch1", {}), row.get("batch32", {})
            model_p50 = one.get("model_ms_per_document", {}).get("p50")
            pipeline = (round(model_p50 + cpu["featurize_ms"]["p50"] + cpu["decode_ms"]["p50"], 3)
                        if model_p50 is not None else None)
            lines.append(f"| {mode} | {model_p50} | {pipeline} | {one.get('docs_per_s')} | {many.get('docs_per_s')} | "
                         f"{one.get('agreement_with_eager_fp32', {}).get('jaccard', float('nan')):.4f} |")
        lines.append("")
    if r["skipped"]:
        lines += ["## Skipped", ""] + [f"* {k}: {v}" for k, v in r["skipped"].items()] + [""]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpu_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("gpu_check_out"), help="folder of gpu_check.json / .md")
    p.add_argument("--bundle", type=Path, help="folder written by --prepare (documents and relation files)")
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny model, 4 documents: the code path without a GPU")
    p.add_argument("--budget-s", type=float, default=420.0, help="time budget; torch.compile is skipped when short")
    p.add_argument("--prepare", type=Path, metavar="DIR", help="write the bundle to DIR and stop")
    p.add_argument("--docs", type=Path, help="with --prepare: the DocRED file to take documents from")
    p.add_argument("--rel2id", type=Path, help="with --prepare: rel2id.json")
    p.add_argument("--rel-info", type=Path, help="with --prepare: rel_info.json")
    p.add_argument("--limit", type=int, default=DEFAULT_DOCS, help="with --prepare: documents to take")
    return p


def _main(args: argparse.Namespace) -> int:
    if args.prepare is not None:
        missing = [o for o, v in (("--docs", args.docs), ("--rel2id", args.rel2id), ("--rel-info", args.rel_info)) if v is None]
        if missing:
            raise PaeeUserError(f"--prepare needs {', '.join(missing)}")
        print(prepare_bundle(args.prepare, args.docs, args.rel2id, args.rel_info, args.limit))
        return 0
    results = run_check(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    (args.out / "gpu_check.md").write_text(render_markdown(results), encoding="utf-8")
    print(render_markdown(results))
    return 0


main = console_script(build_parser, _main)

if __name__ == "__main__":
    sys.exit(main())
