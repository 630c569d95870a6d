"""The engine runs the same through either kernel path: Triton (interpreter on CPU, compiled on CUDA) or
the PyTorch reference; and `bya bench gpu`, which measures both, on a CPU smoke run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from realtime.bench import gpu as bench_gpu
from realtime.errors import BYAError
from realtime.media import SAMPLES_PER_FRAME
from realtime.model.autoencoder import AUTOENCODER_CONFIGS, FrameAutoencoder
from realtime.model.config import GENERATOR_CONFIGS
from realtime.model.default_model import STUDENT, TEACHER, load_model
from realtime.model.generator import Generator
from realtime.stream.options import SamplingOptions
from realtime.stream.session import StreamingGenerator


def _scene(n: int, frames: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    masks = np.zeros((n, 128, 128), np.float32)
    for k in range(n):
        masks[k, 40:90, 10 + 28 * k : 34 + 28 * k] = 1.0
    t = np.arange(frames * SAMPLES_PER_FRAME) / 16000.0
    # voiced-like audio with pauses, different per character, so listener isolation has work to do
    audio = np.stack(
        [
            0.3 * np.sin(2 * np.pi * (140 + 60 * k) * t) * (np.sin(2 * np.pi * (1.5 + k) * t) > 0)
            for k in range(n)
        ]
    ).astype(np.float32)
    return ref, masks, audio


def _stream(g, ae, backend: str, monkeypatch, steps: int, window: int | None, chunks_frames: int, n: int = 2):
    monkeypatch.setenv("BYA_KERNELS", backend)
    ref, masks, audio = _scene(n, chunks_frames)
    session = StreamingGenerator(
        g, ae, ref, masks, options=SamplingOptions(steps=steps, window=window, seed=7)
    )
    with torch.no_grad():
        chunks = session.push(audio) + session.flush()
    latents = torch.cat([c.latents.float().cpu() for c in chunks])
    frames = np.concatenate([c.frames for c in chunks]).astype(np.float32)
    return latents, frames


def test_triton_interpreter_streams_the_same_chunks_as_torch(monkeypatch) -> None:
    """A session through the rolling cache (filling, then evicting) in Triton's interpreter and in SDPA."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    torch.manual_seed(0)
    g = Generator(GENERATOR_CONFIGS["tiny"])
    with torch.no_grad():  # zero-initialised gates would hide any difference between the two paths
        for name, p in g.named_parameters():
            if p.abs().sum() == 0 and p.dim() >= 1 and "bias" not in name:
                p.normal_(std=0.05)
    g.eval()
    ae = FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"]).eval()
    a_lat, a_frames = _stream(g, ae, "torch", monkeypatch, steps=1, window=1, chunks_frames=6)
    b_lat, b_frames = _stream(g, ae, "triton", monkeypatch, steps=1, window=1, chunks_frames=6)
    assert a_lat.shape[0] == 6
    torch.testing.assert_close(b_lat, a_lat, atol=1e-4, rtol=1e-4)
    assert np.abs(a_frames - b_frames).max() <= 1.0  # uint8 frames: at most a rounding step apart


@pytest.mark.gpu
@pytest.mark.parametrize("which", ["student", "teacher"])
def test_shipped_models_on_cuda_match_through_both_kernel_paths_and_the_cpu(monkeypatch, which: str) -> None:
    """The shipped student (1 step, reference only) and teacher (2 steps here, full rolling window) on
    CUDA: Triton and PyTorch agree with each other and with the CPU."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    path = STUDENT if which == "student" else TEACHER
    steps = 1 if which == "student" else 2
    results = {}
    for device, backend in (("cuda", "triton"), ("cuda", "torch"), ("cpu", "torch")):
        loaded = load_model(path, device=device)
        window = loaded.window
        results[(device, backend)] = _stream(
            loaded.generator, loaded.autoencoder, backend, monkeypatch, steps, window, chunks_frames=24, n=3
        )
    ref_lat, ref_frames = results[("cpu", "torch")]
    for key in (("cuda", "triton"), ("cuda", "torch")):
        lat, frames = results[key]
        err = (lat - ref_lat).abs().max().item() / ref_lat.abs().max().item()
        assert err < 2e-3, f"{key}: latents differ from the CPU by {err:.2e} of their scale"
        assert np.abs(frames - ref_frames).mean() < 0.5, f"{key}: frames differ from the CPU"
    tri, tor = results[("cuda", "triton")][0], results[("cuda", "torch")][0]
    assert (tri - tor).abs().max().item() / tor.abs().max().item() < 1e-3


def _args(tmp_path: Path, **over) -> argparse.Namespace:
    base = {
        "presets": "tiny",
        "sessions": "1",
        "dtypes": "fp32",
        "characters": 2,
        "repeat": 1,
        "device": "cpu",
        "student": "",
        "json": str(tmp_path / "gpu.json"),
    }
    return argparse.Namespace(**{**base, **over})


def test_bench_gpu_smoke_on_cpu_compares_both_paths(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert bench_gpu.bench_command(_args(tmp_path)) == 0
    data = json.loads((tmp_path / "gpu.json").read_text())
    rows = {r["backend"]: r for r in data["rows"]}
    assert set(rows) == {"triton", "torch"} and data["triton_runs"]
    assert rows["torch"]["speedup_vs_torch"] == 1.0 and rows["torch"]["max_abs_diff_vs_torch"] == 0.0
    assert rows["triton"]["rel_diff_vs_torch"] < 1e-4  # the same model either way
    assert rows["triton"]["ms"] > 0 and rows["triton"]["frames_per_s"] > 0


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"presets": "huge"}, "unknown preset"),
        ({"sessions": "0"}, "--sessions"),
        ({"sessions": "two"}, "bad list"),
        ({"dtypes": "fp8"}, "--dtypes"),
        ({"characters": 5}, "--characters"),
        ({"repeat": 0}, "--repeat"),
        ({"device": "tpu"}, "--device"),
        ({"student": "absent.safetensors"}, "no such file"),
    ],
)
def test_bench_gpu_refuses_bad_arguments(tmp_path: Path, over: dict, message: str) -> None:
    with pytest.raises(BYAError, match=message):
        bench_gpu.bench_command(_args(tmp_path, **over))
    assert not (tmp_path / "gpu.json").exists()


def test_the_shipped_student_streams_with_its_audio_guidance() -> None:
    """The checkpoint's audio guidance reaches every session the engine builds; a room can override it."""
    from realtime.engine.scheduler import ChunkScheduler
    from realtime.model.default_model import default_audio_guidance
    from realtime.scene.scenes import world_scene

    loaded = load_model()
    assert loaded.path == STUDENT and loaded.audio_guidance == default_audio_guidance(STUDENT) == 2.0
    assert default_audio_guidance(TEACHER) == 1.0  # no guidance recorded: off
    scene = world_scene(2, seed=0, size=loaded.generator.cfg.frame_size)
    options = SamplingOptions.defaults(loaded, steps=1, seed=0)
    assert ChunkScheduler(loaded, scene, options).session.audio_guidance == 2.0
    assert ChunkScheduler(loaded, scene, options.replace(audio_guidance=1.0)).session.audio_guidance == 1.0
