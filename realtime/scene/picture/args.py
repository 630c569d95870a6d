"""The `--face` and `--avatar` flags that `bya render` and `bya serve` share, and their checking.

Kept apart from realtime.scene.picture.scene so that adding the flags imports nothing heavy (`bya --help`
stays instant). A bad value ends as one SceneError line and exit status 2, like every other bad input.
"""

from __future__ import annotations

import argparse
import math

from realtime.errors import SceneError
from realtime.media import MAX_CHARACTERS


def add_picture_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--face",
        action="append",
        metavar="X0,Y0,X1,Y1",
        help="with a picture --scene: a face's box in the picture's pixels, character k the k-th --face "
        "(repeat; default: faces found, left to right)",
    )
    parser.add_argument(
        "--avatar",
        action="append",
        metavar="PICTURE",
        help=f"a picture (PNG/JPEG) with one face; repeat for up to {MAX_CHARACTERS}, set side by side, "
        "character k the k-th (instead of --scene)",
    )


def parse_face(text: str) -> list[float]:
    """'X0,Y0,X1,Y1' -> [x0, y0, x1, y1] (four finite numbers, x0 < x1, y0 < y1), else SceneError."""
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise SceneError(f"--face {text[:60]!r}: expected X0,Y0,X1,Y1, four numbers in the picture's pixels")
    if not (box[0] < box[2] and box[1] < box[3]):
        raise SceneError(f"--face {text[:60]!r}: expected X0 < X1 and Y0 < Y1 (left, top, right, bottom)")
    return box


def face_boxes(values: list[str] | None) -> list[list[float]] | None:
    """The --face values, parsed (None where none was given)."""
    if not values:
        return None
    if len(values) > MAX_CHARACTERS:
        raise SceneError(f"--face: at most {MAX_CHARACTERS} faces, got {len(values)}")
    return [parse_face(v) for v in values]


def check_picture_arguments(args: argparse.Namespace) -> list[list[float]] | None:
    """--face and --avatar checked before anything loads: the parsed face boxes."""
    boxes = face_boxes(getattr(args, "face", None))
    avatars, scene = getattr(args, "avatar", None), getattr(args, "scene", None)
    if avatars:
        if scene is not None or boxes is not None:
            raise SceneError("--avatar pictures make the scene: leave out --scene and --face")
        if len(avatars) > MAX_CHARACTERS:
            raise SceneError(f"--avatar: at most {MAX_CHARACTERS} pictures, got {len(avatars)}")
    elif boxes is not None and scene is None:
        raise SceneError("--face chooses faces in a picture: give the picture with --scene")
    return boxes
