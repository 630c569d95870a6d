"""Animate the faces of a user's picture (photo or drawing) at its own size, in real time on a CPU: motion
from the model, pixels from the picture (issue 20 §2).

Per face, __init__ prepares unit displacement fields on a crop around the head (realtime.scene.picture.face,
from realtime.scene.picture.fields: jaw, upper lip, mouth corners, lids, brows, and a feathered similarity
for the head). A frame sums them,
scaled by that face's Rig, into one cv2.remap of the crop, paints the gap between the parted lips
(realtime.scene.picture.mouth_interior, or the mouth of an `interior` picture) and the closing lids
(realtime.scene.picture.eyelid), then moves the head with a second remap. Pixels outside face_regions() are the
picture's, bit for bit; a rest Rig draws the picture itself.

A picture whose mouth is already open (FaceLandmarks.mouth_open_at_rest) is animated around it, not
closed first: the lips part at its lower lip's inner edge, the gap and teeth it shows stay with the upper
jaw (its upper lip does not rise), and openness drops the jaw further from there (no procedural teeth are
added: the picture's show).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from realtime.scene.picture.face import PreparedFace, nonzero_box, prepare_face
from realtime.scene.picture.fields import (
    CORNER_DRAG,
    CORNER_SPREAD,
    JAW_DROP,
    UPPER_LIP_RISE,
)
from realtime.scene.picture.mouth_interior import procedural
from realtime.scene.picture.rig import FaceLandmarks, Rig

ROUND_DEPTH = 0.8  # width 0 pulls each corner in by this share of CORNER_SPREAD (rounding narrows less)


class PictureRenderer:
    """Renders a picture with its faces moved by one Rig each; see the module docstring."""

    def __init__(
        self,
        picture: np.ndarray,
        faces: Sequence[FaceLandmarks],
        interior: Sequence[np.ndarray | None] | None = None,
    ) -> None:
        picture = np.asarray(picture)
        if picture.dtype != np.uint8 or picture.ndim != 3 or picture.shape[2] != 3:
            raise ValueError(f"picture must be (H, W, 3) uint8, got {picture.shape} {picture.dtype}")
        height, width = picture.shape[:2]
        if height % 2 or width % 2 or height < 2 or width < 2:
            raise ValueError(f"picture height and width must be even, got {height}x{width}")
        if interior is not None and len(interior) != len(faces):
            raise ValueError(
                f"interior must give one picture (or None) per face: {len(interior)} for {len(faces)}"
            )
        self.picture = np.ascontiguousarray(picture)
        self._faces = [
            prepare_face(self.picture, lm, None if interior is None else interior[k], k)
            for k, lm in enumerate(faces)
        ]

    def face_regions(self) -> np.ndarray:
        """(N, 4) int x0, y0, x1, y1 (end exclusive) of the canvas pixels each face's render may change."""
        return np.array([f.box for f in self._faces], np.int64).reshape(-1, 4)

    # --------------------------------------------------------------------------------------------- frames

    def render(self, rigs: Sequence[Rig], out: np.ndarray | None = None) -> np.ndarray:
        """(H, W, 3) uint8: the picture with face k posed by rigs[k]; written into `out` when given."""
        if len(rigs) != len(self._faces):
            raise ValueError(f"render needs one Rig per face: got {len(rigs)} for {len(self._faces)} faces")
        if out is None:
            out = self.picture.copy()
        else:
            if out.shape != self.picture.shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
                raise ValueError(
                    f"out must be a contiguous {self.picture.shape} uint8 array, got {out.shape}"
                )
            np.copyto(out, self.picture)
        for face, rig in zip(self._faces, rigs, strict=True):
            self._render_face(face, rig.clipped(), out)
        return out

    def _render_face(self, face: PreparedFace, rig: Rig, out: np.ndarray) -> None:
        fh = face.face_height
        spread = (rig.width - 0.5) * 2.0
        coef = {
            "jaw": rig.openness * JAW_DROP * fh,
            # an open mouth's upper lip already shows its teeth: it stays, lest the teeth rise with it
            "upper_lip": 0.0 if face.open_at_rest else rig.openness * UPPER_LIP_RISE * fh,
            "width": spread * (1.0 if spread > 0 else ROUND_DEPTH) * CORNER_SPREAD * face.lips_width,
            "lid": 1.0 - rig.lid,
            "brow": rig.brow,
        }
        active = {n: c for n, c in coef.items() if c != 0.0 and n in face.bases}
        lids = coef["lid"] > 0 and bool(face.eyelids)
        head = self._head_motion(face, rig)
        if not active and not lids and head is None:
            return
        x0, y0, x1, y1 = face.box
        view = out[y0:y1, x0:x1]
        np.copyto(face.crop, view)
        if active or lids:
            maps = face.grid.copy()
            for name, c in active.items():
                b = face.bases[name]
                field = b.field
                if name in face.follow and "width" in active:
                    # the mouth's shape moves with its corners: read the field where the corners came from
                    own, unit_width = face.follow[name]
                    field = cv2.remap(
                        field,
                        own + coef["width"] * unit_width,
                        None,
                        cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE,
                    )
                sub = maps[b.rows, b.cols]
                cv2.scaleAdd(field, c, sub, dst=sub)
            gap = self._part_lips(face, coef, maps) if coef["jaw"] > 0 else None
            seam = self._keep_neck(face, maps) if coef["jaw"] > 0 else None
            cv2.remap(
                face.crop, maps, None, cv2.INTER_LINEAR, dst=face.warped, borderMode=cv2.BORDER_REPLICATE
            )
            if seam is not None:  # antialias the chin's edge over the neck
                rows, cols, alpha = seam
                moved = face.warped[rows, cols]
                still = face.crop[face.local[0], face.local[1]][rows, cols]
                moved[:] = np.rint(still + (moved.astype(np.float32) - still) * alpha[..., None])
            if gap is not None:
                self._paint_mouth(face, *gap)
            if lids:
                for lid, (rows, cols) in face.eyelids:
                    lid.paint(face.warped[rows, cols], coef["lid"])
            target = face.crop if head is not None else view
            target[face.local[0], face.local[1]] = face.warped
        if head is not None:
            hx, hy = face.head_grid[0].copy(), face.head_grid[1].copy()
            fqx, fqy, fe = face.head_basis
            for m, (p, q, r) in ((hx, head[:3]), (hy, head[3:])):
                cv2.scaleAdd(fqx, p, m, dst=m)
                cv2.scaleAdd(fqy, q, m, dst=m)
                cv2.scaleAdd(fe, r, m, dst=m)
            cv2.remap(face.crop, hx, hy, cv2.INTER_LINEAR, dst=view, borderMode=cv2.BORDER_REPLICATE)

    @staticmethod
    def _head_motion(face: PreparedFace, rig: Rig) -> tuple[float, ...] | None:
        """Coefficients of the feathered similarity's backward map, or None when the head is still."""
        if rig.head_dx == 0 and rig.head_dy == 0 and rig.tilt == 0:
            return None
        tx = rig.head_dx * face.face_width
        ty = rig.head_dy * face.face_height
        theta = rig.tilt
        reach = float(np.hypot(*face.head.axes)) + float(np.linalg.norm(face.head.centre - face.head.pivot))
        shift = np.hypot(tx, ty) + abs(theta) * reach
        if shift > face.head.max_shift:  # the feather would fold: scale the motion down
            k = face.head.max_shift / shift
            tx, ty, theta = tx * k, ty * k, theta * k
        cos, sin = np.cos(theta), np.sin(theta)
        # backward: src = pivot + R(-theta) (p - pivot - t), blended by the feather
        return (cos - 1.0, sin, -(cos * tx + sin * ty), -sin, cos - 1.0, sin * tx - cos * ty)

    @staticmethod
    def _keep_neck(face: PreparedFace, maps: np.ndarray) -> tuple[slice, slice, np.ndarray] | None:
        """The chin slides over the neck: a pixel whose jaw-moved source falls below the jaw line shows the
        neck where it is (maps set to the identity here). Returns the edge's box and the face's share of
        each pixel there, for antialiasing, or None when no pixel straddles it."""
        if face.jaw_band is None:
            return None
        rows, cols = face.jaw_band
        band = maps[rows, cols]
        u, v = face.mouth.uv(band[..., 0] + face.box[0], band[..., 1] + face.box[1])
        alpha = np.clip(face.mouth.jaw_line(u) - v + 0.5, 0.0, 1.0).astype(np.float32)
        neck = alpha <= 0
        band[neck] = face.grid[rows, cols][neck]
        cut = nonzero_box((alpha > 0) & (alpha < 1))
        if cut is None:
            return None
        return (
            slice(rows.start + cut[0].start, rows.start + cut[0].stop),
            slice(cols.start + cut[1].start, cols.start + cut[1].stop),
            alpha[cut],
        )

    @staticmethod
    def _part_lips(
        face: PreparedFace, coef: dict[str, float], maps: np.ndarray
    ) -> tuple[np.ndarray, ...] | None:
        """Where the lips part, on the mouth box: each pixel samples the lip that covers it (the maps are
        set here), and the gap that neither covers is returned as (its box in `local`, alpha, t, s, gap px, u)."""
        frame = face.mouth
        lips = face.mouth_lips
        shift = coef["width"] * face.mouth_width
        if coef["width"] != 0:  # the lips' fields follow the corners, as in _render_face
            lips = cv2.remap(
                lips, face.mouth_own + shift, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
        q = face.mouth_xy + shift
        src_up = q + coef["jaw"] * lips[..., 0:2] + coef["upper_lip"] * lips[..., 4:6]
        src_low = q + coef["jaw"] * lips[..., 2:4]
        u_up, v_up = frame.uv(src_up[..., 0], src_up[..., 1])
        u_low, v_low = frame.uv(src_low[..., 0], src_low[..., 1])
        # px past the line where the lips meet: the upper lip covers a pixel whose upper source lies above
        # that line, the lower lip one whose lower source lies below; the gap is where neither does
        d_up = v_up - frame.split_v(u_up)
        d_low = v_low - frame.split_v(u_low)
        src = np.where((d_up < 0)[..., None], src_up, src_low)
        src -= np.array(face.box[:2], np.float32)
        maps[face.mouth_box] = src
        # the share of the pixel's height inside the gap [-d_up, -d_low]: 0 where the lips still meet
        alpha = np.clip(np.minimum(0.5, -d_low) - np.maximum(-0.5, -d_up), 0.0, 1.0)
        cut = nonzero_box(alpha)
        if cut is None:
            return None
        alpha, d_up, d_low, u_up = alpha[cut], d_up[cut], d_low[cut], u_up[cut]  # only the gap is painted
        gap = np.maximum(d_up - d_low, 1e-3)
        t = np.clip(d_up / gap, 0.0, 1.0)
        s = np.clip(u_up / frame.half_width, -1.0, 1.0)
        rows, cols = face.mouth_box
        box = (
            slice(rows.start + cut[0].start, rows.start + cut[0].stop),
            slice(cols.start + cut[1].start, cols.start + cut[1].stop),
        )
        return box, alpha, t, s, gap, u_up

    def _paint_mouth(
        self,
        face: PreparedFace,
        box: tuple[slice, slice],
        alpha: np.ndarray,
        t: np.ndarray,
        s: np.ndarray,
        gap: np.ndarray,
        u: np.ndarray,
    ) -> None:
        """Colour the gap between the parted lips in face.warped."""
        if face.interior is not None:
            colour = self._interior_pixels(face, u, t)
        else:
            colour = procedural(
                face.palette, t, s, gap, face.face_height, face.mouth.half_width, teeth=not face.open_at_rest
            )
        region = face.warped[box]
        a = alpha[..., None].astype(np.float32)
        region[:] = np.rint(region + (colour - region) * a).astype(np.uint8)

    @staticmethod
    def _interior_pixels(face: PreparedFace, u: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The open-mouth picture's pixels for gap places (u, t): it is taken to show this face framed as
        the picture, corners where the picture's are, the mouth open as far as openness 1 opens it."""
        frame, fh = face.mouth, face.face_height
        lens = frame.lens(u)
        rise = UPPER_LIP_RISE * fh * lens
        full = (
            JAW_DROP * fh * (1.0 - CORNER_DRAG * np.minimum((u / frame.half_width) ** 2, 1.0)) * lens + rise
        )
        v = frame.split_v(u) - rise + t * full
        x = frame.origin[0] + u * frame.right[0] + v * frame.down[0]
        y = frame.origin[1] + u * frame.right[1] + v * frame.down[1]
        xy = np.dstack([x, y]).astype(np.float32)
        return cv2.remap(face.interior, xy, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(
            np.float32
        )
