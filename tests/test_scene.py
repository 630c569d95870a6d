"""Scenes: built-in world scenes, scene files (merged over a seeded scene, every bad field named), photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib import cbook

from realtime.engine.compositor import composite, mask_boxes
from realtime.errors import BYAError, SceneError
from realtime.scene.scenes import (
    BUNDLED_SCENES,
    load_scene,
    photo_scene,
    read_scene_file,
    scene_from_json,
    world_scene,
)

PHOTO = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))  # 512x600, one face


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_world_scene_has_n_characters_where_its_masks_say(n: int) -> None:
    scene = world_scene(n, seed=4)
    assert scene.reference.shape == (128, 128, 3) and scene.reference.dtype == np.uint8
    assert scene.masks.shape == (n, 128, 128) and len(scene.names) == n == len(set(scene.names))
    assert scene.region == (0, 0, 128, 128) and scene.source == "world"
    for k in range(n):
        ys, xs = np.nonzero(scene.masks[k] > 0.5)
        x0, y0, x1, y1 = scene.boxes[k]
        assert len(xs) > 20  # every character is visible
        assert (
            x0 - 2 <= np.median(xs) <= x1 + 2 and y0 - 2 <= np.median(ys) <= y1 + 30
        )  # head box above the body
    # the world scene generates the whole picture: compositing passes the frame through
    assert composite(scene.background, scene.reference, scene.region) is scene.reference


def test_world_scene_is_deterministic_and_seeded() -> None:
    a, b, c = world_scene(2, seed=1), world_scene(2, seed=1), world_scene(2, seed=2)
    assert np.array_equal(a.reference, b.reference) and a.names == b.names
    assert not np.array_equal(a.reference, c.reference)


def test_bundled_scene_file_fills_left_out_fields_from_its_seed() -> None:
    scene = load_scene("studio", n_characters=3)  # a file decides its own cast size
    assert scene.names == ("Ada", "Bo") and scene.source == "file"
    data = json.loads((BUNDLED_SCENES / "studio.json").read_text())
    assert scene.description["characters"][0]["home"] == data["characters"][0]["home"]
    assert scene.description["characters"][0]["eyes"]  # not in the file: from the seeded scene
    # Ada stands left of Bo, as the file says
    assert np.nonzero(scene.masks[0] > 0.5)[1].mean() < np.nonzero(scene.masks[1] > 0.5)[1].mean()


def test_minimal_scene_file(tmp_path: Path) -> None:
    path = tmp_path / "cast.json"
    path.write_text(json.dumps({"characters": [{"name": "Solo", "home": [0.5, 0.5]}]}))
    scene = load_scene(str(path), n_characters=2)
    assert scene.names == ("Solo",) and scene.masks.shape[0] == 1


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"characters": []}, "characters"),
        ({"characters": [{}] * 5}, "characters"),
        ({"characters": "Ada"}, "characters"),
        ({"characters": [7]}, "characters[0]"),
        ({"characters": [{"name": ""}]}, "characters[0].name"),
        ({"characters": [{"home": [0.5]}]}, "characters[0].home"),
        ({"characters": [{"skin": [300, 0, 0]}]}, "characters[0].skin"),
        ({"characters": [{"hat": {"style": "crown"}}]}, "characters[0].hat.style"),
        ({"characters": [{"head": {"size": 2.0}}]}, "characters[0].head.size"),
        ({"characters": [{"wings": True}]}, "characters[0].wings"),
        ({"characters": [{"name": "A"}, {"name": "A"}]}, "characters"),
        ({"characters": [{}], "background": {"floor_y": "low"}}, "background.floor_y"),
        ({"characters": [{}], "background": []}, "background"),
        ({"characters": [{}], "seed": -1}, "seed"),
        ({"characters": [{}], "version": 2}, "version"),
        ({"characters": [{}], "lights": "on"}, "lights"),
        ([1, 2], "scene"),
    ],
)
def test_bad_scene_fields_are_named(data, field: str) -> None:
    with pytest.raises(BYAError) as info:
        scene_from_json(data)
    message = str(info.value)
    assert message.startswith(field) and "\n" not in message


def test_scene_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"characters": [')
    with pytest.raises(SceneError, match=r"bad.json: not valid JSON \(line 1"):
        read_scene_file(bad)
    bad.write_text(json.dumps({"characters": [{"home": "left"}]}))
    with pytest.raises(SceneError, match=r"bad.json: characters\[0\].home: expected 2 numbers"):
        read_scene_file(bad)
    with pytest.raises(SceneError, match="not found"):
        read_scene_file(tmp_path / "missing.json")
    with pytest.raises(SceneError, match="bundled scene"):
        load_scene("no-such-scene", 2)


def test_photo_scene_finds_the_face_offline() -> None:
    pytest.importorskip(
        "cv2", reason="face detection is the optional [photo] extra: opencv-python-headless<5"
    )
    scene = photo_scene(PHOTO)
    assert scene.n_characters == 1 and scene.source == "photo" and scene.names == ("Person 1",)
    assert scene.background.shape == (600, 512, 3)  # the photo is the canvas
    (x0, y0, x1, y1) = scene.canvas_boxes()[0]
    # Grace Hopper's face: centred horizontally in the upper half of the portrait
    assert 180 < (x0 + x1) / 2 < 330 and 120 < (y0 + y1) / 2 < 300 and 100 < x1 - x0 < 300
    ys, xs = np.nonzero(scene.masks[0] > 0.5)
    bx0, by0, bx1, by1 = scene.boxes[0]
    assert bx0 <= xs.mean() <= bx1 and by0 <= ys.mean() <= by1 + 10
    # a generated frame lands in the region of the full-size canvas
    out = composite(scene.background, np.zeros((128, 128, 3), np.uint8), scene.region)
    rx0, ry0, rx1, ry1 = scene.region
    assert out.shape == scene.background.shape and out[ry0:ry1, rx0:rx1].max() == 0
    assert np.array_equal(out[ry1:], scene.background[ry1:])


def test_photo_scene_from_given_boxes() -> None:
    boxes = [[60, 80, 140, 170], [330, 90, 420, 190]]
    scene = load_scene(str(PHOTO), n_characters=1, boxes=boxes)
    assert scene.n_characters == 2 and scene.names == ("Person 1", "Person 2")
    np.testing.assert_allclose(scene.canvas_boxes(), boxes, atol=1.0)
    assert scene.masks[0][:, :64].sum() > scene.masks[0][:, 64:].sum()  # left face, left mask
    assert scene.masks[1][:, 64:].sum() > scene.masks[1][:, :64].sum()


@pytest.mark.parametrize(
    ("boxes", "match"),
    [
        ([], r"boxes: expected 1-4"),
        ([[0, 0, 10, 10]] * 5, r"boxes: expected 1-4"),
        ([[0, 0, 10]], r"boxes\[0\]: expected 4 numbers"),
        ([[0, 0, 10, 10], [50, 50, 40, 60]], r"boxes\[1\]: .* must satisfy"),
        ([[0, 0, 10, 9000]], r"boxes\[0\]: .* must satisfy"),
        ([["a", 0, 10, 10]], r"boxes\[0\]: expected 4 numbers"),
    ],
)
def test_bad_photo_boxes_are_named(boxes, match: str) -> None:
    with pytest.raises(SceneError, match=match):
        photo_scene(PHOTO, boxes=boxes)


def test_photo_errors(tmp_path: Path) -> None:
    with pytest.raises(SceneError, match="not found"):
        photo_scene(tmp_path / "none.jpg", boxes=[[0, 0, 10, 10]])
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png")
    with pytest.raises(SceneError, match="cannot read it as an image"):
        photo_scene(junk, boxes=[[0, 0, 10, 10]])
    with pytest.raises(SceneError, match="names: expected 1 unique"):
        photo_scene(PHOTO, boxes=[[0, 0, 100, 100]], names=["A", "B"])
    with pytest.raises(SceneError, match="only a photo scene"):
        load_scene("studio", 2, boxes=[[0, 0, 10, 10]])


def test_mask_boxes_map_router_masks_to_canvas_pixels() -> None:
    masks = np.zeros((2, 32, 32), np.float32)
    masks[0, 4:8, 10:20] = 1.0
    boxes = mask_boxes(masks, (100, 50, 228, 178))  # a 128 px region at (100, 50)
    np.testing.assert_allclose(boxes[0], [100 + 40, 50 + 16, 100 + 80, 50 + 32])
    assert np.isnan(boxes[1]).all()


def test_a_world_scene_stands_where_its_choreography_says() -> None:
    """Scene.standing: frame 0 is the scene's reference; later frames move the characters (drift, sway),
    faces at rest; a photo scene has no choreography."""
    scene = world_scene(2, seed=4)
    assert scene.choreographed
    frame, masks = scene.standing(0)
    assert np.array_equal(frame, scene.reference) and np.array_equal(masks, scene.masks)
    cols = np.arange(scene.size)
    centre = lambda m: (m.sum(0) * cols).sum() / m.sum()  # noqa: E731
    shift = 0.0
    for f in range(10, 160, 20):  # the built-in scene sways in place (a few px over a few seconds)
        later, moved = scene.standing(f)
        assert later.shape == frame.shape and moved.shape == masks.shape
        shift = max(shift, *(abs(centre(moved[k]) - centre(scene.masks[k])) for k in range(2)))
    assert shift > 2.0
    with pytest.raises(ValueError, match="frame"):
        scene.standing(-1)
    photo = load_scene(str(PHOTO), n_characters=1, boxes=[[60, 80, 140, 170]])
    assert not photo.choreographed
    with pytest.raises(SceneError, match="choreography"):
        photo.standing(0)
