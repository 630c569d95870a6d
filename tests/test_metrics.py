"""Unit tests of distill.eval.metrics against hand-made examples with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from distill.eval import metrics as M


def test_pearson_known_values() -> None:
    x = np.arange(10.0)
    assert M.pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert M.pearson(x, -x) == pytest.approx(-1.0)
    assert math.isnan(M.pearson(x, np.ones(10)))
    # Two orthogonal zero-mean patterns.
    assert M.pearson([1, -1, 1, -1], [1, 1, -1, -1]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="equal lengths"):
        M.pearson([1, 2], [1, 2, 3])


@pytest.mark.parametrize("shift", [-3, 0, 2, 5])
def test_lag_sign_positive_when_video_lags(shift: int) -> None:
    rng = np.random.default_rng(0)
    audio = rng.random(200)
    video = np.roll(audio, shift)  # video[t] = audio[t - shift]: video late by `shift` frames
    rs = M.lagged_correlations(video, audio, max_lag=6)
    lag, r = M.best_lag(rs)
    assert lag == shift
    assert r == pytest.approx(1.0, abs=1e-9)


def test_lip_sync_pools_characters_and_flags_silent_ones() -> None:
    rng = np.random.default_rng(1)
    true = np.stack([rng.random(100), rng.random(100), np.zeros(100)])
    pred = true + 0.05 * rng.standard_normal(true.shape)
    out = M.lip_sync(pred, true, max_lag=4)
    assert out["offset"] == 0
    assert out["r_mean"] > 0.95
    assert out["characters"][2]["reason"].startswith("ground-truth openness is constant")
    assert out["characters"][2]["offset"] is None


def test_roc_auc_hand_examples() -> None:
    assert M.roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == (1.0, None)
    assert M.roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == (0.0, None)
    # Pairs (pos, neg): (0.5,0.5) tie -> 0.5, (0.5,0.1) -> 1, (0.3,0.5) -> 0, (0.3,0.1) -> 1 => 2.5 / 4.
    assert M.roc_auc([0.5, 0.3, 0.5, 0.1], [1, 1, 0, 0])[0] == pytest.approx(0.625)
    assert M.roc_auc(np.ones(6), [1, 0, 1, 0, 1, 0])[0] == pytest.approx(0.5)
    auc, why = M.roc_auc([0.1, 0.2], [1, 1])
    assert math.isnan(auc) and why == "no negative frames"
    auc, why = M.roc_auc([0.1, 0.2], [0, 0])
    assert math.isnan(auc) and why == "no positive frames"


def test_binding_auc_correct_and_swapped() -> None:
    # Character 0 speaks in frames 0-9, character 1 in 20-29, silence elsewhere.
    active = np.zeros((2, 40), bool)
    active[0, :10] = True
    active[1, 20:30] = True
    good = active.astype(float)
    out = M.binding_auc(good, active)
    assert all(o["auc_own"] == 1.0 and o["auc_other"] == 0.5 for o in out)
    swapped = good[::-1]
    out = M.binding_auc(swapped, active)
    assert all(o["auc_own"] < 0.5 and o["auc_other"] == 1.0 for o in out)
    single = M.binding_auc(good[:1], active[:1])[0]
    assert math.isnan(single["auc_other"]) and "no other character" in single["auc_other_reason"]


def test_wrong_person_rate() -> None:
    active = np.zeros((2, 8), bool)
    active[0, :4] = True
    active[1, 4:] = True
    rate, n = M.wrong_person_rate(active.astype(float), active)
    assert (rate, n) == (0.0, 8)
    rate, _ = M.wrong_person_rate(active[::-1].astype(float), active)
    assert rate == 1.0
    rate, _ = M.wrong_person_rate(np.zeros((2, 8)), active)  # nobody moves: a tie is not a right answer
    assert rate == 1.0
    assert math.isnan(M.wrong_person_rate(np.zeros((1, 8)), active[:1])[0])


def test_occluded_frames_are_left_out_of_binding() -> None:
    # Character 1 stands behind character 0 in frames 20-29: its mouth box shows character 0's mouth.
    active = np.zeros((2, 40), bool)
    active[0, 20:30] = True
    active[0, 33:37] = True
    active[1, :10] = True
    activity = active.astype(float)
    activity[1, 20:30] = 1.0  # what a reader sees through the occluder
    valid = np.ones((2, 40), bool)
    valid[1, 20:30] = False
    assert M.binding_auc(activity, active)[1]["auc_other"] > 0.8  # blind to occlusion: looks mis-bound
    assert M.binding_auc(activity, active, valid=valid)[1]["auc_other"] == 0.5
    rate, n = M.wrong_person_rate(activity, active)
    assert rate > 0.3 and n == 24  # the occluded frames tie: counted wrong
    assert M.wrong_person_rate(activity, active, valid=valid) == (0.0, 24)
    with pytest.raises(ValueError, match="valid flags"):
        M.binding_auc(activity, active, valid=valid[:, :5])


def test_mouth_activity_bridges_closures() -> None:
    x = np.zeros((1, 60))
    x[0, 20:40:3] = 1.0  # a mouth opening every third frame
    a = M.mouth_activity(x)
    assert a[0, 20:40].min() > a[0, :10].max()


def test_mask_iou_and_flicker() -> None:
    t = np.zeros((2, 1, 4, 4), np.float32)
    t[:, 0, :2, :2] = 1.0
    hard, soft = M.mask_iou(t, t)
    assert np.all(hard == 1.0) and np.all(soft == 1.0)
    p = t.copy()
    p[:, 0, :2, :4] = 0.6  # 8 px predicted vs 4 true, all above 0.5
    hard, soft = M.mask_iou(p, t)
    assert hard[0, 0] == pytest.approx(0.5)
    assert soft[0, 0] == pytest.approx((4 * 0.6) / (4 * 1.0 + 4 * 0.6))
    empty = np.zeros_like(t)
    assert np.all(M.mask_iou(empty, empty)[0] == 1.0)
    m = np.zeros((3, 1, 2, 2), np.float32)
    m[1] = 1.0  # on for one frame: |diff| = 1 twice over two steps
    assert M.mask_flicker(m)[0] == pytest.approx(1.0)


def test_psnr_and_ssim() -> None:
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    assert M.psnr(img, img) == M.PSNR_CAP_DB
    assert M.ssim(img, img) == pytest.approx(1.0)
    off = img.astype(float) + 10
    assert M.psnr(off, img) == pytest.approx(10 * math.log10(255**2 / 100))
    smooth = np.repeat(np.linspace(0, 255, 32)[None, :, None], 32, axis=0).repeat(3, axis=2)
    noisy = np.clip(smooth + rng.normal(0, 30, smooth.shape), 0, 255)
    assert 0.0 < M.ssim(noisy, smooth) < 0.5
    # Flat images: only the luminance term remains, (2ab + C1) / (a^2 + b^2 + C1).
    c1 = (M.SSIM_K1 * 255) ** 2
    a, b = np.full((16, 16), 100.0), np.full((16, 16), 110.0)
    assert M.ssim(a, b) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1))
    where = np.zeros((32, 32), bool)
    where[:8] = True
    assert M.psnr(img, img, where) == M.PSNR_CAP_DB


def test_background_fidelity_ignores_characters() -> None:
    bg = np.full((16, 16, 3), 100, np.uint8)
    frames = np.repeat(bg[None], 3, axis=0).copy()
    masks = np.zeros((3, 1, 16, 16), np.float32)
    masks[:, 0, 4:8, 4:8] = 1.0
    frames[:, 4:8, 4:8] = 255  # the character itself: not background
    out = M.background_fidelity(frames, bg, masks)
    assert out["psnr_db"] == M.PSNR_CAP_DB and out["ssim"] == pytest.approx(1.0)


def test_colour_drift() -> None:
    ref = np.zeros((3, 8, 8, 3), np.uint8)
    masks = np.zeros((3, 1, 8, 8), np.float32)
    masks[:, 0, :4] = 1.0
    ref[:, :4] = [255, 0, 0]
    ref[1, :4] = [0, 255, 0]  # the world itself changes colour in frame 1: no drift for a faithful video
    video = ref.copy()
    video[:, :4, :, 2] = 51  # a constant offset of 0.2 in blue: error, but no drift
    video[2, :4, :, 0] = 0  # frame 2 loses its red: drift of 1 on top of the offset
    error, drift = M.colour_drift(video, ref, masks)
    assert error[:2, 0] == pytest.approx([0.2, 0.2])
    assert drift[:, 0] == pytest.approx([0.0, 0.0, 1.0])
    assert np.all(M.colour_drift(ref, ref, masks)[1] == 0.0)
    s = M.drift_summary(drift[:, 0])
    assert s["max"] == 1.0 and s["final"] == 1.0


def test_leak_ratio_sizes_what_auc_other_only_ranks() -> None:
    rng = np.random.default_rng(0)
    active = np.zeros((2, 120), bool)
    active[0, :30] = True
    active[1, 60:90] = True  # frames 30-59 and 90-119: nobody speaks
    good = active.astype(float)
    assert M.leak_ratio(good, active, guard=2) == [0.0, 0.0]
    hair = good + 0.01 * np.roll(active, 1, axis=0) + 1e-4 * rng.random(good.shape)  # moves a hair for others
    assert all(o["auc_other"] > 0.9 for o in M.binding_auc(hair, active, guard=2))  # AUC: looks mis-bound
    assert all(0 < r < 0.03 for r in M.leak_ratio(hair, active, guard=2))  # size: 1% of its own motion
    mostly_swapped = good[::-1] + 0.5 * good
    assert all(r == 2.0 for r in M.leak_ratio(mostly_swapped, active, guard=2))  # others' voices move it more
    assert math.isnan(M.leak_ratio(good[:1], active[:1])[0])
    still = good.copy()
    still[1] *= 1e-3  # character 1 barely moves when it speaks...
    still[1, :30] += 1e-3  # ...and as much while character 0 speaks
    assert M.leak_ratio(still, active, guard=2)[1] > 0.9  # its own ratio: all leak
    assert M.pooled_leak_ratio(still, active, guard=2) < 0.01  # ...pooled, it weighs what it moves
    with pytest.raises(ValueError, match="leak_ratio"):
        M.leak_ratio(good, active[:, :10])


def test_mouth_motion_sees_the_scale_that_correlation_ignores() -> None:
    rng = np.random.default_rng(4)
    true = rng.random((3, 100))
    pred = np.stack([true[0], 0.05 * true[1] + 0.3, np.full(100, 0.2)])
    assert M.pearson(pred[1], true[1]) == pytest.approx(1.0)  # r cannot tell a twitch from speech
    motion = M.mouth_motion(pred, true)
    assert motion[0] == pytest.approx(1.0)
    assert motion[1] == pytest.approx(0.05)
    assert motion[2] == pytest.approx(0.0)
    valid = np.ones((3, 100), bool)
    valid[0, 50:] = False
    pred[0, 50:] = 10.0  # hidden frames are not scored
    assert M.mouth_motion(pred, true, valid)[0] == pytest.approx(1.0)
    assert M.mouth_motion(pred, np.zeros((3, 100)))[0] is None  # a mouth that never moves: no ratio
    with pytest.raises(ValueError, match="one shape"):
        M.mouth_motion(pred, true[:2])
