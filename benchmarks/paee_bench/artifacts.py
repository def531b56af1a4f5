"""The graph files and the Triton repositories the backends need, built from the checkpoint's model by the
export's own plans (`paee_export.plan`), so that every backend runs what ``paee-export`` ships.

A plan's files are made on first request (a run of ``--backends torch`` exports nothing) by one
`paee_export.build.GraphBuilder`, which makes every file once even where plans share it. A Triton
repository of a precision is the repository ``paee-export --precision P`` writes on this machine: the
same plan resolution (fallbacks included), the same files, the same writer.

Export-time validation is off (``validate=False``): the benchmark's own parity table measures every
backend against PyTorch on the benchmark documents, which is the stronger check.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from paee.checkpoint import Checkpoint
from paee.data.featurizer import Featurizer
from paee.model.paee import PaeeModel
from paee.runtime.contract import ModelDims
from paee.runtime.pipeline import OnnxPipeline
from paee_export.build import BuiltGraph, GraphBuilder
from paee_export.plan import PLANS, ExportPlan, resolve_plan
from paee_export.repository import write_repository

#: Triton precisions a repository can be written in here (CPU flavour).
REPOSITORY_PRECISIONS = ("fp32", "int8", "bf16")


class Artifacts:
    """Plans built once under ``out_dir`` (see the module docstring)."""

    def __init__(self, model: PaeeModel, ckpt: Checkpoint, featurizer: Featurizer, out_dir: Path,
                 progress: bool = True) -> None:
        self.model = model
        self.ckpt = ckpt
        self.featurizer = featurizer
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.builder = GraphBuilder(model, self.out_dir / "onnx", featurizer, validate=False,
                                    log=self._log if progress else None)
        self.info: dict[str, Any] = self.builder.info  # what was made: fused attention counts, calibration
        self._repositories: dict[str, Path] = {}

    @property
    def dims(self) -> ModelDims:
        return self.ckpt.config.dims

    def _log(self, message: str) -> None:
        print(f"[paee-bench] {message}", file=sys.stderr, flush=True)

    def build(self, plan: str | ExportPlan) -> dict[str, BuiltGraph]:
        """The files of a plan (by name or as resolved), made once."""
        return self.builder.build(PLANS[plan] if isinstance(plan, str) else plan)

    def pipeline(self, plan: str | ExportPlan, threads: int | None, device: str = "cpu") -> OnnxPipeline:
        """The in-process pipeline over a plan's files, each graph on its plan's runtime."""
        sessions = {name: graph.session(threads, device) for name, graph in self.build(plan).items()}
        return OnnxPipeline(sessions, self.featurizer, self.dims.window, self.ckpt.decode_config())

    def repository(self, precision: str, threads: int | None, max_batch_size: int) -> Path:
        """The CPU Triton repository ``paee-export --precision`` writes here (the same plan and writer)."""
        if precision not in self._repositories:
            plan, warnings = resolve_plan("cpu", precision)
            for message in warnings:
                self._log(f"warning: {message}")
            started = time.perf_counter()
            self._repositories[precision] = write_repository(
                self.out_dir / f"triton_repo_{precision}", self.ckpt, plan, self.build(plan),
                max_batch_size=max_batch_size, instances=1, force=True, threads=threads,
            )
            self.info.setdefault("repositories", {})[precision] = {
                "plan": plan.name, "seconds": round(time.perf_counter() - started, 1)}
        return self._repositories[precision]


__all__ = ["Artifacts", "REPOSITORY_PRECISIONS"]
