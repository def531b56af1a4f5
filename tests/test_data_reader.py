"""The DocRED-format reader: validation messages, duplicate merging, real files, no torch."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from paee.data import DocumentError, PaeeDataError, RelationVocab
from paee.data.docred import parse_document, read_documents, write_documents
from paee.data.schema import Fact, Mention
from paee.data.stats import corpus_stats, format_stats

VOCAB = RelationVocab.from_ids(["P17", "P131", "P27"])


def doc(**changes):
    """A small valid DocRED document; keyword arguments replace top-level keys."""
    base = {
        "title": "Riga",
        "sents": [["Riga", "is", "the", "capital", "of", "Latvia", "."],
                  ["It", "lies", "on", "the", "Daugava", "."]],
        "vertexSet": [
            [{"name": "Riga", "sent_id": 0, "pos": [0, 1], "type": "LOC"}],
            [{"name": "Latvia", "sent_id": 0, "pos": [5, 6], "type": "LOC"}],
            [{"name": "Daugava", "sent_id": 1, "pos": [4, 5], "type": "LOC"}],
        ],
        "labels": [{"h": 0, "t": 1, "r": "P17", "evidence": [0]}],
    }
    base.update(changes)
    return base


def error_of(obj, index=4, relations=VOCAB) -> str:
    with pytest.raises(DocumentError) as info:
        parse_document(obj, index, relations=relations)
    return str(info.value)


def with_mention(**fields):
    d = doc()
    d["vertexSet"][1][0].update(fields)
    return d


# --- valid documents ----------------------------------------------------------------------------


def test_valid_document_parses():
    d = parse_document(doc(), 7, relations=VOCAB)
    assert d.index == 7 and d.title == "Riga"
    assert d.sents[1] == ("It", "lies", "on", "the", "Daugava", ".")
    assert d.entities[1] == (Mention("Latvia", 0, 5, 6, "LOC"),)
    assert d.facts == (Fact(0, 1, "P17", (0,)),)


def test_redocred_extra_mention_fields_are_ignored():
    d = doc()
    d["vertexSet"][0][0].update(global_pos=[0, 0], index="0_0")
    assert parse_document(d, 0).entities[0][0] == Mention("Riga", 0, 0, 1, "LOC")


def test_mention_name_may_differ_from_its_words():
    # DocRED has such mentions (different spelling, diacritics): not an error.
    assert parse_document(with_mention(name="Republic of Latvia"), 0).entities[1][0].name == "Republic of Latvia"


def test_labels_are_optional_and_may_be_null_or_empty():
    for labels in (None, []):
        assert parse_document(doc(labels=labels), 0).facts == ()
    no_labels = doc()
    del no_labels["labels"]
    assert parse_document(no_labels, 0).facts == ()


def test_duplicate_labels_are_merged_with_their_evidence_united():
    labels = [{"h": 0, "t": 1, "r": "P17", "evidence": [1]},
              {"h": 2, "t": 1, "r": "P17", "evidence": []},
              {"h": 0, "t": 1, "r": "P17", "evidence": [0]},
              {"h": 0, "t": 1, "r": "P131"}]
    facts = parse_document(doc(labels=labels), 0, relations=VOCAB).facts
    assert facts == (Fact(0, 1, "P17", (0, 1)), Fact(2, 1, "P17", ()), Fact(0, 1, "P131", ()))


def test_unknown_relations_pass_without_a_vocabulary():
    assert parse_document(doc(labels=[{"h": 0, "t": 1, "r": "P999"}]), 0).facts[0].relation == "P999"


def test_write_then_read_round_trips(tmp_path):
    docs = read_documents([doc(), doc(title="Other", labels=None)])
    path = tmp_path / "sub" / "out.json"
    write_documents(path, docs)
    assert read_documents(path) == docs
    assert [d.index for d in read_documents(path)] == [0, 1]


# --- validation messages ------------------------------------------------------------------------

PREFIX = "document 4 ('Riga'), field "


@pytest.mark.parametrize("key, message", [
    ("title", "document 4, field 'title': missing (expected a string)"),
    ("sents", "document 4 ('Riga'), field 'sents': missing: expected DocRED form ('title', 'sents', 'vertexSet') "
              "or text form ('title', 'text', 'entities')"),
    ("vertexSet", PREFIX + "'vertexSet': missing (expected a list of entities, each a list of mentions)"),
])
def test_missing_document_keys(key, message):
    d = doc()
    del d[key]
    assert error_of(d) == message


@pytest.mark.parametrize("changes, message", [
    ({"title": 3}, "document 4, field 'title': expected a string, got an integer"),
    ({"sents": "Riga is nice"}, PREFIX + "'sents': expected a list of sentences, each a list of words, got a string"),
    ({"sents": [["Riga"], "is"]}, PREFIX + "'sents[1]': expected a list of words, got a string"),
    ({"sents": [["Riga", 5]]}, PREFIX + "'sents[0][1]': expected a word (string), got an integer"),
    ({"vertexSet": {"0": []}}, PREFIX + "'vertexSet': expected a list of entities, each a list of mentions, "
                                        "got an object"),
    ({"vertexSet": [{"name": "Riga"}]}, PREFIX + "'vertexSet[0]': expected a list of mentions, got an object"),
    ({"vertexSet": [["Riga"]]}, PREFIX + "'vertexSet[0][0]': expected a mention object {name, sent_id, pos, type}, "
                                         "got a string"),
    ({"labels": {"h": 0}}, PREFIX + "'labels': expected a list, got an object"),
    ({"labels": [[0, 1, "P17"]]}, PREFIX + "'labels[0]': expected an object {h, t, r, evidence}, got a list"),
])
def test_wrong_types(changes, message):
    assert error_of(doc(**changes)) == message


@pytest.mark.parametrize("key", ["name", "sent_id", "pos", "type"])
def test_missing_mention_keys(key):
    d = doc()
    del d["vertexSet"][2][0][key]
    assert error_of(d) == PREFIX + f"'vertexSet[2][0].{key}': missing (a mention needs name, sent_id, pos and type)"


@pytest.mark.parametrize("fields, message", [
    ({"name": None}, "'vertexSet[1][0].name': expected a string, got null"),
    ({"sent_id": "0"}, "'vertexSet[1][0].sent_id': expected a sentence index (integer), got a string"),
    ({"sent_id": True}, "'vertexSet[1][0].sent_id': expected a sentence index (integer), got a boolean"),
    ({"pos": [5]}, "'vertexSet[1][0].pos': expected [start, end] word indices, got [5]"),
    ({"pos": [5.0, 6]}, "'vertexSet[1][0].pos': expected [start, end] word indices, got [5.0, 6]"),
    ({"type": 1}, "'vertexSet[1][0].type': expected an entity type string, got an integer"),
])
def test_wrong_mention_field_types(fields, message):
    assert error_of(with_mention(**fields)) == PREFIX + message


@pytest.mark.parametrize("pos, problem", [
    ([5, 5], "span [5, 5) is empty"),
    ([6, 5], "span [6, 5) is empty"),
    ([5, 8], "span [5, 8) lies outside sentence 0 (7 words)"),
    ([-1, 2], "span [-1, 2) lies outside sentence 0 (7 words)"),
])
def test_mention_span_empty_or_outside_its_sentence(pos, problem):
    assert error_of(with_mention(pos=pos)) == PREFIX + f"'vertexSet[1][0].pos': {problem}"


@pytest.mark.parametrize("sent_id", [2, -1])
def test_sent_id_out_of_range(sent_id):
    assert error_of(with_mention(sent_id=sent_id)) == (
        PREFIX + f"'vertexSet[1][0].sent_id': sentence {sent_id} is out of range (document has 2 sentences)")


def test_unknown_entity_type_lists_the_known_ones():
    assert error_of(with_mention(type="GPE")) == (
        PREFIX + "'vertexSet[1][0].type': unknown entity type 'GPE' (known: PER, ORG, LOC, TIME, NUM, MISC)")


def test_custom_entity_types():
    with pytest.raises(DocumentError, match=r"unknown entity type 'LOC' \(known: GPE, PER\)"):
        parse_document(doc(), 0, entity_types=("GPE", "PER"))


@pytest.mark.parametrize("label, message", [
    ({"h": 3, "t": 1, "r": "P17"}, "'labels[1].h': entity 3 is out of range (document has 3 entities)"),
    ({"h": 0, "t": -1, "r": "P17"}, "'labels[1].t': entity -1 is out of range (document has 3 entities)"),
    ({"t": 1, "r": "P17"}, "'labels[1].h': expected an entity index (integer), missing"),
    ({"h": 0, "t": "1", "r": "P17"}, "'labels[1].t': expected an entity index (integer), got a string"),
    ({"h": 0, "t": 1}, "'labels[1].r': expected a relation id string, missing"),
    ({"h": 0, "t": 1, "r": "P999"}, "'labels[1].r': unknown relation 'P999' (not among the 3 relations of the "
                                     "relation vocabulary)"),
    ({"h": 0, "t": 1, "r": "Na"}, "'labels[1].r': 'Na' is the no-relation class, not a relation label"),
    ({"h": 1, "t": 1, "r": "P17"}, "'labels[1]': head and tail are the same entity (1); relations hold between "
                                    "two entities"),
    ({"h": 0, "t": 1, "r": "P17", "evidence": [2]}, "'labels[1].evidence': 2 is not a sentence id "
                                                     "(document has 2 sentences)"),
    ({"h": 0, "t": 1, "r": "P17", "evidence": 0}, "'labels[1].evidence': expected a list of sentence ids, "
                                                   "got an integer"),
])
def test_bad_labels(label, message):
    d = doc()
    d["labels"].append(label)
    assert error_of(d) == PREFIX + message


@pytest.mark.parametrize("changes, message", [
    ({"sents": []}, "'sents': the document has no sentences"),
    ({"sents": [[], []]}, "'sents': the document has no words (every sentence is empty)"),
    ({"vertexSet": []}, "'vertexSet': the document has no entities"),
])
def test_empty_document(changes, message):
    assert error_of(doc(**changes)) == PREFIX + message


def test_empty_sentence_and_entity_without_mentions():
    d = doc()
    d["sents"].insert(1, [])
    assert error_of(d) == PREFIX + "'sents[1]': the sentence is empty (remove it and renumber sent_id and evidence)"
    d = doc()
    d["vertexSet"].append([])
    assert error_of(d) == PREFIX + "'vertexSet[3]': the entity has no mentions"


def test_document_that_is_not_an_object_or_has_no_known_form():
    assert error_of(["Riga"]) == "document 4: expected a JSON object, got a list"
    assert error_of(doc(text="Riga is the capital.")) == (
        "document 4 ('Riga'): has both 'sents' (DocRED form) and 'text' (text form); use one")


def test_error_keeps_its_parts_for_programs():
    with pytest.raises(DocumentError) as info:
        read_documents([doc(), doc(), with_mention(pos=[5, 5])])
    assert (info.value.index, info.value.title, info.value.field) == (2, "Riga", "vertexSet[1][0].pos")


def test_file_errors(tmp_path):
    with pytest.raises(PaeeDataError, match="cannot read .*missing.json"):
        read_documents(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[{", encoding="utf-8")
    with pytest.raises(PaeeDataError, match="cannot read .*bad.json"):
        read_documents(bad)
    bad.write_text(json.dumps(doc()), encoding="utf-8")
    with pytest.raises(PaeeDataError, match="expected a JSON list of documents, got an object"):
        read_documents(bad)


def test_input_is_not_modified():
    d = doc(labels=[{"h": 0, "t": 1, "r": "P17"}, {"h": 0, "t": 1, "r": "P17"}])
    before = copy.deepcopy(d)
    read_documents([d])
    assert d == before


# --- real data ----------------------------------------------------------------------------------


@pytest.mark.realdata
def test_redocred_dev_statistics(redocred_dev_path, rel2id_path, rel_info_path):
    vocab = RelationVocab.from_files(rel2id_path, rel_info_path)
    docs = read_documents(redocred_dev_path, relations=vocab)
    stats = corpus_stats(docs)
    assert stats["documents"] == 500
    assert round(stats["entities_mean"], 2) == 19.37 and stats["entities_max"] == 36
    assert round(stats["sentences_mean"], 2) == 8.22 and stats["sentences_max"] == 21
    assert stats["words_max"] == 481 and stats["mentions_per_entity_max"] == 13
    assert stats["facts"] == 17_284
    assert round(stats["relational_pair_share"], 3) == 0.069
    assert stats["documents_over_max_entities"] == 0
    table = format_stats(stats)
    assert "19.37 (max 36)" in table and "8.22 (max 21)" in table and "6.9%" in table


@pytest.mark.realdata
def test_docred_test_file_reads_completely(docred_test_path):
    # How fast it reads is for benchmarks to measure, not for a test to assert.
    docs = read_documents(docred_test_path)
    assert len(docs) == 1000 and all(not d.facts for d in docs)
    assert max(d.num_entities for d in docs) == 42
    assert [d.index for d in docs] == list(range(1000))


def test_data_layer_never_imports_torch():
    code = ("import paee.data.docred, paee.data.synthetic, paee.data.text_format, paee.data.stats, paee.cli.data; "
            "import sys; assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
