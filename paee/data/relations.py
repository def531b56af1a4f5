"""Relation vocabulary: relation ids (``"P17"``) <-> class indices, with the NA/threshold class at 0."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from paee.data.errors import PaeeDataError
from paee.data.jsonio import read_json

#: Name of the no-relation class in DocRED's rel2id.json; it is always class 0 (the threshold class).
NA_RELATION = "Na"


@dataclass(frozen=True)
class RelationVocab:
    """Ordered relation ids; index 0 is ``Na`` (no relation, and the learned threshold class).

    Attributes:
        ids: relation ids by class index, ``ids[0] == "Na"``.
        names: human-readable names by relation id (from ``rel_info.json``), may be partial.
    """

    ids: tuple[str, ...]
    names: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.ids or self.ids[0] != NA_RELATION:
            raise PaeeDataError(f"relation vocabulary must start with {NA_RELATION!r} at index 0, got {self.ids[:3]}")
        if len(set(self.ids)) != len(self.ids):
            raise PaeeDataError("relation vocabulary has duplicate relation ids")
        object.__setattr__(self, "_index", {r: i for i, r in enumerate(self.ids)})

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, relation: object) -> bool:
        return relation in self._index  # type: ignore[attr-defined]

    @property
    def num_classes(self) -> int:
        """Number of classes including NA (R in the tensor contract)."""
        return len(self.ids)

    def index(self, relation: str) -> int:
        """Class index of a relation id; KeyError for unknown ids."""
        return self._index[relation]  # type: ignore[attr-defined]

    def name(self, index: int) -> str:
        """Readable name of class ``index`` (falls back to the id)."""
        rel = self.ids[index]
        return self.names.get(rel, rel)

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def from_ids(cls, relations: Iterable[str], names: Mapping[str, str] | None = None) -> RelationVocab:
        """Vocabulary of the given relation ids (sorted, de-duplicated), NA prepended."""
        rels = sorted({r for r in relations if r != NA_RELATION})
        return cls((NA_RELATION, *rels), dict(names or {}))

    @classmethod
    def from_rel2id(cls, rel2id: Mapping[str, int], names: Mapping[str, str] | None = None) -> RelationVocab:
        """From DocRED's ``rel2id`` mapping (``{"Na": 0, "P6": 1, ...}``)."""
        by_index = sorted(rel2id.items(), key=lambda kv: kv[1])
        if [i for _, i in by_index] != list(range(len(by_index))):
            raise PaeeDataError("rel2id indices must be 0..R-1 without gaps")
        return cls(tuple(r for r, _ in by_index), dict(names or {}))

    @classmethod
    def from_files(cls, rel2id_path: str | Path, rel_info_path: str | Path | None = None) -> RelationVocab:
        """Read ``rel2id.json`` and, optionally, ``rel_info.json`` (relation id -> name)."""
        rel2id = _read_json_object(rel2id_path)
        names = read_relation_names(rel_info_path) if rel_info_path else {}
        return cls.from_rel2id(rel2id, names)

    def to_json(self) -> dict:
        return {"ids": list(self.ids), "names": dict(self.names)}

    @classmethod
    def from_json(cls, obj: Mapping) -> RelationVocab:
        return cls(tuple(obj["ids"]), dict(obj.get("names", {})))


def read_relation_names(rel_info_path: str | Path) -> dict[str, str]:
    """DocRED's ``rel_info.json``: relation id -> readable name."""
    return {str(k): str(v) for k, v in _read_json_object(rel_info_path).items()}


def _read_json_object(path: str | Path) -> dict:
    obj = read_json(path)
    if not isinstance(obj, dict):
        raise PaeeDataError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj
