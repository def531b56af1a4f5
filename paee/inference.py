"""Prediction with the PyTorch model: documents in, relation triples out.

`Predictor` is the PyTorch `paee.runtime.pipeline.DocumentRunner`: the same featurizer, length-sorted
batches, cropping and decoder as the exported pipeline and the served model, with the model's own
forward pass as the runner. `paee-predict`, the trainer's dev evaluation and the export's parity checks
all predict through it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from paee.checkpoint import Checkpoint
from paee.data.decode import DecodeConfig
from paee.data.featurizer import Featurizer
from paee.errors import PaeeUserError
from paee.model.paee import PaeeModel
from paee.runtime.contract import HEAD_OUTPUTS, MODEL_INPUTS
from paee.runtime.pipeline import DEFAULT_BATCH_SIZE, DocumentRunner


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` (CUDA when visible, else CPU) or a device name; a device this machine lacks is a user error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise PaeeUserError(f"--device {device!r} is not a device name (auto, cpu, cuda, cuda:1, ...): {err}") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise PaeeUserError(f"--device {device}: no CUDA device is visible to torch {torch.__version__} (use cpu or auto)")
    return resolved


def to_tensors(batch: Mapping[str, np.ndarray], device: torch.device, keys: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """The numeric entries of a collated batch (only ``keys`` when given) as tensors on ``device``."""
    return {
        k: torch.from_numpy(v).to(device)
        for k, v in batch.items()
        if (keys is None or k in keys) and v.dtype != np.object_  # titles stay on the host
    }


class Predictor(DocumentRunner):
    """Featurize, run the PyTorch model, decode: ``Predictor.from_checkpoint("best.pt").predict(docs)``."""

    def __init__(
        self,
        model: PaeeModel,
        featurizer: Featurizer,
        *,
        device: str | torch.device = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        decode_config: DecodeConfig | None = None,
    ):
        if batch_size < 1:
            raise PaeeUserError(f"batch size must be >= 1, got {batch_size}")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.featurizer = featurizer
        self.batch_size = batch_size
        self.decode_config = decode_config or DecodeConfig()

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "auto", top_k: int | None = None,
                        evidence_threshold: float | None = None, featurizer_overrides: Mapping[str, Any] | None = None,
                        **kwargs: Any) -> Predictor:
        """Model, featurizer and decoding of a checkpoint; ``featurizer_overrides`` change featurizer
        settings for this run (e.g. ``{"truncate": True}``), ``evidence_threshold`` the checkpoint's."""
        ckpt = Checkpoint.load(path)
        return cls(ckpt.build_model(), ckpt.featurizer(**dict(featurizer_overrides or {})), device=device,
                   decode_config=ckpt.decode_config(top_k, evidence_threshold), **kwargs)

    @torch.no_grad()
    def run_batch(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        was_training = self.model.training
        self.model.eval()
        try:
            out = self.model(to_tensors(batch, self.device, MODEL_INPUTS))
        finally:
            self.model.train(was_training)
        return {name: getattr(out, name).float().cpu().numpy() for name in HEAD_OUTPUTS}
