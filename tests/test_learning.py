"""The tiny model learns: a bounded `paee-train` run on the plain synthetic corpus must reach a dev F1
floor set below what was measured (see the floor's comment). This is a quality check, not a speed one:
nothing here is timed."""

from __future__ import annotations

import json

import pytest

from paee.cli.train import main as train_main
from paee.data.synthetic import SyntheticConfig, write_synthetic_splits

pytestmark = pytest.mark.slow

#: Measured with these settings on the development machine (2 cores, 1 thread): dev F1 by epoch 0.000,
#: 0.208, 0.204. Early training swings (the relation logits sit close to the threshold class), so the
#: floor leaves room for thread-count differences; an untrained model predicts nothing (F1 0).
F1_FLOOR = 0.10
SIZES = {"train": 240, "dev": 60, "test": 0}
EPOCHS = 3


def test_tiny_model_learns_the_plain_synthetic_corpus(tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    write_synthetic_splits(data, SyntheticConfig.plain(), sizes=SIZES, seed=7)
    rc = train_main([
        "--train", str(data / "train.json"), "--dev", str(data / "dev.json"), "--encoder", "tiny",
        "--out", str(run), "--epochs", str(EPOCHS), "--seed", "1", "--truncate",
    ])
    assert rc == 0
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    f1 = [e["dev"]["f1"] for e in events if e["event"] == "eval"]
    assert len(f1) == EPOCHS
    assert max(f1) >= F1_FLOOR, f"dev F1 by epoch {f1}: the tiny model did not learn the plain corpus"
