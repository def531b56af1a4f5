"""One call from a training checkpoint to a Triton model repository: `export_checkpoint`.

The steps (each printed as a line when ``progress``):

1. check the request (target x precision, sizes, the output folder) and load the checkpoint; nothing
   is written before both pass;
2. export ``encoder``, ``encoder_long`` and ``head`` to ONNX in a private temporary work folder,
   validated against PyTorch (`paee_export.onnx_export.export_graphs`);
3. optimise the encoders with ONNX Runtime's transformer optimizer and check one fused ``Attention``
   per encoder layer (`paee_export.optimize.optimize_encoder`);
4. make the files of the chosen precision (table below) and, with ``tensorrt=True`` on the GPU flavour,
   TensorRT engines (a missing TensorRT or GPU is recorded, never an error);
5. measure parity with PyTorch (`paee_export.parity.parity_report`) of the shipped graphs and of the
   fp32 graphs on a few synthetic documents plus the caller's documents;
6. write the repository atomically with the export report inside (`paee_export.repository.write_repository`).

The work folder is always removed and the repository writer is atomic, so a failure at any step
leaves neither a repository nor a partial folder behind.

Precisions (what the runtimes and the repository writer can serve):

====== ========= =========================================================================================
target precision what ships
====== ========= =========================================================================================
cpu    fp32      ORT-optimised encoders (fused Attention), fp32 head; ONNX Runtime
cpu    int8      OpenVINO: the dynamo export of ``encoder`` statically quantised (QDQ: int8 weights per
                 channel, int8 activations with ranges calibrated on ``calibration_docs``, else on synthetic
                 documents; products of two activations stay float), the head at bf16 where the CPU has
                 bf16 units (else fp32 on ORT); ``encoder_long`` ORT dynamic int8 (OpenVINO cannot compile
                 its window merge). Without OpenVINO: ORT dynamic int8 encoders and an fp32 head, with a
                 warning (dynamic quantisation re-quantises activations on every call: slower)
cpu    bf16      OpenVINO at INFERENCE_PRECISION_HINT=bf16: the dynamo export of ``encoder`` (OpenVINO
                 misreads the TorchScript trace's entity pooling) and the head; ``encoder_long`` stays
                 ORT fp32 (OpenVINO 2026.4 cannot compile its window merge). Needs AMX / AVX512-BF16:
                 elsewhere it falls back to fp32 with a warning (emulated bf16 would be slower than fp32)
gpu    fp32      plain exports (TensorRT parses no ORT contrib ops) for onnxruntime_onnx + TensorRT EP,
                 or ``tensorrt_plan`` engines with ``tensorrt=True``
gpu    fp16      fp16 copies of the plain exports (LayerNorm / Softmax kept fp32, fp32 I/O); TensorRT 11
                 builds only strongly typed networks, so the engines are built from these files too
====== ========= =========================================================================================

gpu int8 is refused: it would need TensorRT calibration (static activation ranges), which this
package does not do, and ORT's dynamic int8 kernels are CPU kernels.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from paee_export.graphs import ENCODER, ENCODER_GRAPHS, ENCODER_LONG, HEAD, ExportDims, graph_specs

if TYPE_CHECKING:
    from paee.data.featurizer import Featurizer
    from paee.data.schema import Document
    from paee.model.paee import PaeeModel
    from paee.training.checkpoint import Checkpoint

#: Precisions each target can serve (see the module docstring's table).
TARGET_PRECISIONS: dict[str, tuple[str, ...]] = {"cpu": ("fp32", "int8", "bf16"), "gpu": ("fp32", "fp16")}
TARGETS = tuple(TARGET_PRECISIONS)
PRECISIONS = ("fp32", "fp16", "int8", "bf16")
#: Synthetic documents always in the parity set: small, labelled, and with this package's tiny
#: tokenizers some exceed 512 wordpieces (the long encoder is then compared too).
SYNTHETIC_PARITY_DOCS = 4
SYNTHETIC_PARITY_SEED = "paee-export-parity"
#: Batch size of the parity runs (PyTorch and every variant see the same batches).
PARITY_BATCH_SIZE = 4
#: Format marker of export_report.json.
REPORT_FORMAT = "paee-export-report"
REPORT_FORMAT_VERSION = 1


class ExportRequestError(ValueError):
    """The export request cannot be done as asked (a user error: bad option, output in the way)."""


@dataclass
class ExportResult:
    """What `export_checkpoint` produced."""

    repository: Path
    target: str
    precision: str  # the precision that ships (bf16 may have fallen back to fp32)
    requested_precision: str
    report: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def parity(self) -> dict[str, Any] | None:
        """The parity report (None with ``parity=False``)."""
        parity = self.report.get("parity")
        return None if parity is None or "skipped" in parity else parity


# --- checks before any work ---------------------------------------------------------------------------


def check_request(target: str, precision: str, out_dir: Path, *, force: bool, max_batch_size: int, instances: int) -> None:
    """Raise `ExportRequestError` for a request that cannot succeed; called before anything is written."""
    if target not in TARGET_PRECISIONS:
        raise ExportRequestError(f"target {target!r} is not one of {TARGETS}")
    if precision not in PRECISIONS:
        raise ExportRequestError(f"precision {precision!r} is not one of {PRECISIONS}")
    if precision not in TARGET_PRECISIONS[target]:
        allowed = ", ".join(TARGET_PRECISIONS[target])
        hint = " (fp16 is a GPU precision: add --target gpu)" if precision == "fp16" else ""
        if target == "gpu" and precision == "int8":
            hint = " (int8 on GPU would need TensorRT calibration; use --target cpu for int8)"
        if target == "gpu" and precision == "bf16":
            hint = " (bf16 is the CPU matrix-unit path: use --target cpu)"
        raise ExportRequestError(f"--precision {precision} is not available for --target {target} (choose {allowed}){hint}")
    for name, value in (("max batch size", max_batch_size), ("instances", instances)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ExportRequestError(f"{name} must be a positive integer, got {value!r}")
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportRequestError(f"output {out_dir} exists and is a file, not a repository folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise ExportRequestError(f"output {out_dir} already exists and is not empty; pass --force to replace it")


def resolve_precision(target: str, precision: str) -> tuple[str, list[str]]:
    """The precision that will ship and the warnings: bf16 without bf16 matrix units falls back to fp32.

    Why fall back instead of failing: the repository still works on this CPU (and OpenVINO would only
    emulate bf16, slower than fp32); the warning and the report say what happened. Re-run the export on
    an AMX / AVX512-BF16 host to ship bf16.
    """
    if target == "cpu" and precision == "bf16":
        from paee_export.runtimes import bf16_cpu_support

        supported, reason = bf16_cpu_support()
        if not supported:
            return "fp32", [f"bf16 requested but {reason}; exporting fp32 instead"]
    return precision, []


# --- parity documents -----------------------------------------------------------------------------------


def parity_documents(featurizer: "Featurizer", extra: Sequence["Document"] | None) -> tuple[list["Document"], dict[str, Any]]:
    """Synthetic documents plus ``extra``, each one that the featurizer can take (info on what was dropped).

    Facts whose relation is not in the checkpoint's vocabulary (e.g. Re-DocRED labels on a model trained
    on synthetic data) are removed from that document, so that the F1 columns compare like with like.
    """
    from paee.data.errors import PaeeDataError
    from paee.data.synthetic import generate_corpus

    candidates = list(generate_corpus(n_docs=SYNTHETIC_PARITY_DOCS, seed=SYNTHETIC_PARITY_SEED)) + list(extra or [])
    relations = featurizer.relations
    unlabelled = 0
    usable: list["Document"] = []
    for doc in candidates:
        if relations is not None and any(f.relation not in relations for f in doc.facts):
            doc = dataclasses.replace(doc, facts=())
            unlabelled += 1
        usable.append(doc)
    results = featurizer.featurize_many(usable, errors="collect")
    skipped = [f"{doc.where}: {r}" for doc, r in zip(usable, results) if isinstance(r, PaeeDataError)]
    kept = [doc for doc, r in zip(usable, results) if not isinstance(r, PaeeDataError)]
    info = {
        "synthetic": SYNTHETIC_PARITY_DOCS, "given": len(extra or []), "used": len(kept),
        "labels_dropped": unlabelled, "skipped": skipped[:10], "skipped_count": len(skipped),
    }
    return kept, info


# --- the export -----------------------------------------------------------------------------------------


class _Steps:
    """Numbered progress lines on stderr (stdout stays for the table and the repository path)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total, self.done, self.start = enabled, total, 0, time.perf_counter()

    def __call__(self, message: str) -> None:
        self.done += 1
        if self.enabled:
            elapsed = time.perf_counter() - self.start
            print(f"[{self.done}/{self.total}] {message} ({elapsed:.0f}s)", file=sys.stderr, flush=True)


def _build_model(ckpt: "Checkpoint") -> "PaeeModel":
    from paee.model.paee import build_model

    model = build_model(ckpt.model_config)
    model.load_state_dict(ckpt.state_dict)
    return model.eval()


def export_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    target: str = "cpu",
    precision: str = "fp32",
    max_batch_size: int = 8,
    instances: int = 1,
    dynamic_batching: bool = True,
    tensorrt: bool = False,
    force: bool = False,
    parity: bool = True,
    parity_docs: Sequence["Document"] | None = None,
    calibration_docs: Sequence["Document"] | None = None,
    progress: bool = True,
    warn: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export a PAEE checkpoint to a Triton model repository at ``out_dir`` (see the module docstring).

    Args:
        checkpoint: a PAEE checkpoint (``best.pt``).
        out_dir: the repository folder (replaced only with ``force``).
        target: ``cpu`` (python models running ONNX Runtime / OpenVINO) or ``gpu`` (native Triton models).
        precision: one of `TARGET_PRECISIONS` [target].
        max_batch_size, instances: Triton settings of every model.
        dynamic_batching: False writes the models without Triton's dynamic batcher (one request per run).
        tensorrt: build TensorRT engines (GPU flavour); a missing TensorRT / GPU is recorded and skipped.
        force: replace an existing repository.
        parity: measure parity with PyTorch (False: skip, the report says so).
        parity_docs: documents to add to the synthetic parity set (e.g. real dev documents).
        calibration_docs: int8 only: documents whose activation ranges fix the static quantisation
            (default: synthetic documents; `paee_export.calibration`).
        progress: print step lines on stderr.
        warn: receives each warning (default: printed on stderr).

    Raises:
        ExportRequestError: a request that cannot be done (checked before any work).
        paee.training.checkpoint.CheckpointError: the checkpoint cannot be loaded.
        paee_export.onnx_export.ExportError, paee_export.optimize.OptimizationError: the export failed.
    """
    from paee.data.featurizer import Featurizer
    from paee.training.checkpoint import load_checkpoint
    from paee_export.onnx_export import export_graphs
    from paee_export.optimize import graph_stats, optimize_encoder
    from paee_export.parity import parity_report, versions
    from paee_export.repository import write_repository

    started = time.perf_counter()
    checkpoint, out = Path(checkpoint), Path(out_dir)
    warn = warn or (lambda message: print(f"warning: {message}", file=sys.stderr, flush=True))
    check_request(target, precision, out, force=force, max_batch_size=max_batch_size, instances=instances)
    shipped_precision, warnings = resolve_precision(target, precision)
    if tensorrt and target != "gpu":
        warnings.append("--tensorrt builds engines for the GPU repository only (--target gpu); the CPU repository runs ONNX")
    for message in warnings:
        warn(message)
    step = _Steps(progress, total=7)

    step(f"loading checkpoint {checkpoint}")
    ckpt = load_checkpoint(checkpoint)  # CheckpointError passes through: the caller names the file
    model = _build_model(ckpt)
    fconfig = ckpt.featurizer_config
    dims = ExportDims.from_model(model, fconfig.max_mentions, fconfig.max_sentences)
    specs = graph_specs(dims)
    num_layers = int(model.encoder.backbone.config.num_hidden_layers)
    head_config = ckpt.model_config.head

    work = Path(tempfile.mkdtemp(prefix="paee-export-"))
    try:
        step(f"exporting {', '.join(specs)} to ONNX (validated against PyTorch)")
        exported = export_graphs(model, work, dims)
        plain = {name: e.path for name, e in exported.items()}
        validation = {
            name: {case.name: case.max_abs_diff for case in e.validation} for name, e in exported.items()
        }

        step(f"optimising the encoders (expecting {num_layers} fused Attention nodes each)")
        optimized: dict[str, Path] = {}
        fused: dict[str, dict[str, int]] = {}
        for name in ENCODER_GRAPHS:
            optimized[name] = work / f"{name}.opt.onnx"
            stats = optimize_encoder(plain[name], optimized[name], dims.num_heads, dims.hidden_size, expected_attention=num_layers)
            fused[name] = {"fused_attention": stats.fused_attention, "layers": num_layers}

        step(f"making the {target} {shipped_precision} graphs")
        featurizer = Featurizer(ckpt.tokenizer, dataclasses.replace(fconfig, truncate=True), ckpt.relations)
        files = _precision_files(model, specs, plain, optimized, work, target, shipped_precision, featurizer, calibration_docs)
        for message in files.warnings:
            warn(message)
        warnings.extend(files.warnings)

        step("TensorRT engines" if tensorrt and target == "gpu" else "TensorRT engines: not requested")
        trt_report, plans = _tensorrt(tensorrt, target, shipped_precision, specs, files.encoders, files.head, work, max_batch_size)
        if trt_report.get("failed"):
            warn(f"TensorRT build failed, the repository uses ONNX with the TensorRT accelerator: {trt_report['failed']}")

        if parity:
            step("measuring parity with PyTorch")
            docs, docs_info = parity_documents(featurizer, parity_docs)
            parity_report_ = parity_report(model, docs, featurizer, files.variants, batch_size=PARITY_BATCH_SIZE)
            parity_report_["documents_info"] = docs_info
            parity_report_["skipped_variants"] = files.skips
        else:
            step("parity: skipped (--no-parity)")
            parity_report_ = None

        shipped = {**files.encoders, HEAD: files.head}
        report: dict[str, Any] = {
            "format": REPORT_FORMAT,
            "format_version": REPORT_FORMAT_VERSION,
            "checkpoint": str(checkpoint.resolve()),
            "target": target,
            "precision": shipped_precision,
            "requested_precision": precision,
            "warnings": list(warnings),
            "dims": dataclasses.asdict(dims),
            "encoder_layers": num_layers,
            "fused_attention": fused,
            "validation_max_abs_diff": validation,
            "graphs": {name: {**vars(graph_stats(path)), "path": path.name} for name, path in shipped.items()},
            "graph_runtime": files.runtime,
            "quantization": files.quantization,
            "tensorrt": trt_report,
            "parity": parity_report_ if parity_report_ is not None else {"skipped": "--no-parity"},
            "versions": versions(),
        }

        step(f"writing the repository {out}")
        report["seconds"] = round(time.perf_counter() - started, 1)
        repository = write_repository(
            out,
            encoder_onnx=files.encoders,
            head_onnx=files.head,
            tokenizer_json=ckpt.tokenizer,
            featurizer_config=fconfig,
            relations=ckpt.relations,
            precision=shipped_precision,
            target=target,
            max_batch_size=max_batch_size,
            instances=instances,
            dynamic_batching=dynamic_batching,
            force=force,
            report=report,
            window=dims.window,
            tensorrt_plans=plans or None,
            gate_threshold=head_config.ppp_threshold if head_config.gate_pairs else None,
            graph_runtime=files.runtime or None,
        )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the work folder never outlives the call
    return ExportResult(repository, target, shipped_precision, precision, report, warnings)


@dataclass
class _PrecisionFiles:
    """What `_precision_files` makes: the files that ship and how each runs, the parity variants."""

    encoders: dict[str, Path]
    head: Path
    runtime: dict[str, dict[str, str]] = field(default_factory=dict)  # per-graph precision / backend overrides
    variants: dict[str, Any] = field(default_factory=dict)
    skips: dict[str, str] = field(default_factory=dict)  # variants not measurable here, and why
    warnings: list[str] = field(default_factory=list)
    quantization: dict[str, Any] | None = None  # int8: scheme and calibration set


def _precision_files(model, specs, plain, optimized, work: Path, target: str, precision: str, featurizer: "Featurizer",
                     calibration_docs: Sequence["Document"] | None) -> _PrecisionFiles:
    """The files of ``precision`` and their parity variants (see the module docstring's table).

    The fp32 graphs are always a parity variant, so that a lower precision's error is seen beside fp32's.
    """
    from paee_export.onnx_export import export_graph
    from paee_export.optimize import convert_fp16, quantize_int8
    from paee_export.parity import Variant
    from paee_export.runtimes import create_session, openvino_available

    head = plain[HEAD]
    if target == "gpu":
        # the plain exports: TensorRT (and its ORT accelerator) parse no com.microsoft contrib ops
        encoders = {name: plain[name] for name in ENCODER_GRAPHS}
        files = _PrecisionFiles(encoders, head, variants={"ort_fp32": Variant(encoders, head, "fp32")})
        if precision == "fp16":
            files.encoders = {name: work / f"{name}.fp16.onnx" for name in ENCODER_GRAPHS}
            for name, path in files.encoders.items():
                convert_fp16(plain[name], path)
            files.head = work / "head.fp16.onnx"
            convert_fp16(plain[HEAD], files.head)
            try:  # fp16 graphs run on CUDA only (ORT's CPU fp16 kernels are slow or missing)
                import onnxruntime as ort

                cuda = "CUDAExecutionProvider" in ort.get_available_providers()
            except ImportError:
                cuda = False
            if cuda:
                sessions = {name: create_session(path, "fp16", device="cuda") for name, path in files.encoders.items()}
                files.variants["ort_fp16_cuda"] = Variant(sessions, create_session(files.head, "fp16", device="cuda"), "fp16")
            else:
                files.skips["ort_fp16_cuda"] = "fp16 graphs need ONNX Runtime's CUDAExecutionProvider (onnxruntime-gpu and a GPU)"
        return files

    files = _PrecisionFiles(dict(optimized), head, variants={"ort_fp32": Variant(dict(optimized), head, "fp32")})
    if precision == "int8":
        dynamic = {name: work / f"{name}.int8.onnx" for name in ENCODER_GRAPHS}
        quantize_int8(optimized[ENCODER_LONG], dynamic[ENCODER_LONG])
        if openvino_available():
            _static_int8(files, model, specs, dynamic[ENCODER_LONG], work, featurizer, calibration_docs)
        else:
            quantize_int8(optimized[ENCODER], dynamic[ENCODER])
            files.encoders = dynamic
            files.variants["ort_int8"] = Variant(dict(dynamic), head, "int8", head_precision="fp32")
            files.quantization = {"scheme": "dynamic (ONNX Runtime)", "encoders": list(ENCODER_GRAPHS)}
            files.warnings.append("OpenVINO is not installed: int8 ships ONNX Runtime's dynamic quantisation, slower "
                                  "than the static OpenVINO path (pip install 'paee[cpu]')")
    elif precision == "bf16":
        short = export_graph(model, specs[ENCODER], work / "encoder.ov.onnx", exporter="dynamo").path
        files.encoders = {ENCODER: short, ENCODER_LONG: optimized[ENCODER_LONG]}
        files.runtime[ENCODER_LONG] = {"precision": "fp32", "backend": "onnxruntime"}
        long_session = create_session(optimized[ENCODER_LONG], "fp32")
        files.variants["openvino_bf16"] = Variant({ENCODER: short, ENCODER_LONG: long_session}, head, "bf16")
    return files


def int8_head_runtime() -> dict[str, str]:
    """How the head of a CPU int8 repository runs: bf16 on OpenVINO where the CPU has bf16 units, else fp32 ORT."""
    from paee_export.runtimes import bf16_cpu_support

    bf16, _ = bf16_cpu_support()
    return {"precision": "bf16", "backend": "openvino"} if bf16 else {"precision": "fp32", "backend": "onnxruntime"}


def _static_int8(files: _PrecisionFiles, model, specs, long_int8: Path, work: Path, featurizer: "Featurizer",
                 calibration_docs: Sequence["Document"] | None) -> None:
    """The OpenVINO int8 repository: static QDQ ``encoder``, ORT dynamic ``encoder_long``, bf16 / fp32 head."""
    from paee_export.calibration import quantize_encoder_static
    from paee_export.onnx_export import export_graph
    from paee_export.parity import Variant
    from paee_export.runtimes import create_session

    source = export_graph(model, specs[ENCODER], work / "encoder.ov.onnx", exporter="dynamo").path
    short = work / "encoder.int8.onnx"
    calibrated = quantize_encoder_static(source, short, featurizer, specs[ENCODER].length_range[1], calibration_docs)
    head_runtime = int8_head_runtime()
    files.encoders = {ENCODER: short, ENCODER_LONG: long_int8}
    files.runtime = {
        ENCODER: {"precision": "int8", "backend": "openvino"},
        ENCODER_LONG: {"precision": "int8", "backend": "onnxruntime"},
        HEAD: head_runtime,
    }
    sessions = {ENCODER: create_session(short, "int8", backend="openvino"), ENCODER_LONG: create_session(long_int8, "int8")}
    files.variants["openvino_int8"] = Variant(sessions, files.head, "int8", head_precision=head_runtime["precision"])
    files.quantization = {
        "scheme": "static (QDQ, OpenVINO) for encoder, dynamic (ONNX Runtime) for encoder_long",
        "calibration": calibrated,
        "head": head_runtime,
    }


def _tensorrt(requested: bool, target: str, precision: str, specs, encoders: Mapping[str, Path], head: Path, work: Path,
              max_batch: int) -> tuple[dict[str, Any], dict[str, Path]]:
    """Engines for every graph, or the reason there are none (never raises for a missing TensorRT / GPU)."""
    from paee_export.tensorrt_build import EngineBuildError, bucket_profile, build_engine, tensorrt_available

    if not requested:
        return {"requested": False}, {}
    if target != "gpu":
        return {"requested": True, "skipped": "TensorRT engines serve the GPU repository only (--target gpu)"}, {}
    available, reason = tensorrt_available()
    if not available:
        return {"requested": True, "skipped": reason}, {}
    plans: dict[str, Path] = {}
    built: dict[str, Any] = {}
    sources = {**encoders, HEAD: head}
    try:
        for name, source in sources.items():
            result = build_engine(
                source, work / "trt" / f"{name}.plan", specs[name], [bucket_profile(specs[name], max_batch)],
                precision=precision, fp16_onnx=precision == "fp16",
            )  # fmt: skip
            if result.skipped:
                return {"requested": True, "skipped": result.skipped}, {}
            plans[name] = result.plan_path  # type: ignore[assignment]
            built[name] = {"tensorrt": result.tensorrt_version, "strongly_typed": result.strongly_typed,
                           "bytes": result.plan_path.stat().st_size}  # type: ignore[union-attr]
    except EngineBuildError as err:  # TensorRT is here but cannot build: ship ONNX + TensorRT accelerator
        return {"requested": True, "failed": str(err), "environment": reason}, {}
    return {"requested": True, "built": built, "environment": reason}, plans


__all__ = [
    "TARGET_PRECISIONS", "ExportRequestError", "ExportResult", "check_request", "resolve_precision",
    "parity_documents", "export_checkpoint",
]  # fmt: skip
