"""A real tritonserver (from the nvidia-pytriton wheel) on loopback, serving the repository of a tiny model.

Started once per session (tests/serving_support.py); queried over HTTP and gRPC. The ensemble's triples
must equal those of the in-process PyTorch `Predictor` on the same checkpoint, for synthetic documents
and for real Re-DocRED dev documents (marked ``realdata``), each set with documents longer than 512
wordpieces, so the long encoder graph serves them. Bad inputs over the wire each get an error response
naming the problem, the server stays ready and the next good request succeeds. Skips only where no
tritonserver is installed; one that is installed and does not start fails the tests with the server's
log tail.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("tritonclient.http")
pytest.importorskip("tritonclient.grpc")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from paee.serving.client import PaeeClient, PaeeServingError  # noqa: E402

# model_files / server (synthetic tiny model) and real_model_files / real_server (Re-DocRED): one
# tritonserver per model for the session, shared with test_loadtest.py.
pytest_plugins = ["serving_support"]
pytestmark = pytest.mark.slow

#: Scores (logit margins) agree to this; ORT and PyTorch differ by float rounding only.
SCORE_ATOL = 1e-3
MIB = 1024 * 1024


def _pytorch_triples(files: dict) -> dict[str, dict[tuple[int, int, str], float]]:
    """Triples of the in-process PyTorch model on ``files["docs"]``: title -> {(h, t, relation id): score}."""
    from paee.inference import Predictor

    predictor = Predictor.from_checkpoint(files["checkpoint"], device="cpu")
    relations = files["relations"]
    docs = files["docs"]
    return {
        doc.title: {(t.head, t.tail, relations.ids[t.relation]): t.score for t in triples}
        for doc, triples in zip(docs, predictor.predict(docs))
    }


@pytest.fixture(scope="module")
def expected(model_files):
    return _pytorch_triples(model_files)


@pytest.fixture(scope="module", params=["http", "grpc"])
def client(request, server):
    url = server.http_url if request.param == "http" else server.grpc_url
    with PaeeClient(url, protocol=request.param, timeout_s=120, retries=2) as c:
        yield c


def _decisive(triples: dict) -> set:
    """Triples whose margin is not within rounding of zero (those may fall on either side in ORT vs PyTorch)."""
    return {k for k, score in triples.items() if abs(score) > SCORE_ATOL}


def _assert_same(got: list[dict], want: dict, title: str) -> None:
    triples = {(t["h_idx"], t["t_idx"], t["r"]): t["score"] for t in got}
    assert _decisive(triples) <= set(want) and _decisive(want) <= set(triples), title
    for key in set(triples) & set(want):
        assert triples[key] == pytest.approx(want[key], abs=SCORE_ATOL), (title, key)


def test_ensemble_matches_the_in_process_model(client, model_files, expected):
    docs = model_files["docs"]
    results = client.predict_many([d.to_json() for d in docs], concurrency=2)
    for doc, got in zip(docs, results):
        _assert_same(got, expected[doc.title], doc.title)
        for t in got:
            assert t["r_name"] == model_files["relations"].names.get(t["r"], t["r"])
    raw = client.predict_raw(docs[0])
    assert raw["title"] == docs[0].title


def _assert_same_evidence(files: dict, served: list[list[dict]]) -> float:
    """Served evidence of every triple both sides predict equals PyTorch's, but for sentences whose share lies
    within rounding of the threshold (`evidence_agreement`); returns how many triples were compared."""
    from paee.inference import Predictor
    from paee_bench.agreement import served_triples
    from paee_export.parity import evidence_agreement

    predictor = Predictor.from_checkpoint(files["checkpoint"], device="cpu")
    outputs = predictor.outputs(files["docs"])
    agreement = evidence_agreement([predictor.decode(out) for out in outputs], served_triples(served, files["relations"]),
                                   outputs, predictor.decode_config.evidence_threshold)
    assert agreement["differing"] == 0, agreement
    return agreement["compared_triples"]


def test_served_evidence_equals_in_process_evidence(client, model_files):
    """Each served triple carries its evidence sentences, PyTorch's (the share of a(s,o) per sentence above the
    repository's threshold)."""
    docs = model_files["docs"]
    served = client.predict_many([d.to_json() for d in docs], concurrency=2)
    assert _assert_same_evidence(model_files, served) >= 5
    evidence = [tuple(t["evidence"]) for got in served for t in got]
    # sentence ids of the document, not all of them everywhere: the attention picks sentences
    assert any(evidence) and all(all(0 <= s < len(doc.sents) for s in t["evidence"]) for doc, got in zip(docs, served)
                                 for t in got)
    assert len(set(evidence)) > 1, evidence[:10]


@pytest.mark.realdata
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_real_redocred_documents_match_the_in_process_model(protocol, real_server, real_model_files):
    """Re-DocRED dev documents (some over 512 wordpieces) through the ensemble: PyTorch's exact triples."""
    from serving_support import WINDOW

    docs, lengths, relations = real_model_files["docs"], real_model_files["lengths"], real_model_files["relations"]
    assert sum(lengths[d.title] > WINDOW for d in docs) >= 2, lengths  # encoder_long serves these
    want = _pytorch_triples(real_model_files)
    url = real_server.http_url if protocol == "http" else real_server.grpc_url
    with PaeeClient(url, protocol=protocol, timeout_s=120, retries=2) as c:
        results = c.predict_many([d.to_json() for d in docs], concurrency=len(docs))
    for doc, got in zip(docs, results):
        _assert_same(got, want[doc.title], doc.title)
        # the model decides per pair: some triples, most (pair, relation) slots empty
        slots = doc.num_entities * (doc.num_entities - 1) * (relations.num_classes - 1)
        assert 1 <= len(_decisive(want[doc.title])) <= 0.1 * slots, (doc.title, len(want[doc.title]), slots)
        assert {t["r_name"] for t in got} <= set(relations.names.values())
    assert sum(len(_decisive(want[d.title])) for d in docs) >= 10 * len(docs)  # Re-DocRED's density, about
    assert _assert_same_evidence(real_model_files, results) >= 10 * len(docs)


def _docred(title: str, words: list[str], entities: list[list[dict]]) -> dict:
    return {"title": title, "sents": [words], "vertexSet": entities}


def _mention(i: int, sent_id: int = 0, pos: list[int] | None = None) -> dict:
    return {"name": f"w{i}", "sent_id": sent_id, "pos": pos or [i, i + 1], "type": "PER"}


BAD_INPUTS = {
    "invalid JSON": (b'{"title": "x", "sents": [', "invalid JSON"),
    "wrong schema": (json.dumps({"title": "x", "sents": "not a list", "vertexSet": []}).encode(), "'sents'"),
    "not an object": (b"[1, 2, 3]", "expected a JSON object"),
    "mention out of range": (
        json.dumps(_docred("oor", ["a", "b"], [[_mention(0)], [_mention(1, pos=[1, 9])]])).encode(),
        "vertexSet[1][0].pos",
    ),
    "too many entities": (
        json.dumps(_docred("many", [f"w{i}" for i in range(50)], [[_mention(i)] for i in range(43)])).encode(),
        "max_entities=42",
    ),
    "too many wordpieces": (
        json.dumps(_docred("long", ["word"] * 4200, [[_mention(0)], [_mention(1)]])).encode(),
        "max_length=4096",
    ),
    "empty document": (b"", "empty document"),
    "not UTF-8": (b'{"title": "\xff\xfe"}', "not valid UTF-8"),
    "10 MB payload": (b'{"title": "' + b"a" * (10 * MIB) + b'"}', "exceeds the limit"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gets_an_error_naming_the_problem_and_the_server_stays_up(case, client, model_files, server):
    payload, needle = BAD_INPUTS[case]
    with pytest.raises(PaeeServingError) as info:
        client.predict(payload)
    assert needle in str(info.value), str(info.value)[:500]
    assert client.is_ready()
    assert isinstance(client.predict(model_files["docs"][0]), list)  # the next good request succeeds


def test_a_bad_request_fails_alone_among_concurrent_good_ones(client, model_files, expected):
    good = model_files["docs"][:2]
    payloads = [good[0].to_json(), BAD_INPUTS["invalid JSON"][0], good[1].to_json(), BAD_INPUTS["too many entities"][0]]
    results = client.predict_many(payloads, concurrency=4, return_exceptions=True)
    assert isinstance(results[1], PaeeServingError) and isinstance(results[3], PaeeServingError)
    _assert_same(results[0], expected[good[0].title], good[0].title)
    _assert_same(results[2], expected[good[1].title], good[1].title)


def test_text_form_document(client):
    text = {"title": "text form", "text": "Alice met Bob in Paris.",
            "entities": [{"mentions": [{"start": 0, "end": 5}], "type": "PER"},
                         {"mentions": [{"start": 10, "end": 13}], "type": "PER"}]}
    try:
        result = client.predict_raw(text)
    except PaeeServingError as e:  # the text-form schema is the data layer's; name its complaint if it differs
        pytest.fail(f"text-form document rejected: {e}")
    assert result["title"] == "text form"


def test_client_cli_writes_official_records(server, model_files, tmp_path, expected):
    from paee.cli.client import main

    docs_path = tmp_path / "docs.json"
    docs = model_files["docs"][:2]
    docs_path.write_text(json.dumps([d.to_json() for d in docs]))
    out = tmp_path / "result.json"
    assert main(["--url", server.grpc_url, "--protocol", "grpc", str(docs_path), "--out", str(out)]) == 0
    records = json.loads(out.read_text())
    assert {r["title"] for r in records} <= {d.title for d in docs}
    for r in records:
        assert set(r) == {"title", "h_idx", "t_idx", "r", "r_name", "score", "evidence"}


def test_connection_errors_are_reported_after_retries():
    from paee.serving.server import free_port

    with PaeeClient(f"127.0.0.1:{free_port()}", timeout_s=2, retries=1) as c:
        assert not c.is_ready()
        with pytest.raises(PaeeServingError, match="cannot reach|connect|refused|UNAVAILABLE"):
            c.predict(b"{}")


def test_dynamic_batching_really_batches_the_encoder_and_head(server, model_files):
    """Concurrent requests of one length bucket run as fewer model executions than inferences."""
    import tritonclient.http as httpclient

    stats_client = httpclient.InferenceServerClient(server.http_url)

    def counts(model: str) -> tuple[int, int]:
        stats = stats_client.get_inference_statistics(model)["model_stats"][0]
        return int(stats["inference_count"]), int(stats["execution_count"])

    before = {m: counts(m) for m in ("paee_encoder", "paee_head")}
    doc = model_files["docs"][0].to_json()
    requests = 12  # bounded load: a few dozen milliseconds of work each on the tiny model
    with PaeeClient(server.http_url, timeout_s=120, concurrency=requests) as c:
        c.predict_many([doc] * requests, concurrency=requests)
    for model, (inferences0, executions0) in before.items():
        inferences, executions = counts(model)
        assert inferences - inferences0 == requests
        assert executions - executions0 < requests, f"{model}: no request was batched"
    stats_client.close()


def test_paee_serve_cli_prints_endpoints_and_stops_cleanly_on_sigint(server):
    """`paee-serve` on the same repository (free ports), stopped with SIGINT: exit code 0, port released."""
    import signal
    import subprocess
    import sys
    import time

    from paee.serving.server import free_port

    http_port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "paee.cli.serve", str(server.model_repository), "--http-port", str(http_port),
         "--grpc-port", str(free_port()), "--metrics-port", str(free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.strip().startswith("metrics"):
                break
        text = "".join(lines)
        assert f"127.0.0.1:{http_port}" in text, text
        with PaeeClient(f"127.0.0.1:{http_port}", timeout_s=30) as c:
            assert c.is_ready()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        with PaeeClient(f"127.0.0.1:{http_port}", timeout_s=2, retries=0) as c:
            assert not c.is_ready()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_stub_finds_this_interpreter_first_on_path(tmp_path):
    """The stub's embedded Python is isolated and finds its prefix by looking up ``python3`` on PATH."""
    import sys
    from pathlib import Path

    from paee.serving.server import STUB_PROGRAM_NAME, _interpreter_bin_dir

    folder = Path(_interpreter_bin_dir(tmp_path))
    assert (folder / STUB_PROGRAM_NAME).resolve() == Path(sys.executable).resolve()
