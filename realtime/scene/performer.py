"""The performer: what a face does besides what the generator says.

The rig generator gives each face, per frame, its mouth (openness, width), brows and speech energy. A
face that only moves its mouth looks dead, so the performer adds what people do anyway: blinks every few
seconds, a slow idle sway, and head motion that grows while the face speaks. Everything is a pure function
of (seed, character, frame index), so a frame renders the same whenever it is rendered, and two faces
never blink in step.
"""

from __future__ import annotations

import numpy as np

from realtime.media import VIDEO_FPS
from realtime.scene.picture.rig import Rig

BLINK_INTERVAL_S = (2.0, 6.0)  # seconds between blinks
BLINK_PROFILE = (0.35, 0.0, 0.1, 0.6)  # eye openness over a blink's frames
BLOCK_FRAMES = 1000  # blinks are drawn per block of frames from (seed, character, block)
SPEECH_HEAD = (0.012, 0.010, np.deg2rad(2.0))  # head dx (face widths), dy (face heights), tilt at full energy
IDLE_HEAD = (0.003, 0.003, np.deg2rad(0.8))  # the same, always
SMOOTH_OPEN = 1.0  # weight of the newest openness in a one-pole filter (1: none; smoothing cost ~30 ms of latency)
# Lips stay sealed below this openness (and the rest of the range is stretched back to 0..1): a listener's
# field is never exactly 0, and a mouth that trembles while others talk reads as mouthing their words.
LIP_SEAL = 0.03
ENVELOPE_DECAY = 0.93  # per frame: the speech envelope falls to half in ~10 frames (0.4 s) after speech
ENVELOPE_GAIN = 2.5  # envelope -> energy: a mouth opening to 0.4 is talking at full energy


def _wobble(t: np.ndarray, freqs: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """A smooth pseudo-random curve of about unit amplitude at times t (seconds)."""
    return np.sin(2 * np.pi * freqs[:, None] * t[None] + phases[:, None]).sum(0) / np.sqrt(len(freqs))


class Performer:
    """Per-frame Rig of every face from the generator's rig values."""

    def __init__(self, n_faces: int, seed: int = 0, fps: int = VIDEO_FPS) -> None:
        if n_faces < 1:
            raise ValueError(f"n_faces must be >= 1, got {n_faces}")
        self.n, self.seed, self.fps = n_faces, seed, fps
        self._blinks: dict[tuple[int, int], np.ndarray] = {}
        rng = np.random.default_rng([seed, 0x4EAD])
        # per face and axis (dx, dy, tilt): 3 incommensurate frequencies, 0.15-0.9 Hz
        self.freqs = rng.uniform(0.15, 0.9, (n_faces, 3, 3))
        self.phases = rng.uniform(0, 2 * np.pi, (n_faces, 3, 3))
        self._open = np.zeros(n_faces)
        self._env = np.zeros(n_faces)

    def _lids(self, k: int, block: int) -> np.ndarray:
        key = (k, block)
        if key not in self._blinks:
            rng = np.random.default_rng([self.seed, 0xB11, k, block])
            lid = np.ones(BLOCK_FRAMES)
            t = rng.uniform(0.0, BLINK_INTERVAL_S[1]) * self.fps
            while t < BLOCK_FRAMES - len(BLINK_PROFILE):
                s = int(t)
                lid[s : s + len(BLINK_PROFILE)] = BLINK_PROFILE
                t += rng.uniform(*BLINK_INTERVAL_S) * self.fps
            if len(self._blinks) > 64:
                self._blinks.clear()
            self._blinks[key] = lid
        return self._blinks[key]

    def lid(self, k: int, frame: int) -> float:
        return float(self._lids(k, frame // BLOCK_FRAMES)[frame % BLOCK_FRAMES])

    def pose(self, frame: int, values: np.ndarray) -> list[Rig]:
        """values (N, 5) rig values of one frame (openness, width, energy, brow, active) -> N Rigs."""
        values = np.asarray(values, np.float64)
        if values.shape != (self.n, 5):
            raise ValueError(f"values must be ({self.n}, 5), got {values.shape}")
        t = np.array([frame / self.fps])
        out = []
        for k in range(self.n):
            opn, width, _, brow, _ = values[k]  # energy: from the mouth below
            self._open[k] = SMOOTH_OPEN * opn + (1 - SMOOTH_OPEN) * self._open[k]
            sealed = max(0.0, (self._open[k] - LIP_SEAL) / (1.0 - LIP_SEAL))
            # speech energy from the face's own mouth: a peak follower of its openness. The field's energy
            # channel is smoother but spills between touching heads; the mouth is what binding holds to.
            self._env[k] = max(sealed, self._env[k] * ENVELOPE_DECAY)
            energy = min(1.0, ENVELOPE_GAIN * self._env[k])
            head = [
                (IDLE_HEAD[a] + SPEECH_HEAD[a] * energy)
                * float(_wobble(t, self.freqs[k, a], self.phases[k, a])[0])
                for a in range(3)
            ]
            out.append(
                Rig(
                    openness=sealed,
                    width=float(width),
                    brow=float(brow),
                    lid=self.lid(k, frame),
                    head_dx=head[0],
                    head_dy=head[1],
                    tilt=head[2],
                )
            )
        return out
