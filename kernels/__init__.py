"""Attention kernels of the model: Triton on CUDA, PyTorch references on CPU, one dispatch for both.

Import the public entry points from here; `kernels.bench` measures them against their baselines.
"""

from kernels.dispatch import backend_for, chunk_causal_attention, routed_audio_attention, streaming_attention

__all__ = ["backend_for", "chunk_causal_attention", "routed_audio_attention", "streaming_attention"]
