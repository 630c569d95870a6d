"""distill.world.dialogue: deterministic scripts, aligned tracks, overlaps, interruptions and backchannels."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from distill.world import dialogue as dl
from distill.world.clip import DialogueTrack
from distill.world.visemes import Viseme
from realtime.errors import CharacterCountError, ScriptError
from realtime.media import AUDIO_SAMPLE_RATE, SAMPLES_PER_FRAME, VIDEO_FPS

SECONDS = 8.0
SEEDS = range(12)


@pytest.fixture(scope="module")
def tracks() -> dict[tuple[int, int], DialogueTrack]:
    """Dialogues for 1-4 characters over a set of seeds (utterances are cached across them)."""
    return {(n, s): dl.synthesize_dialogue(n, SECONDS, s) for n in (1, 2, 3, 4) for s in SEEDS}


def _frame_rms(audio: np.ndarray) -> np.ndarray:
    n, s = audio.shape
    t = s // SAMPLES_PER_FRAME
    frames = audio[:, : t * SAMPLES_PER_FRAME].reshape(n, t, SAMPLES_PER_FRAME).astype(np.float64)
    return np.sqrt((frames**2).mean(axis=2))


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_shapes_dtypes_and_ranges(tracks: dict, n: int) -> None:
    track = tracks[(n, 0)]
    s, t = round(SECONDS * AUDIO_SAMPLE_RATE), round(SECONDS * VIDEO_FPS)
    assert track.audio.shape == (n, s) and track.audio.dtype == np.float32
    assert track.openness.shape == (n, t) and track.openness.dtype == np.float32
    assert track.viseme.shape == (n, t) and track.viseme.dtype == np.int8
    assert track.active.shape == (n, t) and track.active.dtype == np.bool_
    assert np.abs(track.audio).max() <= 1.0
    assert track.openness.min() >= 0.0 and track.openness.max() <= 1.0
    assert set(np.unique(track.viseme)) <= {int(v) for v in Viseme}
    assert track.sample_rate == AUDIO_SAMPLE_RATE and track.fps == VIDEO_FPS


def test_odd_durations_round_to_the_grids() -> None:
    track = dl.synthesize_dialogue(2, 2.51, seed=3)
    assert track.audio.shape[1] == round(2.51 * AUDIO_SAMPLE_RATE)
    assert track.n_frames == round(2.51 * VIDEO_FPS)
    assert all(0 <= seg.start_s < seg.end_s <= 2.51 for seg in track.segments)


def test_same_seed_same_dialogue_other_seed_other_dialogue(tracks: dict) -> None:
    dl.utterance.cache_clear()  # a fresh synthesis must reproduce the cached one exactly
    again = dl.synthesize_dialogue(2, SECONDS, 0)
    first = tracks[(2, 0)]
    for name in ("audio", "openness", "viseme", "active"):
        assert np.array_equal(getattr(first, name), getattr(again, name)), name
    assert first.segments == again.segments
    assert not np.array_equal(first.audio, tracks[(2, 1)].audio)
    assert dl.plan_dialogue(2, SECONDS, 0) != dl.plan_dialogue(2, SECONDS, 1)


@pytest.mark.parametrize("n", [0, 5, -1])
def test_bad_character_counts(n: int) -> None:
    with pytest.raises(CharacterCountError):
        dl.synthesize_dialogue(n, SECONDS, 0)


@pytest.mark.parametrize(
    ("seconds", "seed", "expected"),
    [
        (0, 0, "seconds"),
        (-2.0, 0, "seconds"),
        (600.5, 0, "600"),
        (float("nan"), 0, "seconds"),
        ("8", 0, "number"),
        (8.0, -1, "seed"),
        (8.0, 1.5, "seed"),
    ],
)
def test_bad_lengths_and_seeds(seconds: object, seed: object, expected: str) -> None:
    with pytest.raises(ScriptError, match=expected):
        dl.synthesize_dialogue(2, seconds, seed)  # type: ignore[arg-type]


def test_mix_is_the_clipped_sum(tracks: dict) -> None:
    track = tracks[(3, 0)]
    assert np.array_equal(track.mix, np.clip(track.audio.sum(axis=0), -1, 1).astype(np.float32))


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_active_frames_match_audio_energy(tracks: dict, n: int) -> None:
    for seed in SEEDS[:6]:
        track = tracks[(n, seed)]
        rms = _frame_rms(track.audio)
        for c in range(n):
            active = track.active[c, : rms.shape[1]]
            # a stop closure may be silent for a frame or two (espeak times it inside the phoneme before,
            # and Italian geminates are long): look one frame either side and allow a few
            padded = np.pad(rms[c], 1)
            near = np.maximum.reduce([padded[:-2], padded[1:-1], padded[2:]])
            if active.any():
                assert np.mean(near[active] > 1e-3) > 0.97, f"seed {seed} character {c}: active but silent"
            if rms[c].max() > 0:
                loud = rms[c] > 0.25 * rms[c].max()
                assert np.all(active[loud]), f"seed {seed} character {c}: loud but not active"
                assert np.all(track.openness[c][~active & (near == 0)] == 0)  # silence: mouth shut


def test_segments_are_in_the_clip_in_order_and_nobody_talks_over_themselves(tracks: dict) -> None:
    for (n, seed), track in tracks.items():
        starts = [seg.start_s for seg in track.segments]
        assert starts == sorted(starts)
        for seg in track.segments:
            assert 0 <= seg.start_s < seg.end_s <= SECONDS and 0 <= seg.character < n
            assert seg.kind in {"turn", "overlap", "interruption", "backchannel"}
        for c in range(n):
            own = [seg for seg in track.segments if seg.character == c]
            for a, b in itertools.pairwise(own):
                assert a.end_s <= b.start_s, (n, seed, a, b)


def test_overlaps_and_backchannels_happen(tracks: dict) -> None:
    kinds = [seg.kind for (n, _), track in tracks.items() if n > 1 for seg in track.segments]
    assert (
        kinds.count("overlap") >= 5 and kinds.count("backchannel") >= 5 and kinds.count("interruption") >= 2
    )
    with_overlap = sum(
        int((track.active.sum(axis=0) >= 2).any()) for (n, _), track in tracks.items() if n > 1
    )
    assert with_overlap >= len(SEEDS)  # more than a third of multi-character clips have two voices at once


def test_backchannels_are_short_and_said_over_someone(tracks: dict) -> None:
    found = 0
    for track in tracks.values():
        for seg in track.segments:
            if seg.kind == "backchannel":
                found += 1
                assert seg.end_s - seg.start_s < 1.2
                others = [
                    o for o in track.segments if o.character != seg.character and o.kind != "backchannel"
                ]
                assert any(o.start_s < seg.start_s < o.end_s for o in others)
    assert found > 0


def test_interruptions_cut_the_speaker_off() -> None:
    cut = 0
    for seed in range(40):
        script = dl.plan_dialogue(2, SECONDS, seed)
        interrupted = [ln for ln in script.lines if ln.interrupted]
        if not interrupted:
            continue
        track = dl.render_dialogue(script)
        for line in interrupted:
            assert line.stop_s < line.start_s + line.utterance_s - 0.05  # the line really was cut short
            interrupter = next(
                o for o in script.lines if o.kind == "interruption" and o.start_s == line.cut_s
            )
            assert interrupter.character != line.character
            assert line.start_s < interrupter.start_s < line.stop_s  # the interrupter cut in mid-line
            later = [
                o.start_s for o in script.lines if o.character == line.character and o.start_s > line.start_s
            ]
            silent_until = min([*later, SECONDS])
            a, b = round(line.stop_s * AUDIO_SAMPLE_RATE), round(silent_until * AUDIO_SAMPLE_RATE)
            assert np.all(track.audio[line.character, a:b] == 0)  # nothing after the cut
            before = track.audio[line.character, a - 1600 : a - 160]
            assert np.sqrt(np.mean(before.astype(np.float64) ** 2)) > 1e-3  # still talking just before it
            k = int(np.ceil(line.stop_s * VIDEO_FPS)) + 2
            if silent_until - line.stop_s > 0.2:
                assert track.openness[line.character, k] == 0 and not track.active[line.character, k]
            seg = next(
                s for s in track.segments if s.character == line.character and s.start_s == line.start_s
            )
            assert seg.text.endswith("…") and seg.end_s == pytest.approx(line.stop_s, abs=1e-3)
            cut += 1
    assert cut >= 3


def test_monologue_has_pauses(tracks: dict) -> None:
    for seed in SEEDS:
        track = tracks[(1, seed)]
        assert all(seg.character == 0 and seg.kind == "turn" for seg in track.segments)
        assert track.active.any() and not track.active.all()
    gaps = [b.start_s - a.end_s for seed in SEEDS for a, b in itertools.pairwise(tracks[(1, seed)].segments)]
    assert min(gaps) > 0.2 and max(gaps) > 1.5  # pauses, and at least one long silence


def test_characters_are_rarely_silent_for_a_whole_clip(tracks: dict) -> None:
    silent = total = 0
    for (n, _), track in tracks.items():
        silent += int((~track.active.any(axis=1)).sum())
        total += n
    assert silent <= 0.05 * total


def test_each_character_has_its_own_voice() -> None:
    for seed in SEEDS:
        voices = dl.plan_dialogue(4, SECONDS, seed).voices
        assert len({v.voice.split("+")[1] for v in voices}) == 4


def test_a_dialogue_seen_before_is_built_from_cached_utterances(tracks: dict, monkeypatch) -> None:
    # how fast a cached dialogue is built is a benchmark's business; here: it never calls espeak again
    first = dl.synthesize_dialogue(2, SECONDS, 5)  # fills the cache (an earlier test may have cleared it)
    calls, synthesize = [], dl.synthesize

    def counting(*args, **kwargs):
        calls.append(args)
        return synthesize(*args, **kwargs)

    monkeypatch.setattr(dl, "synthesize", counting)
    hits = dl.utterance.cache_info().hits
    again = dl.synthesize_dialogue(2, SECONDS, 5)
    assert calls == []  # every utterance came from the cache ...
    assert dl.utterance.cache_info().hits > hits  # ... which was asked
    assert np.array_equal(first.audio, again.audio) and first.segments == again.segments
    dl.utterance.cache_clear()
    dl.synthesize_dialogue(2, SECONDS, 5)
    assert calls  # the count is real: without the cache the same dialogue calls espeak
