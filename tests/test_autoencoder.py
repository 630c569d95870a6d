"""The frame autoencoder: shapes, a tiny overfit, and checkpoints that fail loudly when wrong."""

from __future__ import annotations

import json

import pytest
import torch

from realtime.autoencoder import (
    AUTOENCODER_CONFIGS,
    AutoencoderConfig,
    FrameAutoencoder,
    load_autoencoder,
    save_autoencoder,
)
from realtime.errors import CheckpointError


@pytest.mark.parametrize("size", [64, 128])
def test_shapes(size):
    model = FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"])
    x = torch.rand(2, 3, size, size) * 2 - 1
    z = model.encode(x)
    assert z.shape == (2, 8, size // 8, size // 8)
    y = model.decode(z)
    assert y.shape == x.shape and y.abs().max() <= 1
    with pytest.raises(ValueError, match="multiples of 8"):
        model.encode(torch.zeros(1, 3, 60, 60))


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    model = FrameAutoencoder(AutoencoderConfig(channels=(16, 16), latent_channels=4))
    x = torch.zeros(2, 3, 32, 32)
    x[:, 0, 8:20, 8:20] = 0.8
    x[:, 2, 16:28, 4:12] = -0.5
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = (model(x) - x).abs().mean()
        first = first or loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first


def test_checkpoint_round_trip_and_errors(tmp_path):
    model = FrameAutoencoder(AutoencoderConfig(channels=(8, 8), latent_channels=4))
    model.latent_scale.fill_(2.5)
    path = save_autoencoder(model, tmp_path / "ae.safetensors")
    back = load_autoencoder(path)
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(back(x), model.eval()(x))
    assert back.latent_scale.item() == 2.5

    meta = json.loads(path.with_suffix(".json").read_text())
    meta["config"]["latent_channels"] = 6
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not match"):
        load_autoencoder(path)
    path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_autoencoder(path)
    with pytest.raises(CheckpointError, match="missing"):
        load_autoencoder(tmp_path / "absent.safetensors")
