"""What a cartoon drawing is made from and what it gives back: a dialogue's per-character audio and mouth
truth (`DialogueTrack`), the rendered frames with their per-frame masks and boxes (`SceneRender`), and the
check on how many characters a scene may hold. Scenes draw their reference frames with these at run time;
the training world (`distill.world.clip`) joins them into clips.
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
    viseme: np.ndarray  # (N, T) int8: distill.world.visemes.Viseme per frame
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
