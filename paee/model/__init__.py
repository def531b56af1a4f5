"""PyTorch reference model: EncoderGraph, HeadGraph, losses (the exported modules are the trained ones)."""
