"""Triton serving under bounded load, with and without dynamic batching, and its cost at concurrency 1.

A script, not a test (minutes; run it on a quiet machine):

  python benchmarks/serving_load.py --out runs/serving_load                            # tiny random model
  python benchmarks/serving_load.py --model bert-base-random --out runs/serving_load   # BERT-base sizes
  python benchmarks/serving_load.py --checkpoint best.pt --out runs/serving_load       # a trained checkpoint

1. checkpoint: ``--checkpoint``, else a random-weight model built in code (``--model``: ``tiny``, or
   ``bert-base-random`` with BERT-base's encoder sizes and the full-size head; its tokenizer learns the
   documents; speed depends on sizes, not weights). A random model puts about half of all (pair,
   relation) margins above the threshold class, i.e. thousands of triples per document, which no
   trained model does and which would make the JSON answers, not the model, the cost: its threshold
   logit is raised so that it predicts `FACTS_PER_DOCUMENT` triples per benchmark document (DocRED's
   density). ``--realistic-threshold`` does the same to a
   given random-weight checkpoint.
2. documents: ``--docs`` (DocRED format, first ``--limit``), default Re-DocRED dev from ../shared/data
   when present, else a seeded synthetic set; documents the checkpoint's featurizer refuses are left
   out and counted.
3. two repositories from the same checkpoint with `paee_export.pipeline.export_checkpoint`
   (what ``paee-export`` writes): dynamic batching on, and off (``--no-dynamic-batching``).
4. both served at once by the bundled tritonserver on loopback (`paee.serving.TritonServer`).
5. latency at concurrency 1, interleaved per document so that machine noise hits all alike: the
   in-process ONNX Runtime pipeline (`paee.runtime.pipeline.OnnxPipeline` on the repository's own graphs,
   tokenizer, featurizer and decoding settings: featurize, encoder, head, decode) versus a Triton
   request end to end (serialise, send, the four ensemble steps, receive, parse), after a warm-up
   over every document. Ratio = Triton / ONNX Runtime (goal: <= `RATIO_GOAL`). Triton's triples are
   checked against the in-process pipeline's.
6. the bounded load test on each repository (`paee.serving.loadtest.run_load`: ``--concurrency``
   clients, at most ``--requests`` requests or ``--max-seconds`` seconds), plus the average batch size
   Triton's statistics report per model.

Prints a table; writes OUT/serving_load.json (settings, machine, documents, every figure).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from paee.checkpoint import Checkpoint
from paee.data.docred import read_documents
from paee.data.featurizer import FeaturizerConfig
from paee.data.relations import RelationVocab
from paee.data.synthetic import generate_corpus, rel2id, rel_info
from paee.runtime.pipeline import OnnxPipeline
from paee.serving.client import PaeeClient
from paee.serving.loadtest import LoadConfig, run_load
from paee.serving.server import TritonServer
from paee_bench.checkpoints import KINDS, raise_threshold, random_model
from paee_export.parity import versions
from paee_export.pipeline import export_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
REDOCRED_DEV = SHARED_DATA / "redocred" / "dev_revised.json"
REL2ID = SHARED_DATA / "meta" / "rel2id.json"
REL_INFO = SHARED_DATA / "meta" / "rel_info.json"
#: Issue 5's goal: Triton end to end at concurrency 1 costs at most this times the in-process pipeline.
RATIO_GOAL = 1.25
#: Synthetic documents when no DocRED file is available.
SYNTHETIC_DOCS = 60
REPOSITORIES = {"dynamic_batching": True, "no_dynamic_batching": False}
#: Scores of Triton and the in-process pipeline: the same graphs, same runtime; rounding only.
SCORE_ATOL = 1e-3


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="work and result folder")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--checkpoint", type=Path, default=None, help="a PAEE checkpoint")
    model.add_argument("--model", choices=KINDS, default="tiny",
                       help="without --checkpoint: the random-weight model to build (default: tiny)")
    p.add_argument("--realistic-threshold", action="store_true",
                   help="raise the given checkpoint's threshold logit as for the tiny model (random-weight checkpoints)")
    p.add_argument("--docs", type=Path, default=None,
                   help=f"DocRED-format documents (default: {REDOCRED_DEV} when present, else synthetic)")
    p.add_argument("--limit", type=int, default=50, help="use the first N documents")
    p.add_argument("--precision", choices=("fp32", "int8", "bf16"), default="fp32")
    p.add_argument("--instances", type=int, default=1, help="instances of every Triton model")
    p.add_argument("--max-batch-size", type=int, default=8)
    p.add_argument("--protocol", choices=("http", "grpc"), default="grpc")
    p.add_argument("--rounds", type=int, default=3, help="passes over the documents for the concurrency-1 latency")
    p.add_argument("--concurrency", type=int, default=32, help="clients of the load test")
    p.add_argument("--requests", type=int, default=2000, help="load test: at most this many requests")
    p.add_argument("--max-seconds", type=float, default=60.0, help="load test: at most this many seconds")
    p.add_argument("--seed", type=int, default=0)
    return p


def log(message: str, started: float = time.perf_counter()) -> None:
    print(f"[{time.perf_counter() - started:7.1f} s] {message}", file=sys.stderr, flush=True)


# --- documents and checkpoint --------------------------------------------------------------------


def read_docs(path: Path | None, limit: int, seed: int) -> tuple[list, str]:
    """The benchmark documents and where they came from."""
    if path is None and REDOCRED_DEV.is_file():
        path = REDOCRED_DEV
    if path is not None:
        return read_documents(path)[:limit], str(path)
    return generate_corpus(n_docs=min(limit, SYNTHETIC_DOCS), seed=seed), f"synthetic (seed {seed})"


def make_checkpoint(args: argparse.Namespace, docs: Sequence[Any], out: Path) -> tuple[Path, dict[str, Any]]:
    """The checkpoint to serve: the given one (maybe with its threshold raised) or a random one of ``--model``."""
    torch.manual_seed(args.seed)
    if args.checkpoint is not None:
        if not args.realistic_threshold:
            return args.checkpoint, {"path": str(args.checkpoint)}
        ckpt = Checkpoint.load(args.checkpoint)
        model, tokenizer = ckpt.build_model(), ckpt.tokenizer
        info: dict[str, Any] = {"path": str(args.checkpoint)}
    else:
        relations = (RelationVocab.from_files(REL2ID, REL_INFO) if REL2ID.is_file() and REL_INFO.is_file()
                     else RelationVocab.from_rel2id(rel2id(), rel_info()))
        model, source = random_model(args.model, docs, relations, FeaturizerConfig(truncate=True), seed=args.seed)
        tokenizer = source.tokenizer
        info = {"path": None, "kind": f"{args.model} (random weights)"}
    featurizer = Checkpoint.from_model(model, tokenizer).featurizer()
    info["threshold_shift"] = raise_threshold(model, featurizer, docs)
    path = out / "checkpoint.pt"
    Checkpoint.from_model(model, tokenizer).save(path)
    info["written"] = str(path)
    return path, info


# --- measurements --------------------------------------------------------------------------------


def interleaved_latency(runners: dict[str, Callable[[Any], Any]], docs: Sequence[Any], rounds: int) -> dict[str, list[float]]:
    """Seconds per document of each runner, one document at a time, runners interleaved per document."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for doc in docs:
            for name, run in runners.items():
                t0 = time.perf_counter()
                run(doc)
                times[name].append(time.perf_counter() - t0)
    return times


def triton_statistics(http_url: str, models: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per model: inferences, executions and their ratio (average batch size) since the server started."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(http_url)
    try:
        out = {}
        for model in models:
            stats = client.get_inference_statistics(model)["model_stats"][0]
            inferences, executions = int(stats["inference_count"]), int(stats["execution_count"])
            out[model] = {"inferences": inferences, "executions": executions,
                          "avg_batch": round(inferences / executions, 2) if executions else 0.0}
        return out
    finally:
        client.close()


def triple_key_set(triples: Sequence[Any], relations: Any = None) -> set[tuple[int, int, str]]:
    """Decisive (h, t, r) of served (dicts) or in-process (`Triple`, with ``relations``) triples."""
    if relations is None:
        return {(t["h_idx"], t["t_idx"], t["r"]) for t in triples if abs(t["score"]) > SCORE_ATOL}
    return {(t.head, t.tail, relations.ids[t.relation]) for t in triples if abs(t.score) > SCORE_ATOL}


def environment() -> dict[str, Any]:
    return {
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "threads_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        "versions": versions(),
    }


def ms(seconds: Sequence[float]) -> dict[str, float]:
    values = sorted(1000 * s for s in seconds)
    return {"p50": round(statistics.median(values), 2), "mean": round(statistics.fmean(values), 2),
            "p90": round(values[min(len(values) - 1, int(0.9 * len(values)))], 2)}


# --- the run ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                              "environment_start": environment()}

    docs, source = read_docs(args.docs, args.limit, args.seed)
    log(f"{len(docs)} documents from {source}")
    checkpoint, result["checkpoint"] = make_checkpoint(args, docs, out)
    log(f"checkpoint {checkpoint}")

    repos = {}
    for name, batching in REPOSITORIES.items():
        log(f"exporting ({args.precision}, dynamic batching {'on' if batching else 'off'}) -> {out / name}")
        exported = export_checkpoint(
            checkpoint, out / name, precision=args.precision, max_batch_size=args.max_batch_size, instances=args.instances,
            dynamic_batching=batching, force=True, parity=False, progress=False,
        )
        repos[name] = exported.repository
        result.setdefault("export", {"plan": exported.plan.name, "warnings": exported.warnings})

    pipeline = OnnxPipeline.from_repository(repos["dynamic_batching"], batch_size=1)
    relations = pipeline.relations
    features = pipeline.featurizer.featurize_many(docs, errors="collect")
    refused = [str(f) for f in features if isinstance(f, Exception)]
    docs = [d for d, f in zip(docs, features) if not isinstance(f, Exception)]
    tokens = sorted(f.num_tokens for f in features if not isinstance(f, Exception))
    result["documents"] = {"source": source, "count": len(docs), "refused": len(refused), "refused_reasons": refused[:5],
                           "tokens": {"min": tokens[0], "median": statistics.median(tokens), "max": tokens[-1]}}
    log(f"{len(docs)} documents served ({len(refused)} refused by the featurizer), tokens {result['documents']['tokens']}")
    payloads = [json.dumps(d.to_json(), ensure_ascii=False) for d in docs]
    reference = [triple_key_set(t, relations) for t in pipeline.predict(docs)]

    servers = {name: TritonServer(repo, http_port=0, grpc_port=0, metrics_port=0) for name, repo in repos.items()}
    clients: dict[str, Any] = {}
    try:
        for name, server in servers.items():
            log(f"starting tritonserver on {name}")
            server.start()
            url = server.grpc_url if args.protocol == "grpc" else server.http_url
            clients[name] = PaeeClient(url, args.protocol, timeout_s=600, retries=0)

        log("warm-up: every document once on each runner")
        agreement = {}
        for name, client in clients.items():
            served = [client.predict(p) for p in payloads]
            agreement[name] = sum(triple_key_set(s) == r for s, r in zip(served, reference))
        for doc in docs:
            pipeline.predict([doc])
        result["agreement_with_in_process"] = {k: f"{v}/{len(docs)}" for k, v in agreement.items()}
        result["triples_per_document"] = round(statistics.fmean(len(r) for r in reference), 1)

        log(f"latency at concurrency 1: {args.rounds} rounds x {len(docs)} documents, interleaved")
        runners: dict[str, Callable[[Any], Any]] = {"onnxruntime_in_process": lambda i: pipeline.predict([docs[i]])}
        for name, client in clients.items():
            runners[f"triton_{name}"] = lambda i, c=client: c.predict_raw(payloads[i])
        times = interleaved_latency(runners, range(len(docs)), args.rounds)
        latency = {name: ms(t) for name, t in times.items()}
        base = latency["onnxruntime_in_process"]
        ratios = {name: {"p50": round(lat["p50"] / base["p50"], 3), "mean": round(lat["mean"] / base["mean"], 3)}
                  for name, lat in latency.items() if name.startswith("triton_")}
        result["latency_c1_ms"], result["ratio_to_in_process"] = latency, ratios
        result["ratio_goal"] = RATIO_GOAL

        result["load"] = {}
        for name, server in servers.items():
            url = server.grpc_url if args.protocol == "grpc" else server.http_url
            config = LoadConfig(url, args.protocol, concurrency=args.concurrency, max_requests=args.requests,
                                max_seconds=args.max_seconds, timeout_s=600, warmup=args.concurrency)
            log(f"load test on {name}: {args.concurrency} clients, <= {args.requests} requests or {args.max_seconds:.0f} s")
            before = triton_statistics(server.http_url, ("paee_encoder", "paee_head"))
            report = run_load(payloads, config)
            after = triton_statistics(server.http_url, ("paee_encoder", "paee_head"))
            batches = {}
            for model in after:
                inferences = after[model]["inferences"] - before[model]["inferences"]
                executions = after[model]["executions"] - before[model]["executions"]
                batches[model] = round(inferences / executions, 2) if executions else 0.0
            result["load"][name] = {**report.to_json(), "avg_batch_size": batches}
            log(report.summary())
    finally:
        for client in clients.values():
            client.close()
        for server in servers.values():
            server.stop()
    result["environment_end"] = {"load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}

    path = out / "serving_load.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(format_table(result))
    print(f"\nwrote {path}")
    failed = sum(r["failed"] for r in result["load"].values())
    return 1 if failed else 0


def format_table(result: dict[str, Any]) -> str:
    docs = result["documents"]
    lines = [
        f"documents: {docs['count']} from {docs['source']} (tokens median {docs['tokens']['median']}, max {docs['tokens']['max']}), "
        f"{result['triples_per_document']} triples per document; Triton = in-process triples: {result['agreement_with_in_process']}",
        "",
        f"{'concurrency 1 (ms per document)':<34}{'p50':>9}{'mean':>9}{'p90':>9}{'x in-proc p50':>15}{'x mean':>9}",
    ]
    for name, lat in result["latency_c1_ms"].items():
        ratio = result["ratio_to_in_process"].get(name, {"p50": 1.0, "mean": 1.0})
        lines.append(f"{name:<34}{lat['p50']:>9.1f}{lat['mean']:>9.1f}{lat['p90']:>9.1f}{ratio['p50']:>15.2f}{ratio['mean']:>9.2f}")
    lines.append(f"goal: Triton <= {result['ratio_goal']}x the in-process ONNX Runtime pipeline")
    lines += ["", f"{'load test':<22}{'requests':>9}{'failed':>8}{'seconds':>9}{'docs/s':>9}{'p50 ms':>9}{'p90 ms':>9}"
                  f"{'p99 ms':>9}{'batch enc/head':>16}  stopped by"]
    for name, r in result["load"].items():
        lat, batch = r["latency_ms"], r["avg_batch_size"]
        lines.append(
            f"{name:<22}{r['requests']:>9}{r['failed']:>8}{r['seconds']:>9.1f}{r['docs_per_s']:>9.1f}{lat.get('p50', 0):>9.1f}"
            f"{lat.get('p90', 0):>9.1f}{lat.get('p99', 0):>9.1f}{batch['paee_encoder']:>8.2f}/{batch['paee_head']:<7.2f}  {r['stopped_by']}"
        )
        for error in r["errors"]:
            lines.append(f"    error: {error}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
