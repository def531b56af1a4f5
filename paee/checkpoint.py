"""The checkpoint is the model artefact: a self-contained file, and the object every consumer rebuilds from.

A checkpoint holds everything needed to rebuild the model, its featurizer and its decoding on another
machine with no network: format name and version, the model configuration (`PaeeConfig`: encoder, the
featurizer's sizes, the relation vocabulary, head, loss), the tokenizer (its ``tokenizer.json`` text)
and the weights. It contains only tensors, strings, numbers, lists and dicts, so it loads with
``torch.load(weights_only=True)`` (no pickled code is ever executed).

`Checkpoint.build_model()`, `.featurizer()` and `.decode_config()` are the one way prediction, export,
serving and the benchmarks get a model, a featurizer and decoding settings from a file.

Training state (optimizer, scheduler, RNG, step) is optional and only present in ``last.pt`` files used
for resuming; ``best.pt`` holds no training state.

Format versions: 2 (this one) stores every size once, inside the model configuration. Version 1 files
(written before the renovation) stored the featurizer configuration and the relations beside the model
configuration, and N, R and the entity types again inside it; they are read and converted on load
(`_from_version_1`): the weights are the same.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from paee import __version__
from paee.data.decode import DecodeConfig
from paee.data.featurizer import Featurizer
from paee.errors import PaeeUserError
from paee.model.config import PaeeConfig
from paee.model.paee import PaeeModel, build_model

FORMAT_NAME = "paee-checkpoint"
#: Bump when the stored layout changes; loading converts the versions it knows (`CONVERTERS`).
FORMAT_VERSION = 2
#: Keys every payload of the current version holds.
REQUIRED_KEYS = ("model_config", "tokenizer_json", "state_dict")
#: Sizes version 1 stored inside the model configuration, derived now from the featurizer and relations.
_V1_MODEL_SIZES = ("num_relations", "num_entity_types", "max_entities")
_V1_HEAD_SIZES = ("hidden_size", "num_heads", "num_relations", "num_entity_types", "max_entities", "max_sentences")


#: How a checkpoint file starts: torch.save's zip archive, or the legacy format's pickle protocol byte.
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTO = b"\x80"
#: Names quoted in a message about many tensors.
NAMES_QUOTED = 3


def _some(names: list[str]) -> str:
    return ", ".join(names[:NAMES_QUOTED]) + (f", ... ({len(names) - NAMES_QUOTED} more)" if len(names) > NAMES_QUOTED else "")


def weights_problem(expected: dict[str, Any], found: dict[str, Any]) -> str | None:
    """One line on how ``found`` (a file's weights) differs from ``expected`` (the configured model's): missing
    and unexpected tensors and wrong shapes, the first few of each by name; None when they fit."""
    if not isinstance(found, dict):
        return f"the weights are {type(found).__name__}, not a dictionary of tensors"
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [f"{k} is {list(getattr(found[k], 'shape', ['not a tensor']))} in the file, {list(v.shape)} configured"
              for k, v in expected.items() if k in found and (not torch.is_tensor(found[k]) or found[k].shape != v.shape)]
    parts = [f"{len(names)} {what} ({_some(names)})" for names, what in
             ((missing, "tensor(s) missing"), (unexpected, "unexpected tensor(s)"), (shapes, "of the wrong shape")) if names]
    return "; ".join(parts) or None


class CheckpointError(PaeeUserError):
    """The file is not a loadable PAEE checkpoint (wrong format, truncated, incompatible version, weights
    that do not fit the configuration)."""


@dataclass
class Checkpoint:
    """The parts of a checkpoint, ready to rebuild the model, its featurizer and its decoding."""

    config: PaeeConfig
    tokenizer: Tokenizer
    state_dict: dict[str, torch.Tensor]
    training_state: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # where it was read from, for messages

    @classmethod
    def from_model(cls, model: PaeeModel, tokenizer: Tokenizer, **kwargs: Any) -> Checkpoint:
        """The checkpoint of a built model (its configuration and current weights)."""
        if model.config is None:
            raise CheckpointError("a model built by hand (config=None) cannot be checkpointed; use build_model")
        return cls(model.config, tokenizer, model.state_dict(), **kwargs)

    def build_model(self, encoder_dir: str | None = None) -> PaeeModel:
        """The model with these weights, in eval mode; weights that do not fit the configuration are a
        `CheckpointError` naming the file and the tensors."""
        model = build_model(self.config, encoder_dir)
        problem = weights_problem(model.state_dict(), self.state_dict)
        if problem:
            raise CheckpointError(f"{self.path or 'checkpoint'}: its weights do not fit its configuration: {problem}")
        model.load_state_dict(self.state_dict)
        broken = [name for name, value in self.state_dict.items()
                  if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all())]
        if broken:  # such a model predicts nothing, silently
            raise CheckpointError(f"{self.path or 'checkpoint'}: {len(broken)} weight tensor(s) hold NaN or infinite "
                                  f"values ({_some(broken)}): the training diverged; use an earlier checkpoint")
        return model.eval()

    def featurizer(self, **overrides: Any) -> Featurizer:
        """The model's featurizer; ``overrides`` change settings for this run (e.g. ``truncate=True``)."""
        return Featurizer(self.tokenizer, dataclasses.replace(self.config.featurizer, **overrides), self.config.relations)

    def decode_config(self, top_k: int | None = None, evidence_threshold: float | None = None) -> DecodeConfig:
        return self.config.decode_config(top_k, evidence_threshold)

    def save(self, path: str | Path) -> None:
        """Write atomically (temporary file in the same folder, then rename): a crash never leaves half a file."""
        path = Path(path)
        payload: dict[str, Any] = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "paee_version": __version__,
            "model_config": self.config.to_dict(),
            "tokenizer_json": self.tokenizer.to_str(),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict.items()},
            "metadata": dict(self.metadata),
        }
        if self.training_state is not None:
            payload["training_state"] = self.training_state
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            torch.save(payload, tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
        """Read and check a checkpoint; every failure is a `CheckpointError` naming the file and the cause."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no such checkpoint file")
        with open(path, "rb") as f:
            head = f.read(len(ZIP_MAGIC))
        if not (head.startswith(ZIP_MAGIC) or head[:1] == PICKLE_PROTO):
            raise CheckpointError(f"{path}: cannot be read as a PyTorch checkpoint: not a torch file (it starts with "
                                  f"{head!r}, not a zip archive or a pickle); is it the right file?")
        try:
            payload = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for bad files
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            if "Weights only load failed" in first_line:  # torch's advice to load unsafely: not ours to give
                first_line = "it holds objects other than tensors and plain data"
            first_line = first_line.split(". ")[0]  # torch's further sentences are advice for its own bug tracker
            raise CheckpointError(
                f"{path}: cannot be read as a PyTorch checkpoint (truncated or not a checkpoint): {first_line}"
            ) from err
        if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
            raise CheckpointError(f"{path}: not a PAEE checkpoint (no '{FORMAT_NAME}' format marker)")
        version = payload.get("format_version")
        if version not in CONVERTERS and version != FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: checkpoint format version {version} is not supported by this package (reads versions "
                f"{sorted({*CONVERTERS, FORMAT_VERSION})}; written by paee {payload.get('paee_version', '?')})"
            )
        try:
            payload = CONVERTERS.get(version, dict)(payload)
            missing = [k for k in REQUIRED_KEYS if k not in payload]
            if missing:
                raise CheckpointError(f"{path}: PAEE checkpoint is missing {', '.join(missing)}")
            return cls(
                config=PaeeConfig.from_dict(payload["model_config"]),
                tokenizer=Tokenizer.from_str(payload["tokenizer_json"]),
                state_dict=payload["state_dict"],
                training_state=payload.get("training_state"),
                metadata=payload.get("metadata", {}),
                path=path,
            )
        except CheckpointError:
            raise
        except Exception as err:  # a configuration that no longer fits the code: report, do not crash in a dataclass
            raise CheckpointError(f"{path}: PAEE checkpoint has an invalid configuration: {err}") from err


def _from_version_1(payload: dict[str, Any]) -> dict[str, Any]:
    """Version 1 -> 2: the featurizer configuration and the relations move into the model configuration,
    the sizes stored again there are dropped (they are derived now)."""
    for key in ("featurizer_config", "relations"):
        if key not in payload:
            raise CheckpointError(f"version 1 checkpoint is missing {key}")
    config = {k: v for k, v in payload["model_config"].items() if k not in _V1_MODEL_SIZES}
    config["head"] = {k: v for k, v in config.get("head", {}).items() if k not in _V1_HEAD_SIZES}
    config["featurizer"] = payload["featurizer_config"]
    config["relations"] = payload["relations"]
    return {**payload, "model_config": config}


#: Converters of older format versions to the current one.
CONVERTERS = {1: _from_version_1}


__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "Checkpoint", "CheckpointError", "weights_problem"]
