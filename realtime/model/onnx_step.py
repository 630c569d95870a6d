"""The student's per-chunk denoiser step as ONNX, run by ONNX Runtime, and the pick of the faster backend.

`export_step` writes the denoiser call StreamingGenerator makes for every chunk (queries of the chunk
over [sink | window | itself], routed audio, router) with the cache as plain tensor inputs, so ONNX
Runtime runs exactly the PyTorch computation. `OnnxDenoiser` has the signature of Generator.denoise;
`pick_backend` times both on the session's real shapes and keeps the faster one (CUDA provider where
onnxruntime-gpu finds a GPU, the CPU provider otherwise), and says which it picked.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from realtime.model.generator import Generator, GeneratorOutput, SinkCache

INPUTS = ("noisy", "t", "base", "mids", "keys", "values", "audio", "ref_masks")
OUTPUTS = ("velocity", "masks")
EXPORT_VERSION = 2  # 2: the batch is a dynamic axis too (listener isolation runs a batch of two)
# the batch axis of every input and output; the cache's (mids, keys, values) stack the blocks first
BATCH_AXIS = {name: 1 if name in ("mids", "keys", "values") else 0 for name in INPUTS + OUTPUTS}


class DenoiseStep(nn.Module):
    """Generator.denoise with the per-block cache stacked into tensors (what ONNX export needs)."""

    def __init__(self, model: Generator) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        noisy: torch.Tensor,  # (B, C, c, h, w)
        t: torch.Tensor,  # (B,)
        base: torch.Tensor,  # (B, c, h, w)
        mids: torch.Tensor,  # (depth, B, F, W) the sink's router states
        keys: torch.Tensor,  # (depth, B, H, Lw, D) [sink | window], rotated
        values: torch.Tensor,  # (depth, B, H, Lw, D)
        audio: torch.Tensor,  # (B, K, C*A, W)
        ref_masks: torch.Tensor,  # (B, K, M, M)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        sink = SinkCache([], [], list(mids.unbind(0)))
        out = self.model.denoise(
            noisy, t, base, sink, list(keys.unbind(0)), list(values.unbind(0)), audio, ref_masks
        )
        return out.velocity, out.masks


def example_inputs(model: Generator, window_chunks: int) -> tuple[torch.Tensor, ...]:
    cfg = model.cfg
    c, f, d = cfg.chunk_frames, cfg.frame_tokens, cfg.head_dim
    lat = (cfg.latent_channels, cfg.latent_size, cfg.latent_size)
    lw = f + window_chunks * c * f
    return (
        torch.randn(1, c, *lat),
        torch.full((1,), 1.0),
        torch.randn(1, *lat),
        torch.randn(cfg.depth, 1, f, cfg.width),
        torch.randn(cfg.depth, 1, cfg.heads, lw, d),
        torch.randn(cfg.depth, 1, cfg.heads, lw, d),
        torch.randn(1, cfg.max_characters, c * cfg.audio_tokens, cfg.width),
        torch.rand(1, cfg.max_characters, cfg.mask_size, cfg.mask_size),
    )


@torch.no_grad()
def export_step(model: Generator, path: str | Path) -> Path:
    """Write the denoiser step to `path` (ONNX, opset 17); the batch and the window length are dynamic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    step = DenoiseStep(model.eval()).eval()
    torch.onnx.export(
        step,
        example_inputs(model, model.cfg.window_chunks),
        str(path),
        input_names=list(INPUTS),
        output_names=list(OUTPUTS),
        dynamic_axes={
            name: {BATCH_AXIS[name]: "batch", **({3: "window"} if name in ("keys", "values") else {})}
            for name in INPUTS + OUTPUTS
        },
        opset_version=17,
        dynamo=False,
    )
    return path


class OnnxDenoiser:
    """Runs an exported step with ONNX Runtime; called like Generator.denoise (no external masks)."""

    def __init__(
        self, path: str | Path, providers: list[str] | None = None, threads: int | None = None
    ) -> None:
        import onnxruntime as ort

        from realtime.engine.threads import onnx_session_options

        opts = onnx_session_options(threads)  # sized from this process's cores; threads wait, not spin
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        available = ort.get_available_providers()
        # onnxruntime-gpu lists the CUDA provider even on machines without a GPU; ask for it only with one
        gpu = torch.cuda.is_available() and "CUDAExecutionProvider" in available
        wanted = providers or (["CUDAExecutionProvider"] if gpu else []) + ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(path), opts, providers=wanted)
        self.provider = self.session.get_providers()[0]
        # a step exported with a dynamic batch takes listener isolation's two passes as one call
        self.batched = isinstance(self.session.get_inputs()[0].shape[0], str)

    def __call__(
        self,
        noisy: torch.Tensor,
        t: torch.Tensor,
        base: torch.Tensor,
        sink: SinkCache,
        keys: list[torch.Tensor],
        values: list[torch.Tensor],
        audio: torch.Tensor,
        ref_masks: torch.Tensor,
        external: torch.Tensor | None = None,
        mix: float = 1.0,
    ) -> GeneratorOutput:
        if external is not None:
            raise ValueError(
                "the ONNX step routes with the router's own masks; use the torch backend for external masks"
            )
        feed = {
            "noisy": noisy,
            "t": t,
            "base": base,
            "mids": torch.stack(sink.mids),
            "keys": torch.stack(keys),
            "values": torch.stack(values),
            "audio": audio,
            "ref_masks": ref_masks,
        }
        v, m = self.session.run(
            None, {k: np.ascontiguousarray(x.float().cpu().numpy()) for k, x in feed.items()}
        )
        return GeneratorOutput(torch.from_numpy(v), [], torch.from_numpy(m))


def time_backend(fn, args: tuple, repeat: int = 10) -> float:
    """Median ms of `fn(*args)` after a warm-up."""
    fn(*args)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)
        times.append(1e3 * (time.perf_counter() - t0))
    return float(np.median(times))


@torch.no_grad()
def pick_backend(
    model: Generator,
    onnx_path: str | Path | None,
    repeat: int = 10,
    window: int | None = None,  # cached chunks the session attends to (default: the model's full window)
    threads: int | None = None,  # ONNX Runtime's intra-op threads: give it what torch has, for a fair race
) -> tuple[object, str, dict]:
    """(denoiser, name, timings_ms): the faster of torch and ONNX Runtime on the session's step."""
    step = DenoiseStep(model)
    args = example_inputs(model, model.cfg.window_chunks if window is None else window)
    timings = {"torch": time_backend(step, args, repeat)}
    if onnx_path is None or not Path(onnx_path).is_file():
        return model.denoise, "torch", timings
    ort_step = OnnxDenoiser(onnx_path, threads=threads)
    sink = SinkCache([], [], list(args[3].unbind(0)))
    ort_args = (
        args[0],
        args[1],
        args[2],
        sink,
        list(args[4].unbind(0)),
        list(args[5].unbind(0)),
        args[6],
        args[7],
    )
    name = f"onnxruntime:{ort_step.provider}"
    timings[name] = time_backend(ort_step, ort_args, repeat)
    if timings[name] < timings["torch"]:
        return ort_step, name, timings
    return model.denoise, "torch", timings
