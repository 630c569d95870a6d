"""The streaming generator: exact against the teacher-forced forward, bounded cache, sink kept, audio in pieces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from realtime.media import MAX_CHARACTERS, SAMPLES_PER_FRAME
from realtime.model.audio_features import frame_windows, log_mel
from realtime.model.autoencoder import AUTOENCODER_CONFIGS, FrameAutoencoder, frames_to_tensor
from realtime.model.config import GENERATOR_CONFIGS
from realtime.model.generator import Generator
from realtime.stream.options import SamplingOptions
from realtime.stream.session import StreamingGenerator, pad_characters

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
    session = StreamingGenerator(g, ae, ref, masks, options=SamplingOptions(steps=2, seed=5))
    chunks = session.push(audio, decode=False) + session.flush(decode=False)
    assert [ch.index for ch in chunks] == list(range(6))
    streamed = torch.cat([ch.latents for ch in chunks])
    expected = _teacher_forced(g, ae, ref, masks, audio, 6, seed=5)
    torch.testing.assert_close(streamed, expected, atol=2e-5, rtol=1e-4)


def test_audio_in_any_pieces_gives_the_same_stream(models) -> None:
    g, ae = models
    ref, masks, audio = _scene(3, frames=10)
    whole = StreamingGenerator(g, ae, ref, masks, options=SamplingOptions(steps=1, seed=2))
    a = whole.push(audio, decode=False) + whole.flush(decode=False)
    pieces = StreamingGenerator(g, ae, ref, masks, options=SamplingOptions(steps=1, seed=2))
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
    session = StreamingGenerator(g, ae, ref, masks, options=SamplingOptions(steps=1))
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
        s = StreamingGenerator(g, ae, ref, masks, options=SamplingOptions(steps=1, seed=1))
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
        StreamingGenerator(g, ae, ref, masks, options=SamplingOptions(window=99))
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
    s = StreamingGenerator(g, ae, ref, masks, options=SamplingOptions(steps=1))
    out = s.push(audio)
    assert out and out[0].frames.shape == (g.cfg.chunk_frames, 128, 128, 3)
    assert out[0].masks.shape == (g.cfg.chunk_frames, 2, g.cfg.mask_size, g.cfg.mask_size)
    assert set(out[0].timings_ms) == {"features_ms", "denoise_ms", "decode_ms", "cache_ms"}


# -- listener isolation ------------------------------------------------------------------------------------
def _region_cells(masks: np.ndarray, k: int, size: int = 16) -> np.ndarray:
    """(size, size) bool: latent cells wholly inside character k's box and 2 cells away from the others'."""
    pooled = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(masks), size).numpy()
    others = np.delete(pooled, k, 0).sum(0) > 0
    grown = torch.nn.functional.max_pool2d(torch.from_numpy(others[None].astype(np.float32)), 5, 1, 2)[0]
    return (pooled[k] >= 1.0) & (grown.numpy() == 0)


def test_listener_region_covers_listeners_and_spares_speakers() -> None:
    from realtime.stream.voice_regions import listener_region

    masks = torch.zeros(1, 2, 4, 32, 32)
    masks[:, :, 0, 8:24, 2:12] = 1.0  # a listener
    masks[:, :, 1, 8:24, 14:30] = 1.0  # a speaker right beside it
    region = listener_region(masks, torch.tensor([True, False, False, False]), (16, 16))
    assert region.shape == (1, 2, 1, 16, 16)
    assert float(region.min()) >= 0.0 and float(region.max()) <= 1.0
    assert (region[0, :, 0, 4:12, 1:6] == 1.0).all()  # the listener, whole
    assert (region[0, :, 0, 4:12, 7:15] == 0.0).all()  # the speaker, untouched
    assert (region[0, :, 0, :3] == 0.0).all()  # nobody: the background keeps the voiced pass


def test_listeners_are_characters_without_a_sounding_stream(models) -> None:
    g, ae = models
    ref, masks, audio = _scene(3)
    # stream 0 drives characters 0 and 1, stream 1 character 2; stream 0 silent, stream 1 speaking
    bind = np.array([[1, 1, 0], [0, 0, 1]], np.float32)
    s = StreamingGenerator(g, ae, ref, masks, options=SamplingOptions(steps=1), streams=2, bind=bind)
    audio2 = np.stack([np.zeros_like(audio[0]), audio[1]])
    s.tail = np.concatenate((pad_characters(audio2), np.zeros((MAX_CHARACTERS, 0), np.float32)), 1)
    windows = s._windows()
    assert s.listeners(windows).tolist() == [True, True, False, False]
    s.set_binding(np.array([[1, 0, 0], [0, 1, 1]], np.float32))  # stream 1 now drives character 1 too
    assert s.listeners(windows).tolist() == [True, False, False, False]


def _listener_and_speaker(g: Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two characters well apart, routed with their own boxes (a random tiny router's masks say nothing
    about where they are); character 0 listens, character 1 speaks. -> ref, masks, route, voiced, silent."""
    ref, _, audio = _scene(2, frames=8)
    masks = np.zeros((2, 128, 128), np.float32)
    masks[0, 30:100, 4:40] = 1.0
    masks[1, 30:100, 80:120] = 1.0
    pooled = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(masks), g.cfg.mask_size).numpy()
    route = np.repeat(pooled[None], g.cfg.chunk_frames, 0)
    voiced = audio.copy()
    voiced[0] = 0.0
    return ref, masks, route, voiced, np.zeros_like(audio)


@pytest.mark.parametrize("isolate", [True, False])
def test_a_silent_character_does_not_move_with_another_voice(models, isolate: bool) -> None:
    """With isolation, a character whose stream is silent comes out of the same noise exactly as if every
    stream were silent: another voice cannot reach it. Without, the joint attention carries it there."""
    g, ae = models
    ref, masks, route, voiced, silent = _listener_and_speaker(g)

    def run(a: np.ndarray) -> torch.Tensor:
        s = StreamingGenerator(
            g,
            ae,
            ref,
            masks,
            options=SamplingOptions(steps=1, seed=4, window=0, isolation=isolate),
            external=lambda j: route,
        )
        return torch.cat([ch.latents for ch in s.push(a, decode=False) + s.flush(decode=False)])

    a, b = run(voiced), run(silent)
    listener = torch.from_numpy(_region_cells(masks, 0))
    speaker = torch.from_numpy(_region_cells(masks, 1))
    assert listener.sum() >= 10 and speaker.sum() >= 10
    gap_listener = float((a - b)[:, :, listener].abs().max())
    gap_speaker = float((a - b)[:, :, speaker].abs().max())
    assert gap_speaker > 1e-3  # the voice does drive its own character
    if isolate:  # exactly what the voiceless run made (the batch rows are computed independently)
        assert gap_listener <= 1e-6, gap_listener
    else:  # a random tiny model leaks little, but far above float rounding
        assert gap_listener > 1e-5, gap_listener


def test_audio_guidance_extrapolates_only_the_speakers_regions(models) -> None:
    """Audio guidance g: inside a speaker's region the chunk moves g times as far from the voiceless pass
    as without guidance; the listener stays the voiceless pass and the background stays as it was."""
    g, ae = models
    ref, masks, route, voiced, silent = _listener_and_speaker(g)
    pooled = route[0]

    def run(a: np.ndarray, gain: float) -> torch.Tensor:
        s = StreamingGenerator(
            g,
            ae,
            ref,
            masks,
            options=SamplingOptions(steps=1, seed=4, window=0, audio_guidance=gain),
            external=lambda j: route,
        )
        return torch.cat([ch.latents for ch in s.push(a, decode=False) + s.flush(decode=False)])

    plain, guided, still = run(voiced, 1.0), run(voiced, 2.5), run(silent, 1.0)
    speaker = torch.from_numpy(_region_cells(masks, 1))
    listener = torch.from_numpy(_region_cells(masks, 0))
    anyone = torch.nn.functional.max_pool2d(torch.from_numpy(pooled.sum(0) > 0)[None].float(), 7, 1, 3)[0]
    anyone = torch.nn.functional.adaptive_max_pool2d(anyone[None], tuple(speaker.shape))[0] > 0
    background = ~anyone
    assert background.sum() >= 10
    moved = (plain - still)[:, :, speaker]
    assert float(moved.abs().max()) > 1e-3
    torch.testing.assert_close((guided - still)[:, :, speaker], 2.5 * moved, atol=1e-5, rtol=1e-4)
    assert float((guided - still)[:, :, listener].abs().max()) <= 1e-6  # isolation still holds
    assert float((guided - plain)[:, :, background].abs().max()) <= 1e-6
    for bad in (0.5, 4.5, float("nan")):
        with pytest.raises(ValueError, match="audio_guidance"):
            StreamingGenerator(g, ae, ref, masks, options=SamplingOptions(audio_guidance=bad))


class _Counting:
    """A denoiser backend that records the batch of every call (and takes batches, like an ONNX step)."""

    batched = True

    def __init__(self, model: Generator) -> None:
        self.model, self.batches = model, []

    def __call__(self, noisy, *args):
        self.batches.append(noisy.shape[0])
        return self.model.denoise(noisy, *args)


def test_a_primed_noise_bank_isolates_listeners_in_one_pass(models) -> None:
    """A reference-only 1-step session draws its noise from a bank whose voiceless passes it computes when
    it starts; each chunk then costs one call of one row, and gives what two passes would have."""
    g, ae = models
    ref, masks, audio = _scene(2, frames=12)
    audio[0] = 0.0  # character 0 listens for the whole clip, character 1 speaks

    def run(fresh: bool) -> tuple[torch.Tensor, list[int]]:
        fn = _Counting(g)
        s = StreamingGenerator(
            g, ae, ref, masks, options=SamplingOptions(steps=1, seed=3, window=0), denoiser=fn
        )
        assert s.bank_size == 16 and all(v is not None for v in s._still)
        primed = list(fn.batches)
        fn.batches.clear()
        out = []
        for a in np.array_split(audio, 6, axis=1):
            if fresh:  # forget every voiceless pass: each chunk runs its two passes again
                s._still = [None] * s.bank_size
            out += s.push(a, decode=False)
        out += s.flush(decode=False)
        assert sum(primed) == 16
        return torch.cat([ch.latents for ch in out]), fn.batches

    cached, calls = run(fresh=False)
    twice, calls_twice = run(fresh=True)
    assert len(cached) == 12 and calls == [1] * 6
    assert calls_twice == [2] * 6
    assert float((cached - twice).abs().max()) <= 1e-5


def test_the_noise_bank_is_only_for_reference_only_one_step_sessions(models) -> None:
    g, ae = models
    ref, masks, _ = _scene(2)
    assert StreamingGenerator(g, ae, ref, masks, options=SamplingOptions(steps=2, window=0)).bank_size == 0
    assert StreamingGenerator(g, ae, ref, masks, options=SamplingOptions(steps=1, window=1)).bank_size == 0
    assert (
        StreamingGenerator(
            g, ae, ref, masks, options=SamplingOptions(steps=1, window=0, noise_bank=0)
        ).bank_size
        == 0
    )
    with pytest.raises(ValueError, match="noise_bank"):
        StreamingGenerator(g, ae, ref, masks, options=SamplingOptions(steps=1, window=0, noise_bank=-1))


def test_a_repositioned_session_generates_from_its_new_reference(models) -> None:
    """A pose track re-poses the reference from one chunk on: what follows is what a session started
    from that reference makes (the bank's voiceless passes are redone for it), and refused input is
    refused with the session unchanged."""
    g, ae = models
    ref, masks, audio = _scene(2, frames=8)
    audio[0] = 0.0  # a listener, so isolation's cached passes are exercised
    moved_ref = np.roll(ref, 9, axis=1)
    moved_masks = np.roll(masks, 9, axis=2)

    def run(start_ref, start_masks, poses=None) -> torch.Tensor:
        s = StreamingGenerator(
            g, ae, start_ref, start_masks, options=SamplingOptions(steps=1, seed=2, window=0), poses=poses
        )
        return torch.cat([ch.latents for ch in s.push(audio, decode=False) + s.flush(decode=False)])

    reposed = run(ref, masks, poses=lambda j: (moved_ref, moved_masks))
    started = run(moved_ref, moved_masks)
    still = run(ref, masks)
    assert float((reposed - started).abs().max()) <= 1e-5
    assert float((reposed - still).abs().max()) > 1e-3

    s = StreamingGenerator(g, ae, ref, masks, options=SamplingOptions(steps=1, window=0))
    z = s.z_ref.clone()
    with pytest.raises(ValueError, match="reference must be"):
        s.reposition(ref[:64], masks)
    with pytest.raises(ValueError, match="2 characters"):
        s.reposition(ref, masks[:1])
    with pytest.raises(ValueError, match="finite"):
        s.reposition(ref, np.full_like(masks, np.nan))
    assert torch.equal(s.z_ref, z)
