#!/usr/bin/env bash
# The prepared GPU check (issue 14): the whole pipeline on PyTorch CUDA (eager fp32 / bf16, CUDA graphs,
# torch.compile when the budget allows) on BERT-base-sized random weights, batch 1 and 32, the 50 DocRED
# test documents at their own lengths and padded to 512 wordpieces. Writes OUT/gpu_check.json and .md.
#
#   here, once:      benchmarks/gpu_check.sh --prepare gpu_bundle      (documents from ../shared/data)
#   on the device:   benchmarks/gpu_check.sh --bundle gpu_bundle --out "$OUT"   (carry gpu_bundle)
#   here, no GPU:    benchmarks/gpu_check.sh --dry-run --out /tmp/gpu_check      (CPU, tiny model; the test)
#
# The device image has PyTorch with CUDA, transformers, onnx and onnxruntime but not this package: it is
# installed from this checkout without dependencies (or, where pip cannot build it, put on PYTHONPATH).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${PAEE_SHARED_DATA:-$ROOT/../shared/data}"
PYTHON="${PYTHON:-python}"

if [[ "${1:-}" == "--prepare" ]]; then
    [[ $# -eq 2 ]] || { echo "usage: $0 --prepare DIR" >&2; exit 2; }
    exec "$PYTHON" "$ROOT/benchmarks/gpu_check.py" --prepare "$2" --docs "$SHARED/docred/test_unlabeled.json" \
        --rel2id "$SHARED/meta/rel2id.json" --rel-info "$SHARED/meta/rel_info.json"
fi

if ! "$PYTHON" -c "import paee, paee_export, paee_bench" 2>/dev/null; then
    echo "gpu_check: installing the package from $ROOT without dependencies" >&2
    if ! "$PYTHON" -m pip install --quiet --no-deps --no-build-isolation -e "$ROOT" >&2; then
        # no build backend in the image: the same modules on the path (export/ is imported as paee_export)
        SHIM="$(mktemp -d)"
        ln -s "$ROOT/export" "$SHIM/paee_export"
        export PYTHONPATH="$ROOT:$ROOT/benchmarks:$SHIM${PYTHONPATH:+:$PYTHONPATH}"
        echo "gpu_check: pip could not install; using PYTHONPATH=$PYTHONPATH" >&2
    fi
fi

exec "$PYTHON" "$ROOT/benchmarks/gpu_check.py" "$@"
