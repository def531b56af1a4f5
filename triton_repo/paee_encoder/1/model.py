"""Triton python model ``paee_encoder``: runs the exported encoder graphs (CPU flavour) or routes to them.

Triton's native onnxruntime backend ships only in NVIDIA's container, so on CPU hosts the graphs run
inside this python model on the sessions ``1/assets/runtime.json`` names (mode ``local``: per graph its
file, the padded lengths it serves, its runtime and precision; `paee.runtime.layout.ModelRuntime`):
``encoder`` for L <= window, ``encoder_long`` for window < L <= 2 * window.

Mode ``bls`` (GPU flavour): the graphs are native Triton models (``onnxruntime_onnx`` with TensorRT,
or ``tensorrt_plan``) and this model only routes each batch to the one serving its length, by a BLS
request.

Triton hands `execute` a list of requests, each with its own batch of documents. Requests are grouped
by padded length L (the preprocess model pads to length buckets, so a bucket is one group), concatenated
along the batch axis, run once, and split back (`paee.runtime.batching`, shared with ``paee_head``):
exactly one response per request, and a failure fails only the requests of its group. Imports: numpy
and the runtime floor only (never torch).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from paee.runtime.batching import ModelIO, execute_by_length
from paee.runtime.contract import ENCODER, LENGTH_INPUT
from paee.runtime.layout import ENCODER_MODEL, MODE_LOCAL, ModelRuntime


class TritonPythonModel:
    """Encoder runner: one session (or one routed model) per length range, batches grouped by length."""

    def initialize(self, args: dict[str, str]) -> None:
        """Create the runtime sessions (or BLS routes) listed in ``1/assets/runtime.json``."""
        self.io = ModelIO.from_args(args, pb_utils)
        runtime = ModelRuntime.read(self.io.version_dir)
        self.local = runtime.mode == MODE_LOCAL
        self.routes: list[tuple[int, int, Any]] = (  # (min L, max L, session or Triton model name)
            [(*g.length_range, g.session(self.io.version_dir, runtime.threads)) for g in runtime.graphs] if self.local
            else [(*r.length_range, r.model) for r in runtime.routes]
        )

    def _route(self, length: int) -> Any:
        for low, high, target in self.routes:
            if low <= length <= high:
                return target
        served = ", ".join(f"{low}..{high}" for low, high, _ in self.routes)
        raise ValueError(f"padded length {length} is served by no encoder graph (graphs serve {served})")

    def _run(self, target: Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.local:
            return target.run(feeds)
        request = pb_utils.InferenceRequest(
            model_name=target, requested_output_names=list(self.io.output_dtypes),
            inputs=[pb_utils.Tensor(name, value) for name, value in feeds.items()],
        )
        response = request.exec()
        if response.has_error():
            raise RuntimeError(f"{target}: {response.error().message()}")
        return {name: pb_utils.get_output_tensor_by_name(response, name).as_numpy() for name in self.io.output_dtypes}

    def execute(self, requests: list[Any]) -> list[Any]:
        """Group requests by padded length, run each group on its graph, split the outputs back per request."""
        return execute_by_length(
            pb_utils, requests, model=ENCODER_MODEL, io=self.io, length_input=LENGTH_INPUT[ENCODER],
            run=lambda length, feeds: self._run(self._route(length), feeds),
        )

    def finalize(self) -> None:
        """Drop the sessions (their memory is released with them)."""
        self.routes = []
