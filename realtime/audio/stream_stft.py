"""A streaming short-time Fourier transform: blocks of 16 kHz audio in, completed spectrogram frames out.

Frames follow the media clock like `realtime.model.audio_features`: frame j covers samples [j*hop, j*hop+n_fft),
so with hop = 160 the 40 ms video frame t owns spectrogram frames 4t..4t+3. The speaker encoder
(`realtime.audio.speaker_encoder`) and the overlap detector (`realtime.audio.voice_dictionary`) each run one.
"""

from __future__ import annotations

import numpy as np


class StreamingSTFT:
    """Power or magnitude spectrogram of a stream, computed once per frame as audio arrives."""

    def __init__(self, n_fft: int, hop: int, power: float = 2.0) -> None:
        self.n_fft, self.hop, self.power = n_fft, hop, power
        self.window = np.hanning(n_fft + 1)[:-1]  # periodic Hann, as librosa and torch.stft use
        self._buf = np.zeros(0, np.float64)  # samples from frame index `frames` on
        self.frames = 0  # frames emitted so far

    def push(self, audio: np.ndarray) -> np.ndarray:
        """(frames, n_fft//2 + 1) float32: every frame that the new audio completes."""
        self._buf = np.concatenate([self._buf, np.asarray(audio, np.float64)])
        n = 0 if len(self._buf) < self.n_fft else 1 + (len(self._buf) - self.n_fft) // self.hop
        if n == 0:
            return np.zeros((0, self.n_fft // 2 + 1), np.float32)
        idx = np.arange(self.n_fft)[None, :] + self.hop * np.arange(n)[:, None]  # (n, n_fft)
        spec = np.abs(np.fft.rfft(self._buf[idx] * self.window, axis=1)) ** self.power
        self._buf = self._buf[n * self.hop :]
        self.frames += n
        return spec.astype(np.float32)
