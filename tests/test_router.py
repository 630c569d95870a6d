"""Router utilities: boxes as the external routing source, token weights, and inference-time refinement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from realtime.model.router import MaskRefiner, boxes_to_masks, centroid_features, token_weights


def test_boxes_to_masks_covers_cells_by_area() -> None:
    m = boxes_to_masks(np.array([[0, 0, 64, 64], [64, 32, 128, 128]], np.float32), 128, 4)
    assert m.shape == (2, 4, 4)
    assert m[0, :2, :2].min() == 1.0 and m[0, 2:].max() == 0.0
    assert m[1, 1:, 2:].min() == 1.0 and m[1, 0].max() == 0.0
    half = boxes_to_masks(np.array([[0, 0, 16, 32]], np.float32), 128, 4)  # half of one 32 px cell
    assert half[0, 0, 0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="4 coordinates"):
        boxes_to_masks(np.zeros((2, 3)), 128, 4)


def test_token_weights_average_sub_cells() -> None:
    masks = torch.zeros(1, 2, 3, 8, 8)  # (B, T, K, M, M), sub = 4 -> 2 x 2 tokens per frame
    masks[0, 1, 2, :4, :4] = 1.0
    masks[0, 0, 0, :2, :] = 1.0
    w = token_weights(masks, 4)
    assert w.shape == (1, 8, 3)
    assert w[0, 4, 2] == 1.0 and w[0, 5:, 2].sum() == 0.0  # frame 1, token 0, character 2
    assert w[0, 0, 0] == 0.5 and w[0, 1, 0] == 0.5 and w[0, 2, 0] == 0.0


def test_centroid_features_follow_the_mask() -> None:
    m = torch.zeros(1, 2, 8, 8)
    m[0, 0, :, :2] = 1
    m[0, 1, :, 6:] = 1
    f = centroid_features(m)
    assert f.shape[:2] == (1, 2) and not torch.allclose(f[0, 0], f[0, 1])
    torch.testing.assert_close(centroid_features(m.flip(1)), f.flip(1))


def test_refiner_drops_noise_keeps_one_region_and_holds_with_hysteresis() -> None:
    r = MaskRefiner(drop=0.2, on=0.6, off=0.4, smooth=0.0)
    frame = np.zeros((1, 8, 8), np.float32)
    frame[0, 1:4, 1:4] = 0.9  # the character
    frame[0, 6, 6] = 0.8  # a stray blob
    frame[0, 0, 7] = 0.1  # low-confidence noise
    out = r(frame)
    assert out[0, 1:4, 1:4].min() > 0.5 and out[0, 6, 6] == 0 and out[0, 0, 7] == 0
    dip = frame.copy()
    dip[0, 1:4, 1:4] = 0.5  # between off and on: an "on" cell stays on
    assert r(dip)[0, 2, 2] > 0
    fresh = MaskRefiner(drop=0.2, on=0.6, off=0.4, smooth=0.0)
    assert fresh(dip)[0, 2, 2] == 0  # ...but does not switch on from nothing
    with pytest.raises(ValueError):
        MaskRefiner(on=0.3, off=0.5)
