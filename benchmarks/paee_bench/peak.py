"""This machine's matrix-multiply peak, measured in the same run as the model, per precision.

The peak is the best of the methods measured for a precision: a square n x n x n product, timed as the
median of ``repeats`` runs after warm-up, ``2 n^3`` operations per product, with the thread count the
model runs with. The methods (each recorded in results.json):

========= ====== ==================================================================================
precision device methods
========= ====== ==================================================================================
fp32      cpu    ``torch.matmul`` (oneDNN / MKL), ``numpy.matmul`` (its BLAS; thread count fixed at
                 import by OMP_NUM_THREADS / OPENBLAS_NUM_THREADS) and an OpenVINO MatMul (f32 hint)
bf16      cpu    ``torch.matmul`` on bfloat16 tensors (oneDNN: AMX or AVX512-BF16 where present) and an
                 OpenVINO MatMul compiled with the bf16 hint
int8      cpu    ``torch._int_mm`` (s8 x s8 -> s32), ONNX Runtime ``MatMulInteger`` (u8 x s8 -> s32,
                 the kernel behind its dynamic quantisation) and an OpenVINO MatMul between FakeQuantize
                 nodes (its static int8 path, u8 x i8); integer operations per second
fp32      cuda   ``torch.matmul`` with TF32 off
fp16/bf16 cuda   ``torch.matmul`` on half / bfloat16 tensors
========= ====== ==================================================================================

Why the best of several: every runtime the report measures the model on (PyTorch, ONNX Runtime,
OpenVINO) has its own kernels, and the fraction of peak must not flatter the model by using a slower
reference than the one the model ran on: with each runtime's own matmul in the peak, no backend's
fraction exceeds 1 (the bf16 encoder once read 1.30 against ``torch.matmul`` alone).
"""

from __future__ import annotations

import importlib
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from paee.errors import PaeeFailure
from paee.runtime.sessions import import_runtime

#: Side of the square product: big enough to reach the kernels' steady state on a CPU.
DEFAULT_SIZE = 2048
#: GPU products need a larger size to fill the device.
DEFAULT_CUDA_SIZE = 8192
DEFAULT_REPEATS = 5
WARMUP = 2


class PeakUnavailable(PaeeFailure):
    """No method can measure this precision here (the message says why)."""


@dataclass
class PeakResult:
    """The peak of one (device, precision): operations per second and how it was measured."""

    device: str
    precision: str
    ops_per_s: float
    method: str
    size: int
    methods: dict[str, float] = field(default_factory=dict)  # every method tried -> ops/s
    failed: dict[str, str] = field(default_factory=dict)  # method -> why it could not run

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _median_seconds(fn: Callable[[], Any], repeats: int, sync: Callable[[], None] = lambda: None) -> float:
    for _ in range(WARMUP):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _torch_matmul(dtype_name: str, device: str, size: int, repeats: int) -> float:
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype_name]
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=gen).to(device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32, not TF32
    try:
        seconds = _median_seconds(lambda: torch.matmul(a, b), repeats, sync)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    return 2 * size**3 / seconds


def _numpy_matmul(size: int, repeats: int) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    return 2 * size**3 / _median_seconds(lambda: a @ b, repeats)


def _torch_int_mm(size: int, repeats: int) -> float:
    if not hasattr(torch, "_int_mm"):
        raise PeakUnavailable("this torch has no torch._int_mm")
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(-128, 128, (size, size), dtype=torch.int8, generator=gen)
    b = torch.randint(-128, 128, (size, size), dtype=torch.int8, generator=gen)
    return 2 * size**3 / _median_seconds(lambda: torch._int_mm(a, b), repeats)


def _ort_matmul_integer(size: int, repeats: int, threads: int | None) -> float:
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    weight = rng.integers(-128, 128, (size, size), dtype=np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "int8_peak",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [size, size])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [size, size])],
        initializer=[onnx.numpy_helper.from_array(weight, "b")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    a = rng.integers(0, 256, (size, size), dtype=np.uint8)
    return 2 * size**3 / _median_seconds(lambda: session.run(None, {"a": a}), repeats)


def _openvino_matmul(precision: str, size: int, repeats: int, threads: int | None) -> float:
    """An OpenVINO MatMul with a constant right-hand side (as in the model's linear layers); for int8 both
    sides pass FakeQuantize, which OpenVINO's low-precision pass turns into a u8 x i8 product."""
    ov = import_runtime("openvino", "the OpenVINO peak needs openvino: pip install openvino")
    ops = importlib.import_module("openvino.opset13")
    rng = np.random.default_rng(0)
    source = ops.parameter([size, size], np.float32, name="a")
    left, right = source, ops.constant(rng.standard_normal((size, size)).astype(np.float32))
    if precision == "int8":
        low, high = ops.constant(np.float32(-4.0)), ops.constant(np.float32(4.0))
        left = ops.fake_quantize(left, low, high, low, high, 256)
        right = ops.fake_quantize(right, low, high, low, high, 255)
    model = ov.Model([ops.matmul(left, right, False, False)], [source])
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
                              "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    request = ov.Core().compile_model(model, "CPU", config).create_infer_request()
    x = rng.standard_normal((size, size)).astype(np.float32)
    return 2 * size**3 / _median_seconds(lambda: request.infer({0: x}), repeats)


def _methods(device: str, precision: str, size: int, repeats: int, threads: int | None) -> dict[str, Callable[[], float]]:
    """The measuring functions of one (device, precision), by method name."""
    if device == "cuda":
        if precision not in ("fp32", "fp16", "bf16"):
            raise PeakUnavailable(f"no CUDA peak method for {precision}")
        return {f"torch.matmul cuda {precision}": lambda: _torch_matmul(precision, "cuda", size, repeats)}
    if precision == "fp32":
        return {"torch.matmul fp32": lambda: _torch_matmul("fp32", "cpu", size, repeats),
                "numpy.matmul fp32": lambda: _numpy_matmul(size, repeats),
                "openvino MatMul f32": lambda: _openvino_matmul("fp32", size, repeats, threads)}
    if precision == "bf16":
        return {"torch.matmul bf16": lambda: _torch_matmul("bf16", "cpu", size, repeats),
                "openvino MatMul bf16": lambda: _openvino_matmul("bf16", size, repeats, threads)}
    if precision == "int8":
        return {"torch._int_mm s8s8s32": lambda: _torch_int_mm(size, repeats),
                "onnxruntime MatMulInteger u8s8s32": lambda: _ort_matmul_integer(size, repeats, threads),
                "openvino FakeQuantize MatMul u8i8": lambda: _openvino_matmul("int8", size, repeats, threads)}
    raise PeakUnavailable(f"no CPU peak method for {precision} (fp16 CPU kernels are not a deployment path here)")


def measure_peak(device: str, precision: str, size: int | None = None, repeats: int = DEFAULT_REPEATS,
                 threads: int | None = None) -> PeakResult:
    """Best ops/s over this (device, precision)'s methods; `PeakUnavailable` when none runs."""
    size = size or (DEFAULT_CUDA_SIZE if device == "cuda" else DEFAULT_SIZE)
    measured: dict[str, float] = {}
    failed: dict[str, str] = {}
    for name, method in _methods(device, precision, size, repeats, threads).items():
        try:
            measured[name] = method()
        except Exception as err:  # a missing kernel or runtime: recorded, the other methods still count
            failed[name] = f"{type(err).__name__}: {err}"
    if not measured:
        raise PeakUnavailable(f"no {device} {precision} matmul could run: {failed}")
    best = max(measured, key=measured.__getitem__)
    return PeakResult(device, precision, measured[best], best, size, measured, failed)


__all__ = ["PeakResult", "PeakUnavailable", "measure_peak", "DEFAULT_SIZE"]
