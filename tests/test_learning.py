"""The tiny model learns: a bounded `paee-train` run on the plain synthetic corpus must reach a dev F1
floor set below what was measured (see the floor's comment). This is a quality check, not a speed one:
nothing here is timed."""

from __future__ import annotations

import json

import pytest

from paee.cli.train import main as train_main
from paee.data.synthetic import SyntheticConfig, write_synthetic_splits

pytestmark = pytest.mark.slow

#: Measured with these settings on the development machine (2 cores, torch's default 2 threads): dev F1
#: by epoch 0.592, 0.667, 0.822 (144 s of training). The README's "Learning" section has the longer run
#: (2,400 documents, >= 0.9) and the runs without the evidence loss. Epochs swing with the thread count
#: (with one thread the same recipe gave 0.865 on another dev set), so the floor is on the best epoch and
#: well below what was measured; an untrained model predicts nothing (F1 0).
F1_FLOOR = 0.65
SIZES = {"train": 1000, "dev": 60, "test": 0}
EPOCHS = 3


def test_tiny_model_learns_the_plain_synthetic_corpus(tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    write_synthetic_splits(data, SyntheticConfig.plain(), sizes=SIZES, seed=0)
    rc = train_main([
        "--train", str(data / "train.json"), "--dev", str(data / "dev.json"), "--encoder", "tiny",
        "--out", str(run), "--epochs", str(EPOCHS), "--batch-size", "2", "--evidence-weight", "0.1",
        "--seed", "66",
    ])
    assert rc == 0
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    f1 = [e["dev"]["f1"] for e in events if e["event"] == "eval"]
    assert len(f1) == EPOCHS
    assert max(f1) >= F1_FLOOR, f"dev F1 by epoch {f1}: the tiny model did not learn the plain corpus"
