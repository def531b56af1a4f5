"""`paee-client --url HOST:PORT [--protocol http|grpc] docs.json --out result.json`: query a PAEE Triton server.

Reads a JSON list of documents (DocRED form or text form), sends each to the ``paee`` ensemble
(concurrently), and writes the official DocRED ``result.json`` records ``{title, h_idx, t_idx, r}``
plus ``r_name`` and ``score``. Documents the server rejects are reported on stderr with the server's
message; the exit code is 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from paee.cli.common import fail
from paee.serving.client import (
    DEFAULT_CONCURRENCY, DEFAULT_RETRIES, DEFAULT_TIMEOUT_S, PROTOCOLS, PaeeClient, PaeeServingError, result_records,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paee-client", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("documents", type=Path, help="JSON list of documents")
    p.add_argument("--url", required=True, help="HOST:PORT of the server's HTTP or gRPC endpoint")
    p.add_argument("--protocol", choices=PROTOCOLS, default="http")
    p.add_argument("--out", required=True, type=Path, help="where to write result.json")
    p.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="requests in flight")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per request")
    p.add_argument("--retries", type=int, default=DEFAULT_RETRIES, help="retries on connection errors")
    p.add_argument("--no-names", action="store_true", help="leave out r_name")
    p.add_argument("--no-scores", action="store_true", help="leave out score")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        raw = json.loads(args.documents.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return fail(f"cannot read {args.documents}: {e}")
    if not isinstance(raw, list):
        return fail(f"{args.documents}: expected a JSON list of documents, got {type(raw).__name__}")
    try:
        with PaeeClient(args.url, args.protocol, timeout_s=args.timeout, retries=args.retries,
                        concurrency=args.concurrency) as client:
            results = client.predict_many([json.dumps(d, ensure_ascii=False) for d in raw], return_exceptions=True)
    except ValueError as e:
        return fail(e)
    records, failed = [], 0
    for i, (doc, result) in enumerate(zip(raw, results)):
        if isinstance(result, PaeeServingError):
            failed += 1
            print(f"paee-client: document {i}: {result}", file=sys.stderr)
            continue
        title = doc.get("title", "") if isinstance(doc, dict) else ""
        records += result_records(title, result, with_names=not args.no_names, with_scores=not args.no_scores)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(records, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"paee-client: {len(raw) - failed}/{len(raw)} documents, {len(records)} records -> {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
