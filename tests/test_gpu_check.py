"""benchmarks/gpu_check.sh: the prepared GPU check runs its whole code path on CPU with --dry-run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)


def _check_report(out: Path) -> dict:
    results = json.loads((out / "gpu_check.json").read_text())
    assert results["format"] == "paee-gpu-check" and results["dry_run"] and results["device"] == "cpu"
    assert set(results["sets"]) == {"docred50", "docred50-512"}
    for rows in results["sets"].values():
        assert set(rows) == {"eager-fp32", "eager-bf16"}, rows  # the CUDA modes cannot run here
        for mode, row in rows.items():
            assert set(row) >= {"batch1", "batch32"}, (mode, row)
            assert row["batch1"]["model_ms_per_document"]["p50"] > 0 and row["batch32"]["docs_per_s"] > 0
            assert 0 <= row["batch1"]["agreement_with_eager_fp32"]["jaccard"] <= 1
        assert rows["eager-fp32"]["batch1"]["agreement_with_eager_fp32"]["jaccard"] == 1.0
    assert set(results["skipped"]) == {"cuda-graphs-fp32", "cuda-graphs-bf16", "compile-bf16"}
    assert all("CUDA" in why for why in results["skipped"].values())
    md = (out / "gpu_check.md").read_text()
    assert "## docred50-512" in md and "| eager-bf16 |" in md and "## Skipped" in md
    return results


def test_dry_run_writes_the_report(tmp_path):
    done = _run("--dry-run", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr[-3000:]
    results = _check_report(tmp_path / "out")
    assert results["documents"]["source"] == "synthetic (dry run)"


def test_without_a_gpu_or_a_bundle_it_says_what_to_do(tmp_path):
    done = _run("--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "--bundle DIR is needed" in done.stderr or "no CUDA device" in done.stderr


@pytest.mark.realdata
def test_prepare_bundles_the_docred_test_documents_and_the_dry_run_reads_them(tmp_path, docred_test_path, rel2id_path,
                                                                              rel_info_path):
    shared = docred_test_path.parents[1]
    env_shared = {"PAEE_SHARED_DATA": str(shared)}
    bundle = tmp_path / "bundle"
    done = subprocess.run(["bash", str(SCRIPT), "--prepare", str(bundle)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHON": sys.executable, **env_shared}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(json.loads((bundle / "docs.json").read_text())) == 50
    assert (bundle / "rel2id.json").read_bytes() == rel2id_path.read_bytes()
    done = _run("--dry-run", "--bundle", str(bundle), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr[-3000:]
    results = _check_report(tmp_path / "out")
    assert results["documents"]["count"] == 4 and "docs.json (50 documents)" in results["documents"]["source"]
