"""Serving PAEE with Triton Inference Server: run the server (`server`) and query it (`client`).

Nothing here imports torch: clients and servers run without the training stack.
"""

from paee.serving.client import PaeeClient, PaeeServingError
from paee.serving.server import TritonServer, TritonServerError, find_triton, free_port

__all__ = ["PaeeClient", "PaeeServingError", "TritonServer", "TritonServerError", "find_triton", "free_port"]
