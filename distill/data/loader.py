"""Training batches from the world: fixed-length windows of clips, padded to 4 characters.

Reads from shards (`ShardDataset`) or generates clips on the fly from a seed stream; either way it
yields tensors ready for the generator: frames in [-1, 1], per-character audio, masks and mouth truth,
with a `present` flag per character slot so clips of 1-4 characters batch together.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from distill.data.shards import ShardDataset, clip_seed
from distill.world.clip import Clip, make_clip
from realtime.errors import BYAError
from realtime.media import MAX_CHARACTERS, SAMPLES_PER_FRAME


def clip_window(clip: Clip, start: int, frames: int) -> dict[str, torch.Tensor]:
    """Cut frames [start, start+frames) of a clip (and the matching audio) into padded tensors."""
    if frames < 1 or start < 0 or start + frames > clip.n_frames:
        raise BYAError(f"window [{start}, {start + frames}) does not fit a clip of {clip.n_frames} frames")
    n, sl = clip.n_characters, slice(start, start + frames)
    size = clip.size
    out = {
        "frames": torch.from_numpy(clip.render.frames[sl]).permute(0, 3, 1, 2).float() / 127.5 - 1.0,
        "reference": torch.from_numpy(clip.render.frames[0]).permute(2, 0, 1).float() / 127.5 - 1.0,
        "audio": torch.zeros(MAX_CHARACTERS, frames * SAMPLES_PER_FRAME),
        "masks": torch.zeros(frames, MAX_CHARACTERS, size, size),
        "reference_masks": torch.zeros(MAX_CHARACTERS, size, size),
        "openness": torch.zeros(MAX_CHARACTERS, frames),
        "active": torch.zeros(MAX_CHARACTERS, frames, dtype=torch.bool),
        "present": torch.zeros(MAX_CHARACTERS, dtype=torch.bool),
    }
    a0 = start * SAMPLES_PER_FRAME
    audio = clip.dialogue.audio[:, a0 : a0 + frames * SAMPLES_PER_FRAME]
    out["audio"][:n, : audio.shape[1]] = torch.from_numpy(np.ascontiguousarray(audio))
    out["masks"][:, :n] = torch.from_numpy(clip.render.masks[sl])
    out["reference_masks"][:n] = torch.from_numpy(clip.render.masks[0])
    out["openness"][:n] = torch.from_numpy(clip.dialogue.openness[:, sl])
    out["active"][:n] = torch.from_numpy(clip.dialogue.active[:, sl])
    out["present"][:n] = True
    return out


class ClipWindows(IterableDataset):
    """An endless (or one-pass) stream of random windows of `frames` frames from world clips."""

    def __init__(
        self,
        frames: int,
        shards: str | None = None,
        seed: int = 0,
        size: int = 128,
        seconds: float = 8.0,
        windows_per_clip: int = 4,
        endless: bool = True,
    ) -> None:
        super().__init__()
        self.frames, self.shards, self.seed = frames, shards, seed
        self.size, self.seconds, self.windows_per_clip, self.endless = (
            size,
            seconds,
            windows_per_clip,
            endless,
        )

    def _clips(self, worker: int, workers: int, epoch: int) -> Iterator[Clip]:
        if self.shards is not None:
            yield from ShardDataset(self.shards).iter_clips(
                shuffle=True, seed=self.seed + epoch, worker=worker, workers=workers
            )
        else:
            for i in itertools.count(worker, workers):
                yield make_clip(clip_seed(self.seed + epoch, i), size=self.size, seconds=self.seconds)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        rng = np.random.default_rng([self.seed, worker])
        for epoch in itertools.count():
            for clip in self._clips(worker, workers, epoch):
                if clip.n_frames < self.frames:
                    raise BYAError(
                        f"clips of {clip.n_frames} frames are shorter than windows of {self.frames}"
                    )
                for _ in range(self.windows_per_clip):
                    yield clip_window(
                        clip, int(rng.integers(0, clip.n_frames - self.frames + 1)), self.frames
                    )
            if not self.endless or self.shards is None:
                return
