"""``paee-data``: synth and stats subcommands, clean one-line errors with exit status 2."""

from __future__ import annotations

import json

import pytest

from paee.cli.data import main
from paee.data import RelationVocab, read_documents


def test_synth_writes_a_readable_corpus(tmp_path, capsys):
    out = tmp_path / "corpus"
    assert main(["synth", "--out", str(out), "--seed", "1", "--train", "6", "--dev", "2", "--test", "2",
                 "--max-entities", "12"]) == 0
    assert "train.json (6 documents)" in capsys.readouterr().out
    vocab = RelationVocab.from_files(out / "rel2id.json", out / "rel_info.json")
    docs = read_documents(out / "train.json", relations=vocab)
    assert len(docs) == 6 and max(d.num_entities for d in docs) <= 12
    assert len(read_documents(out / "test.json")) == 2


def test_stats_table_and_json(tmp_path, capsys):
    main(["synth", "--out", str(tmp_path), "--train", "5", "--dev", "0", "--test", "0"])
    capsys.readouterr()
    assert main(["stats", str(tmp_path / "train.json")]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["documents", "5"]
    assert "relational ordered pairs" in table
    assert main(["stats", str(tmp_path / "train.json"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["documents"] == 5 and 0 < stats["relational_pair_share"] < 1


@pytest.mark.parametrize("content, message", [
    ('[{"title": "x", "sents": [["a"]], "vertexSet": [[{"name": "a", "sent_id": 0, "pos": [0, 2], "type": "PER"}]]}]',
     "paee-data: error: document 0 ('x'), field 'vertexSet[0][0].pos': span [0, 2) lies outside sentence 0 (1 word)"),
    ("{not json", "paee-data: error: cannot read "),
    ('{"title": "x"}', "paee-data: error: "),
])
def test_bad_file_prints_one_line_and_exits_2(tmp_path, capsys, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    assert main(["stats", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(message) and captured.err.count("\n") == 1
    assert "Traceback" not in captured.err


def test_missing_file_and_bad_sizes(tmp_path, capsys):
    assert main(["stats", str(tmp_path / "nope.json")]) == 2
    assert capsys.readouterr().err.startswith("paee-data: error: cannot read ")
    assert main(["synth", "--out", str(tmp_path), "--train", "-1"]) == 2
    assert "split sizes must be >= 0" in capsys.readouterr().err


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as info:
        main(["stats"])
    assert info.value.code == 2


@pytest.mark.realdata
def test_stats_of_redocred_dev(redocred_dev_path, capsys):
    assert main(["stats", str(redocred_dev_path)]) == 0
    lines = dict(line.split("  ", 1) for line in capsys.readouterr().out.splitlines())
    lines = {k.strip(): v.strip() for k, v in lines.items()}
    assert lines["documents"] == "500"
    assert lines["entities per document"] == "19.37 (max 36)"
    assert lines["sentences per document"] == "8.22 (max 21)"
    assert lines["relational ordered pairs"].startswith("6.9% ")
