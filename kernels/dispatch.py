"""The attention entry points the model calls: Triton on CUDA, the PyTorch (SDPA) reference elsewhere.

BYA_KERNELS=auto|triton|torch overrides the choice (`triton` on CPU needs TRITON_INTERPRET=1).
`backend_for(device)` names the backend a call on that device would use, so benchmarks can report it.
Argument checks run in every path, so a bad shape fails the same way on CPU and GPU.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from kernels import attention_ref as ref
from kernels.jit import interpreting, triton_available

BACKENDS = ("auto", "triton", "torch")
ENV_VAR = "BYA_KERNELS"
TRITON_HEAD_DIMS = (16, 32, 64, 128)  # mirrors attention_triton.SUPPORTED_HEAD_DIMS without importing triton


def requested_backend() -> str:
    """The backend asked for by BYA_KERNELS (default `auto`)."""
    value = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if value not in BACKENDS:
        raise ValueError(f"{ENV_VAR} must be one of {', '.join(BACKENDS)}, got {value!r}")
    return value


def backend_for(device: torch.device | str, head_dim: int | None = None) -> str:
    """`triton` or `torch`: what a kernel call with tensors on `device` would run.

    `auto` takes Triton only for CUDA tensors with a supported head_dim and an importable triton;
    `triton` forces it and fails loudly where it cannot run rather than silently measuring the wrong path.
    """
    device = torch.device(device)
    wanted = requested_backend()
    if wanted == "torch":
        return "torch"
    if wanted == "triton":
        if not triton_available():
            raise ValueError(f"{ENV_VAR}=triton but the triton package is not installed")
        if device.type == "cpu" and not interpreting():
            raise ValueError(
                f"{ENV_VAR}=triton on CPU tensors needs TRITON_INTERPRET=1 (Triton's interpreter)"
            )
        if device.type not in ("cpu", "cuda"):
            raise ValueError(f"{ENV_VAR}=triton cannot run on {device.type} tensors")
        return "triton"
    ok = device.type == "cuda" and triton_available() and (head_dim is None or head_dim in TRITON_HEAD_DIMS)
    return "triton" if ok else "torch"


def streaming_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kv_lens: torch.Tensor | Sequence[int] | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """Inference attention: q (B, H, Lq, D) over k/v (B, Hkv, Lk, D), the first kv_lens[b] keys valid.

    Keys are laid out [sink | cached chunks | this chunk] and padded to Lk; every query sees every valid
    key (no mask inside the valid keys at inference). Hkv may divide H (grouped-query attention).
    Differentiable: with gradients wanted it takes the SDPA path, whose backward training uses.
    """
    ref.check_attention_args(q, k, v)
    # the Triton kernel is forward-only: when autograd wants gradients (training), SDPA's backward runs
    wants_grad = torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, v))
    if not wants_grad and backend_for(q.device, q.shape[-1]) == "triton":
        from kernels.attention_triton import streaming_attention_triton

        return streaming_attention_triton(q, k, v, kv_lens, scale)
    return ref.streaming_attention_sdpa(q, k, v, kv_lens, scale)


def chunk_causal_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    ref_len: int,
    chunk_len: int,
    scale: float | None = None,
) -> torch.Tensor:
    """Training self-attention over [reference (ref_len) | chunks of chunk_len tokens]; differentiable.

    A query of chunk i sees the reference and chunks <= i; the reference sees only itself.
    """
    ref.check_attention_args(q, k, v)
    if backend_for(q.device, q.shape[-1]) == "triton":
        from kernels.chunk_causal import chunk_causal_attention_triton

        return chunk_causal_attention_triton(q, k, v, ref_len, chunk_len, scale)
    return ref.chunk_causal_attention_sdpa(q, k, v, ref_len, chunk_len, scale)


def routed_audio_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor,
    frame_tokens: int,
    scale: float | None = None,
) -> torch.Tensor:
    """Routed audio cross-attention: sum_k mask[b, n, k] * softmax(q K_k,t^T) V_k,t, frame-local.

    q (B, H, T*F, D) video-token queries; k, v (B, K, H, T*A, D) each character's audio tokens, A per
    frame; mask (B, T*F, K) router weights in [0, 1]; K = 1..8 (MAX_ROUTED_CHARACTERS). Differentiable.
    """
    ref.check_router_args(q, k, v, mask, frame_tokens)
    if backend_for(q.device, q.shape[-1]) == "triton":
        from kernels.router_triton import routed_audio_attention_triton

        return routed_audio_attention_triton(q, k, v, mask, frame_tokens, scale)
    return ref.routed_audio_attention_sdpa(q, k, v, mask, frame_tokens, scale)
