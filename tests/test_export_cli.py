"""`paee-export` end to end on a tiny random-weight checkpoint: a complete CPU repository with its export
report (parity <= 1e-4, one fused Attention per layer), int8 with triple agreement, --force replacement,
--tensorrt without TensorRT, and every user error as one line + exit 2 with nothing left behind.

Three full exports (fp32 once per module, int8, gpu + --tensorrt); the error cases fail before any work.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("tritonclient.grpc")

from paee.runtime.layout import ModelRuntime, version_dir  # noqa: E402
from paee.runtime.sessions import bf16_cpu_support, openvino_available  # noqa: E402
from paee_export.cli import main  # noqa: E402
from paee_export.repository import parse_config  # noqa: E402

pytestmark = pytest.mark.slow

MODELS = {"paee", "paee_preprocess", "paee_encoder", "paee_head", "paee_postprocess"}
#: Logits of the exported fp32 graphs vs PyTorch (brief: max abs diff <= 1e-4).
FP32_ATOL = 1e-4
#: The encoder window of the tiny BERT: longer documents go to encoder_long.
WINDOW = 512


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A tiny random checkpoint (saved, not trained: the export does not care) and 2 parity documents."""
    from paee.data.docred import write_documents
    from paee.data.featurizer import Featurizer, FeaturizerConfig
    from paee.data.relations import RelationVocab
    from paee.data.synthetic import generate_corpus, rel2id, rel_info
    from paee.checkpoint import Checkpoint
    from paee_bench.checkpoints import random_model

    out = tmp_path_factory.mktemp("export_cli")
    docs = generate_corpus(n_docs=8, seed=1)
    relations = RelationVocab.from_rel2id(rel2id(), rel_info())
    model, source = random_model("tiny", docs, relations, FeaturizerConfig(), seed=0)
    checkpoint = out / "run" / "best.pt"
    Checkpoint.from_model(model, source.tokenizer).save(checkpoint)
    # one document longer than a window (so encoder_long is compared too) and one short one
    featurizer = Featurizer(source.tokenizer, FeaturizerConfig(), relations)
    lengths = [f.num_tokens for f in featurizer.featurize_many(docs)]
    long = next(d for d, n in zip(docs, lengths) if n > WINDOW)
    short = next(d for d, n in zip(docs, lengths) if n <= WINDOW)
    parity_docs = out / "parity.json"
    write_documents(parity_docs, [short, long])
    layers = int(model.encoder.backbone.config.num_hidden_layers)
    return {"checkpoint": checkpoint, "parity_docs": parity_docs, "root": out, "layers": layers}


def _export(files: dict[str, Path], out: Path, *extra: str) -> int:
    return main(["--checkpoint", str(files["checkpoint"]), "--out", str(out), "--parity-docs",
                 str(files["parity_docs"]), "--quiet", *extra])


@pytest.fixture(scope="module")
def fp32_repo(files) -> Path:
    out = files["root"] / "repo_fp32"
    assert _export(files, out, "--evidence-threshold", "0.3") == 0
    return out


def _report(repo: Path) -> dict:
    return json.loads((repo / "export_report.json").read_text())


def _leftovers(folder: Path, name: str) -> list[str]:
    """Anything named like the repository (its temporary/old siblings included) in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if name in p.name)


def test_fp32_cpu_export_writes_a_complete_repository(fp32_repo, files):
    configs = {p.parent.name: parse_config(p.read_text(), str(p)) for p in fp32_repo.glob("*/config.pbtxt")}
    assert set(configs) == MODELS
    version = fp32_repo / "paee_encoder" / "1"
    assert (version / "graphs" / "encoder" / "model.onnx").is_file()
    assert (version / "graphs" / "encoder_long" / "model.onnx").is_file()
    assert (fp32_repo / "paee_head" / "1" / "graphs" / "head" / "model.onnx").is_file()
    assert (fp32_repo / "paee_preprocess" / "1" / "assets" / "tokenizer.json").is_file()
    relations = json.loads((fp32_repo / "paee_postprocess" / "1" / "assets" / "relations.json").read_text())
    assert len(relations["ids"]) > 1

    report = _report(fp32_repo)
    assert report["target"] == "cpu" and report["precision"] == "fp32" and report["plan"] == "cpu-fp32"
    for graph in ("encoder", "encoder_long"):  # the shipped encoders are the fused ones
        assert report["build"]["fused_attention"][graph] == {"fused_attention": files["layers"], "layers": files["layers"]}
        assert report["graphs"][graph]["fused_attention"] == files["layers"]
    fp32 = report["parity"]["variants"]["cpu-fp32"]
    assert fp32["end_to_end"]["logits"]["max_abs"] <= FP32_ATOL
    assert fp32["head"]["logits"]["max_abs"] <= FP32_ATOL
    assert fp32["end_to_end"]["triples"]["jaccard"] == 1.0
    assert fp32["end_to_end"]["evidence"]["differing"] == 0 and fp32["end_to_end"]["evidence"]["compared_triples"] >= 1
    decode = json.loads((fp32_repo / "paee_postprocess" / "1" / "assets" / "decode.json").read_text())
    assert decode["evidence_threshold"] == 0.3  # --evidence-threshold travels to the served decoder
    assert report["parity"]["documents"] >= 2 + 1  # the given documents plus synthetic ones
    assert report["parity"]["long_documents"] >= 1  # encoder_long was compared too
    # documents read as 1, 2, 4 and 8 encoder windows, each within the fp32 tolerance
    by_windows = fp32["end_to_end"]["by_windows"]
    assert {"1", "2", "4", "8"} <= set(by_windows), report["parity"]["documents_info"]
    assert max(d["max_abs"] for d in by_windows.values()) <= FP32_ATOL
    featurizer = json.loads((fp32_repo / "paee_preprocess" / "1" / "assets" / "featurizer.json").read_text())
    assert featurizer["max_length"] == 4096 and featurizer["truncate"] is False  # the limit it serves, no silent cut
    assert report["versions"]["onnxruntime"] and report["tensorrt"] == {"requested": False}
    assert _leftovers(fp32_repo.parent, "repo_fp32") == ["repo_fp32"]
    # nothing machine-specific or generated at run time travels in the repository
    manifest = (fp32_repo / "paee_repository.json").read_text()
    assert "/tmp" not in manifest and "paee-export-" not in manifest
    assert not list(fp32_repo.rglob("__pycache__"))


def test_existing_repository_needs_force(fp32_repo, files, capsys):
    before = (fp32_repo / "export_report.json").read_text()
    assert _export(files, fp32_repo) == 2
    err = capsys.readouterr().err
    assert "--force" in err and "already exists" in err and "Traceback" not in err
    assert (fp32_repo / "export_report.json").read_text() == before  # untouched


def test_int8_export_with_force_replaces_the_repository(fp32_repo, files):
    repo = files["root"] / "repo_replaced"
    shutil.copytree(fp32_repo, repo)
    assert _export(files, repo, "--precision", "int8", "--force") == 0
    report = _report(repo)
    assert report["precision"] == "int8"  # replaced, not merged
    runtime = json.loads((repo / "paee_encoder" / "1" / "assets" / "runtime.json").read_text())
    graphs = {g["name"]: g for g in runtime["graphs"]}
    assert graphs["encoder"]["precision"] == graphs["encoder_long"]["precision"] == "int8"
    head = json.loads((repo / "paee_head" / "1" / "assets" / "runtime.json").read_text())["graphs"][0]
    if openvino_available():
        # static int8 encoder on OpenVINO, calibrated on synthetic documents; the head at bf16 where the CPU can
        assert graphs["encoder"]["backend"] == "openvino" and graphs["encoder_long"]["backend"] == "onnxruntime"
        assert head["precision"] == ("bf16" if bf16_cpu_support()[0] else "fp32")
        assert "synthetic documents" in report["build"]["calibration"]["encoder"]
        assert report["graphs"]["encoder"]["op_histogram"].get("QuantizeLinear", 0) > 0
    else:
        assert report["plan"] == "cpu-int8-dynamic" and graphs["encoder"]["backend"] == "onnxruntime"
    int8 = report["parity"]["variants"][report["plan"]]["end_to_end"]
    assert 0.0 <= int8["triples"]["jaccard"] <= 1.0 and "identical_documents" in int8["triples"]
    assert 0.9 <= int8["pair_argmax_agreement"] <= 1.0
    assert report["graphs"]["encoder"]["initializer_dtypes"].get("INT8", 0) > 0
    assert _leftovers(repo.parent, "repo_replaced") == ["repo_replaced"]


def test_int8_repository_serves_what_its_runtimes_compute_in_process(files):
    """The int8 repository mixes runtimes per graph (OpenVINO static encoder, ORT long encoder, bf16 head):
    a real tritonserver must run each graph as its runtime.json says, so its triples equal the in-process
    pipeline's on the same files."""
    from paee.data.docred import read_documents
    from paee.serving.client import PaeeClient
    from paee.serving.server import TritonServer, TritonServerError, find_triton
    from paee.runtime.pipeline import OnnxPipeline

    repo = files["root"] / "repo_replaced"
    if not (repo / "export_report.json").exists():
        pytest.skip("needs the int8 repository of test_int8_export_with_force_replaces_the_repository")
    try:
        find_triton()
    except TritonServerError as e:
        pytest.skip(f"no tritonserver: {e}")
    docs = read_documents(files["parity_docs"])
    pipeline = OnnxPipeline.from_repository(repo, batch_size=1)  # one document per request, as served here
    relations = pipeline.relations
    expected = [{(t.head, t.tail, relations.ids[t.relation]) for t in triples} for triples in pipeline.predict(docs)]
    with TritonServer(repo, http_port=0, grpc_port=0, metrics_port=0, stop_timeout_s=20) as server:
        with PaeeClient(server.http_url, protocol="http", timeout_s=120) as client:
            served = [{(t["h_idx"], t["t_idx"], t["r"]) for t in client.predict(d.to_json())} for d in docs]
    assert served == expected and any(expected)
    assert not list(repo.rglob("__pycache__"))  # serving writes nothing into the repository


def test_tensorrt_without_tensorrt_exports_and_says_why(files, capsys):
    from paee_export.tensorrt_build import tensorrt_available

    available, _ = tensorrt_available()
    if available:
        pytest.skip("TensorRT and a GPU are present here: the engines would be built")
    repo = files["root"] / "repo_gpu"
    assert _export(files, repo, "--target", "gpu", "--tensorrt") == 0
    report = _report(repo)
    assert report["tensorrt"]["requested"] and report["tensorrt"]["skipped"]
    assert "tensorrt: skipped" in capsys.readouterr().out
    configs = {p.parent.name: parse_config(p.read_text(), str(p)) for p in repo.glob("*/config.pbtxt")}
    assert configs["paee_head"].platform == "onnxruntime_onnx"  # ONNX with the TensorRT accelerator instead
    assert report["parity"]["variants"]["gpu-fp32"]["end_to_end"]["logits"]["max_abs"] <= FP32_ATOL
    assert report["parity"]["skipped_variants"] == {}  # fp32 GPU files run on ONNX Runtime's CPU provider here


def _assert_user_error(capsys, rc: int, *words: str) -> None:
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err, err


def test_truncated_checkpoint(files, tmp_path, capsys):
    broken = tmp_path / "broken.pt"
    data = files["checkpoint"].read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    rc = main(["--checkpoint", str(broken), "--no-parity", "--quiet"])  # default --out: beside the checkpoint
    _assert_user_error(capsys, rc, "broken.pt", "truncated")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.pt"]


def test_file_that_is_not_a_paee_checkpoint(tmp_path, capsys):
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, other)
    rc = main(["--checkpoint", str(other), "--out", str(tmp_path / "repo"), "--no-parity", "--quiet"])
    _assert_user_error(capsys, rc, "other.pt", "not a PAEE checkpoint")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.pt"]


def test_out_that_is_a_file(files, tmp_path, capsys):
    target = tmp_path / "repo"
    target.write_text("not a folder")
    rc = main(["--checkpoint", str(files["checkpoint"]), "--out", str(target), "--quiet"])
    _assert_user_error(capsys, rc, str(target), "is a file")
    assert target.read_text() == "not a folder" and sorted(p.name for p in tmp_path.iterdir()) == ["repo"]


def test_precision_the_target_cannot_do(files, tmp_path, capsys):
    rc = main(["--checkpoint", str(files["checkpoint"]), "--out", str(tmp_path / "repo"), "--target", "cpu",
               "--precision", "fp16", "--quiet"])
    _assert_user_error(capsys, rc, "fp16", "--target cpu", "--target gpu")
    rc = main(["--checkpoint", str(files["checkpoint"]), "--out", str(tmp_path / "repo"), "--target", "gpu",
               "--precision", "int8", "--quiet"])
    _assert_user_error(capsys, rc, "int8", "--target gpu")
    assert list(tmp_path.iterdir()) == []


def test_evidence_threshold_outside_0_1_is_a_user_error(files, tmp_path, capsys):
    assert _export(files, tmp_path / "repo", "--evidence-threshold", "1") == 2
    err = capsys.readouterr().err
    assert "evidence_threshold must be a share in [0, 1), got 1.0" in err and "Traceback" not in err
    assert not (tmp_path / "repo").exists()


def test_calibration_is_for_int8_only(files, tmp_path, capsys):
    rc = main(["--checkpoint", str(files["checkpoint"]), "--out", str(tmp_path / "repo"), "--precision", "fp32",
               "--calibration", str(files["parity_docs"]), "--quiet"])
    _assert_user_error(capsys, rc, "--calibration", "int8")
    assert list(tmp_path.iterdir()) == []


def _runtime_entries(repo: Path) -> dict[str, list[dict]]:
    """Per graph-running model, its runtime.json graph entries (file, lengths, runtime, precision)."""
    return {model: [g.to_json() for g in ModelRuntime.read(version_dir(repo, model)).graphs]
            for model in ("paee_encoder", "paee_head")}


@pytest.mark.parametrize("precision", ["fp32", "int8", "bf16"])
def test_bench_serves_the_repository_the_export_writes(files, precision):
    """paee-bench's Triton repository of a precision runs every graph as paee-export's does (one plan table)."""
    from paee.checkpoint import Checkpoint
    from paee_bench.artifacts import Artifacts

    exported = files["root"] / f"repo_plan_{precision}"
    if not exported.exists():
        assert _export(files, exported, "--precision", precision, "--no-parity") == 0
    ckpt = Checkpoint.load(files["checkpoint"])
    artifacts = Artifacts(ckpt.build_model(), ckpt, ckpt.featurizer(truncate=True), files["root"] / f"bench_{precision}",
                          progress=False)
    benched = artifacts.repository(precision, threads=None, max_batch_size=8)
    assert _runtime_entries(benched) == _runtime_entries(exported)
    manifests = [json.loads((r / "paee_repository.json").read_text()) for r in (benched, exported)]
    assert manifests[0]["plan"] == manifests[1]["plan"] and manifests[0]["graphs"] == manifests[1]["graphs"]


def test_max_length_is_the_limit_the_repository_serves(files):
    out = files["root"] / "repo_2048"
    assert main(["--checkpoint", str(files["checkpoint"]), "--out", str(out), "--no-parity", "--quiet",
                 "--max-length", "2048"]) == 0
    featurizer = json.loads((out / "paee_preprocess" / "1" / "assets" / "featurizer.json").read_text())
    assert featurizer["max_length"] == 2048
    manifest = (out / "paee_repository.json").read_text()
    assert "[513, 2048]" in manifest.replace("\n", "").replace(" ", "").replace(",", ", ")


def test_max_length_beyond_what_is_supported_is_refused(files, tmp_path, capsys):
    assert main(["--checkpoint", str(files["checkpoint"]), "--out", str(tmp_path / "r"), "--max-length", "9000"]) == 2
    assert "--max-length must be in 1..8192" in capsys.readouterr().err
