"""Renders a scene performing a dialogue: the frames, soft masks and boxes of realtime.scene.cartoon.tracks.SceneRender.

The world's training data, benchmark and test fixture. Backgrounds and characters are signed-distance
shapes evaluated on the pixel grid with torch, a chunk of frames at a time; characters are composited
far to near and each one's mask is what remains visible of it. Same scene and seed, same pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from realtime.errors import FrameSizeError, SceneError
from realtime.media import SUPPORTED_FRAME_SIZES, VIDEO_FPS
from realtime.scene.cartoon import sdf
from realtime.scene.cartoon import shapes as cartoon
from realtime.scene.cartoon.characters import validate_scene
from realtime.scene.cartoon.motion import MotionPlan, idle_gaze, plan_motion, standing_xy, sway_tilt
from realtime.scene.cartoon.sdf import coverage
from realtime.scene.cartoon.tracks import DialogueTrack, SceneRender

CHUNK_ELEMENTS = 400_000  # crop pixels x frames per drawing pass: big enough to amortise torch's overhead
# Torch threads while rendering. Many small elementwise ops stall whenever a sibling thread is
# descheduled: with one of 2 cores busy, 2 threads rendered 290 frames/s vs 720 for 1 thread (and the
# tests took 88 s vs 1 s). Data generation parallelises across clips (loader workers) instead.
RENDER_THREADS = 1


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run the block with n torch intra-op threads, restoring the caller's setting after."""
    before = torch.get_num_threads()
    if before == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_frame_size(size: int) -> int:
    """Return size if frames can be rendered at size x size, else raise FrameSizeError."""
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size not in SUPPORTED_FRAME_SIZES:
        raise FrameSizeError(
            f"frame size must be one of {', '.join(map(str, SUPPORTED_FRAME_SIZES))} px, got {size!r}"
        )
    return int(size)


def _grid(size: int) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates in scene units: x (1, W), y (H, 1)."""
    c = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    return c[None, :], c[:, None]


def render_background(background: dict, size: int) -> Tensor:
    """(H, W, 3) float in [0, 1]: wall gradient, wall pattern, props and floor."""
    x, y = _grid(size)
    px = 1.0 / size
    floor_y = background["floor_y"]
    top, bottom = cartoon.rgb(background["top"]), cartoon.rgb(background["bottom"])
    t = (y / max(floor_y, 1e-3)).clamp(0.0, 1.0)[..., None]
    img = (top + (bottom - top) * t).expand(size, size, 3).clone()

    def paint(cov: Tensor, colour: Tensor) -> None:
        img.mul_(1.0 - cov[..., None]).add_(cov[..., None] * colour)

    wall = coverage(y - floor_y, px).expand(size, size)
    pattern = cartoon.rgb(background["pattern_colour"])
    k = background["pattern_scale"]
    if background["pattern"] == "stripes":
        d = ((x / k) % 1.0 - 0.5).abs() * k - 0.25 * k
        paint(coverage(d, px) * wall * 0.3, pattern)
    elif background["pattern"] == "dots":
        gx = (x / k) % 1.0 - 0.5
        gy = (y / k) % 1.0 - 0.5
        paint(coverage(sdf.circle(gx * k, gy * k, 0.16 * k), px) * wall * 0.45, pattern)
    elif background["pattern"] == "windows":
        for cx in (0.22, 0.78):
            pane = sdf.round_box(x - cx, y - 0.3, 1.3 * k, 1.6 * k, 0.01)
            paint(coverage(pane - 0.012, px) * wall, torch.tensor([0.95, 0.93, 0.88]))
            paint(coverage(pane, px) * wall, pattern)
            bars = torch.minimum(sdf.round_box(x - cx, y - 0.3, 0.006, 1.6 * k, 0.0), (y - 0.3).abs() - 0.006)
            paint(coverage(bars, px) * coverage(pane, px) * wall, torch.tensor([0.95, 0.93, 0.88]))
    for shape in background["shapes"]:
        (cx, cy), (w, h) = shape["center"], shape["size"]
        if shape["kind"] == "circle":
            d = sdf.ellipse(x - cx, y - cy, w / 2 + 1e-4, h / 2 + 1e-4)
        else:
            d = sdf.round_box(x - cx, y - cy, w / 2, h / 2, 0.15 * min(w, h) / 2)
        colour = cartoon.rgb(shape["colour"])
        paint(coverage(d - 0.006, px) * wall, colour * 0.55)
        paint(coverage(d, px) * wall, colour)
    floor = cartoon.rgb(background["floor"])
    shade = (1.0 - 0.35 * ((y - floor_y) / max(1.0 - floor_y, 1e-3)).clamp(0.0, 1.0))[..., None]
    floor_img = floor * shade
    cov = (1.0 - wall)[..., None]
    img = img * (1.0 - cov) + floor_img * cov
    edge = coverage((y - floor_y).abs() - 0.004, px).expand(size, size)[..., None]
    return img * (1.0 - edge) + floor * 0.6 * edge


def _check_dialogue(scene: dict, dialogue: DialogueTrack) -> None:
    n = len(scene["characters"])
    if dialogue.n_characters != n:
        raise SceneError(f"scene has {n} characters but the dialogue has {dialogue.n_characters}")
    t = dialogue.n_frames
    for name in ("openness", "viseme", "active"):
        shape = getattr(dialogue, name).shape
        if shape != (n, t):
            raise SceneError(f"dialogue.{name} has shape {shape}, expected ({n}, {t})")
    if not np.isfinite(dialogue.openness).all():
        raise SceneError("dialogue.openness has non-finite values")


def _boxes(scene: dict, plan: MotionPlan, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, N, 4) head boxes and fixed-size mouth boxes, pixel x0, y0, x1, y1."""
    n, t = plan.x.shape
    boxes = np.zeros((t, n, 4), np.float32)
    mouths = np.zeros((t, n, 4), np.float32)
    for i, ch in enumerate(scene["characters"]):
        s = ch["head"]["size"]
        hh = s * ch["head"]["aspect"]
        hx = plan.x[i] + plan.head_dx[i] * s
        hy = plan.y[i] + plan.head_dy[i] * hh
        boxes[:, i] = np.stack([hx - s / 2, hy - hh / 2, hx + s / 2, hy + hh / 2], -1) * size
        dx, dy = cartoon.mouth_centre(ch, plan.head_dx[i] * s, plan.head_dy[i] * hh, plan.tilt[i])
        mx, my = plan.x[i] + dx, plan.y[i] + dy
        bw, bh = cartoon.MOUTH_BOX[0] * s / 2, cartoon.MOUTH_BOX[1] * hh / 2
        mouths[:, i] = np.stack([mx - bw, my - bh, mx + bw, my + bh], -1) * size
    return boxes, mouths


def _draw_chunk(
    scene: dict, plan: MotionPlan, order: list[int], bg: Tensor, t0: int, t1: int, size: int
) -> tuple[Tensor, Tensor]:
    """Frames (Tc, H, W, 3) float and visible masks (Tc, N, H, W) of frames t0..t1."""
    tc, n = t1 - t0, plan.x.shape[0]
    px = 1.0 / size
    stride = size + 1  # one spare column and row: crop pixels that fall off the frame land there
    dump = size * stride + size
    canvas = torch.zeros(3, tc, size + 1, stride)
    canvas[:, :, :size, :size] = bg.permute(2, 0, 1)[:, None]
    canvas = canvas.view(3, tc, -1)
    masks = torch.zeros(tc, n, (size + 1) * stride)
    last_viseme = len(cartoon.VISEME_SHAPES) - 1  # unknown codes draw like the last row
    for i in order:
        ch = scene["characters"][i]
        s = ch["head"]["size"]
        hh = s * ch["head"]["aspect"]
        left, up, down = cartoon.crop_extent(ch, size)
        h, w = up + down, 2 * left
        ax = torch.from_numpy(plan.x[i, t0:t1]).float()
        ay = torch.from_numpy(plan.y[i, t0:t1]).float()
        ox = torch.floor(ax * size).long() - left  # crop origin in frame pixels, per frame
        oy = torch.floor(ay * size).long() - up
        cols = torch.arange(w)
        rows = torch.arange(h)
        x = ((ox[:, None] + cols + 0.5) * px - ax[:, None])[:, None, :]  # (Tc, 1, w) offsets from anchor
        y = ((oy[:, None] + rows + 0.5) * px - ay[:, None])[:, :, None]  # (Tc, h, 1)

        def per_frame(a: np.ndarray) -> Tensor:
            return torch.from_numpy(np.ascontiguousarray(a[t0:t1])).float()[:, None, None]

        tilt = per_frame(plan.tilt[i])
        codes = torch.from_numpy(plan.viseme[i, t0:t1].astype(np.int64)).clamp(0, last_viseme)
        f = cartoon.Frames(
            hx=per_frame(plan.head_dx[i]) * s,
            hy=per_frame(plan.head_dy[i]) * hh,
            cos=torch.cos(tilt),
            sin=torch.sin(tilt),
            lid=per_frame(plan.lid[i]),
            brow=per_frame(plan.brow[i]),
            gaze=per_frame(plan.gaze[i]),
            openness=per_frame(plan.openness[i]),
            viseme=cartoon.VISEME_SHAPES[codes][:, None, None, :],
        )
        rgb, alpha = cartoon.draw_character(ch, f, x, y, px, 1.0 if i % 2 == 0 else -1.0)

        fy = oy[:, None, None] + rows[None, :, None]
        fx = ox[:, None, None] + cols[None, None, :]
        inside = (fy >= 0) & (fy < size) & (fx >= 0) & (fx < size)
        idx = torch.where(inside, fy * stride + fx, dump).view(tc, -1)  # (Tc, h*w)
        a = alpha.view(tc, -1)
        idx3 = idx[None].expand(3, -1, -1)
        under = canvas.gather(2, idx3)
        canvas.scatter_(2, idx3, under.mul_(1.0 - a).add_(rgb.view(3, tc, -1)))
        idxn = idx[:, None, :].expand(-1, n, -1)
        seen = masks.gather(2, idxn).mul_((1.0 - a)[:, None])  # a nearer character hides those behind
        seen[:, i] = a
        masks.scatter_(2, idxn, seen)
    frames = canvas.view(3, tc, size + 1, stride)[:, :, :size, :size].permute(1, 2, 3, 0)
    return frames, masks.view(tc, n, size + 1, stride)[:, :, :size, :size]


def render_scene(scene: dict, dialogue: DialogueTrack, size: int, seed: int) -> SceneRender:
    """Render the scene's characters performing the dialogue at size x size, deterministic from seed."""
    size = check_frame_size(size)
    scene = validate_scene(scene)
    _check_dialogue(scene, dialogue)
    openness = np.clip(np.asarray(dialogue.openness, np.float64), 0.0, 1.0)
    plan = plan_motion(
        scene, openness, np.asarray(dialogue.viseme), np.asarray(dialogue.active), dialogue.fps, seed
    )
    return render_plan(scene, plan, size)


def standing_plan(scene: dict, n_frames: int, fps: int, first: int = 0) -> MotionPlan:
    """Where each character of a validated scene stands in frames first .. first + n_frames - 1 (the
    drift, sway, idle bob, slow head roll and gaze of `plan_motion` with nobody speaking), every face at
    rest: eyes open, mouth shut, no nods or speech jitter. Nothing in it depends on the dialogue or on
    a render seed (which only draws blinks, nods and jitter), so it is the choreography a scene can
    give a generator without telling it who speaks."""
    n = len(scene["characters"])
    t = (first + np.arange(n_frames)) / fps
    xy = [standing_xy(ch, t) for ch in scene["characters"]]
    x = np.stack([x for x, _ in xy])
    rest = np.zeros((n, n_frames))
    return MotionPlan(
        x=x,
        y=np.stack([y for _, y in xy]),
        head_dx=rest,
        head_dy=rest,
        tilt=np.stack([sway_tilt(ch, t) for ch in scene["characters"]]),
        lid=np.ones_like(rest),
        brow=rest,
        gaze=idle_gaze(x, t),
        openness=rest,
        viseme=rest.astype(np.int8),
        energy=rest,
    )


def render_standing(
    scene: dict, n_frames: int, size: int, first: int = 0, fps: int = VIDEO_FPS
) -> SceneRender:
    """A scene's pose track: frames first .. first + n_frames - 1 of its standing choreography
    (standing_plan) rendered, faces at rest. What `--track`, `--motion` and `--ref-track` give a generator."""
    return render_plan(scene, standing_plan(scene, n_frames, fps, first), size)


def render_plan(scene: dict, plan: MotionPlan, size: int) -> SceneRender:
    """Render a validated scene following a motion plan (render_scene's plan, or standing_plan's)."""
    n, t = plan.x.shape
    # Far characters first; ties keep the scene's order so the result never depends on sorting details.
    order = sorted(range(n), key=lambda i: (-scene["characters"][i]["depth"], i))
    bg = render_background(scene["background"], size)
    frames = np.empty((t, size, size, 3), np.uint8)
    masks = np.empty((t, n, size, size), np.float32)
    crop = sum(math.prod(_crop_pixels(ch, size)) for ch in scene["characters"]) / n
    chunk = max(1, int(CHUNK_ELEMENTS // crop))
    with torch.inference_mode(), _torch_threads(RENDER_THREADS):
        for t0 in range(0, t, chunk):
            t1 = min(t, t0 + chunk)
            f, m = _draw_chunk(scene, plan, order, bg, t0, t1, size)
            frames[t0:t1] = (f * 255.0 + 0.5).clamp_(0, 255).to(torch.uint8).numpy()
            masks[t0:t1] = m.clamp_(0.0, 1.0).numpy()
    boxes, mouth_boxes = _boxes(scene, plan, size)
    background = (bg * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
    return SceneRender(
        frames=frames, masks=masks, boxes=boxes, mouth_boxes=mouth_boxes, background=background
    )


def _crop_pixels(ch: dict, size: int) -> tuple[int, int]:
    left, up, down = cartoon.crop_extent(ch, size)
    return up + down, 2 * left


# Distinct mask colours for the contact sheet, one per character.
_MASK_COLOURS = np.array([[230, 60, 60], [60, 130, 230], [60, 190, 80], [230, 180, 40]], np.float32)


def save_contact_sheet(render: SceneRender, path: str | Path, n_columns: int = 8, scale: int = 2) -> Path:
    """Write a PNG for eyeballing the world: evenly spaced frames (top row) over their masks, one
    colour per character, with head boxes in white and mouth boxes in yellow (bottom row)."""
    import matplotlib.image

    t, n, h, _ = render.masks.shape
    picks = np.linspace(0, t - 1, min(n_columns, t)).round().astype(int)
    top, bottom = [], []
    for k in picks:
        top.append(np.kron(render.frames[k], np.ones((scale, scale, 1), np.uint8)))
        m = np.einsum("nhw,nc->hwc", render.masks[k], _MASK_COLOURS[:n]).clip(0, 255).astype(np.uint8)
        m = np.kron(m, np.ones((scale, scale, 1), np.uint8))
        for box, colour in ((render.boxes[k], 255), (render.mouth_boxes[k], (255, 230, 0))):
            for b in box:
                _draw_box(m, b * scale, colour)
        bottom.append(m)
    gap = np.full((h * scale, 2, 3), 255, np.uint8)
    rows = [np.concatenate([part for im in row for part in (im, gap)][:-1], axis=1) for row in (top, bottom)]
    sheet = np.concatenate([rows[0], np.full((2, rows[0].shape[1], 3), 255, np.uint8), rows[1]], axis=0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    matplotlib.image.imsave(path, sheet)
    return path


def _draw_box(img: np.ndarray, box: np.ndarray, colour: int | tuple[int, int, int]) -> None:
    h, w = img.shape[:2]
    x0, y0, x1, y1 = (round(float(v)) for v in box)
    x0, x1 = np.clip([x0, x1 - 1], 0, w - 1)
    y0, y1 = np.clip([y0, y1 - 1], 0, h - 1)
    img[y0, x0 : x1 + 1] = colour
    img[y1, x0 : x1 + 1] = colour
    img[y0 : y1 + 1, x0] = colour
    img[y0 : y1 + 1, x1] = colour
