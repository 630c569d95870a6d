"""Injected faults and their defined behaviour: one test per fault of issue 8.

| fault                                   | defined behaviour                                                 |
|-----------------------------------------|-------------------------------------------------------------------|
| a speaker's connection drops mid-sentence | its character falls silent and idles; other inputs and viewers go on |
| a speaker stalls (packets stop, peer stays) | its input runs dry to silence (one counted underrun); on resume no backlog beyond the cap |
| silence for minutes                     | zeros out, nothing accumulates (bounded memory)                  |
| audio gaps (pts jumps)                  | short: filled with silence, later audio keeps its time; long: resynchronised |
| bursts of packets                       | bounded FIFO, the oldest dropped and counted                     |
| sender clock drift (+-1-2%)             | the playout level (added latency) stays near its target          |
| a slow viewer                           | its oldest frames are dropped, counted; never queued without bound |
| the model missing deadlines             | fewer steps, then repeated frames; audio never stalls; recovery  |

The audio faults drive the front end directly with synthetic time (minutes of stream in a second);
the engine faults run a Room with the tiny generator against the real clock. Also covered elsewhere:
peers vanishing from the live server (tests/test_server.py::test_vanishing_peers_are_dropped_and_the_
others_go_on), sustained overload (tests/test_engine.py::test_overload_fewer_steps_then_repeat_frames_
audio_never_stalls) and a viewer that never reads (tests/test_engine.py::test_slow_viewer_queue_...).
"""

from __future__ import annotations

import asyncio
import functools
import time
import tracemalloc

import numpy as np
import pytest
from test_engine import BLOCK, RATE, Viewer, contiguous, tiny_model, wait_until

from realtime.audio.ingest import DRIFT_DEADBAND_MS, StreamIngest
from realtime.audio.inputs import BACKLOG_MS, JITTER_MS, AudioInput
from realtime.engine.room import PULL_MS, Room
from realtime.scene.scenes import world_scene

TICK = 320  # 16 kHz samples per 20 ms tick of the room's clock
PULL = 16 * PULL_MS  # 16 kHz samples the room pulls every PULL_MS
LOCKSTEP_JITTER_MS = 40  # tests that push a 20 ms packet and pull 20 ms in lockstep need 2 packets of cushion
PACKET = 960  # 48 kHz samples per 20 ms packet


@pytest.fixture(scope="module")
def scene():
    return world_scene(2, seed=3)


def tone(n: int, start: int = 0, rate: int = RATE, hz: float = 200.0, amp: float = 0.3) -> np.ndarray:
    """n samples of a sine from sample `start` on (so consecutive calls join without a click)."""
    return (amp * np.sin(2 * np.pi * hz * (start + np.arange(n)) / rate)).astype(np.float32)


def ramp16(start: int, n: int) -> np.ndarray:
    """16 kHz samples whose value tells their position: (start + i) / 2^20, exact in float32."""
    return ((start + np.arange(n)) / 2**20).astype(np.float32)


# -- the audio front end, on synthetic time ----------------------------------------------------------------
def test_fault_speaker_stall_runs_dry_to_silence_then_resumes_without_a_backlog() -> None:
    """Packets stop (the peer stays): silence after the jitter buffer drains, one underrun; when the
    packets resume with the sender's clock having moved on, playout resynchronises at its target delay."""
    ing = StreamIngest(RATE, vad="none", jitter_ms=LOCKSTEP_JITTER_MS)
    pts = 0
    for _ in range(50):  # 1 s of speech, a packet per tick
        ing.push(tone(PACKET, pts), pts=pts)
        pts += PACKET
        ing.pull(TICK)
    before_ms = ing.stats()["buffered_ms"]
    out = [ing.pull(TICK) for _ in range(150)]  # a 3 s stall: nothing arrives
    drained = next(i for i, x in enumerate(out) if not x.any())
    assert drained * 20 <= LOCKSTEP_JITTER_MS + 20  # what was buffered plays out, then silence
    assert not np.concatenate(out[drained:]).any()
    assert ing.stats()["underruns"] == 1 and ing.stats()["buffered_ms"] == 0
    pts += 150 * PACKET  # the sender's clock ran on through the stall (RTP timestamps do)
    for _ in range(100):
        ing.push(tone(PACKET, pts), pts=pts)
        pts += PACKET
        ing.pull(TICK)
    stats = ing.stats()
    assert stats["gaps"] == 1  # the stall is one hole, skipped (resynchronised), not queued as silence
    assert stats["buffered_ms"] <= before_ms + 1 and stats["underruns"] == 1
    assert np.abs(ing.pull(TICK)).max() > 0.2  # and the speaker is heard again


def test_fault_stalled_speaker_backlog_is_capped_when_it_arrives_at_once() -> None:
    """A stalled sender that then delivers everything it held at once (the engine's input, no pts):
    no more than BACKLOG_MS is kept, the oldest is dropped and counted, the newest plays next."""
    a = AudioInput("s", 0, lambda key: None)
    for k in range(25):
        a.write(tone(PACKET, k * PACKET), RATE)
        a.pull(TICK)
    stall = [a.pull(TICK) for _ in range(100)]  # a 2 s stall: the jitter buffer plays out, then silence
    assert not np.concatenate(stall[JITTER_MS // 20 + 1 :]).any() and a.stats()["underruns"] == 1
    held = 16_000 * 15  # 15 s of backlog arrives in one go, as 20 ms packets; a ramp shows positions
    backlog = ramp16(0, held)
    for i in range(0, held, TICK):
        a.write(backlog[i : i + TICK], 16_000)
    stats = a.stats()
    assert stats["buffered_ms"] <= BACKLOG_MS
    assert stats["dropped_samples"] >= held - BACKLOG_MS * 16
    first = a.pull(16)  # pre-buffered already: it plays at once, from the newest BACKLOG_MS
    assert first[0] == pytest.approx((held - BACKLOG_MS * 16) / 2**20, abs=2 / 2**20)


def test_fault_silence_for_minutes_is_zeros_out_and_bounded_memory() -> None:
    """Ten minutes of silent packets, then ten of no packets at all (DTX, a muted mic): zeros out,
    nothing grows, and speech afterwards is heard at the normal delay."""
    ing = StreamIngest(RATE, vad="webrtc", jitter_ms=LOCKSTEP_JITTER_MS)
    silent = np.zeros(PACKET, np.int16)
    tracemalloc.start()
    try:
        pts, peaks = 0, []
        for minute in range(20):
            for _ in range(3000):  # 60 s of 20 ms ticks
                if minute < 10:
                    ing.push(silent, pts=pts)
                    pts += PACKET
                assert not ing.pull(TICK).any()
            peaks.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert max(peaks) - peaks[0] < 256 * 1024  # no per-packet state kept: bounded, not growing
    stats = ing.stats()
    assert stats["buffered_ms"] <= 2 * LOCKSTEP_JITTER_MS and len(ing._heap) == 0 and not ing.speaking
    pts += 10 * 3000 * PACKET
    for _ in range(10):
        ing.push(tone(PACKET, pts), pts=pts)
        pts += PACKET
        ing.pull(TICK)
    assert ing.stats()["buffered_ms"] <= 2 * LOCKSTEP_JITTER_MS and np.abs(ing.pull(TICK)).max() > 0.2


@pytest.mark.parametrize("gap_packets", [1, 10])
def test_fault_audio_gaps_are_silence_and_later_audio_stays_in_time(gap_packets) -> None:
    """Lost packets (pts jumps up to the jitter window) become silence in their place, so everything
    after keeps its timing; a longer hole (the sender paused) is skipped instead of queued."""
    jitter_ms, n = 40, 16_000
    ing = StreamIngest(16_000, vad="none", jitter_ms=jitter_ms)
    x = ramp16(1, n)  # never 0: a zero in the output is silence the front end made
    hole = range(12 * TICK, (12 + gap_packets) * TICK)
    out = []
    for i in range(0, n, TICK):
        if i not in hole:
            ing.push(x[i : i + TICK], pts=i)
        out.append(ing.pull(TICK))
    y = np.concatenate(out)
    stats = ing.stats()
    assert stats["gaps"] == 1 and stats["late"] == 0
    delay = int(np.flatnonzero(y)[0])  # input sample i leaves at output sample i + delay
    played = y[delay:]
    step = 3 / 2**20  # 3 samples of the ramp
    slack = 2 * 16  # 2 ms: the drift control may move the timing this much, never more
    if gap_packets * 20 <= jitter_ms:  # a lost packet: silence in its place, the rest on time
        assert stats["underruns"] == 0
        silent = np.flatnonzero(played == 0)
        assert abs(silent[0] - hole.start) <= 2 and abs(len(silent) - len(hole)) <= 2
        shown = np.round(played * 2**20) - 1  # the input position each output sample shows
        heard = np.flatnonzero(played)
        heard = heard[(np.abs(heard - hole.start) > 4) & (np.abs(heard - hole.stop) > 4)]  # not the edges
        assert np.abs(shown[heard] - heard).max() <= slack  # before and after the hole: on time
    else:  # a pause: the FIFO runs dry (one underrun), the stream resumes without added delay
        assert stats["underruns"] == 1
        np.testing.assert_allclose(played[: hole.start - 2], x[: hole.start - 2], atol=step)
        resumed = int(np.flatnonzero(np.abs(y - x[hole.stop]) <= step)[0])
        assert resumed - hole.stop <= delay + jitter_ms * 16 + TICK  # re-pre-buffered, no more
        after = y[resumed:]
        np.testing.assert_allclose(after, x[hole.stop : hole.stop + len(after)], atol=2 * step)


def test_fault_burst_of_packets_keeps_the_fifo_bounded_and_drops_the_oldest() -> None:
    """A live stream, then 3 s of packets in one burst: the FIFO never holds more than capacity_ms,
    the oldest is dropped and counted, playout continues with the newest audio."""
    ing = StreamIngest(16_000, vad="none", jitter_ms=40, capacity_ms=500)
    x = ramp16(1, 16_000 * 4)
    i = 0
    for _ in range(25):  # 0.5 s live
        ing.push(x[i : i + TICK], pts=i)
        i += TICK
        ing.pull(TICK)
    burst_end = i + 3 * 16_000
    while i < burst_end:
        ing.push(x[i : i + TICK], pts=i)
        i += TICK
        assert ing.stats()["buffered_ms"] <= 500
    stats = ing.stats()
    assert stats["dropped"] >= 3 * 16_000 - 8000
    y = ing.pull(TICK)
    assert y[0] == x[burst_end - 8000]  # the newest 500 ms are what is left
    assert np.all(np.diff(y) > 0)  # and they play in order


@pytest.mark.parametrize("drift", [0.02, 0.01, -0.01, -0.02])
def test_fault_sender_clock_drift_keeps_the_added_latency_bounded(drift) -> None:
    """A sender whose clock runs 1-2% fast or slow for 4 simulated minutes (the engine's own input:
    no pts, 10 s backlog, pulled every 10 ms like the room does): the FIFO level stays near its target
    instead of growing by 10-20 ms per second or running dry every few seconds; the time-scaling is
    counted and makes no click."""
    a = AudioInput("d", 0, lambda key: None)
    period = 0.02 / (1 + drift)  # server seconds per 20 ms packet of the sender's clock
    k, levels, out = 0, [], []
    ticks = 4 * 60 * 100
    for tick in range(ticks):
        while (k + 0.5) * period <= tick * PULL_MS / 1000:
            a.write(tone(PACKET, k * PACKET), RATE)
            k += 1
        y = a.pull(PULL)
        levels.append(a.stats()["buffered_ms"])
        if tick >= ticks - 1000:
            out.append(y)
    stats, front = a.stats(), a._ingest.stats()
    levels = np.array(levels[100 * 30 :])  # after 30 s of settling
    target = stats["target_ms"]
    assert target <= JITTER_MS + 20  # at most two late-packet steps while the drift was learnt
    assert levels.max() <= target + 40 and levels.mean() <= target + DRIFT_DEADBAND_MS[1]  # its deadband
    assert stats["underruns"] <= 3 and stats["dropped_samples"] == 0
    corrected = front["drift_dropped"] - front["drift_inserted"]
    assert corrected == pytest.approx(drift * ticks * PULL, rel=0.1)
    y = np.concatenate(out)  # the last 10 s: a continuous 200 Hz tone, time-scaled by ~drift
    assert np.abs(np.diff(y)).max() < 1.1 * 2 * np.pi * 200 * 0.3 / 16_000 * (1 + abs(drift))


def test_without_drift_the_stream_is_untouched() -> None:
    """The control stays out of the way of a sender on time: the output is the input, delayed."""
    ing = StreamIngest(16_000, vad="none", jitter_ms=40)
    x, out = ramp16(1, 16_000 * 60), []
    for i in range(0, len(x), TICK):
        ing.push(x[i : i + TICK], pts=i)
        out.append(ing.pull(TICK))
    y = np.concatenate(out)
    delay = int(np.flatnonzero(y)[0])
    np.testing.assert_array_equal(y[delay:], x[: len(y) - delay])
    assert ing.stats()["drift_dropped"] == ing.stats()["drift_inserted"] == 0


# -- the engine, on the real clock ---------------------------------------------------------------------------
def processed(room: Room) -> int:
    """Chunks the room's worker has finished, generated or skipped: how far its media has got."""
    stats = room.stats()
    return stats["chunks"] + stats["skipped_chunks"]


async def paced(audio_input: AudioInput, seconds: float, amp: float = 0.3) -> None:
    """Write 20 ms packets of a tone at 48 kHz, paced by the clock like a WebRTC peer."""
    start = time.monotonic()
    for k in range(int(seconds * 50)):
        if audio_input.closed:
            return
        audio_input.write(tone(BLOCK, k * BLOCK, amp=amp), RATE)
        await asyncio.sleep(max(0.0, start + (k + 1) * 0.02 - time.monotonic()))


def test_fault_speaker_drops_mid_sentence_character_idles_and_the_others_go_on(scene) -> None:
    """Two speakers talk; one connection drops mid-sentence (its input closes, as the server does on a
    failed peer): that character's level goes to 0 and stays there, the other speaker and the viewer
    go on with contiguous frames and audio."""

    async def main():
        room = Room(tiny_model(), scene, steps=1)
        viewer = Viewer(room, max_frames=256)
        await room.start()
        a, b = room.open_input("a", 0), room.open_input("b", 1)
        talk_b = asyncio.create_task(paced(b, 2.4, amp=0.2))
        talk_a = asyncio.create_task(paced(a, 2.4))
        await wait_until(lambda: processed(room) >= 10, "10 chunks (0.8 s) of both speaking")
        both = room.stats()["levels"]
        a.close()  # mid-sentence
        frames_at_drop = room.stats()["frames"]
        await talk_a
        # past the pipeline: a chunk made after the close hears nothing of a
        await wait_until(
            lambda: room.stats()["levels"][0] == 0.0, "character 0 silent after its input closed"
        )
        after = [room.stats()["levels"]]
        chunks = processed(room)
        await wait_until(lambda: processed(room) >= chunks + 5, "5 more chunks after character 0 fell silent")
        after.append(room.stats()["levels"])
        await wait_until(lambda: room.stats()["frames"] >= frames_at_drop + 25, "25 frames after the drop")
        stats = room.stats()
        await talk_b
        await room.stop()
        await viewer.done()
        return both, after, frames_at_drop, stats, viewer

    both, after, frames_at_drop, stats, viewer = asyncio.run(main())
    assert both[0] > 0.02 and both[1] > 0.02
    assert all(levels[0] == 0.0 and levels[1] > 0.02 for levels in after)  # a idles, b still talks
    assert list(stats["inputs"]) == ["b"] and stats["error"] is None
    assert stats["frames"] - frames_at_drop >= 25  # 1 s at 25 fps: the scene went on
    assert contiguous(viewer.video, 1) and viewer.sub.dropped_video == 0
    loud = [np.abs(it.pcm).max() > 3000 for t, it in viewer.audio[-40:]]
    assert np.mean(loud) > 0.9  # the other speaker is still heard


def test_fault_slow_viewer_gets_the_newest_frames_with_bounded_queue(scene) -> None:
    """A viewer that reads, but at half the frame rate: its queue never exceeds max_frames, it loses
    the oldest frames (counted) and keeps receiving recent ones; the fast viewer misses nothing."""

    async def main():
        room = Room(tiny_model(), scene, steps=1)
        slow = room.subscribe(max_frames=4)
        fast = Viewer(room)
        await room.start()
        seen, depth = [], []
        for _ in range(25):
            depth.append(len(slow.video))
            frame = await slow.next_video()
            emitted = room.stats()["frames"]
            seen.append((frame.pts, emitted))
            # reads one frame while the room makes two: half the frame rate, on the media clock
            await wait_until(lambda: room.stats()["frames"] >= emitted + 2, "two more frames")  # noqa: B023
        stats = room.stats()
        await room.stop()
        await fast.done()
        return seen, depth, slow, fast, stats

    seen, depth, slow, fast, stats = asyncio.run(main())
    assert max(depth) <= 4 and len(slow.audio) <= 8
    assert slow.dropped_video >= len(seen) // 2  # about every other frame was dropped for it
    assert all(emitted - pts <= 5 for pts, emitted in seen)  # never more than the queue behind
    assert fast.sub.dropped_video == 0 and contiguous(fast.video, 1)
    assert stats["dropped_video"] == slow.dropped_video


def test_fault_model_stalls_once_audio_goes_on_and_the_picture_recovers(scene) -> None:
    """One model step hangs for 0.6 s (a stall, not a slow model): audio never waits, the frames due
    meanwhile repeat the last one, and afterwards fresh frames come back (no backlog is worked off)."""
    loaded = tiny_model(steps=1)
    stall = {"armed": False}
    denoise = loaded.generator.denoise

    @functools.wraps(denoise)
    def stalling(*args, **kwargs):
        if stall["armed"]:
            stall["armed"] = False
            time.sleep(0.6)  # the fault being simulated: a step that hangs (not a synchronisation)
            stall["over"] = True
        return denoise(*args, **kwargs)

    loaded.generator.denoise = stalling

    async def main():
        room = Room(loaded, scene, steps=1)
        viewer = Viewer(room, max_frames=256)
        await room.start()
        speaking = asyncio.create_task(paced(room.open_input("a"), 3.0))
        await wait_until(lambda: processed(room) >= 10, "10 chunks (0.8 s) before the stall")
        before = room.stats()
        stall["armed"] = True
        await wait_until(lambda: stall.get("over", False), "the stalled step to end")
        await wait_until(lambda: room.stats()["frames"] >= before["frames"] + 30, "30 frames past the stall")
        during = room.stats()

        def fresh_again() -> bool:  # fresh chunks, and frames that are not all one repeated picture
            images = {id(it.image) for _, it in viewer.video if it.pts >= during["frames"]}
            return room.stats()["chunks"] > during["chunks"] + 1 and len(images) >= 3

        await wait_until(fresh_again, "fresh frames after the stall")
        after = room.stats()
        await speaking
        await room.stop()
        await viewer.done()
        return before, during, after, viewer

    before, during, after, viewer = asyncio.run(main())
    assert during["repeated_frames"] - before["repeated_frames"] >= 8  # ~0.6 s of frames repeated
    assert after["chunks"] > during["chunks"] + 1  # the picture moves again (fresh_again held)
    assert after["audio_underruns"] == 0 and contiguous(viewer.audio, 960) and contiguous(viewer.video, 1)
    assert after["error"] is None


@pytest.mark.parametrize("late_ms", [0, 35])
def test_fault_late_packets_grow_the_jitter_target_and_a_pause_does_not(late_ms) -> None:
    """A link whose packets come up to late_ms late runs dry a few times, then the pre-buffer has grown
    past the lateness and it runs dry no more; an on-time link keeps its 20 ms; a 2 s pause of the
    sender is not jitter and leaves the target where it was."""
    ing = StreamIngest(RATE, vad="none", jitter_ms=JITTER_MS, max_jitter_ms=200)
    rng = np.random.default_rng(1)
    packet = RATE // 50  # 20 ms at 48 kHz
    arrivals = []  # (arrival tick in 10 ms units, pts): every 5th packet is late_ms late
    for k in range(1500):  # 30 s
        late = late_ms if k % 5 == 4 else int(rng.integers(0, 3))
        arrivals.append((2 * k + (late + 9) // 10, k * packet))
    underruns_at = []
    pending = sorted(arrivals)
    for tick in range(2 * 1500):
        while pending and pending[0][0] <= tick:
            _, pts = pending.pop(0)
            ing.push(tone(packet, pts), pts=pts)
        before = ing.stats()["underruns"]
        ing.pull(160)  # the room pulls every 10 ms
        if ing.stats()["underruns"] > before:
            underruns_at.append(tick)
    target = ing.stats()["target_ms"]
    if late_ms == 0:
        assert not underruns_at and target == JITTER_MS
    else:
        assert 1 <= len(underruns_at) <= 5 and max(underruns_at) < 300  # learnt within 3 s
        assert JITTER_MS < target <= JITTER_MS + late_ms + 10  # grown until the clicks stopped, no further
    # a 2 s pause of the sender, then it goes on: one underrun, the target is kept
    start = 1500 * packet + 2 * RATE
    before = ing.stats()["underruns"]
    for tick in range(200 + 100):
        k = tick // 2
        if tick >= 200 and tick % 2 == 0:
            ing.push(tone(packet, start + (k - 100) * packet), pts=start + (k - 100) * packet)
        ing.pull(160)
    assert ing.stats()["underruns"] == before + 1 and ing.stats()["target_ms"] == target
