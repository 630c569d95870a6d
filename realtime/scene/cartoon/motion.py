"""Per-frame performance of every character: where it stands, how its head moves, blinks, brows, gaze.

`plan_motion` turns a validated scene and a dialogue's (N, T) mouth truth into (N, T) curves the
renderer draws from. Speaking adds head energy; listening brings small nods; emphasis lifts the brows.
All randomness comes from the render seed, so the same inputs always give the same performance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLINK_INTERVAL_S = (2.0, 6.0)  # seconds between blinks, uniform: people blink every few seconds
BLINK_LIDS = {3: (0.35, 0.0, 0.45), 4: (0.4, 0.0, 0.15, 0.6)}  # eye openness over a 3- or 4-frame blink
NOD_INTERVAL_S = (1.2, 3.5)  # seconds between listening nods
NOD_DEPTH = 0.04  # head heights a nod dips the head by
ENERGY_WINDOW_S = 0.4  # smoothing of the "is speaking" flag into a speech energy in [0, 1]
GAZE_SPAN = 0.12  # frame widths between a character and whom it looks at for a full sideways gaze
EMPHASIS_WINDOW_S = 0.6  # openness above its running mean over this window reads as emphasis


@dataclass(frozen=True)
class MotionPlan:
    """(N, T) per-frame curves; positions are fractions of the frame width, offsets in head heights."""

    x: np.ndarray  # head-centre x at rest pose (drift + sway)
    y: np.ndarray  # head-centre y at rest pose (drift + bob)
    head_dx: np.ndarray  # head offset from the body, in head widths (speech jitter)
    head_dy: np.ndarray  # head offset from the body, in head heights (nods, speech jitter)
    tilt: np.ndarray  # head roll in radians
    lid: np.ndarray  # eye openness in [0, 1]; 0 is a closed eye
    brow: np.ndarray  # brow raise in [0, 1]
    gaze: np.ndarray  # horizontal pupil offset in [-1, 1]; positive looks right
    openness: np.ndarray  # mouth openness in [0, 1], exactly the dialogue's
    viseme: np.ndarray  # int8 viseme codes, exactly the dialogue's
    energy: np.ndarray  # speech energy in [0, 1]


def smooth(x: np.ndarray, frames: int) -> np.ndarray:
    """Centred moving average along the last axis with edge padding (keeps constants constant)."""
    if frames <= 1 or x.shape[-1] == 0:
        return x.astype(np.float64)
    pad = [(0, 0)] * (x.ndim - 1) + [(frames // 2, frames - 1 - frames // 2)]
    padded = np.pad(x.astype(np.float64), pad, mode="edge")
    c = np.cumsum(padded, axis=-1)
    c = np.concatenate([np.zeros((*c.shape[:-1], 1)), c], axis=-1)
    return (c[..., frames:] - c[..., :-frames]) / frames


def blink_lids(n_frames: int, fps: int, rng: np.random.Generator) -> np.ndarray:
    """(T,) eye openness with a blink every BLINK_INTERVAL_S seconds, lasting 3 or 4 frames."""
    lid = np.ones(n_frames)
    t = rng.uniform(0.3, BLINK_INTERVAL_S[1]) * fps  # first blink may come early
    while t < n_frames:
        profile = BLINK_LIDS[int(rng.integers(3, 5))]
        start = int(t)
        for k, value in enumerate(profile):
            if start + k < n_frames:
                lid[start + k] = value
        t += rng.uniform(*BLINK_INTERVAL_S) * fps
    return lid


def _nods(n_frames: int, fps: int, listening: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(T,) head dip in head heights: short smooth dips, only while the character listens."""
    dip = np.zeros(n_frames)
    t = rng.uniform(0.2, NOD_INTERVAL_S[1]) * fps
    while t < n_frames:
        length = int(rng.integers(10, 17))
        k = np.arange(length)
        shape = np.sin(np.pi * k / (length - 1)) ** 2 * NOD_DEPTH * rng.uniform(0.6, 1.2)
        start = int(t)
        end = min(n_frames, start + length)
        dip[start:end] = np.maximum(dip[start:end], shape[: end - start])
        t += rng.uniform(*NOD_INTERVAL_S) * fps
    return dip * listening


def _wobble(n_frames: int, rng: np.random.Generator, frames: int) -> np.ndarray:
    """(T,) smooth random curve with unit standard deviation (speech head jitter)."""
    if n_frames == 0:
        return np.zeros(0)
    noise = smooth(rng.standard_normal(n_frames + 2 * frames), frames)[frames : frames + n_frames]
    return noise / max(float(noise.std()), 1e-6)


def standing_xy(ch: dict, t: np.ndarray, energy: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Where a character stands at times t (seconds): its drift between home and `to`, its sway, and its
    bob, which grows with speech energy (0: the idle bob). Fractions of the frame width."""
    m = ch["motion"]
    phase = 2 * np.pi * m["phase"]
    home = np.array(ch["home"])
    to = np.array(m["drift"]["to"])
    drift = (1 - np.cos(2 * np.pi * (t / m["drift"]["period_s"] + m["drift"]["phase"]))) / 2
    bob = (
        m["bob"]["amplitude"] * (1 + 0.8 * energy) * np.sin(2 * np.pi * m["bob"]["frequency_hz"] * t + phase)
    )
    sway = m["sway"]["amplitude"] * np.sin(2 * np.pi * m["sway"]["frequency_hz"] * t + 1.7 * phase)
    return home[0] + (to[0] - home[0]) * drift + sway, home[1] + (to[1] - home[1]) * drift + bob


def sway_tilt(ch: dict, t: np.ndarray, energy: np.ndarray | float = 0.0) -> np.ndarray:
    """A character's slow head roll at times t (radians), larger with speech energy (0: idle)."""
    m = ch["motion"]
    slow = np.sin(2 * np.pi * 0.8 * m["sway"]["frequency_hz"] * t + 2 * np.pi * m["phase"] + 0.6)
    return np.deg2rad(m["tilt_deg"]) * (0.4 + 0.6 * energy) * slow


def idle_gaze(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(N, T) gaze with nobody speaking: toward the others at large (alone: a slow look around)."""
    n = x.shape[0]
    if n == 1:
        return 0.3 * np.sin(2 * np.pi * 0.1 * t)[None]
    others = (x.sum(0, keepdims=True) - x) / (n - 1)
    return np.clip((others - x) / GAZE_SPAN, -1.0, 1.0)


def plan_motion(
    scene: dict, openness: np.ndarray, viseme: np.ndarray, active: np.ndarray, fps: int, seed: int
) -> MotionPlan:
    """Per-frame motion of every character of a validated scene driven by (N, T) mouth truth."""
    n, t_len = openness.shape
    t = np.arange(t_len) / fps
    energy = np.clip(smooth(active.astype(np.float64), max(1, round(ENERGY_WINDOW_S * fps))), 0.0, 1.0)
    listening = 1.0 - energy
    emphasis = openness - smooth(openness, max(1, round(EMPHASIS_WINDOW_S * fps)))
    brow = np.clip(smooth(np.clip(emphasis, 0.0, None) * 3.0, 3), 0.0, 1.0)

    fields = {k: np.zeros((n, t_len)) for k in ("x", "y", "head_dx", "head_dy", "tilt", "lid", "gaze")}
    for i, ch in enumerate(scene["characters"]):
        rng = np.random.default_rng([seed, 0xB0D1, i])  # one stream per character: adding one changes none
        e = energy[i]
        fields["x"][i], fields["y"][i] = standing_xy(ch, t, e)
        fields["tilt"][i] = sway_tilt(ch, t, e) + np.deg2rad(2.5) * e * _wobble(t_len, rng, 5)
        fields["head_dx"][i] = 0.015 * e * _wobble(t_len, rng, 6)
        fields["head_dy"][i] = 0.012 * e * _wobble(t_len, rng, 4) + _nods(t_len, fps, listening[i], rng)
        fields["lid"][i] = blink_lids(t_len, fps, rng)

    # Listeners look toward whoever speaks; with nobody speaking, toward the others at large.
    x = fields["x"]
    for i in range(n):
        others = [j for j in range(n) if j != i]
        if not others:
            fields["gaze"][i] = 0.3 * np.sin(2 * np.pi * 0.1 * t)
            continue
        w = 0.15 + energy[others]
        target = (w * x[others]).sum(0) / w.sum(0)
        fields["gaze"][i] = np.clip(smooth((target - x[i]) / GAZE_SPAN, 5), -1.0, 1.0)

    return MotionPlan(
        **fields,
        brow=brow,
        openness=openness.astype(np.float64),
        viseme=viseme.astype(np.int8),
        energy=energy,
    )
