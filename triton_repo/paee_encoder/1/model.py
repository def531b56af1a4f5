"""Triton python model ``paee_encoder``: runs the exported encoder graphs (CPU flavour).

Triton's native onnxruntime backend ships only in NVIDIA's container, so on CPU hosts the graphs run
inside this python model, through `paee_export.runtimes.create_session` (ONNX Runtime fp32/int8, or
OpenVINO bf16). ``1/assets/runtime.json`` (written by `paee_export.repository.write_repository`) lists
the graphs with the padded lengths each serves: ``encoder`` for L <= window, ``encoder_long`` for
window < L <= 2 * window (two graphs, see `paee_export.graphs`).

Mode ``bls`` (GPU flavour with two encoder graphs): the graphs are native Triton models
(``onnxruntime_onnx`` with TensorRT, or ``tensorrt_plan``) and this model only routes each batch to
the one serving its length, by a BLS request.

Triton hands `execute` a list of requests, each with its own batch of documents. Requests are
grouped by padded length L (the preprocess model pads to length buckets, so a bucket is one group),
concatenated along the batch axis, run once, and split back (`paee.serving.batching`, shared with
``paee_head``): exactly one response per request, and a failure fails only the requests of its group.
Imports: numpy, the torch-free `paee.serving.batching` and the runtime only (never torch).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from paee.serving.batching import execute_by_length

ASSETS = "assets"
RUNTIME_FILE = "runtime.json"
#: The input whose second axis is the padded length L that picks the graph.
LENGTH_INPUT = "input_ids"
MODE_LOCAL = "local"
MODE_BLS = "bls"


class TritonPythonModel:
    """Encoder runner: one session per graph, batches grouped by length."""

    def initialize(self, args: dict[str, str]) -> None:
        """Create the runtime sessions (or BLS routes) listed in ``1/assets/runtime.json``."""
        self.model_config = json.loads(args["model_config"])
        version_dir = Path(args["model_repository"]) / args["model_version"]
        runtime = json.loads((version_dir / ASSETS / RUNTIME_FILE).read_text(encoding="utf-8"))
        self.mode = runtime.get("mode", MODE_LOCAL)
        self.input_names = [i["name"] for i in self.model_config["input"]]
        self.output_names = [o["name"] for o in self.model_config["output"]]
        self.dtypes = {
            o["name"]: pb_utils.triton_string_to_numpy(o["data_type"]) for o in self.model_config["output"]
        }
        self.routes: list[tuple[int, int, Any]] = []  # (min L, max L, session or Triton model name)
        if self.mode == MODE_LOCAL:
            from paee_export.runtimes import graph_session  # numpy-only module (no torch)

            for graph in runtime["graphs"]:
                low, high = graph["length_range"]
                self.routes.append((int(low), int(high), graph_session(version_dir, runtime, graph)))
        elif self.mode == MODE_BLS:
            for route in runtime["routes"]:
                low, high = route["length_range"]
                self.routes.append((int(low), int(high), route["model"]))
        else:
            raise ValueError(f"{RUNTIME_FILE}: unknown mode {self.mode!r} (expected {MODE_LOCAL!r} or {MODE_BLS!r})")

    def _route(self, length: int) -> Any:
        for low, high, target in self.routes:
            if low <= length <= high:
                return target
        served = ", ".join(f"{low}..{high}" for low, high, _ in self.routes)
        raise ValueError(f"padded length {length} is served by no encoder graph (graphs serve {served})")

    def _run(self, target: Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.mode == MODE_LOCAL:
            return target.run(feeds)
        request = pb_utils.InferenceRequest(
            model_name=target, requested_output_names=self.output_names,
            inputs=[pb_utils.Tensor(name, value) for name, value in feeds.items()],
        )
        response = request.exec()
        if response.has_error():
            raise RuntimeError(f"{target}: {response.error().message()}")
        return {name: pb_utils.get_output_tensor_by_name(response, name).as_numpy() for name in self.output_names}

    def execute(self, requests: list[Any]) -> list[Any]:
        """Group requests by padded length, run each group on its graph, split the outputs back per request."""
        return execute_by_length(
            pb_utils, requests, model="paee_encoder", input_names=self.input_names, output_dtypes=self.dtypes,
            length_input=LENGTH_INPUT, run=lambda length, feeds: self._run(self._route(length), feeds),
        )

    def finalize(self) -> None:
        """Drop the sessions (their memory is released with them)."""
        self.routes = []
