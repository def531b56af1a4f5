"""Triton python model ``paee_head``: runs the exported head graph (CPU flavour).

The head graph (pair context, sliding fill, TNet, PPP, EER, classifier; `paee_export.graphs.head_spec`)
runs inside this python model through `paee_export.runtimes.create_session` (ONNX Runtime fp32/int8 or
OpenVINO bf16), as Triton's native onnxruntime backend ships only in NVIDIA's container. The graph
and the precision are named in ``1/assets/runtime.json``.

Requests are grouped by padded length L (``token_emb`` [B, L, H]; the preprocess model pads to length
buckets), concatenated along the batch axis, run once and split back (`paee.serving.batching`, shared
with ``paee_encoder``): one response per request, and a failure fails only its group. Imports: numpy,
the torch-free `paee.serving.batching` and the runtime only (never torch).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import triton_python_backend_utils as pb_utils

from paee.serving.batching import execute_by_length

ASSETS = "assets"
RUNTIME_FILE = "runtime.json"
#: The input whose second axis is the padded length L (requests batch together only at equal L).
LENGTH_INPUT = "token_emb"


class TritonPythonModel:
    """Head runner: one session, batches grouped by length."""

    def initialize(self, args: dict[str, str]) -> None:
        """Create the runtime session of the head graph listed in ``1/assets/runtime.json``."""
        from paee_export.runtimes import graph_session  # numpy-only module (no torch)

        self.model_config = json.loads(args["model_config"])
        version_dir = Path(args["model_repository"]) / args["model_version"]
        runtime = json.loads((version_dir / ASSETS / RUNTIME_FILE).read_text(encoding="utf-8"))
        (graph,) = runtime["graphs"]
        self.session = graph_session(version_dir, runtime, graph)
        self.input_names = [i["name"] for i in self.model_config["input"]]
        self.output_names = [o["name"] for o in self.model_config["output"]]
        self.dtypes = {
            o["name"]: pb_utils.triton_string_to_numpy(o["data_type"]) for o in self.model_config["output"]
        }

    def execute(self, requests: list[Any]) -> list[Any]:
        """Group requests by padded length, run each group once, split the outputs back per request."""
        return execute_by_length(
            pb_utils, requests, model="paee_head", input_names=self.input_names, output_dtypes=self.dtypes,
            length_input=LENGTH_INPUT, run=lambda _length, feeds: self.session.run(feeds),
        )

    def finalize(self) -> None:
        """Drop the session (its memory is released with it)."""
        self.session = None
