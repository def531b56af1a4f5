"""Triton python model ``paee_preprocess``: JSON bytes of one document -> featurizer tensors.

Input ``DOCUMENT`` (TYPE_STRING, one document per batch row): UTF-8 JSON in DocRED form or text form
(`paee.data.docred.parse_document` reads both), optionally with per-request ``"options"`` (`REQUEST_OPTIONS`):
``{"truncate": true}`` cuts a document over the repository's ``max_length`` instead of failing it, and the
response then lists the lost mentions in ``warnings``. Outputs: the contract's `PREPROCESS_OUTPUTS`
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
from paee.data.jsonio import loads_json
from paee.data.schema import describe_document
from paee.data.tokenizer import load_tokenizer
from paee.runtime.batching import ModelIO, error_response
from paee.runtime.contract import DETECTION_FIELDS, REQUEST
from paee.runtime.layout import ASSETS, FEATURIZER_FILE, SERVING_FILE, ServingSettings, read_json


#: Options a request document may carry under "options": name -> type.
REQUEST_OPTIONS = {"truncate": bool}


def request_options(obj: Any, where: str) -> dict[str, Any]:
    """Pop and check a request document's ``"options"`` (a `PaeeDataError` naming the field when bad)."""
    options = obj.pop("options", None) if isinstance(obj, dict) else None
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise PaeeDataError(f"{where}: options: expected an object like {{\"truncate\": true}}, got {type(options).__name__}")
    for name, value in options.items():
        if name not in REQUEST_OPTIONS:
            raise PaeeDataError(f"{where}: options.{name}: unknown option; options are {sorted(REQUEST_OPTIONS)}")
        if not isinstance(value, REQUEST_OPTIONS[name]):
            raise PaeeDataError(f"{where}: options.{name}: expected {REQUEST_OPTIONS[name].__name__}, got {value!r}")
    return options


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

    def _parse(self, raw: Any, index: int) -> tuple[Any, dict[str, Any], bytes]:
        """One DOCUMENT element -> (validated `Document`, its request options, ``detected`` JSON bytes or b"");
        every failure is a `PaeeDataError` naming the document."""
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
        obj = loads_json(raw, where)  # deep nesting, huge numbers, lone surrogates: a PaeeDataError too
        options = request_options(obj, where)
        entity_types = self.featurizer.config.entity_types  # the model's schema
        if not (isinstance(obj, dict) and "text" in obj and "entities" not in obj):
            return parse_document(obj, index, entity_types=entity_types), options, b""
        if self.detection is None:
            raise PaeeDataError(f"{describe_document(index, obj.get('title'))}: plain text without 'entities' needs "
                                "a repository exported with a detector (paee-export --detector spacy|rule); this "
                                "one was exported without, so send the entities with their character offsets")
        found = self.detection.document(obj, index)
        detected = json.dumps(entity_summary(found), ensure_ascii=False).encode("utf-8")
        return parse_document(found, index, entity_types=entity_types), options, detected

    def _read_request(self, request: Any) -> list[Any]:
        """A request's documents, each a (`Document`, options, detected) or the exception that refused it."""
        rows = pb_utils.get_input_tensor_by_name(request, REQUEST).as_numpy().reshape(-1)
        parsed: list[Any] = []
        for i, raw in enumerate(rows):
            try:
                parsed.append(self._parse(raw, i))
            except Exception as e:  # PaeeDataError, or a bug: either way this document's own failure
                parsed.append(e)
        return parsed

    def _featurize(self, per_request: list[list[Any]]) -> None:
        """Replace every (`Document`, options, detected) by (its features, detected) or its error, in place: one
        tokenizer pass over all the requests' documents; should that pass fail as a whole, each request is
        featurized alone."""
        slots = [(r, i) for r, parsed in enumerate(per_request) for i, p in enumerate(parsed) if not isinstance(p, Exception)]

        def featurize(items: list[tuple[Any, dict[str, Any], bytes]]) -> list[Any]:
            results = self.featurizer.featurize_many([d for d, _, _ in items], errors="collect",
                                                     truncate=[o.get("truncate", False) for _, o, _ in items])
            return [r if isinstance(r, Exception) else (r, found) for r, (_, _, found) in zip(results, items)]

        try:
            results = featurize([per_request[r][i] for r, i in slots])
        except Exception:  # not a document's data error (those are collected): find the request it belongs to
            for parsed in per_request:
                own = [i for i, p in enumerate(parsed) if not isinstance(p, Exception)]
                try:
                    for i, result in zip(own, featurize([parsed[i] for i in own])):
                        parsed[i] = result
                except Exception as e:
                    for i in own:
                        parsed[i] = e
            return
        for (r, i), result in zip(slots, results):
            per_request[r][i] = result

    def execute(self, requests: list[Any]) -> list[Any]:
        """Featurize every document of every request in one tokenizer call; one response per request, and a
        request's failure (its bad document, or any exception while answering it) is its own error response
        (`error_response`: 400-class for the caller's data, no traceback) while the others are served."""
        per_request: list[list[Any]] = []
        for request in requests:
            try:
                per_request.append(self._read_request(request))
            except Exception as e:  # a request without the DOCUMENT tensor, say
                per_request.append([e])
        self._featurize(per_request)
        responses = []
        for parsed in per_request:
            errors = [p for p in parsed if isinstance(p, Exception)]
            try:
                if errors:  # one request, one response: a request's first bad document fails the request
                    raise errors[0]
                responses.append(pb_utils.InferenceResponse(output_tensors=self._outputs(
                    [features for features, _ in parsed], [found for _, found in parsed])))
            except Exception as e:
                responses.append(error_response(pb_utils, "paee_preprocess", e))
        return responses

    def _outputs(self, features: list[DocFeatures], detected: list[bytes]) -> list[Any]:
        """Tensors of one request's documents, padded to the bucket of its longest."""
        length = self.settings.bucket(max(f.num_tokens for f in features))
        batch = collate(features, pad_id=self.featurizer.spec.pad_id, max_length=length, length=length)
        batch[DETECTED] = np.array(detected, dtype=np.object_).reshape(-1, 1)  # [B, 1]
        return [pb_utils.Tensor(name, batch[name].astype(dtype, copy=False)) for name, dtype in self.io.output_dtypes.items()]

    def finalize(self) -> None:
        """Nothing to release: the tokenizer is freed with the process."""
