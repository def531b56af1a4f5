"""`paee-predict --checkpoint best.pt --input docs.json --out result.json`: relation triples in the
official DocRED ``result.json`` format with their ``evidence`` sentences, optionally with relation names and
scores.

`paee-predict --raw --input a.txt b.jsonl --out raw.json`: plain text without entities. Each ``.txt``
file is one document, any other file JSON lines of ``{"title", "text"}``; the entities are found by a
mention detector and grouped by a coreference (`paee.data.detect`), and the output names them:
``[{"title", "entities": [{"id", "type", "name", "mentions", "linked_by"}], "triples": [{"h_idx",
"t_idx", "h_name", "t_name", "r", "r_name", "score"}], "detection": report}]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from paee.cli.options import add_length_options, length_overrides
from paee.data.decode import triple_record
from paee.data.detect import (
    DETECTION_KEY, DetectionConfig, add_detection_options, entity_summary, raw_result, read_raw_documents,
)
from paee.data.docred import parse_document, read_documents, warn_duplicate_titles
from paee.data.jsonio import write_json_atomic
from paee.errors import PaeeUserError, console_script
from paee.inference import Predictor


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paee-predict", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, type=Path, help="a PAEE checkpoint (best.pt)")
    p.add_argument("--input", required=True, type=Path, nargs="+",
                   help="documents: DocRED JSON or text with character-offset mentions (one file); with --raw, "
                        ".txt files and JSON-lines files of {title, text}")
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
    p.add_argument("--raw", action="store_true", help="the input is plain text: detect the entities first")
    p.add_argument("--keep-first-entities", action="store_true",
                   help="--raw: a text with more entities than the model's N keeps the first N (the output says "
                        "what was cut) instead of failing")
    add_detection_options(p, default="spacy")
    return p


def _predict(args: argparse.Namespace) -> int:
    if not args.raw and len(args.input) > 1:
        raise PaeeUserError(f"--input takes one file of documents ({len(args.input)} given); several files are for --raw")
    raw_only = [name for name in ("type_map", "spacy_model") if getattr(args, name) is not None]
    if (raw_only or args.keep_first_entities) and not args.raw:
        raise PaeeUserError(f"--{(raw_only or ['keep_first_entities'])[0].replace('_', '-')} is for --raw input")
    predictor = Predictor.from_checkpoint(
        args.checkpoint, device=args.device, batch_size=args.batch_size, top_k=args.top_k,
        evidence_threshold=args.evidence_threshold,
        featurizer_overrides=length_overrides(args),
    )
    if args.raw:
        return _predict_raw(args, predictor)
    source = args.input[0]
    docs = read_documents(source, entity_types=predictor.featurizer.config.entity_types)
    warn_duplicate_titles(docs, str(source))
    known = set(predictor.featurizer.relations.ids) if predictor.featurizer.relations else set()
    unknown = sorted({fact.relation for doc in docs for fact in doc.facts} - known)
    if unknown:  # labels are never read here; say so rather than refuse the file
        print(f"warning: {source} has labels with relations the checkpoint does not know ({', '.join(unknown[:10])}"
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


def _predict_raw(args: argparse.Namespace, predictor: Predictor) -> int:
    """Detect, predict, name: one result per raw document (module docstring)."""
    config = predictor.featurizer.config
    detection = DetectionConfig.from_options(args).build(config)
    raws = read_raw_documents(args.input)
    if not raws:
        raise PaeeUserError(f"no documents in {', '.join(map(str, args.input))}")
    detected = [detection.document(obj, i, keep_first=args.keep_first_entities) for i, obj in enumerate(raws)]
    docs = [parse_document(d, i, entity_types=config.entity_types) for i, d in enumerate(detected)]
    results: list[dict[str, Any]] = []
    for doc, found, triples in zip(docs, detected, predictor.predict(docs, progress=True)):
        records = [triple_record(t, predictor.relations) for t in triples]
        results.append(raw_result(doc.title, entity_summary(found), records))
        for warning in found[DETECTION_KEY].get("warnings", []):
            print(f"warning: {doc.where}: {warning}", file=sys.stderr)
    write_json_atomic(args.out, results, indent=1)
    print(f"{sum(len(r['triples']) for r in results)} relation facts among {sum(len(r['entities']) for r in results)} "
          f"detected entities of {len(results)} documents (detector {detection.detector.name}) -> {args.out}",
          file=sys.stderr)
    return 0


main = console_script(build_parser, _predict)


if __name__ == "__main__":
    sys.exit(main())
