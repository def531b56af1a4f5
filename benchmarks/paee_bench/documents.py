"""The documents a benchmark runs on: a DocRED-format file (first ``limit`` documents) or a seeded synthetic set.

Documents the checkpoint's featurizer refuses (too many entities, mentions or sentences) are left out and
counted with the first reasons, never silently; documents over the length limit are truncated when the
featurizer is configured to (``truncate``), as `paee-predict` does for real data.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paee.data.docred import read_documents
from paee.data.errors import PaeeDataError
from paee.data.featurizer import DocFeatures, Featurizer
from paee.data.schema import Document
from paee.data.synthetic import generate_corpus

#: How many refusal reasons the report quotes.
QUOTED_REASONS = 5


@dataclass
class DocumentSet:
    """Documents that the featurizer accepts, their features, and what was left out."""

    source: str
    docs: list[Document]
    features: list[DocFeatures]
    skipped: int = 0
    skipped_reasons: list[str] = field(default_factory=list)

    @property
    def labelled(self) -> bool:
        return any(doc.facts for doc in self.docs)

    def summary(self, window: int) -> dict[str, Any]:
        tokens = [f.num_tokens for f in self.features]
        entities = [f.num_entities for f in self.features]
        return {
            "source": self.source,
            "count": len(self.docs),
            "skipped": self.skipped,
            "skipped_reasons": self.skipped_reasons,
            "labelled": self.labelled,
            "tokens": _spread(tokens),
            "entities": _spread(entities),
            "longer_than_window": sum(t > window for t in tokens),
            "truncated": sum(bool(f.lost_mentions) for f in self.features),
        }


def _spread(values: Sequence[int]) -> dict[str, float]:
    if not values:
        return {}
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "mean": round(statistics.fmean(values), 1)}


def load_documents(path: str | Path | None, limit: int | None, synthetic_count: int, seed: int) -> tuple[list[Document], str]:
    """Documents of ``path`` (its first ``limit``), or ``synthetic_count`` seeded synthetic ones; and a description."""
    if path is None:
        docs = generate_corpus(n_docs=synthetic_count, seed=f"paee-bench-{seed}")
        return docs, f"synthetic (paee.data.synthetic, seed 'paee-bench-{seed}', {synthetic_count} documents)"
    path = Path(path)
    if not path.is_file():
        raise PaeeDataError(f"--docs {path}: no such file")
    docs = read_documents(path)  # DocumentError names the document and field
    described = f"{path} ({len(docs)} documents"
    if limit is not None and limit < len(docs):
        docs = docs[:limit]
        described += f", the first {limit} used"
    return docs, described + ")"


def featurize_set(docs: Sequence[Document], featurizer: Featurizer, source: str) -> DocumentSet:
    """Keep the documents the featurizer accepts; relations unknown to the checkpoint are dropped from the labels."""
    relations = featurizer.relations
    usable = [
        dataclasses.replace(d, facts=tuple(f for f in d.facts if f.relation in relations)) if relations is not None else d
        for d in docs
    ]
    results = featurizer.featurize_many(usable, errors="collect")
    kept = [(d, r) for d, r in zip(usable, results) if not isinstance(r, PaeeDataError)]
    reasons = [f"{d.where}: {r}" for d, r in zip(usable, results) if isinstance(r, PaeeDataError)]
    if not kept:
        raise PaeeDataError(f"{source}: the featurizer refused every document, e.g. {reasons[:QUOTED_REASONS]}")
    return DocumentSet(source, [d for d, _ in kept], [f for _, f in kept], len(reasons), reasons[:QUOTED_REASONS])


__all__ = ["DocumentSet", "load_documents", "featurize_set"]
