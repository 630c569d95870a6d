"""The cartoon world as a picture: a world scene drawn once at rest at any size, with every face's parts
where the drawing code put them.

A rig model animates a picture (realtime.scene.picture.render); for the world's own scenes the picture is
the scene's first frame drawn at the canvas size, and the landmarks come from the same geometry that
drew it (realtime.scene.cartoon.shapes), so nothing has to be detected.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from realtime.model.rig_field import ellipse_masks
from realtime.scene.cartoon import shapes
from realtime.scene.picture.rig import FaceLandmarks
from realtime.scene.scene import Scene

EYE_HALF_HEIGHT = 0.05  # head heights per unit eye size: about the drawn eye white's half height (shapes.py)
EYE_DY = -0.06  # head heights from the head centre (shapes.EYE_Y)


def world_faces(description: dict, boxes: np.ndarray) -> tuple[FaceLandmarks, ...]:
    """Landmarks of a world scene's characters at rest, from their (N, 4) head boxes in canvas pixels."""
    faces = []
    for ch, (x0, y0, x1, y1) in zip(description["characters"], np.asarray(boxes, np.float32), strict=True):
        s, hh = x1 - x0, y1 - y0
        hx, hy = (x0 + x1) / 2, (y0 + y1) / 2
        my = hy + shapes.MOUTH_Y * hh
        half_w = shapes.MOUTH_HALF_WIDTH * s
        half_h = shapes.MOUTH_HALF_HEIGHT[0] * hh
        ex = shapes.EYE_DX * ch["eyes"]["spacing"] * s
        ey = hy + EYE_DY * hh
        f32 = lambda *v: np.array(v, np.float32)  # noqa: E731
        faces.append(
            FaceLandmarks(
                box=f32(x0, y0, x1, y1),
                mouth_left=f32(hx - half_w, my),
                mouth_right=f32(hx + half_w, my),
                upper_lip=f32(hx, my - 0.3 * half_h),
                lower_lip=f32(hx, my + 0.3 * half_h),
                chin=f32(hx, y1),
                eyes=np.array([[hx - ex, ey], [hx + ex, ey]], np.float32),
                eye_height=float(2 * EYE_HALF_HEIGHT * ch["eyes"]["size"] * hh),
                source="file",
                lip_gap=0.0,
                outer_upper_lip=f32(hx, my - half_h),
                outer_lower_lip=f32(hx, my + half_h),
            )
        )
    return tuple(faces)


def world_picture(scene: Scene, canvas: int, seed: int = 0) -> Scene:
    """A world scene as a picture scene of canvas x canvas px: its first frame at rest drawn at that size,
    faces from the drawing's geometry. The model-side fields (reference, masks, boxes) stay as they were."""
    from realtime.scene.scenes import scene_from_description

    if scene.description is None:
        raise ValueError("world_picture needs a world scene (one with a description)")
    big = scene_from_description(scene.description, seed=seed, size=canvas, source=scene.source)
    # the generator is told where each head is, as for a picture: soft ellipses over the head boxes (a
    # world render's masks cover whole bodies, which a rig model never saw in training)
    s = scene.size
    # far to near as the world composites them (depth, then the scene's order), so a nearer head covers
    # a farther one in the layout as it does in the picture
    chars = scene.description["characters"]
    order = sorted(range(len(chars)), key=lambda i: (-chars[i]["depth"], i))
    heads = np.empty((len(chars), s, s), np.float32)
    heads[order] = ellipse_masks(np.asarray(scene.boxes, np.float32)[order] / s, s)
    visible = big.masks  # (N, canvas, canvas): what of each character the drawing shows
    owners = np.where(visible.max(0) > 0.5, visible.argmax(0), -1).astype(np.int8)
    return replace(
        scene,
        owners=owners,
        masks=heads,
        background=big.reference,
        region=(0, 0, canvas, canvas),
        faces=world_faces(scene.description, big.boxes),
        description=None,
    )
