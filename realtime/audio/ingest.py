"""Per-stream audio ingest: validate, reorder, resample to 16 kHz, buffer against jitter, detect voice.

One `StreamIngest` per incoming voice (a WebRTC track at 48 kHz, a microphone, a file). A network or
device thread `push`es blocks of any size, optionally stamped with their position in samples (pts); the
engine's clock `pull`s exactly n samples at 16 kHz and never blocks. Between them:

    push -> reorder buffer (by pts, waits up to jitter_ms for a late block) -> PolyphaseResampler
         -> playout FIFO (pre-buffers jitter_ms; bounded: drops the oldest on overflow) -> pull -> VAD

Clock drift: a sender whose clock runs fast fills the FIFO a little faster than it is pulled (1% is
10 ms more latency per second), a slow one drains it into underruns. `pull` keeps a smoothed FIFO level
and, once it strays more than DRIFT_DEADBAND_MS from the pre-buffer target, time-scales the pulled
block (linear interpolation of n +/- k samples onto n) by a rate proportional to the error, at most
MAX_DRIFT_RATE (QUIET_DRIFT_RATE while the audio is near silence, where it cannot be heard): the
added latency stays near its target and the samples removed or inserted are counted.

Adaptive target: the pre-buffer starts at jitter_ms (small: 20 ms for a live input) and grows by
TARGET_STEP_MS, up to max_jitter_ms, each time the FIFO runs dry and audio comes back within
LATE_WINDOW_MS of media time (a late packet: the network's jitter is larger than the target). A longer
silence is a pause of the sender, not jitter, and leaves the target alone. So a quiet link (loopback, a
LAN) pays ~20 ms and a jittery one learns its own depth after a click or two.
"""

from __future__ import annotations

import heapq
import threading
from collections import deque

import numpy as np

from realtime.audio.resampler import PolyphaseResampler
from realtime.audio.vad import VoiceActivity
from realtime.errors import AudioInputError
from realtime.media import AUDIO_SAMPLE_RATE

SUPPORTED_RATES = (8_000, 16_000, 24_000, 32_000, 44_100, 48_000)  # Hz; what senders and devices use
MAX_BLOCK_MS = 1_000  # longest block one push takes; real senders send 10-60 ms, files 20-100 ms
CAPACITY_MS = 1_000  # playout FIFO bound: more queued audio than this is latency nobody wants
MAX_PTS = 2**62  # samples; ~3 million years at 48 kHz, and far from int64 wrap-around
DRIFT_SMOOTHING_S = 0.3  # time constant of the FIFO level the drift control sees: averages out jitter
DRIFT_DEADBAND_MS = (0, 20)  # level error left alone (ms from target): a packet's phase; top >= jitter_ms/2
DRIFT_RESPONSE_MS = 250  # level error per unit of rate (proportional term): 5 ms -> 2%
DRIFT_BAND_MS = 100  # further above the target than this is a backlog (a burst, a bulk write), not drift
DRIFT_INTEGRAL_S = 2.0  # integral time: a steady drift is learned in seconds, then costs no level
MAX_DRIFT_RATE = 0.05  # most time-scaling of audible audio: 5% (<1 semitone); senders drift 0.01-1%
QUIET_DRIFT_RATE = 0.5  # most time-scaling of near-silence, where it is inaudible: a backlog goes fast
QUIET_PEAK = 10 ** (-50 / 20)  # -50 dBFS: below this a block is "near silence" for QUIET_DRIFT_RATE
TARGET_STEP_MS = 10  # the pre-buffer grows by this after an underrun caused by a late packet
LATE_WINDOW_MS = 200  # audio back within this much media time after running dry: it was late, not paused


class StreamIngest:
    """One audio stream in, 16 kHz float32 out on demand, with jitter buffer, counters and VAD."""

    def __init__(
        self,
        in_rate: int,
        vad: str = "webrtc",
        jitter_ms: int = 60,
        aggressiveness: int = 2,
        capacity_ms: int = CAPACITY_MS,
        max_jitter_ms: int | None = None,  # the target may grow to this after late packets (None: fixed)
        skip_quiet: bool = True,  # drain a backlog through near-silence faster; off for streams that must
        # stay in step with others fed the same way (the speakers of one diarized mix)
    ) -> None:
        if (
            isinstance(in_rate, bool)
            or not isinstance(in_rate, int | np.integer)
            or in_rate not in SUPPORTED_RATES
        ):
            raise AudioInputError(f"input sample rate must be one of {SUPPORTED_RATES} Hz, got {in_rate!r}")
        if not 0 <= jitter_ms <= 500:
            raise AudioInputError(f"jitter_ms must be in [0, 500], got {jitter_ms!r}")
        if not jitter_ms < capacity_ms <= 10_000:
            raise AudioInputError(f"capacity_ms must be in (jitter_ms, 10000], got {capacity_ms!r}")
        if max_jitter_ms is not None and not jitter_ms <= max_jitter_ms < capacity_ms:
            raise AudioInputError(f"max_jitter_ms must be in [jitter_ms, capacity_ms), got {max_jitter_ms!r}")
        self._max_prebuffer = AUDIO_SAMPLE_RATE * (max_jitter_ms or jitter_ms) // 1000
        self._dry_at: int | None = None  # samples pulled when the FIFO last ran dry while playing
        self.in_rate = in_rate = int(in_rate)  # a float 48000.0 would make every sample count a float
        self.jitter_ms = jitter_ms
        self.skip_quiet = skip_quiet
        self._jitter_in = in_rate * jitter_ms // 1000  # reorder wait, input samples
        self._prebuffer = AUDIO_SAMPLE_RATE * jitter_ms // 1000  # playout pre-buffer, 16 kHz samples
        self._capacity = AUDIO_SAMPLE_RATE * capacity_ms // 1000
        self._max_block = in_rate * MAX_BLOCK_MS // 1000
        self._resampler = PolyphaseResampler(in_rate, AUDIO_SAMPLE_RATE)
        self._vad = VoiceActivity(vad, aggressiveness)
        self._lock = threading.Lock()  # push runs on a network/device thread, pull on the engine clock
        self._heap: list[tuple[int, int, np.ndarray]] = []  # (pts, arrival, block): blocks not released
        self._arrivals = 0
        self._next_pts: int | None = None  # input position of the next sample to release
        self._newest_end = 0  # furthest input position any block has reached
        self._fifo: deque[np.ndarray] = deque()
        self._queued = 0  # 16 kHz samples in the FIFO
        self._playing = False  # False while (re-)filling the pre-buffer
        self._level = 0.0  # smoothed FIFO level while playing, 16 kHz samples (the drift control's input)
        self._owed = 0.0  # fraction of a sample the drift control has yet to remove (+) or insert (-)
        self._drift = 0.0  # the sender's clock rate relative to ours, minus 1, as learned (integral term)
        self.vad_flags = np.zeros(0, bool)
        self._stats = dict.fromkeys(
            ("received", "pulled", "underruns", "dropped", "late", "gaps", "drift_dropped", "drift_inserted"),
            0,
        )

    # -- input side ---------------------------------------------------------------------------------------
    def push(self, pcm: np.ndarray, pts: int | None = None) -> None:
        """Queue one block: mono int16 or float32 at in_rate; pts = its first sample's position, if known."""
        block = self._validate(pcm, pts)
        pts = None if pts is None else int(pts)  # numpy integers would wrap around in pts arithmetic
        with self._lock:
            self._stats["received"] += 1
            if pts is None:  # no timestamps: arrival order is stream order
                pts = self._newest_end
            if self._next_pts is not None and pts < self._next_pts:  # (partly) behind what was released
                cut = self._next_pts - pts
                if cut >= len(block):
                    self._stats["late"] += 1
                    return
                block, pts = block[cut:], self._next_pts
            if any(p == pts for p, _, _ in self._heap):  # a retransmitted duplicate
                self._stats["late"] += 1
                return
            heapq.heappush(self._heap, (pts, self._arrivals, block))
            self._arrivals += 1
            self._newest_end = max(self._newest_end, pts + len(block))
            self._release()

    def _validate(self, pcm: np.ndarray, pts: int | None) -> np.ndarray:
        if not isinstance(pcm, np.ndarray):
            raise AudioInputError(f"audio must be a numpy array, got {type(pcm).__name__}")
        if pcm.ndim != 1:
            raise AudioInputError(f"audio must be mono, shape (samples,), got shape {pcm.shape}")
        if pcm.dtype == np.int16:
            block = pcm.astype(np.float32) / 32768.0
        elif pcm.dtype == np.float32:
            if not np.isfinite(pcm).all():
                raise AudioInputError("audio contains NaN or infinite samples")
            block = pcm.copy()
        else:
            raise AudioInputError(f"audio dtype must be int16 or float32, got {pcm.dtype}")
        if len(block) > self._max_block:
            raise AudioInputError(
                f"block of {len(block)} samples is longer than {MAX_BLOCK_MS} ms at {self.in_rate} Hz"
            )
        if pts is not None and (
            isinstance(pts, bool) or not isinstance(pts, int | np.integer) or not 0 <= pts <= MAX_PTS
        ):
            raise AudioInputError(f"pts must be an integer sample position in [0, 2**62], got {pts!r}")
        return block

    def _release(self) -> None:
        """Move blocks from the reorder buffer into the resampler while order is certain or waited for."""
        while self._heap:
            pts, _, block = self._heap[0]
            if self._next_pts is None:  # the stream's first audio: wait jitter_ms for blocks sent earlier
                if self._newest_end - pts < self._jitter_in:
                    return
                self._next_pts = pts
            expected = self._next_pts
            if pts > expected and self._newest_end - expected < self._jitter_in:
                return  # a hole: wait (up to jitter_ms of newer audio) for the block that fills it
            heapq.heappop(self._heap)
            if pts < expected:  # overlaps audio released meanwhile
                if pts + len(block) <= expected:
                    self._stats["late"] += 1
                    continue
                block, pts = block[expected - pts :], expected
            if pts > expected:  # the hole was never filled
                self._stats["gaps"] += 1
                if pts - expected <= self._jitter_in:  # a lost packet: keep the timing with silence
                    self._append(self._resampler.push(np.zeros(pts - expected, np.float32)))
                else:  # the sender paused: resynchronise instead of queueing a long silence
                    self._append(self._resampler.flush())
                    self._resampler.reset()
            self._append(self._resampler.push(block))
            self._next_pts = pts + len(block)

    def _append(self, audio: np.ndarray) -> None:
        if self._dry_at is not None and len(audio):  # audio again after running dry: late, or a pause?
            if self._stats["pulled"] - self._dry_at <= AUDIO_SAMPLE_RATE * LATE_WINDOW_MS // 1000:
                step = AUDIO_SAMPLE_RATE * TARGET_STEP_MS // 1000
                self._prebuffer = min(self._prebuffer + step, self._max_prebuffer)
            self._dry_at = None
        if len(audio):
            self._fifo.append(audio)
            self._queued += len(audio)
        over = self._queued - self._capacity
        while over > 0:  # overflow policy: drop the oldest audio, the newest is what a live scene needs
            head = self._fifo[0]
            if len(head) <= over:
                self._fifo.popleft()
                cut = len(head)
            else:
                self._fifo[0] = head[over:]
                cut = over
            self._queued -= cut
            self._stats["dropped"] += cut
            over -= cut

    # -- output side --------------------------------------------------------------------------------------
    def pull(self, n: int) -> np.ndarray:
        """Exactly n float32 samples at 16 kHz, never blocking: silence while pre-buffering or on underrun."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise AudioInputError(f"pull needs a non-negative integer sample count, got {n!r}")
        n = int(n)
        out = np.zeros(n, np.float32)
        with self._lock:
            if not self._playing and self._queued >= max(self._prebuffer, 1):
                self._playing = True
                self._level, self._owed = float(self._queued), 0.0  # the drift learned is kept
            if self._playing and n:
                got = self._play(out)
                if got < n:  # ran dry: count it and pre-buffer again before playing on
                    self._stats["underruns"] += 1
                    self._playing = False
                    self._dry_at = self._stats["pulled"] + n
            self._stats["pulled"] += n
            self.vad_flags = self._vad.process(out)
        return out

    def _play(self, out: np.ndarray) -> int:
        """Fill `out` from the FIFO, time-scaled by the drift control; the samples of `out` filled."""
        n = len(out)
        alpha = min(1.0, n / (DRIFT_SMOOTHING_S * AUDIO_SAMPLE_RATE))
        held = 0  # audio behind a hole in the reorder buffer is delay too: a lost packet is not a dip
        if self._heap and self._next_pts is not None:
            held = (self._newest_end - self._next_pts) * AUDIO_SAMPLE_RATE // self.in_rate
        self._level += alpha * (self._queued + held - self._level)
        level_ms = 1000.0 * (self._level - self._prebuffer) / AUDIO_SAMPLE_RATE  # above the target
        # error: 0 inside the deadband, where a packet's arrival phase puts the level
        low, high = DRIFT_DEADBAND_MS[0], max(DRIFT_DEADBAND_MS[1], self.jitter_ms / 2)  # wider jitter
        error_ms = level_ms - high if level_ms > high else min(level_ms - low, 0.0)
        p = error_ms / DRIFT_RESPONSE_MS
        if level_ms > DRIFT_BAND_MS:  # a backlog, not drift: audible audio plays untouched
            p = 0.0
        elif abs(p) < MAX_DRIFT_RATE:  # learn the sender's drift from small, lasting errors
            self._drift += p * n / (DRIFT_INTEGRAL_S * AUDIO_SAMPLE_RATE)
            self._drift = max(-MAX_DRIFT_RATE, min(MAX_DRIFT_RATE, self._drift))
        rate = p + self._drift  # > 0: take more than n (a fast sender clock); < 0: fewer (a slow one)
        rate = max(-MAX_DRIFT_RATE, min(MAX_DRIFT_RATE, rate))
        spare = self._queued - n - self._prebuffer - int(high * AUDIO_SAMPLE_RATE / 1000)
        if self.skip_quiet and spare > 0 and self._peak(n + int(QUIET_DRIFT_RATE * n)) < QUIET_PEAK:
            rate = max(rate, min(QUIET_DRIFT_RATE, spare / n))  # near silence: skip the excess, unheard
        self._owed += n * rate
        self._owed = max(-float(n), min(float(n), self._owed))
        k = int(self._owed)  # whole samples; the fraction carries over to the next pull
        take = n + k
        if k == 0 or take < 2 or take > self._queued:
            return self._take(out)  # nothing whole to correct yet, or not enough audio to correct with
        self._owed -= k
        block = np.zeros(take, np.float32)
        self._take(block)
        out[:] = np.interp(np.linspace(0.0, take - 1.0, n), np.arange(take), block)
        self._stats["drift_dropped" if k > 0 else "drift_inserted"] += abs(k)
        return n

    def _take(self, out: np.ndarray) -> int:
        got = 0
        while got < len(out) and self._fifo:
            head = self._fifo[0]
            k = min(len(head), len(out) - got)
            out[got : got + k] = head[:k]
            if k == len(head):
                self._fifo.popleft()
            else:
                self._fifo[0] = head[k:]
            got += k
        self._queued -= got
        return got

    def _peak(self, m: int) -> float:
        """Largest |sample| among the next m queued samples (without taking them)."""
        peak, seen = 0.0, 0
        for head in self._fifo:
            if seen >= m:
                break
            part = head[: m - seen]
            peak = max(peak, float(np.abs(part).max(initial=0.0)))
            seen += len(part)
        return peak

    @property
    def speaking(self) -> bool:
        """VAD state of the pulled audio, held for a short hangover after the last speech frame."""
        return self._vad.speaking

    @property
    def buffered_ms(self) -> float:
        """Audio waiting in the playout FIFO (ms at 16 kHz)."""
        return 1000.0 * self._queued / AUDIO_SAMPLE_RATE

    def stats(self) -> dict[str, int | float]:
        """Counters: received (blocks pushed), pulled (samples at 16 kHz), underruns (pulls that ran dry),
        dropped (16 kHz samples dropped on overflow), late (blocks discarded as late or duplicate),
        gaps (holes in pts that were never filled), drift_dropped / drift_inserted (16 kHz samples the
        drift control removed / made up by time-scaling), buffered_ms (now in the FIFO), target_ms (the
        pre-buffer target now: jitter_ms, grown after late packets)."""
        with self._lock:
            target_ms = 1000 * self._prebuffer / AUDIO_SAMPLE_RATE
            return {**self._stats, "buffered_ms": self.buffered_ms, "target_ms": target_ms}
