"""A rig model's "decoder": rig fields in, frames of the scene's own picture out, at the canvas's size.

A latent model's session decodes latents with the frame autoencoder into 128 px frames. A rig model's
session (output="rig") decodes with a `RigCodec` made for its scene instead: it reads each character's
values back from the generated field over that character's region, lets the performer add blinks and head
motion, and moves the pixels of the scene itself:
- a picture scene (scene.faces: a photo or a drawing): realtime.scene.picture.render warps the picture;
- a world scene (scene.description: the cartoon world): the cartoon renderer draws its characters with
  those mouths, brows and heads, at the canvas size (sharp at any size, nothing decoded).
The frames it returns are the whole canvas; the compositor passes them through.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from realtime.media import VIDEO_FPS
from realtime.model.config import GeneratorConfig
from realtime.model.rig_field import latent_masks, read_rig, reference_field
from realtime.scene.performer import Performer
from realtime.scene.scenes import Scene

# rig (openness, width) -> the cartoon world's viseme codes it draws (realtime.scene.cartoon.shapes)
_REST, _CLOSED, _OPEN, _WIDE, _ROUND, _TONGUE = 0, 1, 2, 3, 4, 6


def cartoon_viseme(openness: float, width: float) -> int:
    """The world viseme whose drawn shape is nearest a rig's mouth."""
    if openness < 0.06:
        return _REST
    if width > 0.72:
        return _WIDE
    if width < 0.32:
        return _ROUND
    return _OPEN if openness > 0.5 else _TONGUE


class RigCodec:
    """Per session: the reference field of its characters, and chunks of rig fields -> canvas frames."""

    is_rig = True

    def __init__(self, cfg: GeneratorConfig, scene: Scene, seed: int = 0) -> None:
        if cfg.output != "rig":
            raise ValueError(f"a RigCodec decodes rig models, not output={cfg.output!r}")
        self.cfg, self.scene = cfg, scene
        self.performer = Performer(scene.n_characters, seed)
        self.masks = latent_masks(scene.masks, cfg.latent_size)
        self.canvas = scene.background
        if scene.faces:
            from realtime.scene.picture.render import PictureRenderer

            self.renderer = PictureRenderer(scene.background, scene.faces)
            self.mode = "picture"
            self.layers = _overlapping(self.renderer.face_regions()) and scene.owners is not None
            self.hidden = _hidden_mouths(scene) if self.layers else np.zeros(scene.n_characters, bool)
        elif scene.description is not None:
            self.mode = "cartoon"
        else:
            raise ValueError("a rig model animates a picture scene with faces or a world scene")
        self.last_values: np.ndarray | None = None  # (T, N, 5) of the newest chunk, for tests and stats

    # -- what the session calls ----------------------------------------------------------------------
    def reference_latent(self, ref_masks: np.ndarray) -> torch.Tensor:
        """(C, h, w): the characters' layout, every face at rest (the generator's reference)."""
        self.masks = latent_masks(ref_masks, self.cfg.latent_size)
        return reference_field(self.masks)

    def values(self, field: torch.Tensor) -> np.ndarray:
        """(T, C, h, w) generated field -> (T, N, 5) each character's rig values."""
        return read_rig(field.cpu(), self.masks)

    def decode_chunk(self, field: torch.Tensor, first_frame: int) -> np.ndarray:
        """(T, C, h, w) one chunk's field -> (T, H, W, 3) uint8 canvas frames."""
        values = self.values(field)
        self.last_values = values
        rigs = [self.performer.pose(first_frame + i, v) for i, v in enumerate(values)]
        if self.mode == "picture":
            return np.stack([self._picture(r) for r in rigs])
        return self._cartoon(rigs, first_frame)

    def _picture(self, rigs: list) -> np.ndarray:
        if not self.layers:
            return self.renderer.render(rigs)
        # faces whose regions overlap: each moved on its own, and each pixel taken from the face it shows
        # (a face half behind another must not drag the nearer one's pixels with its mouth)
        from realtime.scene.picture.rig import Rig

        owners = self.scene.owners
        out = self.renderer.render([Rig()] * len(rigs))
        for k, rig in enumerate(rigs):
            if self.hidden[k]:  # its mouth is behind another face: what shows there is the other's
                continue
            alone = [Rig()] * len(rigs)
            alone[k] = rig
            moved = self.renderer.render(alone)
            x0, y0, x1, y1 = self.renderer.face_regions()[k]
            own = owners[y0:y1, x0:x1]
            take = (own == k) | ((own < 0) & np.any(moved[y0:y1, x0:x1] != out[y0:y1, x0:x1], -1))
            out[y0:y1, x0:x1][take] = moved[y0:y1, x0:x1][take]
        return out

    def _cartoon(self, rigs: list, first_frame: int) -> np.ndarray:
        from realtime.scene.cartoon.render import render_plan, standing_plan

        description = self.scene.description
        size = self.canvas.shape[0]
        t = len(rigs)
        plan = standing_plan(description, t, VIDEO_FPS, first_frame)

        def per(attr: str) -> np.ndarray:
            return np.array([[getattr(r[k], attr) for r in rigs] for k in range(self.scene.n_characters)])

        openness = per("openness")
        width = per("width")
        viseme = np.vectorize(cartoon_viseme)(openness, width).astype(np.int8)
        plan = replace(
            plan,
            head_dx=per("head_dx"),
            head_dy=per("head_dy"),
            tilt=plan.tilt + per("tilt"),
            lid=per("lid"),
            brow=per("brow"),
            openness=openness,
            viseme=viseme,
        )
        return render_plan(description, plan, size).frames


def _overlapping(regions: np.ndarray) -> bool:
    r = np.asarray(regions)
    for i in range(len(r)):
        for j in range(i + 1, len(r)):
            if r[i, 0] < r[j, 2] and r[j, 0] < r[i, 2] and r[i, 1] < r[j, 3] and r[j, 1] < r[i, 3]:
                return True
    return False


def _hidden_mouths(scene: Scene, visible_min: float = 0.5) -> np.ndarray:
    """(N,) bool: faces whose mouth shows less than `visible_min` of itself in the picture (scene.owners)."""
    out = np.zeros(scene.n_characters, bool)
    h, w = scene.owners.shape
    for k, face in enumerate(scene.faces):
        half = max(face.mouth_width / 2, 2.0)
        c = face.mouth_centre
        x0, x1 = int(max(0, c[0] - half)), int(min(w, c[0] + half + 1))
        y0, y1 = int(max(0, c[1] - half / 2)), int(min(h, c[1] + half / 2 + 1))
        box = scene.owners[y0:y1, x0:x1]
        out[k] = box.size == 0 or float((box == k).mean()) < visible_min
    return out


WORLD_CANVAS = 512  # px: the side a world scene is drawn at for a rig model (it was the model's 128)


def scene_for_model(scene: Scene, model_or_loaded, canvas: int = WORLD_CANVAS, seed: int = 0) -> Scene:
    """The scene as a model shows it: unchanged for a latent model; for a rig model a world or file scene
    becomes the picture of its cast at rest, canvas x canvas px (realtime.scene.cartoon.landmarks), so
    the cartoon world moves through the same renderer as photos and drawings."""
    model = getattr(model_or_loaded, "generator", model_or_loaded)
    if model.cfg.output != "rig" or scene.faces or scene.description is None:
        return scene
    from realtime.scene.cartoon.landmarks import world_picture

    return world_picture(scene, canvas, seed)


def session_codec(loaded_or_model, scene: Scene, autoencoder=None, seed: int = 0):
    """What a session of this model decodes with: the frame autoencoder (latent models) or a RigCodec made
    for `scene` (rig models). Takes a LoadedModel, or a Generator plus its autoencoder."""
    model = getattr(loaded_or_model, "generator", loaded_or_model)
    ae = getattr(loaded_or_model, "autoencoder", autoencoder)
    if model.cfg.output == "rig":
        return RigCodec(model.cfg, scene, seed)
    return ae
