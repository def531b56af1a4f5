"""`paee-predict --checkpoint best.pt --input docs.json --out result.json`: relation triples in the
official DocRED ``result.json`` format with their ``evidence`` sentences, optionally with relation names and
scores."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from paee.data.docred import read_documents
from paee.errors import console_script
from paee.inference import Predictor


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paee-predict", description=__doc__)
    p.add_argument("--checkpoint", required=True, type=Path, help="a PAEE checkpoint (best.pt)")
    p.add_argument("--input", required=True, type=Path, help="documents: DocRED JSON or text with character-offset mentions")
    p.add_argument("--out", required=True, type=Path, help="where to write result.json")
    p.add_argument("--names", action="store_true", help="add the relation name (r_name) to every record")
    p.add_argument("--scores", action="store_true", help="add the score (logit margin over the threshold class)")
    p.add_argument("--top-k", type=int, default=None, help="at most k relations per entity pair")
    p.add_argument("--evidence-threshold", type=float, default=None,
                   help="a triple's evidence: the sentences whose share of its pair's attention exceeds this, in [0, 1) "
                        "(default: the checkpoint's, 0.2 unless set)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--truncate", action="store_true", help="drop what does not fit max_length instead of failing")
    return p


def _predict(args: argparse.Namespace) -> int:
    predictor = Predictor.from_checkpoint(
        args.checkpoint, device=args.device, batch_size=args.batch_size, top_k=args.top_k,
        evidence_threshold=args.evidence_threshold,
        featurizer_overrides={"truncate": True} if args.truncate else None,
    )
    docs = read_documents(args.input, entity_types=predictor.featurizer.config.entity_types)
    known = set(predictor.featurizer.relations.ids) if predictor.featurizer.relations else set()
    unknown = sorted({fact.relation for doc in docs for fact in doc.facts} - known)
    if unknown:  # labels are never read here; say so rather than refuse the file
        print(f"warning: {args.input} has labels with relations the checkpoint does not know ({', '.join(unknown[:10])}"
              f"{', ...' if len(unknown) > 10 else ''}); labels are ignored by prediction", file=sys.stderr)
    records = predictor.predict_records(docs, with_names=args.names, with_scores=args.scores, progress=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(records, ensure_ascii=False, indent=1))
    print(f"{len(records)} relation facts for {len(docs)} documents -> {args.out}", file=sys.stderr)
    return 0


main = console_script(build_parser, _predict)


if __name__ == "__main__":
    sys.exit(main())
