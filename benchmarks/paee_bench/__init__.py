"""PAEE benchmarks, installed as ``paee_bench`` (the folder stays ``benchmarks/``).

``paee-bench`` (`paee_bench.cli`) measures accuracy parity and latency / throughput of every way this
package can run a model: PyTorch eager (fp32, bf16, CUDA), ONNX Runtime (fp32, int8, CUDA), OpenVINO
(bf16, int8), TensorRT and the Triton ensemble over HTTP and gRPC, and reads the encoder's speed against
this machine's matrix-multiply peak measured in the same run. ``pytest benchmarks/ --benchmark-only``
runs the microbenchmarks of `benchmarks/test_micro.py`.

The scripts beside this package (``model_cost.py``, ``export_parity.py``, ``real_text.py``)
run as ``python benchmarks/<script>.py``.
"""
