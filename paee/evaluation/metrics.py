"""DocRED scoring: the official scorer's F1 / Ign F1 (and evidence F1), plus PAEE's pair-level Rela.

Semantics follow ``official_evaluate`` of the DocRED repository's ``evaluation.py`` (as used by ATLOP):

* gold facts are keyed by ``(title, r, h, t)``; ``n_gold`` is the number of distinct keys;
* predictions (``[{"title", "h_idx", "t_idx", "r"}]``, optionally ``"evidence"``) are de-duplicated
  on ``(title, h_idx, t_idx, r)``; every remaining prediction is in the precision denominator, also
  those whose title is not in the gold set (they are never correct);
* Ign F1 removes correct facts "seen in training" - some (head mention name, tail mention name, r)
  of the gold document is a training fact - from the numerator and the denominator of precision;
  recall is not adjusted. The ``1e-5`` in that denominator is the official one, kept so that numbers
  match published results.

Where the official script divides by zero (no predictions, no gold facts) the scores here are 0.

**Evi** P/R/F1, as ``official_evaluate``: every de-duplicated prediction of a known title adds its evidence
sentences to the precision denominator (wrong facts too: claiming evidence for a wrong fact costs
precision); only correct facts add to the numerator, the sentences shared with the gold fact's evidence;
the recall denominator is the gold facts' evidence sentences, all of them (a missed fact's evidence is
missed). A prediction without ``evidence`` counts as an empty set. `Scores.with_evidence` says whether any
prediction carried the field (``paee-eval`` prints Evi only then).

**Rela** (from the PAEE paper) scores the pair-level NA vs non-NA decision: a pair
``(title, h, t)`` is predicted relational when at least one prediction names it (pairs of unknown
titles included, as for facts), and is gold relational when at least one gold label does.

All scores are fractions in [0, 1]; the CLI (``paee.cli.evaluate``) prints percentages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from paee.data.decode import Triple, to_result_records
from paee.data.errors import PaeeDataError
from paee.data.jsonio import read_json
from paee.data.relations import RelationVocab
from paee.data.schema import Document, Mention

#: Added to the Ign precision denominator by the official scorer; kept for comparability.
IGN_EPSILON = 1e-5

#: A training fact as the official scorer stores it: (head mention name, tail mention name, relation id).
TrainFact = tuple[str, str, str]

_REQUIRED_FIELDS: tuple[tuple[str, type], ...] = (("title", str), ("h_idx", int), ("t_idx", int), ("r", str))


@dataclass(frozen=True)
class Scores:
    """Result of :func:`evaluate`; every rate is a fraction in [0, 1].

    Attributes:
        precision, recall, f1: relation-extraction scores over (title, h, t, r) facts.
        ign_precision, ign_f1: precision and F1 ignoring correct facts seen in training.
        rela_precision, rela_recall, rela_f1: pair-level (NA vs non-NA) scores.
        evidence_precision, evidence_recall, evidence_f1: the official evidence scores (0 when the
            predictions carry no evidence).
        n_predictions: distinct predictions (the precision denominator).
        n_gold: distinct gold facts (the recall denominator).
        n_correct: predictions that are gold facts.
        n_correct_in_train: correct predictions whose mention names and relation occur in training.
        n_unknown_titles: distinct prediction titles that are not in the gold set.
        n_predicted_pairs, n_gold_pairs, n_correct_pairs: the counts behind Rela.
        with_evidence: some prediction carries an ``evidence`` field (empty lists included).
        n_predicted_evidence, n_gold_evidence, n_correct_evidence: the sentence counts behind Evi.
    """

    precision: float
    recall: float
    f1: float
    ign_precision: float
    ign_f1: float
    rela_precision: float
    rela_recall: float
    rela_f1: float
    evidence_precision: float
    evidence_recall: float
    evidence_f1: float
    n_predictions: int
    n_gold: int
    n_correct: int
    n_correct_in_train: int
    n_unknown_titles: int
    n_predicted_pairs: int
    n_gold_pairs: int
    n_correct_pairs: int
    with_evidence: bool = False
    n_predicted_evidence: int = 0
    n_gold_evidence: int = 0
    n_correct_evidence: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def train_fact_names(train_docs: Iterable[Document]) -> frozenset[TrainFact]:
    """(head mention name, tail mention name, r) for every training label and every mention pair.

    This is the official ``gen_train_facts``: a fact counts as "seen" through any mention, not only
    through the first one.
    """
    facts: set[TrainFact] = set()
    for doc in train_docs:
        for fact in doc.facts:
            for head in doc.entities[fact.head]:
                for tail in doc.entities[fact.tail]:
                    facts.add((head.name, tail.name, fact.relation))
    return frozenset(facts)


def read_predictions(source: str | Path | Sequence[Any]) -> list[dict[str, Any]]:
    """Validated predictions from a ``result.json`` path or from an already loaded list.

    Each record needs ``title`` (str), ``h_idx`` and ``t_idx`` (non-negative int) and ``r`` (str);
    ``evidence`` (list of sentence ids) is optional. Other keys (a score, say) are dropped.

    Raises:
        PaeeDataError: the file cannot be read or parsed, or a record is invalid; the message names
            the record index and the field.
    """
    where = ""
    if isinstance(source, (str, Path)):
        where = f"{source}: "
        records = read_json(source, what="predictions")
    else:
        records = source
    if not isinstance(records, list):
        raise PaeeDataError(f"{where}predictions must be a JSON list of records, got {type(records).__name__}")
    return [_check_record(i, rec, where) for i, rec in enumerate(records)]


def _check_record(i: int, rec: Any, where: str) -> dict[str, Any]:
    if not isinstance(rec, Mapping):
        raise PaeeDataError(f"{where}prediction {i}: expected an object, got {type(rec).__name__}")
    out: dict[str, Any] = {}
    for key, kind in _REQUIRED_FIELDS:
        if key not in rec:
            raise PaeeDataError(f"{where}prediction {i}, field {key!r}: missing")
        value = rec[key]
        # bool is a subclass of int, but `true` is never an entity index.
        if not isinstance(value, kind) or isinstance(value, bool):
            raise PaeeDataError(
                f"{where}prediction {i}, field {key!r}: expected {kind.__name__}, got {type(value).__name__} {value!r}"
            )
        if kind is int and value < 0:
            raise PaeeDataError(f"{where}prediction {i}, field {key!r}: entity index {value} is negative")
        out[key] = value
    if "evidence" in rec:
        evidence = rec["evidence"]
        if not isinstance(evidence, list) or not all(type(s) is int for s in evidence):  # no bools
            raise PaeeDataError(
                f"{where}prediction {i}, field 'evidence': expected a list of sentence ids, got {evidence!r}"
            )
        out["evidence"] = evidence
    return out


def evaluate(
    predictions: Sequence[Mapping[str, Any]],
    gold: Sequence[Document],
    train_facts: Iterable[TrainFact] | None = None,
    pair_types: Sequence[tuple[str, str]] = (),
) -> Scores:
    """Score ``predictions`` against the labelled documents ``gold``.

    Args:
        predictions: official-format records; validated with :func:`read_predictions`.
        gold: labelled documents; identified by title as in the official scorer.
        train_facts: from :func:`train_fact_names`; ``None`` means no training set, so nothing is
            ignored (Ign F1 then differs from F1 only through the official 1e-5).
        pair_types: candidate (subject type, object type) pairs (CDR: Chemical -> Disease); gold facts and
            predictions of other pairs are left out. Empty: every pair counts (DocRED).
    """
    preds = read_predictions(predictions)
    if pair_types:
        gold = [dataclasses.replace(doc, facts=tuple(f for f in doc.facts if _candidate(doc, f.head, f.tail, pair_types)))
                for doc in gold]
        by_title = {doc.title: doc for doc in gold}
        preds = [p for p in preds if p["title"] not in by_title
                 or _candidate(by_title[p["title"]], p["h_idx"], p["t_idx"], pair_types)]
    seen_in_train = frozenset(train_facts) if train_facts is not None else frozenset()

    # Gold facts keyed (title, r, h, t) -> evidence; a title seen twice merges its facts and the later
    # document's entities win, as in the official script (real DocRED splits have unique titles).
    gold_facts: dict[tuple[str, str, int, int], frozenset[int]] = {}
    entities_by_title: dict[str, tuple[tuple[Mention, ...], ...]] = {}
    n_gold_evidence = 0
    for doc in gold:
        entities_by_title[doc.title] = doc.entities
        for fact in doc.facts:
            gold_facts[(doc.title, fact.relation, fact.head, fact.tail)] = frozenset(fact.evidence)
            n_gold_evidence += len(fact.evidence)

    # De-duplicate on (title, h, t, r): the official script keeps the first of each sorted run.
    unique: dict[tuple[str, int, int, str], dict[str, Any]] = {}
    for p in sorted(preds, key=lambda p: (p["title"], p["h_idx"], p["t_idx"], p["r"])):
        unique.setdefault((p["title"], p["h_idx"], p["t_idx"], p["r"]), p)

    n_correct = n_correct_in_train = 0
    n_pred_evidence = n_correct_evidence = 0
    unknown_titles: set[str] = set()
    for (title, h, t, r), p in unique.items():
        entities = entities_by_title.get(title)
        if entities is None:
            unknown_titles.add(title)
            continue
        evidence = frozenset(p.get("evidence", ()))
        n_pred_evidence += len(evidence)
        gold_evidence = gold_facts.get((title, r, h, t))
        if gold_evidence is None:
            continue
        n_correct += 1
        n_correct_evidence += len(gold_evidence & evidence)
        if any((m1.name, m2.name, r) in seen_in_train for m1 in entities[h] for m2 in entities[t]):
            n_correct_in_train += 1

    n_pred = len(unique)
    n_gold = len(gold_facts)
    precision = _ratio(n_correct, n_pred)
    recall = _ratio(n_correct, n_gold)
    # No guard needed: the epsilon keeps the denominator positive (n_pred >= n_correct_in_train).
    ign_precision = (n_correct - n_correct_in_train) / (n_pred - n_correct_in_train + IGN_EPSILON)
    evidence_precision = _ratio(n_correct_evidence, n_pred_evidence)
    evidence_recall = _ratio(n_correct_evidence, n_gold_evidence)

    predicted_pairs = {(title, h, t) for title, h, t, _ in unique}
    gold_pairs = {(title, h, t) for title, _, h, t in gold_facts}
    n_correct_pairs = len(predicted_pairs & gold_pairs)
    rela_precision = _ratio(n_correct_pairs, len(predicted_pairs))
    rela_recall = _ratio(n_correct_pairs, len(gold_pairs))

    return Scores(
        precision=precision,
        recall=recall,
        f1=_f1(precision, recall),
        ign_precision=ign_precision,
        ign_f1=_f1(ign_precision, recall),
        rela_precision=rela_precision,
        rela_recall=rela_recall,
        rela_f1=_f1(rela_precision, rela_recall),
        evidence_precision=evidence_precision,
        evidence_recall=evidence_recall,
        evidence_f1=_f1(evidence_precision, evidence_recall),
        n_predictions=n_pred,
        n_gold=n_gold,
        n_correct=n_correct,
        n_correct_in_train=n_correct_in_train,
        n_unknown_titles=len(unknown_titles),
        n_predicted_pairs=len(predicted_pairs),
        n_gold_pairs=len(gold_pairs),
        n_correct_pairs=n_correct_pairs,
        with_evidence=any("evidence" in p for p in preds),
        n_predicted_evidence=n_pred_evidence,
        n_gold_evidence=n_gold_evidence,
        n_correct_evidence=n_correct_evidence,
    )


def _candidate(doc: Document, head: int, tail: int, pair_types: Sequence[tuple[str, str]]) -> bool:
    """Whether (head, tail) of ``doc`` has a candidate type pair (indices outside the document never do)."""
    if not (0 <= head < doc.num_entities and 0 <= tail < doc.num_entities):
        return False
    return (doc.entity_type(head), doc.entity_type(tail)) in {tuple(p) for p in pair_types}


def score_triples(docs: Sequence[Document], triples: Sequence[Sequence[Triple]], relations: RelationVocab,
                  train_facts: frozenset[TrainFact] | None = None, pair_types: Sequence[tuple[str, str]] = ()) -> Scores:
    """`evaluate` of predicted triples (per document, in ``docs`` order) against the documents' labels."""
    records: list[dict[str, Any]] = []
    for doc, doc_triples in zip(docs, triples):
        records += to_result_records(doc.title, doc_triples, relations)
    return evaluate(records, docs, train_facts, pair_types)


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def _f1(p: float, r: float) -> float:
    return 2.0 * p * r / (p + r) if p + r else 0.0
