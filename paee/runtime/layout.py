"""The Triton model repository's layout: model names, asset files, and the schema of ``runtime.json``.

Written by `paee_export.repository.write_repository`, read by the python models in ``triton_repo/`` and by
`paee.runtime.pipeline.OnnxPipeline.from_repository` (the same graphs in process, no server)::

    REPO/
      paee/                  ensemble: DOCUMENT (JSON bytes) -> TRIPLES (JSON bytes)
      paee_preprocess/1/assets/{tokenizer.json, featurizer.json, serving.json (buckets, payload limit,
                             the detector of plain-text requests when exported with one)}
      paee_encoder/1/        CPU: graphs/<graph>/model.onnx + assets/runtime.json (mode "local")
                             GPU: assets/runtime.json (mode "bls") routing to native models by length
      paee_head/1/           graphs/head/model.onnx + assets/runtime.json
      paee_postprocess/1/assets/{relations.json, decode.json}
      paee_repository.json   the manifest (target, precision, buckets, dims)
      export_report.json     the export report

``runtime.json`` says, per graph, which file, which padded lengths, which runtime and precision
(`GraphRuntime`); nothing else decides how a served graph runs. Torch-free.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paee.data import jsonio
from paee.data.errors import PaeeDataError
from paee.data.detect import DetectionConfig
from paee.errors import PaeeUserError
from paee.runtime.sessions import Session, create_session

#: Model names of the repository (the ensemble is what clients call).
ENSEMBLE = "paee"
PREPROCESS = "paee_preprocess"
ENCODER_MODEL = "paee_encoder"
HEAD_MODEL = "paee_head"
POSTPROCESS = "paee_postprocess"
MODEL_NAMES = (ENSEMBLE, PREPROCESS, ENCODER_MODEL, HEAD_MODEL, POSTPROCESS)
#: The model that plays each role of `paee.runtime.contract.SERVING_STEPS`.
STEP_MODELS = {"preprocess": PREPROCESS, "encoder": ENCODER_MODEL, "head": HEAD_MODEL, "postprocess": POSTPROCESS}
#: The native models of the GPU flavour's two encoder graphs, behind the python router ``paee_encoder``.
ENCODER_SHORT_MODEL = "paee_encoder_short"
ENCODER_LONG_MODEL = "paee_encoder_long"

#: Folders and files inside a model.
VERSION = "1"
ASSETS = "assets"
GRAPHS_DIR = "graphs"
ONNX_FILE = "model.onnx"
PLAN_FILE = "model.plan"
CONFIG_FILE = "config.pbtxt"
MODEL_FILE = "model.py"
#: Asset files.
TOKENIZER_FILE = "tokenizer.json"
FEATURIZER_FILE = "featurizer.json"
SERVING_FILE = "serving.json"
RELATIONS_FILE = "relations.json"
DECODE_FILE = "decode.json"
RUNTIME_FILE = "runtime.json"
#: Files at the repository's top.
MANIFEST = "paee_repository.json"
REPORT = "export_report.json"
MANIFEST_FORMAT = "paee-triton-repository"

#: ``runtime.json`` modes: the python model runs the graphs itself, or routes to native models (BLS).
MODE_LOCAL = "local"
MODE_BLS = "bls"


class LayoutError(PaeeUserError):
    """A repository file is missing or does not follow the layout."""


def read_json(path: Path) -> Any:
    try:
        return jsonio.read_json(path)
    except PaeeDataError as err:
        raise LayoutError(str(err)) from err


def write_json(path: Path, obj: Any) -> None:
    jsonio.write_json_atomic(path, obj, indent=2)


def version_dir(repository: str | Path, model: str) -> Path:
    return Path(repository) / model / VERSION


def assets_dir(repository: str | Path, model: str) -> Path:
    return version_dir(repository, model) / ASSETS


def graph_path(graph: str) -> str:
    """Where a graph's ONNX file lies inside its model's version folder (relative, as runtime.json says)."""
    return f"{GRAPHS_DIR}/{graph}/{ONNX_FILE}"


@dataclass(frozen=True)
class GraphRuntime:
    """How one graph runs: its file (relative to the version folder), the padded lengths it serves, and
    the runtime and precision of its session."""

    name: str
    path: str
    length_range: tuple[int, int]
    backend: str
    precision: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "length_range": list(self.length_range),
                "backend": self.backend, "precision": self.precision}  # fmt: skip

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> GraphRuntime:
        low, high = obj["length_range"]
        return cls(str(obj["name"]), str(obj["path"]), (int(low), int(high)), str(obj["backend"]), str(obj["precision"]))

    def session(self, version: str | Path, threads: int | None = None) -> Session:
        return create_session(Path(version) / self.path, self.precision, threads=threads, backend=self.backend)


@dataclass(frozen=True)
class Route:
    """GPU flavour: the native Triton model that serves a length range (the router's BLS target)."""

    model: str
    length_range: tuple[int, int]

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "length_range": list(self.length_range)}


@dataclass(frozen=True)
class ModelRuntime:
    """The contents of a graph-running model's ``runtime.json``."""

    mode: str = MODE_LOCAL
    graphs: tuple[GraphRuntime, ...] = ()
    routes: tuple[Route, ...] = ()
    threads: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "threads": self.threads, "graphs": [g.to_json() for g in self.graphs],
                "routes": [r.to_json() for r in self.routes]}  # fmt: skip

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ModelRuntime:
        if obj.get("mode") not in (MODE_LOCAL, MODE_BLS):
            raise LayoutError(f"{RUNTIME_FILE}: unknown mode {obj.get('mode')!r} (expected {MODE_LOCAL!r} or {MODE_BLS!r})")
        routes = tuple(Route(str(r["model"]), (int(r["length_range"][0]), int(r["length_range"][1])))
                       for r in obj.get("routes", ()))  # fmt: skip
        return cls(obj["mode"], tuple(GraphRuntime.from_json(g) for g in obj.get("graphs", ())), routes,
                   obj.get("threads"))

    @classmethod
    def read(cls, version: str | Path) -> ModelRuntime:
        return cls.from_json(read_json(Path(version) / ASSETS / RUNTIME_FILE))


@dataclass(frozen=True)
class ServingSettings:
    """The preprocess model's settings (``serving.json``): length buckets, the payload limit, and how plain
    text is read (`paee.data.detect.DetectionConfig`; None: requests must carry their entities)."""

    buckets: Sequence[int]
    max_document_bytes: int
    detection: DetectionConfig | None = None

    def to_json(self) -> dict[str, Any]:
        return {"buckets": [int(b) for b in self.buckets], "max_document_bytes": int(self.max_document_bytes),
                "detection": None if self.detection is None else self.detection.to_json()}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ServingSettings:
        detection = obj.get("detection")  # absent in repositories written before detection
        return cls(tuple(int(b) for b in obj["buckets"]), int(obj["max_document_bytes"]),
                   None if detection is None else DetectionConfig.from_json(detection))

    def bucket(self, num_tokens: int) -> int:
        """The smallest bucket that holds ``num_tokens`` (the featurizer already enforced the maximum)."""
        for bucket in self.buckets:
            if num_tokens <= bucket:
                return int(bucket)
        raise LayoutError(f"{num_tokens} wordpieces exceed the largest length bucket {self.buckets[-1]}")


@dataclass(frozen=True)
class Manifest:
    """What ``paee_repository.json`` records about a repository (no machine-specific paths)."""

    target: str
    precision: str
    buckets: Sequence[int]
    dims: Mapping[str, int]
    models: Sequence[str]
    paee_version: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"format": MANIFEST_FORMAT, "format_version": 2, "target": self.target, "precision": self.precision,
                "buckets": list(self.buckets), "dims": dict(self.dims), "models": list(self.models),
                "paee_version": self.paee_version, **dict(self.extra)}  # fmt: skip


__all__ = [
    "ASSETS", "CONFIG_FILE", "DECODE_FILE", "ENCODER_LONG_MODEL", "ENCODER_MODEL", "ENCODER_SHORT_MODEL", "ENSEMBLE",
    "FEATURIZER_FILE", "GRAPHS_DIR", "HEAD_MODEL", "MANIFEST", "MODE_BLS", "MODE_LOCAL", "MODEL_FILE", "MODEL_NAMES",
    "ONNX_FILE", "PLAN_FILE", "POSTPROCESS", "PREPROCESS", "RELATIONS_FILE", "REPORT", "RUNTIME_FILE", "SERVING_FILE", "STEP_MODELS",
    "TOKENIZER_FILE", "VERSION", "GraphRuntime", "LayoutError", "Manifest", "ModelRuntime", "Route",
    "ServingSettings", "assets_dir", "graph_path", "read_json", "version_dir", "write_json",
]  # fmt: skip
