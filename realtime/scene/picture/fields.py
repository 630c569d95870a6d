"""The displacement fields that move a face of a picture, built once per face from its landmarks.

Each field is a backward displacement (output pixel -> where in the picture it samples, minus the output
pixel) for one unit of one rig value, stored on the tight sub-box of the face crop where it is non-zero.
realtime.scene.picture.render sums them, scaled by a frame's rig values, into one cv2.remap per face. All
shapes come from landmarks (no photo statistics), so drawings move the same way photos do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realtime.scene.picture.rig import FaceLandmarks

JAW_DROP = 0.16  # face heights the lower lip moves down at openness 1 (a fully dropped jaw)
CHIN_SHARE = 0.75  # of the lower lip's drop, the chin's: the jaw drops, the lip is pulled down further
UPPER_LIP_RISE = 0.025  # face heights the upper lip's middle moves up at openness 1
CORNER_SPREAD = 0.1  # mouth widths each corner moves out at width 1 (and in at width 0)
CORNER_DRAG = 0.35  # share of the jaw drop the mouth corners follow (they hinge between the lips)
BROW_LIFT = 0.025  # face heights the brows move up at brow 1
HEAD_GROW = 0.75  # head region semi-axes in face widths/heights (the face box grown 25% per side)
HEAD_INNER = 0.62  # inside this share of the head ellipse the head moves rigidly, then feathers to 0
EYE_HALF_WIDTH = 0.22  # an eye's half width in inter-eye distances (face mesh: 0.43-0.44 per whole eye)
LID_SAG = 0.3  # open-eye heights the skin over a closing eye drops at lid 0
DEFAULT_EYE_HEIGHT = 0.055  # face heights, when the landmarks do not know the open eye's height
MAX_EYE_HEIGHT = 0.3  # inter-eye distances: the tallest eye believed (face mesh: 0.14-0.16)


def smoothstep(e0: float | np.ndarray, e1: float | np.ndarray, x: np.ndarray) -> np.ndarray:
    """0 at e0, 1 at e1, C1 between (falls instead when e1 < e0)."""
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@dataclass(frozen=True)
class MouthFrame:
    """The face's own axes at the mouth: u along the mouth (image right), v down the face; origin the
    corners' midpoint. The split is the curve where the lips meet (the lower lip's edge if open)."""

    origin: np.ndarray  # (2,) canvas px
    right: np.ndarray  # (2,) unit
    down: np.ndarray  # (2,) unit, from between the eyes to the chin
    half_width: float  # px, centre to corner
    split: np.ndarray  # (3,) quadratic a, b, c of the split v(u) between the corners
    nose: float  # v of the nose base (where the jaw's pull ends)
    chin: float  # v of the chin
    lower_outer: float  # v of the lower lip's outer edge in the middle
    upper_outer: float  # v of the upper lip's outer edge in the middle
    jaw_half_width: float  # px, half the face box's width: the jaw line's half width at the nose

    @staticmethod
    def of(lm: FaceLandmarks) -> MouthFrame:
        eyes = np.asarray(lm.eyes, np.float64)
        chin = np.asarray(lm.chin, np.float64)
        down = chin - eyes.mean(axis=0)
        down = down / max(np.linalg.norm(down), 1e-6)
        right = np.array([down[1], -down[0]])
        left_c, right_c = np.asarray(lm.mouth_left, np.float64), np.asarray(lm.mouth_right, np.float64)
        origin = (left_c + right_c) / 2

        def uv(p: np.ndarray) -> tuple[float, float]:
            d = np.asarray(p, np.float64) - origin
            return float(d @ right), float(d @ down)

        (ul, vl), (ur, vr) = uv(left_c), uv(right_c)
        # the lips part where they meet; a mouth open in the picture parts at its lower lip's inner edge,
        # so what the gap shows (usually the upper teeth) stays with the upper jaw it belongs to
        um, vm = uv(lm.lower_lip - 0.5 * down if lm.mouth_open_at_rest else lm.mouth_centre)
        half = max((ur - ul) / 2, 1.0)
        if not ul + 0.2 * half < um < ur - 0.2 * half:  # a middle point off to one side: a straight split
            um, vm = 0.0, (vl + vr) / 2
        split = np.polyfit([ul, um, ur], [vl, vm, vr], 2)
        v_chin = uv(chin)[1]
        mid = float(np.polyval(split, 0.0))
        nose = mid - 0.45 * (v_chin - mid)  # face mesh: 0.46-0.48
        lower = uv(lm.outer_lower_lip)[1] if lm.outer_lower_lip is not None else mid + 0.3 * (v_chin - mid)
        upper = uv(lm.outer_upper_lip)[1] if lm.outer_upper_lip is not None else mid - 0.5 * (mid - nose)
        lower = float(np.clip(lower, mid + 1, mid + 0.7 * (v_chin - mid)))
        upper = float(np.clip(upper, nose + 1, mid - 1))
        jaw = float(lm.box[2] - lm.box[0]) / 2
        return MouthFrame(origin, right, down, half, split, nose, v_chin, lower, upper, jaw)

    def uv(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Canvas x, y -> u, v (Python floats as factors keep float32 arrays float32 per frame)."""
        (ox, oy), (rx, ry), (dnx, dny) = (tuple(map(float, a)) for a in (self.origin, self.right, self.down))
        dx, dy = x - ox, y - oy
        return dx * rx + dy * ry, dx * dnx + dy * dny

    def split_v(self, u: np.ndarray) -> np.ndarray:
        """v of the split at u; level with the nearer corner beyond the corners."""
        a, b, c = map(float, self.split)
        u = np.clip(u, -self.half_width, self.half_width)
        return (a * u + b) * u + c

    def jaw_line(self, u: np.ndarray) -> np.ndarray:
        """v of the face's lower outline at u: half an ellipse from the nose's level at the face box's
        sides through (just below) the chin; a little outside a real jaw line, never inside it (face mesh
        on the test photos: 0-10 px outside at the jaw's angles, on the chin at the chin)."""
        across = np.clip(1.0 - (u / self.jaw_half_width) ** 2, 0.0, None)
        return self.nose + (self.chin + 2.0 - self.nose) * np.sqrt(across)

    def lens(self, u: np.ndarray) -> np.ndarray:
        """How far the lips part at u, 1 in the middle, 0 at and beyond the corners (an open mouth's
        outline, a little pointed at the corners)."""
        return np.clip(1.0 - (u / self.half_width) ** 2, 0.0, None) ** 0.6

    def vector(self, w_right: np.ndarray, w_down: np.ndarray) -> np.ndarray:
        """(2, H, W) canvas x, y from components along right and down."""
        return np.stack(
            [w_right * self.right[0] + w_down * self.down[0], w_right * self.right[1] + w_down * self.down[1]]
        )


@dataclass(frozen=True)
class MouthFields:
    """Unit fields of the mouth. jaw_upper/jaw_lower are the fields the upper and lower lip move by,
    continued over the whole crop (where the lips part, each pixel takes the lip that covers it); jaw
    and upper_lip take them by which side of the split a pixel lies (right away from the gap)."""

    jaw_upper: np.ndarray  # (2, H, W) per unit jaw drop (px)
    jaw_lower: np.ndarray
    jaw: np.ndarray
    upper_lip_any: np.ndarray  # (2, H, W) per unit upper-lip rise (px), everywhere (the interior needs it)
    upper_lip: np.ndarray  # (2, H, W) the same on the upper side only
    width: np.ndarray  # (2, H, W) per unit corner shift (px)


def mouth_fields(frame: MouthFrame, lm: FaceLandmarks, x: np.ndarray, y: np.ndarray) -> MouthFields:
    """The jaw, upper lip and corner fields on canvas points x, y (H, W)."""
    u, v = frame.uv(x, y)
    fh = lm.face_height
    hw = frame.half_width
    split = frame.split_v(u)
    lower_side = v >= split
    # across the face: the chin and the lips move fully, the jaw line by the ears hardly (the jaw hinges there)
    lateral = 1.0 - smoothstep(1.1 * hw, max(frame.jaw_half_width, 1.3 * hw), np.abs(u))
    # the chin slides over the neck, which stays (realtime.scene.picture.render shows the neck wherever
    # the jaw's source falls outside the jaw line): nothing below the lowest the chin can reach needs a field
    below = v <= frame.jaw_line(u) + JAW_DROP * fh + 4
    lens = frame.lens(u)
    corner = CORNER_DRAG * np.minimum((u / hw) ** 2, 1.0)  # how much of the drop the lips' ends follow
    # lower side: at the split the lips part in the lens shape; down to the chin the jaw takes over
    at_lip = corner + (1.0 - corner) * lens
    # the lower lip's inner edge lands at split + at_lip * drop; the field must hold at_lip all the way
    # there (for every drop) so that the lips meet again beyond the corners, only then grow to the chin's
    to_chin = smoothstep(split + at_lip * JAW_DROP * fh + 1.0, frame.chin, v)
    w_lower = lateral * below * (at_lip + (CHIN_SHARE - at_lip) * to_chin)
    # upper side: only the lips' ends and the cheeks beside them are pulled down, fading up to the nose
    w_upper = lateral * corner * smoothstep(frame.nose, split, v)
    drop_lower, drop_upper = frame.vector(0 * u, -w_lower), frame.vector(0 * u, -w_upper)
    jaw = np.where(lower_side, drop_lower, drop_upper)
    # the upper lip rises as a piece up to its outer edge, then fades to nothing at the nose
    rel = v - split
    lip_top = frame.upper_outer - frame.split_v(0.0)
    nose_rel = frame.nose - frame.split_v(0.0)
    rise = lens * (1.0 - smoothstep(lip_top, nose_rel, rel))
    rise_any = frame.vector(0 * u, rise)
    upper_lip = rise_any * ~lower_side
    # corners: the mouth stretches along itself, fading beyond the corners and away from the lips
    along = np.where(np.abs(u) <= hw, u / hw, np.sign(u) * (1.0 - smoothstep(hw, 1.8 * hw, np.abs(u))))
    band = smoothstep(frame.nose, frame.upper_outer, v) * (1.0 - smoothstep(frame.lower_outer, frame.chin, v))
    width = frame.vector(-along * band, 0 * u)
    return MouthFields(drop_upper, drop_lower, jaw, rise_any, upper_lip, width)


@dataclass(frozen=True)
class EyeFrame:
    """One eye's axes: u along the eye line (image right), v down; origin the eye's centre."""

    centre: np.ndarray  # (2,) canvas px
    right: np.ndarray  # (2,) unit
    down: np.ndarray  # (2,) unit
    half_width: float  # px, centre to corner
    height: float  # px, the open eye's height in the middle

    @staticmethod
    def pair(lm: FaceLandmarks) -> list[EyeFrame]:
        eyes = np.asarray(lm.eyes, np.float64)
        across = eyes[1] - eyes[0]
        iod = max(float(np.linalg.norm(across)), 1.0)
        right = across / iod
        down = np.array([-right[1], right[0]])
        eh = lm.eye_height if lm.eye_height > 0 else DEFAULT_EYE_HEIGHT * lm.face_height
        eh = min(eh, MAX_EYE_HEIGHT * iod)  # an overestimate would close the lid over the brows
        return [EyeFrame(e, right, down, EYE_HALF_WIDTH * iod, float(eh)) for e in eyes]

    def uv(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = x - self.centre[0], y - self.centre[1]
        return dx * self.right[0] + dy * self.right[1], dx * self.down[0] + dy * self.down[1]

    def opening(self, u: np.ndarray) -> np.ndarray:
        """The eye's height at u as a share of its middle height: 1 in the middle, 0 at the corners (between
        a parabola and an ellipse: a real eye's ends are pointed, a drawn eye's often round)."""
        return np.clip(1.0 - (u / self.half_width) ** 2, 0.0, None) ** 0.75

    def upper_lid(self, u: np.ndarray) -> np.ndarray:
        """v of the upper lid's edge at u."""
        return -0.5 * self.height * self.opening(u)


def eye_fields(lm: FaceLandmarks, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lid, brow) unit fields (2, H, W): lid per unit closing (1 - lid), brow per unit brow raise."""
    fh = lm.face_height
    lid = np.zeros((2, *x.shape))
    brow = np.zeros((2, *x.shape))
    for eye in EyeFrame.pair(lm):
        u, v = eye.uv(x, y)
        eh = eye.height
        # the skin above the eye follows the closing lid a little (its crease drops); the eye itself does
        # not move: realtime.scene.picture.eyelid paints the lid over it
        top = eye.upper_lid(u)
        w = LID_SAG * eh * eye.opening(u) * smoothstep(top - 1.3 * eh, top, v) * (v < top)
        lid -= np.stack([w * eye.down[0], w * eye.down[1]])
        # the brow rises as one piece over the eye's width, fading up the forehead, down to the eye's
        # middle (the upper lid lifts a little with it) and out beyond the eye's corners
        brow_v = -max(0.1 * fh, 1.6 * eh)
        across = 1.0 - smoothstep(0.9 * eye.half_width, 1.9 * eye.half_width, np.abs(u))
        above = smoothstep(brow_v - 0.16 * fh, brow_v - 0.02 * fh, v)
        below = 1.0 - smoothstep(brow_v + 0.01 * fh, 0.0, v)
        w = across * above * below * BROW_LIFT * fh
        brow += np.stack([w * eye.down[0], w * eye.down[1]])
    return lid, brow


@dataclass(frozen=True)
class HeadFrame:
    """The head region: an ellipse around the face box in which the head moves rigidly, feathered to 0."""

    centre: np.ndarray  # (2,) ellipse centre, canvas px
    axes: np.ndarray  # (2,) semi-axes px
    pivot: np.ndarray  # (2,) where the head rolls about (low in the face, towards the neck)
    max_shift: float  # px, the most any point may move at the inner ellipse (the feather never folds)

    @staticmethod
    def of(lm: FaceLandmarks) -> HeadFrame:
        x0, y0, x1, y1 = (float(v) for v in lm.box)
        fw, fh = x1 - x0, y1 - y0
        axes = np.array([HEAD_GROW * fw, HEAD_GROW * fh])
        band = (1.0 - HEAD_INNER) * float(axes.min())
        # a smoothstep's steepest slope is 1.5 / band: keep the feather's gradient well below 1
        return HeadFrame(
            np.array([(x0 + x1) / 2, (y0 + y1) / 2]),
            axes,
            np.array([(x0 + x1) / 2, y0 + 0.65 * fh]),
            0.6 * band / 1.5,
        )

    def feather(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        r = np.hypot((x - self.centre[0]) / self.axes[0], (y - self.centre[1]) / self.axes[1])
        return 1.0 - smoothstep(HEAD_INNER, 1.0, r)


def search_box(lm: FaceLandmarks, height: int, width: int) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (end exclusive) of a canvas box sure to hold every field of the face (the renderer
    cuts it down to where they are non-zero): the face box grown by its size on each side."""
    x0, y0, x1, y1 = (float(v) for v in lm.box)
    fw, fh = x1 - x0, y1 - y0
    return (
        int(np.clip(np.floor(x0 - fw), 0, width)),
        int(np.clip(np.floor(y0 - fh), 0, height)),
        int(np.clip(np.ceil(x1 + fw), 0, width)),
        int(np.clip(np.ceil(y1 + fh), 0, height)),
    )
