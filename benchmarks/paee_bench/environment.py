"""What a benchmark ran on: CPU, cores, matrix-unit flags, GPU, library versions, threads, machine load.

Figures are only comparable between runs with the same environment block, so results.json carries it
whole. The load average at the start and end says whether the machine was quiet while measuring.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from typing import Any

import torch

from paee.runtime.sessions import cpu_flags
from paee_export.parity import versions

#: /proc/cpuinfo flags that decide which CPU kernels run (matrix units, vector widths, int8 dot products).
CPU_FLAGS_OF_INTEREST = (
    "amx_tile", "amx_bf16", "amx_int8", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16", "avx_vnni", "avx2", "fma",
)  # fmt: skip
#: Packages beyond `paee_export.parity.VERSIONED_PACKAGES` that the benchmark's backends use.
EXTRA_PACKAGES = ("paee", "tritonclient", "nvidia-pytriton", "onnxruntime-gpu", "tensorrt", "matplotlib", "pytest-benchmark")
#: Environment variables that change thread counts of the runtimes.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (else what `platform` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """Cores this process may run on (affinity), which is what the thread counts should match."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def gpu_info() -> dict[str, Any]:
    """CUDA devices as torch sees them ({"available": False, "reason": ...} without one)."""
    if not torch.cuda.is_available():
        return {"available": False, "reason": f"torch {torch.__version__} sees no CUDA device"}
    return {
        "available": True,
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "cuda": torch.version.cuda,
        "capability": list(torch.cuda.get_device_capability(0)),
    }


def thread_settings() -> dict[str, Any]:
    return {
        "torch_intra_op": torch.get_num_threads(),
        "torch_inter_op": torch.get_num_interop_threads(),
        **{name: os.environ.get(name) for name in THREAD_VARIABLES},
    }


def environment() -> dict[str, Any]:
    """The environment block of results.json."""
    flags = cpu_flags()
    found = dict(versions())
    for name in EXTRA_PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cores": usable_cores(),
        "cpu_flags": {flag: flag in flags for flag in CPU_FLAGS_OF_INTEREST},
        "gpu": gpu_info(),
        "platform": platform.platform(),
        "versions": found,
        "threads": thread_settings(),
        "load_average_start": load_average(),
    }


__all__ = ["environment", "usable_cores", "load_average", "cpu_model", "gpu_info"]
