"""Kernels against their references: Triton's CPU interpreter here, compiled on CUDA under `gpu`.

Interpreter tests set TRITON_INTERPRET=1 through a fixture; `kernels.jit.LazyKernel` decorates kernels at
launch, so it does not matter which module imported triton or the kernels first.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from kernels import attention_ref as ref
from kernels import dispatch
from kernels.shapes import PRESETS

TOL = {torch.float32: 1e-4, torch.float16: 3e-3, torch.bfloat16: 2e-2}  # absolute, for O(1) outputs
GRAD_TOL = {torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 6e-2}


@pytest.fixture
def interpret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)


def close(out: torch.Tensor, expected: torch.Tensor, tol: float) -> None:
    """Assert |out - expected| <= tol * max(1, |expected|max), reporting the worst error."""
    scale = max(1.0, expected.float().abs().max().item())
    err = (out.float() - expected.float()).abs().max().item()
    assert err <= tol * scale, f"max abs error {err:.3g} > {tol:.1g} x {scale:.3g}"


def qkv(b: int, h: int, hkv: int, lq: int, lk: int, d: int, dtype: torch.dtype, device: str = "cpu"):
    g = torch.Generator(device="cpu").manual_seed(1234 + lq + lk + d)
    q = torch.randn(b, h, lq, d, generator=g).to(device=device, dtype=dtype)
    k = torch.randn(b, hkv, lk, d, generator=g).to(device=device, dtype=dtype)
    v = torch.randn(b, hkv, lk, d, generator=g).to(device=device, dtype=dtype)
    return q, k, v


def router_inputs(b, h, frames, ftok, chars, audio, d, dtype, device="cpu", grad=False):
    g = torch.Generator(device="cpu").manual_seed(99 + chars + audio + d)
    q = torch.randn(b, h, frames * ftok, d, generator=g).to(device=device, dtype=dtype)
    k = torch.randn(b, chars, h, frames * audio, d, generator=g).to(device=device, dtype=dtype)
    v = torch.randn(b, chars, h, frames * audio, d, generator=g).to(device=device, dtype=dtype)
    m = torch.rand(b, frames * ftok, chars, generator=g).to(device=device)
    if grad:
        for t in (q, k, v, m):
            t.requires_grad_(True)
    return q, k, v, m


# (B, H, Hkv, Lq, Lk_padded, kv_lens): the chunk is the last Lq valid keys, as in the model.
STREAM_CASES = {
    "ragged": (3, 4, 4, 16, 72, [72, 40, 17]),  # full window, half-filled, short tail inside one tile
    "gqa-ragged": (2, 4, 2, 16, 56, [56, 29]),
    "empty-cache": (2, 2, 2, 16, 56, [24, 24]),  # sink (8) + chunk (16): nothing cached yet, padded cache
    "all-valid": (1, 2, 1, 20, 37, None),  # kv_lens omitted; Lq and Lk not multiples of the tile
}


# ---------------------------------------------------------------------------------------------------
# references agree with each other (fast, no Triton)
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(STREAM_CASES))
def test_streaming_references_agree(case: str) -> None:
    b, h, hkv, lq, lk, lens = STREAM_CASES[case]
    q, k, v = qkv(b, h, hkv, lq, lk, 32, torch.float32)
    want = ref.streaming_attention_math(q, k, v, lens)
    close(ref.streaming_attention_sdpa(q, k, v, lens), want, 1e-5)
    close(ref.streaming_attention_loop(q, k, v, lens), want, 1e-5)
    if lens is not None:  # padding beyond kv_len must not matter
        k2, v2 = k.clone(), v.clone()
        for i, n in enumerate(lens):
            k2[i, :, n:] = 1e4
            v2[i, :, n:] = -1e4
        close(ref.streaming_attention_math(q, k2, v2, lens), want, 1e-5)


def test_chunk_causal_mask_semantics() -> None:
    ref_len, chunk_len = 2, 3
    m = ref.chunk_causal_mask(ref_len + 2 * chunk_len, ref_len, chunk_len)
    assert m[:2].tolist() == [[True, True] + [False] * 6] * 2  # the reference sees only itself
    assert m[2].tolist() == [True] * 5 + [False] * 3  # chunk 0 sees reference + chunk 0 (all of it)
    assert m[7].tolist() == [True] * 8  # chunk 1 sees everything before and itself


def test_router_references_agree() -> None:
    q, k, v, m = router_inputs(2, 2, 3, 5, 3, 4, 16, torch.float32)
    close(
        ref.routed_audio_attention_sdpa(q, k, v, m, 5), ref.routed_audio_attention_math(q, k, v, m, 5), 1e-5
    )
    # One character with mask 1 everywhere is plain frame-local attention.
    q1, k1, v1, _ = router_inputs(1, 2, 2, 4, 1, 3, 16, torch.float32)
    ones = torch.ones(1, 8, 1)
    frame_mask = torch.block_diag(torch.ones(4, 3), torch.ones(4, 3)).bool()
    want = torch.nn.functional.scaled_dot_product_attention(q1, k1[:, 0], v1[:, 0], attn_mask=frame_mask)
    close(ref.routed_audio_attention_math(q1, k1, v1, ones, 4), want, 1e-5)


def test_presets() -> None:
    toon = PRESETS["toon-s"]
    assert (toon.q_len, toon.kv_max, toon.width) == (128, 704, 192)
    assert PRESETS["base"].kv_max == 256 + 4096 + 512
    assert PRESETS["large"].q_len == 3072 and PRESETS["large"].kv_max == 1024 + 24576 + 3072
    with pytest.raises(ValueError, match="cached_chunks"):
        toon.kv_len(5)


# ---------------------------------------------------------------------------------------------------
# Triton kernels in the interpreter (CPU)
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("head_dim", [32, 64])
@pytest.mark.parametrize("case", list(STREAM_CASES))
def test_streaming_triton_interpreter(interpret: None, case: str, head_dim: int, dtype: torch.dtype) -> None:
    from kernels.attention_triton import streaming_attention_triton

    b, h, hkv, lq, lk, lens = STREAM_CASES[case]
    q, k, v = qkv(b, h, hkv, lq, lk, head_dim, dtype)
    close(streaming_attention_triton(q, k, v, lens), ref.streaming_attention_math(q, k, v, lens), TOL[dtype])


def test_streaming_triton_interpreter_bf16_and_strides(interpret: None) -> None:
    """bf16 (cast to fp32 inside the kernel under the interpreter) and a non-contiguous (B, L, H, D) view."""
    from kernels.attention_triton import streaming_attention_triton

    q, k, v = (
        t.transpose(1, 2).contiguous().transpose(1, 2) for t in qkv(2, 2, 2, 16, 40, 32, torch.bfloat16)
    )
    assert not q.is_contiguous()
    lens = torch.tensor([40, 21])
    close(
        streaming_attention_triton(q, k, v, lens),
        ref.streaming_attention_math(q, k, v, lens),
        TOL[torch.bfloat16],
    )


@pytest.mark.parametrize("splits", [2, 3])
def test_streaming_triton_interpreter_splits(interpret: None, splits: int) -> None:
    """Split-KV: partial results merged by log-sum-exp; a short session leaves later splits empty."""
    from kernels.attention_triton import streaming_attention_triton

    q, k, v = qkv(3, 4, 2, 16, 100, 32, torch.float32)
    lens = torch.tensor([100, 57, 9])
    out = streaming_attention_triton(q, k, v, lens, splits=splits)
    close(out, ref.streaming_attention_math(q, k, v, lens), 1e-4)


def test_streaming_triton_interpreter_longest_first(interpret: None) -> None:
    """A ragged batch in ascending order runs longest-first (a real permutation) with the same output,
    also with GQA and key splits on top; one session or no lengths keeps the batch order."""
    from kernels.attention_triton import attention_forward, longest_first

    q, k, v = qkv(4, 4, 2, 16, 80, 32, torch.float32)
    lens = torch.tensor([20, 80, 33, 61], dtype=torch.int32)
    order = longest_first(lens, q, 80)
    assert order is not None and order.tolist() == [1, 3, 2, 0]
    expected = ref.streaming_attention_math(q, k, v, lens)
    for splits in (1, 2):
        out, _ = attention_forward(q, k, v, lens, 0.125**0.5 * 0.5, splits=splits, order=order)
        close(out, ref.streaming_attention_math(q, k, v, lens, scale=0.125**0.5 * 0.5), 1e-4)
    plain, _ = attention_forward(q, k, v, lens, 32**-0.5)
    close(plain, expected, 1e-4)
    assert longest_first(lens[:1], q[:1], 80) is None and longest_first(None, q, 80) is None


# (ref_len, chunk_len, chunks, trim): trim drops tokens off the end to leave a partial last chunk.
CHUNK_CASES = {"aligned": (16, 16, 2, 0), "straddling": (8, 24, 2, 5), "tiny-ref": (3, 10, 3, 0)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("head_dim", [32, 64])
@pytest.mark.parametrize("case", list(CHUNK_CASES))
def test_chunk_causal_triton_interpreter(
    interpret: None, case: str, head_dim: int, dtype: torch.dtype
) -> None:
    from kernels.chunk_causal import chunk_causal_attention_triton

    ref_len, chunk_len, chunks, trim = CHUNK_CASES[case]
    length = ref_len + chunks * chunk_len - trim
    q, k, v = (t.requires_grad_(True) for t in qkv(2, 2, 2, length, length, head_dim, dtype))
    grad_out = torch.randn(q.shape, generator=torch.Generator().manual_seed(5)).to(dtype)
    out = chunk_causal_attention_triton(q, k, v, ref_len, chunk_len)
    want = ref.chunk_causal_attention_math(q, k, v, ref_len, chunk_len)
    close(out, want, TOL[dtype])
    grads = torch.autograd.grad(out, (q, k, v), grad_out)
    want_grads = torch.autograd.grad(want, (q, k, v), grad_out)
    for name, g, w in zip("qkv", grads, want_grads, strict=True):
        assert g.dtype == dtype, name
        close(g, w, GRAD_TOL[dtype])


def test_chunk_causal_triton_interpreter_gqa(interpret: None) -> None:
    from kernels.chunk_causal import chunk_causal_attention_triton

    q, _, _ = qkv(1, 4, 4, 40, 40, 32, torch.float32)
    _, k, v = qkv(1, 4, 2, 40, 40, 32, torch.float32)
    q, k, v = (t.requires_grad_(True) for t in (q, k, v))
    out = chunk_causal_attention_triton(q, k, v, 8, 16)
    want = ref.chunk_causal_attention_math(q, k, v, 8, 16)
    close(out, want, 1e-4)
    for g, w in zip(
        torch.autograd.grad(out.sum(), (k, v)), torch.autograd.grad(want.sum(), (k, v)), strict=True
    ):
        close(g, w, 1e-4)


@pytest.mark.filterwarnings("ignore::UserWarning")  # eager FlexAttention on CPU warns that it is unfused
def test_flex_matches_reference_forward() -> None:
    from kernels.chunk_causal import chunk_causal_attention_flex

    q, k, v = qkv(1, 2, 2, 45, 45, 32, torch.float32)
    want = ref.chunk_causal_attention_math(q, k, v, 5, 20)
    close(chunk_causal_attention_flex(q, k, v, 5, 20), want, 1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize(("chars", "audio", "head_dim"), [(1, 4, 32), (2, 8, 64), (3, 5, 32), (4, 8, 32)])
def test_router_triton_interpreter(
    interpret: None, chars: int, audio: int, head_dim: int, dtype: torch.dtype
) -> None:
    from kernels.router_triton import routed_audio_attention_triton

    q, k, v, m = router_inputs(2, 2, 3, 20, chars, audio, head_dim, dtype)  # 20 tokens/frame: partial tiles
    want = ref.routed_audio_attention_math(q, k, v, m, 20)
    close(routed_audio_attention_triton(q, k, v, m, 20), want, TOL[dtype])


def test_router_triton_interpreter_backward(interpret: None) -> None:
    from kernels.router_triton import routed_audio_attention_triton

    q, k, v, m = router_inputs(1, 2, 2, 16, 3, 6, 32, torch.float32, grad=True)
    out = routed_audio_attention_triton(q, k, v, m, 16)
    want = ref.routed_audio_attention_math(q, k, v, m, 16)
    g = torch.randn_like(out)
    for a, b in zip(
        torch.autograd.grad(out, (q, k, v, m), g), torch.autograd.grad(want, (q, k, v, m), g), strict=True
    ):
        close(a, b, 1e-4)


# ---------------------------------------------------------------------------------------------------
# dispatch
# ---------------------------------------------------------------------------------------------------


def test_dispatch_cpu_defaults_to_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    assert dispatch.backend_for("cpu") == "torch"
    monkeypatch.setenv(dispatch.ENV_VAR, "torch")
    assert dispatch.backend_for("cuda") == "torch"
    monkeypatch.setenv(dispatch.ENV_VAR, "auto")
    assert dispatch.backend_for("cuda", head_dim=96) == "torch"  # no Triton tile for head_dim 96


def test_dispatch_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(dispatch.ENV_VAR, "cuda-please")
    with pytest.raises(ValueError, match="BYA_KERNELS must be one of"):
        dispatch.backend_for("cpu")
    monkeypatch.setenv(dispatch.ENV_VAR, "triton")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="TRITON_INTERPRET=1"):
        dispatch.backend_for("cpu")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert dispatch.backend_for("cpu") == "triton"


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_dispatch_paths_agree(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    monkeypatch.setenv(dispatch.ENV_VAR, backend)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    q, k, v = qkv(2, 4, 2, 16, 48, 32, torch.float32)
    lens = [48, 30]
    close(dispatch.streaming_attention(q, k, v, lens), ref.streaming_attention_math(q, k, v, lens), 1e-4)
    qc, kc, vc = (t.requires_grad_(True) for t in qkv(1, 2, 2, 40, 40, 32, torch.float32))
    out = dispatch.chunk_causal_attention(qc, kc, vc, 8, 16)
    want = ref.chunk_causal_attention_math(qc, kc, vc, 8, 16)
    close(out, want, 1e-4)
    close(torch.autograd.grad(out.sum(), qc)[0], torch.autograd.grad(want.sum(), qc)[0], 1e-4)
    r = router_inputs(1, 2, 2, 16, 2, 4, 32, torch.float32)
    close(dispatch.routed_audio_attention(*r, 16), ref.routed_audio_attention_math(*r, 16), 1e-4)


def test_dispatch_rejects_bad_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    q, k, v = qkv(2, 4, 2, 16, 48, 32, torch.float32)
    with pytest.raises(ValueError, match="multiple of key/value heads"):
        dispatch.streaming_attention(q, k[:, :1].expand(2, 3, 48, 32), v[:, :1].expand(2, 3, 48, 32))
    with pytest.raises(ValueError, match="share a dtype"):
        dispatch.streaming_attention(q, k.half(), v.half())
    with pytest.raises(ValueError, match="kv_lens must lie in"):
        dispatch.streaming_attention(q, k, v, [49, 3])
    with pytest.raises(ValueError, match="kv_lens must have shape"):
        dispatch.streaming_attention(q, k, v, [48])
    with pytest.raises(ValueError, match="4-D"):
        dispatch.streaming_attention(q[0], k, v)
    with pytest.raises(ValueError, match="self-attention"):
        dispatch.chunk_causal_attention(q, k[:, :, :20], v[:, :, :20], 8, 8)
    r = list(router_inputs(1, 2, 2, 16, 2, 4, 32, torch.float32))
    with pytest.raises(ValueError, match="whole number of frames"):
        dispatch.routed_audio_attention(*r, 15)
    with pytest.raises(ValueError, match="mask must be"):
        dispatch.routed_audio_attention(r[0], r[1], r[2], r[3][..., :1], 16)
    q5, k5, v5, m5 = router_inputs(1, 2, 1, 4, 4, 2, 16, torch.float32)
    with pytest.raises(ValueError, match=r"1\.\.8 characters, got K=9"):
        dispatch.routed_audio_attention(
            q5, torch.cat([k5, k5, k5[:, :1]], 1), torch.cat([v5, v5, v5[:, :1]], 1), m5, 4
        )


def test_bench_quick_runs_on_cpu(tmp_path: Path) -> None:
    from kernels import bench

    path = tmp_path / "bench.json"
    bench.main(["--quick", "--json", str(path)])
    data = json.loads(path.read_text())
    assert data["device"] and data["rows"]
    assert all(row["ms"] > 0 for row in data["rows"])
    # every implementation but a case's first is compared with it: the error column must exist and be
    # small, or a wrong path could be timed as a fast one
    compared = [r for r in data["rows"] if not math.isnan(r["max_abs_diff_vs_first"])]
    assert {r["op"] for r in compared} >= {"stream", "router"}
    for row in compared:
        assert row["max_abs_diff_vs_first"] <= 1e-4, row


# ---------------------------------------------------------------------------------------------------
# compiled on CUDA
# ---------------------------------------------------------------------------------------------------

GPU_STREAM = [
    # (B, H, Hkv, Lq, Lk, kv_lens, D, dtype)
    (2, 12, 4, 384, 2100, [2100, 777], 128, torch.bfloat16),
    (3, 12, 12, 512, 4864, [4864, 768, 2000], 64, torch.float16),
    (2, 6, 6, 128, 704, [192, 704], 32, torch.float32),
    (1, 6, 3, 100, 333, None, 32, torch.bfloat16),
    # big enough to launch longest-first: ascending lengths, so the permutation is not the identity
    (4, 12, 12, 1024, 8192, [1500, 8192, 3000, 6000], 128, torch.bfloat16),
]


@pytest.mark.gpu
@pytest.mark.parametrize("case", GPU_STREAM, ids=lambda c: f"D{c[6]}-{str(c[7])[6:]}-Lq{c[3]}")
def test_streaming_triton_gpu(monkeypatch: pytest.MonkeyPatch, case: tuple) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    from kernels.attention_triton import streaming_attention_triton

    b, h, hkv, lq, lk, lens, d, dtype = case
    q, k, v = qkv(b, h, hkv, lq, lk, d, dtype, "cuda")
    want = ref.streaming_attention_math(q, k, v, lens)
    close(streaming_attention_triton(q, k, v, lens), want, TOL[dtype])
    close(streaming_attention_triton(q, k, v, lens, splits=3), want, TOL[dtype])


@pytest.mark.gpu
@pytest.mark.parametrize(
    ("ref_len", "chunk_len", "chunks", "d", "dtype"),
    [(256, 512, 3, 64, torch.bfloat16), (64, 128, 4, 32, torch.float16), (100, 200, 2, 128, torch.bfloat16)],
)
def test_chunk_causal_triton_gpu(
    monkeypatch: pytest.MonkeyPatch, ref_len: int, chunk_len: int, chunks: int, d: int, dtype: torch.dtype
) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    from kernels.chunk_causal import chunk_causal_attention_flex, chunk_causal_attention_triton

    length = ref_len + chunks * chunk_len
    q, k, v = (t.requires_grad_(True) for t in qkv(2, 4, 4, length, length, d, dtype, "cuda"))
    grad_out = torch.randn_like(q)
    out = chunk_causal_attention_triton(q, k, v, ref_len, chunk_len)
    want = ref.chunk_causal_attention_math(q, k, v, ref_len, chunk_len)
    close(out, want, TOL[dtype])
    if d == 64:  # one FlexAttention check: each new shape costs a ~30 s compile
        close(chunk_causal_attention_flex(q, k, v, ref_len, chunk_len), want, TOL[dtype])
    for g, w in zip(
        torch.autograd.grad(out, (q, k, v), grad_out),
        torch.autograd.grad(want, (q, k, v), grad_out),
        strict=True,
    ):
        close(g, w, GRAD_TOL[dtype])


@pytest.mark.gpu
@pytest.mark.parametrize("chars", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_router_triton_gpu(monkeypatch: pytest.MonkeyPatch, chars: int, dtype: torch.dtype) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    from kernels.router_triton import routed_audio_attention_triton

    q, k, v, m = router_inputs(2, 12, 6, 256, chars, 8, 64, dtype, "cuda")
    close(
        routed_audio_attention_triton(q, k, v, m, 256),
        ref.routed_audio_attention_math(q, k, v, m, 256),
        TOL[dtype],
    )


@pytest.mark.gpu
def test_dispatch_picks_triton_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert dispatch.backend_for("cuda", 128) == "triton"
    q, k, v = qkv(2, 4, 4, 128, 600, 64, torch.bfloat16, "cuda")
    close(
        dispatch.streaming_attention(q, k, v, [600, 300]),
        ref.streaming_attention_math(q, k, v, [600, 300]),
        2e-2,
    )
