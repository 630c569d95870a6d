"""Audio encoder: each video frame's log-mel window -> a few audio tokens (the router's keys and values).

Convolutions over the window's mel frames, then pooling to `audio_tokens` tokens. It sees exactly the
window `GeneratorConfig` describes (past context, the frame, a small lookahead), and is trained jointly.
"""

from __future__ import annotations

import torch
from torch import nn

from realtime.model.config import GeneratorConfig


class AudioEncoder(nn.Module):
    """(B, S, T, window, n_mels) log-mel windows -> (B, S, T, audio_tokens, width) tokens."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        c = cfg.audio_width
        self.cfg = cfg
        self.convs = nn.Sequential(
            nn.Conv1d(cfg.n_mels, c, 3, padding=1),
            nn.SiLU(),
            nn.Conv1d(c, c, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv1d(c, c, 3, stride=2, padding=1),
            nn.SiLU(),
        )
        self.pool = nn.AdaptiveAvgPool1d(cfg.audio_tokens)
        self.out = nn.Linear(c, cfg.width)
        self.slot = nn.Parameter(torch.zeros(cfg.audio_tokens, cfg.width))  # which token of the frame
        # mel statistics of speech-and-silence; normalises inputs to ~unit scale without a data pass
        self.register_buffer("mel_mean", torch.tensor(-6.0))
        self.register_buffer("mel_std", torch.tensor(4.0))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.ndim != 5 or mel.shape[-2:] != (self.cfg.audio_window, self.cfg.n_mels):
            raise ValueError(
                f"audio windows must be (B, S, T, {self.cfg.audio_window}, {self.cfg.n_mels}), got {tuple(mel.shape)}"
            )
        b, s, t, w, m = mel.shape
        x = ((mel - self.mel_mean) / self.mel_std).reshape(b * s * t, w, m).transpose(1, 2)  # (BST, mels, w)
        x = self.pool(self.convs(x)).transpose(1, 2)  # (BST, A, c)
        return (self.out(x) + self.slot).reshape(b, s, t, self.cfg.audio_tokens, -1)
