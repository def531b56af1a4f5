"""Triton python model ``paee_head``: runs the exported head graph (CPU flavour).

The head graph (pair context, sliding fill, TNet, PPP, EER, classifier) runs inside this python model on
the session ``1/assets/runtime.json`` names (file, runtime, precision), as Triton's native onnxruntime
backend ships only in NVIDIA's container.

Requests are grouped by padded length L (``token_emb`` [B, L, H]; the preprocess model pads to length
buckets), their pair axes (``pair_index`` / ``pair_mask`` [B, P, ...], ragged in the config) padded to the
group's most pairs, concatenated along the batch axis, run once and split back, each request's
``logits`` / ``pair_prob`` / ``evidence_dist`` cut to its own P (`paee.runtime.batching`, shared with ``paee_encoder``): one
response per request, and a failure fails only its group. Imports: numpy
and the runtime floor only (never torch).
"""

from __future__ import annotations

from typing import Any

import triton_python_backend_utils as pb_utils

from paee.runtime.batching import ModelIO, execute_by_length
from paee.runtime.contract import HEAD, LENGTH_INPUT
from paee.runtime.layout import HEAD_MODEL, ModelRuntime


class TritonPythonModel:
    """Head runner: one session, batches grouped by length."""

    def initialize(self, args: dict[str, str]) -> None:
        """Create the runtime session of the head graph listed in ``1/assets/runtime.json``."""
        self.io = ModelIO.from_args(args, pb_utils)
        runtime = ModelRuntime.read(self.io.version_dir)
        (graph,) = runtime.graphs
        self.session = graph.session(self.io.version_dir, runtime.threads)

    def execute(self, requests: list[Any]) -> list[Any]:
        """Group requests by padded length, run each group once, split the outputs back per request."""
        return execute_by_length(
            pb_utils, requests, model=HEAD_MODEL, io=self.io, length_input=LENGTH_INPUT[HEAD],
            run=lambda _length, feeds: self.session.run(feeds),
        )

    def finalize(self) -> None:
        """Drop the session (its memory is released with it)."""
        self.session = None
