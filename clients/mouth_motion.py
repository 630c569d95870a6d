"""Read mouth motion off received video: where each character's mouth is, and when it starts to move.

The latency benchmark and the browser test see the room only as frames. A mouth "moves" in frame t when
its region differs from that character's idle look (the mean of the idle frames just before a speech
onset) by more than the idle frames themselves vary: energy > mean + k x std of the idle energies (and
at least a floor above codec noise), for `hold` frames in a row. The first such frame is the motion
onset. Mouth boxes come from the world scene's own renderer, or for a picture scene from its faces'
landmarks (the points the picture renderer moves), so nothing here guesses where a mouth is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realtime.errors import SceneError
from realtime.scene.scenes import Scene, world_scene


@dataclass(frozen=True)
class MotionConfig:
    """How a motion onset is told from idle noise."""

    pad_px: int = 2  # grow each mouth box by this much: a generated mouth may sit a pixel or two off
    baseline_frames: int = 12  # idle frames before the onset (480 ms at 25 fps) that define "still"
    k_sigma: float = 4.0  # energy above idle mean + 4 std: ~1 false onset in 30 000 frames for Gaussian noise
    min_rise: float = 1.5  # ...and at least this far above the idle mean (0-255 grey levels): codec noise
    hold: int = 2  # frames in a row above the threshold; one noisy frame is not a mouth opening
    search_frames: int = 25  # look this far after the onset (1 s); no motion by then is "not detected"
    blur_px: float = 0.0  # Gaussian sigma applied to the crops first (0: none; see PICTURE_MOTION)


# A photo's face sways a pixel or so while idle (realtime.scene.performer): its fine texture (skin, hair,
# wrinkles) then differs frame to frame by several grey levels although no mouth moved. Blurred at 3 px
# that texture drops to ~1-3 levels while a parting mouth still differs by 10-30, and an onset must rise
# 4 levels: on the bench photos the speaker's onset is found at the same frame, a listener's sway is not.
PICTURE_MOTION = MotionConfig(blur_px=3.0, min_rise=4.0)


@dataclass(frozen=True)
class MotionOnset:
    """Result of one search: the first moving frame (None if none) and the numbers it was judged by."""

    frame: int | None  # index into the frames given, or None
    threshold: float  # energy the mouth had to exceed
    idle_mean: float
    idle_std: float
    peak: float  # highest energy in the search window


# -- where the mouths are ----------------------------------------------------------------------------
def scene_mouth_boxes(scene: Scene, seed: int) -> np.ndarray:
    """(N, 4) mouth boxes x0, y0, x1, y1 in canvas pixels of a world or file scene rendered with `seed`."""
    from distill.world.clip import DialogueTrack
    from realtime.media import SAMPLES_PER_FRAME
    from realtime.scene.cartoon.render import render_scene

    if scene.description is None:
        raise SceneError("mouth boxes are known only for world and file scenes (a photo scene has none)")
    n = scene.n_characters
    silent = DialogueTrack(
        np.zeros((n, SAMPLES_PER_FRAME), np.float32),
        np.zeros((n, 1), np.float32),
        np.zeros((n, 1), np.int8),
        np.zeros((n, 1), bool),
    )
    r = render_scene(scene.description, silent, size=scene.size, seed=seed)
    if not np.array_equal(r.frames[0], scene.reference):
        raise SceneError(f"the scene does not re-render with seed {seed}: its mouth boxes are unknown")
    x0, y0, x1, y1 = scene.region
    scale = np.array([(x1 - x0), (y1 - y0)] * 2, np.float32) / scene.size
    return r.mouth_boxes[0] * scale + np.array([x0, y0, x0, y0], np.float32)


# a picture face's mouth region grows by these shares of the mouth's width: the renderer also moves the
# lips' surroundings (corners spread, the upper lip rises), and the jaw takes the chin down with it
PICTURE_MOUTH_PAD = {"sides": 0.4, "top": 0.4, "below_chin": 0.15}


def picture_mouth_boxes(scene: Scene) -> np.ndarray:
    """(N, 4) boxes x0, y0, x1, y1 in canvas pixels around each picture face's mouth and jaw (corners,
    lips, chin), padded generously (PICTURE_MOUTH_PAD) and clipped to the face's box grown by half and
    to the canvas."""
    if not scene.faces:
        raise SceneError("mouth boxes from landmarks need a picture scene (scene.faces)")
    h, w = scene.background.shape[:2]
    boxes = []
    for f in scene.faces:
        mw = max(f.mouth_width, 0.1 * (f.box[2] - f.box[0]), 1.0)
        tops = [f.upper_lip[1], f.mouth_left[1], f.mouth_right[1]]
        if f.outer_upper_lip is not None:
            tops.append(f.outer_upper_lip[1])
        bottom = max(f.chin[1], f.lower_lip[1]) + PICTURE_MOUTH_PAD["below_chin"] * mw
        box = np.array(
            [
                min(f.mouth_left[0], f.mouth_right[0]) - PICTURE_MOUTH_PAD["sides"] * mw,
                min(tops) - PICTURE_MOUTH_PAD["top"] * mw,
                max(f.mouth_left[0], f.mouth_right[0]) + PICTURE_MOUTH_PAD["sides"] * mw,
                bottom,
            ],
            np.float32,
        )
        fx0, fy0, fx1, fy1 = np.asarray(f.box, np.float32)
        grow_x, grow_y = 0.5 * (fx1 - fx0), 0.5 * (fy1 - fy0)
        lo = np.array([max(0.0, fx0 - grow_x), max(0.0, fy0 - grow_y)], np.float32)
        hi = np.array([min(float(w), fx1 + grow_x), min(float(h), fy1 + grow_y)], np.float32)
        box[:2], box[2:] = np.clip(box[:2], lo, hi), np.clip(box[2:], lo, hi)
        boxes.append(box)
    return np.stack(boxes)


def mouth_boxes(scene: Scene, seed: int) -> np.ndarray:
    """(N, 4) mouth boxes in canvas pixels: a picture scene's from its landmarks, a world or file scene's
    from its renderer (rendered with `seed`)."""
    return picture_mouth_boxes(scene) if scene.faces else scene_mouth_boxes(scene, seed)


def mouth_visible(scene: Scene, boxes: np.ndarray, k: int) -> float:
    """Fraction of character k's mouth box where k is the front-most character (others may hide it)."""
    x0, y0, x1, y1 = np.round(boxes[k]).astype(int).clip(0, scene.size)
    masks = scene.masks[:, y0:y1, x0:x1]
    return float(((masks.argmax(0) == k) & (masks[k] > 0.5)).mean()) if masks.size else 0.0


def separated_world_scene(n: int, seed: int, size: int, pad_px: int, tries: int = 200) -> tuple[Scene, int]:
    """The first world scene from `seed` on whose mouths are all visible and whose padded mouth boxes do
    not overlap: one character's motion must not be read as another's. Returns (scene, its seed)."""
    for s in range(seed, seed + tries):
        scene = world_scene(n, s, size)
        boxes = scene_mouth_boxes(scene, s)
        grown = boxes + np.array([-pad_px, -pad_px, pad_px, pad_px])
        apart = all(
            grown[i, 2] <= grown[j, 0]
            or grown[j, 2] <= grown[i, 0]
            or grown[i, 3] <= grown[j, 1]
            or grown[j, 3] <= grown[i, 1]
            for i in range(n)
            for j in range(i + 1, n)
        )
        if apart and all(mouth_visible(scene, boxes, k) >= 0.9 for k in range(n)):
            return scene, s
    raise SceneError(
        f"no world scene with {n} separated, visible mouths among seeds {seed}..{seed + tries - 1}"
    )


# -- how much a mouth moves --------------------------------------------------------------------------
def crop(frames: np.ndarray, box: np.ndarray, pad_px: int) -> np.ndarray:
    """(T, h, w, 3) float32 crops of (T, H, W, 3) frames around a box grown by pad_px, clipped to the frame."""
    h, w = frames.shape[1:3]
    x0 = max(0, int(np.floor(box[0])) - pad_px)
    y0 = max(0, int(np.floor(box[1])) - pad_px)
    x1 = min(w, int(np.ceil(box[2])) + pad_px)
    y1 = min(h, int(np.ceil(box[3])) + pad_px)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"mouth box {box.tolist()} lies outside the {w}x{h} frame")
    return frames[:, y0:y1, x0:x1].astype(np.float32)


def blurred(crops: np.ndarray, sigma: float) -> np.ndarray:
    """(T, h, w, 3) float32 crops, each Gaussian-blurred by `sigma` px (0: as they are)."""
    if sigma <= 0:
        return crops
    import cv2

    return np.stack([cv2.GaussianBlur(c, (0, 0), sigma) for c in crops])


def energy_against(crops: np.ndarray, idle: np.ndarray) -> np.ndarray:
    """(T,) mean absolute difference (grey levels 0-255) of each crop from an idle look (h, w, 3)."""
    return np.abs(crops - idle[None]).mean(axis=(1, 2, 3))


def detect_motion_onset(
    frames: np.ndarray,
    box: np.ndarray,
    onset: int,
    cfg: MotionConfig = MotionConfig(),
    start: int | None = None,
) -> MotionOnset:
    """First frame at or after `start` (default: `onset`) in which the mouth in `box` moves.

    frames: (T, H, W, 3) uint8, consecutive at the video rate. The idle look and its noise come from
    frames [onset - baseline_frames, onset), which must show the character still.
    """
    if frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got {frames.shape}")
    if not cfg.baseline_frames <= onset <= len(frames):
        raise ValueError(
            f"onset {onset} needs {cfg.baseline_frames} idle frames before it in {len(frames)} frames"
        )
    start = onset if start is None else start
    if not 0 <= start <= onset + cfg.search_frames:
        raise ValueError(f"start {start} must lie in [0, onset + search_frames]")
    idle = blurred(crop(frames[onset - cfg.baseline_frames : onset], box, cfg.pad_px), cfg.blur_px)
    reference = idle.mean(0)
    base = energy_against(idle, reference)
    mean, std = float(base.mean()), float(base.std())
    threshold = max(mean + cfg.k_sigma * std, mean + cfg.min_rise)
    stop = min(len(frames), onset + cfg.search_frames + cfg.hold)
    energy = energy_against(blurred(crop(frames[start:stop], box, cfg.pad_px), cfg.blur_px), reference)
    above = energy > threshold
    found = None
    for i in range(len(above) - cfg.hold + 1):
        if start + i > onset + cfg.search_frames:
            break
        if above[i : i + cfg.hold].all():
            found = start + i
            break
    return MotionOnset(found, threshold, mean, std, float(energy.max()) if len(energy) else 0.0)


SPEECH_RMS = 0.02  # a frame's 40 ms louder than this is speech (the world and the bursts speak at ~0.1)
RESPONSE_FRAMES = 2  # a mouth may answer its audio up to 2 frames late: those count as speech too
SETTLE_FRAMES = 4  # frames after speech ends that count as neither (the mouth closing)


def speech_labels(
    audio: np.ndarray, samples_per_frame: int, first: int, count: int, offset: int = 0
) -> np.ndarray:
    """(count,) labels of frames first..first+count-1: 1 speech (a loud frame, or one of the
    RESPONSE_FRAMES after it), -1 settling (the SETTLE_FRAMES after that), 0 silence.

    audio: (n,) samples of frame-aligned audio whose sample 0 is sample `offset` of the video's clock;
    frames with no audio there are silent."""
    lo = first - RESPONSE_FRAMES - SETTLE_FRAMES
    loud = np.zeros(first + count - lo, bool)
    for i, f in enumerate(range(lo, first + count)):
        a = f * samples_per_frame - offset
        seg = audio[a : a + samples_per_frame] if a >= 0 else audio[:0]
        loud[i] = len(seg) > 0 and float(np.sqrt(np.mean(seg**2))) > SPEECH_RMS
    label = np.zeros(count, int)
    for j in range(count):
        i = j + RESPONSE_FRAMES + SETTLE_FRAMES  # frame first + j in `loud`
        if loud[i - RESPONSE_FRAMES : i + 1].any():
            label[j] = 1
        elif loud[i - RESPONSE_FRAMES - SETTLE_FRAMES : i - RESPONSE_FRAMES].any():
            label[j] = -1
    return label


def activity_contrast(crops: np.ndarray, speech: np.ndarray) -> dict:
    """How much more a mouth departs from its idle look while its voice speaks than in silence.

    crops: (T, h, w, 3) of one mouth; speech: (T,) bool, frames whose audio is this character's speech.
    The idle look is the median of the silent frames; returns the mean energy in speech and in silence
    and their ratio (1.0: the mouth does not react to its voice).
    """
    speech = np.asarray(speech, bool)
    if speech.shape != (len(crops),) or speech.all() or not speech.any():
        raise ValueError("speech must be a (T,) mask with both speech and silent frames")
    idle = np.median(crops[~speech], axis=0)
    energy = energy_against(crops, idle)
    on, off = float(energy[speech].mean()), float(energy[~speech].mean())
    return {"speech": round(on, 3), "silence": round(off, 3), "ratio": round(on / max(off, 1e-6), 3)}
