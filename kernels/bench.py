"""Benchmark of the Triton kernels against their PyTorch baselines on the preset shapes.

`python -m kernels.bench [--json PATH] [--quick]`: ms and TFLOP/s per kernel (FLOPs of valid keys only),
the speed-up of Triton over each baseline, and the worst deviation from the baseline output. On CPU it
runs the PyTorch paths on small shapes and says that Triton was skipped.

On CUDA every implementation is timed twice: eagerly (`do_bench`: L2 flushed, each call launched from
Python, so a tiny shape measures the host's launch overhead as much as the GPU) and replayed from a
CUDA graph (`do_bench_cudagraph`: the device time alone, what an engine that captures its per-chunk step
pays). Both speed-ups are reported; neither replaces the other.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from kernels import attention_ref as ref
from kernels.dispatch import backend_for
from kernels.shapes import PRESETS, AttentionShape

Fn = Callable[[], Any]


def _graph_timer(device: str) -> Callable[[Fn], float] | None:
    """Device time from a CUDA graph of many calls (no host launch overhead, warm L2); None off CUDA."""
    if device != "cuda":
        return None
    import triton.testing

    return lambda fn: float(triton.testing.do_bench_cudagraph(fn, rep=100, return_mode="median"))


def _timer(device: str) -> Callable[[Fn], float]:
    if device == "cuda":
        import triton.testing

        # do_bench flushes L2 between runs and reports the median in ms.
        return lambda fn: float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))

    def cpu_time(fn: Fn) -> float:
        fn()
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)

    return cpu_time


class Bench:
    """Collects rows: each case runs a set of implementations, the first of which is the kernel under test."""

    def __init__(
        self, device: str, dtype: torch.dtype, with_triton: bool, on_case: Callable[[], None] | None = None
    ) -> None:
        self.device, self.dtype, self.with_triton = device, dtype, with_triton
        self.on_case = on_case
        self.time = _timer(device)
        self.graph_time = _graph_timer(device)
        self.rows: list[dict[str, Any]] = []

    def case(self, op: str, case: str, flops: float, impls: dict[str, Fn], info: dict[str, Any]) -> None:
        results: dict[str, tuple[float, Any]] = {}
        graphed: dict[str, float] = {}
        for name, fn in impls.items():
            try:
                out = fn()
                results[name] = (self.time(fn), out)
            except Exception as exc:  # a baseline that cannot run this shape (OOM, unsupported) is reported
                print(f"  {op}/{case}/{name}: failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
                results[name] = (math.nan, None)
            graphed[name] = math.nan
            if self.graph_time is not None and results[name][1] is not None:
                try:  # after the eager run, so autotuning and compiling happened outside the capture
                    graphed[name] = self.graph_time(fn)
                except Exception as exc:  # e.g. a path that syncs with the host cannot be captured
                    print(f"  {op}/{case}/{name}: no CUDA graph: {type(exc).__name__}: {str(exc)[:100]}")
            if self.device == "cuda":
                torch.cuda.empty_cache()
        ref_name = next(iter(impls))
        ref_out = results[ref_name][1]
        speedups = _speedups({n: ms for n, (ms, _) in results.items()}, ref_name)
        graph_speedups = _speedups(graphed, ref_name)
        for name, (ms, out) in results.items():
            err = math.nan
            if out is not None and ref_out is not None and name != ref_name:
                err = (_first(out).float() - _first(ref_out).float()).abs().max().item()
            g_ms = graphed[name]
            self.rows.append(
                {
                    "op": op,
                    "case": case,
                    "impl": name,
                    "ms": ms,
                    "tflops": flops / ms / 1e9 if ms == ms else math.nan,
                    # for the kernel under test: best baseline / kernel; for a baseline: baseline / kernel
                    "speedup": speedups[name],
                    "ms_graph": g_ms,
                    "tflops_graph": flops / g_ms / 1e9 if g_ms == g_ms else math.nan,
                    "speedup_graph": graph_speedups[name],
                    "max_abs_diff_vs_first": err,
                    **info,
                }
            )
            print(
                f"  {op:9s} {case:28s} {name:16s} {ms:9.3f} ms {self.rows[-1]['tflops']:8.3g} TFLOP/s"
                f"  graph {g_ms:9.4f} ms {self.rows[-1]['tflops_graph']:8.3g} TFLOP/s",
                flush=True,
            )
        if self.on_case is not None:
            self.on_case()


def _speedups(times: dict[str, float], ref_name: str) -> dict[str, float]:
    """Per implementation: for the kernel under test the fastest baseline's time over its own, for a
    baseline its time over the kernel's; NaN where there is no Triton kernel (CPU) or no time."""
    ref_ms = times[ref_name]
    if not ref_name.startswith("triton") or math.isnan(ref_ms):
        return {name: math.nan for name in times}
    baselines = [ms for n, ms in times.items() if n != ref_name and not math.isnan(ms)]
    out = {name: ms / ref_ms for name, ms in times.items()}
    out[ref_name] = min(baselines) / ref_ms if baselines else math.nan
    return out


def _first(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def _rand(*shape: int, device: str, dtype: torch.dtype, grad: bool = False) -> torch.Tensor:
    return torch.randn(*shape, device=device, dtype=dtype).requires_grad_(grad)


def bench_streaming(
    bench: Bench, name: str, shape: AttentionShape, fills: list[int], batch_label: str
) -> None:
    """Chunk queries over [sink | cache | chunk]; `fills` = cached chunks per session (ragged when they differ)."""
    dev, dt = bench.device, bench.dtype
    b, h, hkv, d = len(fills), shape.heads, shape.kv_heads, shape.head_dim
    lens_list = [shape.kv_len(c) for c in fills]
    lk = max(lens_list)
    q = _rand(b, h, shape.q_len, d, device=dev, dtype=dt)
    k, v = _rand(b, hkv, lk, d, device=dev, dtype=dt), _rand(b, hkv, lk, d, device=dev, dtype=dt)
    lens = torch.tensor(lens_list, device=dev, dtype=torch.int32)
    flops = 4.0 * h * shape.q_len * sum(lens_list) * d
    impls: dict[str, Fn] = {}
    if bench.with_triton:
        from kernels.attention_triton import streaming_attention_triton

        impls["triton"] = lambda: streaming_attention_triton(q, k, v, lens)
    if len(set(lens_list)) == 1:  # no padding: plain SDPA (flash) is the honest baseline
        impls["sdpa"] = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=h != hkv)
    else:
        impls["sdpa-padmask"] = lambda: ref.streaming_attention_sdpa(q, k, v, lens)
        impls["sdpa-loop"] = lambda: ref.streaming_attention_loop(q, k, v, lens_list)
    info = {"B": b, "H": h, "Hkv": hkv, "Lq": shape.q_len, "kv_lens": lens_list, "D": d, "dtype": str(dt)}
    bench.case("stream", f"{name} {batch_label}", flops, impls, info)


def _visible_pairs(length: int, ref_len: int, chunk_len: int) -> int:
    ids = ref.chunk_ids(length, ref_len, chunk_len)
    ends = torch.where(ids == 0, ref_len, ref_len + ids * chunk_len).clamp(max=length)
    return int(ends.sum())


def bench_chunk_causal(
    bench: Bench, name: str, shape: AttentionShape, batch: int, chunks: int, flex: bool
) -> None:
    """Teacher-forced training attention, forward alone and forward + backward."""
    dev, dt = bench.device, bench.dtype
    length, h, d = shape.train_len(chunks), shape.heads, shape.head_dim
    ref_len, chunk_len = shape.frame_tokens, shape.q_len
    q, k, v = (_rand(batch, h, length, d, device=dev, dtype=dt, grad=True) for _ in range(3))
    grad = torch.randn_like(q)
    fwd_flops = 4.0 * batch * h * d * _visible_pairs(length, ref_len, chunk_len)
    fns: dict[str, Callable[..., torch.Tensor]] = {}
    if bench.with_triton:
        from kernels.chunk_causal import chunk_causal_attention_triton

        fns["triton"] = chunk_causal_attention_triton
    if flex:
        from kernels.chunk_causal import chunk_causal_attention_flex

        fns["flex"] = chunk_causal_attention_flex
    fns["sdpa-densemask"] = ref.chunk_causal_attention_sdpa

    def fwd(fn: Callable[..., torch.Tensor]) -> Fn:
        def run() -> torch.Tensor:
            with torch.no_grad():
                return fn(q, k, v, ref_len, chunk_len)

        return run

    def fwd_bwd(fn: Callable[..., torch.Tensor]) -> Fn:
        return lambda: torch.autograd.grad(fn(q, k, v, ref_len, chunk_len), (q, k, v), grad)

    info = {
        "B": batch,
        "H": h,
        "L": length,
        "ref_len": ref_len,
        "chunk_len": chunk_len,
        "D": d,
        "dtype": str(dt),
    }
    bench.case("train-fwd", f"{name} L={length}", fwd_flops, {n: fwd(f) for n, f in fns.items()}, info)
    # backward = 2.5x the forward's matmul FLOPs (dV, dP, dQ, dK plus the recomputed QK^T)
    bench.case(
        "train-f+b", f"{name} L={length}", 3.5 * fwd_flops, {n: fwd_bwd(f) for n, f in fns.items()}, info
    )


def _router_unfused_matmul(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, m: torch.Tensor, frame_tokens: int
) -> torch.Tensor:
    """Unfused router in the input dtype with batched matmuls (no SDPA), the other natural baseline."""
    b, h, n, d = q.shape
    chars, frames = k.shape[1], n // frame_tokens
    audio = k.shape[3] // frames
    qf = q.view(b, 1, h, frames, frame_tokens, d)
    s = (qf @ k.view(b, chars, h, frames, audio, d).transpose(-1, -2)) * d**-0.5
    o = (s.softmax(-1) @ v.view(b, chars, h, frames, audio, d)).view(b, chars, h, n, d)
    return (o * m.permute(0, 2, 1)[:, :, None, :, None].to(q.dtype)).sum(1)


def bench_router(bench: Bench, name: str, shape: AttentionShape, batch: int, frames: int) -> None:
    dev, dt = bench.device, bench.dtype
    h, d, chars, audio, ftok = (
        shape.heads,
        shape.head_dim,
        shape.characters,
        shape.audio_tokens,
        shape.frame_tokens,
    )
    n = frames * ftok
    q = _rand(batch, h, n, d, device=dev, dtype=dt)
    k, v = (_rand(batch, chars, h, frames * audio, d, device=dev, dtype=dt) for _ in range(2))
    m = torch.rand(batch, n, chars, device=dev, dtype=dt)
    flops = 4.0 * batch * h * n * audio * d * chars
    impls: dict[str, Fn] = {}
    if bench.with_triton:
        from kernels.router_triton import routed_audio_attention_triton

        impls["triton-fused"] = lambda: routed_audio_attention_triton(q, k, v, m, ftok)
    impls["unfused-sdpa"] = lambda: ref.routed_audio_attention_sdpa(q, k, v, m, ftok)
    impls["unfused-matmul"] = lambda: _router_unfused_matmul(q, k, v, m, ftok)
    info = {"B": batch, "H": h, "N": n, "K": chars, "A": audio, "D": d, "dtype": str(dt)}
    bench.case("router", f"{name} B={batch} T={frames}", flops, impls, info)


def run(bench: Bench, quick: bool, only: set[str]) -> None:
    if quick:  # tiny shapes: a smoke test of every path that finishes in seconds on 2 CPU cores
        tiny = AttentionShape(
            frame_tokens=16, chunk_frames=2, window_chunks=2, heads=2, kv_heads=2, head_dim=32
        )
        bench_streaming(bench, "tiny", tiny, [2], "B=1 full")
        bench_streaming(bench, "tiny", tiny, [0, 1, 2], "B=3 ragged")
        bench_chunk_causal(bench, "tiny", tiny, batch=1, chunks=2, flex=False)
        bench_router(bench, "tiny", tiny, batch=1, frames=2)
        return
    cuda = bench.device == "cuda"
    names = ["toon-s", "base", "large", "large-gqa"] if cuda and "stream" in only else ["toon-s"]
    for name in names if "stream" in only else []:
        shape = PRESETS[name]
        w = shape.window_chunks
        bench_streaming(bench, name, shape, [w], "B=1 full")
        # Eight sessions at different points of filling the window, two of them full.
        fills = [0, 1, 2, 3, w // 2 + 1, w - 2, w, w]
        bench_streaming(bench, name, shape, [min(max(f, 0), w) for f in fills], "B=8 ragged")
    routers = (
        [
            ("toon-s", 1, 2),
            ("toon-s", 8, 2),
            ("base", 8, 2),
            ("large", 1, 3),
            ("large", 8, 3),
            ("base", 8, 16),
        ]
        if cuda
        else [("toon-s", 1, 2)]
    )
    for name, batch, frames in routers if "router" in only else []:
        bench_router(bench, name, PRESETS[name], batch, frames)
    train = [("toon-s", 8, 8), ("base", 4, 8), ("large", 1, 4)] if cuda else [("toon-s", 2, 4)]
    for name, batch, chunks in train if "train" in only else []:
        bench_chunk_causal(bench, name, PRESETS[name], batch, chunks, flex=cuda)


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| op | case | impl | ms | TFLOP/s | speed-up of Triton | graph ms | graph TFLOP/s "
        "| graph speed-up | max abs diff |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def num(x: float, fmt: str, suffix: str = "") -> str:
        return "-" if math.isnan(x) else f"{x:{fmt}}{suffix}"

    for r in rows:
        lines.append(
            f"| {r['op']} | {r['case']} | {r['impl']} | {num(r['ms'], '.3f')} | {num(r['tflops'], '.3g')} | "
            f"{num(r['speedup'], '.2f', 'x')} | {num(r['ms_graph'], '.4f')} | {num(r['tflops_graph'], '.3g')} | "
            f"{num(r['speedup_graph'], '.2f', 'x')} | {num(r['max_abs_diff_vs_first'], '.2g')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernels.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the rows and the environment here")
    parser.add_argument("--quick", action="store_true", help="tiny shapes only (a smoke test)")
    parser.add_argument(
        "--only", default="stream,train,router", help="comma-separated subset of stream,train,router"
    )
    args = parser.parse_args(argv)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    with_triton = backend_for(device) == "triton"
    # bf16 is the GPU target dtype; fp32 on CPU because the torch CPU paths are the reference there.
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    env = {
        "device": torch.cuda.get_device_name()
        if device == "cuda"
        else f"cpu ({platform.processor() or 'x86_64'})",
        "torch": torch.__version__,
        "triton": triton_version,
        "cuda": torch.version.cuda,
        "dtype": str(dtype),
        "backend": backend_for(device),
        "quick": args.quick,
        "command": "python -m kernels.bench " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    print(f"device: {env['device']}  torch {env['torch']}  triton {triton_version}  dtype {dtype}")
    if not with_triton:
        print(f"triton: skipped (backend for {device} is {env['backend']}); timing the PyTorch paths only")
    only = {part.strip() for part in args.only.split(",") if part.strip()}
    if not only <= {"stream", "train", "router"}:
        raise ValueError(f"--only takes stream, train, router; got {args.only!r}")

    def save() -> None:
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            rows = {**env, "triton_skipped": not with_triton, "rows": bench.rows}
            args.json.write_text(json.dumps(rows, indent=1))

    # Saved after every case, so a run cut off by a time limit still leaves its numbers behind.
    bench = Bench(device, dtype, with_triton, on_case=save)
    try:
        run(bench, args.quick, only)
    finally:
        print()
        print(format_table(bench.rows))
        save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
