"""The picture scenes the speed benchmarks add rows for (realtime.bench.picture_scenes), and those rows in
`bya bench stream`, `bya bench drift` and `bya demo`, on a tiny untrained rig model and the shortest audio:
the canvas sizes, face counts and row fields are checked, never a timing."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from realtime.bench.picture_scenes import (
    BENCH_SCENES,
    bench_scene,
    bench_scenes,
    canvas_label,
    scene_for_bench,
    scenes_to_run,
)
from realtime.errors import SceneError
from realtime.model.config import GENERATOR_CONFIGS
from realtime.model.default_model import LoadedModel
from realtime.model.generator import Generator
from realtime.model.rig_field import RIG_CHANNELS
from realtime.stream.options import SamplingOptions

SIZE = 128  # the tiny model's frame size
EXPECTED = {"photo-512": ("512x512", 2), "photo-720p": ("1280x720", 1)}


def tiny_rig() -> Generator:
    torch.manual_seed(0)
    cfg = replace(GENERATOR_CONFIGS["tiny"], output="rig", residual_scale=0.0, latent_channels=RIG_CHANNELS)
    return Generator(cfg).eval()


@pytest.fixture(scope="module")
def rig(tmp_path_factory) -> LoadedModel:
    """The tiny rig model as a LoadedModel whose `path` is a real file (benchmarks hash it)."""
    path = tmp_path_factory.mktemp("rig") / "tiny-rig.safetensors"
    path.write_bytes(b"tiny rig")
    return LoadedModel(tiny_rig(), None, 1, path, window=0)


@pytest.fixture(scope="module")
def scenes() -> dict:
    return {name: bench_scene(name, SIZE) for name in BENCH_SCENES}


# -- the scenes ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", BENCH_SCENES)
def test_each_bench_scene_has_its_canvas_and_faces(scenes, name: str) -> None:
    scene = scenes[name]
    canvas, faces = EXPECTED[name]
    assert canvas_label(scene) == canvas and scene.n_characters == len(scene.faces) == faces
    assert scene.source == "photo" and scene.size == SIZE
    h, w = scene.background.shape[:2]
    for face in scene.faces:
        x0, y0, x1, y1 = face.box
        assert 0 <= x0 < face.mouth_left[0] < face.mouth_right[0] < x1 <= w and 0 <= y0 < y1 <= h
    if name == "photo-512":  # one face in each half, left to right
        assert scenes[name].faces[0].box[2] <= w / 2 <= scenes[name].faces[1].box[0]
    else:  # one face in the middle third of the 16:9 frame
        assert w / 3 < float(np.mean(scene.faces[0].box[[0, 2]])) < 2 * w / 3


def test_scenes_run_by_default_only_with_a_rig_model(rig) -> None:
    latent = Generator(GENERATOR_CONFIGS["tiny"])
    assert scenes_to_run(None, rig.generator) == list(BENCH_SCENES)
    assert scenes_to_run(None, latent) == []
    assert scenes_to_run(["grace_hopper"], latent) == ["grace_hopper"]
    with pytest.raises(SceneError, match="rig model"):
        bench_scenes(latent, ["photo-512"], 0)
    with pytest.raises(SceneError, match="photo-512, photo-720p"):
        bench_scene("photo-1080p", SIZE)
    # anything --scene takes: a bundled picture (its one face), a world scene file's name
    assert scene_for_bench("astronaut", 4, SIZE).n_characters == 1


# -- bya bench stream ------------------------------------------------------------------------------------
def test_stream_scene_rows_report_canvas_faces_and_speed(rig, scenes) -> None:
    from realtime.bench.stream import run_scenes

    options = SamplingOptions(steps=1, window=0, seed=11, isolation="off")
    picked = [(name, scenes[name]) for name in BENCH_SCENES]
    with torch.no_grad():
        rows = run_scenes(rig, picked, 0.4, options, paced=False)
    for row, name in zip(rows, BENCH_SCENES, strict=True):
        canvas, faces = EXPECTED[name]
        assert row["scene"] == name and row["canvas"] == canvas and row["faces"] == row["characters"] == faces
        assert row["mode"] == "unpaced" and row["model"] == "tiny-rig.safetensors"
        assert row["video_seconds"] == pytest.approx(0.4, abs=0.05) and row["frames_per_second"] > 0
        assert row["stages_ms"]["denoise_ms"] > 0
    json.dumps(rows)  # the JSON's "scenes" list


def test_stream_default_rows_run_a_rig_model_on_the_world_scene_as_a_picture(rig) -> None:
    from realtime.bench.stream import run_unpaced
    from realtime.stream.rig_codec import WORLD_CANVAS

    with torch.no_grad():
        row = run_unpaced(
            rig.generator, None, 0.4, 2, SamplingOptions(steps=1, window=0, seed=11, isolation="off")
        )
    assert row["canvas"] == f"{WORLD_CANVAS}x{WORLD_CANVAS}" and row["characters"] == 2


# -- bya bench drift -------------------------------------------------------------------------------------
def test_drift_on_a_picture_scores_the_picture_outside_the_faces(rig, scenes) -> None:
    from realtime.bench.drift import IDENTICAL_DB, run

    res = run(rig, 0.04, 2, 121, 1, "bya bench drift --scene photo-512", scenes["photo-512"], "photo-512")
    assert res["scene"] == "photo-512" and res["canvas"] == "512x512" and res["faces"] == 2
    assert len(res["face_regions"]) == 2 and res["frames_generated"] >= 50
    [minute] = res["curve"]
    # the renderer leaves every pixel outside the face regions as the picture's, bit for bit
    assert minute["background_psnr_db"] == minute["background_psnr_min_db"] == IDENTICAL_DB
    assert 0 <= minute["colour_drift"] <= minute["colour_drift_max"] < 0.5
    assert res["psnr_change_db"] == 0 and res["psnr_within_1db"]
    json.dumps(res)


def test_drift_measures() -> None:
    from realtime.bench.drift import IDENTICAL_DB, face_colours, outside_mask, psnr_db

    keep = outside_mask((8, 10), np.array([[2, 1, 5, 4]]))
    assert keep.sum() == 80 - 9 and not keep[1:4, 2:5].any()
    a = np.zeros((4, 3), np.uint8)
    assert psnr_db(a, a) == IDENTICAL_DB
    assert psnr_db(a, a + 255) == pytest.approx(0.0)
    frame = np.zeros((8, 10, 3), np.uint8)
    frame[1:4, 2:5] = 255
    np.testing.assert_allclose(
        face_colours(frame, np.array([[2, 1, 5, 4], [6, 0, 8, 2]])), [[1, 1, 1], [0, 0, 0]]
    )


def test_drift_keeps_its_world_measure_for_a_latent_model(tmp_path) -> None:
    from realtime.bench.drift import run
    from realtime.model.autoencoder import AUTOENCODER_CONFIGS, FrameAutoencoder

    torch.manual_seed(0)
    path = tmp_path / "tiny.safetensors"
    path.write_bytes(b"tiny")
    ae = FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"]).eval()
    loaded = LoadedModel(Generator(GENERATOR_CONFIGS["tiny"]).eval(), ae, 1, path, window=0)
    res = run(loaded, 0.04, 2, 121, 1)
    assert (
        "scene" not in res and len(res["curve"]) == 1 and np.isfinite(res["curve"][0]["background_psnr_db"])
    )


# -- bya demo --------------------------------------------------------------------------------------------
def test_demo_moves_a_shipped_photo_beside_the_cartoon(rig, tmp_path) -> None:
    from PIL import Image

    from realtime.demo import photo_demo, save_still

    args = argparse.Namespace(characters=2, seconds=0.5, seed=7)
    options = SamplingOptions(steps=1, window=0, seed=7, isolation="off")
    with torch.no_grad():
        video, still = photo_demo(rig, options, args, tmp_path)
    assert video == tmp_path / "photo.mp4" and video.stat().st_size > 0
    assert Image.open(still).size == (512, 320)  # the duo picture at its own size
    # the still is the loudest frame's
    frames = np.arange(5, dtype=np.uint8)[:, None, None, None].repeat(4, 1).repeat(4, 2).repeat(3, 3)
    audio = np.zeros((2, 5 * 640), np.float32)
    audio[1, 3 * 640 : 4 * 640] = 0.5
    png = save_still(tmp_path / "x.png", frames, audio)
    assert int(np.array(Image.open(png))[0, 0, 0]) == 3


def test_demo_with_a_rig_checkpoint_writes_both_videos_and_stills(tmp_path, capsys) -> None:
    from realtime.cli import main
    from realtime.model.checkpoint import save_generator

    path = save_generator(tiny_rig(), tmp_path / "rig.safetensors", {"training": {"sampling_steps": 1}})
    out = tmp_path / "demo"
    assert main(["demo", "--model", str(path), "--seconds", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "scores: lip-sync r" in printed and f"wrote {out / 'photo.mp4'}" in printed
    for name in ("demo.mp4", "demo.png", "photo.mp4", "photo.png", "truth.mp4", "report.json"):
        assert (out / name).stat().st_size > 0


def test_the_demo_photos_ship() -> None:
    from realtime.demo import PHOTO_SCENES
    from realtime.scene.scenes import bundled_scene_names

    assert set(PHOTO_SCENES.values()) <= set(bundled_scene_names())
