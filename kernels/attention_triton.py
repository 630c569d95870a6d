"""Triton FlashAttention-style forward for streaming attention over the rolling KV cache.

One program owns BLOCK_M queries of one (batch, head) and streams key tiles with an online softmax
(fp32 running max, sum and accumulator). Each session stops at its own kv_len, so a ragged batch costs
only its valid keys. The same kernel, with CHUNK_CAUSAL, is the forward of `kernels.chunk_causal`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import torch
import triton
import triton.language as tl

from kernels.attention_ref import as_kv_lens, check_attention_args
from kernels.jit import LazyKernel, interpreting

SUPPORTED_HEAD_DIMS = (16, 32, 64, 128)  # powers of two: tl.arange needs them, and the model uses 32..128
LOG2E = 1.4426950408889634  # the kernel works in base 2 (exp2 is one instruction)


def _attn_fwd(
    Q, K, V, O, LSE, KV_LENS, ORDER,
    qk_scale,  # softmax scale times log2(e)
    stride_qb, stride_qh, stride_qm,
    stride_kb, stride_kh, stride_kn,
    stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, stride_om,
    stride_os, stride_ls,  # between key splits of O and of LSE (0 without splits)
    H, GROUP, Q_LEN, KV_LEN, REF_LEN, CHUNK_LEN,
    NUM_SPLITS,  # key-range splits (grid axis 2); > 1 only when too few query tiles fill the GPU
    Q_BUCKET,  # only an autotune key: tiles that suit 128 queries differ from those for 3072
    HEAD_DIM: tl.constexpr,
    CHUNK_CAUSAL: tl.constexpr,
    STORE_LSE: tl.constexpr,
    HAS_LENS: tl.constexpr,
    HAS_ORDER: tl.constexpr,  # ORDER[i] = the session the i-th batch slot of the grid works on
    DOT_F32: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):  # fmt: skip
    start_m = tl.program_id(0)
    off_bh = tl.program_id(1)
    off_b = off_bh // H
    off_h = off_bh % H
    if HAS_ORDER:  # ragged batch: the longest sessions are launched first, so the last wave is short work
        off_b = tl.load(ORDER + off_b)
    off_bh = off_b * H + off_h
    off_hkv = off_h // GROUP  # grouped-query attention: GROUP query heads read one K/V head

    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    q_ptrs = Q + off_b * stride_qb + off_h * stride_qh + offs_m[:, None] * stride_qm + offs_d[None, :]
    k_ptrs = K + off_b * stride_kb + off_hkv * stride_kh + offs_n[:, None] * stride_kn + offs_d[None, :]
    v_ptrs = V + off_b * stride_vb + off_hkv * stride_vh + offs_n[:, None] * stride_vn + offs_d[None, :]
    q = tl.load(q_ptrs, mask=offs_m[:, None] < Q_LEN, other=0.0)
    if DOT_F32:  # the interpreter's tl.dot is wrong for bf16 inputs
        q = q.to(tl.float32)

    split = tl.program_id(2)
    if HAS_LENS:  # noqa: SIM108 (a constexpr branch reads clearer as a block in a kernel)
        kv_len = tl.load(KV_LENS + off_b)
    else:  # every key valid (and chunk-causal training): no lengths tensor to create per call
        kv_len = KV_LEN
    if CHUNK_CAUSAL:
        # Block id: 0 = reference frame, 1 + i = chunk i; block b ends at REF_LEN + b * CHUNK_LEN.
        first = start_m * BLOCK_M
        last = tl.minimum(first + BLOCK_M, Q_LEN) - 1
        bid_first = tl.where(first < REF_LEN, 0, 1 + (first - REF_LEN) // CHUNK_LEN)
        bid_last = tl.where(last < REF_LEN, 0, 1 + (last - REF_LEN) // CHUNK_LEN)
        hi = tl.minimum(REF_LEN + bid_last * CHUNK_LEN, kv_len)  # no row of this tile sees beyond
        full = tl.minimum(REF_LEN + bid_first * CHUNK_LEN, hi)  # every row of this tile sees below
        bid_q = tl.where(offs_m < REF_LEN, 0, 1 + (offs_m - REF_LEN) // CHUNK_LEN)
    else:
        # Inference: every chunk query sees every valid key, so only the ragged tail needs a mask.
        hi = kv_len
        full = kv_len
    # Split-KV: this program takes one contiguous, tile-aligned share of [0, hi).
    per_split = tl.cdiv(tl.cdiv(hi, NUM_SPLITS), BLOCK_N) * BLOCK_N
    lo = split * per_split
    hi = tl.minimum(hi, lo + per_split)
    n_full = tl.maximum(tl.minimum((full // BLOCK_N) * BLOCK_N, hi), lo)

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)

    # Tiles that every row sees in full: no masking, so the loop pipelines cleanly.
    for start_n in range(lo, n_full, BLOCK_N):
        k = tl.load(k_ptrs + start_n * stride_kn)
        v = tl.load(v_ptrs + start_n * stride_vn)
        if DOT_F32:
            k = k.to(tl.float32)
            v = v.to(tl.float32)
        qk = tl.dot(q, tl.trans(k), input_precision=PRECISION)
        m_ij = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
        p = tl.math.exp2(qk * qk_scale - m_ij[:, None])
        alpha = tl.math.exp2(m_i - m_ij)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None], input_precision=PRECISION)
        m_i = m_ij

    # The ragged tail (and, when chunk-causal, the tiles crossing a chunk boundary): masked.
    for start_n in range(n_full, hi, BLOCK_N):
        cols = start_n + offs_n
        in_range = cols < hi
        k = tl.load(k_ptrs + start_n * stride_kn, mask=in_range[:, None], other=0.0)
        v = tl.load(v_ptrs + start_n * stride_vn, mask=in_range[:, None], other=0.0)
        if DOT_F32:
            k = k.to(tl.float32)
            v = v.to(tl.float32)
        qk = tl.dot(q, tl.trans(k), input_precision=PRECISION)
        valid = in_range[None, :]
        if CHUNK_CAUSAL:
            bid_k = tl.where(cols < REF_LEN, 0, 1 + (cols - REF_LEN) // CHUNK_LEN)
            valid = valid & (bid_k[None, :] <= bid_q[:, None])
        qk = tl.where(valid, qk * qk_scale, float("-inf"))
        # Every row sees key 0 in its first tile, so m_ij is finite and exp2(-inf - m_ij) is 0.
        m_ij = tl.maximum(m_i, tl.max(qk, 1))
        p = tl.math.exp2(qk - m_ij[:, None])
        alpha = tl.math.exp2(m_i - m_ij)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None], input_precision=PRECISION)
        m_i = m_ij

    l_safe = tl.where(l_i == 0.0, 1.0, l_i)  # a session with kv_len 0 (or an empty split) gets zeros
    o = acc / l_safe[:, None]
    o_ptrs = (
        O
        + split * stride_os
        + off_b * stride_ob
        + off_h * stride_oh
        + offs_m[:, None] * stride_om
        + offs_d[None, :]
    )
    tl.store(o_ptrs, o.to(O.dtype.element_ty), mask=offs_m[:, None] < Q_LEN)
    if STORE_LSE:
        # Log-sum-exp in base 2 for the backward pass; LSE is (B, H, Q_LEN) contiguous fp32.
        # An empty split has m_i = -inf, so its LSE is -inf and it weighs nothing in the combine.
        lse_ptrs = LSE + split * stride_ls + off_bh * Q_LEN + offs_m
        tl.store(lse_ptrs, m_i + tl.math.log2(l_safe), mask=offs_m < Q_LEN)


# H100 candidates: 128-row tiles keep the tensor cores fed; 64-row tiles give short chunks more programs.
# (meta-parameters, num_warps, num_stages); configs that overflow shared memory are skipped by autotune.
_FWD_CONFIGS = [
    ({"BLOCK_M": 128, "BLOCK_N": 64}, 4, 3),
    ({"BLOCK_M": 128, "BLOCK_N": 64}, 8, 3),
    ({"BLOCK_M": 128, "BLOCK_N": 128}, 8, 3),
    ({"BLOCK_M": 128, "BLOCK_N": 128}, 8, 2),
    ({"BLOCK_M": 64, "BLOCK_N": 64}, 4, 3),
    ({"BLOCK_M": 64, "BLOCK_N": 128}, 4, 3),
]
attn_fwd_kernel = LazyKernel(
    _attn_fwd, configs=_FWD_CONFIGS, key=["Q_BUCKET", "NUM_SPLITS", "HEAD_DIM", "CHUNK_CAUSAL"]
)

INTERPRET_BLOCK = 16  # small tiles under the interpreter: tests exercise many tiles and ragged tails cheaply


def check_triton_tensors(*tensors: torch.Tensor) -> None:
    """Raise ValueError unless Triton can run on these tensors here (CUDA, or CPU under the interpreter)."""
    device = tensors[0].device
    if device.type == "cpu" and not interpreting():
        raise ValueError("Triton kernels need CUDA tensors (or TRITON_INTERPRET=1 for CPU tensors)")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"Triton kernels run on CUDA (or CPU under the interpreter), not {device.type}")


def _q_bucket(q_len: int) -> int:
    return min(triton.next_power_of_2(q_len), 4096)


@lru_cache(maxsize=8)
def _sm_count(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def choose_splits(q: torch.Tensor, kv_max: int, flops: float) -> int:
    """Key-range splits for a launch: 1 unless the query tiles leave the GPU's last wave mostly idle.

    With 128-row tiles one program per SM runs at a time (shared memory), so e.g. 288 programs on 132
    SMs take 3 waves for 2.2 waves of work. Splitting the keys multiplies the programs; the smallest
    split count whose waves are >= 90% full wins. Small launches are latency-bound and never split,
    since the combine costs a few extra kernel launches.
    """
    if not q.is_cuda or flops < 5e10 or kv_max < 4096:
        return 1
    sms = _sm_count(q.device.index if q.device.index is not None else torch.cuda.current_device())
    programs = triton.cdiv(q.shape[2], 128) * q.shape[0] * q.shape[1]
    for splits in range(1, 9):
        waves = programs * splits / sms
        if waves / math.ceil(waves) >= 0.9 or kv_max // splits < 2048:
            return splits
    return 8


def longest_first(lens: torch.Tensor | None, q: torch.Tensor, kv_max: int) -> torch.Tensor | None:
    """The batch sorted by valid keys, longest first, for a ragged launch big enough to run in many
    waves; None (launch order = batch order) when the batch has one session or the launch is small,
    where the sort's own launch would cost more than the shorter tail saves. Sorted on the device, so
    no sync with the host."""
    if lens is None or q.shape[0] < 2 or (q.is_cuda and 4.0 * q.numel() * kv_max < 5e10):
        return None
    return torch.argsort(lens, descending=True, stable=True).to(torch.int32)


def attention_forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kv_lens: torch.Tensor | None,
    scale: float,
    chunk_causal: tuple[int, int] | None = None,
    store_lse: bool = False,
    splits: int = 1,
    order: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Launch the forward kernel; returns (out, base-2 log-sum-exp or None). Arguments are pre-checked.

    kv_lens None means all k.shape[2] keys are valid. splits > 1 (inference only) runs the key range
    in that many programs per query tile and merges their partial results by their log-sum-exp.
    order: an int32 permutation of the batch; batch slot i of the grid computes session order[i]
    (`longest_first` puts the heaviest sessions in the first waves).
    """
    b, h, lq, d = q.shape
    hkv = k.shape[1]
    if splits > 1 and (chunk_causal is not None or store_lse):
        raise ValueError("key splits are for inference attention without a stored LSE")
    # The kernel assumes unit stride along head_dim; other strides are free.
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
    if splits > 1:
        out = torch.empty((splits, b, h, lq, d), device=q.device, dtype=torch.float32)
        lse = torch.empty((splits, b, h, lq), device=q.device, dtype=torch.float32)
        o_strides = out.stride()[1:4]
        split_strides = (out.stride(0), lse.stride(0))
    else:
        out = torch.empty_like(q)
        lse = torch.empty((b, h, lq), device=q.device, dtype=torch.float32) if store_lse else out
        o_strides, split_strides = out.stride()[:3], (0, 0)
    ref_len, chunk_len = chunk_causal if chunk_causal is not None else (1, 1)
    kernel = attn_fwd_kernel
    meta: dict[str, int] = {}
    if kernel.autotuned:

        def grid(m: dict[str, int]) -> tuple[int, int, int]:
            return (triton.cdiv(lq, m["BLOCK_M"]), b * h, splits)
    else:
        meta = {"BLOCK_M": INTERPRET_BLOCK, "BLOCK_N": INTERPRET_BLOCK}
        if not interpreting():  # compiled without autotune never happens today; keep a sane default
            meta = {"BLOCK_M": 64, "BLOCK_N": 64}
        grid = (triton.cdiv(lq, meta["BLOCK_M"]), b * h, splits)  # type: ignore[assignment]
    kernel[grid](
        q, k, v, out, lse, kv_lens if kv_lens is not None else q, order if order is not None else q,
        scale * LOG2E,
        q.stride(0), q.stride(1), q.stride(2),
        k.stride(0), k.stride(1), k.stride(2),
        v.stride(0), v.stride(1), v.stride(2),
        *o_strides,
        *split_strides,
        h, h // hkv, lq, k.shape[2], ref_len, chunk_len,
        splits,
        _q_bucket(lq),
        HEAD_DIM=d,
        CHUNK_CAUSAL=chunk_causal is not None,
        STORE_LSE=store_lse or splits > 1,
        HAS_LENS=kv_lens is not None,
        HAS_ORDER=order is not None,
        DOT_F32=interpreting(),
        PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
        **meta,
    )  # fmt: skip
    if splits > 1:
        # Merge: o = sum_s 2^(lse_s - max) o_s / sum_s 2^(lse_s - max); split 0 always has keys.
        weights = torch.exp2(lse - lse.amax(dim=0, keepdim=True))  # (S, B, H, Lq)
        merged = (out * weights[..., None]).sum(0) / weights.sum(0)[..., None]
        return merged.to(q.dtype), None
    return out, (lse if store_lse else None)


def streaming_attention_triton(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kv_lens: torch.Tensor | Sequence[int] | None = None,
    scale: float | None = None,
    splits: int | None = None,
) -> torch.Tensor:
    """Chunk queries (B, H, Lq, D) over padded keys (B, Hkv, Lk, D) whose first kv_lens[b] are valid.

    splits: key-range splits per query tile (None = `choose_splits` heuristic; 1 = no split).
    """
    check_attention_args(q, k, v)
    check_triton_tensors(q)
    if q.shape[-1] not in SUPPORTED_HEAD_DIMS:
        raise ValueError(f"Triton attention supports head_dim in {SUPPORTED_HEAD_DIMS}, got {q.shape[-1]}")
    lens = as_kv_lens(kv_lens, q.shape[0], k.shape[2], q.device) if kv_lens is not None else None
    scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    if splits is None:
        # FLOPs at the padded length: an upper bound, known without reading kv_lens back from the GPU.
        splits = choose_splits(q, k.shape[2], 4.0 * q.numel() * k.shape[2])
    if not 1 <= splits <= 64:
        raise ValueError(f"splits must be in [1, 64], got {splits}")
    order = longest_first(lens, q, k.shape[2])
    out, _ = attention_forward(q, k, v, lens, scale, splits=splits, order=order)
    return out
