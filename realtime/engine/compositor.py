"""The compositor: puts a generated frame on its scene's background, and maps router masks to boxes there.

A world scene generates the whole picture, so its region is the whole canvas and the frame passes
through untouched. A photo scene generates only the square region around its faces; the frame is
scaled to that region and pasted on the full photo. Boxes come back in canvas pixels either way.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

Region = tuple[int, int, int, int]  # x0, y0, x1, y1 in canvas pixels; x1, y1 exclusive


def composite(background: np.ndarray, frame: np.ndarray, region: Region) -> np.ndarray:
    """(H, W, 3) uint8 canvas with the (S, S, 3) uint8 frame scaled into region (the frame itself when
    the region is the whole canvas at the frame's size)."""
    x0, y0, x1, y1 = region
    h, w = y1 - y0, x1 - x0
    if frame.shape == background.shape:  # the whole canvas already (a rig model renders the picture itself)
        return frame
    if frame.shape[:2] != (h, w):
        t = torch.from_numpy(np.array(frame, np.float32)).permute(2, 0, 1)[None]
        t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        frame = t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    out = background.copy()
    bh, bw = background.shape[:2]  # a picture's square may reach past the canvas: paste what lies on it
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, bw), min(y1, bh)
    out[cy0:cy1, cx0:cx1] = frame[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    return out


def mask_boxes(masks: np.ndarray, region: Region) -> np.ndarray:
    """(N, M, M) refined router masks of one frame -> (N, 4) float32 boxes x0, y0, x1, y1 of each mask's
    support in canvas pixels; NaN rows where a character's mask is empty."""
    n, m = masks.shape[0], masks.shape[-1]
    x0, y0, x1, y1 = region
    sx, sy = (x1 - x0) / m, (y1 - y0) / m
    boxes = np.full((n, 4), np.nan, np.float32)
    for k in range(n):
        rows = np.flatnonzero(masks[k].any(axis=1))
        cols = np.flatnonzero(masks[k].any(axis=0))
        if len(rows):
            boxes[k] = (
                x0 + cols[0] * sx,
                y0 + rows[0] * sy,
                x0 + (cols[-1] + 1) * sx,
                y0 + (rows[-1] + 1) * sy,
            )
    return boxes
