"""Offline sampling: a tiny random generator produces a whole clip, routes by bind, takes external masks."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from realtime.media import SAMPLES_PER_FRAME
from realtime.model.autoencoder import AUTOENCODER_CONFIGS, FrameAutoencoder
from realtime.model.config import GENERATOR_CONFIGS
from realtime.model.generator import Generator
from realtime.model.router import boxes_to_masks
from realtime.stream.options import SamplingOptions
from realtime.stream.sampler import generate, upsample_masks


@pytest.fixture(scope="module")
def models() -> tuple[Generator, FrameAutoencoder]:
    torch.manual_seed(0)
    return Generator(GENERATOR_CONFIGS["tiny"]).eval(), FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"]).eval()


def _scene(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    masks = np.zeros((n, 128, 128), np.float32)
    for k in range(n):
        masks[k, 40:90, 10 + 28 * k : 34 + 28 * k] = 1.0
    audio = (rng.standard_normal((n, 10 * SAMPLES_PER_FRAME)) * 0.1).astype(np.float32)
    return ref, masks, audio


@pytest.mark.parametrize("n", [1, 3])
def test_generate_whole_chunks(models, n: int) -> None:
    g, ae = models
    ref, masks, audio = _scene(n)
    out = generate(g, ae, ref, masks, audio, options=SamplingOptions(steps=2))
    assert out.frames.shape == (10, 128, 128, 3) and out.frames.dtype == np.uint8
    m = g.cfg.mask_size
    assert out.masks.shape == (10, n, m, m) and out.refined.shape == out.masks.shape
    assert upsample_masks(out.masks, 128).shape == (10, n, 128, 128)
    again = generate(g, ae, ref, masks, audio, options=SamplingOptions(steps=2))
    assert np.array_equal(out.frames, again.frames)  # seeded: the same clip twice


def test_external_masks_are_used_for_routing(models) -> None:
    g, ae = models
    ref, masks, audio = _scene(2)
    boxes = np.tile(np.array([[10, 40, 34, 90], [38, 40, 62, 90]], np.float32), (10, 1, 1))
    ext = boxes_to_masks(boxes, 128, g.cfg.mask_size)
    out = generate(g, ae, ref, masks, audio, options=SamplingOptions(steps=1), external=ext)
    np.testing.assert_allclose(out.masks, ext, atol=1e-6)


def test_bind_is_checked(models) -> None:
    g, ae = models
    ref, masks, audio = _scene(2)
    with pytest.raises(ValueError, match="bind must be"):
        generate(g, ae, ref, masks, audio, options=SamplingOptions(steps=1), bind=np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="explicit bind"):
        generate(g, ae, ref, masks, audio[:1], options=SamplingOptions(steps=1))
    one = generate(
        g,
        ae,
        ref,
        masks,
        audio[:1],
        options=SamplingOptions(steps=1),
        bind=np.array([[0.0, 1.0]], np.float32),
    )
    assert one.frames.shape[0] == 10


def test_bad_inputs_name_the_problem(models) -> None:
    g, ae = models
    ref, masks, audio = _scene(2)
    with pytest.raises(ValueError, match="reference must be"):
        generate(g, ae, ref[:64], masks, audio, options=SamplingOptions(steps=1))
    with pytest.raises(ValueError, match="ref_masks must be"):
        generate(g, ae, ref, np.zeros((5, 128, 128), np.float32), audio, options=SamplingOptions(steps=1))
    with pytest.raises(ValueError, match="at least one chunk"):
        generate(g, ae, ref, masks, audio[:, :100], options=SamplingOptions(steps=1))
    with pytest.raises(ValueError, match="steps must be"):
        generate(g, ae, ref, masks, audio, options=SamplingOptions(steps=0))


def test_the_context_window_is_honoured(models) -> None:
    """A window of one chunk must give another clip than the model's full window of two, and the same
    until a chunk has more than one chunk before it. (A window of 0 draws its noise from a bank:
    tests/test_streaming.py.)"""
    g, ae = models
    g = copy.deepcopy(g)
    with torch.no_grad():  # zero-initialised gates would let no context through at all
        for name, p in g.named_parameters():
            if p.abs().sum() == 0 and p.dim() >= 1 and "bias" not in name:
                p.normal_(std=0.05)
    assert g.cfg.window_chunks == 2
    ref, masks, audio = _scene(2)
    full = generate(g, ae, ref, masks, audio, options=SamplingOptions(steps=1))
    one = generate(g, ae, ref, masks, audio, options=SamplingOptions(steps=1, window=1))
    c = g.cfg.chunk_frames
    assert len(full.latents) >= 3 * c
    assert torch.equal(full.latents[: 2 * c], one.latents[: 2 * c])  # context of at most one chunk either way
    assert not torch.equal(full.latents[2 * c :], one.latents[2 * c :])
