"""Served triples and their evidence against PyTorch's: the same checkpoint in process and behind the bundled
tritonserver, over HTTP and gRPC, on the synthetic set and on real Re-DocRED dev documents.

    python benchmarks/served_parity.py [--checkpoint best.pt] [--docs dev.json] [--limit 50] [--out runs/served_parity]

Without ``--checkpoint`` the model is the tiny random one of the tests, its tokenizer trained on the
documents and its threshold raised to DocRED's density (`paee_bench.checkpoints.raise_threshold`), with
Re-DocRED's relations when ../shared/data has them. The repository is what ``paee-export`` writes (cpu,
fp32); requests go ``--concurrency`` at a time, so Triton's dynamic batcher mixes documents of different
lengths and pair counts in one batch. A triple whose margin is within ``--score-atol`` of the threshold
may fall on either side in ONNX Runtime and PyTorch; the report counts those apart ("borderline"). The
evidence of every triple both predict is compared as a set of sentence ids (`paee_export.parity.evidence_agreement`:
a set that differs only at sentences whose share lies within 1e-4 of the evidence threshold is "borderline").

Writes OUT/served_parity.json and OUT/served_parity.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from paee.checkpoint import Checkpoint
from paee.data.docred import read_documents
from paee.data.featurizer import FeaturizerConfig
from paee.data.relations import RelationVocab
from paee.data.schema import Document
from paee.data.synthetic import generate_corpus, rel2id, rel_info
from paee.inference import Predictor
from paee.serving.client import PaeeClient
from paee.serving.server import TritonServer
from paee_bench.agreement import served_triples
from paee_bench.checkpoints import raise_threshold, random_model
from paee_export.parity import evidence_agreement
from paee_export.pipeline import export_checkpoint
from serving_load import triton_statistics  # benchmarks/ is this script's folder

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REDOCRED_DEV = SHARED / "redocred" / "dev_revised.json"
REL2ID, REL_INFO = SHARED / "meta" / "rel2id.json", SHARED / "meta" / "rel_info.json"
PROTOCOLS = ("http", "grpc")


def document_sets(limit: int) -> dict[str, list[Document]]:
    """The documents to serve, their labels dropped (predictions are compared, not scored; the synthetic
    corpus's relation ids need not be in the model's vocabulary)."""
    sets = {"synthetic": generate_corpus(n_docs=limit, seed="served-parity")}
    if REDOCRED_DEV.is_file():
        sets["redocred-dev"] = read_documents(REDOCRED_DEV)[:limit]
    return {name: [d.without_labels() for d in docs] for name, docs in sets.items()}


def triple_map(triples: Sequence[Any], relations: RelationVocab) -> dict[tuple[int, int, str], float]:
    """(head, tail, relation id) -> score, from `Triple`s or served records."""
    if triples and isinstance(triples[0], dict):
        return {(t["h_idx"], t["t_idx"], t["r"]): t["score"] for t in triples}
    return {(t.head, t.tail, relations.ids[t.relation]): t.score for t in triples}


def compare(want: dict, got: dict, atol: float) -> dict[str, Any]:
    """Per document: decisive triples (|margin| > atol) must be in both; scores of shared triples close."""
    decisive_want = {k for k, s in want.items() if abs(s) > atol}
    decisive_got = {k for k, s in got.items() if abs(s) > atol}
    shared = set(want) & set(got)
    return {
        "same": decisive_want <= set(got) and decisive_got <= set(want),
        "pytorch": len(want), "served": len(got), "borderline": len(set(want) ^ set(got)),
        "max_score_diff": max((abs(want[k] - got[k]) for k in shared), default=0.0),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    relations = (RelationVocab.from_files(REL2ID, REL_INFO) if REL2ID.is_file() and REL_INFO.is_file()
                 else RelationVocab.from_rel2id(rel2id(), rel_info()))
    sets = document_sets(args.limit)
    if args.docs is not None:  # a given file instead (e.g. CDR dev for a CDR checkpoint)
        sets = {args.docs.stem: [d.without_labels() for d in read_documents(args.docs, entity_types=None)[: args.limit]]}
    work = Path(tempfile.mkdtemp(prefix="served-parity-"))
    if args.checkpoint is None:
        torch.manual_seed(0)
        every = [d for docs in sets.values() for d in docs]
        model, source = random_model("tiny", every, relations, FeaturizerConfig(truncate=True))
        featurizer = Checkpoint.from_model(model, source.tokenizer).featurizer(truncate=True)
        raise_threshold(model, featurizer, every)
        checkpoint = work / "checkpoint.pt"
        Checkpoint.from_model(model, source.tokenizer).save(checkpoint)
    else:
        checkpoint = args.checkpoint
    ckpt = Checkpoint.load(checkpoint)
    predictor = Predictor(ckpt.build_model(), ckpt.featurizer(truncate=True), device="cpu", decode_config=ckpt.decode_config())
    repo = export_checkpoint(checkpoint, work / "repo", max_batch_size=8, parity=False, progress=False).repository
    results: dict[str, Any] = {"checkpoint": str(args.checkpoint or "tiny random (threshold at DocRED's density)"),
                               "score_atol": args.score_atol, "concurrency": args.concurrency, "sets": {}}
    server = TritonServer(repo, http_port=0, grpc_port=0, metrics_port=0).start()
    try:
        for name, docs in sets.items():
            outputs = predictor.outputs(docs)
            want_triples = [predictor.decode(out) for out in outputs]
            want = [triple_map(t, ckpt.config.relations) for t in want_triples]
            entry: dict[str, Any] = {"documents": len(docs), "pytorch_triples": sum(len(w) for w in want)}
            for protocol in PROTOCOLS:
                url = server.http_url if protocol == "http" else server.grpc_url
                with PaeeClient(url, protocol=protocol, timeout_s=300, concurrency=args.concurrency) as client:
                    served = client.predict_many([d.to_json() for d in docs])
                docs_cmp = [compare(w, triple_map(g, ckpt.config.relations), args.score_atol) for w, g in zip(want, served)]
                entry[protocol] = {
                    "identical_documents": sum(c["same"] for c in docs_cmp),
                    "served_triples": sum(c["served"] for c in docs_cmp),
                    "borderline_triples": sum(c["borderline"] for c in docs_cmp),
                    "max_score_diff": max(c["max_score_diff"] for c in docs_cmp),
                    "evidence": evidence_agreement(want_triples, served_triples(served, ckpt.config.relations), outputs,
                                                   predictor.decode_config.evidence_threshold),
                }
            results["sets"][name] = entry
        # average batch per model: > 1 on paee_head means requests with different lengths and pair counts ran together
        results["triton_statistics"] = triton_statistics(server.http_url, ["paee_encoder", "paee_head", "paee_postprocess"])
    finally:
        server.stop()
    return results


def markdown(r: dict[str, Any]) -> str:
    lines = [f"Served (Triton, cpu-fp32 repository) against PyTorch, {r['checkpoint']}; concurrency {r['concurrency']}:", "",
             "| documents | protocol | identical (decisive triples) | PyTorch triples | served triples | borderline | max score diff "
             "| evidence identical (triples both predict) | evidence sentences (PyTorch) | evidence borderline "
             "| evidence differing |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, e in r["sets"].items():
        for protocol in PROTOCOLS:
            p = e[protocol]
            lines.append(f"| {name} ({e['documents']}) | {protocol} | {p['identical_documents']}/{e['documents']} | "
                         f"{e['pytorch_triples']} | {p['served_triples']} | {p['borderline_triples']} | {p['max_score_diff']:.2e} | "
                         f"{round(p['evidence']['identical'] * p['evidence']['compared_triples'])}/"
                         f"{p['evidence']['compared_triples']:.0f} | {p['evidence']['reference_sentences']:.0f} | "
                         f"{p['evidence']['borderline']:.0f} | "
                         f"{p['evidence']['differing']:.0f} |")
    stats = ", ".join(f"{m} {v['avg_batch']}" for m, v in r.get("triton_statistics", {}).items())
    return "\n".join(lines) + f"\n\nTriton's average batch per execution: {stats}.\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--docs", type=Path, help="serve these documents (DocRED JSON) instead of the synthetic set and Re-DocRED dev")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--score-atol", type=float, default=1e-3)
    p.add_argument("--out", type=Path, default=Path("runs/served_parity"))
    args = p.parse_args()
    results = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "served_parity.json").write_text(json.dumps(results, indent=1))
    (args.out / "served_parity.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
