"""Calibration batches for static int8: documents -> encoder feeds (numpy only, no torch).

Static quantisation fixes every activation's range before deployment, so the ranges must come from
documents like the ones the model will read. `paee-export --precision int8 --calibration docs.json`
takes the user's documents (a dev split is the usual choice); without it, documents of the bundled
synthetic generator are used, which cover the lengths and entity counts of DocRED but not its
vocabulary: the export report says which set calibrated the graph.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from paee.data.errors import PaeeDataError
from paee.data.featurizer import Featurizer, collate
from paee.data.schema import Document
from paee.data.synthetic import generate_corpus
from paee.runtime.sessions import onnx_io_names
from paee_export.optimize import quantize_int8_static

#: Documents the ranges are calibrated on (min/max converges after a few dozen documents).
DEFAULT_CALIBRATION_DOCS = 64
#: Seed of the synthetic calibration documents (distinct from the parity documents' seed).
SYNTHETIC_CALIBRATION_SEED = "paee-export-calibration"


def calibration_documents(docs: Sequence[Document] | None, limit: int = DEFAULT_CALIBRATION_DOCS) -> tuple[list[Document], str]:
    """The first ``limit`` of ``docs``, or synthetic DocRED-like documents; and a description of the set."""
    if docs:
        chosen = list(docs[:limit])
        return chosen, f"{len(chosen)} given documents"
    return list(generate_corpus(n_docs=limit, seed=SYNTHETIC_CALIBRATION_SEED)), f"{limit} synthetic documents"


def calibration_feeds(
    featurizer: Featurizer, docs: Sequence[Document], window: int, input_names: Sequence[str] | None = None
) -> list[dict[str, np.ndarray]]:
    """One collated batch per document that fits the short encoder's ``window`` (bad documents skipped).

    Batch size 1: padding is then at most 7 tokens, so the calibrated ranges are those of real tokens.
    """
    pad_id = featurizer.spec.pad_id
    # labels play no part in calibration (and a relation outside the checkpoint's vocabulary would reject the document)
    unlabelled = [dataclasses.replace(doc, facts=()) for doc in docs]
    feeds: list[dict[str, Any]] = []
    errors: list[str] = []
    for result in featurizer.featurize_many(unlabelled, errors="collect"):
        if isinstance(result, PaeeDataError):
            errors.append(str(result))
        elif len(result.input_ids) <= window:
            batch = collate([result], pad_id=pad_id, max_length=window)
            feeds.append({name: batch[name] for name in input_names} if input_names else batch)
    if not feeds:
        why = f"; first error: {errors[0]}" if errors else ""
        raise PaeeDataError(f"none of {len(docs)} calibration documents fits the encoder window of {window} tokens{why}")
    return feeds


def quantize_encoder_static(
    source: str | Path, out_path: str | Path, featurizer: Featurizer, window: int,
    docs: Sequence[Document] | None = None,
) -> str:
    """`paee_export.optimize.quantize_int8_static` of an encoder file, calibrated on ``docs`` (default:
    synthetic documents) that fit its ``window``; returns what calibrated it (for reports)."""
    chosen, described = calibration_documents(docs)
    feeds = calibration_feeds(featurizer, chosen, window, onnx_io_names(source))
    quantize_int8_static(source, out_path, feeds)
    return f"{described}, {len(feeds)} within the {window}-token window"


__all__ = ["DEFAULT_CALIBRATION_DOCS", "calibration_documents", "calibration_feeds", "quantize_encoder_static"]
