"""What the picture renderer needs to know about a face, and what moves it.

`FaceLandmarks` is a face of a user's picture, found once when the scene is made (face mesh, the face box
alone, or points a scene file gives). `Rig` is one face's pose in one frame: what the generator's rig field
says (mouth, brows, speech energy) plus the liveliness the performer adds (blinks, head motion). The
picture renderer (realtime.scene.picture.render) turns a picture, its faces and one Rig per face into a
frame at the picture's own size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LANDMARK_SOURCES = ("mesh", "box", "file")


@dataclass(frozen=True)
class FaceLandmarks:
    """Where one face's parts are in the picture, in canvas pixels (x, y)."""

    box: np.ndarray  # (4,) float32 face box x0, y0, x1, y1 (forehead to chin, cheek to cheek)
    mouth_left: np.ndarray  # (2,) the mouth's left corner (image left)
    mouth_right: np.ndarray  # (2,) the mouth's right corner
    upper_lip: np.ndarray  # (2,) middle of the upper lip's inner edge
    lower_lip: np.ndarray  # (2,) middle of the lower lip's inner edge
    chin: np.ndarray  # (2,) bottom of the chin
    eyes: np.ndarray  # (2, 2) centres of the left and right eye (image left first)
    eye_height: float  # px, the open eye's height (upper to lower lid), 0 when unknown
    source: str  # one of LANDMARK_SOURCES: how these points were found
    lip_gap: float = 0.0  # px between the lips' inner edges at rest: > 0 is a picture with an open mouth
    outer_upper_lip: np.ndarray | None = None  # (2,) top of the upper lip (outer edge), when known
    outer_lower_lip: np.ndarray | None = None  # (2,) bottom of the lower lip (outer edge), when known

    def __post_init__(self) -> None:
        if self.source not in LANDMARK_SOURCES:
            raise ValueError(f"source must be one of {LANDMARK_SOURCES}, got {self.source!r}")
        pts = [self.mouth_left, self.mouth_right, self.upper_lip, self.lower_lip, self.chin]
        if np.asarray(self.box).shape != (4,) or any(np.asarray(p).shape != (2,) for p in pts):
            raise ValueError("box must be 4 numbers and every point 2 numbers (x, y)")
        if np.asarray(self.eyes).shape != (2, 2):
            raise ValueError(f"eyes must be (2, 2), got {np.asarray(self.eyes).shape}")

    @property
    def mouth_centre(self) -> np.ndarray:
        return (np.asarray(self.upper_lip, np.float32) + np.asarray(self.lower_lip, np.float32)) / 2

    @property
    def mouth_width(self) -> float:
        return float(np.linalg.norm(np.asarray(self.mouth_right) - np.asarray(self.mouth_left)))

    @property
    def face_height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def mouth_open_at_rest(self) -> bool:
        """The picture shows this mouth open (teeth or a gap): it is animated around, not closed first."""
        return self.lip_gap > 0.04 * self.face_height


@dataclass(frozen=True)
class Rig:
    """One face's pose in one frame. Zero everywhere but lid is the face as the picture shows it."""

    openness: float = 0.0  # 0 lips as in the picture .. 1 jaw fully dropped (about a sixth of the face)
    width: float = 0.5  # 0 tightly rounded .. 0.5 relaxed .. 1 fully spread
    brow: float = 0.0  # 0 .. 1 brow raise
    lid: float = 1.0  # eye openness: 1 as in the picture, 0 closed (a blink)
    head_dx: float = 0.0  # head offset, in face widths
    head_dy: float = 0.0  # in face heights, positive down
    tilt: float = 0.0  # head roll in radians, positive clockwise on screen
    extra: dict = field(default_factory=dict)  # renderer-specific knobs (tests, debugging); empty normally

    def clipped(self) -> Rig:
        """The same rig with every value in its range (what the renderer draws)."""
        return Rig(
            openness=float(np.clip(self.openness, 0.0, 1.0)),
            width=float(np.clip(self.width, 0.0, 1.0)),
            brow=float(np.clip(self.brow, 0.0, 1.0)),
            lid=float(np.clip(self.lid, 0.0, 1.0)),
            head_dx=float(np.clip(self.head_dx, -0.1, 0.1)),
            head_dy=float(np.clip(self.head_dy, -0.1, 0.1)),
            tilt=float(np.clip(self.tilt, -0.2, 0.2)),
            extra=self.extra,
        )
