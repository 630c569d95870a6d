"""Training batches from the latent pool: where the reference frame of a reference-only run comes from."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distill.data.latent_pool import LatentPool
from realtime.media import MAX_CHARACTERS
from realtime.model.config import GENERATOR_CONFIGS

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


def test_a_tracked_run_takes_its_reference_from_the_pose_track_at_its_own_time() -> None:
    """--ref-track: the reference is the standing render 0..k frames before the run, not a real frame."""
    pool, rng = _pool(), np.random.default_rng(2)
    with pytest.raises(ValueError, match="add_tracks"):
        pool.sequence(4, 1, 0, rng, ref_track=2)
    pool.track_z = -1.0 - pool.z.float()  # the track's frame t holds -1 - t: told apart from real frames
    pool.track_m = -1.0 - pool.m
    seq = pool.sequence(64, 1, 0, rng, ref_track=2)
    start = seq["x0"][:, 0, 0, 0, 0, 0]
    ref = -1.0 - seq["ref"][:, 0, 0, 0]  # < 0 would mean a real frame was taken
    back = start - ref
    assert (ref >= 0).all() and ((back >= 0) & (back <= 2) | (ref == 0)).all() and back.max() == 2
    torch.testing.assert_close(-1.0 - seq["ref_masks"][:, 0, 0, 0], ref)
    assert (pool.sequence(8, 1, 2, rng, ref_track=2)["ref"] == 0).all()  # with context: a session's frame 0


def test_pose_tracks_are_the_scenes_standing_choreography() -> None:
    """prepare_track renders make_clip's own scene where standing_plan puts it: masks match the clip's."""
    from distill.data.latent_pool import prepare_track
    from distill.world.clip import make_clip

    cfg = GENERATOR_CONFIGS["toon-s"]
    frames, masks = prepare_track(7, cfg, 10)
    clip = make_clip(7, size=cfg.frame_size, seconds=0.4)
    n = clip.n_characters
    assert frames.shape == (10, cfg.frame_size, cfg.frame_size, 3) and masks.shape[1] == MAX_CHARACTERS
    assert not masks[:, n:].any()
    true = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(clip.render.masks), cfg.mask_size)
    iou = ((masks[:, :n] > 0.5) & (true.numpy() > 0.5)).sum() / (
        (masks[:, :n] > 0.5) | (true.numpy() > 0.5)
    ).sum()
    assert iou > 0.9


def test_listener_mouths_are_the_mouth_tokens_of_silent_streams_characters() -> None:
    from distill.train.student import listener_mouths
    from realtime.model.audio_features import SILENCE_DB

    pool, rng = _pool(), np.random.default_rng(2)
    seq = pool.sequence(4, 1, 0, rng)
    g, c = CFG.grid, CFG.chunk_frames
    masks = torch.zeros_like(seq["masks"])  # (B, R, C, K, M, M): character 0 left half, 1 right half
    half = CFG.mask_size // 2
    masks[..., 0, :, :half] = 1.0
    masks[..., 1, :, half:] = 1.0
    mel = torch.full_like(seq["mel"], SILENCE_DB)  # (B, R, S, C, win, mels)
    bind = torch.eye(MAX_CHARACTERS).expand(4, -1, -1).clone()  # stream k drives character k
    mel[:, :, 0] = 0.0  # stream 0 speaks; character 1 listens
    mouth = torch.ones(4, c * g * g)
    mouth[:, 0] = 4.0  # a mouth token on the left (character 0)
    mouth[:, g - 1] = 4.0  # ...and one on the right (character 1)
    seq = dict(seq, masks=masks, mel=mel, bind=bind)
    w = listener_mouths(CFG, seq, 0, mouth)
    assert w.shape == (4, c * g * g)
    assert (w[:, g - 1] == 1).all() and (w[:, 0] == 0).all()  # the listener's mouth, not the speaker's
    assert w.sum() == 4  # and no token that is not a mouth
    seq["bind"] = bind[:, :, [1, 0, 2, 3]]  # stream 0 now drives character 1: character 0 listens
    w = listener_mouths(CFG, seq, 0, mouth)
    assert (w[:, 0] == 1).all() and (w[:, g - 1] == 0).all()


def test_mouth_weight_replaces_the_pools_and_listener_weight_multiplies_it() -> None:
    from distill.data.latent_pool import MOUTH_TOKEN_WEIGHT
    from distill.train.student import token_loss_weights
    from realtime.model.audio_features import SILENCE_DB

    pool, rng = _pool(), np.random.default_rng(3)
    seq = pool.sequence(2, 1, 0, rng)
    g = CFG.grid
    masks = torch.zeros_like(seq["masks"])
    half = CFG.mask_size // 2
    masks[..., 0, :, :half] = 1.0
    masks[..., 1, :, half:] = 1.0
    mel = torch.full_like(seq["mel"], SILENCE_DB)
    mel[:, :, 0] = 0.0  # stream 0 (character 0) speaks, character 1 listens
    bind = torch.eye(MAX_CHARACTERS).expand(2, -1, -1).clone()
    mouth = torch.ones(2, 1, CFG.chunk_frames * g * g)
    mouth[:, :, 0] = MOUTH_TOKEN_WEIGHT  # the speaker's mouth (left)
    mouth[:, :, g - 1] = MOUTH_TOKEN_WEIGHT  # the listener's mouth (right)
    seq = dict(seq, masks=masks, mel=mel, bind=bind, mouth=mouth)
    w = token_loss_weights(CFG, seq, 0, None, 1.0)
    assert torch.equal(w, mouth[:, 0])  # default: the pool's weights untouched
    w = token_loss_weights(CFG, seq, 0, 12.0, 3.0)
    assert (w[:, 0] == 12.0).all() and (w[:, g - 1] == 36.0).all()
    assert w.sum() == 2 * (12.0 + 36.0 + w.shape[1] - 2)  # every other token keeps weight 1
    w = token_loss_weights(CFG, seq, 0, 1.0, 3.0)  # mouths at weight 1: listeners' still found
    assert (w[:, 0] == 1.0).all() and (w[:, g - 1] == 3.0).all()


def test_bad_mouth_and_critic_weights_are_refused() -> None:
    import argparse

    from distill.train.student import add_arguments, train
    from realtime.errors import BYAError

    p = argparse.ArgumentParser()
    add_arguments(p)
    with pytest.raises(BYAError, match="--mouth-weight"):
        train(p.parse_args(["--mouth-weight", "0.5", "--out", "/tmp/unused_bya_student"]))
    with pytest.raises(BYAError, match="--adv-weight"):
        train(p.parse_args(["--adv-weight", "-1", "--out", "/tmp/unused_bya_student"]))
    with pytest.raises(BYAError, match="--critic-lr"):
        train(p.parse_args(["--adv-weight", "0.1", "--critic-lr", "0", "--out", "/tmp/unused_bya_student"]))
    with pytest.raises(BYAError, match="--sync-weight"):
        train(p.parse_args(["--sync-weight", "-1", "--out", "/tmp/unused_bya_student"]))
    with pytest.raises(BYAError, match="--swap-audio must"):
        train(p.parse_args(["--swap-audio", "1.5", "--out", "/tmp/unused_bya_student"]))
    with pytest.raises(BYAError, match="needs --sync-weight"):
        train(p.parse_args(["--swap-audio", "0.5", "--out", "/tmp/unused_bya_student"]))


def test_the_mouth_critic_trains_on_mouth_tokens_and_pushes_the_student() -> None:
    from distill.train.mouth_critic import Adversary, MouthCritic
    from distill.train.student import rollout_losses
    from realtime.model.generator import Generator

    torch.manual_seed(0)
    pool, rng = _pool(), np.random.default_rng(5)
    model = Generator(CFG)
    critic = MouthCritic(CFG.token_dim, CFG.width)
    adv = Adversary(critic, torch.optim.AdamW(critic.parameters(), lr=1e-3), weight=0.5, warmup=1)
    seq = pool.sequence(2, 1, 0, rng)
    before = [p.detach().clone() for p in critic.parameters()]
    out = rollout_losses(model, seq, "regress", None, 0, 0.0, rng, 0, adversary=adv)
    assert "adv" not in out[0] and "critic" not in out[0]  # no mouth in the chunk: nothing to judge
    seq["mouth"][:, :, 3] = 4.0  # a mouth token in each sample
    out = rollout_losses(model, seq, "regress", None, 0, 0.0, rng, 0, adversary=adv)
    assert "critic" in out[0] and "adv" not in out[0]  # warming up: the critic learns, the student not
    assert any(not torch.equal(a, b) for a, b in zip(before, critic.parameters(), strict=True))
    adv.step = 1
    grads = []
    for weight in (0.0, 0.5):  # the same chunk and noise: only the adversarial term differs
        adv.weight = weight
        adv.opt = torch.optim.SGD(critic.parameters(), lr=0.0)  # the critic holds still between the two
        model.zero_grad()
        torch.manual_seed(1)
        out = rollout_losses(model, seq, "regress", None, 0, 0.0, rng, 0, adversary=adv)
        assert torch.isfinite(out[0]["adv"]) and torch.isfinite(out[0]["critic"])
        grads.append(model.patch_out.weight.grad.clone())
    assert not torch.allclose(grads[0], grads[1])  # the critic's verdict reaches the student


def test_a_pool_with_openness_hands_each_chunk_its_characters_openness() -> None:
    pool, rng = _pool(), np.random.default_rng(6)
    assert "open" not in pool.sequence(2, 1, 0, rng)
    frames = pool.z.shape[1]
    # character k's openness at frame t is (t + k) / 100: a batch says which frames and characters it took
    pool.open = (torch.arange(frames)[:, None] + torch.arange(MAX_CHARACTERS)[None]).float()[None] / 100
    pool.open = pool.open.expand(len(pool.seeds), -1, -1)
    seq = pool.sequence(16, 2, 0, rng)
    start = seq["x0"][:, 0, 0, 0, 0, 0]
    assert seq["open"].shape == (16, 2, CFG.chunk_frames, MAX_CHARACTERS)
    want = (start[:, None, None, None] + torch.arange(2 * CFG.chunk_frames).view(1, 2, -1, 1)) / 100
    torch.testing.assert_close(seq["open"], want + torch.arange(MAX_CHARACTERS) / 100)
    sub = pool.subset([2, 0])
    assert sub.seeds == [2, 0] and torch.equal(sub.open[0], pool.open[2]) and torch.equal(sub.z[1], pool.z[0])


def test_the_pools_openness_is_the_worlds_mouth_truth() -> None:
    """add_openness re-synthesizes only the dialogue; it must equal what the rendered clip carries."""
    from distill.world.clip import make_clip

    cfg = GENERATOR_CONFIGS["toon-s"]
    pool = LatentPool(cfg, ae=None, device="cpu")
    pool.seeds = [11, 12]
    pool.z = torch.zeros(2, 25, 1, 1, 1)
    pool.add_openness()
    for j, seed in enumerate(pool.seeds):
        clip = make_clip(seed, size=cfg.frame_size, seconds=1.0)
        n = clip.n_characters
        np.testing.assert_allclose(pool.open[j, :, :n].float().numpy(), clip.dialogue.openness.T, atol=1e-3)
        assert not pool.open[j, :, n:].any()


def test_the_sync_term_reads_the_students_mouths_and_pushes_them_toward_the_truth(tmp_path) -> None:
    from distill.train.mouth_probe import MouthProbe, load_probe, save_probe
    from distill.train.student import rollout_losses
    from realtime.errors import BYAError
    from realtime.model.generator import Generator

    torch.manual_seed(0)
    pool, rng = _pool(), np.random.default_rng(7)
    pool.open = torch.rand(len(pool.seeds), pool.z.shape[1], MAX_CHARACTERS)
    model = Generator(CFG)
    save_probe(MouthProbe(CFG.token_dim, hidden=16), tmp_path / "p.safetensors", {"what": "test"})
    probe = load_probe(tmp_path / "p.safetensors", CFG.token_dim)
    assert not any(p.requires_grad for p in probe.parameters())  # frozen: only the student learns
    with pytest.raises(BYAError, match="token_dim"):
        load_probe(tmp_path / "p.safetensors", CFG.token_dim + 1)
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    (tmp_path / "bad.json").write_text((tmp_path / "p.json").read_text())
    with pytest.raises(BYAError, match="unreadable"):
        load_probe(tmp_path / "bad.safetensors", CFG.token_dim)
    seq = pool.sequence(2, 1, 0, rng)
    out = rollout_losses(model, seq, "regress", None, 0, 0.0, rng, 0, probe=probe, sync_weight=1.0)
    assert "sync" not in out[0]  # no mouth in the chunk: nothing to read
    seq["mouth"][:, :, 3] = 4.0
    grads = []
    for weight in (0.0, 1.0):
        model.zero_grad()
        torch.manual_seed(1)
        out = rollout_losses(model, seq, "regress", None, 0, 0.0, rng, 0, probe=probe, sync_weight=weight)
        grads.append(model.patch_out.weight.grad.clone())
    assert torch.isfinite(out[0]["sync"]) and float(out[0]["sync"]) > 0
    assert not torch.allclose(grads[0], grads[1])  # the probe's reading reaches the student


def test_the_probe_reads_each_mouth_from_all_its_tokens_in_any_order() -> None:
    from distill.train.mouth_probe import MouthProbe, mouth_groups

    torch.manual_seed(0)
    probe = MouthProbe(CFG.token_dim, hidden=16)
    patch, ref = torch.randn(5, CFG.token_dim), torch.randn(5, CFG.token_dim)
    # tokens 0, 2, 3 show sample 0's character 1 in frame 0; tokens 1, 4 sample 1's character 0 in frame 1
    idx = torch.tensor([[0, 3], [1, 70], [0, 4], [0, 11], [1, 71]])
    owner, frame = torch.tensor([1, 0, 1, 1, 0]), torch.tensor([0, 1, 0, 0, 1])
    group, b, f, k = mouth_groups(idx, owner, frame)
    assert group[0] == group[2] == group[3] != group[1] == group[4]
    assert sorted(zip(b.tolist(), f.tolist(), k.tolist(), strict=True)) == [(0, 0, 1), (1, 1, 0)]
    got = probe(patch, ref, group, len(b))
    perm = torch.tensor([4, 2, 0, 1, 3])
    torch.testing.assert_close(probe(patch[perm], ref[perm], group[perm], len(b)), got)
    alone = probe(patch[[0, 2, 3]], ref[[0, 2, 3]], torch.zeros(3, dtype=torch.long), 1)
    torch.testing.assert_close(alone, got[group[0] : group[0] + 1])  # other mouths do not leak in
    changed = patch.clone()
    changed[1] += 1.0
    again = probe(changed, ref, group, len(b))
    assert again[group[0]] == got[group[0]] and again[group[1]] != got[group[1]]


def test_the_probe_trainer_refuses_bad_arguments_and_pools(tmp_path) -> None:
    import argparse

    from distill.train.mouth_probe import add_arguments, train_probe
    from realtime.errors import BYAError

    p = argparse.ArgumentParser()
    add_arguments(p)
    with pytest.raises(BYAError, match="--steps"):
        train_probe(p.parse_args(["--pool", "x.pt", "--steps", "0"]))
    pool = _pool()
    pool.save(tmp_path / "pool.pt")  # no pose tracks
    with pytest.raises(BYAError, match="pose tracks"):
        train_probe(
            p.parse_args(
                [
                    "--pool",
                    str(tmp_path / "pool.pt"),
                    "--model",
                    "realtime/weights/toon-s-student.safetensors",
                ]
            )
        )


def test_swapped_runs_hear_a_bank_dialogue_for_as_many_characters_and_lose_their_mouth_targets() -> None:
    from distill.train.student import token_loss_weights

    pool, rng = _pool(clips=4), np.random.default_rng(8)
    frames = pool.z.shape[1]
    pool.m = torch.zeros_like(pool.m)
    for j, n in enumerate((1, 2, 3, 4)):  # clip j has j + 1 characters
        pool.m[j, :, :n] = 1.0
    pool.open = torch.zeros(4, frames, MAX_CHARACTERS)
    with pytest.raises(ValueError, match="add_dialogues"):
        pool.sequence(4, 1, 0, rng, swap_audio=0.5)
    mel_len = pool.mel_padded.shape[2]
    # bank dialogue d is for 1 + d % 4 characters; its log-mel holds 100 + d, its openness 0.5
    pool.bank_n = torch.tensor([1 + d % 4 for d in range(8)])
    pool.bank_mel = (
        (100.0 + torch.arange(8.0)).view(8, 1, 1, 1).expand(8, MAX_CHARACTERS, mel_len, CFG.n_mels)
    )
    pool.bank_open = torch.full((8, frames, MAX_CHARACTERS), 0.5)
    seq = pool.sequence(64, 1, 0, rng, swap_audio=0.5)
    swap = seq["swapped"]
    assert 10 < int(swap.sum()) < 54
    heard = seq["mel"][:, 0, 0, 0, 0, 0]  # what stream 0 hears: 0 from the clip, 100 + d from the bank
    assert (heard[~swap] == 0).all() and (heard[swap] >= 100).all()
    n_clip = pool.characters()[((seq["masks"][:, 0, 0] > 0).flatten(2).any(-1)).sum(-1) - 1]
    n_bank = pool.bank_n[(heard[swap] - 100).long()]
    assert torch.equal(n_bank, n_clip[swap])  # a dialogue for as many characters as the clip has
    assert (seq["open"][swap] == 0.5).all() and (seq["open"][~swap] == 0).all()
    seq["mouth"][:, :, 3] = 4.0
    w = token_loss_weights(CFG, seq, 0, 12.0, 1.0)
    assert (w[swap, 3] == 0).all() and (w[~swap, 3] == 12).all() and (w[:, 0] == 1).all()
