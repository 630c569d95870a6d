"""The Scene: what the engine generates and composites, whatever it was made from.

The model's reference frame and where each character is in it, their names, the canvas the frames are
composited on, and for a picture its faces' landmarks. realtime.scene.scenes makes world and file
scenes and dispatches `--scene`; realtime.scene.picture.scene makes picture scenes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realtime.engine.compositor import Region
from realtime.errors import SceneError
from realtime.media import MAX_CHARACTERS, MIN_CHARACTERS
from realtime.scene.picture.rig import FaceLandmarks


@dataclass(frozen=True)
class Scene:
    """A scene the engine can generate and composite."""

    reference: np.ndarray  # (S, S, 3) uint8: the model's first frame (S = the model's frame size)
    masks: np.ndarray  # (N, S, S) float32 in [0, 1]: where each character is in the reference
    names: tuple[str, ...]  # N names; the index is the character index everywhere
    boxes: np.ndarray  # (N, 4) float32 head boxes x0, y0, x1, y1 in reference pixels
    background: np.ndarray  # (H, W, 3) uint8: the canvas of the output video (even H and W)
    region: Region  # where the generated frame is pasted on the canvas (the whole canvas: world scenes)
    source: str  # "world" | "file" | "photo" (any picture: photo, drawing, --avatar pictures, picture file)
    description: dict | None = None  # the world scene description (world and file scenes)
    faces: tuple[FaceLandmarks, ...] = ()  # a picture's N faces in canvas pixels (what its renderer moves)
    notes: tuple[str, ...] = ()  # what building it adjusted (a picture scaled down, faces left out): printed
    # (H, W) int8: which character each canvas pixel shows (-1: none), where characters overlap and it is
    # known (a world cast drawn as a picture); a face's motion then moves only what is its own
    owners: np.ndarray | None = None

    def __post_init__(self) -> None:
        s = self.reference.shape[0]
        if self.reference.shape != (s, s, 3) or self.reference.dtype != np.uint8:
            raise SceneError(f"reference: expected (S, S, 3) uint8, got {self.reference.shape}")
        n = self.masks.shape[0]
        if self.masks.shape != (n, s, s) or not MIN_CHARACTERS <= n <= MAX_CHARACTERS:
            raise SceneError(f"masks: expected (1-{MAX_CHARACTERS}, {s}, {s}), got {self.masks.shape}")
        if len(self.names) != n or self.boxes.shape != (n, 4):
            raise SceneError(
                f"names and boxes: expected {n} of each, got {len(self.names)} and {len(self.boxes)}"
            )
        h, w = self.background.shape[:2]
        if self.background.shape != (h, w, 3) or self.background.dtype != np.uint8 or h % 2 or w % 2:
            raise SceneError(
                f"background: expected (H, W, 3) uint8 with even H, W, got {self.background.shape}"
            )
        x0, y0, x1, y1 = self.region
        # a picture's layout square may reach past the canvas (faces spread wider than the canvas is tall)
        inside = 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        overlaps = x0 < x1 and y0 < y1 and x0 < w and y0 < h and x1 > 0 and y1 > 0
        if not (inside or (self.faces and overlaps)):
            raise SceneError(f"region: {self.region} does not lie inside the {w}x{h} canvas")
        if self.faces and len(self.faces) != n:
            raise SceneError(f"faces: expected one per character ({n}), got {len(self.faces)}")

    @property
    def n_characters(self) -> int:
        return int(self.masks.shape[0])

    @property
    def size(self) -> int:
        return int(self.reference.shape[0])

    @property
    def choreographed(self) -> bool:
        """Whether the scene says where its characters stand over time (world and file scenes do; their
        `motion` fields: drift, sway, bob). A photo scene's characters stay where they are."""
        return self.description is not None

    def standing(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """The scene at frame `frame` (from 0, at VIDEO_FPS) of its choreography, every face at rest:
        (S, S, 3) uint8 frame and (N, S, S) masks, what a session is re-posed with (StreamingGenerator.
        reposition). Nothing in it depends on what is said."""
        from realtime.scene.cartoon.render import render_standing

        if self.description is None:
            raise SceneError("a photo scene has no choreography: its characters stay where they are")
        if frame < 0:
            raise ValueError(f"frame must be >= 0, got {frame}")
        r = render_standing(self.description, 1, self.size, first=frame)
        return r.frames[0], r.masks[0]

    def canvas_boxes(self) -> np.ndarray:
        """(N, 4) head boxes in canvas pixels."""
        x0, y0, x1, y1 = self.region
        scale = np.array([(x1 - x0), (y1 - y0)] * 2, np.float32) / self.size
        return self.boxes * scale + np.array([x0, y0, x0, y0], np.float32)
