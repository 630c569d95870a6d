"""The unit of data of the synthetic dialogue world: one clip = a dialogue + a scene rendered with it.

`DialogueTrack` is what the speech/dialogue side produces (audio and per-frame mouth truth),
`SceneRender` what the character renderer produces (frames and per-frame masks/boxes), and `Clip`
joins them. Everything is deterministic from a seed; shards, the loader and `bya eval` all speak Clip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from realtime.errors import CharacterCountError
from realtime.media import AUDIO_SAMPLE_RATE, MAX_CHARACTERS, MIN_CHARACTERS, VIDEO_FPS


def check_character_count(n: int) -> int:
    """Return n if it is a valid number of characters, else raise CharacterCountError."""
    if not isinstance(n, int | np.integer) or isinstance(n, bool):
        raise CharacterCountError(f"number of characters must be an integer, got {n!r}")
    if not MIN_CHARACTERS <= n <= MAX_CHARACTERS:
        raise CharacterCountError(
            f"number of characters must be between {MIN_CHARACTERS} and {MAX_CHARACTERS}, got {n}"
        )
    return int(n)


@dataclass(frozen=True)
class Segment:
    """One stretch of speech by one character in a dialogue script."""

    character: int  # index into the scene's characters
    start_s: float  # seconds from the clip start
    end_s: float
    text: str
    kind: str  # "turn" | "overlap" | "interruption" | "backchannel"


@dataclass(frozen=True)
class DialogueTrack:
    """Per-character audio and the mouth ground truth it implies, sample- and frame-aligned."""

    audio: np.ndarray  # (N, S) float32 in [-1, 1] at AUDIO_SAMPLE_RATE: one track per character
    openness: np.ndarray  # (N, T) float32 in [0, 1] at VIDEO_FPS: how open each mouth is
    viseme: np.ndarray  # (N, T) int8: distill.visemes.Viseme per frame
    active: np.ndarray  # (N, T) bool: the character is speaking in that frame
    segments: tuple[Segment, ...] = field(default_factory=tuple)
    sample_rate: int = AUDIO_SAMPLE_RATE
    fps: int = VIDEO_FPS

    @property
    def mix(self) -> np.ndarray:
        """(S,) float32: the sum of all tracks, clipped to [-1, 1] (what a room microphone would hear)."""
        return np.clip(self.audio.sum(axis=0), -1.0, 1.0).astype(np.float32)

    @property
    def n_characters(self) -> int:
        return int(self.audio.shape[0])

    @property
    def n_frames(self) -> int:
        return int(self.openness.shape[1])


@dataclass(frozen=True)
class SceneRender:
    """Rendered frames of a scene plus the per-frame truth the router and the harness need."""

    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    masks: np.ndarray  # (T, N, H, W) float32 in [0, 1]: soft per-character masks (the router's 3D masks)
    boxes: np.ndarray  # (T, N, 4) float32 pixel boxes x0, y0, x1, y1 of each character's head
    mouth_boxes: np.ndarray  # (T, N, 4) float32 pixel boxes of each mouth region
    background: np.ndarray  # (H, W, 3) uint8: the scene with no characters


@dataclass(frozen=True)
class Clip:
    """A dialogue rendered in a scene: the training sample, benchmark item and test fixture."""

    seed: int
    dialogue: DialogueTrack
    render: SceneRender
    scene: dict  # JSON-able scene description (characters, background), see distill.characters

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
    from dataclasses import replace

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
    from distill.characters import sample_scene

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
    from distill.dialogue import synthesize_dialogue
    from distill.render import render_scene

    scene = clip_scene(seed, n_characters)
    n = len(scene["characters"])
    dialogue = synthesize_dialogue(n, seconds=seconds, seed=seed)
    render = render_scene(scene, dialogue, size=size, seed=seed)
    return Clip(seed=seed, dialogue=dialogue, render=render, scene=scene)
