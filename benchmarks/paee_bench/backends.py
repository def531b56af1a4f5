"""The ways to run a PAEE model that `paee-bench` compares, one table row each (`BACKENDS`).

A backend is either *in-process* (the benchmark calls the encoder and the head itself, so their times are
measured separately) or a *server* (the Triton ensemble: one request per document, featurize, encoder,
head and decode inside the server). Every backend runs the same featurizer and decoder in the same way;
only the model runtime differs.

A backend that cannot run here raises `BackendSkipped` with the reason (no GPU, runtime not installed,
CPU without bf16 units); the report lists it as skipped. Nothing is emulated or estimated in its place.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from paee.data.featurizer import Featurizer
from paee.errors import PaeeFailure, PaeeUserError
from paee.inference import to_tensors
from paee.model.paee import PaeeModel
from paee.runtime.contract import MODEL_INPUTS, RAGGED
from paee.runtime.sessions import ORT_HINT, ORT_PROVIDERS, bf16_cpu_support, module_available
from paee.serving.client import PaeeClient
from paee.serving.server import TritonServer, TritonServerError, find_triton
from paee_bench.artifacts import Artifacts
from paee_bench.measure import WARMUP_BUCKETS
from paee_export.plan import PLANS, resolve_plan, unmet_requirements
from paee_export.tensorrt_build import tensorrt_available


class BackendSkipped(PaeeFailure):
    """This backend cannot run on this machine; the message is the reason the report shows."""


class InProcessRunner(Protocol):
    """Encoder and head called separately, on one collated batch (numpy, tensor contract)."""

    runtime: dict[str, Any]

    def encode(self, batch: Mapping[str, np.ndarray]) -> Any: ...

    def head(self, batch: Mapping[str, np.ndarray], encoded: Any) -> tuple[np.ndarray, np.ndarray]:
        """-> (logits [B, N, N, R] float32, pair_prob [B, N, N] float32), computation finished."""
        ...

    def close(self) -> None: ...


class ServerRunner(Protocol):
    """A served ensemble at ``url`` over ``protocol``: documents in, triples ``{h_idx, t_idx, r, score}`` out."""

    runtime: dict[str, Any]
    url: str
    protocol: str

    def predict(self, doc: Any) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


@dataclass
class BenchContext:
    """What backends are built from: the fp32 reference model, its featurizer, exported files, settings."""

    model: PaeeModel
    featurizer: Featurizer
    artifacts: Artifacts
    threads: int
    max_batch_size: int
    triton_precision: str = "fp32"
    repository: Any = None  # a repository folder to serve instead of exporting one
    urls: dict[str, str] = field(default_factory=dict)  # protocol -> running server's host:port
    _server: Any = None
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def triton_urls(self) -> dict[str, str]:
        """host:port per protocol of a Triton server: the given one, else one started here (once)."""
        if self.urls:
            return self.urls
        if self._server is None:
            try:
                find_triton()
            except TritonServerError as err:
                raise BackendSkipped(str(err)) from err
            repo = self.repository or self.artifacts.repository(self.triton_precision, self.threads, self.max_batch_size)
            self._server = self._stack.enter_context(TritonServer(repo, http_port=0, grpc_port=0, metrics_port=0))
        return {"http": self._server.http_url, "grpc": self._server.grpc_url}

    def close(self) -> None:
        self._stack.close()


# --- PyTorch ------------------------------------------------------------------------------------------------

#: Weight dtypes of the PyTorch backends.
TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class TorchRunner:
    """The PyTorch model on a device at a dtype (bf16 / fp16: a copy of the model with weights in that dtype)."""

    def __init__(self, model: PaeeModel, device: str, dtype_name: str) -> None:
        self.device = torch.device(device)
        dtype = TORCH_DTYPES[dtype_name]
        self.model = model if dtype == torch.float32 and device == "cpu" else copy.deepcopy(model).to(self.device, dtype)
        self.model.eval()
        self.runtime = {"runtime": f"torch {torch.__version__} eager", "device": device, "weights": dtype_name,
                        "threads": torch.get_num_threads()}

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def encode(self, batch: Mapping[str, np.ndarray]) -> Any:
        with torch.no_grad():
            tensors = to_tensors(batch, self.device, MODEL_INPUTS)
            encoded = self.model.encode(tensors)
        self._sync()
        return tensors, encoded

    def head(self, batch: Mapping[str, np.ndarray], encoded: Any) -> tuple[np.ndarray, np.ndarray]:
        tensors, enc = encoded
        with torch.no_grad():
            out = self.model.run_head(tensors, enc)
        return out.logits.float().cpu().numpy(), out.pair_prob.float().cpu().numpy()  # .cpu() waits for the GPU

    def close(self) -> None:
        pass


#: Pair-count buckets of the CUDA graphs (the last one is N (N - 1)): few shapes, little padding.
PAIR_BUCKETS = (64, 512)


class CudaGraphRunner(TorchRunner):
    """PyTorch on CUDA with the encoder and the head each captured as a CUDA graph per input shape.

    Inputs are padded to the next of `paee_bench.measure.WARMUP_BUCKETS` in length and of `PAIR_BUCKETS`
    (then N (N - 1)) in pairs, so a few graphs serve every document; padded tokens and pairs are masked,
    and the outputs of padded pairs are never read (they come after the real ones). A graph is captured
    on the first batch of its shape (`captures` counts them; the warm-up documents hold one per length
    bucket).
    """

    def __init__(self, model: PaeeModel, dtype_name: str = "fp32") -> None:
        super().__init__(model, "cuda", dtype_name)
        self.buckets = WARMUP_BUCKETS
        self.pair_buckets = (*PAIR_BUCKETS, model.config.dims.max_pairs)
        self.graphs: dict[tuple[tuple[int, ...], tuple[int, ...]], Any] = {}
        self.runtime["runtime"] = f"torch {torch.__version__} CUDA graphs (encoder, head)"

    @property
    def captures(self) -> int:
        return len(self.graphs)

    def _padded(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        length, pairs = batch["input_ids"].shape[1], batch["pair_mask"].shape[1]
        bucket = next((b for b in self.buckets if b >= length), length)
        pair_bucket = next((b for b in self.pair_buckets if b >= pairs), pairs)
        out = dict(batch)
        for key in ("input_ids", "attention_mask"):  # pad id 0 under a zero mask: never attended to
            out[key] = np.pad(batch[key], ((0, 0), (0, bucket - length)))
        for key in RAGGED:  # pair (0, 0) under a zero mask, as collate pads
            if key in batch:
                out[key] = np.pad(batch[key], [(0, 0), (0, pair_bucket - pairs)] + [(0, 0)] * (batch[key].ndim - 2))
        return out

    def _capture(self, batch: Mapping[str, np.ndarray]) -> dict[str, Any]:
        static = to_tensors(batch, self.device, MODEL_INPUTS)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.no_grad(), torch.cuda.stream(stream):
            for _ in range(3):  # warm-up on a side stream, as torch.cuda.graphs requires
                TorchRunner.head(self, batch, TorchRunner.encode(self, batch))
        torch.cuda.current_stream().wait_stream(stream)
        enc_graph, head_graph = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
        with torch.no_grad():
            with torch.cuda.graph(enc_graph):
                enc = self.model.encode(static)
            with torch.cuda.graph(head_graph):
                out = self.model.run_head(static, enc)
        return {"static": static, "encoder": enc_graph, "head": head_graph, "out": out}

    def encode(self, batch: Mapping[str, np.ndarray]) -> Any:
        padded = self._padded(batch)
        key = (padded["input_ids"].shape, padded["pair_index"].shape)
        if key not in self.graphs:
            self.graphs[key] = self._capture(padded)
        graph = self.graphs[key]
        for name, tensor in graph["static"].items():
            tensor.copy_(torch.from_numpy(padded[name]))
        graph["encoder"].replay()
        self._sync()
        return graph

    def head(self, batch: Mapping[str, np.ndarray], encoded: Any) -> tuple[np.ndarray, np.ndarray]:
        encoded["head"].replay()
        out = encoded["out"]
        return out.logits.float().cpu().numpy(), out.pair_prob.float().cpu().numpy()


class CompiledRunner(TorchRunner):
    """PyTorch with ``torch.compile`` of the encoder and of the head (Inductor, default mode; a new input
    shape compiles again, so the first pass over a set is the compilation)."""

    def __init__(self, model: PaeeModel, device: str, dtype_name: str) -> None:
        super().__init__(model, device, dtype_name)
        if self.model is model:  # never compile the caller's module in place
            self.model = copy.deepcopy(model)
        self.model.encode = torch.compile(self.model.encode)  # type: ignore[method-assign]
        self.model.run_head = torch.compile(self.model.run_head)  # type: ignore[method-assign]
        self.runtime["runtime"] = f"torch {torch.__version__} torch.compile (encoder, head)"


def _torch(device: str, dtype_name: str, graphs: bool = False) -> Callable[[BenchContext], InProcessRunner]:
    def make(ctx: BenchContext) -> InProcessRunner:
        if device == "cuda" and not torch.cuda.is_available():
            raise BackendSkipped(f"no CUDA device visible to torch {torch.__version__}")
        if device == "cpu" and dtype_name == "bf16":
            supported, reason = bf16_cpu_support()
            if not supported:
                raise BackendSkipped(reason)
        if graphs:
            return CudaGraphRunner(ctx.model, dtype_name)
        return TorchRunner(ctx.model, device, dtype_name)

    return make


# --- the export's plans on ONNX Runtime / OpenVINO ------------------------------------------------------------


class OnnxRunner:
    """An `OnnxPipeline` over a plan's files, the encoder and the head called separately."""

    def __init__(self, pipeline: Any, runtime: dict[str, Any]) -> None:
        self.pipeline = pipeline
        self.runtime = {**runtime, "sessions": pipeline.describe()}

    def encode(self, batch: Mapping[str, np.ndarray]) -> Any:
        return self.pipeline.encode(batch)

    def head(self, batch: Mapping[str, np.ndarray], encoded: Any) -> tuple[np.ndarray, np.ndarray]:
        out = self.pipeline.run_head(batch, encoded)
        return np.asarray(out["logits"], dtype=np.float32), np.asarray(out["pair_prob"], dtype=np.float32)

    def close(self) -> None:
        pass


def _require(module: str, hint: str) -> None:
    if not module_available(module):
        raise BackendSkipped(hint)


def _plan(name: str | None = None, request: tuple[str, str] | None = None) -> Callable[[BenchContext], InProcessRunner]:
    """A CPU export plan: ``name`` exactly (skipped where its requirements are missing), or what the export
    ships here for ``request`` (the plan resolved with its fallbacks, as ``paee-export`` resolves it)."""

    def make(ctx: BenchContext) -> InProcessRunner:
        _require("onnxruntime", ORT_HINT)
        if request is not None:
            plan, _ = resolve_plan(*request)
        else:
            plan = PLANS[name]  # type: ignore[index]
            unmet = unmet_requirements(plan)
            if unmet:
                raise BackendSkipped("; ".join(why for _, why in unmet))
        files = {g: b.path.name for g, b in ctx.artifacts.build(plan).items()}
        return OnnxRunner(ctx.artifacts.pipeline(plan, ctx.threads), {"plan": plan.name, "files": files, "threads": ctx.threads})

    return make


def _gpu_plan(device: str) -> Callable[[BenchContext], InProcessRunner]:
    """The GPU flavour's fp32 files (gpu-fp32) on ONNX Runtime's CUDA or TensorRT provider."""

    def make(ctx: BenchContext) -> InProcessRunner:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise BackendSkipped("ONNX Runtime is not installed (pip install onnxruntime-gpu)") from err
        missing = [p for p in ORT_PROVIDERS[device] if p not in ort.get_available_providers()]
        if missing:
            raise BackendSkipped(f"ONNX Runtime {ort.__version__} has no {', '.join(missing)} (available: "
                                 f"{', '.join(ort.get_available_providers())}); install onnxruntime-gpu on a CUDA host")
        if device == "tensorrt":
            ok, reason = tensorrt_available()
            if not ok:
                raise BackendSkipped(reason)
        return OnnxRunner(ctx.artifacts.pipeline("gpu-fp32", ctx.threads, device), {"plan": "gpu-fp32", "device": device})

    return make


# --- Triton -------------------------------------------------------------------------------------------------


class TritonRunner:
    """The ``paee`` ensemble over HTTP or gRPC (`paee.serving.client.PaeeClient`)."""

    def __init__(self, url: str, protocol: str, max_concurrency: int, precision: str) -> None:
        self.url, self.protocol = url, protocol
        self.client = PaeeClient(url, protocol=protocol, timeout_s=600, retries=2, concurrency=max_concurrency)
        self.runtime = {"runtime": f"Triton ensemble over {protocol}", "url": url, "precision": precision}

    def predict(self, doc: Any) -> list[dict[str, Any]]:
        return self.client.predict(doc)

    def close(self) -> None:
        self.client.close()


def _triton(protocol: str) -> Callable[[BenchContext], ServerRunner]:
    def make(ctx: BenchContext) -> ServerRunner:
        _require(f"tritonclient.{protocol}", f"tritonclient[{protocol}] is not installed (pip install 'paee[serve]')")
        urls = ctx.triton_urls()
        if protocol not in urls:
            raise BackendSkipped(f"no {protocol} URL given for the running server (--url / --grpc-url)")
        precision = "as served" if ctx.urls or ctx.repository else ctx.triton_precision
        return TritonRunner(urls[protocol], protocol, ctx.max_batch_size, precision)

    return make


# --- the table ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackendSpec:
    """One row of `BACKENDS`: how to build the runner and which peak its encoder is read against."""

    kind: str  # "in-process" | "server"
    device: str  # "cpu" | "cuda"
    precision: str  # matrix precision of the encoder: fp32 | bf16 | int8 | fp16
    description: str
    make: Callable[[BenchContext], Any]


BACKENDS: dict[str, BackendSpec] = {
    "torch": BackendSpec("in-process", "cpu", "fp32", "PyTorch eager, fp32 (the reference)", _torch("cpu", "fp32")),
    "torch-bf16": BackendSpec("in-process", "cpu", "bf16", "PyTorch eager, bf16 weights", _torch("cpu", "bf16")),
    "ort": BackendSpec("in-process", "cpu", "fp32", "export plan cpu-fp32: ONNX Runtime fp32, fused attention",
                       _plan("cpu-fp32")),
    "ort-int8": BackendSpec("in-process", "cpu", "int8", "export plan cpu-int8-dynamic: ONNX Runtime dynamic int8, fp32 head",
                            _plan("cpu-int8-dynamic")),
    "openvino-bf16": BackendSpec("in-process", "cpu", "bf16", "export plan cpu-bf16: OpenVINO bf16 (long encoder ORT fp32)",
                                 _plan("cpu-bf16")),
    "openvino-int8": BackendSpec("in-process", "cpu", "int8", "what --precision int8 ships here (plan cpu-int8 or its fallback)",
                                 _plan(request=("cpu", "int8"))),
    "ort-cuda": BackendSpec("in-process", "cuda", "fp32", "ONNX Runtime CUDA provider, gpu-fp32 files", _gpu_plan("cuda")),
    "trt": BackendSpec("in-process", "cuda", "fp32", "ONNX Runtime TensorRT provider, gpu-fp32 files", _gpu_plan("tensorrt")),
    "torch-cuda": BackendSpec("in-process", "cuda", "fp32", "PyTorch eager on CUDA, fp32", _torch("cuda", "fp32")),
    "torch-cuda-fp16": BackendSpec("in-process", "cuda", "fp16", "PyTorch eager on CUDA, fp16 weights", _torch("cuda", "fp16")),
    "torch-cuda-bf16": BackendSpec("in-process", "cuda", "bf16", "PyTorch eager on CUDA, bf16 weights", _torch("cuda", "bf16")),
    "torch-cuda-graphs": BackendSpec("in-process", "cuda", "fp32", "PyTorch on CUDA, CUDA graphs per length bucket",
                                     _torch("cuda", "fp32", graphs=True)),
    "triton-http": BackendSpec("server", "cpu", "fp32", "Triton ensemble over HTTP", _triton("http")),
    "triton-grpc": BackendSpec("server", "cpu", "fp32", "Triton ensemble over gRPC", _triton("grpc")),
}
#: The backends of the issue's command line, in report order (the CUDA ones extend it on GPU hosts).
DEFAULT_BACKENDS = tuple(BACKENDS)


def parse_backends(text: str) -> list[str]:
    """``"torch,ort"`` -> names, checked against `BACKENDS` (the error lists the valid names)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not names:
        raise PaeeUserError(f"unknown backend(s) {unknown or text!r}; choose from {', '.join(BACKENDS)}")
    return list(dict.fromkeys(names))


__all__ = ["BACKENDS", "DEFAULT_BACKENDS", "BackendSpec", "BackendSkipped", "BenchContext", "parse_backends",
           "InProcessRunner", "ServerRunner"]
