"""Corpus prediction on Ray Data (`paee-batch`, `paee.runtime.corpus`) on a real local Ray runtime
(``ray.init(num_cpus=2)``): the triples of the in-process pipeline over the same repository, JSON-list and
JSON-lines shards, result files committed every N documents, poisoned documents in the errors file while the
rest goes on."""

from __future__ import annotations

import json
import logging

import pytest

ray = pytest.importorskip("ray", reason="Ray Data is the optional extra paee[ray]")

pytest_plugins = ["serving_support"]


@pytest.fixture(scope="module")
def repository(model_files, tmp_path_factory):
    from paee_export.repository import write_repository

    out = tmp_path_factory.mktemp("corpus_repo")
    return write_repository(out / "repo", model_files["ckpt"], model_files["plan"], model_files["graphs"],
                            max_batch_size=4, instances=1, threads=1)


@pytest.fixture(scope="module")
def ray_runtime():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def docs(model_files):
    return model_files["docs"]


def _expected(repository, docs) -> list[tuple]:
    from paee.runtime.pipeline import OnnxPipeline

    return sorted(_keys(OnnxPipeline.from_repository(repository).predict_records(docs)))


def _keys(records) -> list[tuple]:
    return [(r["title"], r["h_idx"], r["t_idx"], r["r"], tuple(r["evidence"])) for r in records]


def _results(out) -> list[dict]:
    records = []
    for path in sorted(out.glob("results-*.json")):
        records += json.loads(path.read_text())
    return records


def _batch(*args: str) -> int:
    from paee.cli.batch import main as batch_main

    return batch_main(list(args))


def test_shards_give_the_pipelines_triples_and_poisoned_documents_land_in_the_errors_file(
        repository, ray_runtime, docs, tmp_path, capsys):
    half = len(docs) // 2
    (tmp_path / "in").mkdir()
    (tmp_path / "in/a.json").write_text(json.dumps([d.to_json() for d in docs[:half]]))
    poisoned = docs[0].to_json()
    poisoned["vertexSet"][0][0]["sent_id"] = 99
    lines = [json.dumps(d.to_json()) for d in docs[half:]]
    lines[1:1] = [json.dumps(poisoned), "{not json", ""]  # document 1 and 2 of the shard are bad; blank lines skip
    (tmp_path / "in/b.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"

    rc = _batch("--repository", str(repository), "--input", str(tmp_path / "in"), "--out", str(out),
                "--actors", "2", "--docs-per-file", "3")
    assert rc == 1  # a document failed
    records = _results(out)
    assert sorted(_keys(records)) == _expected(repository, docs) and records
    errors = json.loads((out / "errors.json").read_text())
    assert [(e["shard"].endswith("b.jsonl"), e["document"]) for e in errors] == [(True, 1), (True, 2)]
    assert "field 'vertexSet[0][0].sent_id'" in errors[0]["error"] and "invalid JSON" in errors[1]["error"]
    assert errors[0]["title"] == docs[0].title and errors[1]["title"] is None  # the title, where there is one
    report = json.loads((out / "report.json").read_text())
    assert report["documents"] == len(docs) and report["failed"] == 2 and report["actors"] == 2
    assert report["files"] == [f"results-{i:05d}.json" for i in range(-(-len(docs) // 3))]  # 3 documents a file
    assert not list(out.glob("*.partial"))
    assert f"{len(docs)} documents" in capsys.readouterr().err


def test_a_broken_json_list_keeps_its_good_documents_and_reports_the_rest(repository, ray_runtime, docs, tmp_path):
    text = json.dumps([d.to_json() for d in docs[:3]])
    (tmp_path / "cut.json").write_text(text[: text.rindex('{"title"')] + '{"title": ')  # document 2 is cut off
    out = tmp_path / "out"
    assert _batch("--repository", str(repository), "--input", str(tmp_path / "cut.json"), "--out", str(out)) == 1
    assert sorted(_keys(_results(out))) == _expected(repository, docs[:2])
    (error,) = json.loads((out / "errors.json").read_text())
    assert error["document"] == 2 and "the rest of this shard is not read" in error["error"]


@pytest.mark.parametrize("setup, args, message", [
    ("nonempty", [], "exists and is not an empty folder"),
    ("", ["--actors", "0"], "--actors must be >= 1"),
    ("", ["--input", "missing.json"], "no such file or folder"),
])
def test_bad_jobs_are_refused_before_any_work(repository, docs, tmp_path, capsys, setup, args, message):
    (tmp_path / "docs.json").write_text(json.dumps([d.to_json() for d in docs[:2]]))
    out = tmp_path / "out"
    if setup == "nonempty":
        out.mkdir()
        (out / "results-00000.json").write_text("[]")
    base = ["--repository", str(repository), "--input", str(tmp_path / "docs.json"), "--out", str(out)]
    if "--input" in args:
        base[3] = str(tmp_path / args[1])
        args = []
    assert _batch(*base, *args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_document_whose_run_fails_fails_alone(repository, docs):
    """A run error of the runtime (not a data error) in a batch: the actor reruns the batch's documents one by
    one, so only the document that fails gets an error row (fault injected into the graphs' run)."""
    import numpy as np

    from paee.runtime.corpus import DocumentPredictor

    predictor = DocumentPredictor(str(repository), batch_size=4)
    run_batch = predictor.pipeline.run_batch
    victim = docs[1].title.encode()

    def failing(batch):
        if victim in [t[0] for t in batch["title"]]:
            raise RuntimeError("device lost")
        return run_batch(batch)

    predictor.pipeline.run_batch = failing
    batch = {"shard": np.array(["s.jsonl"] * 3), "index": np.arange(3),
             "document": np.array([json.dumps(d.to_json()) for d in docs[:3]]), "error": np.array([""] * 3)}
    rows = predictor(batch)
    assert rows["index"] == [0, 1, 2]
    assert rows["error"][0] == rows["error"][2] == "" and "prediction failed: RuntimeError: device lost" in rows["error"][1]
    assert rows["title"][1] == docs[1].title and rows["records"][1] == ""
    expected = _expected(repository, [docs[0], docs[2]])
    got = [k for i in (0, 2) for k in _keys(json.loads(rows["records"][i]))]
    assert sorted(got) == expected
