"""The streaming generator: one session's rolling cache, audio in, a chunk of frames out, for as long as it runs.

Per session it keeps the reference frame encoded once as a permanent attention sink, the keys and values
of the last W clean chunks (the oldest evicted, so memory is flat), the last clean latent (what the next
chunk's residual starts from) and a short audio tail per stream. `push` takes any amount of new audio
for every stream and returns every chunk whose audio, lookahead included, is now complete. The offline
sampler runs through this same class, so what is evaluated is exactly what streams.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from realtime.audio_features import HOP, N_FFT, SILENCE_DB, log_mel
from realtime.autoencoder import FrameAutoencoder, frames_to_tensor, tensor_to_frames
from realtime.generator import ChunkCache, Generator, GeneratorOutput
from realtime.media import FRAME_MS, MAX_CHARACTERS
from realtime.router import MaskRefiner

MEL_PER_FRAME = FRAME_MS // 10  # mel frames (10 ms hop) per video frame


@dataclass
class Chunk:
    """One generated chunk of a session."""

    index: int  # chunk number since the session started
    first_frame: int  # index of its first frame in the session
    frames: np.ndarray | None  # (C, H, W, 3) uint8, None when the session does not decode
    latents: torch.Tensor  # (C, c, h, w) clean latents
    masks: np.ndarray  # (C, N, M, M) float32 router masks (or the external masks routed with)
    refined: np.ndarray  # (C, N, M, M) the same after MaskRefiner
    timings_ms: dict[str, float] = field(default_factory=dict)  # features, denoise, decode, cache


def pad_characters(x: np.ndarray, k: int = MAX_CHARACTERS) -> np.ndarray:
    """Zero-pad the leading (character) axis of x to k."""
    out = np.zeros((k, *x.shape[1:]), dtype=x.dtype)
    out[: x.shape[0]] = x
    return out


def listener_region(masks: torch.Tensor, listeners: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(1, T, 1, h, w) in [0, 1]: where the listeners are on the latent grid, grown by one latent pixel
    (a head's edge moves too) but never into a speaking character's own region.

    masks: (1, T, K, M, M) the routing masks; listeners: (K,) bool."""
    b, t, k, m, _ = masks.shape
    grid = F.adaptive_avg_pool2d(masks.float().reshape(b * t, k, m, m), size)  # (BT, K, h, w)
    sel = listeners.to(grid.device, grid.dtype)[None, :, None, None]
    quiet = (grid * sel).sum(1, keepdim=True).clamp(max=1.0)
    speaking = (grid * (1.0 - sel)).sum(1, keepdim=True).clamp(max=1.0)
    grown = F.max_pool2d(quiet, 3, stride=1, padding=1)
    region = torch.minimum(grown, 1.0 - speaking).clamp(min=0.0)
    return region.reshape(b, t, 1, *size)


def check_binding(bind: np.ndarray, streams: int, characters: int) -> np.ndarray:
    """Validate an audio-to-character matrix (streams, characters) with entries in [0, 1]."""
    bind = np.asarray(bind, dtype=np.float32)
    if bind.shape != (streams, characters):
        raise ValueError(f"bind must be (streams, characters) = ({streams}, {characters}), got {bind.shape}")
    if not np.isfinite(bind).all() or bind.min() < 0 or bind.max() > 1:
        raise ValueError("bind entries must be finite and in [0, 1]")
    return bind


class StreamingGenerator:
    """A session: reference frame + characters + audio streams -> chunks of frames, with a rolling cache."""

    def __init__(
        self,
        model: Generator,
        ae: FrameAutoencoder | None,
        reference: np.ndarray,  # (H, W, 3) uint8 first frame of the scene
        ref_masks: np.ndarray,  # (N, H, W) where each character is in the reference frame
        streams: int | None = None,  # audio streams (default: one per character)
        bind: np.ndarray | None = None,  # (S, N) stream -> character; identity if None
        steps: int = 1,  # Euler steps per chunk (the distilled student needs 1-2; the teacher 8)
        window_chunks: int | None = None,  # clean chunks kept (at most the model's window)
        seed: int = 0,
        external: Callable[[int], np.ndarray | None] | None = None,  # chunk index -> (C, N, M, M) masks
        denoiser: Callable | None = None,  # a backend called like Generator.denoise (e.g. ONNX Runtime)
        isolate_listeners: bool = True,  # silent characters' regions come from a pass without any voice
    ) -> None:
        cfg = model.cfg
        size = cfg.frame_size
        if reference.shape != (size, size, 3) or reference.dtype != np.uint8:
            raise ValueError(
                f"reference must be a ({size}, {size}, 3) uint8 frame, got {reference.shape} {reference.dtype}"
            )
        if (
            ref_masks.ndim != 3
            or ref_masks.shape[1:] != (size, size)
            or not 1 <= ref_masks.shape[0] <= MAX_CHARACTERS
        ):
            raise ValueError(f"ref_masks must be (1-{MAX_CHARACTERS}, {size}, {size}), got {ref_masks.shape}")
        n = ref_masks.shape[0]
        s = n if streams is None else streams
        if not 1 <= s <= MAX_CHARACTERS:
            raise ValueError(f"streams must be 1-{MAX_CHARACTERS}, got {s}")
        if not 1 <= steps <= 1000:
            raise ValueError(f"steps must be in [1, 1000], got {steps}")
        w = cfg.window_chunks if window_chunks is None else window_chunks
        if not 0 <= w <= cfg.window_chunks:
            raise ValueError(f"window_chunks must be in [0, {cfg.window_chunks}] for this model, got {w}")
        if bind is None:
            if s != n:
                raise ValueError(f"{s} audio streams for {n} characters need an explicit bind matrix")
            bind = np.eye(n, dtype=np.float32)
        self.model, self.ae = model, ae
        self.characters, self.streams, self.steps, self.window = n, s, steps, w
        self.external = external
        self.isolate_listeners = isolate_listeners
        self.denoiser = denoiser if denoiser is not None else model.denoise
        self.device = next(model.parameters()).device
        self.noise = torch.Generator().manual_seed(seed)
        self.refiner = MaskRefiner()
        with torch.no_grad():
            z_ref = ae.encode(frames_to_tensor(reference[None], self.device))[0] if ae is not None else None
        if z_ref is None:
            raise ValueError("a session needs the autoencoder to encode its reference frame")
        self._start(z_ref, ref_masks)
        self.set_binding(bind)

    # -- session state ------------------------------------------------------------------------------
    @torch.no_grad()
    def _start(self, z_ref: torch.Tensor, ref_masks: np.ndarray) -> None:
        cfg = self.model.cfg
        self.z_ref = z_ref
        self.sink = self.model.encode_reference(z_ref[None])
        self._sink2 = None  # the sink for a batch of two (listener isolation), made on first use
        masks = torch.from_numpy(pad_characters(ref_masks.astype(np.float32)))
        self.ref_masks = F.adaptive_avg_pool2d(masks, cfg.mask_size)[None].to(self.device)  # (1, K, M, M)
        self.cache: deque[ChunkCache] = deque(maxlen=self.window)  # newest last; eviction keeps the sink
        self.last = z_ref  # the clean frame the next chunk's residual starts from
        self.chunk_index = 0
        # audio: samples [audio_start, audio_start + tail) of every stream, 16 kHz float32
        self.tail = np.zeros((MAX_CHARACTERS, 0), np.float32)
        self.audio_start = 0

    def set_binding(self, bind: np.ndarray) -> None:
        """Re-bind streams to characters from the next chunk on (the router's audio-to-character matrix)."""
        bind = check_binding(bind, self.streams, self.characters)
        b = torch.zeros(1, MAX_CHARACTERS, MAX_CHARACTERS, device=self.device)
        b[0, : self.streams, : self.characters] = torch.from_numpy(bind)
        self.bind = b
        self._quiet = None  # silence's audio tokens depend on the binding

    @property
    def samples_received(self) -> int:
        return self.audio_start + self.tail.shape[1]

    def samples_needed(self, chunk: int) -> int:
        """Audio samples (per stream, from the session start) chunk `chunk` waits for: lookahead + STFT tail."""
        cfg = self.model.cfg
        stop = (chunk + 1) * cfg.chunk_frames * MEL_PER_FRAME + cfg.audio_lookahead_ms // 10  # mel frames
        return (stop - 1) * HOP + N_FFT

    def cache_bytes(self) -> int:
        """Bytes held by the session's tensors and audio tail: flat once the window is full."""
        total = sum(
            t.numel() * t.element_size() for t in (*self.sink.keys, *self.sink.values, *self.sink.mids)
        )
        for entry in self.cache:
            total += sum(t.numel() * t.element_size() for t in (*entry.keys, *entry.values))
        return total + self.tail.nbytes + self.last.numel() * self.last.element_size()

    # -- audio in, chunks out ---------------------------------------------------------------------------
    def push(self, audio: np.ndarray, decode: bool = True) -> list[Chunk]:
        """Append (S, n) float32 samples at 16 kHz for every stream; return every chunk now complete."""
        audio = np.asarray(audio)
        if audio.ndim != 2 or audio.shape[0] != self.streams:
            raise ValueError(f"audio must be ({self.streams} streams, samples), got {audio.shape}")
        if not np.issubdtype(audio.dtype, np.floating) or not np.isfinite(audio).all():
            raise ValueError("audio must be finite floating-point samples")
        padded = np.zeros((MAX_CHARACTERS, audio.shape[1]), np.float32)
        padded[: self.streams] = audio
        self.tail = np.concatenate((self.tail, padded), 1)
        out = []
        while self.samples_received >= self.samples_needed(self.chunk_index):
            out.append(self._next_chunk(decode))
        return out

    def flush(self, decode: bool = True) -> list[Chunk]:
        """End of input: the last chunks see silence after the audio (what offline features do)."""
        last = -(-self.samples_received // (self.model.cfg.chunk_frames * MEL_PER_FRAME * HOP))
        need = self.samples_needed(last - 1) - self.samples_received
        out = self.push(np.zeros((self.streams, max(0, need)), np.float32), decode) if need > 0 else []
        return out

    def _windows(self) -> torch.Tensor:
        """(1, K, C, window, n_mels) mel windows of the next chunk's frames, from the audio tail."""
        cfg = self.model.cfg
        past, look = cfg.audio_past_ms // 10, cfg.audio_lookahead_ms // 10
        first = self.chunk_index * cfg.chunk_frames
        start = first * MEL_PER_FRAME - past  # first mel frame any window reads (may be < 0: silence)
        stop = (first + cfg.chunk_frames) * MEL_PER_FRAME + look
        lo = max(start, 0)
        a = lo * HOP - self.audio_start
        seg = self.tail[:, a : (stop - 1) * HOP + N_FFT - self.audio_start]
        mel = log_mel(seg, cfg.n_mels)[:, : stop - lo]  # (K, stop - lo, n_mels): only whole windows
        if lo > start:
            mel = F.pad(mel, (0, 0, lo - start, 0), value=SILENCE_DB)
        idx = torch.arange(cfg.chunk_frames)[:, None] * MEL_PER_FRAME + torch.arange(cfg.audio_window)[None]
        # keep only the audio the next chunk's windows can still reach
        keep_from = (start + cfg.chunk_frames * MEL_PER_FRAME) * HOP
        if keep_from > self.audio_start:
            self.tail = self.tail[:, keep_from - self.audio_start :]
            self.audio_start = keep_from
        return mel[:, idx][None].to(self.device)

    def listeners(self, windows: torch.Tensor) -> torch.Tensor:
        """(K,) bool: the session's characters none of whose streams makes a sound in this chunk's windows.

        A stream is silent when its whole audio window (past context and lookahead) stays at the silence
        floor: the definition the student's listener loss was trained with (distill/train_student.py)."""
        silent = windows[0].amax(dim=(1, 2, 3)) <= SILENCE_DB + 1.0  # (K streams,)
        voiced = (self.bind[0] > 0) & ~silent[:, None]  # (streams, characters): a live voice drives it
        out = ~voiced.any(0)
        out[self.characters :] = False
        return out

    def _quiet_audio(self, windows: torch.Tensor) -> torch.Tensor:
        """Every character's audio tokens for silence (the voiceless pass): the same for every chunk
        until the binding changes, so encoded once per binding."""
        if self._quiet is None:
            self._quiet = self.model.encode_audio(torch.full_like(windows, SILENCE_DB), self.bind)
        return self._quiet

    def _two_passes(self, fn, x, t, keys, values, audio, quiet, route) -> tuple:
        """(output with the voices, velocity without any): one batch of two on the torch path and on an
        ONNX step with a dynamic batch (~1.5x the cost of one call on this CPU, not 2x), two calls on a
        backend that takes a batch of one."""
        model = self.model
        if fn is not model.denoise and not getattr(fn, "batched", False):
            out = fn(x, t, self.last[None], self.sink, keys, values, audio, self.ref_masks, route, 1.0)
            still = fn(x, t, self.last[None], self.sink, keys, values, quiet, self.ref_masks, route, 1.0)
            return out, still.velocity
        if self._sink2 is None:
            self._sink2 = self.sink.expand(2)
        two = lambda z: z.expand(2, *z.shape[1:])  # noqa: E731
        both = fn(
            two(x),
            two(t),
            two(self.last[None]),
            self._sink2,
            [two(k) for k in keys],
            [two(v) for v in values],
            torch.cat((audio, quiet)),
            two(self.ref_masks),
            None if route is None else two(route),
            1.0,
        )
        out = GeneratorOutput(both.velocity[:1], [lg[:1] for lg in both.mask_logits], both.masks[:1])
        return out, both.velocity[1:]

    @torch.no_grad()
    def _next_chunk(self, decode: bool) -> Chunk:
        model, cfg = self.model, self.model.cfg
        c = cfg.chunk_frames
        times = {}
        t0 = time.perf_counter()
        windows = self._windows()
        audio = model.encode_audio(windows, self.bind)
        chunks = ChunkCache(
            [torch.cat([e.keys[i] for e in self.cache], 1) for i in range(cfg.depth)] if self.cache else [],
            [torch.cat([e.values[i] for e in self.cache], 1) for i in range(cfg.depth)] if self.cache else [],
        )
        keys, values = model.window_keys(chunks, self.sink)
        ext = self.external(self.chunk_index) if self.external is not None else None
        route = None
        if ext is not None:
            route = torch.from_numpy(pad_characters(ext.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3))
            route = route.float()[None].to(self.device)
        t1 = time.perf_counter()
        times["features_ms"] = 1e3 * (t1 - t0)

        listeners = self.listeners(windows)
        isolate = self.isolate_listeners and 0 < int(listeners.sum()) < self.characters
        quiet = self._quiet_audio(windows) if isolate else None

        x = torch.randn((1, c, *self.z_ref.shape), generator=self.noise).to(self.device)
        ts = torch.linspace(1.0, 0.0, self.steps + 1)
        for i in range(self.steps):
            t = ts[i].expand(1).to(self.device)
            # external masks route through the torch path (the exported step routes with its own masks)
            fn = self.denoiser if route is None else model.denoise
            if not isolate:
                out = fn(x, t, self.last[None], self.sink, keys, values, audio, self.ref_masks, route, 1.0)
                velocity = out.velocity
            else:  # the listeners' regions from the same noise, denoised with nobody speaking
                out, still = self._two_passes(fn, x, t, keys, values, audio, quiet, route)
                region = listener_region(route if route is not None else out.masks, listeners, x.shape[-2:])
                velocity = out.velocity + region * (still - out.velocity)
            x = x + (ts[i + 1] - ts[i]).item() * velocity
        latents = model.from_target(x, self.last[None])  # (1, C, c, h, w)
        t2 = time.perf_counter()
        times["denoise_ms"] = 1e3 * (t2 - t1)

        frames = tensor_to_frames(self.ae.decode(latents[0])) if decode and self.ae is not None else None
        t3 = time.perf_counter()
        times["decode_ms"] = 1e3 * (t3 - t2)

        if self.window:  # with no window the base stays the reference, as Generator.base has it
            self.cache.append(model.encode_chunks(latents[:, None], self.sink))
            self.last = latents[0, -1]
        times["cache_ms"] = 1e3 * (time.perf_counter() - t3)

        masks = (route if route is not None else out.masks)[0, :, : self.characters].float().cpu().numpy()
        refined = np.stack([self.refiner(m) for m in masks])
        chunk = Chunk(self.chunk_index, self.chunk_index * c, frames, latents[0], masks, refined, times)
        self.chunk_index += 1
        return chunk
