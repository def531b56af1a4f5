"""PAEE export tooling, installed as `paee_export`: ONNX graphs, ORT/OpenVINO/TensorRT, Triton repository."""
