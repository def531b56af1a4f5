"""Self-contained PAEE checkpoints.

A checkpoint holds everything needed to rebuild the model and its featurizer on another machine with
no network: format name and version, model configuration (including the encoder's Hugging Face
configuration), featurizer configuration, the tokenizer (its `tokenizer.json` text), relation ids and
names, and the weights. It contains only tensors, strings, numbers, lists and dicts, so it loads with
``torch.load(weights_only=True)`` (no pickled code is ever executed).

Training state (optimizer, scheduler, RNG, step) is optional and only present in ``last.pt`` files
used for resuming; ``best.pt`` holds no training state.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from paee.data.featurizer import FeaturizerConfig
from paee.data.relations import RelationVocab
from paee.model.config import PaeeConfig

FORMAT_NAME = "paee-checkpoint"
#: Bump when the stored layout changes incompatibly; loading checks it.
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """The file is not a loadable PAEE checkpoint (wrong format, truncated, incompatible version)."""


@dataclass
class Checkpoint:
    """The parts of a checkpoint, ready to rebuild the model (`paee.model.paee.build_model`)."""

    model_config: PaeeConfig
    featurizer_config: FeaturizerConfig
    tokenizer: Tokenizer
    relations: RelationVocab
    state_dict: dict[str, torch.Tensor]
    training_state: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> None:
    """Write atomically (temporary file in the same folder, then rename): a crash never leaves half a file."""
    path = Path(path)
    payload: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "paee_version": _package_version(),
        "model_config": ckpt.model_config.to_dict(),
        "featurizer_config": ckpt.featurizer_config.to_json(),
        "tokenizer_json": ckpt.tokenizer.to_str(),
        "relations": ckpt.relations.to_json(),
        "state_dict": {k: v.detach().cpu() for k, v in ckpt.state_dict.items()},
        "metadata": dict(ckpt.metadata),
    }
    if ckpt.training_state is not None:
        payload["training_state"] = ckpt.training_state
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read and check a checkpoint; every failure is a `CheckpointError` naming the file and the cause."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for bad files
        raise CheckpointError(
            f"{path}: cannot be read as a PyTorch checkpoint (truncated or not a checkpoint): {e}"
        ) from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path}: not a PAEE checkpoint (no '{FORMAT_NAME}' format marker)")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version} is not supported by this package "
            f"(expects {FORMAT_VERSION}; written by paee {payload.get('paee_version', '?')})"
        )
    missing = [k for k in ("model_config", "featurizer_config", "tokenizer_json", "relations", "state_dict")
               if k not in payload]
    if missing:
        raise CheckpointError(f"{path}: PAEE checkpoint is missing {', '.join(missing)}")
    try:
        return Checkpoint(
            model_config=PaeeConfig.from_dict(payload["model_config"]),
            featurizer_config=FeaturizerConfig.from_json(payload["featurizer_config"]),
            tokenizer=Tokenizer.from_str(payload["tokenizer_json"]),
            relations=RelationVocab.from_json(payload["relations"]),
            state_dict=payload["state_dict"],
            training_state=payload.get("training_state"),
            metadata=payload.get("metadata", {}),
        )
    except Exception as e:  # a config that no longer fits the code: report, don't crash in a dataclass
        raise CheckpointError(f"{path}: PAEE checkpoint has an invalid configuration: {e}") from e


def _package_version() -> str:
    from paee import __version__

    return __version__
