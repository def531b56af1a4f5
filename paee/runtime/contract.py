"""The tensor contract between the featurizer, the exported graphs and the Triton models, written once.

`TENSORS` names every tensor that crosses a boundary (featurizer -> encoder -> head -> decoder) with its
dtype and axes; the groups below say which part reads or writes which. Everything else is derived from
them: the graphs' `GraphSpec`s (exporter names, dynamic axes, feed checks, TensorRT profiles), the keys
the PyTorch model reads, the Triton ``config.pbtxt`` inputs and outputs and the ensemble's steps
(`paee_export.repository`), and the preprocess model's outputs. A change to the contract is a change
here.

Axes: ``batch``, ``length`` (padded wordpieces) and ``pairs`` (a document's ordered entity pairs, padded
to the batch's most) are dynamic; single letters are the fixed sizes of one model (`ModelDims`): N entity
slots, M mentions per entity, S sentences, H hidden size, K attention heads of the encoder's last layer,
R relation classes (0 = threshold / NA). Integers are literal sizes.

The head builds, fills and runs TNet on the fixed N x N map, then works on the document's real pairs
only (``pair_index``): its cost follows the document, and N sets the size of the map alone.

Graphs (DESIGN.md 4): ``encoder`` serves padded lengths up to one window, ``encoder_long`` longer ones
(k overlapping windows, a dynamic count; `paee.model.long_input`), ``head`` every length. Numpy only: Triton's python models and the
torch-free pipeline read this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import numpy as np

from paee.data.featurizer import DEFAULT_MAX_LENGTH
from paee.errors import PaeeUserError

#: Dynamic axes.
BATCH = "batch"
LENGTH = "length"
PAIRS = "pairs"
DYNAMIC_AXES = (BATCH, LENGTH, PAIRS)

#: Graph names (also the file stems of the exported graphs).
ENCODER = "encoder"
ENCODER_LONG = "encoder_long"
HEAD = "head"
ENCODER_GRAPHS = (ENCODER, ENCODER_LONG)
GRAPH_NAMES = (ENCODER, ENCODER_LONG, HEAD)

#: The BERT-family window: the longest input of one encoder pass; ``encoder_long`` reads k of them.
DEFAULT_WINDOW = 512


class GraphSpecError(PaeeUserError):
    """Feeds or dimensions that do not match a graph's contract."""


class TensorDecl(NamedTuple):
    """One tensor of the contract: dtype name, axes (dynamic names, size letters, literal ints), meaning."""

    dtype: str
    axes: tuple[str | int, ...]
    meaning: str


#: The served ensemble's request and response: one UTF-8 JSON document in, its triples as JSON out.
REQUEST = "DOCUMENT"
RESPONSE = "TRIPLES"

#: Every tensor of the contract; the README's "Tensor contract" table is `markdown_table()` of it.
TENSORS: dict[str, TensorDecl] = {
    REQUEST: TensorDecl("bytes", (BATCH, 1), "served request: one document as UTF-8 JSON (DocRED or text form, or "
                                             "plain text {title, text} where exported with a detector)"),
    RESPONSE: TensorDecl("bytes", (BATCH, 1), "served response: the document's triples as UTF-8 JSON"),
    # featurizer (`paee.data.featurizer.collate`, the preprocess model) -> graphs
    "input_ids": TensorDecl("int64", (BATCH, LENGTH), "wordpieces with entity markers, padded with the pad id"),
    "attention_mask": TensorDecl("int64", (BATCH, LENGTH), "1 on real tokens"),
    "mention_pos": TensorDecl("int64", (BATCH, "N", "M"), "token index of each mention's start marker (0 where padded)"),
    "mention_mask": TensorDecl("float32", (BATCH, "N", "M"), "1 on real mentions"),
    "entity_type": TensorDecl("int64", (BATCH, "N"), "1..T entity type id, 0 on padding"),
    "entity_mask": TensorDecl("float32", (BATCH, "N"), "1 on real entities"),
    "sent_span": TensorDecl("int64", (BATCH, "S", 2), "token span [start, end) of each sentence"),
    "sent_mask": TensorDecl("float32", (BATCH, "S"), "1 on real sentences"),
    "same_sent": TensorDecl("int64", (BATCH, "N", "N"), "1 where some mention of s and some mention of o share a sentence"),
    "pair_index": TensorDecl("int64", (BATCH, PAIRS, 2), "the n(n-1) ordered pairs (s, o), s != o, row-major; (0, 0) padded"),
    "pair_mask": TensorDecl("float32", (BATCH, PAIRS), "1 on the document's real pairs (they come first)"),
    # a per-document scalar travels as [B, 1]: a batched Triton tensor needs an axis per row
    "title": TensorDecl("bytes", (BATCH, 1), "the document's title, UTF-8"),
    "warnings": TensorDecl("bytes", (BATCH, 1), "JSON list of what the caller must be told (mentions lost to truncation)"),
    "detected": TensorDecl("bytes", (BATCH, 1), "plain-text request: the entities found and the detection report, "
                                                "UTF-8 JSON (empty when the request carried its entities)"),
    # encoder -> head
    "token_emb": TensorDecl("float32", (BATCH, LENGTH, "H"), "last hidden state of every token"),
    "entity_emb": TensorDecl("float32", (BATCH, "N", "H"), "logsumexp over the entity's mention embeddings"),
    "entity_attn": TensorDecl("float32", (BATCH, "N", "K", LENGTH), "mean attention row of the entity's mention markers"),
    # head -> decoder
    "logits": TensorDecl("float32", (BATCH, PAIRS, "R"), "relation logits of each pair, class 0 = threshold"),
    "pair_prob": TensorDecl("float32", (BATCH, PAIRS), "Potential Pair Prediction probability (1 without PPP)"),
    "evidence_dist": TensorDecl("float32", (BATCH, PAIRS, "S"),
                                "each sentence's share of the pair's attention a(s,o) (sums to 1 over real sentences)"),
    # training targets (`collate` with num_relations; read by the losses only)
    "labels": TensorDecl("float32", (BATCH, PAIRS, "R"), "multi-hot relations of each pair; class 0 set on pairs without one"),
    "has_relation": TensorDecl("float32", (BATCH, PAIRS), "target of Potential Pair Prediction"),
    "subj_roles": TensorDecl("float32", (BATCH, "N", "R"), "entity is subject of some fact of class r (column 0: of none)"),
    "obj_roles": TensorDecl("float32", (BATCH, "N", "R"), "entity is object of some fact of class r (column 0: of none)"),
    "evidence": TensorDecl("float32", (BATCH, PAIRS, "S"), "1 on the evidence sentences of each pair's facts"),
}

#: Who reads and writes what.
ENCODER_INPUTS = ("input_ids", "attention_mask", "mention_pos", "mention_mask")
ENCODER_OUTPUTS = ("token_emb", "entity_emb", "entity_attn")
#: Featurizer tensors the head reads besides the encoder's outputs.
HEAD_FEATURES = ("entity_type", "entity_mask", "sent_span", "sent_mask", "same_sent", "pair_index", "pair_mask")
HEAD_INPUTS = ENCODER_OUTPUTS + HEAD_FEATURES
HEAD_OUTPUTS = ("logits", "pair_prob", "evidence_dist")
#: What the PyTorch model reads from a collated batch (`paee.model.paee.PaeeModel`).
MODEL_INPUTS = ENCODER_INPUTS + HEAD_FEATURES
#: Training targets: the loss is computed when a batch carries them (`paee.model.paee.PaeeModel`).
TRAINING_TARGETS = ("labels", "has_relation", "subj_roles", "obj_roles")
#: What the decoder reads besides the head's outputs: which pair each row is, and the document's title and
#: warnings (they travel to the response).
DECODE_INPUTS = ("pair_index", "pair_mask")
DOCUMENT_FIELDS = ("title", "warnings")
#: What the preprocess model found in a plain-text request (`paee.data.detect`), for the response.
DETECTION_FIELDS = ("detected",)
#: The preprocess model's outputs and the postprocess model's inputs (Triton).
PREPROCESS_OUTPUTS = MODEL_INPUTS + DOCUMENT_FIELDS + DETECTION_FIELDS
POSTPROCESS_INPUTS = HEAD_OUTPUTS + DECODE_INPUTS + DOCUMENT_FIELDS + DETECTION_FIELDS
#: Tensors whose axis 1 is the pair axis: requests of one Triton batch may differ there (padded together,
#: `paee.runtime.batching`; ``allow_ragged_batch`` in the head's config).
RAGGED = tuple(name for name, decl in TENSORS.items() if len(decl.axes) > 1 and decl.axes[1] == PAIRS)

#: The served model's steps in order: (role, inputs, outputs); the Triton ensemble chains them.
SERVING_STEPS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("preprocess", (REQUEST,), PREPROCESS_OUTPUTS),
    ("encoder", ENCODER_INPUTS, ENCODER_OUTPUTS),
    ("head", HEAD_INPUTS, HEAD_OUTPUTS),
    ("postprocess", POSTPROCESS_INPUTS, (RESPONSE,)),
)

#: Inputs and outputs of each graph.
GRAPH_IO: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    ENCODER: (ENCODER_INPUTS, ENCODER_OUTPUTS),
    ENCODER_LONG: (ENCODER_INPUTS, ENCODER_OUTPUTS),
    HEAD: (HEAD_INPUTS, HEAD_OUTPUTS),
}
#: The input whose axis 1 is the padded length of a batch (picks the encoder graph and the Triton group).
LENGTH_INPUT = {ENCODER: "input_ids", ENCODER_LONG: "input_ids", HEAD: "token_emb"}

#: numpy dtype of each dtype name (ONNX type names; ``bytes`` = Triton TYPE_STRING, numpy object arrays).
NUMPY_DTYPES: dict[str, np.dtype] = {
    "int64": np.dtype(np.int64),
    "float32": np.dtype(np.float32),
    "float16": np.dtype(np.float16),
    "bytes": np.dtype(np.object_),
}


@dataclass(frozen=True)
class ModelDims:
    """The fixed sizes of one model (derived from its configuration, `paee.model.config.PaeeConfig.dims`)."""

    max_entities: int  # N (the featurizer's entity slots)
    max_mentions: int  # M
    max_sentences: int  # S
    hidden_size: int  # H
    num_heads: int  # K
    num_relations: int  # R, class 0 = threshold / NA
    num_entity_types: int  # type ids including the padding type 0 (embedding tables, not a tensor axis)
    window: int = DEFAULT_WINDOW  # the short encoder's longest input; where encoder_long (k windows) takes over
    max_length: int = DEFAULT_MAX_LENGTH  # the longest document served (the featurizer's limit)

    def __post_init__(self) -> None:
        bad = {f.name: getattr(self, f.name) for f in fields(self) if not _positive_int(getattr(self, f.name))}
        if bad:
            raise GraphSpecError(f"ModelDims fields must be positive integers, got {bad}")

    #: Size letter of the contract -> field.
    LETTERS = {"N": "max_entities", "M": "max_mentions", "S": "max_sentences", "H": "hidden_size", "K": "num_heads",
               "R": "num_relations"}  # fmt: skip

    def size(self, letter: str) -> int:
        return int(getattr(self, self.LETTERS[letter]))

    @property
    def max_pairs(self) -> int:
        """The most ordered pairs a document can have: N (N - 1)."""
        return self.max_entities * (self.max_entities - 1)

    def length_range(self, graph: str) -> tuple[int, int]:
        """Inclusive range of padded lengths a graph serves (its length bucket)."""
        ranges = {ENCODER: (1, self.window), ENCODER_LONG: (self.window + 1, self.max_length), HEAD: (1, self.max_length)}
        if graph not in ranges:
            raise GraphSpecError(f"unknown graph {graph!r}; graphs are {GRAPH_NAMES}")
        return ranges[graph]

    def encoder_for_length(self, length: int) -> str:
        """Name of the encoder graph for a batch of padded length L (the rule of `EncoderGraph.forward`)."""
        if not 1 <= length <= self.max_length:
            raise GraphSpecError(f"padded length {length} outside 1..{self.max_length} (the model's max_length)")
        return ENCODER if length <= self.window else ENCODER_LONG

    def to_json(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ModelDims:
        return cls(**{f.name: int(obj[f.name]) for f in fields(cls) if f.name in obj})


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor of a graph: dtype name and dims (``str`` = dynamic axis, ``int`` = fixed size)."""

    name: str
    dtype: str
    dims: tuple[str | int, ...]

    @property
    def numpy_dtype(self) -> np.dtype:
        return NUMPY_DTYPES[self.dtype]

    def dynamic_axes(self) -> dict[int, str]:
        """{axis: name} of the dynamic axes."""
        return {axis: dim for axis, dim in enumerate(self.dims) if isinstance(dim, str)}

    def shape_for(self, sizes: Mapping[str, int]) -> tuple[int, ...]:
        """Concrete shape with the dynamic dims taken from ``sizes`` (e.g. {"batch": 2, "length": 64})."""
        try:
            return tuple(sizes[d] if isinstance(d, str) else d for d in self.dims)
        except KeyError as err:
            raise GraphSpecError(f"{self.name}: no size given for dynamic axis {err.args[0]!r}") from err

    def per_request_dims(self) -> list[int]:
        """Triton's ``dims`` (batch axis left out, dynamic axes as -1)."""
        if not self.dims or self.dims[0] != BATCH:
            raise GraphSpecError(f"{self.name}: Triton tensors are batched along axis 0, dims are {self.dims}")
        return [-1 if isinstance(d, str) else int(d) for d in self.dims[1:]]


def tensor_spec(name: str, dims: ModelDims) -> TensorSpec:
    """The contract's tensor ``name`` with the size letters resolved for ``dims``."""
    if name not in TENSORS:
        raise GraphSpecError(f"{name!r} is not a tensor of the contract; tensors are {sorted(TENSORS)}")
    decl = TENSORS[name]
    resolved = tuple(dims.size(a) if isinstance(a, str) and a not in DYNAMIC_AXES else a for a in decl.axes)
    return TensorSpec(name, decl.dtype, resolved)


def tensor_specs(names: Sequence[str], dims: ModelDims) -> tuple[TensorSpec, ...]:
    return tuple(tensor_spec(name, dims) for name in names)


@dataclass(frozen=True)
class GraphSpec:
    """Contract of one graph: its inputs and outputs, resolved for one model, and the lengths it serves."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    dims: ModelDims
    length_range: tuple[int, int]

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """``dynamic_axes`` of ``torch.onnx.export(dynamo=False)``: inputs and outputs."""
        return {t.name: t.dynamic_axes() for t in self.inputs + self.outputs if t.dynamic_axes()}

    def input(self, name: str) -> TensorSpec:
        for t in self.inputs:
            if t.name == name:
                return t
        raise GraphSpecError(f"graph {self.name!r} has no input {name!r}; inputs are {self.input_names}")

    def select_feeds(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """The entries of a collated batch (or of encoder outputs) this graph reads, in spec order."""
        missing = [n for n in self.input_names if n not in batch]
        if missing:
            raise GraphSpecError(f"graph {self.name!r} needs {missing}; the batch has {sorted(batch)}")
        return {n: batch[n] for n in self.input_names}

    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Raise `GraphSpecError` listing every missing input, wrong dtype, fixed-dim or length mismatch."""
        problems: list[str] = []
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            problems.append(f"missing inputs {missing}")
        sizes: dict[str, int] = {}
        for spec in self.inputs:
            if spec.name not in feeds:
                continue
            value = np.asarray(feeds[spec.name])
            if value.dtype != spec.numpy_dtype:
                problems.append(f"{spec.name}: dtype {value.dtype}, expected {spec.numpy_dtype}")
            if value.ndim != len(spec.dims):
                problems.append(f"{spec.name}: rank {value.ndim} {value.shape}, expected dims {spec.dims}")
                continue
            for axis, (dim, got) in enumerate(zip(spec.dims, value.shape)):
                if isinstance(dim, int) and got != dim:
                    problems.append(f"{spec.name}: axis {axis} is {got}, the graph fixes it at {dim}")
                elif isinstance(dim, str) and sizes.setdefault(dim, got) != got:
                    problems.append(f"{spec.name}: {dim} is {got}, other inputs have {sizes[dim]}")
        if LENGTH in sizes:
            low, high = self.length_range
            if not low <= sizes[LENGTH] <= high:
                problems.append(f"length {sizes[LENGTH]} outside {low}..{high} served by graph {self.name!r}")
        if PAIRS in sizes and not 1 <= sizes[PAIRS] <= self.dims.max_pairs:
            problems.append(f"{sizes[PAIRS]} pairs outside 1..{self.dims.max_pairs} (N (N - 1) for N = {self.dims.max_entities})")
        if problems:
            raise GraphSpecError(f"feeds do not match graph {self.name!r}: " + "; ".join(problems))


def markdown_table() -> str:
    """The contract as the README's "Tensor contract" table (a test keeps the README equal to it)."""
    rows = ["| key | dtype | shape | meaning |", "| --- | --- | --- | --- |"]
    for name, decl in TENSORS.items():
        shape = ", ".join({BATCH: "B", LENGTH: "L", PAIRS: "P"}.get(a, str(a)) if isinstance(a, str) else str(a) for a in decl.axes)
        rows.append(f"| `{name}` | {decl.dtype} | [{shape}] | {decl.meaning} |")
    return "\n".join(rows)


def graph_spec(name: str, dims: ModelDims) -> GraphSpec:
    """The contract of graph ``name`` for a model of ``dims``."""
    if name not in GRAPH_IO:
        raise GraphSpecError(f"unknown graph {name!r}; graphs are {GRAPH_NAMES}")
    inputs, outputs = GRAPH_IO[name]
    return GraphSpec(name, tensor_specs(inputs, dims), tensor_specs(outputs, dims), dims, dims.length_range(name))


def graph_specs(dims: ModelDims) -> dict[str, GraphSpec]:
    """Every graph's spec by name."""
    return {name: graph_spec(name, dims) for name in GRAPH_NAMES}


__all__ = [
    "BATCH", "DECODE_INPUTS", "DEFAULT_WINDOW", "DETECTION_FIELDS", "DOCUMENT_FIELDS", "ENCODER", "ENCODER_GRAPHS", "ENCODER_INPUTS", "ENCODER_LONG",
    "ENCODER_OUTPUTS", "GRAPH_IO", "GRAPH_NAMES", "HEAD", "HEAD_FEATURES", "HEAD_INPUTS", "HEAD_OUTPUTS", "LENGTH",
    "LENGTH_INPUT", "MODEL_INPUTS", "NUMPY_DTYPES", "PAIRS", "POSTPROCESS_INPUTS", "PREPROCESS_OUTPUTS", "RAGGED",
    "REQUEST", "RESPONSE", "SERVING_STEPS", "TENSORS", "TRAINING_TARGETS", "GraphSpec", "GraphSpecError", "ModelDims",
    "TensorDecl", "TensorSpec", "graph_spec", "graph_specs", "markdown_table", "tensor_spec", "tensor_specs",
]  # fmt: skip
