"""Corpus-size input: the JSON list reader and writer that hold one document at a time, `DocumentRunner.stream`,
and `paee-predict` streaming (same records as the in-memory path, errors listed or stopping the run, no half
file left)."""

from __future__ import annotations

import json

import pytest

from paee.data.errors import PaeeDataError
from paee.data.jsonio import JsonListReader, JsonListWriter

ITEMS = [{"title": "Zürich ✓", "sents": [["a", "b"]], "n": [1, 2.5, None, True]}, 12345678901, "s", [], {}]


def _write(tmp_path, text: str | bytes):
    path = tmp_path / "items.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


@pytest.mark.parametrize("block", [1, 2, 5, 64, 1 << 20])
def test_reader_gives_the_items_of_any_layout_whatever_the_block(tmp_path, block):
    # blocks of 1 and 2 bytes split the multibyte characters and the number 12345678901 in every way
    for text in (json.dumps(ITEMS), json.dumps(ITEMS, indent=3, ensure_ascii=False), " [ ] ", "[]"):
        expected = json.loads(text)
        assert list(JsonListReader(_write(tmp_path, text), block=block)) == expected


def test_reader_holds_one_block_not_the_file(tmp_path):
    docs = [{"title": f"doc {i}", "sents": [["word"] * 50]} for i in range(2000)]
    path = _write(tmp_path, json.dumps(docs))
    reader = JsonListReader(path, what="documents", block=4096)
    first = next(iter(reader))
    assert first == docs[0]
    assert reader.bytes_read <= 4096 < reader.size // 50  # the rest of the file is not read yet


@pytest.mark.parametrize("text, message", [
    ('{"a": 1}', "expected a JSON list of documents, got an object"),
    ("", "expected a JSON list of documents, got nothing"),
    ("[1, 2", "document 1: expected ',' or ']' after it, got 'the end of the file'"),
    ("[1 2]", "document 0: expected ',' or ']' after it, got '2'"),
    ("[1,]", "document 1: invalid JSON: Expecting value (character 0 of the item)"),
    ('[1, {"a": }]', "document 1: invalid JSON: Expecting value (character 6 of the item)"),
    ("[1] [2]", "text after the closing ']' of the list"),
    ('[1, {"t": "\\ud800"}]', "document 1, field 't': the string holds a lone surrogate"),
    ("[" + "[" * 5000 + "]" * 5000 + "]", "document 0: JSON nested too deeply"),
    ("[1" + "0" * 5000 + "]", "document 0: a number in the JSON is too long to read"),
    (b'[1, "\xff"]', "not valid UTF-8 near byte 5"),
])
def test_reader_errors_name_the_file_and_the_document(tmp_path, text, message):
    with pytest.raises(PaeeDataError, match="cannot read documents .*items.json") as err:
        list(JsonListReader(_write(tmp_path, text), what="documents", block=3))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_reader_refuses_an_item_over_its_limit_without_reading_on(tmp_path):
    path = _write(tmp_path, '[{"a": "' + "x" * 10_000 + '"}, 1]')
    with pytest.raises(PaeeDataError, match="document 0: invalid JSON or over 1000 characters"):
        list(JsonListReader(path, what="documents", max_item_bytes=1000, block=100))


def test_writer_renames_a_complete_list_into_place(tmp_path):
    out = tmp_path / "result.json"
    with JsonListWriter(out, indent=1) as writer:
        for item in ITEMS:
            writer.write(item)
            writer.flush()
            assert not out.exists() and (tmp_path / "result.json.partial").exists()  # on disk as they come
    assert out.read_text() == json.dumps(ITEMS, indent=1, ensure_ascii=False) + "\n"  # what json.dump writes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]
    with JsonListWriter(tmp_path / "empty.json") as writer:
        pass
    assert json.loads((tmp_path / "empty.json").read_text()) == []


def test_writer_leaves_nothing_when_the_run_fails(tmp_path):
    out = tmp_path / "result.json"
    out.write_text("[1]\n")
    with pytest.raises(RuntimeError), JsonListWriter(out) as writer:
        writer.write({"a": 1})
        raise RuntimeError("model failed")
    assert out.read_text() == "[1]\n" and sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


# --- the runner and the command ------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A random tiny model whose threshold gives ~6 triples per document, its checkpoint and 11 documents."""
    from paee.checkpoint import Checkpoint
    from paee.data.featurizer import Featurizer, FeaturizerConfig
    from paee.data.relations import RelationVocab
    from paee.data.synthetic import generate_corpus, rel2id, rel_info
    from paee.inference import Predictor
    from paee_bench.checkpoints import raise_threshold, random_model

    out = tmp_path_factory.mktemp("streaming")
    docs = generate_corpus(n_docs=11, seed=21)
    net, source = random_model("tiny", docs, RelationVocab.from_rel2id(rel2id(), rel_info()), FeaturizerConfig(), seed=0)
    raise_threshold(net, Featurizer(source.tokenizer, FeaturizerConfig()), docs, 6)
    Checkpoint.from_model(net, source.tokenizer).save(out / "best.pt")
    predictor = Predictor.from_checkpoint(out / "best.pt", device="cpu", batch_size=2)
    (out / "docs.json").write_text(json.dumps([d.to_json() for d in docs]))
    return {"dir": out, "docs": docs, "predictor": predictor}


@pytest.mark.parametrize("chunk", [1, 3, 100])
def test_stream_gives_what_predict_gives_in_input_order(model, chunk):
    predictor, docs = model["predictor"], model["docs"]
    expected = predictor.predict(docs)
    assert sum(map(len, expected)) >= len(docs)  # the comparison is about real triples
    streamed = list(predictor.stream(iter(docs), chunk=chunk))
    assert [d.title for d, _, _ in streamed] == [d.title for d in docs]
    got = [triples for _, _, triples in streamed]
    assert _facts(got) == _facts(expected)  # other batches pad differently: scores agree to float rounding
    assert [t.score for ts in got for t in ts] == pytest.approx([t.score for ts in expected for t in ts], abs=1e-6)


def _facts(results):
    return [[(t.head, t.tail, t.relation, t.evidence) for t in triples] for triples in results]


def test_stream_collects_a_document_it_cannot_featurize_in_its_place(model):
    from paee.data.docred import parse_document

    predictor, docs = model["predictor"], model["docs"]
    n = predictor.featurizer.config.max_entities
    crowded = parse_document({  # one entity more than the model's N
        "title": "crowded", "sents": [[f"w{i}" for i in range(n + 1)]],
        "vertexSet": [[{"name": f"w{i}", "sent_id": 0, "pos": [i, i + 1], "type": "PER"}] for i in range(n + 1)],
    }, 2)
    streamed = list(predictor.stream(iter([docs[0], crowded, docs[1]]), chunk=3, errors="collect"))
    assert isinstance(streamed[1][1], PaeeDataError) and "crowded" in str(streamed[1][1]) and streamed[1][2] == []
    assert _facts([t for _, _, t in streamed[::2]]) == _facts(predictor.predict(docs[:2]))
    with pytest.raises(PaeeDataError, match="crowded"):
        list(predictor.stream(iter([docs[0], crowded]), chunk=3))


def _predict(model, *args):
    from paee.cli.predict import main as predict_main

    return predict_main(["--checkpoint", str(model["dir"] / "best.pt"), "--batch-size", "2", "--device", "cpu", *args])


def test_predict_streams_the_records_predict_records_gives(model, tmp_path, capsys):
    out = tmp_path / "result.json"
    assert _predict(model, "--input", str(model["dir"] / "docs.json"), "--out", str(out), "--names", "--scores") == 0
    expected = model["predictor"].predict_records(model["docs"], with_names=True, with_scores=True)
    assert json.loads(out.read_text()) == expected and expected
    err = capsys.readouterr().err
    assert "predict: 100%" in err and f"{len(expected)} relation facts for {len(model['docs'])} documents" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def _with_bad_document(model, tmp_path):
    objs = json.loads((model["dir"] / "docs.json").read_text())
    objs[4]["vertexSet"][0][0]["sent_id"] = 99  # document 4 points at a sentence it does not have
    path = tmp_path / "docs.json"
    path.write_text(json.dumps(objs))
    return path, objs[4]["title"]


def test_predict_stops_at_a_bad_document_before_predicting_and_leaves_nothing(model, tmp_path, capsys):
    docs, title = _with_bad_document(model, tmp_path)
    out = tmp_path / "result.json"
    assert _predict(model, "--input", str(docs), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert f"document 4 ('{title}'), field 'vertexSet[0][0].sent_id'" in err and "doc/s" not in err  # no prediction started
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.json"]


def test_predict_with_errors_file_skips_and_lists_the_bad_documents(model, tmp_path, capsys):
    docs, title = _with_bad_document(model, tmp_path)
    out, errors = tmp_path / "result.json", tmp_path / "errors.json"
    assert _predict(model, "--input", str(docs), "--out", str(out), "--errors", str(errors)) == 1
    listed = json.loads(errors.read_text())
    assert [(e["document"], e["title"]) for e in listed] == [(4, title)] and "sent_id" in listed[0]["error"]
    good = model["docs"][:4] + model["docs"][5:]
    assert json.loads(out.read_text()) == model["predictor"].predict_records(good)
    assert "1 document(s) not predicted" in capsys.readouterr().err


def test_a_terminated_predict_leaves_no_partial_output(model, tmp_path):
    """SIGTERM (``kill``, an orchestrator) ends the command through its cleanups: the partial file goes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    docs = json.loads((model["dir"] / "docs.json").read_text()) * 40  # long enough to be caught mid-run
    (tmp_path / "docs.json").write_text(json.dumps(docs))
    out = tmp_path / "result.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "paee.cli.predict", "--checkpoint", str(model["dir"] / "best.pt"), "--input",
         str(tmp_path / "docs.json"), "--out", str(out), "--batch-size", "2", "--device", "cpu"],
        stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "result.json.partial").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be terminated"
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.json"]
