"""What shows between parted lips: a procedural mouth (cavity, upper teeth, tongue) tinted from the face's
own lip and skin colours, or the pixels of a picture of the same face with its mouth open.

realtime.scene.picture.render finds the gap (where both lips' sources cross the line where they meet) and
each gap pixel's place in it; this module only colours those pixels. Everything is plain float32 numpy
on the mouth's small box, so it costs a fraction of a millisecond per face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TEETH_HEIGHT = 0.045  # face heights of upper teeth showing below the upper lip when the mouth is wide open
TEETH_SHOW = (0.02, 0.05)  # face heights of gap over which the teeth fade in (a slit shows no teeth)
TOOTH_EDGES = np.array([0.0, -0.22, 0.22, -0.42, 0.42], np.float32)  # s of the incisors' edges, foreshortened


@dataclass(frozen=True)
class Palette:
    """The mouth's colours (RGB, 0..255 float32), taken from the picture."""

    cavity: np.ndarray  # (3,) the throat's darkest tone: the lips' colour, deep in shadow
    tongue: np.ndarray  # (3,)
    teeth: np.ndarray  # (3,)
    skin: np.ndarray  # (3,) the cheeks' (realtime.scene.picture.eyelid seeks the lids' colour nearest it)

    @staticmethod
    def sample(picture: np.ndarray, lip_at: np.ndarray, skin_at: list[np.ndarray], radius: int) -> Palette:
        """Colours from a picture: the median of small patches on the lower lip and on the cheeks."""
        lip = _patch_median(picture, lip_at, radius)
        skin = np.mean([_patch_median(picture, p, radius) for p in skin_at], axis=0)
        # a drawing's lips can be skin coloured: lean to red so a cavity and tongue still read as a mouth
        warm = 0.6 * lip + 0.4 * np.array([200.0, 70.0, 70.0])
        cavity = 0.22 * warm + 0.05 * skin
        tongue = 0.55 * warm + 0.25 * np.array([190.0, 80.0, 85.0]) + 0.1 * skin
        teeth = 0.8 * np.array([228.0, 220.0, 204.0]) + 0.2 * skin
        return Palette(*(np.clip(c, 0, 255).astype(np.float32) for c in (cavity, tongue, teeth, skin)))


def _patch_median(picture: np.ndarray, at: np.ndarray, radius: int) -> np.ndarray:
    h, w = picture.shape[:2]
    x, y = round(float(at[0])), round(float(at[1]))
    x, y = min(max(x, 0), w - 1), min(max(y, 0), h - 1)
    patch = picture[max(y - radius, 0) : y + radius + 1, max(x - radius, 0) : x + radius + 1]
    return np.median(patch.reshape(-1, 3).astype(np.float32), axis=0)


def _sat(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 1.0)


def procedural(
    palette: Palette,
    t: np.ndarray,
    s: np.ndarray,
    gap: np.ndarray,
    face_height: float,
    half_width: float,
    teeth: bool,
) -> np.ndarray:
    """(h, w, 3) float32 mouth colours at gap places t (0 upper lip .. 1 lower lip), s (-1 left corner ..
    1 right) where the gap is `gap` px tall and the mouth `half_width` px from middle to corner;
    teeth=False for a picture that already shows its teeth."""
    y = t * gap  # px below the upper lip
    # the cavity is darkest deep in the middle and catches a little light near the lips and corners
    depth = (1.0 - s * s) * (1.0 - (2.0 * t - 1.0) ** 2)
    colour = palette.cavity * (1.25 - 0.75 * depth)[..., None]
    # the tongue rises from the lower lip in the middle, paler towards the front
    top = 0.7 + 0.3 * s * s
    tongue_a = _sat((t - top) * gap / 1.5 + 0.5) * _sat((gap / face_height - 0.04) / 0.04)
    front = _sat((t - top) / np.maximum(1.0 - top, 1e-3))
    tongue = palette.tongue * (0.4 + 0.35 * front)[..., None]
    colour += (tongue - colour) * tongue_a[..., None]
    if teeth:
        # upper teeth hang from under the upper lip; the lip's shadow darkens their roots, they darken to
        # the corners, and faint lines part the incisors and canines
        vis = _sat((gap / face_height - TEETH_SHOW[0]) / (TEETH_SHOW[1] - TEETH_SHOW[0]))
        tall = np.minimum(TEETH_HEIGHT * face_height, 0.4 * gap) * vis * np.sqrt(_sat(1.0 - (s / 0.75) ** 2))
        teeth_a = _sat(tall - y + 0.5) * _sat((0.72 - np.abs(s)) * 8.0) * (tall > 0.5)
        edge = np.min(np.abs(s[..., None] - TOOTH_EDGES), axis=-1) * half_width / 0.8
        shade = (0.86 - 0.45 * s * s) * (0.7 + 0.3 * _sat(y / 2.5)) * (0.93 + 0.07 * _sat(edge))
        tooth = palette.teeth * shade[..., None]
        colour += (tooth - colour) * teeth_a[..., None]
    return colour
