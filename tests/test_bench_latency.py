"""The latency benchmark's measurement, checked against known answers.

1. The mouth-motion detector on synthetic video whose mouth starts moving N frames after a known onset
   must report N within one frame, and must not fire on a still mouth or on another character's.
2. The whole analysis (clock origin, onset on the media clock, received-frame mapping, detector, stage
   sum, A/V offset) on a synthetic SessionRecord with injected ingest, room latency, transport and mouth
   delays must report each glass-to-glass latency within one frame (40 ms).
3. A short live run on 127.0.0.1 (tiny generator): the tap, the WHEP anchor and the mapping of received
   frames to engine frames agree with the pictures themselves.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from test_server import loaded, loopback_ice  # noqa: F401 (fixtures: the tiny generator, 127.0.0.1 ICE)

from clients.latency_analysis import STAGES, analyze_onsets, summarize
from clients.latency_session import SessionRecord
from clients.mouth_motion import MotionConfig, activity_contrast, crop, detect_motion_onset
from clients.python.viewer import ReceivedAudio, ReceivedVideo
from clients.speech_bursts import Burst

SIZE = 64
BOXES = np.array([[8, 30, 24, 40], [40, 30, 56, 40]], np.float32)  # two mouths, apart
RATE = 48_000


def _idle_frames(t: int, rng: np.random.Generator) -> np.ndarray:
    """A still scene with per-frame noise like a video codec's (std 1.5 grey levels)."""
    base = np.full((SIZE, SIZE, 3), 120.0)
    base[:, :, 1] += np.linspace(0, 40, SIZE)[None, :]
    return np.clip(base[None] + rng.normal(0, 1.5, (t, SIZE, SIZE, 3)), 0, 255)


def _open_mouth(frames: np.ndarray, box: np.ndarray, start: int, length: int) -> None:
    """Draw a mouth opening from frame `start` on: a dark bar growing, like a cartoon mouth."""
    x0, y0, x1, y1 = box.astype(int)
    cy = (y0 + y1) // 2
    for i in range(start, min(start + length, len(frames))):
        h = 1 + min(i - start, 3)  # opens over a few frames
        frames[i, cy - h : cy + h, x0 + 3 : x1 - 3] = 30.0


@pytest.mark.parametrize("delay", [0, 1, 2, 5, 9, 14])
def test_detector_reports_an_injected_delay(delay: int) -> None:
    rng = np.random.default_rng(delay)
    frames = _idle_frames(60, rng)
    onset = 20
    _open_mouth(frames, BOXES[0], onset + delay, 12)
    frames = frames.round().astype(np.uint8)
    found = detect_motion_onset(frames, BOXES[0], onset)
    assert found.frame is not None and abs(found.frame - (onset + delay)) <= 1
    other = detect_motion_onset(frames, BOXES[1], onset)
    assert other.frame is None  # the other mouth stayed still


def test_detector_stays_quiet_on_a_still_mouth_and_a_drifting_picture() -> None:
    rng = np.random.default_rng(0)
    frames = _idle_frames(80, rng)
    frames += np.linspace(0, 0.8, 80)[:, None, None, None]  # a slow global drift, under a grey level
    frames = frames.round().astype(np.uint8)
    for onset in (12, 30, 50):
        assert detect_motion_onset(frames, BOXES[0], onset).frame is None


def test_detector_rejects_bad_arguments() -> None:
    frames = np.zeros((20, SIZE, SIZE, 3), np.uint8)
    with pytest.raises(ValueError, match="idle frames"):
        detect_motion_onset(frames, BOXES[0], 3)
    with pytest.raises(ValueError, match="outside"):
        crop(frames, np.array([200, 200, 210, 210]), 2)


def test_activity_contrast_tells_a_speaking_mouth_from_a_still_one() -> None:
    rng = np.random.default_rng(1)
    frames = _idle_frames(100, rng)
    speech = np.zeros(100, bool)
    for start in (10, 40, 70):
        speech[start : start + 15] = True
        _open_mouth(frames, BOXES[0], start, 15)
    frames = frames.round().astype(np.uint8)
    moving = activity_contrast(crop(frames, BOXES[0], 2), speech)
    still = activity_contrast(crop(frames, BOXES[1], 2), speech)
    assert moving["ratio"] > 3 and 0.8 < still["ratio"] < 1.2


# -- the whole analysis on a synthetic run with known delays -----------------------------------------
def _synthetic_record(mouth_delays: list[int], rng: np.random.Generator):
    """A SessionRecord with known clocks; returns it and the true glass-to-glass and pipeline latencies."""
    t0, latency_ms, ingest_ms, video_ms, audio_ms = 1000.0, 300.0, 95.0, 22.0, 61.0
    first_pts, frame_ms = 7, 40.0
    n_frames = 60 + 62 * len(mouth_delays)
    capture_start = [t0 - 0.5, t0 - 0.49]
    bursts, onsets_media = [], []
    for i, delay in enumerate(mouth_delays):
        k = i % 2
        t_media = 1.5 + 2.48 * i + 0.013 * i  # onset on the room's media clock, not on a frame boundary
        t_cap = t0 + t_media - ingest_ms / 1000
        sample = round((t_cap - capture_start[k]) * RATE)
        bursts.append(Burst(k, sample, RATE // 2, 0.5, f"burst {i}"))
        onsets_media.append((t_media, delay, k, capture_start[k] + sample / RATE))
    # the room's output mix: each burst where it landed on the media clock
    mix = np.zeros(int((n_frames * frame_ms / 1000 + 1) * RATE), np.float32)
    for t_media, _, _, _ in onsets_media:
        s = round(t_media * RATE)
        mix[s : s + RATE // 2] = 0.5 * np.sin(np.arange(RATE // 2) * 0.3)
        mix[s] = 0.5
    # video: emitted on the room's clock (a little late), received after transport; mouths move after a delay
    emitted = {f: t0 + (latency_ms + f * frame_ms) / 1000 + rng.uniform(0, 0.003) for f in range(n_frames)}
    frames = _idle_frames(n_frames, rng)
    truth = []
    for t_media, delay, k, t_cap in onsets_media:
        f_on = int(t_media * 1000 // frame_ms)
        _open_mouth(frames, BOXES[k], f_on + delay, 12)
        recv = lambda f: emitted[f] + video_ms / 1000  # noqa: E731
        truth.append({"glass": 1000 * (recv(f_on + delay) - t_cap), "pipeline": 1000 * (recv(f_on) - t_cap)})
        late_ms = 1000 * (emitted[f_on] - t0) - latency_ms - f_on * frame_ms
        truth[-1]["av"] = late_ms + video_ms - audio_ms  # the same instant: video path minus audio path
    frames = frames.round().astype(np.uint8)
    video = [
        ReceivedVideo((f - first_pts) * 3600, emitted[f] + video_ms / 1000, frames[f])
        for f in range(first_pts, n_frames)
    ]
    audio = [
        ReceivedAudio(
            p,
            t0 + (latency_ms + audio_ms) / 1000 + p / RATE,
            np.round(mix[p : p + 960] * 32767).astype(np.int16),
        )
        for p in range(0, len(mix) - 960, 960)
    ]
    stats = {
        "latency_ms": latency_ms,
        "timings_ms": {
            "features_ms": 5.0,
            "denoise_ms": 30.0,
            "decode_ms": 20.0,
            "cache_ms": 8.0,
            "composite_ms": 0.2,
        },
        "steps_used": {"1": 10},
        "av_offset_ms": {"mean": 0.0, "max": 0.0},
        "frames": n_frames,
        "repeated_frames": 0,
        "skipped_chunks": 0,
        "late_chunks": 0,
        "chunks": n_frames // 2,
    }
    zero = {**stats, "frames": 0, "chunks": 0}
    record = SessionRecord(
        bursts=bursts,
        capture_start=capture_start,
        boxes=BOXES,
        latency_ms=latency_ms,
        chunk_wait_ms=135.0,
        chunk_frames=2,
        lookahead_frames=1,
        emitted=emitted,
        mix_first=0,
        mix=mix,
        video=video,
        audio=audio,
        first_pts=first_pts,
        stats_before=zero,
        stats_after=stats,
        dropped_at_server=0,
    )
    return record, truth


def test_analysis_recovers_injected_latencies_within_one_frame() -> None:
    delays = [
        0,
        1,
        3,
        6,
        -1,
        10,
        4,
        8,
    ]  # frames from the onset's frame to the first moving one (-1: lookahead)
    record, truth = _synthetic_record(delays, np.random.default_rng(3))
    onsets = analyze_onsets(record, MotionConfig())
    for o, t in zip(onsets, truth, strict=True):
        assert "error" not in o, o
        assert abs(o["glass_ms"] - t["glass"]) <= 40.0, (o["glass_ms"], t["glass"])
        assert abs(o["pipeline_ms"] - t["pipeline"]) <= 1.0
        assert abs(sum(o["stages_ms"].values()) - o["pipeline_ms"]) < 1e-6  # the stages add up exactly
        assert abs(o["stages_ms"]["ingest"] - 95.0) < 4.0  # t0 is estimated from the least-late frame
        assert abs(o["stages_ms"]["transport"] - 22.0) < 1e-6
        assert abs(o["av_same_instant_ms"] - t["av"]) < 1.0
        assert o["controls_moved"] == 0
    s = summarize(record, onsets)
    assert s["mouth"]["valid"] and s["mouth"]["detected_rate"] == 1.0
    assert set(s["stages_ms"]) == {*STAGES, "response"}
    assert s["delivery"]["lost_in_transport"] == 0 and s["delivery"]["fps_delivered"] == pytest.approx(
        25, abs=0.5
    )


def test_analysis_reports_lost_frames_and_a_mouth_that_never_moves() -> None:
    record, _ = _synthetic_record([0, 2], np.random.default_rng(4))
    still, _ = _synthetic_record([], np.random.default_rng(4))
    record.video = [v for v in record.video if v.index % 10 != 3]  # every tenth frame lost on the way
    record.video = [
        ReceivedVideo(v.pts, v.received, still.video[0].image) if v.index > 20 else v for v in record.video
    ]
    onsets = analyze_onsets(record)
    s = summarize(record, onsets)
    assert s["delivery"]["lost_in_transport"] > 0
    assert s["mouth"]["detected_rate"] == 0.0 and not s["mouth"]["valid"]
    assert s["glass_to_glass_ms"] == {"n": 0}


# -- live, on 127.0.0.1 ----------------------------------------------------------------------------------
def test_received_frames_map_to_the_engine_frames_they_show(loaded) -> None:  # noqa: F811
    """The WHEP anchor: received frame j is engine frame first_pts + j, checked on every frame.

    Each engine frame is stamped with its own number (a grey block whose level steps by 16 per frame) as
    the worker hands it to the clock; every received frame must carry the stamp of first_pts + j.
    """
    from clients.python.viewer import WhepViewer
    from clients.room_tap import LocalServer, RoomTap, whep_first_pts
    from realtime.engine.room import Room
    from realtime.scene.scenes import world_scene

    def stamp(frame: int) -> int:
        return (frame * 16) % 256

    async def go():
        scene = world_scene(2, seed=0, size=loaded.generator.cfg.frame_size)
        room = Room(loaded, scene, steps=1, seed=0, latency_ms=400)
        ready = room._frame_ready

        def stamped(frame: int, image: np.ndarray) -> None:
            image = image.copy()
            image[:32, :32] = stamp(frame)
            ready(frame, image)

        room._frame_ready = stamped  # before start(): the live scheduler is built with it
        async with LocalServer(room) as local:
            tap = RoomTap(room, keep_images=True)
            viewer = WhepViewer(keep_images=True)
            try:
                session = await viewer.offer(local.http, local.base, local.token)
                first = whep_first_pts(local.server, session.id, tap)
                await viewer.connected()
                await viewer.wait_frames(60)
            finally:
                await viewer.close(local.http, local.token)
                await tap.close()
        return first, tap, viewer

    first, tap, viewer = asyncio.run(go())
    fresh = [v for v in viewer.video if first + v.index in tap.images]
    assert len(fresh) >= 50
    checked = 0
    for v in fresh:
        shown = int(tap.images[first + v.index][:32, :32].mean())
        received = float(v.image[4:28, 4:28].mean())  # inside the block: VP8 blurs its edges
        if shown == stamp(first + v.index):  # a generated frame, not a repeat of an earlier one
            assert abs(received - shown) < 6, (v.index, received, shown)
            checked += 1
    assert checked >= 40
    assert all(v.received >= tap.video_emitted[first + v.index] for v in viewer.video)


def test_a_short_live_run_is_measured_end_to_end(loaded) -> None:  # noqa: F811
    """Two onsets through WHIP -> room -> WHEP: every onset is found and its stages add up."""
    from clients.latency_session import record_session
    from clients.mouth_motion import scene_mouth_boxes, separated_world_scene
    from clients.speech_bursts import speech_bursts
    from realtime.engine.room import Room

    scene, seed = separated_world_scene(2, 0, loaded.generator.cfg.frame_size, 2)
    tracks, bursts = speech_bursts(2, 2, gap_s=1.0, lead_s=1.5, tail_s=0.5)
    room = Room(loaded, scene, steps=1, seed=seed)
    record = asyncio.run(record_session(room, tracks, bursts, scene_mouth_boxes(scene, seed)))
    onsets = analyze_onsets(record)
    assert [o.get("error") for o in onsets] == [None, None]
    for o in onsets:
        assert 0 < o["pipeline_ms"] < 3000
        assert abs(sum(o["stages_ms"].values()) - o["pipeline_ms"]) < 1e-6
        assert 0 <= o["stages_ms"]["transport"] < 500 and o["stages_ms"]["ingest"] > 0
    s = summarize(record, onsets)
    assert s["delivery"]["frames_received"] > 50 and s["delivery"]["lost_in_transport"] == 0
