"""Voice activity detection on 16 kHz audio in 20 ms frames, with three interchangeable backends.

"webrtc" (webrtcvad, from the webrtcvad-wheels package) is the default: tiny and fast. "silero" runs the
ONNX model that ships inside the silero-vad wheel through onnxruntime (stronger on noise; offline).
"none" is an energy threshold for tests and for clean synthetic audio. `VoiceActivity` frames any block
size into VAD_FRAME_MS frames and holds `speaking` for a short hangover, so a comma is not a silence.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

import numpy as np

from realtime.errors import AudioBackendError
from realtime.media import AUDIO_SAMPLE_RATE, VAD_FRAME_MS

VAD_BACKENDS = ("webrtc", "silero", "none")
FRAME_SAMPLES = AUDIO_SAMPLE_RATE * VAD_FRAME_MS // 1000  # 320 samples = 20 ms
HANGOVER_MS = 200  # speaking stays on this long after the last speech frame: bridges pauses between words
ENERGY_THRESHOLD_DBFS = -45.0  # "none": a frame louder than this is speech (the world speaks at -10..-25)
SILERO_CHUNK = 512  # samples at 16 kHz (32 ms): the only chunk size silero-vad v5+ accepts
SILERO_CONTEXT = 64  # samples of the previous chunk the model sees in front of each chunk
SILERO_THRESHOLD = 0.5  # speech probability above which a chunk is speech (silero's own default)


class FrameClassifier(Protocol):
    """One VAD backend: a 20 ms float32 frame at 16 kHz -> speech or not."""

    def __call__(self, frame: np.ndarray) -> bool: ...


class WebRtcVad:
    """webrtcvad on 20 ms int16 frames; aggressiveness 0 (keeps most) .. 3 (drops most)."""

    def __init__(self, aggressiveness: int = 2) -> None:
        import webrtcvad

        self._vad = webrtcvad.Vad(aggressiveness)

    def __call__(self, frame: np.ndarray) -> bool:
        pcm = (np.clip(frame, -1.0, 1.0) * 32767.0).astype(np.int16)
        return bool(self._vad.is_speech(pcm.tobytes(), AUDIO_SAMPLE_RATE))


class EnergyVad:
    """A frame is speech when its RMS level is above a threshold in dBFS."""

    def __init__(self, threshold_dbfs: float = ENERGY_THRESHOLD_DBFS) -> None:
        self.threshold = 10.0 ** (threshold_dbfs / 20.0)

    def __call__(self, frame: np.ndarray) -> bool:
        return bool(np.sqrt(np.mean(np.square(frame, dtype=np.float64))) > self.threshold)


def silero_model_path() -> Path:
    """The ONNX model inside the installed silero-vad package (found without importing it: no torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise AudioBackendError("vad='silero' needs the silero-vad package: pip install silero-vad")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.exists():
        raise AudioBackendError(f"silero-vad is installed but its model is missing: {path}")
    return path


class SileroVad:
    """silero-vad's ONNX model, stateful across frames; a 20 ms frame takes the latest 32 ms chunk's vote."""

    def __init__(self, threshold: float = SILERO_THRESHOLD) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = opts.intra_op_num_threads = 1  # 0.2 ms per chunk: threads cost more
        self._session = onnxruntime.InferenceSession(
            str(silero_model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.threshold = threshold
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros(SILERO_CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)
        self.probability = 0.0

    def __call__(self, frame: np.ndarray) -> bool:
        self._pending = np.concatenate([self._pending, frame.astype(np.float32)])
        while len(self._pending) >= SILERO_CHUNK:
            chunk, self._pending = self._pending[:SILERO_CHUNK], self._pending[SILERO_CHUNK:]
            x = np.concatenate([self._context, chunk])[None]  # (1, context + chunk)
            sr = np.array(AUDIO_SAMPLE_RATE, np.int64)
            out, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": sr})
            self._context = chunk[-SILERO_CONTEXT:]
            self.probability = float(out.reshape(-1)[0])
        return self.probability > self.threshold


def make_classifier(backend: str, aggressiveness: int = 2) -> FrameClassifier:
    """The frame classifier for a backend name ("webrtc" | "silero" | "none")."""
    if backend not in VAD_BACKENDS:
        raise AudioBackendError(f"unknown VAD backend {backend!r}; expected one of {VAD_BACKENDS}")
    if backend == "webrtc":
        if isinstance(aggressiveness, bool) or aggressiveness not in (0, 1, 2, 3):
            raise AudioBackendError(f"webrtc VAD aggressiveness must be 0, 1, 2 or 3, got {aggressiveness!r}")
        return WebRtcVad(aggressiveness)
    if backend == "silero":
        return SileroVad()
    return EnergyVad()


class VoiceActivity:
    """Frames 16 kHz audio of any block size into 20 ms VAD decisions and a `speaking` state with hangover."""

    def __init__(self, backend: str = "webrtc", aggressiveness: int = 2, hangover_ms: int = HANGOVER_MS):
        self.backend = backend
        self._classify = make_classifier(backend, aggressiveness)
        self._hangover = max(0, hangover_ms // VAD_FRAME_MS)  # frames
        self._pending = np.zeros(0, np.float32)
        self._since_speech = self._hangover + 1  # frames since the last speech frame
        self.frames = 0  # frames classified so far

    @property
    def speaking(self) -> bool:
        """Speech in the last frame, or within the hangover after it."""
        return self._since_speech <= self._hangover

    def process(self, audio: np.ndarray) -> np.ndarray:
        """Classify every 20 ms frame completed by `audio`; return their raw flags, (frames,) bool."""
        self._pending = np.concatenate([self._pending, np.asarray(audio, np.float32)])
        n = len(self._pending) // FRAME_SAMPLES
        flags = np.zeros(n, bool)
        for i in range(n):
            flags[i] = self._classify(self._pending[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
            self._since_speech = 0 if flags[i] else self._since_speech + 1
        self._pending = self._pending[n * FRAME_SAMPLES :]
        self.frames += n
        return flags
