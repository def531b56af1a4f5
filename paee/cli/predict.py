"""`paee-predict --checkpoint best.pt --input docs.json --out result.json`: relation triples in the
official DocRED ``result.json`` format with their ``evidence`` sentences, optionally with relation names and
scores."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from paee.data.docred import read_documents, warn_duplicate_titles
from paee.data.jsonio import write_json_atomic
from paee.cli.options import add_length_options, length_overrides
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
    add_length_options(p)
    return p


def _predict(args: argparse.Namespace) -> int:
    predictor = Predictor.from_checkpoint(
        args.checkpoint, device=args.device, batch_size=args.batch_size, top_k=args.top_k,
        evidence_threshold=args.evidence_threshold,
        featurizer_overrides=length_overrides(args),
    )
    docs = read_documents(args.input, entity_types=predictor.featurizer.config.entity_types)
    warn_duplicate_titles(docs, str(args.input))
    known = set(predictor.featurizer.relations.ids) if predictor.featurizer.relations else set()
    unknown = sorted({fact.relation for doc in docs for fact in doc.facts} - known)
    if unknown:  # labels are never read here; say so rather than refuse the file
        print(f"warning: {args.input} has labels with relations the checkpoint does not know ({', '.join(unknown[:10])}"
              f"{', ...' if len(unknown) > 10 else ''}); labels are ignored by prediction", file=sys.stderr)
    features = predictor.featurizer.featurize_many([doc.without_labels() for doc in docs])
    warned = [{"title": doc.title, "index": doc.index, "warnings": f.warnings} for doc, f in zip(docs, features) if f.warnings]
    records = predictor.predict_records(docs, with_names=args.names, with_scores=args.scores, progress=True,
                                        features=features)
    write_json_atomic(args.out, records, indent=1)  # only complete results, never a 0-byte or half file
    print(f"{len(records)} relation facts for {len(docs)} documents -> {args.out}", file=sys.stderr)
    if warned:  # nothing is cut without the caller being told: per document, beside the results
        path = args.out.with_name(args.out.stem + ".warnings.json")
        write_json_atomic(path, warned, indent=1)
        print(f"warning: {len(warned)} document(s) truncated to max_length={predictor.featurizer.config.max_length}; "
              f"lost mentions listed in {path}", file=sys.stderr)
    return 0


main = console_script(build_parser, _predict)


if __name__ == "__main__":
    sys.exit(main())
