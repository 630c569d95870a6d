"""The exported per-chunk step: ONNX Runtime gives the PyTorch outputs, alone and inside a streaming session."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from realtime.media import SAMPLES_PER_FRAME
from realtime.model.autoencoder import AUTOENCODER_CONFIGS, FrameAutoencoder
from realtime.model.config import GENERATOR_CONFIGS
from realtime.model.generator import Generator
from realtime.model.onnx_step import DenoiseStep, OnnxDenoiser, example_inputs, export_step, pick_backend
from realtime.stream.options import SamplingOptions
from realtime.stream.session import StreamingGenerator

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Generator, str]:
    torch.manual_seed(0)
    g = Generator(replace(GENERATOR_CONFIGS["tiny"], router_prior=True))  # as the shipped student
    with torch.no_grad():
        for name, p in g.named_parameters():
            if p.abs().sum() == 0 and p.dim() >= 1 and "bias" not in name:
                p.normal_(std=0.05)
    g.eval()
    path = tmp_path_factory.mktemp("onnx") / "step.onnx"
    export_step(g, path)
    return g, str(path)


@pytest.mark.parametrize("window", [0, 1, 2])
def test_onnx_step_matches_torch(exported, window: int) -> None:
    g, path = exported
    args = example_inputs(g, window)  # the window length is a dynamic axis: a filling cache works too
    with torch.no_grad():
        v, m = DenoiseStep(g)(*args)
    ort = OnnxDenoiser(path)
    assert ort.provider == "CPUExecutionProvider"
    from realtime.model.generator import SinkCache

    out = ort(
        args[0],
        args[1],
        args[2],
        SinkCache([], [], list(args[3].unbind(0))),
        list(args[4].unbind(0)),
        list(args[5].unbind(0)),
        args[6],
        args[7],
    )
    torch.testing.assert_close(out.velocity, v, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.masks, m, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("listening", [False, True])
def test_streaming_session_through_onnx_matches_torch(exported, listening: bool) -> None:
    """Also with character 0 silent: listener isolation's two passes as one batch of two in ONNX Runtime."""
    g, path = exported
    ae = FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"]).eval()
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    masks = np.zeros((2, 128, 128), np.float32)
    masks[0, 30:90, 10:50] = masks[1, 30:90, 70:110] = 1.0
    audio = (rng.standard_normal((2, 10 * SAMPLES_PER_FRAME)) * 0.1).astype(np.float32)
    if listening:
        audio[0] = 0.0
    step = OnnxDenoiser(path)
    assert step.batched  # exported with a dynamic batch
    a = StreamingGenerator(g, ae, ref, masks, options=SamplingOptions(steps=1, seed=3))
    b = StreamingGenerator(g, ae, ref, masks, options=SamplingOptions(steps=1, seed=3), denoiser=step)
    ca = a.push(audio, decode=False) + a.flush(decode=False)
    cb = b.push(audio, decode=False) + b.flush(decode=False)
    assert len(ca) == len(cb) == 5
    for x, y in zip(ca, cb, strict=True):
        torch.testing.assert_close(y.latents, x.latents, atol=1e-3, rtol=1e-3)


def test_pick_backend_names_what_it_picked(exported) -> None:
    g, path = exported
    fn, name, timings = pick_backend(g, path, repeat=2)
    assert name in timings and set(timings) == {"torch", "onnxruntime:CPUExecutionProvider"}
    assert (name == "torch") == (fn == g.denoise)
    _, name, timings = pick_backend(g, None, repeat=1)
    assert name == "torch" and set(timings) == {"torch"}


def test_the_exported_step_is_cached_by_the_weights_content(tmp_path) -> None:
    from realtime.model.checkpoint import load_generator, save_generator
    from realtime.model.default_model import LoadedModel, use_backend

    ckpt, cache = tmp_path / "g.safetensors", tmp_path / "cache"
    torch.manual_seed(0)
    save_generator(Generator(GENERATOR_CONFIGS["tiny"]), ckpt)
    ae = FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"]).eval()
    first = LoadedModel(load_generator(ckpt), ae, 1, ckpt, window=0)
    use_backend(first, "onnx", cache_dir=cache)
    assert first.backend == "onnxruntime:CPUExecutionProvider" and len(list(cache.glob("*.onnx"))) == 1
    use_backend(LoadedModel(load_generator(ckpt), ae, 1, ckpt, window=0), "onnx", cache_dir=cache)
    assert len(list(cache.glob("*.onnx"))) == 1  # same weights: the export is reused
    torch.manual_seed(1)
    save_generator(Generator(GENERATOR_CONFIGS["tiny"]), ckpt)  # new weights at the same path
    use_backend(LoadedModel(load_generator(ckpt), ae, 1, ckpt, window=0), "onnx", cache_dir=cache)
    assert len(list(cache.glob("*.onnx"))) == 2
