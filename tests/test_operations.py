"""The operations kit against the real test server: Triton's Prometheus metrics move with successes and
failures, the load report carries Triton's per-model time breakdown, and the repository warms its models up."""

from __future__ import annotations

import re
import urllib.request

import pytest

from paee.runtime.batching import FAILURE_METRIC

pytest.importorskip("tritonclient.http")
pytest.importorskip("onnxruntime")

from paee.serving.client import PaeeClient, PaeeServingError  # noqa: E402
from paee.serving.loadtest import LoadConfig, run_load  # noqa: E402
from paee.serving.stats import PHASES  # noqa: E402

pytest_plugins = ["serving_support"]
pytestmark = pytest.mark.slow

GOOD, BAD = 3, 2


def _counter(text: str, name: str, model: str) -> float:
    """The value of ``name{model="<model>",...}`` in Prometheus text (0 when the series is not there yet)."""
    match = re.search(rf'^{name}{{[^}}]*model="{model}"[^}}]*}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def _metrics(server) -> str:
    with urllib.request.urlopen(server.metrics_url, timeout=10) as answer:
        return answer.read().decode()


def test_prometheus_success_and_failure_counters_move(server, model_files):
    before = _metrics(server)
    docs = [d.to_json() for d in model_files["docs"][:GOOD]]
    with PaeeClient(server.http_url, "http", timeout_s=120) as client:
        assert len(client.predict_many(docs)) == GOOD
        for i in range(BAD):
            with pytest.raises(PaeeServingError):
                client.predict(b'{"title": "broken %d", "sents": [' % i)
    after = _metrics(server)
    moved = {name: _counter(after, name, "paee") - _counter(before, name, "paee")
             for name in ("nv_inference_request_success", "nv_inference_request_failure")}
    lines = [l for l in after.splitlines() if "request_failure" in l and not l.startswith("#")]
    assert moved["nv_inference_request_success"] == GOOD, lines
    # Triton 2.51 counts a request that fails inside an ensemble more than once for the ensemble (seen: 2 per
    # request): the counter must move, by at least one per bad request
    assert moved["nv_inference_request_failure"] >= BAD, lines
    # Triton's python backend counts a request its model answered with an error response as a success of that
    # model; the package's own counter counts each bad request once, at the step that refused it, by code
    assert _counter(after, "nv_inference_request_success", "paee_preprocess") \
        - _counter(before, "nv_inference_request_success", "paee_preprocess") == GOOD + BAD
    refused = [_counter(text, FAILURE_METRIC, "paee_preprocess") for text in (before, after)]
    assert refused[1] - refused[0] == BAD, [l for l in after.splitlines() if FAILURE_METRIC in l]
    assert f'{FAILURE_METRIC}{{code="INVALID_ARG",model="paee_preprocess"}}' in after.replace(",version", "")


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_load_report_carries_tritons_breakdown_per_model(protocol, server, model_files):
    url = server.http_url if protocol == "http" else server.grpc_url
    report = run_load([d.to_json() for d in model_files["docs"]],
                      LoadConfig(url, protocol, concurrency=2, max_requests=8, max_seconds=60))
    assert report.succeeded == 8
    rows = report.server_ms
    assert {"paee", "paee_preprocess", "paee_encoder", "paee_head", "paee_postprocess"} <= set(rows)
    for model, row in rows.items():
        assert row["requests"] == 8, model  # this run's requests only: the counters are differenced
        assert 1 <= row["executions"] <= 8
        parts = sum(row[f"{p}_ms"] for p in PHASES[:-1])
        assert 0 < parts <= row["success_ms"] * 1.01 + 0.01 or model == "paee", (model, row)
    # the ensemble's time inside the server is what the client waited for but the network; Triton stops its
    # clock when it releases the request, which can come just after the client got the answer
    assert rows["paee"]["success_ms"] <= 1.05 * report.latency_ms["mean"]
    assert "server side" in report.summary()


def test_encoder_and_head_configs_warm_up(server):
    from paee.runtime.layout import ENCODER_MODEL, HEAD_MODEL, PREPROCESS

    for model in (ENCODER_MODEL, HEAD_MODEL):
        config = (server.model_repository / model / "config.pbtxt").read_text()
        assert "model_warmup" in config and "zero_data: true" in config, model
    assert "model_warmup" not in (server.model_repository / PREPROCESS / "config.pbtxt").read_text()
