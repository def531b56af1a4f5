"""The contract of the two exported graphs (`GraphSpec`) and the export wrappers around the trained modules.

One object owns each graph's contract, like optimum's ``OnnxConfig``: input/output names, dtypes, dims
(symbolic names for the dynamic axes, integers for the fixed ones), the dynamic axes handed to the
exporter, the opset, and the tolerance of the ONNX Runtime vs PyTorch validation. Exporters, the runtime
sessions, the TensorRT profiles and (later) the Triton ``config.pbtxt`` writer all read the same spec.

Graphs (README "Tensor contract", DESIGN.md section 4):

* ``encoder`` / ``encoder_long`` (same signature; chosen at run time by the batch's padded length L):
  (input_ids[B,L], attention_mask[B,L], mention_pos[B,N,M], mention_mask[B,N,M])
  -> (token_emb[B,L,H], entity_emb[B,N,H], entity_attn[B,N,K,L])
  ``encoder`` serves L <= window (512), ``encoder_long`` serves window < L <= 2 * window (two windows).
* ``head``: (token_emb, entity_emb, entity_attn, entity_type[B,N], entity_mask[B,N], sent_span[B,S,2],
  sent_mask[B,S], same_sent[B,N,N]) -> (logits[B,N,N,R], pair_prob[B,N,N])

Why two encoder graphs and not one graph with an ONNX ``If``: ORT's BERT optimizer fuses attention only
in TorchScript exports (``dynamo=False``, DESIGN.md 8), and the TorchScript tracer freezes Python control
flow (``if L <= window``) at the example's length; ``torch.cond`` needs the dynamo exporter, whose graphs
get no fused Attention, and ORT's optimizer does not fuse inside ``If`` subgraphs anyway. Two graphs
also give TensorRT one optimisation profile per length bucket, and a short batch never pays for the
second window. The price is a second copy of the encoder weights on disk and in memory.

The wrappers (`EncoderExport`, `HeadExport`) hold the *very* modules of the trained `PaeeModel`
(``model.encoder``, ``model.head``) and only select and order the named outputs: no second model copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # torch is imported lazily: runtimes.py (used inside Triton, no torch) imports this module
    import torch

    from paee.model.paee import PaeeModel

#: TorchScript exporter opset: the one ORT's BERT fusion was measured on (DESIGN.md 8); has LayerNormalization.
DEFAULT_OPSET = 17
#: The head's opset: the dynamo exporter's lowest supported opset.
HEAD_OPSET = 18

#: Exporters: "torchscript" (torch.onnx.export dynamo=False) for the encoders, whose attention ORT fuses
#: only in TorchScript traces; "dynamo" for the head, because the TorchScript trace of its
#: nn.MultiheadAttention (packed in-projection + unflatten) leaves values whose rank ONNX shape inference
#: cannot determine, while the dynamo export is fully shaped (and the head needs no fusion).
EXPORTERS = ("torchscript", "dynamo")

#: Symbolic names of the dynamic axes.
BATCH = "batch"
LENGTH = "length"

#: Graph names (also the Triton model names' suffixes and the file stems).
ENCODER = "encoder"
ENCODER_LONG = "encoder_long"
HEAD = "head"
ENCODER_GRAPHS = (ENCODER, ENCODER_LONG)
GRAPH_NAMES = (ENCODER, ENCODER_LONG, HEAD)

#: numpy dtype of each dtype name used in the specs (ONNX type names: onnx.TensorProto.<NAME>.lower()).
NUMPY_DTYPES: dict[str, np.dtype] = {
    "int64": np.dtype(np.int64),
    "float32": np.dtype(np.float32),
    "float16": np.dtype(np.float16),
}

#: ORT vs PyTorch tolerance of the fp32 validation (brief / optimum default scale): max abs difference.
DEFAULT_ATOL = 1e-4


class GraphSpecError(ValueError):
    """Feeds or dimensions that do not match a graph's contract."""


@dataclass(frozen=True)
class TensorSpec:
    """One named input or output: dtype name and dims (``str`` = symbolic/dynamic, ``int`` = fixed)."""

    name: str
    dtype: str
    dims: tuple[str | int, ...]

    @property
    def numpy_dtype(self) -> np.dtype:
        return NUMPY_DTYPES[self.dtype]

    def dynamic_axes(self) -> dict[int, str]:
        """{axis: symbolic name} of the dynamic axes (the TorchScript exporter's ``dynamic_axes`` entry)."""
        return {axis: dim for axis, dim in enumerate(self.dims) if isinstance(dim, str)}

    def shape_for(self, sizes: Mapping[str, int]) -> tuple[int, ...]:
        """Concrete shape with the symbolic dims taken from ``sizes`` (e.g. {"batch": 2, "length": 64})."""
        try:
            return tuple(sizes[d] if isinstance(d, str) else d for d in self.dims)
        except KeyError as err:
            raise GraphSpecError(f"{self.name}: no size given for dynamic axis {err.args[0]!r}") from err


@dataclass(frozen=True)
class ExportDims:
    """The fixed dims of the contract: N, M, S from the featurizer, H, K from the encoder, R from the head."""

    max_entities: int  # N
    max_mentions: int  # M
    max_sentences: int  # S (featurizer slots; <= the head's sentence-position table)
    hidden_size: int  # H
    num_heads: int  # K
    num_relations: int  # R, class 0 = threshold / NA
    window: int  # encoder window (512 for BERT): the short/long length bucket boundary
    max_length: int  # longest document in tokens (2 * window)

    @classmethod
    def from_model(cls, model: "PaeeModel", max_mentions: int, max_sentences: int) -> "ExportDims":
        """Dims of a `PaeeModel`; M and S come from the featurizer configuration the model was trained with."""
        encoder, head_config = model.encoder, model.head.config
        return cls(
            max_entities=int(head_config.max_entities),
            max_mentions=int(max_mentions),
            max_sentences=int(max_sentences),
            hidden_size=int(encoder.hidden_size),
            num_heads=int(encoder.num_heads),
            num_relations=int(head_config.num_relations),
            window=int(encoder.window),
            max_length=int(encoder.max_length),
        )

    def length_range(self, graph: str) -> tuple[int, int]:
        """Inclusive range of padded lengths L a graph serves (its length bucket)."""
        if graph == ENCODER:
            return 1, self.window
        if graph == ENCODER_LONG:
            return self.window + 1, self.max_length
        if graph == HEAD:
            return 1, self.max_length
        raise GraphSpecError(f"unknown graph {graph!r}; graphs are {GRAPH_NAMES}")


def encoder_for_length(length: int, window: int, max_length: int) -> str:
    """Name of the encoder graph for a batch of padded length L (the same rule as `EncoderGraph.forward`)."""
    if length < 1 or length > max_length:
        raise GraphSpecError(f"padded length {length} outside 1..{max_length} (two windows of {window})")
    return ENCODER if length <= window else ENCODER_LONG


@dataclass(frozen=True)
class GraphSpec:
    """Contract of one exported graph: names, dtypes, dims, dynamic axes, opset, validation tolerance."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    dims: ExportDims
    opset: int = DEFAULT_OPSET
    exporter: str = "torchscript"
    atol: float = DEFAULT_ATOL
    #: inclusive range of the ``length`` axis this graph serves
    length_range: tuple[int, int] = field(default=(1, 1024))

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """``dynamic_axes`` argument of ``torch.onnx.export(dynamo=False)``: inputs and outputs."""
        return {t.name: t.dynamic_axes() for t in self.inputs + self.outputs if t.dynamic_axes()}

    def input(self, name: str) -> TensorSpec:
        for t in self.inputs:
            if t.name == name:
                return t
        raise GraphSpecError(f"graph {self.name!r} has no input {name!r}; inputs are {self.input_names}")

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
        if problems:
            raise GraphSpecError(f"feeds do not match graph {self.name!r}: " + "; ".join(problems))


def encoder_spec(dims: ExportDims, long: bool = False, opset: int = DEFAULT_OPSET) -> GraphSpec:
    """Spec of ``encoder`` (L <= window) or, with ``long=True``, of ``encoder_long`` (window < L <= 2 window)."""
    name = ENCODER_LONG if long else ENCODER
    N, M, H, K = dims.max_entities, dims.max_mentions, dims.hidden_size, dims.num_heads
    return GraphSpec(
        name=name,
        inputs=(
            TensorSpec("input_ids", "int64", (BATCH, LENGTH)),
            TensorSpec("attention_mask", "int64", (BATCH, LENGTH)),
            TensorSpec("mention_pos", "int64", (BATCH, N, M)),
            TensorSpec("mention_mask", "float32", (BATCH, N, M)),
        ),
        outputs=(
            TensorSpec("token_emb", "float32", (BATCH, LENGTH, H)),
            TensorSpec("entity_emb", "float32", (BATCH, N, H)),
            TensorSpec("entity_attn", "float32", (BATCH, N, K, LENGTH)),
        ),
        dims=dims,
        opset=opset,
        length_range=dims.length_range(name),
    )


def head_spec(dims: ExportDims, opset: int = HEAD_OPSET) -> GraphSpec:
    """Spec of ``head``: fixed N (and S, K, H, R), dynamic batch and length."""
    N, S, H, K, R = dims.max_entities, dims.max_sentences, dims.hidden_size, dims.num_heads, dims.num_relations
    return GraphSpec(
        name=HEAD,
        inputs=(
            TensorSpec("token_emb", "float32", (BATCH, LENGTH, H)),
            TensorSpec("entity_emb", "float32", (BATCH, N, H)),
            TensorSpec("entity_attn", "float32", (BATCH, N, K, LENGTH)),
            TensorSpec("entity_type", "int64", (BATCH, N)),
            TensorSpec("entity_mask", "float32", (BATCH, N)),
            TensorSpec("sent_span", "int64", (BATCH, S, 2)),
            TensorSpec("sent_mask", "float32", (BATCH, S)),
            TensorSpec("same_sent", "int64", (BATCH, N, N)),
        ),
        outputs=(
            TensorSpec("logits", "float32", (BATCH, N, N, R)),
            TensorSpec("pair_prob", "float32", (BATCH, N, N)),
        ),
        dims=dims,
        opset=opset,
        exporter="dynamo",
        length_range=dims.length_range(HEAD),
    )


def graph_specs(dims: ExportDims) -> dict[str, GraphSpec]:
    """All three specs by graph name."""
    return {
        ENCODER: encoder_spec(dims, long=False),
        ENCODER_LONG: encoder_spec(dims, long=True),
        HEAD: head_spec(dims),
    }


def select_feeds(batch: Mapping[str, Any], spec: GraphSpec) -> dict[str, Any]:
    """The entries of a collated batch (or of encoder outputs) that a graph reads, in spec order."""
    missing = [n for n in spec.input_names if n not in batch]
    if missing:
        raise GraphSpecError(f"graph {spec.name!r} needs {missing}; the batch has {sorted(batch)}")
    return {n: batch[n] for n in spec.input_names}


# -- export wrappers (torch imported lazily: see TYPE_CHECKING above) ---------------------------------------


def _wrappers() -> tuple[type, type]:
    """Build the nn.Module wrapper classes on first use, so that importing this module needs no torch."""
    global _WRAPPERS
    if _WRAPPERS is not None:
        return _WRAPPERS
    from torch import Tensor, nn

    class EncoderExport(nn.Module):
        """``model.encoder`` with positional inputs and outputs in `encoder_spec` order."""

        def __init__(self, encoder: nn.Module) -> None:
            super().__init__()
            self.encoder = encoder  # the trained module itself, not a copy

        def forward(
            self, input_ids: Tensor, attention_mask: Tensor, mention_pos: Tensor, mention_mask: Tensor
        ) -> tuple[Tensor, Tensor, Tensor]:
            out = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, mention_pos=mention_pos, mention_mask=mention_mask
            )
            return out.token_emb, out.entity_emb, out.entity_attn

    class HeadExport(nn.Module):
        """``model.head`` with positional inputs; keeps the served outputs (logits, pair_prob) only."""

        def __init__(self, head: nn.Module) -> None:
            super().__init__()
            self.head = head  # the trained module itself, not a copy

        def forward(
            self,
            token_emb: Tensor,
            entity_emb: Tensor,
            entity_attn: Tensor,
            entity_type: Tensor,
            entity_mask: Tensor,
            sent_span: Tensor,
            sent_mask: Tensor,
            same_sent: Tensor,
        ) -> tuple[Tensor, Tensor]:
            out = self.head(
                token_emb=token_emb, entity_emb=entity_emb, entity_attn=entity_attn, entity_type=entity_type,
                entity_mask=entity_mask, sent_span=sent_span, sent_mask=sent_mask, same_sent=same_sent,
            )  # fmt: skip
            return out.logits, out.pair_prob

    _WRAPPERS = (EncoderExport, HeadExport)
    return _WRAPPERS


_WRAPPERS: tuple[type, type] | None = None


def wrap_graph(model: "PaeeModel", graph: str) -> "torch.nn.Module":
    """The module exported as ``graph``: a thin wrapper around ``model.encoder`` or ``model.head``."""
    encoder_cls, head_cls = _wrappers()
    # a fresh wrapper is in training mode: give it the wrapped module's mode (eval for export and
    # validation; the dynamo exporter reads the top module's flag)
    if graph in ENCODER_GRAPHS:
        return encoder_cls(model.encoder).train(model.encoder.training)
    if graph == HEAD:
        return head_cls(model.head).train(model.head.training)
    raise GraphSpecError(f"unknown graph {graph!r}; graphs are {GRAPH_NAMES}")


def example_inputs(
    spec: GraphSpec, batch: int, length: int, vocab_size: int = 100, seed: int = 0, real_entities: Sequence[int] | None = None
) -> dict[str, np.ndarray]:
    """Random but valid feeds of a graph: the export example and the validation shapes.

    Document b has real length ``length - 8 * b`` (at least a quarter of L; the longest fills L) and
    ``real_entities[b]`` entities whose mentions point inside it; the rest is padding, as the featurizer
    writes it. Encoder outputs for the head are random, normalised like attention rows.
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
    return feeds
