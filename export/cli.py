"""`paee-export --checkpoint best.pt [--out DIR]`: a Triton model repository with its export report.

Prints numbered progress lines (stderr), the parity table and the repository path (stdout). A user
error (bad or truncated checkpoint, a file that is not a PAEE checkpoint, --out that is a file, an
existing repository without --force, a precision the target cannot do, unreadable parity documents)
is one line on stderr and exit status 2; a failed export (the graphs disagree with PyTorch, attention
left unfused) is one line and exit status 1. Either way nothing is left behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from paee.data.detect import DetectionConfig, add_detection_options
from paee.data.docred import read_documents
from paee.data.featurizer import MAX_SUPPORTED_LENGTH
from paee.errors import PaeeUserError, console_script
from paee.runtime.sessions import PRECISIONS
from paee_export.calibration import DEFAULT_CALIBRATION_DOCS
from paee_export.parity import format_parity_table
from paee_export.pipeline import check_settings, export_checkpoint
from paee_export.plan import TARGETS, ExportRequestError, check_request

#: Real documents taken from --parity-docs by default: enough to see a difference, minutes at most for
#: BERT-base on a 2-core CPU.
DEFAULT_PARITY_LIMIT = 20
#: Default repository folder name, beside the checkpoint.
DEFAULT_REPOSITORY_NAME = "triton_repo"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paee-export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, type=Path, help="a PAEE checkpoint (best.pt)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"repository folder (default: {DEFAULT_REPOSITORY_NAME}/ beside the checkpoint)")
    p.add_argument("--target", choices=TARGETS, default="cpu",
                   help="cpu: python models running ONNX Runtime / OpenVINO; gpu: native ONNX Runtime / TensorRT models")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="cpu: fp32 (ONNX Runtime), int8 (OpenVINO static int8 encoder, calibrated; bf16 head where the "
                        "CPU has bf16 units), bf16 (OpenVINO; needs AMX / AVX512-BF16, else fp32); gpu: fp32, fp16 "
                        "(the plans: paee_export.plan)")
    p.add_argument("--max-batch-size", type=int, default=8, help="max_batch_size of every Triton model")
    p.add_argument("--instances", type=int, default=1, help="instances of every Triton model")
    p.add_argument("--no-dynamic-batching", action="store_true",
                   help="write the models without Triton's dynamic batcher (each request runs alone; for comparison)")
    p.add_argument("--no-warmup", action="store_true",
                   help="write no model_warmup in the encoder and head configs (a fresh server's first request then "
                        "pays the runtimes' first run; for comparison)")
    p.add_argument("--tensorrt", action="store_true",
                   help="build TensorRT engines (gpu target; skipped, with the reason in the report, without TensorRT or a GPU)")
    p.add_argument("--force", action="store_true", help="replace an existing repository")
    p.add_argument("--parity-docs", type=Path, default=None,
                   help="documents (DocRED JSON or text form) added to the synthetic parity documents, e.g. a dev split")
    p.add_argument("--parity-limit", type=int, default=DEFAULT_PARITY_LIMIT,
                   help=f"use the first K --parity-docs (default {DEFAULT_PARITY_LIMIT})")
    p.add_argument("--no-parity", action="store_true", help="skip the parity measurement")
    p.add_argument("--calibration", type=Path, default=None,
                   help="int8: documents (DocRED JSON or text form) that calibrate the activation ranges; use "
                        "documents like the ones you will serve (default: synthetic documents)")
    p.add_argument("--max-length", type=int, default=None,
                   help=f"longest document the repository serves, in wordpieces with markers (default: the checkpoint's; "
                        f"at most {MAX_SUPPORTED_LENGTH}); a longer request fails unless it asks to be truncated")
    p.add_argument("--evidence-threshold", type=float, default=None,
                   help="served evidence: the sentences whose share of a pair's attention exceeds this, in [0, 1) "
                        "(default: the checkpoint's, 0.2 unless set)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_detection_options(p, default=None)  # a detector: the repository also serves plain text {title, text}
    return p


def _export(args: argparse.Namespace) -> int:
    if args.parity_limit < 0:
        raise PaeeUserError(f"--parity-limit must be >= 0, got {args.parity_limit}")
    if args.max_length is not None and not 1 <= args.max_length <= MAX_SUPPORTED_LENGTH:
        raise PaeeUserError(f"--max-length must be in 1..{MAX_SUPPORTED_LENGTH}, got {args.max_length}")
    if args.calibration is not None and args.precision != "int8":
        raise ExportRequestError(f"--calibration is for --precision int8 (static quantisation), not {args.precision}")
    out = args.out if args.out is not None else args.checkpoint.parent / DEFAULT_REPOSITORY_NAME
    # the cheap checks first, so that a bad option fails before documents or the checkpoint are read
    check_request(args.target, args.precision)
    check_settings(out, force=args.force, max_batch_size=args.max_batch_size, instances=args.instances)
    parity_docs = read_documents(args.parity_docs)[: args.parity_limit] if args.parity_docs and not args.no_parity else None
    calibration = read_documents(args.calibration)[:DEFAULT_CALIBRATION_DOCS] if args.calibration else None
    result = export_checkpoint(
        args.checkpoint, out, target=args.target, precision=args.precision, max_batch_size=args.max_batch_size,
        instances=args.instances, dynamic_batching=not args.no_dynamic_batching, tensorrt=args.tensorrt,
        force=args.force, parity=not args.no_parity, parity_docs=parity_docs, calibration_docs=calibration,
        max_length=args.max_length, evidence_threshold=args.evidence_threshold, progress=not args.quiet,
        detection=DetectionConfig.from_options(args) if args.detector else None, warmup=not args.no_warmup,
    )  # fmt: skip
    report = result.report
    if result.parity is not None:
        print(format_parity_table(result.parity))
    fused = report.build.get("fused_attention", {})
    if fused:
        print("fused attention: " + ", ".join(f"{g} {v['fused_attention']}/{v['layers']}" for g, v in fused.items()))
    trt = report.tensorrt
    if trt.get("requested"):
        print("tensorrt: " + (f"built {', '.join(trt['built'])}" if "built" in trt else f"skipped: {trt.get('skipped') or trt.get('failed')}"))
    print(f"repository ({result.plan.target}, {result.plan.precision}, plan {result.plan.name}): {result.repository}")
    return 0


main = console_script(build_parser, _export)


if __name__ == "__main__":
    sys.exit(main())
