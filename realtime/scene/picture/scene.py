"""Picture scenes: a user's photo or drawing (PNG or JPEG) becomes the canvas, at its own size.

Its faces (found offline by realtime.scene.picture.landmarks, given as boxes with `--face`, or given point by point
in a scene file) become the characters, ordered left to right, each with the FaceLandmarks the picture
renderer moves. Several pictures (`--avatar A.png --avatar B.png`) are set side by side into one canvas,
one face each. Every bad input stops with one SceneError line; what was adjusted (a picture scaled down,
faces left out) is said in Scene.notes, which the commands print.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from realtime.errors import SceneError
from realtime.media import DEFAULT_FRAME_SIZE, MAX_CHARACTERS, MIN_CHARACTERS
from realtime.scene.picture.reader import MAX_CANVAS, PICTURE_SUFFIXES, read_picture, resize_to
from realtime.scene.picture.rig import FaceLandmarks
from realtime.scene.scene import Scene

HEAD_FROM_FACE = (0.45, 0.6, 0.35)  # a face box grows by these fractions (sides, top, bottom) into a head
REGION_MARGIN = 0.3  # the model's square spans the heads plus this fraction of their extent
FILE_KEYS = {"picture", "faces"}
FACE_KEYS = {"box", "mouth", "chin", "eyes", "lips", "name"}
MOUTH_HINT = (
    'give it in a scene file: {"picture": "%s", "faces": [{"box": [x0, y0, x1, y1], '
    '"mouth": [[x, y], [x, y]], "chin": [x, y]}]} (docs/scenes.md)'
)


# -- faces ---------------------------------------------------------------------------------------------------
def _check_box(b: Any, w: int, h: int, where: str) -> list[float]:
    try:
        v = [float(x) for x in b]
    except (TypeError, ValueError):
        v = []
    if len(v) != 4 or not all(math.isfinite(x) for x in v):
        raise SceneError(f"{where}: expected 4 numbers x0, y0, x1, y1, got {b!r}"[:200])
    if not (0 <= v[0] < v[2] <= w and 0 <= v[1] < v[3] <= h):
        raise SceneError(
            f"{where}: {[round(x, 1) for x in v]} must satisfy 0 <= x0 < x1 <= {w} and 0 <= y0 < y1 <= {h}, "
            f"inside the {w}x{h} picture"
        )
    return v


def check_boxes(boxes: Any, w: int, h: int) -> np.ndarray:
    """(N, 4) float32 face boxes x0, y0, x1, y1, each inside the w x h picture; SceneError names a bad one."""
    if not isinstance(boxes, list | tuple | np.ndarray) or not MIN_CHARACTERS <= len(boxes) <= MAX_CHARACTERS:
        raise SceneError(
            f"boxes: expected {MIN_CHARACTERS}-{MAX_CHARACTERS} boxes [x0, y0, x1, y1], got {boxes!r}"[:200]
        )
    return np.array([_check_box(b, w, h, f"boxes[{i}]") for i, b in enumerate(boxes)], np.float32)


def _scaled(face: FaceLandmarks, sx: float, sy: float, dx: float = 0.0) -> FaceLandmarks:
    """A face's points in another pixel grid: x * sx + dx, y * sy."""
    xy, shift = np.array([sx, sy], np.float32), np.array([dx, 0.0], np.float32)

    def move(p: np.ndarray | None) -> np.ndarray | None:
        return None if p is None else (np.asarray(p, np.float32) * xy + shift).astype(np.float32)

    box = np.asarray(face.box, np.float32) * np.array([sx, sy, sx, sy], np.float32) + np.array(
        [dx, 0, dx, 0], np.float32
    )
    return FaceLandmarks(
        box=box,
        mouth_left=move(face.mouth_left),
        mouth_right=move(face.mouth_right),
        upper_lip=move(face.upper_lip),
        lower_lip=move(face.lower_lip),
        chin=move(face.chin),
        eyes=move(face.eyes),
        eye_height=face.eye_height * sy,
        source=face.source,
        lip_gap=face.lip_gap * sy,
        outer_upper_lip=move(face.outer_upper_lip),
        outer_lower_lip=move(face.outer_lower_lip),
    )


def _find_faces(
    canvas: np.ndarray, max_faces: int, label: str, notes: list[str], avatar: bool = False
) -> np.ndarray:
    """The `max_faces` largest faces' boxes in canvas pixels, left to right; SceneError where there is none."""
    from realtime.scene.picture.landmarks import detect_faces, mesh_problem

    boxes = detect_faces(canvas)
    if not len(boxes):
        fix = (
            f"crop it closer to the face, or use --scene {label} --face X0,Y0,X1,Y1"
            if avatar
            else "give one with --face X0,Y0,X1,Y1"
        )
        raise SceneError(f"no face found in {label}; {fix}")
    if len(boxes) > max_faces and not avatar:
        notes.append(
            f"{len(boxes)} faces found in {label}, {max_faces} wanted: using the "
            f"{'largest' if max_faces == 1 else f'{max_faces} largest'} "
            f"(choose others with --face X0,Y0,X1,Y1, once per character)"
        )
    boxes = boxes[:max_faces]
    problem = mesh_problem()
    if problem:
        notes.append(f"no face mesh here ({problem}): faces found by OpenCV, mouths placed from the boxes")
    return boxes[np.argsort((boxes[:, 0] + boxes[:, 2]) / 2, kind="stable")]


def _check_mouths(faces: list[FaceLandmarks], label: str, require: bool, notes: list[str]) -> None:
    opened = [k for k, f in enumerate(faces) if f.mouth_open_at_rest]
    if opened:
        notes.append(
            f"face {', '.join(str(k + 1) for k in opened)} in {label}: the mouth is open in the picture; it is "
            "animated around it (the jaw opens further from there, the picture's own teeth stay)"
        )
    lost = [k for k, f in enumerate(faces) if f.source == "box"]
    if not lost:
        return
    which = ", ".join(str(k + 1) for k in lost)
    if require:
        raise SceneError(
            f"face {which} in {label}: the face mesh found no mouth (a drawing?); {MOUTH_HINT % label}"
        )
    notes.append(
        f"face {which} in {label}: the face mesh found no mouth (a drawing?), so it is placed from the face "
        f'box; if that is wrong, give "mouth" and "chin" in a scene file (docs/scenes.md)'
    )


def _names(names: list[str] | None, n: int) -> tuple[str, ...]:
    if names is None:
        return tuple(f"Person {k + 1}" for k in range(n))
    if (
        len(names) != n
        or len(set(names)) != len(names)
        or not all(isinstance(s, str) and 0 < len(s) <= 64 for s in names)
    ):
        raise SceneError(
            f"names: expected {n} unique non-empty names of at most 64 characters, got {names!r}"
        )
    return tuple(names)


# -- the scene -----------------------------------------------------------------------------------------------
def _resize(image: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    return np.array(Image.fromarray(np.ascontiguousarray(image)).resize((side, side), Image.LANCZOS))


def _square_region(heads: np.ndarray, w: int, h: int) -> tuple[int, int, int, int]:
    """The square the model lays the faces out in: all heads plus a margin. Inside the canvas where it
    fits; a wide picture's faces (three portraits side by side) need a square taller than the canvas,
    and it may then reach past the canvas's edges (a rig model sees only where the heads are)."""
    x0, y0 = heads[:, 0].min(), heads[:, 1].min()
    x1, y1 = heads[:, 2].max(), heads[:, 3].max()
    need = max(x1 - x0, y1 - y0)
    side = max(int(min(need * (1 + 2 * REGION_MARGIN), w, h)) // 2 * 2, 2 * math.ceil(need / 2))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(np.clip(round(cx - side / 2), min(0, w - side), max(0, w - side)))
    top = int(np.clip(round(cy - side / 2), min(0, h - side), max(0, h - side)))
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


def scene_from_faces(
    canvas: np.ndarray,
    faces: list[FaceLandmarks],
    boxes: np.ndarray,  # (N, 4) each character's face box in canvas pixels (given, or the faces' own)
    names: tuple[str, ...],
    size: int,
    notes: list[str],
) -> Scene:
    """A picture scene: the canvas, the characters in the order given, the model's square around their heads."""
    boxes = np.asarray(boxes, np.float32)
    ch, cw = canvas.shape[:2]
    fw, fh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side, top, bottom = HEAD_FROM_FACE
    heads = np.stack(
        [boxes[:, 0] - side * fw, boxes[:, 1] - top * fh, boxes[:, 2] + side * fw, boxes[:, 3] + bottom * fh],
        1,
    )
    region = _square_region(heads, cw, ch)
    x0, y0, x1, y1 = region
    to_ref = size / (x1 - x0)
    origin = np.array([x0, y0, x0, y0], np.float32)
    pad = max(0, -x0, -y0, x1 - cw, y1 - ch)  # a square reaching past the edges sees them repeated
    padded = np.pad(canvas, ((pad, pad), (pad, pad), (0, 0)), mode="edge") if pad else canvas
    return Scene(
        reference=np.ascontiguousarray(_resize(padded[y0 + pad : y1 + pad, x0 + pad : x1 + pad], size)),
        masks=_ellipse_masks(((heads - origin) * to_ref).clip(0, size), size),
        names=names,
        boxes=((boxes - origin) * to_ref).clip(0, size).astype(np.float32),
        background=np.ascontiguousarray(canvas),
        region=region,
        source="photo",
        faces=tuple(faces),
        notes=tuple(dict.fromkeys(notes)),  # each said once
    )


def picture_scene(
    picture: str | Path | np.ndarray,
    boxes: Any = None,  # 1-4 face boxes [x0, y0, x1, y1] in the picture's pixels, in character order
    names: list[str] | None = None,
    size: int = DEFAULT_FRAME_SIZE,
    max_faces: int = MAX_CHARACTERS,  # found faces beyond this many: the largest are kept (a note says so)
    require_mouths: bool = False,  # a face whose mouth the mesh cannot find is an error, not a note
) -> Scene:
    """A photo or drawing as a scene: the canvas is the picture (at most MAX_CANVAS px on its longer
    side), its faces the characters: found (the largest `max_faces`, left to right) or given as boxes."""
    if not MIN_CHARACTERS <= max_faces <= MAX_CHARACTERS:
        raise SceneError(f"max_faces: expected {MIN_CHARACTERS}-{MAX_CHARACTERS}, got {max_faces}")
    label = "the picture" if isinstance(picture, np.ndarray) else Path(picture).name
    canvas, w, h = read_picture(picture)
    if boxes is not None:
        boxes = check_boxes(boxes, w, h)
    return _faces_scene(canvas, w, h, label, boxes, None, names, size, max_faces, require_mouths)


def _faces_scene(
    canvas: np.ndarray,
    w: int,
    h: int,
    label: str,
    boxes: np.ndarray | None,  # checked, picture pixels
    given: list[dict] | None,  # a scene file's faces, checked, picture pixels
    names: list[str] | None,
    size: int,
    max_faces: int,
    require_mouths: bool,
) -> Scene:
    from realtime.scene.picture.landmarks import face_landmarks, given_landmarks

    ch, cw = canvas.shape[:2]
    scaled = max(w, h) > MAX_CANVAS
    notes = [f"scaled {w}x{h} down to {cw}x{ch}"] if scaled else []
    sx, sy = (cw / w, ch / h) if scaled else (1.0, 1.0)
    to_canvas = np.array([sx, sy, sx, sy], np.float32)
    if given is not None:
        chosen = np.stack([g["box"] for g in given]) * to_canvas
        faces = [
            _scaled(given_landmarks(**g), sx, sy) if "mouth" in g else face_landmarks(canvas, b)
            for g, b in zip(given, chosen, strict=True)
        ]
    elif boxes is not None:
        chosen = boxes * to_canvas
        faces = [face_landmarks(canvas, b) for b in chosen]
    else:
        found = _find_faces(canvas, max_faces, label, notes)
        faces = [face_landmarks(canvas, b) for b in found]
        chosen = np.stack([f.box for f in faces])
    chosen = chosen.astype(np.float32).clip(0, [cw, ch, cw, ch])
    _check_mouths(faces, label, require_mouths, notes)
    return scene_from_faces(canvas, faces, chosen, _names(names, len(faces)), size, notes)


def avatar_scene(
    pictures: list[str | Path], names: list[str] | None = None, size: int = DEFAULT_FRAME_SIZE
) -> Scene:
    """1-4 pictures side by side in one canvas, each scaled to a common height (the smallest one's, lowered
    until the row fits MAX_CANVAS px), the largest face of each a character, in the order given."""
    from realtime.scene.picture.landmarks import face_landmarks

    if not MIN_CHARACTERS <= len(pictures) <= MAX_CHARACTERS:
        raise SceneError(f"--avatar: give {MIN_CHARACTERS}-{MAX_CHARACTERS} pictures, got {len(pictures)}")
    read = [read_picture(p) for p in pictures]
    aspect = sum(c.shape[1] / c.shape[0] for c, _, _ in read)
    height = int(min(min(c.shape[0] for c, _, _ in read), MAX_CANVAS / aspect)) // 2 * 2
    parts, faces, boxes, notes = [], [], [], []
    x = 0
    for (canvas, _, _), path in zip(read, pictures, strict=True):
        width = max(2, int(canvas.shape[1] * height / canvas.shape[0]) // 2 * 2)
        part = resize_to(canvas, width, height)
        box = _find_faces(part, 1, Path(path).name, notes, avatar=True)[0]
        faces.append(_scaled(face_landmarks(part, box), 1.0, 1.0, x))
        boxes.append(faces[-1].box)
        parts.append(part)
        x += width
    _check_mouths(faces, "the --avatar pictures", False, notes)
    if len(pictures) > 1:
        notes.append(f"{len(pictures)} pictures side by side at {height} px high: {x}x{height}")
    return scene_from_faces(
        np.concatenate(parts, 1), faces, np.stack(boxes), _names(names, len(faces)), size, notes
    )


# -- picture scene files -------------------------------------------------------------------------------------
def _points(value: Any, n: int, where: str, w: int, h: int) -> np.ndarray:
    """n points [x, y] (n = 1: one bare [x, y]) inside the w x h picture, or SceneError naming `where`."""
    shape = "[x, y]" if n == 1 else f"[{', '.join(['[x, y]'] * n)}]"
    try:
        arr = np.array(value, np.float64).reshape(-1, 2) if n > 1 else np.array(value, np.float64)
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.shape != ((n, 2) if n > 1 else (2,)) or not np.isfinite(arr).all():
        raise SceneError(f"{where}: expected {shape} in picture pixels, got {value!r}"[:200])
    if not ((arr[..., 0] >= 0) & (arr[..., 0] <= w) & (arr[..., 1] >= 0) & (arr[..., 1] <= h)).all():
        raise SceneError(f"{where}: {arr.tolist()} lies outside the {w}x{h} picture")
    return arr.astype(np.float32)


def picture_file_scene(
    data: dict,
    base: Path,  # the scene file's folder: a relative "picture" is read from there
    boxes: Any = None,
    size: int = DEFAULT_FRAME_SIZE,
    max_faces: int = MAX_CHARACTERS,
    require_mouths: bool = False,
) -> Scene:
    """A scene file naming a picture: {"picture": "x.png", "faces"?: [{"box", "mouth"?, "chin"?, "eyes"?,
    "lips"?, "name"?}, ...]} (docs/scenes.md); points in the picture's pixels, faces in character order."""
    unknown = set(data) - FILE_KEYS
    if unknown:
        raise SceneError(f"unknown key(s) {sorted(unknown)[:4]} beside picture; allowed: {sorted(FILE_KEYS)}")
    name = data["picture"]
    if not isinstance(name, str) or Path(name).suffix.lower() not in PICTURE_SUFFIXES:
        raise SceneError(f"picture: expected a .png or .jpg file name, got {name!r}"[:200])
    path = base / name
    if "faces" not in data:
        return picture_scene(path, boxes, size=size, max_faces=max_faces, require_mouths=require_mouths)
    if boxes is not None:
        raise SceneError("the scene file gives its faces: leave out --face, or the file's faces")
    faces = data["faces"]
    if not isinstance(faces, list) or not MIN_CHARACTERS <= len(faces) <= MAX_CHARACTERS:
        raise SceneError(f"faces: expected a list of {MIN_CHARACTERS}-{MAX_CHARACTERS} objects")
    canvas, w, h = read_picture(path)
    given, names = [], []
    for i, face in enumerate(faces):
        where = f"faces[{i}]"
        if not isinstance(face, dict) or "box" not in face:
            raise SceneError(f'{where}: expected an object with at least "box": [x0, y0, x1, y1]')
        extra = set(face) - FACE_KEYS
        if extra:
            raise SceneError(f"{where}: unknown key(s) {sorted(extra)[:4]}; allowed: {sorted(FACE_KEYS)}")
        g: dict = {"box": np.array(_check_box(face["box"], w, h, f"{where}.box"), np.float32)}
        if "mouth" in face:
            g["mouth"] = _points(face["mouth"], 2, f"{where}.mouth", w, h)
        for key, n in (("chin", 1), ("eyes", 2), ("lips", 2)):
            if key in face:
                if "mouth" not in face:
                    raise SceneError(f'{where}.{key}: goes with "mouth" (the mouth\'s two corners)')
                g[key] = _points(face[key], n, f"{where}.{key}", w, h)
        given.append(g)
        names.append(face.get("name", f"Person {i + 1}"))
    return _faces_scene(canvas, w, h, path.name, None, given, names, size, max_faces, require_mouths)


def is_picture_file(data: Any) -> bool:
    """Whether a scene file's content names a picture (else it is a world scene)."""
    return isinstance(data, dict) and "picture" in data
