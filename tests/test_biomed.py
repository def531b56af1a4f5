"""CDR / GDA readers: PubTator and Christopoulou et al.'s ``.data`` format -> `Document`.

Constructed inputs check each rule; the real CDR files (../shared/data/cdr, skipped when absent) check
the counts of the literature and that both readers agree on the same abstracts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paee.data.biomed import (
    CDR_ENTITY_TYPES, READERS, ReadReport, convert, parse_cdr_data, parse_pubtator, read_cdr_data,
    read_pubtator, summarize,
)
from paee.data.docred import parse_document, write_documents
from paee.data.errors import DocumentError, PaeeDataError
from paee.data.schema import Fact, Mention

CDR_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cdr"

# --- PubTator, constructed ----------------------------------------------------------------------

PMID = "1234"
# No full stop after the title: it must still be a sentence of its own.
TITLE = "Naloxone-induced hypotension and renal and hepatic failure"
ABSTRACT = ("Rats given 5-HT6 agonists and naloxone developed hypotension. Nalozone had no effect. "
            "The antihypertensive drug was clonidine.")
TEXT = f"{TITLE} {ABSTRACT}"


def at(piece: str, occurrence: int = 0, text: str = TEXT) -> tuple[int, int]:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(piece, start + 1)
    return start, start + len(piece)


def mention_line(piece: str, etype: str, ids: str, occurrence: int = 0, *extra: str, text: str = TEXT) -> str:
    start, end = at(piece, occurrence, text)
    return "\t".join([PMID, str(start), str(end), piece, etype, ids, *extra])


PUBTATOR = "\n".join([
    f"{PMID}|t|{TITLE}",
    f"{PMID}|a|{ABSTRACT}",
    mention_line("Naloxone", "Chemical", "D009270"),
    mention_line("hypotension", "Disease", "D007022"),
    mention_line("renal and hepatic failure", "Disease", "D051437|D017093", 0, "renal failure|hepatic failure"),
    mention_line("5-HT", "Chemical", "D012701"),  # ends inside the word "5-HT6"
    mention_line("naloxone", "Chemical", "D009270"),
    mention_line("hypotension", "Disease", "D007022", 1),
    mention_line("Nalozone", "Chemical", "-1"),  # not linked: dropped
    mention_line("hypertensive", "Disease", "D006973"),  # inside "antihypertensive"
    mention_line("clonidine", "Chemical", "D003000"),
    f"{PMID}\tCID\tD009270\tD007022",
    f"{PMID}\tCID\tD003000\tD999999",  # the disease has no mention: dropped, counted
    f"{PMID}\tCID\tD009270\tD051437",  # to one part of the composite mention
    f"{PMID}\tCID\tD009270\tD007022",  # a repeated line: merged, counted
]) + "\n"


def test_pubtator_sentences_words_and_spans():
    (doc,) = parse_pubtator(PUBTATOR)
    assert doc.title == PMID and doc.extra["pubmed_title"] == TITLE and doc.extra["text"] == TEXT
    assert doc.sents == (
        ("Naloxone", "-", "induced", "hypotension", "and", "renal", "and", "hepatic", "failure"),
        ("Rats", "given", "5", "-", "HT", "6", "agonists", "and", "naloxone", "developed", "hypotension", "."),
        ("Nalozone", "had", "no", "effect", "."),
        ("The", "anti", "hypertensive", "drug", "was", "clonidine", "."),
    )
    # Entities in order of first mention; the composite mention belongs to both its concepts.
    composite = "renal and hepatic failure"
    assert doc.extra["concepts"] == ("D009270", "D007022", "D051437", "D017093", "D012701", "D006973", "D003000")
    assert doc.entities == (
        (Mention("Naloxone", 0, 0, 1, "Chemical"), Mention("naloxone", 1, 8, 9, "Chemical")),
        (Mention("hypotension", 0, 3, 4, "Disease"), Mention("hypotension", 1, 10, 11, "Disease")),
        (Mention(composite, 0, 5, 9, "Disease"),),
        (Mention(composite, 0, 5, 9, "Disease"),),
        (Mention("5-HT", 1, 2, 5, "Chemical"),),
        (Mention("hypertensive", 3, 2, 3, "Disease"),),
        (Mention("clonidine", 3, 5, 6, "Chemical"),),
    )
    # Head = the chemical's entity, tail = the disease's; the file's label is kept.
    assert doc.facts == (Fact(0, 1, "CID"), Fact(0, 2, "CID"))
    # word_offsets map every word back to the text.
    offsets = doc.extra["word_offsets"]
    assert [[TEXT[s:e] for s, e in sent] for sent in offsets] == [list(s) for s in doc.sents]


def test_pubtator_report_counts_every_drop():
    (doc,) = parse_pubtator(PUBTATOR)
    report = summarize([doc])
    assert report == doc.extra["read_report"]
    assert (report.documents, report.entities, report.mentions, report.facts) == (1, 7, 9, 2)
    assert report.relations_in_file == 4 and report.duplicate_relations == 1
    assert report.dropped_relations == (f"{PMID} CID D003000 D999999: no mention of D999999 (line 13)",)
    assert (report.unlinked_mentions, report.composite_mentions) == (1, 1)
    assert report.word_splits == 2  # "HT|6" and "anti|hypertensive"
    assert report.sentence_merges == 0
    assert (report + report).facts == 4 and len((report + report).dropped_relations) == 2
    assert "2 facts kept of 4 relations in the file (1 dropped, 1 duplicates merged)" in report.summary()


def test_pubtator_merges_sentences_that_a_mention_crosses():
    title = "Toxicity of reagents."
    abstract = "Rats took Lab. Reagent X daily. Hepatitis followed."
    text = f"{title} {abstract}"
    block = "\n".join([f"{PMID}|t|{title}", f"{PMID}|a|{abstract}",
                       mention_line("Lab. Reagent X", "Chemical", "C1", text=text),
                       mention_line("Hepatitis", "Disease", "D2", text=text),
                       f"{PMID}\tCID\tC1\tD2"])
    (doc,) = parse_pubtator(block)
    # The splitter ends a sentence after "Lab." (a capital follows); the mention keeps it whole.
    assert [" ".join(s) for s in doc.sents] == [
        "Toxicity of reagents .", "Rats took Lab . Reagent X daily .", "Hepatitis followed ."]
    assert doc.entities[0] == (Mention("Lab. Reagent X", 1, 2, 6, "Chemical"),)
    assert doc.extra["read_report"].sentence_merges == 1
    assert doc.facts == (Fact(0, 1, "CID"),)


def test_pubtator_several_documents_and_errors():
    two = PUBTATOR + "\n" + PUBTATOR.replace(PMID, "99")
    docs = parse_pubtator(two)
    assert [d.title for d in docs] == [PMID, "99"] and [d.index for d in docs] == [0, 1]
    assert summarize(docs).facts == 4

    bad_offsets = PUBTATOR.replace(mention_line("clonidine", "Chemical", "D003000"),
                                   "\t".join([PMID, "5", "14", "clonidine", "Chemical", "D003000"]))
    with pytest.raises(PaeeDataError, match=r"corpus\.txt, line 11: mention text 'clonidine' differs"):
        parse_pubtator(bad_offsets, "corpus.txt")
    with pytest.raises(PaeeDataError, match=r"line 14: expected a mention line .* got 3 tab-separated fields"):
        parse_pubtator(PUBTATOR.replace(f"{PMID}\tCID\tD009270\tD051437", f"{PMID}\tCID\tD009270"), "x")
    with pytest.raises(PaeeDataError, match=r"line 1: expected a title line"):
        parse_pubtator(f"{PMID}\t0\t8\tNaloxone\tChemical\tD009270\n", "x")
    with pytest.raises(PaeeDataError, match=r"line 16: title of PMID 99 inside the block of PMID 1234"):
        parse_pubtator(PUBTATOR + PUBTATOR.replace(PMID, "99"), "x")
    with pytest.raises(PaeeDataError, match=r"x, line 4: PMID 99 has a title line but no abstract line"):
        parse_pubtator(f"{PMID}|t|{TITLE}\n{PMID}|a|{ABSTRACT}\n\n99|t|A title only.\n", "x")
    with pytest.raises(PaeeDataError, match=r"line 3: expected a mention line .* got 4 tab-separated fields"):
        parse_pubtator(f"{PMID}|t|{TITLE}\n{PMID}|a|{ABSTRACT}\n{PMID}\t0\t8\tNaloxone\n", "x")


# --- .data, constructed -------------------------------------------------------------------------

# Sentence 0: words 0-4, sentence 1: words 5-13 (offsets in the file count over the whole document).
DATA_TEXT = "Lidocaine induced cardiac asystole .|Asystole and renal and hepatic failure followed lidocaine ."
LIDOCAINE = ["D008012", "Lidocaine|lidocaine", "Chemical", "0:12", "1:13", "0:1"]
ASYSTOLE = ["D006323", "cardiac asystole|Asystole", "Disease", "2:5", "4:6", "0:1"]
RENAL = ["D051437", "renal and hepatic failure", "Disease", "7", "11", "1"]  # a composite mention:
HEPATIC = ["D017093", "renal and hepatic failure", "Disease", "7", "11", "1"]  # one per concept


def pair(label: str, direction: str, span1: str, span2: str, arg1: list[str], arg2: list[str]) -> list[str]:
    cross = "NON-CROSS"
    return [label, direction, cross, span1, span2, *arg1, *arg2]


def data_line(*pairs: list[str], pmid: str = "123") -> str:
    return "\t".join([pmid, DATA_TEXT, *[field for p in pairs for field in p]])


def standard_pairs(last_label: str = "1:NR:2") -> list[list[str]]:
    return [
        pair("1:CID:2", "L2R", "0-1", "2-4", LIDOCAINE, ASYSTOLE),
        # R2L: the disease comes first in the text; argument 1 is still the chemical and the head.
        pair("1:CID:2", "R2L", "12-13", "7-11", LIDOCAINE, RENAL),
        pair(last_label, "R2L", "12-13", "7-11", LIDOCAINE, HEPATIC),
    ]


def test_data_reader_entities_and_facts():
    (doc,) = parse_cdr_data(data_line(*standard_pairs()) + "\n")
    assert doc.title == "123" and len(doc.sents) == 2 and doc.sents[1][-2:] == ("lidocaine", ".")
    assert doc.extra["concepts"] == ("D008012", "D006323", "D051437", "D017093")
    assert doc.entities == (
        (Mention("Lidocaine", 0, 0, 1, "Chemical"), Mention("lidocaine", 1, 7, 8, "Chemical")),
        (Mention("cardiac asystole", 0, 2, 4, "Disease"), Mention("Asystole", 1, 0, 1, "Disease")),
        (Mention("renal and hepatic failure", 1, 2, 6, "Disease"),),
        (Mention("renal and hepatic failure", 1, 2, 6, "Disease"),),
    )
    assert doc.facts == (Fact(0, 1, "CID"), Fact(0, 2, "CID"))
    report = doc.extra["read_report"]
    assert (report.entities, report.mentions, report.facts, report.relations_in_file) == (4, 6, 2, 2)
    assert report.excluded_pairs == 0

    # A pair of the hypernym filter: not a fact, kept aside as (head, tail).
    (doc,) = parse_cdr_data(data_line(*standard_pairs("not_include")))
    assert doc.facts == (Fact(0, 1, "CID"), Fact(0, 2, "CID")) and doc.extra["excluded_pairs"] == ((0, 3),)
    # "2:CID:1": argument 2 is the head.
    (doc,) = parse_cdr_data(data_line(pair("2:CID:1", "L2R", "0-1", "2-4", LIDOCAINE, ASYSTOLE)))
    assert doc.facts == (Fact(1, 0, "CID"),)


def test_data_reader_errors_name_document_field_and_line():
    good = data_line(*standard_pairs())
    crossing = ["D006323", "cardiac asystole .|Asystole", "Disease", "2:5", "6:6", "0:1"]  # [2, 6) leaves sentence 0
    with pytest.raises(DocumentError, match=r"document 1 \('77'\), field 'pairs\[0\]\.arg2\.starts': word span "
                                            r"\[2, 6\) .* is not inside sentence 0 .*train\.data, line 2"):
        parse_cdr_data(good + "\n" + data_line(pair("1:CID:2", "L2R", "0-1", "2-4", LIDOCAINE, crossing), pmid="77"),
                       "train.data")
    other = ["D008012", "Lidocaine", "Chemical", "0", "1", "0"]  # lidocaine again, with one mention fewer
    with pytest.raises(DocumentError, match=r"'pairs\[1\]\.arg1': concept D008012 has other mentions"):
        parse_cdr_data(data_line(standard_pairs()[0], pair("1:NR:2", "R2L", "0-1", "7-11", other, RENAL)))
    with pytest.raises(DocumentError, match=r"'pairs\[0\]\.arg1\.ends': 1 values for 2 mention starts"):
        parse_cdr_data(data_line(pair("1:CID:2", "L2R", "0-1", "2-4", LIDOCAINE[:4] + ["1"] + LIDOCAINE[5:],
                                      ASYSTOLE)))
    with pytest.raises(DocumentError, match=r"'pairs\[0\]\.label': expected '1:REL:2'"):
        parse_cdr_data(data_line(pair("CID", "L2R", "0-1", "2-4", LIDOCAINE, ASYSTOLE)))
    with pytest.raises(PaeeDataError, match=r"x\.data, line 2: expected a PMID, the text, then groups of 17"):
        parse_cdr_data(good + "\n" + good + "\tone-field-too-many", "x.data")
    # A repeated PMID keeps the first line and is counted.
    docs = parse_cdr_data(good + "\n" + good)
    assert len(docs) == 1 and summarize(docs).duplicate_documents == 1


# --- convert and the DocRED round trip ----------------------------------------------------------


def round_trip(docs, tmp_path: Path) -> None:
    out = tmp_path / "converted.json"
    write_documents(out, docs)
    written = json.loads(out.read_text(encoding="utf-8"))
    assert len(written) == len(docs)
    for i, (obj, doc) in enumerate(zip(written, docs)):
        back = parse_document(obj, i, entity_types=CDR_ENTITY_TYPES)
        assert (back.title, back.sents, back.entities, back.facts) == (doc.title, doc.sents, doc.entities, doc.facts)


def test_convert_by_format_name(tmp_path):
    assert set(READERS) == {"pubtator", "cdr-data"}
    pubtator, data = tmp_path / "cdr.PubTator.txt", tmp_path / "cdr.data"
    pubtator.write_text(PUBTATOR, encoding="utf-8")
    data.write_text(data_line(*standard_pairs()) + "\n", encoding="utf-8")
    assert convert(pubtator, "pubtator") == read_pubtator(pubtator) == parse_pubtator(PUBTATOR)
    assert convert(data, "cdr-data") == read_cdr_data(data)
    round_trip(convert(pubtator, "pubtator") + convert(data, "cdr-data"), tmp_path)
    with pytest.raises(PaeeDataError, match=r"unknown format 'bioc' \(known: pubtator, cdr-data\)"):
        convert(pubtator, "bioc")
    with pytest.raises(PaeeDataError, match=r"cannot read .*missing\.txt"):
        convert(tmp_path / "missing.txt", "pubtator")


# --- the real CDR files -------------------------------------------------------------------------

# Measured on ../shared/data/cdr (SOURCES.md). The literature's 1,038 / 1,012 CID relations are all kept:
# every related concept has a mention. "-1" mentions: 76 / 59; composite mentions 97 / 99.
REAL = {
    "train": dict(pubtator="CDR_TrainingSet.PubTator.txt", data="train_filter.data", entities=3433, mentions=9412,
                  relations=1038, unlinked=76, composite=97, word_splits=0, excluded=192),
    "dev": dict(pubtator="CDR_DevelopmentSet.PubTator.txt", data="dev_filter.data", entities=3371, mentions=9635,
                relations=1012, unlinked=59, composite=99, word_splits=10, excluded=174),
}
DOCUMENTS_PER_FILE = 500


@pytest.fixture(scope="module", params=sorted(REAL))
def real_split(request):
    if not CDR_DIR.is_dir():
        pytest.skip(f"real data not present: {CDR_DIR} (see ../shared/data/SOURCES.md)")
    expected = REAL[request.param]
    return (expected, read_pubtator(CDR_DIR / expected["pubtator"]), read_cdr_data(CDR_DIR / expected["data"]))


def test_real_pubtator_counts(real_split):
    expected, docs, _ = real_split
    report = summarize(docs)
    assert report.documents == len(docs) == DOCUMENTS_PER_FILE
    assert (report.entities, report.mentions) == (expected["entities"], expected["mentions"])
    assert report.relations_in_file == report.facts == expected["relations"]
    assert report.dropped_relations == () and report.duplicate_relations == 0
    assert (report.unlinked_mentions, report.composite_mentions) == (expected["unlinked"], expected["composite"])
    # No mention crosses a sentence end of the splitter; a few end inside a word ("5-HT6", "DA1").
    assert report.sentence_merges == 0 and report.word_splits == expected["word_splits"]
    # Entity types: only CDR's, one per entity.
    assert {m.type for d in docs for e in d.entities for m in e} == set(CDR_ENTITY_TYPES)
    assert all(len({m.type for m in e}) == 1 for d in docs for e in d.entities)


def test_real_files_round_trip(real_split, tmp_path):
    _, pubtator, data = real_split
    round_trip(pubtator + data, tmp_path)


def test_real_readers_agree(real_split):
    expected, pubtator, data = real_split
    report = summarize(data)
    assert report.documents == DOCUMENTS_PER_FILE and report.duplicate_documents == 0
    assert report.facts == report.relations_in_file == expected["relations"]
    assert (report.entities, report.mentions) == (expected["entities"], expected["mentions"])
    assert report.excluded_pairs == expected["excluded"]
    by_pmid = {d.title: d for d in data}
    assert set(by_pmid) == {d.title for d in pubtator}

    def concept_facts(doc):
        concepts = doc.extra["concepts"]
        return {(concepts[f.head], concepts[f.tail], f.relation) for f in doc.facts}

    # Measured: the same concepts and the same facts in all 500 abstracts of each split; entity order
    # differs in 2 per split, where a composite mention ties two concepts (the .data file lost its order);
    # the sentences differ in ~50 per split (its splitter cuts after "i.v.", ours does not).
    same_concepts = sum(set(d.extra["concepts"]) == set(by_pmid[d.title].extra["concepts"]) for d in pubtator)
    same_facts = sum(concept_facts(d) == concept_facts(by_pmid[d.title]) for d in pubtator)
    same_order = sum(d.extra["concepts"] == by_pmid[d.title].extra["concepts"] for d in pubtator)
    assert same_concepts == same_facts == DOCUMENTS_PER_FILE
    assert same_order == DOCUMENTS_PER_FILE - 2
    assert all([len(e) for e in d.entities] == [len(e) for e in by_pmid[d.title].entities]
               for d in pubtator if d.extra["concepts"] == by_pmid[d.title].extra["concepts"])


def test_read_report_is_a_sum():
    assert ReadReport() + ReadReport(facts=2, dropped_relations=("x",)) == ReadReport(facts=2, dropped_relations=("x",))


def test_paee_data_convert_writes_docred_json_and_says_what_it_dropped(tmp_path):
    import subprocess
    import sys

    from paee.data.docred import read_documents

    source, out = tmp_path / "cdr.PubTator.txt", tmp_path / "cdr.json"
    source.write_text(PUBTATOR, encoding="utf-8")
    done = subprocess.run([str(Path(sys.executable).parent / "paee-data"), "convert", str(source), "--format",
                           "pubtator", "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 unlinked mentions dropped" in done.stdout and "1 dropped" in done.stdout
    (doc,) = read_documents(out, entity_types=None)  # the schema comes from the data
    assert {doc.entity_type(e) for e in range(doc.num_entities)} == set(CDR_ENTITY_TYPES)
    assert {fact.relation for fact in doc.facts} == {"CID"}
