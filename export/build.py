"""Makes the files of export plans from one model: export, then the plan's transforms, each file once.

`GraphBuilder.build(plan)` returns, per graph, the file that ships and how it runs (`BuiltGraph`). Files
are cached by the steps that made them (graph, exporter, transforms), so plans that share a step share
its file: the bench builds several plans from one model, and the export's parity variants reuse the
shipped plan's files. `TRANSFORMS` is the table of what a transform does to a file.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paee.data.featurizer import Featurizer
from paee.data.schema import Document
from paee.model.paee import PaeeModel
from paee.runtime.contract import GraphSpec, ModelDims, graph_specs
from paee.runtime.layout import GraphRuntime
from paee.runtime.sessions import Session, create_session
from paee_export.calibration import quantize_encoder_static
from paee_export.onnx_export import export_graph
from paee_export.optimize import convert_fp16, optimize_encoder, quantize_int8
from paee_export.plan import TRITON_NATIVE, ExportPlan


@dataclass(frozen=True)
class BuiltGraph:
    """One graph of a built plan: the file that ships and how it runs."""

    name: str
    path: Path
    backend: str
    precision: str
    length_range: tuple[int, int]

    def runtime(self, path_in_model: str) -> GraphRuntime:
        """Its ``runtime.json`` entry once copied to ``path_in_model`` inside its model's version folder."""
        return GraphRuntime(self.name, path_in_model, self.length_range, self.backend, self.precision)

    def session(self, threads: int | None = None, device: str = "cpu") -> Session:
        """A session on this machine (the GPU flavour's files run on ONNX Runtime, on ``device``)."""
        backend = "onnxruntime" if self.backend == TRITON_NATIVE else self.backend
        return create_session(self.path, self.precision, device=device, threads=threads, backend=backend)


@dataclass
class GraphBuilder:
    """Export and transform graphs of ``model`` under ``work`` (see the module docstring).

    Args:
        model: the trained model (eval mode is set while exporting).
        work: a folder for the files.
        featurizer: the model's featurizer (static int8 calibrates on featurized documents).
        validate: validate every export against PyTorch (`paee_export.onnx_export.validate_graph`).
        calibration_docs: documents for static int8 (default: synthetic ones).
        log: receives one line per file made (None: silent).
    """

    model: PaeeModel
    work: Path
    featurizer: Featurizer
    validate: bool = True
    calibration_docs: Sequence[Document] | None = None
    log: Callable[[str], None] | None = None
    info: dict[str, Any] = field(default_factory=dict)  # what each step measured (validation, fusion, calibration)
    _files: dict[tuple[str, str, tuple[str, ...]], Path] = field(default_factory=dict)

    @property
    def dims(self) -> ModelDims:
        return self.model.config.dims

    @property
    def specs(self) -> dict[str, GraphSpec]:
        return graph_specs(self.dims)

    @property
    def num_layers(self) -> int:
        return int(self.model.encoder.backbone.config.num_hidden_layers)

    def build(self, plan: ExportPlan) -> dict[str, BuiltGraph]:
        """The shipped file of every graph of ``plan``."""
        return {
            name: BuiltGraph(name, self.file(name, g.exporter, g.transforms), g.backend, g.precision,
                             self.dims.length_range(name))
            for name, g in plan.graphs.items()
        }

    def file(self, graph: str, exporter: str, transforms: Sequence[str] = ()) -> Path:
        """The file of ``graph`` exported by ``exporter`` and passed through ``transforms`` (made once)."""
        key = (graph, exporter, tuple(transforms))
        if key not in self._files:
            stem = ".".join((graph, exporter, *transforms))
            path = self.work / f"{stem}.onnx"
            started = time.perf_counter()
            if transforms:
                TRANSFORMS[transforms[-1]](self, graph, self.file(graph, exporter, transforms[:-1]), path)
            else:
                exported = export_graph(self.model, self.specs[graph], path, exporter=exporter, validate=self.validate)
                self.info.setdefault("validation_max_abs_diff", {})[stem] = {
                    case.name: case.max_abs_diff for case in exported.validation
                }
            self._files[key] = path
            if self.log:
                self.log(f"made {path.name} ({time.perf_counter() - started:.0f} s)")
        return self._files[key]

    # --- the transforms ------------------------------------------------------------------------------

    def _ort_optimize(self, graph: str, source: Path, out: Path) -> None:
        stats = optimize_encoder(source, out, self.dims.num_heads, self.dims.hidden_size,
                                 expected_attention=self.num_layers)
        self.info.setdefault("fused_attention", {})[graph] = {"fused_attention": stats.fused_attention,
                                                              "layers": self.num_layers}

    def _dynamic_int8(self, graph: str, source: Path, out: Path) -> None:
        quantize_int8(source, out)

    def _static_int8(self, graph: str, source: Path, out: Path) -> None:
        calibrated = quantize_encoder_static(source, out, self.featurizer, self.dims.length_range(graph)[1],
                                             self.calibration_docs)
        self.info.setdefault("calibration", {})[graph] = calibrated

    def _fp16(self, graph: str, source: Path, out: Path) -> None:
        convert_fp16(source, out)


#: What each transform of a plan does: (builder, graph, source file, output file) -> None.
TRANSFORMS: dict[str, Callable[[GraphBuilder, str, Path, Path], None]] = {
    "ort_optimize": GraphBuilder._ort_optimize,  # ONNX Runtime's transformer optimizer, fused Attention checked
    "dynamic_int8": GraphBuilder._dynamic_int8,  # ONNX Runtime dynamic quantisation
    "static_int8": GraphBuilder._static_int8,  # QDQ static int8, calibrated on documents
    "fp16": GraphBuilder._fp16,  # fp16 weights, LayerNorm / Softmax kept fp32
}


def stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


__all__ = ["TRANSFORMS", "BuiltGraph", "GraphBuilder", "stderr_log"]
