"""An audio input of a live room (one WHIP peer, a microphone, a file): validated PCM in, 16 kHz out.

The room's handle on one stream and its place in the binding table. `write` takes mono int16 or float32
PCM at any supported rate from any thread and never blocks; the room's clock `pull`s exactly the samples
each 20 ms tick covers. Reordering, resampling, the jitter buffer and voice activity are the audio front
end's (`realtime.audio.ingest.StreamIngest`, one per input, made at the first write's rate).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from realtime.audio.ingest import MAX_BLOCK_MS, SUPPORTED_RATES, StreamIngest
from realtime.errors import AudioInputError

MAX_WRITE_S = 10.0  # one write: a WebRTC packet is 20 ms, a text-to-speech burst a few seconds
BACKLOG_MS = 10_000  # writes faster than real time play at real-time pace; past 10 s the oldest drop
JITTER_MS = 20  # the front end's starting pre-buffer: one 20 ms packet (no click on loopback or a LAN)
MAX_JITTER_MS = 200  # ... grown after each late packet up to this (audio_ingest: adaptive target)

__all__ = ["SUPPORTED_RATES", "AudioInput"]


class AudioInput:
    """One audio stream into a room, bound to a character in the room's binding table."""

    def __init__(
        self,
        key: str,
        character: int | None,
        on_close: Callable[[str], None],
        jitter_ms: int = JITTER_MS,
        audible: bool = True,  # part of the room's output mix (False: it only drives its character)
        skip_quiet: bool = True,  # StreamIngest's fast drain through silence (off: stays in step with others)
    ) -> None:
        self.key = key
        self.character = character  # the room's binding table entry; change it through Room.bind
        self.closed = False
        self.jitter_ms = jitter_ms
        self.audible = audible
        self.skip_quiet = skip_quiet
        self._on_close = on_close
        self._lock = threading.Lock()  # write() may run on a network thread, pull() runs on the room clock
        self._ingest: StreamIngest | None = None
        self._counts = {"underruns": 0, "dropped": 0}  # of the streams replaced by a change of rate

    def write(self, pcm: np.ndarray, sample_rate: int) -> None:
        """Append mono int16 or float32 samples at sample_rate (one of SUPPORTED_RATES); never blocks."""
        if self.closed:
            raise AudioInputError(f"input {self.key!r} is closed")
        x = _mono(pcm)
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
            raise AudioInputError(
                f"sample_rate must be an integer in {SUPPORTED_RATES} Hz, got {sample_rate!r}"
            )
        if sample_rate in SUPPORTED_RATES and len(x) > MAX_WRITE_S * sample_rate:  # before a rate change
            raise AudioInputError(
                f"one write holds at most {MAX_WRITE_S:.0f} s of audio, got {len(x) / sample_rate:.1f} s"
            )
        with self._lock:
            if self._ingest is None or sample_rate != self._ingest.in_rate:
                ingest = StreamIngest(
                    sample_rate,
                    jitter_ms=self.jitter_ms,
                    capacity_ms=BACKLOG_MS,
                    max_jitter_ms=max(MAX_JITTER_MS, self.jitter_ms),
                    skip_quiet=self.skip_quiet,
                )
                if self._ingest is not None:  # a new rate is a new stream: what was queued is dropped
                    old = self._ingest.stats()
                    self._counts["underruns"] += old["underruns"]
                    self._counts["dropped"] += old["dropped"] + round(old["buffered_ms"] * 16)
                self._ingest = ingest
            block = sample_rate * MAX_BLOCK_MS // 1000
            for start in range(0, len(x), block):
                self._ingest.push(x[start : start + block])

    def pull(self, n: int) -> np.ndarray:
        """(n,) float32 16 kHz samples for the room's clock; silence where the input has none."""
        with self._lock:
            return np.zeros(n, np.float32) if self._ingest is None else self._ingest.pull(n)

    @property
    def speaking(self) -> bool:
        """Voice activity of the audio the room pulled last (with the front end's hangover)."""
        with self._lock:
            return self._ingest is not None and self._ingest.speaking

    def stats(self) -> dict:
        """The binding and the front end's counters (underruns: pulls that ran dry; dropped: samples)."""
        with self._lock:
            s = self._ingest.stats() if self._ingest is not None else {"underruns": 0, "dropped": 0}
            return {
                "character": self.character,
                "speaking": self._ingest is not None and self._ingest.speaking,
                "rate": self._ingest.in_rate if self._ingest is not None else None,
                "underruns": s["underruns"] + self._counts["underruns"],
                "dropped_samples": s["dropped"] + self._counts["dropped"],
                "buffered_ms": round(s.get("buffered_ms", 0.0), 1),
                "target_ms": round(s.get("target_ms", self.jitter_ms), 1),
            }

    def close(self) -> None:
        """Leave the room: the character falls silent and idles; what was queued is discarded."""
        if not self.closed:
            self.closed = True
            with self._lock:
                self._ingest = None
            self._on_close(self.key)


def _mono(pcm: np.ndarray) -> np.ndarray:
    """One channel of int16 or float32/float64 PCM as a 1-D int16 or float32 array; AudioInputError else."""
    if not isinstance(pcm, np.ndarray):
        raise AudioInputError(f"pcm must be a numpy array, got {type(pcm).__name__}")
    if pcm.ndim == 2 and 1 in pcm.shape:
        pcm = pcm.reshape(-1)
    if pcm.ndim != 1:
        raise AudioInputError(f"pcm must be mono: a 1-D array or a single channel, got shape {pcm.shape}")
    if pcm.dtype == np.float64:
        if not np.isfinite(pcm).all():
            raise AudioInputError("pcm holds NaN or infinite samples")
        if np.abs(pcm).max(initial=0.0) > np.finfo(np.float32).max:  # would become inf as float32
            raise AudioInputError("pcm holds samples beyond the float32 range (PCM floats are in [-1, 1])")
        return pcm.astype(np.float32)
    if pcm.dtype not in (np.int16, np.float32):
        raise AudioInputError(f"pcm must be int16 or float32 samples, got {pcm.dtype}")
    return np.ascontiguousarray(pcm)
