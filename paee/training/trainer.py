"""The training loop: AdamW with separate encoder/head learning rates, linear warm-up and decay,
gradient accumulation and clipping, mixed precision on GPU, dev evaluation each epoch, `best.pt` kept
by dev F1, `last.pt` for resuming, a JSON-lines metrics log, and DDP under `torchrun`.

Reference settings (paper and ATLOP): lr 5e-5 encoder / 1e-4 head for BERT-base, 6% warm-up, 30 epochs,
batch 4, grad-norm clip 1.0.
"""

from __future__ import annotations

import dataclasses

import json
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tokenizers import Tokenizer
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from paee.checkpoint import Checkpoint, CheckpointError, weights_problem
from paee.data.featurizer import DocFeatures, Featurizer, collate
from paee.data.schema import Document
from paee.errors import PaeeUserError
from paee.evaluation.metrics import Scores, evaluate, train_fact_names
from paee.inference import Predictor, to_tensors
from paee.model.paee import PaeeModel
from paee.training.plots import plot_training_curves

BEST_CHECKPOINT = "best.pt"
LAST_CHECKPOINT = "last.pt"
METRICS_LOG = "metrics.jsonl"
CURVES_PLOT = "training_curves.png"
#: Batches per length-sorting pool in training (see `Trainer._batches`).
BUCKET_POOL_BATCHES = 16


@dataclass
class TrainConfig:
    """Optimisation settings. Defaults follow the paper / ATLOP for BERT-base on DocRED."""

    epochs: int = 30
    batch_size: int = 4
    grad_accum_steps: int = 1  # effective batch = batch_size * grad_accum_steps * world size
    lr_encoder: float = 5e-5
    lr_head: float = 1e-4
    adam_epsilon: float = 1e-6  # ATLOP's value
    weight_decay: float = 0.0
    warmup_ratio: float = 0.06
    max_grad_norm: float = 1.0
    max_steps: int | None = None  # stop after this many optimizer steps (bounded runs); None = all epochs
    seed: int = 66
    amp: str = "auto"  # auto (bf16/fp16 on CUDA, off on CPU) | off | bf16 | fp16
    eval_batch_size: int = 8
    truncate: bool = False  # cut documents over max_length (the lost mentions are logged); never stored in the model
    log_every: int = 10  # optimizer steps between loss lines in metrics.jsonl
    eval_every_epochs: int = 1


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


@dataclass(frozen=True)
class _Dist:
    """Distributed context (world size 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _init_distributed() -> _Dist:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return _Dist()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    return _Dist(dist.get_rank(), world_size, local_rank)


def _amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]


class Trainer:
    """Trains one PAEE model and writes `best.pt`, `last.pt` and `metrics.jsonl` into `out_dir`.

    Args:
        model: a model from `paee.model.paee.build_model` (its configuration travels into the checkpoints).
        tokenizer: the model's tokenizer (with the configuration, it makes the featurizer).
        out_dir: the run folder.
        config: the optimisation settings.
        device: default CUDA (this rank's GPU under torchrun) when visible, else CPU.
    """

    def __init__(
        self,
        model: PaeeModel,
        tokenizer: Tokenizer,
        out_dir: str | Path,
        config: TrainConfig,
        device: torch.device | None = None,
    ):
        if model.config is None:
            raise PaeeUserError("the trainer needs a model built from a PaeeConfig (build_model)")
        self.dist = _init_distributed()
        self.config = config
        self.out_dir = Path(out_dir)
        self.model_config = model.config
        self.tokenizer = tokenizer
        self.featurizer = Featurizer(tokenizer, dataclasses.replace(self.model_config.featurizer, truncate=config.truncate),
                                     self.model_config.relations)
        self.relations = self.model_config.relations
        self.pad_id = self.featurizer.spec.pad_id
        if device is None:
            device = torch.device(f"cuda:{self.dist.local_rank}" if torch.cuda.is_available() else "cpu")
        self.device = device
        self.model = model.to(device)
        self.ddp_model: torch.nn.Module = self.model
        if self.dist.world_size > 1:
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=True,  # ablation variants leave some parameters unused
            )
        self.amp_dtype = _amp_dtype(config.amp, device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

    # --- public -------------------------------------------------------------------------------

    def fit(
        self,
        train_docs: Sequence[Document],
        dev_docs: Sequence[Document] | None = None,
        train_facts_for_ign: frozenset | None = None,
        resume: bool = True,
    ) -> dict[str, Any]:
        """Train; returns a summary with the best dev scores. Resumes from `last.pt` when present."""
        cfg = self.config
        set_seed(cfg.seed)
        train_features = self.featurizer.featurize_many(train_docs)
        dev_features = self.featurizer.featurize_many(dev_docs) if dev_docs else []
        ign_facts = train_facts_for_ign if train_facts_for_ign is not None else train_fact_names(train_docs)

        steps_per_epoch = math.ceil(len(train_features) / (cfg.batch_size * self.dist.world_size * cfg.grad_accum_steps))
        total_steps = steps_per_epoch * cfg.epochs
        if cfg.max_steps is not None:
            total_steps = min(total_steps, cfg.max_steps)
        optimizer = self._optimizer()
        scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)

        state = {"epoch": 0, "step": 0, "best_f1": -1.0, "best_epoch": None}
        if resume and (self.out_dir / LAST_CHECKPOINT).exists():
            state = self._resume(optimizer, scheduler)

        self.out_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.out_dir / METRICS_LOG, "a", encoding="utf-8") if self.dist.is_main else None
        try:
            self._log(log, {"event": "start", "train_docs": len(train_features), "dev_docs": len(dev_features),
                            "total_steps": total_steps, "config": asdict(cfg), "resumed_from_step": state["step"]})
            started = time.perf_counter()
            while state["epoch"] < cfg.epochs and state["step"] < total_steps:
                epoch = state["epoch"]
                self._train_epoch(train_features, optimizer, scheduler, state, total_steps, log)
                state["epoch"] = epoch + 1
                if dev_features and ((epoch + 1) % cfg.eval_every_epochs == 0 or state["step"] >= total_steps
                                     or state["epoch"] >= cfg.epochs):
                    scores = self.evaluate(dev_docs, dev_features, ign_facts)
                    improved = scores.f1 > state["best_f1"]
                    if improved:
                        state["best_f1"], state["best_epoch"] = scores.f1, epoch + 1
                        self._save(self.out_dir / BEST_CHECKPOINT, None, {"dev": scores.to_json(), **state})
                    self._log(log, {"event": "eval", "epoch": epoch + 1, "step": state["step"],
                                    "dev": scores.to_json(), "best_f1": state["best_f1"], "improved": improved})
                elif not dev_features:
                    self._save(self.out_dir / BEST_CHECKPOINT, None, dict(state))
                self._save(self.out_dir / LAST_CHECKPOINT, self._training_state(optimizer, scheduler, state), dict(state))
            summary = {"event": "end", **state, "seconds": round(time.perf_counter() - started, 1)}
            self._log(log, summary)
        finally:
            if log:
                log.close()
        if self.dist.is_main:
            plot_training_curves(self.out_dir / METRICS_LOG, self.out_dir / CURVES_PLOT, title=str(self.out_dir))
        return summary

    def evaluate(self, docs: Sequence[Document], features: Sequence[DocFeatures], ign_facts: frozenset) -> Scores:
        """Dev scores, decoded exactly as `paee-predict` decodes this model (gating included)."""
        predictor = Predictor(self.model, self.featurizer, device=self.device, batch_size=self.config.eval_batch_size,
                              decode_config=self.model_config.decode_config())
        records = predictor.predict_records(docs, features=features)
        self.model.train()
        return evaluate(records, docs, ign_facts, self.model_config.featurizer.pair_types)

    # --- internals ----------------------------------------------------------------------------

    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        encoder_params = [p for p in self.model.encoder.parameters() if p.requires_grad]
        encoder_ids = {id(p) for p in encoder_params}
        head_params = [p for p in self.model.parameters() if p.requires_grad and id(p) not in encoder_ids]
        return torch.optim.AdamW(
            [{"params": encoder_params, "lr": cfg.lr_encoder}, {"params": head_params, "lr": cfg.lr_head}],
            eps=cfg.adam_epsilon, weight_decay=cfg.weight_decay,
            foreach=True,  # one multi-tensor kernel per step, not ~10 per parameter (torch's default on CPU)
        )

    def _batches(self, features: Sequence[DocFeatures], epoch: int) -> list[list[int]]:
        """Shuffled, length-bucketed batches for this epoch and rank (deterministic in seed and epoch).

        Documents are shuffled, cut into pools of BUCKET_POOL_BATCHES batches, sorted by length inside
        each pool, batched, and the batches shuffled again: batches stay random but a short document
        rarely gets padded to the longest document's length (which also switches the encoder to its k-window path).
        """
        rng = np.random.default_rng(self.config.seed + epoch)
        order = rng.permutation(len(features)).tolist()
        order = order[self.dist.rank::self.dist.world_size]
        bs = self.config.batch_size
        pool = bs * BUCKET_POOL_BATCHES
        batches: list[list[int]] = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start:start + pool], key=lambda i: len(features[i].input_ids))
            batches += [chunk[i:i + bs] for i in range(0, len(chunk), bs)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def _train_epoch(self, features, optimizer, scheduler, state, total_steps, log) -> None:
        cfg = self.config
        self.ddp_model.train()
        batches = self._batches(features, state["epoch"])
        bar = tqdm(batches, desc=f"epoch {state['epoch'] + 1}/{cfg.epochs}", unit="batch", disable=not self.dist.is_main)
        running: list[float] = []
        for i, idx in enumerate(bar):
            batch = to_tensors(
                collate([features[j] for j in idx], pad_id=self.pad_id, num_relations=self.relations.num_classes),
                self.device,
            )
            with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
                out = self.ddp_model(batch)
            loss = out.loss.total / cfg.grad_accum_steps
            self.scaler.scale(loss).backward()
            running.append(float(out.loss.total.detach()))
            if (i + 1) % cfg.grad_accum_steps and i + 1 != len(batches):
                continue
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
            self.scaler.step(optimizer)
            self.scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            bar.set_postfix(loss=f"{np.mean(running[-20:]):.4f}")
            if state["step"] % cfg.log_every == 0:
                parts = {k: round(float(v.detach()), 6) for k, v in out.loss._asdict().items() if k != "total"}
                self._log(log, {"event": "step", "epoch": state["epoch"] + 1, "step": state["step"],
                                "loss": round(float(np.mean(running[-cfg.log_every * cfg.grad_accum_steps:])), 6),
                                "parts": parts, "lr": [g["lr"] for g in optimizer.param_groups]})
            if state["step"] >= total_steps:
                break

    def _training_state(self, optimizer, scheduler, state) -> dict[str, Any]:
        return {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "state": {k: v for k, v in state.items()},
        }

    def _resume(self, optimizer, scheduler) -> dict[str, Any]:
        ckpt = Checkpoint.load(self.out_dir / LAST_CHECKPOINT, map_location=self.device)
        if ckpt.training_state is None:
            raise CheckpointError(f"{self.out_dir / LAST_CHECKPOINT} holds no training state to resume from")
        problem = weights_problem(self.model.state_dict(), ckpt.state_dict)
        if problem:  # a run directory reused with other model options
            raise CheckpointError(f"{self.out_dir / LAST_CHECKPOINT} does not fit this run's model ({problem}); "
                                  "use the options it was trained with, another --out, or --no-resume")
        self.model.load_state_dict(ckpt.state_dict)
        ts = ckpt.training_state
        optimizer.load_state_dict(ts["optimizer"])
        scheduler.load_state_dict(ts["scheduler"])
        self.scaler.load_state_dict(ts["scaler"])
        torch.set_rng_state(ts["torch_rng"].cpu())
        state = dict(ts["state"])
        if self.dist.is_main:
            tqdm.write(f"resuming from {self.out_dir / LAST_CHECKPOINT}: epoch {state['epoch']}, step {state['step']}")
        return state

    def _save(self, path: Path, training_state: dict | None, metadata: dict) -> None:
        if not self.dist.is_main:
            return
        Checkpoint(self.model_config, self.tokenizer, self.model.state_dict(), training_state, metadata).save(path)

    def _log(self, log, record: dict) -> None:
        if log is None:
            return
        log.write(json.dumps(record) + "\n")
        log.flush()
