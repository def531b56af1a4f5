"""Detector label -> entity type: the table that ties a mention detector to a model's schema.

A detector labels its mentions in its own label set (spaCy's English pipelines: OntoNotes' PERSON, GPE,
DATE, ...); a model knows its schema's entity types (DocRED: PER, ORG, LOC, TIME, NUM, MISC). A `TypeMap`
is the table between the two, plus an optional default for labels without a row.

A model's type map is part of its schema: `FeaturizerConfig.type_map` stores one when training was given
one (``paee-train --type-map FILE``); a model that stores none gets its schema's row of
`SCHEMA_TYPE_MAPS` (DocRED's types: `DOCRED_TYPE_MAP`); `schema_type_map` decides, in one place.
Torch-free, dependency-free.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paee.data.errors import PaeeDataError
from paee.data.schema import DOCRED_ENTITY_TYPES

__all__ = ["DOCRED_TYPE_MAP", "ONTONOTES_TO_DOCRED", "SCHEMA_TYPE_MAPS", "TypeMap", "read_type_map", "schema_type_map"]

#: spaCy's OntoNotes labels -> DocRED types (see DocRED's annotation guide: dates and times are TIME,
#: every quantity is NUM, places of all kinds LOC, and the rest MISC).
ONTONOTES_TO_DOCRED: dict[str, str] = {
    "PERSON": "PER",
    "ORG": "ORG",
    "GPE": "LOC", "LOC": "LOC", "FAC": "LOC",
    "DATE": "TIME", "TIME": "TIME",
    "CARDINAL": "NUM", "QUANTITY": "NUM", "MONEY": "NUM", "PERCENT": "NUM", "ORDINAL": "NUM",
    "NORP": "MISC", "EVENT": "MISC", "WORK_OF_ART": "MISC", "LAW": "MISC", "LANGUAGE": "MISC",
    "PRODUCT": "MISC",
}


@dataclass(frozen=True)
class TypeMap:
    """Detector label -> model entity type: ``table``, else ``default`` (None: the label is dropped).

    Plain data, so that a checkpoint can store it (`to_json`) next to the entity types it was trained on.
    """

    table: Mapping[str, str]
    default: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", dict(self.table))  # a private copy: the map must not change later
        bad = {k: v for k, v in self.table.items() if not (isinstance(k, str) and isinstance(v, str))}
        if bad:
            raise PaeeDataError(f"TypeMap.table maps labels (strings) to types (strings); got {bad!r}")
        if self.default is not None and not isinstance(self.default, str):
            raise PaeeDataError(f"TypeMap.default must be a type string or None, got {self.default!r}")

    def type_of(self, label: str) -> str | None:
        """The model type of a detector label, or None when the label is to be dropped."""
        return self.table.get(label, self.default)

    def check(self, entity_types: Sequence[str]) -> None:
        """Raise `PaeeDataError` listing every target type outside ``entity_types``."""
        targets = set(self.table.values()) | ({self.default} if self.default is not None else set())
        unknown = sorted(targets - set(entity_types))
        if unknown:
            labels = sorted(k for k, v in self.table.items() if v in unknown)
            raise PaeeDataError(f"the type map yields types {unknown} (from labels {labels}"
                                f"{' or the default' if self.default in unknown else ''}) outside the "
                                f"model's entity types ({', '.join(entity_types)})")

    def to_json(self) -> dict[str, Any]:
        return {"table": dict(self.table), "default": self.default}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TypeMap:
        """From `to_json`'s object, or from a bare table ``{label: type}`` (no default)."""
        if isinstance(obj, Mapping) and isinstance(obj.get("table"), Mapping) and set(obj) <= {"table", "default"}:
            return cls(obj["table"], obj.get("default"))
        if isinstance(obj, Mapping) and all(isinstance(v, str) for v in obj.values()):
            return cls(obj)
        raise PaeeDataError(f"a type map is {TYPE_MAP_FILE_FORM}; got {obj!r}")


#: The DocRED map: OntoNotes labels by `ONTONOTES_TO_DOCRED`, any other label (`RuleDetector`'s ``NAME``,
#: a custom pipeline's) MISC.
DOCRED_TYPE_MAP = TypeMap(ONTONOTES_TO_DOCRED, default="MISC")


#: The type map of a model that stores none, by its entity types (DocRED and Re-DocRED share theirs).
SCHEMA_TYPE_MAPS: dict[tuple[str, ...], TypeMap] = {DOCRED_ENTITY_TYPES: DOCRED_TYPE_MAP}

#: What a type-map file holds, for messages.
TYPE_MAP_FILE_FORM = ('JSON {"table": {"PERSON": "PER", ...}, "default": "MISC" or null}, or just the table '
                      '{"PERSON": "PER", ...} (labels without a row are then dropped)')


def schema_type_map(entity_types: Sequence[str], stored: Mapping[str, Any] | TypeMap | None = None) -> TypeMap:
    """The type map of a model with these entity types: ``stored`` (its own), else its schema's row of
    `SCHEMA_TYPE_MAPS`; checked against the types. Neither: `PaeeDataError` naming the options."""
    if stored is not None:
        type_map = stored if isinstance(stored, TypeMap) else TypeMap.from_json(stored)
    elif tuple(entity_types) in SCHEMA_TYPE_MAPS:
        type_map = SCHEMA_TYPE_MAPS[tuple(entity_types)]
    else:
        raise PaeeDataError(f"the model's entity types ({', '.join(entity_types)}) have no detector type map: "
                            f"give one with --type-map FILE at prediction or export, or train with paee-train "
                            f"--type-map FILE ({TYPE_MAP_FILE_FORM})")
    type_map.check(entity_types)
    return type_map


def read_type_map(path: str | Path) -> TypeMap:
    """A type map from a JSON file (`TYPE_MAP_FILE_FORM`)."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PaeeDataError(f"cannot read the type map {path}: {e}") from e
    try:
        return TypeMap.from_json(obj)
    except PaeeDataError as e:
        raise PaeeDataError(f"{path}: {e}") from e
