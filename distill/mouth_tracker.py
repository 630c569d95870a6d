"""Find each character's mouth in the video being scored, not where the ground truth had it.

The world's characters drift and sway (a mouth moves by ~30 px over 8 s at 128 px); that motion is random
and not in the audio, so a generator cannot reproduce it, and reading a generated video at the ground
truth's mouth boxes reads cheeks and background. `track_mouths` follows each character's face through the
video by template matching: the template is the reference frame's face around the mouth box with the mouth
itself masked out (it opens and closes), matched by weighted SSD over a search window around the previous
position, then median-smoothed over time. The mouth box keeps its reference size.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

SEARCH_X = 0.35  # fraction of the frame width a mouth may move from its reference position
SEARCH_Y = 0.12  # fraction of the frame height
SMOOTH_FRAMES = 5  # median filter over the per-frame positions


def _template(reference: np.ndarray, box: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Face patch around a mouth box (the mouth masked out): (patch, weight, (y0, x0) of the patch)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    px0, px1 = int(max(0, x0 - 0.6 * w)), int(min(size, x1 + 0.6 * w))
    py0, py1 = int(max(0, y0 - 2.0 * h)), int(min(size, y1 + 0.6 * h))
    patch = reference[py0:py1, px0:px1].astype(np.float32) / 255.0
    weight = np.ones(patch.shape[:2], np.float32)
    weight[int(y0) - py0 : int(np.ceil(y1)) - py0, int(x0) - px0 : int(np.ceil(x1)) - px0] = 0.0
    return patch, weight, (py0, px0)


def _best_shift(
    frame: np.ndarray, patch: np.ndarray, weight: np.ndarray, origin: tuple, reach: tuple
) -> tuple:
    """(dy, dx) of the lowest weighted SSD of `patch` in `frame` within +-reach of `origin`."""
    size_y, size_x = frame.shape[:2]
    ph, pw = patch.shape[:2]
    ry, rx = reach
    y0, x0 = max(0, origin[0] - ry), max(0, origin[1] - rx)
    y1, x1 = min(size_y, origin[0] + ph + ry), min(size_x, origin[1] + pw + rx)
    window = frame[y0:y1, x0:x1].astype(np.float32) / 255.0
    if window.shape[0] < ph or window.shape[1] < pw:
        return 0, 0
    ssd = np.zeros((window.shape[0] - ph + 1, window.shape[1] - pw + 1), np.float64)
    for c in range(3):
        img, tpl = window[..., c], patch[..., c]
        ssd += signal.correlate(img * img, weight, mode="valid", method="fft")
        ssd -= 2 * signal.correlate(img, weight * tpl, mode="valid", method="fft")
        ssd += float((weight * tpl * tpl).sum())
    iy, ix = np.unravel_index(int(np.argmin(ssd)), ssd.shape)
    return y0 + iy - origin[0], x0 + ix - origin[1]


def track_mouths(frames: np.ndarray, reference: np.ndarray, ref_boxes: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) frames, (H, W, 3) reference, (N, 4) mouth boxes in it -> (T, N, 4) tracked boxes."""
    frames = np.asarray(frames)
    t, size = frames.shape[0], frames.shape[1]
    n = ref_boxes.shape[0]
    reach = (max(2, int(SEARCH_Y * size)), max(2, int(SEARCH_X * size)))
    shifts = np.zeros((t, n, 2))
    for k in range(n):
        patch, weight, origin = _template(reference, ref_boxes[k], size)
        if patch.size == 0 or weight.sum() == 0:
            continue
        for i in range(t):
            shifts[i, k] = _best_shift(frames[i], patch, weight, origin, reach)
    if t >= SMOOTH_FRAMES:
        shifts = ndimage.median_filter(shifts, size=(SMOOTH_FRAMES, 1, 1), mode="nearest")
    out = np.repeat(ref_boxes[None].astype(np.float64), t, 0)
    out[..., [0, 2]] += shifts[..., 1:2]
    out[..., [1, 3]] += shifts[..., 0:1]
    return out.astype(np.float32)
