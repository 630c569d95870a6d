"""The chunk scheduler: per-character audio in, composited frames out, every chunk on time or skipped.

It sits between a room's audio (one 16 kHz track per character, on the media clock) and one
StreamingGenerator session. Each chunk has a deadline; a cost model learnt from the session's own
timings picks the most sampling steps that still meet it. When not even one step would, the chunk is
skipped (the room repeats the last frame) and its audio is cut from the session's feed, so the session
catches up instead of falling behind for good. Without deadlines (file mode) every chunk gets full steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from realtime.engine.compositor import composite, mask_boxes
from realtime.errors import SceneError
from realtime.media import AUDIO_SAMPLE_RATE, SAMPLES_PER_FRAME
from realtime.model.autoencoder import tensor_to_frames
from realtime.model.default_model import LoadedModel
from realtime.scene.scenes import Scene
from realtime.stream.options import SamplingOptions
from realtime.stream.rig_codec import session_codec
from realtime.stream.session import POSE_LAG, StreamingGenerator

STAGES = ("features_ms", "denoise_ms", "decode_ms", "cache_ms", "composite_ms")
MAX_SKIPS = 3  # after 3 skipped chunks in a row one runs at 1 step anyway: the picture never freezes, and
# the cost model re-measures (a machine that was slow for a moment would otherwise look slow forever)


@dataclass
class ChunkOut:
    """One chunk on the room's media clock: its composited frames, or nothing when it was skipped."""

    index: int  # chunk number since the room started (skipped chunks count)
    first_frame: int  # index of its first frame on the media clock
    images: list[np.ndarray]  # C composited (H, W, 3) uint8 frames; empty when skipped
    boxes: np.ndarray  # (C, N, 4) float32 canvas-pixel boxes of the refined router masks, NaN when empty
    steps: int  # sampling steps used; 0 when skipped
    levels: np.ndarray  # (N,) RMS of each character's audio that completed this chunk: who is speaking
    timings_ms: dict[str, float] = field(default_factory=dict)  # STAGES + first_frame_ms + total_ms
    done_at: float = 0.0  # the scheduler's clock when the chunk was finished (or skipped)
    first_at: float = 0.0  # ... when its first frame was ready (frames are handed on one by one)

    @property
    def skipped(self) -> bool:
        return self.steps == 0


class CostModel:
    """Chunk cost = fixed + steps x per_step + spread (ms): moving averages of measured timings, plus the
    mean deviation of the measured totals from the estimate, so a jittery machine plans with a margin.
    A chunk's first frame is out `tail_ms` before the chunk is done (the later frames' decode)."""

    ALPHA = 0.25  # weight of the newest chunk: follows a slowdown within ~4 chunks (320 ms)

    def __init__(self) -> None:
        self.fixed_ms = self.per_step_ms = self.spread_ms = self.tail_ms = 0.0
        self.measured = 0  # chunks seen; the first one sets the averages outright

    def update(self, timings_ms: dict[str, float], steps: int) -> None:
        a = self.ALPHA if self.measured else 1.0
        self.measured += 1
        total = timings_ms["total_ms"]
        miss = abs(total - self.fixed_ms - steps * self.per_step_ms)
        self.fixed_ms += a * (total - timings_ms["denoise_ms"] - self.fixed_ms)
        self.per_step_ms += a * (timings_ms["denoise_ms"] / steps - self.per_step_ms)
        self.spread_ms += a * (miss - self.spread_ms)
        self.tail_ms += a * (total - timings_ms.get("first_frame_ms", total) - self.tail_ms)

    @classmethod
    def from_timings(cls, timings: list[dict[str, float]], steps: int) -> CostModel:
        """Medians of a few chunks' timings at `steps`: one slow chunk (a page fault, another process)
        moves a moving average started from it for seconds, but not a median."""
        if not timings:
            raise ValueError("from_timings needs at least one chunk's timings")
        total = np.array([t["total_ms"] for t in timings])
        denoise = np.array([t["denoise_ms"] for t in timings])
        first = np.array([t.get("first_frame_ms", t["total_ms"]) for t in timings])
        cost = cls()
        cost.fixed_ms = float(np.median(total - denoise))
        cost.per_step_ms = float(np.median(denoise)) / steps
        cost.spread_ms = float(np.median(np.abs(total - np.median(total))))
        cost.tail_ms = float(np.median(total - first))
        cost.measured = len(timings)
        return cost

    def estimate(self, steps: int) -> float:
        """The whole chunk: what decides whether a step count keeps up with real time."""
        return self.fixed_ms + steps * self.per_step_ms + self.spread_ms

    def first_frame(self, steps: int) -> float:
        """Until the chunk's first frame is composited: what must fit before the chunk's deadline."""
        return self.estimate(steps) - self.tail_ms


class ChunkScheduler:
    """One generator session fed per-character audio; returns chunks as their audio completes."""

    def __init__(
        self,
        loaded: LoadedModel,
        scene: Scene,
        options: SamplingOptions,  # steps (the most a chunk gets), seed, isolation, guidance, motion
        deadline: Callable[[int], float] | None = None,  # chunk index -> clock time its first frame is due
        cost: CostModel | None = None,  # starting estimates (the room measures them while warming up)
        clock: Callable[[], float] = time.monotonic,
        on_frame: Callable[[int, np.ndarray], None] | None = None,  # (frame index, image) as each is ready
    ) -> None:
        cfg = loaded.generator.cfg
        motion = options.motion  # characters follow the scene's choreography (Scene.standing)
        if motion and not scene.choreographed:
            raise SceneError(
                "this scene has no choreography to follow (a photo scene): run it without motion"
            )
        self.motion = motion
        self.scene, self.steps, self.deadline, self.clock = scene, options.steps, deadline, clock
        # the frame autoencoder, or for a rig model the codec that moves this scene's own picture
        self.on_frame, self.autoencoder = on_frame, session_codec(loaded, scene, seed=options.seed)
        self.rig = bool(getattr(self.autoencoder, "is_rig", False))
        self.session = StreamingGenerator(
            loaded.generator,
            self.autoencoder,
            scene.reference,
            scene.masks,
            options=options,
            denoiser=loaded.denoiser,
            poses=self._pose if motion else None,
        )
        self.cost = cost if cost is not None else CostModel()
        self.chunk_frames = cfg.chunk_frames
        self.chunk_samples = cfg.chunk_frames * SAMPLES_PER_FRAME
        self.pending = np.zeros((scene.n_characters, 0), np.float32)  # fed, not yet given to the session
        self.drop = 0  # samples of skipped chunks still to cut from what arrives next
        self.skipped = 0  # chunks skipped so far: room chunk = session chunk + skipped
        self.skips_in_a_row = 0

    def _pose(self, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        """The session's chunk `chunk` is generated from the scene as it stands just before that chunk's
        room time (skipped chunks still pass time)."""
        return self.scene.standing(max(0, (chunk + self.skipped) * self.chunk_frames - POSE_LAG))

    @property
    def next_index(self) -> int:
        """The room chunk the scheduler will produce next."""
        return self.session.chunk_index + self.skipped

    def first_chunk_wait_s(self) -> float:
        """Seconds of audio the first chunk waits for (its frames, the lookahead, the STFT tail)."""
        return self.session.samples_needed(0) / AUDIO_SAMPLE_RATE

    def plan(self, index: int) -> int:
        """Steps for chunk `index`: the most that meet its deadline, 0 (skip) when even one would not."""
        if self.deadline is None:
            return self.steps
        budget_ms = 1e3 * (self.deadline(index) - self.clock())
        for steps in range(self.steps, 0, -1):
            if self.cost.first_frame(steps) <= budget_ms:
                return steps
        return 1 if self.skips_in_a_row >= MAX_SKIPS else 0

    def feed(self, audio: np.ndarray) -> list[ChunkOut]:
        """Append (N, n) float32 16 kHz samples per character; return every chunk now complete."""
        if self.drop:
            cut = min(self.drop, audio.shape[1])
            audio, self.drop = audio[:, cut:], self.drop - cut
        self.pending = np.concatenate((self.pending, audio.astype(np.float32, copy=False)), 1)
        out = []
        while True:
            need = self.session.samples_needed(self.session.chunk_index) - self.session.samples_received
            if self.pending.shape[1] < need:
                return out
            index = self.next_index
            steps = self.plan(index)
            if steps == 0:
                out.append(self._skip(index))
                continue
            self.skips_in_a_row = 0
            start = self.clock()
            self.session.steps = steps
            (chunk,) = self.session.push(self.pending[:, :need], decode=False)  # exactly one completes
            levels = _rms(self.pending[:, :need])
            self.pending = self.pending[:, need:]
            out.append(self._compose(index, chunk, steps, start, levels))

    def flush(self) -> list[ChunkOut]:
        """End of input (file mode): the last chunks see silence after the audio."""
        start = self.clock()
        index = self.next_index
        levels = _rms(self.pending)
        chunks = self.session.push(self.pending, decode=False) + self.session.flush(decode=False)
        self.pending = self.pending[:, :0]
        out = []
        for i, chunk in enumerate(chunks):
            out.append(self._compose(index + i, chunk, self.steps, start, levels))
            start = self.clock()
        return out

    def _skip(self, index: int) -> ChunkOut:
        cut = min(self.chunk_samples, self.pending.shape[1])
        levels = _rms(self.pending[:, :cut])
        self.pending = self.pending[:, cut:]
        self.drop += self.chunk_samples - cut
        self.skipped += 1
        self.skips_in_a_row += 1
        empty = np.zeros((0, self.scene.n_characters, 4), np.float32)
        now = self.clock()
        return ChunkOut(index, index * self.chunk_frames, [], empty, 0, levels, {}, now, now)

    def _compose(self, index: int, chunk, steps: int, start: float, levels: np.ndarray) -> ChunkOut:
        """Decode and composite frame by frame: the first frame is handed on before the next is decoded."""
        scene = self.scene
        images: list[np.ndarray] = []
        decode_ms = composite_ms = first_ms = 0.0
        first_at = start
        for i in range(len(chunk.latents)):
            t = self.clock()
            with torch.no_grad():
                if self.rig:  # the whole canvas, at its own size
                    (frame,) = self.autoencoder.decode_chunk(
                        chunk.latents[i : i + 1], index * self.chunk_frames + i
                    )
                else:
                    (frame,) = tensor_to_frames(self.autoencoder.decode(chunk.latents[i : i + 1]))
            t_decoded = self.clock()
            images.append(composite(scene.background, frame, scene.region))
            done = self.clock()
            decode_ms += 1e3 * (t_decoded - t)
            composite_ms += 1e3 * (done - t_decoded)
            if i == 0:
                first_ms, first_at = 1e3 * (done - start), done
            if self.on_frame is not None:
                self.on_frame(index * self.chunk_frames + i, images[-1])
        boxes = np.stack([mask_boxes(r, scene.region) for r in chunk.refined])
        done = self.clock()
        timings = {
            **chunk.timings_ms,
            "decode_ms": decode_ms,
            "composite_ms": composite_ms,
            "first_frame_ms": first_ms,
            "total_ms": 1e3 * (done - start),
        }
        self.cost.update(timings, steps)
        return ChunkOut(
            index, index * self.chunk_frames, images, boxes, steps, levels, timings, done, first_at
        )


def probe_audio(n_characters: int, samples: int) -> np.ndarray:
    """(N, samples) audio to time chunks with: character 0 voiced (noise at speech level), the others
    silent, so a probe pays what a live chunk pays at worst (listener isolation's second pass)."""
    audio = np.zeros((n_characters, samples), np.float32)
    if n_characters > 1:
        audio[0] = 0.05 * np.random.default_rng(0).standard_normal(samples)
    return audio


def _rms(audio: np.ndarray) -> np.ndarray:
    """(N, n) -> (N,) root mean square per row (0 for no samples)."""
    return np.sqrt((audio.astype(np.float64) ** 2).mean(1)) if audio.shape[1] else np.zeros(len(audio))
