"""The latency benchmark on picture scenes (`bya bench latency --scene ...`): where a photo's mouths are
read (its landmarks, padded), why they are read blurred (a photo's faces sway while idle), and a short
live run of a tiny rig model on a picture through WHIP -> room -> WHEP whose row names its scene."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
from test_server import loopback_ice  # noqa: F401 (fixture: 127.0.0.1 ICE)

from clients.mouth_motion import (
    PICTURE_MOTION,
    MotionConfig,
    detect_motion_onset,
    mouth_boxes,
    picture_mouth_boxes,
)
from realtime.errors import SceneError

SIZE = 64
BOX = np.array([20, 30, 44, 46], np.float32)  # a mouth region on a 64 px textured "face"


def _swaying(t: int, seed: int) -> np.ndarray:
    """(t, SIZE, SIZE, 3) float32: a finely textured still picture moved by a slow sub-pixel sway, as a
    photo's idle head moves (realtime.scene.performer), nothing else changing."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (SIZE, SIZE, 3)).astype(np.float32), (0, 0), 0.8)
    texture = 60 + (texture - texture.min()) / (texture.max() - texture.min()) * 140
    frames = []
    for i in range(t):
        dx, dy = 0.8 * np.sin(2 * np.pi * 0.4 * i / 25), 0.6 * np.cos(2 * np.pi * 0.7 * i / 25)
        shift = np.float32([[1, 0, dx], [0, 1, dy]])
        frames.append(cv2.warpAffine(texture, shift, (SIZE, SIZE), borderMode=cv2.BORDER_REFLECT))
    return np.stack(frames)


def _open_mouth(frames: np.ndarray, start: int) -> None:
    """A dark lip gap opening over a few frames from `start` on."""
    for i in range(start, len(frames)):
        cv2.ellipse(frames[i], (32, 38), (7, 1 + min(i - start, 3)), 0, 0, 360, (30, 20, 20), -1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_swaying_photo_is_not_a_moving_mouth_but_a_parting_one_is(seed: int) -> None:
    still = _swaying(90, seed)
    quiet = still.round().astype(np.uint8)
    # read sharp (the world scenes' setting) the sway alone passes for a mouth moving...
    assert any(detect_motion_onset(quiet, BOX, onset).frame is not None for onset in (15, 35, 55))
    # ...read as pictures are, it does not
    assert all(detect_motion_onset(quiet, BOX, onset, PICTURE_MOTION).frame is None for onset in (15, 35, 55))
    for delay in (0, 3, 8):
        frames = still.copy()
        _open_mouth(frames, 30 + delay)
        found = detect_motion_onset(frames.round().astype(np.uint8), BOX, 30, PICTURE_MOTION)
        assert found.frame is not None and abs(found.frame - (30 + delay)) <= 1


def test_a_photos_mouth_boxes_hold_its_lips_and_chin_and_stay_apart() -> None:
    from realtime.bench.picture_scenes import bench_scene

    scene = bench_scene("photo-512", 128)
    boxes = picture_mouth_boxes(scene)
    assert boxes.shape == (2, 4) and np.array_equal(boxes, mouth_boxes(scene, 0))
    h, w = scene.background.shape[:2]
    for (x0, y0, x1, y1), face in zip(boxes, scene.faces, strict=True):
        assert 0 <= x0 < face.mouth_left[0] < face.mouth_right[0] < x1 <= w
        lips = sorted([face.upper_lip[1], face.lower_lip[1]])  # a closed mouth's may meet
        assert y0 < lips[0] <= lips[1] < face.chin[1] < y1 <= h
        pad = x1 - x0 - face.mouth_width  # generous: well beyond the corners
        assert pad >= 0.5 * face.mouth_width
    assert boxes[0, 2] < boxes[1, 0]  # one face's region never holds the other's mouth
    with pytest.raises(SceneError, match="picture scene"):
        picture_mouth_boxes(replace(scene, faces=()))


def _tiny_rig_loaded():
    from pathlib import Path

    from realtime.model.config import GENERATOR_CONFIGS
    from realtime.model.default_model import LoadedModel
    from realtime.model.generator import Generator
    from realtime.model.rig_field import RIG_CHANNELS

    torch.manual_seed(0)
    cfg = replace(GENERATOR_CONFIGS["tiny"], output="rig", residual_scale=0.0, latent_channels=RIG_CHANNELS)
    return LoadedModel(Generator(cfg).eval(), None, 1, Path("tiny-rig.safetensors"), window=0)


@pytest.mark.slow
def test_a_short_live_run_on_a_picture_reports_its_scene(tmp_path) -> None:
    from clients.bench_latency import TARGETS, run_one
    from clients.latency_report import print_table, write_plots
    from realtime.scene.picture.scene import picture_scene

    rng = np.random.default_rng(0)
    picture = cv2.GaussianBlur(rng.integers(40, 220, (128, 192, 3), dtype=np.uint8), (0, 0), 2)
    scene = picture_scene(picture, boxes=[[20, 30, 80, 100], [112, 30, 172, 100]], size=128)
    args = argparse.Namespace(onsets=1, gap=1.0, seed=0)
    row = run_one(_tiny_rig_loaded(), 1, 0, "torch", None, args, scene, "tiny-photo")
    assert row["scene"] == "tiny-photo" and row["canvas"] == "192x128"
    assert row["faces"] == row["characters"] == 2 and row["motion"] == dataclasses.asdict(PICTURE_MOTION)
    assert np.array_equal(row["mouth_boxes"], np.round(picture_mouth_boxes(scene), 1).tolist())
    assert row["delivery"]["frames_received"] > 25 and len(row["per_onset"]) == 1
    result = {
        "machine": {"cpu": "x", "cores": 2, "threads": 1, "load_average_1_5_15": [0, 0, 0]},
        "model": {"path": "tiny-rig.safetensors", "steps": 1, "note": ""},
        "targets": TARGETS,
        "runs": [],
        "scene_runs": [row],
    }
    print_table(result)
    assert all(p.is_file() for p in write_plots(result, tmp_path / "lat"))
    assert MotionConfig().blur_px == 0  # world scenes are read as before
