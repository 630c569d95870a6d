"""distill.world.speech: espeak audio with phoneme and word timings, voices, determinism and input errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distill.world import speech
from realtime.errors import SpeechError
from realtime.media import AUDIO_SAMPLE_RATE

SENTENCE = "Hello there, my friend. How are you today?"
VOICES = ["en-us", "en-gb+f2", "de+m3", "fr-fr+f1", "es+m2", "it+f4", "pt-br+m5", "nl+m1"]
TEXTS = {
    "en": SENTENCE,
    "de": "Guten Morgen, wie geht es dir heute?",
    "fr": "Bonjour, comment vas-tu aujourd'hui?",
    "es": "Buenos días, ¿cómo estás hoy?",
    "it": "Buongiorno, come stai oggi?",
    "pt": "Bom dia, como estás hoje?",
    "nl": "Goedemorgen, hoe gaat het vandaag?",
}


def _text_for(voice: str) -> str:
    return TEXTS[voice[:2]]


@pytest.mark.parametrize("voice", VOICES)
def test_voices_speak_with_monotonic_phonemes_inside_the_audio(voice: str) -> None:
    u = speech.synthesize(_text_for(voice), voice)
    assert u.pcm.dtype == np.float32 and u.pcm.ndim == 1
    assert np.sqrt(np.mean(u.pcm**2)) > 0.01, "no audible speech"
    assert 0.5 < u.duration_ms / 1000 < 6.0
    starts = [s for s, _, _ in u.phonemes]
    assert len(u.phonemes) > 10
    assert starts == sorted(starts)
    for start, end, ipa in u.phonemes:
        assert 0 <= start < end <= u.duration_ms + 1e-6
        assert ipa and not ipa.startswith("(")  # language-switch markers are not sounds
    for (_, end, _), (next_start, _, _) in zip(u.phonemes, u.phonemes[1:], strict=False):
        assert end <= next_start  # phonemes never overlap


def test_word_events_follow_the_text() -> None:
    u = speech.synthesize(SENTENCE, "en-us")
    assert [w for _, _, w in u.words] == ["Hello", "there", "my", "friend", "How", "are", "you", "today"]
    starts = [s for s, _, _ in u.words]
    assert starts == sorted(starts)
    for start, end, _ in u.words:
        assert 0 <= start < end <= u.duration_ms + 1e-6


def test_utf8_words_use_character_positions() -> None:
    u = speech.synthesize("Über Bäume schön", "de")
    assert [w for _, _, w in u.words] == ["Über", "Bäume", "schön"]


def test_timings_match_the_audio() -> None:
    # long pauses in the phoneme timeline (after the comma and the full stop) are quiet in the audio
    u = speech.synthesize(SENTENCE, "en-us")
    x = np.asarray(u.pcm, np.float64)
    speech_rms = np.sqrt(np.mean(x**2))
    gaps = [(e, s) for (_, e, _), (s, _, _) in zip(u.phonemes, u.phonemes[1:], strict=False) if s - e > 100]
    assert gaps, "expected pauses at the punctuation"
    for gap_start, gap_end in gaps:
        a, b = round((gap_start + 20) * 16), round((gap_end - 20) * 16)
        assert np.sqrt(np.mean(x[a:b] ** 2)) < 0.1 * speech_rms


def test_rate_changes_duration() -> None:
    slow = speech.synthesize(SENTENCE, "en-us", rate_wpm=110)
    fast = speech.synthesize(SENTENCE, "en-us", rate_wpm=300)
    assert slow.duration_ms > 1.8 * fast.duration_ms
    assert len(slow.phonemes) == len(fast.phonemes)


def test_pitch_changes_the_sound_not_the_timing() -> None:
    low = speech.synthesize(SENTENCE, "en-us", pitch=10)
    high = speech.synthesize(SENTENCE, "en-us", pitch=90)
    assert [p for *_, p in low.phonemes] == [p for *_, p in high.phonemes]

    def mean_crossings(u: speech.Utterance) -> float:  # a crude pitch proxy: sign changes per second
        x = np.asarray(u.pcm)
        return np.count_nonzero(np.diff(np.signbit(x))) / (x.shape[0] / AUDIO_SAMPLE_RATE)

    assert mean_crossings(high) > mean_crossings(low)


def test_resampler_keeps_length_and_frequency() -> None:
    source_rate = 22_050
    t = np.arange(source_rate) / source_rate
    out = speech.resample_to_engine_rate(0.5 * np.sin(2 * np.pi * 440.0 * t), source_rate)
    assert out.dtype == np.float32 and out.shape == (AUDIO_SAMPLE_RATE,)
    spectrum = np.abs(np.fft.rfft(out * np.hanning(out.shape[0])))
    assert abs(np.argmax(spectrum) * AUDIO_SAMPLE_RATE / out.shape[0] - 440.0) < 2.0
    assert abs(np.abs(out[1000:-1000]).max() - 0.5) < 0.01  # no gain change in the pass band


def test_utterance_ends_with_its_last_phoneme() -> None:
    u = speech.synthesize(SENTENCE, "en-us")
    assert 0 <= u.duration_ms - u.phonemes[-1][1] < 60
    assert not u.pcm.flags.writeable  # shared through caches: nobody may modify it in place


def test_same_request_same_audio_whatever_came_before() -> None:
    # German "r" is a trill whose modulation counter is static inside espeak; the helper process must
    # hide that, so A, B, A gives A twice
    a1 = speech.synthesize("Der rote Reiter reitet rasch.", "de+m1")
    speech.synthesize("Irgendetwas ganz anderes, mit Rhythmus.", "de+m1")
    a2 = speech.synthesize("Der rote Reiter reitet rasch.", "de+m1")
    assert np.array_equal(a1.pcm, a2.pcm)
    assert a1.phonemes == a2.phonemes


def test_voice_catalogue() -> None:
    languages = speech.list_languages()
    assert {"en-us", "en-gb", "de", "fr-fr", "es", "it", "pt", "pt-br", "nl"} <= languages
    assert len(speech.list_voices()) > 50
    assert {"m1", "m7", "f1", "f5"} <= set(speech.list_variants())
    assert speech.parse_voice("DE+f2") == ("de", "f2")
    assert speech.parse_voice("it") == ("it", None)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_refused(text: str) -> None:
    with pytest.raises(SpeechError, match="text is empty"):
        speech.synthesize(text)


def test_text_without_sound_is_refused() -> None:
    with pytest.raises(SpeechError, match="produced no speech"):
        speech.synthesize("...")


@pytest.mark.parametrize(
    ("voice", "expected"),
    [
        ("klingon", "'klingon'.*valid ones include.*en-us"),
        ("en-us+nobody", "variant 'nobody'"),
        ("", "non-empty"),
    ],
)
def test_unknown_voice_is_named(voice: str, expected: str) -> None:
    with pytest.raises(SpeechError, match=expected):
        speech.synthesize("hello", voice)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"rate_wpm": 20}, r"rate_wpm must be an integer in \[80, 450\], got 20"),
        ({"rate_wpm": 451}, "rate_wpm"),
        ({"rate_wpm": 175.5}, "rate_wpm"),
        ({"pitch": -1}, r"pitch must be an integer in \[0, 100\], got -1"),
        ({"pitch": 101}, "pitch"),
        ({"pitch": True}, "pitch"),
    ],
)
def test_out_of_range_rate_and_pitch_are_refused(kwargs: dict, expected: str) -> None:
    with pytest.raises(SpeechError, match=expected):
        speech.synthesize("hello", **kwargs)


def test_one_helper_process_serves_every_utterance(monkeypatch) -> None:
    # what keeps speech far faster than real time is one long-lived espeak helper, not one per utterance;
    # the speed itself is a benchmark's business
    speech.synthesize("warm up", "en-us")
    host = speech._host()
    started = []
    monkeypatch.setattr(speech, "_Host", lambda: started.append(1))  # a new helper would be counted
    once = speech.synthesize(SENTENCE, "en-us+f3")
    twice = speech.synthesize(SENTENCE + " " + SENTENCE, "en-us+f3")
    assert started == [] and speech._host() is host and host.process.poll() is None
    assert 1.8 * once.duration_ms < twice.duration_ms < 2.5 * once.duration_ms


SEEDED_TWICE = """
import sys
sys.path.insert(0, sys.argv[1])
import espeak_host as h

espeak = h.Espeak()
pcm = []
for clock_seed in (1, 987654):  # what espeak_Initialize would have drawn from the clock in two processes
    espeak.lib.espeak_ng_SetRandSeed(h.ctypes.c_long(clock_seed))
    status, (rate, audio, events) = h._in_fresh_child(espeak, ("synth", "ja", "de+f3", 145, 40))
    pcm.append(audio)
print(pcm[0] == pcm[1], len(pcm[0]))
"""


def test_an_utterance_does_not_depend_on_when_its_helper_started() -> None:
    # "de+f3" breathes: it draws from espeak's random generator, which espeak seeds from the clock. The helper
    # runs in its own process (it forks per utterance, which a threaded pytest process must not do)
    helper_dir = str(Path(speech.__file__).parent)
    out = subprocess.run(
        [sys.executable, "-P", "-c", SEEDED_TWICE, helper_dir], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    same, size = out.stdout.split()
    assert same == "True" and int(size) > 1000
