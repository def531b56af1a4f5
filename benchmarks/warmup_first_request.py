"""First-request latency of a fresh Triton replica, with and without ``model_warmup`` (paee-export --no-warmup).

  python benchmarks/warmup_first_request.py --rounds 3 --out runs/warmup.json

A tiny random model (or ``--model bert-base-random``) is exported twice from one checkpoint, with and
without the warm-up samples in the encoder and head configs. Each round starts a fresh tritonserver on
each repository in turn, waits until it is ready, and times its first request and the second one (the same
document); the table gives the medians. The warm-up itself runs while the server loads (before ready), so
its cost shows up in the start-up time, also reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="tiny", choices=["tiny", "bert-base-random"])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()

    from paee.checkpoint import Checkpoint
    from paee.data.featurizer import FeaturizerConfig
    from paee.data.relations import RelationVocab
    from paee.data.synthetic import generate_corpus, rel2id, rel_info
    from paee.serving.client import PaeeClient
    from paee.serving.server import TritonServer
    from paee_bench.checkpoints import random_model
    from paee_export.pipeline import export_checkpoint

    work = args.out.parent / (args.out.stem + "_work")
    work.mkdir(parents=True, exist_ok=True)
    docs = generate_corpus(n_docs=8, seed=11)
    relations = RelationVocab.from_rel2id(rel2id(), rel_info())
    model, source = random_model(args.model, docs, relations, FeaturizerConfig(), seed=0)
    Checkpoint.from_model(model, source.tokenizer).save(work / "best.pt")
    repos = {}
    for warm in (True, False):
        repos[warm] = export_checkpoint(work / "best.pt", work / f"repo_warm{int(warm)}", force=True, parity=False,
                                        progress=False, warmup=warm).repository
    doc = docs[0].to_json()
    rows: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for _ in range(args.rounds):
        for warm, repo in repos.items():
            started = time.perf_counter()
            with TritonServer(repo, http_port=0, grpc_port=0, metrics_port=0, stop_timeout_s=20) as server:
                ready = time.perf_counter() - started
                with PaeeClient(server.http_url, "http", timeout_s=300) as client:
                    times = []
                    for _ in range(2):
                        t0 = time.perf_counter()
                        client.predict(doc)
                        times.append(time.perf_counter() - t0)
            rows[warm].append({"ready_s": ready, "first_ms": 1000 * times[0], "second_ms": 1000 * times[1]})
    result = {"model": args.model, "rounds": args.rounds, "runs": {str(k): v for k, v in rows.items()}}
    print(f"{'model_warmup':<13} {'ready s':>8} {'first request ms':>17} {'second request ms':>18}")
    for warm in (True, False):
        med = {k: statistics.median(r[k] for r in rows[warm]) for k in ("ready_s", "first_ms", "second_ms")}
        result[f"median_warm{int(warm)}"] = med
        print(f"{'yes' if warm else 'no':<13} {med['ready_s']:>8.1f} {med['first_ms']:>17.1f} {med['second_ms']:>18.1f}")
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
