"""Log-mel features and their per-video-frame windows: the audio side of the model's input.

Mel frames are 25 ms long every 10 ms, aligned to the media clock: mel frame j covers samples
[j*160, j*160+400), so video frame t (samples [640t, 640t+640)) owns mel frames 4t..4t+3. A frame's window
adds `audio_past_ms` before and `audio_lookahead_ms` after; the lookahead is latency the engine pays.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import torch

from realtime.media import AUDIO_SAMPLE_RATE, FRAME_MS

N_FFT = 400  # samples (25 ms at 16 kHz)
HOP = 160  # samples (10 ms): 4 mel frames per 40 ms video frame
SILENCE_DB = math.log(1e-5)  # the log-mel value of silence; windows are padded with it
F_MIN, F_MAX = 60.0, 7600.0  # Hz; speech band


@cache
def mel_filterbank(n_mels: int) -> torch.Tensor:
    """(N_FFT//2+1, n_mels) triangular HTK-style mel filters."""

    def to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    edges = 700.0 * (
        10 ** (np.linspace(to_mel(np.array(F_MIN)), to_mel(np.array(F_MAX)), n_mels + 2) / 2595.0) - 1
    )
    freqs = np.linspace(0, AUDIO_SAMPLE_RATE / 2, N_FFT // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / (mid - lo)
    down = (hi - freqs[None]) / (hi - mid)
    return torch.from_numpy(np.maximum(0.0, np.minimum(up, down)).T.astype(np.float32))


def log_mel(audio: torch.Tensor | np.ndarray, n_mels: int) -> torch.Tensor:
    """(..., S) audio at 16 kHz -> (..., S // HOP, n_mels) log-mel; the tail frames see zero padding."""
    x = torch.as_tensor(audio, dtype=torch.float32)
    lead = x.shape[:-1]
    x = x.reshape(-1, x.shape[-1])
    n_frames = x.shape[-1] // HOP
    x = torch.nn.functional.pad(x, (0, N_FFT))
    spec = torch.stft(x, N_FFT, HOP, window=torch.hann_window(N_FFT), center=False, return_complex=True)[
        ..., :n_frames
    ]  # (B, F, n_frames)
    power = spec.real**2 + spec.imag**2
    mel = power.transpose(1, 2) @ mel_filterbank(n_mels)
    return torch.log(mel + 1e-5).reshape(*lead, n_frames, n_mels)


def frame_windows(
    mel: torch.Tensor, first_frame: int, frames: int, past_ms: int, lookahead_ms: int
) -> torch.Tensor:
    """(..., M, n_mels) log-mel -> (..., frames, window, n_mels): each video frame's window of mel frames.

    Windows reaching before mel frame 0 or after the end are padded with silence.
    """
    per = FRAME_MS // 10
    past, look = past_ms // 10, lookahead_ms // 10
    window = past + per + look
    start = first_frame * per - past
    stop = (first_frame + frames) * per + look
    m = mel.shape[-2]
    left, right = max(0, -start), max(0, stop - m)
    seg = mel[..., max(start, 0) : min(stop, m), :]
    if left or right:
        seg = torch.nn.functional.pad(seg, (0, 0, left, right), value=SILENCE_DB)
    idx = torch.arange(frames)[:, None] * per + torch.arange(window)[None]  # (frames, window)
    return seg[..., idx, :]
