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

from realtime.errors import CharacterCountError
from realtime.media import FRAME_MS, MAX_CHARACTERS
from realtime.model.audio_features import HOP, N_FFT, SILENCE_DB, log_mel
from realtime.model.autoencoder import FrameAutoencoder, frames_to_tensor, tensor_to_frames
from realtime.model.generator import ChunkCache, Generator, GeneratorOutput
from realtime.model.router import MaskRefiner
from realtime.stream.options import SamplingOptions
from realtime.stream.voice_regions import listener_region, speaker_region

MEL_PER_FRAME = FRAME_MS // 10  # mel frames (10 ms hop) per video frame
POSE_LAG = 1  # with a pose track, chunk j comes from its pose at frame j * chunk_frames - POSE_LAG: the
# student was trained from pose-track references 0-2 frames before its chunk (bya train student --ref-track)
PRIME_BATCH = 8  # bank entries per denoiser call while priming


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
    """Zero-pad the leading (character) axis of x to k (a model's cfg.max_characters)."""
    out = np.zeros((k, *x.shape[1:]), dtype=x.dtype)
    out[: x.shape[0]] = x
    return out


def check_reference(
    reference: np.ndarray, ref_masks: np.ndarray, size: int, max_characters: int = MAX_CHARACTERS
) -> None:
    """A reference frame and its characters' masks, as a session of a model with this frame size and
    character axis takes them (ValueError; CharacterCountError for too many characters)."""
    if reference.shape != (size, size, 3) or reference.dtype != np.uint8:
        raise ValueError(
            f"reference must be a ({size}, {size}, 3) uint8 frame, got {reference.shape} {reference.dtype}"
        )
    if ref_masks.ndim == 3 and ref_masks.shape[1:] == (size, size) and ref_masks.shape[0] > max_characters:
        raise CharacterCountError(
            f"{ref_masks.shape[0]} characters, but this model's router has {max_characters} character slots "
            f"(GeneratorConfig.max_characters): ref_masks must be (1-{max_characters}, {size}, {size})"
        )
    if ref_masks.ndim != 3 or ref_masks.shape[1:] != (size, size) or ref_masks.shape[0] < 1:
        raise ValueError(f"ref_masks must be (1-{max_characters}, {size}, {size}), got {ref_masks.shape}")
    if not np.isfinite(ref_masks).all():
        raise ValueError("ref_masks must be finite")


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
        options: SamplingOptions | None = None,  # steps, window, seed, isolation, guidance, noise bank
        external: Callable[[int], np.ndarray | None] | None = None,  # chunk index -> (C, N, M, M) masks
        poses: Callable[[int], tuple[np.ndarray, np.ndarray] | None] | None = None,  # chunk -> reposition()
        denoiser: Callable | None = None,  # a backend called like Generator.denoise (e.g. ONNX Runtime)
    ) -> None:
        cfg = model.cfg
        options = SamplingOptions() if options is None else options
        k = cfg.max_characters  # the router's character axis: characters and streams are padded to it
        check_reference(reference, ref_masks, cfg.frame_size, k)
        n = ref_masks.shape[0]
        s = n if streams is None else streams
        if not 1 <= s <= k:
            raise CharacterCountError(f"streams must be 1-{k} (this model's max_characters), got {s}")
        steps = options.steps
        w = cfg.window_chunks if options.window is None else options.window
        if not 0 <= w <= cfg.window_chunks:
            raise ValueError(
                f"window must be in [0, {cfg.window_chunks}] (this model's window_chunks), got {w}"
            )
        if bind is None:
            if s != n:
                raise ValueError(f"{s} audio streams for {n} characters need an explicit bind matrix")
            bind = np.eye(n, dtype=np.float32)
        self.model, self.ae, self.options, self.k = model, ae, options, k
        # steps may be lowered per chunk by the scheduler; the rest stays as the options say
        self.characters, self.streams, self.steps, self.window = n, s, steps, w
        self.external = external
        self.poses = poses
        self.isolate_listeners = options.isolate_listeners
        self.audio_guidance = float(options.audio_guidance)
        # A chunk of a reference-only 1-step session depends on nothing but its noise and its audio, so
        # with its noise drawn from a fixed bank the voiceless pass of each bank entry is computed once
        # (per binding) and listener isolation costs no second pass per chunk.
        self.bank_size = options.noise_bank if (w == 0 and steps == 1) else 0
        self.denoiser = denoiser if denoiser is not None else model.denoise
        self.device = next(model.parameters()).device
        self.noise = torch.Generator().manual_seed(options.seed)
        self.refiner = MaskRefiner()
        self.rig = bool(getattr(ae, "is_rig", False))  # a rig model: ae is its scene's RigCodec
        if self.rig != (cfg.output == "rig"):
            raise ValueError(
                f"a {cfg.output} model's session decodes with "
                + (
                    "a RigCodec (realtime.stream.rig_codec.session_codec)"
                    if cfg.output == "rig"
                    else "its autoencoder"
                )
            )
        with torch.no_grad():
            z_ref = self._reference_latent(reference, ref_masks) if ae is not None else None
        if z_ref is None:
            raise ValueError("a session needs the autoencoder to encode its reference frame")
        self._start(z_ref, ref_masks)
        self.set_binding(bind)
        if ((self.isolate_listeners and n > 1) or self.audio_guidance != 1.0) and self.bank_size:
            self.prime()

    # -- session state ------------------------------------------------------------------------------
    def _reference_latent(self, reference: np.ndarray, ref_masks: np.ndarray) -> torch.Tensor:
        """(C, h, w): the reference frame's latent, or a rig model's layout field of these characters."""
        if self.rig:
            return self.ae.reference_latent(ref_masks).to(self.device)
        return self.ae.encode(frames_to_tensor(reference[None], self.device))[0]

    @torch.no_grad()
    def _start(self, z_ref: torch.Tensor, ref_masks: np.ndarray) -> None:
        cfg = self.model.cfg
        self._set_reference(z_ref, ref_masks)
        self.cache: deque[ChunkCache] = deque(maxlen=self.window)  # newest last; eviction keeps the sink
        self.last = z_ref  # the clean frame the next chunk's residual starts from
        self.chunk_index = 0
        self.bank = (
            torch.randn((self.bank_size, cfg.chunk_frames, *z_ref.shape), generator=self.noise).to(
                self.device
            )
            if self.bank_size
            else None
        )
        # audio: samples [audio_start, audio_start + tail) of every stream, 16 kHz float32
        self.tail = np.zeros((self.k, 0), np.float32)
        self.audio_start = 0

    def _set_reference(self, z_ref: torch.Tensor, ref_masks: np.ndarray) -> None:
        self.z_ref = z_ref
        self.sink = self.model.encode_reference(z_ref[None])
        self._sinks: dict[int, object] = {}  # the sink expanded for a batch of b rows, made on first use
        masks = torch.from_numpy(pad_characters(ref_masks.astype(np.float32), self.k))
        self.ref_masks = F.adaptive_avg_pool2d(masks, self.model.cfg.mask_size)[None].to(self.device)

    @torch.no_grad()
    def reposition(self, reference: np.ndarray, ref_masks: np.ndarray) -> None:
        """From the next chunk on, generate from this reference frame: the same characters, standing
        where a scene's choreography (or a tracker) puts them now. The student renders the pose of its
        reference, and the router's prior starts from these masks, so the characters and the routing
        follow. Bank entries' voiceless passes are recomputed as chunks use them."""
        check_reference(reference, ref_masks, self.model.cfg.frame_size, self.k)
        if ref_masks.shape[0] != self.characters:
            raise ValueError(
                f"ref_masks must hold the session's {self.characters} characters, got {ref_masks.shape[0]}"
            )
        z_ref = self._reference_latent(reference, ref_masks)
        self._set_reference(z_ref, ref_masks)
        if not self.window:  # the residual's base is the reference (Generator.base)
            self.last = z_ref
        self._still = [None] * self.bank_size

    def set_binding(self, bind: np.ndarray) -> None:
        """Re-bind streams to characters from the next chunk on (the router's audio-to-character matrix)."""
        bind = check_binding(bind, self.streams, self.characters)
        b = torch.zeros(1, self.k, self.k, device=self.device)
        b[0, : self.streams, : self.characters] = torch.from_numpy(bind)
        self.bind = b
        self._quiet = None  # silence's audio tokens depend on the binding
        self._still: list[torch.Tensor | None] = [None] * self.bank_size  # ... and so does the voiceless pass

    @torch.no_grad()
    def prime(self) -> None:
        """Compute the voiceless velocity of every bank entry not yet known, PRIME_BATCH rows a call: after this,
        isolating listeners costs one denoiser call per chunk. Sessions prime when they start; after a
        re-binding the entries fill in as chunks use them (two passes each, once)."""
        missing = [i for i, v in enumerate(self._still) if v is None]
        if not missing:
            return
        cfg = self.model.cfg
        windows = torch.full(
            (1, self.k, cfg.chunk_frames, cfg.audio_window, cfg.n_mels),
            SILENCE_DB,
            device=self.device,
        )
        quiet = self._quiet_audio(windows)
        keys, values = self.model.window_keys(ChunkCache([], []), self.sink)
        t = torch.ones(1, device=self.device)
        for lo in range(0, len(missing), PRIME_BATCH):
            rows = missing[lo : lo + PRIME_BATCH]
            out = self._batch(self.denoiser, self.bank[rows], t, keys, values, [quiet] * len(rows), None)
            for j, i in enumerate(rows):
                self._still[i] = out.velocity[j : j + 1].clone()

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
        padded = np.zeros((self.k, audio.shape[1]), np.float32)
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
        floor: the definition the student's listener loss was trained with (distill/train/student.py)."""
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

    def _batch(self, fn, xs, t, keys, values, audios: list, route) -> GeneratorOutput:
        """One denoiser call on len(audios) rows of noise and audio tokens sharing the session's context:
        one batch on the torch path and on an ONNX step with a dynamic batch (two rows cost ~1.5x one on
        this CPU, not 2x), one call per row on a backend that takes a batch of one."""
        model, b = self.model, len(audios)
        if xs.shape[0] == 1 and b > 1:
            xs = xs.expand(b, *xs.shape[1:])
        # (a bound method is a new object at every access: compare with ==, not `is`)
        if fn != model.denoise and not getattr(fn, "batched", False):
            outs = [
                fn(xs[j : j + 1], t, self.last[None], self.sink, keys, values, a, self.ref_masks, route, 1.0)
                for j, a in enumerate(audios)
            ]
            return GeneratorOutput(
                torch.cat([o.velocity for o in outs]), [], torch.cat([o.masks for o in outs])
            )
        if b == 1:
            return fn(xs, t, self.last[None], self.sink, keys, values, audios[0], self.ref_masks, route, 1.0)
        if self._sinks.get(b) is None:
            self._sinks[b] = self.sink.expand(b)
        rows = lambda z: z.expand(b, *z.shape[1:])  # noqa: E731
        return fn(
            xs,
            rows(t),
            rows(self.last[None]),
            self._sinks[b],
            [rows(k) for k in keys],
            [rows(v) for v in values],
            torch.cat(audios),
            rows(self.ref_masks),
            None if route is None else rows(route),
            1.0,
        )

    @torch.no_grad()
    def _next_chunk(self, decode: bool) -> Chunk:
        model, cfg = self.model, self.model.cfg
        c = cfg.chunk_frames
        times = {}
        t0 = time.perf_counter()
        pose = self.poses(self.chunk_index) if self.poses is not None else None
        if pose is not None:
            self.reposition(*pose)
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
            route = torch.from_numpy(pad_characters(ext.transpose(1, 0, 2, 3), self.k).transpose(1, 0, 2, 3))
            route = route.float()[None].to(self.device)
        t1 = time.perf_counter()
        times["features_ms"] = 1e3 * (t1 - t0)

        listeners = self.listeners(windows)
        silent = int(listeners.sum())
        isolate = self.isolate_listeners and 0 < silent < self.characters
        guide = self.audio_guidance != 1.0 and silent < self.characters  # someone speaks
        quiet = self._quiet_audio(windows) if isolate or guide else None

        if self.bank is not None:
            entry = int(torch.randint(self.bank_size, (1,), generator=self.noise))
            x = self.bank[entry : entry + 1]
        else:
            entry = None
            x = torch.randn((1, c, *self.z_ref.shape), generator=self.noise).to(self.device)
        ts = torch.linspace(1.0, 0.0, self.steps + 1)
        for i in range(self.steps):
            t = ts[i].expand(1).to(self.device)
            # external masks route through the torch path (the exported step routes with its own masks)
            fn = self.denoiser if route is None else model.denoise
            if not (isolate or guide):
                out = self._batch(fn, x, t, keys, values, [audio], route)
                velocity = out.velocity
            else:  # the listeners' regions from the same noise, denoised with nobody speaking
                known = self._still[entry] if entry is not None and route is None else None
                if known is not None:  # this bank entry's voiceless pass is already known
                    out, still = self._batch(fn, x, t, keys, values, [audio], route), known
                else:
                    both = self._batch(fn, x, t, keys, values, [audio, quiet], route)
                    out = GeneratorOutput(both.velocity[:1], [], both.masks[:1])
                    still = both.velocity[1:]
                    if entry is not None and route is None:
                        self._still[entry] = still.clone()
                routing = route if route is not None else out.masks
                if self.rig and route is None:  # a rig model's renderer reads exactly the layout's regions:
                    # isolate (and guide) those, not the router's estimate of them
                    routing = self.ref_masks[:, None].expand_as(out.masks)
                velocity = out.velocity
                if guide:  # audio guidance: extrapolate the voice's effect inside the speakers' regions
                    gain = 1.0 + (self.audio_guidance - 1.0) * speaker_region(
                        routing, listeners, x.shape[-2:]
                    )
                    velocity = still + gain * (velocity - still)
                if isolate:
                    region = listener_region(routing, listeners, x.shape[-2:])
                    velocity = velocity + region * (still - velocity)
            x = x + (ts[i + 1] - ts[i]).item() * velocity
        latents = model.from_target(x, self.last[None])  # (1, C, c, h, w)
        t2 = time.perf_counter()
        times["denoise_ms"] = 1e3 * (t2 - t1)

        if not decode or self.ae is None:
            frames = None
        elif self.rig:  # the scene's own picture moved by the rig field, at the canvas size
            frames = self.ae.decode_chunk(latents[0], self.chunk_index * c)
        else:
            frames = tensor_to_frames(self.ae.decode(latents[0]))
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
