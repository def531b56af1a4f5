"""One benchmark run, start to end: `run(settings) -> results` (written as results.json, results.md, PNGs).

Order: environment; documents; checkpoint (made or loaded) and its featurizer; matmul peaks; the PyTorch
fp32 reference pass (it is the ``torch`` backend's latency pass too); every requested backend (build,
latency and parity, encoder FLOP/s against the peak, throughput); the head against the peers' loops;
the report files. A backend that cannot run is recorded as skipped, one that breaks as failed, and the
run goes on: the report always lists every requested backend.
"""

from __future__ import annotations

import dataclasses

import datetime
import random
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

from paee.checkpoint import Checkpoint
from paee.data.relations import RelationVocab
from paee.data.synthetic import rel2id, rel_info
from paee.model.paee import PaeeModel
from paee_bench.agreement import compare, f1_score, served_triples
from paee_bench.artifacts import Artifacts
from paee_bench.backends import BACKENDS, BackendSkipped, BenchContext, TorchRunner
from paee_bench.checkpoints import make_checkpoint
from paee_bench.documents import DocumentSet, featurize_set, load_documents
from paee_bench.environment import environment, load_average
from paee_bench.flops import encoder_flops
from paee_bench.head_loop import compare_head_loops, head_loop_batch
from paee_bench.measure import (
    LatencyPass,
    latency_in_process,
    latency_server,
    stage_summary,
    throughput_in_process,
    throughput_server,
    warmup_indices,
)
from paee_bench.peak import PeakUnavailable, measure_peak
from paee_bench.plots import write_plots
from paee_bench.report import FORMAT, FORMAT_VERSION, render_markdown, write_json
from paee_bench.settings import BenchSettings

REFERENCE = "torch"


def _log(settings: BenchSettings, message: str) -> None:
    if settings.progress:
        print(f"[paee-bench] {message}", file=sys.stderr, flush=True)


def _relations(settings: BenchSettings, docs: list) -> RelationVocab:
    """Relation vocabulary of a made checkpoint: --rel2id, else the documents' labels, else the synthetic one."""
    if settings.rel2id is not None:
        info = Path(settings.rel2id).with_name("rel_info.json")
        return RelationVocab.from_files(settings.rel2id, info if info.is_file() else None)
    labels = [f.relation for d in docs for f in d.facts]
    if labels:
        return RelationVocab.from_ids(labels)
    return RelationVocab.from_rel2id(rel2id(), rel_info())


def _model_block(path: Path, ckpt: Checkpoint, model: PaeeModel) -> dict[str, Any]:
    hf = ckpt.config.encoder
    return {
        "checkpoint": str(path),
        "metadata": ckpt.metadata,
        "hidden_size": hf["hidden_size"], "layers": hf["num_hidden_layers"], "heads": hf["num_attention_heads"],
        "intermediate_size": hf["intermediate_size"], "vocab_size": hf["vocab_size"],
        "encoder_params_M": round(sum(p.numel() for p in model.encoder.parameters()) / 1e6, 2),
        "head_params_M": round(sum(p.numel() for p in model.head.parameters()) / 1e6, 2),
        "variant": ckpt.config.head.variant, "backbone": ckpt.config.head.backbone,
        "max_entities": ckpt.config.dims.max_entities, "num_relations": ckpt.config.relations.num_classes,
        "window": int(model.encoder.window),
    }  # fmt: skip


def _peaks(settings: BenchSettings) -> dict[str, Any]:
    """Matmul peaks of the (device, precision) pairs the requested backends are read against."""
    wanted = sorted({(BACKENDS[n].device, BACKENDS[n].precision) for n in settings.backends
                     if BACKENDS[n].kind == "in-process"})
    peaks: dict[str, Any] = {}
    for device, precision in wanted:
        key = f"{device}/{precision}"
        if device == "cuda" and not torch.cuda.is_available():
            peaks[key] = {"unavailable": "no CUDA device"}
            continue
        _log(settings, f"measuring the {device} {precision} matmul peak")
        try:
            size = settings.peak_size if device == "cpu" else None
            peaks[key] = measure_peak(device, precision, size, settings.peak_repeats, settings.threads).to_json()
        except PeakUnavailable as err:
            peaks[key] = {"unavailable": str(err)}
    return peaks


def _encoder_block(spec: Any, latency: LatencyPass, hf: dict, window: int, peaks: dict[str, Any]) -> dict[str, Any]:
    """Effective encoder FLOP/s over all documents and its fraction of the matching peak."""
    if spec.kind != "in-process":
        return {"note": "the encoder runs inside the server; read the in-process row of the same runtime"}
    flops = sum(encoder_flops(hf, t.length, window) for t in latency.timings)
    seconds = sum(t.encoder_ms for t in latency.timings) / 1000  # type: ignore[misc]
    effective = flops / seconds
    block: dict[str, Any] = {"precision": spec.precision, "gflop": round(flops / 1e9, 3), "seconds": round(seconds, 4),
                             "effective_tflops": round(effective / 1e12, 4)}
    peak = peaks.get(f"{spec.device}/{spec.precision}", {})
    if "ops_per_s" in peak:
        block.update(peak_tflops=round(peak["ops_per_s"] / 1e12, 4), peak_method=peak["method"],
                     fraction_of_peak=round(effective / peak["ops_per_s"], 4))
    else:
        block["peak_unavailable"] = peak.get("unavailable", "not measured")
    return block


def settle_peaks(backends: dict[str, Any], peaks: dict[str, Any]) -> None:
    """The peak of a precision is the best rate any runtime of this run reached at it: where a backend's
    encoder ran faster than every square matmul (its runtime's kernels on the model's shapes), that rate
    becomes the peak, recorded as such, and every fraction of that precision is taken again (none exceeds 1)."""
    encoders = {name: b["encoder"] for name, b in backends.items() if "effective_tflops" in b.get("encoder", {})}
    for name, enc in encoders.items():
        key = f"{backends[name]['device']}/{enc['precision']}"
        peak = peaks.get(key, {})
        effective = enc["effective_tflops"] * 1e12
        if "ops_per_s" in peak and effective > peak["ops_per_s"]:
            method = f"encoder on {name} (faster than every square matmul)"
            peak.update(ops_per_s=effective, method=method, methods={**peak["methods"], method: effective})
    for name, enc in encoders.items():
        peak = peaks.get(f"{backends[name]['device']}/{enc['precision']}", {})
        if "ops_per_s" in peak:
            enc.update(peak_tflops=round(peak["ops_per_s"] / 1e12, 4), peak_method=peak["method"],
                       fraction_of_peak=round(enc["effective_tflops"] * 1e12 / peak["ops_per_s"], 4))


class _Run:
    """State shared by the steps of one run."""

    def __init__(self, settings: BenchSettings, dset: DocumentSet, ckpt: Checkpoint, model: PaeeModel,
                 ctx: BenchContext, peaks: dict[str, Any]) -> None:
        self.s, self.dset, self.ckpt, self.model, self.ctx, self.peaks = settings, dset, ckpt, model, ctx, peaks
        self.featurizer = ctx.featurizer
        self.pad_id = self.featurizer.spec.pad_id
        self.decode_config = ckpt.decode_config()
        self.warmup = warmup_indices(dset.features, settings.warmup)
        self.reference: LatencyPass | None = None
        self.reference_f1: float | None = None

    def latency(self, runner: Any, spec: Any, name: str) -> LatencyPass:
        d = self.dset
        if spec.kind == "server":
            return latency_server(runner, d.docs, d.features, self.warmup, self.s.progress, name)
        return latency_in_process(runner, d.docs, d.features, self.featurizer, self.pad_id, self.decode_config, self.warmup,
                                  self.s.progress, name)

    def reference_pass(self) -> LatencyPass:
        _log(self.s, "PyTorch fp32 reference pass")
        self.reference = self.latency(TorchRunner(self.model, "cpu", "fp32"), BACKENDS[REFERENCE], REFERENCE)
        if self.dset.labelled:
            self.reference_f1 = f1_score(self.dset.docs, self.reference.triples, self.ckpt.config.relations)
        return self.reference

    def backend(self, name: str) -> dict[str, Any]:
        spec = BACKENDS[name]
        entry: dict[str, Any] = {"kind": spec.kind, "device": spec.device, "precision": spec.precision,
                                 "description": spec.description}
        try:
            runner = TorchRunner(self.model, "cpu", "fp32") if name == REFERENCE else spec.make(self.ctx)
        except BackendSkipped as err:
            return {**entry, "status": "skipped", "reason": str(err)}
        except Exception as err:  # a runtime that is installed but cannot load the graphs: say so, go on
            return {**entry, "status": "failed", "reason": f"building it: {type(err).__name__}: {err}",
                    "traceback": traceback.format_exc(limit=6)}
        try:
            _log(self.s, f"{name}: latency and parity over {len(self.dset.docs)} documents")
            latency = self.reference if name == REFERENCE else self.latency(runner, spec, name)
            assert latency is not None and self.reference is not None
            triples = latency.triples if spec.kind == "in-process" else served_triples(latency.triples, self.ckpt.config.relations)
            if spec.kind == "server":
                entry["precision"] = runner.runtime.get("precision", spec.precision)
            mean_ms = float(np.mean([t.total_ms for t in latency.timings]))
            entry.update(
                status="ok", runtime=runner.runtime, latency_ms=stage_summary(latency.timings),
                docs_per_s=round(1000 / mean_ms, 3),
                encoder=_encoder_block(spec, latency, self.ckpt.config.encoder, int(self.model.encoder.window),
                                       self.peaks),
                parity=compare(self.dset.docs, self.ckpt.config.relations, self.reference.triples, self.reference.logits or [],
                               triples, latency.logits, self.reference_f1),
            )  # fmt: skip
            entry["throughput"] = self.throughput(runner, spec, name)
            entry["per_document"] = latency.timings_json()
        except Exception as err:  # keep the run going: the report shows which backend broke and how
            entry.update(status="failed", reason=f"{type(err).__name__}: {err}", traceback=traceback.format_exc(limit=6))
        finally:
            runner.close()
        return entry

    def throughput(self, runner: Any, spec: Any, name: str) -> dict[str, Any]:
        docs = self.dset.docs[: self.s.throughput_docs]
        if spec.kind == "server":
            _log(self.s, f"{name}: throughput at concurrency {self.s.concurrency}")
            loads = {str(c): throughput_server(runner, docs, c) for c in self.s.concurrency}
            return {"concurrency": {c: load["docs_per_s"] for c, load in loads.items()}, "load": loads}
        _log(self.s, f"{name}: throughput at batch sizes {self.s.batch_sizes}")
        return {"batch_size": {str(b): round(throughput_in_process(runner, docs, self.featurizer, self.pad_id,
                                                                   self.decode_config, b), 3)
                               for b in self.s.batch_sizes}}  # fmt: skip

    def head_vs_loop(self) -> dict[str, Any]:
        if not self.s.head_loop_docs:
            return {"reason": "--head-loop-docs 0"}
        _log(self.s, f"batched head against the per-pair loop on {self.s.head_loop_docs} documents")
        batch = head_loop_batch(self.dset.features, self.s.head_loop_docs, self.pad_id, self.featurizer.config.max_length)
        try:
            return compare_head_loops(self.model, batch, self.s.head_loop_repeats)
        except Exception as err:  # a mismatch is a bug to report, not a reason to lose the other figures
            return {"reason": f"{type(err).__name__}: {err}"}


def run(settings: BenchSettings) -> dict[str, Any]:
    """Run the benchmark of ``settings`` and write its files into ``settings.out``; returns the results."""
    settings = settings.resolved()
    settings.check()
    started = time.perf_counter()
    started_at = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(settings.threads)
    random.seed(settings.seed)
    np.random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    env = environment()

    docs, source = load_documents(settings.docs, settings.limit, settings.synthetic_docs, settings.seed)
    checkpoint = settings.checkpoint
    if settings.make_checkpoint:
        _log(settings, f"making a {settings.make_checkpoint} checkpoint with random weights")
        # the tokenizer learns the whole file, not only the benchmarked subset: a vocabulary fitted to 50
        # documents would read nearly every word whole, shorter than any real vocabulary would
        vocabulary_docs = load_documents(settings.docs, None, settings.synthetic_docs, settings.seed)[0]
        checkpoint = make_checkpoint(settings.make_checkpoint, vocabulary_docs, _relations(settings, docs),
                                     out / "checkpoint.pt", seed=settings.seed)
    ckpt = Checkpoint.load(Path(checkpoint))  # type: ignore[arg-type]
    if settings.max_length is not None:  # a run-time limit (as paee-export --max-length): the graphs follow it
        ckpt.config.featurizer = dataclasses.replace(ckpt.config.featurizer, max_length=settings.max_length)
    model = ckpt.build_model()
    # truncate as `paee-predict --truncate` does: every document runs, losses are counted in the report
    featurizer = ckpt.featurizer(truncate=True)
    dset = featurize_set(docs, featurizer, source)

    artifacts = Artifacts(model, ckpt, featurizer, out / "artifacts", progress=settings.progress)
    urls = {p: u for p, u in (("http", settings.url), ("grpc", settings.grpc_url)) if u}
    ctx = BenchContext(model, featurizer, artifacts, settings.threads, max(settings.batch_sizes + settings.concurrency),
                       settings.triton_precision, settings.repository, urls)
    peaks = _peaks(settings)
    state = _Run(settings, dset, ckpt, model, ctx, peaks)
    backends: dict[str, Any] = {}
    try:
        state.reference_pass()
        for name in settings.backends:
            backends[name] = state.backend(name)
            _log(settings, f"{name}: {backends[name]['status']} {backends[name].get('reason', '')}")
    finally:
        ctx.close()
    settle_peaks(backends, peaks)
    head_loop = state.head_vs_loop()

    env["load_average_end"] = load_average()
    results: dict[str, Any] = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "command": settings.command,
        "started": started_at, "seconds": 0.0,
        "settings": {**settings.to_json(), "warmup_documents": len(state.warmup)},
        "environment": env, "model": _model_block(Path(checkpoint), ckpt, model),  # type: ignore[arg-type]
        "documents": dset.summary(int(model.encoder.window)), "artifacts": artifacts.info, "peak": peaks,
        "backends": backends, "head_vs_loop": head_loop, "plots": [],
    }  # fmt: skip
    try:
        results["plots"] = write_plots(results, out)
    except ImportError as err:  # matplotlib is in the 'bench' extra
        results["plots_skipped"] = f"matplotlib is not installed (pip install 'paee[bench]'): {err}"
    results["seconds"] = round(time.perf_counter() - started, 1)
    write_json(results, out / "results.json")
    (out / "results.md").write_text(render_markdown(results), encoding="utf-8")
    return results


__all__ = ["run"]
