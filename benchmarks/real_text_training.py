"""A bounded training run on real text: a tiny random encoder trained on the first 400 Re-DocRED dev
documents and evaluated on the other 100 (no quality floor: the encoder knows no English).

Reads ../shared/data (never copied into the repository); writes the split, the run directory
(`best.pt`, `metrics.jsonl`, `training_curves.png`) and `scores.json` under --out.

    python benchmarks/real_text_training.py --out /tmp/redocred_run --max-steps 300
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from paee.cli.train import main as train_main
from paee.data.docred import read_documents, write_documents
from paee.data.relations import RelationVocab
from paee.evaluation.metrics import evaluate, train_fact_names
from paee.inference import Predictor
from paee.training.setup import TINY_LR_ENCODER, TINY_LR_HEAD

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=SHARED, help="the shared data folder")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--train-docs", type=int, default=400)
    p.add_argument("--max-steps", type=int, default=300)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr-encoder", type=float, default=TINY_LR_ENCODER)
    p.add_argument("--lr-head", type=float, default=TINY_LR_HEAD)
    args = p.parse_args(argv)

    source = args.data / "redocred" / "dev_revised.json"
    if not source.is_file():
        print(f"skipped: {source} not present", file=sys.stderr)
        return 0
    relations = RelationVocab.from_files(args.data / "meta" / "rel2id.json", args.data / "meta" / "rel_info.json")
    docs = read_documents(source, relations=relations)
    train, held_out = docs[: args.train_docs], docs[args.train_docs:]
    args.out.mkdir(parents=True, exist_ok=True)
    write_documents(args.out / "train.json", train)
    write_documents(args.out / "heldout.json", held_out)
    run = args.out / "run"
    rc = train_main([
        "--train", str(args.out / "train.json"), "--dev", str(args.out / "heldout.json"),
        "--rel2id", str(args.data / "meta" / "rel2id.json"), "--rel-info", str(args.data / "meta" / "rel_info.json"),
        "--encoder", "tiny", "--out", str(run), "--epochs", str(args.epochs), "--max-steps", str(args.max_steps),
        "--lr-encoder", str(args.lr_encoder), "--lr-head", str(args.lr_head), "--no-resume",
    ])
    if rc:
        return rc
    records = Predictor.from_checkpoint(run / "best.pt").predict_records(held_out)
    scores = evaluate(records, held_out, train_fact_names(train)).to_json()
    (args.out / "scores.json").write_text(json.dumps(scores, indent=2))
    losses = [e for e in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if e["event"] == "step"]
    print(json.dumps({"held_out": {k: scores[k] for k in ("f1", "ign_f1", "precision", "recall", "rela_f1")},
                      "loss_first": losses[0]["loss"] if losses else None,
                      "loss_last": losses[-1]["loss"] if losses else None,
                      "curves": str(run / "training_curves.png")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
