"""`paee-predict --checkpoint best.pt --input docs.json --out result.json`: relation triples in the
official DocRED ``result.json`` format with their ``evidence`` sentences, optionally with relation names and
scores.

The input is streamed: a first pass checks every document (a bad one stops the run before any prediction, or
with ``--errors FILE`` is listed there and skipped), a second reads, predicts and writes a chunk of documents
at a time (`DocumentRunner.stream`), so memory does not grow with the input. Records go to ``OUT.partial``
as they come; it becomes ``OUT`` when every document is done and is removed if the run fails.

`paee-predict --raw --input a.txt b.jsonl --out raw.json`: plain text without entities. Each ``.txt``
file is one document, any other file JSON lines of ``{"title", "text"}``; the entities are found by a
mention detector and grouped by a coreference (`paee.data.detect`), and the output names them:
``[{"title", "entities": [{"id", "type", "name", "mentions", "linked_by"}], "triples": [{"h_idx",
"t_idx", "h_name", "t_name", "r", "r_name", "score"}], "detection": report}]``.
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from paee.cli.options import add_length_options, length_overrides
from paee.data.decode import triple_record
from paee.data.detect import (
    DETECTION_KEY, DetectionConfig, add_detection_options, entity_summary, iter_raw_documents, raw_result,
)
from paee.data.docred import iter_documents, parse_document, warn_duplicate_titles
from paee.data.errors import PaeeDataError
from paee.data.jsonio import JsonListReader, JsonListWriter, write_json_atomic
from paee.data.schema import Document
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
    p.add_argument("--errors", type=Path, default=None,
                   help="a document that cannot be read or featurized is skipped and listed in this JSON file "
                        "(the others' results go to --out; exit status 1); without it the first one stops the run")
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
    if args.raw and args.errors is not None:
        raise PaeeUserError("--errors is for documents with entities; --raw stops at the first text it cannot read")
    predictor = Predictor.from_checkpoint(
        args.checkpoint, device=args.device, batch_size=args.batch_size, top_k=args.top_k,
        evidence_threshold=args.evidence_threshold,
        featurizer_overrides=length_overrides(args),
    )
    if args.raw:
        return _predict_raw(args, predictor)
    survey = _survey(args.input[0], predictor, collect=args.errors is not None)
    return _predict_stream(args, predictor, survey)


@dataclass
class _Survey:
    """What a first, cheap pass over the input finds (bounded memory: titles and errors only), so that a bad
    document stops the run before any prediction and the progress bar knows its total."""

    documents: int = 0
    errors: dict[int, PaeeDataError] = field(default_factory=dict)  # collected: document index -> its error


def _survey(source: Path, predictor: Predictor, collect: bool) -> _Survey:
    survey, titles, unknown_relations = _Survey(), [], set()
    known = set(predictor.featurizer.relations.ids) if predictor.featurizer.relations else set()
    reader = JsonListReader(source, what="documents")
    with tqdm(total=reader.size, desc="check", unit="B", unit_scale=True, leave=False) as bar:
        for doc in iter_documents(reader, entity_types=predictor.featurizer.config.entity_types,
                                  errors="collect" if collect else "raise"):
            if isinstance(doc, PaeeDataError):
                survey.errors[survey.documents] = doc
            else:
                titles.append(doc.title)
                unknown_relations.update(fact.relation for fact in doc.facts if fact.relation not in known)
            survey.documents += 1
            bar.update(reader.bytes_read - bar.n)
    warn_duplicate_titles(titles, str(source))
    unknown = sorted(unknown_relations)
    if unknown:  # labels are never read here; say so rather than refuse the file
        print(f"warning: {source} has labels with relations the checkpoint does not know ({', '.join(unknown[:10])}"
              f"{', ...' if len(unknown) > 10 else ''}); labels are ignored by prediction", file=sys.stderr)
    return survey


def _predict_stream(args: argparse.Namespace, predictor: Predictor, survey: _Survey) -> int:
    """Predict chunk by chunk, writing each document's records as they come (`JsonListWriter`: ``--out`` is
    renamed into place only when every document is done)."""
    errors = [_error_record(i, err) for i, err in survey.errors.items()]
    warned: list[dict[str, Any]] = []
    facts = 0
    docs = (d for d in iter_documents(args.input[0], entity_types=predictor.featurizer.config.entity_types,
                                      errors="collect") if not isinstance(d, PaeeDataError))
    with JsonListWriter(args.out, indent=1) as out, \
            tqdm(total=survey.documents - len(errors), desc="predict", unit="doc") as bar:
        for doc, features, triples in predictor.stream(docs, errors="raise" if args.errors is None else "collect"):
            bar.update()
            if isinstance(features, PaeeDataError):
                errors.append(_error_record(doc.index, features))
                continue
            for record in predictor.result_records(doc, features, triples, with_names=args.names, with_scores=args.scores):
                out.write(record)
                facts += 1
            if features.warnings:
                warned.append({"title": doc.title, "index": doc.index, "warnings": features.warnings})
            if bar.n % predictor.batch_size == 0:
                out.flush()  # the partial file follows the progress bar
    print(f"{facts} relation facts for {survey.documents - len(errors)} documents -> {args.out}", file=sys.stderr)
    if args.errors is not None:
        errors.sort(key=lambda e: e["document"])
        write_json_atomic(args.errors, errors, indent=1)
        print(f"{len(errors)} document(s) not predicted -> {args.errors}", file=sys.stderr)
    if warned:  # nothing is cut without the caller being told: per document, beside the results
        path = args.out.with_name(args.out.stem + ".warnings.json")
        write_json_atomic(path, warned, indent=1)
        print(f"warning: {len(warned)} document(s) truncated to max_length={predictor.featurizer.config.max_length}; "
              f"lost mentions listed in {path}", file=sys.stderr)
    return 1 if errors else 0


def _error_record(index: int, err: PaeeDataError) -> dict[str, Any]:
    return {"document": index, "title": getattr(err, "title", None), "error": str(err)}


def _predict_raw(args: argparse.Namespace, predictor: Predictor) -> int:
    """Detect, predict, name: one result per raw document (module docstring), streamed as `_predict_stream`."""
    config = predictor.featurizer.config
    detection = DetectionConfig.from_options(args).build(config)
    detected: deque[dict[str, Any]] = deque()  # the detections of the documents `stream` has taken, in order

    def documents() -> Iterator[Document]:
        for i, obj in enumerate(iter_raw_documents(args.input)):
            found = detection.document(obj, i, keep_first=args.keep_first_entities)
            detected.append(found)
            yield parse_document(found, i, entity_types=config.entity_types)

    entities = facts = 0
    with JsonListWriter(args.out, indent=1) as out, tqdm(desc="predict", unit="doc") as bar:
        for doc, _, triples in predictor.stream(documents()):
            found = detected.popleft()
            records = [triple_record(t, predictor.relations) for t in triples]
            result = raw_result(doc.title, entity_summary(found), records)
            out.write(result)
            entities, facts = entities + len(result["entities"]), facts + len(records)
            for warning in found[DETECTION_KEY].get("warnings", []):
                print(f"warning: {doc.where}: {warning}", file=sys.stderr)
            bar.update()
        if not out.count:
            raise PaeeUserError(f"no documents in {', '.join(map(str, args.input))}")
    print(f"{facts} relation facts among {entities} detected entities of {out.count} documents (detector "
          f"{detection.detector.name}) -> {args.out}", file=sys.stderr)
    return 0


main = console_script(build_parser, _predict)


if __name__ == "__main__":
    sys.exit(main())
