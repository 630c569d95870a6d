"""Speech for the latency benchmark: short spoken bursts with silent gaps, one character at a time.

Each burst is a world phrase spoken by espeak (`distill.world.speech`) in that character's voice, trimmed to
its sound, so it starts with a clear onset; between bursts every track is silent for `gap_s`, long
enough for the mouths to settle and give the detector an idle baseline. Characters take turns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

from realtime.media import AUDIO_SAMPLE_RATE, WEBRTC_AUDIO_RATE

PHRASES = (
    "Hello there.",
    "Look at this!",
    "Maybe tomorrow.",
    "Papa bought a map.",
    "Bob, come here.",
    "What a day!",
    "Oh no, not again.",
    "Bring me the box.",
)
VOICES = ("en-us", "en-gb+f2", "en-us+m3", "en-gb+f4")  # one per character, so the voices differ
ONSET_LEVEL = 0.1  # the onset is the first sample above 10% of the burst's peak: a sharp, codec-proof edge
TRIM_LEVEL = 0.02  # a burst is trimmed to where it rises above 2% of its peak


@dataclass(frozen=True)
class Burst:
    character: int
    onset: int  # sample at 48 kHz (in the character's track) where the speech starts
    length: int  # samples of speech
    peak: float  # the burst's peak amplitude (for finding its onset again after the codecs)
    text: str


def speech_bursts(
    n_characters: int, onsets: int, gap_s: float = 1.4, lead_s: float = 2.0, tail_s: float = 1.5
) -> tuple[np.ndarray, list[Burst]]:
    """(N, S) float32 tracks at 48 kHz and the bursts in them: `onsets` bursts, characters in turn."""
    from distill.world.speech import synthesize

    if not 1 <= n_characters <= len(VOICES):
        raise ValueError(f"n_characters must be 1-{len(VOICES)}, got {n_characters}")
    if onsets < 1 or gap_s < 0.5 or lead_s < 1.0:
        raise ValueError(f"need onsets >= 1, gap_s >= 0.5, lead_s >= 1.0; got {onsets}, {gap_s}, {lead_s}")
    pieces: list[tuple[int, int, np.ndarray, str]] = []
    at = round(lead_s * WEBRTC_AUDIO_RATE)
    for i in range(onsets):
        k = i % n_characters
        text = PHRASES[(i // n_characters) % len(PHRASES)]
        pcm = synthesize(text, VOICES[k]).pcm
        x = resample_poly(pcm, WEBRTC_AUDIO_RATE // AUDIO_SAMPLE_RATE, 1).astype(np.float32)
        loud = np.flatnonzero(np.abs(x) > TRIM_LEVEL * np.abs(x).max())
        x = x[loud[0] : loud[-1] + 1]
        pieces.append((k, at, x, text))
        at += len(x) + round(gap_s * WEBRTC_AUDIO_RATE)
    tracks = np.zeros((n_characters, at + round(tail_s * WEBRTC_AUDIO_RATE)), np.float32)
    bursts = []
    for k, start, x, text in pieces:
        tracks[k, start : start + len(x)] = x
        peak = float(np.abs(x).max())
        onset = start + int(np.flatnonzero(np.abs(x) > ONSET_LEVEL * peak)[0])
        bursts.append(Burst(k, onset, len(x) - (onset - start), peak, text))
    return tracks, bursts


def find_onset(pcm: np.ndarray, peak: float, start: int = 0, stop: int | None = None) -> int | None:
    """First sample in pcm[start:stop] above ONSET_LEVEL x peak (the burst's own onset rule), or None."""
    seg = np.abs(pcm[start:stop])
    hit = np.flatnonzero(seg > ONSET_LEVEL * peak)
    return start + int(hit[0]) if len(hit) else None
