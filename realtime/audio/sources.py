"""Where a stream's audio comes from when it is not a WebRTC track: a file, or a local microphone.

Both speak the same small interface (`AudioSource`): a native sample rate and an iterator of
(mono float32 block, pts in samples) that a caller pushes into a `realtime.audio.ingest.StreamIngest`.
Files decode through PyAV (WAV, MP3, Opus, the audio of a video...), paced in real time or as fast as
possible; the microphone runs through sounddevice/PortAudio, which these machines have no device for.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

from realtime.audio.ingest import SUPPORTED_RATES
from realtime.errors import AudioDeviceError, AudioInputError
from realtime.media import VAD_FRAME_MS, WEBRTC_AUDIO_RATE

BLOCK_MS = VAD_FRAME_MS  # 20 ms blocks: what a WebRTC sender delivers, so files and mics behave alike
MIC_QUEUE_BLOCKS = 50  # 1 s of microphone blocks; on overflow the oldest is dropped (live audio)


class AudioSource(Protocol):
    """A mono audio producer: its rate, and blocks of float32 samples with their position in samples."""

    sample_rate: int

    def blocks(self) -> Iterator[tuple[np.ndarray, int]]: ...

    def close(self) -> None: ...


def _check_block_ms(block_ms: int) -> int:
    if isinstance(block_ms, bool) or not isinstance(block_ms, int) or not 1 <= block_ms <= 1000:
        raise AudioInputError(f"block_ms must be an integer in [1, 1000], got {block_ms!r}")
    return block_ms


class FileSource:
    """Decode an audio (or video) file with PyAV into mono float32 blocks, in real time or at full speed."""

    def __init__(
        self, path: str | Path, block_ms: int = BLOCK_MS, realtime: bool = False, rate: int | None = None
    ) -> None:
        import av

        self.path = Path(path)
        self.block_ms = _check_block_ms(block_ms)
        self.realtime = realtime
        try:
            self._container = av.open(str(self.path))
        except (FileNotFoundError, av.error.FFmpegError) as e:
            raise AudioInputError(f"cannot read audio from {self.path}: {e}") from e
        if not self._container.streams.audio:
            self._container.close()
            raise AudioInputError(f"{self.path} has no audio stream")
        native = self._container.streams.audio[0].rate
        if rate is not None and rate not in SUPPORTED_RATES:
            raise AudioInputError(f"rate must be one of {SUPPORTED_RATES} Hz, got {rate!r}")
        # a file at an odd rate (22.05 kHz from espeak, 11.025 kHz...) is brought to WebRTC's 48 kHz
        self.sample_rate = rate or (native if native in SUPPORTED_RATES else WEBRTC_AUDIO_RATE)
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=self.sample_rate)

    def _decoded(self) -> Iterator[np.ndarray]:
        stream = self._container.streams.audio[0]
        for frame in self._container.decode(stream):
            for out in self._resampler.resample(frame):
                yield out.to_ndarray().reshape(-1).astype(np.float32)
        for out in self._resampler.resample(None):  # the resampler's tail
            yield out.to_ndarray().reshape(-1).astype(np.float32)

    def blocks(self) -> Iterator[tuple[np.ndarray, int]]:
        """(block, pts) of block_ms each (the last may be shorter); paced by the wall clock if realtime."""
        size = self.sample_rate * self.block_ms // 1000
        pending = np.zeros(0, np.float32)
        pts, start = 0, time.monotonic()
        for pcm in self._decoded():
            pending = np.concatenate([pending, pcm])
            while len(pending) >= size:
                yield from self._paced(pending[:size], pts, start)
                pending, pts = pending[size:], pts + size
        if len(pending):
            yield from self._paced(pending, pts, start)
        self.close()

    def _paced(self, block: np.ndarray, pts: int, start: float) -> Iterator[tuple[np.ndarray, int]]:
        if self.realtime:  # a block is due when the wall clock reaches its position in the file
            delay = start + pts / self.sample_rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield block, pts

    def read_all(self) -> np.ndarray:
        """The whole file as one mono float32 array at sample_rate (ignores pacing)."""
        parts = list(self._decoded())
        self.close()
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def close(self) -> None:
        self._container.close()


class MicrophoneSource:
    """A local input device through sounddevice; blocks arrive from PortAudio's thread via a bounded queue."""

    def __init__(
        self, rate: int = WEBRTC_AUDIO_RATE, block_ms: int = BLOCK_MS, device: int | str | None = None
    ):
        if rate not in SUPPORTED_RATES:
            raise AudioInputError(f"rate must be one of {SUPPORTED_RATES} Hz, got {rate!r}")
        self.sample_rate, self.block_ms = rate, _check_block_ms(block_ms)
        try:
            import sounddevice as sd
        except (ImportError, OSError) as e:  # OSError: the PortAudio library itself is missing
            raise AudioDeviceError(f"no audio input: sounddevice/PortAudio unavailable ({e})") from e
        try:
            sd.check_input_settings(device=device, channels=1, dtype="float32", samplerate=rate)
        except Exception as e:  # PortAudioError / ValueError: no such device or it cannot do this format
            what = "default input" if device is None else f"input {device!r}"
            raise AudioDeviceError(f"no usable audio input device ({what} at {rate} Hz, mono): {e}") from e
        self._queue: queue.Queue[tuple[np.ndarray, int]] = queue.Queue(MIC_QUEUE_BLOCKS)
        self._captured = 0  # samples the device has delivered: a dropped block leaves a hole in pts
        self.dropped = 0  # blocks dropped because nobody read them in time
        self._stream = sd.InputStream(
            samplerate=rate,
            blocksize=rate * block_ms // 1000,
            device=device,
            channels=1,
            dtype="float32",
            callback=self._on_audio,
        )
        self._closed = False

    def _on_audio(self, indata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        item = (indata[:, 0].copy(), self._captured)
        self._captured += frames
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:  # overflow policy: drop the oldest block, keep the live edge
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def blocks(self) -> Iterator[tuple[np.ndarray, int]]:
        """(block, pts) as the device delivers them, until close(); pts counts samples since the start."""
        self._stream.start()
        while not self._closed:
            try:
                yield self._queue.get(timeout=0.1)
            except queue.Empty:
                continue

    def close(self) -> None:
        self._closed = True
        self._stream.stop()
        self._stream.close()
