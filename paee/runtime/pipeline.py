"""Documents in, triples out: the batch loop every runner shares, and the torch-free `OnnxPipeline`.

`DocumentRunner` is featurize -> length-sorted batches -> collate -> ``run_batch`` -> per-document
outputs -> decode. `OnnxPipeline` gives ``run_batch`` to the exported graphs (encoder by padded length,
then head) on ONNX Runtime / OpenVINO sessions; `paee.inference.Predictor` gives it to the PyTorch model.
So the two agree on batching, padding, cropping and decoding by construction, and only the model runtime
differs. `OnnxPipeline.from_repository` runs an exported Triton repository's own graphs, tokenizer,
featurizer and decoding settings in process (no server, no torch).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from paee.data.decode import DecodeConfig, Triple, decode, to_result_records
from paee.data.errors import PaeeDataError
from paee.data.featurizer import DocFeatures, Featurizer, FeaturizerConfig, collate
from paee.data.relations import RelationVocab
from paee.data.schema import Document
from paee.data.tokenizer import load_tokenizer
from paee.runtime.contract import ENCODER, ENCODER_GRAPHS, ENCODER_LONG, HEAD, HEAD_OUTPUTS
from paee.runtime.layout import (
    DECODE_FILE, ENCODER_MODEL, FEATURIZER_FILE, HEAD_MODEL, MODE_LOCAL, POSTPROCESS, PREPROCESS, RELATIONS_FILE,
    LayoutError, ModelRuntime, assets_dir, read_json, version_dir,
)
from paee.runtime.sessions import Session, SessionError

#: Documents per batch of the runners (as `paee-predict --batch-size`).
DEFAULT_BATCH_SIZE = 8
#: Batches per chunk of `DocumentRunner.stream`: enough documents to sort by length (little padding), few
#: enough that a chunk's features and outputs stay small.
STREAM_CHUNK_BATCHES = 32


@dataclass(frozen=True)
class DocOutput:
    """Model outputs of one document's real pairs."""

    pair_index: np.ndarray  # [p, 2] (subject, object) of each row, p = n (n - 1)
    logits: np.ndarray  # [p, R]
    pair_prob: np.ndarray  # [p]
    evidence_dist: np.ndarray | None = None  # [p, S] each sentence's share of the pair's attention (None: absent)


def length_batches(features: Sequence[DocFeatures], batch_size: int) -> Iterator[list[int]]:
    """Indices of ``features`` in batches of similar length, longest first (less padding)."""
    order = sorted(range(len(features)), key=lambda i: -features[i].num_tokens)
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def document_outputs(outputs: Mapping[str, np.ndarray], batch: Mapping[str, np.ndarray]) -> list[DocOutput]:
    """Per document (row) of a batch, its outputs at the pairs ``pair_mask`` marks: its real pairs, or those of
    the candidate entity types under a type-pair constraint (`FeaturizerConfig.pair_types`)."""
    logits = np.asarray(outputs["logits"], dtype=np.float32)  # [B, P, R]
    pair_prob = np.asarray(outputs["pair_prob"], dtype=np.float32)  # [B, P]
    keep = np.asarray(batch["pair_mask"]) > 0  # [B, P]
    index = np.asarray(batch["pair_index"])
    evidence = np.asarray(outputs["evidence_dist"], dtype=np.float32) if "evidence_dist" in outputs else None  # [B, P, S]
    return [DocOutput(index[b][keep[b]], logits[b][keep[b]], pair_prob[b][keep[b]],
                      None if evidence is None else evidence[b][keep[b]]) for b in range(len(keep))]


def decode_output(out: DocOutput, config: DecodeConfig | None = None) -> list[Triple]:
    """The triples of one document's outputs."""
    return decode(out.logits, out.pair_index, pair_prob=out.pair_prob, config=config, evidence_dist=out.evidence_dist)


class DocumentRunner:
    """featurize -> batches -> ``run_batch`` -> per-document outputs -> triples (subclasses run the model).

    Attributes:
        featurizer: the model's featurizer (tokenizer, sizes, relation vocabulary).
        decode_config: how logits become triples.
        batch_size: documents per batch.
    """

    featurizer: Featurizer
    decode_config: DecodeConfig
    batch_size: int

    def run_batch(self, batch: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        """One collated batch -> the head's outputs ``{"logits": [B, P, R], "pair_prob": [B, P], "evidence_dist": [B, P, S]}``."""
        raise NotImplementedError

    @property
    def pad_id(self) -> int:
        return self.featurizer.spec.pad_id

    @property
    def relations(self) -> RelationVocab | None:
        return self.featurizer.relations

    def outputs_for_features(self, features: Sequence[DocFeatures], progress: bool = False) -> list[DocOutput]:
        """Per-document outputs, in input order."""
        outputs: list[DocOutput | None] = [None] * len(features)
        pad_id, max_length = self.pad_id, self.featurizer.config.max_length
        batches = list(length_batches(features, self.batch_size))
        for rows in tqdm(batches, desc="predict", unit="batch", disable=not progress):
            batch = collate([features[i] for i in rows], pad_id=pad_id, max_length=max_length)
            for i, out in zip(rows, document_outputs(self.run_batch(batch), batch)):
                outputs[i] = out
        return outputs  # type: ignore[return-value]  # every slot is filled above

    def outputs(self, docs: Sequence[Document], progress: bool = False,
                features: Sequence[DocFeatures] | None = None) -> list[DocOutput]:
        """Per-document outputs; ``features`` of ``docs`` when they are at hand already. Labels are never read
        (a relation the model does not know in them is no error here)."""
        if features is None:
            features = self.featurizer.featurize_many([doc.without_labels() for doc in docs])
        return self.outputs_for_features(features, progress)

    def decode(self, out: DocOutput) -> list[Triple]:
        return decode_output(out, self.decode_config)

    def predict(self, docs: Sequence[Document], progress: bool = False,
                features: Sequence[DocFeatures] | None = None) -> list[list[Triple]]:
        """Triples (head, tail, relation index, score) of each document."""
        return [self.decode(out) for out in self.outputs(docs, progress, features)]

    def stream(self, docs: Iterable[Document], *, chunk: int | None = None, errors: Literal["raise", "collect"] = "raise",
               ) -> Iterator[tuple[Document, DocFeatures | PaeeDataError, list[Triple]]]:
        """``(document, features, triples)`` of each document, in input order, read ``chunk`` documents at a time
        (default `STREAM_CHUNK_BATCHES` batches), each chunk featurized and run in length-sorted batches: memory
        follows the chunk, not the input, and results come while the input is still being read.
        ``errors="collect"`` gives a document that cannot be featurized its `PaeeDataError` (and no triples)
        in place of its features; ``"raise"`` raises it."""
        size = chunk or self.batch_size * STREAM_CHUNK_BATCHES
        if size < 1:
            raise SessionError(f"chunk must be >= 1 document, got {size}")
        docs = iter(docs)
        while part := list(itertools.islice(docs, size)):
            features = self.featurizer.featurize_many([doc.without_labels() for doc in part], errors=errors)
            good = [i for i, f in enumerate(features) if isinstance(f, DocFeatures)]
            outputs = self.outputs_for_features([features[i] for i in good])  # type: ignore[misc]  # filtered above
            triples: list[list[Triple]] = [[] for _ in part]
            for i, out in zip(good, outputs):
                triples[i] = self.decode(out)
            yield from zip(part, features, triples)

    def result_records(self, doc: Document, features: DocFeatures, triples: Sequence[Triple], *,
                       with_names: bool = False, with_scores: bool = False) -> list[dict[str, Any]]:
        """One document's official DocRED ``result.json`` records ``{title, h_idx, t_idx, r, evidence}``;
        ``with_names`` also adds the document's ``warnings`` (e.g. mentions lost to truncation) to each record."""
        if self.relations is None:
            raise SessionError("result records need the relation vocabulary (a featurizer built with relations)")
        found = to_result_records(doc.title, triples, self.relations, with_names=with_names, with_scores=with_scores)
        if with_names and features.warnings:
            found = [{**record, "warnings": features.warnings} for record in found]
        return found

    def predict_records(self, docs: Sequence[Document], *, with_names: bool = False, with_scores: bool = False,
                        progress: bool = False, features: Sequence[DocFeatures] | None = None) -> list[dict[str, Any]]:
        """`result_records` of all documents (`stream` them for a corpus that should not be held in memory)."""
        if features is None:
            features = self.featurizer.featurize_many([doc.without_labels() for doc in docs])
        records: list[dict[str, Any]] = []
        for doc, feats, triples in zip(docs, features, self.predict(docs, progress, features)):
            records += self.result_records(doc, feats, triples, with_names=with_names, with_scores=with_scores)
        return records


class OnnxPipeline(DocumentRunner):
    """The exported graphs on ONNX Runtime / OpenVINO sessions: encoder (by padded length), then head.

    Args:
        sessions: ``{"encoder": .., "encoder_long": .., "head": ..}``; an encoder may be missing (batches
            of its length bucket then raise). Mixed runtimes are fine (OpenVINO 2026.4 cannot compile
            the long encoder's window merge, so bf16 and int8 pair an OpenVINO ``encoder`` with an ONNX
            Runtime ``encoder_long``).
        featurizer: the model's featurizer (N must be the head's).
        window: padded lengths up to this go to ``encoder``, longer ones to ``encoder_long``.
        decode_config: gating and top-k.
        batch_size: documents per batch.
    """

    def __init__(
        self,
        sessions: Mapping[str, Session],
        featurizer: Featurizer,
        window: int,
        decode_config: DecodeConfig | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        unknown = sorted(set(sessions) - {*ENCODER_GRAPHS, HEAD})
        if unknown or HEAD not in sessions:
            raise SessionError(f"sessions must name the head and encoder graphs {ENCODER_GRAPHS}, got {sorted(sessions)}")
        self.encoders = {name: s for name, s in sessions.items() if name in ENCODER_GRAPHS}
        self.head = sessions[HEAD]
        self.featurizer = featurizer
        self.window = int(window)
        self.decode_config = decode_config or DecodeConfig()
        self.batch_size = batch_size

    @classmethod
    def from_repository(cls, repository: str | Path, threads: int | None = None,
                        batch_size: int = DEFAULT_BATCH_SIZE) -> OnnxPipeline:
        """The graphs, tokenizer, featurizer and decoding settings of an exported CPU repository, in process."""
        repository = Path(repository)
        sessions: dict[str, Session] = {}
        window = None
        for model in (ENCODER_MODEL, HEAD_MODEL):
            runtime = ModelRuntime.read(version_dir(repository, model))
            if runtime.mode != MODE_LOCAL:
                raise LayoutError(f"{repository / model}: runtime mode {runtime.mode!r}: the graphs run in native "
                                  "Triton models (GPU flavour), not in process")
            for graph in runtime.graphs:
                sessions[graph.name] = graph.session(version_dir(repository, model), threads)
                if graph.name == ENCODER:
                    window = graph.length_range[1]
        preprocess, postprocess = assets_dir(repository, PREPROCESS), assets_dir(repository, POSTPROCESS)
        featurizer = Featurizer(
            load_tokenizer(preprocess), FeaturizerConfig.from_json(read_json(preprocess / FEATURIZER_FILE)),
            RelationVocab.from_json(read_json(postprocess / RELATIONS_FILE)),
        )
        decode_config = DecodeConfig.from_json(read_json(postprocess / DECODE_FILE))
        return cls(sessions, featurizer, window or featurizer.config.max_length, decode_config, batch_size)

    def encoder_for(self, length: int) -> Session:
        name = ENCODER if length <= self.window else ENCODER_LONG
        if name not in self.encoders:
            raise SessionError(
                f"a batch of padded length {length} needs graph {name!r} ({'<=' if name == ENCODER else '>'} "
                f"{self.window} tokens), which this pipeline was not given"
            )
        return self.encoders[name]

    def encode(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.encoder_for(batch["input_ids"].shape[1]).run(batch)

    def run_head(self, batch: Mapping[str, np.ndarray], encoded: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = self.head.run({**batch, **encoded})
        return {name: out[name] for name in HEAD_OUTPUTS}

    def run_batch(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.run_head(batch, self.encode(batch))

    def describe(self) -> dict[str, str]:
        """``{graph: "<runtime> <effective precision>"}`` of every session."""
        sessions = {**self.encoders, HEAD: self.head}
        return {name: f"{s.backend} {s.effective_precision}" for name, s in sessions.items()}


__all__ = [
    "DEFAULT_BATCH_SIZE", "STREAM_CHUNK_BATCHES", "DocOutput", "DocumentRunner", "OnnxPipeline", "decode_output", "document_outputs",
    "length_batches",
]
