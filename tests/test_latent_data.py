"""Training batches from the latent pool: where the reference frame of a reference-only run comes from."""

from __future__ import annotations

import numpy as np
import torch

from distill.latent_data import LatentPool
from realtime.generator_config import GENERATOR_CONFIGS
from realtime.media import MAX_CHARACTERS

CFG = GENERATOR_CONFIGS["tiny"]


def _pool(clips: int = 3, frames: int = 60) -> LatentPool:
    """A pool whose latents and masks hold their own frame index, so a batch says which frames it took."""
    pool = LatentPool(CFG, ae=None, device="cpu")
    lat, m = CFG.latent_size, CFG.mask_size
    index = torch.arange(frames, dtype=torch.float32)
    pool.seeds = list(range(clips))
    pool.z = index[None, :, None, None, None].expand(clips, frames, CFG.latent_channels, lat, lat).half()
    pool.m = index[None, :, None, None, None].expand(clips, frames, MAX_CHARACTERS, m, m).clone()
    pool.w = torch.ones(clips, frames, CFG.frame_tokens)
    mel_len = frames * CFG.mel_per_frame + (CFG.audio_past_ms + CFG.audio_lookahead_ms) // 10
    pool.mel_padded = torch.zeros(clips, MAX_CHARACTERS, mel_len, CFG.n_mels).half()
    return pool


def test_a_reference_only_run_takes_its_reference_from_just_before_the_chunk() -> None:
    pool, rng = _pool(), np.random.default_rng(0)
    seq = pool.sequence(64, 1, 0, rng, ref_near=5)
    start = seq["x0"][:, 0, 0, 0, 0, 0]  # frame index of each run's first frame
    ref = seq["ref"][:, 0, 0, 0]
    back = start - ref
    assert ((back >= 1) & (back <= 5) | (ref == 0)).all() and back.max() == 5 and back.min() == 1
    torch.testing.assert_close(seq["ref_masks"][:, 0, 0, 0], ref)  # the masks come from the same frame


def test_without_ref_near_or_with_context_the_reference_is_the_first_frame() -> None:
    pool, rng = _pool(), np.random.default_rng(1)
    assert (pool.sequence(32, 1, 0, rng)["ref"] == 0).all()
    assert (pool.sequence(32, 1, 2, rng, ref_near=5)["ref"] == 0).all()  # a session's reference is frame 0
    assert (pool.sequence(32, 1, 0, rng, from_start=True, ref_near=5)["ref"] == 0).all()
