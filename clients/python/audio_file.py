"""Audio for a WHIP speaker: any audio file read as 48 kHz mono, played in real time as a microphone would.

`load_audio` decodes a file with PyAV (WAV at any rate and sample format, or anything FFmpeg reads) and
resamples it to WebRTC's 48 kHz. `PacedAudioTrack` is an aiortc MediaStreamTrack that hands out 20 ms
frames on the wall clock, each when its last sample would have been captured, then silence (or stops).
It remembers when its first sample was "captured", so a benchmark knows when any sample was spoken.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from pathlib import Path

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from realtime.errors import BYAError
from realtime.media import WEBRTC_AUDIO_RATE

FRAME_MS = 20  # WebRTC's Opus packet time: what a browser's microphone track delivers
FRAME_SAMPLES = WEBRTC_AUDIO_RATE * FRAME_MS // 1000  # 960 samples at 48 kHz
MAX_FILE_SECONDS = 3600.0  # one hour of 48 kHz float32 is 690 MB: refuse more rather than exhaust memory


class AudioFileError(BYAError):
    """An audio file that is missing, not decodable, silent of any audio stream, or too long."""


def load_audio(path: str | Path) -> np.ndarray:
    """(S,) float32 mono samples in [-1, 1] at 48 kHz from any audio file PyAV/FFmpeg decodes."""
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"audio file {path} not found")
    chunks: list[np.ndarray] = []
    limit = int(MAX_FILE_SECONDS * WEBRTC_AUDIO_RATE)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioFileError(f"{path}: has no audio stream")
            stream = container.streams.audio[0]
            # keep the channels through the resampler and average them after: FFmpeg's own downmix adds
            # identical channels at -3 dB each, making a stereo recording of a mono voice 41% louder
            resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=WEBRTC_AUDIO_RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().mean(0))
                if sum(len(c) for c in chunks) > limit:
                    raise AudioFileError(f"{path}: longer than {MAX_FILE_SECONDS:.0f} s")
            chunks.extend(out.to_ndarray().mean(0) for out in resampler.resample(None))
    except av.error.FFmpegError as exc:
        raise AudioFileError(f"{path}: cannot decode audio ({exc})") from exc
    if not chunks:
        raise AudioFileError(f"{path}: the audio stream holds no samples")
    return np.clip(np.concatenate(chunks), -1.0, 1.0).astype(np.float32)


class PacedAudioTrack(MediaStreamTrack):
    """Plays (S,) float32 48 kHz samples as 20 ms s16 mono frames in real time, like a microphone.

    Frame k leaves when its last sample would have been captured: start_time + (k + 1) x 20 ms.
    After the samples it sends silence (`then="silence"`, a microphone left open) or ends (`"end"`).
    """

    kind = "audio"

    def __init__(self, samples: np.ndarray, then: str = "silence") -> None:
        super().__init__()
        samples = np.asarray(samples)
        if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.floating):
            raise AudioFileError(f"samples must be (S,) floating-point, got {samples.shape} {samples.dtype}")
        if then not in ("silence", "end"):
            raise ValueError(f"then must be 'silence' or 'end', got {then!r}")
        self.pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
        self.then = then
        self.sent = 0  # samples handed to the sender so far
        self.start_time: float | None = None  # time.monotonic() at which sample 0 was "captured"
        self.late_frames = 0  # frames the sender asked for after they were due (a busy event loop)

    @property
    def done(self) -> bool:
        """All samples have been sent."""
        return self.sent >= len(self.pcm)

    def capture_time(self, sample: int) -> float:
        """When sample `sample` (48 kHz index) was "spoken" on time.monotonic's clock."""
        if self.start_time is None:
            raise RuntimeError("the track has not started yet")
        return self.start_time + sample / WEBRTC_AUDIO_RATE

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self.start_time is None:
            self.start_time = time.monotonic()
        if self.then == "end" and self.done:
            self.stop()
            raise MediaStreamError
        due = self.capture_time(self.sent + FRAME_SAMPLES)
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -FRAME_MS / 1000:
            self.late_frames += 1
        chunk = self.pcm[self.sent : self.sent + FRAME_SAMPLES]
        if len(chunk) < FRAME_SAMPLES:
            chunk = np.pad(chunk, (0, FRAME_SAMPLES - len(chunk)))
        frame = av.AudioFrame.from_ndarray(chunk[None], format="s16", layout="mono")
        frame.sample_rate, frame.pts = WEBRTC_AUDIO_RATE, self.sent
        frame.time_base = fractions.Fraction(1, WEBRTC_AUDIO_RATE)
        self.sent += FRAME_SAMPLES
        return frame
