"""Triton python model ``paee_preprocess``: JSON bytes of one document -> featurizer tensors.

Input ``DOCUMENT`` (TYPE_STRING, one document per batch row): UTF-8 JSON in DocRED form or text form
(`paee.data.docred.parse_document` reads both). Outputs: the tensor contract of README.md, with
``input_ids`` / ``attention_mask`` padded to a *length bucket* (by default a multiple of 64) rather than to
the document's own length: requests of one bucket then have equal shapes, which is what Triton's
dynamic batcher needs to batch them for the encoder and the head. Plus ``num_entities`` and ``TITLE``
for the postprocess model.

The tokenizer (``tokenizer.json``), the featurizer settings and the serving settings (buckets, payload
limit) travel inside this model's version folder (``1/assets/``), written by
`paee_export.repository.write_repository`. Imports: the data layer and numpy only (never torch).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from paee.data.docred import parse_document
from paee.data.errors import PaeeDataError
from paee.data.featurizer import DocFeatures, Featurizer, FeaturizerConfig
from paee.data.schema import describe_document
from paee.data.tokenizer import TokenizerSpec, load_tokenizer

ASSETS = "assets"
FEATURIZER_FILE = "featurizer.json"
SERVING_FILE = "serving.json"
INPUT_NAME = "DOCUMENT"
TITLE_NAME = "TITLE"
NUM_ENTITIES_NAME = "num_entities"
#: Outputs stacked from `DocFeatures` fields of the same name (fixed N, M, S shapes).
FIXED_OUTPUTS = ("mention_pos", "mention_mask", "entity_type", "entity_mask", "sent_span", "sent_mask", "same_sent")


class RequestError(ValueError):
    """One request cannot be served; the message goes back to its client."""


def bucket_length(num_tokens: int, buckets: list[int]) -> int:
    """The smallest bucket that holds ``num_tokens`` (the featurizer already enforced the maximum)."""
    for bucket in buckets:
        if num_tokens <= bucket:
            return bucket
    raise RequestError(f"{num_tokens} wordpieces exceed the largest length bucket {buckets[-1]}")


class TritonPythonModel:
    """Tokenize and featurize documents; one response per request, errors per request."""

    def initialize(self, args: dict[str, str]) -> None:
        """Load the tokenizer and the settings from ``1/assets/``; read output dtypes from the model config."""
        self.model_config = json.loads(args["model_config"])
        assets = Path(args["model_repository"]) / args["model_version"] / ASSETS
        settings = json.loads((assets / SERVING_FILE).read_text(encoding="utf-8"))
        featurizer_config = FeaturizerConfig.from_json((assets / FEATURIZER_FILE).read_text(encoding="utf-8"))
        tokenizer = load_tokenizer(assets)
        # No relation vocabulary: labels a client may send along are validated but never featurized.
        self.featurizer = Featurizer(tokenizer, featurizer_config)
        self.pad_id = TokenizerSpec.from_tokenizer(tokenizer, featurizer_config.marker).pad_id
        self.buckets = [int(b) for b in settings["buckets"]]
        self.max_document_bytes = int(settings["max_document_bytes"])
        self.dtypes = {
            out["name"]: pb_utils.triton_string_to_numpy(out["data_type"]) for out in self.model_config["output"]
        }
        self.logger = pb_utils.Logger

    def _parse(self, raw: Any, index: int) -> Any:
        """One DOCUMENT element -> validated `Document`; every failure is a `PaeeDataError` naming the document."""
        where = describe_document(index, None)
        if not isinstance(raw, (bytes, bytearray)):
            raw = str(raw).encode("utf-8")
        if len(raw) > self.max_document_bytes:
            raise PaeeDataError(
                f"{where}: payload of {len(raw)} bytes exceeds the limit of {self.max_document_bytes} bytes "
                "(serving.json max_document_bytes; DocRED documents are under 100 kB)"
            )
        if not raw.strip():
            raise PaeeDataError(f"{where}: empty document (expected UTF-8 JSON of one document)")
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as e:
            raise PaeeDataError(f"{where}: the document is not valid UTF-8 ({e})") from e
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise PaeeDataError(f"{where}: invalid JSON: {e}") from e
        return parse_document(obj, index)

    def execute(self, requests: list[Any]) -> list[Any]:
        """Featurize every document of every request in one tokenizer call; one response per request."""
        # (request, row) -> Document or error; all good documents are featurized together.
        per_request: list[list[Any]] = []
        docs, slots = [], []
        for r, request in enumerate(requests):
            rows = pb_utils.get_input_tensor_by_name(request, INPUT_NAME).as_numpy().reshape(-1)
            parsed = []
            for i, raw in enumerate(rows):
                try:
                    parsed.append(self._parse(raw, i))
                    docs.append(parsed[-1])
                    slots.append((r, i))
                except PaeeDataError as e:
                    parsed.append(e)
            per_request.append(parsed)
        if docs:
            for (r, i), result in zip(slots, self.featurizer.featurize_many(docs, errors="collect")):
                per_request[r][i] = result
        responses = []
        for parsed in per_request:
            errors = [p for p in parsed if isinstance(p, Exception)]
            if errors:
                # One request, one response: a request's first bad document fails the request.
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(errors[0]))))
                continue
            try:
                responses.append(pb_utils.InferenceResponse(output_tensors=self._outputs(parsed)))
            except RequestError as e:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(e))))
        return responses

    def _outputs(self, features: list[DocFeatures]) -> list[Any]:
        """Tensors of one request's documents, padded to the bucket of its longest."""
        B = len(features)
        L = bucket_length(max(f.num_tokens for f in features), self.buckets)
        input_ids = np.full((B, L), self.pad_id, dtype=np.int64)  # [B, L]
        attention_mask = np.zeros((B, L), dtype=np.int64)  # [B, L]
        for b, f in enumerate(features):
            input_ids[b, : f.num_tokens] = f.input_ids
            attention_mask[b, : f.num_tokens] = 1
        arrays: dict[str, np.ndarray] = {"input_ids": input_ids, "attention_mask": attention_mask}
        for name in FIXED_OUTPUTS:
            arrays[name] = np.stack([getattr(f, name) for f in features])
        arrays[NUM_ENTITIES_NAME] = np.asarray([[f.num_entities] for f in features], dtype=np.int64)  # [B, 1]
        arrays[TITLE_NAME] = np.asarray([[f.title.encode("utf-8")] for f in features], dtype=np.object_)  # [B, 1]
        return [pb_utils.Tensor(name, value.astype(self.dtypes[name], copy=False)) for name, value in arrays.items()]

    def finalize(self) -> None:
        """Nothing to release: the tokenizer is freed with the process."""
