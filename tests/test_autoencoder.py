"""The frame autoencoder: shapes, a tiny overfit, and checkpoints that fail loudly when wrong."""

from __future__ import annotations

import json

import pytest
import torch

from realtime.errors import CheckpointError
from realtime.model.autoencoder import (
    AUTOENCODER_CONFIGS,
    AutoencoderConfig,
    FrameAutoencoder,
    load_autoencoder,
    save_autoencoder,
)


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


def _train_args(out, **kw):
    import argparse

    base = dict(
        out=str(out), preset="ae-s", minutes=0.03, size=64, batch=2, lr=1e-3, pool=2, refresh_every=1000,
        device="cpu", workers=1, resume=False, init=None, decoder_only=False, mouth_weight=8.0, eval_clips=1,
    )  # fmt: skip
    return argparse.Namespace(**{**base, **kw})


def test_a_decoder_only_fine_tune_keeps_the_latent_space_bit_identical(tmp_path):
    """Every generator checkpoint was trained on the encoder's latents: a decoder fine-tune must not move them."""
    from distill.train.autoencoder import train

    torch.manual_seed(1)
    start = FrameAutoencoder(AUTOENCODER_CONFIGS["ae-s"])
    start.latent_scale.fill_(0.8)
    init = save_autoencoder(start, tmp_path / "start.safetensors", extra={"training": {"steps": 7}})
    facts = train(_train_args(tmp_path / "run", init=str(init), decoder_only=True, mouth_weight=24.0))
    tuned = load_autoencoder(tmp_path / "run" / "ae-s.safetensors")
    before, after = start.state_dict(), tuned.state_dict()
    for k in before:
        if k.startswith("encoder.") or k == "latent_scale":
            assert torch.equal(before[k], after[k]), k
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    assert facts["decoder_only"] and facts["steps"] >= 1
    assert facts["stages"][0]["steps"] == 7  # the start's facts are kept


def test_decoder_only_without_a_start_is_refused(tmp_path):
    from distill.train.autoencoder import train

    with pytest.raises(ValueError, match="--decoder-only needs --init"):
        train(_train_args(tmp_path, decoder_only=True))
