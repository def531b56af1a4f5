"""Triton python model ``paee_postprocess``: logits -> JSON relation triples with relation names.

Inputs: the contract's `POSTPROCESS_INPUTS` (``logits`` [P, R], ``pair_prob`` [P] and ``evidence_dist`` [P, S]
per document from ``paee_head``; ``pair_index`` [P, 2], ``pair_mask`` [P], ``title``, ``warnings`` and ``detected``
from ``paee_preprocess``; a request's documents cut to their own pairs by `paee.runtime.pipeline.document_outputs`).
Output ``TRIPLES`` (TYPE_STRING): UTF-8 JSON ``{"title": ..., "triples": [{"h_idx", "t_idx", "r", "r_name", "score",
"evidence"}, ...]}`` per document (for plain text, whose entities the preprocess model found and sent as
``detected``: `paee.data.detect.raw_result`, ``{"title", "entities", "triples"`` with ``h_name``/``t_name``,
``"detection"}``), plus ``"warnings": [...]`` when the preprocess model had something to tell (a document cut at
the request's ask, with each lost mention); decoded by the one decoder of the package (`paee.data.decode`:
logit_r > logit_TH; gating, top-k and the evidence threshold as the export says) into its one record form
(`triple_record`). The relation
vocabulary and the decoding settings travel in ``1/assets/``. Imports: the data layer and the runtime
floor only (never torch).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from paee.data.decode import DecodeConfig, triple_record
from paee.data.detect import raw_result
from paee.data.relations import RelationVocab
from paee.runtime.batching import ModelIO
from paee.runtime.contract import DETECTION_FIELDS, RESPONSE
from paee.runtime.layout import ASSETS, DECODE_FILE, POSTPROCESS, RELATIONS_FILE, read_json
from paee.runtime.pipeline import DocOutput, decode_output, document_outputs


(DETECTED,) = DETECTION_FIELDS


class TritonPythonModel:
    """Decode each document's logits into triples; one response per request."""

    def initialize(self, args: dict[str, str]) -> None:
        """Read the relation vocabulary and the decoding settings from ``1/assets/``."""
        self.io = ModelIO.from_args(args, pb_utils)
        assets = self.io.version_dir / ASSETS
        self.relations = RelationVocab.from_json(read_json(assets / RELATIONS_FILE))
        self.decode_config = DecodeConfig.from_json(read_json(assets / DECODE_FILE))

    def _document(self, out: DocOutput, title: str, warnings: list[str], detected: bytes) -> bytes:
        """JSON bytes of one document's triples (named after the detected entities for plain text; with its
        warnings, if any)."""
        triples = decode_output(out, self.decode_config)
        records = [triple_record(t, self.relations) for t in triples]
        result = raw_result(title, json.loads(detected), records) if detected else {"title": title, "triples": records}
        if warnings:
            result["warnings"] = warnings
        return json.dumps(result, ensure_ascii=False).encode("utf-8")

    def execute(self, requests: list[Any]) -> list[Any]:
        """Decode every document of every request; a failure fails only its request."""
        responses = []
        for request in requests:
            try:
                inputs = {name: pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in self.io.input_names}
                titles = inputs["title"].reshape(-1)  # [B]
                warnings = inputs["warnings"].reshape(-1)  # [B] JSON lists
                detected = inputs[DETECTED].reshape(-1)  # [B]
                documents = document_outputs(inputs, inputs)  # each cut to its real pairs
                out = np.empty((len(documents), 1), dtype=np.object_)  # [B, 1]
                for b, doc in enumerate(documents):
                    title = titles[b].decode("utf-8") if isinstance(titles[b], bytes) else str(titles[b])
                    out[b, 0] = self._document(doc, title, json.loads(bytes(warnings[b]).decode("utf-8")), bytes(detected[b]))
                responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(RESPONSE, out)]))
            except Exception as e:  # one bad request fails alone
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"{POSTPROCESS}: {e}")))
        return responses

    def finalize(self) -> None:
        """Nothing to release."""
