"""Optimised and lower-precision variants of the exported graphs, and their statistics.

* `optimize_encoder`: ONNX Runtime's transformer optimizer (``model_type="bert"``): fused ``Attention``
  in every layer, ``SkipLayerNormalization``, ``BiasGelu``, ``EmbedLayerNormalization``. Raises
  `OptimizationError` when fewer Attention nodes than layers are fused (the graph would still run, but
  slower, and silently so). The result contains com.microsoft contrib ops: ONNX Runtime only.
* `convert_fp16`: fp16 weights and activations with LayerNorm / Softmax (and the few reductions whose
  range fp16 cannot hold) kept in fp32, inputs and outputs kept fp32 (onnxconverter-common's method, via
  ``onnxruntime.transformers.float16``). For TensorRT (11 builds it strongly typed) convert the plain
  export, not the ORT-optimised graph: TensorRT does not parse contrib ops.
* `quantize_int8`: ONNX Runtime dynamic quantisation (int8 MatMul weights, activations quantised per
  call), the CPU's VNNI path.
* `quantize_int8_static`: QDQ int8 with activation ranges calibrated on documents, for OpenVINO (what
  ``--precision int8`` ships when OpenVINO is installed).
* bf16 needs no file: OpenVINO compiles the fp32 export with INFERENCE_PRECISION_HINT=bf16
  (`paee_export.runtimes.create_session(path, "bf16")`).
* `graph_stats`: node count, fused attention count, op histogram, file size.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
import copy
import json
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from paee.errors import PaeeFailure
from paee.runtime.contract import ENCODER_LONG, LENGTH
from paee.runtime.sessions import ORT_HINT, import_runtime, onnx_io_names
from paee_export.onnx_export import EXTERNAL_DATA_THRESHOLD_BYTES, METADATA_KEY, save_model

logger = logging.getLogger(__name__)

#: Op types that stay fp32 in the fp16 graph: fp16 LayerNorm overflows (TensorRT#2564), softmax and
#: logsumexp over masked scores use fill values far outside fp16's range (-65504), Exp of them likewise.
FP16_KEEP_FP32_OPS = (
    "LayerNormalization", "SkipLayerNormalization", "EmbedLayerNormalization", "Softmax",
    "ReduceLogSumExp", "Exp",
)  # fmt: skip
#: Fused attention op types counted by `graph_stats`.
ATTENTION_OPS = ("Attention", "MultiHeadAttention", "PackedAttention", "QAttention")
#: What dynamic quantisation quantises: MatMul weights (the fused Attention's QKV weights too).
INT8_OP_TYPES = ("MatMul", "Attention")

#: What static quantisation quantises (QDQ around every MatMul: projections, FFN, attention products).
STATIC_INT8_OP_TYPES = ("MatMul",)

#: Version of the com.microsoft contrib-op domain (the only one that exists).
CONTRIB_OPSET_VERSION = 1



class OptimizationError(PaeeFailure):
    """An optimisation step failed or did not do what it must (e.g. attention left unfused)."""


@dataclass
class GraphStats:
    """Size and composition of one ONNX file."""

    path: str
    nodes: int
    fused_attention: int
    file_bytes: int  # the .onnx file plus its external data, if any
    op_histogram: dict[str, int] = field(default_factory=dict)
    initializer_dtypes: dict[str, int] = field(default_factory=dict)  # element type name -> count

    def summary(self) -> str:
        top = ", ".join(f"{op} {n}" for op, n in sorted(self.op_histogram.items(), key=lambda kv: -kv[1])[:8])
        return (
            f"{Path(self.path).name}: {self.nodes} nodes, {self.fused_attention} fused attention, "
            f"{self.file_bytes / 1e6:.1f} MB; {top}"
        )


def _onnx():
    return import_runtime("onnx", ORT_HINT)


def graph_stats(path: str | Path) -> GraphStats:
    """Statistics of one ONNX file (weights are not loaded)."""
    onnx = _onnx()
    path = Path(path)
    proto = onnx.load(str(path), load_external_data=False)
    ops = Counter(node.op_type for node in proto.graph.node)
    dtypes = Counter(onnx.TensorProto.DataType.Name(t.data_type) for t in proto.graph.initializer)
    size = path.stat().st_size
    external = path.parent / (path.name + ".data")
    if external.exists():
        size += external.stat().st_size
    return GraphStats(
        path=str(path),
        nodes=len(proto.graph.node),
        fused_attention=sum(ops.get(op, 0) for op in ATTENTION_OPS),
        file_bytes=size,
        op_histogram=dict(ops),
        initializer_dtypes=dict(dtypes),
    )


def optimize_encoder(
    in_path: str | Path,
    out_path: str | Path,
    num_heads: int,
    hidden_size: int,
    expected_attention: int | None = None,
    use_gpu: bool = False,
    static_dims: Mapping[str, int] | None = None,
) -> GraphStats:
    """ORT transformer optimizer on an encoder graph; checks ``expected_attention`` fused Attention nodes.

    ``opt_level=0``: python fusions only, so that the file stays portable across execution providers
    (ORT applies its own provider-specific graph optimisations when the session loads it).

    ``static_dims`` (default: ``{"length": max_length}`` for ``encoder_long``, read from the file's
    metadata) fixes symbolic input dims *during* the optimisation only. Why: the SkipLayerNormalization
    fusion (which the Attention fusion anchors on) needs ORT's symbolic shape inference, and that fails
    on the long graph's window split (it infers ``input_ids[:, :511]`` of a symbolic length as width 1
    and then asserts in a Concat). With a concrete length it succeeds; the symbolic dims are restored
    afterwards and the intermediate shapes dropped, so the file still serves every length of its bucket
    (the tests validate it at other lengths).
    """
    onnx = _onnx()
    FusionOptions = import_runtime("onnxruntime.transformers.fusion_options", ORT_HINT).FusionOptions
    optimize_model = import_runtime("onnxruntime.transformers.optimizer", ORT_HINT).optimize_model
    proto = onnx.load(str(in_path))
    if static_dims is None:
        static_dims = _default_static_dims(proto)
    original_outputs = [copy.deepcopy(value) for value in proto.graph.output]
    symbolic = _fix_dims(proto, static_dims)
    options = FusionOptions("bert")
    try:
        optimized = optimize_model(
            proto, model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
            opt_level=0, optimization_options=options, use_gpu=use_gpu,
        )  # fmt: skip
    except Exception as err:  # the optimizer raises RuntimeError/AssertionError on patterns it breaks
        raise OptimizationError(f"ORT transformer optimizer failed on {in_path}: {err}") from err
    result = optimized.model
    _restore_dims(result, symbolic, original_outputs)
    _declare_contrib_domain(result)
    save_model(result, Path(out_path))
    stats = graph_stats(out_path)
    if expected_attention is not None and stats.fused_attention != expected_attention:
        raise OptimizationError(
            f"{in_path}: {stats.fused_attention} fused Attention node(s), expected {expected_attention} "
            f"(one per encoder layer); fused ops: {optimized.get_fused_operator_statistics()}"
        )
    logger.info("optimised %s: %s", in_path, stats.summary())
    return stats


def _default_static_dims(proto) -> dict[str, int]:
    """``{"length": max_length}`` for the long encoder (from the exporter's metadata), else nothing."""
    for prop in proto.metadata_props:
        if prop.key == METADATA_KEY:
            info = json.loads(prop.value)
            if info.get("graph") == ENCODER_LONG:
                return {LENGTH: int(info["length_range"][1])}
    return {}


def _fix_dims(proto, static_dims: Mapping[str, int]) -> dict[tuple[str, int], str]:
    """Replace dim_params named in ``static_dims`` on graph inputs by values; returns what to restore."""
    replaced: dict[tuple[str, int], str] = {}
    for value in proto.graph.input:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.dim_param in static_dims:
                replaced[(value.name, axis)] = dim.dim_param
                size = int(static_dims[dim.dim_param])
                dim.ClearField("dim_param")
                dim.dim_value = size
    return replaced


def _restore_dims(proto, replaced: Mapping[tuple[str, int], str], original_outputs: Sequence) -> None:
    """Undo `_fix_dims` on the inputs, restore the exporter's output shapes, drop the inferred shapes."""
    if not replaced:
        return
    for value in proto.graph.input:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if (value.name, axis) in replaced:
                dim.ClearField("dim_value")
                dim.dim_param = replaced[(value.name, axis)]
    by_name = {value.name: value for value in original_outputs}
    for value in proto.graph.output:
        if value.name in by_name:
            value.type.CopyFrom(by_name[value.name].type)
    del proto.graph.value_info[:]  # shapes inferred at the fixed size would be wrong for other sizes


def convert_fp16(
    in_path: str | Path, out_path: str | Path, keep_fp32_ops: Sequence[str] = FP16_KEEP_FP32_OPS, check_load: bool = True
) -> GraphStats:
    """fp16 copy of a graph with ``keep_fp32_ops`` in fp32 and fp32 inputs/outputs; checks it loads in ORT."""
    onnx = _onnx()
    convert_float_to_float16 = import_runtime("onnxruntime.transformers.float16", ORT_HINT).convert_float_to_float16
    OnnxModel = import_runtime("onnxruntime.transformers.onnx_model", ORT_HINT).OnnxModel
    proto = onnx.load(str(in_path))
    converted = convert_float_to_float16(proto, keep_io_types=True, op_block_list=list(keep_fp32_ops))
    # the converter appends its Cast nodes at the end of the node list; onnx.checker wants topological order
    OnnxModel(converted).topological_sort()
    save_model(converted, Path(out_path))
    if check_load:
        _check_loads(out_path)
    return graph_stats(out_path)


def quantize_int8(in_path: str | Path, out_path: str | Path, op_types: Sequence[str] = INT8_OP_TYPES, per_channel: bool = False) -> GraphStats:
    """ONNX Runtime dynamic quantisation: int8 weights of ``op_types``, activations quantised at run time."""
    onnx = _onnx()
    quantization = import_runtime("onnxruntime.quantization", ORT_HINT)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    size = Path(in_path).stat().st_size
    try:
        quantization.quantize_dynamic(
            str(in_path), str(out_path), op_types_to_quantize=list(op_types), per_channel=per_channel,
            weight_type=quantization.QuantType.QInt8, use_external_data_format=size > EXTERNAL_DATA_THRESHOLD_BYTES,
            # ONNX shape inference cannot type the outputs of ORT contrib ops (fused graphs): say fp32
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )  # fmt: skip
    except Exception as err:
        raise OptimizationError(f"dynamic quantisation of {in_path} failed: {err}") from err
    _check_loads(out_path)
    return graph_stats(out_path)


def quantize_int8_static(
    in_path: str | Path,
    out_path: str | Path,
    calibration: Iterable[Mapping[str, np.ndarray]],
    op_types: Sequence[str] = STATIC_INT8_OP_TYPES,
) -> GraphStats:
    """Static int8 in QDQ form: MatMul weights int8 per output channel, activations int8 with symmetric
    ranges calibrated (min/max) on ``calibration`` (feeds of the graph, e.g. collated documents).

    Symmetric activations (zero point 0): OpenVINO then runs plain s8 x s8 GEMMs without the zero-point
    correction; measured 15% faster on the BERT-base encoder than asymmetric uint8 activations.

    Why static: dynamic quantisation re-quantises every activation at run time and reaches a fraction of
    the CPU's int8 peak; with fixed ranges OpenVINO runs the QDQ graph as int8 GEMMs end to end
    (`paee_export.runtimes.OpenVinoSession`). Read the plain (dynamo) export, not the ORT-fused graph:
    OpenVINO does not read ORT contrib ops. ONNX Runtime runs the file too, but slower than its dynamic
    path, so the int8 export pairs this file with OpenVINO.
    """
    onnx = _onnx()
    q = import_runtime("onnxruntime.quantization", ORT_HINT)
    CalibrationDataReader, QuantType = q.CalibrationDataReader, q.QuantType

    class _Feeds(CalibrationDataReader):
        def __init__(self, feeds: Iterable[Mapping[str, np.ndarray]], names: Sequence[str]) -> None:
            self._feeds = iter(feeds)
            self._names = names

        def get_next(self) -> dict[str, np.ndarray] | None:
            feed = next(self._feeds, None)
            return None if feed is None else {name: np.asarray(feed[name]) for name in self._names}

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    size = Path(in_path).stat().st_size
    proto = onnx.load(str(in_path), load_external_data=False)
    constants = {init.name for init in proto.graph.initializer}
    constants |= {out for node in proto.graph.node if node.op_type == "Constant" for out in node.output}
    # products of two activations (attention scores, context, the entity attention rows) stay in float:
    # quantising them costs accuracy and buys little time (a few percent of the encoder's FLOPs)
    activation_products = [
        node.name for node in proto.graph.node
        if node.op_type in op_types and not any(name in constants for name in node.input)
    ]  # fmt: skip
    try:
        q.quantize_static(
            str(in_path), str(out_path), _Feeds(calibration, onnx_io_names(in_path)),
            quant_format=q.QuantFormat.QDQ, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            per_channel=True, op_types_to_quantize=list(op_types), calibrate_method=q.CalibrationMethod.MinMax,
            use_external_data_format=size > EXTERNAL_DATA_THRESHOLD_BYTES, nodes_to_exclude=activation_products,
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": True},
        )  # fmt: skip
    except Exception as err:
        raise OptimizationError(f"static quantisation of {in_path} failed: {err}") from err
    _check_loads(out_path)
    return graph_stats(out_path)


def _declare_contrib_domain(proto) -> None:
    """Add the com.microsoft opset import the fused contrib ops need (shape inference and the quantiser
    reject the graph without it; ORT's optimizer adds it only in its own save path)."""
    domains = {node.domain for node in proto.graph.node if node.domain}
    declared = {imp.domain for imp in proto.opset_import}
    for domain in sorted(domains - declared):
        entry = proto.opset_import.add()
        entry.domain, entry.version = domain, CONTRIB_OPSET_VERSION


def _check_loads(path: str | Path) -> None:
    """The file passes onnx.checker and ONNX Runtime (CPU) builds a session from it."""
    onnx = _onnx()
    ort = import_runtime("onnxruntime", ORT_HINT)
    try:
        onnx.checker.check_model(str(path))
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as err:
        raise OptimizationError(f"{path} does not load: {err}") from err


def fp32_islands(path: str | Path, ops: Sequence[str] = FP16_KEEP_FP32_OPS) -> dict[str, int]:
    """How many nodes of each of ``ops`` compute in fp32 in an fp16 graph (their inputs are Cast to fp32).

    A node counts when every float input comes from a Cast to float32 or from an fp32 initializer.
    Used by the tests to show that LayerNorm and Softmax kept fp32.
    """
    onnx = _onnx()
    proto = onnx.load(str(path))
    inferred = onnx.shape_inference.infer_shapes(proto)
    elem = {v.name: v.type.tensor_type.elem_type for v in list(inferred.graph.value_info) + list(inferred.graph.input)}
    elem.update({i.name: i.data_type for i in inferred.graph.initializer})
    result: dict[str, int] = {}
    for node in inferred.graph.node:
        if node.op_type in ops:
            float_inputs = [elem.get(i) for i in node.input if i]
            fp32 = all(t != onnx.TensorProto.FLOAT16 for t in float_inputs if t is not None)
            result[node.op_type] = result.get(node.op_type, 0) + int(fp32)
            result.setdefault(node.op_type + "_total", 0)
            result[node.op_type + "_total"] += 1
    return result


__all__ = [
    "FP16_KEEP_FP32_OPS", "GraphStats", "OptimizationError", "graph_stats", "optimize_encoder", "convert_fp16",
    "quantize_int8", "fp32_islands",
]  # fmt: skip
