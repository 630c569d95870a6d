"""The unit of data of the synthetic dialogue world: one clip = a dialogue + a scene rendered with it.

`DialogueTrack` is what the speech/dialogue side produces (audio and per-frame mouth truth),
`SceneRender` what the character renderer produces (frames and per-frame masks/boxes), and `Clip`
joins them. Everything is deterministic from a seed; shards, the loader and `bya eval` all speak Clip.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from distill.world.dialogue import synthesize_dialogue
from realtime.media import MAX_CHARACTERS, MIN_CHARACTERS
from realtime.scene.cartoon.characters import sample_scene
from realtime.scene.cartoon.render import render_scene
from realtime.scene.cartoon.tracks import DialogueTrack, SceneRender, Segment, check_character_count

__all__ = [  # the records a clip is made of live with the drawing code; the world's users find them here too
    "Clip",
    "DialogueTrack",
    "SceneRender",
    "Segment",
    "check_character_count",
    "clip_scene",
    "make_clip",
    "truncate",
]


@dataclass(frozen=True)
class Clip:
    """A dialogue rendered in a scene: the training sample, benchmark item and test fixture."""

    seed: int
    dialogue: DialogueTrack
    render: SceneRender
    scene: dict  # JSON-able scene description (characters, background), see realtime.scene.cartoon.characters

    @property
    def n_characters(self) -> int:
        return self.dialogue.n_characters

    @property
    def n_frames(self) -> int:
        return self.dialogue.n_frames

    @property
    def size(self) -> int:
        return int(self.render.frames.shape[1])


def truncate(clip: Clip, frames: int) -> Clip:
    """The first `frames` frames of a clip (and their audio): what a generator made of whole chunks covers."""
    d, r = clip.dialogue, clip.render
    spf = d.sample_rate // d.fps
    d2 = replace(
        d,
        audio=d.audio[:, : frames * spf],
        openness=d.openness[:, :frames],
        viseme=d.viseme[:, :frames],
        active=d.active[:, :frames],
    )
    r2 = replace(
        r,
        frames=r.frames[:frames],
        masks=r.masks[:frames],
        boxes=r.boxes[:frames],
        mouth_boxes=r.mouth_boxes[:frames],
    )
    return replace(clip, dialogue=d2, render=r2)


def clip_scene(seed: int, n_characters: int | None = None) -> dict:
    """The scene of `make_clip(seed, n_characters)` alone (no dialogue, no render): cheap."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(MIN_CHARACTERS, MAX_CHARACTERS + 1)) if n_characters is None else n_characters
    check_character_count(n)
    return sample_scene(n, seed=seed)


def make_clip(
    seed: int,
    n_characters: int | None = None,
    size: int = 128,
    seconds: float = 8.0,
) -> Clip:
    """Generate one clip of the world from a seed: a dialogue for 1-4 characters rendered at size x size."""
    scene = clip_scene(seed, n_characters)
    n = len(scene["characters"])
    dialogue = synthesize_dialogue(n, seconds=seconds, seed=seed)
    render = render_scene(scene, dialogue, size=size, seed=seed)
    return Clip(seed=seed, dialogue=dialogue, render=render, scene=scene)
