"""`paee-bench`: accuracy parity and latency / throughput of PAEE across PyTorch, ONNX Runtime, OpenVINO,
TensorRT and Triton, read against this machine's matrix-multiply peak. Writes OUT/results.json,
OUT/results.md and four PNG plots.

  paee-bench --checkpoint best.pt [--backends torch,ort,...] [--docs FILE] [--batch-sizes 1,4,16]
             [--concurrency 1,8,32] [--out DIR] [--quick]
  paee-bench --make-checkpoint bert-base-random --docs ../shared/data/docred/test_unlabeled.json --limit 50 ...

Backends that cannot run here (no GPU, runtime missing, CPU without bf16) are listed as skipped with the
reason. See benchmarks/README.md for what every figure means.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from paee.errors import run_command
from paee_bench.backends import BACKENDS, parse_backends
from paee_bench.checkpoints import KINDS
from paee_bench.runner import run
from paee_bench.settings import FULL, QUICK, BenchSettings


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from err
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _backends(text: str) -> list[str]:
    try:
        return parse_backends(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paee-bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = p.add_mutually_exclusive_group()
    model.add_argument("--checkpoint", type=Path, help="a PAEE checkpoint (best.pt)")
    model.add_argument("--make-checkpoint", choices=KINDS,
                       help="benchmark a random-weight model of this size instead, saved as OUT/checkpoint.pt")
    p.add_argument("--backends", type=_backends, default=list(BACKENDS),
                   help=f"comma-separated, in report order (default: all): {','.join(BACKENDS)}")
    p.add_argument("--docs", type=Path, help="DocRED-format documents (default: seeded synthetic documents)")
    p.add_argument("--limit", type=int, help="use the first K documents of --docs")
    p.add_argument("--synthetic-docs", type=int, help=f"synthetic documents without --docs (default {FULL['synthetic_docs']}, "
                   f"quick {QUICK['synthetic_docs']})")
    p.add_argument("--rel2id", type=Path, help="relation vocabulary of --make-checkpoint (rel_info.json beside it names them)")
    p.add_argument("--batch-sizes", type=_ints, help="in-process throughput sweep (default 1,4,16)")
    p.add_argument("--concurrency", type=_ints, help="Triton throughput sweep, requests in flight (default 1,8,32)")
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="output folder (default runs/bench)")
    p.add_argument("--quick", action="store_true", help="small sizes: a tiny model finishes in under 2 minutes")
    p.add_argument("--threads", type=int, help="threads of every runtime (default: the usable cores)")
    p.add_argument("--max-length", type=int, help="longest document in wordpieces (default: the checkpoint's); longer "
                                                  "documents are cut and counted in the report, as paee-predict --truncate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup", type=int, help="warm-up documents per backend, plus one per length bucket (default 3)")
    p.add_argument("--throughput-docs", type=int, help="documents of each throughput measurement (default 32)")
    p.add_argument("--peak-size", type=int, help="side of the square matmul of the peak (default 2048 CPU, 8192 GPU)")
    p.add_argument("--head-loop-docs", type=int, help="documents in the head-vs-loop batch (0: skip; default 4)")
    p.add_argument("--triton-precision", default="fp32", choices=["fp32", "int8", "bf16"],
                   help="precision of the repository served for triton-http / triton-grpc (default fp32)")
    p.add_argument("--repository", type=Path, help="serve this Triton repository instead of exporting one")
    p.add_argument("--url", help="HTTP host:port of a running Triton server (none is started)")
    p.add_argument("--grpc-url", help="gRPC host:port of a running Triton server")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or step lines")
    return p


def settings_from_args(args: argparse.Namespace, argv: list[str]) -> BenchSettings:
    return BenchSettings(
        checkpoint=args.checkpoint, make_checkpoint=args.make_checkpoint, backends=args.backends, docs=args.docs,
        limit=args.limit, rel2id=args.rel2id, out=args.out, quick=args.quick, threads=args.threads, seed=args.seed,
        max_length=args.max_length,
        triton_precision=args.triton_precision, repository=args.repository, url=args.url, grpc_url=args.grpc_url,
        progress=not args.no_progress, command=shlex.join(["paee-bench", *argv]), synthetic_docs=args.synthetic_docs,
        batch_sizes=args.batch_sizes, concurrency=args.concurrency, warmup=args.warmup,
        throughput_docs=args.throughput_docs, peak_size=args.peak_size, head_loop_docs=args.head_loop_docs,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = settings_from_args(args, argv)
    try:
        settings.check()
    except ValueError as err:
        parser.error(str(err))

    def body() -> int:
        results = run(settings)
        ran = [n for n, e in results["backends"].items() if e["status"] == "ok"]
        others = [f"{n} ({e['status']})" for n, e in results["backends"].items() if e["status"] != "ok"]
        print(f"ran {', '.join(ran) or 'nothing'}; not run: {', '.join(others) or 'none'}")
        print(f"report: {Path(settings.out) / 'results.md'} (results.json, plots beside it), {results['seconds']:.0f} s")
        return 0

    return run_command(body, "paee-bench")


if __name__ == "__main__":
    sys.exit(main())
