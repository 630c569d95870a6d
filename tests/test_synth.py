"""`bya data synth` end to end on tiny clips, and the training-window loader over its output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distill.data.loader import ClipWindows, clip_window
from distill.data.shards import ShardDataset, SynthSpec, clip_seed
from distill.data.synth import synthesize_dataset
from distill.world.clip import make_clip
from realtime.cli import main
from realtime.media import MAX_CHARACTERS, SAMPLES_PER_FRAME


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    spec = SynthSpec(clips=3, seed=11, size=64, seconds=1.6, clips_per_shard=2)
    summary = synthesize_dataset(root / "ds", spec, workers=1, progress=False)
    return root / "ds", summary


def test_synth_writes_a_readable_deterministic_dataset(dataset):
    root, summary = dataset
    assert summary["clips"] == 3 and summary["frames_per_s"] > 0
    ds = ShardDataset(root)
    assert ds.verify_all() == 3
    clips = list(ds)
    assert [c.seed for c in clips] == [clip_seed(11, i) for i in range(3)]
    again = make_clip(clip_seed(11, 1), size=64, seconds=1.6)
    np.testing.assert_array_equal(again.render.frames, clips[1].render.frames)
    assert clips[1].n_characters == again.n_characters


def test_worker_count_does_not_change_the_data(dataset, tmp_path):
    root, _ = dataset
    spec = SynthSpec(clips=3, seed=11, size=64, seconds=1.6, clips_per_shard=2)
    synthesize_dataset(tmp_path / "ds2", spec, workers=2, progress=False)
    a, b = ShardDataset(root).manifest["shards"], ShardDataset(tmp_path / "ds2").manifest["shards"]
    assert [s["seeds"] for s in a] == [s["seeds"] for s in b]
    assert [s["sha256"] for s in a] == [s["sha256"] for s in b]


def test_cli_prints_throughput_and_progress(tmp_path, capsys):
    rc = main(
        [
            "data",
            "synth",
            "--out",
            str(tmp_path / "d"),
            "--clips",
            "2",
            "--size",
            "64",
            "--seconds",
            "1",
            "--workers",
            "1",
            "--characters",
            "3",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0
    assert "frames/s" in captured.out and "2/2 clips" in captured.err
    assert all(n == 3 for s in ShardDataset(tmp_path / "d").manifest["shards"] for n in s["characters"])
    assert main(["data", "inspect", str(tmp_path / "d")]) == 0
    assert "verified 2 clips" in capsys.readouterr().out


def test_windows_are_padded_to_four_characters(dataset):
    root, _ = dataset
    stream = iter(ClipWindows(frames=8, shards=str(root), windows_per_clip=2, endless=False))
    batch = torch.utils.data.default_collate([next(stream) for _ in range(4)])
    assert batch["frames"].shape == (4, 8, 3, 64, 64)
    assert batch["audio"].shape == (4, MAX_CHARACTERS, 8 * SAMPLES_PER_FRAME)
    assert batch["masks"].shape == (4, 8, MAX_CHARACTERS, 64, 64)
    assert batch["frames"].min() >= -1 and batch["frames"].max() <= 1
    absent = ~batch["present"]
    assert batch["masks"][:, :, :][absent.unsqueeze(1).expand(-1, 8, -1)].abs().sum() == 0


def test_window_bounds_are_checked(dataset):
    clip = ShardDataset(dataset[0]).clip(0)
    with pytest.raises(ValueError, match="does not fit"):
        clip_window(clip, clip.n_frames - 2, 8)
