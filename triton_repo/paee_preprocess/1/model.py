"""Triton python model ``paee_preprocess``: JSON bytes of one document -> featurizer tensors.

Input ``DOCUMENT`` (TYPE_STRING, one document per batch row): UTF-8 JSON in DocRED form or text form
(`paee.data.docred.parse_document` reads both), optionally with per-request ``"options"`` (`REQUEST_OPTIONS`):
``{"truncate": true}`` cuts a document over the repository's ``max_length`` instead of failing it, and the
response then lists the lost mentions in ``warnings``. Outputs: the contract's `PREPROCESS_OUTPUTS`
(`paee.runtime.contract`), collated by the package's one `collate` with ``input_ids`` /
``attention_mask`` padded to a *length bucket* (by default a multiple of 64) rather than to the
document's own length: requests of one bucket then have equal shapes, which is what Triton's dynamic
batcher needs to batch them for the encoder and the head.

The tokenizer, the featurizer settings and the serving settings (buckets, payload limit) travel inside
this model's version folder (``1/assets/``), written by `paee_export.repository.write_repository`.
Imports: the data layer and the runtime floor only (never torch).
"""

from __future__ import annotations

import json
from typing import Any

import triton_python_backend_utils as pb_utils

from paee.data.docred import parse_document
from paee.data.errors import PaeeDataError
from paee.data.featurizer import DocFeatures, Featurizer, FeaturizerConfig, collate
from paee.data.schema import describe_document
from paee.data.tokenizer import load_tokenizer
from paee.errors import PaeeError
from paee.runtime.batching import ModelIO
from paee.runtime.contract import REQUEST
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


class TritonPythonModel:
    """Tokenize and featurize documents; one response per request, errors per request."""

    def initialize(self, args: dict[str, str]) -> None:
        """Load the tokenizer and the settings from ``1/assets/``; read the outputs from the model config."""
        self.io = ModelIO.from_args(args, pb_utils)
        assets = self.io.version_dir / ASSETS
        self.settings = ServingSettings.from_json(read_json(assets / SERVING_FILE))
        # No relation vocabulary: labels a client may send along are validated but never featurized.
        self.featurizer = Featurizer(load_tokenizer(assets), FeaturizerConfig.from_json(read_json(assets / FEATURIZER_FILE)))

    def _parse(self, raw: Any, index: int) -> tuple[Any, dict[str, Any]]:
        """One DOCUMENT element -> (validated `Document`, its options); every failure is a `PaeeDataError`
        naming the document."""
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
        options = request_options(obj, where)
        return parse_document(obj, index, entity_types=self.featurizer.config.entity_types), options  # the model's schema

    def execute(self, requests: list[Any]) -> list[Any]:
        """Featurize every document of every request in one tokenizer call; one response per request."""
        # (request, row) -> Document or error; all good documents are featurized together.
        per_request: list[list[Any]] = []
        docs, truncate, slots = [], [], []
        for r, request in enumerate(requests):
            rows = pb_utils.get_input_tensor_by_name(request, REQUEST).as_numpy().reshape(-1)
            parsed = []
            for i, raw in enumerate(rows):
                try:
                    doc, options = self._parse(raw, i)
                    parsed.append(doc)
                    docs.append(doc)
                    truncate.append(options.get("truncate", False))
                    slots.append((r, i))
                except PaeeDataError as e:
                    parsed.append(e)
            per_request.append(parsed)
        if docs:
            for (r, i), result in zip(slots, self.featurizer.featurize_many(docs, errors="collect", truncate=truncate)):
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
            except PaeeError as e:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(e))))
        return responses

    def _outputs(self, features: list[DocFeatures]) -> list[Any]:
        """Tensors of one request's documents, padded to the bucket of its longest."""
        length = self.settings.bucket(max(f.num_tokens for f in features))
        batch = collate(features, pad_id=self.featurizer.spec.pad_id, max_length=length, length=length)
        return [pb_utils.Tensor(name, batch[name].astype(dtype, copy=False)) for name, dtype in self.io.output_dtypes.items()]

    def finalize(self) -> None:
        """Nothing to release: the tokenizer is freed with the process."""
