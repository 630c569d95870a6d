"""Find each character's mouth in the video being scored, not where the ground truth had it.

The world's characters drift and sway (a mouth moves by up to ~70 px over 8 s at 128 px); that motion is
random and not in the audio, so a generator cannot reproduce it, and reading a generated video at the
ground truth's mouth boxes reads cheeks and background. `track_mouths` follows each character's face
through the video by template matching: the template is the reference frame's face around the mouth box,
the mouth itself masked out (it opens and closes) and, given the reference masks, so is every pixel that
belongs to someone else (characters stand in front of each other). The first frame is searched over a wide
window around the reference position; every later frame over a small window around the previous
position, with a cost on moving, so a face is followed however far it walks and a face passing in front
does not carry the track away. Positions are then median-smoothed over time; boxes keep their size.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

SEARCH_X = 0.35  # fraction of the frame width the first frame's mouth may be from its reference position
SEARCH_Y = 0.12  # fraction of the frame height
STEP_REACH = 0.05  # fraction of the frame size a mouth may move between two frames (the world's: < 0.015)
# cost per squared pixel of frame-to-frame motion, in units of the template's mean squared error
# (colours in [0, 1]): a face matched 1 px off costs ~1e-2, another character's face ~5e-2, so 2 px of
# real motion (4e-3) is followed while a hidden face stays where it was instead of riding its occluder
STEP_COST = 1e-3
# fewer of a character's own pixels than this in its template (hidden behind others in the reference):
# match the whole patch; any more, even a sliver of hair, follows that character better than its occluder
OWN_MIN_PIXELS = 24
SMOOTH_FRAMES = 5  # median filter over the per-frame positions


def _template(
    reference: np.ndarray, box: np.ndarray, size: int, own: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Face patch around a mouth box (the mouth and other characters masked out): (patch, weight, (y0, x0))."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    px0, px1 = int(max(0, x0 - 0.6 * w)), int(min(size, x1 + 0.6 * w))
    py0, py1 = int(max(0, y0 - 2.0 * h)), int(min(size, y1 + 0.6 * h))
    patch = reference[py0:py1, px0:px1].astype(np.float32) / 255.0
    weight = np.ones(patch.shape[:2], np.float32)
    weight[int(y0) - py0 : int(np.ceil(y1)) - py0, int(x0) - px0 : int(np.ceil(x1)) - px0] = 0.0
    if own is not None:
        mine = weight * (own[py0:py1, px0:px1] > 0.5)
        if mine.sum() >= OWN_MIN_PIXELS:
            weight = mine
    return patch, weight, (py0, px0)


def _best_shift(
    frame: np.ndarray,
    patch: np.ndarray,
    weight: np.ndarray,
    origin: tuple,
    reach: tuple,
    step_cost: float = 0.0,
) -> tuple:
    """(dy, dx) of the lowest cost of `patch` in `frame` within +-reach of `origin`: weighted mean squared
    error plus `step_cost` per squared pixel of distance from `origin`."""
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
    cost = ssd / (3.0 * float(weight.sum()))
    if step_cost:
        dy = np.arange(ssd.shape[0]) + y0 - origin[0]
        dx = np.arange(ssd.shape[1]) + x0 - origin[1]
        cost = cost + step_cost * (dy[:, None] ** 2 + dx[None, :] ** 2)
    iy, ix = np.unravel_index(int(np.argmin(cost)), cost.shape)
    return y0 + iy - origin[0], x0 + ix - origin[1]


def track_mouths(
    frames: np.ndarray, reference: np.ndarray, ref_boxes: np.ndarray, ref_masks: np.ndarray | None = None
) -> np.ndarray:
    """(T, H, W, 3) frames, (H, W, 3) reference, (N, 4) mouth boxes in it -> (T, N, 4) tracked boxes.

    `ref_masks` (N, H, W): each character's visible region in the reference; its template then ignores
    pixels of the characters in front of it."""
    frames = np.asarray(frames)
    t, size = frames.shape[0], frames.shape[1]
    n = ref_boxes.shape[0]
    if ref_masks is not None and np.shape(ref_masks) != (n, *reference.shape[:2]):
        raise ValueError(
            f"ref_masks must be (N, H, W) = {(n, *reference.shape[:2])}, got {np.shape(ref_masks)}"
        )
    reach = (max(2, int(SEARCH_Y * size)), max(2, int(SEARCH_X * size)))
    step = max(2, round(STEP_REACH * size))
    shifts = np.zeros((t, n, 2))
    for k in range(n):
        own = None if ref_masks is None else np.asarray(ref_masks[k])
        patch, weight, origin = _template(reference, ref_boxes[k], size, own)
        if patch.size == 0 or weight.sum() == 0:
            continue
        prev = (0, 0)
        for i in range(t):
            at = (origin[0] + prev[0], origin[1] + prev[1])
            if i == 0:
                dy, dx = _best_shift(frames[i], patch, weight, at, reach)
            else:
                dy, dx = _best_shift(frames[i], patch, weight, at, (step, step), STEP_COST)
            prev = (prev[0] + dy, prev[1] + dx)
            shifts[i, k] = prev
    if t >= SMOOTH_FRAMES:
        shifts = ndimage.median_filter(shifts, size=(SMOOTH_FRAMES, 1, 1), mode="nearest")
    out = np.repeat(ref_boxes[None].astype(np.float64), t, 0)
    out[..., [0, 2]] += shifts[..., 1:2]
    out[..., [1, 3]] += shifts[..., 0:1]
    return out.astype(np.float32)
