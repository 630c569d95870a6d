"""Log-mel features and per-frame windows: alignment to the media clock, silence padding, lookahead."""

from __future__ import annotations

import numpy as np
import torch

from realtime.media import AUDIO_SAMPLE_RATE, SAMPLES_PER_FRAME
from realtime.model.audio_features import HOP, SILENCE_DB, frame_windows, log_mel


def test_log_mel_shape_and_silence() -> None:
    x = np.zeros((2, AUDIO_SAMPLE_RATE), np.float32)
    m = log_mel(x, 40)
    assert m.shape == (2, AUDIO_SAMPLE_RATE // HOP, 40)
    assert torch.allclose(m, torch.full_like(m, SILENCE_DB), atol=1e-3)


def test_a_tone_lands_in_its_own_video_frame() -> None:
    x = np.zeros(SAMPLES_PER_FRAME * 10, np.float32)
    t = np.arange(SAMPLES_PER_FRAME) / AUDIO_SAMPLE_RATE
    x[5 * SAMPLES_PER_FRAME : 6 * SAMPLES_PER_FRAME] = np.sin(2 * np.pi * 1000 * t)  # video frame 5 only
    m = log_mel(x, 40)
    w = frame_windows(m, 0, 10, past_ms=0, lookahead_ms=0)  # (10, 4, 40): each frame's own mel frames
    energy = w.amax(dim=(1, 2))
    assert int(energy.argmax()) == 5
    assert energy[3] < SILENCE_DB + 1  # two frames before: silent


def test_windows_pad_with_silence_and_see_lookahead() -> None:
    m = torch.arange(40, dtype=torch.float32)[:, None].expand(40, 8)  # 40 mel frames = 10 video frames
    w = frame_windows(m, 0, 2, past_ms=80, lookahead_ms=40)
    assert w.shape == (2, 8 + 4 + 4, 8)
    assert (w[0, :8] == SILENCE_DB).all()  # before the stream started
    assert w[0, 8, 0] == 0 and w[0, -1, 0] == 7  # own frames 0..3, lookahead 4..7
    end = frame_windows(m, 9, 1, past_ms=0, lookahead_ms=40)
    assert (end[0, 4:] == SILENCE_DB).all()  # after the end
