"""Coreference of detected mentions: which mentions of a plain text name the same entity.

`paee.data.detect.detect_document` hands the kept mentions of a text (`TypedMention`: span, model type,
the detector's label, text) to a `Coreference`, a callable returning groups of mention positions, one
group per entity. Any callable of that shape plugs in; two ship, by name in `COREFERENCES` (the
commands' ``--coref``):

* ``string``: `StringMatchCoref`, the default: normalised string equality, acronyms, last names of
  persons, always within one type (exact rules in its docstring).
* ``none``: `singletons`, every mention an entity of its own.

A coreference may also say why two mentions of a group belong together (`StringMatchCoref.explain`);
the detection report lists, per entity, the rules that linked its mentions (`link_rules`).

Torch-free, dependency-free.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from paee.data.errors import PaeeDataError

__all__ = [
    "ACRONYM_LENGTH", "ACRONYM_SKIP_WORDS", "COREFERENCES", "DEFAULT_COREF", "RULE_ACRONYM", "RULE_LAST_NAME",
    "RULE_SAME_NAME", "Coreference", "StringMatchCoref", "TypedMention", "coreference", "link_rules",
    "normalise_name", "singletons",
]

#: Why two mentions of a group were linked (`StringMatchCoref.explain`).
RULE_SAME_NAME = "same_name"
RULE_ACRONYM = "acronym"
RULE_LAST_NAME = "last_name"




@dataclass(frozen=True)
class TypedMention:
    """A kept mention after snapping: character span, model ``type``, the detector's ``label``, its text."""

    start: int
    end: int
    type: str
    label: str
    text: str


class Coreference(Protocol):
    """Groups mentions into entities: returns lists of positions in ``mentions``, each position once."""

    def __call__(self, mentions: Sequence[TypedMention]) -> list[list[int]]: ...


def singletons(mentions: Sequence[TypedMention]) -> list[list[int]]:
    """No coreference: every mention is an entity of its own."""
    return [[i] for i in range(len(mentions))]


_PUNCTUATION = re.compile(r"[^\w\s]")
_LEADING_THE = re.compile(r"^the\s+")
_WORD_CHARS = re.compile(r"\w+")
#: Words an acronym may skip: "Bank of America" ~ "BOA" and ~ "BA" both match.
ACRONYM_SKIP_WORDS = frozenset({"of", "the", "and", "for", "in", "on", "at", "de", "du", "des", "la", "le",
                                "von", "van", "der", "&"})
#: Letters of an acronym, fewest and most: a single capital is an initial, not an acronym.
ACRONYM_LENGTH = (2, 10)


def normalise_name(text: str) -> str:
    """The string a mention is compared by: NFKC, case-folded, punctuation deleted, whitespace collapsed,
    a leading "the" removed (``The  U.S.`` -> ``us``; ``Jean-Paul`` -> ``jeanpaul``)."""
    key = _PUNCTUATION.sub("", unicodedata.normalize("NFKC", text).casefold())
    key = " ".join(key.split())
    return _LEADING_THE.sub("", key) or key


def _acronym(text: str) -> str | None:
    """The letters of ``text`` if it reads as an acronym (``IBM``, ``U.S.``, ``U. S.``), else None."""
    letters = re.sub(r"[.\s]", "", text)
    low, high = ACRONYM_LENGTH
    if low <= len(letters) <= high and letters.isalpha() and letters.isupper():
        return letters
    return None


def _initials(text: str) -> set[str]:
    """Acronyms a multi-word name can have: its initials with and without `ACRONYM_SKIP_WORDS`."""
    words = _WORD_CHARS.findall(text)
    if len(words) < 2:
        return set()
    return {"".join(w[0] for w in words).upper(),
            "".join(w[0] for w in words if w.casefold() not in ACRONYM_SKIP_WORDS).upper()}


@dataclass(frozen=True)
class StringMatchCoref:
    """String-match coreference, deterministic and order-independent.

    1. Mentions of the same type whose `normalise_name` strings are equal form one group.
    2. A group is attached to another group of the same type when one of its mentions is
       (``acronyms``) an acronym (`ACRONYM_LENGTH` capital letters, dots and spaces ignored) of a
       multi-word mention of the other: their initials, with or without `ACRONYM_SKIP_WORDS`
       (``IBM`` ~ ``International Business Machines``); or (``last_names``, type ``person_type`` only) a
       one-word mention equal to the last word of a multi-word mention (``Lovelace`` ~ ``Ada Lovelace``).
    3. Attachment needs exactly one candidate group: ``Lovelace`` beside ``Ada Lovelace`` and
       ``Byron Lovelace`` stays on its own, so that two people are never merged through a shared surname.

    Not merged: different types, partial names other than the last word (``Ada`` ~ ``Ada Lovelace``),
    pronouns, aliases (``the Bard``), spelling variants (``Jean Paul`` vs ``Jean-Paul``).
    """

    person_type: str = "PER"
    acronyms: bool = True
    last_names: bool = True

    def __call__(self, mentions: Sequence[TypedMention]) -> list[list[int]]:
        groups: dict[tuple[str, str], list[int]] = {}  # (type, normalised string) -> mention positions
        for i, m in enumerate(mentions):
            groups.setdefault((m.type, normalise_name(m.text)), []).append(i)
        keys = list(groups)
        # The long forms, indexed so that each group finds its candidates in one look-up per rule:
        # (type, last word) of multi-word persons, (type, initials) of multi-word names.
        by_last: dict[tuple[str, str], set[int]] = {}
        by_initials: dict[tuple[str, str], set[int]] = {}
        for g, (etype, key) in enumerate(keys):
            words = key.split()
            if self.last_names and etype == self.person_type and len(words) >= 2:
                by_last.setdefault((etype, words[-1]), set()).add(g)
            if self.acronyms:
                for i in groups[keys[g]]:
                    for initials in _initials(mentions[i].text):
                        by_initials.setdefault((etype, initials), set()).add(g)

        parent = list(range(len(keys)))

        def root(g: int) -> int:
            while parent[g] != g:
                parent[g] = parent[parent[g]]
                g = parent[g]
            return g

        for g, (etype, key) in enumerate(keys):
            candidates: set[int] = set()
            if self.last_names and etype == self.person_type and len(key.split()) == 1:
                candidates |= by_last.get((etype, key), set())
            if self.acronyms:
                for i in groups[keys[g]]:
                    letters = _acronym(mentions[i].text)
                    if letters:
                        candidates |= by_initials.get((etype, letters), set())
            candidates.discard(g)
            if len(candidates) == 1:  # an ambiguous short form attaches to nothing
                parent[root(g)] = root(candidates.pop())
        clusters: dict[int, list[int]] = {}
        for g, key in enumerate(keys):
            clusters.setdefault(root(g), []).extend(groups[key])
        return [sorted(c) for c in clusters.values()]

    def explain(self, a: TypedMention, b: TypedMention) -> str | None:
        """The rule that links ``a`` and ``b`` directly (`RULE_SAME_NAME`, `RULE_ACRONYM`, `RULE_LAST_NAME`),
        or None. Mentions of one group need not be linked directly: a group is joined through its members."""
        if a.type != b.type:
            return None
        key_a, key_b = normalise_name(a.text), normalise_name(b.text)
        if key_a == key_b:
            return RULE_SAME_NAME
        if self.acronyms and ((_acronym(a.text) or "") in _initials(b.text)
                              or (_acronym(b.text) or "") in _initials(a.text)):
            return RULE_ACRONYM
        if self.last_names and a.type == self.person_type:
            short, long = sorted((key_a.split(), key_b.split()), key=len)
            if len(short) == 1 and len(long) >= 2 and short[0] == long[-1]:
                return RULE_LAST_NAME
        return None


def link_rules(coref: Coreference, mentions: Sequence[TypedMention], group: Sequence[int]) -> list[str]:
    """The rules that link the mentions of one group, sorted (`StringMatchCoref.explain` on each pair);
    a coreference without ``explain`` is named instead (``["coref:<name>"]``); one mention: ``[]``."""
    if len(group) < 2:
        return []
    explain = getattr(coref, "explain", None)
    if explain is None:
        return [f"coref:{getattr(coref, '__name__', type(coref).__name__)}"]
    rules = {explain(mentions[a], mentions[b]) for i, a in enumerate(group) for b in group[i + 1:]}
    return sorted(r for r in rules if r is not None)


#: The coreferences by name (the commands' ``--coref``, a repository's detection settings).
COREFERENCES: dict[str, Callable[[str], Coreference]] = {
    "string": lambda person_type: StringMatchCoref(person_type=person_type),
    "none": lambda person_type: singletons,
}
DEFAULT_COREF = "string"


def coreference(name: str, person_type: str = "PER") -> Coreference:
    """The coreference called ``name`` in `COREFERENCES`; ``person_type``: the schema's person type (last names)."""
    if name not in COREFERENCES:
        raise PaeeDataError(f"unknown coreference {name!r}; choose one of {sorted(COREFERENCES)}")
    return COREFERENCES[name](person_type)
