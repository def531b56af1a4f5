"""Triton python model ``paee_head``: runs the exported head graph (CPU flavour).

The head graph (pair context, sliding fill, TNet, PPP, EER, classifier; `paee_export.graphs.head_spec`)
runs inside this python model through `paee_export.runtimes.create_session` (ONNX Runtime fp32/int8 or
OpenVINO bf16), as Triton's native onnxruntime backend ships only in NVIDIA's container. The graph
and the precision are named in ``1/assets/runtime.json``.

Requests are grouped by padded length L (``token_emb`` [B, L, H]; the preprocess model pads to length
buckets), concatenated along the batch axis, run once and split back: one response per request, and a
failure fails only its group. Imports: numpy and the runtime only (never torch).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

ASSETS = "assets"
RUNTIME_FILE = "runtime.json"
#: The input whose second axis is the padded length L (requests batch together only at equal L).
LENGTH_INPUT = "token_emb"


class TritonPythonModel:
    """Head runner: one session, batches grouped by length."""

    def initialize(self, args: dict[str, str]) -> None:
        """Create the runtime session of the head graph listed in ``1/assets/runtime.json``."""
        from paee_export.runtimes import create_session  # numpy-only module (no torch)

        self.model_config = json.loads(args["model_config"])
        version_dir = Path(args["model_repository"]) / args["model_version"]
        runtime = json.loads((version_dir / ASSETS / RUNTIME_FILE).read_text(encoding="utf-8"))
        (graph,) = runtime["graphs"]
        self.session = create_session(
            version_dir / graph["path"], runtime["precision"], device="cpu",
            threads=runtime.get("threads"), backend=runtime.get("backend", "auto"),
        )
        self.input_names = [i["name"] for i in self.model_config["input"]]
        self.output_names = [o["name"] for o in self.model_config["output"]]
        self.dtypes = {
            o["name"]: pb_utils.triton_string_to_numpy(o["data_type"]) for o in self.model_config["output"]
        }

    def execute(self, requests: list[Any]) -> list[Any]:
        """Group requests by padded length, run each group once, split the outputs back per request."""
        responses: list[Any] = [None] * len(requests)
        groups: dict[int, list[tuple[int, dict[str, np.ndarray]]]] = defaultdict(list)
        for r, request in enumerate(requests):
            feeds = {n: pb_utils.get_input_tensor_by_name(request, n).as_numpy() for n in self.input_names}
            groups[int(feeds[LENGTH_INPUT].shape[1])].append((r, feeds))
        for length, members in groups.items():
            try:
                feeds = {n: np.concatenate([m[1][n] for m in members]) for n in self.input_names}
                outputs = self.session.run(feeds)
                start = 0
                for r, member in members:
                    stop = start + member[LENGTH_INPUT].shape[0]
                    tensors = [
                        pb_utils.Tensor(n, np.ascontiguousarray(outputs[n][start:stop]).astype(self.dtypes[n], copy=False))
                        for n in self.output_names
                    ]
                    responses[r] = pb_utils.InferenceResponse(output_tensors=tensors)
                    start = stop
            except Exception as e:  # a runtime failure fails this group's requests, never the server
                message = f"paee_head: batch of padded length {length} failed: {e}"
                pb_utils.Logger.log_error(message)
                for r, _ in members:
                    responses[r] = pb_utils.InferenceResponse(error=pb_utils.TritonError(message))
        return responses

    def finalize(self) -> None:
        """Drop the session (its memory is released with it)."""
        self.session = None
