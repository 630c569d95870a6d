"""Mouth ground truth from a phoneme timeline: visemes, and per-frame mouth openness and width.

`distill.world.dialogue` feeds each character's espeak phonemes (IPA, with times) through `mouth_track` to get
the per-frame `openness` and `viseme` of a DialogueTrack. Each IPA symbol maps to a viseme with a target
openness and width; coarticulation (weak consonants borrow from their neighbours, lips lead the sound,
the mouth moves at a limited speed) makes the track move like a mouth rather than jump between targets.
"""

from __future__ import annotations

import logging
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from realtime.media import VIDEO_FPS

log = logging.getLogger(__name__)


class Viseme(IntEnum):
    """A class of mouth shapes that look alike from the outside, whatever the tongue does."""

    # 0-6 are the codes realtime.scene.cartoon.shapes draws distinctly; it draws 7 and above as a neutral mouth
    REST = 0  # silence: lips together, relaxed
    CLOSED = 1  # p b m (and bilabial fricatives): lips pressed shut
    OPEN = 2  # a ɑ æ ɐ ʌ ɒ: jaw dropped
    WIDE = 3  # i ɪ e j: spread lips, little jaw
    ROUND = 4  # o ɔ u ʊ w y ø: rounded, protruded lips
    TEETH = 5  # f v: lower lip against the upper teeth
    TONGUE = 6  # t d n l s z θ ð r: tongue tip work behind a half-open mouth
    MID = 7  # ɛ ə ɜ: half open, neutral lips
    SH = 8  # ʃ ʒ tʃ dʒ: lips pushed forward, teeth close
    BACK = 9  # k g ŋ x h ʁ: the back of the tongue; the lips follow the neighbours
    R = 10  # ɹ ɚ: English r, lips slightly rounded


@dataclass(frozen=True)
class MouthShape:
    """The target a viseme pulls the mouth towards."""

    openness: float  # 0 = lips closed, 1 = jaw fully dropped
    width: float  # 0 = tightly rounded, 0.5 = relaxed, 1 = fully spread
    dominance: float  # 1 = always reaches its target; low = mostly takes the shape of its neighbours


SHAPES: dict[Viseme, MouthShape] = {
    Viseme.REST: MouthShape(0.0, 0.5, 1.0),
    Viseme.CLOSED: MouthShape(0.0, 0.45, 1.0),  # the lips must meet, whatever surrounds them
    Viseme.TEETH: MouthShape(0.1, 0.55, 0.9),
    Viseme.TONGUE: MouthShape(0.3, 0.5, 0.4),
    Viseme.SH: MouthShape(0.25, 0.3, 0.7),
    Viseme.BACK: MouthShape(0.35, 0.5, 0.3),
    Viseme.OPEN: MouthShape(0.9, 0.6, 0.8),
    Viseme.MID: MouthShape(0.55, 0.55, 0.6),
    Viseme.WIDE: MouthShape(0.35, 0.85, 0.7),
    Viseme.ROUND: MouthShape(0.45, 0.2, 0.8),
    Viseme.R: MouthShape(0.3, 0.35, 0.5),
}

_GROUPS: dict[Viseme, str] = {
    Viseme.CLOSED: "pbmβɸɓʙ",
    Viseme.TEETH: "fvɱʋ",
    Viseme.TONGUE: "tdnlszθðɾrɬɮʎɲɫʦʣɗʈɖɳɭɺ",
    Viseme.SH: "ʃʒɕʑʂʐʧʤɧ",
    Viseme.BACK: "kgɡŋxɣhɦʔçχʁʀqɢɰcɟʄʟħʕʜʢ",
    Viseme.OPEN: "aɑæɐʌɒäɶ",
    Viseme.MID: "ɛəɜɘɨᵻɤ",
    Viseme.WIDE: "iɪejʝɯ",
    Viseme.ROUND: "oɔuʊwʍɥyʏøœɵʉɞ",
    Viseme.R: "ɹɻɚɝ",
}
SYMBOL_VISEME: dict[str, Viseme] = {ch: v for v, chars in _GROUPS.items() for ch in chars}

# marks that change a symbol's length, stress, tone or syllable role but not the mouth's shape
_IGNORED = set("ˈˌːˑ:-‿.ʰˠʼ'")
_MODIFIERS = {"ʲ": "j", "ʷ": "w"}  # superscript glides: a palatalised m is m followed by a j-like glide
UNKNOWN_SYMBOLS: Counter[str] = Counter()  # symbols seen that no group covers; they fall back to MID

STEP_MS = 5.0  # internal resolution of the mouth simulation (8 steps per 40 ms frame)
LEAD_MS = 30.0  # lips start moving to a sound before it is heard (measured leads are 30-100 ms)
OPEN_RATE = 1.0 / 60.0  # openness per ms: a full jaw drop takes ~60 ms
CLOSE_RATE = 1.0 / 30.0  # closing is faster: lips snap shut, so even a 50 ms /p/ shows closed
WIDTH_RATE = 1.0 / 80.0  # width per ms: rounding and spreading are slower than the jaw


def clean_symbols(ipa: str) -> list[str]:
    """The mouth-relevant symbols of one espeak IPA phoneme: "ˈaɪ" -> ["a", "ɪ"], "ɐ̃ʊ" -> ["ɐ", "ʊ"]."""
    out = []
    for ch in unicodedata.normalize("NFD", ipa):
        if ch in _IGNORED or unicodedata.combining(ch) or ch.isspace():
            continue  # combining marks: nasalisation, syllabicity, tie bars, dental diacritics
        out.append(_MODIFIERS.get(ch, ch))
    return out


def unknown_symbols(ipa: str) -> list[str]:
    """Symbols of `ipa` that have no viseme (should be empty for everything espeak emits)."""
    return [ch for ch in clean_symbols(ipa) if ch not in SYMBOL_VISEME]


def phoneme_visemes(ipa: str) -> tuple[Viseme, ...]:
    """The viseme sequence of one phoneme; a diphthong gives two, an affricate two."""
    visemes = []
    for ch in clean_symbols(ipa):
        viseme = SYMBOL_VISEME.get(ch)
        if viseme is None:
            if ch not in UNKNOWN_SYMBOLS:
                log.warning("IPA symbol %r (U+%04X) in %r has no viseme; using MID", ch, ord(ch), ipa)
            UNKNOWN_SYMBOLS[ch] += 1
            viseme = Viseme.MID
        visemes.append(viseme)
    return tuple(visemes)


@dataclass(frozen=True)
class MouthTrack:
    """Per-frame mouth ground truth of one character."""

    openness: np.ndarray  # (T,) float32 in [0, 1]
    width: np.ndarray  # (T,) float32 in [0, 1]; 0.5 at rest
    viseme: np.ndarray  # (T,) int8 Viseme: the shape held for most of the frame (REST in silence)


def _segments(phonemes: Sequence[tuple[float, float, str]]) -> list[tuple[float, float, Viseme]]:
    """Split each phoneme into one equal-length piece per symbol: ("ˈaɪ", 0-100 ms) -> a 0-50, ɪ 50-100."""
    out = []
    for start, end, ipa in phonemes:
        visemes = phoneme_visemes(ipa)
        if end <= start or not visemes:
            continue
        step = (end - start) / len(visemes)
        out.extend((start + i * step, start + (i + 1) * step, v) for i, v in enumerate(visemes))
    return out


def _coarticulate(segments: list[tuple[float, float, Viseme]]) -> list[tuple[float, float]]:
    """Target (openness, width) per segment: weak segments lean towards the average of their neighbours."""
    targets = []
    for i, (start, end, viseme) in enumerate(segments):
        shape = SHAPES[viseme]
        context = []
        for j in (i - 1, i + 1):
            touching = 0 <= j < len(segments) and (segments[j][0] <= end + 1 and segments[j][1] >= start - 1)
            context.append(SHAPES[segments[j][2]] if touching else SHAPES[Viseme.REST])
        d = shape.dominance
        openness = d * shape.openness + (1 - d) * sum(c.openness for c in context) / 2
        width = d * shape.width + (1 - d) * sum(c.width for c in context) / 2
        targets.append((openness, width))
    return targets


def _slew(target: np.ndarray, start: float, up: float, down: float) -> np.ndarray:
    """Follow `target` with at most `up` rise and `down` fall per step: the mouth never teleports."""
    out = np.empty_like(target)
    x = start
    for i, t in enumerate(target.tolist()):
        x = min(t, x + up) if t > x else max(t, x - down)
        out[i] = x
    return out


def mouth_track(
    phonemes: Sequence[tuple[float, float, str]], n_frames: int, fps: int = VIDEO_FPS
) -> MouthTrack:
    """Per-frame mouth truth for `n_frames` frames from (start_ms, end_ms, IPA) phonemes on the clip clock."""
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    steps_per_frame = round(1000.0 / fps / STEP_MS)
    n_steps = n_frames * steps_per_frame
    open_target = np.zeros(n_steps, np.float32)
    width_target = np.full(n_steps, SHAPES[Viseme.REST].width, np.float32)
    visemes = np.zeros(n_steps, np.int8)  # REST
    segments = _segments(phonemes)
    for (start, end, viseme), (openness, width) in zip(segments, _coarticulate(segments), strict=True):
        a = max(0, round((start - LEAD_MS) / STEP_MS))
        b = min(n_steps, round((end - LEAD_MS) / STEP_MS))
        if b > a:
            open_target[a:b], width_target[a:b], visemes[a:b] = openness, width, viseme
    openness = _slew(open_target, 0.0, OPEN_RATE * STEP_MS, CLOSE_RATE * STEP_MS)
    width = _slew(width_target, SHAPES[Viseme.REST].width, WIDTH_RATE * STEP_MS, WIDTH_RATE * STEP_MS)
    per_frame = (n_frames, steps_per_frame)
    # the viseme a frame shows is the one held for most of it; ties go to the lower (quieter) class
    counts = np.zeros((n_frames, len(Viseme)), np.int32)
    np.add.at(counts, (np.repeat(np.arange(n_frames), steps_per_frame), visemes), 1)
    return MouthTrack(
        openness=np.clip(openness.reshape(per_frame).mean(axis=1), 0.0, 1.0).astype(np.float32),
        width=np.clip(width.reshape(per_frame).mean(axis=1), 0.0, 1.0).astype(np.float32),
        viseme=counts.argmax(axis=1).astype(np.int8),
    )
