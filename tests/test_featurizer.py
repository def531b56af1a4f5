"""Featurizer and collate: exact contract shapes, marker placement, limits, truncation, real corpora."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections.abc import Sequence

import numpy as np
import pytest
from tokenizers import Tokenizer

from paee.data.errors import DocumentError, LimitError, PaeeDataError
from paee.runtime.contract import DOCUMENT_FIELDS, MODEL_INPUTS
from paee.data.featurizer import DocFeatures, Featurizer, FeaturizerConfig, collate, ordered_pairs, pair_position
from paee.data.relations import RelationVocab
from paee.data.schema import Document, Fact, Mention
from paee.data.tokenizer import TokenizerSpec, build_wordpiece_tokenizer

#: Odd sizes so that a mixed-up dimension fails the shape checks.
N, M, S, R = 7, 3, 5, 5
RELATIONS = RelationVocab.from_ids(["P1", "P2", "P3", "P4"])  # R = 5 with Na


def make_doc(
    sents: Sequence[str],
    entities: Sequence[Sequence[tuple[int, int, int]]],
    types: Sequence[str] | None = None,
    facts: Sequence[tuple[int, int, str]] = (),
    title: str = "Doc",
    index: int = 0,
) -> Document:
    """A Document from space-separated sentences and (sent_id, start, end) mention spans."""
    words = tuple(tuple(s.split()) for s in sents)
    types = types or ["PER"] * len(entities)
    ents = tuple(
        tuple(Mention(" ".join(words[s][a:b]), s, a, b, t) for s, a, b in mentions)
        for mentions, t in zip(entities, types)
    )
    return Document(title, words, ents, tuple(Fact(h, t, r) for h, t, r in facts), index)


# Alice(0) met Bob(1) in Paris(2) . / Bob(1) left Paris(2) for New York(3) .
SIMPLE = make_doc(
    ["Alice met Bob in Paris .", "Bob left Paris for New York ."],
    [[(0, 0, 1)], [(0, 2, 3), (1, 0, 1)], [(0, 4, 5), (1, 2, 3)], [(1, 4, 6)]],
    types=["PER", "PER", "LOC", "LOC"],
    facts=[(0, 1, "P1"), (1, 2, "P2"), (1, 3, "P2"), (0, 2, "P3")],
    title="Simple",
)


@pytest.fixture
def small_config() -> FeaturizerConfig:
    return FeaturizerConfig(max_entities=N, max_mentions=M, max_sentences=S)


def tokens(tok: Tokenizer, f: DocFeatures) -> list[str]:
    return [tok.id_to_token(int(i)) for i in f.input_ids]


# --- configuration -------------------------------------------------------------------------------


def test_config_json_round_trip() -> None:
    cfg = FeaturizerConfig(max_entities=9, entity_types=("A", "B"), truncate=True)
    assert FeaturizerConfig.from_json(cfg.to_json()) == cfg
    assert FeaturizerConfig.from_json(FeaturizerConfig().to_json()) == FeaturizerConfig()
    assert cfg.num_entity_types == 3
    with pytest.raises(PaeeDataError, match="invalid featurizer config"):
        FeaturizerConfig.from_json({"max_entity": 3})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_entities": 0}, "max_entities must be a positive integer"),
        ({"max_length": 8193}, "exceeds 8192"),
        ({"marker": ""}, "marker must be"),
        ({"entity_types": ("A", "A")}, "entity_types must be distinct"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict, match: str) -> None:
    with pytest.raises(PaeeDataError, match=match):
        FeaturizerConfig(**kwargs)


# --- one document --------------------------------------------------------------------------------


def test_markers_wrap_every_mention(tiny_tokenizer: Tokenizer, small_config: FeaturizerConfig) -> None:
    f = Featurizer(tiny_tokenizer, small_config).featurize(SIMPLE)
    assert tokens(tiny_tokenizer, f) == (
        "[CLS] * Alice * met * Bob * in * Paris * . * Bob * left * Paris * for * New York * . [SEP]".split()
    )
    marker = tiny_tokenizer.token_to_id("*")
    assert f.mention_pos[:4].tolist() == [[1, 0, 0], [5, 13, 0], [9, 17, 0], [21, 0, 0]]
    assert (f.input_ids[f.mention_pos[f.mention_mask > 0]] == marker).all()
    assert f.mention_mask[:4].tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 0], [1, 0, 0]]
    assert f.entity_type.tolist() == [1, 1, 3, 3, 0, 0, 0]  # PER = 1, LOC = 3, padding 0
    assert f.entity_mask.tolist() == [1, 1, 1, 1, 0, 0, 0]
    assert f.num_entities == 4
    # sentence 0 = "* Alice * ... * Paris * ." = tokens [1, 13), sentence 1 up to the final [SEP]
    assert f.sent_span.tolist() == [[1, 13], [13, 26], [0, 0], [0, 0], [0, 0]]
    assert f.sent_mask.tolist() == [1, 1, 0, 0, 0]
    assert f.facts.shape == (0, 3)  # no relation vocabulary given
    assert f.title == "Simple" and f.index == 0 and f.lost_mentions == []


def test_mentions_sharing_a_start_share_one_marker(tiny_tokenizer: Tokenizer) -> None:
    # "New York" and "New" start together; "New York" and "York" end together
    doc = make_doc(["New York and New York ."], [[(0, 0, 2)], [(0, 0, 1), (0, 3, 5)], [(0, 4, 5)]],
                   types=["LOC", "LOC", "LOC"])
    f = Featurizer(tiny_tokenizer).featurize(doc)
    assert tokens(tiny_tokenizer, f) == "[CLS] * New * York * and * New * York * . [SEP]".split()
    assert f.mention_pos[:3, :2].tolist() == [[1, 0], [1, 7], [9, 0]]


def test_shapes_and_dtypes_follow_the_contract(tiny_tokenizer: Tokenizer, small_config: FeaturizerConfig) -> None:
    other = make_doc(["Carol works for Acme Corporation .", "Carol lives in London ."],
                     [[(0, 0, 1), (1, 0, 1)], [(0, 3, 5)], [(1, 3, 4)]], types=["PER", "ORG", "LOC"],
                     facts=[(0, 1, "P4")], index=1)
    featurizer = Featurizer(tiny_tokenizer, small_config, RELATIONS)
    feats = featurizer.featurize_many([SIMPLE, other])
    f = feats[0]
    per_doc = {
        "input_ids": (np.int64, (f.num_tokens,)),
        "mention_pos": (np.int64, (N, M)),
        "mention_mask": (np.float32, (N, M)),
        "entity_type": (np.int64, (N,)),
        "entity_mask": (np.float32, (N,)),
        "sent_span": (np.int64, (S, 2)),
        "sent_mask": (np.float32, (S,)),
        "same_sent": (np.int64, (N, N)),
        "facts": (np.int64, (4, 3)),
    }
    for name, (dtype, shape) in per_doc.items():
        value = getattr(f, name)
        assert value.dtype == dtype and value.shape == shape, name

    batch = collate(feats, featurizer.spec.pad_id, num_relations=R)
    B, L = 2, 32  # longest document: 27 tokens, rounded up to a multiple of 8
    P = 4 * 3  # the most ordered pairs: the 4-entity document's
    contract = {
        "input_ids": (np.int64, (B, L)),
        "attention_mask": (np.int64, (B, L)),
        "mention_pos": (np.int64, (B, N, M)),
        "mention_mask": (np.float32, (B, N, M)),
        "entity_type": (np.int64, (B, N)),
        "entity_mask": (np.float32, (B, N)),
        "sent_span": (np.int64, (B, S, 2)),
        "sent_mask": (np.float32, (B, S)),
        "same_sent": (np.int64, (B, N, N)),
        "pair_index": (np.int64, (B, P, 2)),
        "pair_mask": (np.float32, (B, P)),
        "title": (np.object_, (B, 1)),
        "warnings": (np.object_, (B, 1)),
        "labels": (np.float32, (B, P, R)),
        "has_relation": (np.float32, (B, P)),
        "subj_roles": (np.float32, (B, N, R)),
        "obj_roles": (np.float32, (B, N, R)),
        "evidence": (np.float32, (B, P, S)),
    }
    assert set(batch) == set(contract)
    for name, (dtype, shape) in contract.items():
        assert batch[name].dtype == dtype and batch[name].shape == shape, name
    targets = {"labels", "has_relation", "subj_roles", "obj_roles", "evidence"}
    assert collate(feats, 0).keys() == contract.keys() - targets
    # padding uses the pad id and the attention mask marks real tokens only
    n1 = feats[1].num_tokens
    assert (batch["input_ids"][1, n1:] == featurizer.spec.pad_id).all()
    assert batch["attention_mask"].sum(axis=1).tolist() == [f.num_tokens, n1]
    # each document's ordered pairs first, row-major; the 3-entity document's 6 pairs, then padding
    assert batch["pair_mask"].sum(axis=1).tolist() == [12, 6]
    assert batch["pair_index"][1, :6].tolist() == [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]]
    assert (batch["pair_index"][1, 6:] == 0).all()
    # the collated keys are the contract's featurizer tensors (paee.runtime.contract), nothing else
    assert set(collate(feats, 0)) == set(MODEL_INPUTS + DOCUMENT_FIELDS)


def test_collate_targets(tiny_tokenizer: Tokenizer, small_config: FeaturizerConfig) -> None:
    featurizer = Featurizer(tiny_tokenizer, small_config, RELATIONS)
    f = featurizer.featurize(SIMPLE)
    assert f.facts.tolist() == [[0, 1, 1], [1, 2, 2], [1, 3, 2], [0, 2, 3]]
    b = collate([f], featurizer.spec.pad_id, num_relations=R)
    labels, pair_mask, pair_index = b["labels"][0], b["pair_mask"][0], b["pair_index"][0]
    n = 4
    assert pair_mask.tolist() == [1.0] * (n * (n - 1))  # no padding for a batch of one
    assert [tuple(p) for p in pair_index] == [(s, o) for s in range(n) for o in range(n) if s != o]
    positives = {(*pair_index[p], r) for p, r in zip(*np.nonzero(labels[:, 1:]))}
    assert positives == {(0, 1, 0), (1, 2, 1), (1, 3, 1), (0, 2, 2)}  # r - 1
    assert (labels[:, 0] == (labels[:, 1:].sum(-1) == 0)).all()  # the TH class on every pair without one
    assert {tuple(pair_index[p]) for p in np.flatnonzero(b["has_relation"][0])} == {(0, 1), (1, 2), (1, 3), (0, 2)}
    subj, obj = b["subj_roles"][0], b["obj_roles"][0]
    assert subj[:, 1:].nonzero()[0].tolist() == [0, 0, 1]  # entity 0: P1, P3; entity 1: P2
    assert subj[:, 0].tolist() == [0, 0, 1, 1, 0, 0, 0]  # entities 2, 3 head nothing; padding 0
    assert obj[:, 0].tolist() == [1, 0, 0, 0, 0, 0, 0]
    assert obj[1, 1] == 1 and obj[2, 2] == 1 and obj[2, 3] == 1 and obj[3, 2] == 1


def test_collate_errors(tiny_tokenizer: Tokenizer, small_config: FeaturizerConfig) -> None:
    f = Featurizer(tiny_tokenizer, small_config).featurize(SIMPLE)
    g = Featurizer(tiny_tokenizer).featurize(SIMPLE)
    with pytest.raises(PaeeDataError, match="different shapes"):
        collate([f, g], 0)
    with pytest.raises(PaeeDataError, match="at least one"):
        collate([], 0)
    assert collate([f], 0, pad_to_multiple=1)["input_ids"].shape == (1, f.num_tokens)
    assert collate([f], 0, max_length=30)["input_ids"].shape == (1, 30)  # capped, not rounded to 32


def test_same_sent(tiny_tokenizer: Tokenizer, small_config: FeaturizerConfig) -> None:
    f = Featurizer(tiny_tokenizer, small_config).featurize(SIMPLE)
    expected = np.zeros((N, N), dtype=np.int64)
    expected[:4, :4] = [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 1]]
    assert (f.same_sent == expected).all()


def test_facts_with_unknown_relation(tiny_tokenizer: Tokenizer) -> None:
    doc = make_doc(["Alice met Bob ."], [[(0, 0, 1)], [(0, 2, 3)]], facts=[(0, 1, "P99")], title="T", index=4)
    with pytest.raises(DocumentError, match=r"document 4 \('T'\), field 'labels\[0\].r': relation 'P99'"):
        Featurizer(tiny_tokenizer, relations=RELATIONS).featurize(doc)


def test_unknown_entity_type(tiny_tokenizer: Tokenizer) -> None:
    doc = make_doc(["Alice met Bob ."], [[(0, 0, 1)], [(0, 2, 3)]], types=["PER", "ANIMAL"])
    with pytest.raises(DocumentError, match=r"'vertexSet\[1\]\[0\].type': unknown entity type 'ANIMAL'"):
        Featurizer(tiny_tokenizer).featurize(doc)


def test_invalid_span(tiny_tokenizer: Tokenizer) -> None:
    doc = make_doc(["Alice met Bob ."], [[(0, 0, 1)], [(0, 2, 9)]])
    with pytest.raises(DocumentError, match=r"'vertexSet\[1\]\[0\].pos'"):
        Featurizer(tiny_tokenizer).featurize(doc)


# --- limits and truncation -------------------------------------------------------------------------


def test_limit_messages(tiny_tokenizer: Tokenizer, small_config: FeaturizerConfig) -> None:
    featurizer = Featurizer(tiny_tokenizer, small_config)
    many_entities = make_doc(["Alice met Bob in Paris and Oxford and London ."], [[(0, i, i + 1)] for i in range(8)],
                             title="Crowd", index=3)
    with pytest.raises(LimitError) as info:
        featurizer.featurize(many_entities)
    assert str(info.value) == (
        "document 3 ('Crowd'), field 'vertexSet': has 8 entities, more than max_entities=7 "
        "(a limit of the model, set when it is trained: paee-train --max-entities)"
    )
    many_mentions = make_doc(["Bob Bob Bob Bob ."], [[(0, 0, 1), (0, 1, 2), (0, 2, 3), (0, 3, 4)]], title="Echo")
    with pytest.raises(LimitError) as info:
        featurizer.featurize(many_mentions)
    assert str(info.value) == (
        "document 0 ('Echo'), field 'vertexSet[0]': entity has 4 mentions, more than max_mentions=3 "
        "(a limit of the model, set when it is trained: paee-train --max-mentions)"
    )
    many_sents = make_doc(["Bob ."] * 6, [[(0, 0, 1)]], title="Long")
    with pytest.raises(LimitError) as info:
        featurizer.featurize(many_sents)
    assert str(info.value) == (
        "document 0 ('Long'), field 'sents': has 6 sentences, more than max_sentences=5 "
        "(a limit of the model, set when it is trained: paee-train --max-sentences)"
    )
    short = Featurizer(tiny_tokenizer, FeaturizerConfig(max_length=20))
    with pytest.raises(LimitError) as info:
        short.featurize(SIMPLE)
    assert str(info.value) == (
        "document 0 ('Simple'), field 'sents': has 27 wordpieces with entity markers and special tokens, "
        "more than max_length=20 (raise the limit with --max-length (at most 8192), or ask to cut it: --truncate "
        'on a command, "options": {"truncate": true} in a served request (the lost mentions are reported))'
    )
    huge = make_doc(["Bob " * 8200 + "."], [[(0, 0, 1)]], title="Huge")
    with pytest.raises(LimitError) as info:
        Featurizer(tiny_tokenizer, FeaturizerConfig(max_length=8192)).featurize(huge)
    assert str(info.value) == (
        "document 0 ('Huge'), field 'sents': has 8205 wordpieces with entity markers and special tokens, "
        'more than max_length=8192 (or ask to cut it: --truncate on a command, "options": {"truncate": true} in a '
        "served request (the lost mentions are reported))"
    )


def test_truncation_drops_and_reports_mentions(tiny_tokenizer: Tokenizer, caplog: pytest.LogCaptureFixture) -> None:
    # tokens: [CLS] * Alice * met * Bob * in * Paris * . | * Bob * left * Paris * for * New York * . [SEP]
    #          0     1 2     3 4   5 6   7 8  9 10    11 12  13 14 15 16  17 18   19 20  21 22  23  24 25 26
    config = FeaturizerConfig(max_entities=N, max_mentions=M, max_sentences=S, max_length=20, truncate=True)
    featurizer = Featurizer(tiny_tokenizer, config)
    with caplog.at_level(logging.WARNING, logger="paee.data.featurizer"):
        f = featurizer.featurize(SIMPLE)
    assert f.num_tokens == 20
    assert f.input_ids[-1] == tiny_tokenizer.token_to_id("[SEP]")
    # 18 content tokens kept (indices 1..18): "* Bob *" of sentence 1 (13..15) fits, "* Paris *" (17..19) does not
    assert f.lost_mentions == [(2, 1), (3, 0)]
    assert f.mention_mask[:4].tolist() == [[1, 0, 0], [1, 1, 0], [1, 0, 0], [0, 0, 0]]
    assert f.entity_mask[:4].tolist() == [1, 1, 1, 1]  # New York lost every mention but stays an entity
    assert f.same_sent[3].sum() == 0 and f.same_sent[:, 3].sum() == 0
    assert f.sent_span[:2].tolist() == [[1, 13], [13, 19]]
    assert f.sent_mask[:2].tolist() == [1, 1]
    message = caplog.records[-1].getMessage()
    assert "document 0 ('Simple')" in message and "2 mention(s) lost" in message
    assert "entity 2 mention 1 ('Paris', sentence 1)" in message and "entity 3 mention 0 ('New York', sentence 1)" in message
    assert f.warnings == ["truncated from 27 to max_length=20 wordpieces (truncate was asked for); 2 mention(s) lost",
                          "lost entity 2 mention 1 ('Paris', sentence 1)", "lost entity 3 mention 0 ('New York', sentence 1)"]


def test_truncation_is_the_callers_choice_per_call_and_per_document(tiny_tokenizer: Tokenizer) -> None:
    featurizer = Featurizer(tiny_tokenizer, FeaturizerConfig(max_entities=N, max_mentions=M, max_sentences=S, max_length=20))
    cut, refused = featurizer.featurize_many([SIMPLE, SIMPLE], errors="collect", truncate=[True, False])
    assert cut.num_tokens == 20 and cut.lost_mentions == [(2, 1), (3, 0)]
    assert isinstance(refused, LimitError) and "max_length=20" in str(refused)
    assert featurizer.featurize_many([SIMPLE], truncate=True)[0].warnings
    with pytest.raises(PaeeDataError, match="1 choices for 2 documents"):
        featurizer.featurize_many([SIMPLE, SIMPLE], truncate=[True])


def test_truncation_masks_sentences_that_are_cut_entirely(tiny_tokenizer: Tokenizer) -> None:
    config = FeaturizerConfig(max_length=12, truncate=True)
    f = Featurizer(tiny_tokenizer, config).featurize(SIMPLE)
    assert f.sent_span[:2].tolist() == [[1, 11], [11, 11]]
    assert f.sent_mask[:2].tolist() == [1, 0]
    assert f.lost_mentions == [(1, 1), (2, 0), (2, 1), (3, 0)]  # Paris' first mention ends at token 11


def test_collect_errors(tiny_tokenizer: Tokenizer, small_config: FeaturizerConfig) -> None:
    bad = make_doc(["Bob ."] * 6, [[(0, 0, 1)]], title="Long", index=1)
    results = Featurizer(tiny_tokenizer, small_config).featurize_many([SIMPLE, bad, SIMPLE], errors="collect")
    assert isinstance(results[0], DocFeatures) and isinstance(results[2], DocFeatures)
    assert isinstance(results[1], LimitError) and results[1].index == 1 and results[1].field == "sents"
    with pytest.raises(LimitError):
        Featurizer(tiny_tokenizer, small_config).featurize_many([SIMPLE, bad])
    with pytest.raises(PaeeDataError, match="errors must be"):
        Featurizer(tiny_tokenizer).featurize_many([SIMPLE], errors="ignore")  # type: ignore[call-overload]


# --- real corpora --------------------------------------------------------------------------------


def brute_force_same_sent(doc: Document, n_max: int) -> np.ndarray:
    sents = [{m.sent_id for m in mentions} for mentions in doc.entities]
    out = np.zeros((n_max, n_max), dtype=np.int64)
    for s, o in itertools.product(range(len(sents)), repeat=2):
        out[s, o] = bool(sents[s] & sents[o])
    return out


@pytest.fixture(scope="module")
def real_corpus(redocred_dev_path, docred_test_path, rel2id_path):
    from paee.data.docred import read_documents

    relations = RelationVocab.from_files(rel2id_path)
    docs = read_documents(redocred_dev_path, relations=relations) + read_documents(docred_test_path)
    # the tokenizer learns the corpus itself: vocabulary ~8000, no checkpoint, no download
    tokenizer = build_wordpiece_tokenizer([" ".join(w for s in d.sents for w in s) for d in docs], vocab_size=8000)
    return docs, tokenizer, relations


@pytest.mark.realdata
@pytest.mark.slow
def test_real_corpora_featurize_without_loss(real_corpus) -> None:
    docs, tokenizer, relations = real_corpus
    assert len(docs) == 1500
    featurizer = Featurizer(tokenizer, relations=relations)
    spec = featurizer.spec
    start = time.perf_counter()
    results = featurizer.featurize_many(docs, errors="collect")
    elapsed = time.perf_counter() - start
    errors = [r for r in results if not isinstance(r, DocFeatures)]
    assert errors == []
    longest = max(f.num_tokens for f in results)
    print(f"\nfeaturized {len(docs)} documents in {elapsed:.2f} s; longest {longest} wordpieces with markers")
    assert longest <= featurizer.config.max_length

    # each sentence's tokens without markers are the sentence's own wordpieces
    sentence_ids = [e.ids for e in tokenizer.encode_batch(
        [list(s) for d in docs for s in d.sents], is_pretokenized=True, add_special_tokens=False)]
    next_sentence = 0
    for doc, f in zip(docs, results):
        n = doc.num_entities
        assert f.lost_mentions == []
        assert f.entity_mask.sum() == n and f.num_entities == n
        assert (f.mention_mask[:n].sum(axis=1) >= 1).all()
        assert f.mention_mask.sum() == sum(len(m) for m in doc.entities)
        assert (f.input_ids[f.mention_pos[f.mention_mask > 0]] == spec.marker_id).all()
        assert f.facts.shape == (len(doc.facts), 3)

        num_sents = len(doc.sents)
        spans = f.sent_span[:num_sents]
        assert spans[0, 0] == len(spec.start_tokens)
        assert spans[-1, 1] == f.num_tokens - len(spec.suffix_tokens)
        assert (spans[1:, 0] == spans[:-1, 1]).all()
        assert f.sent_mask.sum() == num_sents
        for k, (a, b) in enumerate(spans):
            got = f.input_ids[a:b]
            want = np.asarray(sentence_ids[next_sentence + k])
            assert (got[got != spec.marker_id] == want[want != spec.marker_id]).all(), (doc.where, k)
        next_sentence += num_sents
        # every mention's start marker lies inside its own sentence
        for e, mentions in enumerate(doc.entities):
            for m, mention in enumerate(mentions):
                a, b = spans[mention.sent_id]
                assert a <= f.mention_pos[e, m] < b

        assert (f.same_sent == brute_force_same_sent(doc, featurizer.config.max_entities)).all(), doc.where

    batch = collate(results[:8], spec.pad_id, num_relations=len(relations))
    assert batch["labels"][..., 1:].sum() == sum(len(d.facts) for d in docs[:8])


@pytest.mark.realdata
def test_real_spec_is_wordpiece(real_corpus) -> None:
    _, tokenizer, _ = real_corpus
    spec = TokenizerSpec.from_tokenizer(tokenizer)
    assert spec.pad_id == 0 and spec.start_tokens == (2,) and spec.suffix_tokens == (3,)


def test_evidence_sentences_become_pair_by_sentence_targets(tiny_tokenizer: Tokenizer, small_config: FeaturizerConfig) -> None:
    doc = make_doc(["Alice met Bob in Paris .", "Bob left Paris for New York ."],
                   [[(0, 0, 1)], [(0, 2, 3), (1, 0, 1)], [(0, 4, 5), (1, 2, 3)], [(1, 4, 6)]],
                   types=["PER", "PER", "LOC", "LOC"])
    doc = dataclasses.replace(doc, facts=(Fact(0, 1, "P1", (0,)), Fact(1, 3, "P2", (0, 1)), Fact(0, 2, "P3")))
    f = Featurizer(tiny_tokenizer, small_config, RELATIONS).featurize(doc)
    assert sorted(map(tuple, f.evidence.tolist())) == [(0, 1, 0), (1, 3, 0), (1, 3, 1)]
    batch = collate([f], 0, num_relations=R)
    expected = np.zeros((1, 4 * 3, S), dtype=np.float32)  # rows: the 12 ordered pairs of 4 entities
    row = {tuple(p): i for i, p in enumerate(batch["pair_index"][0].tolist())}
    expected[0, row[0, 1], 0] = expected[0, row[1, 3], 0] = expected[0, row[1, 3], 1] = 1.0
    np.testing.assert_array_equal(batch["evidence"], expected)
    # unlabelled features (no relation vocabulary) carry no evidence either
    assert Featurizer(tiny_tokenizer, small_config).featurize(doc).evidence.shape == (0, 3)


@pytest.mark.parametrize("n", [0, 1, 2, 5, 42])
def test_pair_position_is_the_row_of_ordered_pairs(n: int) -> None:
    pairs = ordered_pairs(n)
    assert pairs.shape == (n * (n - 1), 2) and (pairs[:, 0] != pairs[:, 1]).all()
    np.testing.assert_array_equal(pair_position(pairs[:, 0], pairs[:, 1], n), np.arange(len(pairs)))
