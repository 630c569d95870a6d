"""A closing eyelid painted over a picture's eye: the lid's skin, in colours taken just above the eye, slides
down from the upper lid's edge to the moving lid edge, with a dark lash line along that edge.

The eye itself does not move (an eyeball stays while the lid covers it); the lid's skin above the eye
drops a little by the warp in realtime.scene.picture.fields. Works the same on drawings: the fill is the
flat colour above the drawn eye and the lash line the darkest colour of its outline.
"""

from __future__ import annotations

import cv2
import numpy as np

from realtime.scene.picture.fields import EyeFrame

SKIN_ABOVE = (
    0.25,
    0.4,
    0.55,
    0.7,
)  # open-eye heights above the upper lid's edge where the lid's colour is sought
LASH_WIDTH = 0.12  # open-eye heights: the lash line's thickness (at least 1 px)
LASH_DARKEST = 0.4  # the lash line is at most this share of the skin's colour (a drawing may have none)
LID_OVERLAP = 1.06  # the lid is this much wider than the eye
GRAIN_MAX = 12.0  # grey levels: the most the skin's detail may add to or take from the lid's colour
LID_FADE = 0.35  # open-eye heights above the upper lid's edge over which the lid's top fades in


class Eyelid:
    """One eye's precomputed lid: its box on the canvas, where the lid runs, and its colours."""

    def __init__(self, picture: np.ndarray, eye: EyeFrame, skin: np.ndarray) -> None:
        """`skin`: (3,) RGB of the face's skin (the cheeks), the colour the lid's is sought nearest to."""
        h, w = picture.shape[:2]
        reach = np.abs(eye.right) * eye.half_width * LID_OVERLAP + np.abs(eye.down) * eye.height * (
            0.5 + LID_FADE
        )
        lo = np.floor(eye.centre - reach - 2).astype(int)
        hi = np.ceil(eye.centre + reach + 3).astype(int)
        self.box = (max(lo[0], 0), max(lo[1], 0), min(hi[0], w), min(hi[1], h))  # x0, y0, x1, y1
        ys, xs = np.mgrid[self.box[1] : self.box[3], self.box[0] : self.box[2]].astype(np.float64)
        u, v = eye.uv(xs, ys)
        top = eye.upper_lid(u)
        self.below_top = (v - top).astype(np.float32)  # px below the upper lid's edge
        # the lid's height at this column: the eye's, a little wider, so no rim of the eye shows around it
        self.open_px = (eye.height * eye.opening(u / LID_OVERLAP)).astype(np.float32)
        # the lid's colour: column by column, of the skin a little above the upper lid's edge, the sample
        # nearest the face's skin (so that lashes, a brow or a glasses rim there do not become the lid),
        # then smoothed along the eye
        soft = cv2.GaussianBlur(picture, (0, 0), max(eye.half_width * 0.12, 0.8)).astype(np.float32)
        best = np.full(u.shape, np.inf, np.float32)
        self.fill = np.zeros((*u.shape, 3), np.float32)
        for k in SKIN_ABOVE:
            sv = top - k * eye.height
            sx = eye.centre[0] + u * eye.right[0] + sv * eye.down[0]
            sy = eye.centre[1] + u * eye.right[1] + sv * eye.down[1]
            got = cv2.remap(
                soft,
                sx.astype(np.float32),
                sy.astype(np.float32),
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            dist = np.abs(got - skin).sum(axis=-1)
            nearer = dist < best
            best[nearer] = dist[nearer]
            self.fill[nearer] = got[nearer]
        self.fill = cv2.blur(self.fill, (max(3, int(eye.half_width * 0.3) | 1), 1))
        # and the skin's grain: the fine detail of the skin above, mirrored down over the lid (faint, clipped,
        # so a brow or rim there cannot print through; a flat drawing has none)
        mirror = top - SKIN_ABOVE[0] * eye.height - 0.6 * np.clip(v - top, 0.0, None)
        mx = eye.centre[0] + u * eye.right[0] + mirror * eye.down[0]
        my = eye.centre[1] + u * eye.right[1] + mirror * eye.down[1]
        grain = picture.astype(np.float32) - soft
        grain = cv2.remap(
            grain,
            mx.astype(np.float32),
            my.astype(np.float32),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        self.fill += np.clip(grain, -GRAIN_MAX, GRAIN_MAX)
        # the lashes: the darkest tenth of the upper lid's edge over the middle of the eye
        mid = np.linspace(-0.6, 0.6, 25) * eye.half_width
        ev = eye.upper_lid(mid)
        ex = (eye.centre[0] + mid * eye.right[0] + ev * eye.down[0]).round().astype(int).clip(0, w - 1)
        ey = (eye.centre[1] + mid * eye.right[1] + ev * eye.down[1]).round().astype(int).clip(0, h - 1)
        edge = picture[ey, ex].astype(np.float32)
        dark = edge[np.argsort(edge.sum(axis=1))[: max(len(edge) // 10, 1)]].mean(axis=0)
        self.lash = np.minimum(0.8 * dark, LASH_DARKEST * skin).astype(np.float32)  # a line even undrawn
        self.lash_px = max(1.0, LASH_WIDTH * eye.height)
        self.fade_px = max(1.0, LID_FADE * eye.height)

    def paint(self, dst: np.ndarray, closing: float) -> None:
        """Draw the lid closed by `closing` (0 open .. 1 shut) into dst, the canvas pixels of self.box."""
        edge = closing * self.open_px  # px the lid has come down at each column
        y = self.below_top
        # the lid's top fades in over the skin above the eye (its colour is that skin's), its edge is sharp
        cover = np.clip(y / self.fade_px + 1.0, 0, 1) * np.clip(edge - y + 0.5, 0, 1) * np.clip(edge, 0, 1)
        if not cover.any():
            return
        # the lid rounds away over the eyeball: a little darker towards its edge
        shade = 1.0 - 0.12 * np.clip(y / np.maximum(edge, 1.0), 0, 1)
        colour = self.fill * shade[..., None]
        half = self.lash_px / 2
        lash = np.clip(half + 0.5 - np.abs(y - (edge - half)), 0, 1) * np.clip(edge / self.lash_px, 0, 1)
        colour += (self.lash - colour) * (0.85 * lash)[..., None]
        dst[:] = np.rint(dst + (colour - dst) * cover[..., None]).astype(np.uint8)
