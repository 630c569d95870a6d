"""The generator: shapes for 1-4 characters, causality, permutation equivariance, overfitting, checkpoints."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from realtime.errors import CheckpointError
from realtime.media import MAX_CHARACTERS
from realtime.model.checkpoint import load_generator, save_generator
from realtime.model.config import GENERATOR_CONFIGS, GeneratorConfig
from realtime.model.generator import Generator

CFG = GENERATOR_CONFIGS["tiny"]


def _model(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    g = Generator(CFG)
    with torch.no_grad():  # zero-initialised gates would make every test trivially pass
        for name, p in g.named_parameters():
            if p.abs().sum() == 0 and p.dim() >= 1 and "bias" not in name:
                p.normal_(std=0.05)
    return g.eval()


def _inputs(b: int, n_chars: int, context_chunks: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    c, m = CFG.chunk_frames, CFG.mask_size
    lat = (CFG.latent_channels, CFG.latent_size, CFG.latent_size)
    ref_masks = torch.zeros(b, MAX_CHARACTERS, m, m)
    for k in range(n_chars):  # side-by-side boxes
        x0 = 2 + k * 7
        ref_masks[:, k, 8:24, x0 : x0 + 6] = 1.0
    bind = torch.zeros(b, MAX_CHARACTERS, MAX_CHARACTERS)
    bind[:, range(n_chars), range(n_chars)] = 1.0
    return {
        "noisy": torch.randn(b, c, *lat, generator=g),
        "t": torch.full((b,), 0.6),
        "reference": torch.randn(b, *lat, generator=g),
        "context": torch.randn(b, context_chunks * c, *lat, generator=g),
        "mel": torch.randn(b, MAX_CHARACTERS, c, CFG.audio_window, CFG.n_mels, generator=g) * 3 - 6,
        "bind": bind,
        "ref_masks": ref_masks,
    }


@pytest.mark.parametrize("n_chars", [1, 2, 3, 4])
@pytest.mark.parametrize("context_chunks", [0, 2])
def test_shapes_for_one_to_four_characters(n_chars: int, context_chunks: int) -> None:
    out = _model()(**_inputs(2, n_chars, context_chunks))
    c, m = CFG.chunk_frames, CFG.mask_size
    assert out.velocity.shape == (2, c, CFG.latent_channels, CFG.latent_size, CFG.latent_size)
    assert out.masks.shape == (2, c, MAX_CHARACTERS, m, m)
    assert len(out.mask_logits) == len(CFG.router_layers)
    assert out.masks[:, :, n_chars:].sum() < 1e-3  # absent characters never get a mask
    assert torch.isfinite(out.velocity).all()


def test_a_clean_chunk_is_encoded_the_same_wherever_it_sits_in_the_window() -> None:
    """A cached chunk must not depend on its neighbours or its age, or a rolling cache would be inexact."""
    g = _model()
    x = _inputs(1, 2, 2)
    c = CFG.chunk_frames
    with torch.no_grad():
        sink = g.encode_reference(x["reference"])
        both = g.encode_chunks(x["context"].unflatten(1, (2, c)), sink)
        changed = x["context"].clone()
        changed[:, :c] += 1.0  # the older chunk changes
        other = g.encode_chunks(changed.unflatten(1, (2, c)), sink)
        alone = g.encode_chunks(x["context"][:, c:].unflatten(1, (1, c)), sink)
        for i in range(CFG.depth):
            torch.testing.assert_close(both.keys[i][:, 1], other.keys[i][:, 1])
            torch.testing.assert_close(both.keys[i][:, 1:], alone.keys[i], atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(both.values[i][:, 1:], alone.values[i], atol=1e-6, rtol=1e-5)
            assert not torch.allclose(both.keys[i][:, 0], other.keys[i][:, 0])
        # ...while the generated chunk does see both chunks
        x2 = dict(x, context=changed)
        assert not torch.allclose(g(**x).velocity, g(**x2).velocity)


def test_permuting_characters_permutes_masks_and_nothing_else() -> None:
    g = _model()
    x = _inputs(1, 3, 1)
    perm = torch.tensor([2, 0, 1, 3])
    xp = dict(x)
    xp["ref_masks"] = x["ref_masks"][:, perm]
    xp["bind"] = x["bind"][:, perm][:, :, perm]  # stream s' = perm: stream perm[s] drives character perm[s]
    xp["mel"] = x["mel"][:, perm]
    a, b = g(**x), g(**xp)
    torch.testing.assert_close(b.velocity, a.velocity, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(b.masks, a.masks[:, :, perm], atol=1e-5, rtol=1e-4)


def test_rebinding_changes_the_output() -> None:
    g = _model()
    x = _inputs(1, 2, 1)
    swapped = dict(x)
    swapped["bind"] = x["bind"][:, :, [1, 0, 2, 3]]
    assert not torch.allclose(g(**x).velocity, g(**swapped).velocity)


def test_tiny_model_overfits_one_batch() -> None:
    torch.manual_seed(0)
    g = Generator(CFG)
    x = _inputs(2, 2, 1)
    target = torch.randn_like(x["noisy"])
    opt = torch.optim.Adam(g.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss = (g(**x).velocity - target).pow(2).mean()
        first = first or loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first


def test_bad_chunk_shapes_are_refused() -> None:
    x = _inputs(1, 1, 1)
    x["context"] = x["context"][:, :1]  # not a whole chunk
    with pytest.raises(ValueError, match="whole context chunks"):
        _model()(**x)


def test_checkpoint_round_trip_and_errors(tmp_path) -> None:
    g = _model()
    path = save_generator(g, tmp_path / "g.safetensors", dtype=torch.float32)
    back = load_generator(path)
    x = _inputs(1, 2, 1)
    torch.testing.assert_close(back(**x).velocity, g(**x).velocity)
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["config"]["width"] = 96
    meta["config"]["heads"] = 2
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not match"):
        load_generator(path)
    meta["config"]["colour"] = 1
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="unknown generator config fields: colour"):
        load_generator(path)
    path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        load_generator(path)
    with pytest.raises(CheckpointError, match="missing"):
        load_generator(tmp_path / "absent.safetensors")


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="multiple of heads"):
        GeneratorConfig(width=100, heads=3)
    with pytest.raises(ValueError, match="router_layers"):
        GeneratorConfig(depth=2, router_layers=(5,))
    assert GENERATOR_CONFIGS["toon-s"].frame_tokens == 64
    assert GENERATOR_CONFIGS["toon-s"].audio_window == (200 + 40 + 40) // 10
    assert np.isclose(GENERATOR_CONFIGS["toon-s"].residual_scale, 0.3)


def test_triton_and_torch_kernel_paths_give_the_same_model(monkeypatch) -> None:
    """The whole generator, forward and backward, through the Triton kernels (interpreter) and through SDPA."""
    g = _model()
    x = _inputs(1, 2, 1)
    results = []
    for backend in ("torch", "triton"):
        monkeypatch.setenv("BYA_KERNELS", backend)
        monkeypatch.setenv("TRITON_INTERPRET", "1")
        g.zero_grad()
        out = g(**x)
        (out.velocity.pow(2).mean() + out.masks.mean()).backward()
        results.append((out.velocity.detach(), out.masks.detach(), g.patch_in.weight.grad.clone()))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_router_prior_starts_masks_at_the_reference_and_stays_equivariant() -> None:
    """cfg.router_prior: the logits start from the reference masks; permuting characters still permutes."""
    cfg = replace(CFG, router_prior=True)
    torch.manual_seed(0)
    g = Generator(cfg).eval()
    x = _inputs(1, 3, 0)
    ref = x["ref_masks"][0, :3]  # (3, M, M)
    with torch.no_grad():
        for block in g.blocks:  # a strong prior: the tokens' votes are small beside it
            if block.router is not None:
                block.router.prior_gain.fill_(8.0)
        out = g(**x)
    pred = out.masks[0, :, :3] > 0.5  # (C, 3, M, M)
    inter = (pred & (ref[None] > 0.5)).sum((-1, -2)).float()
    union = (pred | (ref[None] > 0.5)).sum((-1, -2)).float()
    assert (inter / union).min() > 0.95
    plain = Generator(CFG).eval()
    plain.load_state_dict({k: v for k, v in g.state_dict().items() if "prior_gain" not in k})
    with torch.no_grad():
        far = plain(**x).masks[0, :, :3] > 0.5
    assert (far != pred).any()  # without the prior the same weights put the masks elsewhere
    perm = torch.tensor([2, 0, 1, 3])
    xp = dict(
        x, ref_masks=x["ref_masks"][:, perm], bind=x["bind"][:, perm][:, :, perm], mel=x["mel"][:, perm]
    )
    with torch.no_grad():
        torch.testing.assert_close(g(**xp).masks, out.masks[:, :, perm], atol=1e-5, rtol=1e-4)


def test_checkpoints_carry_the_router_prior_flag(tmp_path) -> None:
    g = Generator(replace(CFG, router_prior=True))
    save_generator(g, tmp_path / "p.safetensors")
    loaded = load_generator(tmp_path / "p.safetensors")
    assert loaded.cfg.router_prior and loaded.blocks[CFG.router_layers[0]].router.prior_gain is not None
    old = Generator(CFG)
    save_generator(old, tmp_path / "o.safetensors")
    assert load_generator(tmp_path / "o.safetensors").blocks[CFG.router_layers[0]].router.prior_gain is None
