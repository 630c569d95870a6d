"""The rig representation: fields painted and read back, listening conditions, the performer, and a rig
model's session decoding through its scene's codec."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from distill.world.conditions import Condition, degrade, draw_condition, opus_roundtrip, stretch_frames
from realtime.model.config import GENERATOR_CONFIGS
from realtime.model.generator import Generator
from realtime.model.rig_field import (
    RIG_CHANNELS,
    VALUES,
    ellipse_masks,
    latent_masks,
    paint,
    read_rig,
    reference_field,
    rest_values,
)
from realtime.scene.performer import Performer


def tiny_rig() -> Generator:
    torch.manual_seed(0)
    cfg = replace(GENERATOR_CONFIGS["tiny"], output="rig", residual_scale=0.0, latent_channels=RIG_CHANNELS)
    return Generator(cfg).eval()


def test_paint_then_read_gives_each_character_its_values():
    boxes = np.array([[0.05, 0.2, 0.4, 0.7], [0.55, 0.25, 0.95, 0.75]], np.float32)
    masks = torch.from_numpy(ellipse_masks(boxes, 16))
    values = np.random.default_rng(0).uniform(0, 1, (3, 2, len(VALUES))).astype(np.float32)
    field = paint(values, masks)
    assert field.shape == (3, RIG_CHANNELS, 16, 16)
    got = read_rig(field, masks)
    np.testing.assert_allclose(got, values, atol=1e-5)


def test_reference_field_is_the_layout_at_rest():
    masks = torch.from_numpy(ellipse_masks(np.array([[0.2, 0.2, 0.8, 0.8]], np.float32), 16))
    ref = reference_field(masks)
    torch.testing.assert_close(ref[0], masks[0])
    assert ref[1:].abs().max() == 0  # nothing but presence at rest
    np.testing.assert_allclose(read_rig(ref[None], masks)[0, 0], rest_values(), atol=1e-6)


def test_nearer_heads_cover_farther_ones():
    boxes = np.array([[0.1, 0.1, 0.6, 0.6], [0.4, 0.4, 0.9, 0.9]], np.float32)
    m = ellipse_masks(boxes, 32)
    assert (m.sum(0) <= 1.0 + 1e-5).all()
    assert m[1, 20, 20] > 0.9 and m[0, 20, 20] < 0.1


def test_latent_masks_pool_to_the_field_size():
    m = latent_masks(np.ones((2, 128, 128), np.float32), 16)
    assert m.shape == (2, 16, 16) and float(m.min()) == 1.0


def test_degrade_keeps_timing_truth_in_step_with_speed():
    rng = np.random.default_rng(0)
    audio = (np.random.default_rng(1).standard_normal((2, 16000)) * 0.1).astype(np.float32)
    cond = Condition(1.1, 0.0, 0.3, "pink", 20.0, -10.0, 0)
    out = degrade(audio, cond, rng)
    assert out.shape == (2, round(16000 / 1.1)) and np.isfinite(out).all() and np.abs(out).max() <= 1
    truth = np.linspace(0, 1, 25)[None]
    stretched = stretch_frames(truth, 1.1, int(25 / 1.1))
    assert stretched.shape == (1, 22) and stretched[0, 10] == pytest.approx(truth[0, 11], abs=1e-6)


def test_opus_roundtrip_keeps_the_signal():
    t = np.arange(16000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    y = opus_roundtrip(x, 24_000)
    assert y.shape == x.shape
    assert np.corrcoef(x[2000:-2000], y[2000:-2000])[0, 1] > 0.95


def test_conditions_are_drawn_from_the_seed():
    a = [draw_condition(np.random.default_rng(5)) for _ in range(2)]
    assert a[0] == a[1]


def test_performer_is_deterministic_and_blinks():
    values = np.tile(np.array([0.5, 0.5, 1.0, 0.0, 1.0]), (2, 1))
    p1, p2 = Performer(2, seed=3), Performer(2, seed=3)
    r1 = [p1.pose(f, values) for f in range(400)]
    r2 = [p2.pose(f, values) for f in range(400)]
    assert [r[0].lid for r in r1] == [r[0].lid for r in r2]
    lids = np.array([[r[k].lid for r in r1] for k in range(2)])
    assert (lids < 0.5).any(axis=1).all()  # both blink within 16 s
    assert not np.array_equal(lids[0], lids[1])  # ... not in step
    with pytest.raises(ValueError, match=r"\(2, 5\)"):
        p1.pose(0, values[:1])


def test_a_rig_session_renders_world_frames_at_the_canvas_size():
    from realtime.scene.scenes import default_scene
    from realtime.stream.options import SamplingOptions
    from realtime.stream.rig_codec import RigCodec, session_codec
    from realtime.stream.session import StreamingGenerator

    model = tiny_rig()
    scene = default_scene(2, seed=0, size=model.cfg.frame_size)
    codec = session_codec(model, scene, seed=0)
    assert isinstance(codec, RigCodec)
    s = StreamingGenerator(
        model, codec, scene.reference, scene.masks, options=SamplingOptions(steps=1, window=0)
    )
    chunks = s.push(np.zeros((2, 16000), np.float32))
    assert chunks and chunks[0].frames.shape == (model.cfg.chunk_frames, *scene.background.shape)
    assert codec.last_values.shape == (model.cfg.chunk_frames, 2, len(VALUES))


def test_a_latent_model_refuses_a_rig_codec_and_back():
    from realtime.scene.scenes import default_scene
    from realtime.stream.rig_codec import RigCodec
    from realtime.stream.session import StreamingGenerator

    rig = tiny_rig()
    scene = default_scene(1, seed=0, size=rig.cfg.frame_size)
    latent = Generator(GENERATOR_CONFIGS["tiny"]).eval()
    with pytest.raises(ValueError, match="decodes rig models"):
        RigCodec(latent.cfg, scene)
    with pytest.raises(ValueError, match="RigCodec"):
        StreamingGenerator(rig, object(), scene.reference, scene.masks)


def test_training_step_runs_and_its_losses_are_finite():
    from distill.train.rig import RigPool, training_step

    model = tiny_rig().train()
    pool = RigPool(model.cfg.n_mels, model.cfg.mel_per_frame)
    pool.add(11, 3.0, n=2, clean=True)
    losses = training_step(model, pool.batch(model, 2, np.random.default_rng(0)), np.random.default_rng(0))
    assert all(torch.isfinite(v) for v in losses.values())
    losses["total"].backward()


def test_world_scenes_become_pictures_for_a_rig_model_and_render_at_the_canvas_size():
    from pathlib import Path

    from realtime.model.default_model import LoadedModel
    from realtime.outputs.render import render_audio
    from realtime.scene.scenes import default_scene
    from realtime.stream.options import SamplingOptions
    from realtime.stream.rig_codec import WORLD_CANVAS, scene_for_model

    model = tiny_rig()
    loaded = LoadedModel(model, None, 1, Path("tiny-rig.safetensors"), window=0)
    scene = default_scene(2, seed=0, size=model.cfg.frame_size)
    shown = scene_for_model(scene, loaded)
    assert shown.background.shape == (WORLD_CANVAS, WORLD_CANVAS, 3) and len(shown.faces) == 2
    # each face's mouth lies inside its head box, left face first
    for face in shown.faces:
        x0, y0, x1, y1 = face.box
        assert x0 < face.mouth_left[0] < face.mouth_right[0] < x1 and y0 < face.upper_lip[1] < y1
    assert shown.faces[0].box[0] < shown.faces[1].box[0]
    assert scene_for_model(scene, Generator(GENERATOR_CONFIGS["tiny"])) is scene  # latent models: as is
    tracks = np.zeros((2, 16000), np.float32)
    out = render_audio(loaded, scene, tracks, SamplingOptions(steps=1, window=0))
    assert out.frames.shape[1:] == (WORLD_CANVAS, WORLD_CANVAS, 3)
    # silence: every frame is the picture outside the faces' regions
    from realtime.scene.picture.render import PictureRenderer

    keep = np.ones((WORLD_CANVAS, WORLD_CANVAS), bool)
    for x0, y0, x1, y1 in PictureRenderer(shown.background, shown.faces).face_regions():
        keep[y0:y1, x0:x1] = False
    assert (out.frames[:, keep] == shown.background[keep]).all()


def test_pictures_get_the_rig_model_unless_one_was_chosen():
    from pathlib import Path

    from realtime.model.default_model import LoadedModel, model_for_scene
    from realtime.model.spec import PICTURES
    from realtime.scene.scenes import default_scene, load_scene

    latent = LoadedModel(Generator(GENERATOR_CONFIGS["tiny"]), None, 1, Path("latent.safetensors"))
    world = default_scene(2, seed=0, size=128)
    assert model_for_scene(latent, world, chosen=False) is latent
    picture = load_scene("duo", 2, 0, 128)
    assert model_for_scene(latent, picture, chosen=True) is latent  # the user's choice stands
    if PICTURES.generator_path.is_file():
        got = model_for_scene(latent, picture, chosen=False)
        assert got.generator.cfg.output == "rig" and got.path == PICTURES.generator_path


def test_composite_pastes_what_lies_on_the_canvas_of_a_square_reaching_past_it():
    from realtime.engine.compositor import composite

    bg = np.zeros((40, 100, 3), np.uint8)
    frame = np.full((60, 60, 3), 200, np.uint8)
    out = composite(bg, frame, (20, -10, 80, 50))
    assert out.shape == bg.shape
    assert (out[:, 20:80] == 200).all() and (out[:, :20] == 0).all() and (out[:, 80:] == 0).all()
