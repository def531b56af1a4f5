"""`paee-demo` (the README's main job) end to end on a short budget: corpus, training, export, the bundled
tritonserver, HTTP and gRPC queries; served triples equal PyTorch's, and the report is printed."""

from __future__ import annotations

import pytest

pytest.importorskip("tritonclient.grpc")
pytest.importorskip("onnxruntime")

from paee.cli.demo import DEFAULT_SIZES, main  # noqa: E402
from paee.serving.server import TritonServerError, find_triton  # noqa: E402

pytestmark = pytest.mark.slow


def test_demo_runs_end_to_end(tmp_path, capsys):
    try:
        find_triton()
    except TritonServerError as e:
        pytest.skip(f"no tritonserver: {e}")
    out = tmp_path / "demo"
    assert main(["--out", str(out), "--epochs", "1"]) == 0
    printed = capsys.readouterr().out
    n = DEFAULT_SIZES["test"]
    assert f"parity http: {n}/{n} documents" in printed
    assert f"parity grpc: {n}/{n} documents" in printed
    for row in ("triton-http", "triton-grpc", "pytorch in-process"):
        assert row in printed
    assert (out / "run" / "best.pt").is_file()
    assert (out / "triton_repo" / "paee" / "config.pbtxt").is_file()
