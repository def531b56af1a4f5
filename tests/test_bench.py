"""paee-bench: a quick run on a tiny model writes results.json, results.md and four PNGs with every field;
backends that cannot run are listed with a reason; bad input is a clear error. Speed is never asserted.
"""

from __future__ import annotations

import importlib.util
import json
import struct

import pytest

from paee_bench.cli import main
from paee_bench.report import RESULT_KEYS, STATUSES, check_results

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The tables results.md must hold (section titles).
MD_SECTIONS = (
    "## Latency per document", "## Parity with PyTorch fp32", "## Encoder against this machine's matrix-multiply peak",
    "## Throughput against batch size", "## Throughput against concurrency", "## Where a served request spends its time",
    "## Batched pair stage against the N x N map",
    "## Backends that did not run", "## Plots",
)  # fmt: skip
#: Small sizes on top of --quick: the test checks fields, not figures.
QUICK_ARGS = ["--quick", "--threads", "1", "--no-progress", "--synthetic-docs", "4", "--throughput-docs", "3"]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from paee.data.relations import RelationVocab
    from paee.data.synthetic import generate_corpus, rel2id, rel_info
    from paee_bench.checkpoints import make_checkpoint

    docs = generate_corpus(n_docs=12, seed=5)
    relations = RelationVocab.from_rel2id(rel2id(), rel_info())
    return make_checkpoint("tiny", docs, relations, tmp_path_factory.mktemp("bench_ckpt") / "best.pt")


@pytest.fixture(scope="module")
def quick_run(tiny_checkpoint, tmp_path_factory):
    """One quick run over every backend (those that cannot run here are skipped with reasons)."""
    out = tmp_path_factory.mktemp("bench") / "out"
    rc = main(["--checkpoint", str(tiny_checkpoint), "--out", str(out), *QUICK_ARGS])
    assert rc == 0
    return out, json.loads((out / "results.json").read_text())


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR", f"{path} has no IHDR chunk"
    return struct.unpack(">II", data[16:24])


@pytest.mark.slow
def test_quick_run_writes_every_file_and_field(quick_run):
    out, results = quick_run
    assert set(RESULT_KEYS) <= set(results)
    assert check_results(results) == []
    assert results["format"] == "paee-bench-results"
    env = results["environment"]
    for key in ("cpu", "usable_cores", "cpu_flags", "gpu", "versions", "threads", "load_average_start", "load_average_end"):
        assert key in env, key
    assert {"avx512_bf16", "avx512_vnni", "amx_bf16"} <= set(env["cpu_flags"])
    assert env["threads"]["torch_intra_op"] == 1
    assert results["settings"]["quick"] is True and results["settings"]["seed"] == 0
    assert results["documents"]["count"] == 4
    assert results["model"]["layers"] >= 1

    md = (out / "results.md").read_text()
    for section in MD_SECTIONS:
        assert section in md, section
    assert md.count("| backend |") >= 4  # latency, parity, encoder, batch-size tables at least
    for name in results["plots"]:
        width, height = _png_size(out / name)
        assert width > 100 and height > 100
        assert f"]({name})" in md
    assert len(results["plots"]) == 4


@pytest.mark.slow
def test_every_backend_is_reported_and_the_reference_ran(quick_run):
    _, results = quick_run
    backends = results["backends"]
    from paee_bench.backends import BACKENDS

    assert list(backends) == list(BACKENDS)
    for name, entry in backends.items():
        assert entry["status"] in STATUSES, name
        if entry["status"] != "ok":
            assert entry["reason"].strip(), f"{name} is {entry['status']} without a reason"
    torch_entry = backends["torch"]
    assert torch_entry["status"] == "ok"
    assert torch_entry["parity"]["max_abs_logit_diff"] == 0.0
    assert torch_entry["parity"]["triples"]["jaccard"] == 1.0
    if backends["torch-cuda"]["status"] == "skipped":
        assert "CUDA" in backends["torch-cuda"]["reason"]


@pytest.mark.slow
def test_backends_that_ran_have_latency_parity_encoder_and_throughput(quick_run):
    _, results = quick_run
    ran = {n: e for n, e in results["backends"].items() if e["status"] == "ok"}
    if importlib.util.find_spec("onnxruntime") is not None:
        assert "ort" in ran, results["backends"]["ort"].get("reason")
    for name, e in ran.items():
        for pct in ("p50", "p90", "p99"):
            assert e["latency_ms"]["total"][pct] > 0, (name, pct)
        assert e["docs_per_s"] > 0
        assert len(e["per_document"]) == results["documents"]["count"]
        parity = e["parity"]
        assert 0.0 <= parity["triples"]["jaccard"] <= 1.0
        assert "f1_change" in parity  # synthetic documents carry gold labels
        if e["kind"] == "in-process":
            assert set(e["latency_ms"]) == {"total", "featurize", "encoder", "head", "decode"}
            assert parity["max_abs_logit_diff"] >= 0
            enc = e["encoder"]
            assert enc["effective_tflops"] > 0 and enc["fraction_of_peak"] > 0, name
            assert set(e["throughput"]["batch_size"]) == {"1", "2"}
        else:
            assert set(e["throughput"]["concurrency"]) == {"1", "2"}
            for load in e["throughput"]["load"].values():
                assert load["failed"] == 0
                server = load["server_ms"]  # Triton's own breakdown of the same requests
                assert {"paee", "paee_preprocess", "paee_encoder", "paee_head", "paee_postprocess"} <= set(server)
                # the time inside the server is the client's latency but the network; Triton stops its clock when it
                # releases the request, which can come just after the client got the answer (seen: 163.4 vs 162.6)
                assert 0 < server["paee"]["success_ms"] <= 1.05 * load["latency_ms"]["mean"]
    if "ort" in ran:  # fp32 ONNX Runtime computes what PyTorch computes
        assert ran["ort"]["parity"]["max_abs_logit_diff"] < 1e-3
    for key, peak in results["peak"].items():
        assert "ops_per_s" in peak or peak["unavailable"], key


@pytest.mark.slow
def test_head_vs_loop_outputs_agree_and_are_timed(quick_run):
    _, results = quick_run
    h = results["head_vs_loop"]
    assert h["documents"] == 2
    assert set(h["ms_per_document"]) == {"batched", "map", "per_document", "per_pair"}
    assert h["ratio_per_pair_over_batched"] > 0
    assert all(d < 1e-4 for d in h["max_abs_diff"].values())


def test_head_loops_match_batched_stage_for_paee_and_atlop(tiny_tokenizer):
    import torch

    from paee.data.featurizer import Featurizer, FeaturizerConfig
    from paee.data.relations import RelationVocab
    from paee.data.synthetic import generate_corpus, rel2id, rel_info
    from paee.data.tokenizer import TokenizerSpec
    from paee.model.paee import build_model
    from paee.training.setup import make_model_config, prepare_encoder
    from paee_bench.head_loop import compare_head_loops, head_loop_batch

    docs = generate_corpus(n_docs=3, seed=2)
    relations = RelationVocab.from_rel2id(rel2id(), rel_info())
    config = FeaturizerConfig()
    source = prepare_encoder("tiny", docs)
    features = Featurizer(source.tokenizer, config, relations).featurize_many(docs)
    batch = head_loop_batch(features, 2, TokenizerSpec.from_tokenizer(source.tokenizer).pad_id, config.max_length)
    for variant in ("paee", "atlop"):
        torch.manual_seed(0)
        model = build_model(make_model_config(source, relations, config, {"variant": variant}))
        result = compare_head_loops(model, batch, repeats=1)
        assert result["variant"] == variant
        assert result["real_pairs"] == sum(n * (n - 1) for n in result["entities"])


def test_encoder_flops_formula():
    from paee_bench.flops import encoder_flops, layer_flops

    bert_base = {"hidden_size": 768, "num_hidden_layers": 12, "intermediate_size": 3072}
    L, H, I = 512, 768, 3072  # noqa: E741
    assert layer_flops(L, H, I) == 8 * L * H * H + 4 * L * L * H + 4 * L * H * I
    assert encoder_flops(bert_base, 512, 512) == 12 * layer_flops(512, H, I)
    # longer than the window: two windows of 512 tokens, whatever the length
    assert encoder_flops(bert_base, 700, 512) == encoder_flops(bert_base, 1024, 512) == 2 * encoder_flops(bert_base, 512, 512)
    # about 22.4 GFLOP per 128 tokens of BERT-base (the well-known ~2 * 85M params per token, plus attention)
    assert 2.2e10 < encoder_flops(bert_base, 128, 512) < 2.4e10
    with pytest.raises(ValueError, match="intermediate_size"):
        encoder_flops({"hidden_size": 8, "num_hidden_layers": 1}, 10, 512)


def test_peak_is_measured_with_its_method():
    from paee_bench.peak import PeakUnavailable, measure_peak

    peak = measure_peak("cpu", "fp32", size=64, repeats=1, threads=1)
    assert peak.ops_per_s > 0 and peak.method in peak.methods
    with pytest.raises(PeakUnavailable):
        measure_peak("cpu", "fp16", size=64, repeats=1)


def test_unknown_backend_is_an_error_listing_the_valid_names(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["--make-checkpoint", "tiny", "--backends", "torch,onnx-magic", "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "onnx-magic" in err and "openvino-bf16" in err


def test_missing_or_bad_checkpoint_is_an_error_naming_the_file(capsys, tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(SystemExit) as exc:
        main(["--checkpoint", str(missing), "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    assert str(missing) in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["--checkpoint", str(bad), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert str(bad) in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "out")])  # neither --checkpoint nor --make-checkpoint
    assert "--checkpoint" in capsys.readouterr().err


def test_max_length_beyond_what_is_supported_is_an_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["--make-checkpoint", "tiny", "--max-length", "9000", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "--max-length must be in 1..8192" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.realdata
def test_make_checkpoint_on_docred_test_subset(docred_test_path, rel2id_path, tmp_path):
    """The sample report's document source, at tiny size: the first 3 DocRED test documents, torch only."""
    out = tmp_path / "out"
    rc = main(["--make-checkpoint", "tiny", "--docs", str(docred_test_path), "--limit", "3", "--rel2id", str(rel2id_path),
               "--backends", "torch", "--head-loop-docs", "0", "--out", str(out), *QUICK_ARGS])
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    assert results["documents"]["count"] == 3 and not results["documents"]["labelled"]
    assert results["model"]["num_relations"] == 97
    assert "f1_change" not in results["backends"]["torch"]["parity"]  # DocRED test has no labels
    assert results["head_vs_loop"] == {"reason": "--head-loop-docs 0"}
    assert (out / "checkpoint.pt").is_file()


def test_a_backend_faster_than_every_matmul_becomes_the_peak():
    """The peak of a precision is the best rate of anything measured at it: no fraction exceeds 1."""
    from paee_bench.runner import settle_peaks

    peaks = {"cpu/bf16": {"ops_per_s": 1.0e12, "method": "torch.matmul bf16", "methods": {"torch.matmul bf16": 1.0e12}},
             "cpu/fp32": {"ops_per_s": 0.5e12, "method": "openvino MatMul f32", "methods": {}}}
    backends = {
        "openvino-bf16": {"device": "cpu", "encoder": {"precision": "bf16", "effective_tflops": 1.3, "fraction_of_peak": 1.3}},
        "torch-bf16": {"device": "cpu", "encoder": {"precision": "bf16", "effective_tflops": 0.65}},
        "torch": {"device": "cpu", "encoder": {"precision": "fp32", "effective_tflops": 0.25}},
        "triton": {"device": "cpu", "encoder": {"note": "inside the server"}},
    }
    settle_peaks(backends, peaks)
    assert peaks["cpu/bf16"]["ops_per_s"] == 1.3e12 and "openvino-bf16" in peaks["cpu/bf16"]["method"]
    assert backends["openvino-bf16"]["encoder"]["fraction_of_peak"] == 1.0
    assert backends["torch-bf16"]["encoder"]["fraction_of_peak"] == 0.5
    assert backends["torch"]["encoder"]["fraction_of_peak"] == 0.5  # the fp32 peak is untouched
    fractions = [b["encoder"].get("fraction_of_peak", 0) for b in backends.values()]
    assert max(fractions) <= 1.0
