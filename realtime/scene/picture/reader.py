"""Reads a user's picture (PNG or JPEG) into a canvas: upright, opaque, at most MAX_CANVAS px, even sizes.

Every way a file can be wrong stops with one SceneError line naming it: missing, not an image, another
format, over MAX_MEGAPIXELS (read from the header, before anything is decoded), corrupt or truncated.
realtime.scene.picture.scene builds scenes on what this returns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from realtime.errors import SceneError

PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png")  # what `--scene` takes as a picture by its name
PICTURE_FORMATS = ("JPEG", "PNG")  # what Pillow must find inside, whatever the file is called
MAX_CANVAS = 1280  # px, the canvas's longer side: compositing and encoding 25 frames/s stay cheap on 2 cores
MAX_MEGAPIXELS = 40  # refused from the header, before decoding: a 12 MP phone photo decodes to 36 MB
MIN_SIDE = 32  # px: a smaller picture has no face to animate


def _canvas_size(w: int, h: int, longest: int = MAX_CANVAS) -> tuple[int, int]:
    """(W, H) of a w x h picture scaled to at most `longest` px on its longer side, both even."""
    scale = min(1.0, longest / max(w, h))
    return max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)


def _fit(image, w: int, h: int, cw: int, ch: int) -> np.ndarray:
    """A PIL RGB image of (upright) size w x h as a (ch, cw, 3) canvas: scaled, or cropped by <= 1 px to
    even sizes (a one-pixel resize would blur the whole picture)."""
    from PIL import Image

    if (cw, ch) == (w // 2 * 2, h // 2 * 2) and image.size == (w, h):
        return np.array(np.asarray(image)[:ch, :cw])  # a writable copy (Pillow's view is read-only)
    return np.array(image.resize((cw, ch), Image.LANCZOS))


def read_picture(picture: str | Path | np.ndarray, longest: int = MAX_CANVAS) -> tuple[np.ndarray, int, int]:
    """(canvas (H, W, 3) uint8 with even H, W, the picture's width w, its height h): the picture upright
    (EXIF orientation applied), transparency on white, scaled to at most `longest` px on its longer side."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(picture, np.ndarray):
        if picture.ndim != 3 or picture.shape[2] != 3 or picture.dtype != np.uint8:
            raise SceneError(f"picture: expected (H, W, 3) uint8 RGB, got {picture.shape} {picture.dtype}")
        h, w = picture.shape[:2]
        if min(h, w) < MIN_SIDE:
            raise SceneError(f"picture: {w}x{h} px is too small (at least {MIN_SIDE} px each side)")
        return _fit(Image.fromarray(picture), w, h, *_canvas_size(w, h, longest)), w, h
    path = Path(picture)
    if not path.is_file():
        raise SceneError(f"picture {path} not found")
    try:
        im = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise SceneError(f"{path}: over {MAX_MEGAPIXELS} megapixels; scale it down first") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise SceneError(f"{path}: cannot read it as an image (expected a PNG or JPEG picture)") from exc
    with im:
        if im.format not in PICTURE_FORMATS:
            raise SceneError(f"{path} is a {im.format} image; expected a PNG or JPEG picture")
        w, h = im.size  # from the header: nothing is decoded yet
        if w * h > MAX_MEGAPIXELS * 1e6:
            raise SceneError(
                f"{path} is {w}x{h} = {w * h / 1e6:.0f} megapixels, more than {MAX_MEGAPIXELS}; scale it down first"
            )
        if min(w, h) < MIN_SIDE:
            raise SceneError(f"{path}: {w}x{h} px is too small (at least {MIN_SIDE} px each side)")
        if im.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF orientation: a quarter turn
            w, h = h, w
        cw, ch = _canvas_size(w, h, longest)
        if im.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 where that is still at least the canvas
            im.draft("RGB", (cw, ch) if (w, h) == im.size else (ch, cw))
        try:
            im.load()
            upright = ImageOps.exif_transpose(im)
            if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info:
                rgba = upright.convert("RGBA")
                upright = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                upright.alpha_composite(rgba)
            rgb = upright.convert("RGB")
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise SceneError(f"{path}: corrupt or truncated image ({str(exc)[:120]})") from exc
    return _fit(rgb, w, h, cw, ch), w, h


def resize_to(canvas: np.ndarray, w: int, h: int) -> np.ndarray:
    """An (H, W, 3) uint8 image scaled to (h, w)."""
    from PIL import Image

    if canvas.shape[:2] == (h, w):
        return canvas
    return np.array(Image.fromarray(canvas).resize((w, h), Image.LANCZOS))
