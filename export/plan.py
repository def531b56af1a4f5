"""What each (target, precision) ships, as one table: the export plans.

A plan says, for every graph, which exporter writes it, which transforms turn the export into the
shipped file, and which runtime runs it at which precision. The request check of ``paee-export``, the
export itself (`paee_export.build.GraphBuilder` makes the files), the repository writer (the graphs'
``runtime.json`` entries) and ``paee-bench`` (its ONNX backends and its Triton repositories) all read
this table, so the benchmark measures what the export ships.

Some plans need something of the machine (OpenVINO installed, a CPU with bf16 units); a plan whose
requirement is missing falls back to the plan it names, with a warning that says why (`resolve_plan`).

============= =========================================================================================
plan          what ships
============= =========================================================================================
cpu-fp32      ORT-optimised encoders (fused Attention), the head as exported; ONNX Runtime fp32
cpu-int8      OpenVINO: the dynamo export of ``encoder`` statically quantised (QDQ: int8 weights per
              channel, int8 activations calibrated on documents; products of two activations stay float),
              the head at bf16; ``encoder_long`` ORT dynamic int8 (OpenVINO cannot compile its window merge)
cpu-int8-fp32-head  the same with an ONNX Runtime fp32 head, for CPUs without bf16 units
cpu-int8-dynamic    ORT dynamic int8 encoders (activations quantised on every call: slower), fp32 head;
              where OpenVINO is not installed
cpu-bf16      OpenVINO at INFERENCE_PRECISION_HINT=bf16: the dynamo export of ``encoder`` (OpenVINO misreads
              the TorchScript trace's entity pooling) and the head; ``encoder_long`` stays ORT fp32.
              Needs AMX / AVX512-BF16 (emulated bf16 would be slower than fp32): else cpu-fp32
gpu-fp32      the plain exports (TensorRT parses no ORT contrib ops) for onnxruntime_onnx + TensorRT
              accelerator, or ``tensorrt_plan`` engines
gpu-fp16      fp16 copies of the plain exports (LayerNorm / Softmax kept fp32, fp32 I/O); TensorRT 11
              builds only strongly typed networks, so engines are built from these files too
============= =========================================================================================

gpu int8 is refused: it would need TensorRT calibration (static activation ranges), which this package
does not do, and ORT's dynamic int8 kernels are CPU kernels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from paee.errors import PaeeUserError
from paee.runtime.contract import ENCODER, ENCODER_LONG, HEAD
from paee.runtime.sessions import PRECISIONS, bf16_cpu_support, openvino_available
from paee_export.onnx_export import DEFAULT_EXPORTERS

TARGETS = ("cpu", "gpu")
#: The runtime of the GPU flavour's graphs: Triton's native onnxruntime backend (TensorRT accelerator) or
#: ``tensorrt_plan`` engines; in process, ONNX Runtime with the CUDA provider.
TRITON_NATIVE = "triton-native"


class ExportRequestError(PaeeUserError):
    """The export request cannot be done as asked (a bad option, an output in the way)."""


@dataclass(frozen=True)
class GraphPlan:
    """How one graph ships: exporter, transforms (in order, `paee_export.build.TRANSFORMS`), runtime."""

    exporter: str  # "torchscript" | "dynamo" (`paee_export.onnx_export.EXPORTER_OPSETS`)
    transforms: tuple[str, ...]
    backend: str  # "onnxruntime" | "openvino" (CPU python models) | TRITON_NATIVE (GPU)
    precision: str  # the precision its session runs at


@dataclass(frozen=True)
class ExportPlan:
    """One row of `PLANS`."""

    name: str
    target: str
    precision: str  # what the repository ships, as the manifest and the export report say
    graphs: Mapping[str, GraphPlan]
    requires: tuple[str, ...] = ()  # `REQUIREMENTS` this machine must meet
    fallback: str | None = None  # the plan shipped instead when a requirement is missing


def _plain(graph: str, *transforms: str, backend: str, precision: str) -> GraphPlan:
    """A graph exported with its default exporter."""
    return GraphPlan(DEFAULT_EXPORTERS[graph], tuple(transforms), backend, precision)


def _openvino(*transforms: str, precision: str) -> GraphPlan:
    """The short encoder for OpenVINO: the dynamo export (OpenVINO misreads the TorchScript trace)."""
    return GraphPlan("dynamo", tuple(transforms), "openvino", precision)


_ORT_FP32_ENCODERS = {g: _plain(g, "ort_optimize", backend="onnxruntime", precision="fp32") for g in (ENCODER, ENCODER_LONG)}
_ORT_INT8_LONG = _plain(ENCODER_LONG, "ort_optimize", "dynamic_int8", backend="onnxruntime", precision="int8")
_ORT_FP32_HEAD = _plain(HEAD, backend="onnxruntime", precision="fp32")
_OPENVINO_BF16_HEAD = GraphPlan(DEFAULT_EXPORTERS[HEAD], (), "openvino", "bf16")

#: Every plan by name (the module docstring's table).
PLANS: dict[str, ExportPlan] = {
    plan.name: plan
    for plan in (
        ExportPlan("cpu-fp32", "cpu", "fp32", {**_ORT_FP32_ENCODERS, HEAD: _ORT_FP32_HEAD}),
        ExportPlan(
            "cpu-int8", "cpu", "int8",
            {ENCODER: _openvino("static_int8", precision="int8"), ENCODER_LONG: _ORT_INT8_LONG, HEAD: _OPENVINO_BF16_HEAD},
            requires=("openvino", "bf16_cpu"), fallback="cpu-int8-fp32-head",
        ),
        ExportPlan(
            "cpu-int8-fp32-head", "cpu", "int8",
            {ENCODER: _openvino("static_int8", precision="int8"), ENCODER_LONG: _ORT_INT8_LONG, HEAD: _ORT_FP32_HEAD},
            requires=("openvino",), fallback="cpu-int8-dynamic",
        ),
        ExportPlan(
            "cpu-int8-dynamic", "cpu", "int8",
            {ENCODER: _plain(ENCODER, "ort_optimize", "dynamic_int8", backend="onnxruntime", precision="int8"),
             ENCODER_LONG: _ORT_INT8_LONG, HEAD: _ORT_FP32_HEAD},
        ),
        ExportPlan(
            "cpu-bf16", "cpu", "bf16",
            {ENCODER: _openvino(precision="bf16"), ENCODER_LONG: _ORT_FP32_ENCODERS[ENCODER_LONG], HEAD: _OPENVINO_BF16_HEAD},
            requires=("openvino", "bf16_cpu"), fallback="cpu-fp32",
        ),
        ExportPlan("gpu-fp32", "gpu", "fp32",
                   {g: _plain(g, backend=TRITON_NATIVE, precision="fp32") for g in (ENCODER, ENCODER_LONG, HEAD)}),
        ExportPlan("gpu-fp16", "gpu", "fp16",
                   {g: _plain(g, "fp16", backend=TRITON_NATIVE, precision="fp16") for g in (ENCODER, ENCODER_LONG, HEAD)}),
    )
}
#: The plan a (target, precision) request starts from.
REQUESTS: dict[tuple[str, str], str] = {
    ("cpu", "fp32"): "cpu-fp32", ("cpu", "int8"): "cpu-int8", ("cpu", "bf16"): "cpu-bf16",
    ("gpu", "fp32"): "gpu-fp32", ("gpu", "fp16"): "gpu-fp16",
}  # fmt: skip
#: Why a (target, precision) that has no plan is refused.
REFUSALS: dict[tuple[str, str], str] = {
    ("cpu", "fp16"): "fp16 is a GPU precision: add --target gpu",
    ("gpu", "int8"): "int8 on GPU would need TensorRT calibration; use --target cpu for int8",
    ("gpu", "bf16"): "bf16 is the CPU matrix-unit path: use --target cpu",
}


def _has_openvino() -> tuple[bool, str]:
    return openvino_available(), "OpenVINO is not installed (pip install 'paee[cpu]')"


#: What a plan may require of this machine: name -> () -> (met, why or what it has).
REQUIREMENTS: dict[str, Callable[[], tuple[bool, str]]] = {"openvino": _has_openvino, "bf16_cpu": bf16_cpu_support}


def unmet_requirements(plan: ExportPlan) -> list[tuple[str, str]]:
    """(requirement, why) of each of ``plan``'s requirements this machine does not meet."""
    return [(name, why) for name in plan.requires for met, why in [REQUIREMENTS[name]()] if not met]


def check_request(target: str, precision: str) -> ExportPlan:
    """The plan a request starts from; `ExportRequestError` naming the choices otherwise."""
    if target not in TARGETS:
        raise ExportRequestError(f"target {target!r} is not one of {TARGETS}")
    if precision not in PRECISIONS:
        raise ExportRequestError(f"precision {precision!r} is not one of {PRECISIONS}")
    if (target, precision) not in REQUESTS:
        allowed = ", ".join(p for t, p in REQUESTS if t == target)
        raise ExportRequestError(f"--precision {precision} is not available for --target {target} (choose {allowed}): "
                                 f"{REFUSALS[(target, precision)]}")
    return PLANS[REQUESTS[(target, precision)]]


def resolve_plan(target: str, precision: str) -> tuple[ExportPlan, list[str]]:
    """The plan that ships on this machine for a request, and a warning for every fallback taken.

    Why fall back instead of failing: the repository still works here (emulated bf16 would only be
    slower than fp32); the warning and the report say what happened. Export on a machine that meets the
    requirement to ship the requested plan.
    """
    plan = check_request(target, precision)
    warnings: list[str] = []
    while True:
        unmet = unmet_requirements(plan)
        if not unmet:
            return plan, warnings
        assert plan.fallback is not None, f"plan {plan.name} has requirements but no fallback"
        reasons = "; ".join(why for _, why in unmet)
        warnings.append(f"{plan.name} needs {' and '.join(name for name, _ in unmet)} ({reasons}); "
                        f"exporting {plan.fallback} instead")
        plan = PLANS[plan.fallback]


__all__ = ["PLANS", "REQUESTS", "REQUIREMENTS", "TARGETS", "TRITON_NATIVE", "ExportPlan", "ExportRequestError",
           "GraphPlan", "check_request", "resolve_plan", "unmet_requirements"]
