"""Export of the encoder / encoder_long / head graphs of a tiny PaeeModel: contract, structural checks,
ORT-vs-PyTorch parity at shapes other than the export example, fused attention, lower precisions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from paee.data.featurizer import FeaturizerConfig  # noqa: E402
from paee.data.relations import RelationVocab  # noqa: E402
from paee.data.synthetic import generate_corpus, rel2id  # noqa: E402
from paee.model.paee import build_model  # noqa: E402
from paee.training.setup import prepare_encoder, make_model_config  # noqa: E402
from paee.runtime.contract import ENCODER, ENCODER_LONG, HEAD, GraphSpecError  # noqa: E402
from paee.runtime.sessions import bf16_cpu_support, create_session  # noqa: E402
from paee_export.onnx_export import (  # noqa: E402
    ExportError,
    ExportValidationError,
    check_graph,
    compare_outputs,
    example_inputs,
    export_graphs,
    read_graph_metadata,
    torch_outputs,
    validate_graph,
)
from paee_export.optimize import convert_fp16, fp32_islands, graph_stats, optimize_encoder, quantize_int8  # noqa: E402
from paee_export.tensorrt_build import bucket_profile, build_engine, tensorrt_available  # noqa: E402

NUM_LAYERS = 2  # the tiny encoder's depth (TinyEncoderSize default)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random PaeeModel, its dims, and all three graphs exported (and validated) once."""
    docs = generate_corpus(n_docs=8, seed=1)
    source = prepare_encoder("tiny", docs)
    relations = RelationVocab.from_rel2id(rel2id())
    featurizer_config = FeaturizerConfig()
    torch.manual_seed(0)
    model = build_model(make_model_config(source, relations, featurizer_config)).eval()
    dims = model.config.dims
    out = tmp_path_factory.mktemp("graphs")
    exported = export_graphs(model, out)
    return model, dims, exported, out


def test_specs_name_the_contract(tiny):
    _, dims, exported, _ = tiny
    assert exported[ENCODER].spec.input_names == ["input_ids", "attention_mask", "mention_pos", "mention_mask"]
    assert exported[ENCODER].spec.output_names == ["token_emb", "entity_emb", "entity_attn"]
    assert exported[HEAD].spec.output_names == ["logits", "pair_prob", "evidence_dist"]
    assert exported[ENCODER].spec.length_range == (1, 512)
    assert exported[ENCODER_LONG].spec.length_range == (513, 4096)  # k windows up to the featurizer limit
    entity_attn = exported[ENCODER].spec.outputs[2]
    assert entity_attn.dims == ("batch", dims.max_entities, dims.num_heads, "length")
    assert dims.encoder_for_length(512) == ENCODER
    assert dims.encoder_for_length(520) == ENCODER_LONG
    with pytest.raises(GraphSpecError, match="outside"):
        dims.encoder_for_length(4097)
    assert {name: g.exporter for name, g in exported.items()} == {
        ENCODER: "torchscript", ENCODER_LONG: "torchscript", HEAD: "dynamo"}


def test_check_feeds_lists_every_problem(tiny):
    _, _, exported, _ = tiny
    spec = exported[HEAD].spec
    feeds = example_inputs(spec, 2, 16)
    feeds["entity_mask"] = feeds["entity_mask"][:, :5]  # wrong fixed N
    feeds["same_sent"] = feeds["same_sent"].astype(np.int32)  # wrong dtype
    del feeds["sent_mask"]
    with pytest.raises(GraphSpecError) as err:
        spec.check_feeds(feeds)
    message = str(err.value)
    assert "sent_mask" in message and "int32" in message and "fixes it at 42" in message


def test_graphs_pass_structural_checks(tiny):
    """checker, complete shape inference, no NonZero, constant TopK k, no ScatterND reduction."""
    import onnx

    _, _, exported, _ = tiny
    for name, graph in exported.items():
        proto = onnx.load(str(graph.path))
        assert check_graph(proto, graph.spec) == [], name
        assert read_graph_metadata(graph.path)["graph"] == name
    head = onnx.load(str(exported[HEAD].path))
    assert any(node.op_type == "TopK" for node in head.graph.node)  # TNet's cell selection is there


def test_validation_ran_at_other_shapes_and_is_within_1e4(tiny):
    """export_graphs validated every graph at batch 1 and 3 and lengths unlike the example's."""
    _, _, exported, _ = tiny
    for name, graph in exported.items():
        assert len(graph.validation) >= 2, name
        for case in graph.validation:
            assert case.shapes[graph.spec.input_names[0]][0] in (1, 3)
            assert max(case.max_abs_diff.values()) <= 1e-4, (name, case)
    long_case = exported[ENCODER_LONG].validation[0]
    assert long_case.shapes["input_ids"][1] > 512


def test_head_has_a_dynamic_pair_axis_validated_at_other_pair_counts(tiny):
    """The head's pair_index / pair_mask / logits / pair_prob share one symbolic pair axis; validation ran
    at pair counts unlike the example's (N (N - 1) included) and ORT agrees at yet another one."""
    import onnx

    model, dims, exported, _ = tiny
    head = onnx.load(str(exported[HEAD].path))
    values = {v.name: v for v in [*head.graph.input, *head.graph.output]}
    pair_axes = {values[n].type.tensor_type.shape.dim[1].dim_param for n in ("pair_index", "pair_mask", "logits", "pair_prob", "evidence_dist")}
    assert len(pair_axes) == 1 and pair_axes != {""}, pair_axes
    validated = {case.shapes["pair_index"][1] for case in exported[HEAD].validation}
    assert dims.max_pairs in validated and len(validated) >= 2
    spec = exported[HEAD].spec
    feeds = example_inputs(spec, 2, 48, real_entities=[3, 5], seed=23)  # P = 20
    got = create_session(exported[HEAD].path, "fp32").run(feeds)
    want = torch_outputs(model, spec, feeds)
    assert got["logits"].shape == (2, 20, dims.num_relations)
    np.testing.assert_allclose(got["logits"], want["logits"], atol=1e-4, rtol=0)


def test_long_graph_matches_pytorch_on_a_mixed_batch(tiny):
    """A long batch holding a short document (its window 2 ignored) and a 1000-token one."""
    model, _, exported, _ = tiny
    spec = exported[ENCODER_LONG].spec
    feeds = example_inputs(spec, 2, 1000, seed=11, real_entities=[42, 3])
    feeds["attention_mask"][1, 300:] = 0  # document 1: 300 real tokens inside a 1000-token batch
    feeds["input_ids"][1, 300:] = 0
    feeds["mention_pos"][1] = np.minimum(feeds["mention_pos"][1], 298)
    expected = torch_outputs(model, spec, feeds)
    got = create_session(exported[ENCODER_LONG].path, "fp32").run(feeds)
    diffs, bad = compare_outputs(spec, "mixed", expected, got, 1e-4)
    assert not bad, diffs


def test_validation_collects_every_failing_output(tiny):
    """A perturbed model fails validation; the error lists every output of every case."""
    model, _, exported, _ = tiny
    spec = exported[ENCODER].spec
    weight = model.encoder.backbone.embeddings.word_embeddings.weight
    saved = weight.detach().clone()
    with torch.no_grad():
        # random, not constant: LayerNorm would cancel a constant shift
        weight.add_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
    try:
        with pytest.raises(ExportValidationError) as err:
            validate_graph(model, exported[ENCODER].path, spec)
    finally:
        with torch.no_grad():
            weight.copy_(saved)
    failing = {(m.case, m.output) for m in err.value.mismatches}
    assert {o for _, o in failing} >= {"token_emb", "entity_emb"}
    assert len({c for c, _ in failing}) == 2  # both cases reported, not just the first


def test_optimised_encoders_fuse_attention_in_every_layer(tiny, tmp_path):
    model, dims, exported, _ = tiny
    for name in (ENCODER, ENCODER_LONG):
        stats = optimize_encoder(
            exported[name].path, tmp_path / f"{name}.opt.onnx", dims.num_heads, dims.hidden_size,
            expected_attention=NUM_LAYERS,
        )  # fmt: skip
        assert stats.fused_attention == NUM_LAYERS
        assert stats.op_histogram.get("SkipLayerNormalization", 0) >= NUM_LAYERS
        # the entity-attention side path keeps its own (unfused) normalisation next to the fused layers
        assert {"Softmax", "ReduceLogSumExp"} & set(stats.op_histogram)
        # the fused file still serves other batch sizes and lengths of its bucket
        validate_graph(model, tmp_path / f"{name}.opt.onnx", exported[name].spec)


def test_int8_encoder_runs_and_agrees_roughly(tiny, tmp_path):
    model, dims, exported, _ = tiny
    optimize_encoder(exported[ENCODER].path, tmp_path / "e.opt.onnx", dims.num_heads, dims.hidden_size)
    stats = quantize_int8(tmp_path / "e.opt.onnx", tmp_path / "e.int8.onnx")
    assert stats.op_histogram.get("DynamicQuantizeLinear", 0) > 0
    spec = exported[ENCODER].spec
    feeds = example_inputs(spec, 3, 40, seed=5)
    expected = torch_outputs(model, spec, feeds)
    got = create_session(tmp_path / "e.int8.onnx", "int8").run(feeds)
    diffs, _ = compare_outputs(spec, "int8", expected, got, atol=float("inf"))
    scale = float(np.abs(expected["token_emb"]).max())
    assert diffs["token_emb"] < 0.05 * scale, diffs  # int8 weights: percent-level, not garbage


def test_fp16_file_keeps_layernorm_and_softmax_fp32(tiny, tmp_path):
    _, _, exported, _ = tiny
    stats = convert_fp16(exported[ENCODER].path, tmp_path / "encoder.fp16.onnx")  # also checks it loads in ORT
    islands = fp32_islands(tmp_path / "encoder.fp16.onnx")
    for op in ("LayerNormalization", "Softmax"):
        assert islands[op] == islands[op + "_total"] > 0, islands
    assert stats.initializer_dtypes.get("FLOAT16", 0) > 0


@pytest.fixture(scope="module")
def ov_encoder(tiny):
    """The dynamo export of the short encoder: the file OpenVINO reads (bf16 as it is, int8 quantised)."""
    pytest.importorskip("openvino", reason="OpenVINO not installed: pip install openvino")
    from paee_export.onnx_export import export_graph

    model, _, exported, out = tiny
    return export_graph(model, exported[ENCODER].spec, out / "encoder.ov.onnx", exporter="dynamo")


def test_openvino_bf16_runs_the_short_encoder_and_head(tiny, ov_encoder, tmp_path):
    model, _, exported, _ = tiny
    supported, _ = bf16_cpu_support()
    for name, path, atol in ((ENCODER, ov_encoder.path, 0.05), (HEAD, exported[HEAD].path, 0.05)):
        spec = exported[name].spec
        feeds = example_inputs(spec, 3, 40, seed=5)
        session = create_session(path, "bf16")
        assert session.backend == "openvino"
        assert session.effective_precision == ("bf16" if supported else "fp32")
        diffs, bad = compare_outputs(spec, "bf16", torch_outputs(model, spec, feeds), session.run(feeds), atol)
        assert not bad, (name, diffs)


def test_static_int8_quantises_weight_matmuls_only_and_runs_on_openvino(tiny, ov_encoder, tmp_path):
    import onnx

    from paee_export.optimize import quantize_int8_static

    model, _, exported, _ = tiny
    spec = exported[ENCODER].spec
    calibration = [example_inputs(spec, 1, length, seed=seed) for seed, length in enumerate((24, 40, 64, 96))]
    stats = quantize_int8_static(ov_encoder.path, tmp_path / "e.int8.onnx", calibration)
    assert stats.op_histogram.get("QuantizeLinear", 0) > 0 and stats.initializer_dtypes.get("INT8", 0) > 0

    source = onnx.load(str(ov_encoder.path)).graph
    weights = {init.name for init in source.initializer} | {o for n in source.node if n.op_type == "Constant" for o in n.output}
    weight_matmuls = sum(1 for n in source.node if n.op_type == "MatMul" and set(n.input) & weights)
    quantized = onnx.load(str(tmp_path / "e.int8.onnx")).graph
    producer = {o: n.op_type for n in quantized.node for o in n.output}
    fed_by_dq = [sum(producer.get(i) == "DequantizeLinear" for i in n.input) for n in quantized.node if n.op_type == "MatMul"]
    assert weight_matmuls > 0 and fed_by_dq.count(2) == weight_matmuls  # weights and activations int8
    assert set(fed_by_dq) <= {0, 2}  # the products of two activations (attention) stay float

    feeds = example_inputs(spec, 2, 48, seed=7)
    session = create_session(tmp_path / "e.int8.onnx", "int8", backend="openvino")
    expected = torch_outputs(model, spec, feeds)
    diffs, _ = compare_outputs(spec, "int8", expected, session.run(feeds), atol=float("inf"))
    for name in ("token_emb", "entity_emb"):
        assert diffs[name] < 0.1 * float(np.abs(expected[name]).max()), diffs  # int8: percent-level, not garbage


def test_calibration_feeds_take_unlabelled_documents_within_the_window(tiny):
    from paee.data.featurizer import Featurizer
    from paee.data.schema import Fact
    from paee_export.calibration import calibration_documents, calibration_feeds

    model, _, exported, _ = tiny
    docs, described = calibration_documents(None, limit=6)
    assert len(docs) == 6 and "synthetic" in described
    # a relation outside the checkpoint's vocabulary does not matter: calibration reads no labels
    docs[0] = dataclasses.replace(docs[0], facts=(Fact(0, 1, "P_not_in_vocab", ()),))
    source = prepare_encoder("tiny", docs)
    featurizer = Featurizer(source.tokenizer, FeaturizerConfig(), RelationVocab.from_rel2id(rel2id()))
    names = exported[ENCODER].spec.input_names
    feeds = calibration_feeds(featurizer, docs, 512, names)
    assert 1 <= len(feeds) <= 6 and all(sorted(f) == sorted(names) and f["input_ids"].shape[0] == 1 for f in feeds)
    with pytest.raises(ValueError, match="none of 6 calibration documents fits the encoder window of 8 tokens"):
        calibration_feeds(featurizer, docs, 8, names)


def test_tensorrt_skips_with_a_reason_here(tiny, tmp_path):
    _, _, exported, _ = tiny
    available, reason = tensorrt_available()
    if available:
        pytest.skip(f"TensorRT present ({reason}): the build is exercised by benchmarks, not unit tests")
    assert reason
    spec = exported[ENCODER].spec
    profile = bucket_profile(spec, max_batch=4)
    shapes = profile.input_shapes(spec)
    assert shapes["input_ids"] == ((1, 1), (4, 256), (4, 512))
    assert shapes["mention_pos"][2] == (4, spec.dims.max_entities, spec.dims.max_mentions)
    assert profile.pairs is None  # encoders have no pair axis
    head = exported[HEAD].spec
    head_shapes = bucket_profile(head, max_batch=4).input_shapes(head)
    most = head.dims.max_pairs  # N (N - 1) = 1722 at N = 42
    assert head_shapes["pair_index"] == ((1, 2, 2), (4, 400, 2), (4, most, 2))
    assert head_shapes["pair_mask"] == ((1, 2), (4, 400), (4, most))
    result = build_engine(exported[ENCODER].path, tmp_path / "encoder.plan", spec)
    assert not result.built and result.skipped == reason
    assert not (tmp_path / "encoder.plan").exists()


def test_graph_stats_reports_size_and_ops(tiny):
    _, _, exported, _ = tiny
    stats = graph_stats(exported[HEAD].path)
    assert stats.nodes == sum(stats.op_histogram.values())
    assert stats.file_bytes == exported[HEAD].path.stat().st_size
    assert stats.fused_attention == 0


def test_exporter_override_is_validated(tiny, tmp_path):
    from paee_export.onnx_export import export_graph

    model, _, exported, _ = tiny
    with pytest.raises(ExportError, match="exporter 'tflite'"):
        export_graph(model, exported[HEAD].spec, tmp_path / "x.onnx", exporter="tflite")


def test_onnx_runtime_sessions_do_not_busy_wait_between_runs(tiny):
    """The encoder's and the head's sessions take turns on the same cores: spinning threads of one would
    take them from the other (paee.runtime.sessions)."""
    _, _, exported, _ = tiny
    session = create_session(exported[HEAD].path, "fp32", threads=1)
    options = session._session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
