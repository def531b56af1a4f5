"""Inference sessions for the exported graphs (ONNX Runtime, OpenVINO) and the torch-free pipeline.

This module never imports torch: Triton's python-backend models and the benchmarks use it as it is.

* ``create_session(path, precision, device="cpu", threads=None)`` -> a `Session` with
  ``run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]``. The precision picks the runtime:

  ========= ============ ====================================================================
  precision runtime      the file to pass
  ========= ============ ====================================================================
  fp32      ONNX Runtime the exported (or ORT-optimised) fp32 graph
  int8      ONNX Runtime the dynamically quantised graph (`paee_export.optimize.quantize_int8`)
  fp16      ONNX Runtime the fp16 graph; needs ``device="cuda"`` (CPU kernels of fp16 are slow/absent)
  bf16      OpenVINO     the fp32 exported graph, compiled with INFERENCE_PRECISION_HINT=bf16
  ========= ============ ====================================================================

  ``backend="openvino"`` also runs fp32 (hint f32) and int8: a static QDQ graph
  (`paee_export.optimize.quantize_int8_static`) runs as int8 GEMMs, the ops between them at bf16 where
  the CPU has bf16 units, else f32.
  bf16 needs a CPU with AMX or AVX512-BF16 (``/proc/cpuinfo`` flags ``amx_bf16`` / ``avx512_bf16``);
  elsewhere the session falls back to f32 with a warning and reports ``effective_precision="fp32"``.
* ``OnnxPipeline`` runs featurize -> collate -> encoder (``encoder`` or ``encoder_long`` by padded
  length) -> head -> decode with numpy only.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol, Sequence

import numpy as np

from paee.data.decode import Triple, decode
from paee.data.featurizer import DocFeatures, Featurizer, collate
from paee.data.schema import Document
from paee.data.tokenizer import TokenizerSpec
from paee_export.graphs import ENCODER, ENCODER_GRAPHS, ENCODER_LONG, HEAD, LENGTH

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
#: ONNX metadata key under which the exporter stores a graph's contract (graph name, length range, dims).
METADATA_KEY = "paee.graph"
#: Documents per batch of `OnnxPipeline` (as `paee.inference.Predictor`).
DEFAULT_BATCH_SIZE = 8
#: The encoder window of BERT-family models: boundary of the encoder / encoder_long length buckets.
DEFAULT_WINDOW = 512

ORT_HINT = "ONNX Runtime is not installed: pip install 'paee[cpu]' (or onnxruntime-gpu for CUDA)"
OPENVINO_HINT = "OpenVINO is not installed: pip install openvino (the bf16 / int8 CPU path)"


class RuntimeUnavailableError(ImportError):
    """The runtime a precision needs is not installed (the message says what to install)."""


class SessionError(RuntimeError):
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


def openvino_available() -> bool:
    """Whether OpenVINO can be imported (found without importing it: the import is slow)."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def bf16_cpu_support() -> tuple[bool, str]:
    """(True, which flags) when the CPU has bf16 matrix instructions, else (False, why)."""
    flags = cpu_flags()
    found = [f for f in BF16_CPU_FLAGS if f in flags]
    if found:
        return True, f"CPU has {', '.join(found)}"
    return False, f"CPU lacks {' and '.join(BF16_CPU_FLAGS)} (see /proc/cpuinfo): bf16 would be emulated"


def _resolve_backend(precision: str, backend: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {BACKENDS}")
    chosen = DEFAULT_BACKEND[precision] if backend == "auto" else backend
    if chosen == "onnxruntime" and precision == "bf16":
        raise ValueError("bf16 runs on OpenVINO (backend='openvino'); ONNX Runtime has no bf16 CPU path here")
    return chosen


class OrtSession:
    """ONNX Runtime session (CPU, or CUDA with device="cuda")."""

    backend = "onnxruntime"

    def __init__(self, path: str | Path, precision: str = "fp32", device: str = "cpu", threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise RuntimeUnavailableError(ORT_HINT) from err
        if precision == "fp16" and device == "cpu":
            raise SessionError("fp16 graphs are for GPUs: create_session(..., device='cuda')")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if device != "cpu":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise SessionError(
                    f"device {device!r} needs onnxruntime-gpu (CUDAExecutionProvider); available: "
                    f"{ort.get_available_providers()}"
                )
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as err:  # ORT raises its own Fail/InvalidGraph types
            raise SessionError(f"ONNX Runtime cannot load {path}: {err}") from err
        self.path = Path(path)
        self.precision = precision
        self.effective_precision = precision
        self.input_names = [i.name for i in self._session.get_inputs()]
        self.output_names = [o.name for o in self._session.get_outputs()]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self._session.run(self.output_names, {name: feeds[name] for name in self.input_names})
        return dict(zip(self.output_names, outputs))


class OpenVinoSession:
    """OpenVINO CPU session reading an ONNX file, at an inference precision hint (bf16 / f32)."""

    backend = "openvino"

    def __init__(self, path: str | Path, precision: str = "bf16", device: str = "cpu", threads: int | None = None) -> None:
        try:
            import openvino as ov
        except ImportError as err:
            raise RuntimeUnavailableError(OPENVINO_HINT) from err
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
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": hint,
            "PERFORMANCE_HINT": "LATENCY",
        }
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
        self.input_names = _port_names(self._compiled.inputs, _onnx_io_names(path, "input"))
        self.output_names = _port_names(self._compiled.outputs, _onnx_io_names(path, "output"))

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self._request.infer([np.ascontiguousarray(feeds[name]) for name in self.input_names])
        # copy: the arrays are views into the request's buffers, overwritten by the next call
        return {name: np.array(result[port]) for name, port in zip(self.output_names, self._compiled.outputs)}


def onnx_input_names(path: str | Path) -> list[str]:
    """Names of an ONNX file's graph inputs (initializers excluded), weights not loaded."""
    return _onnx_io_names(path, "input")


def _onnx_io_names(path: str | Path, kind: str) -> list[str]:
    """Names of an ONNX file's graph inputs (initializers excluded) or outputs, weights not loaded."""
    import onnx

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
        raise FileNotFoundError(f"no ONNX file at {path}")
    chosen = _resolve_backend(precision, backend)
    if chosen == "openvino":
        return OpenVinoSession(path, precision, device, threads)
    return OrtSession(path, precision, device, threads)


def graph_session(version_dir: str | Path, runtime: Mapping[str, Any], graph: Mapping[str, Any]) -> Session:
    """The session of one graph listed in a repository model's ``runtime.json`` (`paee_export.repository`):
    the graph's own ``precision`` / ``backend`` override the model's (bf16: ``encoder_long`` on ORT fp32;
    int8: a bf16 head on OpenVINO)."""
    return create_session(
        Path(version_dir) / graph["path"], graph.get("precision", runtime["precision"]), device="cpu",
        threads=runtime.get("threads"), backend=graph.get("backend", runtime.get("backend", "auto")),
    )


def read_graph_metadata(path: str | Path) -> dict[str, Any]:
    """The contract the exporter stored in a graph's metadata (``{}`` for a file without it)."""
    import onnx  # numpy-only dependency; the weights are not loaded

    proto = onnx.load(str(path), load_external_data=False)
    for prop in proto.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    return {}


# -- the torch-free pipeline -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineOutput:
    """Model outputs of one document, cropped to its n x n block (as `paee.inference.DocOutput`)."""

    logits: np.ndarray  # [n, n, R]
    pair_prob: np.ndarray  # [n, n]


def _window_of(encoder: Any) -> int:
    """The short encoder's largest length, from its exporter metadata (else the BERT window, 512)."""
    if isinstance(encoder, (str, Path, os.PathLike)):
        info = read_graph_metadata(encoder)
        if "length_range" in info:
            return int(info["length_range"][1])
    return DEFAULT_WINDOW


def _is_session(value: Any) -> bool:
    return hasattr(value, "run") and hasattr(value, "output_names")


def length_batches(features: Sequence[DocFeatures], batch_size: int) -> Iterator[list[int]]:
    """Indices in batches of similar length, longest first (the order of `paee.inference.run_model`)."""
    order = sorted(range(len(features)), key=lambda i: -len(features[i].input_ids))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


class OnnxPipeline:
    """featurize -> collate -> encoder / encoder_long -> head -> decode, on ONNX Runtime or OpenVINO.

    Args:
        encoders: ``{"encoder": path, "encoder_long": path}`` (either may be missing: documents of its
            length bucket then raise), or a single path used for the short bucket only. A value may
            also be a ready `Session`, to mix runtimes: OpenVINO 2026.4 cannot run the long encoder
            (its CPU plugin rejects the window merge's GatherElements), so a bf16 pipeline pairs an
            OpenVINO ``encoder`` with an ONNX Runtime ``encoder_long``.
        head: path of the head graph (fixed N = the featurizer's max_entities), or a ready `Session`.
        featurizer: the featurizer of the checkpoint (tokenizer, N, M, S, max_length).
        precision: precision of the encoder sessions (see `create_session`).
        head_precision: precision of the head session (default: ``precision``).
        backend: "auto", "onnxruntime" or "openvino" (encoder and head).
        window: padded lengths up to this go to ``encoder``, longer ones to ``encoder_long``; default:
            the upper end of the ``encoder`` file's length range (exporter metadata), else 512.
        gate_threshold, top_k: decoding options of `paee.data.decode.decode`.
    """

    def __init__(
        self,
        encoders: Mapping[str, str | Path] | str | Path,
        head: str | Path | Session,
        featurizer: Featurizer,
        precision: str = "fp32",
        *,
        head_precision: str | None = None,
        backend: str = "auto",
        device: str = "cpu",
        threads: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        window: int | None = None,
        gate_threshold: float | None = None,
        top_k: int | None = None,
    ) -> None:
        paths = {ENCODER: encoders} if isinstance(encoders, (str, Path, os.PathLike)) else dict(encoders)
        unknown = [name for name in paths if name not in ENCODER_GRAPHS]
        if unknown:
            raise ValueError(f"unknown encoder graphs {unknown}; expected keys {ENCODER_GRAPHS}")
        self.encoders = {
            name: p if _is_session(p) else create_session(p, precision, device, threads, backend)
            for name, p in paths.items()
        }
        self.head = head if _is_session(head) else create_session(head, head_precision or precision, device, threads, backend)
        self.featurizer = featurizer
        self.pad_id = TokenizerSpec.from_tokenizer(featurizer.tokenizer).pad_id
        self.max_length = featurizer.config.max_length
        self.max_entities = featurizer.config.max_entities
        self.batch_size = batch_size
        self.window = window if window is not None else _window_of(paths.get(ENCODER))
        self.gate_threshold = gate_threshold
        self.top_k = top_k

    def encoder_for(self, length: int) -> Session:
        name = ENCODER if length <= self.window else ENCODER_LONG
        if name not in self.encoders:
            raise SessionError(
                f"a batch of padded length {length} needs graph {name!r} ({'<=' if name == ENCODER else '>'} "
                f"{self.window} tokens), which this pipeline was not given"
            )
        return self.encoders[name]

    def run_batch(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Encoder + head on one collated batch -> {"logits": [B,N,N,R], "pair_prob": [B,N,N]}."""
        length = batch["input_ids"].shape[1]
        encoded = self.encoder_for(length).run(batch)
        head_feeds = {**batch, **encoded}
        return self.head.run(head_feeds)

    def outputs_for_features(self, features: Sequence[DocFeatures]) -> list[PipelineOutput]:
        """Per-document outputs cropped to n x n, in input order."""
        if features and features[0].entity_mask.shape[0] != self.max_entities:
            raise ValueError(f"features have N={features[0].entity_mask.shape[0]}, the head is built for {self.max_entities}")
        outputs: list[PipelineOutput | None] = [None] * len(features)
        for idx in length_batches(features, self.batch_size):
            batch = collate([features[i] for i in idx], pad_id=self.pad_id, max_length=self.max_length)
            out = self.run_batch(batch)
            logits = np.asarray(out["logits"], dtype=np.float32)
            pair_prob = np.asarray(out["pair_prob"], dtype=np.float32)
            for row, i in enumerate(idx):
                n = features[i].num_entities
                outputs[i] = PipelineOutput(logits[row, :n, :n], pair_prob[row, :n, :n])
        return outputs  # type: ignore[return-value]

    def outputs(self, docs: Sequence[Document]) -> list[PipelineOutput]:
        return self.outputs_for_features(self.featurizer.featurize_many(docs))

    def predict(self, docs: Sequence[Document]) -> list[list[Triple]]:
        """Triples (head, tail, relation index, score) of each document, as `paee.inference.Predictor`."""
        return [self.decode(o) for o in self.outputs(docs)]

    def decode(self, out: PipelineOutput) -> list[Triple]:
        n = out.logits.shape[0]
        return decode(out.logits, n, pair_prob=out.pair_prob, gate_threshold=self.gate_threshold, top_k=self.top_k)


__all__ = [
    "PRECISIONS", "BACKENDS", "Session", "OrtSession", "OpenVinoSession", "create_session", "graph_session", "cpu_flags",
    "bf16_cpu_support", "openvino_available", "read_graph_metadata", "OnnxPipeline", "PipelineOutput", "RuntimeUnavailableError",
    "SessionError", "LENGTH", "HEAD",
]  # fmt: skip
