"""Corpus statistics: the numbers that decide model limits (N entities, sentences, length) and the task's sparsity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from paee.data.schema import Document

__all__ = ["corpus_stats", "format_stats"]


def _mean(values: Sequence[int]) -> float:
    return sum(values) / len(values) if values else 0.0


def corpus_stats(docs: Sequence[Document], max_entities: int = 42) -> dict[str, Any]:
    """Statistics of a corpus, as a JSON-serialisable dict.

    ``relational_pair_share`` is pooled over the corpus: ordered entity pairs ``(s, o)``, ``s != o``,
    that carry at least one relation, divided by all such pairs (DocRED: 3-7%).
    ``documents_over_max_entities`` counts documents with more than ``max_entities`` entities (the
    model's N), which the featurizer refuses.
    """
    entities = [d.num_entities for d in docs]
    sentences = [len(d.sents) for d in docs]
    words = [d.num_words for d in docs]
    mentions = [len(e) for d in docs for e in d.entities]
    pairs = sum(n * (n - 1) for n in entities)
    relational = sum(len({(f.head, f.tail) for f in d.facts if f.head != f.tail}) for d in docs)
    return {
        "documents": len(docs),
        "entities_mean": _mean(entities),
        "entities_max": max(entities, default=0),
        "mentions_per_entity_mean": _mean(mentions),
        "mentions_per_entity_max": max(mentions, default=0),
        "sentences_mean": _mean(sentences),
        "sentences_max": max(sentences, default=0),
        "words_mean": _mean(words),
        "words_max": max(words, default=0),
        "facts": sum(len(d.facts) for d in docs),
        "relation_types": len({f.relation for d in docs for f in d.facts}),
        "ordered_pairs": pairs,
        "relational_pairs": relational,
        "relational_pair_share": relational / pairs if pairs else 0.0,
        "max_entities": max_entities,
        "documents_over_max_entities": sum(n > max_entities for n in entities),
    }


def format_stats(stats: Mapping[str, Any]) -> str:
    """A two-column text table of `corpus_stats` output."""
    rows = [
        ("documents", f"{stats['documents']:,}"),
        ("entities per document", f"{stats['entities_mean']:.2f} (max {stats['entities_max']})"),
        ("mentions per entity", f"{stats['mentions_per_entity_mean']:.2f} (max {stats['mentions_per_entity_max']})"),
        ("sentences per document", f"{stats['sentences_mean']:.2f} (max {stats['sentences_max']})"),
        ("words per document", f"{stats['words_mean']:.1f} (max {stats['words_max']})"),
        ("relation labels (facts)", f"{stats['facts']:,}"),
        ("relation types used", f"{stats['relation_types']}"),
        ("relational ordered pairs", f"{stats['relational_pair_share']:.1%} "
                                     f"({stats['relational_pairs']:,} of {stats['ordered_pairs']:,})"),
        (f"documents over {stats['max_entities']} entities", f"{stats['documents_over_max_entities']}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
