"""Runtime sessions for the exported graphs: ONNX Runtime and OpenVINO, one interface, no torch.

``create_session(path, precision, device="cpu", threads=None, backend="auto")`` -> a `Session` with
``run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]``. The precision picks the runtime
(`DEFAULT_BACKEND`):

========= ============ ====================================================================
precision runtime      the file to pass
========= ============ ====================================================================
fp32      ONNX Runtime the exported (or ORT-optimised) fp32 graph
int8      ONNX Runtime the dynamically quantised graph (`paee_export.optimize.quantize_int8`)
fp16      ONNX Runtime the fp16 graph; needs a GPU device (CPU kernels of fp16 are slow or missing)
bf16      OpenVINO     the fp32 exported graph, compiled with INFERENCE_PRECISION_HINT=bf16
========= ============ ====================================================================

``backend="openvino"`` also runs fp32 (hint f32) and int8: a static QDQ graph
(`paee_export.optimize.quantize_int8_static`) runs as int8 GEMMs, the ops between them at bf16 where
the CPU has bf16 units, else f32. bf16 needs a CPU with AMX or AVX512-BF16 (``/proc/cpuinfo`` flags
``amx_bf16`` / ``avx512_bf16``); elsewhere the session falls back to f32 with a warning and reports
``effective_precision="fp32"``. ONNX Runtime's devices: ``cpu``, ``cuda`` (CUDA execution provider),
``tensorrt`` (TensorRT execution provider, CUDA behind it for unsupported nodes).

The runtimes are optional dependencies, imported when a session is made (with an install hint).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from paee.errors import PaeeFailure, PaeeUserError

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8", "bf16")
BACKENDS = ("auto", "onnxruntime", "openvino")
#: The runtime each precision uses with backend="auto".
DEFAULT_BACKEND = {"fp32": "onnxruntime", "fp16": "onnxruntime", "int8": "onnxruntime", "bf16": "openvino"}
#: /proc/cpuinfo flags of CPUs with bf16 matrix instructions (Intel AMX; AVX512-BF16 on Intel and AMD).
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
#: OpenVINO's inference precision hint per precision; bf16 and int8 take "bf16" only on a CPU with bf16
#: units (`OpenVinoSession`), else "f32".
OPENVINO_HINTS = {"fp32": "f32", "fp16": "f16"}
#: ONNX Runtime execution providers per device (the CPU provider always last, for unsupported nodes).
ORT_PROVIDERS: dict[str, tuple[str, ...]] = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}

ORT_HINT = "ONNX Runtime is not installed: pip install 'paee[cpu]' (or onnxruntime-gpu for CUDA)"
OPENVINO_HINT = "OpenVINO is not installed: pip install openvino (the bf16 / int8 CPU path)"


class RuntimeUnavailableError(PaeeUserError, ImportError):
    """The runtime a precision needs is not installed (the message says what to install)."""


class SessionError(PaeeFailure):
    """A session could not be created or run."""


class Session(Protocol):
    """What every runtime session offers."""

    backend: str
    precision: str
    effective_precision: str
    input_names: list[str]
    output_names: list[str]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def cpu_flags() -> set[str]:
    """Flags of the first CPU in /proc/cpuinfo (empty where the file does not exist)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def import_runtime(name: str, hint: str) -> Any:
    """The optional runtime module ``name`` (onnx, onnxruntime, openvino, ...), imported on use;
    `RuntimeUnavailableError` with ``hint`` (what to install) where it is missing."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise RuntimeUnavailableError(hint) from err


def module_available(name: str) -> bool:
    """Whether ``name`` can be imported, found without importing it (runtimes are slow to import)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


def openvino_available() -> bool:
    return module_available("openvino")


def bf16_cpu_support() -> tuple[bool, str]:
    """(True, which flags) when the CPU has bf16 matrix instructions, else (False, why)."""
    flags = cpu_flags()
    found = [f for f in BF16_CPU_FLAGS if f in flags]
    if found:
        return True, f"CPU has {', '.join(found)}"
    return False, f"CPU lacks {' and '.join(BF16_CPU_FLAGS)} (see /proc/cpuinfo): bf16 would be emulated"


def resolve_backend(precision: str, backend: str) -> str:
    """The runtime that runs ``precision`` for ``backend`` ("auto" picks `DEFAULT_BACKEND`)."""
    if precision not in PRECISIONS:
        raise PaeeUserError(f"precision {precision!r} is not one of {PRECISIONS}")
    if backend not in BACKENDS:
        raise PaeeUserError(f"backend {backend!r} is not one of {BACKENDS}")
    chosen = DEFAULT_BACKEND[precision] if backend == "auto" else backend
    if chosen == "onnxruntime" and precision == "bf16":
        raise PaeeUserError("bf16 runs on OpenVINO (backend='openvino'); ONNX Runtime has no bf16 CPU path here")
    return chosen


class OrtSession:
    """ONNX Runtime session on a device of `ORT_PROVIDERS`."""

    backend = "onnxruntime"

    def __init__(self, path: str | Path, precision: str = "fp32", device: str = "cpu", threads: int | None = None) -> None:
        ort = import_runtime("onnxruntime", ORT_HINT)
        if device not in ORT_PROVIDERS:
            raise PaeeUserError(f"ONNX Runtime device {device!r} is not one of {sorted(ORT_PROVIDERS)}")
        if precision == "fp16" and device == "cpu":
            raise SessionError("fp16 graphs are for GPUs: create_session(..., device='cuda')")
        providers = list(ORT_PROVIDERS[device])
        missing = [p for p in providers if p not in ort.get_available_providers()]
        if missing:
            raise SessionError(
                f"device {device!r} needs {', '.join(missing)} (onnxruntime-gpu and a GPU); available: "
                f"{ort.get_available_providers()}"
            )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        # No busy-waiting between runs: the encoder's and the head's sessions (and Triton's models) take
        # turns on the same cores, and threads spinning in one took the cores from the other (measured
        # on 2 cores, BERT-base, a median DocRED document: encoder 150 -> 124 ms, head 40 -> 21 ms).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as err:  # ORT raises its own Fail/InvalidGraph types
            raise SessionError(f"ONNX Runtime cannot load {path}: {err}") from err
        self.path = Path(path)
        self.precision = self.effective_precision = precision
        if device != "cpu":
            self.backend = f"onnxruntime {providers[0]}"
        self.input_names = [i.name for i in self._session.get_inputs()]
        self.output_names = [o.name for o in self._session.get_outputs()]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self._session.run(self.output_names, {name: feeds[name] for name in self.input_names})
        return dict(zip(self.output_names, outputs))


class OpenVinoSession:
    """OpenVINO CPU session reading an ONNX file, at an inference precision hint (bf16 / f32)."""

    backend = "openvino"

    def __init__(self, path: str | Path, precision: str = "bf16", device: str = "cpu", threads: int | None = None) -> None:
        ov = import_runtime("openvino", OPENVINO_HINT)
        if device not in ("cpu", "CPU"):
            raise SessionError(f"the OpenVINO path here is CPU only, got device {device!r}")
        effective = precision
        hint = OPENVINO_HINTS.get(precision)
        if precision in ("bf16", "int8"):
            supported, reason = bf16_cpu_support()
            if precision == "bf16" and not supported:
                logger.warning("bf16 requested but %s; OpenVINO runs f32 instead", reason)
                effective = "fp32"
            # int8: the QDQ MatMuls run int8 whatever the hint; the ops between them (softmax, layer norm,
            # GELU) run bf16 where the CPU has bf16 units (faster, measured), else f32
            hint = "bf16" if supported else "f32"
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        core = ov.Core()
        try:
            model = core.read_model(str(path))
            self._compiled = core.compile_model(model, "CPU", config)
        except Exception as err:  # OpenVINO raises RuntimeError subclasses with long messages
            raise SessionError(f"OpenVINO cannot compile {path} for {effective}: {err}") from err
        self._request = self._compiled.create_infer_request()
        self.path = Path(path)
        self.precision = precision
        self.effective_precision = effective
        # A port may carry several tensor names (get_any_name() can return an internal one): take the
        # ONNX graph's own input/output names, which OpenVINO keeps in the ports' name sets, by position.
        self.input_names = _port_names(self._compiled.inputs, onnx_io_names(path, "input"))
        self.output_names = _port_names(self._compiled.outputs, onnx_io_names(path, "output"))

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self._request.infer([np.ascontiguousarray(feeds[name]) for name in self.input_names])
        # copy: the arrays are views into the request's buffers, overwritten by the next call
        return {name: np.array(result[port]) for name, port in zip(self.output_names, self._compiled.outputs)}


#: Session class per runtime.
SESSION_CLASSES: dict[str, type] = {"onnxruntime": OrtSession, "openvino": OpenVinoSession}


def onnx_io_names(path: str | Path, kind: str = "input") -> list[str]:
    """Names of an ONNX file's graph inputs (initializers excluded) or outputs, weights not loaded."""
    onnx = import_runtime("onnx", ORT_HINT)
    graph = onnx.load(str(path), load_external_data=False).graph
    if kind == "output":
        return [value.name for value in graph.output]
    initializers = {init.name for init in graph.initializer}
    return [value.name for value in graph.input if value.name not in initializers]


def _port_names(ports: Sequence[Any], onnx_names: Sequence[str]) -> list[str]:
    """The ONNX name of each OpenVINO port (ports are in graph order; each holds its ONNX name)."""
    if len(ports) != len(onnx_names):
        raise SessionError(f"OpenVINO model has {len(ports)} ports, the ONNX graph {len(onnx_names)}: {onnx_names}")
    names = []
    for port, name in zip(ports, onnx_names):
        if name not in port.get_names():
            raise SessionError(f"OpenVINO port {port.get_names()} does not carry the ONNX name {name!r}")
        names.append(name)
    return names


def create_session(
    path: str | Path, precision: str = "fp32", device: str = "cpu", threads: int | None = None, backend: str = "auto"
) -> Session:
    """A session for one ONNX file at a precision (see the module docstring's table)."""
    if not Path(path).exists():
        raise PaeeUserError(f"no ONNX file at {path}")
    return SESSION_CLASSES[resolve_backend(precision, backend)](path, precision, device, threads)


def is_session(value: Any) -> bool:
    """Whether ``value`` is a ready session (as opposed to a path to make one from)."""
    return hasattr(value, "run") and hasattr(value, "output_names")


__all__ = [
    "BACKENDS", "BF16_CPU_FLAGS", "DEFAULT_BACKEND", "ORT_HINT", "OPENVINO_HINT", "ORT_PROVIDERS", "PRECISIONS",
    "OpenVinoSession", "OrtSession", "RuntimeUnavailableError", "Session", "SessionError", "bf16_cpu_support",
    "cpu_flags", "create_session", "import_runtime", "is_session", "module_available", "onnx_io_names", "openvino_available",
    "resolve_backend",
]  # fmt: skip
