"""Where the listeners and the speakers of a chunk are on the latent grid, from the routing masks.

A session replaces the listeners' region with the voiceless pass (listener isolation) and extrapolates
the speakers' region away from it (audio guidance); both regions come from the same masks, pooled to the
latent grid and grown by one cell. See docs/streaming.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def listener_region(masks: torch.Tensor, listeners: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(1, T, 1, h, w) in [0, 1]: where the listeners are on the latent grid, grown by one latent pixel
    (a head's edge moves too) but never into a speaking character's own region.

    masks: (1, T, K, M, M) the routing masks; listeners: (K,) bool."""
    b, t, k, m, _ = masks.shape
    grid = F.adaptive_avg_pool2d(masks.float().reshape(b * t, k, m, m), size)  # (BT, K, h, w)
    sel = listeners.to(grid.device, grid.dtype)[None, :, None, None]
    quiet = (grid * sel).sum(1, keepdim=True).clamp(max=1.0)
    speaking = (grid * (1.0 - sel)).sum(1, keepdim=True).clamp(max=1.0)
    grown = F.max_pool2d(quiet, 3, stride=1, padding=1)
    region = torch.minimum(grown, 1.0 - speaking).clamp(min=0.0)
    return region.reshape(b, t, 1, *size)


def speaker_region(masks: torch.Tensor, listeners: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(1, T, 1, h, w) in [0, 1]: where the characters with a sounding stream are on the latent grid, grown
    by one latent pixel (the jaw and the cheeks move with the mouth). Audio guidance acts here only, so the
    background and the listeners are never extrapolated.

    masks: (1, T, K, M, M) the routing masks; listeners: (K,) bool (absent characters have empty masks)."""
    b, t, k, m, _ = masks.shape
    grid = F.adaptive_avg_pool2d(masks.float().reshape(b * t, k, m, m), size)  # (BT, K, h, w)
    sel = (~listeners).to(grid.device, grid.dtype)[None, :, None, None]
    speaking = (grid * sel).sum(1, keepdim=True).clamp(max=1.0)
    return F.max_pool2d(speaking, 3, stride=1, padding=1).reshape(b, t, 1, *size)
