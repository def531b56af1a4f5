"""Accuracy parity of the exported graphs with the PyTorch model, per graph and per precision.

``parity_report(model, docs, featurizer, variants)`` runs the PyTorch model once and every variant
(an `OnnxPipeline`: the files of an export plan on their runtimes) on the same batches, and reports for
each variant:

* ``encoder``: max / mean abs diff of token_emb, entity_emb, entity_attn (ONNX encoder vs PyTorch);
* ``head``: max / mean abs diff of logits and pair_prob, the ONNX head fed PyTorch's encoder outputs
  (isolates the head's own error);
* ``end_to_end``: ONNX encoder -> ONNX head vs PyTorch: logit diffs over each document's real pairs,
  predicted-triple agreement (Jaccard of the (document, head, tail, relation) sets, and the
  share of documents whose triples are identical), evidence agreement (the triples both predict whose
  evidence sentence sets are identical, and the Jaccard of the (document, head, tail, relation, sentence)
  sets), and with gold labels the F1 / Ign-less F1 change (``paee.evaluation.metrics.evaluate``);
* graph statistics of its files and the library versions.

``format_parity_table(report)`` renders the report as a fixed-width text table.
"""

from __future__ import annotations

import importlib.metadata
import platform
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from paee.data.decode import DecodeConfig
from paee.data.featurizer import Featurizer, collate
from paee.data.schema import Document
from paee.evaluation.metrics import score_triples
from paee.inference import to_tensors
from paee.model.paee import PaeeModel
from paee.runtime.contract import ENCODER_OUTPUTS, HEAD_OUTPUTS, MODEL_INPUTS
from paee.runtime.pipeline import DocOutput, OnnxPipeline, decode_output, document_outputs, length_batches
from paee_export.optimize import graph_stats

#: Packages whose versions the report records.
VERSIONED_PACKAGES = ("torch", "onnx", "onnxruntime", "openvino", "transformers", "tokenizers", "numpy")


@dataclass
class Variant:
    """One deployment to compare with PyTorch: the pipeline over its graphs, what it ships, its files."""

    pipeline: OnnxPipeline
    precision: str = "fp32"
    files: list[Path] = field(default_factory=list)  # files whose statistics go into the report


def versions() -> dict[str, str | None]:
    """Installed versions of the packages that decide numerical results (None = not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


class _DiffAccumulator:
    """Running max and mean of |a - b| per output name."""

    def __init__(self) -> None:
        self.max: dict[str, float] = {}
        self.sum: dict[str, float] = {}
        self.count: dict[str, int] = {}

    def add(self, name: str, expected: np.ndarray, got: np.ndarray) -> None:
        diff = np.abs(expected.astype(np.float64) - got.astype(np.float64))
        if diff.size == 0:
            return
        self.max[name] = max(self.max.get(name, 0.0), float(diff.max()))
        self.sum[name] = self.sum.get(name, 0.0) + float(diff.sum())
        self.count[name] = self.count.get(name, 0) + int(diff.size)

    def result(self) -> dict[str, dict[str, float]]:
        return {n: {"max_abs": self.max[n], "mean_abs": self.sum[n] / self.count[n]} for n in self.max}


def _triple_sets(triples_per_doc: Sequence[Sequence[Any]]) -> list[set[tuple[int, int, int]]]:
    return [{(t.head, t.tail, t.relation) for t in triples} for triples in triples_per_doc]


def triple_agreement(reference: Sequence[Sequence[Any]], other: Sequence[Sequence[Any]]) -> dict[str, float]:
    """Jaccard of the (doc, head, tail, relation) sets and the share of documents with identical triples."""
    ref_sets, other_sets = _triple_sets(reference), _triple_sets(other)
    inter = sum(len(a & b) for a, b in zip(ref_sets, other_sets))
    union = sum(len(a | b) for a, b in zip(ref_sets, other_sets))
    same_docs = sum(a == b for a, b in zip(ref_sets, other_sets))
    return {
        "jaccard": inter / union if union else 1.0,
        "identical_documents": same_docs / len(ref_sets) if ref_sets else 1.0,
        "reference_triples": float(sum(len(a) for a in ref_sets)),
        "variant_triples": float(sum(len(b) for b in other_sets)),
    }


#: Evidence shares (fractions of a pair's attention) of two runtimes agree to this: a sentence whose share lies
#: this close to the threshold may fall on either side without the runtimes disagreeing.
EVIDENCE_ATOL = 1e-4


def evidence_agreement(reference: Sequence[Sequence[Any]], other: Sequence[Sequence[Any]],
                       reference_outputs: Sequence[DocOutput] | None = None, threshold: float | None = None,
                       atol: float = EVIDENCE_ATOL) -> dict[str, float]:
    """Evidence of the triples both sides predict (`Triple`s per document): the share whose sentence sets are
    identical, the Jaccard of the (doc, head, tail, relation, sentence) sets (1.0 where there is nothing to
    compare), and how many evidence sentences the reference gave those triples. With the reference's outputs and the threshold, a triple whose sets differ only at sentences whose
    reference share lies within ``atol`` of the threshold is ``borderline`` (rounding), any other is ``differing``."""
    compared = same = borderline = inter = union = sentences = 0
    for doc, (ref_triples, other_triples) in enumerate(zip(reference, other)):
        theirs = {(t.head, t.tail, t.relation): set(t.evidence or ()) for t in other_triples}
        out = reference_outputs[doc] if reference_outputs is not None and threshold is not None else None
        rows = {(int(h), int(t)): i for i, (h, t) in enumerate(out.pair_index)} if out is not None else {}
        for t in ref_triples:
            key = (t.head, t.tail, t.relation)
            if key not in theirs:
                continue
            mine, differ = set(t.evidence or ()), set(t.evidence or ()) ^ theirs[key]
            compared += 1
            sentences += len(mine)
            inter += len(mine & theirs[key])
            union += len(mine | theirs[key])
            if not differ:
                same += 1
            elif out is not None and out.evidence_dist is not None:
                shares = out.evidence_dist[rows[(t.head, t.tail)]]
                borderline += all(abs(float(shares[s]) - threshold) <= atol for s in differ)  # type: ignore[operator]
    return {"compared_triples": float(compared), "reference_sentences": float(sentences),
            "identical": same / compared if compared else 1.0,
            "borderline": float(borderline), "differing": float(compared - same - borderline),
            "jaccard": inter / union if union else 1.0}


def pair_argmax_agreement(reference: Sequence[np.ndarray], other: Sequence[np.ndarray]) -> float:
    """Share of real pairs (the rows of each document's logits [p, R]) whose best class (NA included) is
    the same.

    Meaningful even when a briefly trained model predicts no triple at all (every pair NA), where the
    triple Jaccard is trivially 1.
    """
    same = sum(int((ref.argmax(-1) == got.argmax(-1)).sum()) for ref, got in zip(reference, other))
    total = sum(ref.shape[0] for ref in reference)
    return same / total if total else 1.0


def parity_report(
    model: PaeeModel,
    docs: Sequence[Document],
    featurizer: Featurizer,
    variants: Mapping[str, Variant],
    batch_size: int = 8,
    progress: bool = False,
    decode_config: DecodeConfig | None = None,
) -> dict[str, Any]:
    """Compare every variant with the PyTorch model on ``docs`` (see the module docstring); PyTorch's outputs
    are decoded with ``decode_config`` (the checkpoint's: gating, evidence threshold), each variant's by its
    pipeline."""
    features = featurizer.featurize_many(docs)
    pad_id, max_length = featurizer.spec.pad_id, featurizer.config.max_length
    enc_diff = {name: _DiffAccumulator() for name in variants}
    head_diff = {name: _DiffAccumulator() for name in variants}
    e2e_diff = {name: _DiffAccumulator() for name in variants}
    # end-to-end logit diffs per window count of the document (1 = one encoder pass; k > 1: k windows merged)
    windows = [model.encoder.windows_for(f.num_tokens) for f in features]
    by_windows = {name: defaultdict(_DiffAccumulator) for name in variants}
    reference_outputs: list[DocOutput | None] = [None] * len(features)
    variant_outputs: dict[str, list[DocOutput | None]] = {name: [None] * len(features) for name in variants}
    was_training = model.training
    model.eval()
    batches = list(length_batches(features, batch_size))
    try:
        for step, idx in enumerate(batches):
            batch = collate([features[i] for i in idx], pad_id=pad_id, max_length=max_length)
            with torch.no_grad():
                tensors = to_tensors(batch, torch.device("cpu"), MODEL_INPUTS)
                encoded = model.encode(tensors)
                head_out = model.run_head(tensors, encoded)
            torch_enc = {k: getattr(encoded, k).float().numpy() for k in ENCODER_OUTPUTS}
            torch_head = {k: getattr(head_out, k).float().numpy() for k in HEAD_OUTPUTS}
            reference = document_outputs(torch_head, batch)
            for name, variant in variants.items():
                pipeline = variant.pipeline
                onnx_enc = pipeline.encode(batch)
                for k in ENCODER_OUTPUTS:
                    enc_diff[name].add(k, torch_enc[k], onnx_enc[k])
                isolated = pipeline.run_head(batch, torch_enc)  # the head on PyTorch's encoder outputs
                for k in HEAD_OUTPUTS:
                    head_diff[name].add(k, torch_head[k], isolated[k])
                for i, ref, got in zip(idx, reference, document_outputs(pipeline.run_head(batch, onnx_enc), batch)):
                    e2e_diff[name].add("logits", ref.logits, got.logits)
                    e2e_diff[name].add("pair_prob", ref.pair_prob, got.pair_prob)
                    by_windows[name][windows[i]].add("logits", ref.logits, got.logits)
                    e2e_diff[name].add("evidence_dist", ref.evidence_dist, got.evidence_dist)
                    variant_outputs[name][i] = got
            for i, ref in zip(idx, reference):
                reference_outputs[i] = ref
            if progress:
                print(f"parity: batch {step + 1}/{len(batches)}", flush=True)
    finally:
        model.train(was_training)

    reference_triples = [decode_output(out, decode_config) for out in reference_outputs]  # type: ignore[arg-type]  # all filled
    labelled = any(doc.facts for doc in docs)
    reference_scores = _scores(docs, reference_triples, featurizer) if labelled else None
    report: dict[str, Any] = {
        "documents": len(docs),
        "long_documents": sum(f.num_tokens > model.encoder.window for f in features),
        "max_tokens": max((f.num_tokens for f in features), default=0),
        "documents_by_windows": {str(k): windows.count(k) for k in sorted(set(windows))},
        "versions": versions(),
        "pytorch": {"triples": sum(len(t) for t in reference_triples), "scores": reference_scores},
        "variants": {},
    }
    for name, variant in variants.items():
        outputs: list[DocOutput] = variant_outputs[name]  # type: ignore[assignment]  # all filled above
        triples = [variant.pipeline.decode(out) for out in outputs]
        entry: dict[str, Any] = {
            "precision": variant.precision,
            "sessions": variant.pipeline.describe(),
            "encoder": enc_diff[name].result(),
            "head": head_diff[name].result(),
            "end_to_end": {
                **e2e_diff[name].result(),
                "triples": triple_agreement(reference_triples, triples),
                "evidence": evidence_agreement(reference_triples, triples, reference_outputs,  # type: ignore[arg-type]
                                               variant.pipeline.decode_config.evidence_threshold),
                "pair_argmax_agreement": pair_argmax_agreement([o.logits for o in reference_outputs],  # type: ignore[union-attr]
                                                               [o.logits for o in outputs]),
                "by_windows": {str(k): acc.result().get("logits", {"max_abs": 0.0, "mean_abs": 0.0})
                               for k, acc in sorted(by_windows[name].items())},
            },
            "graph_stats": {Path(f).name: vars(graph_stats(f)) for f in variant.files},
        }
        if labelled:
            scores = _scores(docs, triples, featurizer)
            entry["end_to_end"]["scores"] = scores
            entry["end_to_end"]["f1_change"] = scores["f1"] - reference_scores["f1"]  # type: ignore[index]
        report["variants"][name] = entry
    return report


def _scores(docs: Sequence[Document], triples: Sequence[Sequence[Any]], featurizer: Featurizer) -> dict[str, float]:
    scores = score_triples(docs, triples, featurizer.relations).to_json()
    return {k: float(v) for k, v in scores.items() if isinstance(v, (int, float))}


def format_parity_table(report: Mapping[str, Any]) -> str:
    """Fixed-width table: one row per variant, logits diffs per graph, triple and evidence agreement, F1 change."""
    width = max([22, *(len(name) + 2 for name in report["variants"])])  # names never run into the next column
    header = (
        f"{'variant':<{width}}{'precision':<10}{'enc max|d|':>12}{'head max|d|':>13}{'e2e max|d|':>12}"
        f"{'e2e mean|d|':>13}{'jaccard':>9}{'same docs':>11}{'argmax':>9}{'same evi':>10}{'dF1':>9}"
    )
    lines = [
        f"{report['documents']} documents ({report['long_documents']} longer than the window, "
        f"max {report['max_tokens']} tokens); PyTorch predicts {report['pytorch']['triples']} triples",
        header,
        "-" * len(header),
    ]
    for name, v in report["variants"].items():
        enc = max((d["max_abs"] for d in v["encoder"].values()), default=float("nan"))
        head = v["head"].get("logits", {}).get("max_abs", float("nan"))
        e2e = v["end_to_end"].get("logits", {})
        tri = v["end_to_end"]["triples"]
        df1 = v["end_to_end"].get("f1_change")
        lines.append(
            f"{name:<{width}}{v['precision']:<10}{enc:>12.3g}{head:>13.3g}{e2e.get('max_abs', float('nan')):>12.3g}"
            f"{e2e.get('mean_abs', float('nan')):>13.3g}{tri['jaccard']:>9.4f}{tri['identical_documents']:>11.4f}"
            f"{v['end_to_end'].get('pair_argmax_agreement', float('nan')):>9.4f}"
            f"{v['end_to_end'].get('evidence', {}).get('identical', float('nan')):>10.4f}"
            f"{(f'{df1:+.4f}' if df1 is not None else 'n/a'):>9}"
        )
    for name, v in report["variants"].items():
        windows = v["end_to_end"].get("by_windows", {})
        if windows:
            lines.append(f"{name}: e2e logits max|d| by encoder windows: " + ", ".join(
                f"{k}: {d['max_abs']:.3g} ({report['documents_by_windows'][k]} docs)" for k, d in windows.items()))
    lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()))
    return "\n".join(lines)


__all__ = ["EVIDENCE_ATOL", "Variant", "evidence_agreement", "format_parity_table", "pair_argmax_agreement", "parity_report", "triple_agreement", "versions"]
