"""Finds faces in a user's photo, offline: the fallback of realtime.scene.picture.landmarks without MediaPipe.

OpenCV's Haar cascade (frontal faces) ships inside `opencv-python-headless<5` and needs no download; it is
an optional dependency (`pip install '.[photo]'`), imported only when a photo scene asks for it. Boxes can
always be given by hand instead (`realtime.scene.scenes.photo_scene(..., boxes=...)`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from realtime.errors import SceneError

CASCADE = "haarcascade_frontalface_default.xml"
MIN_FACE_FRACTION = 1 / 12  # of the photo's shorter side: smaller detections are texture, not faces
SCALE_FACTOR = 1.1  # image pyramid step: 10% per level, OpenCV's usual trade of speed for recall
MIN_NEIGHBOURS = 5  # overlapping hits a face needs; fewer admits false faces in busy backgrounds
INSTALL_HINT = "pip install 'opencv-python-headless<5' (OpenCV 5 dropped the Haar cascades)"


def _cascade():  # -> cv2.CascadeClassifier
    try:
        import cv2
    except ImportError as exc:
        raise SceneError(
            f"finding faces in a photo needs OpenCV: {INSTALL_HINT}, or give the faces as boxes"
        ) from exc
    path = Path(getattr(getattr(cv2, "data", None), "haarcascades", "")) / CASCADE
    classifier = cv2.CascadeClassifier(str(path)) if path.is_file() else None
    if classifier is None or classifier.empty():
        raise SceneError(
            f"this OpenCV ({cv2.__version__}) has no {CASCADE}: {INSTALL_HINT}, or give the faces as boxes"
        )
    return cv2, classifier


def detect_faces(image: np.ndarray, max_faces: int) -> np.ndarray:
    """(K, 4) float32 face boxes x0, y0, x1, y1 in pixels of an (H, W, 3) uint8 RGB image, the K <=
    max_faces largest, ordered left to right."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    cv2, classifier = _cascade()
    grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
    side = max(8, int(min(image.shape[:2]) * MIN_FACE_FRACTION))
    found = classifier.detectMultiScale(grey, SCALE_FACTOR, MIN_NEIGHBOURS, minSize=(side, side))
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in np.reshape(found, (-1, 4))], np.float32)
    if len(boxes) > max_faces:
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        boxes = boxes[np.argsort(-area, kind="stable")[:max_faces]]
    return boxes[np.argsort(boxes[:, 0], kind="stable")] if len(boxes) else boxes.reshape(0, 4)
