"""Corpus prediction on Ray Data against `paee-predict`: the same triples, and documents per second by actors.

  python benchmarks/ray_corpus.py --checkpoint runs/demo/run/best.pt --docs 1000 --out runs/ray_corpus

The checkpoint is exported to a CPU repository (fp32 ONNX, as `paee-export --target cpu`); ``--docs``
synthetic documents (those the checkpoint reads without truncation) are written as 8 JSON-lines shards plus
one poisoned document. `paee-predict`'s path (`Predictor.stream`, PyTorch) gives the reference triples; then
`paee-batch`'s job (`run_corpus`) runs on a local Ray runtime of ``--num-cpus`` CPUs with each pool layout of
``--layouts`` (actors x threads per actor). Reported: docs/s of each, and whether its triples (title, head,
tail, relation, evidence) equal the reference exactly; the poisoned document must be the one error.
Writes OUT/results.json and OUT/results.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path


def _keys(records) -> set[tuple]:
    return {(r["title"], r["h_idx"], r["t_idx"], r["r"], tuple(r["evidence"])) for r in records}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--docs", type=int, default=1000)
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--num-cpus", type=int, default=2)
    p.add_argument("--layouts", default="1x1,2x1,1x2", help="actors x threads per actor, comma separated")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()

    import ray
    import torch

    from paee.data.synthetic import generate_corpus
    from paee.inference import Predictor
    from paee.runtime.corpus import CorpusJob, run_corpus
    from paee_export.pipeline import export_checkpoint

    args.out.mkdir(parents=True, exist_ok=True)
    repository = args.out / "repo"
    if not repository.exists():
        export_checkpoint(args.checkpoint, repository, force=True, progress=True, target="cpu", precision="fp32")
    predictor = Predictor.from_checkpoint(args.checkpoint, device="cpu")
    pool = generate_corpus(n_docs=args.docs * 2, seed=7)
    fits = predictor.featurizer.featurize_many(pool, errors="collect")
    docs = [d for d, f in zip(pool, fits) if not isinstance(f, Exception)][: args.docs]
    if len(docs) < args.docs:
        raise SystemExit(f"only {len(docs)} synthetic documents fit the checkpoint's max_length")
    shard_dir = args.out / "shards"
    shutil.rmtree(shard_dir, ignore_errors=True)
    shard_dir.mkdir()
    for s in range(args.shards):
        lines = [json.dumps(d.to_json()) for d in docs[s :: args.shards]]
        (shard_dir / f"part-{s:03d}.jsonl").write_text("\n".join(lines) + "\n")
    poisoned = docs[0].to_json()
    poisoned["title"], poisoned["vertexSet"][0][0]["pos"] = "poisoned", [5, 2]  # an empty span: refused
    (shard_dir / "poisoned.jsonl").write_text(json.dumps(poisoned) + "\n")

    torch.set_num_threads(args.num_cpus)
    started = time.perf_counter()
    reference = []
    for doc, features, triples in predictor.stream(docs):
        reference += predictor.result_records(doc, features, triples)
    torch_seconds = time.perf_counter() - started
    rows = [{"engine": f"paee-predict (PyTorch, {args.num_cpus} threads, one process)", "docs_per_s": args.docs / torch_seconds,
             "seconds": torch_seconds, "same_triples": True, "errors": 0}]

    ray.init(num_cpus=args.num_cpus, include_dashboard=False, logging_level=logging.WARNING)
    try:
        for layout in args.layouts.split(","):
            actors, threads = map(int, layout.split("x"))
            out = args.out / f"ray_{actors}x{threads}"
            shutil.rmtree(out, ignore_errors=True)
            job = CorpusJob(repository, [shard_dir], out, actors=actors, threads=threads)
            report = run_corpus(job)
            records = []
            for path in report.files:
                records += json.loads((out / path).read_text())
            errors = json.loads((out / "errors.json").read_text())
            rows.append({"engine": f"paee-batch, Ray Data, {actors} actor(s) x {threads} thread(s)",
                         "docs_per_s": report.docs_per_second, "seconds": report.seconds,
                         "same_triples": _keys(records) == _keys(reference), "errors": len(errors),
                         "error_titles": [e["title"] for e in errors], "records": len(records)})
            print(rows[-1])
    finally:
        ray.shutdown()

    result = {"docs": args.docs, "reference_records": len(reference), "num_cpus": args.num_cpus,
              "checkpoint": str(args.checkpoint), "rows": rows}
    (args.out / "results.json").write_text(json.dumps(result, indent=1))
    lines = [f"# Corpus prediction: {args.docs} synthetic documents ({len(reference)} reference records), "
             f"{args.num_cpus} CPUs", "", "| engine | docs/s | seconds | same triples as paee-predict | errors |",
             "|---|---:|---:|---|---:|"]
    lines += [f"| {r['engine']} | {r['docs_per_s']:.1f} | {r['seconds']:.1f} | {'yes' if r['same_triples'] else 'NO'} | "
              f"{r['errors']} |" for r in rows]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
