"""The renderer's contract: shapes, determinism, occlusion-aware masks, readable mouths, blinks, scale."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from distill.world.clip import DialogueTrack, SceneRender
from realtime.errors import FrameSizeError, SceneError
from realtime.scene.cartoon import motion
from realtime.scene.cartoon.characters import sample_scene
from realtime.scene.cartoon.render import render_plan, render_scene, save_contact_sheet, standing_plan


def dialogue(openness: np.ndarray, active: np.ndarray | None = None) -> DialogueTrack:
    """A hand-made track: visemes follow openness, silence is REST."""
    openness = np.asarray(openness, np.float32)
    n, t = openness.shape
    viseme = np.where(openness > 0.05, 2 + (np.arange(t) // 3) % 5, 0).astype(np.int8)
    active = openness > 0.05 if active is None else active
    return DialogueTrack(np.zeros((n, 640), np.float32), openness, viseme, np.asarray(active, bool))


def talking(n: int, t: int) -> DialogueTrack:
    """Character i talks in turn i, its mouth a sine; the others are silent."""
    frames = np.arange(t)
    turn = (frames // max(1, t // n)) % n
    op = np.stack([(turn == i) * (0.5 + 0.5 * np.sin(frames * 0.9 + i)) for i in range(n)])
    return dialogue(op)


def still(scene: dict) -> dict:
    """The scene with nobody drifting, bobbing or swaying."""
    for c in scene["characters"]:
        m = c["motion"]
        m["bob"]["amplitude"] = m["sway"]["amplitude"] = m["tilt_deg"] = 0.0
        m["drift"]["to"] = list(c["home"])
    return scene


def inside(box: np.ndarray, h: int, w: int) -> np.ndarray:
    sel = np.zeros((h, w), bool)
    x0, y0, x1, y1 = np.round(box).astype(int)
    sel[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = True
    return sel


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_shapes_dtypes_and_masks(n: int, size: int) -> None:
    t = 12
    r = render_scene(sample_scene(n, 10 + n), talking(n, t), size=size, seed=1)
    assert isinstance(r, SceneRender)
    assert r.frames.shape == (t, size, size, 3) and r.frames.dtype == np.uint8
    assert r.masks.shape == (t, n, size, size) and r.masks.dtype == np.float32
    assert r.boxes.shape == r.mouth_boxes.shape == (t, n, 4)
    assert r.boxes.dtype == r.mouth_boxes.dtype == np.float32
    assert r.background.shape == (size, size, 3) and r.background.dtype == np.uint8
    assert r.masks.min() >= 0.0 and r.masks.max() <= 1.0
    assert r.masks.sum(1).max() <= 1.0 + 1e-5  # occlusion: a pixel is never more than one character
    assert (r.masks.sum((0, 2, 3)) > 0).all()
    assert (r.masks.max((0, 2, 3)) > 0.99).all()  # every character has solid pixels
    # Mouth boxes have a fixed size per character; they sit inside the head box's columns.
    widths = r.mouth_boxes[..., 2] - r.mouth_boxes[..., 0]
    assert np.allclose(widths, widths[:1], atol=1e-3)
    assert (r.mouth_boxes[..., 0] > r.boxes[..., 0] - 2).all() and (
        r.mouth_boxes[..., 2] < r.boxes[..., 2] + 2
    ).all()
    # Where no character is, the frame is the background.
    empty = r.masks.sum(1) == 0
    assert np.abs(r.frames.astype(int) - r.background[None].astype(int))[empty].max() <= 1


def test_deterministic_from_seed() -> None:
    scene, d = sample_scene(3, 4), talking(3, 75)
    a, b = render_scene(scene, d, 64, seed=5), render_scene(scene, d, 64, seed=5)
    for field in ("frames", "masks", "boxes", "mouth_boxes", "background"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    c = render_scene(scene, d, 64, seed=6)
    assert not np.array_equal(a.frames, c.frames)


def test_masks_follow_boxes_as_characters_move() -> None:
    scene = sample_scene(1, 2)
    scene["characters"][0]["home"] = [0.3, 0.5]
    scene["characters"][0]["motion"]["drift"].update(to=[0.7, 0.5], period_s=4.0, phase=0.0)
    r = render_scene(scene, talking(1, 50), 64, seed=0)
    cx = (r.boxes[:, 0, 0] + r.boxes[:, 0, 2]) / 2
    assert cx.max() - cx.min() > 0.3 * 64  # it walked across
    cols = np.arange(64) + 0.5
    m = r.masks[:, 0]
    mask_x = (m.sum(1) * cols).sum(1) / m.sum((1, 2))
    assert np.abs(mask_x - cx).max() < 2.0


def test_nearer_character_hides_the_farther() -> None:
    scene = sample_scene(2, 7)
    a, b = scene["characters"]
    a["home"], b["home"] = [0.45, 0.5], [0.55, 0.5]
    a["depth"], b["depth"] = 0.0, 1.0  # a is in front
    still(scene)
    r = render_scene(scene, talking(2, 4), 128, seed=0)
    both = (r.masks[:, 0] == 1.0) & (r.boxes[:, 1, 0, None, None] <= np.arange(128))
    assert both.any()
    assert r.masks[:, 1][both].max() < 1e-3  # b's visible mask is empty where a covers it


def test_openness_changes_only_the_mouth() -> None:
    scene = sample_scene(2, 1)
    t = 10
    active = np.ones((2, t), bool)
    closed = render_scene(scene, dialogue(np.zeros((2, t)), active), 128, seed=3)
    opened = render_scene(scene, dialogue(np.ones((2, t)), active), 128, seed=3)
    diff = np.abs(closed.frames.astype(int) - opened.frames.astype(int)).sum(-1)
    assert diff.sum() > 0
    sel = np.stack(
        [np.logical_or.reduce([inside(b, 128, 128) for b in closed.mouth_boxes[k]]) for k in range(t)]
    )
    assert diff[sel].sum() / diff.sum() > 0.97
    assert np.array_equal(closed.masks, opened.masks)  # the mouth is inside the head: masks unchanged


def test_silent_character_keeps_its_mouth_closed() -> None:
    scene = sample_scene(2, 5)
    scene["characters"][0]["home"], scene["characters"][1]["home"] = [0.25, 0.5], [0.75, 0.5]
    still(scene)
    t = 40
    talk = np.zeros((2, t))
    talk[0] = 0.5 + 0.5 * np.sin(np.arange(t))
    busy = render_scene(scene, dialogue(talk, np.ones((2, t), bool) * [[True], [False]]), 128, seed=2)
    # Same flags, the talker's mouth closed: the silent character must not change at all.
    hush = render_scene(scene, dialogue(talk * 0, np.ones((2, t), bool) * [[True], [False]]), 128, seed=2)
    own = busy.masks[:, 1] > 0.5
    assert np.array_equal(busy.frames[own], hush.frames[own])
    # And its mouth is a thin line: few rows of non-skin pixels down the middle of its mouth box.
    shout = render_scene(scene, dialogue(np.ones((2, t))), 128, seed=2)
    skin = np.array(scene["characters"][1]["skin"])

    def mouth_rows(r: SceneRender, k: int) -> int:
        x0, y0, x1, y1 = r.mouth_boxes[k, 1]
        cx, top = int((x0 + x1) / 2), int(y0 + 0.25 * (y1 - y0))  # below the nose
        strip = r.frames[k, top : int(y1), cx - 1 : cx + 2].astype(int)
        return int((np.abs(strip - skin).sum(-1) > 40).any(-1).sum())

    silent = [mouth_rows(busy, k) for k in range(t)]
    loud = [mouth_rows(shout, k) for k in range(t)]
    assert max(silent) <= 4 and min(loud) >= max(silent) + 3, f"{silent} {loud}"


def test_blinks_happen(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    lid = motion.blink_lids(25 * 60, 25, rng)
    closed = np.flatnonzero(lid == 0.0)
    gaps = np.diff(closed) / 25
    assert 10 <= len(closed) <= 31 and gaps.min() >= 2.0 - 0.2 and gaps.max() <= 6.0 + 0.2
    starts = np.flatnonzero((lid[1:] < 1) & (lid[:-1] == 1)) + 1
    ends = np.flatnonzero((lid[:-1] < 1) & (lid[1:] == 1)) + 1
    assert set(ends[: len(starts)] - starts[: len(ends)]) <= {3, 4}

    scene, d = sample_scene(1, 3), talking(1, 200)
    blinking = render_scene(scene, d, 64, seed=9)
    monkeypatch.setattr(motion, "blink_lids", lambda t, fps, rng: np.ones(t))
    staring = render_scene(scene, d, 64, seed=9)
    changed = np.abs(blinking.frames.astype(int) - staring.frames.astype(int)).sum((1, 2, 3)) > 0
    assert 2 <= changed.sum() <= 12  # one or two blinks of 3-4 frames in 8 s


def test_same_picture_at_every_resolution() -> None:
    scene, d = sample_scene(3, 8), talking(3, 6)
    big = render_scene(scene, d, 256, seed=0)
    small = render_scene(scene, d, 128, seed=0)
    down = big.frames.astype(np.float32).reshape(6, 128, 2, 128, 2, 3).mean((2, 4))
    assert np.abs(down - small.frames).mean() < 1.0  # out of 255: only anti-aliased edges differ
    masks = big.masks.reshape(6, 3, 128, 2, 128, 2).mean((3, 5))
    assert np.abs(masks - small.masks).mean() < 2e-3
    assert np.allclose(big.boxes / 2, small.boxes) and np.allclose(big.mouth_boxes / 2, small.mouth_boxes)


@pytest.mark.parametrize("size", [0, 100, 1024, 128.0, True])
def test_unsupported_size_is_rejected(size: object) -> None:
    with pytest.raises(FrameSizeError, match="frame size must be one of 64, 128, 256, 512 px"):
        render_scene(sample_scene(1, 0), talking(1, 2), size, seed=0)  # type: ignore[arg-type]


def test_character_count_must_match_dialogue() -> None:
    with pytest.raises(SceneError, match="scene has 2 characters but the dialogue has 3"):
        render_scene(sample_scene(2, 0), talking(3, 2), 64, seed=0)


def test_contact_sheet(tmp_path) -> None:
    r = render_scene(sample_scene(2, 0), talking(2, 20), 64, seed=0)
    path = save_contact_sheet(r, tmp_path / "sheet.png", n_columns=4, scale=2)
    img = matplotlib.image.imread(path)
    assert img.shape[0] == 2 * 128 + 2 and img.shape[1] == 4 * 128 + 3 * 2


def test_a_standing_plan_moves_characters_like_the_dialogue_but_knows_nothing_of_it() -> None:
    """standing_plan: the world's choreography (where each character stands) with faces at rest, the
    same whatever is said; rendered, its masks sit where the performed clip's are."""
    scene = sample_scene(3, seed=5)
    t = 60
    plan = standing_plan(scene, t, 25)
    assert np.all(plan.openness == 0) and np.all(plan.lid == 1)
    assert np.all(plan.head_dx == 0) and np.all(plan.head_dy == 0)  # no speech jitter, no listening nods
    assert np.array_equal(plan.x, standing_plan(scene, t, 25).x)
    performed = motion.plan_motion(
        scene, talking(3, t).openness.astype(float), talking(3, t).viseme, talking(3, t).active, 25, 5
    )
    assert np.array_equal(plan.x, performed.x)  # where they stand does not depend on speech
    assert np.abs(plan.x[:, -1] - plan.x[:, 0]).max() > 0.005  # and they do move
    standing = render_plan(scene, plan, 64)
    clip = render_scene(scene, talking(3, t), 64, seed=5)
    a, b = standing.masks > 0.5, clip.masks > 0.5
    iou = (a & b).sum() / (a | b).sum()
    held = np.repeat(b[:1], t, 0)
    assert iou > 0.8 and iou > (held & b).sum() / (held | b).sum()
