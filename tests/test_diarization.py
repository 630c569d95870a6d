"""Mixed-stream diarization on the world's dialogues: enrollment accuracy, streaming, routing, online mode."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.audio.diarization import Diarizer, decision_masks
from realtime.bench.diarization import best_mapping, enrollment_audio, score, summarise
from realtime.errors import BYAError, DiarizationError
from realtime.media import SAMPLES_PER_FRAME

SEED, N, SECONDS = 3, 3, 12.0  # not a benchmark seed (101-106); three voices with overlaps


@pytest.fixture(scope="module")
def world():
    """A 3-character mix, its truth, and enrollment audio of each voice saying other sentences."""
    from distill.world.clip import make_clip

    clip = make_clip(SEED, n_characters=N, size=64, seconds=SECONDS)
    said = {s.text for s in clip.dialogue.segments}
    enroll = [enrollment_audio(SEED, N, k, said, seconds=4.0) for k in range(N)]
    return clip.dialogue, enroll


@pytest.fixture(scope="module")
def enrolled(world):
    _, enroll = world
    d = Diarizer("enroll", overlap=False)  # the first one pays resemblyzer's warm-up
    for k in range(N):
        d.enroll(k, enroll[k])
    return d


def run_stream(d: Diarizer, audio: np.ndarray, block: int):
    out = []
    for i in range(0, len(audio), block):
        out += d.push(audio[i : i + block])
    return out + d.flush()


@pytest.fixture(scope="module")
def streamed(world, enrolled):
    dialogue, _ = world
    return run_stream(enrolled, dialogue.mix, 320)


def masks(decisions, n_samples: int, k: int = N) -> np.ndarray:
    return decision_masks(decisions, k, -(-n_samples // SAMPLES_PER_FRAME))


def test_enrollment_binds_the_worlds_speech_to_the_right_character(world, streamed):
    dialogue, _ = world
    pred = masks(streamed, dialogue.mix.shape[0])[:, : dialogue.n_frames]
    r = summarise(score(pred, dialogue.active))
    assert r["single_right"] > 0.88, r
    assert r["speech_right"] > 0.88, r
    assert r["silence_false_alarm"] < 0.5, r


def test_decisions_tile_the_stream_and_do_not_depend_on_block_size(world, enrolled, streamed):
    dialogue, _ = world
    n = len(dialogue.mix)
    # every frame is decided exactly once (a label, or None), in order, up to the end of the audio
    covered = np.zeros(-(-n // SAMPLES_PER_FRAME), int)
    for start, end, _ in streamed:
        assert start % SAMPLES_PER_FRAME == 0 and start < end <= n
    for start, end, character in streamed:
        if character is None:
            covered[start // SAMPLES_PER_FRAME : -(-end // SAMPLES_PER_FRAME)] += 1
    labelled = masks(streamed, n).any(0)
    assert np.all((covered == 1) ^ labelled)
    whole = run_stream(enrolled, dialogue.mix, len(dialogue.mix))
    odd = run_stream(enrolled, dialogue.mix, 777)
    np.testing.assert_array_equal(masks(whole, n), masks(streamed, n))
    np.testing.assert_array_equal(masks(odd, n), masks(streamed, n))


def test_decisions_come_out_lookahead_ms_after_each_frame(world, enrolled):
    dialogue, _ = world
    enrolled.reset()
    lookahead = enrolled.latency_ms * 16
    pushed, latest = 0, 0
    for i in range(0, 3 * 16000, 320):
        out = enrolled.push(dialogue.mix[i : i + 320])
        pushed += 320
        if out:
            latest = max(end for _, end, _ in out)
        # every frame whose end + lookahead has arrived is decided, and no later one
        assert latest == (pushed - lookahead) // SAMPLES_PER_FRAME * SAMPLES_PER_FRAME or pushed < lookahead
    enrolled.reset()


def test_split_routes_each_voice_to_its_own_track(world, enrolled, streamed):
    dialogue, _ = world
    mix = dialogue.mix
    tracks = enrolled.split(mix)
    assert tracks.shape == (N, len(mix)) and tracks.dtype == np.float32
    m = np.repeat(masks(streamed, len(mix)), SAMPLES_PER_FRAME, axis=1)[:, : len(mix)]
    inner = np.ones(len(mix), bool)
    edges = np.flatnonzero(np.diff(m.astype(int), axis=1).any(0))
    for e in edges:  # away from the 5 ms fades at decision edges
        inner[max(0, e - 80) : e + 80] = False
    for k in range(N):
        np.testing.assert_allclose(tracks[k][m[k] & inner], mix[m[k] & inner], atol=1e-6)
        assert not tracks[k][~m[k] & inner].any()
    # where a voice speaks alone, nearly all of its energy lands on its own track
    alone = np.repeat(dialogue.active & (dialogue.active.sum(0) == 1), SAMPLES_PER_FRAME, axis=1)[
        :, : len(mix)
    ]
    for k in range(N):
        energy = dialogue.audio[k] ** 2 * alone[k]
        assert np.sum(energy * m[k]) / np.sum(energy) > 0.9


def test_overlap_mode_binds_both_speakers_in_some_overlapped_frames(world, streamed):
    dialogue, enroll = world
    d = Diarizer("enroll", overlap=True)
    for k in range(N):
        d.enroll(k, enroll[k])
    pred = masks(run_stream(d, dialogue.mix, 1600), len(dialogue.mix))[:, : dialogue.n_frames]
    r = summarise(score(pred, dialogue.active))
    single = summarise(score(masks(streamed, len(dialogue.mix))[:, : dialogue.n_frames], dialogue.active))
    assert single["overlap_both_right"] == 0.0  # the default binds one speaker per frame
    assert r["overlap_both_right"] > 0.15, r
    assert r["character_recall"] > single["character_recall"] + 0.03, (r, single)


def test_online_clustering_finds_the_voices_without_enrollment(world):
    dialogue, _ = world
    d = Diarizer("online")
    pred = masks(run_stream(d, dialogue.mix, 3200), len(dialogue.mix), k=4)[:, : dialogue.n_frames]
    found = int(pred.any(1).sum())
    assert 2 <= found <= 4
    r = summarise(score(best_mapping(pred, dialogue.active), dialogue.active))
    assert r["speech_right"] > 0.6, r


@pytest.mark.parametrize(
    ("action", "match"),
    [
        (lambda d, a: Diarizer("guess"), "mode must be one of"),
        (lambda d, a: Diarizer("enroll", window_ms=100), "window_ms"),
        (lambda d, a: Diarizer("enroll", lookahead_ms=20), "lookahead_ms"),
        (lambda d, a: Diarizer("enroll", colour="red"), "unknown Diarizer option"),
        (lambda d, a: Diarizer("online").enroll(0, a), "needs mode='enroll'"),
        (lambda d, a: Diarizer("enroll").push(a), "enroll at least one character"),
        (lambda d, a: d.enroll(4, a), r"character must be in \[0, 4\)"),
        (lambda d, a: d.enroll(0, a[:8000]), "needs >= 2 s of speech"),
        (lambda d, a: d.enroll(0, np.zeros(64000, np.float32)), "needs >= 2 s of speech"),
        (lambda d, a: d.push(np.array([0.0, np.inf], np.float32)), "NaN or infinite"),
        (lambda d, a: d.push(np.zeros((2, 10), np.float32)), "1-D float audio"),
    ],
)
def test_bad_configuration_and_audio_raise_diarization_errors(world, enrolled, action, match):
    _, enroll = world
    with pytest.raises(DiarizationError, match=match) as info:
        action(enrolled, enroll[0])
    assert isinstance(info.value, BYAError) and "\n" not in str(info.value)
