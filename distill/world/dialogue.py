"""Seeded dialogues for 1-4 characters: a script with turn-taking, then per-character audio and mouth truth.

`plan_dialogue` writes the script (who says what, when: turns, pauses, overlaps, interruptions,
backchannels, long silences; a monologue with pauses for one character), `render_dialogue` turns it into
the sample- and frame-aligned `DialogueTrack` of distill.world.clip, and `synthesize_dialogue` (what
`make_clip` calls) does both. Every character has its own espeak voice; everything follows from the seed.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, replace

import numpy as np

from distill.world.phrasebook import ACCENTS, BACKCHANNELS, SENTENCES
from distill.world.speech import Utterance, synthesize
from distill.world.visemes import mouth_track
from realtime.errors import ScriptError
from realtime.media import AUDIO_SAMPLE_RATE, VIDEO_FPS
from realtime.scene.cartoon.tracks import DialogueTrack, Segment, check_character_count

MAX_SECONDS = 600.0  # longest dialogue; longer audio belongs in several clips
_SALT = 0x5EEC4  # keeps this module's random stream apart from other users of the same clip seed

# Voice palette: a small discrete set so that cached utterances are reused across clips.
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")  # espeak timbres
RATES_WPM = (130, 145, 160, 175, 190, 205)
PITCHES = (30, 40, 50, 60, 70)
SHARED_LANGUAGE_P = 0.6  # most scenes speak one language; the rest mix, which the binder must not care about

# Turn-taking: probabilities of what follows a line, and the timings that go with them (seconds).
SAME_SPEAKER_P = 0.12  # the speaker goes on after a pause
INTERRUPTION_P = 0.18  # the next speaker cuts in mid-line (only for lines longer than 1.5 s)
OVERLAP_P = 0.22  # the next speaker starts before the current one has finished
LONG_SILENCE_P = 0.12  # nobody speaks for a while
BACKCHANNEL_P = 0.45  # a listener says "yeah" during a line longer than 1.2 s ...
BACKCHANNEL_QUIET_P = 0.8  # ... more often while someone has not said anything yet (few silent characters)
GAP_S = (0.1, 0.7)  # ordinary pause between turns
MONOLOGUE_GAP_S = (0.3, 0.9)  # a speaker going on after their own line pauses a little longer
LONG_SILENCE_S = (1.5, 3.0)
OVERLAP_S = (0.2, 0.8)  # how early the next speaker starts (at most half the current line)
TRAIL_S = (0.1, 0.3)  # an interrupted speaker goes on this long after being cut into, then stops
FADE_S = 0.01  # a cut line fades out over 10 ms instead of clicking

# `active` (the router's truth): a frame is active when at least ACTIVE_MIN_MS of it is inside one of the
# character's phonemes; a pause (comma, sentence end, between lines) is not speaking, but a gap of at most
# ACTIVE_BRIDGE_FRAMES frames between active frames is filled, so the mask does not flicker at 25 fps.
ACTIVE_MIN_MS = 5.0
ACTIVE_BRIDGE_FRAMES = 2


@dataclass(frozen=True)
class CharacterVoice:
    """How one character sounds."""

    language: str  # phrasebook language, e.g. "de"
    voice: str  # espeak voice: accent + variant, e.g. "de+m3"
    rate_wpm: int
    pitch: int
    gain: float  # peak level of this character's sentences; characters differ in loudness as in a room


@dataclass(frozen=True)
class Line:
    """One thing a character says in the script."""

    character: int
    start_s: float  # on the sample grid
    stop_s: float  # when the character falls silent: end of the utterance, interruption or clip end
    text: str
    kind: str  # Segment.kind: "turn" | "overlap" | "interruption" | "backchannel"
    utterance_s: float  # length of the whole utterance; stop_s < start_s + utterance_s means cut short
    cut_s: float | None = None  # when another character cut in, if one did

    @property
    def interrupted(self) -> bool:
        return self.cut_s is not None


@dataclass(frozen=True)
class DialogueScript:
    """A planned dialogue: the voices and the lines, before any audio is mixed."""

    seconds: float
    voices: tuple[CharacterVoice, ...]
    lines: tuple[Line, ...]


@functools.lru_cache(maxsize=512)  # ~80 MB (2.5 s x 64 kB/s each); the bank x voice palette is finite
def utterance(text: str, voice: str, rate_wpm: int, pitch: int) -> Utterance:
    """synthesize() with a cache: the world draws from a finite bank of texts and voices."""
    return synthesize(text, voice, rate_wpm, pitch)


def _on_grid(t: float) -> float:
    return round(t * AUDIO_SAMPLE_RATE) / AUDIO_SAMPLE_RATE


def _draw_voices(n: int, rng: np.random.Generator) -> tuple[CharacterVoice, ...]:
    languages = sorted(SENTENCES)
    shared = languages[rng.integers(len(languages))] if rng.random() < SHARED_LANGUAGE_P else None
    variants = rng.choice(len(VARIANTS), size=n, replace=False)  # no two characters share a timbre
    voices = []
    for i in range(n):
        language = shared or languages[rng.integers(len(languages))]
        accent = ACCENTS[language][rng.integers(len(ACCENTS[language]))]
        voices.append(
            CharacterVoice(
                language=language,
                voice=f"{accent}+{VARIANTS[variants[i]]}",
                rate_wpm=int(rng.choice(RATES_WPM)),
                pitch=int(rng.choice(PITCHES)),
                gain=float(rng.uniform(0.35, 0.7)),
            )
        )
    return tuple(voices)


def _say(
    rng: np.random.Generator, voice: CharacterVoice, bank: dict[str, tuple[str, ...]]
) -> tuple[str, float]:
    texts = bank[voice.language]
    text = texts[rng.integers(len(texts))]
    return text, utterance(text, voice.voice, voice.rate_wpm, voice.pitch).duration_ms / 1000.0


def _pick(rng: np.random.Generator, candidates: list[int], spoke: np.ndarray) -> int:
    # characters who have not spoken yet are much likelier, so few stay silent for a whole clip
    weights = np.array([1.0 if spoke[c] else 8.0 for c in candidates])
    return candidates[rng.choice(len(candidates), p=weights / weights.sum())]


def _check(n_characters: int, seconds: float, seed: int) -> tuple[int, float, int]:
    n = check_character_count(n_characters)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float | np.integer | np.floating):
        raise ScriptError(f"seconds must be a number, got {seconds!r}")
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_SECONDS):
        raise ScriptError(f"seconds must be in (0, {MAX_SECONDS:g}], got {seconds!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ScriptError(f"seed must be a non-negative integer, got {seed!r}")
    return n, float(seconds), int(seed)


def plan_dialogue(n_characters: int, seconds: float, seed: int) -> DialogueScript:
    """Write the script of a dialogue: voices, and who says what when (deterministic from the seed)."""
    n, seconds, seed = _check(n_characters, seconds, seed)
    rng = np.random.default_rng([seed, _SALT])
    voices = _draw_voices(n, rng)
    lines: list[Line] = []
    free_at = np.zeros(n)  # when each character has stopped talking
    spoke = np.zeros(n, bool)
    speaker, t, kind = int(rng.integers(n)), rng.uniform(0.0, 0.6), "turn"
    while t < seconds:
        start = _on_grid(t)
        text, length = _say(rng, voices[speaker], SENTENCES)
        line = Line(speaker, start, _on_grid(start + length), text, kind, length)
        free_at[speaker], spoke[speaker] = line.stop_s, True
        end = line.stop_s
        p_backchannel = BACKCHANNEL_P if spoke.all() else BACKCHANNEL_QUIET_P
        if n > 1 and length > 1.2 and rng.random() < p_backchannel:
            at = start + rng.uniform(0.3, 0.7) * length
            listeners = [c for c in range(n) if c != speaker and free_at[c] < at - 0.2]
            if listeners:
                c = _pick(rng, listeners, spoke)
                bc_text, bc_length = _say(rng, voices[c], BACKCHANNELS)
                bc = Line(c, _on_grid(at), _on_grid(at + bc_length), bc_text, "backchannel", bc_length)
                lines.append(bc)
                free_at[c], spoke[c] = bc.stop_s, True
        # what happens next
        r = rng.random()
        if n == 1 or r < SAME_SPEAKER_P:
            gap = LONG_SILENCE_S if rng.random() < LONG_SILENCE_P else MONOLOGUE_GAP_S
            lines.append(line)
            t, kind = end + rng.uniform(*gap), "turn"
            continue
        r = rng.random()
        if r < INTERRUPTION_P and length > 1.5:  # cut at 35-70% + trail: always >= 0.15 s short
            cut = start + rng.uniform(0.35, 0.7) * length
            others = [c for c in range(n) if c != speaker and free_at[c] <= cut - 0.1]
            if others:
                stop = _on_grid(min(end, cut + rng.uniform(*TRAIL_S)))
                line = replace(line, stop_s=stop, cut_s=_on_grid(cut))
                free_at[speaker] = stop
                lines.append(line)
                speaker, t, kind = _pick(rng, others, spoke), cut, "interruption"
                continue
        lines.append(line)
        if r < INTERRUPTION_P + OVERLAP_P:
            early = rng.uniform(OVERLAP_S[0], max(OVERLAP_S[0], min(OVERLAP_S[1], 0.5 * length)))
            t, kind = end - early, "overlap"
        elif r < INTERRUPTION_P + OVERLAP_P + LONG_SILENCE_P:
            t, kind = end + rng.uniform(*LONG_SILENCE_S), "turn"
        else:
            t, kind = end + rng.uniform(*GAP_S), "turn"
        others = [c for c in range(n) if c != speaker]
        speaker = _pick(rng, others, spoke)
        if free_at[speaker] > t - 0.1:  # still busy with a backchannel: wait for them
            t = free_at[speaker] + rng.uniform(*GAP_S)
            kind = "overlap" if t < end else "turn"
    # lines are appended when their successor is decided; keep them in time order, clipped to the clip
    # (an interruption that would come after the clip's end is no interruption within it)
    end_s = _on_grid(seconds)
    clipped = [
        replace(
            ln, stop_s=min(ln.stop_s, end_s), cut_s=ln.cut_s if ln.interrupted and ln.cut_s < end_s else None
        )
        for ln in lines
        if ln.start_s < seconds
    ]
    return DialogueScript(seconds, voices, tuple(sorted(clipped, key=lambda ln: (ln.start_s, ln.character))))


def _active_frames(phonemes: list[tuple[float, float, str]], n_frames: int) -> np.ndarray:
    frame_ms = 1000.0 / VIDEO_FPS
    speech_ms = np.zeros(n_frames + 1)
    for start, end, _ in phonemes:  # add each phoneme's overlap with every frame it touches
        k0, k1 = int(start // frame_ms), min(n_frames - 1, int(end // frame_ms))
        for k in range(k0, k1 + 1):
            speech_ms[k] += max(0.0, min(end, (k + 1) * frame_ms) - max(start, k * frame_ms))
    active = speech_ms[:n_frames] >= ACTIVE_MIN_MS
    on = np.flatnonzero(active)
    for a, b in itertools.pairwise(on):
        if 1 < b - a <= ACTIVE_BRIDGE_FRAMES + 1:
            active[a:b] = True
    return active


def render_dialogue(script: DialogueScript) -> DialogueTrack:
    """Mix the script into per-character tracks and derive the mouth truth from espeak's phonemes."""
    n, seconds = len(script.voices), script.seconds
    n_samples, n_frames = round(seconds * AUDIO_SAMPLE_RATE), round(seconds * VIDEO_FPS)
    audio = np.zeros((n, n_samples), np.float32)
    phonemes: list[list[tuple[float, float, str]]] = [[] for _ in range(n)]
    segments = []
    fade = round(FADE_S * AUDIO_SAMPLE_RATE)
    for line in script.lines:
        voice = script.voices[line.character]
        utt = utterance(line.text, voice.voice, voice.rate_wpm, voice.pitch)
        a = round(line.start_s * AUDIO_SAMPLE_RATE)
        b = min(n_samples, round(line.stop_s * AUDIO_SAMPLE_RATE))
        gain = voice.gain * (0.7 if line.kind == "backchannel" else 1.0)  # backchannels are said softly
        pcm = utt.pcm[: b - a] * (gain / max(float(np.abs(utt.pcm).max()), 1e-6))
        cut_short = pcm.shape[0] < utt.pcm.shape[0]
        if cut_short:
            pcm[-fade:] *= np.linspace(1.0, 0.0, min(fade, pcm.shape[0]), dtype=np.float32)
        audio[line.character, a : a + pcm.shape[0]] += pcm
        offset_ms, stop_ms = 1000.0 * a / AUDIO_SAMPLE_RATE, 1000.0 * (a + pcm.shape[0]) / AUDIO_SAMPLE_RATE
        words = [w for s, _, w in utt.words if offset_ms + s < stop_ms]
        for start, end, ipa in utt.phonemes:
            if offset_ms + start >= stop_ms:
                break
            phonemes[line.character].append((offset_ms + start, min(offset_ms + end, stop_ms), ipa))
        text = " ".join(words) + "…" if cut_short else line.text
        segments.append(Segment(line.character, line.start_s, stop_ms / 1000.0, text, line.kind))
    mouths = [mouth_track(p, n_frames) for p in phonemes]
    return DialogueTrack(
        audio=np.clip(audio, -1.0, 1.0),
        openness=np.stack([m.openness for m in mouths]).reshape(n, n_frames),
        viseme=np.stack([m.viseme for m in mouths]).reshape(n, n_frames),
        active=np.stack([_active_frames(p, n_frames) for p in phonemes]).reshape(n, n_frames),
        segments=tuple(segments),
    )


def synthesize_dialogue(n_characters: int, seconds: float, seed: int) -> DialogueTrack:
    """A dialogue of `seconds` between `n_characters` (1-4) characters, deterministic from `seed`."""
    return render_dialogue(plan_dialogue(n_characters, seconds, seed))
