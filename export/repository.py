"""Writes the Triton model repository of a trained PAEE model (`write_repository`).

The repository (DESIGN.md 7)::

    OUT/
      paee/               ensemble: DOCUMENT (JSON bytes) -> TRIPLES (JSON bytes)
      paee_preprocess/    python: tokenizer + featurizer; 1/assets/{tokenizer.json, featurizer.json, serving.json}
      paee_encoder/       CPU: python model running 1/graphs/<graph>/model.onnx (ORT / OpenVINO)
                          GPU: onnxruntime_onnx + TensorRT accelerator, or tensorrt_plan
      paee_head/          same two flavours
      paee_postprocess/   python: decoder; 1/assets/{relations.json, decode.json}
      paee_repository.json   what was written (precision, target, buckets, dims, sources)
      export_report.json     the export report, when given

The committed parts (python models, config templates) live in ``triton_repo/`` of the source tree; the
writer fills the templates with the shapes of this model (N, M, S from the featurizer configuration, R
from the relation vocabulary, H, K from the graphs' metadata or their output shapes) and parses every
generated ``config.pbtxt`` with Triton's own model-config protobuf before anything becomes visible.

Writing is atomic: the repository is built in a temporary sibling folder and renamed into place; an
existing repository is replaced only with ``force=True``; on any failure nothing is left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import sys
import sysconfig
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from paee.data.featurizer import MAX_SUPPORTED_LENGTH, FeaturizerConfig
from paee.data.relations import RelationVocab

#: Model names in the repository (the ensemble is what clients call).
ENSEMBLE = "paee"
PREPROCESS = "paee_preprocess"
ENCODER = "paee_encoder"
HEAD = "paee_head"
POSTPROCESS = "paee_postprocess"
MODEL_NAMES = (ENSEMBLE, PREPROCESS, ENCODER, HEAD, POSTPROCESS)
#: GPU flavour with two encoder graphs: native models per length bucket behind the python router.
ENCODER_SHORT = "paee_encoder_short"
ENCODER_LONG = "paee_encoder_long"
VERSION = "1"
ASSETS = "assets"
GRAPHS = "graphs"
ONNX_FILE = "model.onnx"
PLAN_FILE = "model.plan"
MANIFEST = "paee_repository.json"
REPORT = "export_report.json"
TARGETS = ("cpu", "gpu")
PRECISIONS = ("fp32", "fp16", "int8", "bf16")
#: Padded lengths of input_ids: requests of one bucket have equal shapes and batch together (Triton batches
#: equal shapes only). Every multiple of 64: a document pays for at most 63 padding tokens (coarse buckets
#: such as 128/256/512/768/1024 made a 300-token document run the encoder at 512, ~1.7x its cost at
#: BERT-base size, DESIGN.md 8), while documents of similar length still share a bucket under load. 512
#: is a boundary because the short encoder graph serves up to one window (512 tokens for BERT).
BUCKET_STEP = 64
DEFAULT_BUCKETS = tuple(range(BUCKET_STEP, MAX_SUPPORTED_LENGTH + 1, BUCKET_STEP))
#: BERT's window: where ``encoder`` hands over to ``encoder_long`` (used when graphs carry no metadata).
DEFAULT_WINDOW = 512
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

# numpy-style dtype names of the graph contract -> Triton data types.
_TRITON_TYPES = {"int64": "TYPE_INT64", "float32": "TYPE_FP32", "float16": "TYPE_FP16", "bytes": "TYPE_STRING"}


class RepositoryError(ValueError):
    """The repository cannot be written (bad arguments, existing output without force, invalid config)."""


# --- locating the committed parts -----------------------------------------------------------------


def templates_dir() -> Path:
    """The ``triton_repo/`` folder: ``$PAEE_TRITON_REPO``, else beside this package in the source tree."""
    override = os.environ.get(TEMPLATES_ENV)
    candidates = [Path(override)] if override else []
    candidates.append(Path(__file__).resolve().parent.parent / "triton_repo")
    # a wheel install: pyproject's data-files put the templates under <prefix>/share/paee/triton_repo
    candidates += [Path(sysconfig.get_path("data")) / INSTALLED_TEMPLATES, Path(sys.prefix) / INSTALLED_TEMPLATES]
    for path in candidates:
        if (path / ENSEMBLE / "config.pbtxt.in").is_file():
            return path
    raise RepositoryError(
        f"cannot find the triton_repo/ templates (looked in {', '.join(map(str, candidates))}); run from a source "
        f"checkout (pip install -e .) or set {TEMPLATES_ENV} to the triton_repo folder"
    )


# --- shapes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepositoryDims:
    """The fixed dims the configs need (tensor contract, README)."""

    max_entities: int  # N
    max_mentions: int  # M
    max_sentences: int  # S
    hidden_size: int  # H
    num_heads: int  # K
    num_relations: int  # R


@dataclass(frozen=True)
class EncoderGraph:
    """One encoder ONNX file and the inclusive padded-length range it serves."""

    name: str
    path: Path
    length_range: tuple[int, int]


def _graph_metadata(path: Path) -> dict[str, Any]:
    """The contract the exporter stamped into the graph (``{}`` when absent)."""
    try:
        from paee_export.runtimes import read_graph_metadata
    except ImportError:  # pragma: no cover - the runtimes module is part of this package
        return {}
    return read_graph_metadata(path)


def _onnx_output_dims(path: Path) -> dict[str, list[int | str]]:
    """Output name -> dims (ints, or the symbolic names) of an ONNX file, without loading weights."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    dims = {}
    for out in proto.graph.output:
        shape = out.type.tensor_type.shape.dim
        dims[out.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in shape]
    return dims


def _as_paths(encoder_onnx: str | Path | Sequence[str | Path] | Mapping[str, str | Path]) -> list[tuple[str | None, Path]]:
    if isinstance(encoder_onnx, (str, Path)):
        return [(None, Path(encoder_onnx))]
    if isinstance(encoder_onnx, Mapping):
        return [(str(k), Path(v)) for k, v in encoder_onnx.items()]
    return [(None, Path(p)) for p in encoder_onnx]


def resolve_encoders(encoder_onnx: Any, window: int | None) -> list[EncoderGraph]:
    """Encoder graphs with their length ranges: from the graphs' metadata, else by order (short, long)."""
    items = _as_paths(encoder_onnx)
    if not items:
        raise RepositoryError("encoder_onnx names no file; pass one ONNX file (short documents) or two (short, long)")
    if len(items) > 2:
        raise RepositoryError(f"encoder_onnx has {len(items)} files; expected one or two (short, long buckets)")
    graphs = []
    for position, (name, path) in enumerate(items):
        if not path.is_file():
            raise RepositoryError(f"encoder ONNX file {path} does not exist")
        meta = _graph_metadata(path)
        win = window or int(meta.get("dims", {}).get("window", DEFAULT_WINDOW))
        graph_name = name or meta.get("graph") or ("encoder" if position == 0 else "encoder_long")
        if "length_range" in meta:
            low, high = (int(x) for x in meta["length_range"])
        elif graph_name == "encoder_long":
            low, high = win + 1, 2 * win
        else:
            low, high = 1, win
        graphs.append(EncoderGraph(graph_name, path, (low, high)))
    graphs.sort(key=lambda g: g.length_range)
    for a, b in zip(graphs, graphs[1:]):
        if a.length_range[1] >= b.length_range[0]:
            raise RepositoryError(f"encoder graphs {a.name} {a.length_range} and {b.name} {b.length_range} overlap")
    return graphs


def resolve_dims(encoders: Sequence[EncoderGraph], head_onnx: Path, featurizer: FeaturizerConfig,
                 relations: RelationVocab) -> RepositoryDims:
    """N, M, S from the featurizer, R from the relations, H, K from the graphs; mismatches are errors."""
    meta = _graph_metadata(encoders[0].path).get("dims", {})
    if "hidden_size" in meta and "num_heads" in meta:
        hidden, heads = int(meta["hidden_size"]), int(meta["num_heads"])
    else:
        outs = _onnx_output_dims(encoders[0].path)
        try:
            hidden, heads = int(outs["entity_emb"][-1]), int(outs["entity_attn"][2])
        except (KeyError, IndexError, ValueError) as e:
            raise RepositoryError(f"{encoders[0].path}: cannot read H and K from outputs entity_emb / entity_attn: {outs}") from e
    dims = RepositoryDims(featurizer.max_entities, featurizer.max_mentions, featurizer.max_sentences, hidden, heads,
                          relations.num_classes)
    checks = {
        "max_entities": dims.max_entities, "max_mentions": dims.max_mentions,
        "max_sentences": dims.max_sentences, "num_relations": dims.num_relations,
    }
    for path in [g.path for g in encoders] + [head_onnx]:
        stored = _graph_metadata(path).get("dims", {})
        wrong = {k: (stored[k], v) for k, v in checks.items() if k in stored and int(stored[k]) != v}
        if wrong:
            detail = ", ".join(f"{k}: graph {g}, featurizer/relations {v}" for k, (g, v) in wrong.items())
            raise RepositoryError(f"{path} was exported for other shapes than the featurizer/relations given ({detail})")
    return dims


def resolve_buckets(buckets: Sequence[int], max_length: int, encoders: Sequence[EncoderGraph]) -> list[int]:
    """Buckets up to the featurizer's ``max_length`` (always one bucket), each served by some encoder graph."""
    if max_length > MAX_SUPPORTED_LENGTH:
        raise RepositoryError(f"featurizer max_length {max_length} exceeds {MAX_SUPPORTED_LENGTH}")
    chosen = sorted({int(b) for b in buckets if 0 < int(b) < max_length} | {max_length})
    for bucket in chosen:
        if not any(g.length_range[0] <= bucket <= g.length_range[1] for g in encoders):
            served = ", ".join(f"{g.name} {g.length_range[0]}..{g.length_range[1]}" for g in encoders)
            raise RepositoryError(
                f"length bucket {bucket} (featurizer max_length {max_length}) is served by no encoder graph "
                f"({served}); pass the long encoder graph too, or lower max_length / --max-length"
            )
    return chosen


# --- config text --------------------------------------------------------------------------------


def _tensor(name: str, dtype: str, dims: Sequence[int]) -> str:
    return f'  {{ name: "{name}" data_type: {_TRITON_TYPES[dtype]} dims: [ {", ".join(str(d) for d in dims)} ] }}'


def _block(tensors: Sequence[tuple[str, str, Sequence[int]]]) -> str:
    return ",\n".join(_tensor(*t) for t in tensors)


def _io(dims: RepositoryDims) -> dict[str, list[tuple[str, str, list[int]]]]:
    """Per-request dims (batch axis excluded, -1 = the padded length L) of every model's inputs/outputs."""
    N, M, S, H, K, R = (dims.max_entities, dims.max_mentions, dims.max_sentences, dims.hidden_size,
                        dims.num_heads, dims.num_relations)
    encoder_in = [("input_ids", "int64", [-1]), ("attention_mask", "int64", [-1]),
                  ("mention_pos", "int64", [N, M]), ("mention_mask", "float32", [N, M])]
    encoder_out = [("token_emb", "float32", [-1, H]), ("entity_emb", "float32", [N, H]),
                   ("entity_attn", "float32", [N, K, -1])]
    head_in = encoder_out + [("entity_type", "int64", [N]), ("entity_mask", "float32", [N]),
                             ("sent_span", "int64", [S, 2]), ("sent_mask", "float32", [S]),
                             ("same_sent", "int64", [N, N])]
    head_out = [("logits", "float32", [N, N, R]), ("pair_prob", "float32", [N, N])]
    pre_out = encoder_in + head_in[3:] + [("num_entities", "int64", [1]), ("TITLE", "bytes", [1])]
    post_in = head_out + [("num_entities", "int64", [1]), ("TITLE", "bytes", [1])]
    return {"encoder_in": encoder_in, "encoder_out": encoder_out, "head_in": head_in, "head_out": head_out,
            "pre_out": pre_out, "post_in": post_in}


def _instance_group(count: int, kind: str) -> str:
    return f"instance_group [ {{ count: {count} kind: {kind} }} ]"


def _dynamic_batching(delay_us: int) -> str:
    return f"dynamic_batching {{ max_queue_delay_microseconds: {delay_us} }}"


def parse_config(text: str, where: str = "config.pbtxt") -> Any:
    """Parse config text with Triton's ModelConfig protobuf; `RepositoryError` naming the problem."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as e:
        raise RepositoryError(f"{where} does not parse as a Triton ModelConfig: {e}") from e


def _render(template: Path, out: Path, values: Mapping[str, Any]) -> None:
    text = string.Template(template.read_text(encoding="utf-8")).substitute({k: str(v) for k, v in values.items()})
    parse_config(text, str(template))
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


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _tokenizer_text(tokenizer_json: Any) -> str:
    """tokenizer.json text from a `tokenizers.Tokenizer`, a tokenizer.json path, or a checkpoint folder."""
    if hasattr(tokenizer_json, "to_str"):
        return tokenizer_json.to_str()
    path = Path(tokenizer_json)
    if path.is_dir():
        from paee.data.tokenizer import load_tokenizer

        return load_tokenizer(path).to_str()
    if not path.is_file():
        raise RepositoryError(f"tokenizer {path} does not exist (expected tokenizer.json or a tokenizer folder)")
    return path.read_text(encoding="utf-8")


def _instances(instances: int | Mapping[str, int], model: str) -> int:
    count = instances.get(model, 1) if isinstance(instances, Mapping) else instances
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise RepositoryError(f"instances for {model} must be a positive integer, got {count!r}")
    return count


# --- the writer -----------------------------------------------------------------------------------


def write_repository(
    out_dir: str | Path,
    *,
    encoder_onnx: str | Path | Sequence[str | Path] | Mapping[str, str | Path],
    head_onnx: str | Path,
    tokenizer_json: Any,
    featurizer_config: FeaturizerConfig | Mapping[str, Any],
    relations: RelationVocab | Mapping[str, Any],
    precision: str = "fp32",
    target: str = "cpu",
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    instances: int | Mapping[str, int] = 1,
    force: bool = False,
    report: Mapping[str, Any] | str | Path | None = None,
    buckets: Sequence[int] = DEFAULT_BUCKETS,
    window: int | None = None,
    tensorrt_plans: Mapping[str, str | Path] | None = None,
    gate_threshold: float | None = None,
    top_k: int | None = None,
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    max_queue_delay_us: int = DEFAULT_MAX_QUEUE_DELAY_US,
    dynamic_batching: bool = True,
    threads: int | None = None,
    runtime_backend: str = "auto",
    graph_runtime: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """Write the complete Triton model repository of one model to ``out_dir`` (atomically).

    Args:
        out_dir: the repository folder to create (replaced only with ``force``).
        encoder_onnx: the encoder graph(s): one file, or two (short ``encoder``, long ``encoder_long``)
            as a sequence or a ``{graph name: path}`` mapping. Length ranges come from the graphs'
            metadata (`paee_export.onnx_export.stamp_metadata`), else from ``window``.
        head_onnx: the head graph.
        tokenizer_json: a `tokenizers.Tokenizer`, a ``tokenizer.json`` path or a tokenizer folder.
        featurizer_config: the featurizer settings the model was trained with (N, M, S, max_length).
        relations: the relation vocabulary (names travel to the postprocess model).
        precision: ``fp32`` / ``int8`` (ONNX Runtime) or ``bf16`` (OpenVINO) on CPU; ``fp32`` / ``fp16``
            (TensorRT accelerator precision) on GPU. The ONNX files must already be in that precision
            (int8: the quantised graphs).
        target: ``cpu`` (python models running the graphs) or ``gpu`` (native Triton models).
        max_batch_size: the max_batch_size of every model.
        instances: instance count of every model, or ``{model name: count}``.
        force: replace an existing ``out_dir``.
        report: the export report (a dict, or a JSON file) stored as ``export_report.json``.
        buckets: padded lengths of input_ids (clipped to the featurizer's max_length).
        window: encoder window when the graphs carry no metadata.
        tensorrt_plans: GPU only, ``{"encoder": plan, "encoder_long": plan, "head": plan}``: use
            ``tensorrt_plan`` models instead of ONNX with the TensorRT accelerator.
        gate_threshold, top_k: decoding settings (`paee.data.decode.decode`).
        max_document_bytes: larger DOCUMENT payloads get an error response.
        max_queue_delay_us: the dynamic batcher's wait to fill a batch.
        dynamic_batching: False writes no ``dynamic_batching`` block: every model then runs each request
            as it comes (batch of one document), to measure what the batcher buys (benchmarks/serving_load.py).
        threads: intra-op threads per runtime session (None: the runtime's default).
        runtime_backend: `paee_export.runtimes.create_session` backend (``auto`` picks by precision).
        graph_runtime: CPU only, ``{graph name: {"precision": .., "backend": ..}}`` (``encoder``,
            ``encoder_long`` or ``head``) overriding ``precision`` / ``runtime_backend`` for that graph
            (bf16: OpenVINO cannot compile ``encoder_long``, which then runs ONNX Runtime fp32; int8: the
            static encoder runs on OpenVINO, the head at bf16).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        RepositoryError: bad arguments, an existing repository without ``force``, ``out_dir`` is a file,
            a config that does not parse. Nothing is left behind on any failure.
    """
    out = Path(out_dir)
    if target not in TARGETS:
        raise RepositoryError(f"target {target!r} is not one of {TARGETS}")
    if precision not in PRECISIONS:
        raise RepositoryError(f"precision {precision!r} is not one of {PRECISIONS}")
    if target == "cpu" and precision == "fp16":
        raise RepositoryError("fp16 is a GPU precision; on CPU use fp32, int8 or bf16")
    if target == "gpu" and precision not in ("fp32", "fp16"):
        raise RepositoryError(f"the GPU flavour runs fp32 or fp16 (TensorRT), not {precision!r}")
    if tensorrt_plans and target != "gpu":
        raise RepositoryError("tensorrt_plans need target='gpu'")
    if not isinstance(max_batch_size, int) or max_batch_size < 1:
        raise RepositoryError(f"max_batch_size must be a positive integer, got {max_batch_size!r}")
    if not isinstance(max_queue_delay_us, int) or isinstance(max_queue_delay_us, bool) or max_queue_delay_us < 0:
        raise RepositoryError(f"max_queue_delay_us must be an integer >= 0, got {max_queue_delay_us!r}")
    if out.exists() and not out.is_dir():
        raise RepositoryError(f"output {out} exists and is a file, not a repository folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise RepositoryError(f"output {out} already exists and is not empty; pass force=True (--force) to replace it")
    for model in MODEL_NAMES[1:]:
        _instances(instances, model)
    featurizer = featurizer_config if isinstance(featurizer_config, FeaturizerConfig) else FeaturizerConfig.from_json(dict(featurizer_config))
    vocab = relations if isinstance(relations, RelationVocab) else RelationVocab.from_json(relations)
    head_path = Path(head_onnx)
    if not head_path.is_file():
        raise RepositoryError(f"head ONNX file {head_path} does not exist")
    encoders = resolve_encoders(encoder_onnx, window)
    dims = resolve_dims(encoders, head_path, featurizer, vocab)
    chosen_buckets = resolve_buckets(buckets, featurizer.max_length, encoders)
    tokenizer_text = _tokenizer_text(tokenizer_json)
    templates = templates_dir()

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        batching = _dynamic_batching(max_queue_delay_us) if dynamic_batching else ""
        common = {"max_batch_size": max_batch_size, "dynamic_batching": batching}
        io = _io(dims)
        manifest = _build(
            tmp, templates, common, io, encoders=encoders, head=head_path, tokenizer_text=tokenizer_text,
            featurizer=featurizer, relations=vocab, precision=precision, target=target, instances=instances,
            buckets=chosen_buckets, tensorrt_plans=tensorrt_plans, gate_threshold=gate_threshold, top_k=top_k,
            max_document_bytes=max_document_bytes, threads=threads, runtime_backend=runtime_backend,
            graph_runtime=graph_runtime or {},
        )
        manifest.update({
            "dims": asdict(dims), "max_batch_size": max_batch_size, "dynamic_batching": bool(dynamic_batching),
            "max_queue_delay_us": max_queue_delay_us if dynamic_batching else None,
            "instances": {m: _instances(instances, m) for m in MODEL_NAMES[1:]},
        })
        _write_json(tmp / MANIFEST, manifest)
        if report is not None:
            if isinstance(report, (str, Path)):
                shutil.copy2(report, tmp / REPORT)
            else:
                _write_json(tmp / REPORT, dict(report))
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished repository into place; an old one is moved aside first and removed after."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)  # put the previous repository back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _build(root: Path, templates: Path, common: dict[str, Any], io: dict[str, list], *, encoders: Sequence[EncoderGraph],
           head: Path, tokenizer_text: str, featurizer: FeaturizerConfig, relations: RelationVocab, precision: str,
           target: str, instances: Any, buckets: list[int], tensorrt_plans: Mapping[str, Any] | None,
           gate_threshold: float | None, top_k: int | None, max_document_bytes: int, threads: int | None,
           runtime_backend: str, graph_runtime: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """Every model folder under ``root``; returns the manifest."""
    cpu_group = lambda model: _instance_group(_instances(instances, model), "KIND_CPU")  # noqa: E731
    gpu_group = lambda model: _instance_group(_instances(instances, model), "KIND_GPU")  # noqa: E731

    def python_model(model: str) -> Path:
        version = root / model / VERSION
        version.mkdir(parents=True)
        shutil.copy2(templates / model / VERSION / "model.py", version / "model.py")
        return version

    # ensemble
    (root / ENSEMBLE / VERSION).mkdir(parents=True)  # Triton wants a version folder, even an empty one
    _render(templates / ENSEMBLE / "config.pbtxt.in", root / ENSEMBLE / "config.pbtxt", {
        "name": ENSEMBLE, "max_batch_size": common["max_batch_size"], "preprocess": PREPROCESS,
        "encoder": ENCODER, "head": HEAD, "postprocess": POSTPROCESS,
    })

    # preprocess: the tokenizer and settings travel in its assets
    version = python_model(PREPROCESS)
    (version / ASSETS).mkdir()
    (version / ASSETS / "tokenizer.json").write_text(tokenizer_text, encoding="utf-8")
    _write_json(version / ASSETS / "featurizer.json", featurizer.to_json())
    _write_json(version / ASSETS / "serving.json", {"buckets": buckets, "max_document_bytes": max_document_bytes})
    _render(templates / PREPROCESS / "config.pbtxt.in", root / PREPROCESS / "config.pbtxt", {
        **common, "name": PREPROCESS, "outputs": _block(io["pre_out"]), "instance_group": cpu_group(PREPROCESS),
    })

    # postprocess: the relation names travel in its assets
    version = python_model(POSTPROCESS)
    _write_json(version / ASSETS / "relations.json", relations.to_json())
    _write_json(version / ASSETS / "decode.json", {"gate_threshold": gate_threshold, "top_k": top_k})
    _render(templates / POSTPROCESS / "config.pbtxt.in", root / POSTPROCESS / "config.pbtxt", {
        **common, "name": POSTPROCESS, "inputs": _block(io["post_in"]), "instance_group": cpu_group(POSTPROCESS),
    })

    graphs_manifest: dict[str, Any] = {}
    if target == "cpu":
        runtime = {"precision": precision, "threads": threads, "backend": runtime_backend}
        version = python_model(ENCODER)
        entries = []
        for graph in encoders:
            copy_onnx(graph.path, version / GRAPHS / graph.name)
            entries.append({"name": graph.name, "path": f"{GRAPHS}/{graph.name}/{ONNX_FILE}",
                            "length_range": list(graph.length_range), **dict(graph_runtime.get(graph.name, {}))})
        _write_json(version / ASSETS / "runtime.json", {**runtime, "mode": "local", "graphs": entries})
        _render(templates / ENCODER / "config.pbtxt.in", root / ENCODER / "config.pbtxt", {
            **common, "name": ENCODER, "inputs": _block(io["encoder_in"]), "outputs": _block(io["encoder_out"]),
            "instance_group": cpu_group(ENCODER),
        })
        version = python_model(HEAD)
        copy_onnx(head, version / GRAPHS / "head")
        _write_json(version / ASSETS / "runtime.json", {
            **runtime, "graphs": [{"name": "head", "path": f"{GRAPHS}/head/{ONNX_FILE}", "length_range": [1, MAX_SUPPORTED_LENGTH],
                                   **dict(graph_runtime.get("head", {}))}],
        })
        _render(templates / HEAD / "config.pbtxt.in", root / HEAD / "config.pbtxt", {
            **common, "name": HEAD, "inputs": _block(io["head_in"]), "outputs": _block(io["head_out"]),
            "instance_group": cpu_group(HEAD),
        })
        graphs_manifest = {g.name: {"source": str(g.path), "length_range": list(g.length_range)} for g in encoders}
        graphs_manifest["head"] = {"source": str(head)}
    else:
        plans = {k: Path(v) for k, v in (tensorrt_plans or {}).items()}

        def native(model: str, graph: str, source: Path, inputs: list, outputs: list) -> None:
            version = root / model / VERSION
            version.mkdir(parents=True)
            values = {**common, "name": model, "inputs": _block(inputs), "outputs": _block(outputs),
                      "instance_group": gpu_group(model if model in MODEL_NAMES else ENCODER)}
            if graph in plans:
                if not plans[graph].is_file():
                    raise RepositoryError(f"TensorRT plan for {graph} does not exist: {plans[graph]}")
                shutil.copy2(plans[graph], version / PLAN_FILE)
                _render(templates / "_gpu" / "tensorrt_plan.pbtxt.in", root / model / "config.pbtxt", values)
                graphs_manifest[graph] = {"source": str(plans[graph]), "platform": "tensorrt_plan"}
                return
            # External data -> the directory form 1/model.onnx/model.onnx (DESIGN.md 8).
            if _external_files(source):
                copy_onnx(source, version / ONNX_FILE)
            else:
                shutil.copy2(source, version / ONNX_FILE)
            trt = {"trt_precision": precision.upper(), "trt_workspace": TRT_WORKSPACE_BYTES, "trt_cache": TRT_CACHE_DIR}
            _render(templates / "_gpu" / "onnxruntime_onnx.pbtxt.in", root / model / "config.pbtxt", {**values, **trt})
            graphs_manifest[graph] = {"source": str(source), "platform": "onnxruntime_onnx"}

        if len(encoders) == 1:
            native(ENCODER, encoders[0].name, encoders[0].path, io["encoder_in"], io["encoder_out"])
        else:
            # Two length buckets: native models per graph, the python router picks one by padded length.
            routes = []
            for graph, model in zip(encoders, (ENCODER_SHORT, ENCODER_LONG)):
                native(model, graph.name, graph.path, io["encoder_in"], io["encoder_out"])
                routes.append({"model": model, "length_range": list(graph.length_range)})
            version = python_model(ENCODER)
            _write_json(version / ASSETS / "runtime.json", {"mode": "bls", "routes": routes})
            _render(templates / ENCODER / "config.pbtxt.in", root / ENCODER / "config.pbtxt", {
                **common, "name": ENCODER, "inputs": _block(io["encoder_in"]), "outputs": _block(io["encoder_out"]),
                "instance_group": cpu_group(ENCODER),
            })
        native(HEAD, "head", head, io["head_in"], io["head_out"])

    return {
        "format": "paee-triton-repository", "format_version": 1, "target": target, "precision": precision,
        "models": sorted(p.name for p in root.iterdir() if p.is_dir()), "ensemble": ENSEMBLE,
        "buckets": buckets, "graphs": graphs_manifest, "featurizer": featurizer.to_json(),
        "num_relations": relations.num_classes, "paee_version": _package_version(),
    }


def _package_version() -> str:
    from paee import __version__

    return __version__
