"""One face of a picture, prepared once for realtime.scene.picture.render: its crop, the unit fields cut to
where they act (realtime.scene.picture.fields), the boxes where the lips part and the chin meets the neck,
its lids, the mouth's colours and the work buffers a frame reuses. Nothing here runs per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realtime.scene.picture.eyelid import Eyelid
from realtime.scene.picture.fields import (
    CORNER_DRAG,
    CORNER_SPREAD,
    JAW_DROP,
    UPPER_LIP_RISE,
    EyeFrame,
    HeadFrame,
    MouthFrame,
    eye_fields,
    mouth_fields,
    search_box,
)
from realtime.scene.picture.mouth_interior import Palette
from realtime.scene.picture.rig import FaceLandmarks

MARGIN_PX = 4  # crop grown past the fields' support, so bilinear taps at its edge read real pixels
MOUTH_SHAPED = ("jaw", "upper_lip")  # fields whose shape follows the corners when the width moves them


@dataclass(frozen=True)
class Basis:
    """One unit field on a sub-box (rows, cols) of the face's locally warped box."""

    rows: slice
    cols: slice
    field: np.ndarray  # (h, w, 2) float32 x, y displacement, px per unit of its rig value


@dataclass
class PreparedFace:
    """One face's precomputed crop, fields, grids and buffers."""

    box: tuple[int, int, int, int]  # crop x0, y0, x1, y1 on the canvas (end exclusive)
    local: tuple[slice, slice]  # rows, cols of the crop that the face's own motion (not the head's) reaches
    bases: dict[str, Basis]
    follow: dict[str, tuple[np.ndarray, np.ndarray]]  # mouth-shaped basis -> (own coords, unit width there)
    grid: np.ndarray  # (h, w, 2) float32 crop coordinates of `local`'s pixels (the identity map)
    head_grid: np.ndarray  # (2, H, W) float32 crop coordinates of the whole crop
    head_basis: np.ndarray  # (3, H, W) float32: feather * (x - pivot), feather * (y - pivot), feather
    head: HeadFrame
    mouth: MouthFrame
    mouth_box: tuple[slice, slice]  # rows, cols of `local` where the lips can part
    jaw_band: tuple[slice, slice] | None  # rows, cols of `local` where the chin can slide over the neck
    mouth_xy: np.ndarray  # (h, w, 2) float32 canvas coordinates of the mouth box
    mouth_own: np.ndarray  # (h, w, 2) float32 the mouth box's own pixel coordinates
    mouth_width: np.ndarray  # (h, w, 2) float32 unit corner field on the mouth box
    mouth_lips: np.ndarray  # (h, w, 6) float32 upper lip's jaw field, lower lip's, upper-lip rise
    eyelids: list[tuple[Eyelid, tuple[slice, slice]]]  # each lid and its box in `local`
    face_height: float
    face_width: float
    lips_width: float
    open_at_rest: bool
    palette: Palette
    interior: np.ndarray | None  # the open-mouth picture in canvas coordinates, when the caller gave one
    crop: np.ndarray  # (H, W, 3) uint8 work buffers
    warped: np.ndarray


def nonzero_box(mask: np.ndarray) -> tuple[slice, slice] | None:
    """Rows and columns of an (H, W) array's non-zero part; None where it is zero everywhere."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return None
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _own_coords(h: int, w: int) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.dstack([xs, ys])


def prepare_face(picture: np.ndarray, lm: FaceLandmarks, interior: np.ndarray | None, k: int) -> PreparedFace:
    """Everything a frame needs about face k of `picture`, computed once (see the module docstring)."""
    height, width = picture.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in lm.box)
    if not (x1 - x0 >= 8 and y1 - y0 >= 8):
        raise ValueError(f"face {k}: box {lm.box.tolist()} must be at least 8 px wide and tall")
    sx0, sy0, sx1, sy1 = search_box(lm, height, width)
    if sx1 - sx0 < 2 or sy1 - sy0 < 2:
        raise ValueError(f"face {k}: box {lm.box.tolist()} lies outside the {width}x{height} picture")
    ys, xs = np.mgrid[sy0:sy1, sx0:sx1].astype(np.float64)
    mouth = MouthFrame.of(lm)
    mf = mouth_fields(mouth, lm, xs, ys)
    lid, brow = eye_fields(lm, xs, ys)
    head = HeadFrame.of(lm)
    feather = head.feather(xs, ys)
    # the crop: wherever any field moves a pixel, plus a margin for the bilinear taps
    fields = {"jaw": mf.jaw, "upper_lip": mf.upper_lip, "width": mf.width, "lid": lid, "brow": brow}
    reach = sum(np.abs(f).sum(axis=0) for f in fields.values()) + feather
    cy, cx = nonzero_box(reach)
    cy = slice(max(cy.start - MARGIN_PX, 0), min(cy.stop + MARGIN_PX, sy1 - sy0))
    cx = slice(max(cx.start - MARGIN_PX, 0), min(cx.stop + MARGIN_PX, sx1 - sx0))
    box = (sx0 + cx.start, sy0 + cy.start, sx0 + cx.stop, sy0 + cy.stop)
    xs, ys, feather = xs[cy, cx], ys[cy, cx], feather[cy, cx]
    fields = {n: f[:, cy, cx] for n, f in fields.items()}
    boxes = {n: b for n, f in fields.items() if (b := nonzero_box(np.abs(f).sum(axis=0))) is not None}
    palette = _palette(picture, lm, mouth)
    lids = [Eyelid(picture, eye, palette.skin) for eye in EyeFrame.pair(lm)]
    # the face's own motion reaches only its fields' and lids' boxes: the first remap covers just those
    spans = [(r.start, r.stop, c.start, c.stop) for r, c in boxes.values()]
    spans += [(e.box[1] - box[1], e.box[3] - box[1], e.box[0] - box[0], e.box[2] - box[0]) for e in lids]
    ly0, lx0 = max(min(s[0] for s in spans) - 1, 0), max(min(s[2] for s in spans) - 1, 0)
    ly1, lx1 = (
        min(max(s[1] for s in spans) + 1, xs.shape[0]),
        min(max(s[3] for s in spans) + 1, xs.shape[1]),
    )
    local = (slice(ly0, ly1), slice(lx0, lx1))
    bases: dict[str, Basis] = {}
    follow: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, (r, c) in boxes.items():
        field = np.ascontiguousarray(fields[name][:, r, c].transpose(1, 2, 0), np.float32)
        bases[name] = Basis(slice(r.start - ly0, r.stop - ly0), slice(c.start - lx0, c.stop - lx0), field)
        if name in MOUTH_SHAPED:
            unit_width = fields["width"][:, r, c].transpose(1, 2, 0).astype(np.float32)
            follow[name] = (_own_coords(*field.shape[:2]), unit_width)
    eyelids = []
    for e in lids:
        ey0, ex0 = e.box[1] - box[1] - ly0, e.box[0] - box[0] - lx0
        ey1, ex1 = e.box[3] - box[1] - ly0, e.box[2] - box[0] - lx0
        if ey0 >= 0 and ex0 >= 0 and ey1 <= ly1 - ly0 and ex1 <= lx1 - lx0:  # else it is off the canvas
            eyelids.append((e, (slice(ey0, ey1), slice(ex0, ex1))))
    lx, ly = xs[local], ys[local]
    grid = np.dstack([lx - box[0], ly - box[1]]).astype(np.float32)
    head_basis = np.stack([feather * (xs - head.pivot[0]), feather * (ys - head.pivot[1]), feather])
    # where the lips can part: between the (spread) corners, from the risen upper lip to the dropped lower
    fh, fw = lm.face_height, x1 - x0
    u, v = mouth.uv(lx, ly)
    split = mouth.split_v(u)
    reach_up = UPPER_LIP_RISE * fh + CORNER_DRAG * JAW_DROP * fh + 3
    can_part = (np.abs(u) <= mouth.half_width * (1 + 2 * CORNER_SPREAD) + 2) & (v >= split - reach_up)
    can_part &= v <= split + JAW_DROP * fh + 3
    mouth_box = nonzero_box(can_part)
    if mouth_box is None:
        raise ValueError(f"face {k}: its mouth lies outside the {width}x{height} picture")
    # where the moved jaw may meet the still neck: the jaw's field at and below the jaw line
    near_neck = (np.abs(fields["jaw"][:, local[0], local[1]]).sum(axis=0) > 0) & (v >= mouth.jaw_line(u) - 2)
    jaw_band = nonzero_box(near_neck)
    mrows = slice(cy.start + ly0 + mouth_box[0].start, cy.start + ly0 + mouth_box[0].stop)
    mcols = slice(cx.start + lx0 + mouth_box[1].start, cx.start + lx0 + mouth_box[1].stop)
    lips = np.concatenate([mf.jaw_upper, mf.jaw_lower, mf.upper_lip_any])[:, mrows, mcols].transpose(1, 2, 0)
    unit_width = mf.width[:, mrows, mcols].transpose(1, 2, 0)
    return PreparedFace(
        box=box,
        local=local,
        bases=bases,
        follow=follow,
        grid=grid,
        head_grid=np.stack([xs - box[0], ys - box[1]]).astype(np.float32),
        head_basis=head_basis.astype(np.float32),
        head=head,
        mouth=mouth,
        mouth_box=mouth_box,
        jaw_band=jaw_band,
        mouth_xy=np.dstack([lx[mouth_box], ly[mouth_box]]).astype(np.float32),
        mouth_own=_own_coords(mouth_box[0].stop - mouth_box[0].start, mouth_box[1].stop - mouth_box[1].start),
        mouth_width=np.ascontiguousarray(unit_width, np.float32),
        mouth_lips=np.ascontiguousarray(lips, np.float32),
        eyelids=eyelids,
        face_height=fh,
        face_width=fw,
        lips_width=lm.mouth_width,
        open_at_rest=lm.mouth_open_at_rest,
        palette=palette,
        interior=_interior(picture, interior, box, k),
        crop=np.empty((box[3] - box[1], box[2] - box[0], 3), np.uint8),
        warped=np.empty((ly1 - ly0, lx1 - lx0, 3), np.uint8),
    )


def _palette(picture: np.ndarray, lm: FaceLandmarks, mouth: MouthFrame) -> Palette:
    """The mouth's colours, from the lower lip's middle and the cheeks beside the corners."""
    fh, fw = lm.face_height, float(lm.box[2] - lm.box[0])
    mid = float(mouth.split_v(0.0))
    lip_at = mouth.origin + mouth.down * (mid + (mouth.lower_outer - mid) * 0.5)
    cheek = [
        np.asarray(c, np.float64) + mouth.down * (-0.05 * fh) + mouth.right * sgn * 0.1 * fw
        for c, sgn in ((lm.mouth_left, -1), (lm.mouth_right, 1))
    ]
    return Palette.sample(picture, lip_at, cheek, max(1, int(0.01 * fh)))


def _interior(
    picture: np.ndarray, interior: np.ndarray | None, box: tuple[int, int, int, int], k: int
) -> np.ndarray | None:
    """The open-mouth picture in canvas coordinates (a crop-sized one pasted into the picture)."""
    if interior is None:
        return None
    interior = np.asarray(interior)
    height, width = picture.shape[:2]
    crop_shape = (box[3] - box[1], box[2] - box[0], 3)
    if interior.dtype != np.uint8 or interior.shape not in ((height, width, 3), crop_shape):
        raise ValueError(
            f"interior {k} must be uint8 shaped like the canvas {(height, width, 3)} or its crop "
            f"{crop_shape}, got {interior.shape} {interior.dtype}"
        )
    if interior.shape == (height, width, 3):
        return np.ascontiguousarray(interior)
    full = picture.copy()
    full[box[1] : box[3], box[0] : box[2]] = interior
    return full
