"""The Embedding Router: per frame, per token, a soft mask for every character (1-4), and its refinement.

Identity tokens are pooled from each character's region of the reference frame (no left/right slots:
permuting characters permutes the masks). Each video token asks, for each of its mask_sub x mask_sub
sub-cells, how much it belongs to each identity. The masks gate each character's audio cross-attention.
Also here: masks from outside (boxes) as the alternative routing source, and inference-time refinement.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from realtime.model.config import GeneratorConfig

N_FOURIER = 8  # frequencies for a character's centroid in the reference frame
PRIOR_GAIN_INIT = 3.0  # sigmoid(+-3) = 0.95 / 0.05: the reference mask, before training moves it


def centroid_features(masks: torch.Tensor) -> torch.Tensor:
    """(B, K, M, M) masks -> (B, K, 4 * N_FOURIER) Fourier features of each mask's centroid in [0, 1]^2."""
    b, k, m, _ = masks.shape
    coords = (torch.arange(m, dtype=masks.dtype, device=masks.device) + 0.5) / m
    mass = masks.sum((-1, -2)).clamp_min(1e-6)
    cy = (masks.sum(-1) * coords).sum(-1) / mass
    cx = (masks.sum(-2) * coords).sum(-1) / mass
    freqs = math.pi * 2.0 ** torch.arange(N_FOURIER, dtype=masks.dtype, device=masks.device)
    ang = torch.stack((cx, cy), -1)[..., None] * freqs  # (B, K, 2, NF)
    return torch.cat((ang.sin(), ang.cos()), -1).reshape(b, k, -1)


class RouterHead(nn.Module):
    """Mask logits of every token sub-cell for every character, from token and identity features."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, subs = cfg.router_dim, cfg.mask_sub**2
        self.norm_tok = nn.LayerNorm(cfg.width)
        self.norm_id = nn.LayerNorm(cfg.width)
        self.query = nn.Linear(cfg.width, subs * d)
        self.ident = nn.Linear(cfg.width, d)
        self.where = nn.Linear(4 * N_FOURIER, d)
        self.bias = nn.Parameter(torch.tensor(-2.0))  # most of a frame is background
        # logit +-gain where the reference mask is 1 / 0: starts the masks at the reference (cfg.router_prior)
        self.prior_gain = nn.Parameter(torch.tensor(PRIOR_GAIN_INIT)) if cfg.router_prior else None

    def forward(
        self, tokens: torch.Tensor, ref_tokens: torch.Tensor, ref_masks: torch.Tensor
    ) -> torch.Tensor:
        """tokens (B, T*F, W), ref_tokens (B, F, W), ref_masks (B, K, M, M) -> logits (B, T, K, M, M)."""
        cfg = self.cfg
        b, l, _ = tokens.shape
        g, s = cfg.grid, cfg.mask_sub
        t = l // (g * g)
        w_tok = F.avg_pool2d(ref_masks, s).flatten(2)  # (B, K, F): each character's share of a ref token
        pooled = torch.einsum("bkf,bfw->bkw", w_tok, self.norm_id(ref_tokens)) / w_tok.sum(
            -1, keepdim=True
        ).clamp_min(1e-3)
        ident = self.ident(pooled) + self.where(centroid_features(ref_masks))  # (B, K, d)
        q = self.query(self.norm_tok(tokens)).reshape(b, l, s * s, -1)
        logits = torch.einsum("blsd,bkd->bkls", q, ident) / math.sqrt(q.shape[-1]) + self.bias
        # (B, K, T*g*g, s*s) -> (B, T, K, g*s, g*s)
        logits = logits.reshape(b, -1, t, g, g, s, s).permute(0, 2, 1, 3, 5, 4, 6)
        logits = logits.reshape(b, t, -1, g * s, g * s)
        if self.prior_gain is not None:
            logits = logits + self.prior_gain * (2.0 * ref_masks[:, None] - 1.0)
        absent = ref_masks.flatten(2).amax(-1) <= 0  # (B, K): padded slots never receive a mask
        return logits.masked_fill(absent[:, None, :, None, None], -30.0)


def token_weights(masks: torch.Tensor, sub: int) -> torch.Tensor:
    """(B, T, K, M, M) masks -> (B, T*F, K): each token's mean mask, the router weights of the kernel."""
    b, t, k, m, _ = masks.shape
    pooled = F.avg_pool2d(masks.reshape(b * t, k, m, m), sub)  # (BT, K, g, g)
    return pooled.reshape(b, t, k, -1).permute(0, 1, 3, 2).reshape(b, -1, k)


def boxes_to_masks(boxes: np.ndarray, frame_size: int, mask_size: int) -> np.ndarray:
    """(..., K, 4) pixel boxes x0, y0, x1, y1 -> (..., K, M, M) float32 masks (area coverage per cell).

    The external routing source: boxes from a tracker, a face detector or the scene description.
    """
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.shape[-1] != 4:
        raise ValueError(f"boxes must end in 4 coordinates (x0, y0, x1, y1), got shape {boxes.shape}")
    cell = frame_size / mask_size
    edges = np.arange(mask_size, dtype=np.float32) * cell

    def cover(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:  # (..., M) fraction of each cell inside [lo, hi)
        return np.clip(
            (np.minimum(hi[..., None], edges + cell) - np.maximum(lo[..., None], edges)) / cell, 0, 1
        )

    cx = cover(boxes[..., 0], boxes[..., 2])
    cy = cover(boxes[..., 1], boxes[..., 3])
    return (cy[..., :, None] * cx[..., None, :]).astype(np.float32)


class MaskRefiner:
    """Inference-time refinement of a stream of router masks (per session; frames arrive in order).

    Drops low-confidence values, smooths over time with hysteresis (a cell switches on above `on` and
    off below `off`, so a mask does not flicker at its edge), and keeps one connected region per character.
    """

    def __init__(self, drop: float = 0.2, on: float = 0.6, off: float = 0.4, smooth: float = 0.5) -> None:
        if not 0 <= off <= on <= 1 or not 0 <= drop <= 1 or not 0 <= smooth < 1:
            raise ValueError(
                f"need 0 <= off <= on <= 1, drop in [0, 1], smooth in [0, 1); got {drop, on, off, smooth}"
            )
        self.drop, self.on, self.off, self.smooth = drop, on, off, smooth
        self.state: np.ndarray | None = None  # (K, M, M) hysteresis state
        self.ema: np.ndarray | None = None

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        """(K, M, M) soft masks of one frame -> refined (K, M, M) masks in [0, 1]."""
        m = np.where(masks < self.drop, 0.0, masks).astype(np.float32)
        self.ema = m if self.ema is None else self.smooth * self.ema + (1 - self.smooth) * m
        threshold = self.on if self.state is None else np.where(self.state, self.off, self.on)
        on = self.ema > threshold
        out = np.zeros_like(m)
        for k in range(m.shape[0]):
            labels, n = ndimage.label(on[k])
            if n > 1:  # keep the region holding most of the mask's mass
                mass = ndimage.sum(self.ema[k], labels, index=np.arange(1, n + 1))
                on[k] = labels == 1 + int(np.argmax(mass))
            out[k] = np.where(on[k], np.maximum(self.ema[k], 0.5), 0.0)
        self.state = on
        return out
