"""The Triton model repository writer (no server): layout, every config parses with Triton's protobuf,
assets travel inside the repository, atomic writes, --force and error cases, torch-free python models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("tritonclient.grpc")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from paee.checkpoint import Checkpoint  # noqa: E402
from paee.data.decode import DecodeConfig  # noqa: E402
from paee.data.featurizer import FeaturizerConfig  # noqa: E402
from paee.data.relations import RelationVocab  # noqa: E402
from paee.model.config import PaeeConfig  # noqa: E402
from paee.model.head import HeadConfig  # noqa: E402
from paee_export import repository  # noqa: E402
from paee_export.build import BuiltGraph  # noqa: E402
from paee_export.plan import PLANS  # noqa: E402
from paee_export.repository import RepositoryError, parse_config, write_repository  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
N, M, S, H, K = 5, 3, 4, 8, 2  # odd small sizes: a mixed-up dim shows in the configs
RELATIONS = RelationVocab(("Na", "P1", "P2"), {"P1": "first", "P2": "second"})
R = len(RELATIONS)
FEATURIZER = FeaturizerConfig(max_entities=N, max_mentions=M, max_sentences=S, max_length=1024)


def _fake_graph(path: Path, inputs: list[tuple[str, int, list]], outputs: list[tuple[str, int, list]],
                external: bool = False) -> Path:
    """A tiny ONNX file with the contract's names and shapes (outputs are constants; never run here)."""
    nodes, inits = [], []
    for name, dtype, dims in outputs:
        value = np.zeros([d if isinstance(d, int) else 1 for d in dims], dtype=np.float32)
        init = numpy_helper.from_array(value, f"{name}_const")
        inits.append(init)
        nodes.append(helper.make_node("Identity", [init.name], [name]))
    graph = helper.make_graph(
        nodes, path.stem,
        [helper.make_tensor_value_info(n, t, d) for n, t, d in inputs],
        [helper.make_tensor_value_info(n, t, d) for n, t, d in outputs],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.parent.mkdir(parents=True, exist_ok=True)
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=path.name + ".data", size_threshold=0)
    else:
        onnx.save_model(model, str(path))
    return path


ENC_IN = [("input_ids", TensorProto.INT64, ["batch", "length"]), ("attention_mask", TensorProto.INT64, ["batch", "length"]),
          ("mention_pos", TensorProto.INT64, ["batch", N, M]), ("mention_mask", TensorProto.FLOAT, ["batch", N, M])]
ENC_OUT = [("token_emb", TensorProto.FLOAT, ["batch", "length", H]), ("entity_emb", TensorProto.FLOAT, ["batch", N, H]),
           ("entity_attn", TensorProto.FLOAT, ["batch", N, K, "length"])]
HEAD_OUT = [("logits", TensorProto.FLOAT, ["batch", "pairs", R]), ("pair_prob", TensorProto.FLOAT, ["batch", "pairs"])]


@pytest.fixture(scope="module")
def graphs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("graphs")
    return {
        "encoder": _fake_graph(d / "encoder.onnx", ENC_IN, ENC_OUT),
        "encoder_long": _fake_graph(d / "encoder_long.onnx", ENC_IN, ENC_OUT),
        "head": _fake_graph(d / "head.onnx", ENC_OUT, HEAD_OUT, external=True),
    }


def _checkpoint(tokenizer, featurizer: FeaturizerConfig = FEATURIZER) -> Checkpoint:
    """The model artefact the writer reads (configuration, tokenizer); no weights are needed to write configs."""
    encoder = {"model_type": "bert", "hidden_size": H, "num_attention_heads": K, "max_position_embeddings": 512}
    config = PaeeConfig(encoder=encoder, featurizer=featurizer, relations=RELATIONS, head=HeadConfig(variant="atlop"))
    return Checkpoint(config, tokenizer, state_dict={})


def _built(graphs: dict[str, Path], plan: str) -> dict[str, BuiltGraph]:
    """The fake files as the graphs of an export plan."""
    dims = _checkpoint(None).config.dims
    return {name: BuiltGraph(name, graphs[name], g.backend, g.precision, dims.length_range(name))
            for name, g in PLANS[plan].graphs.items()}


def _write(out: Path, graphs: dict[str, Path], tokenizer, plan: str = "cpu-fp32", featurizer: FeaturizerConfig = FEATURIZER,
           **kwargs) -> Path:
    return write_repository(out, _checkpoint(tokenizer, featurizer), PLANS[plan], _built(graphs, plan), **kwargs)


@pytest.fixture(scope="module")
def tokenizer(tiny_tokenizer):
    return tiny_tokenizer


def _configs(repo: Path) -> dict[str, object]:
    return {p.parent.name: parse_config(p.read_text(), str(p)) for p in repo.glob("*/config.pbtxt")}


def test_cpu_repository_layout_and_every_config_parses(tmp_path, graphs, tokenizer):
    repo = _write(tmp_path / "repo", graphs, tokenizer, max_batch_size=4, instances={"paee_encoder": 2},
                  report={"parity": "ok"})
    configs = _configs(repo)
    assert set(configs) == {"paee", "paee_preprocess", "paee_encoder", "paee_head", "paee_postprocess"}
    ensemble = configs["paee"]
    assert ensemble.platform == "ensemble" and not ensemble.instance_group
    assert [s.model_name for s in ensemble.ensemble_scheduling.step] == [
        "paee_preprocess", "paee_encoder", "paee_head", "paee_postprocess"]
    assert ensemble.input[0].name == "DOCUMENT" and ensemble.input[0].data_type == 13  # TYPE_STRING
    assert ensemble.output[0].name == "TRIPLES" and ensemble.output[0].data_type == 13
    for name in ("paee_preprocess", "paee_encoder", "paee_head", "paee_postprocess"):
        config = configs[name]
        assert config.backend == "python" and config.max_batch_size == 4
        assert config.instance_group[0].kind == 2  # KIND_CPU: no GPU needed
        assert config.HasField("dynamic_batching")
        assert (repo / name / "1" / "model.py").is_file()
    assert configs["paee_encoder"].instance_group[0].count == 2
    dims = {t.name: list(t.dims) for t in configs["paee_head"].output}
    assert dims == {"logits": [-1, R], "pair_prob": [-1], "evidence_dist": [-1, S]}  # the pair axis is dynamic
    # the python models pad the pair axis themselves: requests with other pair counts batch together
    pair_inputs = {"paee_head": {"pair_index", "pair_mask"},
                   "paee_postprocess": {"pair_index", "pair_mask", "logits", "pair_prob", "evidence_dist"}}
    for name, expected in pair_inputs.items():
        assert {t.name for t in configs[name].input if t.allow_ragged_batch} == expected, name
    assert not any(t.allow_ragged_batch for t in configs["paee_encoder"].input)
    enc = {t.name: list(t.dims) for t in configs["paee_encoder"].output}
    assert enc == {"token_emb": [-1, H], "entity_emb": [N, H], "entity_attn": [N, K, -1]}
    # every tensor an ensemble step maps exists in the model it maps to
    for step in ensemble.ensemble_scheduling.step:
        model = configs[step.model_name]
        assert set(step.input_map) <= {t.name for t in model.input}
        assert set(step.output_map) <= {t.name for t in model.output}
    assert json.loads((repo / "export_report.json").read_text()) == {"parity": "ok"}
    manifest = json.loads((repo / "paee_repository.json").read_text())
    assert manifest["buckets"] == list(range(64, 1025, 64)) and manifest["target"] == "cpu"
    assert manifest["plan"] == "cpu-fp32" and manifest["dims"]["max_entities"] == N
    assert "/tmp" not in json.dumps(manifest)  # no machine-specific paths


def test_assets_and_graphs_travel_inside_the_repository(tmp_path, graphs, tokenizer):
    repo = _write(tmp_path / "repo", graphs, tokenizer, plan="cpu-int8", decode_config=DecodeConfig(0.3, 2, 0.35))
    pre = repo / "paee_preprocess" / "1" / "assets"
    assert json.loads((pre / "tokenizer.json").read_text()) == json.loads(tokenizer.to_str())
    assert FeaturizerConfig.from_json((pre / "featurizer.json").read_text()) == FEATURIZER
    post = repo / "paee_postprocess" / "1" / "assets"
    assert RelationVocab.from_json(json.loads((post / "relations.json").read_text())) == RELATIONS
    assert json.loads((post / "decode.json").read_text()) == {"gate_threshold": 0.3, "top_k": 2, "evidence_threshold": 0.35}
    runtime = json.loads((repo / "paee_encoder" / "1" / "assets" / "runtime.json").read_text())
    assert [(g["name"], g["length_range"], g["backend"], g["precision"]) for g in runtime["graphs"]] == [
        ("encoder", [1, 512], "openvino", "int8"), ("encoder_long", [513, 1024], "onnxruntime", "int8")]
    head = json.loads((repo / "paee_head" / "1" / "assets" / "runtime.json").read_text())["graphs"]
    assert [(g["backend"], g["precision"]) for g in head] == [("openvino", "bf16")]  # the plan's, per graph
    for g in runtime["graphs"]:
        assert (repo / "paee_encoder" / "1" / g["path"]).is_file()
    head_dir = repo / "paee_head" / "1" / "graphs" / "head"
    assert (head_dir / "model.onnx").is_file() and (head_dir / "head.onnx.data").is_file()  # external data follows


def test_gpu_flavour_uses_native_models_and_the_directory_form_for_external_data(tmp_path, graphs, tokenizer):
    repo = _write(tmp_path / "repo", graphs, tokenizer, plan="gpu-fp16")
    configs = _configs(repo)
    assert configs["paee_head"].platform == "onnxruntime_onnx"
    accel = configs["paee_head"].optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert accel.name == "tensorrt" and accel.parameters["precision_mode"] == "FP16"
    assert configs["paee_head"].instance_group[0].kind == 1  # KIND_GPU
    # head has external data: directory form 1/model.onnx/model.onnx (DESIGN.md 8)
    assert (repo / "paee_head" / "1" / "model.onnx" / "model.onnx").is_file()
    # two encoder graphs: native short/long models behind the python router
    assert configs["paee_encoder_short"].platform == configs["paee_encoder_long"].platform == "onnxruntime_onnx"
    assert configs["paee_encoder"].backend == "python"
    assert (repo / "paee_encoder_short" / "1" / "model.onnx").is_file()
    # each native model warms up on the first bucket it serves (where TensorRT builds its engine), before ready
    warm = {m: [(w.name, w.batch_size) for w in configs[m].model_warmup]
            for m in ("paee_encoder_short", "paee_encoder_long", "paee_head")}
    assert warm == {"paee_encoder_short": [("zeros_64", 1)], "paee_encoder_long": [("zeros_576", 1)],
                    "paee_head": [("zeros_64", 1)]}
    sample = configs["paee_encoder_long"].model_warmup[0].inputs["input_ids"]
    assert list(sample.dims) == [576] and sample.zero_data
    cold = _configs(_write(tmp_path / "cold", graphs, tokenizer, plan="gpu-fp16", warmup=False))
    assert not any(cold[m].model_warmup for m in warm)


def test_gpu_flavour_with_tensorrt_plans(tmp_path, graphs, tokenizer):
    plan = tmp_path / "head.plan"
    plan.write_bytes(b"not a real engine")
    repo = _write(tmp_path / "repo", graphs, tokenizer, plan="gpu-fp32", tensorrt_plans={"head": plan})
    configs = _configs(repo)
    assert configs["paee_head"].platform == "tensorrt_plan" and (repo / "paee_head" / "1" / "model.plan").is_file()
    assert configs["paee_encoder_short"].platform == "onnxruntime_onnx"  # no engine for it: ONNX + TensorRT accelerator
    routes = json.loads((repo / "paee_encoder" / "1" / "assets" / "runtime.json").read_text())["routes"]
    assert routes == [{"model": "paee_encoder_short", "length_range": [1, 512]},
                      {"model": "paee_encoder_long", "length_range": [513, 1024]}]


def test_dims_and_buckets_come_from_the_checkpoint(tmp_path, graphs, tokenizer):
    short = FeaturizerConfig(max_entities=N, max_mentions=M, max_sentences=S, max_length=300)
    repo = _write(tmp_path / "repo", graphs, tokenizer, featurizer=short)
    enc = {t.name: list(t.dims) for t in _configs(repo)["paee_encoder"].output}
    assert enc["entity_attn"] == [N, K, -1]
    assert json.loads((repo / "paee_repository.json").read_text())["buckets"] == [64, 128, 192, 256, 300]


def test_existing_repository_needs_force(tmp_path, graphs, tokenizer):
    out = _write(tmp_path / "repo", graphs, tokenizer)
    marker = out / "paee" / "stale.txt"
    marker.write_text("old")
    with pytest.raises(RepositoryError, match="--force"):
        _write(out, graphs, tokenizer)
    assert marker.exists()  # untouched
    _write(out, graphs, tokenizer, force=True)
    assert not marker.exists() and (out / "paee" / "config.pbtxt").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["repo"]  # no temporary or old folders left


def test_output_that_is_a_file_is_a_clear_error(tmp_path, graphs, tokenizer):
    target = tmp_path / "repo"
    target.write_text("I am a file")
    with pytest.raises(RepositoryError, match="is a file"):
        _write(target, graphs, tokenizer, force=True)


def test_failure_leaves_nothing_behind_and_keeps_the_old_repository(tmp_path, graphs, tokenizer, monkeypatch):
    out = _write(tmp_path / "repo", graphs, tokenizer)
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))

    def broken(*args, **kwargs):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(repository, "copy_onnx", broken)
    with pytest.raises(OSError, match="injected"):
        _write(out, graphs, tokenizer, force=True)
    with pytest.raises(OSError, match="injected"):
        _write(tmp_path / "fresh", graphs, tokenizer)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before


def test_argument_errors_name_the_problem(tmp_path, graphs, tokenizer):
    built = _built(graphs, "cpu-fp32")
    with pytest.raises(RepositoryError, match="plan cpu-fp32 has graphs"):
        write_repository(tmp_path / "a", _checkpoint(tokenizer), PLANS["cpu-fp32"], {"head": built["head"]})
    with pytest.raises(RepositoryError, match="GPU plan"):
        _write(tmp_path / "b", graphs, tokenizer, tensorrt_plans={"head": graphs["head"]})
    with pytest.raises(RepositoryError, match="graph files do not exist: encoder"):
        _write(tmp_path / "c", {**graphs, "encoder": tmp_path / "missing.onnx"}, tokenizer)
    with pytest.raises(RepositoryError, match="max_batch_size"):
        _write(tmp_path / "d", graphs, tokenizer, max_batch_size=0)
    assert not any(tmp_path.iterdir())


def test_a_broken_template_is_caught_by_the_protobuf_parser():
    with pytest.raises(RepositoryError, match="does not parse"):
        parse_config('name: "x"\nbackend: "python"\ninput [ { name: "a" data_type: TYPE_NOPE dims: [ 1 ] } ]')


def test_dynamic_batching_can_be_switched_off_and_instances_set_per_model(tmp_path, graphs, tokenizer):
    """Same model, two repositories: the batcher block and the instance counts are the only differences."""
    on = _write(tmp_path / "on", graphs, tokenizer, max_queue_delay_us=500, instances={"paee_encoder": 3, "paee_head": 2})
    off = _write(tmp_path / "off", graphs, tokenizer, dynamic_batching=False, instances=2)
    with_batcher, without = _configs(on), _configs(off)
    assert set(with_batcher) == set(without)
    for name in ("paee_preprocess", "paee_encoder", "paee_head", "paee_postprocess"):
        assert with_batcher[name].dynamic_batching.max_queue_delay_microseconds == 500
        assert not without[name].HasField("dynamic_batching"), name
        assert "dynamic_batching" not in (off / name / "config.pbtxt").read_text()
        assert without[name].instance_group[0].count == 2
        # everything else is equal
        a, b = type(with_batcher[name])(), type(without[name])()
        a.CopyFrom(with_batcher[name])
        b.CopyFrom(without[name])
        for config in (a, b):
            config.ClearField("dynamic_batching")
            config.ClearField("instance_group")
        assert a == b, name
    assert [with_batcher[m].instance_group[0].count for m in ("paee_preprocess", "paee_encoder", "paee_head")] == [1, 3, 2]
    assert with_batcher["paee"] == without["paee"]  # the ensemble has neither
    manifest_on = json.loads((on / "paee_repository.json").read_text())
    manifest_off = json.loads((off / "paee_repository.json").read_text())
    assert (manifest_on["dynamic_batching"], manifest_on["max_queue_delay_us"]) == (True, 500)
    assert (manifest_off["dynamic_batching"], manifest_off["max_queue_delay_us"]) == (False, None)
    assert manifest_on["instances"]["paee_encoder"] == 3 and set(manifest_off["instances"].values()) == {2}


def test_gpu_flavour_without_dynamic_batching(tmp_path, graphs, tokenizer):
    configs = _configs(_write(tmp_path / "repo", graphs, tokenizer, plan="gpu-fp32", dynamic_batching=False))
    assert configs["paee_head"].platform == "onnxruntime_onnx"
    assert not any(c.HasField("dynamic_batching") for c in configs.values())


def test_serving_settings_errors_name_the_setting(tmp_path, graphs, tokenizer):
    with pytest.raises(RepositoryError, match="max_queue_delay_us"):
        _write(tmp_path / "a", graphs, tokenizer, max_queue_delay_us=-1)
    with pytest.raises(RepositoryError, match="instances for paee_head"):
        _write(tmp_path / "b", graphs, tokenizer, instances={"paee_head": 0})
    assert not any(tmp_path.iterdir())


def test_export_cli_flags_reach_the_pipeline():
    from paee_export.cli import build_parser

    args = build_parser().parse_args(["--checkpoint", "best.pt", "--no-dynamic-batching", "--instances", "2"])
    assert args.no_dynamic_batching and args.instances == 2
    assert not build_parser().parse_args(["--checkpoint", "best.pt"]).no_dynamic_batching


def test_run_by_length_groups_runs_once_per_length_and_splits_back():
    """The python models' group-run-split (numpy only): requests of equal L run together, in order."""
    from paee.runtime.batching import GroupFailure, run_by_length

    def request(length: int, batch: int, tag: float) -> dict:
        return {"input_ids": np.full((batch, length), tag), "extra": np.full((batch, 2), tag)}

    feeds = [request(128, 1, 1.0), request(512, 2, 2.0), request(128, 3, 3.0), request(1024, 1, 4.0)]
    calls = []

    def run(length: int, batch: dict) -> dict:
        calls.append((length, batch["input_ids"].shape[0]))
        if length == 1024:
            raise RuntimeError("graph missing (injected)")
        return {"out": batch["input_ids"][:, :1] * 10, "extra": batch["extra"] + 1}

    results = run_by_length(feeds, "input_ids", run, ["out", "extra"])
    assert sorted(calls) == [(128, 4), (512, 2), (1024, 1)]  # one run per padded length
    for feed, result in zip(feeds[:3], results[:3]):
        assert result["out"].shape == (feed["input_ids"].shape[0], 1)
        assert (result["out"] == feed["input_ids"][:, :1] * 10).all()  # each request gets its own rows back
        assert (result["extra"] == feed["extra"] + 1).all() and result["extra"].flags.c_contiguous
    assert isinstance(results[3], GroupFailure) and results[3].length == 1024
    assert results[3].message("paee_encoder") == "paee_encoder: batch of padded length 1024 failed: graph missing (injected)"

    # pair axes (the contract's RAGGED tensors) may differ within a group: padded with zeros, cut back
    def pairs(count: int, tag: float) -> dict:
        return {"input_ids": np.zeros((1, 64)), "pair_mask": np.full((1, count), tag), "pair_index": np.ones((1, count, 2))}

    seen = []

    def head(length: int, batch: dict) -> dict:
        seen.append((batch["pair_mask"].shape, batch["pair_index"].shape, float(batch["pair_mask"].sum())))
        return {"logits": batch["pair_mask"][..., None] * 2, "pair_prob": batch["pair_mask"]}

    ragged = run_by_length([pairs(6, 1.0), pairs(20, 3.0)], "input_ids", head, ["logits", "pair_prob"])
    assert seen == [((2, 20), (2, 20, 2), 6 * 1.0 + 20 * 3.0)]  # one run, padded with zeros to 20 pairs
    assert ragged[0]["logits"].shape == (1, 6, 1) and (ragged[0]["logits"] == 2.0).all()
    assert ragged[1]["pair_prob"].shape == (1, 20) and (ragged[1]["pair_prob"] == 3.0).all()

    # outputs that lost rows fail their group instead of handing one request another's rows
    bad = run_by_length(feeds[:1], "input_ids", lambda length, batch: {"out": np.zeros((0, 1))}, ["out"])
    assert isinstance(bad[0], GroupFailure) and "batch size 1" in str(bad[0].error)
