"""Writes the Triton model repository of a trained PAEE model (`write_repository`).

The layout (`paee.runtime.layout`)::

    OUT/
      paee/               ensemble: DOCUMENT (JSON bytes) -> TRIPLES (JSON bytes)
      paee_preprocess/    python: tokenizer + featurizer; 1/assets/{tokenizer.json, featurizer.json, serving.json}
      paee_encoder/       CPU: python model running 1/graphs/<graph>/model.onnx (ORT / OpenVINO)
                          GPU: python router (BLS) to the native models paee_encoder_short / paee_encoder_long
                          (onnxruntime_onnx + TensorRT accelerator, or tensorrt_plan)
      paee_head/          same two flavours (GPU: the native model itself)
      paee_postprocess/   python: decoder; 1/assets/{relations.json, decode.json}
      paee_repository.json   the manifest (plan, target, precision, buckets, dims, each graph's runtime)
      export_report.json     the export report, when given

The committed parts (python models, config templates) live in ``triton_repo/`` of the source tree. Every
``config.pbtxt``'s inputs and outputs and the ensemble's steps are generated from the tensor contract
(`paee.runtime.contract`); each one is parsed with Triton's own model-config protobuf before anything
becomes visible. How each graph runs is the export plan's (`paee_export.plan`), written per graph into
its model's ``runtime.json``.

Writing is atomic: the repository is built in a temporary sibling folder and renamed into place; an
existing repository is replaced only with ``force=True``; on any failure nothing is left behind.
"""

from __future__ import annotations

import os
import shutil
import string
import sys
import sysconfig
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from paee import __version__
from paee.checkpoint import Checkpoint
from paee.data.decode import DecodeConfig
from paee.data.detect import DetectionConfig
from paee.data.featurizer import MAX_SUPPORTED_LENGTH
from paee.data.jsonio import scratch_dir, sweep_stale
from paee.data.validation import is_int
from paee.errors import PaeeUserError
from paee.runtime.contract import (
    BATCH, ENCODER, ENCODER_GRAPHS, ENCODER_LONG, HEAD, LENGTH, PAIRS, RAGGED, SERVING_STEPS, ModelDims, tensor_specs,
)
from paee.runtime.layout import (
    ASSETS, CONFIG_FILE, DECODE_FILE, ENCODER_LONG_MODEL, ENCODER_MODEL, ENCODER_SHORT_MODEL, ENSEMBLE,
    FEATURIZER_FILE, HEAD_MODEL, MANIFEST, MODE_BLS, MODE_LOCAL, MODEL_FILE, MODEL_NAMES, ONNX_FILE, PLAN_FILE,
    POSTPROCESS, PREPROCESS, RELATIONS_FILE, REPORT, RUNTIME_FILE, SERVING_FILE, STEP_MODELS, TOKENIZER_FILE, VERSION,
    Manifest, ModelRuntime, Route, ServingSettings, graph_path, write_json,
)
from paee_export.build import BuiltGraph
from paee_export.plan import TRITON_NATIVE, ExportPlan

#: Padded lengths of input_ids: requests of one bucket have equal shapes and batch together (Triton batches
#: equal shapes only). Every multiple of 64: a document pays for at most 63 padding tokens (coarse buckets
#: such as 128/256/512/768/1024 made a 300-token document run the encoder at 512, ~1.7x its cost at
#: BERT-base size, DESIGN.md 8), while documents of similar length still share a bucket under load. 512
#: is a boundary because the short encoder graph serves up to one window (512 tokens for BERT).
BUCKET_STEP = 64
DEFAULT_BUCKETS = tuple(range(BUCKET_STEP, MAX_SUPPORTED_LENGTH + 1, BUCKET_STEP))
#: Payload limit per document: DocRED's largest document is ~60 kB of JSON; 4 MiB leaves room for
#: text-form documents and refuses 10 MB payloads with a clear error instead of tokenizing them.
DEFAULT_MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
#: Time the dynamic batcher waits to fill a batch; short, because a document costs ~100 ms on CPU.
DEFAULT_MAX_QUEUE_DELAY_US = 2000
DEFAULT_MAX_BATCH_SIZE = 8
#: TensorRT accelerator settings of the GPU flavour.
TRT_WORKSPACE_BYTES = 4 << 30
TRT_CACHE_DIR = "/tmp/paee_trt_cache"
#: Environment variable that points the writer at a triton_repo/ folder outside the source tree.
TEMPLATES_ENV = "PAEE_TRITON_REPO"
#: Where a non-editable install puts triton_repo/ (pyproject ``[tool.setuptools.data-files]``), under the prefix.
INSTALLED_TEMPLATES = Path("share") / "paee" / "triton_repo"
#: Templates of the GPU flavour's native models, by platform.
GPU_TEMPLATES = {"onnxruntime_onnx": Path("_gpu") / "onnxruntime_onnx.pbtxt.in",
                 "tensorrt_plan": Path("_gpu") / "tensorrt_plan.pbtxt.in"}  # fmt: skip

# dtype names of the contract -> Triton data types.
TRITON_TYPES = {"int64": "TYPE_INT64", "float32": "TYPE_FP32", "float16": "TYPE_FP16", "bytes": "TYPE_STRING"}


class RepositoryError(PaeeUserError):
    """The repository cannot be written (bad arguments, existing output without force, invalid config)."""


def templates_dir() -> Path:
    """The ``triton_repo/`` folder: ``$PAEE_TRITON_REPO``, else beside this package in the source tree, else
    where a wheel installed it."""
    override = os.environ.get(TEMPLATES_ENV)
    candidates = [Path(override)] if override else []
    candidates.append(Path(__file__).resolve().parent.parent / "triton_repo")
    candidates += [Path(sysconfig.get_path("data")) / INSTALLED_TEMPLATES, Path(sys.prefix) / INSTALLED_TEMPLATES]
    for path in candidates:
        if (path / ENSEMBLE / "config.pbtxt.in").is_file():
            return path
    raise RepositoryError(
        f"cannot find the triton_repo/ templates (looked in {', '.join(map(str, candidates))}); run from a source "
        f"checkout (pip install -e .) or set {TEMPLATES_ENV} to the triton_repo folder"
    )


def resolve_buckets(buckets: Sequence[int], max_length: int) -> list[int]:
    """Buckets below the featurizer's ``max_length``, plus ``max_length`` itself (the last bucket)."""
    if max_length > MAX_SUPPORTED_LENGTH:
        raise RepositoryError(f"featurizer max_length {max_length} exceeds {MAX_SUPPORTED_LENGTH}")
    return sorted({int(b) for b in buckets if 0 < int(b) < max_length} | {max_length})


# --- config text, from the contract ---------------------------------------------------------------


def tensor_block(names: Sequence[str], dims: ModelDims, ragged: Sequence[str] = ()) -> str:
    """``{ name: .. data_type: .. dims: [..] }`` lines of a config's input or output list; inputs named in
    ``ragged`` get ``allow_ragged_batch`` (requests with other pair counts batch together)."""
    lines = []
    for spec in tensor_specs(names, dims):
        shape = ", ".join(str(d) for d in spec.per_request_dims())
        flag = " allow_ragged_batch: true" if spec.name in ragged else ""
        lines.append(f'  {{ name: "{spec.name}" data_type: {TRITON_TYPES[spec.dtype]} dims: [ {shape} ]{flag} }}')
    return ",\n".join(lines)


#: Triton's warm-up request per model (``model_warmup``): one zero-filled document at the first length bucket
#: with this many pairs, run while the model loads, so that a fresh replica's first real request does not pay
#: the runtime's first-run cost (graph initialisation, memory arenas). Zeros are a valid input: every mask is 0.
WARMUP_PAIRS = 2


def warmup_block(names: Sequence[str], dims: ModelDims, length: int) -> str:
    """``model_warmup [ .. ]`` of a model reading ``names``: one zero-filled batch-1 sample of padded ``length``."""
    sizes = {BATCH: 1, LENGTH: length, PAIRS: WARMUP_PAIRS}
    inputs = []
    for spec in tensor_specs(names, dims):
        shape = ", ".join(str(d) for d in spec.shape_for(sizes)[1:])
        inputs.append(f'    inputs {{ key: "{spec.name}" value: {{ data_type: {TRITON_TYPES[spec.dtype]} '
                      f'dims: [ {shape} ] zero_data: true }} }}')
    return 'model_warmup [ {\n    name: "zeros_%d"\n    batch_size: 1\n%s\n} ]' % (length, "\n".join(inputs))


def ensemble_steps() -> str:
    """The ensemble's steps: each serving step's model, its inputs and outputs under their contract names."""
    steps = []
    for role, inputs, outputs in SERVING_STEPS:
        maps = [f'      input_map {{ key: "{n}" value: "{n}" }}' for n in inputs]
        maps += [f'      output_map {{ key: "{n}" value: "{n}" }}' for n in outputs]
        steps.append('    {\n      model_name: "%s"\n      model_version: -1\n%s\n    }' % (STEP_MODELS[role], "\n".join(maps)))
    return ",\n".join(steps)


def _step_io(role: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return next((inputs, outputs) for r, inputs, outputs in SERVING_STEPS if r == role)


def parse_config(text: str, where: str = CONFIG_FILE) -> Any:
    """Parse config text with Triton's ModelConfig protobuf; `RepositoryError` naming the problem."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2  # the serve extra; the protobuf Triton itself reads

    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as e:
        raise RepositoryError(f"{where} does not parse as a Triton ModelConfig: {e}") from e


def _render(template: Path, out: Path, values: Mapping[str, Any]) -> None:
    text = string.Template(template.read_text(encoding="utf-8")).substitute({k: str(v) for k, v in values.items()})
    parse_config(text, str(template))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")


# --- files ----------------------------------------------------------------------------------------


def _external_files(path: Path) -> list[str]:
    """Relative locations of the external-data files an ONNX file references."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    proto = onnx.load(str(path), load_external_data=False)
    locations = set()
    for tensor in _get_all_tensors(proto):
        if uses_external_data(tensor):
            locations.update(e.value for e in tensor.external_data if e.key == "location")
    return sorted(locations)


def copy_onnx(src: Path, dst_dir: Path, name: str = ONNX_FILE) -> Path:
    """Copy an ONNX file (as ``dst_dir/name``) with its external-data files beside it."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    for location in _external_files(src):
        data = src.parent / location
        if not data.is_file():
            raise RepositoryError(f"{src} references external data {location!r}, missing at {data}")
        (dst_dir / location).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(data, dst_dir / location)
    shutil.copy2(src, dst_dir / name)
    return dst_dir / name


def check_output(out: Path, force: bool) -> None:
    """`RepositoryError` when ``out`` cannot become the repository: a file, or a non-empty folder without force."""
    if out.exists() and not out.is_dir():
        raise RepositoryError(f"output {out} exists and is a file, not a repository folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise RepositoryError(f"output {out} already exists and is not empty; pass --force to replace it")


def _instances(instances: int | Mapping[str, int], model: str) -> int:
    count = instances.get(model, 1) if isinstance(instances, Mapping) else instances
    if not (is_int(count) and count >= 1):
        raise RepositoryError(f"instances for {model} must be a positive integer, got {count!r}")
    return count


# --- the writer -----------------------------------------------------------------------------------


def write_repository(
    out_dir: str | Path,
    checkpoint: Checkpoint,
    plan: ExportPlan,
    graphs: Mapping[str, BuiltGraph],
    *,
    decode_config: DecodeConfig | None = None,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    instances: int | Mapping[str, int] = 1,
    force: bool = False,
    report: Mapping[str, Any] | None = None,
    buckets: Sequence[int] = DEFAULT_BUCKETS,
    tensorrt_plans: Mapping[str, str | Path] | None = None,
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    max_queue_delay_us: int = DEFAULT_MAX_QUEUE_DELAY_US,
    dynamic_batching: bool = True,
    threads: int | None = None,
    detection: DetectionConfig | None = None,
    warmup: bool = True,
) -> Path:
    """Write the complete Triton model repository of one model to ``out_dir`` (atomically).

    Args:
        out_dir: the repository folder to create (replaced only with ``force``).
        checkpoint: the model artefact: tokenizer, featurizer settings, relations, sizes, decoding.
        plan: the export plan the graphs were built by (target, precision, each graph's runtime).
        graphs: the plan's built graphs (`paee_export.build.GraphBuilder.build`).
        decode_config: decoding settings (default: the checkpoint's).
        max_batch_size: the max_batch_size of every model.
        instances: instance count of every model, or ``{model name: count}``.
        force: replace an existing ``out_dir``.
        report: the export report stored as ``export_report.json``.
        buckets: padded lengths of input_ids (clipped to the featurizer's max_length).
        tensorrt_plans: GPU only, ``{graph: engine}``: ``tensorrt_plan`` models instead of ONNX with the
            TensorRT accelerator.
        max_document_bytes: larger DOCUMENT payloads get an error response.
        max_queue_delay_us: the dynamic batcher's wait to fill a batch.
        dynamic_batching: False writes no ``dynamic_batching`` block: every model then runs each request
            as it comes (batch of one document), to measure what the batcher buys.
        threads: intra-op threads per runtime session (None: the runtime's default).
        detection: the preprocess model then also takes plain text ``{"title", "text"}`` and finds its
            entities with this detector (`paee.data.detect`); built here once, so that a missing spaCy
            pipeline or a type map outside the model's types fails the export, not the server.
        warmup: ``model_warmup`` in the configs of the models that run graphs (`warmup_block`): the CPU
            flavour's encoder and head, the GPU flavour's native short / long encoder and head, each at the
            first bucket it serves; False writes none (to measure what it buys).

    Raises:
        RepositoryError: bad arguments, an existing repository without ``force``, ``out_dir`` is a file,
            a config that does not parse. Nothing is left behind on any failure.
    """
    out = Path(out_dir)
    if sorted(graphs) != sorted(plan.graphs):
        raise RepositoryError(f"plan {plan.name} has graphs {sorted(plan.graphs)}, got files for {sorted(graphs)}")
    if tensorrt_plans and plan.target != "gpu":
        raise RepositoryError("tensorrt_plans need a GPU plan (--target gpu)")
    if not (is_int(max_batch_size) and max_batch_size >= 1):
        raise RepositoryError(f"max_batch_size must be a positive integer, got {max_batch_size!r}")
    if not (is_int(max_queue_delay_us) and max_queue_delay_us >= 0):
        raise RepositoryError(f"max_queue_delay_us must be an integer >= 0, got {max_queue_delay_us!r}")
    check_output(out, force)
    for model in MODEL_NAMES[1:]:
        _instances(instances, model)
    missing = [f"{name}: {graph.path}" for name, graph in graphs.items() if not Path(graph.path).is_file()]
    if missing:
        raise RepositoryError(f"graph files do not exist: {', '.join(missing)}")
    writer = _Writer(
        templates=templates_dir(), checkpoint=checkpoint, dims=checkpoint.config.dims, max_batch_size=max_batch_size,
        instances=instances, batching=f"dynamic_batching {{ max_queue_delay_microseconds: {max_queue_delay_us} }}"
        if dynamic_batching else "", threads=threads,
    )
    chosen_buckets = resolve_buckets(buckets, checkpoint.config.featurizer.max_length)
    if detection is not None:
        detection.build(checkpoint.config.featurizer)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = scratch_dir(f".{out.name}.tmp-", out.parent)
    try:
        writer.root = tmp
        writer.ensemble()
        writer.preprocess(ServingSettings(chosen_buckets, max_document_bytes, detection))
        writer.postprocess(decode_config or checkpoint.decode_config())
        if plan.target == "cpu":
            writer.python_graphs(graphs, warmup_length=chosen_buckets[0] if warmup else None)
        else:
            writer.native_graphs(graphs, {k: Path(v) for k, v in (tensorrt_plans or {}).items()}, plan.precision,
                                 warmup_buckets=chosen_buckets if warmup else ())
        manifest = Manifest(
            target=plan.target, precision=plan.precision, buckets=chosen_buckets, dims=checkpoint.config.dims.to_json(),
            models=sorted(p.name for p in tmp.iterdir() if p.is_dir()), paee_version=__version__,
            extra={
                "plan": plan.name, "graphs": writer.graph_entries, "max_batch_size": max_batch_size,
                "dynamic_batching": bool(dynamic_batching),
                "max_queue_delay_us": max_queue_delay_us if dynamic_batching else None,
                "instances": {m: _instances(instances, m) for m in MODEL_NAMES[1:]},
                "detector": None if detection is None else detection.detector,
                "warmup": bool(warmup),
            },
        )
        write_json(tmp / MANIFEST, manifest.to_json())
        if report is not None:
            write_json(tmp / REPORT, dict(report))
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


class _Writer:
    """The model folders of one repository (see `write_repository`)."""

    def __init__(self, *, templates: Path, checkpoint: Checkpoint, dims: ModelDims, max_batch_size: int,
                 instances: int | Mapping[str, int], batching: str, threads: int | None) -> None:
        self.templates, self.checkpoint, self.dims = templates, checkpoint, dims
        self.max_batch_size, self.instances, self.batching, self.threads = max_batch_size, instances, batching, threads
        self.root = Path()
        self.graph_entries: dict[str, dict[str, Any]] = {}  # the manifest's view of every graph

    def _config(self, model: str, template: Path, inputs: Sequence[str], outputs: Sequence[str], kind: str = "KIND_CPU",
                ragged: Sequence[str] = (), **values: Any) -> None:
        group = f"instance_group [ {{ count: {_instances(self.instances, model)} kind: {kind} }} ]"
        _render(template, self.root / model / CONFIG_FILE, {
            "name": model, "max_batch_size": self.max_batch_size, "dynamic_batching": self.batching,
            "instance_group": group, "inputs": tensor_block(inputs, self.dims, ragged),
            "outputs": tensor_block(outputs, self.dims), **values,
        })

    def _python_model(self, model: str, role: str, warmup_length: int | None = None) -> Path:
        """A python model's folder: its model.py from the templates, its config from the contract (with a
        warm-up sample of ``warmup_length`` tokens when given)."""
        version = self.root / model / VERSION
        (version / ASSETS).mkdir(parents=True)
        shutil.copy2(self.templates / model / VERSION / MODEL_FILE, version / MODEL_FILE)
        # python models pad the pair axis within a batch themselves (paee.runtime.batching); Triton's native
        # backends would concatenate ragged inputs flat, so their configs batch equal pair counts only
        inputs, outputs = _step_io(role)
        warmup = {} if role not in ("encoder", "head") else {
            "model_warmup": "" if warmup_length is None else warmup_block(inputs, self.dims, warmup_length)}
        self._config(model, self.templates / model / "config.pbtxt.in", inputs, outputs, ragged=RAGGED, **warmup)
        return version

    def ensemble(self) -> None:
        (self.root / ENSEMBLE / VERSION).mkdir(parents=True)  # Triton wants a version folder, even an empty one
        inputs, outputs = SERVING_STEPS[0][1], SERVING_STEPS[-1][2]
        _render(self.templates / ENSEMBLE / "config.pbtxt.in", self.root / ENSEMBLE / CONFIG_FILE, {
            "name": ENSEMBLE, "max_batch_size": self.max_batch_size, "inputs": tensor_block(inputs, self.dims),
            "outputs": tensor_block(outputs, self.dims), "steps": ensemble_steps(),
        })

    def preprocess(self, settings: ServingSettings) -> None:
        assets = self._python_model(PREPROCESS, "preprocess") / ASSETS
        (assets / TOKENIZER_FILE).write_text(self.checkpoint.tokenizer.to_str(), encoding="utf-8")
        write_json(assets / FEATURIZER_FILE, self.checkpoint.config.featurizer.to_json())
        write_json(assets / SERVING_FILE, settings.to_json())

    def postprocess(self, decode_config: DecodeConfig) -> None:
        assets = self._python_model(POSTPROCESS, "postprocess") / ASSETS
        write_json(assets / RELATIONS_FILE, self.checkpoint.config.relations.to_json())
        write_json(assets / DECODE_FILE, decode_config.to_json())

    def python_graphs(self, graphs: Mapping[str, BuiltGraph], warmup_length: int | None) -> None:
        """CPU flavour: the encoder and head python models run their graphs (``runtime.json``)."""
        for model, role, names in ((ENCODER_MODEL, "encoder", ENCODER_GRAPHS), (HEAD_MODEL, "head", (HEAD,))):
            version = self._python_model(model, role, warmup_length)
            entries = []
            for name in names:
                copy_onnx(graphs[name].path, (version / graph_path(name)).parent)
                entries.append(graphs[name].runtime(graph_path(name)))
                self.graph_entries[name] = {"model": model, **entries[-1].to_json()}
            write_json(version / ASSETS / RUNTIME_FILE, ModelRuntime(MODE_LOCAL, tuple(entries), threads=self.threads).to_json())

    def native_graphs(self, graphs: Mapping[str, BuiltGraph], engines: Mapping[str, Path], precision: str,
                      warmup_buckets: Sequence[int] = ()) -> None:
        """GPU flavour: native Triton models per graph; ``paee_encoder`` routes by length to the encoders.
        With ``warmup_buckets``, each native model warms up on the first bucket its graph serves (on a GPU this
        is where TensorRT builds its engine or CUDA initialises: before ready, not in a user's request)."""
        if any(g.backend != TRITON_NATIVE for g in graphs.values()):
            raise RepositoryError("the GPU flavour serves graphs on Triton's native backends only")
        models = {ENCODER: ENCODER_SHORT_MODEL, ENCODER_LONG: ENCODER_LONG_MODEL, HEAD: HEAD_MODEL}
        for name, model in models.items():
            low, high = graphs[name].length_range
            length = next((b for b in warmup_buckets if low <= b <= high), None)
            self._native(model, name, graphs[name], engines.get(name), precision, length)
        routes = tuple(Route(models[name], graphs[name].length_range) for name in ENCODER_GRAPHS)
        version = self._python_model(ENCODER_MODEL, "encoder")
        write_json(version / ASSETS / RUNTIME_FILE, ModelRuntime(MODE_BLS, routes=routes).to_json())

    def _native(self, model: str, name: str, graph: BuiltGraph, engine: Path | None, precision: str,
                warmup_length: int | None = None) -> None:
        version = self.root / model / VERSION
        version.mkdir(parents=True)
        inputs, outputs = _step_io("head" if name == HEAD else "encoder")
        warmup = "" if warmup_length is None else warmup_block(inputs, self.dims, warmup_length)
        if engine is not None:
            if not engine.is_file():
                raise RepositoryError(f"TensorRT plan for {name} does not exist: {engine}")
            shutil.copy2(engine, version / PLAN_FILE)
            platform = "tensorrt_plan"
            self._config(model, self.templates / GPU_TEMPLATES[platform], inputs, outputs, kind="KIND_GPU",
                         model_warmup=warmup)
        else:
            platform = "onnxruntime_onnx"
            # external data -> the directory form 1/model.onnx/model.onnx (DESIGN.md 8)
            if _external_files(graph.path):
                copy_onnx(graph.path, version / ONNX_FILE)
            else:
                shutil.copy2(graph.path, version / ONNX_FILE)
            self._config(model, self.templates / GPU_TEMPLATES[platform], inputs, outputs, kind="KIND_GPU",
                         trt_precision=precision.upper(), trt_workspace=TRT_WORKSPACE_BYTES, trt_cache=TRT_CACHE_DIR,
                         model_warmup=warmup)
        self.graph_entries[name] = {"model": model, "platform": platform, "precision": precision,
                                    "length_range": list(graph.length_range)}


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished repository into place; an old one is moved aside first and removed after."""
    old, aside = None, f".{out.name}.old-"
    sweep_stale(aside, out.parent)
    if out.exists():
        old = out.parent / f"{aside}{os.getpid()}-{uuid.uuid4().hex[:8]}"  # named for sweep_stale
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)  # put the previous repository back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


__all__ = [
    "BUCKET_STEP", "DEFAULT_BUCKETS", "WARMUP_PAIRS", "DEFAULT_MAX_BATCH_SIZE", "DEFAULT_MAX_DOCUMENT_BYTES", "RepositoryError",
    "check_output", "copy_onnx", "ensemble_steps", "parse_config", "resolve_buckets", "templates_dir", "tensor_block",
    "warmup_block", "write_repository",
]  # fmt: skip
