"""`paee-demo`: the main job end to end on the embedded default, in one command.

1. writes the bundled synthetic corpus (seeded generator, no download),
2. trains a tiny PAEE model on it (`paee-train --encoder tiny`),
3. exports it (`paee-export`: ONNX graphs, parity report, Triton repository),
4. serves the repository with the bundled tritonserver (the `nvidia-pytriton` wheel) on loopback,
5. queries it over HTTP and gRPC, and prints triples, parity with PyTorch and latency.

Everything lands in ``--out`` (default ``runs/demo``); running again reuses the trained model unless
``--retrain``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from paee.cli.train import main as train_main
from paee.data.decode import triple_record
from paee.data.docred import read_documents
from paee.data.synthetic import SyntheticConfig, write_synthetic_splits
from paee.errors import console_script
from paee.inference import Predictor
from paee.serving.client import PaeeClient
from paee.serving.server import TritonServer
from paee_export.parity import format_parity_table
from paee_export.pipeline import export_checkpoint

DEFAULT_OUT = Path("runs/demo")
#: Sized so that the whole demo (train, export, serve, query) stays within about 5 minutes on 2 CPU cores.
DEFAULT_SIZES = {"train": 1000, "dev": 30, "test": 30}
DEFAULT_EPOCHS = 3
#: The evidence-guided attention loss (README, "Learning"): without it the tiny encoder does not find the
#: words that tell the relations apart within minutes.
EVIDENCE_WEIGHT = 0.1


def _latencies_ms(fn: Callable[[object], object], items: Sequence[object], warmup: int = 2) -> dict[str, float]:
    """Per-item wall time of `fn` run sequentially (concurrency 1), after `warmup` items."""
    for item in items[:warmup]:
        fn(item)
    times = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        times.append(1000 * (time.perf_counter() - t0))
    times.sort()
    return {
        "p50": round(statistics.median(times), 1),
        "p90": round(times[min(len(times) - 1, int(0.9 * len(times)))], 1),
        "mean": round(statistics.fmean(times), 1),
        "docs_per_s": round(1000 * len(times) / sum(times), 1),
    }


def _triple_set(records) -> set[tuple[int, int, str]]:
    """(head, tail, relation id) of triple records (served, or `paee.data.decode.triple_record`)."""
    return {(t["h_idx"], t["t_idx"], t["r"]) for t in records}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paee-demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default="fp32", choices=["fp32", "int8", "bf16"], help="CPU precision of the served graphs")
    p.add_argument("--retrain", action="store_true", help="train again even if OUT/run/best.pt exists")
    p.add_argument("--show", type=int, default=3, help="documents whose triples are printed")
    p.add_argument("--preset", default="plain", choices=["plain", "docred"],
                   help="synthetic corpus: plain (short documents, one statement per sentence; default, the "
                        "README's 'Learning' figures) or docred (DocRED-like, long documents: much harder for a "
                        "tiny model trained from scratch, and slower)")
    return p


def _demo(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    out: Path = args.out
    data, run, repo = out / "data", out / "run", out / "triton_repo"

    def step(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", flush=True)

    step(f"1/5 synthetic corpus ({args.preset}) -> {data}")
    config = SyntheticConfig.plain() if args.preset == "plain" else SyntheticConfig()
    write_synthetic_splits(data, config, sizes=DEFAULT_SIZES, seed=args.seed)

    checkpoint = run / "best.pt"
    if args.retrain or not checkpoint.is_file():
        step(f"2/5 training a tiny PAEE model ({args.epochs} epochs) -> {run}")
        rc = train_main([
            "--train", str(data / "train.json"), "--dev", str(data / "dev.json"), "--encoder", "tiny",
            "--out", str(run), "--epochs", str(args.epochs), "--batch-size", "2",
            "--evidence-weight", str(EVIDENCE_WEIGHT), "--seed", str(args.seed), "--no-resume", "--truncate",
        ])
        if rc:
            return rc
    else:
        step(f"2/5 reusing {checkpoint} (--retrain to train again)")

    step(f"3/5 exporting ({args.precision}) -> {repo}")
    exported = export_checkpoint(checkpoint, repo, target="cpu", precision=args.precision, force=True, progress=False)

    test_docs = read_documents(data / "test.json")
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu", featurizer_overrides={"truncate": True})
    reference = predictor.predict(test_docs)
    relations = predictor.relations
    reference_records = [[triple_record(t, relations) for t in triples] for triples in reference]

    step("4/5 starting tritonserver (bundled nvidia-pytriton wheel) on 127.0.0.1")
    with TritonServer(repo) as server:
        step(f"    HTTP {server.http_url}  gRPC {server.grpc_url}  metrics {server.metrics_url}")
        step("5/5 querying the ensemble over HTTP and gRPC")
        results, latency = {}, {}
        payloads = [doc.to_json() for doc in test_docs]
        for protocol, url in (("http", server.http_url), ("grpc", server.grpc_url)):
            with PaeeClient(url, protocol=protocol) as client:
                results[protocol] = [client.predict(p) for p in payloads]
                latency[f"triton-{protocol}"] = _latencies_ms(client.predict, payloads)
    latency["pytorch in-process"] = _latencies_ms(lambda d: predictor.predict([d]), test_docs)

    print()
    for doc, triples in list(zip(test_docs, results["http"]))[: args.show]:
        print(f"{doc.title}: {len(triples)} triples")
        for t in triples[:6]:
            head, tail = doc.entities[t["h_idx"]][0].name, doc.entities[t["t_idx"]][0].name
            print(f"    {head!r} --{t['r_name']}--> {tail!r}   (score {t['score']:.2f})")
    print()
    reference_sets = [_triple_set(r) for r in reference_records]
    mismatched = 0
    for protocol, served in results.items():
        same = sum(_triple_set(s) == r for s, r in zip(served, reference_sets))
        mismatched += len(test_docs) - same
        print(f"parity {protocol:4s}: {same}/{len(test_docs)} documents with exactly PyTorch's triples")
    print(f"PyTorch predicts {sum(map(len, reference))} triples on the {len(test_docs)} test documents")
    if exported.parity:
        print(format_parity_table(exported.parity))
    print(f"{'latency per document (ms)':<28}{'p50':>8}{'p90':>8}{'docs/s':>9}")
    for name, lat in latency.items():
        print(f"{name:<28}{lat['p50']:>8}{lat['p90']:>8}{lat['docs_per_s']:>9}")
    step(f"done; repository {repo}, checkpoint {checkpoint}")
    # A served answer that differs from the model's is a failure of the main job, not a footnote.
    return 1 if mismatched else 0


main = console_script(build_parser, _demo)


if __name__ == "__main__":
    sys.exit(main())
