"""Picture scenes: a photo or drawing at its own size, its faces found (MediaPipe) or given, and every bad
picture stopped with one line. The bundled public-domain portraits are the fixtures: the astronaut smiles
with her teeth showing (an open mouth), Grace Hopper's mouth is closed, `duo` holds both side by side."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import wave
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from test_rooms import served  # the 2-character room server the room tests use, same token and limits

from realtime.errors import SceneError
from realtime.scene.picture import landmarks
from realtime.scene.picture.args import face_boxes, parse_face
from realtime.scene.picture.reader import read_picture
from realtime.scene.picture.rig import FaceLandmarks
from realtime.scene.picture.scene import picture_scene
from realtime.scene.scenes import BUNDLED_SCENES, Scene, avatar_scene, bundled_scene_names, load_scene
from realtime.server.rooms import RoomRequestError, build_room, parse_room_request

ASTRONAUT, GRACE, DUO = (BUNDLED_SCENES / f"{n}.jpg" for n in ("astronaut", "grace_hopper", "duo"))
TOKEN = "test-token-0123456789"


@pytest.fixture(scope="module")
def bundled() -> dict[str, Scene]:
    """The three bundled pictures as scenes, built once (the face mesh is the slow part)."""
    return {name: load_scene(name, 4) for name in ("astronaut", "grace_hopper", "duo")}


def assert_face_in_order(f: FaceLandmarks) -> None:
    """Mouth, lips, chin and eyes where a face has them: inside its box, lips ordered top to bottom."""
    x0, y0, x1, y1 = f.box
    touch = 0.01 * f.face_height  # a closed mouth's inner lip edges meet: equal within a pixel or so
    assert x0 <= f.mouth_left[0] < f.mouth_right[0] <= x1
    assert y0 <= f.upper_lip[1] <= f.lower_lip[1] + touch and f.lower_lip[1] < f.chin[1] <= y1 + 1
    assert (f.eyes[:, 1] < f.upper_lip[1]).all() and f.eyes[0, 0] < f.eyes[1, 0]
    if f.outer_upper_lip is not None:
        assert f.outer_upper_lip[1] <= f.upper_lip[1] and f.lower_lip[1] <= f.outer_lower_lip[1]


# -- the bundled portraits ---------------------------------------------------------------------------------
def test_bundled_pictures_are_listed_and_small() -> None:
    assert {"astronaut", "grace_hopper", "duo", "studio"} <= set(bundled_scene_names())
    for path in (ASTRONAUT, GRACE, DUO):
        assert path.stat().st_size < 150_000
    assert "public domain" in (BUNDLED_SCENES / "PICTURES.md").read_text().lower()


def test_each_portrait_is_one_face_with_its_mouth_found(bundled) -> None:
    astronaut, grace = bundled["astronaut"], bundled["grace_hopper"]
    for scene, shape in ((astronaut, (512, 512, 3)), (grace, (600, 512, 3))):
        assert scene.n_characters == 1 == len(scene.faces) and scene.source == "photo"
        assert scene.background.shape == shape  # the picture at its own size
        assert not any("scaled" in n for n in scene.notes)
        (face,) = scene.faces
        assert face.source == "mesh"
        assert_face_in_order(face)
    assert astronaut.faces[0].mouth_open_at_rest  # she smiles with her teeth showing, and we say so
    assert astronaut.notes and "animated around it" in astronaut.notes[0] and grace.notes == ()
    assert astronaut.faces[0].lip_gap > 0.05 * astronaut.faces[0].face_height
    assert not grace.faces[0].mouth_open_at_rest
    assert grace.faces[0].lip_gap < 0.01 * grace.faces[0].face_height
    # Grace Hopper's face: centred horizontally in the upper half of her portrait
    cx, cy = grace.faces[0].mouth_centre
    assert 220 < cx < 310 and 240 < cy < 320


def test_duo_gives_two_faces_left_to_right(bundled) -> None:
    duo = bundled["duo"]
    assert duo.n_characters == 2 and duo.names == ("Person 1", "Person 2")
    left, right = duo.faces
    assert left.box[2] <= 256 <= right.box[0]  # one face in each half
    assert left.mouth_open_at_rest and not right.mouth_open_at_rest  # the astronaut, then Grace Hopper
    canvas = duo.canvas_boxes()
    assert canvas[0, 0] < canvas[1, 0]
    x0, y0, x1, y1 = duo.region
    assert (x1 - x0) == (y1 - y0)  # the model's square holds every face
    for f in duo.faces:
        assert x0 <= f.box[0] and f.box[2] <= x1 and y0 <= f.box[1] and f.box[3] <= y1


def test_more_faces_than_voices_keeps_the_largest_and_says_so() -> None:
    scene = load_scene("duo", 1)
    assert scene.n_characters == 1 and not scene.faces[0].mouth_open_at_rest  # Grace Hopper's face is larger
    assert any("2 faces found" in n and "--face" in n for n in scene.notes)


# -- canvas size ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_picture(tmp_path_factory) -> Path:
    """Grace Hopper upscaled into a 2000x1500 photo: the canvas must come down to 1280x960."""
    canvas = Image.new("RGB", (2000, 1500), (90, 100, 110))
    canvas.paste(Image.open(GRACE).resize((1280, 1500)), (360, 0))
    path = tmp_path_factory.mktemp("big") / "big.jpg"
    canvas.save(path, quality=85)
    return path


def test_a_large_picture_is_capped_with_a_note(big_picture: Path) -> None:
    scene = picture_scene(big_picture)
    assert scene.background.shape == (960, 1280, 3)
    assert scene.notes[0] == "scaled 2000x1500 down to 1280x960"
    cx = scene.faces[0].mouth_centre[0]
    assert 0.64 * (360 + 1280 * 0.4) < cx < 0.64 * (360 + 1280 * 0.65)  # landmarks in canvas pixels


def test_face_boxes_are_in_the_pictures_own_pixels(big_picture: Path) -> None:
    scene = picture_scene(big_picture, boxes=[[800, 300, 1300, 900]])
    np.testing.assert_allclose(scene.canvas_boxes()[0], np.array([800, 300, 1300, 900]) * 0.64, atol=1.5)
    assert scene.faces[0].source == "mesh"  # the box holds her face: the mesh finds it


def test_odd_sizes_are_cropped_to_even_not_scaled(tmp_path: Path) -> None:
    path = tmp_path / "odd.png"
    Image.open(GRACE).crop((0, 0, 511, 599)).save(path)
    scene = picture_scene(path)
    assert scene.background.shape == (598, 510, 3) and scene.notes == ()
    assert np.array_equal(scene.background, np.asarray(Image.open(GRACE))[:598, :510])


def test_pictures_are_read_upright_and_opaque(tmp_path: Path) -> None:
    portrait = Image.open(GRACE)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: viewers turn it a quarter clockwise
    portrait.rotate(90, expand=True).save(tmp_path / "turned.jpg", exif=exif, quality=95)
    canvas, w, h = read_picture(tmp_path / "turned.jpg")
    assert (w, h) == (512, 600) and canvas.shape == (600, 512, 3)
    assert np.abs(canvas.astype(int) - np.asarray(portrait, int)).mean() < 6  # upright again
    rgba = Image.new("RGBA", (64, 48), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 32, 48))
    rgba.save(tmp_path / "cutout.png")
    canvas, _, _ = read_picture(tmp_path / "cutout.png")
    assert (canvas[:, :32] == [0, 0, 255]).all() and (canvas[:, 32:] == 255).all()  # see-through: white
    assert canvas.flags.writeable


# -- bad input -------------------------------------------------------------------------------------------------
def _png_header(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h (its pixel data is a few bytes: decoding it would fail)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def _bad_pictures(tmp: Path) -> list[tuple[Path, str]]:
    blank = tmp / "blank.png"
    Image.new("RGB", (200, 160), (128, 128, 128)).save(blank)
    (tmp / "huge.png").write_bytes(_png_header(8000, 6000))
    (tmp / "bomb.png").write_bytes(_png_header(20000, 20000))  # past Pillow's own decompression-bomb limit
    data = GRACE.read_bytes()
    (tmp / "cut.jpg").write_bytes(data[: len(data) // 3])
    (tmp / "text.png").write_text("not a picture at all\n")
    Image.new("RGB", (64, 64)).save(tmp / "anim.gif")
    Image.new("RGB", (20, 20)).save(tmp / "tiny.png")
    return [
        (blank, r"no face found in blank\.png; give one with --face X0,Y0,X1,Y1"),
        (tmp / "huge.png", r"8000x6000 = 48 megapixels, more than 40"),
        (tmp / "bomb.png", r"over 40 megapixels"),
        (tmp / "cut.jpg", r"cut\.jpg: corrupt or truncated image"),
        (tmp / "text.png", r"text\.png: cannot read it as an image"),
        (tmp / "anim.gif", r"is a GIF image; expected a PNG or JPEG"),
        (tmp / "tiny.png", r"too small"),
        (tmp / "missing.png", r"not found"),
    ]


def test_every_bad_picture_is_one_scene_error(tmp_path: Path) -> None:
    for path, match in _bad_pictures(tmp_path):
        with pytest.raises(SceneError, match=match) as err:
            picture_scene(path)
        assert "\n" not in str(err.value)


def test_a_face_box_outside_the_picture(tmp_path: Path) -> None:
    with pytest.raises(SceneError, match=r"boxes\[1\]: .* inside the 512x600 picture"):
        picture_scene(GRACE, boxes=[[100, 100, 300, 300], [400, 500, 600, 700]])
    with pytest.raises(SceneError, match="only a photo scene"):
        load_scene("studio", 2, boxes=[[0, 0, 10, 10]])


def test_a_face_whose_mouth_cannot_be_found(tmp_path: Path) -> None:
    """A 'drawing' with nothing in the box: placed from the box with a note, or refused naming the keys."""
    flat = tmp_path / "flat.png"
    Image.new("RGB", (240, 240), (230, 220, 200)).save(flat)
    scene = picture_scene(flat, boxes=[[40, 40, 200, 200]])
    assert scene.faces[0].source == "box" and "mouth" in scene.notes[0] and "scene file" in scene.notes[0]
    np.testing.assert_allclose(scene.faces[0].mouth_centre, [120, 40 + 0.78 * 160], atol=0.5)
    with pytest.raises(SceneError, match=r'face 1 in flat\.png: .*"mouth": \[\[x, y\], \[x, y\]\], "chin"'):
        picture_scene(flat, boxes=[[40, 40, 200, 200]], require_mouths=True)


def test_a_scene_file_gives_a_drawings_mouth(tmp_path: Path) -> None:
    Image.new("RGB", (240, 240), (230, 220, 200)).save(tmp_path / "flat.png")
    face = {"box": [40, 40, 200, 200], "mouth": [[150, 170], [90, 168]], "chin": [120, 198], "name": "Flat"}
    (tmp_path / "flat.json").write_text(json.dumps({"picture": "flat.png", "faces": [face]}))
    scene = load_scene(str(tmp_path / "flat.json"), 2)
    (f,) = scene.faces
    assert scene.names == ("Flat",) and f.source == "file"
    np.testing.assert_allclose([f.mouth_left, f.mouth_right, f.chin], [[90, 168], [150, 170], [120, 198]])
    bad = [
        ({"picture": "flat.png", "extra": 1}, r"unknown key\(s\) \['extra'\]"),
        ({"picture": "flat.png", "faces": [{"box": [40, 40, 200, 300]}]}, r"faces\[0\]\.box: .* inside"),
        ({"picture": "flat.png", "faces": [{**face, "chin": [120, 999]}]}, r"faces\[0\]\.chin: .* outside"),
        ({"picture": "flat.png", "faces": [{**face, "mouth": [1, 2]}]}, r"faces\[0\]\.mouth: expected"),
        (
            {"picture": "flat.png", "faces": [{"box": [40, 40, 200, 200], "chin": [1, 2]}]},
            r'goes with "mouth"',
        ),
        ({"picture": "flat.gif"}, r"picture: expected a \.png or \.jpg"),
        ({"picture": "gone.png"}, r"gone\.png not found"),
    ]
    for doc, match in bad:
        (tmp_path / "bad.json").write_text(json.dumps(doc))
        with pytest.raises(SceneError, match=r"scene file \S*bad\.json: .*" + match):
            load_scene(str(tmp_path / "bad.json"), 2)


def test_without_mediapipe_the_haar_cascade_and_the_box_stand_in(monkeypatch) -> None:
    monkeypatch.setitem(landmarks._models, "mp", None)  # as if mediapipe were not installed
    scene = picture_scene(GRACE)
    assert scene.faces[0].source == "box" and any("no face mesh here" in n for n in scene.notes)
    assert_face_in_order(scene.faces[0])


def test_mediapipe_noise_on_stderr_is_dropped_and_the_rest_kept(capfd) -> None:
    with landmarks._native_stderr_filtered():
        os.write(2, b"W0000 00:00:1 123 inference_feedback_manager.cc:114] Feedback manager\n")
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"something real went wrong\n")
    err = capfd.readouterr().err
    assert "something real went wrong" in err and "W0000" not in err and "XNNPACK" not in err


# -- --face, --avatar --------------------------------------------------------------------------------------------
def test_face_flag_parsing() -> None:
    assert parse_face("1,2.5,30,40") == [1.0, 2.5, 30.0, 40.0]
    assert face_boxes(None) is None and face_boxes(["0,0,1,1", "2,2,3,3"]) == [[0, 0, 1, 1], [2, 2, 3, 3]]
    for text in ("1,2,3", "a,b,c,d", "1,2,3,4,5", "nan,0,1,1", "", "1;2;3;4"):
        with pytest.raises(SceneError, match="expected X0,Y0,X1,Y1"):
            parse_face(text)
    with pytest.raises(SceneError, match="X0 < X1 and Y0 < Y1"):
        parse_face("30,0,10,10")
    with pytest.raises(SceneError, match="at most 4"):
        face_boxes(["0,0,1,1"] * 5)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["render", "--out", "o.mp4", "--audio", "a.wav", "--scene", "duo", "--face", "1,2,x,4"], "--face"),
        (["serve", "--scene", "duo", "--face", "5,5,1,1"], "X0 < X1"),
        (["render", "--out", "o.mp4", "--audio", "a.wav", "--avatar", "a.png", "--scene", "duo"], "--avatar"),
        (["serve", "--face", "0,0,9,9"], "give the picture with --scene"),
    ],
)
def test_bad_picture_flags_are_one_line_and_exit_2(argv, match, capsys) -> None:
    from realtime.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bya: error:") and match in err


def test_avatars_are_set_side_by_side_one_face_each_in_order() -> None:
    scene = avatar_scene([GRACE, "astronaut"])  # a path and a bundled picture's name
    h, w = scene.background.shape[:2]
    assert h == 512 and w == 512 * 512 // 600 // 2 * 2 + 512 and w <= 1280 and w % 2 == 0
    assert [f.mouth_open_at_rest for f in scene.faces] == [False, True]  # Grace Hopper, then the astronaut
    assert scene.faces[0].box[2] <= 436 <= scene.faces[1].box[0]
    for f in scene.faces:
        assert_face_in_order(f)


def test_bya_render_builds_the_avatar_scene(monkeypatch, tmp_path: Path) -> None:
    from realtime.cli import main
    from realtime.outputs import render
    from realtime.scene import scenes

    class Built(Exception):
        pass

    real = scenes.load_scene
    monkeypatch.setattr(scenes, "load_scene", lambda *a, **k: (_ for _ in ()).throw(Built(real(*a, **k))))
    loaded = SimpleNamespace(
        generator=SimpleNamespace(cfg=SimpleNamespace(frame_size=128, max_characters=4)),
        steps=1,
        window=0,
        isolation="auto",
        audio_guidance=1.0,
        backend="torch",
    )
    monkeypatch.setattr(render, "_load_model", lambda path: loaded)
    monkeypatch.setattr(render, "set_threads", lambda n: None)
    argv = ["render", "--out", str(tmp_path / "o.mp4"), "--model", "any.pt"]
    for k in range(2):
        with wave.open(str(tmp_path / f"a{k}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16_000)
            w.writeframes(np.zeros(1600, "<i2").tobytes())
        argv += ["--audio", str(tmp_path / f"a{k}.wav")]
    with pytest.raises(Built) as built:
        main([*argv, "--avatar", str(ASTRONAUT), "--avatar", str(GRACE)])
    scene = built.value.args[0]
    assert scene.n_characters == 2 and [f.mouth_open_at_rest for f in scene.faces] == [True, False]


# -- POST /rooms -----------------------------------------------------------------------------------------------
def test_room_requests_take_faces_only_with_a_bundled_picture() -> None:
    assert parse_room_request({"name": "p", "scene": "duo", "faces": [[0, 0, 10, 10]]}).faces == (
        (0, 0, 10, 10),
    )
    assert parse_room_request({"name": "p", "scene": "duo"}).faces is None
    for doc in (
        {"name": "p", "faces": [[0, 0, 10, 10]]},
        {"name": "p", "scene": "studio", "faces": [[0, 0, 10, 10]]},
        {"name": "p", "scene": "duo", "faces": []},
        {"name": "p", "scene": "duo", "faces": [[0, 0, 10]]},
        {"name": "p", "scene": "duo", "faces": [[True, 0, 10, 10]]},
        {"name": "p", "scene": "duo", "faces": [[0, 0, 10, 10]] * 5},
        {"name": "p", "scene": "duo", "faces": "0,0,10,10"},
        {"name": "p", "scene": "/tmp/x.png"},
    ):
        with pytest.raises(RoomRequestError):
            parse_room_request(doc)


def test_build_room_passes_the_chosen_faces(monkeypatch) -> None:
    import realtime.engine.room as engine_room

    monkeypatch.setattr(engine_room, "Room", lambda loaded, scene, **kw: scene)
    template = SimpleNamespace(
        loaded=SimpleNamespace(
            generator=SimpleNamespace(cfg=SimpleNamespace(frame_size=128, max_characters=4, output="rig"))
        ),
        steps=1,
        max_inputs=4,
        motion=False,
        audio_guidance=None,
    )
    scene = build_room(
        template, parse_room_request({"name": "p", "scene": "duo", "faces": [[300, 40, 460, 200]]})
    )
    assert scene.n_characters == 1
    np.testing.assert_allclose(scene.canvas_boxes()[0], [300, 40, 460, 200], atol=1.0)
    assert len(build_room(template, parse_room_request({"name": "q", "scene": "duo"})).faces) == 2


@pytest.fixture(scope="module")
def tiny_loaded():
    from realtime.model.autoencoder import AUTOENCODER_CONFIGS, FrameAutoencoder
    from realtime.model.config import GENERATOR_CONFIGS
    from realtime.model.default_model import LoadedModel
    from realtime.model.generator import Generator

    torch.manual_seed(0)
    gen = Generator(GENERATOR_CONFIGS["tiny"]).eval()
    return LoadedModel(gen, FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"]).eval(), 1, None)


def test_post_rooms_with_a_bad_picture_or_face_is_a_400(tiny_loaded) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}

    async def go() -> None:
        async with served(tiny_loaded) as (server, base, http):
            listing = await (await http.get(f"{base}/rooms", headers=auth)).json()
            assert {"astronaut", "duo", "grace_hopper"} <= set(listing["limits"]["scenes"])
            for body, words in (
                ({"name": "p", "scene": "duo", "faces": [[0, 0, 9000, 50]]}, "inside the 512x320 picture"),
                ({"name": "p", "scene": "nosuchpicture"}, "bundled scene"),
                ({"name": "p", "scene": "studio", "faces": [[0, 0, 9, 9]]}, "bundled picture"),
                ({"name": "p", "scene": "duo", "faces": [[0, 0, "x", 9]]}, "faces[0]"),
            ):
                r = await http.post(f"{base}/rooms", json=body, headers=auth)
                assert r.status == 400 and words in await r.text(), (body, await r.text())
            assert set(server.rooms) == {"default"}  # nothing half-made is left behind

    asyncio.run(go())
