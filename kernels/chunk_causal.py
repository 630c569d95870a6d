"""Chunk-causal training attention: Triton forward + backward behind a torch.autograd.Function.

Teacher-forced training sees [reference frame | chunk0 | chunk1 | ...]; a query of block b sees keys of
blocks <= b. The forward is `attention_triton`'s kernel with CHUNK_CAUSAL (which also skips the key tiles
past a query tile's last chunk); the backward is FlashAttention-2 style (one kernel for dK/dV over key
tiles, one for dQ over query tiles, no atomics). FlexAttention is the alternative we benchmark against.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import torch
import triton
import triton.language as tl

from kernels.attention_ref import check_attention_args, check_chunk_args
from kernels.attention_triton import (
    INTERPRET_BLOCK,
    LOG2E,
    SUPPORTED_HEAD_DIMS,
    attention_forward,
    check_triton_tensors,
)
from kernels.jit import LazyKernel, interpreting


def _cc_bwd_dkdv(
    Q, K, V, DO, DK, DV, LSE, DELTA,
    sm_scale, qk_scale,
    stride_b, stride_h, stride_m,  # shared by Q, K, V, DO, DK, DV: all contiguous (B, H, L, D)
    H, L, REF_LEN, CHUNK_LEN,
    HEAD_DIM: tl.constexpr,
    DOT_F32: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):  # fmt: skip
    start_n = tl.program_id(0) * BLOCK_N
    off_bh = tl.program_id(1)
    base = (off_bh // H) * stride_b + (off_bh % H) * stride_h
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    kv_mask = offs_n[:, None] < L
    k = tl.load(K + base + offs_n[:, None] * stride_m + offs_d[None, :], mask=kv_mask, other=0.0)
    v = tl.load(V + base + offs_n[:, None] * stride_m + offs_d[None, :], mask=kv_mask, other=0.0)
    if DOT_F32:
        k = k.to(tl.float32)
        v = v.to(tl.float32)
    bid_k = tl.where(offs_n < REF_LEN, 0, 1 + (offs_n - REF_LEN) // CHUNK_LEN)
    # Queries before the start of this tile's first block never see any of its keys.
    bid_first = tl.where(start_n < REF_LEN, 0, 1 + (start_n - REF_LEN) // CHUNK_LEN)
    q_start = tl.where(bid_first == 0, 0, REF_LEN + (bid_first - 1) * CHUNK_LEN)
    q_lo = (q_start // BLOCK_M) * BLOCK_M

    dk = tl.zeros([BLOCK_N, HEAD_DIM], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, HEAD_DIM], dtype=tl.float32)
    for start_m in range(q_lo, L, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        row_ok = offs_m < L
        q = tl.load(Q + base + offs_m[:, None] * stride_m + offs_d[None, :], mask=row_ok[:, None], other=0.0)
        do = tl.load(
            DO + base + offs_m[:, None] * stride_m + offs_d[None, :], mask=row_ok[:, None], other=0.0
        )
        if DOT_F32:
            q = q.to(tl.float32)
            do = do.to(tl.float32)
        lse = tl.load(LSE + off_bh * L + offs_m, mask=row_ok, other=0.0)
        delta = tl.load(DELTA + off_bh * L + offs_m, mask=row_ok, other=0.0)
        bid_q = tl.where(offs_m < REF_LEN, 0, 1 + (offs_m - REF_LEN) // CHUNK_LEN)
        qk_t = tl.dot(k, tl.trans(q), input_precision=PRECISION)  # (BLOCK_N, BLOCK_M)
        p_t = tl.math.exp2(qk_t * qk_scale - lse[None, :])
        valid = (bid_k[:, None] <= bid_q[None, :]) & row_ok[None, :] & (offs_n[:, None] < L)
        p_t = tl.where(valid, p_t, 0.0)
        dv = tl.dot(p_t.to(do.dtype), do, dv, input_precision=PRECISION)
        dp_t = tl.dot(v, tl.trans(do), input_precision=PRECISION)
        ds_t = p_t * (dp_t - delta[None, :])
        dk = tl.dot(ds_t.to(q.dtype), q, dk, input_precision=PRECISION)

    out_ptrs = base + offs_n[:, None] * stride_m + offs_d[None, :]
    tl.store(DK + out_ptrs, (dk * sm_scale).to(DK.dtype.element_ty), mask=kv_mask)
    tl.store(DV + out_ptrs, dv.to(DV.dtype.element_ty), mask=kv_mask)


def _cc_bwd_dq(
    Q, K, V, DO, DQ, LSE, DELTA,
    sm_scale, qk_scale,
    stride_b, stride_h, stride_m,
    H, L, REF_LEN, CHUNK_LEN,
    HEAD_DIM: tl.constexpr,
    DOT_F32: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):  # fmt: skip
    start_m = tl.program_id(0) * BLOCK_M
    off_bh = tl.program_id(1)
    base = (off_bh // H) * stride_b + (off_bh % H) * stride_h
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    row_ok = offs_m < L
    q = tl.load(Q + base + offs_m[:, None] * stride_m + offs_d[None, :], mask=row_ok[:, None], other=0.0)
    do = tl.load(DO + base + offs_m[:, None] * stride_m + offs_d[None, :], mask=row_ok[:, None], other=0.0)
    if DOT_F32:
        q = q.to(tl.float32)
        do = do.to(tl.float32)
    lse = tl.load(LSE + off_bh * L + offs_m, mask=row_ok, other=0.0)
    delta = tl.load(DELTA + off_bh * L + offs_m, mask=row_ok, other=0.0)
    bid_q = tl.where(offs_m < REF_LEN, 0, 1 + (offs_m - REF_LEN) // CHUNK_LEN)
    last = tl.minimum(start_m + BLOCK_M, L) - 1
    bid_last = tl.where(last < REF_LEN, 0, 1 + (last - REF_LEN) // CHUNK_LEN)
    hi = tl.minimum(REF_LEN + bid_last * CHUNK_LEN, L)  # keys past the last row's chunk are never seen

    dq = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    for start_n in range(0, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        col_ok = offs_n < L
        k = tl.load(K + base + offs_n[:, None] * stride_m + offs_d[None, :], mask=col_ok[:, None], other=0.0)
        v = tl.load(V + base + offs_n[:, None] * stride_m + offs_d[None, :], mask=col_ok[:, None], other=0.0)
        if DOT_F32:
            k = k.to(tl.float32)
            v = v.to(tl.float32)
        bid_k = tl.where(offs_n < REF_LEN, 0, 1 + (offs_n - REF_LEN) // CHUNK_LEN)
        qk = tl.dot(q, tl.trans(k), input_precision=PRECISION)
        p = tl.math.exp2(qk * qk_scale - lse[:, None])
        p = tl.where((bid_k[None, :] <= bid_q[:, None]) & col_ok[None, :], p, 0.0)
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
        ds = p * (dp - delta[:, None])
        dq = tl.dot(ds.to(k.dtype), k, dq, input_precision=PRECISION)

    tl.store(DQ + base + offs_m[:, None] * stride_m + offs_d[None, :], (dq * sm_scale).to(DQ.dtype.element_ty),
             mask=row_ok[:, None])  # fmt: skip


# The backward holds k, v, q, dO tiles and two fp32 accumulators at once, so register pressure decides:
# dK/dV owns a key tile and streams narrow query tiles, dQ the other way round. Both kernels only write
# their own outputs (no atomics), so autotune may re-run them safely.
_DKDV_CONFIGS = [
    ({"BLOCK_M": 32, "BLOCK_N": 128}, 4, 3),
    ({"BLOCK_M": 64, "BLOCK_N": 128}, 8, 3),
    ({"BLOCK_M": 64, "BLOCK_N": 64}, 4, 3),
    ({"BLOCK_M": 64, "BLOCK_N": 64}, 8, 2),
    ({"BLOCK_M": 32, "BLOCK_N": 64}, 4, 3),
    ({"BLOCK_M": 64, "BLOCK_N": 128}, 8, 2),
]
_DQ_CONFIGS = [
    ({"BLOCK_M": 128, "BLOCK_N": 32}, 4, 3),
    ({"BLOCK_M": 128, "BLOCK_N": 64}, 8, 3),
    ({"BLOCK_M": 64, "BLOCK_N": 64}, 4, 3),
    ({"BLOCK_M": 64, "BLOCK_N": 64}, 8, 2),
    ({"BLOCK_M": 64, "BLOCK_N": 32}, 4, 3),
    ({"BLOCK_M": 128, "BLOCK_N": 64}, 8, 2),
]
bwd_dkdv_kernel = LazyKernel(_cc_bwd_dkdv, configs=_DKDV_CONFIGS, key=["L", "HEAD_DIM"])
bwd_dq_kernel = LazyKernel(_cc_bwd_dq, configs=_DQ_CONFIGS, key=["L", "HEAD_DIM"])


def chunk_causal_backward(
    do: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    o: torch.Tensor,
    lse: torch.Tensor,
    ref_len: int,
    chunk_len: int,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dQ, dK, dV for contiguous (B, H, L, D) tensors given the forward's output and base-2 LSE."""
    b, h, length, d = q.shape
    do = do.contiguous()
    delta = (o.float() * do.float()).sum(-1)  # (B, H, L): rowsum(dO * O), the softmax-gradient correction
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    common: dict[str, Any] = {
        "HEAD_DIM": d,
        "DOT_F32": interpreting(),
        "PRECISION": "ieee" if q.dtype == torch.float32 else "tf32",
    }
    if bwd_dkdv_kernel.autotuned:

        def grid_dkdv(m: dict[str, int]) -> tuple[int, int]:
            return (triton.cdiv(length, m["BLOCK_N"]), b * h)

        def grid_dq(m: dict[str, int]) -> tuple[int, int]:
            return (triton.cdiv(length, m["BLOCK_M"]), b * h)
    else:
        common |= {"BLOCK_M": INTERPRET_BLOCK, "BLOCK_N": INTERPRET_BLOCK}
        grid_dkdv = grid_dq = (triton.cdiv(length, INTERPRET_BLOCK), b * h)  # type: ignore[assignment]
    strides = (q.stride(0), q.stride(1), q.stride(2))
    bwd_dkdv_kernel[grid_dkdv](
        q,
        k,
        v,
        do,
        dk,
        dv,
        lse,
        delta,
        scale,
        scale * LOG2E,
        *strides,
        h,
        length,
        ref_len,
        chunk_len,
        **common,
    )
    bwd_dq_kernel[grid_dq](
        q, k, v, do, dq, lse, delta, scale, scale * LOG2E, *strides, h, length, ref_len, chunk_len, **common
    )
    return dq, dk, dv


class ChunkCausalAttention(torch.autograd.Function):
    """Triton chunk-causal attention with a Triton backward; inputs (B, H, L, D), equal q/kv heads."""

    @staticmethod
    def forward(
        ctx: Any,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        ref_len: int,
        chunk_len: int,
        scale: float,
    ) -> torch.Tensor:
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        out, lse = attention_forward(q, k, v, None, scale, chunk_causal=(ref_len, chunk_len), store_lse=True)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.ref_len, ctx.chunk_len, ctx.scale = ref_len, chunk_len, scale
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = chunk_causal_backward(grad_out, q, k, v, out, lse, ctx.ref_len, ctx.chunk_len, ctx.scale)
        return dq, dk, dv, None, None, None


def chunk_causal_attention_triton(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    ref_len: int,
    chunk_len: int,
    scale: float | None = None,
) -> torch.Tensor:
    """Differentiable chunk-causal self-attention; grouped K/V heads are expanded (autograd sums them back)."""
    check_attention_args(q, k, v)
    check_triton_tensors(q)
    if q.shape[2] != k.shape[2]:
        raise ValueError(f"training attention is self-attention: q has {q.shape[2]} tokens, k {k.shape[2]}")
    if q.shape[-1] not in SUPPORTED_HEAD_DIMS:
        raise ValueError(f"Triton attention supports head_dim in {SUPPORTED_HEAD_DIMS}, got {q.shape[-1]}")
    check_chunk_args(q.shape[2], ref_len, chunk_len)
    if k.shape[1] != q.shape[1]:
        group = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    return ChunkCausalAttention.apply(q, k, v, ref_len, chunk_len, scale)


# ---------------------------------------------------------------------------------------------------
# FlexAttention: the alternative training path, benchmarked against the Triton kernel
# ---------------------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _flex_block_mask(length: int, ref_len: int, chunk_len: int, device: str) -> Any:
    from torch.nn.attention.flex_attention import create_block_mask

    def block_id(idx: torch.Tensor) -> torch.Tensor:
        return torch.where(idx < ref_len, 0, 1 + (idx - ref_len) // chunk_len)

    def mask_mod(b: torch.Tensor, h: torch.Tensor, q_idx: torch.Tensor, kv_idx: torch.Tensor) -> torch.Tensor:
        return block_id(kv_idx) <= block_id(q_idx)

    return create_block_mask(mask_mod, B=None, H=None, Q_LEN=length, KV_LEN=length, device=device)


@lru_cache(maxsize=1)
def _compiled_flex() -> Any:
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


def chunk_causal_attention_flex(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    ref_len: int,
    chunk_len: int,
    scale: float | None = None,
) -> torch.Tensor:
    """FlexAttention with a chunk-causal block mask (compiled on CUDA, eager elsewhere); differentiable."""
    from torch.nn.attention.flex_attention import flex_attention

    check_attention_args(q, k, v)
    check_chunk_args(q.shape[2], ref_len, chunk_len)
    block_mask = _flex_block_mask(q.shape[2], ref_len, chunk_len, str(q.device))
    fn = _compiled_flex() if q.is_cuda else flex_attention
    return fn(q, k, v, block_mask=block_mask, scale=scale, enable_gqa=q.shape[1] != k.shape[1])
