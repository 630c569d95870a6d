"""Mouth reader: crop geometry, checkpoint save/load and its errors, and the shipped weights."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from distill.eval.mouth_reader import (
    DEFAULT_NAME,
    WEIGHTS_DIR,
    MouthReader,
    MouthReaderConfig,
    crop_mouths,
    load_reader,
    mouth_visibility,
    save_reader,
)
from realtime.errors import CheckpointError


@pytest.mark.parametrize("size", [64, 128, 256])
def test_crop_centres_the_box_at_any_frame_size(size: int) -> None:
    cfg = MouthReaderConfig()
    frames = np.zeros((3, size, size, 3), np.uint8)
    s = size // 8
    x0, y0 = size // 2, size // 3
    frames[:, y0 : y0 + s, x0 : x0 + s] = 255
    boxes = np.tile(np.array([[x0, y0, x0 + s, y0 + s]], np.float32), (3, 1, 1))
    crops = crop_mouths(frames, boxes, cfg)
    assert crops.shape == (3, 1, cfg.in_channels, cfg.crop, cfg.crop)
    # The box spans 1 / (1 + 2 margin) of the crop, centred.
    inside = (crops[1, 0, 3] > 0.5).nonzero()
    lo, hi = cfg.crop * cfg.margin / (1 + 2 * cfg.margin), cfg.crop * (1 + cfg.margin) / (1 + 2 * cfg.margin)
    assert inside.min().item() == pytest.approx(lo, abs=1) and inside.max().item() + 1 == pytest.approx(
        hi, abs=1
    )


def test_context_frames_follow_time() -> None:
    cfg = MouthReaderConfig(context=1)
    frames = np.zeros((3, 32, 32, 3), np.uint8)
    frames[0], frames[2] = 50, 250  # frame 1 stays black
    boxes = np.tile(np.array([[8, 8, 24, 24]], np.float32), (3, 1, 1))
    c = crop_mouths(frames, boxes, cfg)[1, 0]  # stack for t = 1: frames 0, 1, 2
    assert c[0:3].mean() == pytest.approx(50 / 255, abs=0.02)
    assert c[3:6].mean() == pytest.approx(0.0, abs=1e-6)
    assert c[6:9].mean() == pytest.approx(250 / 255, abs=0.02)


def test_visibility_drops_when_covered() -> None:
    masks = np.zeros((2, 2, 16, 16), np.float32)
    masks[:, 0] = 1.0
    masks[1, 1, :, :] = 1.0  # character 1 on top of everything in frame 1 (ties go to both)
    masks[1, 0, 4:8, 4:8] = 0.4
    boxes = np.tile(np.array([[4, 4, 8, 8], [0, 0, 16, 16]], np.float32), (2, 1, 1))
    vis = mouth_visibility(masks, boxes)
    assert vis[0, 0] == 1.0 and vis[0, 1] == 0.0


def test_save_load_roundtrip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = MouthReader(MouthReaderConfig())
    save_reader(model, tmp_path, {"steps": 1})
    loaded = load_reader(tmp_path)
    x = torch.rand(4, model.cfg.in_channels, 32, 32)
    assert torch.allclose(model.eval()(x), loaded(x))
    meta = json.loads((tmp_path / f"{DEFAULT_NAME}.json").read_text())
    assert meta["training"] == {"steps": 1} and meta["config"]["crop"] == 32
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left behind


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_reader(tmp_path)


def test_corrupt_checkpoint(tmp_path: Path) -> None:
    save_reader(MouthReader(MouthReaderConfig()), tmp_path)
    w = tmp_path / f"{DEFAULT_NAME}.safetensors"
    w.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_reader(w)


def test_bad_config_json(tmp_path: Path) -> None:
    save_reader(MouthReader(MouthReaderConfig()), tmp_path)
    (tmp_path / f"{DEFAULT_NAME}.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_reader(tmp_path)


def test_shape_mismatch(tmp_path: Path) -> None:
    save_reader(MouthReader(replace(MouthReaderConfig(), widths=(8, 16, 24, 32))), tmp_path)
    meta_path = tmp_path / f"{DEFAULT_NAME}.json"
    meta = json.loads(meta_path.read_text())
    meta["config"]["widths"] = [16, 32, 48, 64]  # config no longer matches the tensors
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="shape"):
        load_reader(tmp_path)


def test_shipped_weights_load_and_are_small() -> None:
    model = load_reader()
    assert (WEIGHTS_DIR / f"{DEFAULT_NAME}.safetensors").stat().st_size < 1_000_000
    meta = json.loads((WEIGHTS_DIR / f"{DEFAULT_NAME}.json").read_text())
    assert meta["training"]["heldout"]["r_pooled"] >= 0.97
    out = model.read(
        np.zeros((2, 128, 128, 3), np.uint8), np.tile(np.array([[50, 80, 70, 90]], np.float32), (2, 1, 1))
    )
    assert out.shape == (1, 2) and np.all((out >= 0) & (out <= 1))
