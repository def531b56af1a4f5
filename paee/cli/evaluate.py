"""``paee-eval``: score a ``result.json`` against a labelled DocRED-format file.

    paee-eval --pred result.json --gold dev.json [--train train.json] [--out scores.json] [--pair-types S:O,...]

Prints F1, Ign F1, P, R, Rela P/R/F1 (and Evi P/R/F1, the official evidence scores, when the predictions
carry ``evidence``) and the counts as percentages, and writes the scores (as
fractions in [0, 1]) to ``--out``, by default ``scores.json`` next to ``--pred``. Without ``--train``
nothing is ignored, so Ign F1 equals F1 up to the official scorer's 1e-5. Errors a user can cause
(missing file, bad JSON, bad record) print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from paee.data.docred import read_documents, warn_duplicate_titles
from paee.data.jsonio import write_json_atomic
from paee.data.featurizer import parse_pair_types
from paee.errors import console_script
from paee.evaluation.metrics import Scores, evaluate, read_predictions, train_fact_names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paee-eval", description="Official DocRED scores (F1, Ign F1, Evi F1) and PAEE's pair-level Rela."
    )
    parser.add_argument("--pred", type=Path, required=True, help="predictions, official result.json format")
    parser.add_argument("--gold", type=Path, required=True, help="labelled documents (DocRED JSON), e.g. dev.json")
    parser.add_argument("--train", type=Path, help="training documents; their facts are ignored by Ign F1")
    parser.add_argument("--out", type=Path, help="where to write the scores JSON (default: scores.json next to --pred)")
    parser.add_argument("--pair-types", default="", help="score only these (subject:object) entity type pairs, "
                                                         "comma-separated, e.g. Chemical:Disease (CDR); default: all")
    return parser


def format_table(scores: Scores) -> str:
    """The human-readable summary: rates as percentages, then the counts."""
    rows = [
        ("F1", scores.f1),
        ("Ign F1", scores.ign_f1),
        ("P", scores.precision),
        ("R", scores.recall),
        ("Rela P", scores.rela_precision),
        ("Rela R", scores.rela_recall),
        ("Rela F1", scores.rela_f1),
    ]
    if scores.with_evidence:
        rows += [("Evi P", scores.evidence_precision), ("Evi R", scores.evidence_recall), ("Evi F1", scores.evidence_f1)]
    lines = [f"{name:<8} {100.0 * value:7.2f}" for name, value in rows]
    lines.append(
        f"facts: {scores.n_correct} correct / {scores.n_predictions} predicted / {scores.n_gold} gold;"
        f" {scores.n_correct_in_train} correct seen in train; {scores.n_unknown_titles} unknown titles"
    )
    lines.append(
        f"pairs: {scores.n_correct_pairs} correct / {scores.n_predicted_pairs} predicted / {scores.n_gold_pairs} gold"
    )
    if scores.with_evidence:
        lines.append(f"evidence sentences: {scores.n_correct_evidence} correct (of correct facts) / "
                     f"{scores.n_predicted_evidence} predicted / {scores.n_gold_evidence} gold")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> Scores:
    """Read the inputs, score, print the table and write the JSON; raises on bad input."""
    predictions = read_predictions(args.pred)
    gold = read_documents(args.gold, entity_types=None)  # scoring never needs a schema's types
    warn_duplicate_titles((doc.title for doc in gold), str(args.gold))
    train_facts = train_fact_names(read_documents(args.train, entity_types=None)) if args.train is not None else None
    scores = evaluate(predictions, gold, train_facts, parse_pair_types(args.pair_types))

    out = args.out if args.out is not None else args.pred.parent / "scores.json"
    write_json_atomic(out, scores.to_json(), indent=2)
    print(format_table(scores))
    print(f"scores written to {out}")
    return scores


def _evaluate(args: argparse.Namespace) -> int:
    run(args)
    return 0


main = console_script(build_parser, _evaluate)


if __name__ == "__main__":
    sys.exit(main())
