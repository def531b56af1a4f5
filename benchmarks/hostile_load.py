"""Good requests failed under a hostile mixed load (issue 18): 16 good clients and a stream of every hostile
kind of `paee_bench.hostile.HOSTILE`, on a real tritonserver serving a tiny random model's repository.

    python benchmarks/hostile_load.py [--protocol http|grpc] [--clients 16] [--good-per-client 38] [--per-kind 200]

Prints the report (good requests sent / failed, per hostile kind its statuses and messages) as JSON.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # serving_support builds the tiny repository


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", choices=["http", "grpc"], default="http")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--good-per-client", type=int, default=38, help="16 x 38 = 608 good requests")
    p.add_argument("--hostile-clients", type=int, default=4)
    p.add_argument("--per-kind", type=int, default=200, help="hostile requests of each kind")
    args = p.parse_args()

    import serving_support
    from paee.data.featurizer import FeaturizerConfig
    from paee.data.relations import RelationVocab
    from paee.data.synthetic import generate_corpus, rel2id, rel_info
    from paee_bench.checkpoints import random_model
    from paee_bench.hostile import mixed_load, summary

    with tempfile.TemporaryDirectory(prefix="paee-hostile-") as tmp:
        docs = generate_corpus(n_docs=4, seed=11)
        model, source = random_model("tiny", docs, RelationVocab.from_rel2id(rel2id(), rel_info()), FeaturizerConfig(), seed=0)
        files = serving_support._export_tiny(Path(tmp), model, source)
        server = serving_support.start_server(files, Path(tmp))
        try:
            url = server.http_url if args.protocol == "http" else server.grpc_url
            start = time.perf_counter()
            report = mixed_load(url, args.protocol, docs, clients=args.clients, good_per_client=args.good_per_client,
                                hostile_clients=args.hostile_clients, hostile_per_kind=args.per_kind)
            seconds = time.perf_counter() - start
            if server._process is None or server._process.poll() is not None:
                print(f"tritonserver exited during the run; log tail:\n{server.log_tail(60)}", file=sys.stderr)
        finally:
            server.stop()
    print(summary(report))
    print(f"{args.protocol}: {report.good_failed}/{report.good_sent} good requests failed, "
          f"{report.hostile_sent} hostile requests, {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
