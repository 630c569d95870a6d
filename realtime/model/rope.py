"""3D rotary positions (frame, row, column) for the generator's attention.

The head dimension is split into three parts, one rotated by each axis. Positions are relative to the
window (reference frame at time 0, the generated chunk always at the same times), so a stream of any
length sees the positions it was trained on.
"""

from __future__ import annotations

import torch

ROPE_BASE = 100.0  # a short base: positions never exceed a few dozen frames or tokens per side


def axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Even split of head_dim over (time, row, column); time takes the remainder."""
    each = (head_dim // 3) // 2 * 2
    return head_dim - 2 * each, each, each


def rope_angles(pos: torch.Tensor, head_dim: int) -> torch.Tensor:
    """pos (L, 3) float positions -> (L, head_dim // 2) rotation angles."""
    parts = []
    for axis, dim in enumerate(axis_dims(head_dim)):
        if dim == 0:
            continue
        freqs = ROPE_BASE ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)
        parts.append(pos[:, axis : axis + 1].float() * freqs[None])
    return torch.cat(parts, dim=-1)


def apply_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate pairs of x (B, H, L, D) by angles (L, D/2)."""
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2)


def frame_positions(times: torch.Tensor, grid: int) -> torch.Tensor:
    """(T,) frame times -> (T * grid * grid, 3) positions (time, row, column), row-major per frame."""
    r = torch.arange(grid, dtype=torch.float32)
    rows, cols = torch.meshgrid(r, r, indexing="ij")
    t = times.float()[:, None].expand(-1, grid * grid)
    return torch.stack(
        (t.reshape(-1), rows.reshape(-1).repeat(len(times)), cols.reshape(-1).repeat(len(times))), -1
    )
