"""The synthetic corpus: determinism, validity, DocRED-like shape, and facts that the text determines."""

from __future__ import annotations

import json
import re

import pytest

from paee.data import PaeeDataError, RelationVocab
from paee.data.docred import read_documents
from paee.data.stats import corpus_stats
from paee.data.synthetic import (
    RELATIONS, SyntheticConfig, generate_corpus, rel2id, rel_info, write_synthetic_splits,
)

N_DOCS = 300  # the CI corpus size (train 240 + dev 60)


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(SyntheticConfig(), N_DOCS, seed=0)


def test_same_seed_same_corpus_and_longer_corpora_extend_shorter_ones():
    a = generate_corpus(SyntheticConfig(), 20, seed=5)
    assert a == generate_corpus(SyntheticConfig(), 20, seed=5)
    assert generate_corpus(SyntheticConfig(), 8, seed=5) == a[:8]
    b = generate_corpus(SyntheticConfig(), 20, seed=6)
    assert all(x.sents != y.sents for x, y in zip(a, b))
    assert len({d.title for d in a + b}) == 40


def test_every_document_validates_with_the_reader(corpus):
    vocab = RelationVocab.from_rel2id(rel2id(), rel_info())
    assert read_documents([d.to_json() for d in corpus], relations=vocab) == corpus
    for d in corpus:  # the reader merges duplicate facts; the generator must not make any
        assert len({(f.head, f.tail, f.relation) for f in d.facts}) == len(d.facts)


def test_corpus_looks_like_docred(corpus):
    stats = corpus_stats(corpus)
    assert 0.04 <= stats["relational_pair_share"] <= 0.08
    assert stats["entities_max"] == 42 or stats["entities_max"] >= 38
    entities = [d.num_entities for d in corpus]
    assert min(entities) >= 4
    assert sum(5 <= n <= 25 for n in entities) >= 0.75 * N_DOCS
    assert stats["documents_over_max_entities"] == 0
    assert stats["relation_types"] == len(RELATIONS)
    assert stats["mentions_per_entity_max"] >= 4 and stats["mentions_per_entity_mean"] > 1.5
    assert stats["sentences_max"] <= SyntheticConfig().max_sentences
    # Long documents: entity markers add two tokens per mention, so these exceed 512 wordpieces.
    long_docs = [d for d in corpus if d.num_words + 2 * sum(map(len, d.entities)) > 512]
    assert len(long_docs) >= 0.05 * N_DOCS
    assert any(450 <= d.num_words for d in corpus)
    assert stats["words_max"] <= 600
    # Facts inside one sentence and across two; entities without any relation.
    evidence_sizes = {len(f.evidence) for d in corpus for f in d.facts}
    assert evidence_sizes == {1, 2}
    unrelated = [d.num_entities - len({x for f in d.facts for x in (f.head, f.tail)}) for d in corpus]
    assert sum(n > 0 for n in unrelated) >= 0.8 * N_DOCS


def test_entities_are_numbered_by_first_appearance_and_coreferent_mentions_differ(corpus):
    for d in corpus:
        firsts = [min((m.sent_id, m.start) for m in mentions) for mentions in d.entities]
        assert firsts == sorted(firsts)
    people = [mentions for d in corpus for mentions in d.entities if mentions[0].type == "PER" and len(mentions) > 2]
    assert any(len({m.name for m in mentions}) == 2 for mentions in people)  # full name, then surname


def test_reverse_relations_are_different_relations(corpus):
    for d in corpus:
        facts = {(f.head, f.tail, f.relation) for f in d.facts}
        for h, t, r in facts:
            if r == "P1":
                assert (t, h, "P2") in facts and (t, h, "P1") not in facts
            if r == "P3":
                assert (t, h, "P4") in facts
            if r == "P9":
                assert (t, h, "P9") in facts


# --- the text determines the facts -------------------------------------------------------------
# An extractor written from the trigger phrases alone, reading only words and mentions, must recover
# every fact and nothing else: that is what makes the corpus learnable.

_RULES: list[tuple[str, list[tuple[int, int, str]]]] = [
    (r"@0 is the (father|mother) of @1", [(0, 1, "P1"), (1, 0, "P2")]),
    (r"@0 is the (son|daughter) of @1", [(1, 0, "P1"), (0, 1, "P2")]),
    (r"@0 works for @1", [(0, 1, "P3"), (1, 0, "P4")]),
    (r"@0 hired @1", [(1, 0, "P3"), (0, 1, "P4")]),
    (r"@0 was born in @1", [(0, 1, "P5")]),
    (r"@0 (is based in|has its headquarters in) @1", [(0, 1, "P6")]),
    (r"@0 (is a city in|lies in the north of) @1", [(0, 1, "P7")]),
    (r"@0 was founded in @1", [(0, 1, "P8")]),
    (r"@0 is married to @1|@0 and @1 are married", [(0, 1, "P9"), (1, 0, "P9")]),
    (r"@0 (is a member of|joined) @1", [(0, 1, "P10")]),
    (r"@0 was born on @1", [(0, 1, "P11")]),
    (r"@0 was written by @1", [(0, 1, "P12")]),
    (r"@0 wrote @1", [(1, 0, "P12")]),
]
_PRONOUNS = {"He", "She", "It"}


def _clauses(words, mentions):
    """Split a sentence at '; ', ', and', ', while' into (shape, entity ids) with '@k' for the k-th mention."""
    clauses, shape, ids, i = [], [], [], 0
    while i < len(words):
        at = mentions.get(i)
        if at is not None:
            end, entity = at
            shape.append(f"@{len(ids)}")
            ids.append(entity)
            i = end
            continue
        word = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else None
        if word == ";" or (word == "," and nxt in ("and", "while")) or (word == "." and nxt is None):
            clauses.append((shape, ids))
            shape, ids = [], []
            i += 2 if word == "," else 1
            continue
        shape.append(word)
        i += 1
    return clauses


def extract(doc):
    facts = set()
    previous_first_entity = None
    for sid, words in enumerate(doc.sents):
        mentions = {m.start: (m.end, e) for e, ms in enumerate(doc.entities) for m in ms if m.sent_id == sid}
        first = min(mentions.items(), default=None)
        if words[0] in _PRONOUNS:  # the pronoun refers to the entity introduced in the sentence before
            mentions[0] = (1, previous_first_entity)
        for shape, ids in _clauses(list(words), mentions):
            text = " ".join(shape)
            text = text[0].upper() + text[1:]
            for pattern, produced in _RULES:
                if re.fullmatch(pattern, text):
                    facts.update((ids[h], ids[t], r) for h, t, r in produced)
        previous_first_entity = first[1][1] if first else None
    return facts


def test_an_extractor_reading_only_the_text_recovers_every_fact(corpus):
    for d in corpus:
        gold = {(f.head, f.tail, f.relation) for f in d.facts}
        assert extract(d) == gold, d.title


# --- configuration and files --------------------------------------------------------------------


def test_relation_subset_and_small_documents():
    config = SyntheticConfig(relations=("P1", "P5", "P7"), max_entities=8, typical_max_entities=8)
    docs = generate_corpus(config, 30, seed=1)
    assert {f.relation for d in docs for f in d.facts} <= {"P1", "P5", "P7"}
    assert max(d.num_entities for d in docs) <= 8
    assert rel2id(config) == {"Na": 0, "P1": 1, "P5": 2, "P7": 3}
    assert rel_info(config) == {"P1": "parent of", "P5": "place of birth", "P7": "country"}


def test_entity_types_subset():
    config = SyntheticConfig(entity_types=("PER", "ORG", "LOC"))
    docs = generate_corpus(config, 20, seed=2)
    assert {m.type for d in docs for e in d.entities for m in e} == {"PER", "ORG", "LOC"}
    read_documents([d.to_json() for d in docs], entity_types=("PER", "ORG", "LOC"))


@pytest.mark.parametrize("changes, message", [
    ({"relations": ("P99",)}, "unknown or no relation ids"),
    ({"min_entities": 1}, "need 2 <= min_entities"),
    ({"max_entities": 3}, r"max_entities \(3\) < min_entities \(4\)"),
    ({"relational_pair_share": (0.1, 0.05)}, "relational_pair_share"),
    ({"distractors": (3, 1)}, "distractors"),
    ({"entity_types": ("ORG", "LOC")}, "must include 'PER'"),
    ({"max_entities": 400, "names_per_list": 300}, "names_per_list"),
])
def test_bad_configuration(changes, message):
    with pytest.raises(PaeeDataError, match=message):
        SyntheticConfig(**changes)


def test_write_synthetic_splits(tmp_path):
    written = write_synthetic_splits(tmp_path / "syn", sizes={"train": 12, "dev": 4, "test": 3}, seed=3)
    assert sorted(p.name for p in written.values()) == [
        "dev.json", "rel2id.json", "rel_info.json", "test.json", "train.json"]
    vocab = RelationVocab.from_files(written["rel2id"], written["rel_info"])
    assert vocab.ids[0] == "Na" and vocab.num_classes == 13 and vocab.name(1) == "parent of"
    splits = {s: read_documents(written[s], relations=vocab) for s in ("train", "dev", "test")}
    assert [len(splits[s]) for s in ("train", "dev", "test")] == [12, 4, 3]
    titles = [d.title for docs in splits.values() for d in docs]
    assert len(set(titles)) == len(titles)
    assert json.loads(written["rel2id"].read_text())["P12"] == 12
    again = write_synthetic_splits(tmp_path / "again", sizes={"train": 12, "dev": 4, "test": 3}, seed=3)
    assert again["train"].read_bytes() == written["train"].read_bytes()


def test_plain_preset_states_one_fact_per_sentence_in_short_documents():
    docs = generate_corpus(SyntheticConfig.plain(), 120, seed=2)
    assert max(d.num_entities for d in docs) <= 14
    for doc in docs:
        mentions = [0] * len(doc.sents)
        for entity in doc.entities:
            for m in entity:
                mentions[m.sent_id] += 1
        assert max(mentions) <= 2, f"{doc.title}: a plain sentence names at most the two entities of one statement"
        in_sentence = [{m.sent_id for m in entity} for entity in doc.entities]
        for fact in doc.facts:  # every fact is stated in a sentence naming both entities, which is its evidence
            assert fact.evidence and set(fact.evidence) <= in_sentence[fact.head] & in_sentence[fact.tail]
