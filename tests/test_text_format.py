"""The plain-text input form: sentence splitter, tokenizer, character-span mapping and its errors."""

from __future__ import annotations

import pytest

from paee.data import DocumentError, RelationVocab
from paee.data.docred import parse_document, read_documents
from paee.data.schema import Fact, Mention
from paee.data.text_format import parse_text_document, split_sentences, tokenize

TEXT = "Ada Lovelace was born in London. Lovelace wrote notes on the Analytical Engine."


def span(text: str, piece: str, occurrence: int = 0) -> dict[str, int]:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(piece, start + 1)
    return {"start": start, "end": start + len(piece)}


def text_doc(text: str = TEXT, entities=None, **extra):
    if entities is None:
        entities = [
            {"type": "PER", "mentions": [span(text, "Ada Lovelace"), span(text, "Lovelace", 1)]},
            {"type": "LOC", "mentions": [span(text, "London")]},
            {"type": "MISC", "mentions": [span(text, "Analytical Engine")]},
        ]
    return {"title": "Ada", "text": text, "entities": entities, **extra}


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def words(text: str) -> list[str]:
    return [text[s:e] for s, e in tokenize(text)]


def error_of(obj) -> str:
    with pytest.raises(DocumentError) as info:
        parse_document(obj, 2)
    return str(info.value)


# --- splitter and tokenizer ---------------------------------------------------------------------


def test_sentence_splitter_rules():
    assert sentences("It rained. Then it stopped! Why? 2 cats came. \"Yes,\" he said.") == [
        "It rained.", "Then it stopped!", "Why?", "2 cats came.", "\"Yes,\" he said."]
    # No split before a lowercase word, nor after abbreviations, initials and dotted letters.
    assert sentences("He met Mr. Smith and Dr. Who in St. Louis, i.e. here. J. R. R. Tolkien came.") == [
        "He met Mr. Smith and Dr. Who in St. Louis, i.e. here.", "J. R. R. Tolkien came."]
    assert sentences("It grew in the U.S. economy. e.g. this stays.") == ["It grew in the U.S. economy. e.g. this stays."]
    # Closing quotes and brackets stay with their sentence; a blank line always ends one.
    assert sentences("He said \"stop.\" She left. (It ended.) Next.") == [
        "He said \"stop.\"", "She left.", "(It ended.)", "Next."]
    assert sentences("  Title line\n\nFirst sentence.  ") == ["Title line", "First sentence."]
    assert sentences("   ") == []


def test_tokenizer_rules():
    assert words("The U.S. paid $1,000.50 in 1990-91 (e.g. Jean-Paul's 3rd car).") == [
        "The", "U.S.", "paid", "$", "1,000.50", "in", "1990-91", "(", "e.g.", "Jean", "-", "Paul", "'", "s",
        "3rd", "car", ")", "."]
    assert words("Zürich, 1990s: ok!") == ["Zürich", ",", "1990s", ":", "ok", "!"]
    assert tokenize("ab cd", 3) == [(3, 5)]


# --- conversion ---------------------------------------------------------------------------------


def test_text_document_converts_to_words_and_word_spans():
    d = parse_text_document(text_doc(labels=[{"h": 0, "t": 1, "r": "P19"}]), 5)
    assert d.index == 5 and d.title == "Ada"
    assert d.sents == (("Ada", "Lovelace", "was", "born", "in", "London", "."),
                       ("Lovelace", "wrote", "notes", "on", "the", "Analytical", "Engine", "."))
    assert d.entities == (
        (Mention("Ada Lovelace", 0, 0, 2, "PER"), Mention("Lovelace", 1, 0, 1, "PER")),
        (Mention("London", 0, 5, 6, "LOC"),),
        (Mention("Analytical Engine", 1, 5, 7, "MISC"),),
    )
    assert d.facts == (Fact(0, 1, "P19"),)
    assert d.extra["text"] == TEXT
    assert d.extra["word_offsets"][0][5] == (25, 31)


def test_reader_detects_the_form_per_document():
    docred = parse_text_document(text_doc(), 0).to_json()
    docs = read_documents([text_doc(), docred])
    assert [d.index for d in docs] == [0, 1]
    assert docs[0] == parse_text_document(text_doc(), 0)
    assert docs[1].entities == docs[0].entities and docs[1].sents == docs[0].sents


def test_mention_may_be_a_word_inside_a_hyphenated_word():
    text = "Jean-Paul Sartre lived in Paris."
    d = parse_text_document(text_doc(text, [{"type": "PER", "mentions": [span(text, "Paul")]},
                                            {"type": "LOC", "mentions": [span(text, "Paris")]}]), 0)
    assert d.entities[0][0] == Mention("Paul", 0, 2, 3, "PER")


def test_labels_are_validated_like_docred_labels():
    vocab = RelationVocab.from_ids(["P19"])
    with pytest.raises(DocumentError, match=r"field 'labels\[0\]\.r': unknown relation 'P20'"):
        parse_text_document(text_doc(labels=[{"h": 0, "t": 1, "r": "P20"}]), 0, relations=vocab)
    with pytest.raises(DocumentError, match=r"field 'labels\[0\]\.t': entity 3 is out of range"):
        parse_text_document(text_doc(labels=[{"h": 0, "t": 3, "r": "P19"}]), 0)


# --- errors -------------------------------------------------------------------------------------

PREFIX = "document 2 ('Ada'), field "


def mention_error(mention: dict, text: str = TEXT) -> str:
    entities = [{"type": "PER", "mentions": [span(text, "Ada Lovelace")]},
                {"type": "LOC", "mentions": [span(text, "London"), mention]}]
    return error_of(text_doc(text, entities))


def test_offsets_outside_the_text():
    assert mention_error({"start": 70, "end": 90}) == (
        PREFIX + "'entities[1].mentions[1]': span [70, 90) lies outside the text (79 characters)")
    assert mention_error({"start": -1, "end": 3}) == (
        PREFIX + "'entities[1].mentions[1]': span [-1, 3) lies outside the text (79 characters)")


def test_start_not_before_end():
    assert mention_error({"start": 9, "end": 9}) == (
        PREFIX + "'entities[1].mentions[1]': start 9 >= end 9: the span [9, 9) is empty")


def test_offsets_that_cut_a_word():
    assert mention_error({"start": 33, "end": 38}) == (
        PREFIX + "'entities[1].mentions[1]': span [33, 38) 'Lovel' does not end at a word boundary "
                 "(at 'n London. Lovel' | 'ace wrote notes'); a mention must cover whole words")
    assert mention_error({"start": 35, "end": 41}) == (
        PREFIX + "'entities[1].mentions[1]': span [35, 41) 'velace' does not start at a word boundary "
                 "(at 'n in London. Lo' | 'velace wrote no'); a mention must cover whole words")
    assert "' Lovelace' does not start at a word boundary" in mention_error({"start": 32, "end": 41})


def test_overlapping_mentions():
    assert mention_error(span(TEXT, "Lovelace")) == (
        PREFIX + "'entities[1].mentions[1]': span [4, 12) 'Lovelace' overlaps mention entities[0].mentions[0] "
                 "[0, 12) 'Ada Lovelace'; mentions must not overlap")


def test_mention_crossing_a_sentence_boundary():
    text = "Pat joined the Bank of St. Kitts. Nevis Branch. It grew."
    assert sentences(text) == ["Pat joined the Bank of St. Kitts.", "Nevis Branch.", "It grew."]
    entities = [{"type": "PER", "mentions": [span(text, "Pat")]},
                {"type": "ORG", "mentions": [span(text, "Bank"), span(text, "St. Kitts. Nevis")]}]
    assert error_of(text_doc(text, entities)) == (
        PREFIX + "'entities[1].mentions[1]': span [23, 39) 'St. Kitts. Nevis' crosses the boundary between "
                 "sentences 0 and 1 (the splitter ends a sentence after 'e Bank of St. Kitts.'); fix the text, "
                 "for example drop the full stop or write the abbreviation without it")


@pytest.mark.parametrize("obj, message", [
    ({"title": "Ada", "text": TEXT}, PREFIX + "'entities': missing (expected a list of entities {type, mentions})"),
    ({"title": "Ada", "text": 5, "entities": []}, PREFIX + "'text': expected a string, got an integer"),
    ({"title": "Ada", "text": " \n ", "entities": []}, PREFIX + "'text': the text has no words"),
    ({"title": "Ada", "text": TEXT, "entities": []}, PREFIX + "'entities': the document has no entities"),
    ({"title": "Ada", "text": TEXT, "entities": [{"mentions": []}]},
     PREFIX + "'entities[0].type': missing (expected an entity type string)"),
    ({"title": "Ada", "text": TEXT, "entities": [{"type": "GPE", "mentions": []}]},
     PREFIX + "'entities[0].type': unknown entity type 'GPE' (known: PER, ORG, LOC, TIME, NUM, MISC)"),
    ({"title": "Ada", "text": TEXT, "entities": [{"type": "PER", "mentions": []}]},
     PREFIX + "'entities[0].mentions': the entity has no mentions"),
    ({"title": "Ada", "text": TEXT, "entities": [{"type": "PER"}]},
     PREFIX + "'entities[0].mentions': missing (expected a list of {start, end})"),
    ({"title": "Ada", "text": TEXT, "entities": ["Ada"]},
     PREFIX + "'entities[0]': expected an object {type, mentions}, got a string"),
    ({"title": "Ada", "text": TEXT, "entities": [{"type": "PER", "mentions": [{"start": 0}]}]},
     PREFIX + "'entities[0].mentions[0].end': expected a character offset (integer), missing"),
    ({"title": "Ada", "text": TEXT, "entities": [{"type": "PER", "mentions": [{"start": "0", "end": 3}]}]},
     PREFIX + "'entities[0].mentions[0].start': expected a character offset (integer), got a string"),
    ({"text": TEXT, "entities": []}, "document 2, field 'title': missing (expected a string)"),
])
def test_structure_errors(obj, message):
    assert error_of(obj) == message
