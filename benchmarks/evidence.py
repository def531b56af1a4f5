"""Evidence on Re-DocRED: relation F1 and the official Evi F1, with and without the evidence loss, and the threshold sweep.

    python benchmarks/evidence.py --encoder DIR --weights 0,0.1 --epochs 5 --out runs/evidence        # trains both
    python benchmarks/evidence.py --encoder DIR --weights 0,0.1 --checkpoint 0=runs/real_redocred/paee/best.pt \\
        --out runs/evidence --reuse      # the weight-0 run from benchmarks/real_text.py, weight 0.1 trained (or reused)

The protocol is `real_text.py`'s ``redocred`` (its `DATASETS` row: the first 400 Re-DocRED dev documents train,
the last 100 are held out; same options, seed, batch and epochs). For each ``--weights`` value w, ``paee-train
--evidence-weight w`` runs into ``OUT/w<w>/`` (or ``--checkpoint w=PATH`` names an existing checkpoint; ``--reuse``
takes a run in OUT that ended). Each checkpoint predicts the 100 held-out documents once (`Predictor.outputs`);
the outputs are decoded at every evidence threshold of ``--thresholds`` (the triples do not depend on it) and
scored by `paee.evaluation.metrics.evaluate` (official semantics; Ign F1 ignores facts of the 400).

Writes ``OUT/results.json`` and ``OUT/results.md`` (the table of the README's "Evidence" section).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paee.data.decode import to_result_records
from paee.data.docred import read_documents
from paee.evaluation.metrics import evaluate, train_fact_names
from paee.inference import Predictor
from paee.runtime.pipeline import decode_output
from real_text import DATASETS, add_budget_options, run_ended, train_command, write_report  # benchmarks/ is this script's folder

DATASET = "redocred"
#: The sweep: DREEAM's 0.2 and its neighbours.
DEFAULT_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5)


def parse_checkpoints(values: Sequence[str]) -> dict[float, Path]:
    """``["0=path/best.pt", ...]`` -> {0.0: Path}; a malformed entry is a usage error."""
    found: dict[float, Path] = {}
    for value in values:
        weight, sep, path = value.partition("=")
        try:
            found[float(weight)] = Path(path)
        except ValueError:
            sep = ""
        if not sep or not path:
            raise SystemExit(f"--checkpoint {value!r}: expected WEIGHT=PATH, e.g. 0=runs/real_redocred/paee/best.pt")
    return found


def checkpoint_for(args: argparse.Namespace, weight: float, train: Path, dev: Path) -> tuple[Path, str | None]:
    """The checkpoint of evidence weight ``weight``: given, reused, or trained now; and the training command."""
    given = args.checkpoints.get(weight)
    if given is not None:
        return given, None
    run = args.out / f"w{weight:g}"
    command = train_command(args, DATASETS[DATASET], train, dev, "paee", run, "--evidence-weight", f"{weight:g}")
    if not (args.reuse and run_ended(run)):
        subprocess.run(command, check=True)
    return run / "best.pt", shlex.join(command)


def training_summary(checkpoint: Path) -> dict[str, Any]:
    """Best dev epoch and steps from the run's ``metrics.jsonl`` beside the checkpoint (empty when there is none)."""
    metrics = checkpoint.parent / "metrics.jsonl"
    if not metrics.is_file():
        return {}
    events = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    evals = [e for e in events if e["event"] == "eval"]
    end = next((e for e in reversed(events) if e["event"] == "end"), None)
    best = max(evals, key=lambda e: e["dev"]["f1"]) if evals else None
    return {"best_epoch": best["epoch"] if best else None, "steps": end["step"] if end else None,
            "train_seconds": end["seconds"] if end else None}


def score_checkpoint(checkpoint: Path, train_docs: Sequence[Any], dev_docs: Sequence[Any],
                     thresholds: Sequence[float]) -> dict[str, Any]:
    """Relation and evidence scores of one checkpoint on ``dev_docs``, at each evidence threshold."""
    predictor = Predictor.from_checkpoint(checkpoint, featurizer_overrides={"truncate": True})
    outputs = predictor.outputs(dev_docs, progress=True)  # the model runs once; thresholds only decode
    train_facts = train_fact_names(train_docs)
    sweep = []
    for threshold in thresholds:
        config = dataclasses.replace(predictor.decode_config, evidence_threshold=threshold)
        records: list[dict[str, Any]] = []
        for doc, out in zip(dev_docs, outputs):
            triples = decode_output(out, config)
            records += to_result_records(doc.title, triples, predictor.relations)  # type: ignore[arg-type]
        scores = evaluate(records, dev_docs, train_facts)
        per_triple = [len(r["evidence"]) for r in records]
        sweep.append({"threshold": threshold, "evi_precision": scores.evidence_precision,
                      "evi_recall": scores.evidence_recall, "evi_f1": scores.evidence_f1,
                      "sentences_per_triple": sum(per_triple) / len(per_triple) if per_triple else 0.0,
                      "f1": scores.f1, "ign_f1": scores.ign_f1, "precision": scores.precision, "recall": scores.recall,
                      "triples": scores.n_predictions})
    default = predictor.decode_config.evidence_threshold
    at_default = next((row for row in sweep if row["threshold"] == default), sweep[0])
    return {"checkpoint": str(checkpoint), "default_threshold": default, **at_default, "sweep": sweep,
            **training_summary(checkpoint)}


def markdown(result: dict[str, Any]) -> str:
    thresholds = [row["threshold"] for row in result["runs"][0]["sweep"]] if result["runs"] else []
    lines = [f"`{result['command']}` (Re-DocRED: 400 dev documents train, the last 100 scored; encoder "
             f"{result['encoder']})", "",
             "| evidence weight | F1 | Ign F1 | Evi P | Evi R | Evi F1 (threshold "
             f"{result['runs'][0]['default_threshold'] if result['runs'] else ''}) | "
             + " | ".join(f"Evi F1 @ {t:g}" for t in thresholds) + " |",
             "|---:|---:|---:|---:|---:|---:|" + "---:|" * len(thresholds)]
    for r in result["runs"]:
        lines.append(f"| {r['weight']:g} | {100 * r['f1']:.1f} | {100 * r['ign_f1']:.1f} | {100 * r['evi_precision']:.1f} | "
                     f"{100 * r['evi_recall']:.1f} | {100 * r['evi_f1']:.1f} | "
                     + " | ".join(f"{100 * row['evi_f1']:.1f}" for row in r["sweep"]) + " |")
    lines.append("")
    for r in result["runs"]:
        trained = f" (trained by `{r['command']}`)" if r.get("command") else ""
        per_triple = ", ".join(f"{row['sentences_per_triple']:.2f}" for row in r["sweep"])
        lines.append(f"* weight {r['weight']:g}: `{r['checkpoint']}`{trained}; evidence sentences per triple at "
                     f"{', '.join(f'{t:g}' for t in thresholds)}: {per_triple}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", default=None, help="a Hugging Face encoder folder, or 'tiny' (needed to train)")
    p.add_argument("--weights", default="0,0.1", help="evidence loss weights, comma-separated")
    p.add_argument("--checkpoint", action="append", default=[], dest="checkpoint_args",
                   help="WEIGHT=PATH: score this checkpoint for that weight instead of training (repeatable)")
    p.add_argument("--thresholds", default=",".join(f"{t:g}" for t in DEFAULT_THRESHOLDS))
    add_budget_options(p, epochs=5, what="weight")
    args = p.parse_args(argv)
    args.checkpoints = parse_checkpoints(args.checkpoint_args)
    weights = [float(w) for w in args.weights.split(",")]
    thresholds = [float(t) for t in args.thresholds.split(",")]
    if args.encoder is None and any(w not in args.checkpoints for w in weights):
        p.error("--encoder is needed to train the weights without --checkpoint")
    args.out.mkdir(parents=True, exist_ok=True)
    train, dev = DATASETS[DATASET].prepare(args.data, args.out)
    train_docs, dev_docs = read_documents(train, entity_types=None), read_documents(dev, entity_types=None)
    runs = []
    for weight in weights:
        checkpoint, command = checkpoint_for(args, weight, train, dev)
        runs.append({"weight": weight, "command": command, **score_checkpoint(checkpoint, train_docs, dev_docs, thresholds)})
    write_report(args.out, "evidence.py", argv, {"encoder": str(args.encoder), "runs": runs}, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
