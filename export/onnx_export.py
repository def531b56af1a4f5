"""Export the graphs of a trained `PaeeModel` to ONNX, check them, and validate them against PyTorch.

``export_graphs(model, out_dir)`` writes ``encoder.onnx`` (L <= window), ``encoder_long.onnx``
(window < L <= 2 window) and ``head.onnx`` (the contract: `paee.runtime.contract`), each with its
default exporter (`DEFAULT_EXPORTERS`, which says why), under ``eval()`` + ``no_grad()``:

* the encoder's backbone is switched to eager attention for the trace (and switched back): the SDPA
  trace lowers to a pattern (IsNaN/Where around the softmax) that ORT's BERT optimizer does not fuse,
  the eager one fuses into ``Attention`` in every layer;
* the TorchScript tracer merges the side computation's key projection of the last layer
  (``EncoderGraph._query_key``) with the layer's own key projection (common subexpression). ORT's
  attention fusion then deletes that shared projection and leaves the side path dangling ("Graph is
  not a DAG"). `unshare_side_projections` gives the side path its own copy of the projection (behind a
  Reshape to [-1, H], because the fusion also requires the layer input to feed exactly 3 MatMuls). It
  costs one H x H projection over L tokens (~1% of a BERT-base forward);
* `check_graph` enforces what the runtimes need: onnx.checker, complete shape inference, no NonZero,
  constant TopK k, no ScatterND with reduction (TensorRT, DESIGN.md 8);
* `validate_graph` compares ONNX Runtime with PyTorch at shapes different from the export example
  (another batch, another length, a long document mixing in a short one), collects every failing
  output and raises one `ExportValidationError` listing them all (optimum's validation).

Models whose serialised size exceeds `EXTERNAL_DATA_THRESHOLD_BYTES` are written with external data
(``<name>.onnx`` + ``<name>.onnx.data``; Triton then wants the directory form ``1/model.onnx/model.onnx``).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from paee.data.featurizer import MIN_PAIRS, pair_slots
from paee.errors import PaeeFailure
from paee.model.paee import PaeeModel
from paee.runtime.contract import (
    BATCH, ENCODER, ENCODER_GRAPHS, ENCODER_LONG, GRAPH_NAMES, HEAD, LENGTH, PAIRS, GraphSpec, GraphSpecError, graph_specs,
)
from paee.runtime.sessions import ORT_HINT, create_session, import_runtime
from paee_export.graphs import wrap_graph

if TYPE_CHECKING:
    import onnx

logger = logging.getLogger(__name__)

#: The opset each exporter writes: 17 for TorchScript (the one ORT's BERT fusion was measured on, with
#: LayerNormalization), 18 for dynamo (its lowest supported opset).
EXPORTER_OPSETS = {"torchscript": 17, "dynamo": 18}
#: The exporter each graph gets by default. The encoders: TorchScript (``dynamo=False``), because ORT's
#: optimizer fuses attention only in TorchScript traces (DESIGN.md 8). The head: dynamo, because the
#: TorchScript trace of its nn.MultiheadAttention (packed in-projection + unflatten) leaves values whose
#: rank ONNX shape inference cannot determine, while the dynamo export is fully shaped (and the head
#: needs no fusion). Why two encoder graphs and not one with an ONNX ``If``: the TorchScript tracer
#: freezes Python control flow (``if L <= window``) at the example's length, ``torch.cond`` needs the
#: dynamo exporter (no fused Attention), and ORT does not fuse inside ``If`` subgraphs anyway.
DEFAULT_EXPORTERS = {ENCODER: "torchscript", ENCODER_LONG: "torchscript", HEAD: "dynamo"}
#: ORT vs PyTorch tolerance of the fp32 validation (optimum's default scale): max abs difference.
DEFAULT_ATOL = 1e-4
#: ONNX metadata key under which the exporter stores a graph's contract (graph, length range, dims, opset).
METADATA_KEY = "paee.graph"

#: Above this serialised size a graph is saved with external data. Protobuf's hard limit is 2 GiB; 1 GiB
#: leaves headroom for the optimiser's and the fp16 converter's copies. BERT-base (~440 MB) stays one file.
EXTERNAL_DATA_THRESHOLD_BYTES = 1 << 30
#: Op types a TensorRT / static-shape deployment must not contain (data-dependent output shapes).
FORBIDDEN_OPS = ("NonZero",)
#: Example batch of the trace: not 1, so that no exporter specialises the batch axis.
EXAMPLE_BATCH = 2
#: Padded example lengths of the traces (multiples of 8 like collate's padding); validation uses others.
EXAMPLE_SHORT_LENGTH = 64
EXAMPLE_LONG_EXTRA = 96  # long example: window + this
#: Upper bound of the dynamo exporter's batch Dim (a range is required; Triton's max_batch_size is far below).
MAX_DYNAMO_BATCH = 4096
#: torch.export specialises a dimension of size 0 or 1 (DESIGN.md 8): the length Dim starts at 2.
MIN_DYNAMO_LENGTH = 2
#: Real entities per document of the validation cases, from N: other pair counts than the example's,
#: the largest (N (N - 1)) and documents of one and two entities (no pair / padding only) among them.
VALIDATION_ENTITIES: dict[str, Callable[[int], list[int]]] = {
    "batch3_length40": lambda n: [n, 2, 1],
    "batch1_length24": lambda n: [max(2, n // 4)],
    "batch3_long": lambda n: [max(2, n - 3), 1, max(2, n // 5)],
    "batch1_long": lambda n: [max(2, n // 4)],
}


class ExportError(PaeeFailure):
    """The exporter failed or produced a graph that breaks the contract."""


class GraphCheckError(ExportError):
    """An exported graph fails a structural check; ``problems`` lists every failure."""

    def __init__(self, graph: str, problems: Sequence[str]) -> None:
        self.graph = graph
        self.problems = list(problems)
        super().__init__(f"graph {graph!r} fails {len(self.problems)} check(s):\n  " + "\n  ".join(self.problems))


@dataclass(frozen=True)
class OutputMismatch:
    """One output of one validation case outside tolerance."""

    case: str
    output: str
    max_abs_diff: float
    atol: float
    shape_problem: str | None = None

    def __str__(self) -> str:
        if self.shape_problem:
            return f"{self.case}: {self.output}: {self.shape_problem}"
        return f"{self.case}: {self.output}: max abs diff {self.max_abs_diff:.3g} > atol {self.atol:.1g}"


class ExportValidationError(ExportError):
    """ONNX Runtime disagrees with PyTorch; ``mismatches`` lists every failing (case, output)."""

    def __init__(self, graph: str, mismatches: Sequence[OutputMismatch]) -> None:
        self.graph = graph
        self.mismatches = list(mismatches)
        lines = "\n  ".join(str(m) for m in self.mismatches)
        super().__init__(f"graph {graph!r}: ONNX Runtime differs from PyTorch in {len(self.mismatches)} output(s):\n  {lines}")


@dataclass
class ValidationCase:
    """Named feeds of one validation run and the max abs diff of every output."""

    name: str
    shapes: dict[str, tuple[int, ...]]
    max_abs_diff: dict[str, float] = field(default_factory=dict)


@dataclass
class ExportedGraph:
    """One exported ONNX file, its contract, the exporter that wrote it and its validation."""

    spec: GraphSpec
    path: Path
    exporter: str
    external_data: bool
    validation: list[ValidationCase] = field(default_factory=list)


def _require_onnx() -> "onnx":
    return import_runtime("onnx", ORT_HINT)


# -- the trace ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def eager_attention(model: PaeeModel) -> Iterator[None]:
    """Run the encoder backbone with eager attention inside the block, restore its kernel afterwards.

    Why: ORT's BERT optimizer recognises the eager attention pattern (MatMul, Div/Mul, Add mask, Softmax,
    MatMul) in TorchScript traces and fuses it into ``Attention``; it does not recognise the SDPA trace.
    Eager and SDPA compute the same function (parity is validated against the model as it is).
    """
    backbone = model.encoder.backbone
    previous = backbone.config._attn_implementation
    if previous == "eager":
        yield
        return
    backbone.set_attn_implementation("eager")
    try:
        yield
    finally:
        backbone.set_attn_implementation(previous)


def _torch_feeds(feeds: Mapping[str, np.ndarray], spec: GraphSpec) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(np.ascontiguousarray(feeds[name])) for name in spec.input_names)


def trace_to_onnx(model: PaeeModel, spec: GraphSpec, example: Mapping[str, np.ndarray], exporter: str
                  ) -> "onnx.ModelProto":
    """Export one graph with ``exporter`` (eval, no_grad, eager attention) -> ModelProto (post-processed)."""
    onnx = _require_onnx()
    if exporter not in EXPORTER_OPSETS:
        raise ExportError(f"exporter {exporter!r} is not one of {sorted(EXPORTER_OPSETS)}")
    was_training = model.training
    model.eval()
    module = wrap_graph(model, spec)  # after eval(): the wrapper copies the module's mode
    inputs = _torch_feeds(example, spec)
    try:
        with torch.no_grad(), eager_attention(model), mha_fastpath_disabled(), warnings_suppressed():
            if exporter == "dynamo":
                proto = _dynamo_export(module, inputs, spec)
            else:
                buffer = io.BytesIO()
                torch.onnx.export(
                    module,
                    inputs,
                    buffer,
                    dynamo=False,  # TorchScript: the form ORT's optimizer fuses (DESIGN.md 8)
                    opset_version=EXPORTER_OPSETS[exporter],
                    input_names=spec.input_names,
                    output_names=spec.output_names,
                    dynamic_axes=spec.dynamic_axes(),
                    do_constant_folding=True,
                )
                proto = onnx.load_from_string(buffer.getvalue())
    except Exception as err:  # the exporters raise many types; name the graph and keep the cause
        raise ExportError(f"torch.onnx.export ({exporter}) of graph {spec.name!r} failed: {err}") from err
    finally:
        model.train(was_training)
    if spec.name in ENCODER_GRAPHS:
        unshare_side_projections(proto, spec.dims.hidden_size)
    return proto


def _dynamo_export(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], spec: GraphSpec) -> "onnx.ModelProto":
    """torch.export-based export with the spec's dynamic axes as `torch.export.Dim`s (in memory)."""
    low, high = spec.length_range
    dims = {
        BATCH: torch.export.Dim(BATCH, min=1, max=MAX_DYNAMO_BATCH),
        LENGTH: torch.export.Dim(LENGTH, min=max(low, MIN_DYNAMO_LENGTH), max=high),
        # a document's ordered pairs, padded per batch to at least MIN_PAIRS (a Dim cannot start at 0 or 1)
        PAIRS: torch.export.Dim(PAIRS, min=MIN_PAIRS, max=max(spec.dims.max_pairs, MIN_PAIRS + 1)),
    }
    # one entry for the wrapper's *inputs, holding one {axis: Dim} per input
    dynamic_shapes = (tuple({axis: dims[d] for axis, d in t.dynamic_axes().items()} for t in spec.inputs),)
    program = torch.onnx.export(
        module,
        inputs,
        dynamo=True,
        opset_version=EXPORTER_OPSETS["dynamo"],
        input_names=spec.input_names,
        output_names=spec.output_names,
        dynamic_shapes=dynamic_shapes,
        external_data=False,  # kept in memory; `save_model` decides on external data
        verbose=False,
    )
    return program.model_proto


@contextlib.contextmanager
def mha_fastpath_disabled() -> Iterator[None]:
    """Disable PyTorch's fused TransformerEncoderLayer inference kernel for the trace, restore it after.

    Why: in eval + no_grad, ``nn.TransformerEncoderLayer`` (the head's RE-encoder) calls
    ``aten::_transformer_encoder_layer_fwd``, which the TorchScript exporter cannot translate; the
    regular path computes the same function from exportable ops.
    """
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)


@contextlib.contextmanager
def warnings_suppressed() -> Iterator[None]:
    """Silence the tracer's TracerWarnings (Python conditions frozen at trace time: that is intended)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=Warning, module=r"torch\..*|transformers\..*|paee\..*")
        warnings.filterwarnings("ignore", message=".*Converting a tensor to a Python.*")
        # the TorchScript exporter is chosen on purpose for the encoders (DEFAULT_EXPORTERS says why)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        yield


def unshare_side_projections(proto: "onnx.ModelProto", hidden_size: int) -> int:
    """Give every extra head-reshaping consumer of a shared Linear (MatMul + bias Add) its own copy.

    The tracer's CSE merges ``EncoderGraph._query_key``'s key projection with the last layer's own. ORT's
    attention fusion removes the layer's projection regardless of other consumers; the copy keeps the
    side path intact. The copy reads the layer input through a Reshape to [-1, H] because the fusion
    also requires that input to feed exactly three MatMuls (Q, K, V). Returns the number of copies made.
    """
    from onnx import helper, numpy_helper

    graph = proto.graph
    initializers = {init.name for init in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    flat_shape = f"paee_unshare_flat_shape_{hidden_size}"
    copies = 0
    added: list = []
    for node in list(graph.node):
        if node.op_type != "Add":
            continue
        matmul = next(
            (producer[i] for i in node.input if i in producer and producer[i].op_type == "MatMul"), None
        )
        if matmul is None or not any(i in initializers for i in matmul.input):
            continue
        reshapes = [c for c in consumers[node.output[0]] if c.op_type == "Reshape"]
        for k, user in enumerate(reshapes[1:], start=1):
            suffix = f"_paee_unshared{k}"
            activation = next(i for i in matmul.input if i not in initializers)
            flat = helper.make_node(
                "Reshape", [activation, flat_shape], [activation + suffix + "_flat"], name=matmul.name + suffix + "_flat"
            )
            matmul_copy = copy.deepcopy(matmul)
            matmul_copy.name += suffix
            matmul_copy.input[list(matmul_copy.input).index(activation)] = flat.output[0]
            matmul_copy.output[0] += suffix
            add_copy = copy.deepcopy(node)
            add_copy.name += suffix
            add_copy.input[list(add_copy.input).index(matmul.output[0])] = matmul_copy.output[0]
            add_copy.output[0] += suffix
            for j, name in enumerate(user.input):
                if name == node.output[0]:
                    user.input[j] = add_copy.output[0]  # the consumer reshapes [B*T, H] to [B, T, K, d] as before
            added += [flat, matmul_copy, add_copy]
            copies += 1
    if copies:
        graph.initializer.append(numpy_helper.from_array(np.array([-1, hidden_size], np.int64), flat_shape))
        # keep the node list topologically sorted: insert each copy right before its consumer
        order = list(graph.node) + added
        graph.ClearField("node")
        graph.node.extend(_topological(order, {i.name for i in graph.input} | initializers | {flat_shape}))
    return copies


def _topological(nodes: list, available: set[str]) -> list:
    """Kahn's order of `nodes` given the names available up front (inputs, initializers)."""
    ready = set(available) | {""}
    pending = list(nodes)
    ordered: list = []
    while pending:
        rest = []
        for node in pending:
            if all(i in ready for i in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            names = [n.name for n in rest[:5]]
            raise ExportError(f"graph has a cycle or a dangling input after post-processing (nodes {names})")
        pending = rest
    return ordered


# -- structural checks ----------------------------------------------------------------------------------


def check_graph(proto: "onnx.ModelProto", spec: GraphSpec | None = None) -> list[str]:
    """Every structural problem of a graph (empty list = fine).

    onnx.checker; shape inference gives every value a rank; no NonZero; every TopK's k is a constant
    initializer; no ScatterND with a reduction (TensorRT has none); graph I/O names match the spec.
    """
    onnx = _require_onnx()
    problems: list[str] = []
    try:
        onnx.checker.check_model(proto, full_check=False)
    except onnx.checker.ValidationError as err:
        problems.append(f"onnx.checker: {err}")
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True, data_prop=True)
    except Exception as err:  # InferenceError and friends
        problems.append(f"shape inference failed: {err}")
        inferred = proto
    graph = inferred.graph
    typed = {v.name: v for v in list(graph.value_info) + list(graph.output) + list(graph.input)}
    initializers = {init.name for init in graph.initializer}
    constants = {out for node in graph.node if node.op_type == "Constant" for out in node.output}
    unshaped = []
    for node in graph.node:
        for out in node.output:
            value = typed.get(out)
            if out and (value is None or not value.type.tensor_type.HasField("shape")):
                unshaped.append(out)
    if unshaped:
        problems.append(f"shape inference left {len(unshaped)} value(s) without a shape, e.g. {unshaped[:5]}")
    for node in graph.node:
        if node.op_type in FORBIDDEN_OPS:
            problems.append(f"{node.op_type} node {node.name!r} (data-dependent shape)")
        if node.op_type == "TopK" and node.input[1] not in initializers | constants:
            problems.append(f"TopK {node.name!r}: k ({node.input[1]}) is not a constant initializer")
        if node.op_type == "ScatterND":
            reduction = next((a.s.decode() for a in node.attribute if a.name == "reduction"), "none")
            if reduction != "none":
                problems.append(f"ScatterND {node.name!r} with reduction={reduction!r} (TensorRT has none)")
    if spec is not None:
        inputs = [i.name for i in proto.graph.input if i.name not in initializers]
        outputs = [o.name for o in proto.graph.output]
        if inputs != spec.input_names:
            problems.append(f"inputs {inputs} differ from the spec's {spec.input_names}")
        if outputs != spec.output_names:
            problems.append(f"outputs {outputs} differ from the spec's {spec.output_names}")
    return problems


def topk_constants_as_initializers(proto: "onnx.ModelProto") -> int:
    """Move Constant nodes feeding a TopK's k into initializers (TensorRT wants k as an initializer)."""
    from onnx import numpy_helper

    graph = proto.graph
    topk_inputs = {node.input[1] for node in graph.node if node.op_type == "TopK"}
    moved = 0
    for node in list(graph.node):
        if node.op_type == "Constant" and node.output[0] in topk_inputs:
            value = next(a.t for a in node.attribute if a.name == "value")
            graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(value), node.output[0]))
            graph.node.remove(node)
            moved += 1
    return moved


def stamp_metadata(proto: "onnx.ModelProto", spec: GraphSpec, exporter: str) -> None:
    """Record the graph's contract (name, length range, dims) and exporter in the file's metadata_props."""
    info = {"graph": spec.name, "length_range": list(spec.length_range), "dims": spec.dims.to_json(),
            "exporter": exporter, "opset": EXPORTER_OPSETS[exporter]}
    for prop in list(proto.metadata_props):
        if prop.key == METADATA_KEY:
            proto.metadata_props.remove(prop)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(info, sort_keys=True)


# -- saving ---------------------------------------------------------------------------------------------


def save_model(proto: "onnx.ModelProto", path: Path) -> bool:
    """Write a graph; with external data (``<name>.data`` beside it) above the threshold. True if external."""
    onnx = _require_onnx()
    path.parent.mkdir(parents=True, exist_ok=True)
    external = proto.ByteSize() > EXTERNAL_DATA_THRESHOLD_BYTES
    if external:
        onnx.save_model(
            proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
            location=path.name + ".data", size_threshold=1024,
        )  # fmt: skip
    else:
        onnx.save_model(proto, str(path))
    return external


# -- validation against PyTorch --------------------------------------------------------------------------


def torch_outputs(model: PaeeModel, spec: GraphSpec, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PyTorch outputs of one graph for numpy feeds (eval, no_grad, the model's own attention kernel)."""
    was_training = model.training
    model.eval()
    module = wrap_graph(model, spec)  # after eval(): the wrapper copies the module's mode
    try:
        with torch.no_grad():
            outputs = module(*_torch_feeds(feeds, spec))
    finally:
        model.train(was_training)
    return {name: out.float().numpy() for name, out in zip(spec.output_names, outputs)}


def validation_feeds(spec: GraphSpec, vocab_size: int) -> dict[str, dict[str, np.ndarray]]:
    """Cases at shapes different from the export example: another batch, another length, long documents."""
    low, high = spec.length_range
    if spec.name == ENCODER:
        cases = {"batch3_length40": (3, 40), "batch1_length24": (1, 24)}
    elif spec.name == ENCODER_LONG:
        # batch 3 at 2W - 24: its third document (a quarter of L) is a short document inside a long batch
        cases = {"batch3_long": (3, high - 24), "batch1_long": (1, low + 31)}
    else:
        cases = {"batch3_length40": (3, 40), "batch1_long": (1, min(high, 2 * 8 * 41))}
    return {
        name: example_inputs(spec, batch, length, vocab_size=vocab_size, seed=17 + i,
                             real_entities=VALIDATION_ENTITIES[name](spec.dims.max_entities)[:batch])
        for i, (name, (batch, length)) in enumerate(cases.items())
    }


def compare_outputs(
    spec: GraphSpec, case: str, expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray], atol: float
) -> tuple[dict[str, float], list[OutputMismatch]]:
    """Max abs diff of every output and the list of those outside ``atol`` (shape mismatches included)."""
    diffs: dict[str, float] = {}
    bad: list[OutputMismatch] = []
    for name in spec.output_names:
        want, have = expected[name], got[name]
        if want.shape != have.shape:
            bad.append(OutputMismatch(case, name, float("inf"), atol, f"shape {have.shape}, PyTorch {want.shape}"))
            continue
        diff = float(np.max(np.abs(want.astype(np.float64) - have.astype(np.float64)))) if want.size else 0.0
        diffs[name] = diff
        if not diff <= atol:  # also catches NaN
            bad.append(OutputMismatch(case, name, diff, atol))
    return diffs, bad


def validate_graph(
    model: PaeeModel,
    path: Path,
    spec: GraphSpec,
    cases: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    atol: float = DEFAULT_ATOL,
    vocab_size: int | None = None,
) -> list[ValidationCase]:
    """Run ONNX Runtime (fp32, CPU) and PyTorch on every case; raise `ExportValidationError` listing all
    failing outputs, else return the measured differences."""
    vocab = vocab_size or int(model.encoder.backbone.config.vocab_size)
    cases = cases if cases is not None else validation_feeds(spec, vocab)
    session = create_session(path, "fp32")
    results: list[ValidationCase] = []
    failures: list[OutputMismatch] = []
    for name, feeds in cases.items():
        expected = torch_outputs(model, spec, feeds)
        got = session.run(feeds)
        diffs, bad = compare_outputs(spec, name, expected, got, atol)
        results.append(ValidationCase(name, {k: tuple(v.shape) for k, v in feeds.items()}, diffs))
        failures += bad
    if failures:
        raise ExportValidationError(spec.name, failures)
    return results


# -- the whole export -------------------------------------------------------------------------------------


def example_for(spec: GraphSpec, vocab_size: int) -> dict[str, np.ndarray]:
    """The trace's example feeds: batch 2, length 64 (short graphs) or window + 96 (the long encoder)."""
    if spec.name == ENCODER_LONG:
        length = min(spec.dims.window + EXAMPLE_LONG_EXTRA, spec.dims.max_length)
    else:
        length = min(EXAMPLE_SHORT_LENGTH, spec.dims.window)
    N = spec.dims.max_entities
    return example_inputs(spec, EXAMPLE_BATCH, length, vocab_size=vocab_size, seed=3,
                          real_entities=[max(2, N // 2), max(2, N // 3)])  # a pair count inside the range


def export_graph(
    model: PaeeModel,
    spec: GraphSpec,
    path: str | Path,
    exporter: str | None = None,
    validate: bool = True,
    atol: float = DEFAULT_ATOL,
) -> ExportedGraph:
    """Export, check and (optionally) validate one graph; raises `GraphCheckError` / `ExportValidationError`.

    ``exporter`` defaults to the graph's `DEFAULT_EXPORTERS` entry. The export plan asks for
    ``"dynamo"`` for the ``encoder`` OpenVINO reads: OpenVINO 2026.4 computes a wrong ``entity_emb``
    shape ([B, N, 1]) from the TorchScript trace's Expand/GatherElements pattern, and the dynamo export
    of the same module runs correctly (the TorchScript one stays the ORT/TensorRT graph because only it
    gets fused attention).
    """
    path = Path(path)
    exporter = exporter or DEFAULT_EXPORTERS[spec.name]
    vocab = int(model.encoder.backbone.config.vocab_size)
    proto = trace_to_onnx(model, spec, example_for(spec, vocab), exporter)
    topk_constants_as_initializers(proto)
    stamp_metadata(proto, spec, exporter)
    problems = check_graph(proto, spec)
    if problems:
        raise GraphCheckError(spec.name, problems)
    external = save_model(proto, path)
    exported = ExportedGraph(spec=spec, path=path, exporter=exporter, external_data=external)
    if validate:
        exported.validation = validate_graph(model, path, spec, atol=atol)
    logger.info("exported %s (%s) to %s%s", spec.name, exporter, path, " (external data)" if external else "")
    return exported


def export_graphs(
    model: PaeeModel,
    out_dir: str | Path,
    graphs: Sequence[str] = GRAPH_NAMES,
    validate: bool = True,
    atol: float = DEFAULT_ATOL,
) -> dict[str, ExportedGraph]:
    """Export ``encoder``, ``encoder_long`` and ``head`` (or the named subset) to ``out_dir/<graph>.onnx``
    with their default exporters. Validation errors of all graphs are collected before raising, so one
    run shows every problem."""
    unknown = [g for g in graphs if g not in GRAPH_NAMES]
    if unknown:
        raise GraphSpecError(f"unknown graphs {unknown}; graphs are {GRAPH_NAMES}")
    specs = graph_specs(model.config.dims)
    out = Path(out_dir)
    exported: dict[str, ExportedGraph] = {}
    failures: list[OutputMismatch] = []
    for name in graphs:
        try:
            exported[name] = export_graph(model, specs[name], out / f"{name}.onnx", validate=validate, atol=atol)
        except ExportValidationError as err:
            failures += err.mismatches
    if failures:
        raise ExportValidationError(",".join(graphs), failures)
    return exported


def read_graph_metadata(path: str | Path) -> dict:
    """The contract `stamp_metadata` recorded in a graph (``{}`` for a file without it); weights not loaded."""
    proto = _require_onnx().load(str(path), load_external_data=False)
    for prop in proto.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    return {}


def example_inputs(
    spec: GraphSpec, batch: int, length: int, vocab_size: int = 100, seed: int = 0, real_entities: Sequence[int] | None = None
) -> dict[str, np.ndarray]:
    """Random but valid feeds of a graph: the export example and the validation shapes.

    Document b has real length ``length - 8 * b`` (at least a quarter of L; the longest fills L) and
    ``real_entities[b]`` entities whose mentions point inside it; the rest is padding, as the featurizer
    writes it, and so are the head's pairs (`paee.data.featurizer.pair_slots`). Encoder outputs for the
    head are random, normalised like attention rows.
    """
    rng = np.random.default_rng(seed)
    dims = spec.dims
    N, M, S, H, K = dims.max_entities, dims.max_mentions, dims.max_sentences, dims.hidden_size, dims.num_heads
    lengths = [max(length - 8 * b, max(length // 4, 4)) for b in range(batch)]
    entities = list(real_entities) if real_entities is not None else [max(2, N - 3 * b) for b in range(batch)]
    if len(entities) != batch:
        raise GraphSpecError(f"real_entities has {len(entities)} values for a batch of {batch}")
    attention_mask = np.zeros((batch, length), np.int64)
    for b, l in enumerate(lengths):
        attention_mask[b, :l] = 1
    feeds: dict[str, np.ndarray] = {}
    if spec.name in ENCODER_GRAPHS:
        feeds["input_ids"] = rng.integers(5, vocab_size, (batch, length)).astype(np.int64) * attention_mask
        feeds["attention_mask"] = attention_mask
        mention_pos = np.zeros((batch, N, M), np.int64)
        mention_mask = np.zeros((batch, N, M), np.float32)
        for b, (l, n) in enumerate(zip(lengths, entities)):
            for e in range(n):
                count = 1 + (e % M)
                mention_pos[b, e, :count] = rng.integers(1, l - 1, count)
                mention_mask[b, e, :count] = 1.0
        feeds["mention_pos"] = mention_pos
        feeds["mention_mask"] = mention_mask
        return feeds
    attn = rng.random((batch, N, K, length)).astype(np.float32) * attention_mask[:, None, None, :].astype(np.float32)
    feeds["token_emb"] = rng.standard_normal((batch, length, H)).astype(np.float32)
    feeds["entity_emb"] = rng.standard_normal((batch, N, H)).astype(np.float32)
    feeds["entity_attn"] = (attn / attn.sum(-1, keepdims=True)).astype(np.float32)
    entity_mask = (np.arange(N)[None, :] < np.asarray(entities)[:, None]).astype(np.float32)
    feeds["entity_type"] = (rng.integers(1, 3, (batch, N)) * entity_mask).astype(np.int64)
    feeds["entity_mask"] = entity_mask
    sent_span = np.zeros((batch, S, 2), np.int64)
    sent_mask = np.zeros((batch, S), np.float32)
    for b, l in enumerate(lengths):
        bounds = np.linspace(1, l - 1, num=min(S, 4) + 1).astype(np.int64)
        sent_span[b, : len(bounds) - 1, 0] = bounds[:-1]
        sent_span[b, : len(bounds) - 1, 1] = bounds[1:]
        sent_mask[b, : len(bounds) - 1] = 1.0
    feeds["sent_span"] = sent_span
    feeds["sent_mask"] = sent_mask
    same = rng.integers(0, 2, (batch, N, N)).astype(np.int64)
    feeds["same_sent"] = same * (entity_mask[:, :, None] * entity_mask[:, None, :]).astype(np.int64)
    feeds["pair_index"], feeds["pair_mask"] = pair_slots(entities)
    return feeds


__all__ = [
    "DEFAULT_ATOL", "DEFAULT_EXPORTERS", "EXPORTER_OPSETS", "EXTERNAL_DATA_THRESHOLD_BYTES", "METADATA_KEY",
    "ExportError", "ExportValidationError", "ExportedGraph", "GraphCheckError", "OutputMismatch", "ValidationCase",
    "check_graph", "compare_outputs", "eager_attention", "example_inputs", "export_graph", "export_graphs",
    "read_graph_metadata", "save_model", "torch_outputs", "trace_to_onnx", "unshare_side_projections",
    "validate_graph", "validation_feeds",
]  # fmt: skip
