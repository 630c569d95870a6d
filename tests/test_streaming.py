"""The streaming generator: exact against the teacher-forced forward, bounded cache, sink kept, audio in pieces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from realtime.audio_features import frame_windows, log_mel
from realtime.autoencoder import AUTOENCODER_CONFIGS, FrameAutoencoder, frames_to_tensor
from realtime.generator import Generator
from realtime.generator_config import GENERATOR_CONFIGS
from realtime.media import MAX_CHARACTERS, SAMPLES_PER_FRAME
from realtime.streaming import StreamingGenerator, pad_characters

CFG = GENERATOR_CONFIGS["tiny"]


@pytest.fixture(scope="module")
def models() -> tuple[Generator, FrameAutoencoder]:
    torch.manual_seed(0)
    g = Generator(CFG)
    with torch.no_grad():  # zero-initialised gates would hide any difference between the two paths
        for name, p in g.named_parameters():
            if p.abs().sum() == 0 and p.dim() >= 1 and "bias" not in name:
                p.normal_(std=0.05)
    return g.eval(), FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"]).eval()


def _scene(n: int, frames: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    masks = np.zeros((n, 128, 128), np.float32)
    for k in range(n):
        masks[k, 40:90, 10 + 28 * k : 34 + 28 * k] = 1.0
    audio = (rng.standard_normal((n, frames * SAMPLES_PER_FRAME)) * 0.1).astype(np.float32)
    return ref, masks, audio


@torch.no_grad()
def _teacher_forced(g: Generator, ae, ref, masks, audio, chunks: int, seed: int) -> torch.Tensor:
    """Each chunk from scratch with Generator.forward over the whole window: no cache at all."""
    cfg = g.cfg
    c, w, n = cfg.chunk_frames, cfg.window_chunks, masks.shape[0]
    z_ref = ae.encode(frames_to_tensor(ref[None]))[0]
    rm = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(pad_characters(masks)), cfg.mask_size)[None]
    mel = log_mel(pad_characters(audio), cfg.n_mels)
    bind = torch.zeros(1, MAX_CHARACTERS, MAX_CHARACTERS)
    bind[0, range(n), range(n)] = 1.0
    noise = torch.Generator().manual_seed(seed)
    latents: list[torch.Tensor] = []
    for j in range(chunks):
        ctx = latents[max(0, j - w) * c : j * c]
        context = torch.stack(ctx)[None] if ctx else z_ref.new_zeros(1, 0, *z_ref.shape)
        windows = frame_windows(mel, j * c, c, cfg.audio_past_ms, cfg.audio_lookahead_ms)[None]
        x = torch.randn((1, c, *z_ref.shape), generator=noise)
        ts = torch.linspace(1.0, 0.0, 3)
        for i in range(2):
            out = g(x, ts[i].expand(1), z_ref[None], context, windows, bind, rm)
            x = x + (ts[i + 1] - ts[i]) * out.velocity
        latents.extend(g.from_target(x, g.base(z_ref[None], context))[0])
    return torch.stack(latents)


def test_cached_stream_matches_the_teacher_forced_forward(models) -> None:
    g, ae = models
    ref, masks, audio = _scene(2, frames=12)
    session = StreamingGenerator(g, ae, ref, masks, steps=2, seed=5)
    chunks = session.push(audio, decode=False) + session.flush(decode=False)
    assert [ch.index for ch in chunks] == list(range(6))
    streamed = torch.cat([ch.latents for ch in chunks])
    expected = _teacher_forced(g, ae, ref, masks, audio, 6, seed=5)
    torch.testing.assert_close(streamed, expected, atol=2e-5, rtol=1e-4)


def test_audio_in_any_pieces_gives_the_same_stream(models) -> None:
    g, ae = models
    ref, masks, audio = _scene(3, frames=10)
    whole = StreamingGenerator(g, ae, ref, masks, steps=1, seed=2)
    a = whole.push(audio, decode=False) + whole.flush(decode=False)
    pieces = StreamingGenerator(g, ae, ref, masks, steps=1, seed=2)
    b: list = []
    rng = np.random.default_rng(0)
    pos = 0
    while pos < audio.shape[1]:  # 1 to 700 samples at a time, as a jitter buffer would hand them over
        n = int(rng.integers(1, 700))
        b += pieces.push(audio[:, pos : pos + n], decode=False)
        pos += n
    b += pieces.flush(decode=False)
    assert len(a) == len(b) == 5
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x.latents, y.latents)


def test_chunks_wait_for_their_lookahead(models) -> None:
    g, ae = models
    ref, masks, audio = _scene(1)
    session = StreamingGenerator(g, ae, ref, masks)
    need = session.samples_needed(0)
    chunk_samples = g.cfg.chunk_frames * SAMPLES_PER_FRAME
    assert need > chunk_samples  # the lookahead (and the STFT window's tail) is waited for
    assert session.push(audio[:, : need - 1], decode=False) == []
    assert len(session.push(audio[:, need - 1 : need], decode=False)) == 1


def test_cache_is_bounded_and_keeps_the_sink(models) -> None:
    """1,000 chunks: memory flat once the window is full; the sink is never evicted or changed."""
    g, ae = models
    ref, masks, audio = _scene(2, frames=2)
    session = StreamingGenerator(g, ae, ref, masks, steps=1)
    sink_keys = [k.clone() for k in session.sink.keys]
    chunk = audio[:, : g.cfg.chunk_frames * SAMPLES_PER_FRAME]
    sizes = []
    for _ in range(1000):
        session.push(chunk, decode=False)
        sizes.append(session.cache_bytes())
    assert session.chunk_index > 990
    assert len(session.cache) == g.cfg.window_chunks
    assert max(sizes[10:]) == min(sizes[10:])  # flat, not merely slow-growing
    assert session.tail.shape[1] < 4 * g.cfg.chunk_frames * SAMPLES_PER_FRAME
    for before, after in zip(sink_keys, session.sink.keys, strict=True):
        assert torch.equal(before, after)


def test_rebinding_takes_effect_from_the_next_chunk(models) -> None:
    g, ae = models
    ref, masks, audio = _scene(2, frames=8)
    half = 4 * SAMPLES_PER_FRAME
    runs = []
    for swap in (False, True):
        s = StreamingGenerator(g, ae, ref, masks, steps=1, seed=1)
        first = s.push(audio[:, :half], decode=False)
        if swap:
            s.set_binding(np.array([[0.0, 1.0], [1.0, 0.0]], np.float32))
        runs.append(first + s.push(audio[:, half:], decode=False) + s.flush(decode=False))
    a, b = runs
    k = len([c for c in a if c.index < 1])  # chunks generated before the swap are identical
    for x, y in zip(a[:k], b[:k], strict=True):
        torch.testing.assert_close(x.latents, y.latents)
    assert not torch.allclose(a[-1].latents, b[-1].latents)


def test_bad_session_input_is_refused(models) -> None:
    g, ae = models
    ref, masks, audio = _scene(2)
    with pytest.raises(ValueError, match="reference must be"):
        StreamingGenerator(g, ae, ref[:64], masks)
    with pytest.raises(ValueError, match="ref_masks must be"):
        StreamingGenerator(g, ae, ref, np.zeros((5, 128, 128), np.float32))
    with pytest.raises(ValueError, match="window_chunks"):
        StreamingGenerator(g, ae, ref, masks, window_chunks=99)
    s = StreamingGenerator(g, ae, ref, masks)
    with pytest.raises(ValueError, match="audio must be"):
        s.push(audio[:1])
    with pytest.raises(ValueError, match="finite"):
        s.push(np.full_like(audio, np.nan))
    with pytest.raises(ValueError, match="bind"):
        s.set_binding(np.full((2, 2), 2.0, np.float32))
    assert s.chunk_index == 0  # refused input changed nothing


def test_decoded_frames_come_with_masks_and_timings(models) -> None:
    g, ae = models
    ref, masks, audio = _scene(2, frames=6)
    s = StreamingGenerator(g, ae, ref, masks, steps=1)
    out = s.push(audio)
    assert out and out[0].frames.shape == (g.cfg.chunk_frames, 128, 128, 3)
    assert out[0].masks.shape == (g.cfg.chunk_frames, 2, g.cfg.mask_size, g.cfg.mask_size)
    assert set(out[0].timings_ms) == {"features_ms", "denoise_ms", "decode_ms", "cache_ms"}
