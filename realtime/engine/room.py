"""The live engine: a Room generates one scene in real time from its audio inputs, for its subscribers.

One media clock (time.monotonic) drives everything. Every 5 ms the room pulls what each input
delivered, mixes it per character through the binding table and hands it to ONE worker thread that
runs the chunk scheduler (model work never touches the event loop). Output frame f and the output audio
at media time t leave at start + latency + f x 40 ms and start + latency + t: the audio is delayed by
exactly the pipeline latency (measured at start, adapted live: realtime.engine.latency_policy), so it meets its
frames. A chunk that would miss its deadline gets fewer steps, then is skipped (its frames repeat the
last one); the audio never waits.
realtime.outputs.render.render_audio runs the same pipeline without the clock (`bya render`). See docs/engine.md.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import Counter, deque

import numpy as np

from realtime.audio.inputs import JITTER_MS, AudioInput
from realtime.audio.resampler import PolyphaseResampler
from realtime.engine.compositor import composite
from realtime.engine.latency_policy import LatencyPolicy
from realtime.engine.scheduler import STAGES, ChunkOut, ChunkScheduler, CostModel, probe_audio
from realtime.engine.subscription import (
    AUDIO_FRAME_MS,
    AUDIO_FRAME_SAMPLES,
    AUDIO_FRAMES_PER_VIDEO_FRAME,
    AudioFrameOut,
    Subscription,
    VideoFrameOut,
)
from realtime.errors import BindingError, BYAError, CharacterCountError, SceneError
from realtime.media import AUDIO_SAMPLE_RATE, FRAME_MS, WEBRTC_AUDIO_RATE
from realtime.model.default_model import LoadedModel
from realtime.scene.scenes import Scene
from realtime.stream.options import SamplingOptions
from realtime.stream.rig_codec import scene_for_model

__all__ = ["AudioFrameOut", "AudioInput", "Room", "Subscription", "VideoFrameOut"]

log = logging.getLogger(__name__)

WARM_CHUNKS = 12  # chunks generated before the clock starts (~0.5 s); the first UNMEASURED are not counted
UNMEASURED = 3  # torch's lazy set-up and cold caches: the first chunks cost up to 1.5x the steady ones
COST_HEADROOM = 1.1  # latency budget = 1.1 x the measured first-frame cost + SAFETY_MS: absorbs jitter;
# more than the warm-up foresaw is met by raising the latency live (realtime.engine.latency_policy)
SAFETY_MS = 10.0  # worker wake-up and result hand-over
PULL_MS = 5  # inputs are pulled this often: a chunk's last audio waits at most 5 ms for the worker
SUSTAINABLE = 0.9  # a step count is sustainable when its chunk costs under 90% of the chunk's duration
HISTORY = 250  # chunks of timings kept for stats (20 s)


class Room:
    """One scene generated live from up to max_inputs audio inputs, bound to its characters."""

    def __init__(
        self,
        loaded: LoadedModel,
        scene: Scene,
        *,
        options: SamplingOptions | None = None,  # None: the model's (SamplingOptions.defaults(loaded))
        steps: int | None = None,  # sampling steps per chunk (None: the options')
        seed: int | None = None,  # None: the options' (0 by default)
        max_inputs: int = 8,
        latency_ms: float | None = None,  # fixed output delay; None: measured while starting
        motion: bool | None = None,  # characters follow the scene's choreography (None: the options')
        audio_guidance: float | None = None,  # speakers' regions extrapolated g x (None: the options')
    ) -> None:
        size = loaded.generator.cfg.frame_size
        if scene.size != size:
            raise SceneError(f"scene reference is {scene.size} px, the model generates {size} px frames")
        scene = scene_for_model(scene, loaded, seed=seed or 0)  # a rig model shows a world scene as a picture
        if scene.n_characters > loaded.generator.cfg.max_characters:
            raise CharacterCountError(
                f"a scene of {scene.n_characters} characters, but this model's router has "
                f"{loaded.generator.cfg.max_characters} character slots (GeneratorConfig.max_characters)"
            )
        if steps is not None and (
            isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 100
        ):
            raise BYAError(f"steps must be an integer in [1, 100], got {steps!r}")
        base = options if options is not None else SamplingOptions.defaults(loaded)
        changes = {"steps": steps, "seed": seed, "motion": motion, "audio_guidance": audio_guidance}
        self.options = base.replace(**{k: v for k, v in changes.items() if v is not None})
        self.steps, seed, motion = self.options.steps, self.options.seed, self.options.motion
        if not 1 <= self.steps <= 100:
            raise BYAError(f"steps must be an integer in [1, 100], got {self.steps!r}")
        if not 1 <= max_inputs <= 64:
            raise BYAError(f"max_inputs must be in [1, 64], got {max_inputs}")
        if motion and not scene.choreographed:
            raise SceneError(
                "this scene has no choreography to follow (a photo scene): run it without motion"
            )
        self.loaded, self.scene, self.seed, self.max_inputs = loaded, scene, seed, max_inputs
        self.motion = motion
        self.audio_guidance = float(self.options.audio_guidance)
        self.requested_latency_ms = latency_ms
        self._inputs: dict[str, AudioInput] = {}
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task | None = None
        self._feed: queue.SimpleQueue = queue.SimpleQueue()  # per-character audio for the worker; None stops
        self._results: deque[ChunkOut] = deque()  # appended by the worker, drained by the clock
        self._early: deque[tuple[int, np.ndarray]] = deque()  # frames as the worker composites them
        self._worker: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._state = "new"
        self.isolating: bool | None = None  # listener isolation, decided while warming up
        self._clock = time.monotonic
        self._t0 = 0.0
        self.latency = LatencyPolicy()  # the output delay: set at start, then raised and lowered live
        self._tick = 0  # next 20 ms output tick
        self._pulled = 0  # 16 kHz input samples pulled since the start
        self._out = np.zeros(0, np.float32)  # 48 kHz output mix not yet sent; first sample = _out_base
        self._out_base = 0
        self._upsample = PolyphaseResampler(AUDIO_SAMPLE_RATE, WEBRTC_AUDIO_RATE)
        self._ready: dict[int, np.ndarray] = {}  # frame index -> image, generated and not yet due
        # until frame 0: the scene at rest (a rig model moves the canvas itself: the picture as it is)
        self._last_image = (
            scene.background.copy()
            if loaded.generator.cfg.output == "rig"
            else composite(scene.background, scene.reference, scene.region)
        )
        self._last_fresh = -1
        self._levels = np.zeros(scene.n_characters)  # RMS of each character's newest audio
        self._counts: Counter = Counter()
        self._steps_used: Counter = Counter()
        self._timings: deque[dict[str, float]] = deque(maxlen=HISTORY)
        self._slack_ms: deque[float] = deque(maxlen=HISTORY)
        self._lag_ms: deque[float] = deque(maxlen=HISTORY)  # video content behind its audio, per frame

    # -- the binding table --------------------------------------------------------------------------
    @property
    def characters(self) -> list[str]:
        return list(self.scene.names)

    def _check_character(self, character: int | None) -> int | None:
        n = self.scene.n_characters
        ok = character is None or (
            isinstance(character, int | np.integer) and not isinstance(character, bool) and 0 <= character < n
        )
        if not ok:
            raise BindingError(f"character {character!r}: expected an integer in [0, {n}) or None")
        return None if character is None else int(character)

    def open_input(
        self,
        key: str,
        character: int | None = None,
        *,
        jitter_ms: int = JITTER_MS,  # the input's starting pre-buffer (realtime.audio.inputs)
        audible: bool = True,  # heard in the output mix; False: only drives its character
        skip_quiet: bool = True,  # False for inputs that must stay in step (one diarized mix's speakers)
    ) -> AudioInput:
        """A new audio input bound to `character` (default: the lowest one no open input drives, else none)."""
        if not isinstance(key, str) or not 0 < len(key) <= 128:
            raise BindingError(f"input key must be a non-empty string of at most 128 characters, got {key!r}")
        if key in self._inputs:
            raise BindingError(f"input {key!r} is already open")
        if len(self._inputs) >= self.max_inputs:
            raise BindingError(f"the room has {self.max_inputs} inputs open, its maximum")
        if character is None:
            taken = {i.character for i in self._inputs.values()}
            character = next((k for k in range(self.scene.n_characters) if k not in taken), None)
        audio_input = AudioInput(
            key, self._check_character(character), self._close_input, jitter_ms, audible, skip_quiet
        )
        self._inputs[key] = audio_input
        return audio_input

    def _close_input(self, key: str) -> None:
        self._inputs.pop(key, None)

    def bind(self, key: str, character: int | None) -> None:
        """Re-bind an open input to another character (None: heard in the mix, drives no one)."""
        if key not in self._inputs:
            raise BindingError(
                f"no open input {key!r} (open: {', '.join(map(repr, self._inputs)) or 'none'})"
            )
        self._inputs[key].character = self._check_character(character)

    def binding(self) -> dict[str, int | None]:
        return {key: i.character for key, i in self._inputs.items()}

    def subscribe(self, max_frames: int = 8) -> Subscription:
        if not 1 <= max_frames <= 10_000:
            raise BYAError(f"max_frames must be in [1, 10000], got {max_frames}")
        sub = Subscription(max_frames, self._subscribers.discard)
        if self._state == "stopped":
            sub._end()
        else:
            self._subscribers.add(sub)
        return sub

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Measure the pipeline, then start the clock, the worker thread and the output loop."""
        if self._state != "new":
            raise RuntimeError(f"a room starts once; this one is {self._state}")
        self._state = "starting"
        cost, wait_s, scheduler = await asyncio.to_thread(self._warm_up)
        if self._state != "starting":  # stopped while warming up
            return
        sustainable = next(
            (s for s in range(self.steps, 0, -1) if cost.estimate(s) <= SUSTAINABLE * 2 * FRAME_MS), 1
        )
        floor_s = wait_s + PULL_MS / 1000  # audio reaches the worker on the next pull
        measured = floor_s + (COST_HEADROOM * cost.first_frame(sustainable) + SAFETY_MS) / 1000
        if self.requested_latency_ms is None:
            delay = measured
        elif floor_s * 1000 <= self.requested_latency_ms <= 10_000:
            delay = self.requested_latency_ms / 1000
        else:
            self._state = "new"
            raise BYAError(
                f"latency_ms must be in [{floor_s * 1000:.0f}, 10000] for this model, got {self.requested_latency_ms}"
            )
        self._t0 = self._clock()
        self.latency.start(delay, adaptive=self.requested_latency_ms is None)
        self._worker = threading.Thread(
            target=self._work, args=(scheduler,), name="bya-room-worker", daemon=True
        )
        self._worker.start()
        self._state = "running"
        self._task = asyncio.create_task(self._run(), name="bya-room-clock")
        log.info(
            "room started: latency %.0f ms (%d-step chunk %.1f ms, first frame %.1f ms)",
            1e3 * self.latency.delay_s,
            sustainable,
            cost.estimate(sustainable),
            cost.first_frame(sustainable),
        )

    async def stop(self) -> None:
        """Stop the clock and the worker; subscribers drain what they have, then get None."""
        if self._state in ("new", "stopped"):
            self._state = "stopped"
            return
        self._state = "stopped"
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._feed.put(None)
        if self._worker is not None:
            await asyncio.to_thread(self._worker.join, 30.0)
        for sub in list(self._subscribers):
            sub._end()
        self._subscribers.clear()

    def _scheduler(self, isolate: bool, *live) -> ChunkScheduler:
        """A session of this room's scene and settings; `live` = (deadline, cost, clock, on_frame)."""
        options = self.options.replace(isolation="on" if isolate else "off")
        return ChunkScheduler(self.loaded, self.scene, options, *live)

    def _time_chunks(self, isolate: bool) -> tuple[CostModel, ChunkScheduler]:
        """A throwaway session timed on one voice with the others listening (the dearest chunk)."""
        probe = self._scheduler(isolate)
        audio = probe_audio(self.scene.n_characters, probe.session.samples_needed(WARM_CHUNKS))
        cold = probe.session.samples_needed(UNMEASURED - 1)
        probe.feed(audio[:, :cold])
        warm = probe.feed(audio[:, cold:])  # measured from the first warm chunk on, as medians
        return CostModel.from_timings([c.timings_ms for c in warm], self.steps), probe

    def _warm_up(self) -> tuple[CostModel, float, ChunkScheduler]:
        """Time a few chunks of a throwaway session; build the live one (its reference encoded) off the loop.
        Listener isolation "auto" stays on only if one step with its second pass is sustainable here."""
        isolate = self.options.isolate_listeners and self.scene.n_characters > 1
        cost, probe = self._time_chunks(isolate)
        if isolate and self.options.isolation == "auto" and cost.estimate(1) > SUSTAINABLE * 2 * FRAME_MS:
            log.warning(
                "listener isolation off: a chunk with it costs %.0f ms of its %d ms",
                cost.estimate(1),
                2 * FRAME_MS,
            )
            isolate = False
            cost, probe = self._time_chunks(isolate)
        self.isolating = isolate
        if self.motion and cost.estimate(1) > SUSTAINABLE * 2 * FRAME_MS:
            log.warning(
                "motion: a chunk costs %.0f ms of its %d ms here (a pose render and a reference encoding "
                "each); expect repeated frames, or give the model more threads",
                cost.estimate(1),
                2 * FRAME_MS,
            )
        probe.cost = cost
        live = self._scheduler(isolate, self._deadline, probe.cost, self._clock, self._frame_ready)
        return probe.cost, probe.first_chunk_wait_s(), live

    def _frame_ready(self, frame: int, image: np.ndarray) -> None:
        """Called by the worker as each frame is composited: the clock may show it before its chunk ends."""
        self._early.append((frame, image))

    def _deadline(self, index: int) -> float:
        return self._t0 + self.latency.delay_s + index * 2 * FRAME_MS / 1000

    # -- the worker thread ------------------------------------------------------------------------------
    def _work(self, scheduler: ChunkScheduler) -> None:
        while (block := self._feed.get()) is not None:
            blocks = [block]
            while True:  # take everything that queued up while the last chunk ran: skips decide faster
                try:
                    nxt = self._feed.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    return
                blocks.append(nxt)
            try:
                self._results.extend(scheduler.feed(np.concatenate(blocks, 1)))
            except Exception as exc:  # reported in stats; the clock goes on repeating the last frame
                log.exception("the room's generator failed")
                self._failure = exc
                return

    # -- the clock (event loop) ---------------------------------------------------------------------------
    async def _run(self) -> None:
        tick = 0  # next 20 ms output audio frame
        tick_s, pull_s = AUDIO_FRAME_MS / 1000, PULL_MS / 1000
        # wake-ups on a PULL_MS grid through the output ticks: inputs are pulled every PULL_MS, and every
        # output tick leaves on time
        grid = self._t0 + self.latency.delay_s
        wake = self._t0
        while True:
            wait = wake - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            now = self._clock()
            self._pull(now)
            self._collect()
            while self._t0 + self.latency.delay_s + tick * tick_s <= now:
                if tick % AUDIO_FRAMES_PER_VIDEO_FRAME == 0:
                    self._emit_video(tick // AUDIO_FRAMES_PER_VIDEO_FRAME)
                self._emit_audio(tick)
                tick += 1
            self._tick = tick
            wake = now - (now - grid) % pull_s + pull_s  # the next slot (after a stall: skips the missed)

    def _pull(self, now: float) -> None:
        """Inputs -> per-character audio for the worker, and the mix for the output."""
        n = int((now - self._t0) * AUDIO_SAMPLE_RATE) - self._pulled
        if n <= 0:
            return
        self._pulled += n
        per_character = np.zeros((self.scene.n_characters, n), np.float32)
        mix = np.zeros(n, np.float32)
        for audio_input in list(self._inputs.values()):
            x = audio_input.pull(n)
            if audio_input.audible:
                mix += x
            if audio_input.character is not None:
                per_character[audio_input.character] += x
        self._feed.put(per_character)
        self._out = np.concatenate((self._out, self._upsample.push(np.clip(mix, -1.0, 1.0))))

    def _collect(self) -> None:
        while self._early:
            frame, image = self._early.popleft()
            self._ready[frame] = image
        while self._results:
            chunk = self._results.popleft()
            self._levels = chunk.levels
            if chunk.skipped:
                self._counts["skipped_chunks"] += 1
                self.latency.missed(self._clock(), self._next_frame())
                continue
            self._counts["chunks"] += 1
            self._steps_used[chunk.steps] += 1
            slack = 1e3 * (self._deadline(chunk.index) - chunk.first_at)
            self._counts["late_chunks"] += slack < 0
            self._slack_ms.append(slack)
            if slack < 0:
                self.latency.missed(self._clock(), self._next_frame())
            else:
                self.latency.met(self._clock(), self._next_frame())
            self._timings.append(chunk.timings_ms)  # its frames came through _frame_ready already

    def _next_frame(self) -> int:
        """The next video frame to leave: where a latency change takes effect."""
        return -(-self._tick // AUDIO_FRAMES_PER_VIDEO_FRAME)

    def _emit_video(self, frame: int) -> None:
        for stale in [k for k in self._ready if k < frame]:
            del self._ready[stale]
        image = self._ready.pop(frame, None)
        if image is None:
            self._counts["repeated_frames"] += 1
        else:
            self._last_image, self._last_fresh = image, frame
        self._counts["frames"] += 1
        self._lag_ms.append(FRAME_MS * (frame - self._last_fresh) if self._last_fresh >= 0 else float("nan"))
        out = VideoFrameOut(self._last_image, frame)
        for sub in self._subscribers:
            sub._put(out)

    def _emit_audio(self, tick: int) -> None:
        start = tick * AUDIO_FRAME_SAMPLES - self._out_base
        pcm = self._out[start : start + AUDIO_FRAME_SAMPLES]
        if len(pcm) < AUDIO_FRAME_SAMPLES:  # cannot happen while latency > one tick; never wait for it
            self._counts["audio_underruns"] += 1
            pcm = np.pad(pcm, (0, AUDIO_FRAME_SAMPLES - len(pcm)))
        self._out, self._out_base = self._out[start + AUDIO_FRAME_SAMPLES :], (tick + 1) * AUDIO_FRAME_SAMPLES
        self._counts["audio_frames"] += 1
        out = AudioFrameOut(np.round(pcm * 32767.0).astype(np.int16), tick * AUDIO_FRAME_SAMPLES)
        for sub in self._subscribers:
            sub._put(out)

    # -- stats --------------------------------------------------------------------------------------
    def stats(self) -> dict:
        """Counters and recent timings (JSON-able); see docs/engine.md for each field."""
        c = self._counts
        timings = {k: _mean([t[k] for t in self._timings if k in t]) for k in (*STAGES, "total_ms")}
        timings["total_p95_ms"] = _percentile([t["total_ms"] for t in self._timings], 95)
        lag = [v for v in self._lag_ms if v == v]
        return {
            "state": self._state,
            "error": repr(self._failure) if self._failure else None,
            "characters": self.characters,
            "levels": [round(float(v), 4) for v in self._levels],
            "inputs": {key: i.stats() for key, i in self._inputs.items()},
            "subscribers": len(self._subscribers),
            "latency_ms": self.latency.delay_ms,
            "latency_changes": [list(x) for x in self.latency.changes],  # [first frame, ms]: start, changes
            "clock_origin": self._t0,  # time.monotonic() of media time 0 (for in-process measurements)
            "steps": self.steps,
            "listener_isolation": None if self.isolating is None else ("on" if self.isolating else "off"),
            "motion": self.motion,
            "audio_guidance": self.audio_guidance,
            "steps_used": {str(k): v for k, v in sorted(self._steps_used.items())},
            "chunks": c["chunks"],
            "late_chunks": c["late_chunks"],
            "skipped_chunks": c["skipped_chunks"],
            "frames": c["frames"],
            "repeated_frames": c["repeated_frames"],
            "audio_frames": c["audio_frames"],
            "audio_underruns": c["audio_underruns"],
            "timings_ms": timings,
            "slack_ms": {"mean": _mean(self._slack_ms), "min": min(self._slack_ms, default=None)},
            # Audio and video of equal pts leave on the same tick: the offset is how far the video's
            # content is behind (0 for fresh frames, 40 ms per repeated frame), over the last HISTORY frames.
            "av_offset_ms": {"mean": _mean(lag), "max": max(lag, default=None)},
            "dropped_video": sum(s.dropped_video for s in self._subscribers),
            "dropped_audio": sum(s.dropped_audio for s in self._subscribers),
        }


def _mean(values) -> float | None:
    values = list(values)
    return round(float(np.mean(values)), 2) if values else None


def _percentile(values, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None
