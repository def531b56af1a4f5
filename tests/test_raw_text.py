"""Plain text in, named triples out: `paee-predict --raw` and the served form (a real tritonserver).

The tiny synthetic model of tests/serving_support.py; its repository was exported with the rule-based
detector, so its preprocess model takes ``{"title", "text"}``. The command and the server must find the
same entities and agree on the triples; limits (more than N entities) fail with the remedy named, or,
asked per document, keep the first N and say what was cut.
"""

from __future__ import annotations

import json

import pytest

from paee.cli.predict import main as predict_main
from paee.data.detect import KEEP_FIRST

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

pytest_plugins = ["serving_support"]
pytestmark = pytest.mark.slow

#: Scores agree to this between ONNX Runtime (served) and PyTorch (the command).
SCORE_ATOL = 1e-3

TEXTS = {
    "ada": "Dr. Ada Lovelace was born in London on 10 December 1815. Dr. Lovelace worked with Charles Babbage at "
           "the University of London. IBM (International Business Machines) later named a prize after her.",
    "rivers": "The Danube River flows through Vienna and Budapest. Vienna lies in Austria, and Budapest in Hungary.",
}
#: One sentence with 50 distinct years: 50 entities, more than the model's N = 42.
CROWDED = "The years " + ", ".join(str(1900 + i) for i in range(50)) + " were dry."


def _run(args: list, capsys) -> tuple[int, str]:
    status = predict_main([str(a) for a in args])
    return status, capsys.readouterr().err


@pytest.fixture(scope="module")
def cli_results(model_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("raw")
    (out / "ada.txt").write_text(TEXTS["ada"], encoding="utf-8")
    (out / "more.jsonl").write_text(json.dumps({"title": "rivers", "text": TEXTS["rivers"]}) + "\n\n", encoding="utf-8")
    status = predict_main(["--checkpoint", str(model_files["checkpoint"]), "--raw", "--detector", "rule",
                           "--input", str(out / "ada.txt"), str(out / "more.jsonl"), "--out", str(out / "raw.json"),
                           "--device", "cpu"])
    assert status == 0
    return {r["title"]: r for r in json.loads((out / "raw.json").read_text())}


def test_predict_raw_names_entities_and_triples(cli_results):
    assert sorted(cli_results) == ["ada", "rivers"]  # the .txt file's title is its name
    ada = cli_results["ada"]
    names = [e["name"] for e in ada["entities"]]
    assert names[:3] == ["Ada Lovelace", "London", "10 December 1815"]
    lovelace = ada["entities"][0]
    assert lovelace["type"] == "PER" and [m["text"] for m in lovelace["mentions"]] == ["Ada Lovelace", "Lovelace"]
    assert lovelace["linked_by"] == ["last_name"] and lovelace["id"] == 0
    for m in lovelace["mentions"]:
        assert TEXTS["ada"][m["start"]:m["end"]] == m["text"]
    ibm = next(e for e in ada["entities"] if e["name"] == "International Business Machines")
    assert [m["text"] for m in ibm["mentions"]] == ["IBM", "International Business Machines"]
    assert ada["detection"]["detector"] == "rule" and ada["detection"]["no_entities"] is False
    assert ada["triples"], "the random model predicts some triples"
    for result in cli_results.values():
        for t in result["triples"]:
            assert t["h_name"] == result["entities"][t["h_idx"]]["name"]
            assert t["t_name"] == result["entities"][t["t_idx"]]["name"] and t["r_name"]


def test_predict_raw_limits_and_option_errors(model_files, tmp_path, capsys):
    crowded = tmp_path / "crowded.txt"
    crowded.write_text(CROWDED, encoding="utf-8")
    base = ["--checkpoint", model_files["checkpoint"], "--raw", "--detector", "rule", "--input", crowded,
            "--device", "cpu"]
    status, err = _run([*base, "--out", tmp_path / "fail.json"], capsys)
    assert status == 2 and "document 0 ('crowded'), field 'entities': 50 entities detected, more than " \
                          "max_entities=42" in err and "--keep-first-entities" in err
    assert not (tmp_path / "fail.json").exists()
    status, err = _run([*base, "--keep-first-entities", "--out", tmp_path / "kept.json"], capsys)
    assert status == 0 and "kept 42 of 50 detected entities" in err
    (result,) = json.loads((tmp_path / "kept.json").read_text())
    assert [e["name"] for e in result["entities"]] == [str(1900 + i) for i in range(42)]
    assert [c["name"] for c in result["detection"]["cut"]] == [str(1900 + i) for i in range(42, 50)]
    status, err = _run(["--checkpoint", model_files["checkpoint"], "--input", crowded, crowded,
                        "--out", tmp_path / "x.json"], capsys)
    assert status == 2 and "several files are for --raw" in err
    status, err = _run([*base, "--out", tmp_path / "x.json", "--type-map", tmp_path / "missing.json"], capsys)
    assert status == 2 and "cannot read the type map" in err


def test_predict_raw_streams_json_lines_and_a_bad_line_leaves_nothing(model_files, tmp_path, capsys):
    """JSON lines are read one at a time with the JSON limits; the third line is broken: the run stops naming
    the file and line, and neither the output nor its .partial file is left."""
    lines = [json.dumps({"title": t, "text": TEXTS[t]}) for t in ("ada", "rivers")] + ['{"title": "x", "text": ']
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    base = ["--checkpoint", model_files["checkpoint"], "--raw", "--detector", "rule", "--device", "cpu"]
    status, err = _run([*base, "--input", tmp_path / "in.jsonl", "--out", tmp_path / "out.json"], capsys)
    assert status == 2 and f"{tmp_path / 'in.jsonl'}, line 3: invalid JSON" in err and "raw input is JSON lines" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
    status, err = _run([*base, "--input", tmp_path / "in.jsonl", "--out", tmp_path / "x.json", "--errors",
                        tmp_path / "e.json"], capsys)
    assert status == 2 and "--errors is for documents with entities" in err


def test_served_plain_text_matches_the_command(server, cli_results):
    from paee.serving.client import PaeeClient

    with PaeeClient(server.http_url, timeout_s=120, retries=2) as client:
        for title, text in TEXTS.items():
            got, want = client.predict_raw({"title": title, "text": text}), cli_results[title]
            assert got["entities"] == want["entities"] and got["detection"] == want["detection"]
            served = {(t["h_name"], t["t_name"], t["r"]): t["score"] for t in got["triples"]}
            local = {(t["h_name"], t["t_name"], t["r"]): t["score"] for t in want["triples"]}
            decisive = {k for k, v in local.items() if abs(v) > SCORE_ATOL}
            assert decisive <= set(served) and {k for k, v in served.items() if abs(v) > SCORE_ATOL} <= set(local)
            for key in set(served) & set(local):
                assert served[key] == pytest.approx(local[key], abs=SCORE_ATOL)
        # a document that carries its entities is answered as before: no entities, no detection report
        plain = client.predict_raw({"title": "given", "text": "Ada met Bob.",
                                    "entities": [{"type": "PER", "mentions": [{"start": 0, "end": 3}]},
                                                 {"type": "PER", "mentions": [{"start": 8, "end": 11}]}]})
        assert set(plain) == {"title", "triples"}


def test_served_plain_text_limits(server):
    from paee.serving.client import PaeeClient, PaeeServingError

    with PaeeClient(server.http_url, timeout_s=120, retries=2) as client:
        with pytest.raises(PaeeServingError, match=r"50 entities detected, more than max_entities=42.*"
                                                   + KEEP_FIRST):
            client.predict_raw({"title": "crowded", "text": CROWDED})
        kept = client.predict_raw({"title": "crowded", "text": CROWDED, KEEP_FIRST: True})
        assert len(kept["entities"]) == 42 and len(kept["detection"]["cut"]) == 8
        assert kept["detection"]["warnings"][0].startswith("kept 42 of 50 detected entities")
        with pytest.raises(PaeeServingError, match=r"field 'text': the detector \(rule\) found no entity"):
            client.predict_raw({"title": "empty", "text": "nothing to see here."})
        assert client.is_ready()  # the errors failed their requests alone
