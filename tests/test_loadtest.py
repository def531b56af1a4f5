"""The bounded load generator (`paee.serving.loadtest`, ``paee-client --load``) against the real test server.

Small numbers (8 clients, tens of requests, a 2-second time budget): the counts must add up, every
request must succeed, failures must be counted and named, and the stop rule must be the one that fired.
Speed is never asserted here (benchmarks/serving_load.py measures it).
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("tritonclient.http")
pytest.importorskip("tritonclient.grpc")
pytest.importorskip("onnxruntime")

from paee.serving.client import PaeeClient, PaeeServingError  # noqa: E402
from paee.serving.loadtest import (  # noqa: E402
    STOPPED_BY_REQUESTS, STOPPED_BY_TIME, LoadConfig, latency_summary, run_load,
)

# model_files / server: the synthetic tiny model on a real tritonserver, shared with test_serving.py.
pytest_plugins = ["serving_support"]
pytestmark = pytest.mark.slow

CLIENTS = 8
REQUESTS = 60
INVALID_JSON = b'{"title": "broken", "sents": ['


@pytest.fixture(scope="module")
def triples_per_doc(server, model_files) -> list[int]:
    """How many triples the server returns for each document (deterministic)."""
    with PaeeClient(server.grpc_url, "grpc", timeout_s=120) as client:
        return [len(t) for t in client.predict_many([d.to_json() for d in model_files["docs"]])]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_bounded_by_requests_all_succeed_and_counts_add_up(protocol, server, model_files, triples_per_doc):
    docs = model_files["docs"]
    url = server.http_url if protocol == "http" else server.grpc_url
    config = LoadConfig(url, protocol, concurrency=CLIENTS, max_requests=REQUESTS, max_seconds=300, timeout_s=120, warmup=4)
    report = run_load([d.to_json() for d in docs], config)
    assert report.failed == 0, report.errors
    assert report.requests == report.succeeded == REQUESTS and report.stopped_by == STOPPED_BY_REQUESTS
    assert report.documents == len(docs)
    # round-robin: request i sent document i mod len(docs), whose triple count is known
    assert report.triples == sum(triples_per_doc[i % len(docs)] for i in range(REQUESTS))
    lat = report.latency_ms
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert report.seconds > 0 and report.docs_per_s == pytest.approx(REQUESTS / report.seconds, rel=0.01)
    assert lat["max"] / 1000 <= report.seconds + 1e-3  # every measured request lies inside the measured window

    saved = json.loads(json.dumps(report.to_json()))
    assert saved["config"]["concurrency"] == CLIENTS and saved["failed"] == 0 and "machine" in saved


def test_bounded_by_time_stops_starting_requests(server, model_files):
    config = LoadConfig(server.grpc_url, "grpc", concurrency=CLIENTS, max_requests=100_000, max_seconds=2.0, timeout_s=120)
    report = run_load([model_files["docs"][0].to_json()], config)
    assert report.stopped_by == STOPPED_BY_TIME
    assert report.failed == 0 and 0 < report.requests < 100_000
    assert report.seconds >= 2.0  # requests in flight at the deadline still finish and count


def test_failures_are_counted_and_named_and_never_retried(server, model_files):
    good = model_files["docs"][0].to_json()
    config = LoadConfig(server.http_url, "http", concurrency=4, max_requests=10, max_seconds=300, timeout_s=120)
    report = run_load([good, INVALID_JSON], config)
    assert (report.requests, report.succeeded, report.failed) == (10, 5, 5)
    assert len(report.errors) == 1  # distinct messages only
    assert report.errors[0].startswith("document 1 ('')") and "invalid JSON" in report.errors[0]
    assert "p50" in report.latency_ms  # latency of the succeeded ones


def test_unreachable_server_and_bad_settings_are_clear_errors(model_files):
    from paee.serving.server import free_port

    with pytest.raises(PaeeServingError, match="not ready"):
        run_load([b"{}"], LoadConfig(f"127.0.0.1:{free_port()}", "http", concurrency=2, timeout_s=2))
    with pytest.raises(ValueError, match="concurrency must be a positive integer"):
        LoadConfig("127.0.0.1:1", concurrency=0)
    with pytest.raises(ValueError, match="protocol"):
        LoadConfig("127.0.0.1:1", protocol="ftp")
    with pytest.raises(ValueError, match="at least one document"):
        run_load([], LoadConfig("127.0.0.1:1"))


def test_latency_summary_percentiles():
    lat = latency_summary([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert lat["p50"] == pytest.approx(50.5) and lat["p90"] == pytest.approx(90.1) and lat["p99"] == pytest.approx(99.01)
    assert (lat["min"], lat["max"], lat["mean"]) == (1.0, 100.0, 50.5)
    assert latency_summary([]) == {}


def test_paee_client_load_cli_writes_the_report(server, model_files, tmp_path, capsys):
    from paee.cli.client import main

    docs = tmp_path / "docs.json"
    docs.write_text(json.dumps([d.to_json() for d in model_files["docs"]]))
    out = tmp_path / "load.json"
    code = main([str(docs), "--url", server.grpc_url, "--protocol", "grpc", "--load", "--concurrency", "4",
                 "--requests", "12", "--max-seconds", "60", "--warmup", "0", "--out", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert (report["requests"], report["succeeded"], report["failed"]) == (12, 12, 0)
    assert set(report["latency_ms"]) >= {"p50", "p90", "p99"} and report["docs_per_s"] > 0
    assert "12 requests (12 ok, 0 failed)" in capsys.readouterr().out

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"title": "no sents", "vertexSet": []}]))
    assert main([str(bad), "--url", server.grpc_url, "--protocol", "grpc", "--load", "--requests", "3",
                 "--concurrency", "1", "--out", str(tmp_path / "bad_load.json")]) == 1
    assert "document 0 ('no sents')" in capsys.readouterr().err
    assert main([str(docs), "--url", server.grpc_url, "--load", "--concurrency", "0", "--out", str(out)]) == 2
