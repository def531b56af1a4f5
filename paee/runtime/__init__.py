"""The serving runtime, torch-free: the tensor contract (`contract`), runtime sessions (`sessions`), the
in-process pipeline over exported graphs (`pipeline`), the Triton python models' batching (`batching`)
and the model repository's layout (`layout`).

Floor 2 of the house (README, "Architecture"): imports the data layer, numpy and the optional graph
runtimes (onnxruntime, openvino), never torch and never the export tool.
"""
