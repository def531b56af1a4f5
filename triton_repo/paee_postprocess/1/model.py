"""Triton python model ``paee_postprocess``: logits -> JSON relation triples with relation names.

Inputs: ``logits`` [N, N, R] and ``pair_prob`` [N, N] per document (from ``paee_head``), ``num_entities``
[1] and ``TITLE`` [1] (from ``paee_preprocess``). Output ``TRIPLES`` (TYPE_STRING): UTF-8 JSON
``{"title": ..., "triples": [{"h_idx", "t_idx", "r", "r_name", "score"}, ...]}`` per document, decoded by
the one decoder of the package (`paee.data.decode.decode`: logit_r > logit_TH; optional PPP gating and
top-k as the checkpoint was trained). The relation vocabulary and the decoding settings travel in
``1/assets/``. Imports: the data layer and numpy only (never torch).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from paee.data.decode import decode
from paee.data.relations import RelationVocab

ASSETS = "assets"
RELATIONS_FILE = "relations.json"
DECODE_FILE = "decode.json"
OUTPUT_NAME = "TRIPLES"


class TritonPythonModel:
    """Decode each document's logits into triples; one response per request."""

    def initialize(self, args: dict[str, str]) -> None:
        """Read the relation vocabulary and the decoding settings from ``1/assets/``."""
        assets = Path(args["model_repository"]) / args["model_version"] / ASSETS
        self.relations = RelationVocab.from_json(json.loads((assets / RELATIONS_FILE).read_text(encoding="utf-8")))
        settings = json.loads((assets / DECODE_FILE).read_text(encoding="utf-8"))
        self.gate_threshold = settings.get("gate_threshold")
        self.top_k = settings.get("top_k")

    def _document(self, logits: np.ndarray, pair_prob: np.ndarray, n: int, title: str) -> bytes:
        """JSON bytes of one document's triples."""
        triples = decode(logits, n, pair_prob=pair_prob, gate_threshold=self.gate_threshold, top_k=self.top_k)
        records = [
            {
                "h_idx": t.head, "t_idx": t.tail, "r": self.relations.ids[t.relation],
                "r_name": self.relations.name(t.relation), "score": t.score,
            }
            for t in triples
        ]
        return json.dumps({"title": title, "triples": records}, ensure_ascii=False).encode("utf-8")

    def execute(self, requests: list[Any]) -> list[Any]:
        """Decode every document of every request; a failure fails only its request."""
        responses = []
        for request in requests:
            try:
                logits = pb_utils.get_input_tensor_by_name(request, "logits").as_numpy()  # [B, N, N, R]
                pair_prob = pb_utils.get_input_tensor_by_name(request, "pair_prob").as_numpy()  # [B, N, N]
                counts = pb_utils.get_input_tensor_by_name(request, "num_entities").as_numpy().reshape(-1)  # [B]
                titles = pb_utils.get_input_tensor_by_name(request, "TITLE").as_numpy().reshape(-1)  # [B]
                out = np.empty((len(counts), 1), dtype=np.object_)  # [B, 1]
                for b in range(len(counts)):
                    title = titles[b].decode("utf-8") if isinstance(titles[b], bytes) else str(titles[b])
                    out[b, 0] = self._document(logits[b], pair_prob[b], int(counts[b]), title)
                responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(OUTPUT_NAME, out)]))
            except Exception as e:  # one bad request fails alone
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"paee_postprocess: {e}")))
        return responses

    def finalize(self) -> None:
        """Nothing to release."""
