"""`paee-client --url HOST:PORT [--protocol http|grpc] docs.json --out result.json`: query a PAEE Triton server.

Reads a JSON list of documents (DocRED form or text form), sends each to the ``paee`` ensemble
(concurrently), and writes the official DocRED ``result.json`` records ``{title, h_idx, t_idx, r}``
plus ``r_name`` and ``score``. Documents the server rejects are reported on stderr with the server's
message; the exit code is 1 if any failed.

With ``--load`` it is a bounded load test instead (`paee.serving.loadtest`): ``--concurrency`` clients
send the documents round-robin until ``--requests`` have been sent or ``--max-seconds`` have passed,
then it prints requests, failures (with the first error messages), throughput and p50/p90/p99 latency
and writes the report as JSON to ``--out``; the exit code is 1 if any request failed:

    paee-client --url 127.0.0.1:8001 --protocol grpc docs.json --load --concurrency 32 \\
                --requests 2000 --max-seconds 60 --out load.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from paee.data.jsonio import read_json, write_json_atomic
from paee.errors import PaeeUserError, console_script
from paee.serving import loadtest
from paee.serving.client import (
    DEFAULT_CONCURRENCY, DEFAULT_RETRIES, DEFAULT_TIMEOUT_S, PROTOCOLS, PaeeClient, PaeeServingError, result_records,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paee-client", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("documents", type=Path, help="JSON list of documents")
    p.add_argument("--url", required=True, help="HOST:PORT of the server's HTTP or gRPC endpoint")
    p.add_argument("--protocol", choices=PROTOCOLS, default="http")
    p.add_argument("--out", required=True, type=Path, help="where to write result.json (with --load: the load report)")
    p.add_argument("--concurrency", type=int, default=None,
                   help=f"requests in flight (default {DEFAULT_CONCURRENCY}; with --load: clients, default {loadtest.DEFAULT_CONCURRENCY})")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per request")
    p.add_argument("--retries", type=int, default=None,
                   help=f"retries on connection errors (default {DEFAULT_RETRIES}; with --load 0, so that every failure counts)")
    p.add_argument("--errors", type=Path, default=None,
                   help="when some documents fail: write the others' records to --out and the failures here "
                        "(without it a failure writes nothing)")
    p.add_argument("--truncate", action="store_true",
                   help="documents over the server's max_length are cut (lost mentions printed) instead of refused")
    p.add_argument("--no-names", action="store_true", help="leave out r_name")
    p.add_argument("--no-scores", action="store_true", help="leave out score")
    load = p.add_argument_group("bounded load test (--load)")
    load.add_argument("--load", action="store_true", help="run a bounded load test instead of writing results")
    load.add_argument("--requests", type=int, default=loadtest.DEFAULT_MAX_REQUESTS, help="stop after this many requests")
    load.add_argument("--max-seconds", type=float, default=loadtest.DEFAULT_MAX_SECONDS, help="stop starting requests after this many seconds")
    load.add_argument("--warmup", type=int, default=None,
                      help="requests before the clock starts, not counted (default: one per client)")
    return p


def _read_documents(path: Path) -> list:
    """The JSON list of documents (sent as they are: the server validates them)."""
    raw = read_json(path, what="documents")
    if not isinstance(raw, list):
        raise PaeeUserError(f"{path}: expected a JSON list of documents, got {type(raw).__name__}")
    if not raw:
        raise PaeeUserError(f"{path}: no documents to send")
    return raw


def _load(args: argparse.Namespace, raw: list) -> int:
    concurrency = loadtest.DEFAULT_CONCURRENCY if args.concurrency is None else args.concurrency
    config = loadtest.LoadConfig(
        args.url.removeprefix("http://"), args.protocol, concurrency=concurrency, max_requests=args.requests,
        max_seconds=args.max_seconds, timeout_s=args.timeout, retries=args.retries or 0,
        warmup=concurrency if args.warmup is None else args.warmup,
    )
    report = loadtest.run_load([json.dumps(d, ensure_ascii=False) for d in raw], config)
    write_json_atomic(args.out, report.to_json(), indent=2)
    print(report.summary())
    for message in report.errors:
        print(f"paee-client: {message}", file=sys.stderr)
    print(f"paee-client: load report -> {args.out}")
    return 1 if report.failed else 0


def _predict(args: argparse.Namespace, raw: list) -> int:
    retries = DEFAULT_RETRIES if args.retries is None else args.retries
    with PaeeClient(args.url, args.protocol, timeout_s=args.timeout, retries=retries,
                    concurrency=args.concurrency or DEFAULT_CONCURRENCY, truncate=args.truncate) as client:
        # objects travel as objects (the request options are added to them); anything else as its JSON text
        payloads = [d if isinstance(d, dict) else json.dumps(d, ensure_ascii=False) for d in raw]
        results = client.predict_many(payloads, return_exceptions=True, whole=True)
    records, errors = [], []
    for i, (doc, result) in enumerate(zip(raw, results)):
        title = doc.get("title", "") if isinstance(doc, dict) else ""
        if isinstance(result, PaeeServingError):
            errors.append({"document": i, "title": title, "error": str(result)})
            print(f"paee-client: document {i}: {result}", file=sys.stderr)
            continue
        for warning in result.get("warnings", []):
            print(f"paee-client: document {i}: warning: {warning}", file=sys.stderr)
        records += result_records(title, result["triples"], with_names=not args.no_names, with_scores=not args.no_scores)
    done = f"{len(raw) - len(errors)}/{len(raw)} documents"
    if errors and args.errors is None:
        # a partial result under the asked name would pass for the whole one (or replace it with [])
        print(f"paee-client: {done} served; nothing written to {args.out} (--errors FILE writes the served "
              "documents' records there and the failures to FILE)", file=sys.stderr)
        return 1
    write_json_atomic(args.out, records)
    if args.errors is not None:
        write_json_atomic(args.errors, errors, indent=1)
    print(f"paee-client: {done}, {len(records)} records -> {args.out}"
          + (f", {len(errors)} errors -> {args.errors}" if args.errors is not None else ""))
    return 1 if errors else 0


def _client(args: argparse.Namespace) -> int:
    return (_load if args.load else _predict)(args, _read_documents(args.documents))


main = console_script(build_parser, _client)


if __name__ == "__main__":
    sys.exit(main())
