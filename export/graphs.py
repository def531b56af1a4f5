"""The module each graph exports: the trained model's own encoder or head, called by the contract's names.

A graph's inputs are named after the keyword arguments of the module it runs (`EncoderGraph.forward`,
`HeadGraph.forward`), so `GraphModule` only turns the exporter's positional inputs into keywords and
the module's named outputs into the spec's order. It holds the very module of the trained `PaeeModel`
(no second copy), so parity holds by construction. The contract itself (names, dtypes, dims) lives in
`paee.runtime.contract`.
"""

from __future__ import annotations

from torch import Tensor, nn

from paee.model.paee import PaeeModel
from paee.runtime.contract import ENCODER, ENCODER_LONG, GRAPH_NAMES, HEAD, GraphSpec, GraphSpecError

#: The `PaeeModel` attribute each graph runs.
GRAPH_MODULES = {ENCODER: "encoder", ENCODER_LONG: "encoder", HEAD: "head"}


class GraphModule(nn.Module):
    """One graph of a model: positional inputs in ``spec.input_names`` order, outputs in ``spec.output_names``."""

    def __init__(self, module: nn.Module, spec: GraphSpec) -> None:
        super().__init__()
        self.module = module  # the trained module itself, not a copy
        self.input_names = tuple(spec.input_names)
        self.output_names = tuple(spec.output_names)

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        out = self.module(**dict(zip(self.input_names, inputs)))
        return tuple(getattr(out, name) for name in self.output_names)


def wrap_graph(model: PaeeModel, spec: GraphSpec) -> GraphModule:
    """The module exported as ``spec.name``, in the wrapped module's mode (eval for export and validation;
    the dynamo exporter reads the top module's flag)."""
    if spec.name not in GRAPH_MODULES:
        raise GraphSpecError(f"unknown graph {spec.name!r}; graphs are {GRAPH_NAMES}")
    module = getattr(model, GRAPH_MODULES[spec.name])
    return GraphModule(module, spec).train(module.training)


__all__ = ["GRAPH_MODULES", "GraphModule", "wrap_graph"]
