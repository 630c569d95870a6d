"""A mixed stream into a live room: one WHIP stream of several voices, diarized live, one input per speaker.

`MixDiarizer` is what `bya serve --enroll K=FILE.wav / --mix-speakers N` sets up once, at start: the
enrolled voices (or N online speakers) and the encoder's warm-up. Each `POST /whip/mix` gets a
`MixInput`: the event loop `write`s the decoded audio into a bounded queue; the stream's own worker
thread resamples it to 16 kHz, runs the streaming `realtime.audio.diarization.Diarizer` and hands each decided
span back to the loop, which writes it, in one step, to the room inputs the session owns: `<id>` (the
whole mix: heard by viewers, bound to no one) and `<id>/speaker<k>` (speaker k's gated audio, bound to
character k). Decisions come `lookahead_ms` after their 40 ms frame, so these inputs run that much later
than a plain WHIP input (docs/server.md, *Mixed streams*).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Sequence

import numpy as np

from realtime.audio.diarization import RAMP_MS, Diarizer
from realtime.audio.ingest import SUPPORTED_RATES
from realtime.audio.inputs import JITTER_MS, AudioInput
from realtime.audio.resampler import PolyphaseResampler
from realtime.errors import AudioInputError, BYAError, DiarizationError
from realtime.media import AUDIO_SAMPLE_RATE, DIARIZER_LOOKAHEAD_MS, MAX_CHARACTERS, SAMPLES_PER_FRAME

log = logging.getLogger(__name__)

NO_DIARIZER = "no diarizer: start bya serve with --enroll K=FILE.wav or --mix-speakers N"
# Decisions reach the inputs a 40 ms frame at a time; a pre-buffer of two frames keeps one in hand while
# the next is decided, and puts the burst (40 ms) inside the inputs' drift deadband (jitter_ms / 2).
MIX_JITTER_MS = 2 * SAMPLES_PER_FRAME * 1000 // AUDIO_SAMPLE_RATE  # 80 ms (a plain input: JITTER_MS)
MIX_BACKLOG_S = 10.0  # audio waiting for the diarizer; a write past it is refused, never silently dropped
DRAIN_MAX_S = 2.0  # after the stream ends, its last decided audio plays out for at most this long
WARM_UP_S = 1.5  # synthetic audio streamed through a throwaway diarizer at start (numba, torch, NMF)
LAG_HISTORY = 250  # routed spans whose decision lag is kept for stats (10 s of 40 ms frames)
RAMP_SAMPLES = AUDIO_SAMPLE_RATE * RAMP_MS // 1000  # a speaker's gain moves 0 <-> 1 over 5 ms


def speaker_key(session: str, speaker: int) -> str:
    """The room input (binding key) of one diarized speaker of a mixed WHIP session."""
    return f"{session}/speaker{int(speaker)}"


# -- the diarizer `bya serve` starts with ------------------------------------------------------------------
def parse_enroll(spec: str) -> tuple[int, str]:
    """`K=FILE.wav` -> (K, FILE.wav); DiarizationError naming the argument otherwise."""
    k, sep, path = spec.partition("=")
    if not sep or not path or not (k.isascii() and k.isdigit()) or not int(k) < MAX_CHARACTERS:
        raise DiarizationError(
            f"--enroll {spec[:80]!r}: expected K=FILE.wav with K a character index 0-{MAX_CHARACTERS - 1}"
        )
    return int(k), path


class MixDiarizer:
    """The voices a server diarizes mixed streams into: enrolled characters, or N speakers found online."""

    def __init__(self, diarizer: Diarizer, speakers: Sequence[int]) -> None:
        self.diarizer = diarizer  # the template: each mixed stream runs a clone (its own stream state)
        self.speakers = tuple(speakers)  # speaker k -> room input <id>/speaker<k>, bound to character k

    @classmethod
    def from_arguments(
        cls, enroll: Sequence[str], speakers: int | None, lookahead_ms: int = DIARIZER_LOOKAHEAD_MS
    ) -> MixDiarizer | None:
        """From `--enroll K=FILE.wav ...` and/or `--mix-speakers N`; None when neither was given."""
        if speakers is not None and not 1 <= speakers <= MAX_CHARACTERS:
            raise DiarizationError(f"--mix-speakers must be 1-{MAX_CHARACTERS}, got {speakers}")
        if speakers is not None and enroll and speakers != len(enroll):
            raise DiarizationError(
                f"--mix-speakers {speakers} with {len(enroll)} --enroll voice(s): enrolled mixes have one "
                "speaker per voice (leave --mix-speakers out)"
            )
        if not enroll:
            if speakers is None:
                return None
            return cls(Diarizer("online", max_speakers=speakers, lookahead_ms=lookahead_ms), range(speakers))
        parsed = [parse_enroll(spec) for spec in enroll]
        seen = [k for k, _ in parsed]
        twice = sorted({k for k in seen if seen.count(k) > 1})
        if twice:
            raise DiarizationError(f"--enroll: character {twice[0]} is enrolled twice")
        from realtime.outputs.render import read_audio

        diarizer = Diarizer("enroll", lookahead_ms=lookahead_ms)
        for spec, (k, path) in zip(enroll, parsed, strict=True):
            try:
                diarizer.enroll(k, read_audio(path))
            except BYAError as exc:
                raise DiarizationError(f"--enroll {spec}: {' '.join(str(exc).split())}") from exc
        return cls(diarizer, sorted(seen))

    @property
    def latency_ms(self) -> int:
        """The decision lookahead: how long after a 40 ms frame ends it is routed."""
        return self.diarizer.latency_ms

    @property
    def mode(self) -> str:
        return self.diarizer.config.mode

    def new_stream(self) -> Diarizer:
        return self.diarizer.clone()

    def warm_up(self) -> float:
        """Stream WARM_UP_S of a synthetic voice through a throwaway clone (the encoder's first call, numba,
        the NMF shares): seconds it took. Run at server start, so no request pays it."""
        start = time.perf_counter()
        t = np.arange(int(WARM_UP_S * AUDIO_SAMPLE_RATE)) / AUDIO_SAMPLE_RATE
        voice = sum(np.sin(2 * np.pi * 140 * h * t) / h for h in range(1, 12))
        voice = (0.1 * voice * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
        stream = self.new_stream()
        stream.push(voice)
        stream.flush()
        return time.perf_counter() - start

    def describe(self) -> str:
        if self.mode == "enroll":
            return f"enrolled voices {list(self.speakers)} -> characters {list(self.speakers)}"
        n = len(self.speakers)
        return f"{n} speakers clustered online, in order of appearance -> characters 0-{n - 1}"


# -- one mixed stream ------------------------------------------------------------------------------------
class _Gate:
    """One speaker's gain over the stream: a decision sets its target (0 or 1), reached by a 5 ms ramp."""

    def __init__(self) -> None:
        self.gain = 0.0

    def push(self, target: np.ndarray) -> np.ndarray:
        """(n,) bool targets -> (n,) float32 gains, continuing from the last call (no click at its edge)."""
        out = np.empty(len(target), np.float32)
        edges = np.flatnonzero(np.diff(target.astype(np.int8))) + 1
        for a, b in itertools.pairwise([0, *edges, len(target)]):
            goal = float(target[a])
            ramp = self.gain + np.sign(goal - self.gain) / RAMP_SAMPLES * np.arange(1, b - a + 1)
            out[a:b] = np.clip(ramp, 0.0, 1.0)  # goal is 0 or 1: the clip stops the ramp on it
            self.gain = float(out[b - 1])
        return out


class MixInput:
    """One mixed stream into a room: diarized on its own worker thread, each speaker its own room input.

    `write` (event loop) never blocks: audio queues for the worker, at most MIX_BACKLOG_S of it; a write
    past that raises AudioInputError (the session ends; nothing it had accepted is dropped). `close` lets
    the worker decide the last frames (Diarizer.flush), play them out, then close the inputs.
    """

    def __init__(
        self,
        key: str,
        diarizer: Diarizer,
        mix: AudioInput,
        speakers: dict[int, AudioInput],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.key = key
        self.diarizer = diarizer
        self.inputs = [mix, *speakers.values()]  # row 0: the whole mix; row 1 + i: the i-th speaker
        self._rows = {k: 1 + i for i, k in enumerate(speakers)}  # diarizer speaker -> row
        self._loop = loop
        self._queue: queue.SimpleQueue = queue.SimpleQueue()  # (pcm, rate, arrival) | None; bounded below
        self._lock = threading.Lock()
        self._queued_s = 0.0  # audio in the queue, seconds: the queue's bound
        self.closed = False
        self.failure: BaseException | None = None
        self._gates = [_Gate() for _ in speakers]
        self._pending = np.zeros(0, np.float32)  # 16 kHz audio received, not yet decided
        self._received = 0  # 16 kHz samples given to the diarizer
        self._routed = 0  # 16 kHz samples routed to the inputs
        self._arrivals: deque[tuple[int, float]] = deque()  # (stream end, time.monotonic() it arrived)
        self._lag_ms: deque[float] = deque(maxlen=LAG_HISTORY)
        self._speech = np.zeros(len(speakers), np.int64)  # samples routed to each speaker
        self._worker = threading.Thread(target=self._work, name="bya-mix-diarizer", daemon=True)
        self._worker.start()

    @property
    def keys(self) -> tuple[str, ...]:
        """The room inputs this stream owns: the whole mix, then one per speaker."""
        return tuple(i.key for i in self.inputs)

    @property
    def speaker_keys(self) -> tuple[str, ...]:
        return tuple(i.key for i in self.inputs[1:])

    # -- the event loop's side ----------------------------------------------------------------------------
    def write(self, pcm: np.ndarray, sample_rate: int) -> None:
        """Queue mono int16 or float32 samples at sample_rate for the diarizer; never blocks."""
        if self.failure is not None:
            raise AudioInputError(f"the diarizer of {self.key!r} failed: {self.failure!r}")
        if self.closed:
            raise AudioInputError(f"mixed input {self.key!r} is closed")
        if not isinstance(pcm, np.ndarray) or pcm.ndim != 1 or pcm.dtype not in (np.int16, np.float32):
            raise AudioInputError("a mixed stream takes 1-D int16 or float32 samples")
        if sample_rate not in SUPPORTED_RATES:
            raise AudioInputError(f"sample_rate must be one of {SUPPORTED_RATES} Hz, got {sample_rate!r}")
        seconds = len(pcm) / sample_rate
        with self._lock:
            if self._queued_s + seconds > MIX_BACKLOG_S:  # the diarizer is this far behind: refuse
                raise AudioInputError(
                    f"the diarizer is {self._queued_s:.1f} s behind its mixed stream (the CPU is overloaded)"
                )
            self._queued_s += seconds
        self._queue.put((pcm.copy(), int(sample_rate), time.monotonic()))

    def close(self) -> None:
        """End of the stream: the worker decides and plays out what it holds, then closes the inputs."""
        if not self.closed:
            self.closed = True
            self._queue.put(None)

    def stats(self) -> dict:
        with self._lock:
            queued_ms = 1000 * self._queued_s
        lag = list(self._lag_ms)
        return {
            "mode": self.diarizer.config.mode,
            "lookahead_ms": self.diarizer.latency_ms,
            "queued_ms": round(queued_ms, 1),
            "received_s": round(self._received / AUDIO_SAMPLE_RATE, 2),
            "routed_s": round(self._routed / AUDIO_SAMPLE_RATE, 2),
            # from a span's last sample arriving to the span reaching the inputs (lookahead + compute)
            "decision_lag_ms": {
                "mean": round(float(np.mean(lag)), 1) if lag else None,
                "max": round(max(lag), 1) if lag else None,
            },
            "speech_s": {
                i.key: round(int(s) / AUDIO_SAMPLE_RATE, 2)
                for i, s in zip(self.inputs[1:], self._speech, strict=True)
            },
            "error": repr(self.failure) if self.failure else None,
        }

    def _deliver(self, rows: np.ndarray) -> None:
        """(1 + speakers, n) -> the inputs, all in one loop step so the room pulls them in step."""
        for audio_input, row in zip(self.inputs, rows, strict=True):
            if not audio_input.closed:
                audio_input.write(row, AUDIO_SAMPLE_RATE)

    async def _deliver_last(self, rows: np.ndarray) -> float:
        """The last rows; how many ms the inputs now hold (what is left to play)."""
        self._deliver(rows)
        return max((i.stats()["buffered_ms"] for i in self.inputs if not i.closed), default=0.0)

    def _close_inputs(self) -> None:
        for audio_input in self.inputs:
            audio_input.close()

    # -- the worker thread --------------------------------------------------------------------------------
    def _work(self) -> None:
        resampler: PolyphaseResampler | None = None
        try:
            while (item := self._queue.get()) is not None:
                pcm, rate, arrived = item
                with self._lock:
                    self._queued_s = max(0.0, self._queued_s - len(pcm) / rate)
                x = pcm.astype(np.float32) / 32768.0 if pcm.dtype == np.int16 else pcm
                if resampler is None or resampler.in_rate != rate:  # a new rate continues the stream
                    tail = resampler.flush() if resampler is not None else np.zeros(0, np.float32)
                    resampler = PolyphaseResampler(rate, AUDIO_SAMPLE_RATE)
                    x = np.concatenate([tail, resampler.push(x)])
                else:
                    x = resampler.push(x)
                self._push(x, arrived)
            tail = resampler.flush() if resampler is not None else np.zeros(0, np.float32)
            self._push(tail, time.monotonic(), final=True)
            self._drain()
        except Exception as exc:  # this stream ends (its writes are refused); the room and others go on
            log.exception("the diarizer of mixed stream %s failed", self.key)
            self.failure = exc
        finally:
            self._on_loop(self._close_inputs)

    def _push(self, x: np.ndarray, arrived: float, final: bool = False) -> None:
        """Diarize x and route every span now decided; final: decide and route everything left."""
        self._received += len(x)
        self._arrivals.append((self._received, arrived))
        self._pending = np.concatenate([self._pending, x])
        decisions = self.diarizer.push(x) if len(x) else []
        if final:
            decisions += self.diarizer.flush()
        end = self._received if final else max((e for _, e, _ in decisions), default=self._routed)
        n = end - self._routed
        if n <= 0:
            return
        targets = np.zeros((len(self._gates), n), bool)
        for start, stop, speaker in decisions:
            if speaker in self._rows:
                targets[self._rows[speaker] - 1, max(start - self._routed, 0) : stop - self._routed] = True
        self._speech += targets.sum(1)
        segment, self._pending = self._pending[:n], self._pending[n:]
        gains = np.stack([gate.push(t) for gate, t in zip(self._gates, targets, strict=True)])
        rows = np.concatenate([segment[None], gains * segment[None]])
        self._routed = end
        while len(self._arrivals) > 1 and self._arrivals[0][0] < end:
            self._arrivals.popleft()  # the first entry left holds the span's last sample
        self._lag_ms.append(1000 * (time.monotonic() - self._arrivals[0][1]))
        self._on_loop(self._deliver, rows)

    def _drain(self) -> None:
        """Pad with a pre-buffer of silence (a short stream still starts playing), wait until it has played."""
        pad = np.zeros((len(self.inputs), AUDIO_SAMPLE_RATE * MIX_JITTER_MS // 1000), np.float32)
        try:
            buffered_ms = asyncio.run_coroutine_threadsafe(self._deliver_last(pad), self._loop).result(5.0)
        except (RuntimeError, TimeoutError):  # the loop is gone or stuck: nobody is listening anyway
            return
        time.sleep(min(DRAIN_MAX_S, buffered_ms / 1000 + 2 * JITTER_MS / 1000))

    def _on_loop(self, fn, *args) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop was closed (the server stopped): no room pulls these inputs now
            if fn is self._close_inputs:
                fn(*args)


def open_mix_input(room, session: str, mix: MixDiarizer, loop: asyncio.AbstractEventLoop) -> MixInput:
    """Open a mixed session's inputs on `room` (the whole mix, then one per speaker) and start its worker.

    Speaker k is bound to character k (a room with fewer characters leaves it unbound); raises the room's
    ValueError (e.g. its input limit) with nothing left open.
    """
    opened: list[AudioInput] = []
    n = len(room.characters)

    def add(key: str, character: int | None, audible: bool) -> AudioInput:
        audio_input = room.open_input(
            key, 0, jitter_ms=MIX_JITTER_MS, audible=audible, skip_quiet=False
        )  # skip_quiet off: every input of one mix is time-scaled alike, so they stay in step
        opened.append(audio_input)
        room.bind(key, character)
        return audio_input

    try:
        whole = add(session, None, audible=True)
        speakers = {k: add(speaker_key(session, k), k if k < n else None, False) for k in mix.speakers}
    except ValueError:
        for audio_input in opened:
            audio_input.close()
        raise
    return MixInput(session, mix.new_stream(), whole, speakers, loop)
