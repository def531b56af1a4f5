"""`paee-batch --repository REPO --input SHARDS... --out DIR`: predict a corpus on Ray Data.

An actor pool runs the exported CPU repository's graphs (ONNX Runtime / OpenVINO, no torch) over JSON-list
(``.json``) and JSON-lines (``.jsonl``) shards of documents; DIR receives ``results-00000.json``, ... (official
DocRED result records, one file per ``--docs-per-file`` documents, each complete when it appears),
``errors.json`` (every document that could not be read or predicted, with its shard and index; the rest goes
on) and ``report.json`` (documents, failures, seconds, documents per second). Exit status 1 when a document
failed. See `paee.runtime.corpus`.

Local: ``paee-batch ... --num-cpus 2`` starts a Ray runtime in this process. Cluster: ``ray job submit
--working-dir . -- paee-batch --address auto ...`` (shards and DIR on storage every node sees).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from paee.errors import console_script
from paee.runtime.corpus import DEFAULT_DOCS_PER_FILE, CorpusJob, run_corpus
from paee.runtime.pipeline import DEFAULT_BATCH_SIZE


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paee-batch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repository", required=True, type=Path, help="an exported CPU repository (paee-export --target cpu)")
    p.add_argument("--input", required=True, type=Path, nargs="+", help="shards (.json lists, .jsonl lines) or folders of them")
    p.add_argument("--out", required=True, type=Path, help="output folder (absent or empty)")
    p.add_argument("--actors", type=int, default=1, help="actors in the pool, each with its own pipeline (default 1)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (and Ray CPUs) per actor (default 1)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="documents per graph batch")
    p.add_argument("--docs-per-file", type=int, default=DEFAULT_DOCS_PER_FILE, help="documents per result file")
    ray_options = p.add_argument_group("Ray runtime")
    ray_options.add_argument("--address", default=None,
                             help="a running cluster ('auto' inside `ray job submit`); default: a local runtime")
    ray_options.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local runtime (default: all)")
    return p


def _batch(args: argparse.Namespace) -> int:
    job = CorpusJob(args.repository, args.input, args.out, actors=args.actors, threads=args.threads,
                    batch_size=args.batch_size, docs_per_file=args.docs_per_file)
    report = run_corpus(job, address=args.address, num_cpus=args.num_cpus)
    print(f"{report.documents} documents, {report.records} relation facts -> {args.out} ({len(report.files)} "
          f"result files); {report.failed} failed -> {args.out / 'errors.json'}; "
          f"{report.docs_per_second:.1f} docs/s with {report.actors} actor(s)", file=sys.stderr)
    return 1 if report.failed else 0


main = console_script(build_parser, _batch)


if __name__ == "__main__":
    sys.exit(main())
