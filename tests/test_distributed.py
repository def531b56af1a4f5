"""Multi-process training: `torchrun --nproc-per-node 2` with gloo on a tiny model, as a user runs it.

Only rank 0 writes (checkpoints, metrics log) and prints; the checkpoint it writes loads; a second run resumes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from paee.data.synthetic import SyntheticConfig, write_synthetic_splits
from paee.inference import Predictor

WORLD = 2
#: 16 documents / (batch 2 x 2 processes x grad-accum 2) = 2 optimizer steps per epoch.
TRAIN_DOCS, BATCH, ACCUM = 16, 2, 2


def _torchrun(corpus, out, epochs: int) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={WORLD}",
           "-m", "paee.cli.train", "--train", str(corpus / "train.json"), "--dev", str(corpus / "dev.json"),
           "--encoder", "tiny", "--out", str(out), "--epochs", str(epochs), "--batch-size", str(BATCH),
           "--grad-accum", str(ACCUM), "--seed", "3", "--truncate"]
    env = dict(os.environ, OMP_NUM_THREADS="1")  # two processes on a shared CPU
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _events(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    write_synthetic_splits(out, SyntheticConfig(), sizes={"train": TRAIN_DOCS, "dev": 4, "test": 4}, seed=5)
    return out


def test_torchrun_two_processes_rank0_writes_and_prints_and_resumes(corpus, tmp_path):
    out = tmp_path / "ddp"
    first = _torchrun(corpus, out, epochs=1)
    logs = first.stdout + first.stderr
    assert logs.count("done: ") == 1, logs[-3000:]  # the final line comes from rank 0 only
    events = _events(out)
    assert [e["event"] for e in events].count("start") == 1  # one writer: rank 1 logs nothing
    assert events[-1]["event"] == "end" and events[-1]["step"] == 2
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".pt") == ["best.pt", "last.pt"]

    predictor = Predictor.from_checkpoint(out / "best.pt", device="cpu", featurizer_overrides={"truncate": True})
    from paee.data.docred import read_documents
    assert len(predictor.predict(read_documents(corpus / "test.json"))) == 4

    second = _torchrun(corpus, out, epochs=2)
    logs = second.stdout + second.stderr
    assert logs.count("resuming from") == 1 and logs.count("done: ") == 1, logs[-3000:]
    events = _events(out)
    assert [e["resumed_from_step"] for e in events if e["event"] == "start"] == [0, 2]
    assert events[-1]["event"] == "end" and events[-1]["epoch"] == 2 and events[-1]["step"] == 4
