"""`BenchSettings`: every knob of a `paee-bench` run, with the full and the ``--quick`` defaults.

A setting left unset (None) takes its value from `FULL` or, with ``quick``, from `QUICK`; a value given
explicitly always wins. results.json records the resolved settings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paee.data.featurizer import MAX_SUPPORTED_LENGTH
from paee.errors import PaeeUserError
from paee_bench.backends import DEFAULT_BACKENDS
from paee_bench.environment import usable_cores

#: Defaults of a full run. Why these: the issue's sweep (batch 1/4/16, concurrency 1/8/32); 3 warm-up
#: documents plus one per length bucket; a 2048-wide matmul reaches the CPU kernels' steady state.
FULL: dict[str, Any] = {
    "synthetic_docs": 40, "batch_sizes": [1, 4, 16], "concurrency": [1, 8, 32], "warmup": 3, "throughput_docs": 32,
    "peak_size": None, "peak_repeats": 5, "head_loop_docs": 4, "head_loop_repeats": 3,
}  # fmt: skip
#: ``--quick``: a tiny model finishes in well under 2 minutes on 2 CPU cores.
QUICK: dict[str, Any] = {
    "synthetic_docs": 6, "batch_sizes": [1, 2], "concurrency": [1, 2], "warmup": 1, "throughput_docs": 4,
    "peak_size": 512, "peak_repeats": 3, "head_loop_docs": 2, "head_loop_repeats": 1,
}  # fmt: skip


@dataclass
class BenchSettings:
    """One benchmark run (the command-line options of `paee_bench.cli`)."""

    checkpoint: Path | None = None  # a PAEE checkpoint; or make one with make_checkpoint
    make_checkpoint: str | None = None  # "tiny" | "bert-base-random": a random-weight checkpoint made in OUT
    backends: list[str] = field(default_factory=lambda: list(DEFAULT_BACKENDS))
    docs: Path | None = None  # DocRED-format JSON; None: seeded synthetic documents
    limit: int | None = None  # the first K documents of ``docs``
    rel2id: Path | None = None  # relation vocabulary for make_checkpoint (default: the documents' own)
    out: Path = Path("runs/bench")
    quick: bool = False
    threads: int | None = None  # None: the usable cores
    max_length: int | None = None  # the longest document in wordpieces (None: the checkpoint's); longer ones are cut
    seed: int = 0
    triton_precision: str = "fp32"  # precision of the repository exported for the triton-* backends
    repository: Path | None = None  # serve this repository instead of exporting one
    url: str | None = None  # HTTP host:port of a running server (no server is started)
    grpc_url: str | None = None  # gRPC host:port of a running server
    progress: bool = True
    command: str = ""
    # sizes of the run; None takes FULL / QUICK
    synthetic_docs: int | None = None
    batch_sizes: list[int] | None = None
    concurrency: list[int] | None = None
    warmup: int | None = None
    throughput_docs: int | None = None
    peak_size: int | None = None
    peak_repeats: int | None = None
    head_loop_docs: int | None = None
    head_loop_repeats: int | None = None

    def resolved(self) -> BenchSettings:
        """A copy with every unset size taken from `QUICK` / `FULL`, and the thread count fixed."""
        preset = QUICK if self.quick else FULL
        values = {k: (v if getattr(self, k) is None else getattr(self, k)) for k, v in preset.items()}
        threads = self.threads or usable_cores()
        return dataclasses.replace(self, threads=threads, **values)

    def check(self) -> None:
        """Raise PaeeUserError (a ValueError) naming the option for settings that cannot work."""
        if (self.checkpoint is None) == (self.make_checkpoint is None):
            raise PaeeUserError("give exactly one of --checkpoint FILE and --make-checkpoint KIND")
        if self.checkpoint is not None and not Path(self.checkpoint).is_file():
            raise PaeeUserError(f"--checkpoint {self.checkpoint}: no such checkpoint file")
        if self.limit is not None and self.docs is None:
            raise PaeeUserError("--limit takes the first K documents of --docs; without --docs use --synthetic-docs")
        if self.docs is not None and not Path(self.docs).is_file():
            raise PaeeUserError(f"--docs {self.docs}: no such file")
        if self.rel2id is not None and not Path(self.rel2id).is_file():
            raise PaeeUserError(f"--rel2id {self.rel2id}: no such file")
        if self.max_length is not None and not 1 <= self.max_length <= MAX_SUPPORTED_LENGTH:
            raise PaeeUserError(f"--max-length must be in 1..{MAX_SUPPORTED_LENGTH}, got {self.max_length}")
        if self.repository is not None and not Path(self.repository).is_dir():
            raise PaeeUserError(f"--repository {self.repository}: no such folder")
        for name in ("batch_sizes", "concurrency"):
            values = getattr(self, name) or []
            if any(v < 1 for v in values):
                raise PaeeUserError(f"--{name.replace('_', '-')} must be positive integers, got {values}")
        for name in ("limit", "threads", "synthetic_docs", "throughput_docs"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise PaeeUserError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if self.out.exists() and not self.out.is_dir():
            raise PaeeUserError(f"--out {self.out} exists and is not a folder")

    def to_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


__all__ = ["BenchSettings", "FULL", "QUICK"]
