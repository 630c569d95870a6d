"""Shards and single-clip files: round trip, atomicity, corruption and unwritable outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from distill.data.shards import ShardDataset, ShardWriter, SynthSpec, load_clip, read_manifest, save_clip
from distill.world.clip import Clip, DialogueTrack, SceneRender, Segment
from realtime.errors import OutputPathError, ShardError


def fake_clip(seed: int, n: int = 2, t: int = 10, size: int = 16) -> Clip:
    rng = np.random.default_rng(seed)
    dialogue = DialogueTrack(
        audio=rng.uniform(-0.5, 0.5, (n, t * 640)).astype(np.float32),
        openness=rng.uniform(0, 1, (n, t)).astype(np.float32),
        viseme=rng.integers(0, 7, (n, t)).astype(np.int8),
        active=rng.uniform(size=(n, t)) > 0.5,
        segments=(Segment(0, 0.0, 0.2, "hello", "turn"),),
    )
    render = SceneRender(
        frames=rng.integers(0, 256, (t, size, size, 3), dtype=np.uint8),
        masks=rng.uniform(0, 1, (t, n, size, size)).astype(np.float32),
        boxes=rng.uniform(0, size, (t, n, 4)).astype(np.float32),
        mouth_boxes=rng.uniform(0, size, (t, n, 4)).astype(np.float32),
        background=rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
    )
    return Clip(seed=seed, dialogue=dialogue, render=render, scene={"characters": [{"name": "a"}] * n})


def assert_clip_close(a: Clip, b: Clip) -> None:
    assert a.seed == b.seed and a.scene == b.scene and a.dialogue.segments == b.dialogue.segments
    np.testing.assert_array_equal(a.render.frames, b.render.frames)
    np.testing.assert_allclose(a.render.masks, b.render.masks, atol=1 / 255)
    np.testing.assert_allclose(a.dialogue.audio, b.dialogue.audio, atol=1 / 32767)
    np.testing.assert_array_equal(a.dialogue.active, b.dialogue.active)
    np.testing.assert_array_equal(a.dialogue.viseme, b.dialogue.viseme)


def test_single_clip_round_trip(tmp_path):
    clip = fake_clip(3)
    save_clip(clip, tmp_path / "c.npz")
    assert_clip_close(clip, load_clip(tmp_path / "c.npz"))


def test_shards_round_trip_and_random_access(tmp_path):
    clips = [fake_clip(s, n=1 + s % 4) for s in range(7)]
    writer = ShardWriter(tmp_path / "ds", SynthSpec(clips=7, seed=0, clips_per_shard=3))
    for c in clips:
        writer.add(c)
    writer.close()
    ds = ShardDataset(tmp_path / "ds")
    assert len(ds) == 7 and len(ds.manifest["shards"]) == 3
    for a, b in zip(clips, ds, strict=True):
        assert_clip_close(a, b)
    assert_clip_close(clips[5], ds.clip(5))
    assert ds.verify_all() == 7
    shuffled = [c.seed for c in ds.iter_clips(shuffle=True, seed=1)]
    assert sorted(shuffled) == list(range(7)) and shuffled != list(range(7))
    split = [c.seed for w in range(2) for c in ds.iter_clips(worker=w, workers=2)]
    assert sorted(split) == list(range(7))
    with pytest.raises(ShardError, match="out of range"):
        ds.clip(7)


def test_no_manifest_means_incomplete(tmp_path):
    writer = ShardWriter(tmp_path / "ds", SynthSpec(clips=4, seed=0, clips_per_shard=2))
    for s in range(4):
        writer.add(fake_clip(s))  # two shards flushed, manifest not yet written
    assert len(list((tmp_path / "ds").glob("shard-*.npz"))) == 2
    with pytest.raises(ShardError, match="did not finish"):
        ShardDataset(tmp_path / "ds")
    writer.abort()
    assert not list((tmp_path / "ds").glob("shard-*"))


def test_corrupt_shard_is_named(tmp_path):
    writer = ShardWriter(tmp_path / "ds", SynthSpec(clips=2, seed=0, clips_per_shard=1))
    writer.add(fake_clip(0))
    writer.add(fake_clip(1))
    writer.close()
    shard = tmp_path / "ds" / "shard-00001.npz"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    ds = ShardDataset(tmp_path / "ds")
    assert ds.clip(0).seed == 0  # the healthy shard still reads
    with pytest.raises(ShardError, match=r"shard-00001\.npz: checksum mismatch"):
        ds.clip(1)
    with pytest.raises(ShardError, match=r"shard-00001\.npz"):
        ShardDataset(tmp_path / "ds", verify=False).verify_all()


def test_foreign_files_are_rejected(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ShardError, match="not a readable clip file"):
        load_clip(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ShardError, match="missing arrays"):
        load_clip(tmp_path / "other.npz")
    with pytest.raises(ShardError, match="not found"):
        load_clip(tmp_path / "absent.npz")
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ShardError, match="format 'something-else'"):
        read_manifest(tmp_path / "ds")


def test_unwritable_output_is_reported_before_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(OutputPathError, match="cannot write to"):
        ShardWriter(blocker / "ds", SynthSpec(clips=1, seed=0))
    with pytest.raises(OutputPathError, match="cannot write to"):
        save_clip(fake_clip(0), blocker / "c.npz")


def test_existing_dataset_needs_overwrite(tmp_path):
    w = ShardWriter(tmp_path / "ds", SynthSpec(clips=1, seed=0))
    w.add(fake_clip(0))
    w.close()
    with pytest.raises(OutputPathError, match="--overwrite"):
        ShardWriter(tmp_path / "ds", SynthSpec(clips=1, seed=0))
    w = ShardWriter(tmp_path / "ds", SynthSpec(clips=1, seed=0), overwrite=True)
    w.add(fake_clip(5))
    w.close()
    assert [c.seed for c in ShardDataset(tmp_path / "ds")] == [5]
