"""A seeded synthetic corpus in DocRED form, for tests, CI and demos without real data.

Documents are short English-like texts about invented people, organisations, places, dates and works.
Every relation fact is stated by the text through a small, fixed set of trigger templates, so a small
model trained from scratch can learn the task; everything else is there to make it a DocRED-like
task rather than a lookup:

* coreference: a person is introduced by full name and later mostly by surname;
* facts inside one sentence and across two sentences (an introduction ``Kalo Moravek is a painter .``
  followed by ``He was born in Brelanton .``, the pronoun always referring to the entity introduced in
  the sentence just before);
* directional relations whose reverse means something else (``parent of`` / ``child of``,
  ``employer`` / ``employee``, ``author`` whose head is the work), one symmetric relation (``spouse``);
* several statements joined into one sentence, distractor sentences where entities co-occur without a
  relation, filler sentences without entities;
* a few percent of ordered entity pairs relational (DocRED: 3-7%), from a handful of entities up to
  `SyntheticConfig.max_entities`, and some documents longer than 512 wordpieces once entity markers
  are added.

Generation is deterministic: `random.Random` instances seeded from the arguments, no global state.
Document ``i`` of a corpus depends only on ``(config, seed, i)``, so a longer corpus extends a shorter one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paee.data.docred import write_documents
from paee.data.errors import PaeeDataError
from paee.data.relations import NA_RELATION
from paee.data.schema import DOCRED_ENTITY_TYPES, Document, Fact, Mention

__all__ = [
    "DEFAULT_SPLIT_SIZES", "RELATIONS", "SyntheticConfig", "SyntheticRelation", "generate_corpus",
    "rel2id", "rel_info", "write_synthetic_splits",
]


@dataclass(frozen=True)
class SyntheticRelation:
    """A relation of the synthetic world: id, readable name, kinds of head and tail entity."""

    id: str
    name: str
    head: str
    tail: str


#: The relations the generator can state. Kinds map to DocRED entity types through `KIND_TYPES`.
RELATIONS: tuple[SyntheticRelation, ...] = (
    SyntheticRelation("P1", "parent of", "person", "person"),
    SyntheticRelation("P2", "child of", "person", "person"),  # reverse of P1, a different relation
    SyntheticRelation("P3", "employer", "person", "org"),
    SyntheticRelation("P4", "employee", "org", "person"),  # reverse of P3
    SyntheticRelation("P5", "place of birth", "person", "city"),
    SyntheticRelation("P6", "headquarters location", "org", "city"),
    SyntheticRelation("P7", "country", "city", "country"),
    SyntheticRelation("P8", "inception", "org", "year"),
    SyntheticRelation("P9", "spouse", "person", "person"),  # symmetric: stated once, labelled both ways
    SyntheticRelation("P10", "member of", "person", "org"),
    SyntheticRelation("P11", "date of birth", "person", "date"),
    SyntheticRelation("P12", "author", "work", "person"),  # head is the work, as Wikidata's P50
)

#: Entity kinds of the synthetic world and their DocRED types.
KIND_TYPES: Mapping[str, str] = {
    "person": "PER", "org": "ORG", "city": "LOC", "country": "LOC",
    "date": "TIME", "year": "TIME", "work": "MISC", "number": "NUM",
}

#: CI-sized splits: big enough to learn from in minutes on a CPU, small enough to write in a second.
DEFAULT_SPLIT_SIZES: Mapping[str, int] = {"train": 240, "dev": 60, "test": 60}


@dataclass(frozen=True)
class SyntheticConfig:
    """What the synthetic corpus looks like. Every field has a default that gives a DocRED-like corpus."""

    # Relation ids (from `RELATIONS`) to state; a statement whose facts are all excluded is never made.
    relations: tuple[str, ...] = tuple(r.id for r in RELATIONS)
    # Entity types that may occur; kinds of other types (and statements needing them) are not generated.
    entity_types: tuple[str, ...] = DOCRED_ENTITY_TYPES
    # Fewest entities per document: a document needs a pair to say anything.
    min_entities: int = 4
    # Most documents have min_entities..typical_max_entities entities (DocRED: most 5-25).
    typical_max_entities: int = 25
    # The rest go up to this (N = 42 is the DocRED/Re-DocRED maximum and the model's default slot count).
    max_entities: int = 42
    # Share of documents above typical_max_entities: these are also the ones longer than 512 wordpieces.
    large_document_share: float = 0.15
    # Per document, the share of ordered entity pairs that carry a relation is drawn from this range
    # (DocRED: 3-7%); it may end lower when the entities cannot take more facts.
    relational_pair_share: tuple[float, float] = (0.04, 0.08)
    # Share of facts stated across two sentences (introduction, then a pronoun referring back).
    cross_sentence_share: float = 0.2
    # Later mentions of a person use the surname with this probability, else the full name again.
    surname_share: float = 0.7
    # Multi-entity distractor statements (co-occurrence without relation) per document.
    distractors: tuple[int, int] = (2, 6)
    # Chance that an entity gets one more mention in a single-entity statement (coreference practice).
    extra_mention_share: float = 0.4
    # Sentences without any entity per document.
    fillers: tuple[int, int] = (0, 3)
    # Chance that a statement is joined to the previous one in the same sentence (", and" / ";").
    join_share: float = 0.35
    # At most this many statements per sentence, unless max_sentences needs more.
    max_clauses_per_sentence: int = 3
    # Statements are joined more when a document would have more sentences (DocRED: at most 21);
    # at most a quarter of this many facts are stated across two sentences.
    max_sentences: int = 25
    # Word budget: facts stop at 80% of it, optional statements at 100%, mandatory mentions may add a
    # little (520 gives at most ~560 words). Measured with two entity markers per mention: under 1000
    # wordpieces even with a 2,000-piece WordPiece vocabulary, so under the encoder's 1024 (DocRED: <= 510 words).
    max_words: int = 520
    # Seed of the name lists: fixed, so that every split and every seed draw from the same names.
    name_seed: int = 20240601
    # Size of each name list (first names per gender, surnames, organisations, places, works).
    names_per_list: int = 300

    def __post_init__(self) -> None:
        known = {r.id for r in RELATIONS}
        unknown = [r for r in self.relations if r not in known]
        if unknown or not self.relations:
            raise PaeeDataError(f"SyntheticConfig.relations: unknown or no relation ids {unknown} "
                                f"(known: {', '.join(sorted(known, key=lambda r: int(r[1:])))})")
        if not 2 <= self.min_entities <= self.typical_max_entities:
            raise PaeeDataError(f"SyntheticConfig: need 2 <= min_entities ({self.min_entities}) "
                                f"<= typical_max_entities ({self.typical_max_entities})")
        if self.max_entities < self.min_entities:
            raise PaeeDataError(f"SyntheticConfig: max_entities ({self.max_entities}) < "
                                f"min_entities ({self.min_entities})")
        low, high = self.relational_pair_share
        if not 0 < low <= high <= 1:
            raise PaeeDataError(f"SyntheticConfig.relational_pair_share {self.relational_pair_share} "
                                "must satisfy 0 < low <= high <= 1")
        for name in ("distractors", "fillers"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise PaeeDataError(f"SyntheticConfig.{name} {getattr(self, name)} must satisfy 0 <= low <= high")
        if self.max_clauses_per_sentence < 1 or self.max_sentences < 1:
            raise PaeeDataError("SyntheticConfig: max_clauses_per_sentence and max_sentences must be >= 1")
        if self.names_per_list < max(50, self.max_entities):
            raise PaeeDataError(f"SyntheticConfig.names_per_list ({self.names_per_list}) must be >= 50 and "
                                f">= max_entities ({self.max_entities}): a document draws distinct names")
        if self.max_words < 50:
            raise PaeeDataError(f"SyntheticConfig.max_words ({self.max_words}) must be >= 50")
        if "PER" not in self.entity_types:
            raise PaeeDataError("SyntheticConfig.entity_types must include 'PER': every statement is about people "
                                "or needs one")

    @classmethod
    def plain(cls, **overrides: Any) -> "SyntheticConfig":
        """The ``plain`` preset: short documents (4-14 entities, none over 512 wordpieces), each statement a
        sentence of its own, no distractors, joins, cross-sentence (pronoun) statements, fillers, extra
        mentions or surnames.

        Every co-occurrence of two entities is then a statement, and what remains to learn is the wording,
        direction and entity types of each relation. This is the corpus of the learning check (README,
        "Learning"); the default corpus is the DocRED-like one, with long documents and joined clauses.
        """
        plain = dict(cross_sentence_share=0.0, join_share=0.0, distractors=(0, 0), fillers=(0, 0),
                     extra_mention_share=0.0, surname_share=0.0, typical_max_entities=14, large_document_share=0.0)
        return cls(**{**plain, **overrides})

    @property
    def kinds(self) -> tuple[str, ...]:
        """Entity kinds whose type is allowed."""
        return tuple(k for k, t in KIND_TYPES.items() if t in self.entity_types)


def rel2id(config: SyntheticConfig | None = None) -> dict[str, int]:
    """DocRED's ``rel2id`` of the configured relations, ``Na`` = 0."""
    config = config or SyntheticConfig()
    ids = [r.id for r in RELATIONS if r.id in config.relations]
    return {NA_RELATION: 0, **{r: i + 1 for i, r in enumerate(ids)}}


def rel_info(config: SyntheticConfig | None = None) -> dict[str, str]:
    """DocRED's ``rel_info``: relation id -> readable name."""
    config = config or SyntheticConfig()
    return {r.id: r.name for r in RELATIONS if r.id in config.relations}


# --- statements ---------------------------------------------------------------------------------
# Template words: "[k]" is a mention of slot k; GENDERED words take the form of slot k's person
# ("PARENT0" -> father/mother); "OCC0" / "ORGKIND0" describe slot 0. Everything else is literal.


@dataclass(frozen=True)
class _Role:
    """What an entity takes part in as one slot of a statement, and how often it may (world consistency)."""

    name: str
    limit: int


@dataclass(frozen=True)
class _FactPattern:
    """A relation statement: two slots, the facts it states, its wordings."""

    slots: tuple[str, str]
    roles: tuple[_Role, _Role]
    facts: tuple[tuple[int, int, str], ...]  # (head slot, tail slot, relation id)
    intra: tuple[str, ...]  # one-sentence wordings
    cross: tuple[str, ...] = ()  # sentence after an introduction of slot `referent`, which it refers back to
    referent: int = 0


_MANY = 1_000_000
_PATTERNS: tuple[_FactPattern, ...] = (
    _FactPattern(("person", "person"), (_Role("parent", 3), _Role("child", 2)), ((0, 1, "P1"), (1, 0, "P2")),
                 ("[0] is the PARENT0 of [1] .", "[1] is the CHILD1 of [0] ."), ("PRON0 is the PARENT0 of [1] .",)),
    _FactPattern(("person", "org"), (_Role("employee", 2), _Role("employer", _MANY)), ((0, 1, "P3"), (1, 0, "P4")),
                 ("[0] works for [1] .", "[1] hired [0] ."), ("PRON0 works for [1] .",)),
    _FactPattern(("person", "city"), (_Role("born in", 1), _Role("birthplace", _MANY)), ((0, 1, "P5"),),
                 ("[0] was born in [1] .",), ("PRON0 was born in [1] .",)),
    _FactPattern(("org", "city"), (_Role("based in", 1), _Role("seat", _MANY)), ((0, 1, "P6"),),
                 ("[0] is based in [1] .", "[0] has its headquarters in [1] ."), ("It is based in [1] .",)),
    _FactPattern(("city", "country"), (_Role("in country", 1), _Role("country", _MANY)), ((0, 1, "P7"),),
                 ("[0] is a city in [1] .", "[0] lies in the north of [1] .")),
    _FactPattern(("org", "year"), (_Role("founded", 1), _Role("founding year", 1)), ((0, 1, "P8"),),
                 ("[0] was founded in [1] .",), ("It was founded in [1] .",)),
    _FactPattern(("person", "person"), (_Role("spouse", 1), _Role("spouse", 1)), ((0, 1, "P9"), (1, 0, "P9")),
                 ("[0] is married to [1] .", "[0] and [1] are married ."), ("PRON0 is married to [1] .",)),
    _FactPattern(("person", "org"), (_Role("member", 2), _Role("club", _MANY)), ((0, 1, "P10"),),
                 ("[0] is a member of [1] .", "[0] joined [1] ."), ("PRON0 is a member of [1] .",)),
    _FactPattern(("person", "date"), (_Role("born on", 1), _Role("birth date", 1)), ((0, 1, "P11"),),
                 ("[0] was born on [1] .",), ("PRON0 was born on [1] .",)),
    _FactPattern(("work", "person"), (_Role("written by", 1), _Role("author", _MANY)), ((0, 1, "P12"),),
                 ("[0] was written by [1] .", "[1] wrote [0] ."), ("PRON1 wrote [0] .",), referent=1),
)

#: Introductions that a cross-sentence statement's second sentence refers back to.
_INTRODUCTIONS: Mapping[str, str] = {"person": "[0] is a OCC0 .", "org": "[0] is a ORGKIND0 ."}

#: Statements about several entities that state no relation.
_DISTRACTORS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("person", "person", "city"), "[0] met [1] in [2] ."),
    (("person", "person", "city"), "[0] and [1] attended a meeting in [2] ."),
    (("person", "city", "year"), "In [2] , [0] visited [1] ."),
    (("person", "country", "year"), "[0] travelled to [1] in [2] ."),
    (("person", "city", "city"), "[0] drove from [1] to [2] ."),
    (("person", "work"), "[0] talked about [1] in an interview ."),
    (("person", "org"), "[0] criticised [1] in a speech ."),
    (("org", "org"), "[0] signed an agreement with [1] ."),
    (("org", "org", "city"), "[0] played a match against [1] in [2] ."),
    (("org", "number", "year"), "In [2] , [0] reported a profit of [1] dollars ."),
    (("city", "number"), "[0] has a population of [1] ."),
    (("work", "year"), "[0] was praised by critics in [1] ."),
    (("country", "country"), "[0] shares a border with [1] ."),
    (("date", "city"), "On [0] , a storm hit [1] ."),
)

#: Statements about one entity (extra mentions; entities without facts).
_SINGLES: Mapping[str, tuple[str, ...]] = {
    "person": ("[0] is a OCC0 .", "[0] gave a short speech .", "Many people admire [0] ."),
    "org": ("[0] is a ORGKIND0 .", "[0] opened a new office .", "[0] grew quickly ."),
    "city": ("[0] is known for its old harbour .", "[0] has many parks ."),
    "country": ("[0] has a long coastline .", "[0] is a large country ."),
    "date": ("The ceremony took place on [0] .", "[0] was a rainy day ."),
    "year": ("The bridge was finished in [0] .", "[0] was a dry year ."),
    "work": ("[0] sold many copies .", "[0] was translated into several languages ."),
    "number": ("About [0] people came to the festival .",),
}

_FILLERS: tuple[str, ...] = (
    "The weather was mild that year .", "Many visitors came to the region .",
    "Local newspapers covered the story .", "The event was broadcast on the radio .",
    "Prices rose sharply in the following months .", "The old bridge was repaired .",
)

_GENDERED: Mapping[str, tuple[str, str]] = {
    "PARENT": ("father", "mother"), "CHILD": ("son", "daughter"), "PRON": ("He", "She"),
}
_OCCUPATIONS = ("painter", "teacher", "doctor", "pilot", "farmer", "chemist", "lawyer", "banker")
# What an organisation is, by the last word of its name (introductions say "X Bank is a bank").
_ORG_KINDS: Mapping[str, str] = {
    "Group": "company", "Holdings": "company", "Partners": "trading firm", "Systems": "company",
    "Institute": "research institute", "United": "football club", "Press": "publisher", "Bank": "bank",
}
_CONNECTORS = (", and", ";", ", while")

# Relative frequency of entity kinds in a document (people dominate, as in DocRED).
_KIND_WEIGHTS: Mapping[str, float] = {
    "person": 0.36, "org": 0.14, "city": 0.14, "country": 0.06,
    "date": 0.08, "year": 0.08, "work": 0.08, "number": 0.06,
}


# --- names --------------------------------------------------------------------------------------

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "st", "tr")
_VOWELS = ("a", "e", "i", "o", "u")
_CODAS = ("", "", "", "n", "r", "l", "s")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_WORK_ADJECTIVES = ("Silent", "Golden", "Last", "Hidden", "Broken", "Distant", "Red", "Quiet", "Long",
                    "Lost", "Bright", "Dark", "Winter", "Secret", "Endless", "Small")
_WORK_NOUNS = ("River", "Garden", "Road", "Harbour", "Letter", "Mountain", "Promise", "Island", "Voyage",
               "Mirror", "Season", "Window", "Storm", "Kingdom", "Orchard", "Lantern")
_CITY_SUFFIXES = ("burg", "ton", "ville", "port", "ford", "wick")
_COUNTRY_SUFFIXES = ("ia", "land", "stan", "ora")


@dataclass(frozen=True)
class _Names:
    """Fixed name lists, drawn once from ``config.name_seed``; surface forms never repeat across lists."""

    male: tuple[str, ...]
    female: tuple[str, ...]
    surnames: tuple[str, ...]
    orgs: tuple[str, ...]
    cities: tuple[str, ...]
    countries: tuple[str, ...]
    works: tuple[str, ...]


def _build_names(seed: int, size: int) -> _Names:
    rng = random.Random(seed)
    taken: set[str] = set()

    def root(syllables: int, coda: bool = True) -> str:
        parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)]
        return ("".join(parts) + (rng.choice(_CODAS) if coda else "")).capitalize()

    def draw(make) -> tuple[str, ...]:
        out: list[str] = []
        while len(out) < size:
            name = make()
            if name not in taken:
                taken.add(name)
                out.append(name)
        return tuple(out)

    works = [f"The {a} {n}" for a in _WORK_ADJECTIVES for n in _WORK_NOUNS]
    rng.shuffle(works)
    return _Names(
        male=draw(lambda: root(2, coda=False) + rng.choice(("n", "r", "k", "s", "l"))),
        female=draw(lambda: root(2) + "a"),
        surnames=draw(lambda: root(rng.choice((2, 3)))),
        orgs=draw(lambda: f"{root(2)} {rng.choice(tuple(_ORG_KINDS))}"),
        cities=draw(lambda: root(2) + rng.choice(_CITY_SUFFIXES)),
        countries=draw(lambda: root(2) + rng.choice(_COUNTRY_SUFFIXES)),
        works=tuple(works[:size]),
    )


# --- one document -------------------------------------------------------------------------------


@dataclass
class _Entity:
    kind: str
    words: tuple[str, ...]  # full surface form
    short: tuple[str, ...] | None = None  # later-mention form (a person's surname)
    female: bool = False
    description: str = ""  # occupation or organisation kind, for introductions
    roles: dict[str, int] = field(default_factory=dict)


_Clause = list[int | str]  # words (str) and entity ids (int), no final full stop


@dataclass
class _Unit:
    """One statement (one clause) or a cross-sentence pair (two sentences that stay together)."""

    sentences: list[_Clause]
    facts: list[tuple[int, int, str]]
    joinable: bool


class _DocumentBuilder:
    def __init__(self, config: SyntheticConfig, names: _Names, rng: random.Random):
        self.config = config
        self.names = names
        self.rng = rng
        self.entities: list[_Entity] = []
        self.units: list[_Unit] = []
        self.pairs: set[frozenset[int]] = set()  # unordered pairs already related: one statement per pair
        self.words = 0  # words of the statements so far (full names; a little over the final count)
        self.cross_units = 0
        kinds = set(config.kinds)
        self.patterns = [p for p in _PATTERNS if set(p.slots) <= kinds
                         and any(r in config.relations for _, _, r in p.facts)]
        self.distractors = [d for d in _DISTRACTORS if set(d[0]) <= kinds]

    # entities ----------------------------------------------------------------------------------

    def add_entities(self, n: int) -> None:
        rng = self.rng
        kinds = [k for k in _KIND_WEIGHTS if k in self.config.kinds]
        chosen = ["person"] + rng.choices(kinds, weights=[_KIND_WEIGHTS[k] for k in kinds], k=n - 1)
        names = self.names
        pools = {
            "male": rng.sample(names.male, n), "female": rng.sample(names.female, n),
            "surname": rng.sample(names.surnames, n), "org": rng.sample(names.orgs, n),
            "city": rng.sample(names.cities, n), "country": rng.sample(names.countries, n),
            "work": rng.sample(names.works, min(n, len(names.works))),
        }
        taken: set[str] = set()
        for kind in sorted(chosen, key=list(_KIND_WEIGHTS).index):
            self.entities.append(self._new_entity(kind, pools, taken))

    def _new_entity(self, kind: str, pools: dict[str, list[str]], taken: set[str]) -> _Entity:
        rng = self.rng
        if kind == "person":
            female = rng.random() < 0.5
            first = pools["female" if female else "male"].pop()
            surname = pools["surname"].pop()
            return _Entity(kind, (first, surname), (surname,), female, rng.choice(_OCCUPATIONS))
        if kind in ("org", "city", "country", "work"):
            words = tuple(pools[kind].pop().split())
            return _Entity(kind, words, None, False, _ORG_KINDS[words[-1]] if kind == "org" else "")
        while True:  # dates, years and numbers: unique surface forms within the document
            if kind == "date":
                text = f"{rng.randint(1, 28)} {rng.choice(_MONTHS)} {rng.randint(1900, 2005)}"
            elif kind == "year":
                text = str(rng.randint(1850, 2020))
            else:
                text = f"{rng.randint(2, 950)},{rng.randint(0, 999):03d}"
            if text not in taken:
                taken.add(text)
                return _Entity(kind, tuple(text.split()))

    def of_kind(self, kind: str) -> list[int]:
        return [i for i, e in enumerate(self.entities) if e.kind == kind]

    # statements --------------------------------------------------------------------------------

    def render(self, template: str, slots: Sequence[int]) -> _Clause:
        """Template words -> clause items (words and entity ids); drops the final full stop."""
        out: _Clause = []
        for word in template.split():
            if word.startswith("[") and word.endswith("]"):
                out.append(slots[int(word[1:-1])])
            elif word[:-1] in _GENDERED:
                out.append(_GENDERED[word[:-1]][self.entities[slots[int(word[-1])]].female])
            elif word[:-1] in ("OCC", "ORGKIND"):
                out.extend(self.entities[slots[int(word[-1])]].description.split())
            else:
                out.append(word)
        if out and out[-1] == ".":
            out.pop()
        return out

    def add_unit(self, sentences: list[_Clause], facts: list[tuple[int, int, str]], joinable: bool) -> None:
        self.units.append(_Unit(sentences, facts, joinable))
        for clause in sentences:  # +1: the full stop or the connector
            self.words += 1 + sum(1 if isinstance(w, str) else len(self.entities[w].words) for w in clause)

    def add_facts(self, target_pairs: int) -> None:
        """State relations until ``target_pairs`` ordered pairs are relational or nothing more fits."""
        rng, config = self.rng, self.config
        relational: set[tuple[int, int]] = set()
        attempts = 0
        fact_words = 0.8 * config.max_words  # the rest is for entities without facts and distractors
        while len(relational) < target_pairs and attempts < 40 * target_pairs + 40 and self.words < fact_words:
            attempts += 1
            pattern = rng.choice(self.patterns)
            candidates = [[i for i in self.of_kind(kind)
                           if self.entities[i].roles.get(role.name, 0) < role.limit]
                          for kind, role in zip(pattern.slots, pattern.roles)]
            if not candidates[0] or not candidates[1]:
                continue
            head, tail = rng.choice(candidates[0]), rng.choice(candidates[1])
            if head == tail or frozenset((head, tail)) in self.pairs:
                continue
            self.pairs.add(frozenset((head, tail)))
            slots = (head, tail)
            for slot, role in zip(slots, pattern.roles):
                self.entities[slot].roles[role.name] = self.entities[slot].roles.get(role.name, 0) + 1
            facts = [(slots[h], slots[t], r) for h, t, r in pattern.facts if r in config.relations]
            relational.update((h, t) for h, t, _ in facts)
            cross_ok = self.cross_units < config.max_sentences // 4  # each takes two whole sentences
            if pattern.cross and cross_ok and rng.random() < config.cross_sentence_share:
                referent = slots[pattern.referent]
                intro = self.render(_INTRODUCTIONS[self.entities[referent].kind], (referent,))
                second = self.render(rng.choice(pattern.cross), slots)
                self.add_unit([intro, second], facts, joinable=False)
                self.cross_units += 1
            else:
                self.add_unit([self.render(rng.choice(pattern.intra), slots)], facts, joinable=True)

    def add_distractors(self) -> None:
        rng, config = self.rng, self.config
        mentioned = {i for u in self.units for s in u.sentences for i in s if isinstance(i, int)}
        for _ in range(rng.randint(*config.distractors) if self.distractors else 0):
            kinds, template = rng.choice(self.distractors)
            slots: list[int] = []
            for kind in kinds:
                # Prefer entities not yet mentioned: distractors are where relation-less entities live.
                options = [i for i in self.of_kind(kind) if i not in slots]
                fresh = [i for i in options if i not in mentioned]
                if not options:
                    break
                slots.append(rng.choice(fresh or options))
            else:
                if self.words < config.max_words:
                    mentioned.update(slots)
                    self.add_unit([self.render(template, slots)], [], joinable=True)
        for i, entity in enumerate(self.entities):
            # Every entity is mentioned at least once, whatever the budget; extra mentions if it allows.
            extra = rng.random() < config.extra_mention_share
            for _ in range((i not in mentioned) + extra):
                if i not in mentioned or self.words < config.max_words:
                    mentioned.add(i)
                    self.add_unit([self.render(rng.choice(_SINGLES[entity.kind]), (i,))], [], joinable=True)
        for _ in range(rng.randint(*config.fillers)):
            if self.words < config.max_words:
                self.add_unit([self.render(rng.choice(_FILLERS), ())], [], joinable=True)

    # layout ------------------------------------------------------------------------------------

    def layout(self) -> list[list[int]]:
        """Order the statements and join some into one sentence.

        Returns blocks of unit ids in document order: a block of joinable units becomes one sentence
        (one clause per unit); a cross-sentence unit is a block of its own and becomes two sentences.
        """
        rng, config = self.rng, self.config
        order = list(range(len(self.units)))
        rng.shuffle(order)
        pairs = sum(1 for u in self.units if not u.joinable)
        joinable = [i for i in order if self.units[i].joinable]
        # How many sentences the joinable statements become: some joined by chance, more when the
        # document would otherwise exceed max_sentences.
        wanted = sum(1 for k in range(len(joinable)) if k == 0 or rng.random() >= config.join_share)
        fewest = math.ceil(len(joinable) / config.max_clauses_per_sentence)
        # max_sentences wins over max_clauses_per_sentence: long documents get long sentences, as in DocRED.
        room = max(1, config.max_sentences - 2 * pairs)
        groups = min(len(joinable), room, max(fewest, wanted))
        sizes = [1] * groups
        cap = max(config.max_clauses_per_sentence, math.ceil(len(joinable) / max(groups, 1)))
        for _ in range(len(joinable) - groups):
            open_groups = [g for g, s in enumerate(sizes) if s < cap]
            sizes[rng.choice(open_groups)] += 1
        grouped: list[list[int]] = []
        it = iter(joinable)
        for size in sizes:
            grouped.append([next(it) for _ in range(size)])
        # Interleave joined sentences and cross pairs in the shuffled order of their first unit.
        blocks: list[list[int]] = grouped + [[i] for i in order if not self.units[i].joinable]
        rank = {u: k for k, u in enumerate(order)}
        blocks.sort(key=lambda b: rank[b[0]])
        return blocks

    def build(self, title: str, index: int) -> Document:
        blocks = self.layout()
        sentences: list[list[int | str]] = []
        facts: dict[tuple[int, int, str], set[int]] = {}
        for block in blocks:
            first = self.units[block[0]]
            if not first.joinable:  # a cross pair: two sentences
                ids = [len(sentences), len(sentences) + 1]
                sentences.extend([*s, "."] for s in first.sentences)
                for fact in first.facts:
                    facts.setdefault(fact, set()).update(ids)
                continue
            sid = len(sentences)
            words: list[int | str] = []
            for k, u in enumerate(block):
                clause = list(self.units[u].sentences[0])
                if k:
                    words.extend(self.rng.choice(_CONNECTORS).split())
                    if isinstance(clause[0], str) and clause[0] not in _GENDERED["PRON"]:
                        clause[0] = clause[0].lower()
                words.extend(clause)
                for fact in self.units[u].facts:
                    facts.setdefault(fact, set()).add(sid)
            sentences.append([*words, "."])
        return self._materialise(sentences, facts, title, index)

    def _materialise(self, sentences: list[list[int | str]], facts: dict[tuple[int, int, str], set[int]],
                     title: str, index: int) -> Document:
        """Entity ids -> mention words; entities renumbered in order of first appearance."""
        rng, config = self.rng, self.config
        seen: dict[int, int] = {}  # old entity id -> new id
        mentions: dict[int, list[Mention]] = {}
        sents: list[tuple[str, ...]] = []
        for sid, items in enumerate(sentences):
            words: list[str] = []
            for item in items:
                if isinstance(item, str):
                    words.append(item)
                    continue
                entity = self.entities[item]
                first = item not in seen
                if first:
                    seen[item] = len(seen)
                    mentions[item] = []
                form = entity.words
                if not first and entity.short and rng.random() < config.surname_share:
                    form = entity.short
                start = len(words)
                words.extend(form)
                mentions[item].append(Mention(" ".join(form), sid, start, len(words), KIND_TYPES[entity.kind]))
            sents.append(tuple(words))
        by_new = sorted(seen, key=seen.get)
        entities = tuple(tuple(mentions[old]) for old in by_new)
        fact_list = sorted((Fact(seen[h], seen[t], r, tuple(sorted(ev))) for (h, t, r), ev in facts.items()),
                           key=lambda f: (f.head, f.tail, f.relation))
        return Document(title=title, sents=tuple(sents), entities=entities, facts=tuple(fact_list), index=index)


def _entity_count(config: SyntheticConfig, rng: random.Random) -> int:
    typical = min(config.typical_max_entities, config.max_entities)
    if config.max_entities > typical and rng.random() < config.large_document_share:
        return rng.randint(typical + 1, config.max_entities)
    return rng.randint(config.min_entities, typical)


def generate_corpus(config: SyntheticConfig | None = None, n_docs: int = 100, seed: int | str = 0) -> list[Document]:
    """``n_docs`` synthetic documents; document ``i`` depends only on ``(config, seed, i)``.

    Titles are ``synthetic-{seed}-{i:05d}``, unique across seeds (DocRED's scorer keys on titles).
    """
    config = config or SyntheticConfig()
    if n_docs < 0:
        raise PaeeDataError(f"n_docs must be >= 0, got {n_docs}")
    names = _build_names(config.name_seed, config.names_per_list)
    docs = []
    for i in range(n_docs):
        rng = random.Random(f"paee-synthetic/{seed}/{i}")  # str seeds are stable across processes
        builder = _DocumentBuilder(config, names, rng)
        n = _entity_count(config, rng)
        builder.add_entities(n)
        share = rng.uniform(*config.relational_pair_share)
        builder.add_facts(max(1, round(share * n * (n - 1))))
        builder.add_distractors()
        docs.append(builder.build(f"synthetic-{seed}-{i:05d}", i))
    return docs


def write_synthetic_splits(out_dir: str | Path, config: SyntheticConfig | None = None,
                           sizes: Mapping[str, int] = DEFAULT_SPLIT_SIZES, seed: int = 0) -> dict[str, Path]:
    """Write ``{split}.json`` for each split in ``sizes`` plus ``rel2id.json`` and ``rel_info.json``.

    Split ``s`` uses the seed ``f"{seed}-{s}"``, so splits never share documents. Returns the paths
    written, by split name (and ``"rel2id"``, ``"rel_info"``).
    """
    config = config or SyntheticConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for split, n in sizes.items():
        path = out / f"{split}.json"
        write_documents(path, generate_corpus(config, n, f"{seed}-{split}"))
        written[split] = path
    for name, obj in (("rel2id", rel2id(config)), ("rel_info", rel_info(config))):
        path = out / f"{name}.json"
        path.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
        written[name] = path
    return written


def repeat_document(doc: Document, times: int, max_mentions: int | None = None) -> Document:
    """A ``times``-fold longer document for length tests and benchmarks: every sentence is its own words
    repeated ``times`` times, and every mention is repeated in copies spread over the document (entities,
    facts and the sentence count stay). The mentions then reach every encoder window; with ``max_mentions``
    (a model's M) only every few copies repeat them, so that no entity has more."""
    if times < 1:
        raise PaeeDataError(f"times must be >= 1, got {times}")
    most = max((len(m) for m in doc.entities), default=1)
    if max_mentions is not None and max_mentions < most:
        raise PaeeDataError(f"an entity of {doc.where} already has {most} mentions, more than max_mentions={max_mentions}")
    every = 1 if max_mentions is None else -(-times // (max_mentions // most))  # ceil(times / copies allowed)
    sents = tuple(tuple(words) * times for words in doc.sents)
    entities = tuple(
        tuple(dataclasses.replace(m, start=m.start + copy * len(doc.sents[m.sent_id]), end=m.end + copy * len(doc.sents[m.sent_id]))
              for copy in range(0, times, every) for m in mentions)
        for mentions in doc.entities
    )
    return dataclasses.replace(doc, title=f"{doc.title}-x{times}", sents=sents, entities=entities)
