"""Triton python model ``paee_preprocess``: JSON bytes of one document -> featurizer tensors.

Input ``DOCUMENT`` (TYPE_STRING, one document per batch row): UTF-8 JSON in DocRED form or text form
(`paee.data.docred.parse_document` reads both). Outputs: the contract's `PREPROCESS_OUTPUTS`
(`paee.runtime.contract`), collated by the package's one `collate` with ``input_ids`` /
``attention_mask`` padded to a *length bucket* (by default a multiple of 64) rather than to the
document's own length: requests of one bucket then have equal shapes, which is what Triton's dynamic
batcher needs to batch them for the encoder and the head.

The tokenizer, the featurizer settings and the serving settings (buckets, payload limit, detection)
travel inside this model's version folder (``1/assets/``), written by
`paee_export.repository.write_repository`.

**Plain text** ``{"title", "text"}`` (no ``entities``; optionally ``"keep_first_entities": true``) is read
where the repository was exported with a detector (``paee-export --detector``; ``serving.json``'s
``detection``): the entities are found (`paee.data.detect.Detection`), and what was found travels to the
postprocess model as ``detected`` (JSON), which names the entities in the response. Without a detector
such a request gets an error naming the export option. Imports: the data layer and the runtime floor
only (never torch).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from paee.data.detect import entity_summary
from paee.data.docred import parse_document
from paee.data.errors import PaeeDataError
from paee.data.featurizer import DocFeatures, Featurizer, FeaturizerConfig, collate
from paee.data.schema import describe_document
from paee.data.tokenizer import load_tokenizer
from paee.errors import PaeeError
from paee.runtime.batching import ModelIO
from paee.runtime.contract import DETECTION_FIELDS, REQUEST
from paee.runtime.layout import ASSETS, FEATURIZER_FILE, SERVING_FILE, ServingSettings, read_json


(DETECTED,) = DETECTION_FIELDS


class TritonPythonModel:
    """Tokenize and featurize documents; one response per request, errors per request."""

    def initialize(self, args: dict[str, str]) -> None:
        """Load the tokenizer and the settings from ``1/assets/``; read the outputs from the model config."""
        self.io = ModelIO.from_args(args, pb_utils)
        assets = self.io.version_dir / ASSETS
        self.settings = ServingSettings.from_json(read_json(assets / SERVING_FILE))
        # No relation vocabulary: labels a client may send along are validated but never featurized.
        self.featurizer = Featurizer(load_tokenizer(assets), FeaturizerConfig.from_json(read_json(assets / FEATURIZER_FILE)))
        # The detector is loaded once per instance (a spaCy pipeline takes a second or two).
        detection = self.settings.detection
        self.detection = None if detection is None else detection.build(self.featurizer.config)

    def _parse(self, raw: Any, index: int) -> tuple[Any, bytes]:
        """One DOCUMENT element -> (validated `Document`, ``detected`` JSON bytes or b""); every failure is a
        `PaeeDataError` naming the document."""
        where = describe_document(index, None)
        if not isinstance(raw, (bytes, bytearray)):
            raw = str(raw).encode("utf-8")
        if len(raw) > self.settings.max_document_bytes:
            raise PaeeDataError(
                f"{where}: payload of {len(raw)} bytes exceeds the limit of {self.settings.max_document_bytes} bytes "
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
        entity_types = self.featurizer.config.entity_types  # the model's schema
        if not (isinstance(obj, dict) and "text" in obj and "entities" not in obj):
            return parse_document(obj, index, entity_types=entity_types), b""
        if self.detection is None:
            raise PaeeDataError(f"{describe_document(index, obj.get('title'))}: plain text without 'entities' needs "
                                "a repository exported with a detector (paee-export --detector spacy|rule); this "
                                "one was exported without, so send the entities with their character offsets")
        found = self.detection.document(obj, index)
        detected = json.dumps(entity_summary(found), ensure_ascii=False).encode("utf-8")
        return parse_document(found, index, entity_types=entity_types), detected

    def execute(self, requests: list[Any]) -> list[Any]:
        """Featurize every document of every request in one tokenizer call; one response per request."""
        # (request, row) -> Document or error; all good documents are featurized together.
        per_request: list[list[Any]] = []
        detected: list[list[bytes]] = []  # per request, per document: what detection found (b"": nothing ran)
        docs, slots = [], []
        for r, request in enumerate(requests):
            rows = pb_utils.get_input_tensor_by_name(request, REQUEST).as_numpy().reshape(-1)
            parsed, found = [], []
            for i, raw in enumerate(rows):
                try:
                    doc, info = self._parse(raw, i)
                    parsed.append(doc)
                    found.append(info)
                    docs.append(doc)
                    slots.append((r, i))
                except PaeeDataError as e:
                    parsed.append(e)
                    found.append(b"")
            per_request.append(parsed)
            detected.append(found)
        if docs:
            for (r, i), result in zip(slots, self.featurizer.featurize_many(docs, errors="collect")):
                per_request[r][i] = result
        responses = []
        for parsed, found in zip(per_request, detected):
            errors = [p for p in parsed if isinstance(p, Exception)]
            if errors:
                # One request, one response: a request's first bad document fails the request.
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(errors[0]))))
                continue
            try:
                responses.append(pb_utils.InferenceResponse(output_tensors=self._outputs(parsed, found)))
            except PaeeError as e:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(e))))
        return responses

    def _outputs(self, features: list[DocFeatures], detected: list[bytes]) -> list[Any]:
        """Tensors of one request's documents, padded to the bucket of its longest."""
        length = self.settings.bucket(max(f.num_tokens for f in features))
        batch = collate(features, pad_id=self.featurizer.spec.pad_id, max_length=length, length=length)
        batch[DETECTED] = np.array(detected, dtype=np.object_).reshape(-1, 1)  # [B, 1]
        return [pb_utils.Tensor(name, batch[name].astype(dtype, copy=False)) for name, dtype in self.io.output_dtypes.items()]

    def finalize(self) -> None:
        """Nothing to release: the tokenizer is freed with the process."""
