"""Plain PyTorch references for the three attention patterns of the model.

Each pattern has an SDPA version (the CPU path of `kernels.dispatch`) and an explicit-math version
(softmax written out in fp32) that the Triton kernels and the SDPA versions are both tested against.
Shapes: q (B, H, Lq, D); k, v (B, Hkv, Lk, D); the router's k, v (B, K, H, T*A, D), mask (B, T*F, K).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------------
# (a) streaming attention: chunk queries over [sink | cache | chunk], ragged valid lengths per session
# ---------------------------------------------------------------------------------------------------


def as_kv_lens(
    kv_lens: torch.Tensor | Sequence[int] | None, batch: int, lk: int, device: torch.device
) -> torch.Tensor:
    """Valid key counts as an int32 tensor on `device`; None means every key is valid."""
    if kv_lens is None:
        return torch.full((batch,), lk, dtype=torch.int32, device=device)
    lens = torch.as_tensor(kv_lens, device=device)
    if lens.shape != (batch,):
        raise ValueError(
            f"kv_lens must have shape ({batch},) (one length per batch element), got {tuple(lens.shape)}"
        )
    if lens.dtype.is_floating_point or lens.dtype == torch.bool:
        raise ValueError(f"kv_lens must be an integer tensor, got {lens.dtype}")
    # Checking values needs the numbers on the host; on CUDA that is a sync, so only CPU tensors are checked
    # (the Triton kernel writes zeros for a session with no valid key instead of NaN).
    if lens.device.type == "cpu" and batch > 0:
        lo, hi = int(lens.min()), int(lens.max())
        if lo < 1 or hi > lk:
            raise ValueError(f"kv_lens must lie in [1, {lk}] (the padded key length), got min {lo} max {hi}")
    return lens.to(torch.int32)


def check_attention_args(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Raise ValueError unless q, k, v have matching (B, H, L, D) layouts, dtypes and devices."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dim() != 4:
            raise ValueError(f"{name} must be 4-D (B, heads, tokens, head_dim), got shape {tuple(t.shape)}")
    if k.shape != v.shape:
        raise ValueError(f"k and v must have the same shape, got {tuple(k.shape)} and {tuple(v.shape)}")
    if q.shape[0] != k.shape[0] or q.shape[3] != k.shape[3]:
        raise ValueError(f"q {tuple(q.shape)} and k {tuple(k.shape)} differ in batch or head_dim")
    if q.shape[1] % k.shape[1] != 0:
        raise ValueError(f"query heads ({q.shape[1]}) must be a multiple of key/value heads ({k.shape[1]})")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if q.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {q.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v must be on one device, got {q.device}, {k.device}, {v.device}")


def key_padding_mask(kv_lens: torch.Tensor, lk: int) -> torch.Tensor:
    """(B, 1, 1, Lk) boolean mask, True where a key is valid, for SDPA."""
    return (torch.arange(lk, device=kv_lens.device)[None, :] < kv_lens[:, None].long())[:, None, None, :]


def streaming_attention_sdpa(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kv_lens: torch.Tensor | Sequence[int] | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """SDPA with a key-padding mask; the torch path of `kernels.dispatch.streaming_attention`."""
    check_attention_args(q, k, v)
    lens = as_kv_lens(kv_lens, q.shape[0], k.shape[2], q.device)
    gqa = int(q.shape[1]) != int(k.shape[1])  # plain bool also while tracing for ONNX export
    if kv_lens is None:
        return F.scaled_dot_product_attention(q, k, v, scale=scale, enable_gqa=gqa)
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=key_padding_mask(lens, k.shape[2]), scale=scale, enable_gqa=gqa
    )


def streaming_attention_loop(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kv_lens: torch.Tensor | Sequence[int] | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """One unmasked SDPA call per session on its valid keys (lets SDPA pick its flash kernel)."""
    check_attention_args(q, k, v)
    # host lengths stay on the host (checked there): no copy to the GPU, so the loop can be graph-captured
    where = q.device if isinstance(kv_lens, torch.Tensor) else torch.device("cpu")
    lens = as_kv_lens(kv_lens, q.shape[0], k.shape[2], where).tolist()
    gqa = int(q.shape[1]) != int(k.shape[1])  # plain bool also while tracing for ONNX export
    outs = [
        F.scaled_dot_product_attention(
            q[b : b + 1], k[b : b + 1, :, :n], v[b : b + 1, :, :n], scale=scale, enable_gqa=gqa
        )
        for b, n in enumerate(lens)
    ]
    return torch.cat(outs, dim=0)


def streaming_attention_math(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kv_lens: torch.Tensor | Sequence[int] | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """Explicit fp32 softmax(q k^T) v over the valid keys; the ground truth of the tests."""
    check_attention_args(q, k, v)
    lens = as_kv_lens(kv_lens, q.shape[0], k.shape[2], q.device)
    group = q.shape[1] // k.shape[1]
    kf = k.float().repeat_interleave(group, dim=1)  # (B, H, Lk, D)
    vf = v.float().repeat_interleave(group, dim=1)
    s = q.float() @ kf.transpose(-1, -2) * (scale if scale is not None else 1.0 / math.sqrt(q.shape[-1]))
    s = s.masked_fill(~key_padding_mask(lens, k.shape[2]), float("-inf"))  # (B, H, Lq, Lk)
    return (s.softmax(dim=-1) @ vf).to(q.dtype)


# ---------------------------------------------------------------------------------------------------
# (b) chunk-causal training attention: [reference frame | chunk0 | chunk1 | ...]
# ---------------------------------------------------------------------------------------------------


def chunk_ids(length: int, ref_len: int, chunk_len: int, device: torch.device | None = None) -> torch.Tensor:
    """Block id per token: 0 for the reference frame, 1 + i for chunk i."""
    t = torch.arange(length, device=device)
    return torch.where(t < ref_len, 0, 1 + torch.div(t - ref_len, chunk_len, rounding_mode="floor"))


def chunk_causal_mask(
    length: int, ref_len: int, chunk_len: int, device: torch.device | None = None
) -> torch.Tensor:
    """(L, L) boolean mask, True where query i may see key j: block(j) <= block(i).

    A chunk sees the reference and every chunk up to itself; the reference (block 0) sees only itself.
    """
    ids = chunk_ids(length, ref_len, chunk_len, device)
    return ids[None, :] <= ids[:, None]


def check_chunk_args(length: int, ref_len: int, chunk_len: int) -> None:
    """Raise ValueError unless the sequence is a reference frame followed by whole or partial chunks."""
    if ref_len < 1 or chunk_len < 1:
        raise ValueError(f"ref_len and chunk_len must be >= 1, got {ref_len} and {chunk_len}")
    if length < ref_len:
        raise ValueError(f"sequence of {length} tokens is shorter than the reference frame ({ref_len})")


def chunk_causal_attention_sdpa(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    ref_len: int,
    chunk_len: int,
    scale: float | None = None,
) -> torch.Tensor:
    """SDPA with the dense (L, L) boolean chunk-causal mask; differentiable."""
    check_attention_args(q, k, v)
    if q.shape[2] != k.shape[2]:
        raise ValueError(f"training attention is self-attention: q has {q.shape[2]} tokens, k {k.shape[2]}")
    check_chunk_args(q.shape[2], ref_len, chunk_len)
    mask = chunk_causal_mask(q.shape[2], ref_len, chunk_len, q.device)
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, scale=scale, enable_gqa=q.shape[1] != k.shape[1]
    )


def chunk_causal_attention_math(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    ref_len: int,
    chunk_len: int,
    scale: float | None = None,
) -> torch.Tensor:
    """Explicit fp32 chunk-causal attention; differentiable ground truth."""
    check_attention_args(q, k, v)
    check_chunk_args(q.shape[2], ref_len, chunk_len)
    group = q.shape[1] // k.shape[1]
    kf = k.float().repeat_interleave(group, dim=1)
    vf = v.float().repeat_interleave(group, dim=1)
    s = q.float() @ kf.transpose(-1, -2) * (scale if scale is not None else 1.0 / math.sqrt(q.shape[-1]))
    s = s.masked_fill(~chunk_causal_mask(q.shape[2], ref_len, chunk_len, q.device), float("-inf"))
    return (s.softmax(dim=-1) @ vf).to(q.dtype)


# ---------------------------------------------------------------------------------------------------
# (c) routed audio cross-attention: per-frame local, one softmax per character, weighted by the router
# ---------------------------------------------------------------------------------------------------


# Characters one routed call takes: the fused kernel unrolls its loop over them (tl.static_range), so
# any K compiles; 8 bounds the unrolled code. Models set theirs in GeneratorConfig.max_characters (4 shipped).
MAX_ROUTED_CHARACTERS = 8


def check_router_args(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, frame_tokens: int
) -> int:
    """Raise ValueError on a bad router call; return the audio tokens per frame A."""
    if q.dim() != 4:
        raise ValueError(f"q must be (B, H, N, D) with N = frames * frame_tokens, got {tuple(q.shape)}")
    if k.dim() != 5 or k.shape != v.shape:
        raise ValueError(f"k and v must both be (B, K, H, T*A, D), got {tuple(k.shape)} and {tuple(v.shape)}")
    b, h, n, d = q.shape
    chars = k.shape[1]
    if not 1 <= chars <= MAX_ROUTED_CHARACTERS:
        raise ValueError(f"the router handles 1..{MAX_ROUTED_CHARACTERS} characters, got K={chars}")
    if k.shape[0] != b or k.shape[2] != h or k.shape[4] != d:
        raise ValueError(f"k {tuple(k.shape)} does not match q {tuple(q.shape)} in batch, heads or head_dim")
    if frame_tokens < 1 or n % frame_tokens != 0:
        raise ValueError(f"q's {n} tokens are not a whole number of frames of {frame_tokens} tokens")
    frames = n // frame_tokens
    if k.shape[3] % frames != 0:
        raise ValueError(f"k has {k.shape[3]} audio tokens, not a multiple of the {frames} frames in q")
    if mask.shape != (b, n, chars):
        raise ValueError(f"mask must be (B, N, K) = {(b, n, chars)}, got {tuple(mask.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if q.dtype not in (torch.float32, torch.float16, torch.bfloat16) or not mask.dtype.is_floating_point:
        raise ValueError(
            f"q must be float32/float16/bfloat16 and mask floating point, got {q.dtype}, {mask.dtype}"
        )
    if len({q.device, k.device, v.device, mask.device}) != 1:
        raise ValueError("q, k, v and mask must be on one device")
    return k.shape[3] // frames


def routed_audio_attention_sdpa(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor,
    frame_tokens: int,
    scale: float | None = None,
) -> torch.Tensor:
    """Unfused router: every character's per-frame SDPA over every token, times its mask, summed."""
    audio = check_router_args(q, k, v, mask, frame_tokens)
    b, h, n, d = q.shape
    frames = n // frame_tokens
    qf = q.view(b, h, frames, frame_tokens, d)  # SDPA batches over (B, H, T): each frame sees its own audio
    out = torch.zeros_like(q)
    for c in range(k.shape[1]):
        kc = k[:, c].reshape(b, h, frames, audio, d)
        vc = v[:, c].reshape(b, h, frames, audio, d)
        oc = F.scaled_dot_product_attention(qf, kc, vc, scale=scale).reshape(b, h, n, d)
        out = out + oc * mask[:, None, :, c, None].to(q.dtype)
    return out


def routed_audio_attention_math(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor,
    frame_tokens: int,
    scale: float | None = None,
) -> torch.Tensor:
    """Explicit fp32 router: sum_k m[., k] * softmax(q K_k,t^T) V_k,t; differentiable ground truth."""
    audio = check_router_args(q, k, v, mask, frame_tokens)
    b, h, n, d = q.shape
    chars, frames = k.shape[1], n // frame_tokens
    qf = q.float().view(b, 1, h, frames, frame_tokens, d)
    kf = k.float().view(b, chars, h, frames, audio, d)
    vf = v.float().view(b, chars, h, frames, audio, d)
    s = qf @ kf.transpose(-1, -2) * (scale if scale is not None else 1.0 / math.sqrt(d))  # (B, K, H, T, F, A)
    o = (s.softmax(dim=-1) @ vf).view(b, chars, h, n, d)
    m = mask.float().permute(0, 2, 1)[:, :, None, :, None]  # (B, K, 1, N, 1)
    return (o * m).sum(dim=1).to(q.dtype)
