"""Scenes: what the engine generates. The model's reference frame, where each character is in it, their
names, and the canvas the generated frames are composited on.

Three sources. A built-in seeded world scene (1-4 cartoon characters: what the shipped model animates).
A scene JSON file in the world's own schema, any field left out filled from a seeded world scene, so
users design their own cast (docs/scenes.md). A user photo whose faces are found offline or given as
boxes: the path models trained on real video need; the shipped model cannot animate real photos.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from realtime.engine.compositor import Region
from realtime.errors import SceneError
from realtime.media import DEFAULT_FRAME_SIZE, MAX_CHARACTERS, MIN_CHARACTERS, SAMPLES_PER_FRAME

BUNDLED_SCENES = Path(__file__).parent / "bundled"  # `--scene NAME` finds NAME.json here
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
MAX_CANVAS = 1024  # px, a photo canvas's longer side: compositing 25 frames/s must stay cheap on 2 cores
HEAD_FROM_FACE = (0.45, 0.6, 0.35)  # a detector's face box grows by these fractions (sides, top, bottom)
REGION_MARGIN = 0.3  # the generated square spans the heads plus this fraction of their extent
MAX_SCENE_BYTES = 1 << 20  # a scene file is a few kB; refuse anything that could not be one
PHOTO_ONLY_NOTE = (
    "the shipped toon-s model animates only the world's cartoon characters; it cannot animate real photos"
)


@dataclass(frozen=True)
class Scene:
    """A scene the engine can generate and composite."""

    reference: np.ndarray  # (S, S, 3) uint8: the model's first frame (S = the model's frame size)
    masks: np.ndarray  # (N, S, S) float32 in [0, 1]: where each character is in the reference
    names: tuple[str, ...]  # N names; the index is the character index everywhere
    boxes: np.ndarray  # (N, 4) float32 head boxes x0, y0, x1, y1 in reference pixels
    background: np.ndarray  # (H, W, 3) uint8: the canvas of the output video (even H and W)
    region: Region  # where the generated frame is pasted on the canvas (the whole canvas: world scenes)
    source: str  # "world" | "file" | "photo"
    description: dict | None = None  # the world scene description (world and file scenes)

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
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise SceneError(f"region: {self.region} does not lie inside the {w}x{h} canvas")

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


# -- world scenes ------------------------------------------------------------------------------------------
def world_scene(n_characters: int, seed: int = 0, size: int = DEFAULT_FRAME_SIZE) -> Scene:
    """The built-in scene: a seeded world scene with 1-4 characters, rendered at rest."""
    from realtime.scene.cartoon.characters import sample_scene

    return scene_from_description(sample_scene(n_characters, seed), seed=seed, size=size, source="world")


def default_scene(n_characters: int, seed: int = 0, size: int = DEFAULT_FRAME_SIZE) -> Scene:
    """The scene the engine uses when none is named (`bya render`, `bya serve`, `POST /rooms`): the world
    scene's cast from `seed`, stood in a row in voice order, so every face is whole and character k is the
    k-th from the left. A world scene as drawn can hide one face behind another (seeds 0, 2 and 3 of 2)."""
    from realtime.scene.cartoon.characters import in_a_row, sample_scene

    description = in_a_row(sample_scene(n_characters, seed))
    return scene_from_description(description, seed=seed, size=size, source="world")


def scene_from_description(
    description: dict, seed: int = 0, size: int = DEFAULT_FRAME_SIZE, source: str = "file"
) -> Scene:
    """Render frame 0 of a world scene description (validated; SceneError names any bad field) at rest."""
    from realtime.scene.cartoon.characters import validate_scene
    from realtime.scene.cartoon.render import check_frame_size, render_scene
    from realtime.scene.cartoon.tracks import DialogueTrack

    description = validate_scene(description)
    size = check_frame_size(size)
    n = len(description["characters"])
    silent = DialogueTrack(
        np.zeros((n, SAMPLES_PER_FRAME), np.float32),
        np.zeros((n, 1), np.float32),
        np.zeros((n, 1), np.int8),
        np.zeros((n, 1), bool),
    )
    r = render_scene(description, silent, size=size, seed=seed)
    return Scene(
        reference=r.frames[0],
        masks=r.masks[0],
        names=tuple(c["name"] for c in description["characters"]),
        boxes=r.boxes[0],
        background=r.background,
        region=(0, 0, size, size),
        source=source,
        description=description,
    )


def _merge(base: Any, override: Any) -> Any:
    """override laid over base: objects merge key by key, anything else (lists included) replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    return copy.deepcopy(override)


def scene_from_json(data: Any, size: int = DEFAULT_FRAME_SIZE) -> Scene:
    """A scene file's content: the world schema, any field left out taken from the world scene `seed` draws."""
    from realtime.scene.cartoon.characters import sample_scene

    if not isinstance(data, dict):
        raise SceneError(f"scene: expected a JSON object, got {type(data).__name__}")
    data = dict(data)
    seed = data.pop("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise SceneError(f"seed: expected an integer in [0, 2^32), got {seed!r}")
    characters = data.get("characters")
    if not isinstance(characters, list) or not MIN_CHARACTERS <= len(characters) <= MAX_CHARACTERS:
        got = f"{len(characters)} items" if isinstance(characters, list) else repr(characters)
        raise SceneError(
            f"characters: expected a list of {MIN_CHARACTERS}-{MAX_CHARACTERS} objects, got {got}"
        )
    for i, c in enumerate(characters):
        if not isinstance(c, dict):
            raise SceneError(f"characters[{i}]: expected an object, got {type(c).__name__}")
    base = sample_scene(len(characters), seed)
    if "background" in data and not isinstance(data["background"], dict):
        raise SceneError(f"background: expected an object, got {type(data['background']).__name__}")
    merged = _merge(base, data)
    merged["characters"] = [_merge(b, c) for b, c in zip(base["characters"], characters, strict=True)]
    return scene_from_description(merged, seed=seed, size=size, source="file")


def read_scene_file(path: str | Path, size: int = DEFAULT_FRAME_SIZE) -> Scene:
    """Load a scene JSON file (docs/scenes.md)."""
    path = Path(path)
    if not path.is_file():
        raise SceneError(f"scene file {path} not found")
    if path.stat().st_size > MAX_SCENE_BYTES:
        raise SceneError(f"scene file {path} is over {MAX_SCENE_BYTES} bytes; a scene is a few kB of JSON")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SceneError(f"scene file {path}: not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise SceneError(
            f"scene file {path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    try:
        return scene_from_json(data, size)
    except SceneError as exc:
        raise type(exc)(f"scene file {path}: {exc}") from exc


# -- photo scenes ------------------------------------------------------------------------------------------
def _read_photo(photo: str | Path | np.ndarray) -> np.ndarray:
    if isinstance(photo, np.ndarray):
        if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
            raise SceneError(f"photo: expected (H, W, 3) uint8 RGB, got {photo.shape} {photo.dtype}")
        return photo
    from PIL import Image, UnidentifiedImageError

    path = Path(photo)
    if not path.is_file():
        raise SceneError(f"photo {path} not found")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise SceneError(f"photo {path}: cannot read it as an image ({exc})") from exc


def _resize(image: np.ndarray, h: int, w: int) -> np.ndarray:
    t = torch.from_numpy(np.array(image, np.float32)).permute(2, 0, 1)[None]
    t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def _check_boxes(boxes: Any, w: int, h: int) -> np.ndarray:
    if not isinstance(boxes, list | tuple | np.ndarray) or not MIN_CHARACTERS <= len(boxes) <= MAX_CHARACTERS:
        raise SceneError(
            f"boxes: expected {MIN_CHARACTERS}-{MAX_CHARACTERS} boxes [x0, y0, x1, y1], got {boxes!r}"
        )
    out = np.zeros((len(boxes), 4), np.float32)
    for i, b in enumerate(boxes):
        try:
            v = [float(x) for x in b]
        except (TypeError, ValueError):
            v = []
        if len(v) != 4 or not all(math.isfinite(x) for x in v):
            raise SceneError(f"boxes[{i}]: expected 4 numbers x0, y0, x1, y1, got {b!r}")
        if not (0 <= v[0] < v[2] <= w and 0 <= v[1] < v[3] <= h):
            raise SceneError(
                f"boxes[{i}]: {v} must satisfy 0 <= x0 < x1 <= {w} and 0 <= y0 < y1 <= {h} (the photo)"
            )
        out[i] = v
    return out


def _square_region(heads: np.ndarray, w: int, h: int) -> Region:
    """The square of the canvas the model generates: all heads plus a margin, inside the canvas."""
    x0, y0 = heads[:, 0].min(), heads[:, 1].min()
    x1, y1 = heads[:, 2].max(), heads[:, 3].max()
    side = min(max(x1 - x0, y1 - y0) * (1 + 2 * REGION_MARGIN), w, h)
    side = int(side) // 2 * 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(np.clip(round(cx - side / 2), 0, w - side))
    top = int(np.clip(round(cy - side / 2), 0, h - side))
    return left, top, left + side, top + side


def _ellipse_masks(boxes: np.ndarray, size: int) -> np.ndarray:
    """(N, S, S) soft ellipses filling each box (pixel units), one pixel of soft edge."""
    c = np.arange(size, dtype=np.float32) + 0.5
    out = np.zeros((len(boxes), size, size), np.float32)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        rx, ry = max((x1 - x0) / 2, 1.0), max((y1 - y0) / 2, 1.0)
        d = np.hypot((c[None, :] - (x0 + x1) / 2) / rx, (c[:, None] - (y0 + y1) / 2) / ry)
        out[k] = np.clip((1.0 - d) * min(rx, ry) + 0.5, 0.0, 1.0)
    return out


def photo_scene(
    photo: str | Path | np.ndarray,
    boxes: Any = None,  # 1-4 face boxes [x0, y0, x1, y1] in photo pixels; None: find them
    names: list[str] | None = None,
    size: int = DEFAULT_FRAME_SIZE,
) -> Scene:
    """A user photo as a scene: faces (found offline, or given) become characters, the square around
    them becomes the reference frame, the photo the canvas. (Note: PHOTO_ONLY_NOTE.)"""
    image = _read_photo(photo)
    h, w = image.shape[:2]
    if min(h, w) < 32:
        raise SceneError(f"photo: {w}x{h} px is too small (at least 32 px each side)")
    if boxes is None:
        from realtime.scene.face_detector import detect_faces

        faces = detect_faces(image, MAX_CHARACTERS)
        if not len(faces):
            raise SceneError("photo: no face found; give the faces as boxes [x0, y0, x1, y1]")
    else:
        faces = _check_boxes(boxes, w, h)
    if names is None:
        names = [f"Person {k + 1}" for k in range(len(faces))]
    if (
        len(names) != len(faces)
        or len(set(names)) != len(names)
        or not all(isinstance(s, str) and 0 < len(s) <= 64 for s in names)
    ):
        raise SceneError(
            f"names: expected {len(faces)} unique non-empty names of at most 64 characters, got {names!r}"
        )
    scale = min(1.0, MAX_CANVAS / max(h, w))
    ch, cw = int(h * scale) // 2 * 2, int(w * scale) // 2 * 2
    canvas = _resize(image, ch, cw) if (ch, cw) != (h, w) else image
    faces = faces * np.array([cw / w, ch / h] * 2, np.float32)
    fw, fh = faces[:, 2] - faces[:, 0], faces[:, 3] - faces[:, 1]
    side, top, bottom = HEAD_FROM_FACE
    heads = np.stack(
        [faces[:, 0] - side * fw, faces[:, 1] - top * fh, faces[:, 2] + side * fw, faces[:, 3] + bottom * fh],
        1,
    )
    region = _square_region(heads, cw, ch)
    x0, y0, x1, y1 = region
    reference = _resize(canvas[y0:y1, x0:x1], size, size)
    to_ref = size / (x1 - x0)
    ref_boxes = ((faces - np.array([x0, y0, x0, y0], np.float32)) * to_ref).clip(0, size)
    ref_heads = ((heads - np.array([x0, y0, x0, y0], np.float32)) * to_ref).clip(0, size)
    return Scene(
        reference=np.ascontiguousarray(reference),
        masks=_ellipse_masks(ref_heads, size),
        names=tuple(names),
        boxes=ref_boxes.astype(np.float32),
        background=np.ascontiguousarray(canvas),
        region=region,
        source="photo",
    )


def load_scene(
    spec: str | None, n_characters: int, seed: int = 0, size: int = DEFAULT_FRAME_SIZE, boxes: Any = None
) -> Scene:
    """What `--scene` names: None (the default scene of n_characters), a bundled scene's name, a .json
    scene file, or a photo (.jpg, .png; faces found or given as boxes)."""
    if spec is None:
        return default_scene(n_characters, seed, size)
    path = Path(spec)
    if path.suffix.lower() in PHOTO_SUFFIXES:
        return photo_scene(path, boxes, size=size)
    if boxes is not None:
        raise SceneError("boxes: only a photo scene takes face boxes")
    if path.suffix.lower() == ".json":
        return read_scene_file(path, size)
    bundled = BUNDLED_SCENES / f"{spec}.json"
    if "/" not in spec and bundled.is_file():
        return read_scene_file(bundled, size)
    names = ", ".join(sorted(p.stem for p in BUNDLED_SCENES.glob("*.json")))
    raise SceneError(
        f"scene {spec!r}: expected a .json scene file, a photo ({', '.join(PHOTO_SUFFIXES)}) or a bundled scene ({names})"
    )
