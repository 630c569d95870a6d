"""Text to speech with exact phoneme and word timings, from libespeak-ng.

The dialogue world (`distill.world.dialogue`) speaks through here: each call returns 16 kHz audio with the IPA
phonemes and words espeak produced and when, so the mouth truth (`distill.world.visemes`) is exact, not
estimated. espeak runs in a helper process (`distill.world.espeak_host`) that makes each call a pure function
of its arguments; one lock serialises calls.
"""

from __future__ import annotations

import atexit
import functools
import math
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import espeakng_loader
import numpy as np
from scipy.signal import resample_poly

from realtime.errors import SpeechError
from realtime.media import AUDIO_SAMPLE_RATE

RATE_MIN_WPM, RATE_MAX_WPM = 80, 450  # espeakRATE_MINIMUM / espeakRATE_MAXIMUM in speak_lib.h
PITCH_MIN, PITCH_MAX = 0, 100  # espeakPITCH; 50 is the voice's own pitch
MAX_TEXT_CHARS = 2_000  # one utterance; dialogue lines are a sentence or two

_EVENT_WORD, _EVENT_PHONEME = 1, 7  # espeak_EVENT_TYPE values the host passes through
_HOST_SCRIPT = Path(__file__).with_name("espeak_host.py")


@dataclass(frozen=True)
class VoiceInfo:
    """One espeak language voice; combine it with a variant as "de+f2"."""

    name: str  # human-readable, e.g. "German"
    priorities: tuple[
        tuple[int, str], ...
    ]  # (priority, language code): lower priority = preferred for the code
    identifier: str  # file under espeak-ng-data/lang, e.g. "gmw/de"

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(code for _, code in self.priorities)


@dataclass(frozen=True)
class Utterance:
    """One synthesized utterance: 16 kHz audio and the phoneme and word timeline espeak reported."""

    pcm: np.ndarray  # (S,) float32 in [-1, 1] at AUDIO_SAMPLE_RATE; read-only because utterances are cached
    phonemes: tuple[tuple[float, float, str], ...]  # (start_ms, end_ms, IPA) in order; pauses are gaps
    words: tuple[tuple[float, float, str], ...]  # (start_ms, end_ms, word as written in the text)
    text: str
    voice: str  # as asked for, e.g. "de+f2"
    rate_wpm: int
    pitch: int

    @property
    def duration_ms(self) -> float:
        return 1000.0 * self.pcm.shape[0] / AUDIO_SAMPLE_RATE


class _Host:
    """Client end of one distill.world.espeak_host process (pipes carry pickled tuples)."""

    def __init__(self) -> None:
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        self.process = subprocess.Popen(
            # -P: keep distill/ off the helper's sys.path, so no module here can shadow the standard library
            [sys.executable, "-P", str(_HOST_SCRIPT), str(request_r), str(reply_w)],
            pass_fds=(request_r, reply_w),
            stdin=subprocess.DEVNULL,
        )
        os.close(request_r)
        os.close(reply_w)
        self.owner_pid = os.getpid()
        self.requests = Connection(request_w, readable=False)
        self.replies = Connection(reply_r, writable=False)
        self.sample_rate = int(self._receive("start-up"))

    def _receive(self, what: str) -> Any:
        try:
            status, payload = self.replies.recv()
        except EOFError:
            raise RuntimeError(f"the espeak helper process exited during {what} (see its stderr)") from None
        if status != "ok":
            raise RuntimeError(f"espeak failed during {what}: {payload}")
        return payload

    def call(self, *request: Any) -> Any:
        self.requests.send(request)
        return self._receive(str(request[0]))

    def close(self) -> None:
        if os.getpid() != self.owner_pid:
            return  # a forked child inherited this handle (and the atexit hook); the parent owns the helper
        self.requests.close()  # the host sees EOF and exits
        self.replies.close()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()


_LOCK = threading.Lock()
_HOST: _Host | None = None


def _host() -> _Host:
    """The helper process, started on first use; a forked process (e.g. a data-loader worker) gets its own."""
    global _HOST
    if _HOST is None or _HOST.owner_pid != os.getpid() or _HOST.process.poll() is not None:
        _HOST = _Host()
        atexit.register(_HOST.close)
    return _HOST


def _reset_after_fork() -> None:
    # a fork may happen while another thread holds the lock; the child must not inherit it held
    global _LOCK
    _LOCK = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


@functools.cache
def list_voices() -> tuple[VoiceInfo, ...]:
    """Every espeak language voice (about 140)."""
    with _LOCK:
        rows = _host().call("voices")
    return tuple(VoiceInfo(name, tuple(codes), identifier) for name, codes, identifier in rows)


@functools.cache
def _language_table() -> dict[str, str]:
    """Language code -> identifier of the voice espeak prefers for it (lowest priority number wins)."""
    best: dict[str, tuple[int, str]] = {}
    for rank_in_list, voice in enumerate(list_voices()):
        for priority, code in voice.priorities:
            key = (priority, rank_in_list)
            if code not in best or key < best[code][0]:
                best[code] = (key, voice.identifier)
    return {code: identifier for code, (_, identifier) in best.items()}


@functools.cache
def list_languages() -> frozenset[str]:
    """Every language code accepted as the first part of a voice string ("en-us", "de", "pt-br", ...)."""
    return frozenset(_language_table())


@functools.cache
def list_variants() -> tuple[str, ...]:
    """Voice variants accepted after "+" (timbre, base pitch, gender): "m1".."m7", "f1".."f5" and named ones."""
    return tuple(sorted(p.name for p in (Path(espeakng_loader.get_data_path()) / "voices" / "!v").iterdir()))


def parse_voice(voice: str) -> tuple[str, str | None]:
    """Split "de+f2" into ("de", "f2") and "de" into ("de", None), checking both parts."""
    if not isinstance(voice, str) or not voice.strip():
        raise SpeechError(f"voice must be a non-empty string like 'en-us' or 'de+f2', got {voice!r}")
    language, plus, variant = voice.strip().partition("+")
    language = language.lower()
    if language not in list_languages():
        examples = ", ".join(
            sorted(list_languages() & {"en-us", "en-gb", "de", "fr", "es", "it", "pt", "nl"})
        )
        raise SpeechError(
            f"unknown voice {voice!r}: {language!r} is not an espeak language; "
            f"valid ones include {examples} (see distill.world.speech.list_languages())"
        )
    if plus and variant not in list_variants():
        raise SpeechError(
            f"unknown voice {voice!r}: variant {variant!r} does not exist; "
            "valid ones include m1, m3, f2, f4 (see distill.world.speech.list_variants())"
        )
    return language, variant if plus else None


def resample_to_engine_rate(pcm: np.ndarray, source_rate: int) -> np.ndarray:
    """Polyphase-resample mono audio to AUDIO_SAMPLE_RATE (22050 -> 16000 is up 320, down 441)."""
    g = math.gcd(AUDIO_SAMPLE_RATE, source_rate)
    out = resample_poly(pcm.astype(np.float32), AUDIO_SAMPLE_RATE // g, source_rate // g)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def synthesize(text: str, voice: str = "en-us", rate_wpm: int = 175, pitch: int = 50) -> Utterance:
    """Speak `text` with an espeak voice ("language" or "language+variant") at a rate (wpm) and pitch (0-100)."""
    if not isinstance(text, str) or not text.strip():
        raise SpeechError("text is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise SpeechError(f"text is {len(text)} characters long; at most {MAX_TEXT_CHARS} per utterance")
    language, variant = parse_voice(voice)
    for name, value, lo, hi in (
        ("rate_wpm", rate_wpm, RATE_MIN_WPM, RATE_MAX_WPM),
        ("pitch", pitch, PITCH_MIN, PITCH_MAX),
    ):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or not lo <= value <= hi:
            raise SpeechError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    # espeak finds voices by file, not by language code ("en-gb" is the file "gmw/en")
    identifier = _language_table()[language]
    espeak_voice = identifier if variant is None else f"{identifier}+{variant}"
    with _LOCK:
        source_rate, raw, events = _host().call("synth", text, espeak_voice, int(rate_wpm), int(pitch))
    samples = np.frombuffer(raw, dtype=np.int16)
    phonemes, words = _timeline(text, events, 1000.0 * samples.shape[0] / source_rate)
    if not phonemes:
        raise SpeechError(f"text {text!r} produced no speech with voice {voice!r}")
    pcm = resample_to_engine_rate(samples.astype(np.float32) / 32768.0, source_rate)
    pcm.flags.writeable = False
    return Utterance(pcm, phonemes, words, text, voice, int(rate_wpm), int(pitch))


def _timeline(
    text: str, events: list[tuple[int, int, int, int, str]], duration_ms: float
) -> tuple[tuple[tuple[float, float, str], ...], tuple[tuple[float, float, str], ...]]:
    """Turn espeak's event stream into phoneme and word intervals (ms)."""
    # "(en)"-style names mark a switch of language inside the text, not a sound
    marks = [
        (float(pos), ipa)
        for kind, pos, _, _, ipa in events
        if kind == _EVENT_PHONEME and not ipa.startswith("(")
    ]
    # a phoneme lasts until the next phoneme event (an empty name marks a pause) or the end of the audio
    ends = [t for t, _ in marks[1:]] + [duration_ms] if marks else []
    phonemes = tuple(
        (t, min(end, duration_ms), ipa) for (t, ipa), end in zip(marks, ends, strict=True) if ipa and end > t
    )
    # a word runs from its event to the end of the last phoneme that starts before the next word's event
    word_events = [
        (float(pos), text_pos, length) for kind, pos, text_pos, length, _ in events if kind == _EVENT_WORD
    ]
    words = []
    for i, (start, text_pos, length) in enumerate(word_events):
        limit = word_events[i + 1][0] if i + 1 < len(word_events) else math.inf
        inside = [end for s, end, _ in phonemes if start <= s < limit]
        word = text[text_pos - 1 : text_pos - 1 + length].strip()
        if inside and word:
            words.append((start, max(inside), word))
    return phonemes, tuple(words)
