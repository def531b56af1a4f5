"""benchmarks/raw_text.py: the rebuilt text, the detection counts and the end-to-end scoring.

The end-to-end scoring is checked with an oracle: when the "detected" entities are the gold ones, the
alignment must be the identity and the detected row must equal the gold rebuilt-text row exactly.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import raw_text  # noqa: E402

from paee.data.detect import DETECTION_KEY  # noqa: E402
from paee.data.docred import write_documents  # noqa: E402
from paee.data.schema import Document, Mention  # noqa: E402

DOC = Document(title="t", sents=(("Ada", "Lovelace", "met", "Babbage", "."), ("Lovelace", "left", "(", "1833", ")")),
               entities=((Mention("Ada Lovelace", 0, 0, 2, "PER"), Mention("Lovelace", 1, 0, 1, "PER")),
                         (Mention("Babbage", 0, 3, 4, "PER"),), (Mention("1833", 1, 3, 4, "TIME"),)))


def test_rebuilt_text_keeps_every_gold_span():
    for detok in (False, True):
        text, gold = raw_text.rebuild_text(DOC, detok=detok)
        assert [[text[s:e] for s, e in entity.mentions] for entity in gold] == [
            ["Ada Lovelace", "Lovelace"], ["Babbage"], ["1833"]]
    assert raw_text.rebuild_text(DOC, detok=True)[0] == "Ada Lovelace met Babbage. Lovelace left (1833)"


def test_alignment_and_detection_counts():
    _, gold = raw_text.rebuild_text(DOC)
    E = raw_text.Entity
    found = [E("PER", [gold[0].mentions[1], gold[1].mentions[0]]), E("PER", [gold[0].mentions[0]]), E("MISC", [(3, 4)])]
    # found[0] overlaps Lovelace and Babbage once each: the first wins; found[2] (3..4) lies inside "Ada Lovelace"
    assert raw_text.align(gold, found) == [0, 0, 0]
    assert raw_text.align(gold, [E("TIME", [(100, 104)])]) == [None]
    counts: Counter = Counter()
    raw_text.score_document(gold, found[:2], counts)
    assert (counts["gold_entities_found"], counts["found_entities_correct"], counts["gold_entities_split"],
            counts["found_entities_merged"]) == (2, 2, 1, 1)


def test_end_to_end_oracle_detection_equals_gold(tmp_path):
    """Detected entities = gold entities: the detected row is the rebuilt-text row, to the count."""
    from paee.checkpoint import Checkpoint
    from paee.data.featurizer import Featurizer, FeaturizerConfig
    from paee.data.relations import RelationVocab
    from paee.data.synthetic import generate_corpus, rel2id, rel_info
    from paee_bench.checkpoints import raise_threshold, random_model

    docs = generate_corpus(n_docs=6, seed=3)
    relations = RelationVocab.from_rel2id(rel2id(), rel_info())
    model, source = random_model("tiny", docs, relations, FeaturizerConfig(), seed=0)
    # every (pair, relation) above the threshold: every gold fact is predicted, so correct counts are > 0
    raise_threshold(model, Featurizer(source.tokenizer, FeaturizerConfig(), relations), docs, 10**6)
    Checkpoint.from_model(model, source.tokenizer).save(tmp_path / "best.pt")
    write_documents(tmp_path / "docs.json", docs)
    prepared = [raw_text.rebuild_text(doc) for doc in docs]
    oracle = [{"title": doc.title, "text": text, DETECTION_KEY: {},
               "entities": [{"type": e.type, "mentions": [{"start": s, "end": t} for s, t in e.mentions]}
                            for e in gold]} for doc, (text, gold) in zip(docs, prepared)]
    args = argparse.Namespace(checkpoint=tmp_path / "best.pt", device="cpu", batch_size=4, docs=tmp_path / "docs.json",
                              limit=None)
    e2e = raw_text.end_to_end(args, docs, prepared, oracle)
    assert e2e["gold_rebuilt_text"]["refused_documents"] == 0
    assert e2e["gold_rebuilt_text"]["predictions"] > 0 and e2e["gold_rebuilt_text"]["correct"] > 0
    same = ("f1", "precision", "recall", "predictions", "correct", "gold_facts")
    assert {k: e2e["detected"][k] for k in same} == {k: e2e["gold_rebuilt_text"][k] for k in same}
    assert e2e["detected"]["reachable_recall"] == 1.0 and e2e["gold_rebuilt_text"]["recall"] == 1.0
    assert e2e["gold_docred_words"]["gold_facts"] == e2e["detected"]["gold_facts"]
