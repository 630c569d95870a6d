"""Fused routed audio cross-attention: every character's per-frame softmax, weighted and summed, in one pass.

A program owns BLOCK_T tokens of one frame for one (batch, head), so all its rows share each character's
A audio keys of that frame. It loops over the K characters (4 shipped): scores against the A keys (padded to 16
for the tensor cores), softmax, times V, times the router mask, accumulated in fp32 and written once.
The unfused version writes K full-size intermediates; this one reads q and writes the output once.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import triton
import triton.language as tl

from kernels.attention_ref import check_router_args, routed_audio_attention_math
from kernels.attention_triton import LOG2E, SUPPORTED_HEAD_DIMS, check_triton_tensors
from kernels.jit import LazyKernel, interpreting

MAX_AUDIO_TOKENS = 16  # A is padded to one 16-wide tensor-core tile; the model uses 4..8


def _router_fwd(
    Q, K, V, M, O,
    qk_scale,
    stride_qb, stride_qh, stride_qn,
    stride_kb, stride_kc, stride_kh, stride_ka,
    stride_vb, stride_vc, stride_vh, stride_va,
    stride_mb, stride_mn, stride_mc,
    stride_ob, stride_oh, stride_on,
    H, FRAME_TOKENS, AUDIO,
    NUM_CHARS: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_A: tl.constexpr,
    BLOCK_T: tl.constexpr,
    DOT_F32: tl.constexpr,
    PRECISION: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    off_bh = tl.program_id(1)
    off_b = off_bh // H
    off_h = off_bh % H
    blocks_per_frame = tl.cdiv(FRAME_TOKENS, BLOCK_T)
    frame = pid // blocks_per_frame
    offs_f = (pid % blocks_per_frame) * BLOCK_T + tl.arange(0, BLOCK_T)  # token index within the frame
    row_ok = offs_f < FRAME_TOKENS
    rows = frame * FRAME_TOKENS + offs_f  # token index within the sequence
    offs_d = tl.arange(0, HEAD_DIM)
    offs_a = tl.arange(0, BLOCK_A)
    a_ok = offs_a < AUDIO
    audio_rows = frame * AUDIO + offs_a  # this frame's audio tokens: frame-local cross-attention

    q = tl.load(Q + off_b * stride_qb + off_h * stride_qh + rows[:, None] * stride_qn + offs_d[None, :],
                mask=row_ok[:, None], other=0.0)  # fmt: skip
    if DOT_F32:
        q = q.to(tl.float32)
    acc = tl.zeros([BLOCK_T, HEAD_DIM], dtype=tl.float32)
    for c in tl.static_range(NUM_CHARS):
        k_ptrs = K + off_b * stride_kb + c * stride_kc + off_h * stride_kh
        v_ptrs = V + off_b * stride_vb + c * stride_vc + off_h * stride_vh
        k = tl.load(k_ptrs + audio_rows[:, None] * stride_ka + offs_d[None, :], mask=a_ok[:, None], other=0.0)
        v = tl.load(v_ptrs + audio_rows[:, None] * stride_va + offs_d[None, :], mask=a_ok[:, None], other=0.0)
        if DOT_F32:
            k = k.to(tl.float32)
            v = v.to(tl.float32)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION)  # (BLOCK_T, BLOCK_A)
        s = tl.where(a_ok[None, :], s * qk_scale, float("-inf"))
        p = tl.math.exp2(s - tl.max(s, 1)[:, None])
        # Fold the router weight into the softmax normaliser: one multiply per row instead of per element.
        w = tl.load(M + off_b * stride_mb + rows * stride_mn + c * stride_mc, mask=row_ok, other=0.0)
        w = w.to(tl.float32) / tl.sum(p, 1)
        o = tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
        acc += o * w[:, None]

    tl.store(O + off_b * stride_ob + off_h * stride_oh + rows[:, None] * stride_on + offs_d[None, :],
             acc.to(O.dtype.element_ty), mask=row_ok[:, None])  # fmt: skip


# The kernel is memory-bound (a handful of FLOPs per byte); wide token blocks amortise the K/V loads.
_ROUTER_CONFIGS = [
    ({"BLOCK_T": 64}, 4, 2),
    ({"BLOCK_T": 128}, 4, 2),
    ({"BLOCK_T": 128}, 8, 2),
    ({"BLOCK_T": 256}, 8, 2),
]
router_fwd_kernel = LazyKernel(
    _router_fwd, configs=_ROUTER_CONFIGS, key=["FRAME_TOKENS", "HEAD_DIM", "NUM_CHARS"]
)


def routed_audio_forward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, frame_tokens: int, scale: float
) -> torch.Tensor:
    """Launch the fused kernel on pre-checked arguments; returns (B, H, N, D) in q's dtype."""
    b, h, n, d = q.shape
    chars = k.shape[1]
    frames = n // frame_tokens
    audio = k.shape[3] // frames
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
    out = torch.empty_like(q)
    kernel = router_fwd_kernel
    meta: dict[str, int] = {}
    if kernel.autotuned:

        def grid(m: dict[str, int]) -> tuple[int, int]:
            return (frames * triton.cdiv(frame_tokens, m["BLOCK_T"]), b * h)
    else:
        meta = {"BLOCK_T": 16 if interpreting() else 64}
        grid = (frames * triton.cdiv(frame_tokens, meta["BLOCK_T"]), b * h)  # type: ignore[assignment]
    kernel[grid](
        q, k, v, mask, out,
        scale * LOG2E,
        q.stride(0), q.stride(1), q.stride(2),
        k.stride(0), k.stride(1), k.stride(2), k.stride(3),
        v.stride(0), v.stride(1), v.stride(2), v.stride(3),
        mask.stride(0), mask.stride(1), mask.stride(2),
        out.stride(0), out.stride(1), out.stride(2),
        h, frame_tokens, audio,
        NUM_CHARS=chars,
        HEAD_DIM=d,
        BLOCK_A=MAX_AUDIO_TOKENS,
        DOT_F32=interpreting(),
        PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
        **meta,
    )  # fmt: skip
    return out


class RoutedAudioAttention(torch.autograd.Function):
    """Fused Triton forward; the backward recomputes the fp32 reference under autograd.

    The router is a few percent of a block's FLOPs and its backward is needed only in training, so the
    documented fallback trades speed for one less kernel to keep correct: the forward is recomputed
    with `routed_audio_attention_math` (it stores nothing) and differentiated by autograd.
    """

    @staticmethod
    def forward(
        ctx: Any,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor,
        frame_tokens: int,
        scale: float,
    ) -> torch.Tensor:
        ctx.save_for_backward(q, k, v, mask)
        ctx.frame_tokens, ctx.scale = frame_tokens, scale
        return routed_audio_forward(q, k, v, mask, frame_tokens, scale)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q, k, v, mask = ctx.saved_tensors
        inputs = [
            t.detach().requires_grad_(need)
            for t, need in zip((q, k, v, mask), ctx.needs_input_grad[:4], strict=True)
        ]
        with torch.enable_grad():
            out = routed_audio_attention_math(*inputs, ctx.frame_tokens, ctx.scale)
            wanted = [t for t in inputs if t.requires_grad]
            grads = iter(torch.autograd.grad(out, wanted, grad_out)) if wanted else iter(())
        return (*(next(grads) if t.requires_grad else None for t in inputs), None, None)


def routed_audio_attention_triton(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor,
    frame_tokens: int,
    scale: float | None = None,
) -> torch.Tensor:
    """Fused router: q (B, H, T*F, D), k/v (B, K, H, T*A, D), mask (B, T*F, K) -> (B, H, T*F, D)."""
    audio = check_router_args(q, k, v, mask, frame_tokens)
    check_triton_tensors(q)
    if q.shape[-1] not in SUPPORTED_HEAD_DIMS:
        raise ValueError(f"Triton router supports head_dim in {SUPPORTED_HEAD_DIMS}, got {q.shape[-1]}")
    if audio > MAX_AUDIO_TOKENS:
        raise ValueError(
            f"Triton router supports up to {MAX_AUDIO_TOKENS} audio tokens per frame, got {audio}"
        )
    scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    if not torch.is_grad_enabled() or not any(t.requires_grad for t in (q, k, v, mask)):
        # inference: no autograd node to build (a few microseconds of host time per call and layer)
        return routed_audio_forward(q, k, v, mask, frame_tokens, scale)
    return RoutedAudioAttention.apply(q, k, v, mask, frame_tokens, scale)
