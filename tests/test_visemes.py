"""distill.world.visemes: IPA -> viseme coverage of espeak's output, and openness that follows the speech."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from distill.world import speech
from distill.world import visemes as vz
from distill.world.phrasebook import ACCENTS, BACKCHANNELS, SENTENCES
from distill.world.visemes import Viseme
from realtime.media import VIDEO_FPS

FRAME_MS = 1000 / VIDEO_FPS


@pytest.mark.parametrize(
    ("ipa", "symbols"),
    [
        ("ˈaɪ", ["a", "ɪ"]),
        ("ˌɐ̃ʊ", ["ɐ", "ʊ"]),  # nasal diphthong: the tilde does not change the lips
        ("ə-", ["ə"]),
        ("ˈa:", ["a"]),
        ("ˈɑː", ["ɑ"]),
        ("t̪", ["t"]),
        ("ʲ", ["j"]),
        ("tʃ", ["t", "ʃ"]),
    ],
)
def test_clean_symbols(ipa: str, symbols: list[str]) -> None:
    assert vz.clean_symbols(ipa) == symbols


@pytest.mark.parametrize(
    ("ipa", "expected"),
    [
        ("m", (Viseme.CLOSED,)),
        ("p", (Viseme.CLOSED,)),
        ("b", (Viseme.CLOSED,)),
        ("ˈa", (Viseme.OPEN,)),
        ("iː", (Viseme.WIDE,)),
        ("ˈuː", (Viseme.ROUND,)),
        ("w", (Viseme.ROUND,)),
        ("f", (Viseme.TEETH,)),
        ("v", (Viseme.TEETH,)),
        ("ð", (Viseme.TONGUE,)),
        ("s", (Viseme.TONGUE,)),
        ("ˈaɪ", (Viseme.OPEN, Viseme.WIDE)),
        ("ˈoʊ", (Viseme.ROUND, Viseme.ROUND)),
        ("dʒ", (Viseme.TONGUE, Viseme.SH)),
    ],
)
def test_key_phonemes(ipa: str, expected: tuple[Viseme, ...]) -> None:
    assert vz.phoneme_visemes(ipa) == expected


def test_codes_match_the_renderer() -> None:
    # realtime.scene.cartoon.shapes draws codes 0-6 as these shapes and anything above as a neutral mouth
    drawn = [Viseme.REST, Viseme.CLOSED, Viseme.OPEN, Viseme.WIDE, Viseme.ROUND, Viseme.TEETH, Viseme.TONGUE]
    assert list(range(7)) == drawn
    assert set(vz.SHAPES) == set(Viseme)


@pytest.mark.parametrize("language", sorted(SENTENCES))
def test_every_symbol_espeak_emits_has_a_viseme(language: str) -> None:
    unknown: dict[str, int] = {}
    for accent in ACCENTS[language]:
        for text in SENTENCES[language][:6] + BACKCHANNELS[language]:
            for _, _, ipa in speech.synthesize(text, accent).phonemes:
                for symbol in vz.unknown_symbols(ipa):
                    unknown[symbol] = unknown.get(symbol, 0) + 1
    assert not unknown, f"IPA symbols without a viseme: {unknown}"


def test_unknown_symbols_are_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    before = vz.UNKNOWN_SYMBOLS["☃"]
    with caplog.at_level(logging.WARNING, logger="distill.world.visemes"):
        assert vz.phoneme_visemes("☃") == (Viseme.MID,)
    assert vz.UNKNOWN_SYMBOLS["☃"] == before + 1
    assert "no viseme" in caplog.text or before > 0


def test_track_types_and_silence() -> None:
    phonemes = [(1000.0, 1100.0, "m"), (1100.0, 1300.0, "ˈa"), (1300.0, 1400.0, "n")]
    track = vz.mouth_track(phonemes, 75)
    assert track.openness.shape == track.width.shape == track.viseme.shape == (75,)
    assert track.openness.dtype == np.float32 and track.viseme.dtype == np.int8
    assert np.all((track.openness >= 0) & (track.openness <= 1))
    first, last = int(1000 // FRAME_MS), int(1400 // FRAME_MS)
    assert np.all(track.openness[: first - 1] == 0) and np.all(track.openness[last + 2 :] == 0)
    assert np.all(track.viseme[: first - 1] == Viseme.REST) and np.all(
        track.viseme[last + 2 :] == Viseme.REST
    )
    assert track.openness[first:last].max() > 0.6
    assert vz.mouth_track([], 10).openness.tolist() == [0.0] * 10


def test_openness_follows_real_speech() -> None:
    u = speech.synthesize("Ah, la mama va a la playa para nadar.", "es")
    n_frames = int(u.duration_ms // FRAME_MS) + 10
    track = vz.mouth_track(u.phonemes, n_frames)
    speaking = track.viseme != Viseme.REST
    assert track.openness[speaking].mean() > 0.3
    assert np.all(track.openness[-5:] == 0)  # after the last phoneme the mouth is shut
    assert track.openness[track.viseme == Viseme.OPEN].mean() > 0.5


def test_open_and_closed_frames_across_languages() -> None:
    closed, opened, bilabial_minima = [], [], []
    for language, texts in sorted(SENTENCES.items()):
        for text in texts[:4]:
            u = speech.synthesize(text, ACCENTS[language][0])
            track = vz.mouth_track(u.phonemes, int(u.duration_ms // FRAME_MS) + 5)
            closed.extend(track.openness[track.viseme == Viseme.CLOSED])
            opened.extend(track.openness[track.viseme == Viseme.OPEN])
            for start, end, ipa in u.phonemes:
                if vz.phoneme_visemes(ipa) == (Viseme.CLOSED,):
                    a = max(0, int((start - vz.LEAD_MS) // FRAME_MS))
                    bilabial_minima.append(track.openness[a : int((end - vz.LEAD_MS) // FRAME_MS) + 1].min())
    assert np.mean(closed) < 0.15 and np.mean(opened) > 0.5
    assert np.mean(np.array(bilabial_minima) < 0.3) > 0.95  # (nearly) every p, b, m shows a closed mouth


@pytest.mark.parametrize("consonant", ["m", "p", "b"])
def test_mouth_closes_on_bilabials(consonant: str) -> None:
    syllable = f"{consonant}a"
    u = speech.synthesize(" ".join([syllable + syllable] * 3), "it")
    track = vz.mouth_track(u.phonemes, int(u.duration_ms // FRAME_MS) + 5)
    for start, end, ipa in u.phonemes:
        if vz.phoneme_visemes(ipa) == (Viseme.CLOSED,) and start > 0:
            # the lips lead the sound by LEAD_MS; look at the frames the closure falls in
            a = max(0, int((start - vz.LEAD_MS) // FRAME_MS))
            b = int((end - vz.LEAD_MS) // FRAME_MS) + 1
            vowel_frames = slice(b, b + 3)
            assert track.openness[a:b].min() < 0.5 * track.openness[vowel_frames].max(), (ipa, start)


def test_mouth_moves_at_a_limited_speed() -> None:
    track = vz.mouth_track([(100.0, 160.0, "ˈa"), (160.0, 200.0, "m"), (200.0, 300.0, "ˈa")], 12)
    step = np.abs(np.diff(np.concatenate([[0.0], track.openness])))
    assert step.max() <= vz.CLOSE_RATE * FRAME_MS + 1e-6
