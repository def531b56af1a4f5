"""TensorRT engines (Triton ``tensorrt_plan``) from the exported ONNX graphs, one profile per length bucket.

* TensorRT 10.x: weakly typed network from the fp32 ONNX + ``BuilderFlag.FP16`` (TensorRT picks fp16
  kernels where it deems them safe), or a strongly typed network from the fp16 ONNX.
* TensorRT 11.x: the precision flags are gone and every network is strongly typed (TensorRT 10.x -> 11.x
  migration guide, "Strongly Typed Networks Are Now Required"): an fp16 engine is built from the fp16
  ONNX written by `paee_export.optimize.convert_fp16` (LayerNorm / Softmax kept fp32 there, DESIGN.md 8),
  without any flag.

Give TensorRT the *plain* export (``encoder.onnx``), never the ORT-optimised graph: TensorRT does not
parse ORT's com.microsoft contrib ops (Attention, SkipLayerNormalization); it fuses attention itself.

`tensorrt_available()` says whether TensorRT and a CUDA GPU exist here; `build_engine` returns a
`BuildResult` whose ``skipped`` holds the reason when they do not (it never raises for a missing
TensorRT or GPU; it does raise `EngineBuildError` when TensorRT exists and the build fails).
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from paee.errors import PaeeFailure, PaeeUserError
from paee.data.featurizer import MIN_PAIRS
from paee.runtime.contract import BATCH, LENGTH, PAIRS, GraphSpec

logger = logging.getLogger(__name__)

#: Builder workspace (scratch memory for tactics); 4 GiB suits BERT-base at batch 16 x 1024 tokens.
DEFAULT_WORKSPACE_BYTES = 4 << 30
#: First TensorRT major version without precision builder flags (strong typing only).
STRONGLY_TYPED_ONLY_MAJOR = 11
#: Default optimisation-profile batch range (Triton max_batch_size) and "opt" point.
DEFAULT_MAX_BATCH = 8
DEFAULT_OPT_BATCH = 4
#: "opt" pair count of the head's profile: about a DocRED document's (a median of 19 entities has 342
#: ordered pairs, the mean is near 400); the range is MIN_PAIRS..N (N - 1).
DEFAULT_OPT_PAIRS = 400
TENSORRT_PRECISIONS = ("fp32", "fp16")

TENSORRT_HINT = "TensorRT is not installed: pip install 'paee[gpu]' (tensorrt>=10) on a host with an NVIDIA GPU"


class EngineBuildError(PaeeFailure):
    """TensorRT is present but could not parse the ONNX file or build the engine."""


@dataclass(frozen=True)
class DimRange:
    """min / opt / max of one dynamic axis in an optimisation profile."""

    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise PaeeUserError(f"profile range must satisfy 1 <= min <= opt <= max, got {self}")


@dataclass(frozen=True)
class EngineProfile:
    """Ranges of the symbolic dims (``batch``, ``length``, ``pairs``) for one optimisation profile."""

    batch: DimRange
    length: DimRange
    pairs: DimRange | None = None  # the head's pair axis; encoders have none

    def ranges(self) -> dict[str, DimRange]:
        ranges = {BATCH: self.batch, LENGTH: self.length}
        return ranges if self.pairs is None else {**ranges, PAIRS: self.pairs}

    def input_shapes(self, spec: GraphSpec) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
        """(min, opt, max) shape of every input of ``spec`` under this profile."""
        ranges = self.ranges()
        shapes = {}
        for tensor in spec.inputs:
            shapes[tensor.name] = tuple(
                tensor.shape_for({name: getattr(r, point) for name, r in ranges.items()})
                for point in ("min", "opt", "max")
            )  # type: ignore[assignment]
        return shapes  # type: ignore[return-value]


def bucket_profile(spec: GraphSpec, max_batch: int = DEFAULT_MAX_BATCH, opt_batch: int = DEFAULT_OPT_BATCH,
                   opt_length: int | None = None, opt_pairs: int = DEFAULT_OPT_PAIRS) -> EngineProfile:
    """The profile of a graph's length bucket: batch 1..max_batch, length over ``spec.length_range``, and
    for a graph with a pair axis (the head) pairs MIN_PAIRS..N (N - 1), opt ``opt_pairs``."""
    low, high = spec.length_range
    opt = opt_length if opt_length is not None else min(high, max(low, (low + high) // 2))
    has_pairs = any(PAIRS in t.dims for t in spec.inputs)
    most = max(spec.dims.max_pairs, MIN_PAIRS)
    return EngineProfile(
        batch=DimRange(1, min(opt_batch, max_batch), max_batch),
        length=DimRange(low, opt, high),
        pairs=DimRange(MIN_PAIRS, min(max(opt_pairs, MIN_PAIRS), most), most) if has_pairs else None,
    )


@dataclass
class BuildResult:
    """Outcome of `build_engine`: the plan file, or why nothing was built."""

    plan_path: Path | None
    precision: str
    tensorrt_version: str | None = None
    strongly_typed: bool = False
    skipped: str | None = None  # reason when TensorRT or a GPU is missing
    profiles: list[EngineProfile] = field(default_factory=list)

    @property
    def built(self) -> bool:
        return self.plan_path is not None and self.skipped is None


def tensorrt_available() -> tuple[bool, str]:
    """(True, "TensorRT x.y on <gpu>") when TensorRT imports and a CUDA GPU is visible, else (False, why)."""
    try:
        import tensorrt as trt
    except ImportError:
        return False, TENSORRT_HINT
    except OSError as err:  # libnvinfer present but CUDA libraries missing
        return False, f"TensorRT failed to load its libraries: {err}"
    gpu = _cuda_device_name()
    if gpu is None:
        return False, f"TensorRT {trt.__version__} is installed but no CUDA GPU is visible"
    return True, f"TensorRT {trt.__version__} on {gpu}"


def _cuda_device_name() -> str | None:
    """Name of CUDA device 0, via the CUDA driver (no torch dependency), or None."""
    for library in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            cuda = ctypes.CDLL(library)
            break
        except OSError:
            continue
    else:
        return None
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value < 1:
        return None
    name = ctypes.create_string_buffer(256)
    device = ctypes.c_int(0)
    if cuda.cuDeviceGet(ctypes.byref(device), 0) != 0 or cuda.cuDeviceGetName(name, 256, device) != 0:
        return "CUDA device 0"
    return name.value.decode(errors="replace")


def tensorrt_major() -> int | None:
    try:
        import tensorrt as trt
    except (ImportError, OSError):
        return None
    return int(trt.__version__.split(".")[0])


def build_engine(
    onnx_path: str | Path,
    plan_path: str | Path,
    spec: GraphSpec,
    profiles: list[EngineProfile] | None = None,
    precision: str = "fp16",
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    fp16_onnx: bool | None = None,
) -> BuildResult:
    """Build a serialized engine (``.plan``) for one graph with one optimisation profile per entry.

    Args:
        onnx_path: the plain export (fp32), or for a strongly typed fp16 build the fp16 ONNX.
        spec: the graph's contract (input names, dynamic axes, length bucket).
        profiles: default: one profile over the graph's length bucket, batch 1..8.
        precision: "fp32" or "fp16". fp16 on TensorRT >= 11 needs ``fp16_onnx=True`` (an fp16 ONNX).
        fp16_onnx: whether ``onnx_path`` is already fp16 (strongly typed build). Default: TensorRT >= 11.

    Returns a `BuildResult` with ``skipped`` set (and nothing written) when TensorRT or a GPU is missing.
    """
    if precision not in TENSORRT_PRECISIONS:
        raise PaeeUserError(f"precision {precision!r} is not one of {TENSORRT_PRECISIONS}")
    profiles = profiles or [bucket_profile(spec)]
    available, reason = tensorrt_available()
    if not available:
        logger.info("TensorRT build of %s skipped: %s", spec.name, reason)
        return BuildResult(plan_path=None, precision=precision, skipped=reason, profiles=profiles)
    import tensorrt as trt

    major = int(trt.__version__.split(".")[0])
    strongly_typed_only = major >= STRONGLY_TYPED_ONLY_MAJOR
    if fp16_onnx is None:
        fp16_onnx = strongly_typed_only and precision == "fp16"
    if strongly_typed_only and precision == "fp16" and not fp16_onnx:
        raise EngineBuildError(
            f"TensorRT {trt.__version__} builds only strongly typed networks: pass the fp16 ONNX "
            "(paee_export.optimize.convert_fp16) with fp16_onnx=True"
        )
    strongly_typed = strongly_typed_only or fp16_onnx

    trt_logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(trt_logger)
    if strongly_typed and not strongly_typed_only:
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    else:
        network = builder.create_network()  # TRT 10: explicit batch is the default; TRT 11: always strong
    parser = trt.OnnxParser(network, trt_logger)
    # parse_from_file resolves external data next to the file
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineBuildError(f"TensorRT cannot parse {onnx_path}: " + "; ".join(errors))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    if precision == "fp16" and not strongly_typed:
        config.set_flag(trt.BuilderFlag.FP16)  # TensorRT 10.x weak typing
    for profile in profiles:
        trt_profile = builder.create_optimization_profile()
        for name, (low, opt, high) in profile.input_shapes(spec).items():
            trt_profile.set_shape(name, low, opt, high)
        config.add_optimization_profile(trt_profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT {trt.__version__} failed to build an engine from {onnx_path} (see its log)")
    plan_path = Path(plan_path)
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_bytes(bytes(serialized))
    return BuildResult(
        plan_path=plan_path, precision=precision, tensorrt_version=trt.__version__,
        strongly_typed=bool(strongly_typed), profiles=profiles,
    )  # fmt: skip


def build_engines(
    onnx_paths: Mapping[str, str | Path], specs: Mapping[str, GraphSpec], out_dir: str | Path, precision: str = "fp16",
    max_batch: int = DEFAULT_MAX_BATCH,
) -> dict[str, BuildResult]:
    """One engine per graph (``<graph>.plan``), each with its length-bucket profile."""
    out = Path(out_dir)
    return {
        name: build_engine(path, out / f"{name}.plan", specs[name], [bucket_profile(specs[name], max_batch)], precision)
        for name, path in onnx_paths.items()
    }


__all__ = [
    "DimRange", "EngineProfile", "BuildResult", "EngineBuildError", "bucket_profile", "tensorrt_available",
    "tensorrt_major", "build_engine", "build_engines",
]  # fmt: skip
