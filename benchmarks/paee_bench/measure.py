"""Timing passes over the documents: per-document latency at batch 1, throughput against batch size / concurrency.

Latency (batch 1, one document after the other, the whole pipeline): for an in-process backend each
document is timed in four stages with ``time.perf_counter`` (a CUDA runner synchronises before
returning):

* featurize: `Featurizer.featurize` + `collate` (tokenizer, markers, padding; numpy);
* encoder:   the encoder graph on the collated batch;
* head:      the head graph, outputs as float32 numpy;
* decode:    `paee.data.decode.decode` to triples.

A server backend is timed per request (`PaeeClient.predict`: serialise, send, all four stages inside
Triton, receive, parse). Before timing, every backend runs the warm-up documents (the first ``warmup``
plus one per length bucket present, so that each encoder graph and shape has run once).

Throughput: in-process, the documents in length-sorted batches of each batch size (featurize_many,
collate, encoder, head, decode), documents / wall second; server, ``concurrency`` closed-loop clients
each with one request in flight (`paee.serving.loadtest.run_load`), documents / wall second, with the
per-request latency under that load.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from paee.data.decode import DecodeConfig, Triple
from paee.data.featurizer import DocFeatures, Featurizer, collate
from paee.data.schema import Document
from paee.runtime.pipeline import decode_output, document_outputs, length_batches
from paee.serving.loadtest import LoadConfig, run_load

#: Length buckets used to pick warm-up documents (and the CUDA-graph runner's padded lengths).
WARMUP_BUCKETS = (128, 256, 512, 768, 1024)
PERCENTILES = (50, 90, 99)
STAGES = ("featurize", "encoder", "head", "decode")
#: Time bound of one server load run (it normally ends when every document has been sent once).
SERVER_LOAD_MAX_SECONDS = 600.0


@dataclass
class DocTiming:
    """One document's latency, in milliseconds (stages are None for a server backend)."""

    index: int
    tokens: int  # unpadded wordpieces
    length: int  # padded length the encoder ran at
    entities: int
    total_ms: float
    featurize_ms: float | None = None
    encoder_ms: float | None = None
    head_ms: float | None = None
    decode_ms: float | None = None


@dataclass
class LatencyPass:
    """Per-document timings, and the outputs kept for parity (logits only for in-process backends)."""

    timings: list[DocTiming]
    triples: list[list[Triple]] | list[list[dict[str, Any]]]
    logits: list[np.ndarray] | None  # per document, its n x n x R block
    seconds: float

    def timings_json(self) -> list[dict[str, Any]]:
        return [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(t).items()} for t in self.timings]


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50 / p90 / p99 and the mean of ``values`` (linear interpolation, numpy's default)."""
    if not len(values):
        return {}
    arr = np.asarray(values, dtype=np.float64)
    found = {f"p{p}": round(float(np.percentile(arr, p)), 3) for p in PERCENTILES}
    found["mean"] = round(float(arr.mean()), 3)
    return found


def warmup_indices(features: Sequence[DocFeatures], count: int) -> list[int]:
    """The first ``count`` documents plus the first document of each length bucket not yet among them."""
    chosen = list(range(min(count, len(features))))
    seen = {_bucket(features[i].num_tokens) for i in chosen}
    for i, f in enumerate(features):
        bucket = _bucket(f.num_tokens)
        if bucket not in seen:
            seen.add(bucket)
            chosen.append(i)
    return chosen


def _bucket(tokens: int) -> int:
    return next((b for b in WARMUP_BUCKETS if tokens <= b), WARMUP_BUCKETS[-1])


def latency_in_process(runner: Any, docs: Sequence[Document], features: Sequence[DocFeatures], featurizer: Featurizer,
                       pad_id: int, decode_config: DecodeConfig, warmup: Sequence[int], progress: bool, desc: str
                       ) -> LatencyPass:
    """Batch-1 latency of every document, stage by stage (see the module docstring)."""
    max_length = featurizer.config.max_length

    def one(doc: Document) -> tuple[DocTiming, list[Triple], np.ndarray]:
        t0 = time.perf_counter()
        feats = featurizer.featurize(doc)
        batch = collate([feats], pad_id=pad_id, max_length=max_length)
        t1 = time.perf_counter()
        encoded = runner.encode(batch)
        t2 = time.perf_counter()
        logits, pair_prob = runner.head(batch, encoded)
        t3 = time.perf_counter()
        (out,) = document_outputs({"logits": logits, "pair_prob": pair_prob}, batch)
        triples = decode_output(out, decode_config)
        t4 = time.perf_counter()
        timing = DocTiming(doc.index, feats.num_tokens, int(batch["input_ids"].shape[1]), feats.num_entities,
                           1000 * (t4 - t0), 1000 * (t1 - t0), 1000 * (t2 - t1), 1000 * (t3 - t2), 1000 * (t4 - t3))
        return timing, triples, out.logits.copy()

    for i in warmup:
        one(docs[i])
    started = time.perf_counter()
    timings, triples, logits = [], [], []
    for i, doc in enumerate(tqdm(docs, desc=desc, unit="doc", disable=not progress, leave=False)):
        timing, doc_triples, doc_logits = one(doc)
        timing.index = i
        timings.append(timing)
        triples.append(doc_triples)
        logits.append(doc_logits)
    return LatencyPass(timings, triples, logits, time.perf_counter() - started)


def latency_server(runner: Any, docs: Sequence[Document], features: Sequence[DocFeatures], warmup: Sequence[int],
                   progress: bool, desc: str) -> LatencyPass:
    """Per-request latency, one request in flight (the server does all four stages)."""
    payloads = [doc.to_json() for doc in docs]
    for i in warmup:
        runner.predict(payloads[i])
    started = time.perf_counter()
    timings, triples = [], []
    for i, payload in enumerate(tqdm(payloads, desc=desc, unit="doc", disable=not progress, leave=False)):
        t0 = time.perf_counter()
        triples.append(runner.predict(payload))
        total = 1000 * (time.perf_counter() - t0)
        f = features[i]
        timings.append(DocTiming(i, f.num_tokens, -1, f.num_entities, total))
    return LatencyPass(timings, triples, None, time.perf_counter() - started)


def throughput_in_process(runner: Any, docs: Sequence[Document], featurizer: Featurizer, pad_id: int,
                          decode_config: DecodeConfig, batch_size: int) -> float:
    """Documents per second through the whole pipeline in length-sorted batches of ``batch_size``."""
    max_length = featurizer.config.max_length

    def run(subset: Sequence[Document]) -> None:
        features = featurizer.featurize_many(subset)
        for idx in length_batches(features, batch_size):
            batch = collate([features[i] for i in idx], pad_id=pad_id, max_length=max_length)
            logits, pair_prob = runner.head(batch, runner.encode(batch))
            for out in document_outputs({"logits": logits, "pair_prob": pair_prob}, batch):
                decode_output(out, decode_config)

    run(docs[:batch_size])  # warm-up: this batch shape once
    started = time.perf_counter()
    run(docs)
    return len(docs) / (time.perf_counter() - started)


def throughput_server(runner: Any, docs: Sequence[Document], concurrency: int) -> dict[str, Any]:
    """Closed-loop load at ``concurrency`` clients over the documents once (`paee.serving.loadtest.run_load`):
    documents/s, per-request latency under that load, failures, and Triton's own per-model breakdown of the
    same requests (``server_ms``: queue, compute input / infer / output and total, mean ms per request)."""
    config = LoadConfig(runner.url, runner.protocol, concurrency=concurrency, max_requests=len(docs),
                        max_seconds=SERVER_LOAD_MAX_SECONDS, timeout_s=SERVER_LOAD_MAX_SECONDS, warmup=concurrency)
    report = run_load([doc.to_json() for doc in docs], config)
    return {"docs_per_s": report.docs_per_s, "latency_ms": report.latency_ms, "failed": report.failed,
            "errors": report.errors, "stopped_by": report.stopped_by, "server_ms": report.server_ms}


def stage_summary(timings: Sequence[DocTiming]) -> dict[str, dict[str, float]]:
    """Percentiles of the total and of each measured stage."""
    summary = {"total": percentiles([t.total_ms for t in timings])}
    for stage in STAGES:
        values = [getattr(t, f"{stage}_ms") for t in timings]
        if all(v is not None for v in values):
            summary[stage] = percentiles(values)  # type: ignore[arg-type]
    return summary


__all__ = ["DocTiming", "LatencyPass", "percentiles", "warmup_indices", "latency_in_process",
           "latency_server", "throughput_in_process", "throughput_server", "stage_summary"]
