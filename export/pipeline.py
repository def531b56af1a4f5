"""One call from a training checkpoint to a Triton model repository: `export_checkpoint`.

The named steps (each printed as a line when ``progress``):

1. `check` the request (target x precision -> an export plan, sizes, the output folder) and load the
   checkpoint; nothing is written before both pass;
2. `build` the plan's graphs in a private work folder (`paee_export.build.GraphBuilder`: export,
   validated against PyTorch; transforms: fused attention checked, quantisation, fp16);
3. TensorRT engines with ``tensorrt=True`` on the GPU flavour (a missing TensorRT or GPU is recorded,
   never an error);
4. `measure_parity` of the shipped plan and of the fp32 reference with PyTorch, on a few synthetic
   documents plus the caller's documents;
5. `write_repository` atomically, with the export report (`ExportReport`) inside.

The work folder is always removed and the repository writer is atomic, so a failure at any step leaves
neither a repository nor a partial folder behind. What ships for each (target, precision) is the plan
table's (`paee_export.plan`), the one the benchmarks read too.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paee.checkpoint import Checkpoint
from paee.data.decode import DecodeConfig
from paee.data.detect import DetectionConfig
from paee.data.errors import PaeeDataError
from paee.data.featurizer import Featurizer
from paee.data.jsonio import scratch_dir
from paee.data.schema import Document
from paee.data.synthetic import generate_corpus, repeat_document
from paee.data.validation import is_int
from paee.runtime.contract import HEAD, graph_specs
from paee.runtime.pipeline import OnnxPipeline
from paee.runtime.sessions import SessionError
from paee_export.build import BuiltGraph, GraphBuilder
from paee_export.optimize import graph_stats
from paee_export.parity import Variant, parity_report, versions
from paee_export.plan import PLANS, TRITON_NATIVE, ExportPlan, ExportRequestError, check_request, resolve_plan
from paee_export.repository import check_output, write_repository
from paee_export.tensorrt_build import EngineBuildError, bucket_profile, build_engine, tensorrt_available

#: Synthetic documents always in the parity set: small, labelled, and with this package's tiny
#: tokenizers some exceed 512 wordpieces (the long encoder is then compared too).
SYNTHETIC_PARITY_DOCS = 4
SYNTHETIC_PARITY_SEED = "paee-export-parity"
#: Window counts of the long parity documents (a synthetic document repeated until the encoder reads it as
#: that many windows; those over the repository's max_length are left out and the report says so).
PARITY_WINDOWS = (2, 4, 8)
#: Batch size of the parity runs (PyTorch and every variant see the same batches).
PARITY_BATCH_SIZE = 4
#: The fp32 plan every shipped plan is compared beside, per target (a lower precision's error is then
#: seen next to fp32's). The GPU flavour's fp32 files run on ONNX Runtime's CPU provider here.
PARITY_REFERENCE = {"cpu": "cpu-fp32", "gpu": "gpu-fp32"}
#: Format marker of export_report.json.
REPORT_FORMAT = "paee-export-report"
REPORT_FORMAT_VERSION = 2


@dataclass
class ExportReport:
    """What an export did and measured (``export_report.json``)."""

    checkpoint: str
    plan: str
    target: str
    precision: str  # what ships (bf16 may have fallen back to fp32)
    requested_precision: str
    dims: dict[str, int]
    encoder_layers: int
    graph_runtime: dict[str, dict[str, str]]  # graph -> {backend, precision}
    graphs: dict[str, dict[str, Any]]  # graph -> statistics of the shipped file
    build: dict[str, Any]  # validation, fused attention, calibration (`GraphBuilder.info`)
    tensorrt: dict[str, Any]
    parity: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    versions: dict[str, str | None] = field(default_factory=versions)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"format": REPORT_FORMAT, "format_version": REPORT_FORMAT_VERSION, **dataclasses.asdict(self)}


@dataclass
class ExportResult:
    """What `export_checkpoint` produced."""

    repository: Path
    plan: ExportPlan
    requested_precision: str
    report: ExportReport
    warnings: list[str] = field(default_factory=list)

    @property
    def parity(self) -> dict[str, Any] | None:
        """The parity report (None with ``parity=False``)."""
        return None if "skipped" in self.report.parity else self.report.parity


# --- step 1: the request ---------------------------------------------------------------------------------


def check_settings(out_dir: Path, *, force: bool, max_batch_size: int, instances: int) -> None:
    """Raise a user error for an output or Triton setting that cannot work; nothing is written."""
    for name, value in (("max batch size", max_batch_size), ("instances", instances)):
        if not (is_int(value) and value >= 1):
            raise ExportRequestError(f"{name} must be a positive integer, got {value!r}")
    check_output(out_dir, force)


# --- step 4: parity -----------------------------------------------------------------------------------------


def window_documents(featurizer: Featurizer, base: Document, encoder: Any) -> tuple[list[Document], dict[str, str]]:
    """``base`` repeated until ``encoder`` (an `EncoderGraph`) reads it as each of `PARITY_WINDOWS` windows (what
    was left out, and why: over the featurizer's limits, or no repeat count gives exactly that many windows)."""
    docs, left_out, times = [], {}, 1
    for k in PARITY_WINDOWS:
        while True:
            doc = repeat_document(base, times, max_mentions=featurizer.config.max_mentions)
            # labels are not needed to measure a length (and parity_documents drops those the model does not know)
            result = featurizer.featurize_many([doc.without_labels()], errors="collect", truncate=False)[0]
            if isinstance(result, PaeeDataError):
                left_out[str(k)] = str(result)
                break
            got = encoder.windows_for(result.num_tokens)
            if got >= k:
                if got == k:
                    docs.append(doc)
                else:
                    left_out[str(k)] = f"{times} copies make {got} windows"
                break
            times += 1
    return docs, left_out


def parity_documents(featurizer: Featurizer, extra: Sequence[Document] | None,
                     encoder: Any) -> tuple[list[Document], dict[str, Any]]:
    """Synthetic documents (short ones, and long ones of `PARITY_WINDOWS` windows of the model's ``window`` and
    ``stride``) plus ``extra``, each one that the featurizer can take (info on what was dropped).

    Facts whose relation is not in the checkpoint's vocabulary (e.g. Re-DocRED labels on a model trained
    on synthetic data) are removed from that document, so that the F1 columns compare like with like.
    """
    synthetic = list(generate_corpus(n_docs=SYNTHETIC_PARITY_DOCS, seed=SYNTHETIC_PARITY_SEED))
    long_docs, long_info = window_documents(featurizer, synthetic[0], encoder)
    candidates = synthetic + long_docs + list(extra or [])
    relations = featurizer.relations
    unlabelled = 0
    usable: list[Document] = []
    for doc in candidates:
        if relations is not None and any(f.relation not in relations for f in doc.facts):
            doc = dataclasses.replace(doc, facts=())
            unlabelled += 1
        usable.append(doc)
    results = featurizer.featurize_many(usable, errors="collect")
    skipped = [f"{doc.where}: {r}" for doc, r in zip(usable, results) if isinstance(r, PaeeDataError)]
    kept = [doc for doc, r in zip(usable, results) if not isinstance(r, PaeeDataError)]
    info = {
        "synthetic": SYNTHETIC_PARITY_DOCS, "long": len(long_docs), "long_left_out": long_info,
        "given": len(extra or []), "used": len(kept),
        "labels_dropped": unlabelled, "skipped": skipped[:10], "skipped_count": len(skipped),
    }
    return kept, info


def plan_variant(plan: ExportPlan, graphs: Mapping[str, BuiltGraph], featurizer: Featurizer, window: int,
                 decode_config: Any = None, threads: int | None = None) -> Variant:
    """The in-process pipeline over a built plan (the GPU flavour's fp16 files need ONNX Runtime's CUDA
    provider: `SessionError` here without one)."""
    device = "cuda" if plan.target == "gpu" and plan.precision == "fp16" else "cpu"
    sessions = {name: graph.session(threads, device) for name, graph in graphs.items()}
    pipeline = OnnxPipeline(sessions, featurizer, window, decode_config, batch_size=PARITY_BATCH_SIZE)
    return Variant(pipeline, plan.precision, [graph.path for graph in graphs.values()])


def measure_parity(builder: GraphBuilder, ckpt: Checkpoint, plan: ExportPlan, shipped: Mapping[str, BuiltGraph],
                   featurizer: Featurizer, docs: Sequence[Document] | None,
                   decode_config: DecodeConfig | None = None) -> dict[str, Any]:
    """Parity with PyTorch of the fp32 reference plan and of the shipped plan (`paee_export.parity`), every side
    decoded with ``decode_config`` (default: the checkpoint's)."""
    decode_config = decode_config or ckpt.decode_config()
    reference = PLANS[PARITY_REFERENCE[plan.target]]
    window = ckpt.config.dims.window
    variants: dict[str, Variant] = {}
    skipped: dict[str, str] = {}
    for candidate, graphs in ((reference, builder.build(reference)), (plan, shipped)):
        try:
            variants[candidate.name] = plan_variant(candidate, graphs, featurizer, window, decode_config)
        except SessionError as err:
            skipped[candidate.name] = str(err)
    chosen, info = parity_documents(featurizer, docs, builder.model.encoder)
    report = parity_report(builder.model, chosen, featurizer, variants, batch_size=PARITY_BATCH_SIZE,
                           decode_config=decode_config)
    report["documents_info"] = info
    report["skipped_variants"] = skipped
    return report


# --- step 3: TensorRT -----------------------------------------------------------------------------------


def tensorrt_engines(requested: bool, plan: ExportPlan, graphs: Mapping[str, BuiltGraph], specs: Mapping[str, Any],
                     work: Path, max_batch: int) -> tuple[dict[str, Any], dict[str, Path]]:
    """Engines for every graph, or the reason there are none (never raises for a missing TensorRT / GPU)."""
    if not requested:
        return {"requested": False}, {}
    if plan.target != "gpu":
        return {"requested": True, "skipped": "TensorRT engines serve the GPU repository only (--target gpu)"}, {}
    available, reason = tensorrt_available()
    if not available:
        return {"requested": True, "skipped": reason}, {}
    plans: dict[str, Path] = {}
    built: dict[str, Any] = {}
    try:
        for name, graph in graphs.items():
            result = build_engine(
                graph.path, work / "trt" / f"{name}.plan", specs[name], [bucket_profile(specs[name], max_batch)],
                precision=plan.precision, fp16_onnx=plan.precision == "fp16",
            )  # fmt: skip
            if result.skipped:
                return {"requested": True, "skipped": result.skipped}, {}
            plans[name] = result.plan_path  # type: ignore[assignment]
            built[name] = {"tensorrt": result.tensorrt_version, "strongly_typed": result.strongly_typed,
                           "bytes": result.plan_path.stat().st_size}  # type: ignore[union-attr]
    except EngineBuildError as err:  # TensorRT is here but cannot build: ship ONNX + TensorRT accelerator
        return {"requested": True, "failed": str(err), "environment": reason}, {}
    return {"requested": True, "built": built, "environment": reason}, plans


# --- the export ------------------------------------------------------------------------------------------


class _Steps:
    """Numbered progress lines on stderr (stdout stays for the table and the repository path)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total, self.done, self.start = enabled, total, 0, time.perf_counter()

    def __call__(self, message: str) -> None:
        self.done += 1
        self.log(f"[{self.done}/{self.total}] {message}")

    def log(self, message: str) -> None:
        if self.enabled:
            print(f"{message} ({time.perf_counter() - self.start:.0f}s)", file=sys.stderr, flush=True)


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
    parity_docs: Sequence[Document] | None = None,
    calibration_docs: Sequence[Document] | None = None,
    max_length: int | None = None,
    evidence_threshold: float | None = None,
    progress: bool = True,
    warn: Callable[[str], None] | None = None,
    detection: DetectionConfig | None = None,
    warmup: bool = True,
) -> ExportResult:
    """Export a PAEE checkpoint to a Triton model repository at ``out_dir`` (see the module docstring).

    Args:
        checkpoint: a PAEE checkpoint (``best.pt``).
        out_dir: the repository folder (replaced only with ``force``).
        target: ``cpu`` (python models running ONNX Runtime / OpenVINO) or ``gpu`` (native Triton models).
        precision: a precision the target has a plan for (`paee_export.plan.REQUESTS`).
        max_batch_size, instances: Triton settings of every model.
        dynamic_batching: False writes the models without Triton's dynamic batcher (one request per run).
        warmup: False writes no ``model_warmup`` (CPU flavour; to measure a cold replica's first request).
        tensorrt: build TensorRT engines (GPU flavour); a missing TensorRT / GPU is recorded and skipped.
        force: replace an existing repository.
        parity: measure parity with PyTorch (False: skip, the report says so).
        parity_docs: documents to add to the synthetic parity set (e.g. real dev documents).
        calibration_docs: int8 only: documents whose activation ranges fix the static quantisation
            (default: synthetic documents; `paee_export.calibration`).
        max_length: the longest document the repository serves, in wordpieces (default: the checkpoint's);
            recorded in the repository (featurizer settings, graph length ranges). Longer requests fail
            unless they ask to be truncated.
        evidence_threshold: the served triples' evidence threshold (default: the checkpoint's), written to the
            repository's decoding settings.
        progress: print step lines on stderr.
        warn: receives each warning (default: printed on stderr).
        detection: also serve plain text ``{"title", "text"}``, its entities found by this detector.

    Raises:
        ExportRequestError: a request that cannot be done (checked before any work).
        paee.checkpoint.CheckpointError: the checkpoint cannot be loaded.
        paee.errors.PaeeFailure: the export failed (graphs disagree with PyTorch, attention left unfused, ...).
    """
    started = time.perf_counter()
    checkpoint, out = Path(checkpoint), Path(out_dir)
    warn = warn or (lambda message: print(f"warning: {message}", file=sys.stderr, flush=True))
    check_request(target, precision)
    check_settings(out, force=force, max_batch_size=max_batch_size, instances=instances)
    if evidence_threshold is not None:
        DecodeConfig(evidence_threshold=evidence_threshold)  # a bad threshold fails before any work
    plan, warnings = resolve_plan(target, precision)
    if tensorrt and target != "gpu":
        warnings.append("--tensorrt builds engines for the GPU repository only (--target gpu); the CPU repository runs ONNX")
    for message in warnings:
        warn(message)
    step = _Steps(progress, total=5)

    step(f"loading checkpoint {checkpoint}")
    ckpt = Checkpoint.load(checkpoint)  # CheckpointError passes through: the caller names the file
    if max_length is not None:  # a run-time limit, not a model size: every size derived below follows it
        ckpt.config.featurizer = dataclasses.replace(ckpt.config.featurizer, max_length=max_length)
    decode_config = ckpt.decode_config(evidence_threshold=evidence_threshold)
    if detection is not None:  # a missing spaCy pipeline or a bad type map fails now, not after the graphs
        detection.build(ckpt.config.featurizer)
    model = ckpt.build_model()
    # the parity documents and calibration are featurized with truncation: a long parity document is
    # compared on what fits, as it would be served with truncation asked for
    featurizer = ckpt.featurizer(truncate=True)

    work = scratch_dir("paee-export-")
    try:
        step(f"building plan {plan.name} ({', '.join(plan.graphs)}; exports validated against PyTorch)")
        builder = GraphBuilder(model, work, featurizer, calibration_docs=calibration_docs,
                               log=step.log if progress else None)
        shipped = builder.build(plan)

        step("TensorRT engines" if tensorrt and target == "gpu" else "TensorRT engines: not requested")
        trt_report, engines = tensorrt_engines(tensorrt, plan, shipped, graph_specs(ckpt.config.dims), work, max_batch_size)
        if trt_report.get("failed"):
            warn(f"TensorRT build failed, the repository uses ONNX with the TensorRT accelerator: {trt_report['failed']}")

        if parity:
            step("measuring parity with PyTorch")
            parity_result = measure_parity(builder, ckpt, plan, shipped, featurizer, parity_docs, decode_config)
        else:
            step("parity: skipped (--no-parity)")
            parity_result = {"skipped": "--no-parity"}

        report = ExportReport(
            checkpoint=str(checkpoint), plan=plan.name, target=plan.target, precision=plan.precision,
            requested_precision=precision, dims=ckpt.config.dims.to_json(),
            encoder_layers=int(model.encoder.backbone.config.num_hidden_layers),
            graph_runtime={name: {"backend": g.backend, "precision": g.precision} for name, g in shipped.items()},
            graphs={name: {**vars(graph_stats(g.path)), "path": g.path.name} for name, g in shipped.items()},
            build=dict(builder.info), tensorrt=trt_report, parity=parity_result, warnings=list(warnings),
            seconds=round(time.perf_counter() - started, 1),
        )
        step(f"writing the repository {out}")
        repository = write_repository(
            out, ckpt, plan, shipped, decode_config=decode_config, max_batch_size=max_batch_size, instances=instances,
            dynamic_batching=dynamic_batching, force=force, report=report.to_json(), tensorrt_plans=engines or None,
            detection=detection, warmup=warmup,
        )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the work folder never outlives the call
    return ExportResult(repository, plan, precision, report, warnings)


__all__ = [
    "PARITY_REFERENCE", "ExportReport", "ExportResult", "check_settings", "export_checkpoint", "measure_parity",
    "parity_documents", "plan_variant", "tensorrt_engines",
]  # fmt: skip
