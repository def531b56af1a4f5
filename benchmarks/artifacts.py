"""The ONNX files and the Triton repository the backends need, exported once from the checkpoint's model.

Each artefact is made on first request (a run of ``--backends torch`` exports nothing) with the same
`paee_export` steps `paee-export` uses, so every backend runs what a deployment would ship:

============== =========================================================================================
artefact       what
============== =========================================================================================
plain          ``encoder``, ``encoder_long``, ``head`` as exported (TorchScript encoders, dynamo head)
fused          the encoders through ONNX Runtime's transformer optimizer (one fused Attention per layer)
int8           the fused encoders with ONNX Runtime dynamic quantisation (what ``--precision int8`` ships)
openvino       the dynamo export of ``encoder`` (what ``--precision bf16`` ships for OpenVINO; OpenVINO
               misreads the TorchScript trace's entity pooling)
int8_openvino  that export statically quantised (QDQ, calibrated on synthetic documents; what
               ``--precision int8`` ships for OpenVINO)
repository     a CPU Triton repository of the chosen precision (`paee_export.repository.write_repository`)
============== =========================================================================================

Export-time validation is off (``validate=False``): the benchmark's own parity table measures every
backend against PyTorch on the benchmark documents, which is the stronger check.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paee_export.graphs import ENCODER, ENCODER_GRAPHS, ENCODER_LONG, HEAD, ExportDims

if TYPE_CHECKING:
    from paee.training.checkpoint import Checkpoint
    from paee.data.featurizer import FeaturizerConfig
    from paee.model.paee import PaeeModel

#: Triton precisions a repository can be written in here (CPU flavour).
REPOSITORY_PRECISIONS = ("fp32", "int8", "bf16")


class Artifacts:
    """Lazily exported files under ``out_dir`` (see the module docstring)."""

    def __init__(self, model: "PaeeModel", ckpt: "Checkpoint", featurizer_config: "FeaturizerConfig", out_dir: Path,
                 progress: bool = True) -> None:
        self.model = model
        self.ckpt = ckpt
        self.featurizer_config = featurizer_config
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.dims = ExportDims.from_model(model, featurizer_config.max_mentions, featurizer_config.max_sentences)
        self.num_layers = int(model.encoder.backbone.config.num_hidden_layers)
        self.info: dict[str, Any] = {}  # what was made, how long it took, fused attention counts
        self._made: dict[str, Any] = {}

    def _once(self, name: str, make: Callable[[], Any]) -> Any:
        if name not in self._made:
            started = time.perf_counter()
            if self.progress:
                print(f"exporting {name} ...", file=sys.stderr, flush=True)
            self._made[name] = make()
            self.info.setdefault(name, {})["seconds"] = round(time.perf_counter() - started, 1)
        return self._made[name]

    def plain(self) -> dict[str, Path]:
        def make() -> dict[str, Path]:
            from paee_export.onnx_export import export_graphs

            exported = export_graphs(self.model, self.out_dir / "onnx", self.dims, validate=False)
            return {name: e.path for name, e in exported.items()}

        return self._once("plain", make)

    def fused(self) -> dict[str, Path]:
        def make() -> dict[str, Path]:
            from paee_export.optimize import optimize_encoder

            paths = {}
            for name in ENCODER_GRAPHS:
                paths[name] = self.out_dir / "onnx" / f"{name}.opt.onnx"
                stats = optimize_encoder(self.plain()[name], paths[name], self.dims.num_heads, self.dims.hidden_size,
                                         expected_attention=self.num_layers)
                self.info.setdefault("fused", {})[f"{name}_fused_attention"] = stats.fused_attention
            self.info["fused"]["layers"] = self.num_layers
            return paths

        return self._once("fused", make)

    def _quantized(self, sources: dict[str, Path], suffix: str) -> dict[str, Path]:
        from paee_export.optimize import quantize_int8

        paths = {}
        for name, source in sources.items():
            paths[name] = source.with_name(source.name.replace(".onnx", f".{suffix}.onnx"))
            quantize_int8(source, paths[name])
        return paths

    def int8(self) -> dict[str, Path]:
        return self._once("int8", lambda: self._quantized(self.fused(), "int8"))

    def int8_openvino(self) -> Path:
        """The OpenVINO encoder statically quantised (QDQ, ranges from synthetic calibration documents), as
        ``paee-export --precision int8`` ships it; OpenVINO reads standard ONNX ops, not ORT's fused ones."""

        def make() -> Path:
            from paee.data.featurizer import Featurizer
            from paee_export.calibration import quantize_encoder_static

            source = self.openvino_encoder()
            featurizer = Featurizer(self.ckpt.tokenizer, self.featurizer_config, self.ckpt.relations)
            path = source.with_name("encoder.ov.int8-static.onnx")
            calibrated = quantize_encoder_static(source, path, featurizer, self.dims.window)
            self.info.setdefault("int8_openvino", {})["calibration"] = calibrated
            return path

        return self._once("int8_openvino", make)

    def openvino_encoder(self) -> Path:
        def make() -> Path:
            from paee_export.graphs import graph_specs
            from paee_export.onnx_export import export_graph

            spec = graph_specs(self.dims)[ENCODER]
            return export_graph(self.model, spec, self.out_dir / "onnx" / "encoder.ov.onnx", validate=False,
                                exporter="dynamo").path

        return self._once("openvino", make)

    def head(self) -> Path:
        return self.plain()[HEAD]

    def repository(self, precision: str, threads: int | None, max_batch_size: int) -> Path:
        """A CPU Triton repository serving the files of ``precision`` (the layout `paee-export` writes)."""
        if precision not in REPOSITORY_PRECISIONS:
            raise ValueError(f"Triton precision {precision!r} is not one of {REPOSITORY_PRECISIONS}")

        def make() -> Path:
            from paee_export.repository import write_repository

            runtime = None
            if precision == "fp32":
                encoders = self.fused()
            elif precision == "int8":
                encoders = self.int8()
            else:  # OpenVINO cannot compile the long encoder: it stays ORT fp32, as paee-export ships it
                encoders = {ENCODER: self.openvino_encoder(), ENCODER_LONG: self.fused()[ENCODER_LONG]}
                runtime = {ENCODER_LONG: {"precision": "fp32", "backend": "onnxruntime"}}
            head_config = self.ckpt.model_config.head
            return write_repository(
                self.out_dir / f"triton_repo_{precision}", encoder_onnx=encoders, head_onnx=self.head(),
                tokenizer_json=self.ckpt.tokenizer, featurizer_config=self.featurizer_config,
                relations=self.ckpt.relations, precision=precision, max_batch_size=max_batch_size, instances=1,
                force=True, window=self.dims.window, threads=threads, graph_runtime=runtime,
                gate_threshold=head_config.ppp_threshold if head_config.gate_pairs else None,
            )  # fmt: skip

        return self._once(f"repository_{precision}", make)


__all__ = ["Artifacts", "REPOSITORY_PRECISIONS"]
